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

use std::collections::{BTreeMap, BTreeSet};

use shoal_api::service::{ResolutionMode, Service};
use shoal_api::task::{Task, TaskState};
use shoal_rpc::discovery::{NetworkView, Peer, ServiceView, TaskEndpoint};

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
    let networks: BTreeMap<String, (String, bool)> = mine
        .flat_map(|t| t.networks_attachments.iter())
        .map(|a| (a.network.id.clone(), (a.network.spec.name.clone(), a.network.spec.internal)))
        .collect();
    if networks.is_empty() {
        return Vec::new();
    }
    let mut out: BTreeMap<String, NetworkView> = networks
        .iter()
        .map(|(id, (name, internal))| {
            (id.clone(), NetworkView { network_id: id.clone(), name: name.clone(), internal: *internal, ..Default::default() })
        })
        .collect();
    let mut services: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for t in st.tasks.values() {
        if t.status.state.is_terminal() || t.desired_state > TaskState::Complete {
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
            services.entry((a.network.id.clone(), t.service_id.clone())).or_default().insert(t.id.clone());
        }
    }
    for ((network, service_id), task_ids) in services {
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
    for n in &mut v {
        n.peers.sort();
        n.peers.dedup();
    }
    v
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
    fn a_task_told_to_stop_leaves_the_endpoints_at_once() {
        let mut st = store();
        st.tasks.get_mut("t2").unwrap().desired_state = TaskState::Shutdown;
        let mine: Vec<&Task> = st.tasks.values().filter(|t| t.node_id == "n1").collect();
        let v = views(&st, "n1", mine.into_iter());
        let web = v[0].services.iter().find(|s| s.name == "web").unwrap();
        assert_eq!(web.tasks.len(), 1);
        assert!(v[0].peers.iter().all(|p| p.addr != "10.0.1.4"));
        assert!(views(&st, "n9", std::iter::empty()).is_empty(), "a node with no task on a network sees none");
    }
}
