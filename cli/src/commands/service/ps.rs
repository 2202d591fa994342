//! `shoal service ps SERVICE...`: the task table (`tasks::print`) for the
//! services matched by full ID, full name, then unique ID prefix.

use clap::Args;

use crate::commands::tasks::{self, TaskListOptions};
use crate::commands::{node_reference, Env};
use crate::error::{CliError, CliResult};
use crate::filters::Filters;
use crate::format;
use crate::json::JsonExt;

#[derive(Args, Debug, Default, Clone)]
pub struct PsArgs {
    /// Only display task IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Do not map IDs to Names
    #[arg(long = "no-resolve")]
    pub no_resolve: bool,
    /// Pretty-print tasks using a Go template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Filter output based on conditions provided
    #[arg(short, long, value_name = "filter")]
    pub filter: Vec<String>,
    #[arg(value_name = "SERVICE", required = true)]
    pub services: Vec<String>,
}

/// docker's `createFilter`: the user's filters plus `service=<id>` for each
/// service found; the names not found.
fn service_filter(env: &Env, a: &PsArgs) -> CliResult<(Filters, Vec<String>)> {
    let mut filter = Filters::from_flags(&a.filter)?;
    let (mut by_id, mut by_name) = (Filters::new(), Filters::new());
    for s in &a.services {
        by_id.add("id", s);
        by_name.add("name", s);
    }
    let id_list = env.client.get(&format!("/services{}", by_id.query()))?;
    let name_list = env.client.get(&format!("/services{}", by_name.query()))?;
    let mut notfound = Vec::new();
    let mut count = 0;
    'services: for s in &a.services {
        for svc in id_list.items() {
            if svc["ID"].str() == s {
                filter.add("service", s);
                count += 1;
                continue 'services;
            }
        }
        for svc in name_list.items() {
            if svc.at(&["Spec", "Name"]).str() == s {
                filter.add("service", svc["ID"].str());
                count += 1;
                continue 'services;
            }
        }
        let mut found = false;
        for svc in id_list.items() {
            if svc["ID"].str().starts_with(s.as_str()) {
                if found {
                    return Err(CliError::new(format!("multiple services found with provided prefix: {s}")));
                }
                filter.add("service", svc["ID"].str());
                count += 1;
                found = true;
            }
        }
        if !found {
            notfound.push(format!("no such service: {s}"));
        }
    }
    if count == 0 {
        return Err(CliError::new(notfound.join("\n")));
    }
    Ok((filter, notfound))
}

