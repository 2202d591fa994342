//! The node's task containers as the Engine API shows them (`docker ps`,
//! `inspect`, `logs`, `exec`, `top` on a node): a record per container,
//! written by the task manager when it starts one and when it ends, and
//! read by the API through [`Containers`] only.
//!
//! A container's ID is its task's ID (also runc's ID); its name is
//! Docker's task container name `<service>.<slot>.<task>` (global tasks:
//! `<service>.<node>.<task>`). An ended container stays listed (`docker ps
//! -a`) as long as its log file does, i.e. while its task is in the store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::executor::runc::Runc;

/// Docker's task name: `<service>.<slot>`, or `<service>.<node>` for a
/// global task (no slot).
pub fn task_name(service: &str, slot: u64, node_id: &str) -> String {
    if slot == 0 {
        format!("{service}.{node_id}")
    } else {
        format!("{service}.{slot}")
    }
}

/// Docker's container name for a task: the task name and the task ID.
pub fn container_name(service: &str, slot: u64, node_id: &str, task_id: &str) -> String {
    format!("{}.{task_id}", task_name(service, slot, node_id))
}

/// Ended containers kept at most (the oldest go first).
const MAX_ENDED: usize = 1000;

/// What the API can know about one container (saved with a task's
/// container, for a daemon started again: `TaskManager::restore`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ContainerRecord {
    /// The container ID (= task ID, runc's ID).
    pub id: String,
    /// Docker's name, without the leading `/`.
    pub name: String,
    pub task_id: String,
    pub service_id: String,
    pub service_name: String,
    pub node_id: String,
    pub slot: u64,
    /// The image as the service names it, and Docker's image ID.
    pub image: String,
    pub image_id: String,
    /// The process as started: `path` then `args`.
    pub path: String,
    pub args: Vec<String>,
    /// The service's `Command`/`Args`-free view: the image's entrypoint
    /// and the command actually used (Docker's `Config.Entrypoint`/`Cmd`).
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    /// The service's container labels and Docker's `com.docker.swarm.*`.
    pub labels: BTreeMap<String, String>,
    pub hostname: String,
    pub working_dir: String,
    pub user: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub read_only: bool,
    pub stop_signal: String,
    pub init: bool,
    pub mounts: Vec<shoal_api::task::Mount>,
    /// The leg on the node's gateway bridge, if any: the address (CIDR)
    /// and the gateway.
    pub bridge: Option<(String, String)>,
    /// The task's network namespace (Docker's `SandboxKey`).
    pub sandbox_key: String,
    /// The task's overlay networks, with its address on each.
    pub networks: Vec<AttachedNetwork>,
    /// Host-mode published ports.
    pub ports: Vec<shoal_api::service::PortConfig>,
    /// RFC 3339 times.
    pub created: String,
    pub started_at: String,
    pub finished_at: String,
    /// The init process on the host (0 once ended).
    pub pid: i32,
    /// `None` while running.
    pub exit_code: Option<i32>,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub log_path: PathBuf,
    /// A standalone container run with `--rm` (`HostConfig.AutoRemove`).
    pub auto_remove: bool,
}

impl ContainerRecord {
    /// Started and not ended.
    pub fn running(&self) -> bool {
        self.exit_code.is_none() && !self.started_at.is_empty()
    }

    /// Created and never started (standalone containers only).
    pub fn created_only(&self) -> bool {
        self.exit_code.is_none() && self.started_at.is_empty()
    }

    /// Whether a task of a service runs in it (else it is standalone).
    pub fn is_task(&self) -> bool {
        !self.task_id.is_empty()
    }

