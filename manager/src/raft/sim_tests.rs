//! A deterministic simulation of a three-manager cluster: real `Core`s over
//! real `DiskStorage` (in a temporary directory), a simulated network that
//! delays, drops, duplicates and partitions Raft messages, managers killed
//! (their in-memory state lost) and started again from disk, members
//! replaced (one removed, the leader too at times, and a new one with a
//! new Raft ID added, as `swarm leave` and `swarm join` do), and clients
//! that create uniquely named configs and read through Raft's ReadIndex.
//!
//! Everything that varies comes from one seed: message delays and losses,
//! tick jitter, faults, client choices and proposal IDs. Raft's own random
//! election timeout is pinned (`min == max - 1`), so a seed replays exactly;
//! tick jitter is what breaks ties between candidates instead. A failure
//! names its seed: `SHOAL_SIM_SEED=<n> SHOAL_SIM_SEEDS=1 cargo test -p
//! shoal-manager sim_tests` replays it.
//!
//! Checked for every seed:
//! - no client is told its own create conflicts (a write applied twice),
//!   and no other error than "no leader" reaches a client;
//! - every read sees every write acknowledged before the read began, and
//!   sees no less than any read that ended before it began (a grow-only set
//!   read linearizably);
//! - once the faults stop, every member's store is the same, and holds
//!   every write any client made, each exactly once (clients retry with the
//!   same proposal ID until they are answered).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::path::PathBuf;

use ::raft::eraftpb::{ConfChangeType, Message, MessageType};
use ::raft::{Config, SnapshotStatus};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shoal_rpc::RaftMember;
use tokio::sync::oneshot;

use super::core::{Answer, Core, Input, OpenOptions, Outbox, ProposeError};
use super::node::{membership_change, raft_config};
use crate::store::{Command, Envelope};

/// The members at any time (a replacement removes one, then adds one).
const NODES: u64 = 3;
/// Simulated milliseconds per Raft tick (as `node::TICK`).
const TICK_MS: u64 = 100;
/// Faults are injected for this long, then the cluster must settle.
const CHAOS_MS: u64 = 20_000;
const SETTLE_MS: u64 = 30_000;
const CLIENTS: usize = 3;
/// A client gives up on an attempt after this long and tries again.
const ATTEMPT_MS: u64 = 2_000;

#[derive(Clone, Copy)]
struct Faults {
    drop: f64,
    duplicate: f64,
    max_delay_ms: u64,
    /// A lost answer: the write was applied, the client retries it.
    lost_reply: f64,
    partitions: bool,
    kills: bool,
}

const CHAOS: Faults = Faults { drop: 0.05, duplicate: 0.03, max_delay_ms: 40, lost_reply: 0.1, partitions: true, kills: true };
const CALM: Faults = Faults { drop: 0.0, duplicate: 0.0, max_delay_ms: 5, lost_reply: 0.0, partitions: false, kills: false };

enum Event {
    Deliver {
        to: u64,
        msg: Box<Message>,
    },
    Tick(u64),
    Client(usize),
    Kill,
    Restart(u64),
    Partition,
    Heal,
    /// A step of replacing a member (see `Replacing`).
    Replace,
}

/// Where a member's replacement stands.
#[derive(Clone, Copy, Debug)]
enum Replacing {
    Idle,
    /// `victim` is being removed; then `new` is added.
    Removing {
        victim: u64,
        new: u64,
    },
    Adding {
        new: u64,
    },
}

/// What a client is doing.
enum Op {
    Idle,
    Write { name: String, envelope: Box<Envelope>, invoked: u64, attempt: Option<Attempt> },
    Read { started: u64, node: u64, attempt: Attempt },
}

struct Attempt {
    rx: oneshot::Receiver<Answer>,
    deadline: u64,
}

struct Write {
    name: String,
    acked: Option<u64>,
}

struct Read {
    started: u64,
    ended: u64,
    names: BTreeSet<String>,
}

struct Node {
    dir: PathBuf,
    core: Option<Core>,
    /// The side of the partition it is on (all 0: no partition).
    side: u8,
    /// Removed from the membership: never started again.
    removed: bool,
}

/// Collects a core's messages for the simulated network.
#[derive(Default)]
struct Collect(Vec<Message>);

