//! `shoal service …`: create, inspect, logs, ls, ps, rm, rollback, scale, update,
//! with the docker CLI's flags, tables and messages.
//!
//! `opts` parses flag values, `flags` holds the flags `create` and `update`
//! share, `progress` waits for convergence; the rest is one file per
//! command, with `rm`, `rollback` and `scale` here.

pub mod create;
pub mod flags;
pub mod inspect;
pub mod list;
pub mod logs;
pub mod opts;
pub mod progress;
pub mod ps;
pub mod update;

use clap::{Args, Subcommand};

use crate::client::{path_segment, query};
use crate::commands::Env;
use crate::error::{CliError, CliResult};
use crate::json::JsonExt;

#[derive(Subcommand, Debug)]
pub enum ServiceCommand {
    /// Create a new service
    Create(Box<create::CreateArgs>),
    /// Display detailed information on one or more services
    Inspect(inspect::InspectArgs),
    /// List services
    #[command(visible_alias = "list")]
    Ls(list::LsArgs),
    /// Fetch the logs of a service or task
    Logs(logs::LogsArgs),
    /// List the tasks of one or more services
    Ps(ps::PsArgs),
    /// Remove one or more services
    #[command(visible_alias = "remove")]
    Rm {
        #[arg(required = true, value_name = "SERVICE")]
        services: Vec<String>,
    },
    /// Revert changes to a service's configuration
    Rollback(RollbackArgs),
    /// Scale one or multiple replicated services
    Scale(ScaleArgs),
    /// Update a service
    Update(Box<update::UpdateArgs>),
}

#[derive(Args, Debug, Default, Clone)]
pub struct RollbackArgs {
    /// Suppress progress output
    #[arg(short, long)]
    pub quiet: bool,
    /// Exit immediately instead of waiting for the service to converge
    #[arg(short, long)]
    pub detach: bool,
    #[arg(value_name = "SERVICE")]
    pub service: String,
}

#[derive(Args, Debug, Default, Clone)]
pub struct ScaleArgs {
    /// Exit immediately instead of waiting for the service to converge
    #[arg(short, long)]
    pub detach: bool,
    #[arg(required = true, value_name = "SERVICE=REPLICAS")]
    pub specs: Vec<String>,
}

pub fn run(env: &mut Env, cmd: ServiceCommand) -> CliResult {
    match cmd {
        ServiceCommand::Create(a) => create::run(env, *a),
        ServiceCommand::Inspect(a) => inspect::run(env, a),
        ServiceCommand::Ls(a) => list::run(env, a),
        ServiceCommand::Logs(a) => logs::run(env, a),
        ServiceCommand::Ps(a) => ps::run(env, a),
        ServiceCommand::Rm { services } => rm(env, &services),
        ServiceCommand::Rollback(a) => rollback(env, a),
        ServiceCommand::Scale(a) => scale(env, a),
        ServiceCommand::Update(a) => update::run(env, *a),
    }
}

fn rm(env: &mut Env, services: &[String]) -> CliResult {
    let mut errors = Vec::new();
    for s in services {
        match env.client.delete(&format!("/services/{}", path_segment(s))) {
            Ok(_) => env.println(s)?,
            Err(e) => errors.push(e),
        }
    }
    CliError::join(errors)
}

/// `service rollback`: the current spec posted with `rollback=previous`.
fn rollback(env: &mut Env, a: RollbackArgs) -> CliResult {
    let service = env.client.get(&format!("/services/{}", path_segment(&a.service)))?;
    let version = service.at(&["Version", "Index"]).as_u64().unwrap_or(0);
    let path = format!(
        "/services/{}/update{}",
        path_segment(service["ID"].str()),
        query(&[("rollback", "previous".into()), ("version", version.to_string())])
    );
    let mut spec = service["Spec"].clone();
    opts::tag_spec_image(&mut spec);
    let resp = env.client.post(&path, Some(&spec))?;
    for w in resp["Warnings"].items() {
        env.eprintln(w.str());
    }
    env.println(&a.service)?;
    if a.detach {
        return Ok(());
    }
    progress::wait_on_service(env, &a.service, a.quiet)
}

