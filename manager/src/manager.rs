//! The manager role of one node: starts Raft, the cluster RPC server and the
//! controllers, and offers `propose`, which forwards to the leader when this
//! manager is a follower.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use shoal_api::ApiError;
use shoal_rpc::client;
use shoal_rpc::credentials::Credentials;
use shoal_rpc::{RaftMember, Request, Response};
use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::dispatcher::Dispatcher;
use crate::raft::{RaftHandle, StartOptions};
use crate::store::Command;

pub use crate::cluster::PROPOSE_TIMEOUT;
/// A peer manager that has not answered a ping for this long is Unreachable.
pub const REACHABLE_WITHIN: Duration = Duration::from_secs(3);

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
    pub raft: RaftHandle,
    /// What the controllers get instead of the manager (see `cluster`).
    pub cluster: Cluster,
    pub creds: Arc<RwLock<Credentials>>,
    pub(crate) client_tls: Arc<RwLock<Arc<rustls::ClientConfig>>>,
    /// Last time each peer manager (by Raft ID) answered a ping.
    pub(crate) last_pong: Mutex<HashMap<u64, Instant>>,
    pub(crate) dispatcher: Arc<Dispatcher>,
    /// Log subscriptions (used on the leader).
    pub(crate) logs: Arc<crate::logbroker::LogBroker>,
    /// Seals secrets in the Raft log (see `datakey`); None until a joining
    /// manager has fetched it.
    pub(crate) data_key: crate::datakey::SharedDataKey,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Set by `stop`. Aborting a task takes effect only at its next await,
    /// so a task that writes this manager's files checks it, under the
    /// credentials lock, before each write (see `autolock::sync`).
    stopped: std::sync::atomic::AtomicBool,
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
        let unlock = creds.read().unwrap().lock.clone();
        let raft_dir = cfg.swarm_dir.join("raft");
        std::fs::create_dir_all(&raft_dir).map_err(|e| format!("creating {}: {e}", raft_dir.display()))?;
        let wal_key = crate::datakey::wal_key_at_start(&raft_dir, unlock.as_ref())?;
        let raft = RaftHandle::start(StartOptions {
            id: cfg.raft_id,
            dir: cfg.swarm_dir.join("raft"),
            bootstrap: mode.bootstrap.then(|| me.clone()),
            seeds: mode.seeds.iter().map(|m| (m.raft_id, m.addr.clone())).collect(),
            tls: client_tls.clone(),
            wal_key: Some(wal_key),
            snapshot_interval: snapshot_interval(),
            // Entries kept behind a snapshot for slow followers (SwarmKit's 500).
            keep_entries: (snapshot_interval() / 2).min(shoal_api::DEFAULT_SLOW_FOLLOWER_ENTRIES),
            events: mode.events.clone(),
        })?;
        let data_key = crate::datakey::at_start(&raft_dir, mode.bootstrap, unlock.as_ref())?;
        let cluster = Cluster::new(raft.clone(), client_tls.clone());
        let data_key: crate::datakey::SharedDataKey = Arc::new(RwLock::new(data_key));
        let dispatcher = Dispatcher::new(cluster.clone(), data_key.clone());
        let mgr = Arc::new(Manager {
            cfg,
            cluster: cluster.clone(),
            raft,
            creds,
            client_tls,
            last_pong: Mutex::new(HashMap::new()),
            dispatcher,
            logs: Arc::default(),
            data_key,
            tasks: Mutex::new(Vec::new()),
            stopped: std::sync::atomic::AtomicBool::new(false),
        });
        let mut tasks = vec![
            tokio::spawn(crate::server::serve(mgr.clone(), listener)),
            tokio::spawn(mgr.dispatcher.clone().run()),
            tokio::spawn(crate::membership::Membership::new(cluster.clone()).run()),
            tokio::spawn(ping_peers(mgr.clone())),
            tokio::spawn(crate::orchestrator::Orchestrator::new(cluster).run()),
            tokio::spawn(crate::logbroker::run(mgr.clone())),
            tokio::spawn(crate::autolock::run(mgr.clone())),
        ];
        if mgr.data_key().is_none() {
            tasks.push(tokio::spawn(crate::datakey::fetch(mgr.clone())));
        }
        mgr.tasks.lock().unwrap().extend(tasks);
        Ok(mgr)
    }

    /// Stops Raft and every task of this manager.
    pub fn stop(&self) {
        self.stopped.store(true, std::sync::atomic::Ordering::SeqCst);
        self.raft.stop();
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(std::sync::atomic::Ordering::SeqCst)
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

    /// The unlock key this manager's keys are wrapped under on disk (None
    /// while autolock is off).
    pub fn unlock_key(&self) -> Option<shoal_rpc::unlock::UnlockKey> {
        self.creds.read().unwrap().lock.clone()
    }

    /// The data key that seals secrets, once this manager holds it.
    pub fn data_key(&self) -> Option<crate::datakey::DataKey> {
        self.data_key.read().unwrap().clone()
    }

    pub fn is_leader(&self) -> bool {
        self.cluster.is_leader()
    }

    pub fn leader_member(&self) -> Option<RaftMember> {
        self.cluster.leader_member()
    }

    /// Proposes a command through Raft (see `Cluster::propose`).
    pub async fn propose(&self, command: Command) -> Result<serde_json::Value, ApiError> {
        self.cluster.propose(command).await
    }

    /// Sends a request to the leader (for calls only the leader can serve).
    pub async fn call_leader(&self, req: Request) -> Result<Response, ApiError> {
        self.cluster.call_leader(req).await
    }

    /// Raft IDs of the members that answered a ping recently (and this one).
    pub fn reachable_members(&self) -> Vec<u64> {
        let pongs = self.last_pong.lock().unwrap();
        let st = self.raft.store.read().unwrap();
        st.members
            .keys()
            .copied()
            .filter(|id| *id == self.cfg.raft_id || pongs.get(id).map(|t| t.elapsed() < REACHABLE_WITHIN).unwrap_or(false))
            .collect()
    }
}

fn snapshot_interval() -> u64 {
    // Tests shrink the interval to exercise snapshots and compaction.
    std::env::var("SHOAL_RAFT_SNAPSHOT_INTERVAL").ok().and_then(|v| v.parse().ok()).unwrap_or(shoal_api::DEFAULT_SNAPSHOT_INTERVAL)
}

/// Pings every other manager each second over a kept connection, for the
/// Reachable/Unreachable column of `node ls`.
async fn ping_peers(mgr: Arc<Manager>) {
    let mut conns: HashMap<u64, client::Conn> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let peers: Vec<RaftMember> = {
            let st = mgr.raft.store.read().unwrap();
            st.members.values().filter(|m| m.raft_id != mgr.cfg.raft_id).cloned().collect()
        };
        conns.retain(|id, _| peers.iter().any(|p| p.raft_id == *id));
        for p in peers {
            let timeout = Duration::from_millis(900);
            let conn = match conns.entry(p.raft_id) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => match client::connect(&p.addr, mgr.client_tls(), timeout).await {
                    Ok(c) => e.insert(c),
                    Err(_) => continue,
                },
            };
            match conn.call(&Request::Ping, timeout).await {
                Ok(Response::Pong { .. }) => {
                    mgr.last_pong.lock().unwrap().insert(p.raft_id, Instant::now());
                }
                _ => {
                    conns.remove(&p.raft_id);
                }
            }
        }
    }
}

pub use crate::cluster::outcome_unknown;
