//! The messages of the cluster protocol, as prost structs: this file is the
//! protocol's schema (package `shoal.cluster.v1`; the services are declared
//! in `build.rs`).
//!
//! Rules that keep neighbouring versions talking during a rolling upgrade:
//! a field's number never changes and is never reused; a new field is
//! optional in meaning (its zero value means "not sent"); an unknown field
//! is skipped by the reader. Objects of the Docker object model (a task, a
//! node description, a secret...) travel as their Docker JSON in a `bytes`
//! field: their schema is Docker's, and serde reads a newer one leniently
//! (unknown members are ignored, missing ones take their defaults).

use std::collections::BTreeMap;

/// An answer with nothing in it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Empty {}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Role {
    Worker = 0,
    Manager = 1,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Member {
    #[prost(uint64, tag = "1")]
    pub raft_id: u64,
    #[prost(string, tag = "2")]
    pub node_id: String,
    #[prost(string, tag = "3")]
    pub addr: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Members {
    #[prost(message, repeated, tag = "1")]
    pub members: Vec<Member>,
}

// ---- Join ----

/// `Debug` leaves the token out.
#[derive(Clone, PartialEq, prost::Message)]
#[prost(skip_debug)]
pub struct JoinRequest {
    #[prost(string, tag = "1")]
    pub token: String,
    #[prost(string, tag = "2")]
    pub csr_pem: String,
    #[prost(string, tag = "3")]
    pub advertise_addr: String,
    #[prost(string, tag = "4")]
    pub raft_addr: String,
    #[prost(uint64, tag = "5")]
    pub raft_id: u64,
    /// A `NodeDescription`, as JSON.
    #[prost(bytes = "vec", tag = "6")]
    pub description: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct JoinResponse {
    #[prost(string, tag = "1")]
    pub node_id: String,
    #[prost(string, tag = "2")]
    pub cluster_id: String,
    #[prost(enumeration = "Role", tag = "3")]
    pub role: i32,
    #[prost(string, tag = "4")]
    pub cert_pem: String,
    #[prost(string, tag = "5")]
    pub root_pem: String,
    #[prost(message, repeated, tag = "6")]
    pub managers: Vec<Member>,
}

// ---- Dispatcher ----

#[derive(Clone, PartialEq, prost::Message)]
pub struct HeartbeatRequest {
    #[prost(string, tag = "1")]
    pub addr: String,
    /// A `NodeDescription` as JSON; empty when unchanged since the last one.
    #[prost(bytes = "vec", tag = "2")]
    pub description: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HeartbeatResponse {
    #[prost(int64, tag = "1")]
    pub period_ns: i64,
    #[prost(enumeration = "Role", tag = "2")]
    pub desired_role: i32,
    #[prost(message, repeated, tag = "3")]
    pub managers: Vec<Member>,
    #[prost(string, tag = "4")]
    pub root_pem: String,
    #[prost(uint64, optional, tag = "5")]
    pub registered: Option<u64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RenewCertRequest {
    #[prost(string, tag = "1")]
    pub csr_pem: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CertResponse {
    #[prost(string, tag = "1")]
    pub cert_pem: String,
    #[prost(string, tag = "2")]
    pub root_pem: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AssignmentsRequest {
    #[prost(uint64, tag = "1")]
    pub known: u64,
    #[prost(uint64, tag = "2")]
    pub wait_ms: u64,
    #[prost(uint64, tag = "3")]
    pub since: u64,
}

/// `PortConfig`s of one task, each as JSON.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Ports {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub ports: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Labels {
    #[prost(btree_map = "string, string", tag = "1")]
    pub labels: BTreeMap<String, String>,
}

/// What a node must run (see `crate::Assignments`). Tasks, secrets,
/// configs and network views are each one JSON object.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Assignments {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub tasks: Vec<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub secrets: Vec<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub configs: Vec<Vec<u8>>,
    #[prost(uint64, tag = "4")]
    pub digest: u64,
    #[prost(bool, tag = "5")]
    pub incremental: bool,
    #[prost(uint64, tag = "6")]
    pub applied: u64,
    #[prost(btree_map = "string, string", tag = "7")]
    pub registry_auth: BTreeMap<String, String>,
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub networks: Vec<Vec<u8>>,
    #[prost(btree_map = "string, message", tag = "9")]
    pub host_ports: BTreeMap<String, Ports>,
    /// A `MeshView` as JSON; empty for none.
    #[prost(bytes = "vec", tag = "10")]
    pub mesh: Vec<u8>,
    #[prost(btree_map = "string, string", tag = "11")]
    pub service_names: BTreeMap<String, String>,
    #[prost(btree_map = "string, message", tag = "12")]
    pub service_labels: BTreeMap<String, Labels>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskStatusUpdate {
    #[prost(string, tag = "1")]
    pub task_id: String,
    /// A `TaskStatus`, as JSON.
    #[prost(bytes = "vec", tag = "2")]
    pub status: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskStatusRequest {
    #[prost(message, repeated, tag = "1")]
    pub updates: Vec<TaskStatusUpdate>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AttachNetworkRequest {
    #[prost(string, tag = "1")]
    pub container_id: String,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, tag = "3")]
    pub network: String,
    #[prost(string, repeated, tag = "4")]
    pub aliases: Vec<String>,
}

/// A `NetworkAttachment`, as JSON.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Attachment {
    #[prost(bytes = "vec", tag = "1")]
    pub attachment: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DetachNetworkRequest {
    #[prost(string, tag = "1")]
    pub container_id: String,
}

// ---- Logs (see `crate::logs`) ----

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum LogStream {
    Stdout = 0,
    Stderr = 1,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LogOptions {
    #[prost(bool, tag = "1")]
    pub follow: bool,
    #[prost(uint64, optional, tag = "2")]
    pub tail: Option<u64>,
    /// Nanoseconds since the epoch.
    #[prost(int64, optional, tag = "3")]
    pub since_unix_nanos: Option<i64>,
    #[prost(bool, tag = "4")]
    pub stdout: bool,
    #[prost(bool, tag = "5")]
    pub stderr: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LogSubscription {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, repeated, tag = "2")]
    pub task_ids: Vec<String>,
    #[prost(message, optional, tag = "3")]
    pub options: Option<LogOptions>,
    #[prost(bool, tag = "4")]
    pub close: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LogLine {
    #[prost(string, tag = "1")]
    pub task_id: String,
    #[prost(enumeration = "LogStream", tag = "2")]
    pub stream: i32,
    #[prost(string, tag = "3")]
    pub time: String,
    #[prost(string, tag = "4")]
    pub data: String,
}

/// One message of a `LogPublish` stream: every message names the
/// subscription (the first one decides).
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogBatch {
    #[prost(string, tag = "1")]
    pub subscription_id: String,
    #[prost(message, repeated, tag = "2")]
    pub lines: Vec<LogLine>,
    #[prost(bool, tag = "3")]
    pub done: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LogPruneRequest {
    #[prost(string, repeated, tag = "1")]
    pub task_ids: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LogPruneResponse {
    #[prost(string, repeated, tag = "1")]
    pub gone: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LogSubscribeRequest {
    #[prost(string, repeated, tag = "1")]
    pub service_ids: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub task_ids: Vec<String>,
    #[prost(message, optional, tag = "3")]
    pub options: Option<LogOptions>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LogMessage {
    #[prost(string, tag = "1")]
    pub node_id: String,
    #[prost(string, tag = "2")]
    pub service_id: String,
    #[prost(message, optional, tag = "3")]
    pub line: Option<LogLine>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LogMessages {
    #[prost(message, repeated, tag = "1")]
    pub messages: Vec<LogMessage>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LogEnd {
    #[prost(string, optional, tag = "1")]
    pub warning: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LogEvent {
    #[prost(oneof = "log_event::Kind", tags = "1, 2")]
    pub kind: Option<log_event::Kind>,
}

pub mod log_event {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(message, tag = "1")]
        Messages(super::LogMessages),
        #[prost(message, tag = "2")]
        End(super::LogEnd),
    }
}

// ---- Managers ----

#[derive(Clone, PartialEq, prost::Message)]
pub struct ProposeRequest {
    /// Chosen once by the forwarding manager; its retries carry the same
    /// one (the write is applied at most once).
    #[prost(uint64, tag = "1")]
    pub proposal: u64,
    /// The manager's store command, as JSON (the Raft log's own encoding).
    #[prost(bytes = "vec", tag = "2")]
    pub command: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ProposeResponse {
    /// What applying the command returned, as JSON.
    #[prost(bytes = "vec", tag = "1")]
    pub result: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct JoinRaftRequest {
    #[prost(uint64, tag = "1")]
    pub raft_id: u64,
    #[prost(string, tag = "2")]
    pub addr: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LeaveRaftRequest {
    #[prost(uint64, tag = "1")]
    pub raft_id: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Pong {
    #[prost(string, tag = "1")]
    pub node_id: String,
}

/// Key material as text; `Debug` leaves it out.
#[derive(Clone, PartialEq, prost::Message)]
#[prost(skip_debug)]
pub struct SecretsKeyResponse {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, optional, tag = "2")]
    pub unlock_key: Option<String>,
}

/// A piece of an encoded `RaftMessage`: messages larger than one gRPC
/// message (a snapshot of a big store) go in several, all but the last
/// with `more`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RaftPiece {
    #[prost(bytes = "vec", tag = "1")]
    pub data: Vec<u8>,
    #[prost(bool, tag = "2")]
    pub more: bool,
}

/// raft-rs's `eraftpb.Message`, field for field with the same numbers, so
/// Raft traffic is decoded by prost: raft-rs 0.7 itself still links the
/// `protobuf` 2 crate (CVE-2025-53605), but no byte from the network
/// reaches that crate's parser.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RaftMessage {
    #[prost(int32, tag = "1")]
    pub msg_type: i32,
    #[prost(uint64, tag = "2")]
    pub to: u64,
    #[prost(uint64, tag = "3")]
    pub from: u64,
    #[prost(uint64, tag = "4")]
    pub term: u64,
    #[prost(uint64, tag = "5")]
    pub log_term: u64,
    #[prost(uint64, tag = "6")]
    pub index: u64,
    #[prost(message, repeated, tag = "7")]
    pub entries: Vec<RaftEntry>,
    #[prost(uint64, tag = "8")]
    pub commit: u64,
    #[prost(message, optional, tag = "9")]
    pub snapshot: Option<RaftSnapshot>,
    #[prost(bool, tag = "10")]
    pub reject: bool,
    #[prost(uint64, tag = "11")]
    pub reject_hint: u64,
    #[prost(bytes = "bytes", tag = "12")]
    pub context: bytes::Bytes,
    #[prost(uint64, tag = "13")]
    pub request_snapshot: u64,
    #[prost(uint64, tag = "14")]
    pub deprecated_priority: u64,
    #[prost(uint64, tag = "15")]
    pub commit_term: u64,
    #[prost(int64, tag = "16")]
    pub priority: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RaftEntry {
    #[prost(int32, tag = "1")]
    pub entry_type: i32,
    #[prost(uint64, tag = "2")]
    pub term: u64,
    #[prost(uint64, tag = "3")]
    pub index: u64,
    #[prost(bytes = "bytes", tag = "4")]
    pub data: bytes::Bytes,
    #[prost(bytes = "bytes", tag = "6")]
    pub context: bytes::Bytes,
    #[prost(bool, tag = "5")]
    pub sync_log: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RaftSnapshot {
    #[prost(bytes = "bytes", tag = "1")]
    pub data: bytes::Bytes,
    #[prost(message, optional, tag = "2")]
    pub metadata: Option<RaftSnapshotMetadata>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RaftSnapshotMetadata {
    #[prost(message, optional, tag = "1")]
    pub conf_state: Option<RaftConfState>,
    #[prost(uint64, tag = "2")]
    pub index: u64,
    #[prost(uint64, tag = "3")]
    pub term: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RaftConfState {
    #[prost(uint64, repeated, tag = "1")]
    pub voters: Vec<u64>,
    #[prost(uint64, repeated, tag = "2")]
    pub learners: Vec<u64>,
    #[prost(uint64, repeated, tag = "3")]
    pub voters_outgoing: Vec<u64>,
    #[prost(uint64, repeated, tag = "4")]
    pub learners_next: Vec<u64>,
    #[prost(bool, tag = "5")]
    pub auto_leave: bool,
}

impl std::fmt::Debug for JoinRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinRequest")
            .field("token", &"<redacted>")
            .field("advertise_addr", &self.advertise_addr)
            .field("raft_addr", &self.raft_addr)
            .field("raft_id", &self.raft_id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SecretsKeyResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKeyResponse(<redacted>)")
    }
}

/// raft-rs's `eraftpb.ConfChange`, the payload of a membership-change
/// entry (which reaches followers inside a `RaftMessage`'s entries), read
/// by prost for the same reason.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RaftConfChange {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(int32, tag = "2")]
    pub change_type: i32,
    #[prost(uint64, tag = "3")]
    pub node_id: u64,
    #[prost(bytes = "bytes", tag = "4")]
    pub context: bytes::Bytes,
}

/// The generated services (see `build.rs`).
pub mod join {
    include!(concat!(env!("OUT_DIR"), "/shoal.cluster.v1.Join.rs"));
}
pub mod dispatcher {
    include!(concat!(env!("OUT_DIR"), "/shoal.cluster.v1.Dispatcher.rs"));
}
pub mod managers {
    include!(concat!(env!("OUT_DIR"), "/shoal.cluster.v1.Managers.rs"));
}
