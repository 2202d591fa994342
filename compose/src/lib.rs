//! The compose file loader for `stack deploy`.
mod error;
mod yaml;
pub use error::{Error, Pos};
mod interpolate;
