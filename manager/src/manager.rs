//! The manager role of one node: starts Raft, the cluster RPC server and the
//! controllers, and offers `propose`, which forwards to the leader when this
//! manager is a follower.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use shoal_api::ApiError;
use shoal_rpc::credentials::Credentials;
use shoal_rpc::logs::{LogEvent, LogOptions, LogSelector};
use shoal_rpc::unlock::UnlockKey;
use shoal_rpc::RaftMember;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::autolock::Autolock;
use crate::cluster::Cluster;
use crate::dispatcher::Dispatcher;
use crate::keyfiles::KeyFiles;
use crate::logbroker::LogBroker;
use crate::raft::{RaftHandle, StartOptions};
use crate::reachability::Reachability;
use crate::store::Command;

pub use crate::cluster::PROPOSE_TIMEOUT;

#[derive(Clone, Debug)]
pub struct ManagerConfig {
    /// `<data-root>/swarm`.
    pub swarm_dir: PathBuf,
    pub node_id: String,
    pub raft_id: u64,
    /// Where the cluster port listens (`0.0.0.0:2377`).
    pub listen_addr: String,
    /// Where other nodes reach it (`192.168.77.11:2377`).
    pub advertise_addr: String,
}

pub struct Manager {
    pub cfg: ManagerConfig,
    pub(crate) raft: RaftHandle,
    /// What the controllers get instead of the manager (see `cluster`).
    pub cluster: Cluster,
    pub creds: Arc<RwLock<Credentials>>,
    pub(crate) client_tls: Arc<RwLock<Arc<rustls::ClientConfig>>>,
    /// This manager's key files: the data key that seals secrets in the
    /// Raft log (see `datakey`; None until a joining manager has fetched
    /// it), and the stop flag that guards writing them.
    pub(crate) keys: KeyFiles,
    pub(crate) reachability: Arc<Reachability>,
    /// Log subscriptions (used on the leader).
    pub(crate) logs: Arc<LogBroker>,
    /// Keeps the key files wrapped under the cluster's unlock key.
    pub autolock: Arc<Autolock>,
    /// What the daemon's Engine API calls.
    pub control: crate::control::ControlApi,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

pub struct StartMode {
    /// First manager of a new swarm.
    pub bootstrap: bool,
    /// Managers already known (joining or promoted nodes).
    pub seeds: Vec<RaftMember>,
    /// Where cluster events go (the daemon's events hub).
    pub events: Option<Arc<dyn shoal_api::event::EventSink>>,
}

/// Binds the cluster port. A daemon restarted at once can find the port
/// still held for a moment by its previous run on the way out, so "in use"
/// is retried for a few seconds before it is an error.
async fn bind_cluster_port(addr: &str) -> Result<tokio::net::TcpListener, String> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tokio::time::Instant::now() < deadline => {
                tracing::info!("remote API address {addr} is still in use; trying again");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e) => return Err(format!("failed to listen on remote API address {addr}: {e}")),
        }
    }
}