/// Checks every `SERVICE=REPLICAS` before doing anything, with docker's
/// usage text on a bad one.
pub fn check_scale_specs(prog: &str, specs: &[String]) -> CliResult {
    for s in specs {
        match s.split_once('=') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() => {}
            _ => {
                return Err(CliError::new(format!(
                    "invalid scale specifier '{s}'.\nSee '{prog} service scale --help'.\n\nUsage:  {prog} service scale SERVICE=REPLICAS [SERVICE=REPLICAS...]\n\nScale one or multiple replicated services"
                )))
            }
        }
    }
    Ok(())
}

/// `strconv.ParseUint(s, 10, 64)` with Go's error text.
fn parse_replicas(s: &str) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.ParseUint: parsing \"{s}\": invalid syntax"));
    }
    s.parse().map_err(|_| format!("strconv.ParseUint: parsing \"{s}\": value out of range"))
}

fn scale_one(env: &mut Env, name: &str, n: u64) -> CliResult {
    let mut service = env.client.get(&format!("/services/{}", path_segment(name)))?;
    let mode = service.entry(&["Spec", "Mode"]);
    if mode.has("Replicated") {
        mode.entry(&["Replicated"]).set("Replicas", n.into());
    } else if mode.has("ReplicatedJob") {
        mode.entry(&["ReplicatedJob"]).set("TotalCompletions", n.into());
    } else {
        return Err(CliError::new("scale can only be used with replicated or replicated-job mode"));
    }
    let version = service.at(&["Version", "Index"]).as_u64().unwrap_or(0);
    let path = format!("/services/{}/update{}", path_segment(service["ID"].str()), query(&[("version", version.to_string())]));
    let mut spec = service["Spec"].clone();
    opts::tag_spec_image(&mut spec);
    let resp = env.client.post(&path, Some(&spec))?;
    for w in resp["Warnings"].items() {
        env.eprintln(w.str());
    }
    Ok(())
}

