//! `stack deploy -c FILE... STACK`: load and convert the files
//! (`shoal-compose`), work out the changes (`diff`), then as docker does:
//! networks, secrets and configs first, then the services in the plan's
//! order (what they depend on first). Beyond docker:
//!
//! - a service that exists is updated only when its spec changed;
//! - a new service with `depends_on` is created once each dependency is
//!   started, healthy or completed, as its condition says (with a deadline);
//! - `--prune` also removes the stack's networks, secrets and configs the
//!   files no longer name (once nothing uses them any more);
//! - `--dry-run` prints what would be done and changes nothing;
//! - without `--detach` it waits for every service to converge with the
//!   `service create` progress display and fails naming the service and its
//!   task's error when one does not.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::Args;
use shoal_compose::Condition;

use super::diff::{self, Changes, Current, Ids, PlanJson, ResolveImage, ServiceAction};
use super::{stack_objects, validate_stack_name, wait_timeout};
use crate::client::{path_segment, query};
use crate::commands::service::progress;
use crate::commands::Env;
use crate::error::{CliError, CliResult};
use crate::filters::Filters;
use serde_json::Value;

use crate::json::JsonExt;

#[derive(Args, Debug, Default, Clone)]
pub struct DeployArgs {
    /// Path to a Compose file
    #[arg(short = 'c', long = "compose-file", value_name = "strings", value_delimiter = ',')]
    pub compose_file: Vec<String>,
    /// Prune services, networks, secrets and configs that are no longer referenced
    #[arg(long)]
    pub prune: bool,
    /// Query the registry to resolve image digest and supported platforms ("always", "changed", "never")
    #[arg(long = "resolve-image", value_name = "string", value_enum, default_value = "always")]
    pub resolve_image: ResolveImage,
    /// Send registry authentication details to Swarm agents
    #[arg(long = "with-registry-auth")]
    pub with_registry_auth: bool,
    /// Exit immediately instead of waiting for the stack services to converge
    #[arg(short, long, num_args = 0..=1, default_missing_value = "true", value_name = "bool")]
    pub detach: Option<bool>,
    /// Suppress progress output
    #[arg(short, long)]
    pub quiet: bool,
    /// Print what would be created, updated and removed, and change nothing
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    #[arg(value_name = "STACK")]
    pub stack: String,
}

fn check_manager(env: &Env) -> CliResult {
    let info = env.client.get("/info")?;
    if !info.at(&["Swarm", "ControlAvailable"]).bool() {
        return Err(CliError::new(format!(
            "this node is not a swarm manager. Use \"{0} swarm init\" or \"{0} swarm join\" to connect this node to swarm and try again",
            env.prog
        )));
    }
    Ok(())
}

/// What the cluster has: the stack's objects, and every network, secret and
/// config by name (for references and external objects).
fn read_cluster(env: &Env, stack: &str) -> CliResult<(Current, Ids)> {
    let networks = env.client.get("/networks")?;
    let secrets = env.client.get("/secrets")?;
    let configs = env.client.get("/configs")?;
    let ids = Ids::from_lists(&networks, &secrets, &configs);
    let current = Current {
        services: stack_objects(env.client, "services", stack)?,
        networks: stack_objects(env.client, "networks", stack)?,
        secrets: secrets.items().to_vec(),
        configs: configs.items().to_vec(),
    };
    Ok((current, ids))
}

