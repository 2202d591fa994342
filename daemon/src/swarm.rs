//! This node's membership in a swarm: init, join, leave, resuming after a
//! restart, and switching the manager role on and off as the cluster
//! promotes or demotes the node.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shoal_api::info::LocalNodeState;
use shoal_api::{ApiError, InitRequest, JoinRequest, Role, SwarmSpec};
use shoal_manager::manager::StartMode;
use shoal_manager::{Manager, ManagerConfig};
use shoal_rpc::credentials::{write_atomic, Credentials};
use shoal_rpc::unlock::UnlockKey;
use shoal_rpc::{client, CallError, RaftMember};
use shoal_security::{tls, JoinToken, NodeKey};
use shoal_worker::agent::{Agent, AgentConfig, AgentState};
use tokio::sync::{watch, Mutex};

use crate::addr;
use crate::config::Config;

/// How long init and join wait for the node to be registered Ready
/// (Docker's `swarmConnectTimeout`).
const REGISTER_TIMEOUT: Duration = Duration::from_secs(20);

/// What survives a restart besides certificates and the Raft log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeState {
    pub node_id: String,
    pub raft_id: u64,
    pub listen_addr: String,
    /// host:port other nodes reach the cluster port at.
    pub advertise_addr: String,
    pub data_path_addr: String,
    pub managers: Vec<RaftMember>,
}

impl NodeState {
    fn path(swarm_dir: &std::path::Path) -> PathBuf {
        swarm_dir.join("state.json")
    }
    fn save(&self, swarm_dir: &std::path::Path) -> std::io::Result<()> {
        std::fs::create_dir_all(swarm_dir)?;
        write_atomic(&Self::path(swarm_dir), &serde_json::to_vec_pretty(self).expect("state serialises"), 0o600)
    }
    fn load(swarm_dir: &std::path::Path) -> std::io::Result<Option<NodeState>> {
        match std::fs::read(Self::path(swarm_dir)) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
    fn host(&self) -> String {
        self.advertise_addr.rsplit_once(':').map(|(h, _)| h.to_string()).unwrap_or_default()
    }
}

/// A node in a swarm.
pub struct Active {
    pub state: NodeState,
    pub creds: Arc<RwLock<Credentials>>,
    pub manager: Option<Arc<Manager>>,
    pub agent_state: watch::Receiver<AgentState>,
    agent: tokio::task::JoinHandle<()>,
    watcher: Option<tokio::task::JoinHandle<()>>,
}

pub struct SwarmNode {
    pub cfg: Config,
    /// This node's images: pulls, the content store, container root filesystems.
    pub images: Arc<shoal_worker::image::ImageService>,
    /// Runs the tasks the managers assign to this node.
    pub tasks: Arc<shoal_worker::taskmanager::TaskManager>,
    /// Standalone containers (`docker run` on this node).
    pub standalone: Arc<shoal_worker::standalone::Standalone>,
    /// `docker exec` instances on this node's containers.
    pub execs: crate::http::exec::Execs,
    /// This node's events: the manager's cluster events and the worker's
    /// container and image events (`GET /events`).
    pub events: Arc<crate::events::EventHub>,
    /// Serialises init/join/leave and role switches.
    lifecycle: Mutex<()>,
    active: RwLock<Option<Active>>,
    /// A manager restarted with autolock on, until `swarm unlock`: the
    /// swarm part of the node (agent and manager) does not run.
    locked: RwLock<Option<NodeState>>,
    /// Standalone containers between their network attachment and the end
    /// of their start (`attachments`).
    pub(crate) starting: crate::attachments::Starting,
}

impl SwarmNode {
    /// This node's description, with its WireGuard public key (encrypted
    /// overlays).
    fn description(&self) -> shoal_api::NodeDescription {
        let mut d = shoal_worker::description::describe(&self.cfg.hostname, &self.cfg.engine_labels);
        if let Some(net) = self.tasks.network() {
            d.data_path_key = net.data_path_key();
        }
        d
    }

