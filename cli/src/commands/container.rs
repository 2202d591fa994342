//! `shoal ps`, `shoal logs`, `shoal exec`: the containers of the node this
//! CLI talks to, with the docker CLI's flags, tables and streams (stdcopy
//! frames demultiplexed to stdout and stderr; `exec -t` as a raw stream with
//! the local terminal in raw mode and resized with it).

use std::io::{self, Read, Write};

use clap::Args;

use super::Env;
use crate::client::{path_segment, query, Client};
use crate::error::{CliError, CliResult};
use crate::filters::Filters;
use crate::format::{ellipsis, go_local_time, header_obj, human_size_prec, truncate_id, write_rows};
use crate::term::is_tty;
use serde_json::Value;

use crate::json::{self, JsonExt};
use crate::reference::Reference;
use crate::template::METHOD_PREFIX;

// ------------------------------------------------------------------ container

/// `shoal container …`: docker's management command for the same verbs.
#[derive(clap::Subcommand, Debug)]
pub enum ContainerCommand {
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Display detailed information on one or more containers
    Inspect(InspectArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// List containers
    #[command(aliases = ["ps", "list"])]
    Ls(PsArgs),
}

#[derive(Args, Debug, Default)]
pub struct InspectArgs {
    /// Format output using a custom template: 'json', 'TEMPLATE'
    #[arg(short, long, value_name = "string", default_value = "")]
    pub format: String,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

pub fn run(env: &mut Env, cmd: ContainerCommand) -> CliResult {
    match cmd {
        ContainerCommand::Exec(a) => run_exec(env, a),
        ContainerCommand::Inspect(a) => inspect(env, a),
        ContainerCommand::Logs(a) => run_logs(env, a),
        ContainerCommand::Ls(a) => run_ps(env, a),
    }
}

fn inspect(env: &mut Env, a: InspectArgs) -> CliResult {
    let client = env.client.clone();
    let q = if a.size { "?size=1" } else { "" };
    let get = |c: &str| client.raw("GET", &format!("/containers/{}/json{q}", path_segment(c)), None);
    super::inspect::inspect(env, &a.containers, &super::inspect::InspectFormat::from_flag(&a.format), get)
}

// ------------------------------------------------------------------ ps

#[derive(Args, Debug, Default)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Filter output based on conditions provided
    #[arg(short, long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", value_name = "int", default_value_t = -1, allow_hyphen_values = true)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
}

const PS_TABLE: &str = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// The header titles of docker's container context.
pub fn container_header() -> Value {
    header_obj(&[
        ("Command", "COMMAND"),
        ("CreatedAt", "CREATED AT"),
        ("ID", "CONTAINER ID"),
        ("Image", "IMAGE"),
        ("Labels", "LABELS"),
        ("LocalVolumes", "LOCAL VOLUMES"),
        ("Mounts", "MOUNTS"),
        ("Names", "NAMES"),
        ("Networks", "NETWORKS"),
        ("Platform", "PLATFORM"),
        ("Ports", "PORTS"),
        ("RunningFor", "CREATED"),
        ("Size", "SIZE"),
        ("State", "STATE"),
        ("Status", "STATUS"),
    ])
}

pub fn run_ps(env: &mut Env, a: PsArgs) -> CliResult {
    let format = a.format.clone().unwrap_or_default();
    if !format.is_empty() && a.quiet {
        env.eprintln("WARNING: Ignoring custom format, because both --format and --quiet are set.");
    }
    let mut size = a.size;
    if !format.is_empty() {
        crate::format::parse_template(&crate::format::template_string(&format))
            .map_err(|e| CliError::new(e.message.replacen("template parsing error", "failed to parse template", 1)))?;
        if !a.quiet && !size && format.contains(".Size") {
            size = true;
        }
    }
    let filters = Filters::from_flags(&a.filter).map_err(CliError::new)?;
    let mut params = Vec::new();
    if a.all {
        params.push(("all", "1".to_string()));
    }
    let limit = if a.latest && a.last == -1 { 1 } else { a.last };
    if limit > 0 {
        params.push(("limit", limit.to_string()));
    }
    if size {
        params.push(("size", "1".to_string()));
    }
    if !filters.is_empty() {
        params.push(("filters", filters.to_json()));
    }
    let list = env.client.get(&format!("/containers/json{}", query(&params)))?;
    let format = match format.as_str() {
        "" | "table" if a.quiet => "{{.ID}}".to_string(),
        "" | "table" if size => format!("{PS_TABLE}\\t{{{{.Size}}}}"),
        "" | "table" => PS_TABLE.to_string(),
        _ if a.quiet => "{{.ID}}".to_string(),
        f => f.to_string(),
    };
    let now = crate::timestamp::now_unix_nanos();
    let rows: Vec<Value> = list.items().iter().map(|c| container_row(c, !a.no_trunc, now)).collect();
    env.print(&write_rows(&format, &container_header(), &rows)?)
}

/// docker's `ContainerContext` for one container of `/containers/json`,
/// its fields in the order `{{json .}}` prints them.
pub fn container_row(c: &Value, trunc: bool, now_nanos: i128) -> Value {
    let id = c["Id"].str();
    let created = c["Created"].as_i64().unwrap_or(0);
    let mut names: Vec<String> = c["Names"].items().iter().map(|n| n.str().get(1..).unwrap_or("").to_string()).collect();
    if trunc {
        if let Some(n) = names.iter().find(|n| !n.contains('/')) {
            names = vec![n.clone()];
        }
    }
    let mut joined: Vec<String> = c["Labels"].members().iter().map(|(k, v)| format!("{k}={}", v.str())).collect();
    joined.sort();
    let mounts: Vec<String> = c["Mounts"]
        .items()
        .iter()
        .map(|m| {
            let name = if m["Name"].str().is_empty() { m["Source"].str() } else { m["Name"].str() };
            if trunc {
                ellipsis(name, 15)
            } else {
                name.to_string()
            }
        })
        .collect();
    let local_volumes = c["Mounts"].items().iter().filter(|m| m["Driver"].str() == "local").count();
    let networks: Vec<String> = c.at(&["NetworkSettings", "Networks"]).members().iter().map(|(k, _)| k.clone()).collect();
    let command = if trunc { ellipsis(c["Command"].str(), 20) } else { c["Command"].str().to_string() };
    let size_rw = c["SizeRw"].as_i64().unwrap_or(0);
    let size_root = c["SizeRootFs"].as_i64().unwrap_or(0);
    let size = if size_root > 0 {
        format!("{} (virtual {})", human_size_prec(size_rw as f64, 3), human_size_prec(size_root as f64, 3))
    } else {
        human_size_prec(size_rw as f64, 3)
    };
    let running_for = crate::duration::human_duration((now_nanos - created as i128 * 1_000_000_000).clamp(0, i64::MAX as i128) as i64);
    let platform = match c.at(&["ImageManifestDescriptor", "platform"]) {
        Value::Object(_) => {
            let p = c.at(&["ImageManifestDescriptor", "platform"]);
            let mut s = format!("{}/{}", p["os"].str(), p["architecture"].str());
            if !p["variant"].str().is_empty() {
                s = format!("{s}/{}", p["variant"].str());
            }
            Value::from(s.as_str())
        }
        _ => Value::Null,
    };
    crate::template::context(json::object([
        ("Command", Value::from(go_quote(&command).as_str())),
        ("CreatedAt", Value::from(go_local_time(created).as_str())),
        ("ID", Value::from(if trunc { truncate_id(id) } else { id.to_string() }.as_str())),
        ("Image", Value::from(image_column(c["Image"].str(), c["ImageID"].str(), trunc).as_str())),
        ("Labels", Value::from(joined.join(",").as_str())),
        ("LocalVolumes", Value::from(local_volumes.to_string().as_str())),
        ("Mounts", Value::from(mounts.join(",").as_str())),
        ("Names", Value::from(names.join(",").as_str())),
        ("Networks", Value::from(networks.join(",").as_str())),
        ("Platform", platform),
        ("Ports", Value::from(displayable_ports(c["Ports"].items()).as_str())),
        ("RunningFor", Value::from(format!("{running_for} ago").as_str())),
        ("Size", Value::from(size.as_str())),
        ("State", Value::from(c["State"].str())),
        ("Status", Value::from(c["Status"].str())),
        (&format!("{METHOD_PREFIX}Label"), Value::Object(c["Labels"].members().clone())),
    ]))
}

/// docker's `ContainerContext.Image`: truncated, the digest dropped.
fn image_column(image: &str, image_id: &str, trunc: bool) -> String {
    if image.is_empty() {
        return "<no image>".into();
    }
    if !trunc {
        return image.to_string();
    }
    let t = truncate_id(image_id);
    if t == truncate_id(image) {
        return t;
    }
    match Reference::parse_normalized(image) {
        Ok(mut r) => {
            if r.tag.is_some() {
                r.digest = None;
                r.familiar_string()
            } else {
                r.familiar_name()
            }
        }
        Err(_) => image.to_string(),
    }
}

/// Go's `strconv.Quote` for the printable text commands hold.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// docker's `DisplayablePorts`: consecutive private ports grouped
/// ("80-81/tcp"), published ones as "0.0.0.0:8080->80/tcp".
pub fn displayable_ports(ports: &[Value]) -> String {
    let mut ports: Vec<(String, u16, u16, String)> = ports
        .iter()
        .map(|p| {
            (
                p["IP"].str().to_string(),
                p["PrivatePort"].as_u64().unwrap_or(0) as u16,
                p["PublicPort"].as_u64().unwrap_or(0) as u16,
                p["Type"].str().to_string(),
            )
        })
        .collect();
    // comparePorts: by private port, then public port, then type, then IP.
    ports.sort_by(|a, b| a.1.cmp(&b.1).then(a.2.cmp(&b.2)).then(a.3.cmp(&b.3)).then(a.0.cmp(&b.0)));
    let mut groups: Vec<(String, u16, u16)> = Vec::new();
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    for (ip, private, public, typ) in &ports {
        let mut key = typ.clone();
        if !ip.is_empty() {
            if public != private {
                let host = if ip.contains(':') { format!("[{ip}]:{public}") } else { format!("{ip}:{public}") };
                host_mappings.push(format!("{host}->{private}/{typ}"));
                continue;
            }
            key = format!("{ip}/{typ}");
        }
        match groups.iter_mut().find(|g| g.0 == key) {
            None => groups.push((key, *private, *private)),
            Some(g) if *private == g.2.wrapping_add(1) => g.2 = *private,
            Some(g) => {
                result.push(form_group(&g.0, g.1, g.2));
                g.1 = *private;
                g.2 = *private;
            }
        }
    }
    for g in &groups {
        result.push(form_group(&g.0, g.1, g.2));
    }
    result.extend(host_mappings);
    result.join(", ")
}

fn form_group(key: &str, first: u16, last: u16) -> String {
    let (ip, typ) = match key.split_once('/') {
        Some((ip, t)) => (ip, t),
        None => ("", key),
    };
    let mut group = first.to_string();
    if first != last {
        group = format!("{group}-{last}");
    }
    if !ip.is_empty() {
        let host = if ip.contains(':') { format!("[{ip}]") } else { ip.to_string() };
        group = format!("{host}:{group}->{group}");
    }
    format!("{group}/{typ}")
}

// ------------------------------------------------------------------ logs

#[derive(Args, Debug, Default)]
pub struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, default_value = "", value_name = "string")]
    pub since: String,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all", value_name = "string")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, default_value = "", value_name = "string")]
    pub until: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// The query docker's client sends for `logs`.
