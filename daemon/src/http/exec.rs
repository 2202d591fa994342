//! `docker exec` on a node's task containers: `POST /containers/{id}/exec`
//! makes an exec instance, `POST /exec/{id}/start` runs it with `runc exec`
//! on the connection the client hijacks (HTTP upgrade to a raw stream:
//! stdcopy frames without a TTY, the terminal's bytes with one),
//! `GET /exec/{id}/json` tells its state and exit code, and
//! `POST /exec/{id}/resize` sizes its terminal.
//!
//! The exit code is recorded before the stream closes: the docker CLI
//! inspects the instance as soon as its output ends.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde::Deserialize;
use serde_json::json;
use shoal_api::ApiError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::logs::{frame, StreamBody};
use super::{json_response, Body, Call, Reply};
use crate::swarm::SwarmNode;

/// Docker's `ExecConfig` (the create request's body).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub detach_keys: String,
    pub tty: bool,
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub privileged: bool,
    pub user: String,
    pub working_dir: String,
    pub console_size: Option<Vec<u16>>,
}

/// `POST /exec/{id}/start`'s body.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct StartConfig {
    pub detach: bool,
    pub tty: bool,
    pub console_size: Option<Vec<u16>>,
}

#[derive(Default)]
struct ExecState {
    started: bool,
    running: bool,
    exit_code: Option<i32>,
    pid: i32,
    /// The terminal's master end while a TTY exec runs (for resize).
    pty: Option<Arc<OwnedFd>>,
}

pub struct ExecInstance {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    state: Mutex<ExecState>,
    /// Signalled once the process has a pid or has ended: a detached
    /// start answers only then, as Docker's does (a `docker top` right
    /// after `docker exec -d` sees the process).
    began: tokio::sync::Notify,
}

/// Instances kept at most; ended ones go first.
const MAX_EXECS: usize = 1000;

/// The node's exec instances, in memory.
#[derive(Default)]
pub struct Execs {
    map: Mutex<HashMap<String, Arc<ExecInstance>>>,
}

impl Execs {
    fn insert(&self, e: ExecInstance) -> Arc<ExecInstance> {
        let e = Arc::new(e);
        let mut m = self.map.lock().unwrap();
        if m.len() >= MAX_EXECS {
            m.retain(|_, x| x.state.lock().unwrap().exit_code.is_none());
        }
        m.insert(e.id.clone(), e.clone());
        e
    }

    /// The IDs of the instances running in a container (inspect's `ExecIDs`).
    pub fn running_in(&self, container_id: &str) -> Vec<String> {
        let m = self.map.lock().unwrap();
        let mut ids: Vec<String> =
            m.values().filter(|e| e.container_id == container_id && e.state.lock().unwrap().running).map(|e| e.id.clone()).collect();
        ids.sort();
        ids
    }

    fn get(&self, id: &str) -> Result<Arc<ExecInstance>, ApiError> {
        self.map.lock().unwrap().get(id).cloned().ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))
    }
}

fn new_exec_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn not_running(id: &str) -> ApiError {
    ApiError::conflict(format!("Container {id} is not running"))
}

