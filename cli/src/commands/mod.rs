//! The commands that talk to the daemon. Each takes an [`Env`] (the client
//! and the output streams) so tests can run them against a fake daemon.

pub mod container;
pub mod events;
pub mod image;
pub mod info;
pub mod inspect;
pub mod network;
pub mod node;
pub mod secret;
pub mod service;
pub mod stack;
pub mod swarm;
pub mod swarm_ca;
pub mod system;
pub mod tasks;
pub mod version;
pub mod volume;

use std::io::{BufRead, Write};

use crate::client::{path_segment, Client};
use crate::error::{CliError, CliResult};
use serde_json::Value;

use crate::json::JsonExt;

pub struct Env<'a> {
    pub client: &'a Client,
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    /// The program name used in printed commands ("shoal swarm join …").
    pub prog: String,
}

impl Env<'_> {
    pub fn print(&mut self, s: &str) -> CliResult {
        self.out.write_all(s.as_bytes()).map_err(CliError::from)
    }

    pub fn println(&mut self, s: &str) -> CliResult {
        self.print(s)?;
        self.print("\n")
    }

    pub fn eprintln(&mut self, s: &str) {
        let _ = writeln!(self.err, "{s}");
    }
}

/// Resolves the `self` node reference to this node's ID (docker's
/// `node.Reference`); other references are returned unchanged.
pub fn node_reference(client: &Client, reference: &str) -> CliResult<String> {
    if reference != "self" {
        return Ok(reference.to_string());
    }
    let info = client.get("/info")?;
    let id = info.at(&["Swarm", "NodeID"]).str();
    if id.is_empty() {
        // Not a manager, probably: ask a swarm endpoint for the precise error.
        client.get("/nodes")?;
        return Err(CliError::new("node ID not found in /info"));
    }
    Ok(id.to_string())
}

pub fn get_node(client: &Client, id: &str) -> CliResult<Value> {
    client.get(&format!("/nodes/{}", path_segment(id)))
}

/// Go's `runtime.GOARCH` spelling of this machine's architecture.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

pub const CLIENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// docker's `prompt.Confirm`: the question with " [y/N] ", then one line;
/// only "y" or "Y" (spaces around allowed) means yes.
pub fn confirm(env: &mut Env, stdin: &mut dyn BufRead, message: &str) -> CliResult<bool> {
    env.print(&format!("{message} [y/N] "))?;
    env.out.flush()?;
    let mut line = String::new();
    if stdin.read_line(&mut line).unwrap_or(0) == 0 {
        return Ok(false);
    }
    Ok(line.trim().eq_ignore_ascii_case("y"))
}
