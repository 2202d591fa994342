//! The container executor: runs one container per task through an OCI
//! runtime binary (runc), detached, with no shim process per container.
//!
//! - `spec`: the OCI runtime spec (`config.json`) with Docker's defaults.
//! - `runc`: the runtime binary's CLI (`run -d`, `kill`, `delete`, `state`).
//! - `supervise`: the daemon is the child subreaper; a small thread per
//!   container reaps its init process and turns the status into Docker's
//!   exit code.
//! - `mounts`: the task's bind, volume and tmpfs mounts (volumes from
//!   `crate::volumes`); `etc_files`: `/etc/hostname`, `/etc/hosts`,
//!   `/etc/resolv.conf`; `process_opts`: ulimits, sysctls, `--init`.
//! - `console`: a container's terminal (`Tty`), sent by runc over a unix
//!   socket; its output is captured like the pipes', its input written to it.
//!
//! On disk, under `ExecutorConfig::state_dir`:
//! `bundles/<id>/{config.json,pid,runc.log}` and `logs/<id>.log` (the
//! container's stdout and stderr, one json-file record per line, captured
//! by shoald through pipes: see `crate::logs::capture`). The log file
//! outlives the container; [`Executor::remove_log`] deletes it.
//!
//! The daemon must call [`supervise::become_subreaper`] once at start.

pub mod apparmor;
pub mod console;
pub mod etc_files;
pub mod mounts;
pub mod orphans;
pub mod process_opts;
pub mod runc;
pub mod seccomp;
pub mod shim;
pub mod spec;
#[cfg(test)]
mod spec_golden;
pub mod supervise;

#[cfg(test)]
mod tests;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shoal_api::task::{ContainerSpec, Limit};

pub use supervise::become_subreaper;

/// Where a node's executor keeps its things. Everything is per node so
/// several shoald on one host never collide.
#[derive(Clone, Debug)]
pub struct ExecutorConfig {
    /// Bundles and logs, e.g. `<data-root>/containers`.
    pub state_dir: PathBuf,
    /// The OCI runtime binary; `runc` by default (found on PATH).
    pub runc_bin: PathBuf,
    /// runc's `--root`, e.g. `/run/shoal/<node>/runc`.
    pub runc_root: PathBuf,
    /// Parent cgroup for the node's containers, e.g. `shoal-<node id>`.
    pub cgroup_parent: String,
    /// Local volumes, e.g. `<data-root>/volumes`.
    pub volumes_dir: PathBuf,
    /// How each container's shim runs (`shim`). `None` keeps the
    /// container's output and exit in this process (it then dies with
    /// it), as the crate's own tests run.
    pub shim: Option<shim::ShimCommand>,
}

impl ExecutorConfig {
    /// Defaults for a node: state under `data_root/containers`, runc from
    /// PATH, runtime root `/run/shoal/<node>/runc`, cgroup `shoal-<node>`.
    pub fn for_node(data_root: &Path, node: &str) -> ExecutorConfig {
        ExecutorConfig {
            state_dir: data_root.join("containers"),
            runc_bin: PathBuf::from("runc"),
            runc_root: PathBuf::from(format!("/run/shoal/{node}/runc")),
            cgroup_parent: format!("shoal-{node}"),
            volumes_dir: data_root.join("volumes"),
            shim: None,
        }
    }
}

