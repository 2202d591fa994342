//! A node's own task containers, as a Docker engine on a swarm node shows
//! them: `GET /containers/json` (`docker ps`), `/containers/{id}/json`
//! (`docker inspect`), `/containers/{id}/logs` and `/containers/{id}/top`.
//! Everything comes from the worker's `Containers` records.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper::{Response, StatusCode};
use serde_json::{json, Map, Value};
use shoal_api::filters::Filters;
use shoal_api::ApiError;
use shoal_rpc::logs::{LogOptions, LogStream};
use shoal_worker::containers::{ContainerRecord, LookupError};
use shoal_worker::health::HealthSnapshot;
use tokio::sync::mpsc;

use super::logs::{frame, StreamBody};
use super::{json_response, Call, Reply};
use crate::swarm::SwarmNode;

/// The filters Docker's container list knows.
const FILTERS: &[&str] = &[
    "ancestor",
    "before",
    "expose",
    "exited",
    "health",
    "id",
    "isolation",
    "is-task",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];
/// Those Shoal applies (the others are refused rather than ignored).
const APPLIED: &[&str] = &["exited", "health", "id", "is-task", "label", "name", "network", "status"];
/// Docker's container states (`status=` values).
const STATES: &[&str] = &["created", "restarting", "running", "removing", "paused", "exited", "dead"];

/// A lookup failure as Docker answers it.
pub fn lookup_error(e: LookupError) -> ApiError {
    match e {
        LookupError::NotFound(_) => ApiError::not_found(e.to_string()),
        LookupError::Ambiguous(_) => ApiError::bad_request(e.to_string()),
    }
}

/// The container `key` names (ID, name or unique ID prefix).
pub fn find(node: &SwarmNode, key: &str) -> Result<ContainerRecord, ApiError> {
    node.tasks.containers().get(key).map_err(lookup_error)
}

/// The list query's filters, checked as Docker checks them.
#[derive(Debug)]
pub struct ListFilter {
    f: Filters,
    exited: Vec<i32>,
    /// `status=` given: stopped containers are listed too.
    pub wants_all: bool,
    is_task: Option<bool>,
    names: Vec<regex::Regex>,
    ids: Vec<regex::Regex>,
    states: Vec<regex::Regex>,
}

impl ListFilter {
    pub fn parse(raw: Option<&str>) -> Result<ListFilter, ApiError> {
        let f = Filters::parse(raw, FILTERS)?;
        for key in FILTERS {
            if !f.get(key).is_empty() && !APPLIED.contains(key) {
                return Err(ApiError::bad_request(format!("invalid filter '{key}': Shoal does not filter containers by {key}")));
            }
        }
        let mut exited = Vec::new();
        for v in f.get("exited") {
            exited.push(v.parse::<i32>().map_err(|_| ApiError::bad_request(format!("invalid filter 'exited={v}'")))?);
        }
        for v in f.get("status") {
            if !STATES.contains(&v.as_str()) {
                return Err(ApiError::bad_request(format!("invalid filter 'status={v}'")));
            }
        }
        for v in f.get("health") {
            if !["starting", "healthy", "unhealthy", "none"].contains(&v.as_str()) {
                return Err(ApiError::bad_request(format!("Unrecognised filter value for health: {v}")));
            }
        }
        let is_task = match f.get("is-task") {
            [] => None,
            [v] if v == "true" => Some(true),
            [v] if v == "false" => Some(false),
            [v, ..] => return Err(ApiError::bad_request(format!("invalid filter 'is-task={v}'"))),
        };
        // Docker matches these as regular expressions; one that does not
        // compile matches nothing (only exactly).
        let regexes = |key: &str| f.get(key).iter().filter_map(|v| regex::Regex::new(v).ok()).collect::<Vec<_>>();
        Ok(ListFilter {
            wants_all: !f.get("status").is_empty(),
            exited,
            is_task,
            names: regexes("name"),
            ids: regexes("id"),
            states: regexes("status"),
            f,
        })
    }

    fn matches_any(&self, key: &str, res: &[regex::Regex], source: &str) -> bool {
        let vals = self.f.get(key);
        vals.is_empty() || vals.iter().any(|v| v == source) || res.iter().any(|r| r.is_match(source))
    }

