//! `shoal service ls`: `ID NAME MODE REPLICAS IMAGE PORTS`, replicas as
//! `running/desired` from `GET /services?status=true`.

use std::collections::{BTreeSet, HashMap};

use clap::Args;

use crate::client::query;
use crate::commands::tasks::display_image;
use crate::commands::Env;
use crate::error::CliResult;
use crate::filters::Filters;
use crate::format::{self, natural_cmp, truncate_id};
use serde_json::Value;

use crate::json::{self, JsonExt};

#[derive(Args, Debug, Default, Clone)]
pub struct LsArgs {
    /// Only display IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Filter output based on conditions provided
    #[arg(short, long, value_name = "filter")]
    pub filter: Vec<String>,
}

pub const DEFAULT_SERVICE_TABLE_FORMAT: &str = "table {{.ID}}\t{{.Name}}\t{{.Mode}}\t{{.Replicas}}\t{{.Image}}\t{{.Ports}}";

fn list_format(source: &str, quiet: bool) -> String {
    match source {
        format::TABLE_FORMAT_KEY if quiet => format::DEFAULT_QUIET_FORMAT.into(),
        format::TABLE_FORMAT_KEY => DEFAULT_SERVICE_TABLE_FORMAT.into(),
        format::RAW_FORMAT_KEY if quiet => "id: {{.ID}}".into(),
        format::RAW_FORMAT_KEY => {
            "id: {{.ID}}\\nname: {{.Name}}\\nmode: {{.Mode}}\\nreplicas: {{.Replicas}}\\nimage: {{.Image}}\\nports: {{.Ports}}\\n".into()
        }
        other => other.into(),
    }
}

fn header() -> Value {
    format::header_obj(&[
        ("ID", "ID"),
        ("Name", "NAME"),
        ("Mode", "MODE"),
        ("Replicas", "REPLICAS"),
        ("Image", "IMAGE"),
        ("Ports", "PORTS"),
    ])
}

/// "replicated", "global", "replicated job", "global job".
pub fn mode_name(service: &Value) -> &'static str {
    let m = service.at(&["Spec", "Mode"]);
    if m.has("Global") {
        "global"
    } else if m.has("Replicated") {
        "replicated"
    } else if m.has("ReplicatedJob") {
        "replicated job"
    } else if m.has("GlobalJob") {
        "global job"
    } else {
        ""
    }
}

fn replicas(service: &Value) -> String {
    let st = &service["ServiceStatus"];
    let n = |k: &str| st[k].as_u64().unwrap_or(0);
    let (running, desired, completed) = (n("RunningTasks"), n("DesiredTasks"), n("CompletedTasks"));
    let mode = service.at(&["Spec", "Mode"]);
    if mode.has("ReplicatedJob") {
        let total = mode.at(&["ReplicatedJob", "TotalCompletions"]).as_u64().unwrap_or(0);
        return format!("{running}/{desired} ({completed}/{total} completed)");
    }
    if mode.has("GlobalJob") {
        return format!("{running}/{desired} ({completed}/{} completed)", desired + completed);
    }
    let max = if mode.has("Replicated") && !mode.has("Global") {
        service.at(&["Spec", "TaskTemplate", "Placement", "MaxReplicas"]).as_u64().unwrap_or(0)
    } else {
        0
    };
    if max > 0 {
        format!("{running}/{desired} (max {max} per node)")
    } else {
        format!("{running}/{desired}")
    }
}

/// The published ingress ports, with consecutive ones grouped into ranges
/// (`*:80-81->80-81/tcp`), as docker's service list shows them.
pub fn ports(service: &Value) -> String {
    let mut list: Vec<(String, u32, u32, String)> = service
        .at(&["Endpoint", "Ports"])
        .items()
        .iter()
        .map(|p| {
            (
                p["Protocol"].str().to_string(),
                p["PublishedPort"].as_u64().unwrap_or(0) as u32,
                p["TargetPort"].as_u64().unwrap_or(0) as u32,
                p["PublishMode"].str().to_string(),
            )
        })
        .collect();
    list.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    struct Range {
        p_start: u32,
        p_end: u32,
        t_start: u32,
        t_end: u32,
        protocol: String,
    }
    let show = |r: &Range| {
        let side = |s: u32, e: u32| if e > s { format!("{s}-{e}") } else { s.to_string() };
        format!("*:{}->{}/{}", side(r.p_start, r.p_end), side(r.t_start, r.t_end), r.protocol)
    };
    let mut out = Vec::new();
    let mut r = Range { p_start: 0, p_end: 0, t_start: 0, t_end: 0, protocol: String::new() };
    for (protocol, published, target, mode) in list {
        if mode != "ingress" {
            continue;
        }
        let is_range = r.t_end != r.t_start;
        let overlaps = target <= r.t_end;
        if protocol != r.protocol || published.wrapping_sub(r.p_end) > 1 || target.wrapping_sub(r.t_end) > 1 || (is_range && overlaps) {
            if r.p_start > 0 {
                out.push(show(&r));
            }
            r = Range { p_start: published, p_end: published, t_start: target, t_end: target, protocol };
            continue;
        }
        r.p_end = published;
        r.t_end = target;
    }
    if r.p_start > 0 {
        out.push(show(&r));
    }
    out.join(", ")
}