    /// Docker's state word (`State.Status`, the list's `State`).
    pub fn state(&self) -> &'static str {
        if self.running() {
            "running"
        } else if self.created_only() {
            "created"
        } else {
            "exited"
        }
    }

    /// What a container's record takes from its executor input: the
    /// process (`Path`/`Args` as started, Docker's `Entrypoint`/`Cmd`
    /// view), environment, image, hostname, user, directory, terminal and
    /// mounts. The caller fills in the rest.
    pub fn from_input(input: &crate::executor::ContainerInput, image_id: String) -> ContainerRecord {
        let mut args = crate::executor::spec::process_args(input).unwrap_or_default();
        let path = if args.is_empty() { String::new() } else { args.remove(0) };
        let (entrypoint, cmd) = if input.spec.command.is_empty() {
            let cmd = if input.spec.args.is_empty() { input.image_cmd.clone() } else { input.spec.args.clone() };
            (input.image_entrypoint.clone(), cmd)
        } else {
            (input.spec.command.clone(), input.spec.args.clone())
        };
        ContainerRecord {
            id: input.id.clone(),
            image: input.spec.image.clone(),
            image_id,
            path,
            args,
            entrypoint,
            cmd,
            env: crate::executor::spec::process_env(input),
            labels: input.spec.labels.clone(),
            hostname: input.hostname.clone(),
            working_dir: if input.spec.dir.is_empty() { input.image_working_dir.clone() } else { input.spec.dir.clone() },
            user: if input.spec.user.is_empty() { input.image_user.clone() } else { input.spec.user.clone() },
            tty: input.spec.tty,
            open_stdin: input.spec.open_stdin,
            read_only: input.spec.read_only,
            stop_signal: input.spec.stop_signal.clone(),
            init: input.spec.init == Some(true),
            mounts: input.spec.mounts.clone(),
            ..Default::default()
        }
    }

    /// Docker's `com.docker.swarm.*` labels for a task container.
    pub fn swarm_labels(service_id: &str, service_name: &str, task_id: &str, task_name: &str, node_id: &str) -> BTreeMap<String, String> {
        [
            ("com.docker.swarm.node.id", node_id),
            ("com.docker.swarm.service.id", service_id),
            ("com.docker.swarm.service.name", service_name),
            ("com.docker.swarm.task", ""),
            ("com.docker.swarm.task.id", task_id),
            ("com.docker.swarm.task.name", task_name),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

/// An overlay network a container is on.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AttachedNetwork {
    pub id: String,
    pub name: String,
    /// CIDR, e.g. `10.0.1.5/24`.
    pub address: String,
}

/// Why a lookup failed, in Docker's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LookupError {
    NotFound(String),
    Ambiguous(String),
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookupError::NotFound(k) => write!(f, "No such container: {k}"),
            LookupError::Ambiguous(k) => write!(f, "Multiple IDs found with provided prefix: {k}"),
        }
    }
}

/// A process to run in a container with `runc exec` (`docker exec`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecProcess {
    pub cmd: Vec<String>,
    /// Added to the container's environment.
    pub env: Vec<String>,
    /// `user[:group]`, names or numbers; empty: the container's user.
    pub user: String,
    /// Empty: the container's working directory.
    pub working_dir: String,
    pub privileged: bool,
}

/// The node's containers, running and ended.
#[derive(Default)]
pub struct Containers {
    records: Mutex<BTreeMap<String, ContainerRecord>>,
    runc: Option<Runc>,
    /// Where `create`, `start`, `die` and `destroy` events go.
    events: std::sync::OnceLock<std::sync::Arc<dyn shoal_api::event::EventSink>>,
}

impl Containers {
    pub fn new(runc: Runc) -> Containers {
        Containers { records: Mutex::default(), runc: Some(runc), events: Default::default() }
    }

    /// Sends the containers' events to `sink` (once; later calls are ignored).
    pub fn set_events(&self, sink: std::sync::Arc<dyn shoal_api::event::EventSink>) {
        let _ = self.events.set(sink);
    }

    /// moby's `LogContainerEventWithAttributes`: the container's labels,
    /// `image` and `name`, with `extra`.
    fn log_event(&self, action: &str, r: &ContainerRecord, extra: &[(&str, String)]) {
        let Some(sink) = self.events.get() else { return };
        let mut attrs = r.labels.clone();
        attrs.insert("image".into(), r.image.clone());
        attrs.insert("name".into(), r.name.clone());
        attrs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        sink.publish(shoal_api::event::Message::local("container", action, &r.id, attrs));
    }

