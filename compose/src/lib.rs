//! The compose file loader for `stack deploy`.
mod convert;
mod de;
mod error;
pub mod forms;
mod interpolate;
mod load;
mod merge;
pub mod model;
pub mod mounts;
mod order;
pub mod ports;
pub mod units;
mod yaml;
pub use convert::{plan, Plan, PlannedService, Resource, LABEL_IMAGE, LABEL_NAMESPACE};
pub use error::{Error, Pos};
pub use load::{load, load_sources, Loaded, Source};
pub use model::Condition;