impl Outbox for Collect {
    fn send(&mut self, msgs: Vec<Message>) {
        self.0.extend(msgs);
    }
    fn remove_peer(&mut self, _: u64) {}
    fn applied(&mut self, _: u64) {}
}

struct Sim {
    seed: u64,
    rng: StdRng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: HashMap<u64, Event>,
    faults: Faults,
    /// By Raft ID: the members, and the members removed.
    nodes: BTreeMap<u64, Node>,
    replacing: Replacing,
    /// A membership change proposed and not answered yet.
    change: Option<oneshot::Receiver<Answer>>,
    next_id: u64,
    clients: Vec<Op>,
    next_op: u64,
    writes: Vec<Write>,
    reads: Vec<Read>,
    violations: Vec<String>,
    stats: Stats,
    _tmp: tempfile::TempDir,
}

fn member(id: u64) -> RaftMember {
    RaftMember { raft_id: id, node_id: format!("node{id}"), addr: format!("192.0.2.{id}:2377") }
}

/// Production's Raft settings, but with the election timeout pinned, so the
/// seed alone decides the run.
fn config(id: u64) -> Config {
    let base = raft_config();
    Config { id, min_election_tick: base.election_tick, max_election_tick: base.election_tick + 1, ..base }
}

impl Sim {
    fn new(seed: u64) -> Sim {
        // tmpfs where there is one: the WAL's fsyncs are real but cheap.
        let shm = std::path::Path::new("/dev/shm");
        let tmp = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.expect("temp dir");
        let nodes =
            (1..=NODES).map(|id| (id, Node { dir: tmp.path().join(format!("n{id}")), core: None, side: 0, removed: false })).collect();
        let mut sim = Sim {
            seed,
            rng: StdRng::seed_from_u64(seed),
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            faults: CALM,
            nodes,
            replacing: Replacing::Idle,
            change: None,
            next_id: NODES + 1,
            clients: (0..CLIENTS).map(|_| Op::Idle).collect(),
            next_op: 0,
            writes: Vec::new(),
            reads: Vec::new(),
            violations: Vec::new(),
            stats: Stats::default(),
            _tmp: tmp,
        };
        for id in 1..=NODES {
            sim.start(id);
            let jitter = sim.rng.gen_range(0..TICK_MS);
            sim.at(jitter, Event::Tick(id));
        }
        sim
    }

    fn at(&mut self, delay: u64, e: Event) {
        self.seq += 1;
        self.queue.push(Reverse((self.now + delay, self.seq)));
        self.events.insert(self.seq, e);
    }

    fn start(&mut self, id: u64) {
        let founder = member(1);
        let node = self.nodes.get_mut(&id).expect("a known node");
        let opts = OpenOptions {
            dir: &node.dir,
            wal_key: None,
            bootstrap: (id == 1).then_some(&founder),
            config: config(id),
            // Small, so snapshots, compaction and snapshot transfers happen.
            snapshot_interval: 25,
            keep_entries: 5,
        };
        node.core = Some(Core::open(opts).unwrap_or_else(|e| panic!("seed {}: node {id} does not open: {e}", self.seed)));
    }

    fn core(&mut self, id: u64) -> Option<&mut Core> {
        self.nodes.get_mut(&id)?.core.as_mut()
    }

    fn alive(&self, id: u64) -> bool {
        self.nodes.get(&id).is_some_and(|n| n.core.is_some())
    }

    /// The nodes not removed from the membership (alive or not).
    fn members(&self) -> Vec<u64> {
        self.nodes.iter().filter(|(_, n)| !n.removed).map(|(id, _)| *id).collect()
    }

    fn side(&self, id: u64) -> u8 {
        self.nodes.get(&id).map(|n| n.side).unwrap_or(0)
    }

    fn leader(&mut self) -> Option<u64> {
        self.members().into_iter().find(|id| self.core(*id).map(|c| c.status().is_leader).unwrap_or(false))
    }

    fn any_member(&mut self) -> u64 {
        let members = self.members();
        members[self.rng.gen_range(0..members.len())]
    }

    /// Runs until `until` (simulated ms), handling events in time order.
    fn run(&mut self, until: u64) {
        while let Some(Reverse((t, seq))) = self.queue.peek().copied() {
            if t > until {
                break;
            }
            self.queue.pop();
            self.now = t;
            let e = self.events.remove(&seq).expect("queued event");
            self.handle(e);
            self.flush();
            self.poll_clients();
        }
        self.now = until;
    }

