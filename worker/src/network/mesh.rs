//! This node's part of the routing mesh (see `shoal_overlay::mesh`): its
//! entry (a leg from the node's own namespace onto the ingress network,
//! and the `<nft_table>-mesh` table that sends published ports to tasks
//! anywhere in the cluster), and the return path inside each of its tasks
//! on the ingress network (one rule per entry node).
//!
//! All of it follows the managers' `MeshView`: the entry is made when the
//! node first gets its ingress address and goes when the view does.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use shoal_overlay::mesh::{self, Backends, PortKey, ReturnPath};
use shoal_rpc::discovery::MeshView;

/// The pseudo-task that holds the node's entry leg in `Overlays` (so the
/// ingress sandbox stays while the node is in the mesh, tasks or not).
pub const ENTRY: &str = "mesh-entry";

/// The entry as it is on this node.
pub struct Entry {
    pub network_id: String,
    pub addr: Ipv4Addr,
    /// What the entry table holds now.
    pub ports: BTreeMap<PortKey, Backends>,
}

/// The view's ports, read.
pub fn ports_of(view: &MeshView) -> BTreeMap<PortKey, Backends> {
    view.ports
        .iter()
        .map(|p| {
            let backends = p.backends.iter().filter_map(|(a, port)| Some((a.parse().ok()?, *port))).collect();
            ((p.protocol.clone(), p.published), backends)
        })
        .collect()
}

/// The view's entry nodes (their ingress addresses).
pub fn entries_of(view: &MeshView) -> BTreeSet<Ipv4Addr> {
    view.entries.iter().filter_map(|e| e.addr.parse().ok()).collect()
}

/// The entry table's text from `have` to `want`, starting with the table
/// itself when `fresh`.
pub fn entry_text(table: &str, leg: &str, fresh: bool, have: &BTreeMap<PortKey, Backends>, want: &BTreeMap<PortKey, Backends>) -> String {
    let mut text = if fresh { mesh::entry_ruleset(table, leg) } else { String::new() };
    if let Some(p) = mesh::plan(table, have, want) {
        text.push_str(&p);
    }
    text
}

/// The return paths of this node's tasks on the ingress network, with the
/// network each is on (a replaced ingress network's tasks keep theirs).
#[derive(Default)]
pub struct ReturnPaths {
    paths: BTreeMap<String, (String, ReturnPath)>,
}

impl ReturnPaths {
    /// Sets up `task`'s return path on leg `ifname` of ingress network
    /// `network` with rules for `entries` (none if the view is of another
    /// ingress network).
    pub fn add(&mut self, task: &str, network: &str, ns: &std::fs::File, ifname: &str, entries: &BTreeSet<Ipv4Addr>) -> Result<(), String> {
        let mut path = ReturnPath::install(ns, ifname)?;
        path.set_entries(ns, entries)?;
        self.paths.insert(task.to_string(), (network.to_string(), path));
        Ok(())
    }

    pub fn remove(&mut self, task: &str) {
        self.paths.remove(task);
    }

    /// The rules of every task on ingress network `network` made to match
    /// `entries` (`ns_of` opens a task's namespace).
    pub fn update(&mut self, network: &str, entries: &BTreeSet<Ipv4Addr>, ns_of: impl Fn(&str) -> Result<std::fs::File, String>) {
        for (task, (on, path)) in self.paths.iter_mut() {
            if on != network || &path.entries == entries {
                continue;
            }
            if let Err(e) = ns_of(task).and_then(|ns| path.set_entries(&ns, entries)) {
                tracing::warn!("task {task}: routing mesh replies: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_rpc::discovery::{MeshEntry, MeshPort};

    #[test]
    fn the_view_is_read_into_ports_and_entries() {
        let view = MeshView {
            entries: vec![MeshEntry { addr: "10.0.0.2".into(), node: "192.168.77.11".into() }],
            ports: vec![MeshPort { protocol: "tcp".into(), published: 8080, backends: vec![("10.0.0.5".into(), 80)] }],
            ..Default::default()
        };
        assert_eq!(ports_of(&view)[&("tcp".to_string(), 8080)], vec![(Ipv4Addr::new(10, 0, 0, 5), 80)]);
        assert_eq!(entries_of(&view), BTreeSet::from([Ipv4Addr::new(10, 0, 0, 2)]));
        let t = entry_text("t", "sig-x", true, &BTreeMap::new(), &ports_of(&view));
        assert!(t.starts_with("table ip t\ndelete table ip t\n") && t.contains("tcp . 8080 : jump p-tcp-8080"), "{t}");
        assert_eq!(entry_text("t", "sig-x", false, &ports_of(&view), &ports_of(&view)), "");
    }
}