    /// Whether `r` (with its health, if it has a check) passes.
    pub fn matches(&self, r: &ContainerRecord, health: Option<&str>) -> bool {
        self.matches_any("name", &self.names, &format!("/{}", r.name))
            && self.matches_any("id", &self.ids, &r.id)
            && self.f.labels_match("label", &r.labels)
            && (self.exited.is_empty() || r.exit_code.is_some_and(|c| self.exited.contains(&c)))
            && self.matches_any("status", &self.states, r.state())
            && self.f.any("health", |v| v == health.unwrap_or("none"))
            && self.is_task.is_none_or(|t| t == r.is_task())
            && self.f.any("network", |v| r.networks.iter().any(|n| n.name == v || n.id.starts_with(v)))
    }
}

/// Docker's `Command` column: the path, then the arguments, those with a
/// space in single quotes.
pub fn command_line(path: &str, args: &[String]) -> String {
    let mut out = path.to_string();
    for a in args {
        out.push(' ');
        if a.contains(' ') {
            out.push_str(&format!("'{a}'"));
        } else {
            out.push_str(a);
        }
    }
    out
}

/// docker's `units.HumanDuration`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    let seconds = secs as u64;
    let minutes = (secs / 60.0) as u64;
    let hours = (secs / 3600.0 + 0.5) as u64;
    match () {
        _ if seconds < 1 => "Less than a second".into(),
        _ if seconds == 1 => "1 second".into(),
        _ if seconds < 60 => format!("{seconds} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", (secs / 3600.0) as u64 / 24 / 365),
    }
}

fn since(t: &str, now: SystemTime) -> Duration {
    shoal_api::time::parse_rfc3339(t).and_then(|t| now.duration_since(t).ok()).unwrap_or_default()
}

/// Docker's `Status` column: `Up 5 seconds (healthy)`, `Exited (3) 2 minutes ago`.
pub fn status_text(r: &ContainerRecord, health: Option<&str>, now: SystemTime) -> String {
    match r.exit_code {
        None if r.created_only() => "Created".into(),
        None => {
            let up = format!("Up {}", human_duration(since(&r.started_at, now)));
            match health {
                Some("starting") => format!("{up} (health: starting)"),
                Some(h) => format!("{up} ({h})"),
                None => up,
            }
        }
        Some(code) => format!("Exited ({code}) {} ago", human_duration(since(&r.finished_at, now))),
    }
}