    pub fn new(cfg: Config) -> Result<Arc<SwarmNode>, String> {
        let registries = shoal_worker::image::RegistryConfig {
            insecure_registries: cfg.insecure_registries.clone(),
            certs_dir: Some(PathBuf::from("/etc/docker/certs.d")),
        };
        let images = shoal_worker::image::ImageService::open(cfg.data_root.join("image"), &registries)
            .map_err(|e| format!("opening the image store: {}", e.message))?;
        let images = Arc::new(images);
        // Everything the executor owns on the host is named per node, so
        // several daemons can share one host (the lab).
        let mut exec_cfg = shoal_worker::executor::ExecutorConfig::for_node(&cfg.data_root, &cfg.hostname);
        exec_cfg.runc_root = cfg.data_root.join("runc");
        exec_cfg.cgroup_parent = format!("shoal-{}-{:08x}", cfg.hostname, fnv32(cfg.data_root.to_string_lossy().as_bytes()));
        // Each container's shim is this binary (it outlives a restart).
        let me = std::env::current_exe().map_err(|e| format!("finding shoald's own binary: {e}"))?;
        exec_cfg.shim = Some(shoal_worker::executor::shim::ShimCommand::beside(&me));
        if let Ok(runc) = std::env::var("SHOAL_RUNC") {
            exec_cfg.runc_bin = runc.into();
        }
        // Recorded so tools that clean up after a killed daemon (the lab)
        // know which parent cgroup is this node's.
        let marker = cfg.data_root.join("containers").join("cgroup-parent");
        let _ = std::fs::create_dir_all(cfg.data_root.join("containers"));
        let _ = std::fs::write(&marker, &exec_cfg.cgroup_parent);
        let exec = shoal_worker::executor::Executor::new(exec_cfg).map_err(|e| format!("setting up the container executor: {e}"))?;
        // Task networking: names from a key of the data root (unique per
        // node on a host), namespaces pinned under /run.
        let key = format!("{:06x}", fnv32(cfg.data_root.to_string_lossy().as_bytes()) & 0xff_ffff);
        let mut net_cfg = shoal_worker::network::NetworkConfig::new(
            &key,
            cfg.data_root.join("network"),
            PathBuf::from(format!("/run/shoal/{}-{key}/netns", cfg.hostname)),
        );
        if !cfg.default_address_pools.is_empty() {
            net_cfg.pools = cfg.default_address_pools.clone();
        }
        let net = shoal_worker::network::NodeNetwork::new(net_cfg).map_err(|e| format!("setting up task networking: {e}"))?;
        // Secrets live on a tmpfs per task under the exec root, never on disk.
        let files = shoal_worker::secrets::TaskFiles::new(cfg.exec_root.join("secrets"));
        let tasks = shoal_worker::taskmanager::TaskManager::with_network(images.clone(), Arc::new(exec), Arc::new(files), Arc::new(net));
        let standalone = shoal_worker::standalone::Standalone::new(
            images.clone(),
            tasks.executor(),
            tasks.network().cloned(),
            tasks.containers().clone(),
        );
        // What outlived the previous run is taken back, unless
        // `--no-live-restore` asks for dockerd's default; tasks only while
        // the node is in a swarm (nobody would manage them otherwise).
        let saved = standalone.load_saved();
        if cfg.live_restore {
            tasks.restore(&standalone.kept_networks(&saved), NodeState::path(&cfg.swarm_dir()).exists());
        } else {
            tasks.remove_leftovers();
        }
        standalone.restore(saved, cfg.live_restore);
        tasks.set_hostname(&cfg.hostname);
        let events = Arc::new(crate::events::EventHub::default());
        images.set_events(events.clone());
        tasks.containers().set_events(events.clone());
        Ok(Arc::new(SwarmNode {
            cfg,
            images,
            tasks,
            standalone,
            execs: Default::default(),
            events,
            lifecycle: Mutex::new(()),
            active: RwLock::new(None),
            locked: RwLock::new(None),
            starting: Default::default(),
        }))
    }

    pub fn manager(&self) -> Option<Arc<Manager>> {
        self.active.read().unwrap().as_ref().and_then(|a| a.manager.clone())
    }

    /// The manager, or Docker's error for a worker / a node outside a swarm.
    pub fn require_manager(&self) -> Result<Arc<Manager>, ApiError> {
        if self.is_locked() {
            return Err(ApiError::swarm_locked());
        }
        let a = self.active.read().unwrap();
        match a.as_ref() {
            None => Err(ApiError::not_in_swarm()),
            Some(a) => a.manager.clone().ok_or_else(ApiError::not_manager),
        }
    }

    pub fn is_locked(&self) -> bool {
        self.locked.read().unwrap().is_some()
    }

