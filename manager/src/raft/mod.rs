//! Raft: the consensus loop (`node`), its durable storage (`storage`) and
//! the transport carrying messages between managers (`transport`).

pub mod node;
pub mod storage;
pub mod transport;

pub use node::{new_proposal_id, RaftHandle, StartOptions, Status};