/// docker's `validateExternalNetworks`, and the external secrets and
/// configs that must exist (docker: "secret not found: x").
fn check_externals(env: &Env, plan: &shoal_compose::Plan, ids: &Ids) -> CliResult {
    for name in &plan.external_networks {
        if matches!(name.as_str(), "host" | "bridge" | "none" | "default") || name.starts_with("container:") {
            continue;
        }
        match env.client.get(&format!("/networks/{}", path_segment(name))) {
            Err(e) if e.http_status == Some(404) => {
                return Err(CliError::new(format!(
                    "network {name:?} is declared as external, but could not be found. You need to create a swarm-scoped network before the stack is deployed"
                )))
            }
            Err(e) => return Err(e),
            Ok(n) if n["Scope"].str() != "swarm" => {
                return Err(CliError::new(format!(
                    "network {name:?} is declared as external, but it is not in the right scope: {:?} instead of \"swarm\"",
                    n["Scope"].str()
                )))
            }
            Ok(_) => {}
        }
    }
    for (noun, names, known) in [("secret", &plan.external_secrets, &ids.secrets), ("config", &plan.external_configs, &ids.configs)] {
        if let Some(missing) = names.iter().find(|n| !known.contains_key(*n)) {
            return Err(CliError::new(format!("{noun} not found: {missing}")));
        }
    }
    Ok(())
}

pub fn run(env: &mut Env, a: DeployArgs) -> CliResult {
    validate_stack_name(&a.stack)?;
    let loaded = super::load(env, &a.compose_file)?;
    let plan = shoal_compose::plan(&loaded, &a.stack).map_err(|e| CliError::new(e.to_string()))?;
    check_manager(env)?;
    let (current, ids) = read_cluster(env, &a.stack)?;
    check_externals(env, &plan, &ids)?;
    let changes = diff::changes(&PlanJson::from_plan(&plan), &current, &ids, a.resolve_image, &a.stack, a.prune);
    if a.dry_run {
        for l in changes.dry_run_lines() {
            env.println(&l)?;
        }
        return Ok(());
    }
    let depends: BTreeMap<String, Vec<(String, Condition)>> =
        plan.services.iter().map(|s| (s.name.clone(), s.depends_on.clone())).collect();
    let service_ids = apply(env, &a, changes, &depends)?;
    if a.detach.unwrap_or(false) {
        return Ok(());
    }
    wait_converged(env, &service_ids, a.quiet)
}

fn post_json(env: &Env, path: &str, body: &Value, what: &str) -> CliResult<Value> {
    env.client.post(path, Some(body)).map_err(|e| CliError::new(format!("failed to {what}: {}", e.message)))
}

