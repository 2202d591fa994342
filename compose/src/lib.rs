//! The compose file loader for `stack deploy`.
mod de;
mod error;
mod forms;
mod interpolate;
mod merge;
pub mod model;
mod mounts;
mod ports;
mod units;
mod yaml;
pub use error::{Error, Pos};
