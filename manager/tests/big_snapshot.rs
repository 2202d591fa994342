//! A store larger than one message of the cluster protocol may be (the
//! managers' 64 MiB cap) still reaches a new manager: the snapshot travels
//! in pieces. (Its own test binary: the
//! snapshot interval is set through the environment before the managers
//! start.)

mod common;

use std::time::{Duration, Instant};

use shoal_api::Role;
use shoal_manager::store::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_larger_than_a_message_reaches_a_new_manager() {
    std::env::set_var("SHOAL_RAFT_SNAPSHOT_INTERVAL", "40");
    let c = common::start().await;
    // 80 nodes with a 1 MiB label each: a store of about 80 MiB, more than
    // the 64 MiB a message may hold.
    let big = "x".repeat(1 << 20);
    for i in 0..80 {
        let mut n = common::node(&format!("w{i:03}"), Role::Worker);
        n.spec.labels.insert("blob".into(), big.clone());
        c.mgr.propose(Command::CreateNode { node: Box::new(n) }).await.unwrap();
    }
    let size = serde_json::to_vec(&*c.mgr.cluster.store()).unwrap().len();
    assert!(size > shoal_rpc::caps::MANAGER, "store is only {size} bytes");

    // The log behind the snapshot is compacted, so the new manager can only
    // catch up from the snapshot.
    let (m2, _dir) = c.join_manager("m2", 2).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let have = m2.cluster.store().nodes.values().filter(|n| n.spec.labels.get("blob") == Some(&big)).count();
        if have == 80 {
            break;
        }
        assert!(Instant::now() < deadline, "the new manager holds {have} of 80 big nodes after 120 s");
        let mut applied = m2.cluster.applied();
        let _ = tokio::time::timeout(Duration::from_secs(1), applied.changed()).await;
    }
    m2.stop();
    c.mgr.stop();
}