    fn handle(&mut self, e: Event) {
        match e {
            Event::Tick(id) => {
                if self.nodes[&id].removed {
                    return;
                }
                if let Some(c) = self.core(id) {
                    c.tick();
                }
                let jitter = self.rng.gen_range(0..=20);
                self.at(TICK_MS - 10 + jitter, Event::Tick(id));
            }
            Event::Deliver { to, msg } => {
                let from = msg.from;
                if !self.alive(to) || self.side(to) != self.side(from) {
                    return self.undelivered(from, to, &msg);
                }
                if msg.get_msg_type() == MessageType::MsgSnapshot {
                    if let Some(c) = self.core(from) {
                        c.handle(Input::SnapshotStatus(to, SnapshotStatus::Finish));
                    }
                }
                if let Some(c) = self.core(to) {
                    c.handle(Input::Step(msg));
                }
            }
            Event::Client(i) => self.client_step(i),
            Event::Replace => self.replace_step(),
            Event::Kill => {
                if self.faults.kills {
                    let down = self.members().into_iter().filter(|id| !self.alive(*id)).count();
                    if down == 0 {
                        let victim = match self.leader() {
                            Some(l) if self.rng.gen_bool(0.6) => l,
                            _ => self.any_member(),
                        };
                        // Everything in memory goes: unsent messages, waiting
                        // proposers (their channels close), the store.
                        self.nodes.get_mut(&victim).expect("a member").core = None;
                        self.stats.kills += 1;
                        let down_for = self.rng.gen_range(300..3_000);
                        self.at(down_for, Event::Restart(victim));
                    }
                    let next = self.rng.gen_range(1_000..4_000);
                    self.at(next, Event::Kill);
                }
            }
            Event::Restart(id) => {
                if !self.alive(id) && !self.nodes[&id].removed {
                    self.start(id);
                }
            }
            Event::Partition => {
                if self.faults.partitions {
                    // One node alone (often the leader) against the others.
                    let alone = match self.leader() {
                        Some(l) if self.rng.gen_bool(0.5) => l,
                        _ => self.any_member(),
                    };
                    for (id, n) in self.nodes.iter_mut() {
                        n.side = u8::from(*id == alone);
                    }
                    self.stats.partitions += 1;
                    let lasts = self.rng.gen_range(500..4_000);
                    self.at(lasts, Event::Heal);
                }
            }
            Event::Heal => {
                self.heal();
                if self.faults.partitions {
                    let next = self.rng.gen_range(1_000..5_000);
                    self.at(next, Event::Partition);
                }
            }
        }
    }

    fn heal(&mut self) {
        for n in self.nodes.values_mut() {
            n.side = 0;
        }
    }

    /// One step of replacing a member, as an operator would with `swarm
    /// leave` and `join`: remove one (the leader at times), and once the
    /// leader's configuration no longer has it, stop it for good and add a
    /// new node with a new Raft ID and an empty disk. A change is proposed
    /// again when its answer says it did not take (no leader, refused).
    fn replace_step(&mut self) {
        if let Some(rx) = &mut self.change {
            match rx.try_recv() {
                Err(oneshot::error::TryRecvError::Empty) => {}
                _ => self.change = None,
            }
        }
        let voters = self.leader().and_then(|l| self.core(l)).map(|c| c.status().voters);
        match (self.replacing, voters) {
            // A new replacement only while faults run; one under way is
            // finished after them too.
            (Replacing::Idle, _) if !self.faults.kills => return,
            (Replacing::Idle, Some(_)) => {
                if self.rng.gen_bool(0.05) {
                    let victim = match self.leader() {
                        Some(l) if self.rng.gen_bool(0.3) => l,
                        _ => self.any_member(),
                    };
                    let new = self.next_id;
                    self.next_id += 1;
                    self.replacing = Replacing::Removing { victim, new };
                }
            }
            (Replacing::Removing { victim, new }, Some(voters)) if !voters.contains(&victim) => {
                let node = self.nodes.get_mut(&victim).expect("a known node");
                node.core = None;
                node.removed = true;
                let dir = self._tmp.path().join(format!("n{new}"));
                self.nodes.insert(new, Node { dir, core: None, side: 0, removed: false });
                self.start(new);
                let jitter = self.rng.gen_range(0..TICK_MS);
                self.at(jitter, Event::Tick(new));
                self.stats.replacements += 1;
                self.replacing = Replacing::Adding { new };
            }
            (Replacing::Removing { victim, .. }, Some(_)) => self.propose_change(ConfChangeType::RemoveNode, victim),
            (Replacing::Adding { new }, Some(voters)) if voters.contains(&new) => self.replacing = Replacing::Idle,
            (Replacing::Adding { new }, Some(_)) => self.propose_change(ConfChangeType::AddNode, new),
            (_, None) => {}
        }
        let next = self.rng.gen_range(100..300);
        self.at(next, Event::Replace);
    }

