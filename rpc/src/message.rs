//! Requests and responses of the cluster protocol.

use serde::{Deserialize, Serialize};
use shoal_api::NodeDescription;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Request {
    /// A new node asks to join with a token; it sends a CSR and gets a certificate.
    Join(JoinRequest),
    /// The agent's liveness signal; answered by the leader's dispatcher.
    Heartbeat(HeartbeatRequest),
    /// A new certificate for the caller's key (renewal, or a role change).
    RenewCert { csr_pem: String },
    /// Manager-only: propose a store command (a follower forwarding a write).
    /// Kept as raw JSON text here (the command type is the manager's) and
    /// decoded straight into that type, never into a generic JSON tree.
    /// `proposal` is the ID the forwarding manager chose once for this
    /// write; its retries carry the same one (applied at most once).
    Propose {
        #[serde(default)]
        proposal: u64,
        command: Box<serde_json::value::RawValue>,
    },
    /// Manager-only: add the caller to the Raft membership (after promotion).
    JoinRaft { raft_id: u64, addr: String },
    /// Manager-only: remove a Raft member (leave, demotion).
    LeaveRaft { raft_id: u64 },
    /// Manager-only: liveness between managers, for Reachable/Unreachable.
    Ping,
    /// Manager-only: the connection turns into a one-way stream of Raft frames.
    RaftStream,
    /// The tasks assigned to the calling node (leader only). A long poll:
    /// while the node's assignments still hash to `known`, the leader
    /// answers only once they change or `wait_ms` has passed. With `since`
    /// (the `applied` of the last answer) the answer is incremental.
    Assignments {
        #[serde(default)]
        known: u64,
        #[serde(default)]
        wait_ms: u64,
        #[serde(default)]
        since: u64,
    },
    /// Observed task states from the calling node, in one batch (leader only).
    TaskStatus { updates: Vec<TaskStatusUpdate> },
    /// Log streaming; takes over the connection (see `logs`).
    Logs(crate::logs::LogRequest),
    /// Manager-only: the cluster's data key that seals secrets in the Raft
    /// log, for a manager that joined or was promoted.
    SecretsKey,
    /// A standalone container on the calling node joins an attachable
    /// swarm network (`docker run --network`): answered with its address
    /// there (`Attached`).
    AttachNetwork {
        container_id: String,
        /// The container's name: resolvable on the network, as in Docker.
        #[serde(default)]
        name: String,
        network: String,
        #[serde(default)]
        aliases: Vec<String>,
    },
    /// The calling node's container stopped: its attachments go.
    DetachNetwork { container_id: String },
}

/// The only request read from a caller without a certificate.
#[derive(Debug, Deserialize)]
pub enum PreAuthRequest {
    Join(JoinRequest),
}

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

#[derive(Clone, Debug, Serialize, Deserialize)]
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

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Response {
    Ok,
    Error {
        status: u16,
        message: String,
    },
    /// Only the leader answers this call; try there.
    NotLeader {
        leader_addr: Option<String>,
    },
    Joined(JoinResponse),
    Heartbeat(HeartbeatResponse),
    Cert {
        cert_pem: String,
        root_pem: String,
    },
    Proposed {
        result: serde_json::Value,
    },
    Members(Vec<RaftMember>),
    /// Boxed: by far the largest answer (same encoding as unboxed).
    Assignments(Box<Assignments>),
    /// The data key, answered to `SecretsKey`, with the cluster's unlock
    /// key while autolock is on: a manager that joins wraps its keys at
    /// once, before it has caught up with the log that says autolock is on.
    SecretsKey {
        key: KeyText,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unlock_key: Option<KeyText>,
    },
    Pong {
        node_id: String,
    },
    /// A frame of a log stream (see `logs`).
    Logs(crate::logs::LogResponse),
    /// A container's place on a swarm network, answered to `AttachNetwork`.
    Attached(Box<shoal_api::network::NetworkAttachment>),
}

impl Response {
    pub fn error(e: shoal_api::ApiError) -> Response {
        Response::Error { status: e.status, message: e.message }
    }
}
