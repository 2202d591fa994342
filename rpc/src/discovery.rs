//! What a node's tasks see of their overlay networks, sent with every
//! assignments answer (complete each time; it is small): for each network
//! a task here is on, the endpoints on other nodes (for the VXLAN peers)
//! and the services on it (for DNS and VIP balancing).
//!
//! Its hash is folded into the assignments digest, so the long poll
//! answers as soon as the view changes, not only when this node's own
//! tasks do: a task starting or stopping elsewhere reaches every node's
//! resolver and balancer within one round trip.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkView {
    pub network_id: String,
    pub name: String,
    #[serde(default)]
    pub internal: bool,
    /// `--opt encrypted`: its VXLAN travels inside WireGuard, to the nodes
    /// in `keys` (data path address -> public key) and to no other.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub encrypted: bool,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub keys: std::collections::BTreeMap<String, String>,
    /// Task endpoints on other nodes: where VXLAN sends their frames.
    #[serde(default)]
    pub peers: Vec<Peer>,
    #[serde(default)]
    pub services: Vec<ServiceView>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Peer {
    /// The task's address on the network.
    pub addr: String,
    /// Its node's data path address.
    pub node: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceView {
    pub id: String,
    pub name: String,
    /// The service's aliases on this network.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The VIP on this network; None with `--endpoint-mode dnsrr`.
    #[serde(default)]
    pub vip: Option<String>,
    /// Running tasks: DNS names and balancer backends.
    #[serde(default)]
    pub tasks: Vec<TaskEndpoint>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskEndpoint {
    /// Docker's task name, `<service>.<slot>.<task id>`.
    pub name: String,
    pub addr: String,
}

/// The routing mesh as one node needs it (sent with every assignments
/// answer, complete, when the cluster has an ingress network and the node
/// an address on it): where published ports lead, and how to send replies
/// back through the node a connection came in by.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MeshView {
    /// The ingress network and this node's address on it, in Docker's shape.
    pub attachment: shoal_api::network::NetworkAttachment,
    /// Every node's entry into the mesh, this one's included.
    #[serde(default)]
    pub entries: Vec<MeshEntry>,
    /// Every ingress-published port of the cluster.
    #[serde(default)]
    pub ports: Vec<MeshPort>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MeshEntry {
    /// The node's address on the ingress network.
    pub addr: String,
    /// Its data path address.
    pub node: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MeshPort {
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    pub published: u32,
    /// The service's running tasks: (address on the ingress network, target port).
    #[serde(default)]
    pub backends: Vec<(String, u32)>,
}

/// FNV-1a of the views' JSON (stable across versions that agree on the
/// shape), never 0.
pub fn digest(views: &[NetworkView]) -> u64 {
    if views.is_empty() {
        return 0;
    }
    json_digest(views).max(1)
}

/// FNV-1a of a value's JSON.
fn json_digest<T: serde::Serialize + ?Sized>(v: &T) -> u64 {
    let mut h = crate::assignments::Fnv64::default();
    h.eat(&serde_json::to_vec(v).unwrap_or_default());
    h.finish()
}

/// The assignments digest: the task set's, with the views folded in.
pub fn combined(tasks: u64, views: &[NetworkView]) -> u64 {
    match digest(views) {
        0 => tasks,
        v => (tasks ^ v.rotate_left(17)).max(1),
    }
}

/// `combined`, with the host-mode ports of the node's tasks folded in too.
pub fn combined_with_ports(
    tasks: u64,
    views: &[NetworkView],
    ports: &std::collections::BTreeMap<String, Vec<shoal_api::service::PortConfig>>,
) -> u64 {
    let base = combined(tasks, views);
    if ports.is_empty() {
        return base;
    }
    (base ^ json_digest(ports).rotate_left(29)).max(1)
}

/// `combined_with_ports`, with the mesh view folded in too.
pub fn combined_with_mesh(
    tasks: u64,
    views: &[NetworkView],
    ports: &std::collections::BTreeMap<String, Vec<shoal_api::service::PortConfig>>,
    mesh: Option<&MeshView>,
) -> u64 {
    let base = combined_with_ports(tasks, views, ports);
    match mesh {
        None => base,
        Some(m) => (base ^ json_digest(m).rotate_left(41)).max(1),
    }
}
