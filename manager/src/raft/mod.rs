//! Raft: the consensus state machine without I/O (`core`), the tokio loop
//! driving it (`node`), its durable storage (`storage`) and the transport
//! carrying messages between managers (`transport`). `sim_tests` runs
//! clusters of cores over a simulated network, seed by seed.

pub mod core;
pub mod node;
pub mod storage;
pub mod transport;
pub mod wire;

#[cfg(test)]
mod sim_tests;

pub use node::{new_proposal_id, Answer, ProposeError, RaftHandle, StartOptions, Status};