    pub fn local_state(&self) -> LocalNodeState {
        if self.is_locked() {
            LocalNodeState::Locked
        } else if self.active.read().unwrap().is_some() {
            LocalNodeState::Active
        } else {
            LocalNodeState::Inactive
        }
    }

    /// This node's mutual-TLS client settings for the cluster port.
    pub fn cluster_tls(&self) -> Option<Result<Arc<rustls::ClientConfig>, String>> {
        self.active.read().unwrap().as_ref().map(|a| a.creds.read().unwrap().client_config())
    }

    /// (node ID, advertise host, managers, last agent error)
    pub fn identity(&self) -> Option<(String, String, Vec<RaftMember>, Option<String>)> {
        let a = self.active.read().unwrap();
        a.as_ref().map(|a| {
            let st = a.agent_state.borrow();
            let managers = if st.managers.is_empty() { a.state.managers.clone() } else { st.managers.clone() };
            (a.state.node_id.clone(), a.state.host(), managers, st.last_error.clone())
        })
    }

    /// Resumes the swarm role this node had before the daemon stopped.
    pub async fn resume(self: &Arc<Self>) -> Result<(), String> {
        let _g = self.lifecycle.lock().await;
        let dir = self.cfg.swarm_dir();
        let Some(state) = NodeState::load(&dir).map_err(|e| format!("reading swarm state: {e}"))? else {
            return Ok(());
        };
        if Credentials::is_locked(&dir) {
            // Autolock: nothing of the swarm runs until the operator gives
            // the unlock key (`unlock`), as in Docker.
            tracing::warn!("this manager is locked: run `swarm unlock` with the swarm's unlock key");
            *self.locked.write().unwrap() = Some(state);
            return Ok(());
        }
        let creds = Credentials::load(&dir).map_err(|e| format!("reading node certificates: {e}"))?;
        let role = creds.identity()?.role;
        let creds = Arc::new(RwLock::new(creds));
        let manager = if role == shoal_security::Role::Manager && dir.join("raft").exists() {
            Some(self.start_manager(&state, creds.clone(), false).await?)
        } else {
            None
        };
        self.activate(state, creds, manager);
        Ok(())
    }

    async fn start_manager(&self, state: &NodeState, creds: Arc<RwLock<Credentials>>, bootstrap: bool) -> Result<Arc<Manager>, String> {
        let cfg = ManagerConfig {
            swarm_dir: self.cfg.swarm_dir(),
            node_id: state.node_id.clone(),
            raft_id: state.raft_id,
            listen_addr: state.listen_addr.clone(),
            advertise_addr: state.advertise_addr.clone(),
        };
        Manager::start(cfg, creds, StartMode { bootstrap, seeds: state.managers.clone(), events: Some(self.events.clone()) }).await
    }

    fn activate(self: &Arc<Self>, state: NodeState, creds: Arc<RwLock<Credentials>>, manager: Option<Arc<Manager>>) {
        // VXLAN's local end: `--data-path-addr`, or the advertised address.
        let data_path = if state.data_path_addr.is_empty() { state.host() } else { state.data_path_addr.clone() };
        if let (Some(net), Ok(ip)) = (self.tasks.network(), data_path.parse::<std::net::Ipv4Addr>()) {
            if let Err(e) = net.set_data_path(ip) {
                tracing::warn!("overlay networks: {e}");
            }
        }
        let agent_cfg = AgentConfig {
            swarm_dir: self.cfg.swarm_dir(),
            advertise_addr: state.host(),
            description: self.description(),
            tasks: Some(self.tasks.clone()),
        };
        let (agent, agent_state) = Agent::start(agent_cfg, creds.clone(), state.managers.clone());
        let watcher = tokio::spawn(watch_role(self.clone(), agent_state.clone()));
        *self.active.write().unwrap() = Some(Active { state, creds, manager, agent_state, agent, watcher: Some(watcher) });
    }

