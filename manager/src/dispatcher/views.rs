//! What a node's tasks see of their overlay networks (`shoal_rpc::discovery`),
//! computed from the store for one node: a pure function, so the leader's
//! answer is the same whoever leads.
//!
//! - Peers: every task on another node with an address on the network
//!   that has not ended (a task being prepared gets its FDB entry before it
//!   starts), at its node's address.
//! - Services: those with a task on the network; the VIP the allocator
//!   gave on it (none in `dnsrr` mode); aliases from the service's network
//!   config; and as endpoints, the tasks that run and are wanted running.
//!   A task told to stop leaves the endpoints at once, before its node
//!   stops it.
//! - Standalone containers (network attachment tasks): their name and
//!   aliases resolve to their address, as a `dnsrr` service of one.
//! - The ingress network: every node with an address on it has it (its
//!   mesh entry needs the peers), its peers include the other nodes'
//!   entries, and it lists no services (there is no discovery on ingress).
//! - The mesh (`mesh`): every node's entry and every ingress-published
//!   port with its running tasks.

use std::collections::{BTreeMap, BTreeSet};

use shoal_api::service::PublishMode;
use shoal_api::service::{ResolutionMode, Service};
use shoal_api::task::{Task, TaskState};
use shoal_rpc::discovery::{MeshEntry, MeshPort, MeshView, NetworkView, Peer, ServiceView, TaskEndpoint};

use crate::store::Store;

/// The address of `t` on network `network`, without the prefix length.
fn addr_on(t: &Task, network: &str) -> Option<String> {
    let a = t.networks_attachments.iter().find(|a| a.network.id == network)?;
    a.addresses.first().map(|c| c.split('/').next().unwrap_or(c).to_string())
}

/// Docker's task name: `<service>.<slot>.<id>`, or `<service>.<node>.<id>`
/// for a global service's task.
pub fn task_name(svc: &Service, t: &Task) -> String {
    if t.slot > 0 {
        format!("{}.{}.{}", svc.spec.name, t.slot, t.id)
    } else {
        format!("{}.{}.{}", svc.spec.name, t.node_id, t.id)
    }
}

/// Running and wanted running (or, for a job's task, wanted to complete).
fn serving(t: &Task) -> bool {
    t.status.state == TaskState::Running && t.desired_state <= TaskState::Complete
}