pub fn logs_query(a: &LogsArgs, now_nanos: i128) -> CliResult<String> {
    let mut params = vec![("stdout", "1".to_string()), ("stderr", "1".to_string())];
    if !a.since.is_empty() {
        params.push(("since", super::service::logs::api_timestamp(&a.since, now_nanos)?));
    }
    if !a.until.is_empty() {
        params.push(("until", super::service::logs::api_timestamp(&a.until, now_nanos)?));
    }
    if a.timestamps {
        params.push(("timestamps", "1".to_string()));
    }
    if a.details {
        params.push(("details", "1".to_string()));
    }
    if a.follow {
        params.push(("follow", "1".to_string()));
    }
    params.push(("tail", a.tail.clone()));
    Ok(query(&params))
}

pub fn run_logs(env: &mut Env, a: LogsArgs) -> CliResult {
    let c = env.client.get(&format!("/containers/{}/json", path_segment(&a.container)))?;
    let id = c["Id"].str().to_string();
    let q = logs_query(&a, crate::timestamp::now_unix_nanos())?;
    let resp = env.client.send("GET", &format!("/containers/{}/logs{q}", path_segment(&id)), None)?;
    let mut body = resp.body;
    if c.at(&["Config", "Tty"]).bool() {
        copy_flushing(&mut body, env.out).map_err(|e| CliError::new(e.to_string()))?;
        return Ok(());
    }
    stdcopy(&mut body, env.out, env.err).map_err(|e| CliError::new(e.to_string()))
}