impl Manager {
    pub async fn start(cfg: ManagerConfig, creds: Arc<RwLock<Credentials>>, mode: StartMode) -> Result<Arc<Manager>, String> {
        let client_tls = Arc::new(RwLock::new(creds.read().unwrap().client_config()?));
        let me = RaftMember { raft_id: cfg.raft_id, node_id: cfg.node_id.clone(), addr: cfg.advertise_addr.clone() };
        let listener = bind_cluster_port(&cfg.listen_addr).await?;
        let raft_dir = cfg.swarm_dir.join("raft");
        std::fs::create_dir_all(&raft_dir).map_err(|e| format!("creating {}: {e}", raft_dir.display()))?;
        let keys = KeyFiles::new(cfg.swarm_dir.clone(), creds.clone(), None);
        if !mode.bootstrap && !raft_dir.join(crate::datakey::WAL_KEY_FILE).exists() {
            let tls = client_tls.read().unwrap().clone();
            crate::keyfetch::fetch_before_start(&keys, &mode.seeds, tls).await;
        }
        // Read after the fetch: under autolock, it has just wrapped the keys.
        let unlock = creds.read().unwrap().lock.clone();
        let wal_key = crate::keyfiles::wal_key_at_start(&raft_dir, unlock.as_ref())?;
        let raft = RaftHandle::start(StartOptions {
            id: cfg.raft_id,
            dir: raft_dir.clone(),
            bootstrap: mode.bootstrap.then(|| me.clone()),
            seeds: mode.seeds.iter().map(|m| (m.raft_id, m.addr.clone())).collect(),
            tls: client_tls.clone(),
            wal_key: Some(wal_key),
            snapshot_interval: snapshot_interval(),
            // Entries kept behind a snapshot for slow followers (SwarmKit's 500).
            keep_entries: (snapshot_interval() / 2).min(shoal_api::DEFAULT_SLOW_FOLLOWER_ENTRIES),
            events: mode.events.clone(),
        })?;
        if keys.data_key().is_none() {
            *keys.data_key.write().unwrap() = crate::datakey::at_start(&raft_dir, mode.bootstrap, unlock.as_ref())?;
        }
        let cluster = Cluster::new(raft.clone(), client_tls.clone());
        let dispatcher = Dispatcher::new(cluster.clone(), keys.data_key.clone());
        let reachability = Reachability::new(cluster.clone());
        let logs = LogBroker::new(cluster.clone());
        let autolock = Autolock::new(cluster.clone(), keys.clone());
        let control =
            crate::control::ControlApi::new(cluster.clone(), keys.clone(), cfg.node_id.clone(), reachability.clone(), autolock.clone());
        let mgr = Arc::new(Manager {
            cfg,
            cluster: cluster.clone(),
            raft,
            creds,
            client_tls,
            keys: keys.clone(),
            reachability: reachability.clone(),
            logs: logs.clone(),
            autolock: autolock.clone(),
            control,
            tasks: Mutex::new(Vec::new()),
        });
        let mut tasks = vec![
            tokio::spawn(
                crate::server::ClusterPort::new(cluster.clone(), keys.clone(), mgr.cfg.node_id.clone(), dispatcher.clone(), logs.clone())
                    .serve(listener),
            ),
            tokio::spawn(dispatcher.run()),
            tokio::spawn(crate::membership::Membership::new(cluster.clone()).run()),
            tokio::spawn(reachability.run()),
            tokio::spawn(crate::orchestrator::Orchestrator::new(cluster.clone()).run()),
            tokio::spawn(logs.run()),
            tokio::spawn(autolock.run()),
        ];
        if keys.data_key().is_none() {
            tasks.push(tokio::spawn(crate::keyfetch::Fetch::new(cluster, keys).run()));
        }
        mgr.tasks.lock().unwrap().extend(tasks);
        Ok(mgr)
    }

    /// Stops Raft and every task of this manager.
    pub fn stop(&self) {
        self.keys.stop();
        self.raft.stop();
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    /// Rebuilds TLS client settings after the node's certificate changed.
    pub fn refresh_tls(&self) -> Result<(), String> {
        let cfg = self.creds.read().unwrap().client_config()?;
        *self.client_tls.write().unwrap() = cfg;
        Ok(())
    }

    pub fn client_tls(&self) -> Arc<rustls::ClientConfig> {
        self.cluster.client_tls()
    }

    /// The data key that seals secrets, once this manager holds it.
    pub fn data_key(&self) -> Option<crate::datakey::DataKey> {
        self.keys.data_key()
    }

    pub fn is_leader(&self) -> bool {
        self.cluster.is_leader()
    }

    /// Proposes a command through Raft (see `Cluster::propose`).
    pub async fn propose(&self, command: Command) -> Result<serde_json::Value, crate::cluster::WriteError> {
        self.cluster.propose(command).await
    }

    /// Raft IDs of the members that answered a ping recently (and this one).
    pub fn reachable_members(&self) -> Vec<u64> {
        self.reachability.reachable_members()
    }

    /// Logs for an API caller (see `LogBroker::subscribe`).
    pub async fn subscribe_logs(&self, selector: LogSelector, options: LogOptions) -> Result<mpsc::Receiver<LogEvent>, ApiError> {
        self.logs.subscribe(selector, options).await
    }
}

fn snapshot_interval() -> u64 {
    // Tests shrink the interval to exercise snapshots and compaction.
    std::env::var("SHOAL_RAFT_SNAPSHOT_INTERVAL").ok().and_then(|v| v.parse().ok()).unwrap_or(shoal_api::DEFAULT_SNAPSHOT_INTERVAL)
}

/// `swarm init --force-new-cluster` on a node whose manager is stopped:
/// rebuilds the state from the log in `raft_dir` (opened with the WAL key,
/// itself under `unlock` with autolock), then leaves Raft to restart as a
/// one-member cluster of `me` holding all of it.
pub fn force_new_cluster(raft_dir: &Path, me: &RaftMember, unlock: Option<&UnlockKey>) -> Result<(), ApiError> {
    let wal_key = crate::keyfiles::wal_key_at_start(raft_dir, unlock).map_err(ApiError::internal)?;
    crate::raft::node::force_new_cluster(raft_dir, me, Some(wal_key)).map_err(ApiError::bad_request)
}
