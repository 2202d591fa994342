//! The Raft loop: a tokio task that ticks the `Core` every `TICK`, feeds it
//! inputs, and connects its outbox to the transport and the status and
//! applied-index watches.
//!
//! Everything else talks to it through `RaftHandle` (a channel), so Raft
//! state is touched by one task only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ::raft::eraftpb::{ConfChange, ConfChangeType, ConfState, Entry, EntryType, HardState, Message, Snapshot};
use ::raft::Config;
use protobuf::Message as _;
use shoal_rpc::RaftMember;
use tokio::sync::{mpsc, oneshot, watch};

use super::core::{Core, OpenOptions, Outbox};
use super::storage::DiskStorage;
use super::transport::Transport;
use crate::store::{self, Envelope, Store};

/// One Raft tick. Elections time out after 10-20 ticks (1-2 s): faster than
/// SwarmKit's 1 s ticks, for quicker failover on a LAN.
pub const TICK: Duration = Duration::from_millis(100);
pub const ELECTION_TICKS: usize = 10;
pub const HEARTBEAT_TICKS: usize = 1;

pub use super::core::{Answer, Input, ProposeError};

/// Raft's settings on every manager (the ID and applied index aside).
pub fn raft_config() -> Config {
    Config {
        election_tick: ELECTION_TICKS,
        heartbeat_tick: HEARTBEAT_TICKS,
        check_quorum: true,
        pre_vote: true,
        max_inflight_msgs: 256,
        max_size_per_msg: 1 << 20,
        ..Default::default()
    }
}

/// What the rest of the manager may know about Raft, published after every step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub id: u64,
    pub leader: u64,
    pub term: u64,
    pub is_leader: bool,
    pub voters: Vec<u64>,
    /// This node was removed from the membership; the manager must stop.
    pub removed: bool,
    /// Raft IDs whose log matches the leader's last index (leader only).
    pub up_to_date: Vec<u64>,
}

/// Context carried by a conf-change entry.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct ConfContext {
    pub proposal: u64,
    pub member: RaftMember,
}

#[derive(Clone)]
pub struct RaftHandle {
    tx: mpsc::UnboundedSender<Input>,
    pub store: Arc<RwLock<Store>>,
    pub status: watch::Receiver<Status>,
    /// The index of the last applied entry: controllers and long-polls wait
    /// on it instead of polling the store.
    pub applied: watch::Receiver<u64>,
    pub transport: Arc<Transport>,
}

pub struct StartOptions {
    pub id: u64,
    pub dir: PathBuf,
    /// Set for the first manager of a new swarm: it founds the membership.
    pub bootstrap: Option<RaftMember>,
    /// Addresses of existing managers, known before the store has them.
    pub seeds: HashMap<u64, String>,
    pub tls: Arc<RwLock<Arc<rustls::ClientConfig>>>,
    /// Seals the WAL and snapshots (`storage`, "Encryption"); None: clear.
    pub wal_key: Option<super::storage::WalKey>,
    pub snapshot_interval: u64,
    pub keep_entries: u64,
    /// Where the cluster events derived from applied entries go (see
    /// `store::events`); entries replayed at start make none.
    pub events: Option<Arc<dyn shoal_api::event::EventSink>>,
}

impl RaftHandle {
    pub fn start(opts: StartOptions) -> Result<RaftHandle, String> {
        let config = Config { id: opts.id, ..raft_config() };
        let open = OpenOptions {
            dir: &opts.dir,
            wal_key: opts.wal_key.clone(),
            bootstrap: opts.bootstrap.as_ref(),
            config,
            snapshot_interval: opts.snapshot_interval,
            keep_entries: opts.keep_entries,
        };
        let mut core = Core::open(open)?;
        let store = core.store();
        let applied = store.read().unwrap().applied;
        let (tx, rx) = mpsc::unbounded_channel();
        let transport = Transport::new(opts.tls.clone(), store.clone(), opts.seeds.clone(), tx.clone());
        if let Some(sink) = opts.events.clone() {
            core.publish_events(sink, std::time::SystemTime::now());
        }
        let (status_tx, status_rx) = watch::channel(Status { id: opts.id, ..Default::default() });
        let (applied_tx, applied_rx) = watch::channel(applied);
        let node = Loop { core, transport: transport.clone(), status_tx, applied_tx };
        tokio::spawn(node.run(rx));
        Ok(RaftHandle { tx, store, status: status_rx, applied: applied_rx, transport })
    }

    pub fn id(&self) -> u64 {
        self.status.borrow().id
    }

    /// Proposes a command on this node; fails at once if it is not the leader.
    pub async fn propose_local(&self, command: store::Command, timeout: Duration) -> Answer {
        self.propose_as(new_proposal_id(), command, timeout).await
    }

