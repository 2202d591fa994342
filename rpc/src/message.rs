//! The protocol's requests and answers as the manager and the agent use
//! them (`convert` maps them to and from `wire`).

use serde::{Deserialize, Serialize};
use shoal_api::NodeDescription;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskStatusUpdate {
    pub task_id: String,
    pub status: shoal_api::task::TaskStatus,
}

/// What a node must run: the complete set of its tasks, with the secrets
/// (decrypted: this travels only over the node's mutual-TLS session) and
/// configs those tasks reference, and nothing else.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Assignments {
    pub tasks: Vec<shoal_api::task::Task>,
    #[serde(default)]
    pub secrets: Vec<shoal_api::secret::Secret>,
    #[serde(default)]
    pub configs: Vec<shoal_api::secret::Config>,
    /// Hash of the node's whole task set (see `assignments::digest`).
    #[serde(default)]
    pub digest: u64,
    /// `tasks` holds only what changed since the request's `since`.
    #[serde(default)]
    pub incremental: bool,
    /// The leader's applied index when the set was read.
    #[serde(default)]
    pub applied: u64,
    /// `X-Registry-Auth` values by service ID, for tasks still to pull
    /// their image (`--with-registry-auth`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub registry_auth: std::collections::BTreeMap<String, String>,
    /// The overlay networks of the node's tasks: peers, services, names
    /// (complete in every answer; folded into `digest`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<crate::discovery::NetworkView>,
    /// Host-mode published ports of the node's tasks, by task ID
    /// (complete in every answer; folded into `digest`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub host_ports: std::collections::BTreeMap<String, Vec<shoal_api::service::PortConfig>>,
    /// The routing mesh (complete in every answer; folded into `digest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<Box<crate::discovery::MeshView>>,
    /// Service names by ID, for the services of the node's tasks (their
    /// containers are named after them). Names never change, so they are
    /// not part of `digest`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub service_names: std::collections::BTreeMap<String, String>,
    /// Service labels by ID, for the services of the node's tasks that
    /// have any (`{{.Service.Labels}}` in templates); read at task start,
    /// so not part of `digest` either.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub service_labels: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
}

/// Key material as text (base64); `{:?}` never prints it.
#[derive(Clone, Serialize, Deserialize)]
pub struct KeyText(pub String);

impl std::fmt::Debug for KeyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyText(<redacted>)")
    }
}

/// `Debug` leaves the token out (a join token is a credential).
#[derive(Clone, Serialize, Deserialize)]
pub struct JoinRequest {
    pub token: String,
    pub csr_pem: String,
    /// The address other nodes reach this node at (`--advertise-addr`), host only.
    pub advertise_addr: String,
    /// For a manager: its cluster address (host:port) and Raft ID.
    pub raft_addr: String,
    pub raft_id: u64,
    pub description: NodeDescription,
}

impl std::fmt::Debug for JoinRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinRequest")
            .field("token", &"<redacted>")
            .field("advertise_addr", &self.advertise_addr)
            .field("raft_addr", &self.raft_addr)
            .field("raft_id", &self.raft_id)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JoinResponse {
    pub node_id: String,
    pub cluster_id: String,
    pub role: shoal_api::Role,
    pub cert_pem: String,
    pub root_pem: String,
    pub managers: Vec<RaftMember>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftMember {
    pub raft_id: u64,
    pub node_id: String,
    pub addr: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    pub addr: String,
    /// Sent on the first heartbeat of a session and whenever it changes.
    pub description: Option<NodeDescription>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    /// Nanoseconds until the next heartbeat is due.
    pub period_ns: i64,
    pub desired_role: shoal_api::Role,
    pub managers: Vec<RaftMember>,
    /// The current root CA; a node whose certificate chains elsewhere renews.
    pub root_pem: String,
    /// The version of the node's record in the store once it is Ready, at
    /// the reported address, with every description the node reported
    /// written; `None` while something is still to be written (a later
    /// heartbeat writes it). `swarm init`/`join` answer after this.
    #[serde(default)]
    pub registered: Option<u64>,
}
