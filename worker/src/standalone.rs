//! Standalone containers: `docker run` on a node, outside any service.
//!
//! They run through the same executor as task containers (image, rootfs,
//! the node's gateway bridge, Docker's confinement) and show in the same
//! lists, but no manager knows them: this node owns their whole life.
//! `create` records one, `start` runs it (again, for `docker start` of an
//! ended one: its root filesystem, and so what it wrote, stays until it is
//! removed), and the container's waiting thread cleans up its runtime
//! state when it ends and removes it entirely under `--rm`.
//!
//! Each one's record is saved under `<state>/standalone/<id>.json` at every
//! change, so a daemon started again lists them as before (as dockerd
//! does): created and exited ones as they were, running ones taken back
//! through their shims (`restore`), or, if their shim is gone, exited.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shoal_api::network::NetworkAttachment;
use shoal_api::task::{ContainerSpec, Limit};

use crate::containers::{ContainerRecord, Containers};
use crate::executor::{ContainerInput, Executor};
use crate::image::{Image, ImageService};
use crate::network::NodeNetwork;

/// Which network a standalone container gets.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NetworkChoice {
    /// The node's gateway bridge (Docker's `bridge`, the default).
    Bridge,
    /// Its own namespace with loopback only (`--network none`).
    None,
    /// An attachable swarm overlay, as the user named it, with network
    /// aliases: the managers give it an address at each start (`start`
    /// takes it); the gateway bridge gives the way out, as Docker's
    /// `docker_gwbridge` does.
    Swarm { network: String, aliases: Vec<String> },
}

/// What `docker create` asks for, already checked and converted.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct NewContainer {
    /// Empty: a generated name.
    pub name: String,
    pub spec: ContainerSpec,
    pub limits: Option<Limit>,
    /// `--rm`: removed, with its anonymous volumes and log, when it ends.
    pub auto_remove: bool,
    /// Close the container's stdin when the attached client closes its own
    /// (`docker run -i` sets it).
    pub stdin_once: bool,
    /// `-p`: host-mode ports on this node's address, to the container's.
    pub ports: Vec<shoal_api::service::PortConfig>,
    pub network: NetworkChoice,
}

/// Why a create or start was refused, as the API answers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StandaloneError {
    /// 404 (the CLI pulls the image on this and tries again).
    NotFound(String),
    /// 409: a name in use, a running container started again.
    Conflict(String),
    /// 400: bad input.
    Invalid(String),
    /// 500: the node could not do it.
    Failed(String),
}

impl std::fmt::Display for StandaloneError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StandaloneError::NotFound(m) | StandaloneError::Conflict(m) | StandaloneError::Invalid(m) | StandaloneError::Failed(m) => {
                f.write_str(m)
            }
        }
    }
}

struct Entry {
    new: NewContainer,
    image: Image,
    /// Mounted at the first start, kept until the container is removed.
    rootfs: Option<std::path::PathBuf>,
    /// Between `start` and the end of the run it began.
    running: bool,
    /// The running container (its input and terminal, if it has them,
    /// and whether it outlives the daemon).
    container: Option<crate::executor::Container>,
}

/// The node's standalone containers.
pub struct Standalone {
    images: Arc<ImageService>,
    exec: Arc<Executor>,
    net: Option<Arc<NodeNetwork>>,
    containers: Arc<Containers>,
    entries: Mutex<HashMap<String, Entry>>,
    /// Exit codes of the latest removed containers, oldest first: a
    /// `wait?condition=removed` (`docker run --rm`) that sees the container
    /// only once it is gone still answers with its code.
    removed: Mutex<std::collections::VecDeque<(String, i32)>>,
}

/// Exit codes kept after removal.
const REMOVED_KEPT: usize = 256;