    /// `POST /swarm/unlock`: opens the node's key and data key with the
    /// unlock key and starts the swarm part of the node. A wrong key
    /// changes nothing.
    pub async fn unlock(self: &Arc<Self>, key_text: &str) -> Result<(), ApiError> {
        let _g = self.lifecycle.lock().await;
        let Some(state) = self.locked.read().unwrap().clone() else {
            return Err(match self.active.read().unwrap().as_ref() {
                None => ApiError::not_in_swarm(),
                Some(a) if a.manager.is_none() => ApiError::not_manager(),
                Some(_) => ApiError::conflict("swarm is not locked"),
            });
        };
        let key = UnlockKey::parse_human(key_text).map_err(ApiError::bad_request)?;
        let dir = self.cfg.swarm_dir();
        let invalid = || ApiError::new(401, shoal_rpc::unlock::INVALID_KEY);
        let creds = match Credentials::load_unlocked(&dir, Some(&key)) {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Err(invalid()),
            Err(e) => return Err(ApiError::internal(format!("reading node certificates: {e}"))),
        };
        // The data key must open too (see `shoal_manager::autolock` for why
        // it always does with the key that opens the node key).
        let raft_dir = dir.join("raft");
        if shoal_manager::datakey::DataKey::load(&raft_dir, Some(&key)).is_err()
            || shoal_manager::datakey::DataKey::load_file(&raft_dir, shoal_manager::datakey::WAL_KEY_FILE, Some(&key)).is_err()
        {
            return Err(invalid());
        }
        let creds = Arc::new(RwLock::new(creds));
        let mgr = self
            .start_manager(&state, creds.clone(), false)
            .await
            .map_err(|e| ApiError::internal(format!("swarm component could not be started: {e}")))?;
        *self.locked.write().unwrap() = None;
        self.activate(state, creds, Some(mgr));
        tracing::info!("unlocked: the manager role is running");
        Ok(())
    }

    fn ensure_inactive(&self) -> Result<(), ApiError> {
        if self.is_locked() {
            return Err(ApiError::swarm_locked());
        }
        if self.active.read().unwrap().is_some() {
            return Err(ApiError::unavailable(
                "This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one.",
            ));
        }
        Ok(())
    }

    pub async fn init(self: &Arc<Self>, req: InitRequest) -> Result<String, ApiError> {
        let _g = self.lifecycle.lock().await;
        if req.force_new_cluster {
            return self.force_new_cluster().await;
        }
        self.ensure_inactive()?;
        let (listen_addr, advertise_addr) = addresses(&req.listen_addr, &req.advertise_addr)?;
        let mut spec = SwarmSpec::from_request(req.spec);
        spec.encryption_config.auto_lock_managers |= req.auto_lock_managers;
        shoal_manager::control::validate_spec(&spec)?;
        let (pools, subnet_size) = address_pools(&req.default_addr_pool, req.subnet_size)?;
        let data_path_port = match req.data_path_port {
            0 => shoal_api::DEFAULT_DATA_PATH_PORT,
            p if (1024..=49151).contains(&p) => p,
            p => return Err(ApiError::bad_request(format!("data path port {p} is out of range: use 1024 - 49151"))),
        };

        let internal = |e: String| ApiError::internal(e);
        let id = shoal_manager::bootstrap::identity(&spec).map_err(internal)?;
        let state = NodeState {
            node_id: id.node_id.clone(),
            raft_id: new_raft_id(),
            listen_addr,
            advertise_addr: advertise_addr.clone(),
            data_path_addr: req.data_path_addr.clone(),
            managers: Vec::new(),
        };
        let dir = self.cfg.swarm_dir();
        let _ = std::fs::remove_dir_all(&dir);
        id.creds.save(&dir).map_err(|e| internal(format!("saving certificates: {e}")))?;
        let creds = Arc::new(RwLock::new(id.creds.clone()));
        let mgr = match self.start_manager(&state, creds.clone(), true).await {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(ApiError::bad_request(e));
            }
        };
        let settings = shoal_manager::bootstrap::Settings { spec, data_path_port, default_addr_pool: pools, subnet_size };
        if let Err(e) = shoal_manager::bootstrap::found(&mgr, &id, settings, self.description(), state.host()).await {
            mgr.stop();
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        let mut state = state;
        state.managers = mgr.cluster.store().members.values().cloned().collect();
        state.save(&dir).map_err(|e| internal(format!("saving swarm state: {e}")))?;
        self.activate(state, creds, Some(mgr));
        self.wait_registered("init").await;
        Ok(id.node_id)
    }

