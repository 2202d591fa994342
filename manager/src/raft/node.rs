//! The Raft loop: owns the `RawNode`, ticks it, persists and applies its
//! `Ready`s, and answers proposals when their entries are applied.
//!
//! Everything else talks to it through `RaftHandle` (a channel), so Raft
//! state is touched by one task only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ::raft::eraftpb::{ConfChange, ConfChangeType, ConfState, Entry, EntryType, HardState, Message, Snapshot};
use ::raft::{Config, RawNode, SnapshotStatus, StateRole};
use protobuf::Message as _;
use shoal_api::ApiError;
use shoal_rpc::RaftMember;
use tokio::sync::{mpsc, oneshot, watch};

use super::storage::DiskStorage;
use super::transport::Transport;
use crate::store::{self, Envelope, Store};

/// One Raft tick. Elections time out after 10-20 ticks (1-2 s): faster than
/// SwarmKit's 1 s ticks, for quicker failover on a LAN.
pub const TICK: Duration = Duration::from_millis(100);
pub const ELECTION_TICKS: usize = 10;
pub const HEARTBEAT_TICKS: usize = 1;

pub type Reply = oneshot::Sender<Result<serde_json::Value, ApiError>>;

pub enum Input {
    Propose { envelope: Envelope, reply: Reply },
    ConfChange { change: ConfChange, reply: Reply },
    Step(Box<Message>),
    TransferLeader(u64),
    Unreachable(u64),
    SnapshotStatus(u64, SnapshotStatus),
    Stop,
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
struct ConfContext {
    proposal: u64,
    member: RaftMember,
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
        let io = |e: std::io::Error| format!("raft storage in {}: {e}", opts.dir.display());
        let mut storage = DiskStorage::open_with(&opts.dir, opts.wal_key.clone()).map_err(io)?;
        if storage.is_fresh() {
            if let Some(me) = &opts.bootstrap {
                bootstrap(&mut storage, me).map_err(io)?;
            }
        }
        let mut initial = Store::default();
        let mut applied = 0;
        if let Some(snap) = storage.snapshot() {
            initial = Store::from_bytes(snap.get_data())?;
            applied = snap.get_metadata().index;
            initial.applied = applied;
        }
        let store = Arc::new(RwLock::new(initial));
        let (tx, rx) = mpsc::unbounded_channel();
        let transport = Transport::new(opts.tls.clone(), store.clone(), opts.seeds.clone(), tx.clone());
        let cfg = Config {
            id: opts.id,
            election_tick: ELECTION_TICKS,
            heartbeat_tick: HEARTBEAT_TICKS,
            applied,
            check_quorum: true,
            pre_vote: true,
            max_inflight_msgs: 256,
            max_size_per_msg: 1 << 20,
            ..Default::default()
        };
        cfg.validate().map_err(|e| format!("raft config: {e}"))?;
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raw = RawNode::new(&cfg, storage.reader(), &logger).map_err(|e| format!("raft: {e}"))?;
        let (status_tx, status_rx) = watch::channel(Status { id: opts.id, ..Default::default() });
        let (applied_tx, applied_rx) = watch::channel(applied);
        // Entries up to the commit index known at start were applied before
        // (a restart replays them): they are history, not events.
        let replayed_until = raw.raft.raft_log.committed;
        let node = Loop {
            events: opts.events.clone(),
            replayed_until,
            started: std::time::SystemTime::now(),
            applied_tx,
            raw,
            storage,
            store: store.clone(),
            transport: transport.clone(),
            pending: HashMap::new(),
            proposed: HashMap::new(),
            status_tx,
            snapshot_interval: opts.snapshot_interval.max(1),
            keep_entries: opts.keep_entries,
            last_snapshot: applied,
            removed: false,
        };
        tokio::spawn(node.run(rx));
        Ok(RaftHandle { tx, store, status: status_rx, applied: applied_rx, transport })
    }

    pub fn id(&self) -> u64 {
        self.status.borrow().id
    }

    /// Proposes a command on this node; fails at once if it is not the leader.
    pub async fn propose_local(&self, command: store::Command, timeout: Duration) -> Result<serde_json::Value, ApiError> {
        self.propose_as(new_proposal_id(), command, timeout).await
    }