/// Docker's rule for container names.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A generated name, `<adjective>_<noun>` as Docker's are (with a number
/// when the pair is taken).
fn generated_name(taken: impl Fn(&str) -> bool) -> String {
    use rand::seq::SliceRandom;
    const ADJECTIVES: &[&str] = &[
        "agile", "bold", "brave", "calm", "clever", "eager", "fair", "gentle", "happy", "keen", "lucid", "merry", "nimble", "quiet",
        "rapid", "sharp", "steady", "swift", "tidy", "witty",
    ];
    const NOUNS: &[&str] = &[
        "anchovy",
        "barracuda",
        "carp",
        "dolphin",
        "eel",
        "flounder",
        "grouper",
        "herring",
        "koi",
        "marlin",
        "minnow",
        "perch",
        "pike",
        "salmon",
        "sardine",
        "shark",
        "snapper",
        "sturgeon",
        "trout",
        "tuna",
    ];
    let mut rng = rand::thread_rng();
    for n in 0.. {
        let a = ADJECTIVES.choose(&mut rng).expect("non-empty");
        let b = NOUNS.choose(&mut rng).expect("non-empty");
        let name = if n < 10 { format!("{a}_{b}") } else { format!("{a}_{b}{n}") };
        if !taken(&name) {
            return name;
        }
    }
    unreachable!("an unbounded loop returns")
}

