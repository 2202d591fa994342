//! A stopped manager leaves its node's key files alone. A demoted manager
//! is stopped, then the node puts its key back in clear; an autolock pass
//! still running (aborting a task takes effect only at its next await)
//! must not wrap it again. CI run on 80932fa lost exactly that race.

mod common;

use std::time::{Duration, Instant};

use shoal_manager::control::SwarmUpdate;

fn wrapped(path: &std::path::Path) -> bool {
    std::fs::read_to_string(path).map(|t| t.starts_with("SHOAL-WRAPPED-1:")).unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_manager_does_not_wrap_the_node_key_again() {
    let c = common::start().await;
    let swarm = c.mgr.control.swarm().unwrap();
    let mut spec = swarm.spec.clone();
    spec.encryption_config.auto_lock_managers = true;
    c.mgr.control.update_swarm(swarm.version.index, spec, SwarmUpdate::default()).await.unwrap();
    let node_key = c.mgr.cfg.swarm_dir.join("certificates/swarm-node.key");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !wrapped(&node_key) {
        assert!(Instant::now() < deadline, "autolock on wraps the node key");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // As the daemon demotes: stop, then the key back in clear.
    c.mgr.stop();
    {
        let mut creds = c.mgr.creds.write().unwrap();
        creds.lock = None;
        creds.save(&c.mgr.cfg.swarm_dir).unwrap();
    }
    assert!(!wrapped(&node_key));
    // The cluster still asks for autolock; a stopped manager does not follow.
    assert_eq!(c.mgr.autolock.sync(), Ok(false));
    assert!(!wrapped(&node_key), "the node key stays in clear");
    assert!(c.mgr.creds.read().unwrap().lock.is_none());
}
