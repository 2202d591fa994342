//! `docker run` on a node: `POST /containers/create`, `/start` and
//! `/attach` for standalone containers (the worker's `standalone` runs
//! them). The create body is Docker's container config with its host
//! config; what Shoal does not do yet is refused by name when it is set
//! (the docker CLI sends every field, most at their zero value), never
//! dropped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::{Response, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use shoal_api::task::{ContainerSpec, DnsConfig, Limit, Mount, TmpfsOptions, Ulimit, VolumeOptions};
use shoal_api::warnings::is_zero;
use shoal_api::ApiError;
use shoal_worker::standalone::{NetworkChoice, NewContainer, StandaloneError};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::containers::find;
use super::{empty_response, json_response, Call, Reply};
use crate::swarm::SwarmNode;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    hostname: String,
    user: String,
    tty: bool,
    open_stdin: bool,
    stdin_once: bool,
    env: Vec<String>,
    cmd: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    image: String,
    volumes: BTreeMap<String, Value>,
    working_dir: String,
    labels: BTreeMap<String, String>,
    stop_signal: String,
    stop_timeout: Option<i64>,
    host_config: HostConfig,
    networking_config: NetworkingConfig,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct HostConfig {
    binds: Vec<String>,
    network_mode: String,
    auto_remove: bool,
    mounts: Vec<Mount>,
    cap_add: Vec<String>,
    cap_drop: Vec<String>,
    init: Option<bool>,
    readonly_rootfs: bool,
    memory: i64,
    nano_cpus: i64,
    pids_limit: Option<i64>,
    sysctls: BTreeMap<String, String>,
    ulimits: Vec<Ulimit>,
    extra_hosts: Vec<String>,
    dns: Vec<String>,
    dns_search: Vec<String>,
    dns_options: Vec<String>,
    tmpfs: BTreeMap<String, String>,
    port_bindings: BTreeMap<String, Vec<PortBinding>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct PortBinding {
    host_ip: String,
    host_port: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct NetworkingConfig {
    endpoints_config: BTreeMap<String, Value>,
}

/// The container config's fields read above, and those that only steer
/// the client (which streams to attach) or have nothing to do here.
const CONFIG_FIELDS: &[&str] = &[
    "Hostname",
    "User",
    "Tty",
    "OpenStdin",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "StdinOnce",
    "Env",
    "Cmd",
    "Entrypoint",
    "Image",
    "Volumes",
    "WorkingDir",
    "Labels",
    "StopSignal",
    "StopTimeout",
    "HostConfig",
    "NetworkingConfig",
    "ArgsEscaped",
];
const HOST_CONFIG_FIELDS: &[&str] = &[
    "Binds",
    "NetworkMode",
    "AutoRemove",
    "Mounts",
    "CapAdd",
    "CapDrop",
    "Init",
    "ReadonlyRootfs",
    "Memory",
    "NanoCpus",
    "PidsLimit",
    "Sysctls",
    "Ulimits",
    "ExtraHosts",
    "Dns",
    "DnsSearch",
    "DnsOptions",
    "Tmpfs",
    "PortBindings",
    // The client's terminal size, for a TTY (refused below).
    "ConsoleSize",
    // Written by the CLI only (`--cidfile`).
    "ContainerIDFile",
];

/// A set field outside `known`, as `Prefix.Field` (keys compared as Go
/// does, ignoring case). Docker's defaults that are not zero values count
/// as unset.
fn unsupported(obj: &serde_json::Map<String, Value>, known: &[&str], prefix: &str) -> Option<String> {
    for (k, v) in obj {
        if known.iter().any(|f| f.eq_ignore_ascii_case(k)) || is_zero(v) {
            continue;
        }
        let default = match k.to_ascii_lowercase().as_str() {
            "memoryswappiness" => v.as_i64() == Some(-1),
            "restartpolicy" => v.get("Name").and_then(Value::as_str).is_some_and(|n| n == "no" || n.is_empty()),
            "logconfig" => v.get("Type").and_then(Value::as_str).is_some_and(|t| t == "json-file" || t.is_empty()),
            // The image's exposed ports are metadata; publishing them is
            // PortBindings.
            "exposedports" => true,
            _ => false,
        };
        if !default {
            return Some(format!("{prefix}{k}"));
        }
    }
    None
}

/// `POST /containers/create?name=`.
pub fn create(node: &Arc<SwarmNode>, call: &Call) -> Reply {
    let raw: Value = serde_json::from_slice(if call.body.is_empty() { b"{}" } else { &call.body })
        .map_err(|e| ApiError::bad_request(format!("invalid JSON in request body: {e}")))?;
    let body: CreateBody = call.json()?;
    if let Some(obj) = raw.as_object() {
        let host = obj.iter().find(|(k, _)| k.eq_ignore_ascii_case("HostConfig")).and_then(|(_, v)| v.as_object());
        let field = unsupported(obj, CONFIG_FIELDS, "").or_else(|| host.and_then(|h| unsupported(h, HOST_CONFIG_FIELDS, "HostConfig.")));
        if let Some(f) = field {
            return Err(ApiError::bad_request(format!("{f} is not supported for standalone containers by this Shoal node yet")));
        }
    }
    let new = convert(body, call.query.get("name").map(String::as_str).unwrap_or(""))?;
    if let NetworkChoice::Swarm { network, .. } = &new.network {
        node.check_swarm_network(network)?;
    }
    let id = node.standalone.create(new).map_err(standalone_error)?;
    json_response(StatusCode::CREATED, &serde_json::json!({"Id": id, "Warnings": []}))
}

fn standalone_error(e: StandaloneError) -> ApiError {
    match e {
        StandaloneError::NotFound(m) => ApiError::not_found(m),
        StandaloneError::Conflict(m) => ApiError::conflict(m),
        StandaloneError::Invalid(m) => ApiError::bad_request(m),
        StandaloneError::Failed(m) => ApiError::internal(m),
    }
}

/// Docker's create body as a container spec, checked.
fn convert(b: CreateBody, name: &str) -> Result<NewContainer, ApiError> {
    let name = name.strip_prefix('/').unwrap_or(name);
    if !name.is_empty() && !shoal_worker::standalone::valid_name(name) {
        return Err(ApiError::bad_request(format!("Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")));
    }
    if b.image.is_empty() {
        return Err(ApiError::bad_request("no image specified (Image is empty)"));
    }
    let h = b.host_config;
    let mut network = match h.network_mode.as_str() {
        "" | "default" | "bridge" => NetworkChoice::Bridge,
        "none" => NetworkChoice::None,
        "host" => return Err(ApiError::bad_request("network host: standalone containers on a Shoal node cannot share the host's network")),
        m if m.starts_with("container:") => {
            return Err(ApiError::bad_request(format!("network {m}: standalone containers on a Shoal node cannot share another's network")))
        }
        // Any other name is a swarm network (attachable overlay), which
        // the managers resolve at the container's start.
        other => NetworkChoice::Swarm { network: other.to_string(), aliases: Vec::new() },
    };
    for (net, endpoint) in &b.networking_config.endpoints_config {
        let default_name = matches!(net.as_str(), "default" | "bridge" | "none") || *net == h.network_mode;
        let mut rest = endpoint.clone();
        // Network aliases (`--network-alias`) on a swarm network.
        let aliases = rest.as_object_mut().and_then(|o| o.remove("Aliases").or_else(|| o.remove("aliases")));
        let aliases: Vec<String> = match aliases {
            Some(Value::Array(a)) => a.into_iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        };
        match &mut network {
            NetworkChoice::Swarm { network, aliases: kept } if net == network && is_zero(&rest) => *kept = aliases,
            _ if default_name && aliases.is_empty() && is_zero(&rest) => {}
            _ if !default_name => {
                return Err(ApiError::bad_request(format!(
                    "NetworkingConfig.EndpointsConfig.{net}: a container on a Shoal node joins one network, the one NetworkMode names"
                )))
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "NetworkingConfig.EndpointsConfig.{net} is not supported for standalone containers by this Shoal node yet"
                )))
            }
        }
    }
    let ports = port_bindings(&h.port_bindings)?;
    if !ports.is_empty() && network == NetworkChoice::None {
        return Err(ApiError::bad_request("conflicting options: port publishing and the container type network mode"));
    }
    let mut mounts = h.mounts;
    for bind in &h.binds {
        mounts.push(parse_bind(bind)?);
    }
    for (target, opts) in &h.tmpfs {
        mounts.push(Mount {
            r#type: "tmpfs".into(),
            target: target.clone(),
            tmpfs_options: Some(parse_tmpfs_options(target, opts)?),
            ..Default::default()
        });
    }
    for target in b.volumes.keys() {
        if !mounts.iter().any(|m| m.target == *target) {
            mounts.push(Mount { r#type: "volume".into(), target: target.clone(), ..Default::default() });
        }
    }
    let hosts = h
        .extra_hosts
        .iter()
        .map(|e| match e.split_once(':') {
            Some((host, ip)) if !host.is_empty() && !ip.is_empty() => Ok(format!("{ip} {host}")),
            _ => Err(ApiError::bad_request(format!("invalid extra host {e:?}: expected host:ip"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let dns_config = (!(h.dns.is_empty() && h.dns_search.is_empty() && h.dns_options.is_empty())).then_some(DnsConfig {
        nameservers: h.dns,
        search: h.dns_search,
        options: h.dns_options,
    });
    let limits = Limit { nano_cpus: h.nano_cpus, memory_bytes: h.memory, pids: h.pids_limit.unwrap_or(0).max(0) };
    let spec = ContainerSpec {
        image: b.image,
        labels: b.labels,
        command: b.entrypoint.unwrap_or_default(),
        args: b.cmd.unwrap_or_default(),
        hostname: b.hostname,
        env: b.env,
        dir: b.working_dir,
        user: b.user,
        init: h.init,
        stop_signal: b.stop_signal,
        stop_grace_period: b.stop_timeout.map(|s| s.saturating_mul(1_000_000_000)),
        read_only: h.readonly_rootfs,
        mounts,
        hosts,
        sysctls: h.sysctls,
        capability_add: h.cap_add,
        capability_drop: h.cap_drop,
        ulimits: h.ulimits,
        dns_config,
        tty: b.tty,
        open_stdin: b.open_stdin,
        ..Default::default()
    };
    let limits = (limits != Limit::default()).then_some(limits);
    Ok(NewContainer { name: name.to_string(), spec, limits, auto_remove: h.auto_remove, stdin_once: b.stdin_once, ports, network })
}

/// `-p HOST:CONTAINER[/PROTO]` as the CLI sends it (`{"80/tcp":
/// [{"HostIp":"","HostPort":"8080"}]}`): host-mode ports on every address
/// of the node. A port the node would have to pick, or one address only,
/// is refused by name.
fn port_bindings(bindings: &BTreeMap<String, Vec<PortBinding>>) -> Result<Vec<shoal_api::service::PortConfig>, ApiError> {
    use shoal_api::service::{PortConfig, PortProtocol, PublishMode};
    let mut out = Vec::new();
    for (spec, list) in bindings {
        let (port, proto) = spec.split_once('/').unwrap_or((spec.as_str(), "tcp"));
        let target: u32 = port
            .parse()
            .ok()
            .filter(|p| (1..=65535).contains(p))
            .ok_or_else(|| ApiError::bad_request(format!("invalid port specification: {spec:?}")))?;
        let protocol = match proto {
            "tcp" => PortProtocol::Tcp,
            "udp" => PortProtocol::Udp,
            other => return Err(ApiError::bad_request(format!("invalid proto: {other}"))),
        };
        for b in list {
            if !matches!(b.host_ip.as_str(), "" | "0.0.0.0") {
                return Err(ApiError::bad_request(format!(
                    "publishing {spec} on {} only is not supported by this Shoal node yet: it publishes on every address",
                    b.host_ip
                )));
            }
            let published: u32 = match b.host_port.parse() {
                Ok(p) if (1..=65535).contains(&p) => p,
                _ if b.host_port.is_empty() => {
                    return Err(ApiError::bad_request(format!("publishing {spec} needs a host port on this Shoal node (-p HOST:{port})")))
                }
                _ => return Err(ApiError::bad_request(format!("invalid hostPort: {}", b.host_port))),
            };
            out.push(PortConfig {
                protocol,
                target_port: target,
                published_port: published,
                publish_mode: PublishMode::Host,
                ..Default::default()
            });
        }
    }
    Ok(out)
}

/// `-v SOURCE:TARGET[:OPTIONS]`: a host path (absolute) or a named volume.
fn parse_bind(bind: &str) -> Result<Mount, ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("invalid volume specification: '{bind}': {why}"));
    let parts: Vec<&str> = bind.split(':').collect();
    let (source, target, opts) = match parts.as_slice() {
        [s, t] => (*s, *t, ""),
        [s, t, o] => (*s, *t, *o),
        _ => return Err(bad("expected SOURCE:TARGET[:OPTIONS]")),
    };
    if !target.starts_with('/') {
        return Err(bad("invalid mount config: the target must be an absolute path"));
    }
    let mut m = Mount { source: source.into(), target: target.into(), ..Default::default() };
    m.r#type = if source.starts_with('/') { "bind".into() } else { "volume".into() };
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => m.read_only = true,
            "rw" => m.read_only = false,
            "nocopy" if m.r#type == "volume" => m.volume_options = Some(VolumeOptions { no_copy: true, ..Default::default() }),
            other => return Err(bad(&format!("option {other:?} is not supported by this Shoal node"))),
        }
    }
    Ok(m)
}

/// `--tmpfs /path:size=64m,mode=1777`.
fn parse_tmpfs_options(target: &str, opts: &str) -> Result<TmpfsOptions, ApiError> {
    let mut t = TmpfsOptions::default();
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        let bad = || ApiError::bad_request(format!("invalid tmpfs option {o:?} for {target}"));
        match o.split_once('=') {
            Some(("size", v)) => {
                let (num, mult) = match v.chars().last() {
                    Some('k' | 'K') => (&v[..v.len() - 1], 1i64 << 10),
                    Some('m' | 'M') => (&v[..v.len() - 1], 1 << 20),
                    Some('g' | 'G') => (&v[..v.len() - 1], 1 << 30),
                    _ => (v, 1),
                };
                t.size_bytes = num.parse::<i64>().map_err(|_| bad())?.checked_mul(mult).ok_or_else(bad)?;
            }
            Some(("mode", v)) => t.mode = u32::from_str_radix(v, 8).map_err(|_| bad())?,
            _ => return Err(bad()),
        }
    }
    Ok(t)
}

/// `POST /containers/{id}/start`: 204, or 304 when it runs already.
pub async fn start(node: &Arc<SwarmNode>, key: &str) -> Reply {
    let r = find(node, key)?;
    if r.is_task() {
        return Err(ApiError::bad_request(format!(
            "cannot start container {}: it is the task {} of service {}, which the orchestrator starts",
            r.name, r.task_id, r.service_name
        )));
    }
    match run_blocking(node, &r.id).await? {
        true => empty_response(StatusCode::NO_CONTENT),
        false => empty_response(StatusCode::NOT_MODIFIED),
    }
}

/// `POST /containers/{id}/resize?h=&w=`: the container's terminal, if it
/// has one.
pub fn resize(node: &Arc<SwarmNode>, key: &str, call: &Call) -> Reply {
    let r = find(node, key)?;
    let dim = |k: &str| -> Result<u16, ApiError> {
        let v = call.query.get(k).map(String::as_str).unwrap_or("");
        v.parse().map_err(|_| ApiError::bad_request(format!("strconv.Atoi: parsing {v:?}: invalid syntax")))
    };
    let (h, w) = (dim("h")?, dim("w")?);
    if !r.running() {
        return Err(ApiError::conflict(format!("Container {} is not running", r.id)));
    }
    if !r.is_task() {
        node.standalone.resize(&r.id, h, w).map_err(ApiError::internal)?;
    }
    empty_response(StatusCode::OK)
}

/// Starts a standalone container off the async workers (image layers,
/// the network and runc take a while).
pub async fn run_blocking(node: &Arc<SwarmNode>, id: &str) -> Result<bool, ApiError> {
    node.start_standalone(id).await.map_err(standalone_error)
}

/// `POST /containers/{id}/attach?stream=1&stdout=1&stderr=1`: the
/// container's output from now until it ends, on the hijacked connection
/// (stdcopy frames). `logs=1` starts with what it wrote before. Input is
/// not taken (interactive containers are refused at create).
pub async fn attach(
    node: &Arc<SwarmNode>,
    key: &str,
    call: &Call,
    upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Result<Response<super::Body>, ApiError> {
    let r = find(node, key)?;
    let opts = shoal_rpc::logs::LogOptions {
        follow: true,
        tail: (!call.query_bool("logs")).then_some(0),
        stdout: call.query_bool("stdout"),
        stderr: call.query_bool("stderr"),
        ..Default::default()
    };
    let (tx, mut rx) = mpsc::channel::<Bytes>(16);
    let containers = node.tasks.containers().clone();
    let cursor = shoal_worker::logs::reader::Cursor::open(&r.id, &r.log_path, &opts, false)
        .map_err(|e| ApiError::internal(format!("reading the output of {}: {e}", r.id)))?;
    let id = r.id.clone();
    let mux = !r.tty;
    std::thread::Builder::new()
        .name("attach".into())
        .spawn(move || follow_output(&containers, &id, cursor, mux, tx))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    // The client's input goes to the container's stdin (or terminal) once
    // it runs: an attach comes before the start.
    let input = (call.query_bool("stdin") && r.open_stdin && !r.is_task()).then(|| {
        let (in_tx, in_rx) = std::sync::mpsc::sync_channel::<Option<Bytes>>(16);
        let standalone = node.standalone.clone();
        let id = r.id.clone();
        let _ = std::thread::Builder::new().name("attach-in".into()).spawn(move || feed_input(&standalone, &id, in_rx));
        in_tx
    });
    let ctype = super::version::stream_type(mux, call.api);
    let Some(on) = upgrade else {
        let mut resp = Response::new(super::Body::Right(super::logs::StreamBody::new(rx)));
        resp.headers_mut().insert("Content-Type", ctype.parse().expect("static header"));
        return Ok(resp);
    };
    tokio::spawn(async move {
        let Ok(upgraded) = on.await else { return };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        let (mut rd, mut wr) = tokio::io::split(io);
        let reader = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let Some(input) = input else { return };
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        let _ = input.send(None);
                        return;
                    }
                    Ok(n) => {
                        let chunk = Some(Bytes::copy_from_slice(&buf[..n]));
                        let sent = {
                            let input = input.clone();
                            tokio::task::spawn_blocking(move || input.send(chunk)).await
                        };
                        if !matches!(sent, Ok(Ok(()))) {
                            return;
                        }
                    }
                }
            }
        });
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
        reader.abort();
    });
    let mut resp = Response::new(super::Body::Left(http_body_util::Full::new(Bytes::new())));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert("Connection", "Upgrade".parse().expect("static header"));
    h.insert("Upgrade", "tcp".parse().expect("static header"));
    h.insert("Content-Type", ctype.parse().expect("static header"));
    Ok(resp)
}

