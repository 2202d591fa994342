//! The Raft state machine driver without I/O: owns the `RawNode`, its
//! durable storage and the store it applies to, and turns inputs (ticks,
//! proposals, peer messages) into outputs (messages to send, answers to
//! proposers). It never reads a clock, spawns a task or touches a socket:
//! `node` drives it from tokio and the transport, and `sim_tests` drives
//! several of them over a simulated network, seed by seed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use ::raft::eraftpb::{ConfChange, ConfChangeType, Entry, EntryType, Message};
use ::raft::{Config, RawNode, SnapshotStatus, StateRole};
use shoal_api::ApiError;
use tokio::sync::oneshot;

use super::node::{apply_membership, ConfContext, Status};
use super::storage::{DiskStorage, DiskStorageReader};
use crate::store::{self, Envelope, Store};

/// Why a proposal or read has no answer from the state machine. What the
/// state machine answered, including its refusals, is `Applied`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposeError {
    /// This node does not lead, or stopped leading before the entry was
    /// applied: it may still commit (once); retry with the same ID.
    NotLeader,
    /// The Raft node stopped.
    Stopped,
    /// No answer within the caller's deadline: it may still commit.
    Timeout,
    /// Raft refused a membership change (one is already under way).
    Refused(String),
    /// Applied, and the state machine refused it (a conflict, a stale
    /// version, ...): the final answer.
    Applied(crate::store::StoreError),
}

impl From<ProposeError> for ApiError {
    /// Docker's words for each, at the edge.
    fn from(e: ProposeError) -> ApiError {
        match e {
            ProposeError::NotLeader | ProposeError::Timeout => ApiError::no_leader(),
            ProposeError::Stopped => ApiError::unavailable("raft node is stopped"),
            ProposeError::Refused(m) => ApiError::unavailable(format!("raft membership change refused: {m}")),
            ProposeError::Applied(e) => e.into(),
        }
    }
}

/// A proposal's answer: the state machine's result, or why there is none.
pub type Answer = Result<serde_json::Value, ProposeError>;
pub type Reply = oneshot::Sender<Answer>;

pub enum Input {
    Propose {
        envelope: Envelope,
        reply: Reply,
    },
    ConfChange {
        change: ConfChange,
        reply: Reply,
    },
    /// A linearizable read: answered with the applied index once this
    /// node's store holds every write committed before the read began.
    ReadIndex {
        reply: Reply,
    },
    Step(Box<Message>),
    TransferLeader(u64),
    Unreachable(u64),
    SnapshotStatus(u64, SnapshotStatus),
    /// Seal the storage under a new key from now on (`DiskStorage::rekey`).
    Rekey {
        key: super::storage::WalKey,
        done: oneshot::Sender<Result<(), String>>,
    },
    Stop,
}

/// Where a `Core`'s effects go: the transport in a daemon, the simulated
/// network in tests. Called in the order Raft requires (messages that
/// must follow persistence are handed over after it).
pub trait Outbox {
    fn send(&mut self, msgs: Vec<Message>);
    /// A member was removed: forget its connection.
    fn remove_peer(&mut self, id: u64);
    /// Entries up to `index` are applied (waiters may read the store).
    fn applied(&mut self, index: u64);
}

pub struct OpenOptions<'a> {
    pub dir: &'a std::path::Path,
    /// Seals the WAL and snapshots (`storage`, "Encryption"); None: clear.
    pub wal_key: Option<super::storage::WalKey>,
    /// Set for the first manager of a new swarm: it founds the membership.
    pub bootstrap: Option<&'a shoal_rpc::RaftMember>,
    /// Raft's settings with this node's ID (the applied index is read
    /// from the storage).
    pub config: Config,
    pub snapshot_interval: u64,
    pub keep_entries: u64,
}

/// Where cluster events derived from applied entries go (see
/// `store::events`), and which entries make them.
struct Events {
    sink: Arc<dyn shoal_api::event::EventSink>,
    /// Entries up to this index were applied before a restart: history.
    replayed_until: u64,
    /// When this manager started: entries proposed before it are a joining
    /// manager catching up, not news.
    started: std::time::SystemTime,
}