    /// Waits, as Docker's init and join do, until the leader has recorded
    /// this node Ready with its description and, on a manager, until this
    /// node's own store has that record too: a client that reads the node
    /// next can write it back with the version it read. Past the deadline
    /// the call answers anyway (the agent carries on) and says so in the log.
    async fn wait_registered(&self, what: &str) {
        let (mut agent, manager, node_id) = {
            let a = self.active.read().unwrap();
            let Some(a) = a.as_ref() else { return };
            (a.agent_state.clone(), a.manager.clone(), a.state.node_id.clone())
        };
        let deadline = tokio::time::Instant::now() + REGISTER_TIMEOUT;
        let version = loop {
            if let Some(v) = agent.borrow_and_update().registered {
                break Some(v);
            }
            match tokio::time::timeout_at(deadline, agent.changed()).await {
                Ok(Ok(())) => continue,
                _ => break None,
            }
        };
        let Some(version) = version else {
            tracing::warn!("swarm {what}: the node was not registered Ready within {}s; answering anyway", REGISTER_TIMEOUT.as_secs());
            return;
        };
        let Some(mgr) = manager else { return };
        let mut applied = mgr.cluster.applied();
        loop {
            let local = mgr.cluster.store().nodes.get(&node_id).map(|n| n.version.index);
            if local.is_some_and(|v| v >= version) {
                return;
            }
            match tokio::time::timeout_at(deadline, applied.changed()).await {
                Ok(Ok(())) => continue,
                _ => break,
            }
        }
        tracing::warn!(
            "swarm {what}: this manager's store did not catch up with the node's record within {}s; answering anyway",
            REGISTER_TIMEOUT.as_secs()
        );
    }

    /// `swarm init --force-new-cluster` on a manager that lost its quorum.
    async fn force_new_cluster(self: &Arc<Self>) -> Result<String, ApiError> {
        if self.is_locked() {
            return Err(ApiError::swarm_locked());
        }
        let dir = self.cfg.swarm_dir();
        let taken = self.active.write().unwrap().take();
        let running_creds = taken.as_ref().map(|a| a.creds.clone());
        let state = match taken {
            Some(a) => {
                let state = a.state.clone();
                a.stop();
                state
            }
            None => NodeState::load(&dir)
                .map_err(|e| ApiError::internal(e.to_string()))?
                .ok_or_else(|| ApiError::bad_request("swarm init --force-new-cluster needs a node that was a manager of a swarm"))?,
        };
        // The running manager's credentials (its key may be wrapped on
        // disk under the unlock key), else the ones on disk.
        let creds = match &running_creds {
            Some(c) => c.read().unwrap().clone(),
            None => Credentials::load(&dir).map_err(|e| ApiError::internal(format!("reading node certificates: {e}")))?,
        };
        let me = RaftMember { raft_id: state.raft_id, node_id: state.node_id.clone(), addr: state.advertise_addr.clone() };
        let raft_dir = dir.join("raft");
        shoal_manager::force_new_cluster(&raft_dir, &me, creds.lock.as_ref())?;
        let mut state = state;
        state.managers = vec![me];
        state.save(&dir).map_err(|e| ApiError::internal(e.to_string()))?;
        let creds = Arc::new(RwLock::new(creds));
        let mgr = self.start_manager(&state, creds.clone(), false).await.map_err(ApiError::internal)?;
        let node_id = state.node_id.clone();
        self.activate(state, creds, Some(mgr));
        self.wait_registered("init").await;
        Ok(node_id)
    }

