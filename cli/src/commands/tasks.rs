//! The task table shared by `node ps` and `service ps`:
//! names `service.slot` (or `service.nodeID` for global tasks), history rows
//! indented with ` \_ `, times as "Running 8 seconds ago".

use std::collections::HashMap;

use super::Env;
use crate::client::{path_segment, Client};
use crate::duration::ago;
use crate::error::CliResult;
use crate::format::{self, ellipsis, natural_cmp, pretty_print, truncate_id};
use serde_json::Value;

use crate::json::{self, JsonExt};
use crate::timestamp::{now_unix_nanos, Timestamp};

pub const DEFAULT_TASK_TABLE_FORMAT: &str =
    "table {{.ID}}\t{{.Name}}\t{{.Image}}\t{{.Node}}\t{{.DesiredState}}\t{{.CurrentState}}\t{{.Error}}\t{{.Ports}}";
const MAX_ERR_LENGTH: usize = 30;

pub struct TaskListOptions {
    pub trunc: bool,
    pub no_resolve: bool,
    pub quiet: bool,
    /// "table" for the default.
    pub format: String,
}

fn task_format(source: &str, quiet: bool) -> String {
    match source {
        format::TABLE_FORMAT_KEY if quiet => format::DEFAULT_QUIET_FORMAT.into(),
        format::TABLE_FORMAT_KEY => DEFAULT_TASK_TABLE_FORMAT.into(),
        format::RAW_FORMAT_KEY if quiet => "id: {{.ID}}".into(),
        format::RAW_FORMAT_KEY => "id: {{.ID}}\\nname: {{.Name}}\\nimage: {{.Image}}\\nnode: {{.Node}}\\ndesired_state: {{.DesiredState}}\\ncurrent_state: {{.CurrentState}}\\nerror: {{.Error}}\\nports: {{.Ports}}\\n".into(),
        other => other.into(),
    }
}

/// Maps node and service IDs to names (docker's `idresolver`), caching
/// answers; unknown IDs stay IDs.
pub struct Resolver<'a> {
    client: &'a Client,
    no_resolve: bool,
    cache: HashMap<String, String>,
}

impl<'a> Resolver<'a> {
    pub fn new(client: &'a Client, no_resolve: bool) -> Self {
        Resolver { client, no_resolve, cache: HashMap::new() }
    }

    pub fn node(&mut self, id: &str) -> String {
        self.resolve("node", id, |c, id| {
            let n = c.get(&format!("/nodes/{}", path_segment(id))).ok()?;
            let name = n.at(&["Spec", "Name"]).str();
            let host = n.at(&["Description", "Hostname"]).str();
            Some(if !name.is_empty() {
                name.to_string()
            } else if !host.is_empty() {
                host.to_string()
            } else {
                id.to_string()
            })
        })
    }

    pub fn service(&mut self, id: &str) -> String {
        self.resolve("service", id, |c, id| {
            let s = c.get(&format!("/services/{}", path_segment(id))).ok()?;
            Some(s.at(&["Spec", "Name"]).str().to_string())
        })
    }

    fn resolve(&mut self, kind: &str, id: &str, get: impl Fn(&Client, &str) -> Option<String>) -> String {
        if self.no_resolve || id.is_empty() {
            return id.to_string();
        }
        let key = format!("{kind}/{id}");
        if let Some(v) = self.cache.get(&key) {
            return v.clone();
        }
        let v = get(self.client, id).unwrap_or_else(|| id.to_string());
        self.cache.insert(key, v.clone());
        v
    }
}

/// The image as the table shows it: with `trunc`, a digest is dropped when
/// there is a tag, and Docker Hub names are shortened ("nginx:1.25").
pub fn display_image(image: &str, trunc: bool) -> String {
    if !trunc {
        return image.to_string();
    }
    let name_tag = image.split_once('@').map(|(n, _)| n).unwrap_or(image);
    let last_slash = name_tag.rfind('/').map(|i| i + 1).unwrap_or(0);
    if !name_tag[last_slash..].contains(':') {
        return image.to_string();
    }
    let familiar = name_tag
        .strip_prefix("docker.io/library/")
        .or_else(|| name_tag.strip_prefix("index.docker.io/library/"))
        .or_else(|| name_tag.strip_prefix("docker.io/"))
        .or_else(|| name_tag.strip_prefix("index.docker.io/"))
        .unwrap_or(name_tag);
    familiar.to_string()
}

fn elapsed_since(ts: &str, now: i128) -> i64 {
    let t = Timestamp::parse(ts).unwrap_or_else(Timestamp::zero);
    (now - t.unix_nanos()).clamp(0, i64::MAX as i128) as i64
}

/// One row of the task table.
pub fn task_row(task: &Value, name: &str, node: &str, trunc: bool, now: i128) -> Value {
    let id = task["ID"].str();
    let status = &task["Status"];
    let current = format!("{} {}", pretty_print(status["State"].str()), ago(elapsed_since(status["Timestamp"].str(), now)).to_lowercase());
    let mut err = status["Err"].str().to_string();
    if trunc {
        err = ellipsis(&err, MAX_ERR_LENGTH);
    }
    if !err.is_empty() {
        err = format!("\"{err}\"");
    }
    let ports: Vec<String> = status
        .at(&["PortStatus", "Ports"])
        .items()
        .iter()
        .map(|p| {
            format!("*:{}->{}/{}", p["PublishedPort"].as_u64().unwrap_or(0), p["TargetPort"].as_u64().unwrap_or(0), p["Protocol"].str())
        })
        .collect();
    json::object([
        ("CurrentState", Value::from(current)),
        ("DesiredState", Value::from(pretty_print(task["DesiredState"].str()))),
        ("Error", Value::from(err)),
        ("ID", Value::from(if trunc { truncate_id(id) } else { id.to_string() })),
        ("Image", Value::from(display_image(task.at(&["Spec", "ContainerSpec", "Image"]).str(), trunc))),
        ("Name", Value::from(name)),
        ("Node", Value::from(node)),
        ("Ports", Value::from(ports.join(","))),
    ])
}

