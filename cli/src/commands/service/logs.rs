//! `shoal service logs`: the docker CLI's `service logs`. The stream comes
//! with Docker's details (node, service and task IDs) on every line; each
//! is turned into the `name.slot.task@node    | ` context, resolved and
//! cached per task like the docker CLI does.

use std::collections::HashMap;
use std::io::{Read, Write};

use clap::Args;

use crate::client::{path_segment, query};
use crate::commands::Env;
use crate::error::{CliError, CliResult};
use crate::json::JsonExt;

#[derive(Args, Debug, Default, Clone)]
pub struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Do not map IDs to Names in output
    #[arg(long = "no-resolve")]
    pub no_resolve: bool,
    /// Do not include task IDs in output
    #[arg(long = "no-task-ids")]
    pub no_task_ids: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Do not neatly format logs
    #[arg(long)]
    pub raw: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, default_value = "")]
    pub since: String,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    #[arg(value_name = "SERVICE|TASK")]
    pub target: String,
}

/// Go's `len(strconv.Itoa(i))`.
fn digits(n: u64) -> usize {
    n.to_string().len()
}

/// docker's `timetypes.GetTimestamp`: a Go duration before now, a Unix
/// time (`seconds[.nanoseconds]`), or an RFC 3339 time or date, as the
/// API's `seconds.nanoseconds`.
pub fn api_timestamp(value: &str, now_nanos: i128) -> CliResult<String> {
    let fmt = |n: i128| format!("{}.{:09}", n.div_euclid(1_000_000_000), n.rem_euclid(1_000_000_000));
    if let Ok(d) = crate::duration::parse_go_duration(value) {
        return Ok(fmt(now_nanos - d as i128));
    }
    let unix = value.split_once('.').map(|(a, b)| (a, Some(b))).unwrap_or((value, None));
    if !unix.0.is_empty() && unix.0.bytes().all(|b| b.is_ascii_digit()) && unix.1.is_none_or(|f| f.bytes().all(|b| b.is_ascii_digit())) {
        return Ok(value.to_string());
    }
    let full = if value.len() == 10 {
        format!("{value}T00:00:00Z")
    } else if value.len() == 19 {
        format!("{value}Z")
    } else {
        value.to_string()
    };
    crate::timestamp::Timestamp::parse(&full)
        .map(|t| fmt(t.unix_nanos()))
        .ok_or_else(|| CliError::new(format!("failed to parse value as time or duration: \"{value}\"")))
}

/// docker's `logs.ParseLogDetails`: `k=v,k=v` with URL-escaped parts.
pub fn parse_details(s: &str) -> CliResult<HashMap<String, String>> {
    let mut out = HashMap::new();
    if s.is_empty() {
        return Ok(out);
    }
    for pair in s.split(',') {
        let kv: Vec<&str> = pair.split('=').collect();
        if kv.len() != 2 {
            return Err(CliError::new("invalid details format"));
        }
        out.insert(unescape(kv[0])?, unescape(kv[1])?);
    }
    Ok(out)
}

fn unescape(s: &str) -> CliResult<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
                let Some(v) = hex else { return Err(CliError::new(format!("invalid URL escape \"{}\"", &s[i..(i + 3).min(s.len())]))) };
                out.push(v);
                i += 3;
                continue;
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Turns details into the printed context, with the daemon's names.
struct Formatter<'a> {
    env_client: &'a crate::client::Client,
    args: &'a LogsArgs,
    padding: usize,
    cache: HashMap<(String, String, String), String>,
}

