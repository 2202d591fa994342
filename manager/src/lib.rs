//! The manager role: Raft and its durable log, the replicated store, the
//! cluster RPC server (joins, heartbeats, certificates, forwarded writes),
//! the dispatcher's liveness tracking and the membership reconciler.
//!
//! Controllers (dispatcher, membership, the orchestrator loop) act on the
//! leader only; every manager serves reads from its own store and forwards
//! writes. The controllers (orchestrator loop, membership reconciler,
//! dispatcher, log broker, peer pinger, autolock, data key fetcher), the
//! RPC server (`server::ClusterPort`) and the control API the daemon calls
//! (`control::ControlApi`) hold a `cluster::Cluster` (store view, leader
//! watch, proposer) rather than the `Manager`, which starts and holds them.

pub mod access;
pub mod allocator;
pub mod autolock;
pub mod bootstrap;
pub mod cluster;
pub mod control;
pub mod datakey;
pub mod delivery;
pub mod dispatcher;
pub mod keyfetch;
pub mod keyfiles;
pub mod logbroker;
pub mod manager;
pub mod membership;
pub mod orchestrator;
mod raft;
pub mod reachability;
pub mod scheduling;
pub mod server;
pub mod store;

pub use manager::{force_new_cluster, Manager, ManagerConfig};

/// Raft below the cluster handle, for what must reach it without a
/// `Manager`: the benches and integration tests that drive a Raft node
/// alone, and the tests that read a WAL or write a Raft message. The
/// manager's own modules go through `cluster::Cluster`.
pub mod testing {
    pub use crate::raft::storage::{DiskStorage, WalKey};
    pub use crate::raft::wire::encode as encode_raft_message;
    pub use crate::raft::{Answer, RaftHandle, StartOptions};
}
