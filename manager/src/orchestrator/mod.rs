//! Orchestrators: pure functions from a store snapshot to the task changes
//! that bring each service to its desired shape. `run` applies them on the
//! leader. Replicated services own slots 1..=replicas; global services own
//! one task per eligible node.
//!
//! A changed spec rolls out through `update` (parallelism, delay, order,
//! failure action, monitor). The restart supervisor (`restart_due`) applies
//! the restart policy to tasks that ended.

mod global;
mod jobs;
mod replicated;
pub mod update;
#[cfg(test)]
mod update_tests;

use std::time::Duration;

use shoal_api::service::Service;
use shoal_api::task::{Task, TaskState, TaskStatus};

use crate::cluster::Cluster;
use crate::store::{Command, Store};

/// What one reconciliation wants written.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    pub put: Vec<Task>,
    pub delete: Vec<String>,
    /// Services' update progress (`UpdateStatus`), and automatic rollbacks.
    pub services: Vec<update::StatusChange>,
}

/// Task writes per Raft entry: a pass over 100k tasks becomes 100 entries
/// of ~350 KB proposed together, not one 35 MB entry.
pub const TASKS_PER_ENTRY: usize = 1000;

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.put.is_empty() && self.delete.is_empty() && self.services.is_empty()
    }

    /// The step's writes as versioned intents (see `Command::TaskIntents`),
    /// at most `TASKS_PER_ENTRY` task writes an entry.
    pub fn into_commands(self) -> Vec<Command> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut put = self.put.into_iter().peekable();
        let mut delete = self.delete;
        let mut services = self.services;
        let mut out = Vec::new();
        loop {
            let room = TASKS_PER_ENTRY.saturating_sub(delete.len().min(TASKS_PER_ENTRY));
            let chunk: Vec<Task> = put.by_ref().take(room.max(1)).collect();
            let del: Vec<String> = delete.drain(..delete.len().min(TASKS_PER_ENTRY)).collect();
            out.push(Command::TaskIntents { delete: del, put: chunk, services: std::mem::take(&mut services) });
            if put.peek().is_none() && delete.is_empty() {
                return out;
            }
        }
    }

    /// Stops a task: never-placed tasks are deleted, others told to shut down.
    fn shut_down(&mut self, t: &Task) {
        if t.status.state < TaskState::Assigned {
            self.delete.push(t.id.clone());
        } else if t.desired_state < TaskState::Shutdown {
            let mut t = t.clone();
            t.desired_state = TaskState::Shutdown;
            self.put.push(t);
        }
    }
}

pub fn reconcile(st: &Store, now: &str) -> Changes {
    let mut changes = Changes::default();
    reap_history(st, &mut changes);
    for svc in st.services.values() {
        let tasks: Vec<&Task> = st.tasks.values().filter(|t| t.service_id == svc.id).collect();
        if svc.spec.mode.is_job() {
            jobs::reconcile(st, svc, &tasks, now, &mut changes);
        } else if svc.spec.mode.is_global() {
            global::reconcile(st, svc, &tasks, now, &mut changes);
        } else {
            replicated::reconcile(st, svc, &tasks, now, &mut changes);
        }
    }
    changes
}

/// The task reaper: keeps at most the cluster's task history limit of
/// retired tasks per slot (or per node for global services), dropping the
/// oldest that are finished or never accepted by a node.
fn reap_history(st: &Store, changes: &mut Changes) {
    let limit = st.cluster.as_ref().map(|c| c.swarm.spec.orchestration.task_history_retention_limit).unwrap_or(5).max(0) as usize;
    let mut retired: std::collections::BTreeMap<(&str, u64, &str), Vec<&Task>> = Default::default();
    // A node that is gone, or down, will not report its tasks stopped.
    let unreachable = |t: &Task| st.nodes.get(&t.node_id).map(|n| n.status.state == shoal_api::NodeState::Down).unwrap_or(true);
    // A network attachment whose node left the swarm: its container's
    // node will never give it back.
    for t in st.tasks.values().filter(|t| t.spec.is_attachment() && !st.nodes.contains_key(&t.node_id)) {
        changes.delete.push(t.id.clone());
    }
    for t in st.tasks.values().filter(|t| t.desired_state > TaskState::Running && !t.spec.is_attachment()) {
        // Tasks of removed services go once their node reports them ended
        // (or cannot: a node that comes back stops what it no longer has).
        if !st.services.contains_key(&t.service_id) {
            if t.status.state.is_terminal() || t.status.state <= TaskState::Assigned || unreachable(t) {
                changes.delete.push(t.id.clone());
            }
            continue;
        }
        let node = if t.slot == 0 { t.node_id.as_str() } else { "" };
        retired.entry((t.service_id.as_str(), t.slot, node)).or_default().push(t);
    }
    for ((service_id, _, _), mut tasks) in retired {
        // The restart supervisor counts a slot's attempts from its history,
        // so a slot keeps at least `MaxAttempts` retired tasks.
        let attempts = st.services[service_id].spec.task_template.restart_policy.as_ref().and_then(|p| p.max_attempts).unwrap_or(0);
        let limit = limit.max(attempts as usize);
        if tasks.len() <= limit {
            continue;
        }
        tasks.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        let excess = tasks.len() - limit;
        let reapable =
            |t: &&Task| t.status.state <= TaskState::Assigned || t.status.state.is_terminal() || !st.nodes.contains_key(&t.node_id);
        for t in tasks.into_iter().filter(reapable).take(excess) {
            changes.delete.push(t.id.clone());
        }
    }
}