    /// A container started (Docker's `create`, then `start`).
    pub fn started(&self, rec: ContainerRecord) {
        self.log_event("create", &rec, &[]);
        self.log_event("start", &rec, &[]);
        let mut m = self.records.lock().unwrap();
        m.insert(rec.id.clone(), rec);
        let ended: Vec<(String, String)> =
            m.values().filter(|r| r.is_task() && !r.running()).map(|r| (r.finished_at.clone(), r.id.clone())).collect();
        if ended.len() > MAX_ENDED {
            let mut ended = ended;
            ended.sort();
            let excess = ended.len() - MAX_ENDED;
            for (_, id) in ended.into_iter().take(excess) {
                if let Some(r) = m.remove(&id) {
                    self.log_event("destroy", &r, &[]);
                }
            }
        }
    }

    /// A standalone container was created (Docker's `create`); it is
    /// listed as `created` until [`Containers::restarted`].
    /// A container a previous run of the daemon knew, back in the list
    /// (no event: nothing happened to it).
    pub fn put_back(&self, rec: ContainerRecord) {
        self.records.lock().unwrap().insert(rec.id.clone(), rec);
    }

    pub fn created(&self, rec: ContainerRecord) {
        self.log_event("create", &rec, &[]);
        self.records.lock().unwrap().insert(rec.id.clone(), rec);
    }

    /// A standalone container (re)started: `update` fills in the run's
    /// pid and network, the times and exit code are reset (Docker's `start`).
    pub fn restarted(&self, id: &str, update: impl FnOnce(&mut ContainerRecord)) {
        let rec = {
            let mut m = self.records.lock().unwrap();
            let Some(r) = m.get_mut(id) else { return };
            update(r);
            r.started_at = shoal_api::time::now_rfc3339();
            r.finished_at = String::new();
            r.exit_code = None;
            r.clone()
        };
        self.log_event("start", &rec, &[]);
    }

    /// A container ended with `code` (Docker's `die`, with `exitCode` and
    /// `execDuration` in whole seconds).
    pub fn ended(&self, id: &str, code: i32) {
        let ended = {
            let mut m = self.records.lock().unwrap();
            let Some(r) = m.get_mut(id) else { return };
            r.exit_code = Some(code);
            r.pid = 0;
            r.finished_at = shoal_api::time::now_rfc3339();
            r.clone()
        };
        let secs = |t: &str| shoal_api::time::parse_rfc3339(t).and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        let duration = match (secs(&ended.started_at), secs(&ended.finished_at)) {
            (Some(a), Some(b)) => b.saturating_sub(a).as_secs(),
            _ => 0,
        };
        self.log_event("die", &ended, &[("exitCode", code.to_string()), ("execDuration", duration.to_string())]);
    }

    /// An event about container `id` that the API caused (`kill` with its
    /// `signal`, `stop`), with the container's attributes and `extra`.
    pub fn note(&self, id: &str, action: &str, extra: &[(&str, String)]) {
        let rec = self.records.lock().unwrap().get(id).cloned();
        if let Some(r) = rec {
            self.log_event(action, &r, extra);
        }
    }

    /// Drops a container from the lists at once (`docker rm`): Docker's
    /// `destroy`. Its task, if it is still ending, finds no record to update.
    pub fn forget(&self, id: &str) {
        let gone = self.records.lock().unwrap().remove(id);
        if let Some(r) = gone {
            self.log_event("destroy", &r, &[]);
        }
    }

    /// Drops ended containers whose log file is gone (their task left the
    /// store): Docker's `destroy`. `list` does it too; the daemon calls it
    /// now and then so the event comes without a reader.
    pub fn sweep(&self) {
        let gone: Vec<ContainerRecord> = {
            let mut m = self.records.lock().unwrap();
            let ids: Vec<String> = m
                .values()
                .filter(|r| !(r.running() || r.log_path.as_os_str().is_empty() || r.log_path.exists()))
                .map(|r| r.id.clone())
                .collect();
            ids.iter().filter_map(|id| m.remove(id)).collect()
        };
        for r in &gone {
            self.log_event("destroy", r, &[]);
        }
    }

    /// Every container, newest first (Docker's order). Ended containers
    /// whose log file is gone (their task left the store) are dropped.
    pub fn list(&self) -> Vec<ContainerRecord> {
        self.sweep();
        let m = self.records.lock().unwrap();
        let mut v: Vec<ContainerRecord> = m.values().cloned().collect();
        v.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        v
    }