fn task_header() -> Value {
    format::header_obj(&[
        ("ID", "ID"),
        ("Name", "NAME"),
        ("Image", "IMAGE"),
        ("Node", "NODE"),
        ("DesiredState", "DESIRED STATE"),
        ("CurrentState", "CURRENT STATE"),
        ("Error", "ERROR"),
        ("Ports", "PORTS"),
    ])
}

/// Renders tasks whose names and node names are already resolved:
/// `named` holds (task, name, node name).
pub fn render_tasks(mut named: Vec<(Value, String, String)>, opts: &TaskListOptions, now: i128) -> CliResult<String> {
    // By name (natural order), newest first within a name.
    named.sort_by(|a, b| {
        natural_cmp(&a.1, &b.1).then_with(|| {
            let ta = Timestamp::parse(a.0.at(&["CreatedAt"]).str()).map(|t| t.unix_nanos()).unwrap_or(0);
            let tb = Timestamp::parse(b.0.at(&["CreatedAt"]).str()).map(|t| t.unix_nanos()).unwrap_or(0);
            tb.cmp(&ta)
        })
    });
    let fmt = task_format(&opts.format, opts.quiet);
    let indent = if format::is_table(&fmt) { " \\_ " } else { "" };
    let mut prev = String::new();
    let mut rows = Vec::with_capacity(named.len());
    for (task, name, node) in &named {
        let shown = if *name == prev { format!("{indent}{name}") } else { name.clone() };
        prev = name.clone();
        rows.push(task_row(task, &shown, node, opts.trunc, now));
    }
    format::write_rows(&fmt, &task_header(), &rows)
}

/// Resolves names and prints tasks.
pub fn print(env: &mut Env, tasks: Vec<Value>, opts: &TaskListOptions) -> CliResult {
    let mut resolver = Resolver::new(env.client, opts.no_resolve);
    let mut named = Vec::with_capacity(tasks.len());
    for t in tasks {
        let service = resolver.service(t["ServiceID"].str());
        let slot = t["Slot"].as_u64().unwrap_or(0);
        let name = if slot != 0 { format!("{service}.{slot}") } else { format!("{service}.{}", t["NodeID"].str()) };
        let node = resolver.node(t["NodeID"].str());
        named.push((t, name, node));
    }
    let text = render_tasks(named, opts, now_unix_nanos())?;
    env.print(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, state: &str, desired: &str, ts: &str, created: &str, err: &str) -> Value {
        json::parse(&format!(
            r#"{{"ID":"{id}","CreatedAt":"{created}","DesiredState":"{desired}","Spec":{{"ContainerSpec":{{"Image":"nginx:1.11.3-alpine@sha256:abc"}}}},
                "Status":{{"State":"{state}","Timestamp":"{ts}","Err":"{err}","PortStatus":{{"Ports":[{{"Protocol":"tcp","TargetPort":80,"PublishedPort":8080}}]}}}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn table_with_history() {
        let now = Timestamp::parse("2024-01-01T00:01:00Z").unwrap().unix_nanos();
        let named = vec![
            (
                task(
                    "etb0jpr21mhe0000000000000",
                    "rejected",
                    "shutdown",
                    "2024-01-01T00:00:00Z",
                    "2024-01-01T00:00:00Z",
                    "No such image: nginx:1.11.2-alpine",
                ),
                "web.1".to_string(),
                "moby".to_string(),
            ),
            (
                task("uultetkovwch0000000000000", "running", "running", "2024-01-01T00:00:17Z", "2024-01-01T00:00:10Z", ""),
                "web.1".to_string(),
                "moby".to_string(),
            ),
        ];
        let opts = TaskListOptions { trunc: true, no_resolve: false, quiet: false, format: "table".into() };
        let out = render_tasks(named, &opts, now).unwrap();
        let want = [
            "ID             NAME        IMAGE                 NODE      DESIRED STATE   CURRENT STATE                 ERROR                              PORTS",
            "uultetkovwch   web.1       nginx:1.11.3-alpine   moby      Running         Running 43 seconds ago                                           *:8080->80/tcp",
            "etb0jpr21mhe    \\_ web.1   nginx:1.11.3-alpine   moby      Shutdown        Rejected about a minute ago   \"No such image: nginx:1.11.2-a…\"   *:8080->80/tcp",
            "",
        ]
        .join("\n");
        assert_eq!(out, want);
    }

    #[test]
    fn images() {
        assert_eq!(display_image("nginx:1.25@sha256:abc", true), "nginx:1.25");
        assert_eq!(display_image("docker.io/library/nginx:1.25", true), "nginx:1.25");
        assert_eq!(display_image("localhost:5000/app:2", true), "localhost:5000/app:2");
        assert_eq!(display_image("localhost:5000/app@sha256:abc", true), "localhost:5000/app@sha256:abc");
        assert_eq!(display_image("nginx:1.25@sha256:abc", false), "nginx:1.25@sha256:abc");
    }
}