    /// Proposes a membership change at the leader, as `Cluster::remove_member`
    /// does: a leader never proposes its own removal, it hands leadership
    /// to an up-to-date voter first.
    fn propose_change(&mut self, kind: ConfChangeType, id: u64) {
        if self.change.is_some() {
            return;
        }
        let Some(leader) = self.leader() else { return };
        if kind == ConfChangeType::RemoveNode && id == leader {
            let core = self.core(leader).expect("the leader");
            if let Some(to) = core.status().up_to_date.into_iter().find(|v| *v != leader) {
                core.handle(Input::TransferLeader(to));
            }
            return;
        }
        let proposal = self.rng.gen::<u64>().max(1);
        let (reply, rx) = oneshot::channel();
        self.core(leader).expect("the leader").handle(Input::ConfChange { change: membership_change(kind, member(id), proposal), reply });
        self.change = Some(rx);
    }

    /// A message that could not arrive: the sender learns it as a broken
    /// connection, as the transport reports it.
    fn undelivered(&mut self, from: u64, to: u64, msg: &Message) {
        let snapshot = msg.get_msg_type() == MessageType::MsgSnapshot;
        if let Some(c) = self.core(from) {
            c.handle(Input::Unreachable(to));
            if snapshot {
                c.handle(Input::SnapshotStatus(to, SnapshotStatus::Failure));
            }
        }
    }

    /// Lets every live core persist, apply and send what it has ready, and
    /// puts its messages on the network.
    fn flush(&mut self) {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in ids {
            let Some(core) = self.nodes.get_mut(&id).and_then(|n| n.core.as_mut()) else { continue };
            let mut out = Collect::default();
            while core.has_ready() {
                if let Err(e) = core.ready(&mut out) {
                    panic!("seed {}: node {id} storage failed: {e}", self.seed);
                }
            }
            // Waiting proposers of a deposed leader are answered here.
            core.status();
            for msg in out.0 {
                self.transmit(msg);
            }
        }
    }

    fn transmit(&mut self, msg: Message) {
        let (from, to) = (msg.from, msg.to);
        if self.rng.gen_bool(self.faults.drop) {
            if msg.get_msg_type() == MessageType::MsgSnapshot {
                self.undelivered(from, to, &msg);
            }
            return;
        }
        let copies = if self.rng.gen_bool(self.faults.duplicate) { 2 } else { 1 };
        for _ in 0..copies {
            let delay = self.rng.gen_range(1..=self.faults.max_delay_ms);
            self.at(delay, Event::Deliver { to, msg: Box::new(msg.clone()) });
        }
    }

    /// The node a client sends to: often the one some manager names as the
    /// leader (as a follower would forward it), else any.
    fn pick_node(&mut self) -> u64 {
        let asked = self.any_member();
        if self.rng.gen_bool(0.5) {
            if let Some(leader) = self.core(asked).map(|c| c.status().leader).filter(|l| *l != 0) {
                return leader;
            }
        }
        asked
    }

    fn client_step(&mut self, i: usize) {
        let op = std::mem::replace(&mut self.clients[i], Op::Idle);
        self.clients[i] = match op {
            Op::Idle if self.faults.kills || self.faults.partitions => self.new_op(i),
            Op::Idle => Op::Idle,
            Op::Write { name, envelope, invoked, attempt: None } => {
                self.stats.retries += 1;
                if self.applied_anywhere(envelope.proposal) {
                    self.stats.retries_after_apply += 1;
                }
                let attempt = self.propose(&envelope);
                Op::Write { name, envelope, invoked, attempt }
            }
            // Answers arrive in `poll_clients`; a wake-up with an attempt
            // under way checks its deadline.
            op => op,
        };
        if let Op::Write { attempt: None, .. } = self.clients[i] {
            self.at(50, Event::Client(i));
        }
    }