    /// Proposes a command under a proposal ID its caller chose once: the
    /// same ID proposed again (a retry) is applied at most once, and every
    /// caller waiting on it gets the first result.
    pub async fn propose_as(&self, proposal: u64, command: store::Command, timeout: Duration) -> Result<serde_json::Value, ApiError> {
        let envelope = Envelope { proposal, at: shoal_api::time::now_rfc3339(), command };
        let (reply, rx) = oneshot::channel();
        self.send(Input::Propose { envelope, reply })?;
        wait(rx, timeout).await
    }

    pub async fn change_membership(
        &self,
        kind: ConfChangeType,
        member: RaftMember,
        timeout: Duration,
    ) -> Result<serde_json::Value, ApiError> {
        let ctx = ConfContext { proposal: new_proposal_id(), member };
        let mut change = ConfChange::default();
        change.set_change_type(kind);
        change.node_id = ctx.member.raft_id;
        change.context = serde_json::to_vec(&ctx).expect("context serialises").into();
        let (reply, rx) = oneshot::channel();
        self.send(Input::ConfChange { change, reply })?;
        wait(rx, timeout).await
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

    fn send(&self, input: Input) -> Result<(), ApiError> {
        self.tx.send(input).map_err(|_| ApiError::unavailable("raft node is stopped"))
    }
}

async fn wait(rx: oneshot::Receiver<Result<serde_json::Value, ApiError>>, timeout: Duration) -> Result<serde_json::Value, ApiError> {
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err(ApiError::no_leader()),
        Err(_) => Err(ApiError::no_leader()),
    }
}

/// A new swarm's log starts with one committed entry adding the founder, so a
/// manager that later replays the log from index 1 learns the full membership.
fn bootstrap(storage: &mut DiskStorage, me: &RaftMember) -> std::io::Result<()> {
    let cs = ConfState { voters: vec![me.raft_id], ..Default::default() };
    storage.bootstrap(cs)?;
    let mut cc = ConfChange::default();
    cc.set_change_type(ConfChangeType::AddNode);
    cc.node_id = me.raft_id;
    cc.context = serde_json::to_vec(&ConfContext { proposal: 0, member: me.clone() }).expect("context serialises").into();
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
            if let Ok(cc) = ConfChange::parse_from_bytes(&e.data) {
                apply_membership(st, &cc);
            }
        }
        _ => {}
    }
    st.applied = e.index;
}

