//! The worker role. For now: the agent's session with the managers
//! (heartbeats, manager list, certificate renewal and role changes).

pub mod agent;
pub mod description;