fn unix_seconds(t: &str) -> i64 {
    shoal_api::time::parse_rfc3339(t).and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Host-mode published ports, in the list's shape.
fn ports(r: &ContainerRecord) -> Vec<Value> {
    r.ports
        .iter()
        .filter(|p| p.is_host_published())
        .map(|p| json!({"IP": "0.0.0.0", "PrivatePort": p.target_port, "PublicPort": p.published_port, "Type": p.protocol.as_str()}))
        .collect()
}

/// `Mounts` as Docker's `MountPoint`s.
fn mount_points(r: &ContainerRecord) -> Vec<Value> {
    r.mounts
        .iter()
        .map(|m| {
            let volume = m.r#type == "volume";
            json!({
                "Type": if m.r#type.is_empty() { "volume" } else { m.r#type.as_str() },
                "Name": if volume { m.source.as_str() } else { "" },
                "Source": if volume { "" } else { m.source.as_str() },
                "Destination": m.target,
                "Driver": if volume { "local" } else { "" },
                "Mode": "",
                "RW": !m.read_only,
                "Propagation": m.bind_options.as_ref().map(|b| b.propagation.as_str()).filter(|p| !p.is_empty()).unwrap_or(if m.r#type == "bind" { "rprivate" } else { "" }),
            })
        })
        .collect()
}

/// `NetworkSettings.Networks`: the task's overlays, or the node's bridge.
fn networks(r: &ContainerRecord) -> Map<String, Value> {
    let endpoint = |id: &str, cidr: &str, gateway: &str| {
        let (ip, len) = cidr.split_once('/').unwrap_or((cidr, "0"));
        json!({
            "IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": "", "NetworkID": id, "EndpointID": "",
            "Gateway": gateway, "IPAddress": ip, "IPPrefixLen": len.parse::<u32>().unwrap_or(0), "IPv6Gateway": "",
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DriverOpts": null, "DNSNames": null,
        })
    };
    let mut m = Map::new();
    for n in &r.networks {
        m.insert(n.name.clone(), endpoint(&n.id, &n.address, ""));
    }
    if m.is_empty() {
        if let Some((addr, gateway)) = &r.bridge {
            m.insert("bridge".into(), endpoint("", addr, gateway));
        }
    }
    m
}

/// One `docker ps` row (Docker's `ContainerSummary`, API 1.44).
pub fn summary(r: &ContainerRecord, health: Option<&str>, now: SystemTime) -> Value {
    json!({
        "Id": r.id,
        "Names": [format!("/{}", r.name)],
        "Image": r.image,
        "ImageID": r.image_id,
        "Command": command_line(&r.path, &r.args),
        "Created": unix_seconds(&r.created),
        "Ports": ports(r),
        "Labels": r.labels,
        "State": r.state(),
        "Status": status_text(r, health, now),
        "HostConfig": {"NetworkMode": "default"},
        "NetworkSettings": {"Networks": networks(r)},
        "Mounts": mount_points(r),
    })
}

fn health_of(node: &SwarmNode, r: &ContainerRecord) -> Option<HealthSnapshot> {
    if r.running() {
        node.tasks.health(&r.id)
    } else {
        None
    }
}

pub fn list(node: &Arc<SwarmNode>, call: &Call) -> Reply {
    let filter = ListFilter::parse(call.query.get("filters").map(String::as_str))?;
    let limit: i64 = match call.query.get("limit").map(String::as_str) {
        None | Some("") => 0,
        Some(v) => v.parse().map_err(|_| ApiError::bad_request(format!("strconv.Atoi: parsing {v:?}: invalid syntax")))?,
    };
    let all = call.query_bool("all") || filter.wants_all || limit > 0;
    let now = SystemTime::now();
    let mut out = Vec::new();
    for r in node.tasks.containers().list() {
        if !all && !r.running() {
            continue;
        }
        let health = health_of(node, &r);
        let h = health.as_ref().map(|h| h.status.as_str());
        if !filter.matches(&r, h) {
            continue;
        }
        if limit > 0 && out.len() as i64 >= limit {
            break;
        }
        out.push(summary(&r, h, now));
    }
    json_response(StatusCode::OK, &out)
}

/// Docker's zero time, for times that have not happened.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn or_zero(t: &str) -> &str {
    if t.is_empty() {
        ZERO_TIME
    } else {
        t
    }
}

/// `docker inspect` (Docker's `ContainerJSON`, API 1.44), with what Shoal knows.
pub fn inspect_json(r: &ContainerRecord, health: Option<&HealthSnapshot>) -> Value {
    let mut state = json!({
        "Status": r.state(),
        "Running": r.running(),
        "Paused": false,
        "Restarting": false,
        "OOMKilled": false,
        "Dead": false,
        "Pid": r.pid,
        "ExitCode": r.exit_code.unwrap_or(0),
        "Error": "",
        "StartedAt": or_zero(&r.started_at),
        "FinishedAt": or_zero(&r.finished_at),
    });
    if let Some(h) = health {
        state["Health"] = json!({
            "Status": h.status.as_str(),
            "FailingStreak": h.failing_streak,
            "Log": h.log.iter().map(|p| json!({"Start": p.start, "End": p.end, "ExitCode": p.exit_code, "Output": p.output})).collect::<Vec<_>>(),
        });
    }
    let bundle = r.bundle.to_string_lossy();
    let volumes: BTreeMap<&str, Value> = r.mounts.iter().filter(|m| m.r#type == "volume").map(|m| (m.target.as_str(), json!({}))).collect();
    let port_bindings: BTreeMap<String, Value> = r
        .ports
        .iter()
        .filter(|p| p.is_host_published())
        .map(|p| {
            (format!("{}/{}", p.target_port, p.protocol.as_str()), json!([{"HostIp": "0.0.0.0", "HostPort": p.published_port.to_string()}]))
        })
        .collect();
    let mut config = json!({
        "Hostname": r.hostname,
        "Domainname": "",
        "User": r.user,
        "AttachStdin": false,
        "AttachStdout": false,
        "AttachStderr": false,
        "Tty": r.tty,
        "OpenStdin": r.open_stdin,
        "StdinOnce": false,
        "Env": r.env,
        "Cmd": if r.cmd.is_empty() { Value::Null } else { json!(r.cmd) },
        "Image": r.image,
        "Volumes": if volumes.is_empty() { Value::Null } else { json!(volumes) },
        "WorkingDir": r.working_dir,
        "Entrypoint": if r.entrypoint.is_empty() { Value::Null } else { json!(r.entrypoint) },
        "OnBuild": null,
        "Labels": r.labels,
    });
    if !r.stop_signal.is_empty() {
        config["StopSignal"] = json!(r.stop_signal);
    }
    let first = networks(r).into_iter().next().map(|(_, v)| v);
    json!({
        "Id": r.id,
        "Created": r.created,
        "Path": r.path,
        "Args": r.args,
        "State": state,
        "Image": r.image_id,
        "ResolvConfPath": format!("{bundle}/resolv.conf"),
        "HostnamePath": format!("{bundle}/hostname"),
        "HostsPath": format!("{bundle}/hosts"),
        "LogPath": r.log_path.to_string_lossy(),
        "Name": format!("/{}", r.name),
        "RestartCount": 0,
        "Driver": "overlay",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": {
            "Binds": null,
            "ContainerIDFile": "",
            "LogConfig": {"Type": "json-file", "Config": {}},
            "NetworkMode": "default",
            "PortBindings": port_bindings,
            "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
            "AutoRemove": r.auto_remove,
            "VolumeDriver": "",
            "VolumesFrom": null,
            "CapAdd": null,
            "CapDrop": null,
            "Init": r.init,
            "Privileged": false,
            "PublishAllPorts": false,
            "ReadonlyRootfs": r.read_only,
            "Runtime": "runc",
            "Mounts": r.mounts,
        },
        "GraphDriver": {"Name": "overlay", "Data": {"MergedDir": r.rootfs.to_string_lossy()}},
        "Mounts": mount_points(r),
        "Config": config,
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "SandboxKey": r.sandbox_key,
            "Ports": port_bindings.clone(),
            "HairpinMode": false,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": null,
            "SecondaryIPv6Addresses": null,
            "EndpointID": "",
            "Gateway": first.as_ref().map(|v| v["Gateway"].clone()).unwrap_or(json!("")),
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": first.as_ref().map(|v| v["IPAddress"].clone()).unwrap_or(json!("")),
            "IPPrefixLen": first.as_ref().map(|v| v["IPPrefixLen"].clone()).unwrap_or(json!(0)),
            "IPv6Gateway": "",
            "MacAddress": "",
            "Networks": networks(r),
        },
    })
}