/// Does the changes in docker's order; returns (full name, ID) of every
/// service of the file, in order.
fn apply(
    env: &mut Env,
    a: &DeployArgs,
    mut changes: Changes,
    depends: &BTreeMap<String, Vec<(String, Condition)>>,
) -> CliResult<Vec<(String, String, bool)>> {
    let list: Vec<(&str, String, String)> =
        changes.remove_services.iter().map(|e| ("service", e.name.clone(), format!("/services/{}", path_segment(&e.id)))).collect();
    if super::remove::remove_all(env, &list)? {
        env.eprintln("Failed to prune some services");
    }

    for (name, body) in &changes.create_networks {
        env.println(&diff::creating("network", name))?;
        post_json(env, "/networks/create", body, &format!("create network {name}"))?;
    }
    for (noun, path, create, update) in [
        ("secret", "secrets", &changes.create_secrets, &changes.update_secrets),
        ("config", "configs", &changes.create_configs, &changes.update_configs),
    ] {
        for (e, body) in update {
            let p = format!("/{path}/{}/update{}", path_segment(&e.id), query(&[("version", e.version.to_string())]));
            post_json(env, &p, body, &format!("update {noun} {}", e.name))?;
        }
        for (name, body) in create {
            env.println(&diff::creating(noun, name))?;
            post_json(env, &format!("/{path}/create"), body, &format!("create {noun} {name}"))?;
        }
    }
    // The new secrets and configs have IDs now.
    if !changes.create_secrets.is_empty() || !changes.create_configs.is_empty() {
        let ids = Ids::from_lists(&Value::Array(vec![]), &env.client.get("/secrets")?, &env.client.get("/configs")?);
        for s in &mut changes.services {
            diff::fill_reference_ids(&mut s.spec, &ids);
        }
    }

    let mut by_name: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut out = Vec::new();
    for s in &changes.services {
        let auth = if a.with_registry_auth {
            crate::registry_auth::header_for(s.spec.at(&["TaskTemplate", "ContainerSpec", "Image"]).str())?
        } else {
            None
        };
        let unchanged = matches!(s.action, ServiceAction::Unchanged { .. });
        let id = match &s.action {
            ServiceAction::Create => {
                for (dep, condition) in depends.get(&s.name).map(Vec::as_slice).unwrap_or_default() {
                    let Some((dep_full, dep_id)) = by_name.get(dep) else { continue };
                    wait_dependency(env, &s.full_name, dep_full, dep_id, *condition)?;
                }
                env.println(&diff::creating("service", &s.full_name))?;
                let resp = env
                    .client
                    .post_auth("/services/create", Some(&s.spec), auth.as_deref())
                    .map_err(|e| CliError::new(format!("failed to create service {}: {}", s.full_name, e.message)))?;
                for w in resp["Warnings"].items() {
                    env.eprintln(w.str());
                }
                resp["ID"].str().to_string()
            }
            ServiceAction::Update { id, version } => {
                env.println(&diff::updating_service(&s.full_name, id))?;
                let path = format!("/services/{}/update{}", path_segment(id), query(&[("version", version.to_string())]));
                let resp = env
                    .client
                    .post_auth(&path, Some(&s.spec), auth.as_deref())
                    .map_err(|e| CliError::new(format!("failed to update service {}: {}", s.full_name, e.message)))?;
                for w in resp["Warnings"].items() {
                    env.eprintln(w.str());
                }
                id.clone()
            }
            ServiceAction::Unchanged { id } => {
                env.println(&diff::unchanged_service(&s.full_name, id))?;
                id.clone()
            }
        };
        by_name.insert(s.name.clone(), (s.full_name.clone(), id.clone()));
        out.push((s.full_name.clone(), id, unchanged));
    }

    // What the services no longer use, once their updates let go of it.
    let deadline = Instant::now() + wait_timeout();
    let mut failed = false;
    for (kind, path, list) in [
        ("secret", "secrets", &changes.remove_secrets),
        ("config", "configs", &changes.remove_configs),
        ("network", "networks", &changes.remove_networks),
    ] {
        for e in list {
            env.println(&diff::removing(kind, &e.name))?;
            let p = format!("/{path}/{}", path_segment(&e.id));
            loop {
                match env.client.delete(&p) {
                    Ok(_) => break,
                    Err(err) if err.http_status == Some(404) => break,
                    Err(err) if Instant::now() < deadline && err.http_status != Some(401) => {
                        std::thread::sleep(Duration::from_millis(300));
                        let _ = err;
                    }
                    Err(err) => {
                        env.eprintln(&format!("Failed to remove {kind} {}: {}", e.id, err.message));
                        failed = true;
                        break;
                    }
                }
            }
        }
    }
    if failed {
        return Err(CliError::new(format!("failed to prune some resources from stack: {}", a.stack)));
    }
    Ok(out)
}

// ------------------------------------------------------------ depends_on

fn mode_total(service: &Value) -> (Option<u64>, bool) {
    let m = service.at(&["Spec", "Mode"]);
    if m.has("Replicated") {
        (Some(m.at(&["Replicated", "Replicas"]).as_u64().unwrap_or(1)), false)
    } else if m.has("ReplicatedJob") {
        let j = &m["ReplicatedJob"];
        let conc = j["MaxConcurrent"].as_u64().unwrap_or(1).max(1);
        (Some(j["TotalCompletions"].as_u64().unwrap_or(conc)), true)
    } else if m.has("GlobalJob") {
        (None, true)
    } else {
        (None, false)
    }
}

fn state(t: &Value) -> &str {
    t.at(&["Status", "State"]).str()
}

