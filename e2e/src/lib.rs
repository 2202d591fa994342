//! Harness for multi-node scenarios: a `shoal lab` per test (network
//! namespaces, one real `shoald` per host), driven through the `shoal` CLI
//! and the Engine API on each host's socket. The lab is torn down when the
//! `Lab` value drops, also when a test fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod registry;

/// Where cargo put the workspace binaries.
pub fn bin(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let p = target.join(profile).join(name);
    assert!(p.exists(), "{} is missing: run `cargo build --workspace` before the e2e tests", p.display());
    p
}

/// These scenarios need root (namespaces); they fail loudly rather than skip.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "the e2e scenarios build network namespaces and must run as root");
}

pub struct Lab {
    pub name: String,
    /// Environment for every `shoal lab` command (and so every daemon).
    pub env: Vec<(String, String)>,
}

impl Lab {
    /// `shoal lab up` with a name unique to the test.
    pub fn up(name: &str, managers: usize, workers: usize) -> Lab {
        Self::up_with_env(name, managers, workers, &[])
    }

    pub fn up_with_env(name: &str, managers: usize, workers: usize, env: &[(&str, &str)]) -> Lab {
        Self::up_with(name, managers, workers, env, &[])
    }

    /// `shoal lab up` with extra flags (e.g. `--insecure-registry`).
    pub fn up_with(name: &str, managers: usize, workers: usize, env: &[(&str, &str)], flags: &[&str]) -> Lab {
        require_root();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lab = Lab { name: name.to_string(), env };
        // A leftover from an earlier crashed run must not fail this one.
        let _ = lab.lab(&["down"]);
        let (m, w) = (managers.to_string(), workers.to_string());
        let mut args = vec!["up", "--managers", &m, "--workers", &w];
        args.extend_from_slice(flags);
        let out = lab.lab(&args);
        assert!(out.status.success(), "lab up failed:\n{}{}", text(&out.stdout), text(&out.stderr));
        lab
    }

    pub fn lab(&self, args: &[&str]) -> Output {
        // `--name` goes right after the subcommand, before any `-- CMD`.
        let mut full = vec!["lab", args[0], "--name", &self.name];
        full.extend_from_slice(&args[1..]);
        Command::new(bin("shoal"))
            .args(&full)
            .env("SHOALD_BIN", bin("shoald"))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run shoal lab")
    }

    pub fn lab_ok(&self, args: &[&str]) -> String {
        let out = self.lab(args);
        assert!(out.status.success(), "shoal lab {args:?} failed:\n{}{}", text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    }

    /// Every task of `service` (history included), as node-1's API lists
    /// them; empty while the API cannot answer.
    pub fn tasks(&self, service: &str) -> Vec<Value> {
        let filters = format!("%7B%22service%22%3A%7B%22{service}%22%3Atrue%7D%7D");
        match self.api("node-1", "GET", &format!("/v1.44/tasks?filters={filters}"), None) {
            (200, Value::Array(v)) => v,
            _ => Vec::new(),
        }
    }

    /// The container name (`<service>.1.<task ID>`) of the running task of
    /// a one-replica service, once it runs.
    pub fn running_container(&self, service: &str, timeout: Duration) -> String {
        let task = wait_for(timeout, &format!("{service}'s task to run"), || {
            self.tasks(service).into_iter().find(|t| t["Status"]["State"] == "running")
        });
        format!("{service}.1.{}", task["ID"].as_str().unwrap())
    }

    pub fn socket(&self, node: &str) -> String {
        format!("/run/shoal/lab/{}/{node}/shoald.sock", self.name)
    }

    pub fn addr(&self, i: usize) -> String {
        format!("192.168.77.{}", 10 + i)
    }

    /// Runs the `shoal` CLI against a node's daemon.
    pub fn shoal(&self, node: &str, args: &[&str]) -> Output {
        Command::new(bin("shoal")).arg("-H").arg(format!("unix://{}", self.socket(node))).args(args).output().expect("run shoal")
    }

    pub fn shoal_ok(&self, node: &str, args: &[&str]) -> String {
        let out = self.shoal(node, args);
        assert!(out.status.success(), "shoal {args:?} on {node} failed:\n{}{}", text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    }

    /// One Engine API call: (status, parsed JSON body or Null).
    /// The stock docker CLI against `node`'s socket (scripts/test.sh
    /// installs docker.io where there is no docker).
    pub fn docker(&self, node: &str, args: &[&str]) -> Output {
        Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket(node)))
            .output()
            .expect("the docker CLI is needed for this test (scripts/test.sh installs docker.io)")
    }

