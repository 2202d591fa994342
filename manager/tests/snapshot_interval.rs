//! The swarm spec's `Raft.SnapshotInterval` is what a manager snapshots
//! by (`docker swarm update --snapshot-interval`). Its own test binary:
//! the snapshot counter is process-wide.

mod common;

use shoal_api::Role;
use shoal_manager::control::SwarmUpdate;
use shoal_manager::store::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_s_snapshot_interval_is_followed() {
    let c = common::start().await;
    let m = shoal_metrics::get();
    let write = |i: usize| Command::CreateNode { node: Box::new(common::node(&format!("w{i:03}"), Role::Worker)) };
    for i in 0..30 {
        c.mgr.propose(write(i)).await.unwrap();
    }
    assert_eq!(m.raft_snapshots.get(), 0, "30 entries are far below Docker's default of 10000");
    let swarm = c.mgr.control.swarm().unwrap();
    let mut spec = swarm.spec.clone();
    spec.raft.snapshot_interval = 20;
    c.mgr.control.update_swarm(swarm.version.index, spec, SwarmUpdate::default()).await.unwrap();
    for i in 30..60 {
        c.mgr.propose(write(i)).await.unwrap();
    }
    assert!(m.raft_snapshots.get() >= 1, "past an interval of 20, a snapshot was taken");
}
