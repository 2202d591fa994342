//! Container health checks, as Docker runs them for swarm tasks.
//!
//! - `config`: the effective check, merged field by field from the image's
//!   `HEALTHCHECK` and the task's `ContainerSpec.Healthcheck`, with Docker's
//!   defaults (interval 30s, timeout 30s, retries 3, start period 0, start
//!   interval 5s); `NONE` disables it.
//! - `state`: the status machine (starting → healthy / unhealthy) as a pure
//!   function of probe results and time, and the delay before the next probe.
//! - `probe`: one probe run, `runc exec` inside the container, killed when it
//!   exceeds its timeout.
//! - `monitor`: one scheduler thread for every watched container on the node
//!   (no helper process per container); each probe runs on a short-lived
//!   thread, so a slow probe never delays another container's.

pub mod config;
pub mod monitor;
pub mod probe;
pub mod state;

pub use config::{resolve, HealthSettings};
pub use monitor::HealthMonitor;
pub use state::{HealthSnapshot, HealthStatus, ProbeResult};

/// Docker's error for a task whose container was stopped as unhealthy
/// (moby's `ErrContainerUnhealthy`, wrapped in the exit error).
pub const UNHEALTHY: &str = "dockerexec: unhealthy container";