    pub async fn join(self: &Arc<Self>, req: JoinRequest) -> Result<(), ApiError> {
        let _g = self.lifecycle.lock().await;
        self.ensure_inactive()?;
        let remote =
            req.remote_addrs.first().cloned().ok_or_else(|| ApiError::bad_request("a remote address is required to join a swarm"))?;
        let remote = if remote.contains(':') { remote } else { format!("{remote}:{}", shoal_api::CLUSTER_PORT) };
        let token = JoinToken::parse(&req.join_token).map_err(|_| ApiError::bad_request("invalid join token"))?;
        let (listen_addr, advertise_addr) = addresses(&req.listen_addr, &req.advertise_addr)?;
        let key = NodeKey::generate().map_err(ApiError::internal)?;
        let (tls_cfg, pinned) = tls::bootstrap_client_config(token.ca_digest).map_err(ApiError::internal)?;
        let raft_id = new_raft_id();
        let host = advertise_addr.rsplit_once(':').map(|(h, _)| h.to_string()).unwrap_or_default();
        let join = shoal_rpc::JoinRequest {
            token: req.join_token.clone(),
            csr_pem: key.csr_pem.clone(),
            advertise_addr: host,
            raft_addr: advertise_addr.clone(),
            raft_id,
            description: self.description(),
        };
        let timeout = Duration::from_secs(20);
        let answer = match client::connect(&remote, tls_cfg, timeout).await {
            Ok(c) => c.join(&join, timeout).await,
            Err(e) => Err(e),
        };
        let joined = answer.map_err(|e| {
            let msg = match e {
                CallError::Api(e) => return e,
                e => e.to_string(),
            };
            if msg.contains("certificate") || msg.contains("UnknownIssuer") || msg.contains("unknown authority") {
                ApiError::bad_request(format!(
                    "remote CA does not match fingerprint. Expected: {}",
                    shoal_security::base36::encode_fixed(&token.ca_digest, 50)
                ))
            } else {
                ApiError::unavailable(format!("could not reach the manager at {remote}: {msg}"))
            }
        })?;
        if pinned.root_pem().map(|r| r.trim() != joined.root_pem.trim()).unwrap_or(false) {
            return Err(ApiError::bad_request("the manager sent a root CA different from the one it presented"));
        }
        let creds = Credentials { root_pem: joined.root_pem, cert_pem: joined.cert_pem, key_pem: key.key_pem, lock: None };
        let dir = self.cfg.swarm_dir();
        let _ = std::fs::remove_dir_all(&dir);
        creds.save(&dir).map_err(|e| ApiError::internal(format!("saving certificates: {e}")))?;
        let state = NodeState {
            node_id: joined.node_id,
            raft_id,
            listen_addr,
            advertise_addr,
            data_path_addr: req.data_path_addr,
            managers: joined.managers,
        };
        state.save(&dir).map_err(|e| ApiError::internal(format!("saving swarm state: {e}")))?;
        let creds = Arc::new(RwLock::new(creds));
        let manager = if joined.role == Role::Manager {
            match self.become_manager(&state, creds.clone()).await {
                Ok(m) => Some(m),
                Err(e) => {
                    // Leave nothing behind that would resume a half-joined swarm.
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(ApiError::unavailable(e));
                }
            }
        } else {
            None
        };
        self.activate(state, creds, manager);
        self.wait_registered("join").await;
        Ok(())
    }

