//! What the scheduler knows of a node: the attributes filters and
//! constraints read, and its total resources.
//!
//! What tasks hold on the node (counts, reservations, host ports, generic
//! resources) is not here but in the scheduler's dense per-node arrays
//! (`load.rs`), because the hot loop reads those for every candidate and a
//! `NodeInfo` with its strings and maps would cost a cache miss each.

use std::collections::BTreeMap;

use shoal_api::task::GenericResource;
use shoal_api::{Availability, Node, NodeState, Platform, Role};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeInfo {
    pub id: String,
    pub hostname: String,
    /// `Status.Addr`, which `node.ip` constraints test.
    pub addr: String,
    pub role: Role,
    pub state: NodeState,
    pub availability: Availability,
    pub platform: Platform,
    /// `Spec.Labels` (`node.labels.*`).
    pub labels: BTreeMap<String, String>,
    /// `Description.Engine.Labels` (`engine.labels.*`).
    pub engine_labels: BTreeMap<String, String>,
    /// `Description.Resources`: the node's totals, before any reservation.
    pub nano_cpus: i64,
    pub memory_bytes: i64,
    /// The node's generic resources (`--node-generic-resource`), totals.
    pub generic_resources: Vec<GenericResource>,
}

impl NodeInfo {
    /// A ready, active worker with nothing else set (tests, benchmarks).
    pub fn new(id: &str) -> Self {
        NodeInfo { id: id.to_string(), state: NodeState::Ready, availability: Availability::Active, ..Default::default() }
    }

    /// From the store's Node. `Node` has no generic resources yet; set
    /// `generic_resources` afterwards when it does.
    pub fn from_node(n: &Node) -> Self {
        NodeInfo {
            id: n.id.clone(),
            hostname: n.description.hostname.clone(),
            addr: n.status.addr.clone(),
            role: n.spec.role,
            state: n.status.state,
            availability: n.spec.availability,
            platform: n.description.platform.clone(),
            labels: n.spec.labels.clone(),
            engine_labels: n.description.engine.labels.clone(),
            nano_cpus: n.description.resources.nano_cpus,
            memory_bytes: n.description.resources.memory_bytes,
            generic_resources: Vec::new(),
        }
    }

    /// The readiness filter: only ready, active nodes get new tasks (drained
    /// and paused nodes, and down or disconnected ones, do not).
    pub fn accepts_tasks(&self) -> bool {
        self.state == NodeState::Ready && self.availability == Availability::Active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_node_reads_what_filters_use() {
        let mut n = Node { id: "x".into(), ..Default::default() };
        n.description.hostname = "h".into();
        n.description.platform.os = "linux".into();
        n.description.resources.nano_cpus = 2_000_000_000;
        n.description.engine.labels.insert("e".into(), "1".into());
        n.spec.labels.insert("zone".into(), "a".into());
        n.spec.role = Role::Manager;
        n.status.state = NodeState::Ready;
        n.status.addr = "10.0.0.1".into();
        let i = NodeInfo::from_node(&n);
        assert_eq!((i.id.as_str(), i.hostname.as_str(), i.addr.as_str()), ("x", "h", "10.0.0.1"));
        assert_eq!(i.role, Role::Manager);
        assert_eq!(i.nano_cpus, 2_000_000_000);
        assert_eq!(i.labels["zone"], "a");
        assert_eq!(i.engine_labels["e"], "1");
        assert!(i.accepts_tasks());
    }

    #[test]
    fn drained_paused_and_down_nodes_take_no_tasks() {
        let mut n = NodeInfo::new("a");
        assert!(n.accepts_tasks());
        n.availability = Availability::Drain;
        assert!(!n.accepts_tasks());
        n.availability = Availability::Pause;
        assert!(!n.accepts_tasks());
        n.availability = Availability::Active;
        n.state = NodeState::Down;
        assert!(!n.accepts_tasks());
        n.state = NodeState::Unknown;
        assert!(!n.accepts_tasks());
    }
}
