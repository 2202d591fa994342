//! Jobs: services whose tasks run to completion (`replicated-job`,
//! `global-job`). Their tasks want the state COMPLETE and belong to one
//! run of the job, the job iteration (the service version when the job was
//! last created or updated); an update starts a new run and stops what is
//! left of the old one.
//!
//! A replicated job runs `TotalCompletions` tasks, at most `MaxConcurrent`
//! at a time, each in a slot of its own. A global job runs once on every
//! eligible node, including nodes that join later. A task that fails is
//! restarted by the restart supervisor (a job task that completed never
//! is); one the policy gives up on is not run again in that iteration.

use std::collections::{BTreeMap, BTreeSet};

use shoal_api::service::{Service, ServiceMode};
use shoal_api::task::{Task, TaskState};
use shoal_api::{Availability, NodeState, Version};

use super::{new_task, restart_due, Changes};
use crate::store::Store;

pub fn reconcile(st: &Store, svc: &Service, tasks: &[&Task], now: &str, changes: &mut Changes) {
    let iteration = svc.job_status.as_ref().map(|j| j.job_iteration.index).unwrap_or(svc.version.index);
    let mut current: Vec<&Task> = Vec::new();
    for &t in tasks {
        let ours = t.job_iteration.as_ref().map(|v| v.index) == Some(iteration);
        if ours {
            current.push(t);
        } else if t.desired_state <= TaskState::Complete {
            // A task of an earlier run: the job was updated.
            changes.shut_down(t);
        }
    }
    let job_task = |slot: u64, node: &str| {
        let mut t = new_task(svc, slot, node, now);
        t.desired_state = TaskState::Complete;
        t.job_iteration = Some(Version { index: iteration });
        t
    };
    match svc.spec.mode {
        ServiceMode::ReplicatedJob { max_concurrent, total_completions } => {
            let max_concurrent = max_concurrent.unwrap_or(1).max(1);
            let total = total_completions.unwrap_or(max_concurrent);
            let mut by_slot: BTreeMap<u64, Vec<&Task>> = BTreeMap::new();
            for &t in &current {
                by_slot.entry(t.slot).or_default().push(t);
            }
            // Per slot: done, running (or waiting to restart), or given up.
            let (mut done, mut active, mut given_up) = (0u64, 0u64, 0u64);
            for (_, slot_tasks) in by_slot.iter() {
                match slot_state(st, svc, slot_tasks, now, changes) {
                    Slot::Done => done += 1,
                    Slot::Active => active += 1,
                    Slot::GivenUp => given_up += 1,
                    Slot::Restart(t) => {
                        changes.shut_down(t);
                        changes.put.push(job_task(t.slot, ""));
                        active += 1;
                    }
                }
            }
            let remaining = total.saturating_sub(done + active + given_up);
            let room = max_concurrent.saturating_sub(active);
            let first_slot = by_slot.keys().next_back().copied().unwrap_or(0) + 1;
            for slot in first_slot..first_slot + remaining.min(room) {
                changes.put.push(job_task(slot, ""));
            }
        }
        ServiceMode::GlobalJob => {
            let constraints = svc.spec.task_template.placement().map(|p| p.constraints.clone()).unwrap_or_default();
            let parsed = shoal_scheduler::parse_constraints(&constraints).unwrap_or_default();
            let mut by_node: BTreeMap<&str, Vec<&Task>> = BTreeMap::new();
            for &t in &current {
                by_node.entry(t.node_id.as_str()).or_default().push(t);
            }
            let mut eligible = BTreeSet::new();
            for node in st.nodes.values() {
                let ok = node.spec.availability != Availability::Drain
                    && node.status.state != NodeState::Down
                    && shoal_scheduler::node_matches(&parsed, &shoal_scheduler::NodeInfo::from_node(node));
                if !ok {
                    continue;
                }
                eligible.insert(node.id.as_str());
                match by_node.get(node.id.as_str()) {
                    None => changes.put.push(job_task(0, &node.id)),
                    Some(node_tasks) => {
                        if let Slot::Restart(t) = slot_state(st, svc, node_tasks, now, changes) {
                            changes.shut_down(t);
                            changes.put.push(job_task(0, &node.id));
                        }
                    }
                }
            }
            // Drained or departed nodes stop their unfinished job tasks.
            for (node, node_tasks) in by_node {
                if !eligible.contains(node) {
                    for t in node_tasks.iter().filter(|t| !t.status.state.is_terminal()) {
                        changes.shut_down(t);
                    }
                }
            }
        }
        _ => {}
    }
}

enum Slot<'a> {
    Done,
    Active,
    GivenUp,
    /// The restart policy says run it again now.
    Restart(&'a Task),
}

/// Where a job slot stands, from its tasks of the current iteration.
fn slot_state<'a>(st: &Store, svc: &Service, tasks: &[&'a Task], now: &str, changes: &mut Changes) -> Slot<'a> {
    if tasks.iter().any(|t| t.status.state == TaskState::Complete) {
        // Finished: anything else still around in the slot goes.
        for t in tasks.iter().filter(|t| !t.status.state.is_terminal()) {
            changes.shut_down(t);
        }
        return Slot::Done;
    }
    let Some(&latest) = tasks.iter().filter(|t| t.desired_state <= TaskState::Complete).max_by(|a, b| a.created_at.cmp(&b.created_at))
    else {
        // Every task of the slot was told to stop: nothing wanted any more.
        return Slot::GivenUp;
    };
    if !latest.status.state.is_terminal() {
        // A task on a node that went down or was drained runs elsewhere.
        let lost = !latest.node_id.is_empty()
            && st
                .nodes
                .get(&latest.node_id)
                .map(|n| n.status.state == NodeState::Down || n.spec.availability == Availability::Drain)
                .unwrap_or(true);
        return if lost { Slot::Restart(latest) } else { Slot::Active };
    }
    let history: Vec<&Task> = tasks.iter().copied().filter(|t| t.id != latest.id).collect();
    match restart_due(svc, latest, &history, now) {
        Some(true) => Slot::Restart(latest),
        Some(false) => Slot::Active,
        None => Slot::GivenUp,
    }
}