/// A fresh task of `svc`, waiting for the scheduler.
fn new_task(svc: &Service, slot: u64, node_id: &str, now: &str) -> Task {
    // A task on networks waits in `new` for the allocator to give it its
    // addresses (then `pending`, for the scheduler); others go straight to
    // the scheduler.
    let on_networks = !svc.spec.task_template.networks.is_empty() || crate::allocator::needs_ingress(&svc.spec);
    let (state, message) = if on_networks { (TaskState::New, "created") } else { (TaskState::Pending, "pending task scheduling") };
    Task {
        id: shoal_api::id::new_id(),
        service_id: svc.id.clone(),
        slot,
        node_id: node_id.to_string(),
        spec: svc.spec.task_template.clone(),
        labels: Default::default(),
        desired_state: TaskState::Running,
        status: TaskStatus { timestamp: now.to_string(), state, message: message.into(), ..Default::default() },
        ..Default::default()
    }
}

/// The allocator's step: addresses, VIPs, subnets and VNIs for what waits
/// for them, as one all-or-nothing write. Returns whether it wrote (or
/// had nothing to write) without being refused as stale.
async fn allocate(cluster: &Cluster) -> bool {
    let changes = {
        let st = cluster.store();
        if st.cluster.is_none() {
            return true;
        }
        let pool = match st.address_pool() {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("address pool: {e}");
                return true;
            }
        };
        let view = st.allocator_view(&pool);
        if !crate::allocator::needs_work(&view) {
            return true;
        }
        crate::allocator::allocate(&view, &shoal_api::time::now_rfc3339())
    };
    for e in &changes.errors {
        tracing::warn!(kind = ?e.kind, id = %e.id, "allocation: {}", e.message);
    }
    if changes.is_empty() {
        return true;
    }
    let cmd = Command::Allocate { networks: changes.networks, services: changes.services, tasks: changes.tasks, nodes: changes.nodes };
    match cluster.propose(cmd).await {
        Ok(v) => v["stale"] != true,
        Err(e) => {
            tracing::warn!("allocation: {e}");
            false
        }
    }
}

/// The restart supervisor's decision for a task that ended while it was
/// still wanted running: `Some(true)` replace it now, `Some(false)` wait for
/// the restart delay, `None` leave it ended (the restart condition says so,
/// or the slot used up `MaxAttempts` restarts, within `Window` if set).
/// `history`: the slot's retired tasks; SwarmKit counts restarts since the
/// spec last changed, so only tasks of the current spec that ended on
/// their own count as attempts.
fn restart_due(svc: &Service, t: &Task, history: &[&Task], now: &str) -> Option<bool> {
    use shoal_api::task::RestartCondition;
    let policy = svc.spec.task_template.restart_policy.clone().unwrap_or_default();
    match policy.condition.unwrap_or_default() {
        RestartCondition::None => return None,
        RestartCondition::OnFailure if t.status.state == TaskState::Complete => return None,
        _ => {}
    }
    let ended = shoal_api::time::parse_rfc3339(&t.status.timestamp);
    let now = shoal_api::time::parse_rfc3339(now);
    if let Some(max) = policy.max_attempts.filter(|m| *m > 0) {
        let window = Duration::from_nanos(policy.window.unwrap_or(0).max(0) as u64);
        let attempts = history
            .iter()
            .filter(|h| h.id != t.id && !outdated(svc, h))
            .filter(|h| matches!(h.status.state, TaskState::Complete | TaskState::Failed | TaskState::Rejected))
            .filter(|h| {
                window.is_zero()
                    || match (shoal_api::time::parse_rfc3339(&h.status.timestamp), now) {
                        (Some(at), Some(n)) => n.duration_since(at).map(|d| d <= window).unwrap_or(true),
                        _ => true,
                    }
            })
            .count() as u64;
        if attempts >= max {
            return None;
        }
    }
    // Docker's default restart delay is 5 s.
    let delay = Duration::from_nanos(policy.delay.unwrap_or(5_000_000_000).max(0) as u64);
    Some(match (ended, now) {
        (Some(e), Some(n)) => n.duration_since(e).map(|d| d >= delay).unwrap_or(false),
        _ => true,
    })
}