pub fn create(node: &Arc<SwarmNode>, key: &str, call: &Call) -> Reply {
    let cfg: ExecConfig = call.json()?;
    let r = super::containers::find(node, key)?;
    if !r.running() {
        return Err(not_running(&r.id));
    }
    if cfg.cmd.is_empty() {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    let e = node.execs.insert(ExecInstance {
        id: new_exec_id(),
        container_id: r.id,
        config: cfg,
        state: Mutex::default(),
        began: Default::default(),
    });
    json_response(StatusCode::CREATED, &json!({"Id": e.id}))
}

pub fn inspect(node: &Arc<SwarmNode>, id: &str) -> Reply {
    let e = node.execs.get(id)?;
    let st = e.state.lock().unwrap();
    let (entrypoint, arguments) = e.config.cmd.split_first().map(|(a, b)| (a.clone(), b.to_vec())).unwrap_or_default();
    json_response(
        StatusCode::OK,
        &json!({
            "CanRemove": false,
            "ContainerID": e.container_id,
            "DetachKeys": e.config.detach_keys,
            "ExitCode": st.exit_code,
            "ID": e.id,
            "OpenStderr": e.config.attach_stderr,
            "OpenStdin": e.config.attach_stdin,
            "OpenStdout": e.config.attach_stdout,
            "ProcessConfig": {
                "arguments": arguments,
                "entrypoint": entrypoint,
                "privileged": e.config.privileged,
                "tty": e.config.tty,
                "user": e.config.user,
            },
            "Running": st.running,
            "Pid": st.pid,
        }),
    )
}

pub fn resize(node: &Arc<SwarmNode>, id: &str, call: &Call) -> Reply {
    let e = node.execs.get(id)?;
    let dim = |k: &str| -> Result<u16, ApiError> {
        match call.query.get(k) {
            None => Ok(0),
            Some(v) => v.parse().map_err(|_| ApiError::bad_request(format!("strconv.Atoi: parsing {v:?}: invalid syntax"))),
        }
    };
    let (h, w) = (dim("h")?, dim("w")?);
    let pty = e.state.lock().unwrap().pty.clone();
    match pty {
        Some(fd) => shoal_worker::executor::console::set_size(&fd, h, w)
            .map_err(|err| ApiError::internal(format!("resizing the terminal: {err}")))?,
        None if e.state.lock().unwrap().running => {}
        None => return Err(ApiError::conflict(format!("Exec {id} is not running"))),
    }
    super::ok_empty()
}

/// `POST /exec/{id}/start`. `upgrade` is the hijack the client asked for
/// (the docker CLI always does); without one the output is the body.
pub async fn start(
    node: &Arc<SwarmNode>,
    id: &str,
    body: Bytes,
    upgrade: Option<hyper::upgrade::OnUpgrade>,
    api: super::version::ApiVersion,
) -> Result<Response<Body>, ApiError> {
    let call = Call { method: hyper::Method::POST, segs: vec![], query: HashMap::new(), body, registry_auth: None, api };
    let sc: StartConfig = call.json()?;
    let e = node.execs.get(id)?;
    let r = node.tasks.containers().get(&e.container_id).map_err(super::containers::lookup_error)?;
    {
        let mut st = e.state.lock().unwrap();
        if st.running {
            return Err(ApiError::conflict(format!("Error: Exec command {id} is already running")));
        }
        if st.started {
            return Err(ApiError::conflict(format!("Error: Exec command {id} has already run")));
        }
        if !r.running() {
            return Err(not_running(&r.id));
        }
        st.started = true;
        st.running = true;
    }
    let tty = e.config.tty || sc.tty;
    let pid_file = r.bundle.join(format!("exec-{}.pid", &e.id[..16]));
    let console = match tty.then(|| shoal_worker::executor::console::socket_path(&e.id)).transpose() {
        Ok(c) => c,
        Err(err) => {
            finish(&e, 126, &pid_file);
            return Err(ApiError::internal(err));
        }
    };
    let proc = shoal_worker::containers::ExecProcess {
        cmd: e.config.cmd.clone(),
        env: e.config.env.clone(),
        user: e.config.user.clone(),
        working_dir: e.config.working_dir.clone(),
        privileged: e.config.privileged,
    };
    // An error here (e.g. an unknown user) is the process's failure to
    // start: written to the stream, exit code 126, as Docker reports it.
    let command = node.tasks.containers().exec_command(&r, &proc, &pid_file, console.as_deref());
    let size = sc.console_size.clone().or_else(|| e.config.console_size.clone());
    let run = Run { exec: e.clone(), command, pid_file, console, size };
    if sc.detach {
        let exec = run.exec.clone();
        tokio::spawn(async move {
            let (tx, mut rx) = mpsc::channel::<Bytes>(16);
            tokio::spawn(async move { while rx.recv().await.is_some() {} });
            run.run(tx, None).await;
        });
        // runc has until its own start deadline; past that the process is
        // reported by inspect as it goes.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), exec.began.notified()).await;
        return Ok(Response::new(Body::Left(Full::new(Bytes::new()))));
    }
    let ctype = super::version::stream_type(!tty, api);
    let (tx, rx) = mpsc::channel::<Bytes>(32);
    match upgrade {
        Some(on) => {
            tokio::spawn(async move {
                let Ok(upgraded) = on.await else {
                    finish(&run.exec, 126, &run.pid_file);
                    return;
                };
                let io = hyper_util::rt::TokioIo::new(upgraded);
                let (mut rd, mut wr) = tokio::io::split(io);
                let (in_tx, in_rx) = mpsc::channel::<Bytes>(16);
                let want_stdin = run.exec.config.attach_stdin;
                let reader = tokio::spawn(async move {
                    let mut buf = vec![0u8; 32 * 1024];
                    loop {
                        match rd.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if want_stdin && in_tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
                let writer = tokio::spawn(async move {
                    let mut rx = rx;
                    while let Some(b) = rx.recv().await {
                        if wr.write_all(&b).await.is_err() {
                            break;
                        }
                    }
                    let _ = wr.shutdown().await;
                });
                run.run(tx, Some(in_rx)).await;
                let _ = writer.await;
                reader.abort();
            });
            let mut resp = Response::new(Body::Left(Full::new(Bytes::new())));
            *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let h = resp.headers_mut();
            h.insert("Connection", "Upgrade".parse().expect("static header"));
            h.insert("Upgrade", "tcp".parse().expect("static header"));
            h.insert("Content-Type", ctype.parse().expect("static header"));
            Ok(resp)
        }
        None => {
            tokio::spawn(run.run(tx, None));
            let mut resp = Response::new(Body::Right(StreamBody::new(rx)));
            resp.headers_mut().insert("Content-Type", ctype.parse().expect("static header"));
            Ok(resp)
        }
    }
}

/// The exec's end: exit code recorded, pid and runc log files gone.
fn finish(e: &ExecInstance, code: i32, pid_file: &std::path::Path) {
    let _ = std::fs::remove_file(shoal_worker::containers::runc_log_path(pid_file));
    let mut st = e.state.lock().unwrap();
    st.exit_code = Some(code);
    st.running = false;
    st.pid = 0;
    st.pty = None;
    drop(st);
    e.began.notify_one();
    let _ = std::fs::remove_file(pid_file);
}

/// A process runc could not start: Docker's message and exit code (127:
/// not found, 126: cannot run). `runc_error` is what runc logged.
pub fn start_failure(runc_code: i32, runc_error: Option<&str>) -> Option<(i32, String)> {
    let msg = runc_error.filter(|_| runc_code == 255)?;
    let code = if msg.contains("executable file not found") || msg.contains("no such file or directory") { 127 } else { 126 };
    Some((code, format!("OCI runtime exec failed: {msg}: unknown")))
}

struct Run {
    exec: Arc<ExecInstance>,
    command: Result<std::process::Command, String>,
    pid_file: PathBuf,
    console: Option<PathBuf>,
    size: Option<Vec<u16>>,
}

impl Run {
    /// Runs the process: its output into `out` (framed unless a TTY),
    /// `stdin` into it; the exit code is recorded before `out` closes.
    async fn run(self, out: mpsc::Sender<Bytes>, stdin: Option<mpsc::Receiver<Bytes>>) {
        let code = match (&self.command, &self.console) {
            (Err(e), _) => Err(format!("OCI runtime exec failed: {e}")),
            (Ok(c), None) => self.run_pipes(c, &out, stdin).await,
            (Ok(c), Some(sock)) => self.run_tty(c, sock.clone(), &out, stdin).await,
        };
        let code = match code {
            Ok(c) => c,
            Err(e) => {
                let msg = format!("{e}\n");
                let bytes = if self.console.is_some() { msg.into_bytes() } else { frame(2, msg.as_bytes()) };
                let _ = out.send(Bytes::from(bytes)).await;
                126
            }
        };
        finish(&self.exec, code, &self.pid_file);
        drop(out);
    }

    /// What runc logged as its error, if anything.
    fn runc_error(&self) -> Option<String> {
        let log = std::fs::read(shoal_worker::containers::runc_log_path(&self.pid_file)).ok()?;
        shoal_worker::containers::runc_error(&log)
    }

    fn note_pid(&self) {
        if let Some(pid) = std::fs::read_to_string(&self.pid_file).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
            self.exec.state.lock().unwrap().pid = pid;
            self.exec.began.notify_one();
        }
    }

    async fn run_pipes(
        &self,
        command: &std::process::Command,
        out: &mpsc::Sender<Bytes>,
        stdin: Option<mpsc::Receiver<Bytes>>,
    ) -> Result<i32, String> {
        use std::process::Stdio;
        let mut cmd = tokio::process::Command::from(clone_command(command));
        let attach_in = self.exec.config.attach_stdin && stdin.is_some();
        cmd.stdin(if attach_in { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| format!("OCI runtime exec failed: {e}"))?;
        let (Some(mut so), Some(mut se)) = (child.stdout.take(), child.stderr.take()) else {
            return Err("exec: no output pipes".into());
        };
        if let (Some(mut sin), Some(mut rx)) = (child.stdin.take(), stdin) {
            tokio::spawn(async move {
                while let Some(b) = rx.recv().await {
                    if sin.write_all(&b).await.is_err() {
                        return;
                    }
                }
                // The client closed its side: stdin's end.
            });
        }
        let (send_out, send_err) = (self.exec.config.attach_stdout, self.exec.config.attach_stderr);
        let o = out.clone();
        let pump_out = tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            while let Ok(n) = so.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                if send_out && o.send(Bytes::from(frame(1, &buf[..n]))).await.is_err() {
                    break;
                }
            }
        });
        let o = out.clone();
        let pump_err = tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            while let Ok(n) = se.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                if send_err && o.send(Bytes::from(frame(2, &buf[..n]))).await.is_err() {
                    break;
                }
            }
        });
        // runc writes the pid file once the process runs; `runc exec`
        // itself stays until the process ends, so watch for the file while
        // runc is alive (a busy host can take seconds).
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while tokio::time::Instant::now() < deadline {
            if self.pid_file.exists() {
                self.note_pid();
                break;
            }
            if child.try_wait().map_err(|e| format!("waiting for runc exec: {e}"))?.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let status = child.wait().await.map_err(|e| format!("waiting for runc exec: {e}"))?;
        let _ = pump_out.await;
        let _ = pump_err.await;
        let code = shoal_worker::executor::supervise::exit_code(std::os::unix::process::ExitStatusExt::into_raw(status));
        match start_failure(code, self.runc_error().as_deref()) {
            Some((code, msg)) => {
                let _ = out.send(Bytes::from(frame(2, format!("{msg}\n").as_bytes()))).await;
                Ok(code)
            }
            None => Ok(code),
        }
    }

    async fn run_tty(
        &self,
        command: &std::process::Command,
        sock: PathBuf,
        out: &mpsc::Sender<Bytes>,
        stdin: Option<mpsc::Receiver<Bytes>>,
    ) -> Result<i32, String> {
        use std::process::Stdio;
        let _ = std::fs::remove_file(&sock);
        let listener = std::os::unix::net::UnixListener::bind(&sock).map_err(|e| format!("console socket {}: {e}", sock.display()))?;
        let mut cmd = tokio::process::Command::from(clone_command(command));
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let child = cmd.spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_file(&sock);
                return Err(format!("OCI runtime exec failed: {e}"));
            }
        };
        let received =
            tokio::task::spawn_blocking(move || shoal_worker::executor::console::receive_fd(&listener)).await.map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(&sock);
        let master = match received {
            Ok(fd) => Arc::new(fd),
            Err(e) => {
                let _ = child.kill().await;
                let _ = child.wait().await;
                return Err(self
                    .runc_error()
                    .map(|m| format!("OCI runtime exec failed: {m}: unknown"))
                    .unwrap_or_else(|| format!("OCI runtime exec failed: {e}")));
            }
        };
        if let Some([h, w]) = self.size.as_deref().and_then(|s| <[u16; 2]>::try_from(s).ok()) {
            let _ = shoal_worker::executor::console::set_size(&master, h, w);
        }
        self.exec.state.lock().unwrap().pty = Some(master.clone());
        // Terminal output: a blocking reader on a duplicate of the master.
        let rd = master.try_clone().map_err(|e| e.to_string())?;
        let o = out.clone();
        let pump = std::thread::spawn(move || {
            use std::io::Read;
            let mut f = std::fs::File::from(rd);
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match f.read(&mut buf) {
                    Ok(0) | Err(_) => return, // EIO once the last slave end closes
                    Ok(n) => {
                        if o.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        if let Some(mut rx) = stdin.filter(|_| self.exec.config.attach_stdin) {
            let wr = master.try_clone().map_err(|e| e.to_string())?;
            std::thread::spawn(move || {
                use std::io::Write;
                let mut f = std::fs::File::from(wr);
                while let Some(b) = rx.blocking_recv() {
                    if f.write_all(&b).is_err() {
                        return;
                    }
                }
            });
        }
        // runc has started the process and returns; the process is ours
        // now (child subreaper) and its exit code comes from waiting for it.
        let status = child.wait().await.map_err(|e| format!("waiting for runc exec: {e}"))?;
        if !status.success() {
            return Err(format!("OCI runtime exec failed: {}: unknown", self.runc_error().unwrap_or_else(|| status.to_string())));
        }
        self.note_pid();
        let pid = self.exec.state.lock().unwrap().pid;
        if pid <= 0 {
            return Err("OCI runtime exec failed: no pid from runc".into());
        }
        let watch = shoal_worker::executor::supervise::ExitWatch::spawn(pid)?;
        let code = tokio::task::spawn_blocking(move || watch.wait()).await.map_err(|e| e.to_string())?;
        let _ = tokio::task::spawn_blocking(move || pump.join()).await;
        Ok(code)
    }
}

/// A copy of a prepared `runc exec` command (program, arguments, env).
fn clone_command(c: &std::process::Command) -> std::process::Command {
    let mut n = std::process::Command::new(c.get_program());
    n.args(c.get_args());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => n.env(k, v),
            None => n.env_remove(k),
        };
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_config_reads_the_clis_body() {
        let call = Call {
            method: hyper::Method::POST,
            segs: vec![],
            query: HashMap::new(),
            body: Bytes::from_static(
                br#"{"User":"","Privileged":false,"Tty":false,"ConsoleSize":[24,80],"AttachStdin":false,"AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":null,"WorkingDir":"","Cmd":["cat","/etc/hostname"]}"#,
            ),
            registry_auth: None,
            api: Default::default(),
        };
        let c: ExecConfig = call.json().unwrap();
        assert_eq!(c.cmd, ["cat", "/etc/hostname"]);
        assert!(c.attach_stdout && c.attach_stderr && !c.attach_stdin && !c.tty);
        assert!(c.env.is_empty());
        assert_eq!(c.console_size, Some(vec![24, 80]));
    }

    #[test]
    fn start_failures_get_dockers_codes() {
        let nf = r#"exec failed: unable to start container process: exec: "nope": executable file not found in $PATH"#;
        assert_eq!(start_failure(3, Some(nf)), None, "only runc's own failure (255) counts");
        assert_eq!(start_failure(255, None), None, "a process that exits 255 itself");
        assert_eq!(start_failure(255, Some(nf)), Some((127, format!("OCI runtime exec failed: {nf}: unknown"))));
        assert_eq!(start_failure(255, Some("exec failed: permission denied")).unwrap().0, 126);
    }

    #[test]
    fn ids_are_64_hex() {
        let id = new_exec_id();
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(id, new_exec_id());
    }

    #[test]
    fn running_instances_are_listed_per_container() {
        let execs = Execs::default();
        let mk = |c: &str| {
            execs.insert(ExecInstance {
                id: new_exec_id(),
                container_id: c.into(),
                config: ExecConfig::default(),
                state: Mutex::default(),
                began: Default::default(),
            })
        };
        let (a, b, _other) = (mk("c1"), mk("c1"), mk("c2"));
        assert!(execs.running_in("c1").is_empty(), "created, not started");
        a.state.lock().unwrap().running = true;
        b.state.lock().unwrap().running = true;
        finish(&b, 0, std::path::Path::new("/nonexistent/pid"));
        assert_eq!(execs.running_in("c1"), vec![a.id.clone()]);
        assert_eq!(b.state.lock().unwrap().exit_code, Some(0));
    }

    #[test]
    fn unknown_instances_are_docker_404s() {
        let e = Execs::default().get("abc").err().unwrap();
        assert_eq!((e.status, e.message.as_str()), (404, "No such exec instance: abc"));
    }
}
