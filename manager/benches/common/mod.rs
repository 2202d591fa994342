//! What the manager benches share: a one-manager Raft with its durable WAL
//! in a temporary directory, leader once this returns.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use shoal_manager::testing::{RaftHandle, StartOptions};
use shoal_rpc::RaftMember;
use shoal_security::{tls, NodeKey, Role, RootCa};

pub async fn start_single_manager(dir: &std::path::Path, snapshot_interval: u64) -> RaftHandle {
    let ca = RootCa::generate().expect("root CA");
    let key = NodeKey::generate().expect("key");
    let cert = ca.issue(&key.csr_pem, "bench", Role::Manager, "cluster", Duration::from_secs(3600)).expect("cert");
    let client = tls::client_config(&[ca.cert_pem().to_string()], Some((&cert, &key.key_pem))).expect("tls");
    let me = RaftMember { raft_id: 1, node_id: "bench".into(), addr: "127.0.0.1:1".into() };
    let raft = RaftHandle::start(StartOptions {
        id: 1,
        dir: dir.join("raft"),
        bootstrap: Some(me),
        seeds: HashMap::new(),
        tls: Arc::new(RwLock::new(client)),
        snapshot_interval,
        keep_entries: 500,
        events: None,
        wal_key: None,
    })
    .expect("raft");
    let mut status = raft.status.clone();
    while !status.borrow().is_leader {
        status.changed().await.expect("raft running");
    }
    raft
}
