//! Replicated services: exactly `replicas` live tasks, one per slot.

use std::collections::BTreeMap;

use shoal_api::service::{Service, ServiceMode};
use shoal_api::task::{Task, TaskState};
use shoal_api::{Availability, NodeState};

use super::update::Rollout;
use super::{new_task, outdated, restart_due, Changes};
use crate::store::Store;

/// `tasks`: every task of the service, live and retired.
pub fn reconcile(st: &Store, svc: &Service, tasks: &[&Task], now: &str, changes: &mut Changes) {
    let ServiceMode::Replicated { replicas } = svc.spec.mode else { return };
    // The constraint enforcer: a task whose node stopped matching the
    // service's constraints (a label removed, say) is moved.
    let constraints = svc.spec.task_template.placement().map(|p| p.constraints.clone()).unwrap_or_default();
    let constraints = shoal_scheduler::parse_constraints(&constraints).unwrap_or_default();
    let mut live: BTreeMap<u64, Vec<&Task>> = BTreeMap::new();
    let mut history: BTreeMap<u64, Vec<&Task>> = BTreeMap::new();
    for &t in tasks {
        let by = if t.desired_state <= TaskState::Running { &mut live } else { &mut history };
        by.entry(t.slot).or_default().push(t);
    }
    let mut rollout = Rollout::new(svc, tasks, replicas as usize, now);
    for slot in 1..=replicas {
        let slot_tasks = live.remove(&slot).unwrap_or_default();
        let retired = history.get(&slot).map(Vec::as_slice).unwrap_or_default();
        let usable = |t: &Task| t.node_id.is_empty() || node_usable(st, &t.node_id, &constraints);
        let plan = plan_slot(svc, &slot_tasks, retired, usable, now, changes);
        match plan {
            SlotPlan::Settled => {}
            SlotPlan::InFlight => rollout.in_flight(),
            SlotPlan::Dirty(old) => rollout.dirty(old),
            SlotPlan::Empty => {
                // stop-first: the replacement waits until the old task stopped.
                let stopping = retired.iter().any(|t| {
                    outdated(svc, t)
                        && t.status.state >= TaskState::Assigned
                        && !t.status.state.is_terminal()
                        && node_usable(st, &t.node_id, &constraints)
                });
                rollout.in_flight();
                if !(stopping && rollout.stop_first()) {
                    changes.put.push(new_task(svc, slot, "", now));
                }
            }
        }
    }
    rollout.finish(changes, |old| new_task(svc, old.slot, "", now));
    // Slots past the replica count (scaled down).
    for tasks in live.into_values() {
        for t in tasks {
            changes.shut_down(t);
        }
    }
}

/// Where one slot (or one node of a global service) stands.
#[derive(Debug)]
pub(super) enum SlotPlan<'a> {
    /// A task of the current spec, running or about to (or ended and kept
    /// by the restart policy).
    Settled,
    /// An update of the slot is under way.
    InFlight,
    /// Runs a task of an older spec: the updater decides when it goes.
    Dirty(&'a Task),
    /// Nothing live: a new task is needed.
    Empty,
}

/// Sorts a slot's live tasks: keeps one of the current spec on a usable
/// node, shuts down the rest, and says what the slot needs.
pub(super) fn plan_slot<'a>(
    svc: &Service,
    live: &[&'a Task],
    retired: &[&Task],
    usable: impl Fn(&Task) -> bool,
    now: &str,
    changes: &mut Changes,
) -> SlotPlan<'a> {
    let mut current: Option<&Task> = None;
    let mut old: Vec<&'a Task> = Vec::new();
    for &t in live {
        let ended = t.status.state.is_terminal();
        let restart = if ended { restart_due(svc, t, retired, now) } else { Some(false) };
        if !usable(t) || restart == Some(true) {
            changes.shut_down(t);
        } else if !outdated(svc, t) {
            if current.is_none() {
                current = Some(t);
            } else {
                changes.shut_down(t);
            }
        } else if ended {
            // An ended task of an old spec is replaced by the new spec now.
            changes.shut_down(t);
        } else {
            old.push(t);
        }
    }
    match current {
        Some(c) if !old.is_empty() => {
            // start-first: the old task goes once its replacement runs.
            if c.status.state == TaskState::Running {
                for t in old {
                    changes.shut_down(t);
                }
                SlotPlan::Settled
            } else {
                SlotPlan::InFlight
            }
        }
        Some(c) if c.status.state < TaskState::Running => SlotPlan::InFlight,
        Some(_) => SlotPlan::Settled,
        None => {
            let mut old = old.into_iter();
            match old.next() {
                Some(first) => {
                    for t in old {
                        changes.shut_down(t);
                    }
                    SlotPlan::Dirty(first)
                }
                None => SlotPlan::Empty,
            }
        }
    }
}

