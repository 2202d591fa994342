//! The scheduler's loop body (leader only): pending tasks are placed with
//! `shoal-scheduler`, one batch per service, against the nodes and the
//! tasks already placed in the store.

use std::collections::BTreeMap;

use shoal_api::service::PortConfig;
use shoal_api::task::{Task, TaskState};
use shoal_scheduler::{NodeInfo, Scheduler, TaskGroup};

use crate::orchestrator::Changes;
use crate::store::Store;

fn ports<'a>(st: &'a Store, service_id: &str) -> &'a [PortConfig] {
    st.services.get(service_id).and_then(|s| s.spec.endpoint_spec.as_ref()).map(|e| e.ports.as_slice()).unwrap_or(&[])
}

pub fn schedule(st: &Store, now: &str) -> Changes {
    let mut changes = Changes::default();
    let pending: Vec<&Task> = st
        .tasks
        .values()
        .filter(|t| t.status.state == TaskState::Pending && matches!(t.desired_state, TaskState::Running | TaskState::Complete))
        .collect();
    if pending.is_empty() {
        return changes;
    }
    let mut sched = Scheduler::new(st.nodes.values().map(NodeInfo::from_node));
    for t in st.tasks.values() {
        let placed = !t.node_id.is_empty() && (TaskState::Assigned..=TaskState::Running).contains(&t.status.state);
        if placed && t.desired_state <= TaskState::Complete {
            sched.add_task(t, ports(st, &t.service_id));
        }
    }
    // One batch per service (its pending tasks share the current spec);
    // tasks that already name a node (global services) are checked there.
    let mut batches: BTreeMap<&str, Vec<&Task>> = BTreeMap::new();
    for t in pending {
        if t.node_id.is_empty() {
            batches.entry(t.service_id.as_str()).or_default().push(t);
        } else {
            let group = TaskGroup::new(&t.service_id, &t.spec).with_ports(ports(st, &t.service_id));
            let r = sched.place_on(&group, &t.node_id);
            record(&mut changes, t, r.map(|a| (a.node_id, a.generic_resources)), now);
        }
    }
    for (service_id, tasks) in batches {
        if service_id.is_empty() {
            // Tasks of no service share no spec version: each is placed on
            // its own (as SwarmKit does for them). A run of equal specs
            // shares the parsed group (constraints, preferences).
            let mut last: Option<(&shoal_api::task::TaskSpec, TaskGroup)> = None;
            for t in tasks {
                if last.as_ref().map(|(spec, _)| *spec != &t.spec).unwrap_or(true) {
                    last = Some((&t.spec, TaskGroup::new("", &t.spec)));
                }
                let group = &last.as_ref().expect("set above").1;
                let r = sched.schedule_batch(group, 1).pop().expect("one result per task");
                record(&mut changes, t, r.map(|a| (a.node_id, a.generic_resources)), now);
            }
            continue;
        }
        let group = TaskGroup::new(service_id, &tasks[0].spec).with_ports(ports(st, service_id));
        let results = sched.schedule_batch(&group, tasks.len());
        for (t, r) in tasks.into_iter().zip(results) {
            record(&mut changes, t, r.map(|a| (a.node_id, a.generic_resources)), now);
        }
    }
    changes
}

/// Writes an assignment, or the reason there is none (only when it changed,
/// so an unplaceable task does not rewrite the store every round).
fn record(changes: &mut Changes, t: &Task, r: Result<(String, Vec<shoal_api::task::GenericResource>), String>, now: &str) {
    shoal_metrics::get().scheduler_decision(r.is_ok());
    // Still no place, for the same reason: nothing to write (and no copy
    // of the task made, which 10,000 unplaceable tasks made every pass).
    if matches!(&r, Err(why) if *why == t.status.err) {
        return;
    }
    let mut t = t.clone();
    match r {
        Ok((node_id, generic)) => {
            t.node_id = node_id;
            t.generic_resources = generic;
            t.status.state = TaskState::Assigned;
            t.status.message = "scheduler assigned task to node".into();
            t.status.err.clear();
            t.status.timestamp = now.to_string();
        }
        Err(why) => {
            t.status.err = why;
            t.status.timestamp = now.to_string();
        }
    }
    changes.put.push(t);
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_api::service::{Service, ServiceMode, ServiceSpec};
    use shoal_api::task::Placement;
    use shoal_api::Node;

    fn node(id: &str, zone: &str) -> Node {
        let mut n = Node { id: id.into(), ..Default::default() };
        n.status.state = shoal_api::NodeState::Ready;
        n.description.hostname = id.into();
        n.spec.labels.insert("zone".into(), zone.into());
        n
    }

    fn store_with(replicas: u64, constraint: Option<&str>) -> Store {
        let mut st = Store::default();
        for (id, zone) in [("n1", "a"), ("n2", "b"), ("n3", "b")] {
            st.nodes.insert(id.into(), node(id, zone));
        }
        let mut spec = ServiceSpec { name: "web".into(), mode: ServiceMode::Replicated { replicas }, ..Default::default() };
        if let Some(c) = constraint {
            spec.task_template.placement = Some(Placement { constraints: vec![c.to_string()], ..Default::default() });
        }
        st.services.insert("s".into(), Service { id: "s".into(), spec, ..Default::default() });
        for t in crate::orchestrator::reconcile(&st, "now").put {
            st.tasks.insert(t.id.clone(), t);
        }
        st
    }

    #[test]
    fn six_tasks_spread_two_per_node() {
        let st = store_with(6, None);
        let c = schedule(&st, "now");
        assert_eq!(c.put.len(), 6);
        let mut per_node = BTreeMap::new();
        for t in &c.put {
            assert_eq!(t.status.state, TaskState::Assigned);
            *per_node.entry(t.node_id.clone()).or_insert(0) += 1;
        }
        assert_eq!(per_node.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
    }

    #[test]
    fn a_constraint_pins_tasks_and_an_impossible_one_explains() {
        let decisions = |r: &'static str| shoal_metrics::get().scheduler_decisions.get_or_create(&[("result", r)]).get();
        let (assigned, unassignable) = (decisions("assigned"), decisions("unassignable"));
        let st = store_with(3, Some("node.labels.zone==a"));
        let c = schedule(&st, "now");
        assert!(c.put.iter().all(|t| t.node_id == "n1"));
        let mut st = store_with(2, Some("node.labels.zone==nowhere"));
        let c = schedule(&st, "now");
        assert_eq!(c.put.len(), 2);
        for t in &c.put {
            assert_eq!(t.status.state, TaskState::Pending);
            assert_eq!(t.status.err, "no suitable node (scheduling constraints not satisfied on 3 nodes)");
        }
        // Counted (other tests count too: these only grow).
        assert!(decisions("assigned") >= assigned + 3);
        assert!(decisions("unassignable") >= unassignable + 2);
        for t in c.put {
            st.tasks.insert(t.id.clone(), t);
        }
        assert!(schedule(&st, "now").is_empty(), "an unchanged reason is not rewritten");
    }
}
