//! Raft write throughput on one manager: proposals committed and applied per
//! second through the real loop and the durable WAL (fsync per Ready), one
//! at a time and with many in flight (which Raft batches into one fsync).
//!
//! `cargo bench -p shoal-manager --bench raft_propose`

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use shoal_api::{Node, NodeState, NodeStatus};
use shoal_manager::raft::{RaftHandle, StartOptions};
use shoal_manager::store::Command;
use shoal_rpc::RaftMember;
use shoal_security::{tls, NodeKey, RootCa, Role};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = RootCa::generate().expect("root CA");
    let key = NodeKey::generate().expect("key");
    let cert = ca.issue(&key.csr_pem, "bench", Role::Manager, "cluster", Duration::from_secs(3600)).expect("cert");
    let client = tls::client_config(&[ca.cert_pem().to_string()], Some((&cert, &key.key_pem))).expect("tls");
    let me = RaftMember { raft_id: 1, node_id: "bench".into(), addr: "127.0.0.1:1".into() };
    let raft = RaftHandle::start(StartOptions {
        id: 1,
        dir: dir.path().join("raft"),
        bootstrap: Some(me),
        seeds: HashMap::new(),
        tls: Arc::new(RwLock::new(client)),
        snapshot_interval: 10_000,
        keep_entries: 500,
    })
    .expect("raft");
    let mut status = raft.status.clone();
    while !status.borrow().is_leader {
        status.changed().await.expect("raft running");
    }
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
    println!("sequential: {n} writes in {:.2}s = {:.0} writes/s ({:.2} ms each, fsync included)", t.as_secs_f64(), n as f64 / t.as_secs_f64(), t.as_secs_f64() * 1000.0 / n as f64);

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