/// The fields docker's service list context offers (`{{json .}}` marshals
/// them in name order).
pub fn service_row(service: &Value) -> Value {
    json::object([
        ("ID", Value::from(truncate_id(service["ID"].str()))),
        ("Image", Value::from(display_image(service.at(&["Spec", "TaskTemplate", "ContainerSpec", "Image"]).str(), true))),
        ("Mode", Value::from(mode_name(service))),
        ("Name", Value::from(service.at(&["Spec", "Name"]).str())),
        ("Ports", Value::from(ports(service))),
        ("Replicas", Value::from(replicas(service))),
    ])
}

pub fn render(services: &[Value], format: &str, quiet: bool) -> CliResult<String> {
    let mut services: Vec<&Value> = services.iter().collect();
    services.sort_by(|a, b| natural_cmp(a.at(&["Spec", "Name"]).str(), b.at(&["Spec", "Name"]).str()));
    let rows: Vec<Value> = services.iter().map(|s| service_row(s)).collect();
    format::write_rows(&list_format(format, quiet), &header(), &rows)
}

/// docker's `AppendServiceStatus`: counts from the task list for services
/// the daemon sent without a `ServiceStatus`.
fn append_service_status(env: &Env, services: &mut [Value]) -> CliResult {
    let mut filter = Filters::new();
    let mut status: HashMap<String, (u64, u64)> = HashMap::new();
    for s in services.iter_mut() {
        if !s["ServiceStatus"].is_null() {
            continue;
        }
        let mode = s.at(&["Spec", "Mode"]);
        let desired = if mode.has("Replicated") {
            mode.at(&["Replicated", "Replicas"]).as_u64().unwrap_or(0)
        } else if mode.has("Global") {
            0
        } else {
            continue;
        };
        s.set("ServiceStatus", json::object([("RunningTasks", Value::from(0u64)), ("DesiredTasks", Value::from(desired))]));
        let id = s["ID"].str().to_string();
        filter.add("service", &id);
        status.insert(id, (0, 0));
    }
    if status.is_empty() {
        return Ok(());
    }
    let tasks = env.client.get(&format!("/tasks{}", filter.query()))?;
    if tasks.items().is_empty() {
        return Ok(());
    }
    let nodes = env.client.get("/nodes")?;
    let active: BTreeSet<&str> =
        nodes.items().iter().filter(|n| n.at(&["Status", "State"]).str() != "down").map(|n| n["ID"].str()).collect();
    for t in tasks.items() {
        let Some(st) = status.get_mut(t["ServiceID"].str()) else { continue };
        if t["DesiredState"].str() != "shutdown" {
            st.1 += 1;
        }
        if active.contains(t["NodeID"].str()) && t.at(&["Status", "State"]).str() == "running" {
            st.0 += 1;
        }
    }
    for s in services.iter_mut() {
        if let Some((running, desired)) = status.get(s["ID"].str()) {
            s.set("ServiceStatus", json::object([("RunningTasks", Value::from(*running)), ("DesiredTasks", Value::from(*desired))]));
        }
    }
    Ok(())
}

