//! The cluster protocol (gRPC over mutual TLS on loopback) against a real
//! manager: a unary round trip, writes proposed through the port (as a
//! follower forwards them) one at a time and 16 in flight on one HTTP/2
//! connection, and the cost of a node's assignments message of 1,000
//! tasks (prost with a JSON object per task) against one JSON document.
//!
//! `cargo bench -p shoal-manager --bench cluster_port`

#[path = "../tests/common/mod.rs"]
mod cluster;

use std::time::{Duration, Instant};

use prost::Message as _;
use shoal_api::{NodeState, NodeStatus, Role};
use shoal_manager::store::Command;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(run());
    assignments_encoding();
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

async fn run() {
    let c = cluster::start().await;
    c.mgr.propose(Command::CreateNode { node: Box::new(cluster::node("m2", Role::Manager)) }).await.expect("m2");
    c.mgr.propose(Command::CreateNode { node: Box::new(cluster::node("n1", Role::Worker)) }).await.expect("n1");
    let m2 = c.connect(&c.client_as("m2", shoal_security::Role::Manager)).await;
    let t = Duration::from_secs(10);

    let mut times = Vec::new();
    for _ in 0..2_000 {
        let start = Instant::now();
        m2.ping(t).await.expect("ping");
        times.push(start.elapsed());
    }
    times.sort();
    println!("ping round trip: p50 {:.3} ms, p99 {:.3} ms", percentile(&times, 0.5), percentile(&times, 0.99));

    let update = |i: usize| {
        let cmd = Command::UpdateNodeStatus {
            id: "n1".into(),
            status: NodeStatus { state: NodeState::Ready, message: String::new(), addr: format!("10.0.{}.{}", i / 256 % 256, i % 256) },
            description: None,
        };
        serde_json::to_vec(&cmd).expect("command")
    };
    let n = 2_000;
    let start = Instant::now();
    for i in 0..n {
        m2.propose(i as u64 + 1, update(i), t).await.expect("propose");
    }
    let e = start.elapsed();
    println!(
        "proposed through the port, one at a time: {n} writes in {:.2}s = {:.0} writes/s ({:.2} ms each)",
        e.as_secs_f64(),
        n as f64 / e.as_secs_f64(),
        e.as_secs_f64() * 1000.0 / n as f64
    );

    let n = 20_000;
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let (mut next, mut done) = (0, 0);
    while done < n {
        while next < n && set.len() < 16 {
            let (c, cmd, id) = (m2.clone(), update(next), 1_000_000 + next as u64);
            set.spawn(async move { c.propose(id, cmd, t).await });
            next += 1;
        }
        set.join_next().await.expect("task").expect("join").expect("propose");
        done += 1;
    }
    let e = start.elapsed();
    println!("proposed through the port, 16 in flight: {n} writes in {:.2}s = {:.0} writes/s", e.as_secs_f64(), n as f64 / e.as_secs_f64());
    c.mgr.stop();
}

/// A node's full assignments of 1,000 tasks, encoded and read back.
fn assignments_encoding() {
    let tasks = (0..1_000)
        .map(|i| {
            let mut t = shoal_api::task::Task {
                id: format!("{i:025}"),
                service_id: "s".repeat(25),
                node_id: "n".repeat(25),
                slot: i,
                ..Default::default()
            };
            let spec = t.spec.container_spec.get_or_insert_with(Default::default);
            spec.image = "registry.local:5000/web:1.0@sha256:".to_string() + &"a".repeat(64);
            spec.env = vec!["A=1".into(), "B=2".into()];
            t.status.message = "started".into();
            t
        })
        .collect();
    let a = shoal_rpc::Assignments { tasks, digest: 7, applied: 9, ..Default::default() };
    let rounds = 50;

    let start = Instant::now();
    let mut size = 0;
    for _ in 0..rounds {
        let bytes = shoal_rpc::wire::Assignments::from(&a).encode_to_vec();
        size = bytes.len();
        let back = shoal_rpc::Assignments::try_from(shoal_rpc::wire::Assignments::decode(bytes.as_slice()).expect("decode")).expect("read");
        assert_eq!(back.tasks.len(), 1_000);
    }
    let prost = start.elapsed() / rounds;

    let start = Instant::now();
    let mut json_size = 0;
    for _ in 0..rounds {
        let bytes = serde_json::to_vec(&a).expect("json");
        json_size = bytes.len();
        let back: shoal_rpc::Assignments = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(back.tasks.len(), 1_000);
    }
    let json = start.elapsed() / rounds;
    println!(
        "assignments of 1,000 tasks, encode + decode: wire {:.2} ms ({} KiB), one JSON document {:.2} ms ({} KiB)",
        prost.as_secs_f64() * 1000.0,
        size / 1024,
        json.as_secs_f64() * 1000.0,
        json_size / 1024
    );
}