pub struct Core {
    raw: RawNode<DiskStorageReader>,
    storage: DiskStorage,
    store: Arc<RwLock<Store>>,
    events: Option<Events>,
    /// Callers waiting for their proposal (several for one ID: a retry
    /// while the first attempt is still in flight).
    pending: HashMap<u64, Vec<Reply>>,
    /// This leader's own proposals by ID (also in the entry's context): at
    /// apply time the leader takes the command from here instead of
    /// decoding the bytes it encoded itself (JSON round-trips exactly),
    /// and when it was proposed (`swarm_raft_transaction_latency_seconds`).
    proposed: HashMap<u64, (Envelope, std::time::Instant)>,
    /// Reads waiting for Raft to confirm a read index, by request context.
    reads: HashMap<u64, Reply>,
    /// Reads whose index is known, waiting for it to be applied.
    confirmed_reads: BTreeMap<u64, Vec<Reply>>,
    next_read: u64,
    /// The term and leader the pending reads were asked under: a change
    /// may have dropped them inside Raft, so they are failed.
    read_epoch: (u64, u64),
    snapshot_interval: u64,
    keep_entries: u64,
    last_snapshot: u64,
    removed: bool,
}

impl Core {
    /// Opens the Raft storage in a directory (a new swarm's founder
    /// writes its first entry), and the store from its snapshot; entries
    /// after the snapshot are applied again as Raft hands them back.
    pub fn open(opts: OpenOptions) -> Result<Core, String> {
        let io = |e: std::io::Error| format!("raft storage in {}: {e}", opts.dir.display());
        let mut storage = DiskStorage::open_with(opts.dir, opts.wal_key).map_err(io)?;
        if storage.is_fresh() {
            if let Some(me) = opts.bootstrap {
                super::node::bootstrap(&mut storage, me).map_err(io)?;
            }
        }
        let mut initial = Store::default();
        if let Some(snap) = storage.snapshot() {
            initial = Store::from_bytes(snap.get_data())?;
            initial.applied = snap.get_metadata().index;
        }
        let last_snapshot = initial.applied;
        let config = Config { applied: initial.applied, ..opts.config };
        config.validate().map_err(|e| format!("raft config: {e}"))?;
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raw = RawNode::new(&config, storage.reader(), &logger).map_err(|e| format!("raft: {e}"))?;
        let store = Arc::new(RwLock::new(initial));
        Ok(Core {
            raw,
            storage,
            store,
            events: None,
            pending: HashMap::new(),
            proposed: HashMap::new(),
            reads: HashMap::new(),
            confirmed_reads: BTreeMap::new(),
            next_read: 0,
            read_epoch: (0, 0),
            snapshot_interval: opts.snapshot_interval.max(1),
            keep_entries: opts.keep_entries,
            last_snapshot,
            removed: false,
        })
    }

    /// The store this node applies committed entries to.
    pub fn store(&self) -> Arc<RwLock<Store>> {
        self.store.clone()
    }

    /// Sends cluster events for entries applied from now on, except those
    /// replayed from before a restart (up to the commit index known now).
    pub fn publish_events(&mut self, sink: Arc<dyn shoal_api::event::EventSink>, started: std::time::SystemTime) {
        self.events = Some(Events { sink, replayed_until: self.raw.raft.raft_log.committed, started });
    }

    pub fn tick(&mut self) {
        self.raw.tick();
    }

    pub fn wal_bytes(&self) -> u64 {
        self.storage.wal_bytes()
    }