    /// Proposes a command under a proposal ID its caller chose once: the
    /// same ID proposed again (a retry) is applied at most once, and every
    /// caller waiting on it gets the first result.
    pub async fn propose_as(&self, proposal: u64, command: store::Command, timeout: Duration) -> Answer {
        let envelope = Envelope { proposal, at: shoal_api::time::now_rfc3339(), command };
        let (reply, rx) = oneshot::channel();
        self.send(Input::Propose { envelope, reply })?;
        wait(rx, timeout).await
    }

    pub async fn change_membership(&self, kind: ConfChangeType, member: RaftMember, timeout: Duration) -> Answer {
        let change = membership_change(kind, member, new_proposal_id());
        let (reply, rx) = oneshot::channel();
        self.send(Input::ConfChange { change, reply })?;
        wait(rx, timeout).await
    }

    /// Waits until this node's store holds every write committed before
    /// the call (Raft's ReadIndex, confirmed by a quorum): a read after it
    /// is linearizable, on a follower too. Returns the applied index.
    pub async fn read_barrier(&self, timeout: Duration) -> Result<u64, ProposeError> {
        let (reply, rx) = oneshot::channel();
        self.send(Input::ReadIndex { reply })?;
        let index = wait(rx, timeout).await?;
        Ok(index.as_u64().unwrap_or_default())
    }

    /// Seals this manager's WAL and snapshot under a new key from now on
    /// (both rewritten under it); see `autolock` for the key files.
    pub async fn rekey(&self, key: super::storage::WalKey) -> Result<(), String> {
        let (done, rx) = oneshot::channel();
        self.send(Input::Rekey { key, done }).map_err(|_| "the raft node is stopped".to_string())?;
        rx.await.map_err(|_| "the raft node stopped".to_string())?
    }

    pub fn step(&self, msg: Message) {
        let _ = self.tx.send(Input::Step(Box::new(msg)));
    }

    pub fn transfer_leader(&self, to: u64) {
        let _ = self.tx.send(Input::TransferLeader(to));
    }

    pub fn stop(&self) {
        let _ = self.tx.send(Input::Stop);
    }

    fn send(&self, input: Input) -> Result<(), ProposeError> {
        self.tx.send(input).map_err(|_| ProposeError::Stopped)
    }
}

async fn wait(rx: oneshot::Receiver<Answer>, timeout: Duration) -> Answer {
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(r)) => r,
        // The loop dropped the reply: it stopped.
        Ok(Err(_)) => Err(ProposeError::Stopped),
        Err(_) => Err(ProposeError::Timeout),
    }
}

/// A membership change as a conf-change entry carries it: the member's
/// address and node ID ride in the context, with the proposal ID its
/// proposer waits on.
pub(super) fn membership_change(kind: ConfChangeType, member: RaftMember, proposal: u64) -> ConfChange {
    let mut change = ConfChange::default();
    change.set_change_type(kind);
    change.node_id = member.raft_id;
    change.context = serde_json::to_vec(&ConfContext { proposal, member }).expect("context serialises").into();
    change
}

/// A new swarm's log starts with one committed entry adding the founder, so a
/// manager that later replays the log from index 1 learns the full membership.
pub(super) fn bootstrap(storage: &mut DiskStorage, me: &RaftMember) -> std::io::Result<()> {
    let cs = ConfState { voters: vec![me.raft_id], ..Default::default() };
    storage.bootstrap(cs)?;
    let cc = membership_change(ConfChangeType::AddNode, me.clone(), 0);
    let mut e = Entry::default();
    e.set_entry_type(EntryType::EntryConfChange);
    e.index = 1;
    e.term = 1;
    e.data = cc.write_to_bytes().map_err(std::io::Error::other)?.into();
    storage.append(&[e])?;
    storage.set_hard_state(HardState { term: 1, vote: me.raft_id, commit: 1, ..Default::default() })
}

/// `swarm init --force-new-cluster`: rebuild the state from this manager's
/// log, then restart Raft as a single-member cluster holding all of it.
pub fn force_new_cluster(dir: &Path, me: &RaftMember, wal_key: Option<super::storage::WalKey>) -> Result<(), String> {
    let io = |e: std::io::Error| format!("raft storage in {}: {e}", dir.display());
    let storage = DiskStorage::open_with(dir, wal_key.clone()).map_err(io)?;
    if storage.is_fresh() {
        return Err("no raft state to recover on this node".into());
    }
    let mut st = Store::default();
    let mut index = 0;
    if let Some(snap) = storage.snapshot() {
        st = Store::from_bytes(snap.get_data())?;
        index = snap.get_metadata().index;
    }
    let mem = storage.mem();
    let hs = ::raft::Storage::initial_state(&mem).map_err(|e| e.to_string())?.hard_state;
    let first = ::raft::Storage::first_index(&mem).map_err(|e| e.to_string())?;
    let mut term = hs.term;
    if hs.commit >= first {
        let entries = ::raft::Storage::entries(&mem, first, hs.commit + 1, None, ::raft::GetEntriesContext::empty(false))
            .map_err(|e| e.to_string())?;
        for e in entries {
            if e.index <= index {
                continue;
            }
            apply_to_store(&mut st, &e);
            index = e.index;
            term = e.term;
        }
    }
    st.members.retain(|id, _| *id == me.raft_id);
    st.members.insert(me.raft_id, me.clone());
    st.applied = index;
    drop(storage);
    DiskStorage::wipe(dir).map_err(io)?;
    let mut fresh = DiskStorage::open_with(dir, wal_key).map_err(io)?;
    let mut snap = Snapshot { data: st.to_bytes().into(), ..Default::default() };
    let meta = snap.mut_metadata();
    meta.index = index;
    meta.term = term;
    meta.mut_conf_state().voters = vec![me.raft_id];
    fresh.apply_snapshot(snap).map_err(io)?;
    fresh.set_hard_state(HardState { term: term.max(hs.term), commit: index, ..Default::default() }).map_err(io)
}