/// Replicated tasks leave nodes that are drained, down, gone, or no longer
/// match the service's constraints.
fn node_usable(st: &Store, node_id: &str, constraints: &[shoal_scheduler::Constraint]) -> bool {
    st.nodes
        .get(node_id)
        .map(|n| {
            n.spec.availability != Availability::Drain
                && n.status.state != NodeState::Down
                && (constraints.is_empty() || shoal_scheduler::node_matches(constraints, &shoal_scheduler::NodeInfo::from_node(n)))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::reconcile as reconcile_all;
    use shoal_api::service::ServiceSpec;
    use shoal_api::task::TaskState;
    use shoal_api::Node;

    fn store(replicas: u64) -> Store {
        let mut st = Store::default();
        let svc = Service {
            id: "s".into(),
            spec: ServiceSpec { name: "web".into(), mode: ServiceMode::Replicated { replicas }, ..Default::default() },
            ..Default::default()
        };
        st.services.insert("s".into(), svc);
        st
    }

    fn apply(st: &mut Store, c: super::Changes) {
        for id in c.delete {
            st.tasks.remove(&id);
        }
        for t in c.put {
            st.tasks.insert(t.id.clone(), t);
        }
    }

    /// Adds a ready node n1 and puts every task on it, in `state`.
    fn on_ready_node(st: &mut Store, state: TaskState) {
        let mut node = Node { id: "n1".into(), ..Default::default() };
        node.status.state = NodeState::Ready;
        st.nodes.insert("n1".into(), node);
        for t in st.tasks.values_mut() {
            t.node_id = "n1".into();
            t.status.state = state;
        }
    }

    fn live_slots(st: &Store) -> Vec<u64> {
        let mut v: Vec<u64> = st.tasks.values().filter(|t| t.desired_state == TaskState::Running).map(|t| t.slot).collect();
        v.sort();
        v
    }

    #[test]
    fn creates_one_task_per_slot_and_is_then_stable() {
        let mut st = store(3);
        let c = reconcile_all(&st, "now");
        assert_eq!(c.put.len(), 3);
        apply(&mut st, c);
        assert_eq!(live_slots(&st), vec![1, 2, 3]);
        assert!(reconcile_all(&st, "now").is_empty(), "a converged service needs nothing");
    }

    #[test]
    fn scaling_down_drops_the_highest_slots() {
        let mut st = store(4);
        let c = reconcile_all(&st, "now");
        apply(&mut st, c);
        st.services.get_mut("s").unwrap().spec.mode = ServiceMode::Replicated { replicas: 2 };
        let c = reconcile_all(&st, "now");
        apply(&mut st, c);
        assert_eq!(live_slots(&st), vec![1, 2]);
        assert_eq!(st.tasks.len(), 2, "never-placed tasks are deleted outright");
    }

    #[test]
    fn tasks_leave_a_node_whose_labels_stop_matching() {
        let mut st = store(1);
        st.services.get_mut("s").unwrap().spec.task_template.placement =
            Some(shoal_api::task::Placement { constraints: vec!["node.labels.zone==a".into()], ..Default::default() });
        let c = reconcile_all(&st, "now");
        apply(&mut st, c);
        let mut node = Node { id: "n1".into(), ..Default::default() };
        node.status.state = NodeState::Ready;
        node.spec.labels.insert("zone".into(), "a".into());
        st.nodes.insert("n1".into(), node);
        for t in st.tasks.values_mut() {
            t.node_id = "n1".into();
            t.status.state = TaskState::Running;
        }
        assert!(reconcile_all(&st, "now").is_empty());
        st.nodes.get_mut("n1").unwrap().spec.labels.clear();
        let c = reconcile_all(&st, "now");
        assert!(c.put.iter().any(|t| t.desired_state == TaskState::Shutdown && t.node_id == "n1"), "{c:?}");
        assert!(c.put.iter().any(|t| t.status.state == TaskState::Pending && t.node_id.is_empty()));
    }

    #[test]
    fn ended_tasks_restart_after_the_delay_unless_told_not_to() {
        let mut st = store(1);
        let c = reconcile_all(&st, "2026-01-01T00:00:00Z");
        apply(&mut st, c);
        on_ready_node(&mut st, TaskState::Failed);
        for t in st.tasks.values_mut() {
            t.status.timestamp = "2026-01-01T00:00:10Z".into();
        }
        assert!(reconcile_all(&st, "2026-01-01T00:00:12Z").is_empty(), "the 5 s restart delay has not passed");
        let c = reconcile_all(&st, "2026-01-01T00:00:16Z");
        assert_eq!(c.put.len(), 2, "retired and replaced: {c:?}");
        let policy = shoal_api::task::RestartPolicy { condition: Some(shoal_api::task::RestartCondition::None), ..Default::default() };
        st.services.get_mut("s").unwrap().spec.task_template.restart_policy = Some(policy.clone());
        // A spec change would replace it; re-stamp the task with the new spec.
        for t in st.tasks.values_mut() {
            t.spec.restart_policy = Some(policy.clone());
        }
        assert!(reconcile_all(&st, "2026-01-01T00:01:00Z").is_empty(), "restart-condition none keeps it ended");
    }

    #[test]
    fn history_is_capped_per_slot() {
        let mut st = store(1);
        for round in 0..8 {
            let c = reconcile_all(&st, "now");
            apply(&mut st, c);
            // Each round the running task is placed, then retired by a spec change.
            for t in st.tasks.values_mut().filter(|t| t.desired_state == TaskState::Running) {
                t.status.state = TaskState::Assigned;
                t.created_at = format!("2026-01-01T00:00:0{round}Z");
            }
            st.services.get_mut("s").unwrap().spec.labels.insert("round".into(), round.to_string());
            st.services.get_mut("s").unwrap().spec.task_template.force_update += 1;
        }
        // The reaper sees retirements on the next round, as SwarmKit's does.
        for _ in 0..2 {
            let c = reconcile_all(&st, "now");
            apply(&mut st, c);
        }
        let retired = st.tasks.values().filter(|t| t.desired_state > TaskState::Running).count();
        assert!(retired <= 5, "{retired} retired tasks kept, limit is 5");
        assert_eq!(st.tasks.values().filter(|t| t.desired_state == TaskState::Running).count(), 1);
    }

    #[test]
    fn tasks_leave_a_drained_node() {
        let mut st = store(1);
        let c = reconcile_all(&st, "now");
        apply(&mut st, c);
        on_ready_node(&mut st, TaskState::Running);
        assert!(reconcile_all(&st, "now").is_empty());
        st.nodes.get_mut("n1").unwrap().spec.availability = Availability::Drain;
        let c = reconcile_all(&st, "now");
        assert_eq!(c.put.len(), 2, "old task shut down, new one created");
        assert!(c.put.iter().any(|t| t.desired_state == TaskState::Shutdown && t.node_id == "n1"));
        assert!(c.put.iter().any(|t| t.status.state == TaskState::Pending && t.slot == 1 && t.node_id.is_empty()));
    }

    #[test]
    fn tasks_of_a_removed_service_on_an_unreachable_node_are_reaped() {
        let mut st = store(2);
        let c = reconcile_all(&st, "now");
        apply(&mut st, c);
        on_ready_node(&mut st, TaskState::Running);
        for t in st.tasks.values_mut() {
            t.desired_state = TaskState::Remove;
        }
        st.services.clear();
        assert!(reconcile_all(&st, "now").delete.is_empty(), "a live node reports its tasks stopped first");
        st.nodes.get_mut("n1").unwrap().status.state = NodeState::Down;
        assert_eq!(reconcile_all(&st, "now").delete.len(), 2, "a down node cannot");
        st.nodes.clear();
        assert_eq!(reconcile_all(&st, "now").delete.len(), 2, "nor can a removed one");
    }
}