    pub fn handle(&mut self, input: Input) {
        match input {
            Input::Propose { envelope, reply } => {
                let id = envelope.proposal;
                if self.raw.raft.state != StateRole::Leader {
                    let _ = reply.send(Err(ProposeError::NotLeader));
                    return;
                }
                let data = serde_json::to_vec(&envelope).expect("envelope serialises");
                match self.raw.propose(id.to_le_bytes().to_vec(), data) {
                    Ok(()) => {
                        self.pending.entry(id).or_default().push(reply);
                        self.proposed.insert(id, (envelope, std::time::Instant::now()));
                    }
                    Err(_) => {
                        let _ = reply.send(Err(ProposeError::NotLeader));
                    }
                }
            }
            Input::ConfChange { change, reply } => {
                let id = serde_json::from_slice::<ConfContext>(&change.context).map(|c| c.proposal).unwrap_or(0);
                if self.raw.raft.state != StateRole::Leader {
                    let _ = reply.send(Err(ProposeError::NotLeader));
                    return;
                }
                // raft-rs would take it, then quietly turn it into an empty
                // entry (one change at a time), and its caller would wait
                // for an answer that never comes: refuse it here instead.
                if self.raw.raft.has_pending_conf() {
                    let _ = reply.send(Err(ProposeError::Refused("another membership change is not applied yet".into())));
                    return;
                }
                match self.raw.propose_conf_change(vec![], change) {
                    Ok(()) => {
                        self.pending.entry(id).or_default().push(reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(ProposeError::Refused(e.to_string())));
                    }
                }
            }
            Input::ReadIndex { reply } => {
                if self.raw.raft.leader_id == 0 {
                    let _ = reply.send(Err(ProposeError::NotLeader));
                    return;
                }
                self.next_read += 1;
                self.reads.insert(self.next_read, reply);
                self.raw.read_index(self.next_read.to_le_bytes().to_vec());
            }
            Input::Step(m) => {
                let _ = self.raw.step(*m);
            }
            Input::TransferLeader(to) => self.raw.transfer_leader(to),
            Input::Unreachable(to) => self.raw.report_unreachable(to),
            Input::SnapshotStatus(to, s) => self.raw.report_snapshot(to, s),
            Input::Rekey { key, done } => {
                let _ = done.send(self.storage.rekey(key).map_err(|e| e.to_string()));
            }
            Input::Stop => {}
        }
    }

    pub fn has_ready(&self) -> bool {
        self.raw.has_ready()
    }

    /// Persists, sends and applies what Raft has ready. An error is a
    /// storage failure: the node must stop rather than go on without
    /// durability.
    pub fn ready(&mut self, out: &mut dyn Outbox) -> Result<(), String> {
        let io = |e: std::io::Error| e.to_string();
        let mut ready = self.raw.ready();
        if !ready.messages().is_empty() {
            out.send(ready.take_messages());
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
        self.apply_entries(committed, out)?;
        for rs in ready.take_read_states() {
            self.read_confirmed(&rs.request_ctx, rs.index);
        }
        self.applied(out);
        if !ready.entries().is_empty() {
            self.storage.append(ready.entries()).map_err(io)?;
        }
        if let Some(hs) = ready.hs() {
            self.storage.set_hard_state(hs.clone()).map_err(io)?;
        }
        if !ready.persisted_messages().is_empty() {
            out.send(ready.take_persisted_messages());
        }
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.storage.set_commit(commit).map_err(io)?;
        }
        out.send(light.take_messages());
        let committed = light.take_committed_entries();
        self.apply_entries(committed, out)?;
        self.applied(out);
        self.raw.advance_apply();
        self.maybe_snapshot().map_err(io)
    }

    fn read_confirmed(&mut self, ctx: &[u8], index: u64) {
        let Some(id) = <[u8; 8]>::try_from(ctx).ok().map(u64::from_le_bytes) else { return };
        if let Some(reply) = self.reads.remove(&id) {
            self.confirmed_reads.entry(index).or_default().push(reply);
        }
    }

    /// Publishes the applied index and answers the reads it covers.
    fn applied(&mut self, out: &mut dyn Outbox) {
        let applied = self.store.read().unwrap().applied;
        out.applied(applied);
        let later = self.confirmed_reads.split_off(&(applied + 1));
        for reply in std::mem::replace(&mut self.confirmed_reads, later).into_values().flatten() {
            let _ = reply.send(Ok(serde_json::Value::from(applied)));
        }
    }