/// Everything needed to start one container: the image config's bits, the
/// task's container spec and limits, the prepared rootfs and the hostname.
#[derive(Clone, Debug, Default)]
pub struct ContainerInput {
    /// The container ID (also runc's ID): `[A-Za-z0-9_.-]`, unique per node.
    pub id: String,
    pub image_env: Vec<String>,
    pub image_cmd: Vec<String>,
    pub image_entrypoint: Vec<String>,
    pub image_working_dir: String,
    pub image_user: String,
    pub spec: ContainerSpec,
    /// The task's `Resources.Limits`.
    pub limits: Option<Limit>,
    /// The container's root filesystem (e.g. `Rootfs::path` from the image service).
    pub rootfs: PathBuf,
    pub hostname: String,
    /// Bind mounts the worker adds besides the spec's (secrets and configs
    /// from the task's tmpfs), after every other mount.
    pub extra_mounts: Vec<ExtraMount>,
    /// A network namespace the worker made (`crate::network`) for runc to
    /// join; `None` gives the container a new one with loopback only.
    pub netns_path: Option<PathBuf>,
    /// The task's address there: `/etc/hosts` names the hostname on it.
    pub address: Option<std::net::Ipv4Addr>,
    /// The task is on an overlay network: its resolver is the node's
    /// embedded DNS at 127.0.0.11 (as in Docker).
    pub embedded_dns: bool,
}

/// A host path bind-mounted into the container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtraMount {
    pub source: PathBuf,
    pub destination: String,
    pub read_only: bool,
    /// Secrets are noexec (as Docker mounts them); configs may be scripts.
    pub noexec: bool,
}

impl ExtraMount {
    /// The OCI `mounts` entry.
    pub fn to_oci(&self) -> oci_spec::runtime::Mount {
        let mut options = vec!["rbind", "nosuid", "nodev"];
        if self.noexec {
            options.push("noexec");
        }
        if self.read_only {
            options.push("ro");
        }
        spec::mount(&self.destination, "bind", &self.source, options)
    }
}

impl ContainerInput {
    /// Fill the image bits from an image config (`Image::config.config`).
    pub fn with_image_config(mut self, cfg: Option<&crate::image::manifest::ContainerConfig>) -> Self {
        if let Some(c) = cfg {
            self.image_env = c.env.clone();
            self.image_cmd = c.cmd.clone().unwrap_or_default();
            self.image_entrypoint = c.entrypoint.clone().unwrap_or_default();
            self.image_working_dir = c.working_dir.clone().unwrap_or_default();
            self.image_user = c.user.clone().unwrap_or_default();
            // The image's VOLUMEs: an anonymous volume each (filled from the
            // image, removed with the container), unless a task mount is
            // there already, as Docker does.
            for path in c.volumes.keys() {
                let covered = self.spec.mounts.iter().any(|m| m.target.trim_end_matches('/') == path.trim_end_matches('/'));
                if !covered && path.starts_with('/') {
                    self.spec.mounts.push(shoal_api::task::Mount { r#type: "volume".into(), target: path.clone(), ..Default::default() });
                }
            }
        }
        self
    }
}

/// A started container.
#[derive(Clone, Debug)]
pub struct Container {
    pub id: String,
    /// The container's init process, as seen from the host.
    pub pid: i32,
    /// stdout and stderr as json-file records.
    pub log_path: PathBuf,
    pub bundle: PathBuf,
    exit: supervise::ExitWatch,
    /// Set when all output has been written to the log file.
    pub logs: crate::logs::capture::CaptureDone,
    /// Where the container's input goes (`OpenStdin` or a terminal);
    /// taking the file out closes it (`StdinOnce`).
    pub stdin: Option<ContainerInputPipe>,
    /// The terminal's master end, for resizing (`Tty`).
    pub console: Option<Arc<OwnedFd>>,
    /// Started through a shim (`shim`): it keeps running when the daemon
    /// stops.
    pub outlives_daemon: bool,
}

/// The write side of a container's stdin (a pipe or its terminal).
pub type ContainerInputPipe = Arc<Mutex<Option<std::fs::File>>>;

/// What a start gives back: runc's answer (the pid), the log capture,
/// the input and the terminal.
type Started = (Result<i32, String>, Option<crate::logs::capture::CaptureDone>, Option<ContainerInputPipe>, Option<Arc<OwnedFd>>);

impl Container {
    /// The exit code if the container has ended (Docker's: 128+n for signal n).
    pub fn exit_code(&self) -> Option<i32> {
        self.exit.try_get()
    }
}

pub struct Executor {
    cfg: ExecutorConfig,
    runc: runc::Runc,
    spec_opts: spec::SpecOptions,
    volumes: crate::volumes::VolumeStore,
}

/// Replaces `path` with `data` through a temporary file and a rename, so a
/// daemon started again finds the old content or the new, never a part.
/// No fsync: these records (the shim's, a task's, a standalone
/// container's) matter across a daemon restart, not a power loss, which
/// their containers do not outlive either.
pub(crate) fn replace_file(path: &Path, data: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("renaming {}: {e}", tmp.display()))
}

/// In the bundle: the anonymous volumes to remove with the container.
const ANON_VOLUMES_FILE: &str = "anonymous-volumes.json";

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        && !id.starts_with('.')
}