pub fn run(env: &mut Env, a: LsArgs) -> CliResult {
    let filters = Filters::from_flags(&a.filter)?;
    let mut params = Vec::new();
    if !filters.is_empty() {
        params.push(("filters", filters.to_json()));
    }
    if !a.quiet {
        params.push(("status", "true".to_string()));
    }
    let list = env.client.get(&format!("/services{}", query(&params)))?;
    let mut services = list.items().to_vec();
    if !a.quiet {
        append_service_status(env, &mut services)?;
    }
    let format = a.format.filter(|f| !f.is_empty()).unwrap_or_else(|| format::TABLE_FORMAT_KEY.into());
    let text = render(&services, &format, a.quiet)?;
    env.print(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::FakeDaemon;

    fn svc(id: &str, name: &str, mode: &str, image: &str, status: Option<(u64, u64)>, ports: &str) -> Value {
        let st = status
            .map(|(r, d)| format!(r#","ServiceStatus":{{"RunningTasks":{r},"DesiredTasks":{d},"CompletedTasks":0}}"#))
            .unwrap_or_default();
        json::parse(&format!(
            r#"{{"ID":"{id}","Spec":{{"Name":"{name}","TaskTemplate":{{"ContainerSpec":{{"Image":"{image}"}}}},"Mode":{mode}}},"Endpoint":{{"Ports":[{ports}]}}{st}}}"#
        ))
        .unwrap()
    }

    fn port(proto: &str, published: u32, target: u32, mode: &str) -> String {
        format!(r#"{{"Protocol":"{proto}","TargetPort":{target},"PublishedPort":{published},"PublishMode":"{mode}"}}"#)
    }

    #[test]
    fn table_sorted_by_name_with_replicas_and_ports() {
        let services = vec![
            svc(
                "aaaaaaaaaaaaaaaaaaaaaaaa1",
                "web-10",
                r#"{"Replicated":{"Replicas":9}}"#,
                "busybox:1.36@sha256:abcdef",
                Some((0, 9)),
                &port("tcp", 80, 80, "ingress"),
            ),
            svc("bbbbbbbbbbbbbbbbbbbbbbbb2", "web-2", r#"{"Global":{}}"#, "docker.io/library/nginx:latest", Some((3, 3)), ""),
            svc(
                "ccccccccccccccccccccccccc",
                "job",
                r#"{"ReplicatedJob":{"MaxConcurrent":2,"TotalCompletions":5}}"#,
                "busybox",
                Some((1, 2)),
                "",
            ),
        ];
        let out = render(&services, "table", false).unwrap();
        assert_eq!(
            out,
            "ID             NAME      MODE             REPLICAS              IMAGE          PORTS\n\
             cccccccccccc   job       replicated job   1/2 (0/5 completed)   busybox        \n\
             bbbbbbbbbbbb   web-2     global           3/3                   nginx:latest   \n\
             aaaaaaaaaaaa   web-10    replicated       0/9                   busybox:1.36   *:80->80/tcp\n"
        );
        assert_eq!(render(&services, "table", true).unwrap(), "cccccccccccc\nbbbbbbbbbbbb\naaaaaaaaaaaa\n");
        assert_eq!(
            render(&services[1..2], "json", false).unwrap(),
            "{\"ID\":\"bbbbbbbbbbbb\",\"Image\":\"nginx:latest\",\"Mode\":\"global\",\"Name\":\"web-2\",\"Ports\":\"\",\"Replicas\":\"3/3\"}\n"
        );
        assert_eq!(render(&[], "table", false).unwrap(), "ID        NAME      MODE      REPLICAS   IMAGE     PORTS\n");
    }

    #[test]
    fn port_ranges_group_like_docker() {
        let p = [
            port("tcp", 80, 80, "ingress"),
            port("tcp", 81, 81, "ingress"),
            port("tcp", 82, 80, "ingress"),
            port("udp", 53, 53, "ingress"),
            port("tcp", 9000, 9000, "host"),
        ]
        .join(",");
        let s = svc("x", "x", r#"{"Replicated":{"Replicas":1}}"#, "x", None, &p);
        assert_eq!(ports(&s), "*:80-81->80-81/tcp, *:82->80/tcp, *:53->53/udp");
        let p = [port("tcp", 8080, 80, "ingress"), port("tcp", 8081, 80, "ingress")].join(",");
        assert_eq!(ports(&svc("x", "x", "{}", "x", None, &p)), "*:8080-8081->80/tcp");
        let with_max = json::parse(r#"{"Spec":{"Mode":{"Replicated":{"Replicas":4}},"TaskTemplate":{"Placement":{"MaxReplicas":2}}},"ServiceStatus":{"RunningTasks":1,"DesiredTasks":4}}"#).unwrap();
        assert_eq!(replicas(&with_max), "1/4 (max 2 per node)");
    }

    #[test]
    fn asks_for_status_and_falls_back_to_tasks() {
        let list = format!("[{}]", svc("s1", "web", r#"{"Replicated":{"Replicas":2}}"#, "busybox", None, "").to_compact());
        let d = FakeDaemon::start(move |req| match (req.method.as_str(), req.target.as_str()) {
            ("GET", "/v1.44/services?status=true") => (200, list.clone()),
            ("GET", t) if t.starts_with("/v1.44/tasks?filters=") => (
                200,
                r#"[{"ServiceID":"s1","NodeID":"n1","DesiredState":"running","Status":{"State":"running"}},
                    {"ServiceID":"s1","NodeID":"n1","DesiredState":"shutdown","Status":{"State":"failed"}}]"#
                    .into(),
            ),
            ("GET", "/v1.44/nodes") => (200, r#"[{"ID":"n1","Status":{"State":"ready"}}]"#.into()),
            _ => (404, r#"{"message":"nope"}"#.into()),
        });
        let client = d.client();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        {
            let mut env = Env { client: &client, out: &mut out, err: &mut err, prog: "shoal".into() };
            run(&mut env, LsArgs { format: Some("{{.Name}} {{.Replicas}}".into()), ..Default::default() }).unwrap();
        }
        assert_eq!(String::from_utf8(out).unwrap(), "web 1/1\n");
    }
}
