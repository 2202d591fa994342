//! API errors: an HTTP status and Docker's `{"message": ...}` body.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into() }
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(400, m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(404, m)
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(409, m)
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(500, m)
    }
    pub fn unavailable(m: impl Into<String>) -> Self {
        Self::new(503, m)
    }
    /// Docker's answer to a manager-only call on a worker or inactive node.
    pub fn not_manager() -> Self {
        Self::unavailable(
            "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.",
        )
    }
    /// Docker's answer when the node is not part of a swarm at all.
    /// A manager restarted with autolock on, before `swarm unlock`.
    pub fn swarm_locked() -> Self {
        Self::unavailable(
            "Swarm is encrypted and needs to be unlocked before it can be used. Please use \"docker swarm unlock\" to unlock it.",
        )
    }

    pub fn not_in_swarm() -> Self {
        Self::unavailable(
            "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.",
        )
    }
    /// Docker's answer when a write cannot reach a Raft leader.
    pub fn no_leader() -> Self {
        Self::unavailable(
            "rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online.",
        )
    }
    /// Optimistic-concurrency failure (`?version=` is stale).
    pub fn out_of_sequence() -> Self {
        Self::internal("rpc error: code = Unknown desc = update out of sequence")
    }
    pub fn body(&self) -> String {
        serde_json::json!({ "message": self.message }).to_string()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}