/// Loads `shoal-default` once per process where the host has AppArmor.
/// A host with AppArmor whose profile does not load gets no profile set
/// (runc would refuse to start containers with an unknown one); the
/// failure is logged.
fn apparmor_loaded() -> bool {
    static LOADED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LOADED.get_or_init(|| {
        if !apparmor::host_has_apparmor() {
            return false;
        }
        match apparmor::load() {
            Ok(()) => true,
            Err(e) => {
                tracing::error!("AppArmor is enabled on this host but {e}; containers run without an AppArmor profile");
                false
            }
        }
    })
}

impl Executor {
    /// Removes this node's (empty) parent cgroup, in every v1 controller
    /// hierarchy and in the v2 tree; a parent still holding containers stays.
    pub fn remove_cgroup_parent(&self) {
        let parent = self.cfg.cgroup_parent.trim_matches('/').to_string();
        if parent.is_empty() {
            return;
        }
        let root = Path::new("/sys/fs/cgroup");
        let _ = std::fs::remove_dir(root.join(&parent));
        if let Ok(entries) = std::fs::read_dir(root) {
            for e in entries.flatten() {
                let _ = std::fs::remove_dir(e.path().join(&parent));
            }
        }
    }

    pub fn new(cfg: ExecutorConfig) -> Result<Executor, String> {
        for d in [cfg.state_dir.join("bundles"), cfg.state_dir.join("logs"), cfg.runc_root.clone()] {
            std::fs::create_dir_all(&d).map_err(|e| format!("creating {}: {e}", d.display()))?;
        }
        let swap_accounting = Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists();
        Ok(Executor {
            runc: runc::Runc { bin: cfg.runc_bin.clone(), root: cfg.runc_root.clone() },
            spec_opts: spec::SpecOptions {
                cgroup_parent: cfg.cgroup_parent.clone(),
                swap_accounting,
                nofile: spec::nofile_limit(),
                kernel: seccomp::kernel_version(),
                apparmor: apparmor_loaded(),
            },
            volumes: crate::volumes::VolumeStore::new(cfg.volumes_dir.clone()),
            cfg,
        })
    }

    /// Container `id`'s cgroup, as its OCI spec's `cgroupsPath` names it.
    pub fn cgroup_path(&self, id: &str) -> String {
        format!("/{}/{}", self.cfg.cgroup_parent.trim_matches('/'), id)
    }

    pub fn runc(&self) -> &runc::Runc {
        &self.runc
    }

    pub fn volumes(&self) -> &crate::volumes::VolumeStore {
        &self.volumes
    }