    fn new_op(&mut self, i: usize) -> Op {
        self.next_op += 1;
        if self.rng.gen_bool(0.7) {
            let name = format!("c{i}-op{}", self.next_op);
            let config = shoal_api::secret::Config {
                id: format!("cfg{}", self.next_op),
                spec: shoal_api::secret::ConfigSpec { name: name.clone(), ..Default::default() },
                ..Default::default()
            };
            let envelope = Box::new(Envelope {
                proposal: self.rng.gen::<u64>().max(1),
                at: "2026-12-05T00:00:00Z".into(),
                command: Command::CreateConfig { config: Box::new(config) },
            });
            self.writes.push(Write { name: name.clone(), acked: None });
            let attempt = self.propose(&envelope);
            Op::Write { name, envelope, invoked: self.now, attempt }
        } else {
            let node = self.pick_node();
            let (reply, rx) = oneshot::channel();
            match self.core(node) {
                Some(c) => c.handle(Input::ReadIndex { reply }),
                None => drop(reply),
            }
            Op::Read { started: self.now, node, attempt: Attempt { rx, deadline: self.now + ATTEMPT_MS } }
        }
    }

    fn applied_anywhere(&mut self, proposal: u64) -> bool {
        self.nodes.values().any(|n| n.core.as_ref().is_some_and(|c| c.store().read().unwrap().recent.get(proposal).is_some()))
    }

    /// Sends a write to a node; `None` when no node took it (tried again
    /// shortly, with the same proposal ID).
    fn propose(&mut self, envelope: &Envelope) -> Option<Attempt> {
        let node = self.pick_node();
        let (reply, rx) = oneshot::channel();
        self.core(node)?.handle(Input::Propose { envelope: envelope.clone(), reply });
        Some(Attempt { rx, deadline: self.now + ATTEMPT_MS })
    }

    fn wake_soon(&mut self, client: usize, within: std::ops::Range<u64>) {
        let delay = self.rng.gen_range(within);
        self.at(delay, Event::Client(client));
    }

    fn poll_clients(&mut self) {
        for i in 0..CLIENTS {
            let op = std::mem::replace(&mut self.clients[i], Op::Idle);
            self.clients[i] = self.poll_op(i, op);
        }
    }

    fn poll_op(&mut self, i: usize, op: Op) -> Op {
        match op {
            Op::Write { name, envelope, invoked, attempt: Some(mut a) } => match a.rx.try_recv() {
                Err(oneshot::error::TryRecvError::Empty) if self.now < a.deadline => {
                    Op::Write { name, envelope, invoked, attempt: Some(a) }
                }
                Ok(Ok(_)) if !self.rng.gen_bool(self.faults.lost_reply) => {
                    let w = self.writes.iter_mut().find(|w| w.name == name).expect("recorded write");
                    w.acked = Some(self.now);
                    let think = self.rng.gen_range(20..300);
                    self.at(think, Event::Client(i));
                    Op::Idle
                }
                Ok(Err(ProposeError::Applied(e))) => {
                    self.violations.push(format!("write {name} (invoked at {invoked} ms) answered {e:?}"));
                    Op::Idle
                }
                // No leader, a closed channel (the manager died), a lost
                // answer or the deadline: the outcome is unknown, so the
                // same proposal goes again.
                _ => {
                    self.wake_soon(i, 10..100);
                    Op::Write { name, envelope, invoked, attempt: None }
                }
            },
            Op::Read { started, node, mut attempt } => match attempt.rx.try_recv() {
                Err(oneshot::error::TryRecvError::Empty) if self.now < attempt.deadline => Op::Read { started, node, attempt },
                Ok(Ok(_)) => {
                    let names = match self.core(node) {
                        Some(c) => c.store().read().unwrap().configs.values().map(|c| c.spec.name.clone()).collect(),
                        None => BTreeSet::new(),
                    };
                    self.reads.push(Read { started, ended: self.now, names });
                    self.wake_soon(i, 20..300);
                    Op::Idle
                }
                _ => {
                    self.wake_soon(i, 10..100);
                    Op::Idle
                }
            },
            op => op,
        }
    }

