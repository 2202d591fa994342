//! Global services: one task on every node that may run it.

use std::collections::BTreeMap;

use shoal_api::service::Service;
use shoal_api::task::Task;
use shoal_api::{Availability, NodeState};

use super::{new_task, outdated, restart_due, Changes};
use crate::store::Store;

pub fn reconcile(st: &Store, svc: &Service, live: &[&Task], now: &str, changes: &mut Changes) {
    let constraints = svc.spec.task_template.placement().map(|p| p.constraints.clone()).unwrap_or_default();
    let parsed = shoal_scheduler::parse_constraints(&constraints).unwrap_or_default();
    let mut by_node: BTreeMap<&str, Vec<&Task>> = BTreeMap::new();
    for t in live {
        by_node.entry(t.node_id.as_str()).or_default().push(t);
    }
    for node in st.nodes.values() {
        let info = shoal_scheduler::NodeInfo::from_node(node);
        let eligible = node.spec.availability != Availability::Drain
            && node.status.state != NodeState::Down
            && shoal_scheduler::node_matches(&parsed, &info);
        let tasks = by_node.remove(node.id.as_str()).unwrap_or_default();
        let mut keep = None;
        for t in tasks {
            let restart = if t.status.state.is_terminal() { restart_due(svc, t, now) } else { Some(false) };
            if eligible && keep.is_none() && !outdated(svc, t) && restart != Some(true) {
                keep = Some(t);
            } else {
                changes.shut_down(t);
            }
        }
        if eligible && keep.is_none() {
            changes.put.push(new_task(svc, 0, &node.id, now));
        }
    }
    // Tasks on nodes that no longer exist.
    for tasks in by_node.into_values() {
        for t in tasks {
            changes.shut_down(t);
        }
    }
}