    /// The task's mounts, volumes, `/etc` files, ulimits, sysctls and init
    /// added to `spec`; the bundle records the anonymous volumes made. On
    /// error, those volumes are gone again.
    fn add_runtime_options(&self, input: &ContainerInput, bundle: &Path, spec: &mut oci_spec::runtime::Spec) -> Result<(), String> {
        let staging = mounts::staging_dir(bundle);
        mounts::release_staged(&staging)?;
        let prepared = mounts::prepare(input, &self.volumes, &staging);
        let result = prepared.as_ref().map_err(Clone::clone).and_then(|p| {
            let list = serde_json::to_vec(&p.anonymous_volumes).map_err(|e| e.to_string())?;
            std::fs::write(bundle.join(ANON_VOLUMES_FILE), list).map_err(|e| format!("writing {}: {e}", bundle.display()))?;
            let mut extra = etc_files::write(input, bundle)?;
            extra.extend(p.mounts.iter().cloned());
            mounts::apply(spec, extra)?;
            let init = if input.spec.init == Some(true) { process_opts::find_init() } else { None };
            process_opts::apply(spec, input, init)
        });
        if result.is_err() {
            if let Err(e) = mounts::release_staged(&staging) {
                tracing::warn!("{e}");
            }
            self.remove_anonymous_volumes(bundle);
            for v in prepared.map(|p| p.anonymous_volumes).unwrap_or_default() {
                let _ = self.volumes.remove(&v);
            }
        }
        result
    }

