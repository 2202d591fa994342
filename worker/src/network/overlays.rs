//! The overlay networks this node's tasks are on (see `shoal_overlay::overlay`):
//! a network's sandbox is built when its first task here needs it and
//! removed with its last one; remote endpoints come from the managers
//! (`set_peers`).
//!
//! What a network is comes from the task's attachment, in Docker's shape:
//! the VNI in `DriverState.Options["com.docker.network.driver.overlay.vxlanid_list"]`,
//! subnet and gateway in `IPAMOptions.Configs[0]`, the task's address in
//! `Addresses[0]`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use shoal_api::network::NetworkAttachment;
use shoal_overlay::overlay::{NetworkSpec, NodeConfig, Overlay, Peer};

use super::subnet::Subnet;

pub const VXLANID_OPTION: &str = "com.docker.network.driver.overlay.vxlanid_list";

/// One attachment, read: the network, whether it is internal, and the
/// task's address on it.
#[derive(Clone, Debug, PartialEq)]
pub struct Attachment {
    pub network_id: String,
    pub name: String,
    pub spec: NetworkSpec,
    pub internal: bool,
    /// The routing mesh's network (its tasks get a return path).
    pub ingress: bool,
    /// `--opt encrypted`: built on the node's WireGuard tunnel.
    pub encrypted: bool,
    pub addr: Ipv4Addr,
}

impl Attachment {
    pub fn read(a: &NetworkAttachment) -> Result<Attachment, String> {
        let n = &a.network;
        let name = if n.spec.name.is_empty() { n.id.clone() } else { n.spec.name.clone() };
        let vni = n
            .driver_state
            .as_ref()
            .and_then(|d| d.options.get(VXLANID_OPTION))
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse::<u32>().ok())
            .ok_or_else(|| format!("network {name} has no VXLAN ID allocated"))?;
        let ipam =
            n.ipam_options.as_ref().and_then(|o| o.configs.first()).ok_or_else(|| format!("network {name} has no subnet allocated"))?;
        let subnet: Subnet = ipam.subnet.parse().map_err(|e| format!("network {name}: subnet {:?}: {e}", ipam.subnet))?;
        let gateway: Ipv4Addr = ipam.gateway.parse().map_err(|_| format!("network {name}: bad gateway {:?}", ipam.gateway))?;
        let addr = a
            .addresses
            .first()
            .and_then(|c| c.split('/').next())
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
            .ok_or_else(|| format!("the task has no address on network {name}"))?;
        Ok(Attachment {
            network_id: n.id.clone(),
            name,
            spec: NetworkSpec { vni, subnet, gateway },
            internal: n.spec.internal,
            ingress: n.spec.ingress,
            encrypted: n.is_encrypted(),
            addr,
        })
    }
}

struct Entry {
    overlay: Overlay,
    tasks: BTreeSet<String>,
}

/// This node's overlays, by network ID.
#[derive(Default)]
pub struct Overlays {
    entries: BTreeMap<String, Entry>,
    /// The peers the managers named last, by network (a sandbox made
    /// later, or again, starts with them).
    known_peers: BTreeMap<String, Vec<Peer>>,
}

impl Overlays {
    /// The leg of `task` on the network of `a` (building the network's
    /// sandbox first if this is its first task here).
    pub fn attach(&mut self, cfg: &NodeConfig, task: &str, a: &Attachment, task_ns: &std::fs::File, ifname: &str) -> Result<(), String> {
        if !self.entries.contains_key(&a.network_id) {
            // A network that was removed while its tasks here were still
            // stopping may have left its sandbox, with the VNI the managers
            // have now given to this one (a VNI is free again once its
            // network is gone). Only one device per VNI can exist on the
            // node, and that sandbox would take this one's with it when its
            // last task leaves: it goes now, its tasks lose a network that
            // no longer exists.
            let stale: Vec<String> =
                self.entries.iter().filter(|(_, e)| e.overlay.spec().vni == a.spec.vni).map(|(id, _)| id.clone()).collect();
            for id in stale {
                if let Some(mut e) = self.entries.remove(&id) {
                    tracing::warn!(
                        "network {id}: removed while {} task(s) here still used it; VXLAN ID {} goes to {}",
                        e.tasks.len(),
                        a.spec.vni,
                        a.name
                    );
                    if let Err(err) = e.overlay.destroy() {
                        tracing::warn!("network {id}: {err}");
                    }
                }
            }
        }
        let cfg = if a.encrypted { cfg.encrypted() } else { cfg.clone() };
        let e = self.entry(a, || Overlay::create(&cfg, &a.spec))?;
        e.overlay.attach(task_ns, ifname, &leg_name(task, &a.network_id), a.addr).map_err(|e| format!("network {}: {e}", a.name))?;
        e.tasks.insert(task.to_string());
        Ok(())
    }