pub fn inspect(node: &Arc<SwarmNode>, key: &str) -> Reply {
    let r = find(node, key)?;
    let health = health_of(node, &r);
    let mut v = inspect_json(&r, health.as_ref());
    let execs = node.execs.running_in(&r.id);
    if !execs.is_empty() {
        v["ExecIDs"] = json!(execs);
    }
    json_response(StatusCode::OK, &v)
}

/// `docker top`: the host's `ps` rows of the container's processes.
pub async fn top(node: &Arc<SwarmNode>, key: &str, call: &Call) -> Reply {
    let r = find(node, key)?;
    if !r.running() {
        return Err(ApiError::conflict(format!("Container {} is not running", r.id)));
    }
    let ps_args = call.query.get("ps_args").cloned().filter(|a| !a.is_empty()).unwrap_or_else(|| "-ef".into());
    let containers = node.tasks.containers().clone();
    let id = r.id.clone();
    let pids = tokio::task::spawn_blocking(move || containers.pids(&id)).await.map_err(|e| ApiError::internal(e.to_string()))?;
    let pids = pids.map_err(ApiError::internal)?;
    let out = tokio::process::Command::new("ps")
        .args(ps_args.split_whitespace())
        .output()
        .await
        .map_err(|e| ApiError::internal(format!("running ps: {e}")))?;
    if !out.status.success() {
        return Err(ApiError::internal(format!("ps: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    let (titles, processes) = parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)?;
    json_response(StatusCode::OK, &json!({"Titles": titles, "Processes": processes}))
}

/// `ps` output restricted to `pids`, as Docker parses it: the header's
/// words are the titles, each row split into as many fields (the last
/// keeps its spaces).
pub fn parse_ps(out: &str, pids: &[i32]) -> Result<(Vec<String>, Vec<Vec<String>>), ApiError> {
    let mut lines = out.lines();
    let titles: Vec<String> = lines.next().unwrap_or("").split_whitespace().map(String::from).collect();
    let pid_col = titles.iter().position(|t| t == "PID").ok_or_else(|| ApiError::internal("Couldn't find PID field in ps output"))?;
    let want: BTreeSet<i32> = pids.iter().copied().collect();
    let mut rows = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let mut fields: Vec<String> = Vec::new();
        let mut rest = line.trim_start();
        while fields.len() + 1 < titles.len() {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            fields.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
        fields.push(rest.to_string());
        let pid: i32 = fields
            .get(pid_col)
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| ApiError::internal(format!("Unexpected pid in ps output: {line}")))?;
        if want.contains(&pid) {
            rows.push(fields);
        }
    }
    Ok((titles, rows))
}

/// Docker's `--timestamps`: RFC 3339 with nine fractional digits.
pub fn fixed_nanos(t: &str) -> String {
    let Some(body) = t.strip_suffix('Z') else { return t.to_string() };
    let (whole, frac) = body.split_once('.').unwrap_or((body, ""));
    format!("{whole}.{frac:0<9}Z")
}

/// `GET /containers/{id}/logs`: the container's json-file log, stdcopy
/// framed unless it has a TTY; with `follow` until it ends.
pub async fn logs(node: &Arc<SwarmNode>, key: &str, call: &Call) -> Result<Response<StreamBody>, ApiError> {
    let r = find(node, key)?;
    let (opts, fmt) = super::logs::parse_options(call)?;
    let until = match call.query.get("until").map(String::as_str) {
        None | Some("") | Some("0") => None,
        Some(s) => Some(super::logs::parse_since(s).ok_or_else(|| ApiError::bad_request(format!("invalid value for until: {s}")))?),
    };
    let mux = !r.tty;
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let containers = node.tasks.containers().clone();
    std::thread::Builder::new()
        .name("container-logs".into())
        .spawn(move || stream_log(&containers, &r, &opts, until, fmt.timestamps, mux, tx))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut resp = Response::new(StreamBody::new(rx));
    let ctype = super::version::stream_type(mux, call.api);
    resp.headers_mut().insert("Content-Type", ctype.parse().expect("static header"));
    Ok(resp)
}

/// One log record as `docker logs` receives it: `[timestamp ]text`, in a
/// stdcopy frame (stream 1 stdout, 2 stderr) unless the container has a TTY.
pub fn encode_line(l: &shoal_rpc::logs::LogLine, timestamps: bool, mux: bool) -> Vec<u8> {
    let mut text = Vec::with_capacity(l.data.len() + 32);
    if timestamps {
        text.extend_from_slice(fixed_nanos(&l.time).as_bytes());
        text.push(b' ');
    }
    text.extend_from_slice(l.data.as_bytes());
    if !mux {
        return text;
    }
    let stream = if l.stream == LogStream::Stdout { 1 } else { 2 };
    frame(stream, &text)
}

fn stream_log(
    containers: &shoal_worker::containers::Containers,
    r: &ContainerRecord,
    opts: &LogOptions,
    until: Option<i128>,
    timestamps: bool,
    mux: bool,
    tx: mpsc::Sender<Bytes>,
) {
    use shoal_worker::logs::reader::Cursor;
    let Ok(mut cursor) = Cursor::open(&r.id, &r.log_path, opts, false) else { return };
    if !opts.follow {
        cursor.stop_at_current_end();
    }
    let mut quiet_after_end = false;
    loop {
        let lines = match cursor.read_new(256 * 1024) {
            Ok(l) => l,
            Err(_) => return,
        };
        let mut out = Vec::new();
        for l in &lines {
            if let Some(u) = until {
                let t = shoal_api::time::parse_rfc3339(&l.time)
                    .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos() as i128)
                    .unwrap_or(0);
                if t > u {
                    return;
                }
            }
            out.extend_from_slice(&encode_line(l, timestamps, mux));
        }
        if !out.is_empty() && tx.blocking_send(Bytes::from(out)).is_err() {
            return; // the client left
        }
        if !lines.is_empty() {
            continue;
        }
        if !opts.follow && cursor.exhausted() {
            return;
        }
        // Following: ends once the container has ended and its output is
        // read (one more quiet pass after the end, for the last lines).
        let ended = containers.get(&r.id).map(|c| !c.running()).unwrap_or(true);
        if ended {
            if quiet_after_end {
                return;
            }
            quiet_after_end = true;
        }
        if tx.is_closed() {
            return;
        }
        std::thread::sleep(Duration::from_millis(150));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_worker::containers::AttachedNetwork;

    fn rec() -> ContainerRecord {
        ContainerRecord {
            id: "abcdefghij0123456789klmno".into(),
            name: "web.2.abcdefghij0123456789klmno".into(),
            task_id: "abcdefghij0123456789klmno".into(),
            labels: ContainerRecord::swarm_labels("sid", "web", "abcdefghij0123456789klmno", "web.2.abcdefghij0123456789klmno", "nid"),
            image: "busybox:1".into(),
            path: "sh".into(),
            args: vec!["-c".into(), "sleep 100".into()],
            created: "2024-05-01T10:00:00.5Z".into(),
            started_at: "2024-05-01T10:00:01Z".into(),
            pid: 42,
            networks: vec![AttachedNetwork { id: "netid".into(), name: "backend".into(), address: "10.0.1.5/24".into() }],
            ..Default::default()
        }
    }

    fn at(s: &str) -> SystemTime {
        shoal_api::time::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn summary_as_docker_ps_reads_it() {
        let v = summary(&rec(), None, at("2024-05-01T10:00:06Z"));
        assert_eq!(v["Names"], json!(["/web.2.abcdefghij0123456789klmno"]));
        assert_eq!(v["Command"], "sh -c 'sleep 100'");
        assert_eq!(v["Created"], 1714557600);
        assert_eq!(v["State"], "running");
        assert_eq!(v["Status"], "Up 5 seconds");
        assert_eq!(v["Ports"], json!([]));
        assert_eq!(v["Labels"]["com.docker.swarm.service.name"], "web");
        assert_eq!(v["NetworkSettings"]["Networks"]["backend"]["IPAddress"], "10.0.1.5");
        assert_eq!(v["NetworkSettings"]["Networks"]["backend"]["IPPrefixLen"], 24);
    }

    #[test]
    fn status_words() {
        let now = at("2024-05-01T10:03:00Z");
        let mut r = rec();
        assert_eq!(status_text(&r, Some("healthy"), now), "Up 2 minutes (healthy)");
        assert_eq!(status_text(&r, Some("starting"), now), "Up 2 minutes (health: starting)");
        r.exit_code = Some(3);
        r.finished_at = "2024-05-01T10:02:59Z".into();
        assert_eq!(status_text(&r, None, now), "Exited (3) 1 second ago");
        assert_eq!(human_duration(Duration::from_millis(500)), "Less than a second");
        assert_eq!(human_duration(Duration::from_secs(90)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(3 * 3600)), "3 hours");
        assert_eq!(human_duration(Duration::from_secs(3 * 86400)), "3 days");
    }

    #[test]
    fn filters_as_docker_applies_them() {
        let r = rec();
        let ok = |f: &str| ListFilter::parse(Some(f)).unwrap().matches(&r, None);
        assert!(ok(r#"{"name":{"web":true}}"#), "name is a regular expression on /name");
        assert!(ok(r#"{"name":{"^/web\\.2\\.":true}}"#));
        assert!(!ok(r#"{"name":{"db":true}}"#));
        assert!(ok(r#"{"id":{"abcdef":true}}"#));
        assert!(!ok(r#"{"id":{"zzz":true}}"#));
        assert!(ok(r#"{"label":{"com.docker.swarm.service.name=web":true}}"#));
        assert!(ok(r#"{"label":{"com.docker.swarm.task":true}}"#));
        assert!(!ok(r#"{"label":{"com.docker.swarm.service.name=db":true}}"#));
        assert!(ok(r#"{"status":{"running":true}}"#));
        assert!(!ok(r#"{"status":{"exited":true}}"#));
        assert!(!ok(r#"{"exited":{"0":true}}"#), "a running container has no exit code");
        assert!(ok(r#"{"health":{"none":true}}"#));
        assert!(ok(r#"{"is-task":{"true":true}}"#));
        assert!(!ok(r#"{"is-task":{"false":true}}"#));
        let standalone = ContainerRecord { task_id: String::new(), ..rec() };
        assert!(ListFilter::parse(Some(r#"{"is-task":{"false":true}}"#)).unwrap().matches(&standalone, None));
        assert!(!ListFilter::parse(Some(r#"{"is-task":{"true":true}}"#)).unwrap().matches(&standalone, None));
        assert!(ok(r#"{"network":{"backend":true}}"#));
        assert!(ListFilter::parse(Some(r#"{"status":{"running":true}}"#)).unwrap().wants_all);
        let err = |f: &str| ListFilter::parse(Some(f)).unwrap_err().message;
        assert_eq!(err(r#"{"status":{"up":true}}"#), "invalid filter 'status=up'");
        assert_eq!(err(r#"{"colour":{"red":true}}"#), "invalid filter 'colour'");
        assert_eq!(err(r#"{"exited":{"x":true}}"#), "invalid filter 'exited=x'");
        assert!(err(r#"{"ancestor":{"busybox":true}}"#).starts_with("invalid filter 'ancestor'"));
        let mut ended = rec();
        ended.exit_code = Some(3);
        let f = ListFilter::parse(Some(r#"{"exited":{"3":true},"status":{"exited":true}}"#)).unwrap();
        assert!(f.matches(&ended, None));
    }

    #[test]
    fn a_task_without_overlays_is_on_the_bridge() {
        let r = ContainerRecord { networks: vec![], bridge: Some(("172.18.0.2/24".into(), "172.18.0.1".into())), ..rec() };
        let v = inspect_json(&r, None);
        let b = &v["NetworkSettings"]["Networks"]["bridge"];
        assert_eq!((&b["IPAddress"], &b["IPPrefixLen"], &b["Gateway"]), (&json!("172.18.0.2"), &json!(24), &json!("172.18.0.1")));
        assert_eq!(v["NetworkSettings"]["Gateway"], "172.18.0.1");
    }

    #[test]
    fn inspect_shape() {
        let v = inspect_json(&rec(), None);
        assert_eq!(v["Name"], "/web.2.abcdefghij0123456789klmno");
        assert_eq!(v["State"]["Running"], true);
        assert_eq!(v["State"]["FinishedAt"], ZERO_TIME);
        assert_eq!(v["State"]["Pid"], 42);
        assert_eq!(v["Config"]["Labels"]["com.docker.swarm.task.id"], "abcdefghij0123456789klmno");
        assert_eq!(v["Config"]["Cmd"], Value::Null);
        assert_eq!(v["NetworkSettings"]["IPAddress"], "10.0.1.5");
        assert_eq!(v["HostConfig"]["LogConfig"]["Type"], "json-file");
    }

    #[test]
    fn ps_rows_of_the_container_only() {
        let out = "UID          PID    PPID  C STIME TTY          TIME CMD\nroot           1       0  0 10:00 ?        00:00:01 /sbin/init splash\nroot        4242       1  0 10:01 ?        00:00:00 sleep 1000\n";
        let (titles, rows) = parse_ps(out, &[4242]).unwrap();
        assert_eq!(titles, ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]);
        assert_eq!(rows, vec![vec!["root", "4242", "1", "0", "10:01", "?", "00:00:00", "sleep 1000"]]);
        assert!(parse_ps("USER COMMAND\nroot x\n", &[1]).is_err());
    }

    #[test]
    fn log_lines_are_stdcopy_framed() {
        let line = |stream, data: &str| shoal_rpc::logs::LogLine {
            task_id: "t".into(),
            stream,
            time: "2024-05-01T10:00:00.25Z".into(),
            data: data.into(),
        };
        let out = encode_line(&line(LogStream::Stdout, "hi\n"), false, true);
        assert_eq!(out, [&[1u8, 0, 0, 0, 0, 0, 0, 3][..], b"hi\n"].concat());
        let err = encode_line(&line(LogStream::Stderr, "boom\n"), true, true);
        assert_eq!(&err[..8], &[2, 0, 0, 0, 0, 0, 0, 36]);
        assert_eq!(&err[8..], b"2024-05-01T10:00:00.250000000Z boom\n");
        assert_eq!(encode_line(&line(LogStream::Stderr, "raw\n"), false, false), b"raw\n");
    }

    #[test]
    fn timestamps_have_nine_digits() {
        assert_eq!(fixed_nanos("2024-05-01T10:00:00.5Z"), "2024-05-01T10:00:00.500000000Z");
        assert_eq!(fixed_nanos("2024-05-01T10:00:00Z"), "2024-05-01T10:00:00.000000000Z");
        assert_eq!(fixed_nanos("2024-05-01T10:00:00.123456789Z"), "2024-05-01T10:00:00.123456789Z");
    }
}