    fn remove_anonymous_volumes(&self, bundle: &Path) {
        let Ok(bytes) = std::fs::read(bundle.join(ANON_VOLUMES_FILE)) else { return };
        let names: Vec<String> = serde_json::from_slice(&bytes).unwrap_or_default();
        for n in names {
            if let Err(e) = self.volumes.remove(&n) {
                tracing::warn!("{e}");
            }
        }
        let _ = std::fs::remove_file(bundle.join(ANON_VOLUMES_FILE));
    }

    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.cfg.state_dir.join("bundles").join(id)
    }

    /// Bundles, logs and the standalone containers' records live here.
    pub fn state_dir(&self) -> &Path {
        &self.cfg.state_dir
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.cfg.state_dir.join("logs").join(format!("{id}.log"))
    }

    /// Write the bundle and start the container detached. The caller's
    /// process must be the child subreaper (see [`become_subreaper`]).
    pub fn start(&self, input: &ContainerInput) -> Result<Container, String> {
        if !valid_id(&input.id) {
            return Err(format!("invalid container id {:?}", input.id));
        }
        let mut spec = spec::oci_spec(input, &self.spec_opts)?;
        let bundle = self.bundle_dir(&input.id);
        std::fs::create_dir_all(&bundle).map_err(|e| format!("creating {}: {e}", bundle.display()))?;
        self.add_runtime_options(input, &bundle, &mut spec)?;
        let _ = std::fs::remove_file(bundle.join("pid"));
        let json = serde_json::to_vec_pretty(&spec).map_err(|e| e.to_string())?;
        std::fs::write(bundle.join("config.json"), json).map_err(|e| format!("writing {}: {e}", bundle.join("config.json").display()))?;
        let log_path = self.log_path(&input.id);
        if let (Some(shim), false, false) = (&self.cfg.shim, input.spec.tty, input.spec.open_stdin) {
            return self.start_with_shim(shim, input, bundle, log_path);
        }
        let (run, logs, stdin, console) = if input.spec.tty {
            self.run_with_terminal(input, &bundle, &log_path)
        } else {
            self.run_with_pipes(input, &bundle, &log_path)?
        };
        // The container has its own mounts now (or none): the staged volume
        // subpaths are not needed any more.
        if let Err(e) = mounts::release_staged(&mounts::staging_dir(&bundle)) {
            tracing::warn!(container = %input.id, "{e}");
        }
        let pid = match run {
            Ok(pid) => pid,
            Err(e) => {
                let _ = self.runc.delete(&input.id);
                return Err(e);
            }
        };
        let exit = supervise::ExitWatch::spawn(pid)?;
        let logs = logs.ok_or("the container's terminal never came from runc")?;
        Ok(Container { id: input.id.clone(), pid, log_path, bundle, exit, logs, stdin, console, outlives_daemon: false })
    }

    /// Through a shim (`shim`): the container outlives this daemon.
    fn start_with_shim(
        &self,
        shim: &shim::ShimCommand,
        input: &ContainerInput,
        bundle: PathBuf,
        log_path: PathBuf,
    ) -> Result<Container, String> {
        let started = shim::start(shim, &self.runc, &input.id, &bundle, &log_path);
        if let Err(e) = mounts::release_staged(&mounts::staging_dir(&bundle)) {
            tracing::warn!(container = %input.id, "{e}");
        }
        let record = match started {
            Ok(r) => r,
            Err(e) => {
                let _ = self.runc.delete(&input.id);
                return Err(e);
            }
        };
        let logs = crate::logs::capture::CaptureDone::default();
        let exit = supervise::ExitWatch::spawn_shim(record.shim_pid, bundle.join(shim::EXIT_FILE), logs.clone())?;
        Ok(Container {
            id: input.id.clone(),
            pid: record.pid,
            log_path,
            bundle,
            exit,
            logs,
            stdin: None,
            console: None,
            outlives_daemon: true,
        })
    }

    /// A container that a previous run of this daemon started through a
    /// shim, running or ended since (`None`: no shim record, or its shim
    /// is gone without saying how the container ended).
    pub fn adopt(&self, id: &str) -> Result<Option<Container>, String> {
        if !valid_id(id) {
            return Err(format!("invalid container id {id:?}"));
        }
        let bundle = self.bundle_dir(id);
        if !bundle.join(shim::RECORD_FILE).exists() {
            return Ok(None);
        }
        let record = shim::ShimRecord::load(&bundle)?;
        let exit_file = bundle.join(shim::EXIT_FILE);
        let pidfd = record.open_if_alive()?;
        if pidfd.is_none() && shim::read_exit(&exit_file).is_none() {
            return Ok(None);
        }
        let logs = crate::logs::capture::CaptureDone::default();
        let exit = supervise::ExitWatch::adopt_shim(pidfd, exit_file, logs.clone())?;
        Ok(Some(Container {
            id: id.to_string(),
            pid: record.pid,
            log_path: self.log_path(id),
            bundle,
            exit,
            logs,
            stdin: None,
            console: None,
            outlives_daemon: true,
        }))
    }

    /// Output through pipes into the log; stdin a pipe too with
    /// `OpenStdin`, else /dev/null.
    fn run_with_pipes(&self, input: &ContainerInput, bundle: &Path, log_path: &Path) -> Result<Started, String> {
        let (read_ends, write_ends) = crate::logs::capture::pipes().map_err(|e| format!("creating output pipes: {e}"))?;
        let logs = crate::logs::capture::spawn(&input.id, read_ends, log_path)
            .map_err(|e| format!("capturing output to {}: {e}", log_path.display()))?;
        let (stdin_read, stdin) = if input.spec.open_stdin {
            let (r, w) = std::io::pipe().map_err(|e| format!("creating the stdin pipe: {e}"))?;
            (Some(OwnedFd::from(r)), Some(Arc::new(Mutex::new(Some(std::fs::File::from(OwnedFd::from(w)))))))
        } else {
            (None, None)
        };
        // runc hands its stdio (the pipes' ends) to the container and
        // exits; ours close when they drop here.
        let io = runc::RunIo::Pipes { stdin: stdin_read, stdout: write_ends.stdout, stderr: write_ends.stderr };
        let run = self.runc.run_detached_with(&input.id, bundle, io);
        Ok((run, Some(logs), stdin, None))
    }

    /// `-t`: runc makes the terminal and sends its master end; the output
    /// is read from it into the log, the input written to it.
    fn run_with_terminal(&self, input: &ContainerInput, bundle: &Path, log_path: &Path) -> Started {
        let sock = match console::socket_path(&input.id) {
            Ok(s) => s,
            Err(e) => return (Err(e), None, None, None),
        };
        let listener = match std::os::unix::net::UnixListener::bind(&sock) {
            Ok(l) => l,
            Err(e) => return (Err(format!("console socket {}: {e}", sock.display())), None, None, None),
        };
        // runc connects and sends the master while it creates the
        // container; the connection waits in the backlog until accepted.
        let run = self.runc.run_detached_with(&input.id, bundle, runc::RunIo::Console(sock.clone()));
        if run.is_err() {
            let _ = std::fs::remove_file(&sock);
            return (run, None, None, None);
        }
        let master = console::receive_fd(&listener);
        let _ = std::fs::remove_file(&sock);
        let master = match master {
            Ok(m) => Arc::new(m),
            Err(e) => return (Err(e), None, None, None),
        };
        let started = (|| -> std::io::Result<_> {
            let reader = master.try_clone()?;
            let writer = std::fs::File::from(master.try_clone()?);
            let logs = crate::logs::capture::spawn(&input.id, crate::logs::capture::ReadEnds::terminal(reader), log_path)?;
            Ok((logs, writer))
        })();
        match started {
            Ok((logs, writer)) => (run, Some(logs), Some(Arc::new(Mutex::new(Some(writer)))), Some(master)),
            Err(e) => (Err(format!("reading the container's terminal: {e}")), None, None, None),
        }
    }

    /// Block until the container ends; its exit code.
    pub fn wait(&self, c: &Container) -> i32 {
        c.exit.wait()
    }

    /// Block up to `timeout`; `None` if still running.
    pub fn wait_timeout(&self, c: &Container, timeout: Duration) -> Option<i32> {
        c.exit.wait_timeout(timeout)
    }

    /// Docker's stop: `signal` (e.g. the spec's StopSignal, default
    /// SIGTERM), then SIGKILL once `grace` has passed. Returns the exit code.
    pub fn stop(&self, c: &Container, signal: &str, grace: Duration) -> Result<i32, String> {
        if let Some(code) = c.exit.try_get() {
            return Ok(code);
        }
        let signal = if signal.is_empty() { "SIGTERM" } else { signal };
        if let Err(e) = self.runc.kill(&c.id, signal) {
            if let Some(code) = c.exit.try_get() {
                return Ok(code);
            }
            tracing::warn!(container = %c.id, "stop signal: {e}");
        }
        if let Some(code) = c.exit.wait_timeout(grace) {
            return Ok(code);
        }
        if let Err(e) = self.runc.kill(&c.id, "SIGKILL") {
            if let Some(code) = c.exit.try_get() {
                return Ok(code);
            }
            // Last resort: the init pid directly (still our child, so the
            // pid cannot have been reused before we reap it).
            tracing::warn!(container = %c.id, "SIGKILL through runc: {e}");
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.pid), nix::sys::signal::Signal::SIGKILL);
        }
        c.exit.wait_timeout(Duration::from_secs(30)).ok_or_else(|| format!("container {} did not exit after SIGKILL", c.id))
    }

    /// `runc delete --force`, then the bundle. The log file stays.
    pub fn remove(&self, c: &Container) -> Result<(), String> {
        self.remove_id(&c.id)
    }

    /// Remove by ID (also for leftovers found after a restart).
    pub fn remove_id(&self, id: &str) -> Result<(), String> {
        if !valid_id(id) {
            return Err(format!("invalid container id {id:?}"));
        }
        let bundle = self.bundle_dir(id);
        // A shim still running (a container left by an earlier run) goes
        // first: it would write the exit code into the bundle being removed.
        if let Ok(shim) = shim::ShimRecord::load(&bundle) {
            shim.kill_and_wait()?;
        }
        self.runc.delete(id)?;
        // Before anything recursive: a staged subpath mount left by a killed
        // daemon leads into a volume.
        mounts::release_staged(&mounts::staging_dir(&bundle))?;
        self.remove_anonymous_volumes(&bundle);
        if bundle.exists() {
            std::fs::remove_dir_all(&bundle).map_err(|e| format!("removing {}: {e}", bundle.display()))?;
        }
        Ok(())
    }

    /// Deletes a task's log file (its task is gone from the store).
    pub fn remove_log(&self, id: &str) {
        if valid_id(id) {
            let _ = std::fs::remove_file(self.log_path(id));
        }
    }
}