/// Copies, flushing after every read (a followed stream shows at once).
fn copy_flushing(r: &mut dyn Read, w: &mut dyn Write) -> io::Result<u64> {
    let mut buf = vec![0u8; 32 * 1024];
    let mut n = 0u64;
    loop {
        let k = match r.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..k])?;
        w.flush()?;
        n += k as u64;
    }
}

/// moby's `stdcopy.StdCopy`: 8-byte headers (stream, 0, 0, 0, big-endian
/// length) before each payload; 0 and 1 go to `out`, 2 to `err`, 3 is the
/// daemon's error.
pub fn stdcopy(r: &mut dyn Read, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<()> {
    let mut header = [0u8; 8];
    let mut payload = Vec::new();
    loop {
        let mut got = 0;
        while got < 8 {
            match r.read(&mut header[got..]) {
                Ok(0) if got == 0 => return Ok(()),
                Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "unexpected EOF")),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        payload.resize(len, 0);
        r.read_exact(&mut payload)?;
        match header[0] {
            0 | 1 => {
                out.write_all(&payload)?;
                out.flush()?;
            }
            2 => {
                err.write_all(&payload)?;
                err.flush()?;
            }
            3 => return Err(io::Error::other(format!("error from daemon in stream: {}", String::from_utf8_lossy(&payload)))),
            s => return Err(io::Error::other(format!("Unrecognized input header: {s}"))),
        }
    }
}

// ------------------------------------------------------------------ exec

#[derive(Args, Debug, Default)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string", default_value = "")]
    pub detach_keys: String,
    /// Set environment variables
    #[arg(short, long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short, long, value_name = "string", default_value = "")]
    pub user: String,
    /// Working directory inside the container
    #[arg(short, long, value_name = "string", default_value = "")]
    pub workdir: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// The command and its arguments
    #[arg(value_name = "COMMAND", required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// docker's `ValidateEnv`: `K=V` as given, `K` alone from this environment
/// when set.
fn validate_env(v: &str, lookup: &dyn Fn(&str) -> Option<String>) -> CliResult<String> {
    let (k, has_value) = match v.split_once('=') {
        Some((k, _)) => (k, true),
        None => (v, false),
    };
    if k.is_empty() {
        return Err(CliError::new(format!("invalid environment variable: {v}")));
    }
    if has_value {
        return Ok(v.to_string());
    }
    Ok(lookup(k).map(|val| format!("{k}={val}")).unwrap_or_else(|| v.to_string()))
}

/// docker's `ReadKVEnvStrings`: `--env-file` lines (no blanks, no
/// comments; a bare name takes this environment's value), then `-e`.
pub fn exec_env(files: &[String], flags: &[String], lookup: &dyn Fn(&str) -> Option<String>) -> CliResult<Vec<String>> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| CliError::new(format!("open {f}: {}", io_text(&e))))?;
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once('=') {
                Some((k, _)) => {
                    if k.contains(char::is_whitespace) {
                        return Err(CliError::new(format!("variable '{k}' contains whitespaces")));
                    }
                    out.push(line.to_string());
                }
                None => {
                    if let Some(v) = lookup(line) {
                        out.push(format!("{line}={v}"));
                    }
                }
            }
        }
    }
    for e in flags {
        out.push(validate_env(e, lookup)?);
    }
    Ok(out)
}