    /// Docker's lookup: full ID, then name (with or without `/`), then a
    /// unique ID prefix.
    pub fn get(&self, key: &str) -> Result<ContainerRecord, LookupError> {
        lookup(&self.list(), key).cloned()
    }

    /// The host pids of the container's processes (`runc ps`).
    pub fn pids(&self, id: &str) -> Result<Vec<i32>, String> {
        let runc = self.runc.as_ref().ok_or("no OCI runtime")?;
        let out = Command::new(&runc.bin)
            .arg("--root")
            .arg(&runc.root)
            .args(["ps", "--format", "json", id])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("running {}: {e}", runc.bin.display()))?;
        if !out.status.success() {
            return Err(format!("runc ps failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        let pids: Option<Vec<i32>> = serde_json::from_slice(&out.stdout).map_err(|e| format!("runc ps: {e}"))?;
        Ok(pids.unwrap_or_default())
    }

    /// `runc exec` of `p` in container `id` (not started; the caller sets
    /// stdio and spawns it). `pid_file` receives the process's host pid.
    /// Without a TTY runc stays until the process ends and exits with its
    /// code. With one (`console_socket`: where runc sends the terminal's
    /// master end) runc must detach: it returns once the process runs,
    /// which shoald (the child subreaper) then inherits and waits for.
    pub fn exec_command(
        &self,
        rec: &ContainerRecord,
        p: &ExecProcess,
        pid_file: &Path,
        console_socket: Option<&Path>,
    ) -> Result<Command, String> {
        let runc = self.runc.as_ref().ok_or("no OCI runtime")?;
        if !rec.running() {
            return Err(format!("container {} is not running", rec.id));
        }
        if p.cmd.is_empty() {
            return Err("No exec command specified".into());
        }
        let mut c = Command::new(&runc.bin);
        // runc's own messages go to a file beside the pid file, so the
        // process's stderr carries only the process's output.
        c.arg("--root").arg(&runc.root).arg("--log").arg(runc_log_path(pid_file)).args(["--log-format", "json"]);
        c.arg("exec").arg("--pid-file").arg(pid_file);
        if let Some(sock) = console_socket {
            c.arg("--detach").arg("--tty").arg("--console-socket").arg(sock);
        }
        for e in &p.env {
            c.arg("--env").arg(e);
        }
        if !p.user.is_empty() {
            let u = crate::executor::spec::resolve_user(&rec.rootfs, &p.user)?;
            c.arg("--user").arg(format!("{}:{}", u.uid, u.gid));
            for g in u.additional_gids {
                c.arg("--additional-gids").arg(g.to_string());
            }
        }
        if !p.working_dir.is_empty() {
            c.arg("--cwd").arg(&p.working_dir);
        }
        if p.privileged {
            for cap in ALL_CAPS {
                c.arg("--cap").arg(cap);
            }
        }
        c.arg(&rec.id).args(&p.cmd);
        Ok(c)
    }
}

/// Where `exec_command` has runc write its own messages (JSON lines).
pub fn runc_log_path(pid_file: &Path) -> PathBuf {
    pid_file.with_extension("log")
}

/// The last error runc logged (JSON lines, `{"level":"error","msg":...}`).
pub fn runc_error(log: &[u8]) -> Option<String> {
    log.split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "error" || v["level"] == "fatal")
        .filter_map(|v| v["msg"].as_str().map(str::to_string))
        .next_back()
}

/// Capabilities added by `docker exec --privileged`.
const ALL_CAPS: &[&str] = &[
    "CAP_AUDIT_CONTROL",
    "CAP_AUDIT_READ",
    "CAP_AUDIT_WRITE",
    "CAP_BLOCK_SUSPEND",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_KILL",
    "CAP_LEASE",
    "CAP_LINUX_IMMUTABLE",
    "CAP_MAC_ADMIN",
    "CAP_MAC_OVERRIDE",
    "CAP_MKNOD",
    "CAP_NET_ADMIN",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_RAW",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_CHROOT",
    "CAP_SYS_MODULE",
    "CAP_SYS_NICE",
    "CAP_SYS_PACCT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
];

/// Docker's container lookup over `list`: full ID, name, unique ID prefix.
pub fn lookup<'a>(list: &'a [ContainerRecord], key: &str) -> Result<&'a ContainerRecord, LookupError> {
    let not_found = || LookupError::NotFound(key.to_string());
    if key.is_empty() {
        return Err(not_found());
    }
    if let Some(r) = list.iter().find(|r| r.id == key) {
        return Ok(r);
    }
    let name = key.strip_prefix('/').unwrap_or(key);
    if let Some(r) = list.iter().find(|r| r.name == name) {
        return Ok(r);
    }
    let mut hits = list.iter().filter(|r| r.id.starts_with(key));
    match (hits.next(), hits.next()) {
        (Some(r), None) => Ok(r),
        (Some(_), Some(_)) => Err(LookupError::Ambiguous(key.to_string())),
        _ => Err(not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, name: &str) -> ContainerRecord {
        let created = format!("2024-01-01T00:00:0{}Z", id.len() % 10);
        ContainerRecord { id: id.into(), name: name.into(), started_at: created.clone(), created, task_id: id.into(), ..Default::default() }
    }

    #[test]
    fn a_standalone_container_is_created_then_started() {
        let c = Containers::default();
        c.created(ContainerRecord { started_at: String::new(), task_id: String::new(), ..rec("s1", "calm_koi") });
        let r = c.get("calm_koi").unwrap();
        assert!(!r.running() && r.created_only() && !r.is_task());
        assert_eq!(r.state(), "created");
        c.restarted("s1", |r| r.pid = 42);
        let r = c.get("s1").unwrap();
        assert_eq!((r.state(), r.pid, r.exit_code), ("running", 42, None));
        c.ended("s1", 7);
        assert_eq!(c.get("s1").unwrap().state(), "exited");
        c.restarted("s1", |r| r.pid = 43);
        let r = c.get("s1").unwrap();
        assert_eq!((r.state(), r.exit_code), ("running", None), "started again");
    }

    #[test]
    fn names_follow_swarm() {
        assert_eq!(task_name("web", 3, "node1"), "web.3");
        assert_eq!(task_name("agent", 0, "n0d3"), "agent.n0d3");
        assert_eq!(container_name("web", 3, "node1", "abc123"), "web.3.abc123");
        assert_eq!(container_name("agent", 0, "n0d3", "abc123"), "agent.n0d3.abc123");
        let l = ContainerRecord::swarm_labels("sid", "web", "tid", "web.3.tid", "nid");
        assert_eq!(l["com.docker.swarm.task.name"], "web.3.tid");
        assert_eq!(l["com.docker.swarm.service.name"], "web");
        assert_eq!(l["com.docker.swarm.task"], "");
    }

    #[test]
    fn lookup_by_id_name_and_unique_prefix() {
        let list = vec![rec("abc111", "web.1.abc111"), rec("abc222", "web.2.abc222"), rec("xyz", "db.1.xyz")];
        assert_eq!(lookup(&list, "abc111").unwrap().id, "abc111");
        assert_eq!(lookup(&list, "web.2.abc222").unwrap().id, "abc222");
        assert_eq!(lookup(&list, "/db.1.xyz").unwrap().id, "xyz");
        assert_eq!(lookup(&list, "abc2").unwrap().id, "abc222");
        assert_eq!(lookup(&list, "x").unwrap().id, "xyz");
        assert_eq!(lookup(&list, "abc").unwrap_err().to_string(), "Multiple IDs found with provided prefix: abc");
        assert_eq!(lookup(&list, "nope").unwrap_err().to_string(), "No such container: nope");
        assert_eq!(lookup(&list, "").unwrap_err(), LookupError::NotFound(String::new()));
        // A name is not a prefix.
        assert!(lookup(&list, "web.1").is_err());
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<shoal_api::event::Message>>);
    impl shoal_api::event::EventSink for Recorder {
        fn publish(&self, m: shoal_api::event::Message) {
            self.0.lock().unwrap().push(m);
        }
    }

    #[test]
    fn a_task_container_s_events_as_docker_sends_them() {
        let dir = std::env::temp_dir().join(format!("shoal-container-events-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("t1.log");
        std::fs::write(&log, b"").unwrap();
        let events = std::sync::Arc::new(Recorder::default());
        let c = Containers::default();
        c.set_events(events.clone());
        let labels = ContainerRecord::swarm_labels("sid", "web", "t1", "web.1.t1", "nid");
        let now = shoal_api::time::now_rfc3339();
        c.started(ContainerRecord { image: "busybox:1".into(), labels, log_path: log.clone(), started_at: now, ..rec("t1", "web.1.t1") });
        c.ended("t1", 137);
        std::fs::remove_file(&log).unwrap();
        c.sweep();
        c.sweep();
        let got = events.0.lock().unwrap().clone();
        let actions: Vec<&str> = got.iter().map(|m| m.action.as_str()).collect();
        assert_eq!(actions, ["create", "start", "die", "destroy"], "destroy once, when the container goes");
        for m in &got {
            assert_eq!((m.kind.as_str(), m.scope.as_str(), m.actor.id.as_str()), ("container", "local", "t1"));
            assert_eq!((m.status.as_str(), m.id.as_str(), m.from.as_str()), (m.action.as_str(), "t1", "busybox:1"));
            let a = &m.actor.attributes;
            assert_eq!((a["name"].as_str(), a["image"].as_str()), ("web.1.t1", "busybox:1"));
            assert_eq!(a["com.docker.swarm.service.name"], "web");
            assert_eq!(a["com.docker.swarm.task.id"], "t1");
        }
        assert_eq!(got[2].actor.attributes["exitCode"], "137");
        assert!(got[2].actor.attributes.contains_key("execDuration"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ended_containers_stay_while_their_log_does() {
        let dir = std::env::temp_dir().join(format!("shoal-containers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("a.log");
        std::fs::write(&log, b"").unwrap();
        let c = Containers::default();
        c.started(ContainerRecord { log_path: log.clone(), ..rec("a", "s.1.a") });
        c.started(ContainerRecord { log_path: dir.join("b.log"), ..rec("bb", "s.2.bb") });
        assert_eq!(c.list().len(), 2, "running containers are listed without a log");
        c.ended("a", 3);
        c.ended("bb", 0);
        let l = c.list();
        assert_eq!(l.len(), 1);
        assert_eq!((l[0].id.as_str(), l[0].exit_code, l[0].state()), ("a", Some(3), "exited"));
        std::fs::remove_file(&log).unwrap();
        assert!(c.list().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn exec_runs_runc_exec_with_the_options() {
        let c = Containers::new(Runc { bin: "runc".into(), root: "/run/x".into() });
        let r = rec("abc", "s.1.abc");
        let p = ExecProcess {
            cmd: vec!["sh".into(), "-c".into(), "exit 3".into()],
            env: vec!["A=1".into()],
            working_dir: "/tmp".into(),
            ..Default::default()
        };
        let cmd = c.exec_command(&r, &p, Path::new("/tmp/pid"), None).unwrap();
        let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(
            args,
            [
                "--root",
                "/run/x",
                "--log",
                "/tmp/pid.log",
                "--log-format",
                "json",
                "exec",
                "--pid-file",
                "/tmp/pid",
                "--env",
                "A=1",
                "--cwd",
                "/tmp",
                "abc",
                "sh",
                "-c",
                "exit 3"
            ]
        );
        let ended = ContainerRecord { exit_code: Some(0), ..r.clone() };
        assert!(c.exec_command(&ended, &p, Path::new("/tmp/pid"), None).is_err());
        let tty = c.exec_command(&r, &p, Path::new("/tmp/pid"), Some(Path::new("/tmp/sock"))).unwrap();
        let args: Vec<String> = tty.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(args[9..14], ["--detach", "--tty", "--console-socket", "/tmp/sock", "--env"]);
    }

    #[test]
    fn runc_errors_are_read_from_its_log() {
        let log = br#"{"level":"warning","msg":"x","time":"t"}
{"level":"error","msg":"exec failed: unable to start container process: exec: \"nope\": executable file not found in $PATH","time":"t"}
"#;
        assert_eq!(
            runc_error(log).unwrap(),
            r#"exec failed: unable to start container process: exec: "nope": executable file not found in $PATH"#
        );
        assert_eq!(runc_error(b"garbage\n"), None);
    }
}