    /// The entry of `a`'s network, its sandbox made by `make` (with the
    /// peers known) if it has none here yet, checked against `a`.
    fn entry(&mut self, a: &Attachment, make: impl FnOnce() -> Result<Overlay, String>) -> Result<&mut Entry, String> {
        if !self.entries.contains_key(&a.network_id) {
            let mut overlay = make().map_err(|e| format!("network {}: {e}", a.name))?;
            if let Some(peers) = self.known_peers.get(&a.network_id) {
                overlay.set_peers(peers).map_err(|e| format!("network {}: {e}", a.name))?;
            }
            self.entries.insert(a.network_id.clone(), Entry { overlay, tasks: BTreeSet::new() });
        }
        let e = self.entries.get_mut(&a.network_id).expect("inserted above");
        if e.overlay.spec() != &a.spec {
            return Err(format!("network {}: allocated as {:?} here and {:?} for this task", a.name, e.overlay.spec(), a.spec));
        }
        Ok(e)
    }

    /// Puts `task`, whose leg on the network of `a` outlived a daemon
    /// restart, back on it (taking over the network's sandbox first if it
    /// is the first such task).
    pub fn adopt(&mut self, cfg: &NodeConfig, task: &str, a: &Attachment) -> Result<(), String> {
        let e = self.entry(a, || Overlay::adopt(cfg, &a.spec))?;
        e.tasks.insert(task.to_string());
        Ok(())
    }

    /// Takes `task` off every network; a network with no task left here
    /// loses its sandbox.
    pub fn detach(&mut self, task: &str) {
        let mut empty = Vec::new();
        for (id, e) in self.entries.iter_mut() {
            if e.tasks.remove(task) {
                if let Err(err) = e.overlay.detach(&leg_name(task, id)) {
                    tracing::warn!("task {task}: {err}");
                }
                if e.tasks.is_empty() {
                    empty.push(id.clone());
                }
            }
        }
        for id in empty {
            if let Some(mut e) = self.entries.remove(&id) {
                if let Err(err) = e.overlay.destroy() {
                    tracing::warn!("network {id}: {err}");
                }
            }
        }
    }

    /// The remote endpoints of network `id` (kept for a sandbox made later).
    pub fn set_peers(&mut self, id: &str, peers: Vec<Peer>) -> Result<usize, String> {
        let changed = match self.entries.get_mut(id) {
            Some(e) => e.overlay.set_peers(&peers),
            None => Ok(0),
        };
        self.known_peers.insert(id.to_string(), peers);
        changed
    }

    /// Each task here on an overlay, with its networks.
    pub fn tasks(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (id, e) in &self.entries {
            for t in &e.tasks {
                out.entry(t.clone()).or_default().push(id.clone());
            }
        }
        out
    }

    /// Networks with a sandbox here.
    pub fn networks(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    /// Removes every sandbox (shutdown).
    pub fn clear(&mut self) {
        for (id, mut e) in std::mem::take(&mut self.entries) {
            if let Err(err) = e.overlay.destroy() {
                tracing::warn!("network {id}: {err}");
            }
        }
        self.known_peers.clear();
    }
}

/// The bridge-side veth of `task` on network `network`: unique in the
/// sandbox, 15 characters at most.
pub fn leg_name(task: &str, network: &str) -> String {
    format!("ov{:08x}", super::fnv32(format!("{task}/{network}").as_bytes()))
}

/// Attachments in Docker's shape, for tests here and in `network::tests`.
#[cfg(test)]
pub mod tests {
    use super::*;
    use shoal_api::network::{IpamConfig, IpamOptions, Network, NetworkSpec as ApiSpec};
    use shoal_api::task::Driver;

    pub fn attachment(id: &str, vni: u32, subnet: &str, gateway: &str, addr: &str) -> NetworkAttachment {
        NetworkAttachment {
            network: Network {
                id: id.into(),
                spec: ApiSpec { name: format!("net-{id}"), ..Default::default() },
                driver_state: Some(Driver { name: "overlay".into(), options: [(VXLANID_OPTION.to_string(), vni.to_string())].into() }),
                ipam_options: Some(IpamOptions {
                    driver: Driver { name: "default".into(), ..Default::default() },
                    configs: vec![IpamConfig { subnet: subnet.into(), gateway: gateway.into(), ..Default::default() }],
                }),
                ..Default::default()
            },
            addresses: vec![addr.into()],
        }
    }

    #[test]
    fn attachments_are_read_from_dockers_fields() {
        let a = Attachment::read(&attachment("n1", 4097, "10.0.1.0/24", "10.0.1.1", "10.0.1.5/24")).unwrap();
        assert_eq!(
            (a.spec.vni, a.spec.subnet.to_string(), a.spec.gateway, a.addr),
            (4097, "10.0.1.0/24".into(), Ipv4Addr::new(10, 0, 1, 1), Ipv4Addr::new(10, 0, 1, 5))
        );
        let mut no_vni = attachment("n1", 1, "10.0.1.0/24", "10.0.1.1", "10.0.1.5/24");
        no_vni.network.driver_state = None;
        assert_eq!(Attachment::read(&no_vni).unwrap_err(), "network net-n1 has no VXLAN ID allocated");
        let mut no_addr = attachment("n1", 1, "10.0.1.0/24", "10.0.1.1", "");
        no_addr.addresses.clear();
        assert_eq!(Attachment::read(&no_addr).unwrap_err(), "the task has no address on network net-n1");
    }

    #[test]
    fn leg_names_fit_the_kernels_limit_and_differ_per_network() {
        assert_eq!(leg_name("task1", "net1").len(), 10);
        assert_ne!(leg_name("task1", "net1"), leg_name("task1", "net2"));
    }
}