fn io_text(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file or directory".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// The `/containers/{id}/exec` body docker's CLI sends.
pub fn exec_config(a: &ExecArgs, env: Vec<String>, console: Option<(u16, u16)>) -> Value {
    let attach = !a.detach;
    json::object([
        ("User", Value::from(a.user.as_str())),
        ("Privileged", Value::Bool(a.privileged)),
        ("Tty", Value::Bool(a.tty)),
        ("ConsoleSize", console.map(|(h, w)| Value::Array(vec![Value::from(h as i64), Value::from(w as i64)])).unwrap_or(Value::Null)),
        ("AttachStdin", Value::Bool(attach && a.interactive)),
        ("AttachStderr", Value::Bool(attach)),
        ("AttachStdout", Value::Bool(attach)),
        ("Detach", Value::Bool(a.detach)),
        ("DetachKeys", Value::from(a.detach_keys.as_str())),
        ("Env", if env.is_empty() { Value::Null } else { Value::Array(env.iter().map(|e| Value::from(e.as_str())).collect()) }),
        ("WorkingDir", Value::from(a.workdir.as_str())),
        ("Cmd", Value::Array(a.command.iter().map(|c| Value::from(c.as_str())).collect())),
    ])
}

/// The exec's end as the CLI's exit: its code (0 is success).
pub fn run_exec(env: &mut Env, a: ExecArgs) -> CliResult {
    let lookup = |k: &str| std::env::var(k).ok();
    let vars = exec_env(&a.env_file, &a.env, &lookup)?;
    // The container first, so "No such container" wins over other errors.
    env.client.get(&format!("/containers/{}/json", path_segment(&a.container)))?;
    if !a.detach && a.interactive && a.tty && !is_tty(0) {
        return Err(CliError::new("the input device is not a TTY"));
    }
    let console = a.tty.then(crate::term::stdout_size);
    let created = env.client.post(&format!("/containers/{}/exec", path_segment(&a.container)), Some(&exec_config(&a, vars, console)))?;
    let id = created["Id"].str().to_string();
    if id.is_empty() {
        return Err(CliError::new("exec ID empty"));
    }
    let console_json = console.map(|(h, w)| Value::Array(vec![Value::from(h as i64), Value::from(w as i64)])).unwrap_or(Value::Null);
    let start = json::object([("Detach", Value::Bool(a.detach)), ("Tty", Value::Bool(a.tty)), ("ConsoleSize", console_json)]);
    if a.detach {
        env.client.send("POST", &format!("/exec/{}/start", path_segment(&id)), Some(&start))?;
        return Ok(());
    }
    let conn = env.client.hijack(&format!("/exec/{}/start", path_segment(&id)), &start)?;
    stream_exec(env, &a, &id, conn)?;
    let inspect = env.client.get(&format!("/exec/{}/json", path_segment(&id)))?;
    match inspect["ExitCode"].as_i64().unwrap_or(0) {
        0 => Ok(()),
        code => Err(CliError::new("").with_status(code as i32)),
    }
}

fn stream_exec(env: &mut Env, a: &ExecArgs, id: &str, conn: crate::client::Hijacked) -> CliResult {
    let crate::client::Hijacked { mut reader, writer } = conn;
    let raw = (a.tty && a.interactive && is_tty(0)).then(crate::term::Mode::raw).flatten();
    if a.tty && is_tty(0) {
        watch_resizes(env.client.clone(), id.to_string());
    }
    let interactive = a.interactive;
    let escape = if a.tty && interactive { Some(detach_keys(&a.detach_keys)) } else { None };
    // Standard input on its own thread; the output decides when we end.
    // A daemon that did not switch protocols left nothing to write to.
    std::thread::spawn(move || {
        let Some(mut w) = writer else { return };
        if interactive {
            let mut stdin = io::stdin();
            let mut buf = [0u8; 4096];
            let mut pending: Vec<u8> = Vec::new();
            loop {
                let n = match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let send = match &escape {
                    None => buf[..n].to_vec(),
                    Some(keys) => match scan_escape(keys, &mut pending, &buf[..n]) {
                        Escape::Pass(b) => b,
                        Escape::Detach => {
                            DETACHED.store(true, std::sync::atomic::Ordering::SeqCst);
                            w.close();
                            return;
                        }
                    },
                };
                if w.write_all(&send).is_err() {
                    break;
                }
            }
        }
        let _ = w.close_write();
    });
    let result = if a.tty { copy_flushing(&mut reader, env.out).map(|_| ()) } else { stdcopy(&mut reader, env.out, env.err) };
    drop(raw);
    if DETACHED.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(CliError::new("read escape sequence"));
    }
    result.map_err(|e| CliError::new(e.to_string()))
}