/// The views for the networks `node_id`'s tasks (`mine`) are attached to.
pub fn views<'a>(st: &Store, node_id: &str, mine: impl Iterator<Item = &'a Task>) -> Vec<NetworkView> {
    let entry = st.nodes.get(node_id).and_then(|n| n.attachments.first());
    let networks: BTreeMap<String, (String, bool, bool)> = mine
        .flat_map(|t| t.networks_attachments.iter())
        .chain(entry)
        .map(|a| (a.network.id.clone(), (a.network.spec.name.clone(), a.network.spec.internal, a.network.is_encrypted())))
        .collect();
    if networks.is_empty() {
        return Vec::new();
    }
    let mut out: BTreeMap<String, NetworkView> = networks
        .iter()
        .map(|(id, (name, internal, encrypted))| {
            let view = NetworkView {
                network_id: id.clone(),
                name: name.clone(),
                internal: *internal,
                encrypted: *encrypted,
                ..Default::default()
            };
            (id.clone(), view)
        })
        .collect();
    let mut services: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for t in st.tasks.values() {
        // A task told to stop leaves the names and balancers at once, but
        // stays reachable until it has stopped: it drains the connections
        // it has, and those sent to it just before every node heard.
        if t.status.state.is_terminal() {
            continue;
        }
        for a in &t.networks_attachments {
            let Some(view) = out.get_mut(&a.network.id) else { continue };
            let Some(addr) = addr_on(t, &a.network.id) else { continue };
            if t.node_id != node_id && !t.node_id.is_empty() {
                if let Some(node) = st.nodes.get(&t.node_id) {
                    view.peers.push(Peer { addr: addr.clone(), node: node.status.addr.clone() });
                }
            }
            if t.spec.is_attachment() {
                // A standalone container: its name and aliases resolve to
                // its address, as a `dnsrr` service of one would.
                if t.desired_state <= TaskState::Running && !a.network.spec.ingress {
                    let aliases = t.spec.networks.iter().flat_map(|n| n.aliases.clone()).collect();
                    let tasks = vec![TaskEndpoint { name: t.name.clone(), addr: addr.clone() }];
                    view.services.push(ServiceView { id: t.id.clone(), name: t.name.clone(), aliases, vip: None, tasks });
                }
            } else if t.desired_state <= TaskState::Complete {
                services.entry((a.network.id.clone(), t.service_id.clone())).or_default().insert(t.id.clone());
            }
        }
    }
    let ingress: BTreeSet<&str> = st.networks.values().filter(|n| n.spec.ingress).map(|n| n.id.as_str()).collect();
    for n in st.nodes.values().filter(|n| n.id != node_id) {
        for a in &n.attachments {
            let Some(view) = out.get_mut(&a.network.id) else { continue };
            if let Some(addr) = a.addresses.first() {
                view.peers.push(Peer { addr: addr.split('/').next().unwrap_or(addr).to_string(), node: n.status.addr.clone() });
            }
        }
    }
    for ((network, service_id), task_ids) in services {
        if ingress.contains(network.as_str()) {
            continue;
        }
        let Some(svc) = st.services.get(&service_id) else { continue };
        let view = out.get_mut(&network).expect("only networks of the node");
        let dnsrr = svc.spec.endpoint_spec.as_ref().and_then(|e| e.mode) == Some(ResolutionMode::Dnsrr);
        let vip = if dnsrr {
            None
        } else {
            svc.endpoint
                .virtual_ips
                .iter()
                .find(|v| v.network_id == network)
                .map(|v| v.addr.split('/').next().unwrap_or(&v.addr).to_string())
        };
        let aliases = svc
            .spec
            .task_template
            .networks
            .iter()
            .filter(|n| n.target == network || n.target == view.name)
            .flat_map(|n| n.aliases.clone())
            .collect();
        let tasks = task_ids
            .iter()
            .filter_map(|id| st.tasks.get(id))
            .filter(|t| serving(t))
            .filter_map(|t| Some(TaskEndpoint { name: task_name(svc, t), addr: addr_on(t, &network)? }))
            .collect();
        view.services.push(ServiceView { id: svc.id.clone(), name: svc.spec.name.clone(), aliases, vip, tasks });
    }
    let mut v: Vec<NetworkView> = out.into_values().collect();
    // Nodes' WireGuard keys by data path address, read once, and only if a
    // network here is encrypted (this runs on every long-poll wake).
    let keys: BTreeMap<&str, &str> = if v.iter().any(|n| n.encrypted) {
        st.nodes
            .values()
            .filter(|x| !x.description.data_path_key.is_empty())
            .map(|x| (x.status.addr.as_str(), x.description.data_path_key.as_str()))
            .collect()
    } else {
        BTreeMap::new()
    };
    for n in &mut v {
        n.peers.sort();
        n.peers.dedup();
        if n.encrypted {
            // The keys of the nodes this one sends that network's frames to.
            n.keys = n.peers.iter().filter_map(|p| Some((p.node.clone(), keys.get(p.node.as_str())?.to_string()))).collect();
        }
    }
    v
}

/// The routing mesh for `node_id` (None until it has its address on the
/// ingress network): every node's entry, and for every ingress-published
/// port the running tasks' ingress addresses with the target port.
pub fn mesh(st: &Store, node_id: &str) -> Option<MeshView> {
    let attachment = st.nodes.get(node_id)?.attachments.first()?.clone();
    let network = attachment.network.id.clone();
    let bare = |c: &str| c.split('/').next().unwrap_or(c).to_string();
    let mut entries: Vec<MeshEntry> = st
        .nodes
        .values()
        .filter_map(|n| {
            let a = n.attachments.iter().find(|a| a.network.id == network)?;
            Some(MeshEntry { addr: bare(a.addresses.first()?), node: n.status.addr.clone() })
        })
        .collect();
    entries.sort();
    let mut backends: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for t in st.tasks.values().filter(|t| serving(t)) {
        if let Some(a) = t.networks_attachments.iter().find(|a| a.network.id == network) {
            if let Some(addr) = a.addresses.first() {
                backends.entry(t.service_id.as_str()).or_default().push(addr.split('/').next().unwrap_or(addr));
            }
        }
    }
    let mut ports = Vec::new();
    for s in st.services.values() {
        for p in s.endpoint.ports.iter().filter(|p| p.publish_mode == PublishMode::Ingress && p.published_port != 0) {
            let mut b: Vec<(String, u32)> =
                backends.get(s.id.as_str()).into_iter().flatten().map(|a| (a.to_string(), p.target_port)).collect();
            b.sort();
            ports.push(MeshPort { protocol: p.protocol.as_str().to_string(), published: p.published_port, backends: b });
        }
    }
    ports.sort();
    Some(MeshView { attachment, entries, ports })
}

