//! `shoal stack …`: deploy, ls, ps, rm, services, config, as docker's
//! `stack` commands, over the compose loader (`shoal-compose`).
//!
//! A stack is what carries the `com.docker.stack.namespace=<name>` label:
//! services, networks, secrets and configs. `deploy` (in `deploy`) works
//! out what to change with the pure `diff`, then creates, updates, prunes
//! and waits; the listing commands and `rm` are in `list` and `remove`.

pub mod deploy;
pub mod diff;
pub mod list;
pub mod remove;

use clap::{Args, Subcommand};

use crate::client::Client;
use crate::commands::Env;
use crate::error::{CliError, CliResult};
use crate::filters::Filters;
use serde_json::Value;

use crate::json::JsonExt;

use self::diff::LABEL_NAMESPACE;

#[derive(Subcommand, Debug)]
pub enum StackCommand {
    /// Outputs the final config file, after doing merges and interpolations
    Config(ConfigArgs),
    /// Deploy a new stack or update an existing stack
    #[command(visible_alias = "up")]
    Deploy(deploy::DeployArgs),
    /// List stacks
    #[command(visible_alias = "list")]
    Ls(list::LsArgs),
    /// List the tasks in the stack
    Ps(list::PsArgs),
    /// Remove one or more stacks
    #[command(visible_aliases = ["remove", "down"])]
    Rm(remove::RmArgs),
    /// List the services in the stack
    Services(list::ServicesArgs),
}

#[derive(Args, Debug, Default, Clone)]
pub struct ConfigArgs {
    /// Path to a Compose file
    #[arg(short = 'c', long = "compose-file", value_name = "strings", value_delimiter = ',', required = true)]
    pub compose_file: Vec<String>,
}

pub fn run(env: &mut Env, cmd: StackCommand) -> CliResult {
    match cmd {
        StackCommand::Config(a) => config(env, a),
        StackCommand::Deploy(a) => deploy::run(env, a),
        StackCommand::Ls(a) => list::ls(env, a),
        StackCommand::Ps(a) => list::ps(env, a),
        StackCommand::Rm(a) => remove::run(env, a),
        StackCommand::Services(a) => list::services(env, a),
    }
}

/// docker's `validateStackName`: not empty once quotes and spaces are trimmed.
pub fn validate_stack_name(name: &str) -> CliResult {
    if name.trim_matches(|c: char| c.is_whitespace() || c == '"' || c == '\'').is_empty() {
        return Err(CliError::new(format!("invalid stack name: {name:?}")));
    }
    Ok(())
}

/// How long `stack deploy` waits for a `depends_on` condition and for
/// networks, secrets and configs to be free to prune, and `stack rm` for
/// tasks to stop: `SHOAL_STACK_TIMEOUT` (a Go duration or seconds), else 2m.
pub const TIMEOUT_ENV: &str = "SHOAL_STACK_TIMEOUT";

pub fn wait_timeout() -> std::time::Duration {
    match std::env::var(TIMEOUT_ENV).ok().filter(|v| !v.trim().is_empty()) {
        Some(v) => crate::commands::service::progress::timeout_from(Some(&v)),
        None => std::time::Duration::from_secs(120),
    }
}

/// The process environment, for `${VAR}` in compose files.
pub fn process_env() -> std::collections::BTreeMap<String, String> {
    std::env::vars().collect()
}

/// Loads the compose files, printing docker's notes about ignored options
/// on stderr, and checks every service names an image.
pub fn load(env: &mut Env, files: &[String]) -> CliResult<shoal_compose::Loaded> {
    if files.is_empty() {
        return Err(CliError::new("specify a Compose file (with --compose-file)"));
    }
    let loaded = shoal_compose::load(files, &process_env()).map_err(|e| CliError::new(e.to_string()))?;
    for w in &loaded.warnings {
        env.eprintln(w);
    }
    if !loaded.unsupported.is_empty() {
        env.eprintln(&format!("Ignoring unsupported options: {}\n", loaded.unsupported.join(", ")));
    }
    if !loaded.deprecated.is_empty() {
        let list: Vec<String> = loaded.deprecated.iter().map(|(k, why)| format!("{k}: {why}")).collect();
        env.eprintln(&format!("Ignoring deprecated options:\n\n{}\n", list.join("\n\n")));
    }
    for (name, s) in &loaded.project.services {
        if s.image.as_deref().unwrap_or("").is_empty() {
            return Err(CliError::new(format!("invalid image reference for service {name}: no image specified")));
        }
    }
    Ok(loaded)
}

fn config(env: &mut Env, a: ConfigArgs) -> CliResult {
    let loaded = load(env, &a.compose_file)?;
    env.print(&loaded.config_yaml())
}

/// `filters={"label":{"com.docker.stack.namespace=<stack>":true}}` plus the
/// user's filters (docker's `getStackFilterFromOpt`).
pub fn stack_filter(stack: &str, user: &[String]) -> CliResult<Filters> {
    let mut f = Filters::from_flags(user)?;
    f.add("label", &format!("{LABEL_NAMESPACE}={stack}"));
    Ok(f)
}

/// The stack's objects of one kind (`services`, `networks`, `secrets`,
/// `configs`).
pub fn stack_objects(client: &Client, kind: &str, stack: &str) -> CliResult<Vec<Value>> {
    let f = stack_filter(stack, &[])?;
    Ok(client.get(&format!("/{kind}{}", f.query()))?.items().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names_and_filters() {
        assert!(validate_stack_name("app").is_ok());
        assert_eq!(validate_stack_name(" '' ").unwrap_err().message, "invalid stack name: \" '' \"");
        let f = stack_filter("app", &["name=app_web".into()]).unwrap();
        assert_eq!(f.to_json(), r#"{"label":{"com.docker.stack.namespace=app":true},"name":{"app_web":true}}"#);
    }
}