/// Applies an entry to a store outside Raft (recovery): commands and
/// membership changes alike.
fn apply_to_store(st: &mut Store, e: &Entry) {
    match e.get_entry_type() {
        EntryType::EntryNormal if !e.data.is_empty() => {
            if let Ok(env) = serde_json::from_slice::<Envelope>(&e.data) {
                let _ = store::apply(st, e.index, env);
            }
        }
        EntryType::EntryConfChange => {
            if let Ok(cc) = super::wire::decode_conf_change(&e.data) {
                apply_membership(st, &cc);
            }
        }
        _ => {}
    }
    st.applied = e.index;
}

pub(super) fn apply_membership(st: &mut Store, cc: &ConfChange) -> Option<u64> {
    let ctx: Option<ConfContext> = serde_json::from_slice(&cc.context).ok();
    match cc.get_change_type() {
        ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
            if let Some(ctx) = &ctx {
                st.members.insert(cc.node_id, ctx.member.clone());
            }
        }
        ConfChangeType::RemoveNode => {
            st.members.remove(&cc.node_id);
        }
    }
    ctx.map(|c| c.proposal)
}

/// Drives a `Core` from tokio: ticks it, feeds it inputs in batches, hands
/// its messages to the transport and publishes its status.
struct Loop {
    core: Core,
    transport: Arc<Transport>,
    status_tx: watch::Sender<Status>,
    applied_tx: watch::Sender<u64>,
}

/// The transport and the applied-index watch, as the core's outbox.
struct Wire<'a> {
    transport: &'a Arc<Transport>,
    applied_tx: &'a watch::Sender<u64>,
}

impl Outbox for Wire<'_> {
    fn send(&mut self, msgs: Vec<Message>) {
        if !msgs.is_empty() {
            self.transport.send(msgs);
        }
    }

    fn remove_peer(&mut self, id: u64) {
        self.transport.remove_peer(id);
    }

    fn applied(&mut self, index: u64) {
        self.applied_tx.send_if_modified(|a| std::mem::replace(a, index) != index);
    }
}

impl Loop {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Input>) {
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let input = tokio::select! {
                _ = ticker.tick() => { self.core.tick(); None }
                i = rx.recv() => match i {
                    Some(i) => Some(i),
                    None => {
                        shoal_metrics::get().raft_leader.set(0);
                        return;
                    }
                },
            };
            let mut batch: Vec<Input> = input.into_iter().collect();
            while let Ok(i) = rx.try_recv() {
                batch.push(i);
            }
            for i in batch {
                if let Input::Stop = i {
                    self.core.fail_pending();
                    shoal_metrics::get().raft_leader.set(0);
                    return;
                }
                self.core.handle(i);
            }
            if self.core.has_ready() {
                let mut wire = Wire { transport: &self.transport, applied_tx: &self.applied_tx };
                if let Err(e) = tokio::task::block_in_place(|| self.core.ready(&mut wire)) {
                    // Losing durability silently is worse than stopping.
                    tracing::error!("raft storage failed, stopping the raft node: {e}");
                    self.core.fail_pending();
                    shoal_metrics::get().raft_leader.set(0);
                    return;
                }
            }
            self.publish();
        }
    }

    fn publish(&mut self) {
        let s = self.core.status();
        let m = shoal_metrics::get();
        m.raft_term.set(s.term as i64);
        m.raft_leader.set(s.is_leader as i64);
        m.raft_log_entries.set(self.core.log_entries() as i64);
        m.raft_log_bytes.set(self.core.wal_bytes() as i64);
        self.status_tx.send_if_modified(|old| {
            if old.leader != s.leader && s.leader != 0 {
                m.raft_leader_changes.inc();
            }
            if *old != s {
                *old = s;
                true
            } else {
                false
            }
        });
    }
}

/// A proposal ID: random, never 0 (0 marks entries from before IDs).
pub fn new_proposal_id() -> u64 {
    rand::random::<u64>().max(1)
}