/// Whether `condition` holds for a service with these tasks (of its
/// current spec). Shoal reports a task with a health check running only
/// after a passing probe, so running tasks of such a service are healthy.
pub fn condition_met(service: &Value, tasks: &[Value], condition: Condition) -> bool {
    let (total, job) = mode_total(service);
    let live: Vec<&Value> = tasks.iter().filter(|t| t["DesiredState"].str() == "running").collect();
    let running = live.iter().filter(|t| state(t) == "running").count() as u64;
    let complete = tasks.iter().filter(|t| state(t) == "complete").count() as u64;
    match condition {
        Condition::ServiceStarted | Condition::ServiceHealthy if job => running > 0 || complete > 0,
        Condition::ServiceStarted | Condition::ServiceHealthy => match total {
            Some(n) => running >= n,
            None => !live.is_empty() && running == live.len() as u64,
        },
        Condition::ServiceCompletedSuccessfully => match total {
            Some(n) if job => complete >= n,
            _ => {
                complete > 0
                    && !tasks.iter().any(|t| {
                        matches!(state(t), "new" | "pending" | "assigned" | "accepted" | "preparing" | "ready" | "starting" | "running")
                    })
            }
        },
    }
}

/// The newest error among the tasks, for messages: `task <id>: <error>`.
pub fn last_task_error(tasks: &[Value]) -> Option<String> {
    let mut with_err: Vec<&Value> =
        tasks.iter().filter(|t| !t.at(&["Status", "Err"]).str().is_empty() || matches!(state(t), "failed" | "rejected")).collect();
    with_err.sort_by(|a, b| a.at(&["Status", "Timestamp"]).str().cmp(b.at(&["Status", "Timestamp"]).str()));
    let t = with_err.last()?;
    let err = t.at(&["Status", "Err"]).str();
    let msg = if err.is_empty() { t.at(&["Status", "Message"]).str() } else { err };
    Some(format!("task {}: {msg}", t["ID"].str()))
}

/// `tasks: new, running` when no task has an error to show.
fn task_states(tasks: &[Value]) -> Option<String> {
    let states: Vec<&str> = tasks.iter().map(state).collect();
    (!states.is_empty()).then(|| format!("tasks: {}", states.join(", ")))
}

fn current_tasks(env: &Env, service: &Value) -> CliResult<Vec<Value>> {
    let mut f = Filters::new();
    f.add("service", service["ID"].str());
    let tasks = env.client.get(&format!("/tasks{}", f.query()))?;
    let template = service.at(&["Spec", "TaskTemplate"]);
    let iteration = service.at(&["JobStatus", "JobIteration", "Index"]).as_u64();
    Ok(tasks
        .items()
        .iter()
        .filter(|t| t["Spec"] == *template)
        .filter(|t| iteration.is_none() || t.at(&["JobIteration", "Index"]).as_u64() == iteration)
        .cloned()
        .collect())
}