static DETACHED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// docker's detach keys: ctrl-p ctrl-q unless `--detach-keys` names others
/// (`ctrl-<x>` or single characters, comma separated).
fn detach_keys(spec: &str) -> Vec<u8> {
    if spec.is_empty() {
        return vec![16, 17];
    }
    let mut out = Vec::new();
    for k in spec.split(',') {
        let k = k.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            match c.as_bytes() {
                [b] if b.is_ascii_lowercase() => out.push(b - b'a' + 1),
                b"@" => out.push(0),
                b"[" => out.push(27),
                b"\\" => out.push(28),
                b"]" => out.push(29),
                b"^" => out.push(30),
                b"_" => out.push(31),
                _ => return vec![16, 17],
            }
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return vec![16, 17];
        }
    }
    out
}

enum Escape {
    Pass(Vec<u8>),
    Detach,
}

/// moby/term's escape proxy: bytes that may start the sequence are held
/// until it is complete (detach) or broken (sent on).
fn scan_escape(keys: &[u8], pending: &mut Vec<u8>, input: &[u8]) -> Escape {
    let mut out = Vec::new();
    for &b in input {
        pending.push(b);
        if keys.starts_with(pending) {
            if pending.len() == keys.len() {
                return Escape::Detach;
            }
            continue;
        }
        out.append(pending);
    }
    Escape::Pass(out)
}

