//! Global services: one task on every node that may run it. A node plays
//! the part a slot plays for replicated services (history, restarts and
//! rolling updates are per node).

use std::collections::BTreeMap;

use shoal_api::service::Service;
use shoal_api::task::{Task, TaskState};
use shoal_api::{Availability, NodeState};

use super::replicated::{plan_slot, SlotPlan};
use super::update::Rollout;
use super::{new_task, outdated, Changes};
use crate::store::Store;

/// `tasks`: every task of the service, live and retired.
pub fn reconcile(st: &Store, svc: &Service, tasks: &[&Task], now: &str, changes: &mut Changes) {
    let constraints = svc.spec.task_template.placement().map(|p| p.constraints.clone()).unwrap_or_default();
    let parsed = shoal_scheduler::parse_constraints(&constraints).unwrap_or_default();
    let mut live: BTreeMap<&str, Vec<&Task>> = BTreeMap::new();
    let mut history: BTreeMap<&str, Vec<&Task>> = BTreeMap::new();
    for &t in tasks {
        let by = if t.desired_state <= TaskState::Running { &mut live } else { &mut history };
        by.entry(t.node_id.as_str()).or_default().push(t);
    }
    let eligible_nodes: Vec<_> = st
        .nodes
        .values()
        .filter(|node| {
            node.spec.availability != Availability::Drain
                && node.status.state != NodeState::Down
                && shoal_scheduler::node_matches(&parsed, &shoal_scheduler::NodeInfo::from_node(node))
        })
        .collect();
    let mut rollout = Rollout::new(svc, tasks, eligible_nodes.len(), now);
    for node in eligible_nodes {
        let node_tasks = live.remove(node.id.as_str()).unwrap_or_default();
        let retired = history.get(node.id.as_str()).map(Vec::as_slice).unwrap_or_default();
        match plan_slot(svc, &node_tasks, retired, |_| true, now, changes) {
            SlotPlan::Settled => {}
            SlotPlan::InFlight => rollout.in_flight(),
            SlotPlan::Dirty(old) => rollout.dirty(old),
            SlotPlan::Empty => {
                let stopping =
                    retired.iter().any(|t| outdated(svc, t) && t.status.state >= TaskState::Assigned && !t.status.state.is_terminal());
                rollout.in_flight();
                if !(stopping && rollout.stop_first()) {
                    changes.put.push(new_task(svc, 0, &node.id, now));
                }
            }
        }
    }
    rollout.finish(changes, |old| new_task(svc, 0, &old.node_id, now));
    // Tasks on nodes that are gone, drained, down or no longer match.
    for tasks in live.into_values() {
        for t in tasks {
            changes.shut_down(t);
        }
    }
}