/// A task runs the service's current spec unless the spec changed since.
fn outdated(svc: &Service, t: &Task) -> bool {
    t.spec != svc.spec.task_template
}

/// The leader's control loop: the orchestrators, the allocator and the
/// scheduler, each a pure function of the store, their changes proposed
/// as versioned intents.
pub struct Orchestrator {
    cluster: Cluster,
}

impl Orchestrator {
    pub fn new(cluster: Cluster) -> Orchestrator {
        Orchestrator { cluster }
    }

    /// Runs until its task is aborted (the manager stops).
    pub async fn run(self) {
        let cluster = self.cluster;
        let mut applied = cluster.applied();
        let mut seen = u64::MAX;
        let mut last_run = std::time::Instant::now();
        loop {
            // Wake on a store change, and every second anyway (restart delays
            // and update delays expire with time alone); then let a burst of
            // commits (task states from several nodes) settle for a moment.
            let _ = tokio::time::timeout(Duration::from_secs(1), applied.changed()).await;
            tokio::time::sleep(Duration::from_millis(15)).await;
            if !cluster.is_leader() {
                seen = u64::MAX;
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            let index = *applied.borrow_and_update();
            if index == seen && last_run.elapsed() < Duration::from_secs(1) {
                continue;
            }
            last_run = std::time::Instant::now();
            // Woken by time alone (nothing applied since the last full pass):
            // only the orchestrators' delays can have expired. No task became
            // placeable or needs an address without a store change, so the
            // scheduler's pass over every pending task is skipped.
            let time_only = index == seen;
            let steps: &[fn(&Store, &str) -> Changes] = if time_only { &[reconcile] } else { &[reconcile, crate::scheduling::schedule] };
            // Orchestrate, then schedule from the store as the orchestrator left
            // it, so a task it just removed is never placed (and so revived).
            let mut ok = true;
            for (i, step) in steps.iter().copied().enumerate() {
                // Between the orchestrators and the scheduler: new tasks get
                // their network addresses before they are placed.
                if i == 1 {
                    ok &= allocate(&cluster).await;
                }
                // A pass over thousands of tasks is CPU work: off the runtime's
                // threads, so API requests are not queued behind it.
                let store = cluster.shared_store();
                let changes = match tokio::task::spawn_blocking(move || {
                    let st = store.read().unwrap();
                    step(&st, &shoal_api::time::now_rfc3339())
                })
                .await
                {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!("orchestrator pass: {e}");
                        ok = false;
                        continue;
                    }
                };
                // Each step's chunks are proposed together and applied in one
                // go each; a stale intent makes the next pass come at once.
                let mut writes = tokio::task::JoinSet::new();
                for cmd in changes.into_commands() {
                    let cluster = cluster.clone();
                    writes.spawn(async move { cluster.propose(cmd).await });
                }
                while let Some(r) = writes.join_next().await {
                    match r {
                        Ok(Ok(v)) => ok &= v["stale"].as_u64().unwrap_or(0) == 0,
                        _ => ok = false,
                    }
                }
            }
            // Re-run at once after our own writes; otherwise wait for a change.
            seen = if ok { index } else { u64::MAX };
        }
    }
}

#[cfg(test)]
mod chunk_tests {
    use super::*;

    #[test]
    fn a_big_step_is_split_into_entries_of_at_most_a_thousand_task_writes() {
        let task = |i: usize| Task { id: format!("t{i}"), ..Default::default() };
        let progress = update::StatusChange { service_id: "s".into(), version: 1, status: Default::default(), rollback: false };
        let changes =
            Changes { put: (0..2_500).map(task).collect(), delete: (0..300).map(|i| format!("d{i}")).collect(), services: vec![progress] };
        let cmds = changes.into_commands();
        let mut puts = 0;
        let mut deletes = 0;
        let mut services = 0;
        for c in &cmds {
            let Command::TaskIntents { delete, put, services: s } = c else { panic!("{c:?}") };
            assert!(put.len() + delete.len() <= TASKS_PER_ENTRY, "{} writes in one entry", put.len() + delete.len());
            puts += put.len();
            deletes += delete.len();
            services += s.len();
        }
        assert_eq!((puts, deletes, services), (2_500, 300, 1));
        assert_eq!(cmds.len(), 3);
        assert!(Changes::default().into_commands().is_empty());
    }
}