static WINCH_PIPE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn on_winch(_: libc::c_int) {
    let fd = WINCH_PIPE.load(std::sync::atomic::Ordering::SeqCst);
    if fd >= 0 {
        // Raw write(2): async-signal-safe, on the descriptor number the
        // handler can reach (an atomic, not an owned descriptor).
        // SAFETY: writes one byte from a static buffer.
        unsafe {
            libc::write(fd, b"w".as_ptr().cast(), 1);
        }
    }
}

/// docker's `MonitorTtySize`: the exec's terminal takes this one's size at
/// once and on every SIGWINCH.
fn watch_resizes(client: Client, id: String) {
    let resize = move |client: &Client| {
        let (h, w) = crate::term::stdout_size();
        if h == 0 && w == 0 {
            return true;
        }
        client
            .send("POST", &format!("/exec/{}/resize{}", path_segment(&id), query(&[("h", h.to_string()), ("w", w.to_string())])), None)
            .is_ok()
    };
    if !resize(&client) {
        // The exec may not have started yet: docker retries a few times.
        let (c, r) = (client.clone(), resize.clone());
        std::thread::spawn(move || {
            for i in 0..10u64 {
                std::thread::sleep(std::time::Duration::from_millis((i + 1) * 10));
                if r(&c) {
                    return;
                }
            }
            eprintln!("failed to resize tty, using default size");
        });
    }
    use nix::sys::signal::{signal, SigHandler, Signal};
    use std::os::fd::IntoRawFd;
    let Ok((read_end, write_end)) = nix::unistd::pipe() else { return };
    // The write end lives as long as the process (the handler may run any time).
    WINCH_PIPE.store(write_end.into_raw_fd(), std::sync::atomic::Ordering::SeqCst);
    // SAFETY: the handler only writes a byte to the pipe (async-signal-safe).
    if unsafe { signal(Signal::SIGWINCH, SigHandler::Handler(on_winch)) }.is_err() {
        return;
    }
    std::thread::spawn(move || {
        let mut b = [0u8; 16];
        while let Ok(n) = nix::unistd::read(&read_end, &mut b) {
            if n == 0 {
                return;
            }
            resize(&client);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::FakeDaemon;

    fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![stream, 0, 0, 0];
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn stdcopy_demultiplexes() {
        let mut raw = frame(1, b"out\n");
        raw.extend(frame(2, b"err\n"));
        raw.extend(frame(1, b"more\n"));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        stdcopy(&mut &raw[..], &mut out, &mut err).unwrap();
        assert_eq!((out.as_slice(), err.as_slice()), (&b"out\nmore\n"[..], &b"err\n"[..]));
        let raw = frame(3, b"boom");
        let e = stdcopy(&mut &raw[..], &mut Vec::new(), &mut Vec::new()).unwrap_err();
        assert_eq!(e.to_string(), "error from daemon in stream: boom");
        let cut = &frame(1, b"abc")[..5];
        assert!(stdcopy(&mut &cut[..], &mut Vec::new(), &mut Vec::new()).is_err());
    }

    #[test]
    fn ps_rows_as_docker_shows_them() {
        let c = json::parse(
            r#"{"Id":"3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a","Names":["/web.1.abcdefghijklmnopqrstuvwxy"],"Image":"192.168.77.11:5000/busy:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","ImageID":"sha256:9999999999999999","Command":"sh -c 'for i in 1 2 3; do echo $i; done'","Created":1000,"Ports":[],"Labels":{"b":"2","a":"1"},"State":"running","Status":"Up 5 seconds","NetworkSettings":{"Networks":{"backnet":{}}},"Mounts":[{"Type":"volume","Name":"v2","Source":"/x","Driver":"local"}]}"#,
        )
        .unwrap();
        let row = container_row(&c, true, 1000 * 1_000_000_000 + 90 * 1_000_000_000);
        assert_eq!(row["ID"].str(), "3f2a1b0c9d8e");
        assert_eq!(row["Image"].str(), "192.168.77.11:5000/busy:1");
        assert_eq!(row["Command"].str(), "\"sh -c 'for i in 1 2…\"");
        assert_eq!(row["RunningFor"].str(), "About a minute ago");
        assert_eq!(row["Labels"].str(), "a=1,b=2");
        assert_eq!((row["Mounts"].str(), row["LocalVolumes"].str()), ("v2", "1"));
        assert_eq!(row["Size"].str(), "0B");
        let t = crate::template::parse(r#"{{.Label "b"}}{{.Label "zz"}}"#).unwrap();
        assert_eq!(t.execute(&row).unwrap(), "2");
        let table = write_rows(PS_TABLE, &container_header(), &[row]).unwrap();
        assert_eq!(
            table,
            "CONTAINER ID   IMAGE                       COMMAND                  CREATED              STATUS         PORTS     NAMES\n\
             3f2a1b0c9d8e   192.168.77.11:5000/busy:1   \"sh -c 'for i in 1 2…\"   About a minute ago   Up 5 seconds             web.1.abcdefghijklmnopqrstuvwxy\n"
        );
        let full = container_row(&c, false, 0);
        assert!(full["Image"].str().contains("@sha256:") && full["ID"].str().len() == 64);
        assert_eq!(image_column("busybox", "sha256:1", true), "busybox");
        assert_eq!(image_column("sha256:abcdef0123456789", "sha256:abcdef0123456789", true), "abcdef012345");
        assert_eq!(image_column("", "", true), "<no image>");
    }

    #[test]
    fn ports_grouped_as_docker_groups_them() {
        let p = json::parse(
            r#"[{"PrivatePort":81,"Type":"tcp"},{"PrivatePort":80,"Type":"tcp"},{"IP":"0.0.0.0","PrivatePort":443,"PublicPort":8443,"Type":"tcp"},{"IP":"0.0.0.0","PrivatePort":53,"PublicPort":53,"Type":"udp"}]"#,
        )
        .unwrap();
        assert_eq!(displayable_ports(p.items()), "0.0.0.0:53->53/udp, 80-81/tcp, 0.0.0.0:8443->443/tcp");
        assert_eq!(displayable_ports(&[]), "");
    }

    #[test]
    fn ps_query_and_quiet() {
        let d = FakeDaemon::start(|_| {
            (
                200,
                r#"[{"Id":"aaaaaaaaaaaaaaaaaaaa","Names":["/x"],"Created":1,"State":"exited","Status":"Exited (0) 1 second ago"}]"#.into(),
            )
        });
        let (r, out) = d.run(|env| {
            run_ps(env, PsArgs { quiet: true, latest: true, last: -1, filter: vec!["status=exited".into()], ..Default::default() })
        });
        r.unwrap();
        assert_eq!(out, "aaaaaaaaaaaa\n");
        assert_eq!(d.requests()[0].target, "/v1.44/containers/json?limit=1&filters=%7B%22status%22%3A%7B%22exited%22%3Atrue%7D%7D");
        let (r, out) = d.run(|env| {
            run_ps(env, PsArgs { all: true, last: -1, format: Some("{{.Names}} {{.State}} {{.Size}}".into()), ..Default::default() })
        });
        r.unwrap();
        assert_eq!(out, "x exited 0B\n");
        assert_eq!(d.requests()[1].target, "/v1.44/containers/json?all=1&size=1");
    }

    #[test]
    fn logs_queries_as_docker_does() {
        let a = LogsArgs { tail: "3".into(), timestamps: true, follow: true, since: "1700000000".into(), ..Default::default() };
        assert_eq!(logs_query(&a, 0).unwrap(), "?stdout=1&stderr=1&since=1700000000&timestamps=1&follow=1&tail=3");
        let a = LogsArgs { tail: "all".into(), ..Default::default() };
        assert_eq!(logs_query(&a, 0).unwrap(), "?stdout=1&stderr=1&tail=all");
    }

    #[test]
    fn exec_bodies_and_env() {
        let lookup = |k: &str| (k == "HOME").then(|| "/root".to_string());
        let dir = std::env::temp_dir().join(format!("shoal-cli-envfile-{}", std::process::id()));
        std::fs::write(&dir, "# comment\n\nA=1\n  B=two words\nHOME\nMISSING\n").unwrap();
        let vars = exec_env(&[dir.to_string_lossy().into_owned()], &["X=42".into(), "HOME".into(), "NOPE".into()], &lookup).unwrap();
        let _ = std::fs::remove_file(&dir);
        assert_eq!(vars, ["A=1", "B=two words", "HOME=/root", "X=42", "HOME=/root", "NOPE"]);
        assert_eq!(exec_env(&[], &["=x".into()], &lookup).unwrap_err().message, "invalid environment variable: =x");
        let a = ExecArgs { interactive: true, command: vec!["sh".into()], workdir: "/tmp".into(), ..Default::default() };
        assert_eq!(
            exec_config(&a, vec![], None).to_compact(),
            r#"{"User":"","Privileged":false,"Tty":false,"ConsoleSize":null,"AttachStdin":true,"AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":null,"WorkingDir":"/tmp","Cmd":["sh"]}"#
        );
        let d = ExecArgs { detach: true, interactive: true, tty: true, command: vec!["true".into()], ..Default::default() };
        let body = exec_config(&d, vec!["A=1".into()], Some((24, 80)));
        assert_eq!((body["AttachStdin"].bool(), body["AttachStdout"].bool()), (false, false));
        assert_eq!(body["ConsoleSize"].to_compact(), "[24,80]");
    }

    #[test]
    fn detach_sequence() {
        let keys = detach_keys("");
        let mut pending = Vec::new();
        assert!(matches!(scan_escape(&keys, &mut pending, b"ab\x10"), Escape::Pass(ref b) if b == b"ab"));
        assert!(matches!(scan_escape(&keys, &mut pending, b"x"), Escape::Pass(ref b) if b == b"\x10x"));
        assert!(matches!(scan_escape(&keys, &mut pending, b"\x10\x11"), Escape::Detach));
        assert_eq!(detach_keys("ctrl-a,x"), vec![1, b'x']);
        assert_eq!(detach_keys("bogus-key"), vec![16, 17]);
    }
}
