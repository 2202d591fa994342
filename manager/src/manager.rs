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

use crate::dispatcher::Dispatcher;
use crate::raft::ProposeError;
use crate::raft::{RaftHandle, StartOptions};
use crate::store::Command;

/// How long a write may wait for a leader before it is refused.
pub const PROPOSE_TIMEOUT: Duration = Duration::from_secs(8);
/// How long a follower waits for its own store to apply a write the leader
/// answered before answering its client.
const LOCAL_APPLY_WAIT: Duration = Duration::from_secs(2);
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
    pub creds: Arc<RwLock<Credentials>>,
    pub(crate) client_tls: Arc<RwLock<Arc<rustls::ClientConfig>>>,
    /// Last time each peer manager (by Raft ID) answered a ping.
    pub(crate) last_pong: Mutex<HashMap<u64, Instant>>,
    pub(crate) dispatcher: Dispatcher,
    /// Log subscriptions (used on the leader).
    pub(crate) logs: Arc<crate::logbroker::LogBroker>,
    /// Seals secrets in the Raft log (see `datakey`); None until a joining
    /// manager has fetched it.
    pub(crate) data_key: RwLock<Option<crate::datakey::DataKey>>,
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
        let mgr = Arc::new(Manager {
            cfg,
            raft,
            creds,
            client_tls,
            last_pong: Mutex::new(HashMap::new()),
            dispatcher: Dispatcher::default(),
            logs: Arc::default(),
            data_key: RwLock::new(data_key),
            tasks: Mutex::new(Vec::new()),
            stopped: std::sync::atomic::AtomicBool::new(false),
        });
        let mut tasks = vec![
            tokio::spawn(crate::server::serve(mgr.clone(), listener)),
            tokio::spawn(crate::dispatcher::run(mgr.clone())),
            tokio::spawn(crate::membership::run(mgr.clone())),
            tokio::spawn(ping_peers(mgr.clone())),
            tokio::spawn(crate::orchestrator::run(mgr.clone())),
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
        self.client_tls.read().unwrap().clone()
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
        self.raft.status.borrow().is_leader
    }

    pub fn leader_member(&self) -> Option<RaftMember> {
        let leader = self.raft.status.borrow().leader;
        self.raft.store.read().unwrap().members.get(&leader).cloned()
    }

    /// Proposes a command through Raft, on this node if it leads, else by
    /// forwarding it to the leader; waits until it is applied.
    ///
    /// Exactly once: the proposal ID is chosen here, once, and every retry
    /// (after a lost answer, a leader change, a forwarding error) carries
    /// it, so the write is applied at most once and a retry gets the first
    /// attempt's answer, never a conflict with itself. When the deadline
    /// passes after an attempt that may have reached a leader, the outcome
    /// is unknown and said so.
    pub async fn propose(&self, command: Command) -> Result<serde_json::Value, ApiError> {
        let proposal = crate::raft::new_proposal_id();
        let deadline = Instant::now() + PROPOSE_TIMEOUT;
        let mut maybe_applied = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(if maybe_applied { outcome_unknown() } else { ApiError::no_leader() });
            }
            if self.is_leader() {
                maybe_applied = true;
                match self.raft.propose_as(proposal, command.clone(), left).await {
                    Ok(v) => return Ok(v),
                    // Leadership moved (or this node's Raft stopped):
                    // again, through whoever leads now.
                    Err(ProposeError::NotLeader | ProposeError::Stopped | ProposeError::Timeout) => {}
                    Err(e) => return Err(e.into()),
                }
            } else if let Some(leader) = self.leader_member() {
                let command = serde_json::value::to_raw_value(&command).expect("command serialises");
                let req = Request::Propose { proposal, command };
                match client::call_once(&leader.addr, self.client_tls(), &req, left).await {
                    Ok(Response::Proposed { result }) => {
                        self.await_local_apply(proposal).await;
                        return Ok(result);
                    }
                    // A leader that stopped leading answers NotLeader (a
                    // manager of the previous version answered Docker's
                    // no-leader error: read as the same).
                    Ok(Response::Error { status, message }) if ApiError::new(status, message.clone()) != ApiError::no_leader() => {
                        return Err(ApiError::new(status, message))
                    }
                    Ok(Response::NotLeader { .. }) => {}
                    // The leader lost leadership or the connection broke:
                    // the proposal may be in the log.
                    _ => maybe_applied = true,
                }
            }
            self.wait_for_leader_change(Duration::from_millis(100)).await;
        }
    }

    /// Waits (briefly) until this follower's store has applied a proposal
    /// the leader has answered, so a client reads its own write here next,
    /// as it would through Docker's managers (which proxy to the leader).
    async fn await_local_apply(&self, proposal: u64) {
        let deadline = tokio::time::Instant::now() + LOCAL_APPLY_WAIT;
        let mut applied = self.raft.applied.clone();
        loop {
            let here = self.raft.store.read().unwrap().recent.get(proposal).is_some();
            if here {
                return;
            }
            if !matches!(tokio::time::timeout_at(deadline, applied.changed()).await, Ok(Ok(()))) {
                tracing::debug!("proposal {proposal}: applied by the leader, not yet here");
                return;
            }
        }
    }

    /// Sends a request to the leader (for calls only the leader can serve).
    pub async fn call_leader(&self, req: Request) -> Result<Response, ApiError> {
        let deadline = Instant::now() + PROPOSE_TIMEOUT;
        loop {
            if Instant::now() >= deadline {
                return Err(ApiError::no_leader());
            }
            if let Some(leader) = self.leader_member() {
                let left = deadline.saturating_duration_since(Instant::now());
                match client::call_once(&leader.addr, self.client_tls(), &req, left).await {
                    Ok(Response::NotLeader { .. }) | Err(_) => {}
                    Ok(Response::Error { status, message }) => return Err(ApiError::new(status, message)),
                    Ok(r) => return Ok(r),
                }
            }
            self.wait_for_leader_change(Duration::from_millis(100)).await;
        }
    }

    async fn wait_for_leader_change(&self, at_most: Duration) {
        let mut rx = self.raft.status.clone();
        let _ = tokio::time::timeout(at_most, rx.changed()).await;
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

/// A write whose fate is unknown at its deadline (it may still apply, once).
/// gRPC's words, as Docker passes them on.
pub fn outcome_unknown() -> ApiError {
    ApiError::new(500, "rpc error: code = DeadlineExceeded desc = context deadline exceeded")
}
