//! The internal cluster protocol, spoken on port 2377 over mutual TLS.
//!
//! It is ours, not SwarmKit's gRPC: a connection carries length-prefixed
//! frames, each either a JSON request/response or a raw Raft message. A
//! joining node connects without a client certificate (it has none yet) and
//! may only call `Join`; every other call needs a node certificate, and the
//! manager-only calls need a manager one (checked by the server from the
//! peer certificate, see `server::Peer`).

pub mod assignments;
pub mod client;
pub mod credentials;
pub mod discovery;
pub mod frame;
#[cfg(test)]
mod fuzz_tests;
pub mod logs;
pub mod message;
pub mod server;
pub mod unlock;

pub use message::*;

/// The TLS server name every manager certificate carries.
pub const MANAGER_SERVER_NAME: &str = "swarm-manager";