    /// The founder elects itself, then the others join through membership
    /// changes, as `swarm join` adds managers.
    fn form_cluster(&mut self) {
        self.run_until(5_000, |s| s.leader() == Some(1), "the founder to lead");
        for id in 2..=NODES {
            let (reply, mut rx) = oneshot::channel();
            let change = membership_change(ConfChangeType::AddNode, member(id), 1_000 + id);
            self.core(1).expect("founder").handle(Input::ConfChange { change, reply });
            self.run_until(self.now + 5_000, |_| matches!(rx.try_recv(), Ok(Ok(_))), "a member to be added");
        }
    }

    fn run_until(&mut self, until: u64, mut done: impl FnMut(&mut Sim) -> bool, what: &str) {
        while self.now < until {
            if done(self) {
                return;
            }
            let next = self.now + 10;
            self.run(next);
        }
        let state = self.describe();
        panic!("seed {}: timed out waiting for {what} at {} ms\n{state}", self.seed, self.now);
    }

    /// The cluster as each node sees it, for a failure's message.
    fn describe(&mut self) -> String {
        let mut out = format!("replacing: {:?}, change pending: {}\n", self.replacing, self.change.is_some());
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in ids {
            let removed = self.nodes[&id].removed;
            let line = match self.core(id) {
                Some(c) => {
                    let s = c.status();
                    let applied = c.store().read().unwrap().applied;
                    format!("node {id}: leader {} term {} voters {:?} applied {applied} removed {}", s.leader, s.term, s.voters, s.removed)
                }
                None => format!("node {id}: down (removed from the membership: {removed})"),
            };
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    fn chaos(&mut self) {
        self.faults = CHAOS;
        let kill = self.rng.gen_range(500..2_000);
        self.at(kill, Event::Kill);
        let split = self.rng.gen_range(500..3_000);
        self.at(split, Event::Partition);
        let replace = self.rng.gen_range(500..3_000);
        self.at(replace, Event::Replace);
        for i in 0..CLIENTS {
            self.at(i as u64 * 7, Event::Client(i));
        }
        self.run(self.now + CHAOS_MS);
    }

    /// Faults stop, the dead come back, clients finish what they started;
    /// then every manager must hold the same store.
    fn settle(&mut self) {
        self.faults = CALM;
        self.heal();
        for id in self.members() {
            if !self.alive(id) {
                self.start(id);
            }
        }
        let until = self.now + SETTLE_MS;
        // A replacement under way is finished (without new ones).
        self.run_until(until, Sim::replaced, "a member's replacement to finish");
        self.run_until(until, |s| s.clients.iter().all(|c| matches!(c, Op::Idle)), "clients to be answered");
        self.run_until(until, Sim::converged, "the managers to converge");
    }

    /// No replacement is under way.
    fn replaced(&mut self) -> bool {
        matches!(self.replacing, Replacing::Idle)
    }

    /// Every member applied what the leader applied, and the leader's
    /// configuration is exactly the members.
    fn converged(&mut self) -> bool {
        let members = self.members();
        let applied: Vec<u64> = members.iter().map(|id| self.core(*id).expect("alive").store().read().unwrap().applied).collect();
        let Some(leader) = self.leader() else { return false };
        let core = self.core(leader).expect("the leader");
        let (committed, voters) = (core.store().read().unwrap().applied, core.status().voters);
        voters == members && applied.iter().all(|a| *a == committed)
    }

    fn check(&mut self) {
        // Every manager's store, compared as JSON (maps in any order).
        let members = self.members();
        let stores: Vec<(u64, serde_json::Value)> = members
            .iter()
            .map(|id| {
                (*id, serde_json::from_slice(&self.core(*id).expect("alive").store().read().unwrap().to_bytes()).expect("store json"))
            })
            .collect();
        for (id, s) in stores.iter().skip(1) {
            if *s != stores[0].1 {
                self.violations.push(format!("node {id} and node {} hold different stores", stores[0].0));
            }
        }
        let store = self.core(members[0]).expect("alive").store();
        let st = store.read().unwrap();
        let mut count: HashMap<&str, usize> = HashMap::new();
        for c in st.configs.values() {
            *count.entry(c.spec.name.as_str()).or_default() += 1;
        }
        for w in &self.writes {
            match count.get(w.name.as_str()) {
                Some(1) => {}
                Some(n) => self.violations.push(format!("write {} is in the store {n} times", w.name)),
                None => self.violations.push(format!("write {} (acknowledged: {:?}) is lost", w.name, w.acked)),
            }
        }
        if count.len() != self.writes.len() {
            self.violations.push(format!("{} configs in the store for {} writes", count.len(), self.writes.len()));
        }
        for r in &self.reads {
            for w in &self.writes {
                if w.acked.is_some_and(|a| a < r.started) && !r.names.contains(&w.name) {
                    self.violations
                        .push(format!("a read from {} to {} ms misses {}, acknowledged at {:?}", r.started, r.ended, w.name, w.acked));
                }
            }
            for earlier in self.reads.iter().filter(|e| e.ended < r.started) {
                if let Some(gone) = earlier.names.difference(&r.names).next() {
                    self.violations.push(format!(
                        "a read from {} to {} ms misses {gone}, seen by a read that ended at {} ms",
                        r.started, r.ended, earlier.ended
                    ));
                }
            }
        }
    }
}

/// What the faults did, so a run shows they happened.
#[derive(Clone, Copy, Default, Debug)]
struct Stats {
    writes: usize,
    reads: usize,
    kills: usize,
    partitions: usize,
    /// Members removed and replaced by a new one.
    replacements: usize,
    /// Write attempts made again with the same proposal ID.
    retries: usize,
    /// Of those, the ones whose first attempt had already been applied.
    retries_after_apply: usize,
    terms: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.writes += o.writes;
        self.reads += o.reads;
        self.kills += o.kills;
        self.partitions += o.partitions;
        self.replacements += o.replacements;
        self.retries += o.retries;
        self.retries_after_apply += o.retries_after_apply;
        self.terms += o.terms;
    }
}

fn run_seed(seed: u64) -> Result<Stats, String> {
    let mut sim = Sim::new(seed);
    sim.form_cluster();
    sim.chaos();
    sim.settle();
    sim.check();
    if sim.violations.is_empty() {
        let term = sim.members().into_iter().filter_map(|id| sim.core(id).map(|c| c.status().term)).max().unwrap_or(0);
        Ok(Stats { writes: sim.writes.len(), reads: sim.reads.len(), terms: term, ..sim.stats })
    } else {
        Err(format!("seed {seed}:\n  {}", sim.violations.join("\n  ")))
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn no_acknowledged_write_is_lost_or_applied_twice_and_reads_are_linearizable() {
    let first = env("SHOAL_SIM_SEED", 1);
    let seeds = env("SHOAL_SIM_SEEDS", 300);
    let started = std::time::Instant::now();
    let mut total = Stats::default();
    let mut failures = Vec::new();
    for seed in first..first + seeds {
        // A panic (in raft-rs, say) fails the seed, named, not the run.
        match std::panic::catch_unwind(|| run_seed(seed)) {
            Ok(Ok(s)) => total += s,
            Ok(Err(e)) => failures.push(e),
            Err(p) => {
                let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
                failures.push(format!("seed {seed}: panicked: {}", msg.unwrap_or_default()));
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!("raft simulation: {seeds} seeds from {first} in {secs:.1} s ({:.1} seeds/s): {total:?}", seeds as f64 / secs);
    assert!(failures.is_empty(), "{} of {seeds} seeds failed:\n{}", failures.len(), failures.join("\n"));
    let t = total;
    assert!(
        t.writes > 0 && t.reads > 0 && t.kills > 0 && t.partitions > 0 && t.replacements > 0,
        "faults or clients did not happen: {t:?}"
    );
    assert!(t.retries_after_apply > 0, "no write was retried after it had been applied: the check proves nothing");
}

/// Seeds that found bugs, run in every CI (822 and 1815 beyond the
/// default range): 822 and 1815 had a leader apply its own removal and
/// raft-rs panic on the next append answer; 55 has a membership change
/// raft-rs dropped quietly while another was pending, its proposer never
/// answered (seed 35 found it with an earlier version of this simulation).
#[test]
fn the_seeds_that_found_bugs_pass() {
    for seed in [55, 822, 1815] {
        if let Err(e) = run_seed(seed) {
            panic!("{e}");
        }
    }
}

#[test]
fn a_seed_replays_exactly() {
    let digest = |seed| {
        let mut sim = Sim::new(seed);
        sim.form_cluster();
        sim.chaos();
        let names: Vec<String> = sim.writes.iter().map(|w| format!("{}@{:?}", w.name, w.acked)).collect();
        (names, sim.reads.len(), sim.now)
    };
    assert_eq!(digest(7), digest(7));
}