    fn apply_entries(&mut self, entries: Vec<Entry>, out: &mut dyn Outbox) -> Result<(), String> {
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
                    if let Some(ev) = &self.events {
                        events.into_iter().for_each(|m| ev.sink.publish(m));
                    }
                    for reply in self.pending.remove(&proposal).unwrap_or_default() {
                        let _ = reply.send(result.clone().map_err(ProposeError::Applied));
                    }
                }
                EntryType::EntryConfChange => {
                    let cc = super::wire::decode_conf_change(&e.data)?;
                    let cs = self.raw.apply_conf_change(&cc).map_err(|e| format!("conf change: {e}"))?;
                    if self.raw.raft.state == StateRole::Leader && !cs.voters.contains(&self.raw.raft.id) {
                        // A leader that applied its own removal (a change an
                        // earlier leader proposed, committed under this one):
                        // raft-rs 0.7 leaves it leading, and then panics on
                        // the next append answer (`maybe_commit` unwraps its
                        // own progress). It steps down here, as etcd's raft
                        // means to (found by `sim_tests`).
                        let term = self.raw.raft.term;
                        self.raw.raft.become_follower(term, ::raft::INVALID_ID);
                    }
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
                            out.remove_peer(cc.node_id);
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
        self.events.as_ref().is_some_and(|ev| {
            index > ev.replayed_until
                && shoal_api::time::parse_rfc3339(at).is_none_or(|t| t + std::time::Duration::from_secs(1) >= ev.started)
        })
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

    /// Answers every waiting proposer and reader with "no leader" (they
    /// retry elsewhere); what was proposed may still commit, once.
    pub fn fail_pending(&mut self) {
        self.proposed.clear();
        for r in self.pending.drain().flat_map(|(_, rs)| rs) {
            let _ = r.send(Err(ProposeError::NotLeader));
        }
        self.fail_reads();
    }

    fn fail_reads(&mut self) {
        self.fail_unconfirmed_reads();
        for r in std::mem::take(&mut self.confirmed_reads).into_values().flatten() {
            let _ = r.send(Err(ProposeError::NotLeader));
        }
    }

    /// Reads still waiting for Raft to confirm their index.
    fn fail_unconfirmed_reads(&mut self) {
        for (_, r) in self.reads.drain() {
            let _ = r.send(Err(ProposeError::NotLeader));
        }
    }

    /// What the rest of the manager may know, after a step. A leader that
    /// lost its leadership fails its waiting proposers (what they proposed
    /// may never commit; they retry through the new leader), and a change
    /// of leader or term fails waiting reads (Raft may have dropped them).
    pub fn status(&mut self) -> Status {
        let r = &self.raw.raft;
        let is_leader = r.state == StateRole::Leader;
        if !is_leader && !self.pending.is_empty() && r.leader_id != r.id {
            self.fail_pending();
        }
        let r = &self.raw.raft;
        let epoch = (r.term, r.leader_id);
        if epoch != self.read_epoch {
            self.read_epoch = epoch;
            // Confirmed reads stand (their index was confirmed by a quorum);
            // unconfirmed ones may have been dropped with the old leader.
            self.fail_unconfirmed_reads();
        }
        let r = &self.raw.raft;
        let last = r.raft_log.last_index();
        let up_to_date =
            if is_leader { r.prs().iter().filter(|(_, p)| p.matched == last).map(|(id, _)| *id).collect() } else { Vec::new() };
        let mut voters: Vec<u64> = r.prs().conf().voters().ids().iter().collect();
        voters.sort_unstable();
        Status { id: r.id, leader: r.leader_id, term: r.term, is_leader, voters, removed: self.removed, up_to_date }
    }

    /// Entries in the log (for `swarm_raft_log_entries`).
    pub fn log_entries(&self) -> u64 {
        let log = &self.raw.raft.raft_log;
        (log.last_index() + 1).saturating_sub(log.first_index())
    }
}
