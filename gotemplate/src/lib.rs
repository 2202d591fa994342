//! Go's `text/template`, as far as Docker and SwarmKit use it: the CLI's
//! `--format` templates, and the templates a service's container spec and
//! its secrets and configs may hold, which each node expands per task.
//!
//! `json`: the value templates read, an order-keeping JSON tree (Docker
//! prints objects in their Go struct order). `template`: parsing and
//! execution, with Docker's functions and room for a caller's own (SwarmKit's
//! `env`, `secret`, `config`).

pub mod json;
pub mod template;
