//! Scheduler behaviour, end to end through the public API.

use std::collections::BTreeMap;

use shoal_api::service::{PortConfig, PortProtocol, PublishMode};
use shoal_api::task::{GenericResource, Placement, PlacementPreference, Reservations, ResourceRequirements, Task, TaskSpec, TaskState};
use shoal_api::{Availability, NodeState, Platform};

use crate::{Assignment, NodeInfo, Scheduler, TaskGroup};

fn workers(n: usize) -> Vec<NodeInfo> {
    (1..=n).map(|i| NodeInfo::new(&format!("node{i}"))).collect()
}

fn with_placement(p: Placement) -> TaskSpec {
    TaskSpec { placement: Some(p), ..Default::default() }
}

fn constrained(exprs: &[&str]) -> TaskSpec {
    with_placement(Placement { constraints: exprs.iter().map(|s| s.to_string()).collect(), ..Default::default() })
}

fn reserving(nano_cpus: i64, memory_bytes: i64) -> TaskSpec {
    TaskSpec {
        resources: Some(ResourceRequirements {
            reservations: Some(Reservations { nano_cpus, memory_bytes, ..Default::default() }),
            limits: None,
        }),
        ..Default::default()
    }
}

/// node ID -> tasks placed there, and the errors.
fn tally(results: &[Result<Assignment, String>]) -> (BTreeMap<String, usize>, Vec<String>) {
    let mut on = BTreeMap::new();
    let mut errs = Vec::new();
    for r in results {
        match r {
            Ok(a) => *on.entry(a.node_id.clone()).or_default() += 1,
            Err(e) => errs.push(e.clone()),
        }
    }
    (on, errs)
}