/// Writes the attached client's input to the container's stdin once it
/// runs; `None` is the client's end of input (`StdinOnce` closes stdin).
fn feed_input(standalone: &shoal_worker::standalone::Standalone, id: &str, input: std::sync::mpsc::Receiver<Option<Bytes>>) {
    use std::io::Write;
    let mut pipe = None;
    while let Ok(chunk) = input.recv() {
        let Some(data) = chunk else {
            standalone.client_input_ended(id);
            return;
        };
        // Until the start has given the container its stdin (bounded: a
        // container that is never started ends the wait with the client).
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while pipe.is_none() {
            pipe = standalone.stdin(id);
            if pipe.is_none() {
                if std::time::Instant::now() >= deadline {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let Some(p) = pipe.as_ref() else { return };
        let mut f = p.lock().unwrap();
        let written = f.as_mut().is_some_and(|file| file.write_all(&data).is_ok());
        if !written {
            return;
        }
    }
}

/// Sends what the container writes until it has ended (or is removed) and
/// all of it is read: stdcopy frames (`mux`), or raw for a terminal.
fn follow_output(
    containers: &shoal_worker::containers::Containers,
    id: &str,
    mut cursor: shoal_worker::logs::reader::Cursor,
    mux: bool,
    tx: mpsc::Sender<Bytes>,
) {
    let mut quiet_after_end = false;
    loop {
        let Ok(lines) = cursor.read_new(256 * 1024) else { return };
        let out: Vec<u8> = lines.iter().flat_map(|l| super::containers::encode_line(l, false, mux)).collect();
        if !out.is_empty() && tx.blocking_send(Bytes::from(out)).is_err() {
            return;
        }
        if !lines.is_empty() {
            continue;
        }
        // The runner writes the exit code after the last output is in the
        // log: one more read after seeing it gets the rest.
        let ended = containers.get(id).map(|c| c.exit_code.is_some()).unwrap_or(true);
        if ended {
            if quiet_after_end {
                return;
            }
            quiet_after_end = true;
            continue;
        }
        if tx.is_closed() {
            return;
        }
        std::thread::sleep(Duration::from_millis(30));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<NewContainer, ApiError> {
        let b: CreateBody = shoal_api::lenient::from_str(body).unwrap();
        convert(b, "web")
    }

    /// What the docker CLI 28 sends for
    /// `docker run --rm -e A=1 -v vol1:/data -v /tmp:/host:ro --name t1 -w /tmp busybox echo hi`.
    const CLI_RUN: &str = r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["A=1"],"Cmd":["echo","hi"],"Image":"busybox","Volumes":{},"WorkingDir":"/tmp","Entrypoint":null,"OnBuild":null,"Labels":{},"HostConfig":{"Binds":["vol1:/data","/tmp:/host:ro"],"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"default","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":true,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":0,"Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{"default":{"IPAMConfig":null,"Links":null,"Aliases":null,"MacAddress":"","DriverOpts":null,"GwPriority":0,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}}}"#;

    fn unsupported_in(body: &str) -> Option<String> {
        let raw: Value = serde_json::from_str(body).unwrap();
        let obj = raw.as_object().unwrap();
        let host = obj.get("HostConfig").and_then(Value::as_object);
        unsupported(obj, CONFIG_FIELDS, "").or_else(|| host.and_then(|h| unsupported(h, HOST_CONFIG_FIELDS, "HostConfig.")))
    }

    #[test]
    fn the_clis_run_body_is_read_whole() {
        assert_eq!(unsupported_in(CLI_RUN), None);
        let n = parse(CLI_RUN).unwrap();
        assert!(n.auto_remove && n.network == NetworkChoice::Bridge);
        assert_eq!(n.spec.args, ["echo", "hi"]);
        assert!(n.spec.command.is_empty(), "the image's entrypoint stays");
        assert_eq!(n.spec.env, ["A=1"]);
        assert_eq!(n.spec.dir, "/tmp");
        assert_eq!(n.spec.mounts.len(), 2);
        assert_eq!(
            (n.spec.mounts[0].r#type.as_str(), n.spec.mounts[0].source.as_str(), n.spec.mounts[0].read_only),
            ("volume", "vol1", false)
        );
        assert_eq!(
            (n.spec.mounts[1].r#type.as_str(), n.spec.mounts[1].target.as_str(), n.spec.mounts[1].read_only),
            ("bind", "/host", true)
        );
        assert!(n.limits.is_none());
    }

    #[test]
    fn what_is_not_done_is_refused_by_name() {
        let with = |from: &str, to: &str| {
            assert!(CLI_RUN.contains(from), "{from}");
            CLI_RUN.replacen(from, to, 1)
        };
        assert_eq!(unsupported_in(&with(r#""Privileged":false"#, r#""Privileged":true"#)).as_deref(), Some("HostConfig.Privileged"));
        assert_eq!(
            unsupported_in(&with(r#""PublishAllPorts":false"#, r#""PublishAllPorts":true"#)).as_deref(),
            Some("HostConfig.PublishAllPorts")
        );
        let bound = r#""PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}],"53/udp":[{"HostPort":"5353"}]}"#;
        let ports = parse(&with(r#""PortBindings":{}"#, bound)).unwrap().ports;
        let shown: Vec<String> = ports.iter().map(|p| format!("{}:{}/{}", p.published_port, p.target_port, p.protocol.as_str())).collect();
        assert_eq!(shown, ["5353:53/udp", "8080:80/tcp"]);
        let picked = r#""PortBindings":{"80/tcp":[{"HostPort":""}]}"#;
        assert!(parse(&with(r#""PortBindings":{}"#, picked)).unwrap_err().message.contains("needs a host port"));
        let local = r#""PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"80"}]}"#;
        assert!(parse(&with(r#""PortBindings":{}"#, local)).is_err());
        assert_eq!(unsupported_in(&with(r#""Domainname":"""#, r#""Domainname":"x""#)).as_deref(), Some("Domainname"));
        assert_eq!(
            unsupported_in(&with(r#""RestartPolicy":{"Name":"no""#, r#""RestartPolicy":{"Name":"always""#)).as_deref(),
            Some("HostConfig.RestartPolicy")
        );
        assert_eq!(
            unsupported_in(&with(r#""MemorySwappiness":-1"#, r#""MemorySwappiness":10"#)).as_deref(),
            Some("HostConfig.MemorySwappiness")
        );
        let tty =
            parse(&with(r#""Tty":false,"OpenStdin":false,"StdinOnce":false"#, r#""Tty":true,"OpenStdin":true,"StdinOnce":true"#)).unwrap();
        assert!(tty.spec.tty && tty.spec.open_stdin && tty.stdin_once);
        assert!(parse(&with(r#""NetworkMode":"default""#, r#""NetworkMode":"host""#)).unwrap_err().message.contains("network host"));
        assert!(parse(&with(r#""Binds":["vol1:/data""#, r#""Binds":["vol1:data""#)).unwrap_err().message.contains("absolute"));
        assert!(convert(CreateBody { image: "x".into(), ..Default::default() }, "a b")
            .unwrap_err()
            .message
            .starts_with("Invalid container name (a b)"));
    }

    #[test]
    fn limits_tmpfs_hosts_and_dns_are_converted() {
        let n = parse(
            r#"{"Image":"busybox","Entrypoint":["sh","-c"],"Cmd":["date"],"StopTimeout":3,"HostConfig":{"Memory":67108864,"NanoCpus":500000000,"PidsLimit":-1,
              "Tmpfs":{"/run":"size=64m,mode=1777"},"ExtraHosts":["db:10.1.2.3"],"Dns":["10.0.0.2"],"CapAdd":["NET_ADMIN"],"Init":true,"ReadonlyRootfs":true}}"#,
        )
        .unwrap();
        assert_eq!(n.spec.command, ["sh", "-c"]);
        assert_eq!(n.spec.stop_grace_period, Some(3_000_000_000));
        assert_eq!(n.limits, Some(Limit { nano_cpus: 500_000_000, memory_bytes: 64 << 20, pids: 0 }));
        let t = n.spec.mounts.iter().find(|m| m.r#type == "tmpfs").unwrap();
        assert_eq!(t.tmpfs_options.as_ref().map(|o| (o.size_bytes, o.mode)), Some((64 << 20, 0o1777)));
        assert_eq!(n.spec.hosts, ["10.1.2.3 db"]);
        assert_eq!(n.spec.dns_config.unwrap().nameservers, ["10.0.0.2"]);
        assert_eq!(n.spec.init, Some(true));
        assert!(n.spec.read_only && n.spec.capability_add == ["NET_ADMIN"]);
        assert!(parse_tmpfs_options("/x", "uid=5").is_err() && parse_tmpfs_options("/x", "size=lots").is_err());
    }
}