/// Standalone container IDs are Docker's, 64 hex digits; task IDs (and
/// so task containers' IDs) are 25 base-36 characters. The log pruning
/// that asks the managers about task logs leaves these alone.
pub fn is_standalone_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn new_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Standalone {
    pub fn new(
        images: Arc<ImageService>,
        exec: Arc<Executor>,
        net: Option<Arc<NodeNetwork>>,
        containers: Arc<Containers>,
    ) -> Arc<Standalone> {
        Arc::new(Standalone { images, exec, net, containers, entries: Mutex::default(), removed: Mutex::default() })
    }

    /// `POST /containers/create`: checks, records the container as
    /// `created` and returns its ID. Nothing runs yet.
    pub fn create(&self, mut new: NewContainer) -> Result<String, StandaloneError> {
        let image = self.images.get(&new.spec.image).map_err(|e| StandaloneError::NotFound(e.message))?;
        crate::executor::mounts::validate(&new.spec.mounts).map_err(StandaloneError::Invalid)?;
        // The name is checked and taken under the entries lock, so two
        // creates with one name cannot both pass.
        let mut entries = self.entries.lock().unwrap();
        let existing = self.containers.list();
        if new.name.is_empty() {
            new.name = generated_name(|n| existing.iter().any(|r| r.name == n));
        } else if let Some(other) = existing.iter().find(|r| r.name == new.name) {
            return Err(StandaloneError::Conflict(format!(
                "Conflict. The container name \"/{}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                new.name, other.id
            )));
        }
        let id = new_id();
        // The log exists from now on, so an attach before the start reads
        // the container's first line (the capture appends to this file).
        let log_path = self.exec.log_path(&id);
        if let Some(dir) = log_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StandaloneError::Failed(format!("creating {}: {e}", dir.display())))?;
        }
        {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&log_path)
                .map_err(|e| StandaloneError::Failed(format!("creating {}: {e}", log_path.display())))?;
        }
        let input = self.input(&id, &new, &image);
        self.containers.created(self.record(&new, &image, &input, log_path));
        entries.insert(id.clone(), Entry { new, image, rootfs: None, running: false, container: None });
        drop(entries);
        self.save(&id);
        Ok(id)
    }

    /// The executor's input for a run (`rootfs` and network filled in by `start`).
    fn input(&self, id: &str, new: &NewContainer, image: &Image) -> ContainerInput {
        let hostname = if new.spec.hostname.is_empty() { id[..12].to_string() } else { new.spec.hostname.clone() };
        ContainerInput { id: id.to_string(), spec: new.spec.clone(), limits: new.limits.clone(), hostname, ..Default::default() }
            .with_image_config(image.config.config.as_ref())
    }

    fn record(&self, new: &NewContainer, image: &Image, input: &ContainerInput, log_path: std::path::PathBuf) -> ContainerRecord {
        ContainerRecord {
            name: new.name.clone(),
            auto_remove: new.auto_remove,
            ports: new.ports.clone(),
            created: shoal_api::time::now_rfc3339(),
            log_path,
            ..ContainerRecord::from_input(input, image.id().to_string())
        }
    }

    /// The swarm network a container joins at its start, if any: the
    /// container's name, the network as given, and aliases.
    pub fn swarm_network(&self, id: &str) -> Option<(String, String, Vec<String>)> {
        let entries = self.entries.lock().unwrap();
        let e = entries.get(id)?;
        match &e.new.network {
            NetworkChoice::Swarm { network, aliases } => Some((e.new.name.clone(), network.clone(), aliases.clone())),
            _ => None,
        }
    }

    /// A start refused before it began (its network could not be joined):
    /// as any failed start, a `--rm` container goes.
    pub fn start_refused(&self, id: &str) {
        let auto_remove = self.entries.lock().unwrap().get(id).is_some_and(|e| e.new.auto_remove && !e.running);
        if auto_remove {
            self.remove(id);
        }
    }

    /// The containers on swarm networks that are starting or running (the
    /// others' attachments can go back to the managers).
    pub fn on_swarm_networks(&self) -> Vec<String> {
        let entries = self.entries.lock().unwrap();
        entries
            .iter()
            .filter(|(_, e)| e.running && matches!(e.new.network, NetworkChoice::Swarm { .. }))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// `POST /containers/{id}/start`, with the container's address on its
    /// swarm network if it has one. `Ok(false)`: it was running already
    /// (Docker's 304).
    pub fn start(self: &Arc<Self>, id: &str, swarm: Option<NetworkAttachment>) -> Result<bool, StandaloneError> {
        let (new, image, rootfs) = {
            let mut entries = self.entries.lock().unwrap();
            let e = entries.get_mut(id).ok_or_else(|| StandaloneError::NotFound(format!("No such container: {id}")))?;
            if e.running {
                return Ok(false);
            }
            e.running = true;
            (e.new.clone(), e.image.clone(), e.rootfs.clone())
        };
        match self.run(id, &new, &image, rootfs, swarm) {
            Ok(()) => Ok(true),
            Err(err) => {
                if let Some(e) = self.entries.lock().unwrap().get_mut(id) {
                    e.running = false;
                }
                // As Docker: a `--rm` container that cannot start is removed
                // (the CLI waits for that after the failed start).
                if new.auto_remove {
                    self.remove(id);
                }
                Err(StandaloneError::Failed(err))
            }
        }
    }

    fn run(
        self: &Arc<Self>,
        id: &str,
        new: &NewContainer,
        image: &Image,
        rootfs: Option<std::path::PathBuf>,
        swarm: Option<NetworkAttachment>,
    ) -> Result<(), String> {
        let rootfs = match rootfs {
            Some(r) => r,
            None => {
                let r = self.images.prepare_rootfs(image, id).map_err(|e| e.message)?.path;
                if let Some(e) = self.entries.lock().unwrap().get_mut(id) {
                    e.rootfs = Some(r.clone());
                }
                r
            }
        };
        let overlays: Vec<NetworkAttachment> = match &new.network {
            NetworkChoice::Swarm { network, .. } => {
                vec![swarm.ok_or_else(|| format!("container {id} has no address on network {network}"))?]
            }
            _ => Vec::new(),
        };
        let net = match (&new.network, &self.net) {
            (NetworkChoice::Bridge | NetworkChoice::Swarm { .. }, Some(n)) => {
                let attached = n.attach(id, &overlays)?;
                if let Err(e) = n.publish_local(id, &new.ports) {
                    n.detach(id);
                    return Err(e);
                }
                Some(attached)
            }
            (NetworkChoice::Swarm { network, .. }, None) => {
                return Err(format!("network {network}: this node has no container networking"))
            }
            _ => None,
        };
        let mut input = self.input(id, new, image);
        input.rootfs = rootfs;
        input.netns_path = net.as_ref().map(|n| n.netns.clone());
        // On a swarm network, names resolve through the embedded resolver.
        input.embedded_dns = !overlays.is_empty();
        input.address = net.as_ref().and_then(|n| n.legs.first()).map(|l| l.addr);
        let container = match self.exec.start(&input) {
            Ok(c) => c,
            Err(e) => {
                if net.is_some() {
                    self.detach(id);
                }
                return Err(e);
            }
        };
        let bridge = net
            .as_ref()
            .and_then(|n| n.legs.iter().find(|l| l.gateway.is_some()))
            .map(|l| (format!("{}/{}", l.addr, l.prefix), l.gateway.map(|g| g.to_string()).unwrap_or_default()));
        let sandbox_key = net.as_ref().map(|n| n.netns.to_string_lossy().into_owned()).unwrap_or_default();
        let pid = container.pid;
        if let Some(e) = self.entries.lock().unwrap().get_mut(id) {
            e.container = Some(container.clone());
        }
        self.containers.restarted(id, |r| {
            r.pid = pid;
            r.bridge = bridge;
            r.sandbox_key = sandbox_key;
            r.bundle = container.bundle.clone();
        });
        self.save(id);
        self.watch(id.to_string(), container, net.is_some())
    }

    /// The container's waiting thread: when it ends, its runtime state is
    /// cleaned up, its exit recorded and saved, and, under `--rm`, it is
    /// removed.
    fn watch(self: &Arc<Self>, id: String, container: crate::executor::Container, attached: bool) -> Result<(), String> {
        let me = self.clone();
        std::thread::Builder::new()
            .name(format!("run-{}", &id[..10]))
            .stack_size(128 * 1024)
            .spawn(move || {
                let code = me.exec.wait(&container);
                // All output is in the log before anyone is told it ended.
                container.logs.wait_timeout(Duration::from_secs(5));
                if let Err(e) = me.exec.remove(&container) {
                    tracing::warn!("removing container {id}: {e}");
                }
                if attached {
                    me.detach(&id);
                }
                // Recorded and saved before it counts as ended (a daemon
                // shutting down waits for that, then may exit at once).
                me.containers.ended(&id, code);
                me.save(&id);
                let auto_remove = {
                    let mut entries = me.entries.lock().unwrap();
                    entries.get_mut(&id).map(|e| {
                        e.running = false;
                        e.container = None;
                        e.new.auto_remove
                    })
                };
                if auto_remove == Some(true) {
                    me.remove(&id);
                }
            })
            .map_err(|e| format!("starting the container's wait thread: {e}"))?;
        Ok(())
    }

    fn detach(&self, id: &str) {
        if let Some(n) = &self.net {
            n.detach(id);
        }
    }

    /// Removes an ended (or never started) container: its root filesystem,
    /// anonymous volumes, log and record. A running one is left alone (the
    /// API kills it first).
    pub fn remove(&self, id: &str) {
        {
            let mut entries = self.entries.lock().unwrap();
            match entries.get(id) {
                Some(e) if e.running => return,
                Some(_) => {
                    entries.remove(id);
                }
                None => return,
            }
        }
        // The bundle may still hold its anonymous volumes (a container that
        // never started has no bundle: nothing to do).
        let _ = self.exec.remove_id(id);
        let _ = self.images.remove_rootfs(id);
        if let Some(code) = self.containers.get(id).ok().and_then(|r| r.exit_code) {
            let mut removed = self.removed.lock().unwrap();
            if removed.len() == REMOVED_KEPT {
                removed.pop_front();
            }
            removed.push_back((id.to_string(), code));
        }
        self.containers.forget(id);
        self.exec.remove_log(id);
        let _ = std::fs::remove_file(self.saved_path(id));
    }

    /// Where input for the running container `id` goes (`-i` or `-t`).
    pub fn stdin(&self, id: &str) -> Option<crate::executor::ContainerInputPipe> {
        self.entries.lock().unwrap().get(id).and_then(|e| e.container.as_ref()?.stdin.clone())
    }

    /// Whether `id` runs now (between its start and the end of that run).
    pub fn is_running(&self, id: &str) -> bool {
        self.entries.lock().unwrap().get(id).is_some_and(|e| e.running)
    }

    /// `StdinOnce`: the attached client closed its input, so the
    /// container's stdin is closed (a terminal stays open).
    pub fn client_input_ended(&self, id: &str) {
        let entries = self.entries.lock().unwrap();
        let Some(e) = entries.get(id) else { return };
        if e.new.stdin_once && !e.new.spec.tty {
            if let Some(pipe) = e.container.as_ref().and_then(|c| c.stdin.as_ref()) {
                pipe.lock().unwrap().take();
            }
        }
    }

    /// `POST /containers/{id}/resize`: the terminal's new size; nothing to
    /// do for a container without one.
    pub fn resize(&self, id: &str, rows: u16, cols: u16) -> Result<(), String> {
        let console = self.entries.lock().unwrap().get(id).and_then(|e| e.container.as_ref()?.console.clone());
        match console {
            Some(c) => crate::executor::console::set_size(&c, rows, cols).map_err(|e| format!("resizing the terminal: {e}")),
            None => Ok(()),
        }
    }

    /// The exit code of a removed container, if it is among the latest.
    pub fn removed_exit_code(&self, id: &str) -> Option<i32> {
        self.removed.lock().unwrap().iter().rev().find(|(i, _)| i == id).map(|(_, c)| *c)
    }

    /// Daemon shutdown: stops the running ones (grace capped at `cap`);
    /// with `live_restore`, only those the next start cannot take back (run
    /// without a shim: a terminal or an open stdin). Their records stay for the
    /// next start, as dockerd keeps its containers.
    pub fn shutdown(&self, cap: Duration, live_restore: bool) {
        let ids: Vec<String> = {
            let entries = self.entries.lock().unwrap();
            entries
                .iter()
                .filter(|(_, e)| e.running && !(live_restore && e.container.as_ref().is_some_and(|c| c.outlives_daemon)))
                .map(|(id, _)| id.clone())
                .collect()
        };
        for id in &ids {
            let _ = self.exec.runc().kill(id, "SIGTERM");
        }
        let deadline = std::time::Instant::now() + cap;
        let give_up = deadline + Duration::from_secs(30);
        for id in &ids {
            let mut killed = false;
            while self.entries.lock().unwrap().get(id).is_some_and(|e| e.running) {
                let now = std::time::Instant::now();
                if now >= give_up {
                    tracing::warn!("container {id} did not exit after SIGKILL");
                    break;
                }
                if now >= deadline && !killed {
                    let _ = self.exec.runc().kill(id, "SIGKILL");
                    killed = true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    fn saved_dir(&self) -> std::path::PathBuf {
        self.exec.state_dir().join("standalone")
    }

    fn saved_path(&self, id: &str) -> std::path::PathBuf {
        self.saved_dir().join(format!("{id}.json"))
    }

    /// Saves `id` as it is now, for the next start.
    fn save(&self, id: &str) {
        let saved = {
            let entries = self.entries.lock().unwrap();
            let Some(e) = entries.get(id) else { return };
            let Ok(record) = self.containers.get(id) else { return };
            Saved { new: e.new.clone(), image_id: e.image.id().to_string(), rootfs: e.rootfs.clone(), record }
        };
        let written = (|| -> Result<(), String> {
            let dir = self.saved_dir();
            std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
            crate::executor::replace_file(&self.saved_path(id), &serde_json::to_vec(&saved).map_err(|e| e.to_string())?)
        })();
        if let Err(e) = written {
            tracing::warn!("container {id}: {e}");
        }
    }

    /// The containers a previous run saved (read once at start, for
    /// `kept_networks` and `restore`).
    pub fn load_saved(&self) -> Vec<Saved> {
        let Ok(dir) = std::fs::read_dir(self.saved_dir()) else { return Vec::new() };
        let mut out = Vec::new();
        for e in dir.flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "json") {
                let _ = std::fs::remove_file(&path); // a write cut short
                continue;
            }
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Saved>(&b).map_err(|e| e.to_string()))
            {
                Ok(s) if is_standalone_id(&s.record.id) => out.push(s),
                Ok(_) => {}
                Err(err) => tracing::warn!("{}: {err}", path.display()),
            }
        }
        out
    }

    /// The running containers on the gateway bridge that a previous run
    /// left, whose networking the start keeps for `restore` (see
    /// `TaskManager::restore`).
    pub fn kept_networks(&self, saved: &[Saved]) -> Vec<String> {
        saved
            .iter()
            .filter(|s| s.record.running() && s.new.network == NetworkChoice::Bridge)
            .filter(|s| self.exec.bundle_dir(&s.record.id).join(crate::executor::shim::RECORD_FILE).exists())
            .map(|s| s.record.id.clone())
            .collect()
    }

    /// At start: the standalone containers a previous run knew, listed
    /// again; a running one taken back through its shim, or, with its shim
    /// gone, recorded as exited (255, as dockerd records a container it
    /// lost) and removed under `--rm`. Logs of containers nobody knows go.
    /// `live_restore` false: running ones are not taken back but stopped
    /// (dockerd's default).
    pub fn restore(self: &Arc<Self>, saved: Vec<Saved>, live_restore: bool) {
        let known: Vec<String> = saved.iter().map(|s| s.record.id.clone()).collect();
        if let Some(dir) = self.exec.log_path("x").parent() {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.strip_suffix(".log").is_some_and(|id| is_standalone_id(id) && !known.iter().any(|k| k == id)) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        for s in saved {
            let id = s.record.id.clone();
            let image = match self.images.get(&s.image_id) {
                Ok(i) => i,
                Err(e) => {
                    tracing::warn!("container {id} not listed again: {}", e.message);
                    let _ = self.exec.remove_id(&id);
                    let _ = self.images.remove_rootfs(&id);
                    self.exec.remove_log(&id);
                    let _ = std::fs::remove_file(self.saved_path(&id));
                    continue;
                }
            };
            let mut record = s.record;
            let mut taken_back = None;
            if record.running() {
                // A container on a swarm network is not taken back: its
                // overlay leg is not kept (see `kept_networks`), so it is
                // stopped as without live restore, and its address goes
                // back to the managers.
                let on_swarm = matches!(s.new.network, NetworkChoice::Swarm { .. });
                let adopted = if live_restore && !on_swarm { self.exec.adopt(&id) } else { Ok(None) };
                match adopted {
                    Ok(Some(c)) => {
                        record.pid = c.pid;
                        taken_back = Some(c);
                    }
                    other => {
                        if let Err(e) = other {
                            tracing::warn!("container {id}: {e}");
                        }
                        let _ = self.exec.remove_id(&id);
                        self.detach(&id);
                        record.exit_code = Some(255);
                        record.pid = 0;
                        record.finished_at = shoal_api::time::now_rfc3339();
                    }
                }
            }
            let auto_remove = s.new.auto_remove;
            let on_bridge = s.new.network == NetworkChoice::Bridge;
            let ports = s.new.ports.clone();
            let running = taken_back.is_some();
            self.entries
                .lock()
                .unwrap()
                .insert(id.clone(), Entry { new: s.new, image, rootfs: s.rootfs, running, container: taken_back.clone() });
            self.containers.put_back(record);
            match taken_back {
                Some(c) => {
                    if let (true, Some(n)) = (on_bridge, &self.net) {
                        if let Err(e) = n.publish_local(&id, &ports) {
                            tracing::warn!("container {id}: its published ports: {e}");
                        }
                    }
                    tracing::info!(container = %id, pid = c.pid, "container taken back after the restart");
                    if let Err(e) = self.watch(id.clone(), c, on_bridge) {
                        tracing::warn!("container {id}: {e}");
                    }
                }
                // As dockerd: a `--rm` container found ended goes.
                None if auto_remove && self.containers.get(&id).is_ok_and(|r| r.exit_code.is_some()) => self.remove(&id),
                None => self.save(&id),
            }
        }
    }
}

/// A standalone container as saved for the next start.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Saved {
    new: NewContainer,
    image_id: String,
    rootfs: Option<std::path::PathBuf>,
    record: ContainerRecord,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standalone_ids_are_told_from_task_ids() {
        assert!(is_standalone_id(&new_id()));
        assert!(!is_standalone_id("3f9k2m1x8q7w6e5r4t3y2u1i0"));
    }

    #[test]
    fn names_follow_dockers_rule() {
        assert!(valid_name("web-1") && valid_name("a.b_c") && valid_name("x1"));
        assert!(!valid_name("") && !valid_name("x") && !valid_name("-x") && !valid_name("a/b") && !valid_name("a b"));
    }

    #[test]
    fn generated_names_avoid_taken_ones() {
        let taken = ["bold_carp".to_string()];
        for _ in 0..100 {
            let n = generated_name(|n| taken.iter().any(|t| t == n));
            assert!(valid_name(&n) && n != "bold_carp", "{n}");
        }
        // Every plain pair taken: a numbered one.
        let n = generated_name(|n| !n.chars().last().unwrap().is_ascii_digit());
        assert!(n.chars().last().unwrap().is_ascii_digit(), "{n}");
    }
}