#[test]
fn six_tasks_on_three_workers_go_two_each() {
    let mut s = Scheduler::new(workers(3));
    let spec = TaskSpec::default();
    let (on, errs) = tally(&s.schedule_batch(&TaskGroup::new("web", &spec), 6));
    assert!(errs.is_empty());
    assert_eq!(on.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
    for n in ["node1", "node2", "node3"] {
        assert_eq!(s.service_tasks(n, "web"), 2);
        assert_eq!(s.total_tasks(n), 2);
    }
}

#[test]
fn one_off_tasks_spread_the_same_way() {
    let mut s = Scheduler::new(workers(3));
    let spec = TaskSpec::default();
    let mut on = BTreeMap::<String, usize>::new();
    for _ in 0..6 {
        *on.entry(s.schedule_one(&TaskGroup::new("", &spec)).unwrap().node_id).or_default() += 1;
    }
    assert_eq!(on.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
}

#[test]
fn ranking_prefers_fewer_tasks_of_the_service_then_fewer_tasks() {
    let mut s = Scheduler::new(workers(3));
    let spec = TaskSpec::default();
    let existing = |svc: &str, node: &str| Task {
        service_id: svc.into(),
        node_id: node.into(),
        desired_state: TaskState::Running,
        ..Default::default()
    };
    // node1: 1 web; node2: 0 web but 3 others; node3: 0 web, 1 other.
    assert!(s.add_task(&existing("web", "node1"), &[]));
    for _ in 0..3 {
        s.add_task(&existing("db", "node2"), &[]);
    }
    s.add_task(&existing("db", "node3"), &[]);
    // A task desired shut down holds nothing in the counts.
    s.add_task(&Task { desired_state: TaskState::Shutdown, ..existing("web", "node3") }, &[]);
    assert_eq!(s.service_tasks("node3", "web"), 0);

    let g = TaskGroup::new("web", &spec);
    // Fewest web tasks: node2 and node3 (0); fewer in all: node3.
    assert_eq!(s.schedule_one(&g).unwrap().node_id, "node3");
    // Now node2 is the only one without web.
    assert_eq!(s.schedule_one(&g).unwrap().node_id, "node2");
    // All have one web; totals 1, 4, 2 -> node1.
    assert_eq!(s.schedule_one(&g).unwrap().node_id, "node1");
    // The batch path ranks the same. Web 2, 1, 1; totals 2, 4, 2: node3
    // (fewer in all), then node2 (fewer web tasks, despite 4 in all).
    let placed: Vec<String> = s.schedule_batch(&g, 2).into_iter().map(|r| r.unwrap().node_id).collect();
    assert_eq!(placed, vec!["node3", "node2"]);
}

#[test]
fn drained_paused_and_down_nodes_are_excluded() {
    let mut nodes = workers(4);
    nodes[0].availability = Availability::Drain;
    nodes[1].availability = Availability::Pause;
    nodes[2].state = NodeState::Down;
    let mut s = Scheduler::new(nodes);
    let spec = TaskSpec::default();
    let (on, errs) = tally(&s.schedule_batch(&TaskGroup::new("web", &spec), 3));
    assert_eq!(on.into_iter().collect::<Vec<_>>(), vec![("node4".to_string(), 3)]);
    assert!(errs.is_empty());

    let mut s = Scheduler::new(workers(3).into_iter().map(|mut n| {
        n.availability = Availability::Drain;
        n
    }));
    assert_eq!(s.schedule_one(&TaskGroup::new("web", &spec)).unwrap_err(), "no suitable node (3 nodes not available for new tasks)");
}

#[test]
fn constraints_filter_and_explain() {
    let mut nodes = workers(4);
    nodes[3].labels.insert("zone".into(), "east".into());
    nodes[3].state = NodeState::Down;
    let mut s = Scheduler::new(nodes);
    let spec = constrained(&["node.labels.zone==east"]);
    assert_eq!(
        s.schedule_one(&TaskGroup::new("web", &spec)).unwrap_err(),
        "no suitable node (scheduling constraints not satisfied on 3 nodes; 1 node not available for new tasks)"
    );
    let spec = constrained(&["node.labels.zone!=east"]);
    let (on, errs) = tally(&s.schedule_batch(&TaskGroup::new("web", &spec), 3));
    assert_eq!(on.len(), 3);
    assert!(!on.contains_key("node4"));
    assert!(errs.is_empty());
    let spec = constrained(&["node.hostname==elsewhere"]);
    let (_, errs) = tally(&s.schedule_batch(&TaskGroup::new("web", &spec), 2));
    assert_eq!(errs, vec!["no suitable node (scheduling constraints not satisfied on 3 nodes; 1 node not available for new tasks)"; 2]);
}

#[test]
fn unparsable_constraints_disable_the_filter_as_in_swarmkit() {
    let mut s = Scheduler::new(workers(2));
    let spec = constrained(&["zone"]);
    assert!(s.schedule_one(&TaskGroup::new("web", &spec)).is_ok());
}

#[test]
fn node_ip_cidr_constraint_places_by_subnet() {
    let mut nodes = workers(3);
    for (n, ip) in nodes.iter_mut().zip(["10.0.1.5", "10.0.2.5", "192.168.77.3"]) {
        n.addr = ip.into();
    }
    let mut s = Scheduler::new(nodes);
    let spec = constrained(&["node.ip==10.0.0.0/16", "node.ip!=10.0.2.0/24"]);
    let (on, _) = tally(&s.schedule_batch(&TaskGroup::new("web", &spec), 4));
    assert_eq!(on.into_iter().collect::<Vec<_>>(), vec![("node1".to_string(), 4)]);
}

#[test]
fn resource_exhaustion_says_insufficient_resources() {
    let mut s = Scheduler::new(workers(3).into_iter().map(|mut n| {
        n.nano_cpus = 2_000_000_000;
        n.memory_bytes = 1 << 30;
        n
    }));
    // Each node takes two tasks of one CPU; the seventh does not fit.
    let spec = reserving(1_000_000_000, 1 << 20);
    let results = s.schedule_batch(&TaskGroup::new("web", &spec), 7);
    let (on, errs) = tally(&results);
    assert_eq!(on.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
    assert_eq!(errs, vec!["no suitable node (insufficient resources on 3 nodes)".to_string()]);
    assert!(results[..6].iter().all(|r| r.is_ok()), "placed tasks come first");
    assert_eq!(s.available("node1"), Some((0, (1 << 30) - (2 << 20))));
    // Memory counts too, and one node can be named alone.
    let big = reserving(0, 2 << 30);
    assert_eq!(s.schedule_one(&TaskGroup::new("db", &big)).unwrap_err(), "no suitable node (insufficient resources on 3 nodes)");
    assert_eq!(s.place_on(&TaskGroup::new("db", &big), "node2").unwrap_err(), "insufficient resources on 1 node");
}

#[test]
fn finished_tasks_give_their_reservations_back() {
    let mut s = Scheduler::new(workers(1).into_iter().map(|mut n| {
        n.nano_cpus = 1_000_000_000;
        n
    }));
    let spec = reserving(1_000_000_000, 0);
    let g = TaskGroup::new("web", &spec);
    let a = s.schedule_one(&g).unwrap();
    assert!(s.schedule_one(&g).is_err());
    let t =
        Task { service_id: "web".into(), node_id: a.node_id, spec: spec.clone(), desired_state: TaskState::Running, ..Default::default() };
    assert!(s.remove_task(&t, &[]));
    assert_eq!(s.service_tasks("node1", "web"), 0);
    assert!(s.schedule_one(&g).is_ok());
}

#[test]
fn max_replicas_per_node() {
    let mut s = Scheduler::new(workers(2));
    let spec = with_placement(Placement { max_replicas: 1, ..Default::default() });
    let g = TaskGroup::new("web", &spec);
    let (on, errs) = tally(&s.schedule_batch(&g, 3));
    assert_eq!(on.values().copied().collect::<Vec<_>>(), vec![1, 1]);
    assert_eq!(errs, vec!["no suitable node (max replicas per node limit exceed)".to_string()]);
    // Another node makes room; a cap of 2 lets the old ones take one more.
    s.upsert_node(NodeInfo::new("node3"));
    assert_eq!(s.schedule_one(&g).unwrap().node_id, "node3");
    let two = with_placement(Placement { max_replicas: 2, ..Default::default() });
    let (on, errs) = tally(&s.schedule_batch(&TaskGroup::new("web", &two), 4));
    assert_eq!(on.values().copied().collect::<Vec<_>>(), vec![1, 1, 1]);
    assert_eq!(errs.len(), 1);
}

#[test]
fn host_ports_allow_one_task_per_node() {
    let mut s = Scheduler::new(workers(2));
    let spec = TaskSpec::default();
    let port =
        |proto| PortConfig { protocol: proto, target_port: 80, published_port: 58, publish_mode: PublishMode::Host, ..Default::default() };
    let tcp = [port(PortProtocol::Tcp)];
    let udp = [port(PortProtocol::Udp)];
    let both = [port(PortProtocol::Udp), port(PortProtocol::Tcp)];
    let a = s.schedule_one(&TaskGroup::new("s1", &spec).with_ports(&tcp)).unwrap();
    let b = s.schedule_one(&TaskGroup::new("s1", &spec).with_ports(&udp)).unwrap();
    // SwarmKit's TestSchedulerHostPort: the two land apart... here both fit
    // node1 by port, and ranking sends the second to node2.
    assert_ne!(a.node_id, b.node_id);
    assert_eq!(
        s.schedule_one(&TaskGroup::new("s1", &spec).with_ports(&both)).unwrap_err(),
        "no suitable node (host-mode port already in use on 2 nodes)"
    );
    // A batch takes at most one node each.
    let mut s = Scheduler::new(workers(3));
    let (on, errs) = tally(&s.schedule_batch(&TaskGroup::new("s1", &spec).with_ports(&tcp), 4));
    assert_eq!(on.len(), 3);
    assert_eq!(errs, vec!["no suitable node (host-mode port already in use on 3 nodes)".to_string()]);
    // Ingress-mode ports do not limit placement.
    let ingress = [PortConfig { publish_mode: PublishMode::Ingress, published_port: 8080, ..Default::default() }];
    let (_, errs) = tally(&s.schedule_batch(&TaskGroup::new("s2", &spec).with_ports(&ingress), 6));
    assert!(errs.is_empty());
}

#[test]
fn platform_filter() {
    let mut nodes = workers(2);
    nodes[0].platform = Platform { architecture: "x86_64".into(), os: "linux".into() };
    nodes[1].platform = Platform { architecture: "aarch64".into(), os: "linux".into() };
    let mut s = Scheduler::new(nodes);
    let arm =
        with_placement(Placement { platforms: vec![Platform { architecture: "arm64".into(), os: "linux".into() }], ..Default::default() });
    assert_eq!(s.schedule_one(&TaskGroup::new("a", &arm)).unwrap().node_id, "node2");
    let win = with_placement(Placement {
        platforms: vec![Platform { architecture: "amd64".into(), os: "windows".into() }],
        ..Default::default()
    });
    assert_eq!(s.schedule_one(&TaskGroup::new("w", &win)).unwrap_err(), "no suitable node (unsupported platform on 2 nodes)");
}

#[test]
fn spread_across_zones_of_unequal_size() {
    let mut nodes = workers(4);
    nodes[0].labels.insert("zone".into(), "a".into());
    for n in &mut nodes[1..] {
        n.labels.insert("zone".into(), "b".into());
    }
    let mut s = Scheduler::new(nodes);
    let spec = with_placement(Placement { preferences: vec![PlacementPreference::spread("node.labels.zone")], ..Default::default() });
    let (on, errs) = tally(&s.schedule_batch(&TaskGroup::new("web", &spec), 8));
    assert!(errs.is_empty());
    // Zone a (one node) gets half; zone b's half is spread 2/1/1.
    assert_eq!(on["node1"], 4);
    let mut b: Vec<usize> = ["node2", "node3", "node4"].iter().map(|n| on[*n]).collect();
    b.sort();
    assert_eq!(b, vec![1, 1, 2]);
    // Later one-off tasks keep the zones even.
    let next: Vec<String> = (0..2).map(|_| s.schedule_one(&TaskGroup::new("web", &spec)).unwrap().node_id).collect();
    assert_eq!(next.iter().filter(|n| *n == "node1").count(), 1);
}

#[test]
fn spread_gives_a_full_zones_share_to_the_others() {
    // Zones a (one node with room for one task), b (one node), c (three).
    let mut nodes = workers(5);
    for (n, zone) in nodes.iter_mut().zip(["a", "b", "c", "c", "c"]) {
        n.labels.insert("zone".into(), zone.into());
        n.nano_cpus = if zone == "a" { 1_000_000_000 } else { 10_000_000_000 };
    }
    let mut s = Scheduler::new(nodes);
    let mut spec = reserving(1_000_000_000, 0);
    spec.placement = Some(Placement { preferences: vec![PlacementPreference::spread("node.labels.zone")], ..Default::default() });
    let (on, errs) = tally(&s.schedule_batch(&TaskGroup::new("web", &spec), 9));
    assert!(errs.is_empty());
    // 3 per zone asked; a takes 1, b and c share its other 2: 1, 4, 4
    // (spreading by node alone would give b only 2).
    assert_eq!(on["node1"], 1);
    assert_eq!(on["node2"], 4);
    assert_eq!(on["node3"] + on["node4"] + on["node5"], 4);
}

#[test]
fn nested_spread_and_unlabelled_nodes() {
    // Two zones with two racks each, plus an unlabelled node: three zone
    // branches ("", z1, z2), racks inside z1 and z2.
    let mut nodes = Vec::new();
    for (id, zone, rack) in [("n1", "z1", "r1"), ("n2", "z1", "r2"), ("n3", "z2", "r1"), ("n4", "z2", "r2"), ("n5", "", "")] {
        let mut n = NodeInfo::new(id);
        if !zone.is_empty() {
            n.labels.insert("zone".into(), zone.into());
            n.engine_labels.insert("rack".into(), rack.into());
        }
        nodes.push(n);
    }
    let mut s = Scheduler::new(nodes);
    let spec = with_placement(Placement {
        preferences: vec![PlacementPreference::spread("node.labels.zone"), PlacementPreference::spread("engine.labels.rack")],
        ..Default::default()
    });
    let (on, _) = tally(&s.schedule_batch(&TaskGroup::new("web", &spec), 12));
    // 4 per zone branch; inside z1 and z2, 2 per rack.
    assert_eq!(on["n5"], 4);
    for n in ["n1", "n2", "n3", "n4"] {
        assert_eq!(on[n], 2, "{n}");
    }
}

#[test]
fn spread_counts_existing_tasks() {
    // Zone a: node1 (4 tasks already) and node2; zone b: node3.
    let mut nodes = workers(3);
    for (n, zone) in nodes.iter_mut().zip(["a", "a", "b"]) {
        n.labels.insert("zone".into(), zone.into());
    }
    let mut s = Scheduler::new(nodes);
    for _ in 0..4 {
        s.add_task(&Task { service_id: "web".into(), node_id: "node1".into(), ..Default::default() }, &[]);
    }
    let spec = with_placement(Placement { preferences: vec![PlacementPreference::spread("node.labels.zone")], ..Default::default() });
    let (on, _) = tally(&s.schedule_batch(&TaskGroup::new("web", &spec), 6));
    // 10 tasks make 5 per zone: a needs 1 more (on node2), b gets 5. By
    // node alone it would be 3 and 3.
    assert_eq!(on.get("node1"), None);
    assert_eq!(on["node2"], 1);
    assert_eq!(on["node3"], 5);
}

#[test]
fn generic_resources_hand_out_distinct_items() {
    let mut nodes = workers(2);
    nodes[0].generic_resources = vec![GenericResource::named("gpu", "UUID1"), GenericResource::named("gpu", "UUID2")];
    let mut s = Scheduler::new(nodes);
    let spec = TaskSpec {
        resources: Some(ResourceRequirements {
            reservations: Some(Reservations { generic_resources: vec![GenericResource::discrete("gpu", 1)], ..Default::default() }),
            limits: None,
        }),
        ..Default::default()
    };
    let results = s.schedule_batch(&TaskGroup::new("ml", &spec), 3);
    let given: Vec<_> = results[..2].iter().map(|r| r.as_ref().unwrap().generic_resources.clone()).collect();
    assert_eq!(given, vec![vec![GenericResource::named("gpu", "UUID1")], vec![GenericResource::named("gpu", "UUID2")]]);
    assert_eq!(results[2].as_ref().unwrap_err(), "no suitable node (insufficient resources on 2 nodes)");
}

#[test]
fn node_changes_are_seen() {
    let mut s = Scheduler::new(workers(2));
    let spec = constrained(&["node.labels.gpu==yes"]);
    let g = TaskGroup::new("ml", &spec);
    assert!(s.schedule_one(&g).is_err());
    let mut n2 = s.node("node2").unwrap().clone();
    n2.labels.insert("gpu".into(), "yes".into());
    s.upsert_node(n2);
    assert_eq!(s.schedule_one(&g).unwrap().node_id, "node2");
    assert!(s.remove_node("node2"));
    assert!(!s.remove_node("node2"));
    assert_eq!(s.schedule_one(&g).unwrap_err(), "no suitable node (scheduling constraints not satisfied on 1 node)");
    assert_eq!(s.nodes().len(), 1);
    assert_eq!(s.total_tasks("node1"), 0);
}

#[test]
fn removing_a_node_keeps_the_others_counts() {
    let mut s = Scheduler::new(workers(3));
    let spec = TaskSpec::default();
    s.schedule_batch(&TaskGroup::new("web", &spec), 3);
    // The db task goes to node1 (all tie; the first node wins).
    assert_eq!(s.schedule_one(&TaskGroup::new("db", &spec)).unwrap().node_id, "node1");
    s.remove_node("node1");
    for n in ["node2", "node3"] {
        assert_eq!((s.service_tasks(n, "web"), s.service_tasks(n, "db"), s.total_tasks(n)), (1, 0, 1), "{n}");
    }
    // node3 moved into node1's slot; its counts moved with it.
    s.schedule_one(&TaskGroup::new("web", &spec)).unwrap();
    assert_eq!(s.service_tasks("node2", "web") + s.service_tasks("node3", "web"), 3);
}

#[test]
fn no_nodes_at_all() {
    let mut s = Scheduler::new(Vec::new());
    let spec = TaskSpec::default();
    assert_eq!(s.schedule_one(&TaskGroup::new("web", &spec)).unwrap_err(), "no suitable node");
    assert!(s.schedule_batch(&TaskGroup::new("web", &spec), 0).is_empty());
}

#[test]
fn place_on_checks_the_named_node() {
    let mut nodes = workers(2);
    nodes[1].availability = Availability::Drain;
    let mut s = Scheduler::new(nodes);
    let spec = TaskSpec::default();
    let g = TaskGroup::new("agent", &spec);
    assert_eq!(s.place_on(&g, "node1").unwrap().node_id, "node1");
    assert_eq!(s.service_tasks("node1", "agent"), 1);
    assert_eq!(s.place_on(&g, "node2").unwrap_err(), "1 node not available for new tasks");
    assert!(s.place_on(&g, "nope").is_err());
}
