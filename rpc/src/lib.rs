//! The internal cluster protocol, spoken on port 2377: gRPC (tonic, with
//! prost messages) over mutual TLS.
//!
//! `wire` is the schema; `build.rs` declares the three services (`Join`,
//! `Dispatcher`, `Managers`); `client` and `server` carry them over our own
//! TLS; `convert` maps the messages to the types the manager and the agent
//! work with (`message`, `logs`). A joining node connects without a client
//! certificate (it has none yet) and may only call `Join`; every other call
//! needs a node certificate, and the `Managers` calls a manager one (checked
//! before the request is decoded, see `server`).

pub mod assignments;
pub mod client;
pub mod convert;
pub mod credentials;
pub mod discovery;
#[cfg(test)]
mod fuzz_tests;
pub mod logs;
pub mod message;
pub mod server;
pub mod status;
pub mod unlock;
pub mod wire;

pub use message::*;
pub use status::CallError;

/// The TLS server name every manager certificate carries.
pub const MANAGER_SERVER_NAME: &str = "swarm-manager";

/// The largest request message each kind of caller may send, checked by
/// the gRPC layer from a message's length prefix, before its body is read.
pub mod caps {
    /// Before the caller is known only `Join` is read: a token, a CSR and a
    /// node description fit in a few KiB.
    pub const PRE_AUTH: usize = 64 << 10;
    /// A node's calls: heartbeats (with its description), task states, log
    /// batches (256 KiB each).
    pub const NODE: usize = 4 << 20;
    /// A manager's: forwarded proposals and pieces of Raft messages.
    pub const MANAGER: usize = 64 << 20;
}

/// The largest answer a node reads from a manager (an authenticated one): a
/// big node's assignments.
pub const MAX_ANSWER: usize = 256 << 20;
/// Raft messages longer than this go in pieces of this size.
pub const RAFT_PIECE: usize = 16 << 20;
/// The largest Raft message a stream reassembles (a snapshot is the store
/// as JSON; only managers may open Raft streams).
pub const MAX_RAFT_MESSAGE: usize = 4 << 30;
/// HTTP/2 flow-control windows of a node's connection: enough in flight
/// for a snapshot's pieces to stream at the link's speed.
pub const STREAM_WINDOW: u32 = 4 << 20;
pub const CONNECTION_WINDOW: u32 = 8 << 20;

/// Gathers the pieces of Raft messages as a stream delivers them.
#[derive(Default)]
pub struct RaftAssembler {
    buf: Vec<u8>,
}

impl RaftAssembler {
    /// Takes one piece; returns the encoded message once whole.
    pub fn push(&mut self, piece: wire::RaftPiece) -> Result<Option<Vec<u8>>, String> {
        if self.buf.len() + piece.data.len() > MAX_RAFT_MESSAGE {
            self.buf = Vec::new();
            return Err("raft message too large".into());
        }
        if self.buf.is_empty() && !piece.more {
            return Ok(Some(piece.data));
        }
        self.buf.extend_from_slice(&piece.data);
        Ok((!piece.more).then(|| std::mem::take(&mut self.buf)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raft_pieces_are_reassembled_in_order() {
        let mut a = RaftAssembler::default();
        assert_eq!(a.push(wire::RaftPiece { data: b"whole".to_vec(), more: false }).unwrap(), Some(b"whole".to_vec()));
        assert_eq!(a.push(wire::RaftPiece { data: b"ab".to_vec(), more: true }).unwrap(), None);
        assert_eq!(a.push(wire::RaftPiece { data: b"cd".to_vec(), more: true }).unwrap(), None);
        assert_eq!(a.push(wire::RaftPiece { data: b"e".to_vec(), more: false }).unwrap(), Some(b"abcde".to_vec()));
        assert_eq!(a.push(wire::RaftPiece { data: Vec::new(), more: false }).unwrap(), Some(Vec::new()));
    }
}