    /// Starts the manager role on a node that holds a manager certificate
    /// but is not yet a Raft member, and asks the leader to add it.
    async fn become_manager(&self, state: &NodeState, creds: Arc<RwLock<Credentials>>) -> Result<Arc<Manager>, String> {
        let _ = std::fs::remove_dir_all(self.cfg.swarm_dir().join("raft"));
        let mgr = self.start_manager(state, creds, false).await?;
        let targets: Vec<String> = state.managers.iter().map(|m| m.addr.clone()).collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut next_target = 0;
        // A follower names the leader: ask it next, before going round again.
        let mut redirect: Option<String> = None;
        while tokio::time::Instant::now() < deadline && !targets.is_empty() {
            let addr = redirect.take().unwrap_or_else(|| {
                next_target += 1;
                targets[(next_target - 1) % targets.len()].clone()
            });
            let timeout = Duration::from_secs(10);
            let answer = match client::connect(&addr, mgr.client_tls(), timeout).await {
                Ok(c) => c.join_raft(state.raft_id, &state.advertise_addr, timeout).await,
                Err(e) => Err(e),
            };
            match answer {
                Ok(_) => {
                    // Answer as a manager only once this one can open the
                    // cluster's sealed keys (join tokens, the CA key): the
                    // data key comes from a peer as soon as Raft tells us who
                    // they are.
                    let mut applied = mgr.cluster.applied();
                    while mgr.data_key().is_none() && tokio::time::Instant::now() < deadline {
                        let _ = tokio::time::timeout(Duration::from_millis(200), applied.changed()).await;
                    }
                    if mgr.data_key().is_none() {
                        tracing::warn!("joined raft, but no manager has handed over the data key yet");
                    }
                    return Ok(mgr);
                }
                Err(CallError::NotLeader { leader_addr: Some(l) }) if l != addr => {
                    redirect = Some(l);
                    continue;
                }
                Err(e) => tracing::info!("joining raft via {addr}: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        mgr.stop();
        Err("could not join the managers' raft cluster: no leader answered".into())
    }

    pub async fn leave(self: &Arc<Self>, force: bool) -> Result<(), ApiError> {
        let _g = self.lifecycle.lock().await;
        if self.is_locked() {
            if !force {
                return Err(ApiError::unavailable(
                    "Swarm is encrypted and locked. Please unlock it first or use `--force` to ignore this message.",
                ));
            }
            *self.locked.write().unwrap() = None;
            if let Some(net) = self.tasks.network() {
                net.set_mesh(None);
            }
            return std::fs::remove_dir_all(self.cfg.swarm_dir()).or_else(ignore_missing).map_err(|e| ApiError::internal(e.to_string()));
        }
        let mgr = {
            let a = self.active.read().unwrap();
            let a = a.as_ref().ok_or_else(|| ApiError::unavailable("This node is not part of a swarm"))?;
            a.manager.clone()
        };
        if let Some(mgr) = &mgr {
            let members = mgr.cluster.store().members.len();
            let reachable = mgr.reachable_members().len();
            if !force {
                return Err(ApiError::unavailable(leave_refusal(reachable, members.saturating_sub(reachable))));
            }
            if members > 1 {
                self.leave_raft(mgr).await;
            }
        }
        if let Some(a) = self.active.write().unwrap().take() {
            a.stop();
        }
        // Out of the swarm, its tasks end here (as Docker's do).
        let tasks = self.tasks.clone();
        let _ = tokio::task::spawn_blocking(move || tasks.stop_all(Duration::from_secs(10))).await;
        // Out of the swarm, out of its routing mesh.
        if let Some(net) = self.tasks.network() {
            net.set_mesh(None);
        }
        std::fs::remove_dir_all(self.cfg.swarm_dir()).or_else(ignore_missing).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(())
    }

    /// Takes this manager out of the Raft membership (best effort: with no
    /// quorum, `--force` leaves anyway).
    async fn leave_raft(&self, mgr: &Arc<Manager>) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            if mgr.is_leader() {
                mgr.cluster.hand_over_leadership();
            } else if mgr.cluster.leave_raft(mgr.cfg.raft_id).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tracing::warn!("left the swarm without leaving raft cleanly");
    }

    /// Switches the manager role to match the node's certificate.
    async fn reconcile_role(self: &Arc<Self>) {
        let _g = self.lifecycle.lock().await;
        let (state, creds, manager, st) = {
            let guard = self.active.read().unwrap();
            let Some(a) = guard.as_ref() else { return };
            let st = a.agent_state.borrow().clone();
            (a.state.clone(), a.creds.clone(), a.manager.clone(), st)
        };
        let removed = manager.as_ref().map(|m| m.cluster.removed()).unwrap_or(false);
        if let Some(m) = &manager {
            let _ = m.refresh_tls();
        }
        if removed {
            if let Some(m) = manager {
                tracing::info!("demoted: stopping the manager role");
                m.stop();
                // Workers are not locked: the node key goes back in clear.
                let mut c = creds.write().unwrap();
                if c.lock.take().is_some() {
                    if let Err(e) = c.save(&self.cfg.swarm_dir()) {
                        tracing::warn!("saving the node key in clear: {e}");
                    }
                }
                let _ = std::fs::remove_dir_all(self.cfg.swarm_dir().join("raft"));
                drop(c);
                if let Some(a) = self.active.write().unwrap().as_mut() {
                    a.manager = None;
                }
            }
            return;
        }
        if manager.is_none() && st.cert_role == Some(Role::Manager) && st.desired_role == Some(Role::Manager) {
            tracing::info!("promoted: starting the manager role");
            let mut state = state;
            state.raft_id = new_raft_id();
            state.managers = st.managers.clone();
            if state.save(&self.cfg.swarm_dir()).is_err() {
                return;
            }
            match self.become_manager(&state, creds).await {
                Ok(m) => {
                    if let Some(a) = self.active.write().unwrap().as_mut() {
                        a.manager = Some(m);
                        a.state = state;
                    }
                }
                Err(e) => tracing::warn!("promotion: {e}"),
            }
        }
    }
}

impl Active {
    fn stop(self) {
        if let Some(w) = self.watcher {
            w.abort();
        }
        self.agent.abort();
        if let Some(m) = self.manager {
            m.stop();
        }
    }
}

async fn watch_role(node: Arc<SwarmNode>, mut agent: watch::Receiver<AgentState>) {
    loop {
        let _ = tokio::time::timeout(Duration::from_millis(500), agent.changed()).await;
        node.reconcile_role().await;
        node.release_attachments().await;
        // Keep the saved manager list fresh for the next restart.
        let fresh = agent.borrow().managers.clone();
        let dir = node.cfg.swarm_dir();
        let mut save = None;
        if let Some(a) = node.active.write().unwrap().as_mut() {
            if !fresh.is_empty() && fresh != a.state.managers {
                a.state.managers = fresh;
                save = Some(a.state.clone());
            }
        }
        if let Some(s) = save {
            let _ = s.save(&dir);
        }
    }
}

/// Docker's refusal of `swarm leave` on a manager without `--force`.
fn leave_refusal(reachable: usize, unreachable: usize) -> String {
    let mut msg = "You are attempting to leave the swarm on a node that is participating as a manager. ".to_string();
    // Removing one reachable manager loses quorum when what stays reachable
    // is no longer a majority.
    if reachable.saturating_sub(2) <= unreachable && reachable >= 1 {
        if reachable == 1 && unreachable == 0 {
            msg += "Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message. ";
            return msg;
        }
        msg += &format!(
            "Removing this node leaves {} managers out of {}. Without a Raft quorum your swarm will be inaccessible. ",
            reachable - 1,
            reachable + unreachable
        );
    }
    msg += "The only way to restore a swarm that has lost consensus is to reinitialize it with `--force-new-cluster`. Use `--force` to suppress this message.";
    msg
}

/// A short stable hash (FNV-1a), to tell apart nodes sharing one host.
fn fnv32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| (h ^ *b as u32).wrapping_mul(0x0100_0193))
}

fn ignore_missing(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

fn new_raft_id() -> u64 {
    loop {
        let id: u64 = rand::random();
        if id != 0 {
            return id;
        }
    }
}

/// (listen host:port, advertise host:port) from the request, Docker's way.
fn addresses(listen: &str, advertise: &str) -> Result<(String, String), ApiError> {
    let listen = if listen.is_empty() { "0.0.0.0:2377" } else { listen };
    let (lip, lport) = addr::resolve(listen, shoal_api::CLUSTER_PORT, "--listen-addr")?;
    let (aip, aport) =
        if advertise.is_empty() { (addr::choose_advertise(lip)?, lport) } else { addr::resolve(advertise, lport, "--advertise-addr")? };
    if aip.is_unspecified() {
        return Err(ApiError::bad_request(
            "advertise address must be a non-zero IP address or network interface (with optional port number)",
        ));
    }
    Ok((format!("{lip}:{lport}"), format!("{aip}:{aport}")))
}

fn address_pools(pools: &[String], subnet_size: u32) -> Result<(Vec<String>, u32), ApiError> {
    let pools = if pools.is_empty() { vec!["10.0.0.0/8".to_string()] } else { pools.to_vec() };
    let size = if subnet_size == 0 { 24 } else { subnet_size };
    for p in &pools {
        let (ip, len) = p.split_once('/').ok_or_else(|| ApiError::bad_request(format!("invalid CIDR address: {p}")))?;
        let len: u32 = len.parse().map_err(|_| ApiError::bad_request(format!("invalid CIDR address: {p}")))?;
        if ip.parse::<std::net::Ipv4Addr>().is_err() || len > 32 {
            return Err(ApiError::bad_request(format!("invalid CIDR address: {p}")));
        }
        if size < len || size > 29 {
            return Err(ApiError::bad_request(format!("invalid subnet size {size} for address pool {p}")));
        }
    }
    Ok((pools, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_default_and_validate() {
        assert_eq!(address_pools(&[], 0).unwrap(), (vec!["10.0.0.0/8".to_string()], 24));
        assert!(address_pools(&["10.20.0.0/16".into()], 24).is_ok());
        assert!(address_pools(&["10.20.0.0".into()], 24).is_err());
        assert!(address_pools(&["10.20.0.0/16".into()], 8).is_err());
    }

    #[test]
    fn leave_refusals_follow_docker() {
        assert!(leave_refusal(1, 0).contains("Removing the last manager erases all current state of the swarm."));
        let three = leave_refusal(3, 0);
        assert!(!three.contains("Without a Raft quorum"), "2 of 3 keep quorum: {three}");
        assert!(three.ends_with("Use `--force` to suppress this message."));
        let lossy = leave_refusal(2, 1);
        assert!(lossy.contains("Removing this node leaves 1 managers out of 3. Without a Raft quorum"), "{lossy}");
    }

    #[test]
    fn explicit_addresses() {
        let (l, a) = addresses("", "192.168.77.11").unwrap();
        assert_eq!(l, "0.0.0.0:2377");
        assert_eq!(a, "192.168.77.11:2377");
        assert!(addresses("", "0.0.0.0").is_err());
    }
}
