//! `stack rm STACK...`: the stack's services, then its secrets, configs and
//! networks (docker's order), each line as docker prints it; then, unless
//! `--detach`, waits until the removed services' tasks have stopped.

use std::collections::BTreeSet;
use std::time::Instant;

use clap::Args;

use super::{stack_objects, validate_stack_name, wait_timeout};
use crate::client::path_segment;
use crate::commands::Env;
use crate::error::{CliError, CliResult};
use serde_json::Value;

use crate::json::JsonExt;

#[derive(Args, Debug, Default, Clone)]
pub struct RmArgs {
    /// Do not wait for stack removal
    #[arg(short, long, num_args = 0..=1, default_missing_value = "true", value_name = "bool")]
    pub detach: Option<bool>,
    #[arg(value_name = "STACK", required = true)]
    pub stacks: Vec<String>,
}

/// One object to remove: (kind, name, path to DELETE).
fn removals(services: &[Value], secrets: &[Value], configs: &[Value], networks: &[Value]) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    let mut svcs: Vec<&Value> = services.iter().collect();
    svcs.sort_by(|a, b| a.at(&["Spec", "Name"]).str().cmp(b.at(&["Spec", "Name"]).str()));
    for s in svcs {
        out.push(("service", s.at(&["Spec", "Name"]).str().to_string(), format!("/services/{}", path_segment(s["ID"].str()))));
    }
    for (kind, list, path) in [("secret", secrets, "secrets"), ("config", configs, "configs")] {
        for o in list {
            out.push((kind, o.at(&["Spec", "Name"]).str().to_string(), format!("/{path}/{}", path_segment(o["ID"].str()))));
        }
    }
    for n in networks {
        out.push(("network", n["Name"].str().to_string(), format!("/networks/{}", path_segment(n["Id"].str()))));
    }
    out
}

/// Removes the objects, printing docker's lines; whether any failed.
pub fn remove_all(env: &mut Env, list: &[(&str, String, String)]) -> CliResult<bool> {
    let mut failed = false;
    for (kind, name, path) in list {
        env.println(&super::diff::removing(kind, name))?;
        if let Err(e) = env.client.delete(path) {
            failed = true;
            let id = path.rsplit('/').next().unwrap_or_default();
            env.eprintln(&format!("Failed to remove {kind} {id}: {}", e.message));
        }
    }
    Ok(failed)
}

/// Waits until no task of `services` is left that has not stopped.
pub fn wait_tasks_gone(env: &Env, services: &BTreeSet<String>, deadline: Instant) -> CliResult {
    loop {
        let tasks = env.client.get("/tasks")?;
        let left: Vec<&Value> = tasks
            .items()
            .iter()
            .filter(|t| services.contains(t["ServiceID"].str()))
            .filter(|t| {
                !matches!(t.at(&["Status", "State"]).str(), "complete" | "shutdown" | "failed" | "rejected" | "orphaned" | "remove")
            })
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let ids: Vec<&str> = left.iter().map(|t| t["ID"].str()).collect();
            return Err(CliError::new(format!("tasks still running after {:?}: {}", wait_timeout(), ids.join(", "))));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

pub fn run(env: &mut Env, a: RmArgs) -> CliResult {
    for s in &a.stacks {
        validate_stack_name(s)?;
    }
    let mut errors = Vec::new();
    for stack in &a.stacks {
        let services = stack_objects(env.client, "services", stack)?;
        let networks = stack_objects(env.client, "networks", stack)?;
        let secrets = stack_objects(env.client, "secrets", stack)?;
        let configs = stack_objects(env.client, "configs", stack)?;
        if services.len() + networks.len() + secrets.len() + configs.len() == 0 {
            env.eprintln(&format!("Nothing found in stack: {stack}"));
            continue;
        }
        let list = removals(&services, &secrets, &configs, &networks);
        if remove_all(env, &list)? {
            errors.push(CliError::new(format!("failed to remove some resources from stack: {stack}")));
            continue;
        }
        if !a.detach.unwrap_or(false) {
            let ids: BTreeSet<String> = services.iter().map(|s| s["ID"].str().to_string()).collect();
            if let Err(e) = wait_tasks_gone(env, &ids, Instant::now() + wait_timeout()) {
                errors.push(CliError::new(format!("failed to wait on tasks of stack: {stack}: {}", e.message)));
            }
        }
    }
    CliError::join(errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::FakeDaemon;

    #[test]
    fn removes_in_dockers_order_with_its_lines() {
        let d = FakeDaemon::start(|req| {
            let t = req.target.as_str();
            match req.method.as_str() {
                "GET" if t.starts_with("/v1.44/services?") => {
                    (200, r#"[{"ID":"s2","Spec":{"Name":"app_web"}},{"ID":"s1","Spec":{"Name":"app_cache"}}]"#.into())
                }
                "GET" if t.starts_with("/v1.44/networks?") => (200, r#"[{"Id":"n1","Name":"app_default"}]"#.into()),
                "GET" if t.starts_with("/v1.44/secrets?") => (200, r#"[{"ID":"x1","Spec":{"Name":"app_pw"}}]"#.into()),
                "GET" if t.starts_with("/v1.44/configs?") => (200, "[]".into()),
                "GET" if t == "/v1.44/tasks" => (200, r#"[{"ID":"t1","ServiceID":"s1","Status":{"State":"shutdown"}}]"#.into()),
                "DELETE" if t == "/v1.44/networks/n1" => (403, r#"{"message":"network n1 is in use"}"#.into()),
                "DELETE" => (200, String::new()),
                _ => (404, r#"{"message":"nope"}"#.into()),
            }
        });
        let (r, out) = d.run(|env| run(env, RmArgs { detach: None, stacks: vec!["app".into()] }));
        assert_eq!(out, "Removing service app_cache\nRemoving service app_web\nRemoving secret app_pw\nRemoving network app_default\n");
        assert_eq!(r.unwrap_err().message, "failed to remove some resources from stack: app");
        let deletes: Vec<String> = d.requests().into_iter().filter(|r| r.method == "DELETE").map(|r| r.target).collect();
        assert_eq!(deletes, ["/v1.44/services/s1", "/v1.44/services/s2", "/v1.44/secrets/x1", "/v1.44/networks/n1"]);
    }

    #[test]
    fn nothing_found_is_said_on_stderr() {
        let d = FakeDaemon::start(|_| (200, "[]".into()));
        let (r, out) = d.run(|env| run(env, RmArgs { detach: Some(true), stacks: vec!["none".into()] }));
        r.unwrap();
        assert_eq!(out, "");
    }
}