fn wait_dependency(env: &mut Env, dependent: &str, dep_name: &str, dep_id: &str, condition: Condition) -> CliResult {
    let (word, cond) = match condition {
        Condition::ServiceStarted => ("running", "service_started"),
        Condition::ServiceHealthy => ("healthy", "service_healthy"),
        Condition::ServiceCompletedSuccessfully => ("completed successfully", "service_completed_successfully"),
    };
    let timeout = wait_timeout();
    let deadline = Instant::now() + timeout;
    let mut said = false;
    loop {
        let service = env.client.get(&format!("/services/{}", path_segment(dep_id)))?;
        let tasks = current_tasks(env, &service)?;
        if condition_met(&service, &tasks, condition) {
            return Ok(());
        }
        if !said {
            env.println(&format!("Waiting for service {dep_name} to be {word} ({cond}) before creating {dependent}"))?;
            let _ = env.out.flush();
            said = true;
        }
        if Instant::now() >= deadline {
            let why = last_task_error(&tasks).or_else(|| task_states(&tasks)).map(|e| format!(": {e}")).unwrap_or_default();
            return Err(CliError::new(format!(
                "service {dependent} depends on {dep_name} ({cond}): {dep_name} was not {word} after {timeout:?}{why}"
            )));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

// ------------------------------------------------------------ convergence

/// Whether a service has converged; else why not.
fn not_converged(env: &Env, id: &str) -> CliResult<Option<String>> {
    let service = env.client.get(&format!("/services/{}", path_segment(id)))?;
    let tasks = current_tasks(env, &service)?;
    let (_, job) = mode_total(&service);
    let cond = if job { Condition::ServiceCompletedSuccessfully } else { Condition::ServiceStarted };
    if condition_met(&service, &tasks, cond) {
        return Ok(None);
    }
    Ok(Some(last_task_error(&tasks).unwrap_or_else(|| {
        let running = tasks.iter().filter(|t| state(t) == "running").count();
        format!("{running} of its tasks running")
    })))
}

/// docker's `waitOnServices`, one service after the other with the
/// progress display; a service that did not converge in time is an error
/// naming it and its task's error. A service the deploy left alone is only
/// checked, unless it has not converged.
fn wait_converged(env: &mut Env, services: &[(String, String, bool)], quiet: bool) -> CliResult {
    let mut errors = Vec::new();
    for (name, id, unchanged) in services {
        if *unchanged && not_converged(env, id)?.is_none() {
            continue;
        }
        progress::wait_on_service(env, id, quiet)?;
        if let Some(why) = not_converged(env, id)? {
            errors.push(CliError::new(format!("service {name} did not converge: {why}")));
        }
    }
    CliError::join(errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    fn task(st: &str, desired: &str, err: &str, ts: &str) -> Value {
        json::parse(&format!(
            r#"{{"ID":"t-{st}-{ts}","DesiredState":"{desired}","Status":{{"State":"{st}","Err":"{err}","Timestamp":"{ts}"}}}}"#
        ))
        .unwrap()
    }

    fn svc(mode: &str) -> Value {
        json::parse(&format!(r#"{{"ID":"s","Spec":{{"Mode":{mode}}}}}"#)).unwrap()
    }

    #[test]
    fn conditions() {
        let rep = svc(r#"{"Replicated":{"Replicas":2}}"#);
        let one = [task("running", "running", "", "1"), task("starting", "running", "", "2")];
        assert!(!condition_met(&rep, &one, Condition::ServiceStarted));
        assert!(!condition_met(&rep, &one, Condition::ServiceHealthy), "a task still starting (health pending) is not healthy");
        let both = [task("running", "running", "", "1"), task("running", "running", "", "2")];
        assert!(condition_met(&rep, &both, Condition::ServiceHealthy));
        let global = svc(r#"{"Global":{}}"#);
        assert!(!condition_met(&global, &[], Condition::ServiceStarted));
        assert!(condition_met(&global, &both, Condition::ServiceStarted));
        let job = svc(r#"{"ReplicatedJob":{"MaxConcurrent":1,"TotalCompletions":2}}"#);
        let done1 = [task("complete", "complete", "", "1"), task("running", "complete", "", "2")];
        assert!(!condition_met(&job, &done1, Condition::ServiceCompletedSuccessfully));
        assert!(condition_met(&job, &done1, Condition::ServiceStarted));
        let done2 = [task("complete", "complete", "", "1"), task("complete", "complete", "", "2")];
        assert!(condition_met(&job, &done2, Condition::ServiceCompletedSuccessfully));
    }

    #[test]
    fn task_errors_name_the_newest() {
        let tasks = [
            task("failed", "shutdown", "task: non-zero exit (1)", "2026-01-01T00:00:01Z"),
            task("running", "running", "", "2026-01-01T00:00:03Z"),
            task("rejected", "shutdown", "No such image: x:1", "2026-01-01T00:00:02Z"),
        ];
        assert_eq!(last_task_error(&tasks).unwrap(), "task t-rejected-2026-01-01T00:00:02Z: No such image: x:1");
        assert_eq!(last_task_error(&tasks[1..2]), None);
    }
}