/// The host-mode published ports of the tasks `mine` that may still run,
/// by task ID (from their service's endpoint spec).
pub fn host_ports<'a>(st: &Store, mine: impl Iterator<Item = &'a Task>) -> BTreeMap<String, Vec<shoal_api::service::PortConfig>> {
    let mut out = BTreeMap::new();
    for t in mine {
        if t.status.state.is_terminal() || t.desired_state > TaskState::Complete {
            continue;
        }
        let Some(svc) = st.services.get(&t.service_id) else { continue };
        let ports: Vec<_> = svc.spec.endpoint_spec.iter().flat_map(|e| e.ports.iter()).filter(|p| p.is_host_published()).cloned().collect();
        if !ports.is_empty() {
            out.insert(t.id.clone(), ports);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_api::network::{Network, NetworkAttachment, NetworkSpec};
    use shoal_api::service::{EndpointSpec, EndpointVirtualIp, ServiceSpec};
    use shoal_api::task::NetworkAttachmentConfig;
    use shoal_api::Node;

    fn attached(id: &str, node: &str, svc: &str, addr: &str, state: TaskState) -> Task {
        let mut t = Task {
            id: id.into(),
            node_id: node.into(),
            service_id: svc.into(),
            slot: 1,
            desired_state: TaskState::Running,
            ..Default::default()
        };
        t.status.state = state;
        t.networks_attachments = vec![NetworkAttachment {
            network: Network { id: "net1".into(), spec: NetworkSpec { name: "appnet".into(), ..Default::default() }, ..Default::default() },
            addresses: vec![format!("{addr}/24")],
        }];
        t
    }

    fn store() -> Store {
        let mut st = Store::default();
        for (id, addr) in [("n1", "192.168.77.11"), ("n2", "192.168.77.12")] {
            let mut n = Node { id: id.into(), ..Default::default() };
            n.status.addr = addr.into();
            st.nodes.insert(id.into(), n);
        }
        let mut web = Service { id: "s-web".into(), spec: ServiceSpec { name: "web".into(), ..Default::default() }, ..Default::default() };
        web.spec.task_template.networks =
            vec![NetworkAttachmentConfig { target: "net1".into(), aliases: vec!["www".into()], ..Default::default() }];
        web.endpoint.virtual_ips = vec![EndpointVirtualIp { network_id: "net1".into(), addr: "10.0.1.2/24".into() }];
        let mut db = Service { id: "s-db".into(), spec: ServiceSpec { name: "db".into(), ..Default::default() }, ..Default::default() };
        db.spec.endpoint_spec = Some(EndpointSpec { mode: Some(ResolutionMode::Dnsrr), ..Default::default() });
        st.services.insert(web.id.clone(), web);
        st.services.insert(db.id.clone(), db);
        for t in [
            attached("t1", "n1", "s-web", "10.0.1.3", TaskState::Running),
            attached("t2", "n2", "s-web", "10.0.1.4", TaskState::Running),
            attached("t3", "n2", "s-db", "10.0.1.5", TaskState::Preparing),
            attached("t4", "n2", "s-db", "10.0.1.6", TaskState::Running),
        ] {
            st.tasks.insert(t.id.clone(), t);
        }
        st
    }

    #[test]
    fn an_encrypted_network_carries_the_keys_of_its_peer_nodes() {
        let mut st = store();
        for t in st.tasks.values_mut() {
            t.networks_attachments[0].network.spec.driver_configuration =
                Some(shoal_api::task::Driver { name: "overlay".into(), options: [("encrypted".to_string(), String::new())].into() });
        }
        st.nodes.get_mut("n1").unwrap().description.data_path_key = "key-of-n1".into();
        st.nodes.get_mut("n2").unwrap().description.data_path_key = "key-of-n2".into();
        let v = views(&st, "n1", st.tasks.values().filter(|t| t.node_id == "n1"));
        assert!(v[0].encrypted);
        assert_eq!(v[0].keys, BTreeMap::from([("192.168.77.12".to_string(), "key-of-n2".to_string())]), "the peers' nodes only");
        let st = store();
        let plain = views(&st, "n1", st.tasks.values().filter(|t| t.node_id == "n1"));
        assert!(!plain[0].encrypted && plain[0].keys.is_empty());
    }

    #[test]
    fn a_node_sees_remote_peers_services_and_running_endpoints() {
        let st = store();
        let mine: Vec<&Task> = st.tasks.values().filter(|t| t.node_id == "n1").collect();
        let v = views(&st, "n1", mine.into_iter());
        assert_eq!(v.len(), 1);
        let n = &v[0];
        assert_eq!((n.network_id.as_str(), n.name.as_str()), ("net1", "appnet"));
        let peers: Vec<(&str, &str)> = n.peers.iter().map(|p| (p.addr.as_str(), p.node.as_str())).collect();
        assert_eq!(
            peers,
            [("10.0.1.4", "192.168.77.12"), ("10.0.1.5", "192.168.77.12"), ("10.0.1.6", "192.168.77.12")],
            "a preparing task is a peer already"
        );
        let web = n.services.iter().find(|s| s.name == "web").unwrap();
        assert_eq!((web.vip.as_deref(), web.aliases.clone()), (Some("10.0.1.2"), vec!["www".to_string()]));
        assert_eq!(web.tasks.iter().map(|t| t.addr.as_str()).collect::<Vec<_>>(), ["10.0.1.3", "10.0.1.4"]);
        assert_eq!(web.tasks[0].name, "web.1.t1");
        let db = n.services.iter().find(|s| s.name == "db").unwrap();
        assert_eq!(db.vip, None, "dnsrr has no VIP");
        assert_eq!(db.tasks.iter().map(|t| t.addr.as_str()).collect::<Vec<_>>(), ["10.0.1.6"], "only running tasks answer");
    }

    #[test]
    fn a_task_told_to_stop_leaves_the_endpoints_at_once_and_stays_reachable_until_it_stops() {
        let mut st = store();
        st.tasks.get_mut("t2").unwrap().desired_state = TaskState::Shutdown;
        let mine: Vec<&Task> = st.tasks.values().filter(|t| t.node_id == "n1").collect();
        let v = views(&st, "n1", mine.into_iter());
        let web = v[0].services.iter().find(|s| s.name == "web").unwrap();
        assert_eq!(web.tasks.len(), 1);
        // Still reachable while it drains (its address is still its own)...
        assert!(v[0].peers.iter().any(|p| p.addr == "10.0.1.4"), "{:?}", v[0].peers);
        // ...until it has stopped.
        st.tasks.get_mut("t2").unwrap().status.state = TaskState::Shutdown;
        let v = views(&st, "n1", st.tasks.values().filter(|t| t.node_id == "n1"));
        assert!(v[0].peers.iter().all(|p| p.addr != "10.0.1.4"));
        assert!(views(&st, "n9", std::iter::empty()).is_empty(), "a node with no task on a network sees none");
    }

    #[test]
    fn the_mesh_lists_every_entry_and_each_ingress_port_with_running_tasks() {
        use shoal_api::service::{PortConfig, PublishMode};
        let mut st = store();
        let ingress = Network {
            id: "ing".into(),
            spec: NetworkSpec { name: "ingress".into(), ingress: true, ..Default::default() },
            ..Default::default()
        };
        st.networks.insert("ing".into(), ingress.clone());
        let entry = |addr: &str| vec![NetworkAttachment { network: ingress.clone(), addresses: vec![format!("{addr}/24")] }];
        st.nodes.get_mut("n1").unwrap().attachments = entry("10.0.0.2");
        st.nodes.get_mut("n2").unwrap().attachments = entry("10.0.0.3");
        let web = st.services.get_mut("s-web").unwrap();
        web.endpoint.ports =
            vec![PortConfig { target_port: 80, published_port: 8080, publish_mode: PublishMode::Ingress, ..Default::default() }];
        for (id, addr, state) in [("t1", "10.0.0.7", TaskState::Running), ("t2", "10.0.0.8", TaskState::Starting)] {
            st.tasks
                .get_mut(id)
                .unwrap()
                .networks_attachments
                .push(NetworkAttachment { network: ingress.clone(), addresses: vec![format!("{addr}/24")] });
            st.tasks.get_mut(id).unwrap().status.state = state;
        }

        let m = mesh(&st, "n2").unwrap();
        assert_eq!(m.attachment.addresses, ["10.0.0.3/24"]);
        let entries: Vec<(&str, &str)> = m.entries.iter().map(|e| (e.addr.as_str(), e.node.as_str())).collect();
        assert_eq!(entries, [("10.0.0.2", "192.168.77.11"), ("10.0.0.3", "192.168.77.12")]);
        assert_eq!(m.ports.len(), 1);
        assert_eq!((m.ports[0].protocol.as_str(), m.ports[0].published), ("tcp", 8080));
        assert_eq!(m.ports[0].backends, [("10.0.0.7".to_string(), 80)], "only running tasks are backends");

        // The ingress network reaches the node through its entry: peers are
        // the other node's entry and its tasks there, and no names.
        let none: Vec<&Task> = Vec::new();
        let v = views(&st, "n2", none.into_iter());
        let ing = v.iter().find(|n| n.network_id == "ing").expect("the node's entry brings the ingress network");
        let peers: Vec<&str> = ing.peers.iter().map(|p| p.addr.as_str()).collect();
        assert_eq!(peers, ["10.0.0.2", "10.0.0.7"]);
        assert!(ing.services.is_empty(), "no discovery on ingress");

        st.nodes.get_mut("n2").unwrap().attachments.clear();
        assert!(mesh(&st, "n2").is_none(), "no entry, no mesh");
    }
}