pub fn run(env: &mut Env, a: PsArgs) -> CliResult {
    let (mut filter, notfound) = service_filter(env, &a)?;
    // `node=self` and node names become node IDs
    let nodes: Vec<String> = filter.get("node").into_iter().map(String::from).collect();
    if !nodes.is_empty() {
        filter.remove("node");
        for n in &nodes {
            filter.add("node", &node_reference(env.client, n)?);
        }
    }
    let list = env.client.get(&format!("/tasks{}", filter.query()))?;
    let opts = TaskListOptions {
        trunc: !(a.no_trunc || a.quiet),
        no_resolve: a.no_resolve,
        quiet: a.quiet,
        format: a.format.clone().filter(|f| !f.is_empty()).unwrap_or_else(|| format::TABLE_FORMAT_KEY.into()),
    };
    tasks::print(env, list.items().to_vec(), &opts)?;
    if !notfound.is_empty() {
        return Err(CliError::new(notfound.join("\n")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::FakeDaemon;
    use serde_json::Value;

    use crate::json;

    const SERVICES: &str = r#"[{"ID":"abc123def456ghi789jkl0mno","Spec":{"Name":"web"}},{"ID":"abd999","Spec":{"Name":"db"}}]"#;

    fn task(id: &str, slot: u64, image: &str, st: &str, desired: &str, created: &str, ts: &str) -> String {
        format!(
            r#"{{"ID":"{id}","ServiceID":"abc123def456ghi789jkl0mno","Slot":{slot},"NodeID":"n1","CreatedAt":"{created}","DesiredState":"{desired}",
                "Spec":{{"ContainerSpec":{{"Image":"{image}"}}}},"Status":{{"State":"{st}","Timestamp":"{ts}"}}}}"#
        )
    }

    fn daemon() -> FakeDaemon {
        let now = crate::timestamp::now_unix_nanos();
        let secs = (now / 1_000_000_000) as i64;
        // an RFC 3339 time `ago` seconds before now
        let ts = |ago: i64| {
            let t = time::OffsetDateTime::from_unix_timestamp(secs - ago).unwrap();
            t.format(&time::format_description::well_known::Rfc3339).unwrap()
        };
        let tasks = format!(
            "[{},{},{}]",
            task("oldtask00000000000000000a", 1, "busybox:1.35", "shutdown", "shutdown", &ts(300), &ts(200)),
            task("newtask00000000000000000b", 1, "busybox:1.36", "assigned", "running", &ts(100), &ts(8)),
            task("slot2task000000000000000c", 2, "busybox:1.36", "assigned", "running", &ts(100), &ts(8)),
        );
        FakeDaemon::start(move |req| {
            let t = req.target.as_str();
            match req.method.as_str() {
                "GET" if t.starts_with("/v1.44/services?filters=") => (200, SERVICES.into()),
                "GET" if t == "/v1.44/services/abc123def456ghi789jkl0mno" => {
                    (200, r#"{"ID":"abc123def456ghi789jkl0mno","Spec":{"Name":"web"}}"#.into())
                }
                "GET" if t == "/v1.44/nodes/n1" => (200, r#"{"ID":"n1","Description":{"Hostname":"node-2"}}"#.into()),
                "GET" if t.starts_with("/v1.44/tasks?filters=") => {
                    let running_only = t.contains("desired-state");
                    let all: Value = json::parse(&tasks).unwrap();
                    let keep: Vec<Value> =
                        all.items().iter().filter(|x| !running_only || x["DesiredState"].str() == "running").cloned().collect();
                    (200, Value::Array(keep).to_compact())
                }
                _ => (404, r#"{"message":"nope"}"#.into()),
            }
        })
    }

    fn ps(d: &FakeDaemon, a: PsArgs) -> (CliResult, String) {
        let client = d.client();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let r = {
            let mut env = Env { client: &client, out: &mut out, err: &mut err, prog: "shoal".into() };
            run(&mut env, a)
        };
        (r, String::from_utf8(out).unwrap())
    }

    #[test]
    fn history_rows_are_indented_under_their_slot() {
        let d = daemon();
        let (r, out) = ps(&d, PsArgs { services: vec!["web".into()], ..Default::default() });
        r.unwrap();
        assert_eq!(
            out,
            "ID             NAME        IMAGE          NODE      DESIRED STATE   CURRENT STATE            ERROR     PORTS\n\
             newtask00000   web.1       busybox:1.36   node-2    Running         Assigned 8 seconds ago             \n\
             oldtask00000    \\_ web.1   busybox:1.35   node-2    Shutdown        Shutdown 3 minutes ago             \n\
             slot2task000   web.2       busybox:1.36   node-2    Running         Assigned 8 seconds ago             \n"
        );
        let reqs = d.requests();
        assert!(reqs[0].target.contains("%22id%22"), "{}", reqs[0].target);
        assert!(reqs[1].target.contains("%22name%22"), "{}", reqs[1].target);
        assert!(reqs[2].target.ends_with("%7B%22service%22%3A%7B%22abc123def456ghi789jkl0mno%22%3Atrue%7D%7D"), "{}", reqs[2].target);
    }

    #[test]
    fn filters_quiet_and_no_trunc() {
        let d = daemon();
        let (r, out) = ps(
            &d,
            PsArgs { services: vec!["web".into()], filter: vec!["desired-state=running".into()], quiet: true, ..Default::default() },
        );
        r.unwrap();
        assert_eq!(out, "newtask00000000000000000b\nslot2task000000000000000c\n");
        let (r, out) = ps(
            &d,
            PsArgs {
                services: vec!["abc1".into()],
                no_trunc: true,
                format: Some("{{.ID}} {{.Name}} {{.Image}}".into()),
                ..Default::default()
            },
        );
        r.unwrap();
        assert_eq!(out, "newtask00000000000000000b web.1 busybox:1.36\noldtask00000000000000000a web.1 busybox:1.35\nslot2task000000000000000c web.2 busybox:1.36\n");
    }

    #[test]
    fn unknown_and_ambiguous_services() {
        let d = daemon();
        let (r, out) = ps(&d, PsArgs { services: vec!["nope".into()], ..Default::default() });
        assert_eq!(r.unwrap_err().message, "no such service: nope");
        assert_eq!(out, "");
        let (r, out) = ps(&d, PsArgs { services: vec!["web".into(), "nope".into()], quiet: true, ..Default::default() });
        assert_eq!(r.unwrap_err().message, "no such service: nope");
        assert_eq!(out.lines().count(), 3);
        let (r, _) = ps(&d, PsArgs { services: vec!["ab".into()], ..Default::default() });
        assert_eq!(r.unwrap_err().message, "multiple services found with provided prefix: ab");
    }
}
