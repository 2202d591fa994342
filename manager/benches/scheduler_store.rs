//! Scheduler throughput with the store in the loop, measured like SwarmKit's
//! `BenchmarkScheduler*` (manager/scheduler/scheduler_test.go): ready nodes
//! and pending tasks are committed to the store first (through Raft, with
//! the durable WAL, one manager); the clock then runs from that commit
//! through the scheduling pass (`scheduling::schedule`, as the leader loop
//! calls it), the commit of every assignment through Raft, until every task
//! reads back as assigned from the applied store (the watch of the applied
//! index has fired by then).
//!
//! Two shapes of tasks:
//! - one-off: tasks of no service, each placed on its own (SwarmKit's
//!   benchmark tasks carry no service, so it schedules them one by one);
//! - batch: the tasks of one service version, placed as one batch.
//!
//! "1/3 fit": every task needs something only every third node has
//! (SwarmKit: a network plugin; here a node label and a constraint on it).
//!
//! `cargo bench -p shoal-manager --bench scheduler_store` (SHAPES=small for
//! the first two shapes only).

mod common;

use std::time::{Duration, Instant};

use shoal_api::task::{Placement, Task, TaskSpec, TaskState, TaskStatus};
use shoal_api::{Node, NodeState};
use shoal_manager::store::Command;
use shoal_manager::testing::RaftHandle;

struct Shape {
    name: &'static str,
    nodes: usize,
    tasks: usize,
    constrained: bool,
    /// SwarmKit v2.1.1 on a 2-core machine like this one, seconds.
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

/// Setup writes go in chunks so no single log entry is huge.
const CHUNK: usize = 5_000;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let small = std::env::var("SHAPES").map(|v| v == "small").unwrap_or(false);
    println!("| shape | tasks as | seconds | tasks/s | SwarmKit v2.1.1 (s) | ratio |");
    println!("|---|---|---|---|---|---|");
    for shape in SHAPES.iter().take(if small { 2 } else { SHAPES.len() }) {
        for batched in [false, true] {
            let secs = rt.block_on(run(shape, batched));
            let (sk, ratio) = match shape.swarmkit {
                Some(s) => (format!("{s:.2}"), format!("{:.1}x", s / secs)),
                None => ("-".into(), "-".into()),
            };
            println!(
                "| {} | {} | {secs:.3} | {:.0} | {sk} | {ratio} |",
                shape.name,
                if batched { "one service (batch)" } else { "no service (one by one)" },
                shape.tasks as f64 / secs
            );
        }
    }
}

fn node(i: usize, constrained: bool) -> Node {
    let mut n = Node { id: format!("node{i:06}"), ..Default::default() };
    n.status.state = NodeState::Ready;
    n.description.hostname = format!("host{i}");
    if constrained && i.is_multiple_of(3) {
        n.spec.labels.insert("network".into(), "yes".into());
    }
    n
}

fn task(i: usize, service: &str, spec: &TaskSpec) -> Task {
    Task {
        id: format!("task{i:07}"),
        service_id: service.to_string(),
        slot: if service.is_empty() { 0 } else { i as u64 + 1 },
        spec: spec.clone(),
        desired_state: TaskState::Running,
        status: TaskStatus { state: TaskState::Pending, message: "pending task scheduling".into(), ..Default::default() },
        ..Default::default()
    }
}

async fn propose_all(raft: &RaftHandle, commands: Vec<Command>) {
    let mut set: tokio::task::JoinSet<shoal_manager::testing::Answer> = tokio::task::JoinSet::new();
    for cmd in commands {
        while set.len() >= 128 {
            set.join_next().await.expect("task").expect("join").expect("propose");
        }
        let r = raft.clone();
        set.spawn(async move { r.propose_local(cmd, Duration::from_secs(60)).await });
    }
    while let Some(r) = set.join_next().await {
        r.expect("join").expect("propose");
    }
}

async fn run(shape: &Shape, batched: bool) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let raft = common::start_single_manager(dir.path(), 1_000_000).await;
    // Setup, not timed: the nodes, and (for the batch) the service.
    let nodes: Vec<Command> = (0..shape.nodes).map(|i| Command::CreateNode { node: Box::new(node(i, shape.constrained)) }).collect();
    propose_all(&raft, nodes).await;
    let mut spec = TaskSpec::default();
    if shape.constrained {
        spec.placement = Some(Placement { constraints: vec!["node.labels.network==yes".into()], ..Default::default() });
    }
    let service_id = if batched { "svc" } else { "" };
    if batched {
        let mut svc = shoal_api::service::Service { id: "svc".into(), ..Default::default() };
        svc.spec.name = "bench".into();
        svc.spec.task_template = spec.clone();
        svc.spec.mode = shoal_api::service::ServiceMode::Replicated { replicas: shape.tasks as u64 };
        raft.propose_local(Command::CreateService { service: Box::new(svc), registry_auth: None }, Duration::from_secs(10))
            .await
            .expect("service");
    }
    // The pending tasks, committed: the clock starts when the last is in.
    let tasks: Vec<Task> = (0..shape.tasks).map(|i| task(i, service_id, &spec)).collect();
    let chunks: Vec<Command> = tasks.chunks(CHUNK).map(|c| Command::PutTasks { tasks: c.to_vec() }).collect();
    propose_all(&raft, chunks).await;
    drop(tasks);

    let start = Instant::now();
    let changes = {
        let st = raft.store.read().unwrap();
        shoal_manager::scheduling::schedule(&st, &shoal_api::time::now_rfc3339())
    };
    assert_eq!(changes.put.len(), shape.tasks, "every task placed");
    // As the leader loop writes them: versioned intents, at most 1,000 task
    // writes an entry, proposed together.
    propose_all(&raft, changes.into_commands()).await;
    let assigned = {
        let st = raft.store.read().unwrap();
        st.tasks.values().filter(|t| t.status.state == TaskState::Assigned && !t.node_id.is_empty()).count()
    };
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(assigned, shape.tasks, "every assignment committed and applied");
    raft.stop();
    secs
}