impl Formatter<'_> {
    fn resolve(&self, kind: &str, id: &str) -> String {
        if self.args.no_resolve {
            return id.to_string();
        }
        match self.env_client.get(&format!("/{kind}/{}", path_segment(id))) {
            Ok(j) if kind == "nodes" => {
                let name = j.at(&["Spec", "Name"]).str();
                let host = j.at(&["Description", "Hostname"]).str();
                if !name.is_empty() {
                    name.to_string()
                } else if !host.is_empty() {
                    host.to_string()
                } else {
                    id.to_string()
                }
            }
            Ok(j) => {
                let name = j.at(&["Spec", "Name"]).str();
                if name.is_empty() {
                    id.to_string()
                } else {
                    name.to_string()
                }
            }
            Err(_) => id.to_string(),
        }
    }

    fn context(&mut self, node: &str, service: &str, task: &str) -> CliResult<String> {
        let key = (node.to_string(), service.to_string(), task.to_string());
        if let Some(c) = self.cache.get(&key) {
            return Ok(c.clone());
        }
        let node_name = self.resolve("nodes", node);
        let service_name = self.resolve("services", service);
        let t = self.env_client.get(&format!("/tasks/{}", path_segment(task)))?;
        let slot = t["Slot"].as_u64().unwrap_or(0);
        let id = t["ID"].str();
        let mut name = format!("{service_name}.{slot}");
        if !self.args.no_task_ids {
            if self.args.no_trunc {
                name.push_str(&format!(".{id}"));
            } else {
                name.push_str(&format!(".{}", &id[..id.len().min(12)]));
            }
        }
        let pad = " ".repeat(self.padding.saturating_sub(digits(slot)));
        let formatted = format!("{name}@{node_name}{pad}");
        self.cache.insert(key, formatted.clone());
        Ok(formatted)
    }

    /// docker's `logWriter.Write` for one frame.
    fn line(&mut self, frame: &[u8]) -> CliResult<Vec<u8>> {
        let parts_n = if self.args.timestamps { 3 } else { 2 };
        let parts: Vec<&[u8]> = frame.splitn(parts_n, |&b| b == b' ').collect();
        if parts.len() != parts_n {
            return Err(CliError::new(format!("invalid context in log message: {}", String::from_utf8_lossy(frame))));
        }
        let di = parts_n - 2;
        let mut details = parse_details(&String::from_utf8_lossy(parts[di]))?;
        let mut take = |k: &str, what: &str| details.remove(k).ok_or_else(|| CliError::new(format!("missing {what} id in details: map[]")));
        let node = take("com.docker.swarm.node.id", "node")?;
        let service = take("com.docker.swarm.service.id", "service")?;
        let task = take("com.docker.swarm.task.id", "task")?;
        let mut out = Vec::new();
        if self.args.timestamps {
            out.extend_from_slice(parts[0]);
            out.push(b' ');
        }
        out.extend_from_slice(self.context(&node, &service, &task)?.as_bytes());
        out.extend_from_slice(b"    | ");
        if self.args.details {
            let mut d: Vec<String> = details.iter().map(|(k, v)| format!("{k}={v}")).collect();
            d.sort();
            out.extend_from_slice(d.join(",").as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(parts[di + 1]);
        Ok(out)
    }
}

pub fn run(env: &mut Env, a: LogsArgs) -> CliResult {
    let client = env.client;
    let (kind, tty, padding) = match client.get(&format!("/services/{}", path_segment(&a.target))) {
        Ok(s) => {
            let tty = s.at(&["Spec", "TaskTemplate", "ContainerSpec", "TTY"]).bool();
            let replicas = s.at(&["Spec", "Mode", "Replicated", "Replicas"]).as_u64();
            ("services", tty, replicas.map(digits).unwrap_or(1))
        }
        Err(e) if e.http_status == Some(404) => match client.get(&format!("/tasks/{}", path_segment(&a.target))) {
            Ok(t) => ("tasks", t.at(&["Spec", "ContainerSpec", "TTY"]).bool(), digits(t["Slot"].as_u64().unwrap_or(0))),
            Err(e) if e.http_status == Some(404) => return Err(CliError::new(format!("no such task or service: {}", a.target))),
            Err(e) => return Err(e),
        },
        Err(e) => return Err(e),
    };
    if tty && !a.raw {
        return Err(CliError::new("tty service logs only supported with --raw"));
    }
    let mut params = vec![("stdout", "1".to_string()), ("stderr", "1".to_string())];
    if !a.since.is_empty() {
        params.push(("since", api_timestamp(&a.since, crate::timestamp::now_unix_nanos())?));
    }
    if a.timestamps {
        params.push(("timestamps", "1".into()));
    }
    if a.details || !a.raw {
        params.push(("details", "1".into()));
    }
    if a.follow {
        params.push(("follow", "1".into()));
    }
    params.push(("tail", a.tail.clone()));
    let mut resp = client.send("GET", &format!("/{kind}/{}/logs{}", path_segment(&a.target), query(&params)), None)?;
    if tty {
        let mut buf = [0u8; 8192];
        loop {
            let n = resp.body.read(&mut buf).map_err(|e| CliError::new(e.to_string()))?;
            if n == 0 {
                return Ok(());
            }
            env.out.write_all(&buf[..n]).and_then(|_| env.out.flush()).map_err(CliError::from)?;
        }
    }
    let mut fmt = Formatter { env_client: client, args: &a, padding, cache: HashMap::new() };
    loop {
        let mut head = [0u8; 8];
        match read_full(&mut resp.body, &mut head)? {
            0 => return Ok(()),
            8 => {}
            _ => return Err(CliError::new("unexpected EOF")),
        }
        let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let mut payload = vec![0u8; len];
        if read_full(&mut resp.body, &mut payload)? != len {
            return Err(CliError::new("unexpected EOF"));
        }
        let line = match head[0] {
            3 => return Err(CliError::new(format!("error from daemon in stream: {}", String::from_utf8_lossy(&payload).trim_end()))),
            0..=2 if a.raw => payload.clone(),
            0..=2 => fmt.line(&payload)?,
            s => return Err(CliError::new(format!("Unrecognized input header: {s}"))),
        };
        let w: &mut dyn Write = if head[0] == 2 { &mut *env.err } else { &mut *env.out };
        w.write_all(&line).and_then(|_| w.flush()).map_err(CliError::from)?;
    }
}

/// Reads until `buf` is full or the stream ends; how many bytes were read.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> CliResult<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CliError::new(format!("error reading logs: {e}"))),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::FakeDaemon;

    fn frame(stream: u8, s: &str) -> String {
        let mut out = String::from_utf8(vec![stream, 0, 0, 0, 0, 0, 0, s.len() as u8]).unwrap();
        out.push_str(s);
        out
    }

    const D1: &str = "com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id=taskaaaaaaaaaaaaaaaaaaaaa";

    fn daemon(stream: String) -> FakeDaemon {
        FakeDaemon::start(move |r| {
            let t = r.target.as_str();
            if t.contains("/logs?") {
                (200, stream.clone())
            } else if t.ends_with("/services/web") || t.ends_with("/services/s1") {
                (200, r#"{"ID":"s1","Spec":{"Name":"web","Mode":{"Replicated":{"Replicas":10}}}}"#.into())
            } else if t.ends_with("/nodes/n1") {
                (200, r#"{"ID":"n1","Spec":{},"Description":{"Hostname":"node-2"}}"#.into())
            } else if t.ends_with("/tasks/t9") {
                (200, r#"{"ID":"t9","Slot":12}"#.into())
            } else if t.ends_with("/tasks/taskaaaaaaaaaaaaaaaaaaaaa") {
                (200, r#"{"ID":"taskaaaaaaaaaaaaaaaaaaaaa","Slot":3}"#.into())
            } else {
                (404, r#"{"message":"not found"}"#.into())
            }
        })
    }

    fn run_logs(d: &FakeDaemon, args: &[&str]) -> (CliResult, String) {
        use clap::Parser;
        #[derive(Parser)]
        struct P {
            #[command(flatten)]
            a: LogsArgs,
        }
        let a = P::parse_from(std::iter::once("logs").chain(args.iter().copied())).a;
        d.run(|env| run(env, a))
    }

    #[test]
    fn lines_get_docker_context_with_padding() {
        let d = daemon(frame(1, &format!("{D1} hello\n")));
        let (r, out) = run_logs(&d, &["web"]);
        r.unwrap();
        assert_eq!(out, "web.3.taskaaaaaaaa@node-2     | hello\n");
        let q = d.requests().into_iter().find(|r| r.target.contains("/logs")).unwrap().target;
        assert!(q.contains("stdout=1") && q.contains("stderr=1") && q.contains("details=1") && q.contains("tail=all"), "{q}");

        let (r, out) = run_logs(&d, &["--no-task-ids", "--no-resolve", "web"]);
        r.unwrap();
        assert_eq!(out, "s1.3@n1     | hello\n");
    }

    #[test]
    fn timestamps_raw_and_stream_errors() {
        let ts = "2024-05-01T10:00:00.000000001Z";
        let short = "com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id=t9";
        let d = daemon(frame(1, &format!("{ts} {short} hi\n")));
        let (r, out) = run_logs(&d, &["-t", "--no-trunc", "web"]);
        r.unwrap();
        assert_eq!(out, format!("{ts} web.12.t9@node-2    | hi\n"));

        let d = daemon(frame(1, "plain\n"));
        let (r, out) = run_logs(&d, &["--raw", "web"]);
        r.unwrap();
        assert_eq!(out, "plain\n");
        let q = d.requests().into_iter().find(|r| r.target.contains("/logs")).unwrap().target;
        assert!(!q.contains("details"), "{q}");

        let d = daemon(frame(3, "Error grabbing logs: boom\n"));
        let (r, _) = run_logs(&d, &["web"]);
        assert_eq!(r.unwrap_err().message, "error from daemon in stream: Error grabbing logs: boom");

        let (r, _) = run_logs(&d, &["nothing"]);
        assert_eq!(r.unwrap_err().message, "no such task or service: nothing");
    }

    #[test]
    fn since_values_like_docker() {
        let now = 1_000_000_000_000_000_000i128;
        assert_eq!(api_timestamp("1m", now).unwrap(), "999999940.000000000");
        assert_eq!(api_timestamp("1700000000.5", now).unwrap(), "1700000000.5");
        assert_eq!(api_timestamp("2013-01-02T13:23:37Z", now).unwrap(), "1357133017.000000000");
        assert_eq!(api_timestamp("2013-01-02", now).unwrap(), "1357084800.000000000");
        assert_eq!(api_timestamp("soon", now).unwrap_err().message, "failed to parse value as time or duration: \"soon\"");
        assert!(parse_details("a=b=c").is_err());
        assert_eq!(parse_details("k%2C=v+1").unwrap()["k,"], "v 1");
    }
}
