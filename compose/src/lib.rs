//! The compose file loader for `stack deploy`: pure, no I/O beyond the files
//! it is given (the compose files, the `.env` beside the first, `env_file`s,
//! and the secret and config files they name).
//!
//! ```text
//! load(files, env)          read + parse (serde-saphyr, with lines)     yaml
//!                            → ${VAR} interpolation per file            interpolate
//!                            → merge in order (compose spec rules)      merge
//!                            → typed model, unknown keys refused        de, model, forms, ports, mounts
//!                            → env_file, bind paths, references, cycles load, order
//!   → Loaded { project, unsupported, deprecated, warnings }
//! plan(&loaded, stack)       → Engine API requests as docker makes them convert
//! loaded.config_yaml()       → the merged file, for `stack config`      config
//! ```
//!
//! Every error is one [`Error`] naming the file, the line and the key path:
//! `docker-compose.yml:14: services.web.deploy.replicas: invalid type: string
//! "two", expected an integer`. Nothing is half-loaded.
mod config;
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
