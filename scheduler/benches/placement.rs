//! Scheduler throughput in the shapes of SwarmKit's `BenchmarkScheduler*`
//! (manager/scheduler/scheduler_test.go): N ready nodes, M pending tasks
//! with no resources; the "constrained" shapes give every third node
//! something every task needs (SwarmKit: a network plugin; here a node label
//! and a constraint on it).
//!
//! Two ways of asking:
//! - one-off: each task placed on its own with no service, as SwarmKit's
//!   benchmark tasks are (no spec version, so SwarmKit schedules them one by
//!   one);
//! - batch: all tasks as one service version, placed in one call.
//!
//! The clock covers scheduling only. SwarmKit's also covers creating the
//! nodes and tasks in its store and reading the assignments off the watch
//! stream; Shoal has no store with watches yet, so those costs are not in
//! our figures. Run: `cargo bench -p shoal-scheduler`.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use shoal_api::task::{Placement, TaskSpec};
use shoal_scheduler::{NodeInfo, Scheduler, TaskGroup};

struct Shape {
    name: &'static str,
    nodes: usize,
    tasks: usize,
    constrained: bool,
    /// SwarmKit v2.1.1 on a machine like this one, seconds (store and
    /// watch included).
    swarmkit: Option<f64>,
}

const SHAPES: &[Shape] = &[
    Shape { name: "1k nodes, 1k tasks", nodes: 1_000, tasks: 1_000, constrained: false, swarmkit: Some(0.14) },
    Shape { name: "1k nodes, 10k tasks", nodes: 1_000, tasks: 10_000, constrained: false, swarmkit: Some(0.96) },
    Shape { name: "1k nodes, 100k tasks", nodes: 1_000, tasks: 100_000, constrained: false, swarmkit: Some(13.9) },
    Shape { name: "100k nodes, 1k tasks", nodes: 100_000, tasks: 1_000, constrained: false, swarmkit: Some(17.1) },
    Shape { name: "1k nodes, 100k tasks, 1/3 fit", nodes: 1_000, tasks: 100_000, constrained: true, swarmkit: None },
    Shape { name: "5k nodes, 100k tasks, 1/3 fit", nodes: 5_000, tasks: 100_000, constrained: true, swarmkit: Some(58.6) },
];

fn nodes(n: usize) -> Vec<NodeInfo> {
    (0..n)
        .map(|i| {
            let mut node = NodeInfo::new(&format!("node{i:06}"));
            node.hostname = format!("name{i}");
            if i % 3 == 0 {
                node.labels.insert("network".into(), "yes".into());
            }
            node
        })
        .collect()
}

fn spec(constrained: bool) -> TaskSpec {
    let mut spec = TaskSpec::default();
    if constrained {
        spec.placement = Some(Placement { constraints: vec!["node.labels.network==yes".into()], ..Default::default() });
    }
    spec
}

/// Runs the shape `runs` times on fresh schedulers; returns the fastest
/// scheduling time, the fastest `Scheduler::new` (taking the node list),
/// and the per-node task counts of the last run.
fn run(shape: &Shape, batched: bool, runs: usize) -> (Duration, Duration, HashMap<String, usize>) {
    let spec = spec(shape.constrained);
    let mut best = Duration::MAX;
    let mut setup = Duration::MAX;
    let mut per_node = HashMap::new();
    for _ in 0..runs {
        let list = nodes(shape.nodes);
        let start = Instant::now();
        let mut s = Scheduler::new(list);
        setup = setup.min(start.elapsed());
        let start = Instant::now();
        let placed: Vec<String> = if batched {
            let g = TaskGroup::new("service", &spec);
            s.schedule_batch(&g, shape.tasks).into_iter().map(|r| r.expect("placed").node_id).collect()
        } else {
            let g = TaskGroup::new("", &spec);
            (0..shape.tasks).map(|_| s.schedule_one(&g).expect("placed").node_id).collect()
        };
        best = best.min(start.elapsed());
        per_node.clear();
        for id in black_box(placed) {
            *per_node.entry(id).or_insert(0) += 1;
        }
    }
    (best, setup, per_node)
}

/// Placement must be even: every eligible node within one task of the others.
fn check(shape: &Shape, per_node: &HashMap<String, usize>) {
    let eligible = if shape.constrained { shape.nodes.div_ceil(3) } else { shape.nodes };
    let used = per_node.len();
    let (lo, hi) = per_node.values().fold((usize::MAX, 0), |(lo, hi), &c| (lo.min(c), hi.max(c)));
    let lo = if used < eligible { 0 } else { lo };
    assert!(hi - lo <= 1, "{}: uneven placement {lo}..{hi} over {used}/{eligible} nodes", shape.name);
    assert_eq!(per_node.values().sum::<usize>(), shape.tasks);
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 0.01 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.3} s")
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a name argument filters shapes.
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    println!("Shoal scheduler vs SwarmKit BenchmarkScheduler* shapes");
    println!("Our clock: scheduling only (no store, no watch stream; SwarmKit's figures include both).");
    println!("one-off = each task placed alone with no service (SwarmKit's benchmark tasks); batch = one service version, one call.");
    println!("node setup = Scheduler::new over the node list (not in the other columns); best of several runs.");
    println!();
    println!(
        "{:<32} {:>12} {:>12} {:>10} {:>12} {:>10} {:>12}",
        "shape", "one-off", "batch", "SwarmKit", "x (one-off)", "x (batch)", "node setup"
    );
    for shape in SHAPES {
        if !filter.is_empty() && !filter.iter().any(|f| shape.name.contains(f.as_str())) {
            continue;
        }
        let runs = if shape.tasks * shape.nodes >= 50_000_000 { 2 } else { 5 };
        let (one_off, setup, per_node) = run(shape, false, runs);
        check(shape, &per_node);
        let (batch, _, per_node) = run(shape, true, runs);
        check(shape, &per_node);
        let (sk, r1, r2) = match shape.swarmkit {
            Some(sk) => (format!("{sk:.2} s"), format!("{:.0}x", sk / one_off.as_secs_f64()), format!("{:.0}x", sk / batch.as_secs_f64())),
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!("{:<32} {:>12} {:>12} {:>10} {:>12} {:>10} {:>12}", shape.name, secs(one_off), secs(batch), sk, r1, r2, secs(setup));
    }
}
