//! The worker role. For now: the agent's session with the managers
//! (heartbeats, manager list, certificate renewal and role changes), and
//! images (`image`: pull, store by digest, unpack once, overlayfs roots).

pub mod agent;
pub mod description;
pub mod image;