fn scale(env: &mut Env, a: ScaleArgs) -> CliResult {
    check_scale_specs(&env.prog, &a.specs)?;
    let mut errors = Vec::new();
    let mut scaled = Vec::new();
    for spec in &a.specs {
        let (name, value) = spec.split_once('=').expect("checked above");
        let n = match parse_replicas(value) {
            Ok(n) => n,
            Err(e) => {
                errors.push(CliError::new(format!("{name}: invalid replicas value {value}: {e}")));
                continue;
            }
        };
        match scale_one(env, name, n) {
            Ok(()) => {
                env.println(&format!("{name} scaled to {n}"))?;
                scaled.push(name.to_string());
            }
            Err(e) => errors.push(CliError::new(format!("{name}: {}", e.message))),
        }
    }
    if !a.detach {
        for name in &scaled {
            if let Err(e) = progress::wait_on_service(env, name, false) {
                errors.push(CliError::new(format!("{name}: {}", e.message)));
            }
        }
    }
    CliError::join(errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::FakeDaemon;

    fn run_cmd(d: &FakeDaemon, cmd: ServiceCommand) -> (CliResult, String) {
        d.run(|env| run(env, cmd))
    }

    fn daemon() -> FakeDaemon {
        FakeDaemon::start(|req| {
            match (req.method.as_str(), req.target.as_str()) {
            ("GET", "/v1.44/services/web") => (200, r#"{"ID":"w1","Version":{"Index":4},"Spec":{"Name":"web","Mode":{"Replicated":{"Replicas":1}}}}"#.into()),
            ("GET", "/v1.44/services/redis") => (200, r#"{"ID":"r1","Version":{"Index":9},"Spec":{"Name":"redis","Mode":{"Replicated":{}}}}"#.into()),
            ("GET", "/v1.44/services/job") => (200, r#"{"ID":"j1","Version":{"Index":2},"Spec":{"Name":"job","Mode":{"ReplicatedJob":{"MaxConcurrent":1,"TotalCompletions":1}}}}"#.into()),
            ("GET", "/v1.44/services/agent") => (200, r#"{"ID":"a1","Version":{"Index":2},"Spec":{"Name":"agent","Mode":{"Global":{}}}}"#.into()),
            ("POST", "/v1.44/services/w1/update?version=4") | ("POST", "/v1.44/services/r1/update?version=9") | ("POST", "/v1.44/services/j1/update?version=2") => {
                (200, r#"{"Warnings":null}"#.into())
            }
            ("POST", "/v1.44/services/w1/update?rollback=previous&version=4") => (200, "{}".into()),
            ("DELETE", "/v1.44/services/web") => (200, String::new()),
            _ => (404, r#"{"message":"service nope not found"}"#.into()),
        }
        })
    }

    #[test]
    fn scale_several_at_once() {
        let d = daemon();
        let (r, out) =
            run_cmd(&d, ServiceCommand::Scale(ScaleArgs { detach: true, specs: vec!["web=5".into(), "redis=0".into(), "job=3".into()] }));
        r.unwrap();
        assert_eq!(out, "web scaled to 5\nredis scaled to 0\njob scaled to 3\n");
        let reqs = d.requests();
        assert_eq!(reqs[1].body, r#"{"Name":"web","Mode":{"Replicated":{"Replicas":5}}}"#);
        assert_eq!(reqs[3].body, r#"{"Name":"redis","Mode":{"Replicated":{"Replicas":0}}}"#);
        assert_eq!(reqs[5].body, r#"{"Name":"job","Mode":{"ReplicatedJob":{"MaxConcurrent":1,"TotalCompletions":3}}}"#);
    }

    #[test]
    fn scale_errors() {
        let d = daemon();
        let (r, out) = run_cmd(&d, ServiceCommand::Scale(ScaleArgs { detach: true, specs: vec!["web=2".into(), "web".into()] }));
        assert_eq!(out, "", "nothing is scaled when a specifier is bad");
        assert_eq!(
            r.unwrap_err().message,
            "invalid scale specifier 'web'.\nSee 'shoal service scale --help'.\n\nUsage:  shoal service scale SERVICE=REPLICAS [SERVICE=REPLICAS...]\n\nScale one or multiple replicated services"
        );
        assert!(check_scale_specs("shoal", &["=3".into()]).is_err());
        assert!(check_scale_specs("shoal", &["web=".into()]).is_err());
        let (r, out) = run_cmd(
            &d,
            ServiceCommand::Scale(ScaleArgs {
                detach: true,
                specs: vec!["web=x".into(), "agent=2".into(), "nope=1".into(), "web=3".into()],
            }),
        );
        assert_eq!(out, "web scaled to 3\n");
        assert_eq!(
            r.unwrap_err().message,
            "web: invalid replicas value x: strconv.ParseUint: parsing \"x\": invalid syntax\n\
             agent: scale can only be used with replicated or replicated-job mode\n\
             nope: Error response from daemon: service nope not found"
        );
        assert_eq!(parse_replicas("-1"), Err("strconv.ParseUint: parsing \"-1\": invalid syntax".into()));
    }

    #[test]
    fn rm_and_rollback() {
        let d = daemon();
        let (r, out) = run_cmd(&d, ServiceCommand::Rm { services: vec!["web".into(), "nope".into()] });
        assert_eq!(out, "web\n");
        assert_eq!(r.unwrap_err().message, "Error response from daemon: service nope not found");
        let (r, out) = run_cmd(&d, ServiceCommand::Rollback(RollbackArgs { detach: true, service: "web".into(), ..Default::default() }));
        r.unwrap();
        assert_eq!(out, "web\n");
    }
}
