//! Shoal's object model, in the JSON shape of the Docker Engine API.
//!
//! Everything a user sees over the API (nodes, the swarm, `/info`, `/version`)
//! is defined here once, so the daemon, the manager and the CLI agree on field
//! names without repeating them. Durations are integer nanoseconds, times are
//! RFC 3339 strings, as in Docker.

pub mod base64;
pub mod duration;
pub mod error;
pub mod event;
pub mod filters;
#[cfg(test)]
mod fuzz_tests;
pub mod id;
pub mod info;
pub mod lenient;
pub mod network;
pub mod node;
pub mod seccomp;
pub mod secret;
pub mod service;
pub mod swarm;
pub mod task;
pub mod time;
pub mod warnings;

pub use error::ApiError;
pub use node::*;
pub use swarm::*;

/// The Engine API version `shoald` advertises (the docker CLI refuses < 1.40).
pub const API_VERSION: &str = "1.44";
/// The oldest API version accepted in a `/vX.YY/` prefix.
pub const MIN_API_VERSION: &str = "1.24";
/// The engine version reported in node descriptions and `/version`.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Docker's `Version` object: the Raft index of the object's last change,
/// used for optimistic concurrency (`?version=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Version {
    pub index: u64,
}
