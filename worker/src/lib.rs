//! The worker role. For now: the agent's session with the managers
//! (heartbeats, manager list, certificate renewal and role changes), and
//! images (`image`: pull, store by digest, unpack once, overlayfs roots), and
//! containers (`executor`: OCI spec, runc detached, exit codes as subreaper).

pub mod agent;
pub mod containers;
pub mod description;
pub mod executor;
pub mod health;
pub mod image;
pub mod logs;
pub mod network;
pub mod secrets;
pub mod standalone;
pub mod stats;
pub mod taskmanager;
pub mod templating;
pub mod volumes;
