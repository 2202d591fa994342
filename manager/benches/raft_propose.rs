//! Raft write throughput on one manager: proposals committed and applied per
//! second through the real loop and the durable WAL (fsync per Ready), one
//! at a time and with many in flight (which Raft batches into one fsync).
//!
//! `cargo bench -p shoal-manager --bench raft_propose`

mod common;

use std::time::{Duration, Instant};

use shoal_api::{Node, NodeState, NodeStatus};
use shoal_manager::store::Command;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let raft = common::start_single_manager(dir.path(), 10_000).await;
    let node = Node { id: "n1".into(), ..Default::default() };
    raft.propose_local(Command::CreateNode { node: Box::new(node) }, Duration::from_secs(5)).await.expect("create");

    let update = |i: usize| Command::UpdateNodeStatus {
        id: "n1".into(),
        status: NodeStatus { state: NodeState::Ready, message: String::new(), addr: format!("10.0.{}.{}", i / 256 % 256, i % 256) },
        description: None,
    };

    let n = 2_000;
    let start = Instant::now();
    for i in 0..n {
        raft.propose_local(update(i), Duration::from_secs(5)).await.expect("propose");
    }
    let t = start.elapsed();
    println!(
        "sequential: {n} writes in {:.2}s = {:.0} writes/s ({:.2} ms each, fsync included)",
        t.as_secs_f64(),
        n as f64 / t.as_secs_f64(),
        t.as_secs_f64() * 1000.0 / n as f64
    );

    for in_flight in [16usize, 128] {
        let n = 20_000;
        let start = Instant::now();
        let mut done = 0;
        let mut next = 0;
        let mut set = tokio::task::JoinSet::new();
        while done < n {
            while next < n && set.len() < in_flight {
                let r = raft.clone();
                let cmd = update(next);
                set.spawn(async move { r.propose_local(cmd, Duration::from_secs(10)).await });
                next += 1;
            }
            set.join_next().await.expect("task").expect("join").expect("propose");
            done += 1;
        }
        let t = start.elapsed();
        println!("{in_flight} in flight: {n} writes in {:.2}s = {:.0} writes/s", t.as_secs_f64(), n as f64 / t.as_secs_f64());
    }
    raft.stop();
}