    /// `docker` that must succeed; its stdout.
    pub fn docker_ok(&self, node: &str, args: &[&str]) -> String {
        let out = self.docker(node, args);
        assert!(out.status.success(), "docker {args:?} on {node}: {}{}", text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    }

    pub fn api(&self, node: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        api_call(&self.socket(node), method, path, body)
    }

    /// The node list, or None while the daemon cannot answer (restarting,
    /// catching up): for use inside polls.
    pub fn try_nodes(&self, node: &str) -> Option<Vec<Value>> {
        match self.api(node, "GET", "/v1.44/nodes", None) {
            (200, Value::Array(list)) => Some(list),
            _ => None,
        }
    }

    pub fn nodes(&self, node: &str) -> Vec<Value> {
        let (status, v) = self.api(node, "GET", "/v1.44/nodes", None);
        assert_eq!(status, 200, "GET /nodes on {node}: {v}");
        v.as_array().cloned().unwrap_or_default()
    }

    /// Sets a node label through `node` (any manager), retrying version races.
    pub fn label(&self, via: &str, target: &str, key: &str, value: &str) -> Result<(), String> {
        let out = self.shoal(via, &["node", "update", "--label-add", &format!("{key}={value}"), target]);
        if out.status.success() {
            Ok(())
        } else {
            Err(text(&out.stderr))
        }
    }
}

impl Lab {
    /// Builds `shoal-test/busy:1` ([`build_busybox_image`]) in a
    /// temporary folder and loads it on each of `nodes`.
    pub fn load_test_image(&self, nodes: &[&str]) {
        let dir = std::env::temp_dir().join(format!("shoal-e2e-image-{}-{}", self.name, std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let archive = build_busybox_image(&dir);
        for n in nodes {
            self.shoal_ok(n, &["image", "load", "-q", "-i", archive.to_str().unwrap()]);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // For a post-mortem: SHOAL_E2E_KEEP=1 leaves a failed test's lab up
        // (`shoal lab down --name <lab>` removes it).
        if std::thread::panicking() && std::env::var_os("SHOAL_E2E_KEEP").is_some_and(|v| v == "1") {
            eprintln!("SHOAL_E2E_KEEP=1: lab {} left up", self.name);
            return;
        }
        let out = self.lab(&["down"]);
        if !out.status.success() {
            eprintln!("lab down for {} failed: {}", self.name, text(&out.stderr));
        }
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Polls `f` until it returns Some, or panics with `what` after `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One Engine API call on the daemon's socket: (status, body as JSON, or
/// `Null`); status 0 when no whole answer came (none within 30 s, a cut
/// body, or one over 64 MiB).
pub fn api_call(socket: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    use shoal_http_client::{send, unix, Options, Request};
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = Request::new(method, path).header("Host", "shoal").header("Connection", "close");
    if !body.is_empty() {
        req = req.header("Content-Type", "application/json").body(body.as_bytes());
    }
    let opts = Options { timeout: Some(Duration::from_secs(30)), ..Options::default() };
    let Ok(resp) = unix::connect(Path::new(socket)).and_then(|io| send(io, &req, &opts)) else { return (0, Value::Null) };
    let status = resp.status;
    let Ok(raw) = resp.read_body(64 << 20) else { return (0, Value::Null) };
    (status, serde_json::from_slice(&raw).unwrap_or(Value::Null))
}

/// Hostname -> node JSON, from a node list.
pub fn by_host(nodes: &[Value]) -> std::collections::BTreeMap<String, Value> {
    nodes.iter().map(|n| (n["Description"]["Hostname"].as_str().unwrap_or("").to_string(), n.clone())).collect()
}

pub fn leader_host(nodes: &[Value]) -> Option<String> {
    nodes
        .iter()
        .find(|n| n["ManagerStatus"]["Leader"].as_bool() == Some(true))
        .map(|n| n["Description"]["Hostname"].as_str().unwrap_or("").to_string())
}

pub fn sh(dir: &std::path::Path, script: &str) -> String {
    let out = Command::new("sh").arg("-ec").arg(script).current_dir(dir).output().expect("run sh");
    assert!(out.status.success(), "{script}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// Builds, in `dir`, a `docker save` archive of `shoal-test/busy:1`: one
/// layer holding busybox-static with the usual applet links, `Cmd ["sh"]`
/// (`scripts/busybox-image.sh`, also used by the demo and the benchmarks).
pub fn build_busybox_image(dir: &std::path::Path) -> PathBuf {
    build_image(dir, "shoal-test/busy:1", "busy.tar")
}

/// [`build_busybox_image`] under another name, as `dir/<file>`, optionally
/// with another `Cmd` (JSON, e.g. `["sh","-c","exit 1"]`).
pub fn build_image(dir: &std::path::Path, tag: &str, file: &str) -> PathBuf {
    build_image_with_cmd(dir, tag, file, r#"["sh"]"#)
}

pub fn build_image_with_cmd(dir: &std::path::Path, tag: &str, file: &str, cmd: &str) -> PathBuf {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/busybox-image.sh");
    let out = dir.join(file);
    let run = Command::new(&script).arg(&out).arg(tag).arg(cmd).output().expect("run scripts/busybox-image.sh");
    assert!(run.status.success(), "busybox-image.sh: {}", text(&run.stderr));
    out
}

/// Runs `command` (a shell command line) in a 30x100 pseudo-terminal
/// (util-linux `script`), with `DOCKER_HOST` set to `socket`, types
/// `typed` into it and waits up to `limit` for the end: the exit code and
/// everything the terminal showed.
pub fn run_in_pty(socket: &str, command: &str, typed: &[u8], limit: std::time::Duration) -> (Option<i32>, String) {
    run_in_pty_steps(socket, command, &[("", typed)], limit)
}

/// [`run_in_pty`] typed as a user would: each step waits (up to `limit`)
/// until the terminal has shown its text since the previous step, then
/// types its bytes. Returns the exit code and everything shown.
pub fn run_in_pty_steps(socket: &str, command: &str, steps: &[(&str, &[u8])], limit: std::time::Duration) -> (Option<i32>, String) {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    let mut script = Command::new("script")
        .args(["-qec", &format!("stty rows 30 cols 100; {command}"), "/dev/null"])
        .env("DOCKER_HOST", format!("unix://{socket}"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux");
    let shown = Arc::new(Mutex::new(Vec::new()));
    let mut out = script.stdout.take().unwrap();
    let sink = shown.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let mut typing = script.stdin.take().unwrap();
    let mut seen = 0;
    for (wait, typed) in steps {
        seen = wait_for(limit, &format!("{wait:?} on the terminal of {command}"), || {
            let all = shown.lock().unwrap();
            let after = &all[seen.min(all.len())..];
            let at = if wait.is_empty() { Some(0) } else { after.windows(wait.len()).position(|w| w == wait.as_bytes()) };
            at.map(|at| seen + at + wait.len())
        });
        typing.write_all(typed).unwrap();
    }
    let status = wait_for(limit, &format!("{command} to end"), || script.try_wait().unwrap());
    drop(typing);
    reader.join().unwrap();
    let all = text(&shown.lock().unwrap());
    (status.code(), all)
}
