//! The Raft loop's instruments move as a one-manager swarm works: term and
//! leadership, leader changes, proposal latency, log size, snapshots. (Its
//! own test binary: the snapshot interval is set through the environment
//! before the manager starts, and no other manager shares the process-wide
//! instruments.)

mod common;

use std::time::{Duration, Instant};

use shoal_api::Role;
use shoal_manager::store::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_metrics_follow_the_log() {
    std::env::set_var("SHOAL_RAFT_SNAPSHOT_INTERVAL", "10");
    let m = shoal_metrics::get();
    let proposals = || {
        let e = shoal_metrics::text::validate(&shoal_metrics::encode(&shoal_metrics::registry())).unwrap();
        e.value("swarm_raft_transaction_latency_seconds_count", &[]).unwrap()
    };
    let (before, snapshots) = (proposals(), m.raft_snapshots.get());
    let c = common::start().await;
    for i in 0..12 {
        c.mgr.propose(Command::CreateNode { node: Box::new(common::node(&format!("w{i:02}"), Role::Worker)) }).await.unwrap();
    }
    assert!(proposals() >= before + 12.0, "each proposal is timed until applied");
    assert!(m.raft_snapshots.get() > snapshots, "12 entries past an interval of 10 take a snapshot");
    // The loop publishes after each step.
    let deadline = Instant::now() + Duration::from_secs(10);
    while m.raft_leader.get() != 1 || m.raft_log_bytes.get() <= 0 || m.raft_log_entries.get() <= 0 {
        assert!(Instant::now() < deadline, "leader {} log bytes {}", m.raft_leader.get(), m.raft_log_bytes.get());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(m.raft_term.get() >= 1);
    assert!(m.raft_leader_changes.get() >= 1, "the first leader counts as a change");
    c.mgr.stop();
    let deadline = Instant::now() + Duration::from_secs(10);
    while m.raft_leader.get() != 0 {
        assert!(Instant::now() < deadline, "a stopped manager is no leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