fn apply_membership(st: &mut Store, cc: &ConfChange) -> Option<u64> {
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

struct Loop {
    events: Option<Arc<dyn shoal_api::event::EventSink>>,
    replayed_until: u64,
    started: std::time::SystemTime,
    applied_tx: watch::Sender<u64>,
    raw: RawNode<super::storage::DiskStorageReader>,
    storage: DiskStorage,
    store: Arc<RwLock<Store>>,
    transport: Arc<Transport>,
    /// Callers waiting for their proposal (several for one ID: a retry
    /// while the first attempt is still in flight).
    pending: HashMap<u64, Vec<Reply>>,
    /// This leader's own proposals by ID (also in the entry's context): at
    /// apply time the leader takes the command from here instead of
    /// decoding the bytes it encoded itself (JSON round-trips exactly),
    /// and when it was proposed (`swarm_raft_transaction_latency_seconds`).
    proposed: HashMap<u64, (Envelope, std::time::Instant)>,
    status_tx: watch::Sender<Status>,
    snapshot_interval: u64,
    keep_entries: u64,
    last_snapshot: u64,
    removed: bool,
}

impl Loop {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Input>) {
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let input = tokio::select! {
                _ = ticker.tick() => { self.raw.tick(); None }
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
                    self.fail_pending();
                    shoal_metrics::get().raft_leader.set(0);
                    return;
                }
                self.handle(i);
            }
            if self.raw.has_ready() {
                if let Err(e) = tokio::task::block_in_place(|| self.on_ready()) {
                    // Losing durability silently is worse than stopping.
                    tracing::error!("raft storage failed, stopping the raft node: {e}");
                    self.fail_pending();
                    shoal_metrics::get().raft_leader.set(0);
                    return;
                }
            }
            self.publish();
        }
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Propose { envelope, reply } => {
                let id = envelope.proposal;
                let data = serde_json::to_vec(&envelope).expect("envelope serialises");
                if self.raw.raft.state != StateRole::Leader {
                    let _ = reply.send(Err(ApiError::no_leader()));
                    return;
                }
                match self.raw.propose(id.to_le_bytes().to_vec(), data) {
                    Ok(()) => {
                        self.pending.entry(id).or_default().push(reply);
                        self.proposed.insert(id, (envelope, std::time::Instant::now()));
                    }
                    Err(_) => {
                        let _ = reply.send(Err(ApiError::no_leader()));
                    }
                }
            }
            Input::ConfChange { change, reply } => {
                let id = serde_json::from_slice::<ConfContext>(&change.context).map(|c| c.proposal).unwrap_or(0);
                if self.raw.raft.state != StateRole::Leader {
                    let _ = reply.send(Err(ApiError::no_leader()));
                    return;
                }
                match self.raw.propose_conf_change(vec![], change) {
                    Ok(()) => {
                        self.pending.entry(id).or_default().push(reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(ApiError::unavailable(format!("raft membership change refused: {e}"))));
                    }
                }
            }
            Input::Step(m) => {
                let _ = self.raw.step(*m);
            }
            Input::TransferLeader(to) => self.raw.transfer_leader(to),
            Input::Unreachable(to) => self.raw.report_unreachable(to),
            Input::SnapshotStatus(to, s) => self.raw.report_snapshot(to, s),
            Input::Stop => {}
        }
    }

    fn on_ready(&mut self) -> Result<(), String> {
        let io = |e: std::io::Error| e.to_string();
        let mut ready = self.raw.ready();
        if !ready.messages().is_empty() {
            self.transport.send(ready.take_messages());
        }
        if !ready.snapshot().is_empty() {
            let snap = ready.snapshot().clone();
            let restored = Store::from_bytes(snap.get_data())?;
            self.storage.apply_snapshot(snap.clone()).map_err(io)?;
            let mut st = restored;
            st.applied = snap.get_metadata().index;
            *self.store.write().unwrap() = st;
            self.last_snapshot = snap.get_metadata().index;
        }
        let committed = ready.take_committed_entries();
        self.apply_entries(committed)?;
        self.publish_applied();
        if !ready.entries().is_empty() {
            self.storage.append(ready.entries()).map_err(io)?;
        }
        if let Some(hs) = ready.hs() {
            self.storage.set_hard_state(hs.clone()).map_err(io)?;
        }
        if !ready.persisted_messages().is_empty() {
            self.transport.send(ready.take_persisted_messages());
        }
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.storage.set_commit(commit).map_err(io)?;
        }
        self.transport.send(light.take_messages());
        let committed = light.take_committed_entries();
        self.apply_entries(committed)?;
        self.publish_applied();
        self.raw.advance_apply();
        self.maybe_snapshot().map_err(io)
    }

    fn publish_applied(&self) {
        let applied = self.store.read().unwrap().applied;
        self.applied_tx.send_if_modified(|a| std::mem::replace(a, applied) != applied);
    }

    fn apply_entries(&mut self, entries: Vec<Entry>) -> Result<(), String> {
        for e in entries {
            match e.get_entry_type() {
                EntryType::EntryNormal => {
                    if e.data.is_empty() {
                        self.store.write().unwrap().applied = e.index;
                        continue;
                    }
                    let own = <[u8; 8]>::try_from(e.context.as_ref()).ok().and_then(|id| self.proposed.remove(&u64::from_le_bytes(id)));
                    let own = own.map(|(env, at)| {
                        shoal_metrics::get().raft_transaction_latency.observe(at.elapsed().as_secs_f64());
                        env
                    });
                    let decoded = match own {
                        Some(env) => Ok(env),
                        None => serde_json::from_slice::<Envelope>(&e.data),
                    };
                    let env: Envelope = match decoded {
                        Ok(env) => env,
                        Err(err) => {
                            tracing::error!("skipping undecodable entry {}: {err}", e.index);
                            self.store.write().unwrap().applied = e.index;
                            continue;
                        }
                    };
                    let proposal = env.proposal;
                    let mut events = Vec::new();
                    let result = {
                        let mut st = self.store.write().unwrap();
                        let touched = self.makes_events(e.index, &env.at).then(|| store::events::Touched::before(&st, &env.command));
                        let at = touched.as_ref().map(|_| env.at.clone());
                        let r = store::apply(&mut st, e.index, env);
                        st.applied = e.index;
                        if let (Some(t), Some(at), Ok(_)) = (touched, at, &r) {
                            events = t.events(&st, &at);
                        }
                        r
                    };
                    if let Some(sink) = &self.events {
                        events.into_iter().for_each(|m| sink.publish(m));
                    }
                    for reply in self.pending.remove(&proposal).unwrap_or_default() {
                        let _ = reply.send(result.clone());
                    }
                }
                EntryType::EntryConfChange => {
                    let cc = ConfChange::parse_from_bytes(&e.data).map_err(|e| e.to_string())?;
                    let cs = self.raw.apply_conf_change(&cc).map_err(|e| format!("conf change: {e}"))?;
                    self.storage.set_conf_state(cs).map_err(|e| e.to_string())?;
                    let proposal = {
                        let mut st = self.store.write().unwrap();
                        let p = apply_membership(&mut st, &cc);
                        st.applied = e.index;
                        p
                    };
                    if cc.get_change_type() == ConfChangeType::RemoveNode {
                        if cc.node_id == self.raw.raft.id {
                            self.removed = true;
                        } else {
                            self.transport.remove_peer(cc.node_id);
                        }
                    }
                    for reply in proposal.and_then(|p| self.pending.remove(&p)).unwrap_or_default() {
                        let _ = reply.send(Ok(serde_json::Value::Null));
                    }
                }
                EntryType::EntryConfChangeV2 => {}
            }
        }
        Ok(())
    }

    /// Whether the entry at `index`, proposed at `at`, is news: not replayed
    /// from before a restart, nor proposed before this manager started (a
    /// joining manager catching up with the log).
    fn makes_events(&self, index: u64, at: &str) -> bool {
        self.events.is_some()
            && index > self.replayed_until
            && shoal_api::time::parse_rfc3339(at).is_none_or(|t| t + std::time::Duration::from_secs(1) >= self.started)
    }

    /// The snapshot interval and the entries kept behind a snapshot for
    /// slow followers: the swarm spec's `Raft.SnapshotInterval` and
    /// `LogEntriesForSlowFollowers` when set to other than Docker's
    /// defaults, else this manager's own (the defaults, or what a test set).
    fn snapshot_settings(&self) -> (u64, u64) {
        let st = self.store.read().unwrap();
        let raft = st.cluster.as_ref().map(|c| &c.swarm.spec.raft);
        let interval = raft.map(|r| r.snapshot_interval).filter(|i| *i > 0 && *i != shoal_api::DEFAULT_SNAPSHOT_INTERVAL);
        let keep = raft.map(|r| r.log_entries_for_slow_followers).filter(|k| *k != shoal_api::DEFAULT_SLOW_FOLLOWER_ENTRIES);
        (interval.unwrap_or(self.snapshot_interval), keep.unwrap_or(self.keep_entries))
    }

    fn maybe_snapshot(&mut self) -> std::io::Result<()> {
        let applied = self.raw.raft.raft_log.applied;
        let (interval, keep_entries) = self.snapshot_settings();
        // Snapshot every `interval` entries, or at once when Raft asked for
        // one newer than we have (a member added since the last).
        let due = applied >= self.last_snapshot + interval;
        if !(due || self.storage.snapshot_requested() && applied > 0) {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let data = self.store.read().unwrap().to_bytes();
        let cs = self.raw.raft.prs().conf().to_conf_state();
        self.storage.create_snapshot(applied, cs, data, keep_entries)?;
        self.last_snapshot = applied;
        let m = shoal_metrics::get();
        m.raft_snapshots.inc();
        m.raft_snapshot_latency.observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    fn fail_pending(&mut self) {
        self.proposed.clear();
        for r in self.pending.drain().flat_map(|(_, rs)| rs) {
            let _ = r.send(Err(ApiError::no_leader()));
        }
    }

    fn publish(&mut self) {
        let r = &self.raw.raft;
        let is_leader = r.state == StateRole::Leader;
        if !is_leader && !self.pending.is_empty() && r.leader_id != r.id {
            // Lost leadership: what we proposed may never commit. Callers
            // retry through the new leader.
            self.fail_pending();
        }
        let r = &self.raw.raft;
        let last = r.raft_log.last_index();
        let up_to_date =
            if is_leader { r.prs().iter().filter(|(_, p)| p.matched == last).map(|(id, _)| *id).collect() } else { Vec::new() };
        let mut voters: Vec<u64> = r.prs().conf().voters().ids().iter().collect();
        voters.sort_unstable();
        let s = Status { id: r.id, leader: r.leader_id, term: r.term, is_leader, voters, removed: self.removed, up_to_date };
        let m = shoal_metrics::get();
        m.raft_term.set(s.term as i64);
        m.raft_leader.set(is_leader as i64);
        m.raft_log_entries.set((last + 1).saturating_sub(r.raft_log.first_index()) as i64);
        m.raft_log_bytes.set(self.storage.wal_bytes() as i64);
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
