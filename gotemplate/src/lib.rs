//! Go's `text/template`, as far as Docker and SwarmKit use it: the CLI's
//! `--format` templates, and the templates a service's container spec and
//! its secrets and configs may hold, which each node expands per task.
//!
//! `json`: helpers over the value templates read, a `serde_json::Value`
//! whose objects keep their key order (serde_json's `preserve_order`:
//! Docker prints objects in their Go struct order), and Go's JSON output.
//! `template`: parsing and
//! execution, with Docker's functions and room for a caller's own (SwarmKit's
//! `env`, `secret`, `config`).

pub mod json;
pub mod template;
