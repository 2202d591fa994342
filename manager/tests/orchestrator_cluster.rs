//! The orchestrator loop is a controller over a `Cluster` handle (store
//! view, leader watch, proposer), not over the `Manager`: here it runs on
//! a one-member Raft alone, with no manager, RPC server or dispatcher, and
//! places a service's replicas on the node the store has.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use shoal_api::service::{Service, ServiceMode, ServiceSpec};
use shoal_api::task::{ContainerSpec, TaskState};
use shoal_api::{Node, NodeState, NodeStatus};
use shoal_manager::cluster::Cluster;
use shoal_manager::orchestrator::Orchestrator;
use shoal_manager::raft::{RaftHandle, StartOptions};
use shoal_manager::store::Command;
use shoal_rpc::RaftMember;
use shoal_security::{tls, NodeKey, Role, RootCa};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orchestrator_runs_on_a_cluster_handle_alone() {
    let dir = tempfile::tempdir().unwrap();
    let ca = RootCa::generate().unwrap();
    let key = NodeKey::generate().unwrap();
    let cert = ca.issue(&key.csr_pem, "m1", Role::Manager, "cluster", Duration::from_secs(3600)).unwrap();
    let client = Arc::new(RwLock::new(tls::client_config(&[ca.cert_pem().to_string()], Some((&cert, &key.key_pem))).unwrap()));
    let raft = RaftHandle::start(StartOptions {
        id: 1,
        dir: dir.path().join("raft"),
        bootstrap: Some(RaftMember { raft_id: 1, node_id: "m1".into(), addr: "127.0.0.1:1".into() }),
        seeds: HashMap::new(),
        tls: client.clone(),
        snapshot_interval: 10_000,
        keep_entries: 500,
        events: None,
        wal_key: None,
    })
    .unwrap();
    let cluster = Cluster::new(raft.clone(), client);
    let mut status = raft.status.clone();
    tokio::time::timeout(Duration::from_secs(10), status.wait_for(|s| s.is_leader)).await.unwrap().unwrap();

    let node = Node {
        id: "n1".into(),
        status: NodeStatus { state: NodeState::Ready, message: String::new(), addr: "10.0.0.1".into() },
        ..Default::default()
    };
    cluster.propose(Command::CreateNode { node: Box::new(node) }).await.unwrap();
    let spec = ServiceSpec {
        name: "web".into(),
        mode: ServiceMode::Replicated { replicas: 3 },
        task_template: shoal_api::task::TaskSpec {
            container_spec: Some(ContainerSpec { image: "busybox".into(), ..Default::default() }),
            ..Default::default()
        },
        ..Default::default()
    };
    let service = Service { id: "s1".into(), spec, ..Default::default() };
    cluster.propose(Command::CreateService { service: Box::new(service), registry_auth: None }).await.unwrap();

    let controller = tokio::spawn(Orchestrator::new(cluster.clone()).run());
    let mut applied = cluster.applied();
    let placed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let assigned = {
                let st = cluster.store();
                st.tasks.values().filter(|t| t.service_id == "s1" && t.node_id == "n1" && t.status.state == TaskState::Assigned).count()
            };
            if assigned == 3 {
                return assigned;
            }
            applied.changed().await.unwrap();
        }
    })
    .await;
    controller.abort();
    raft.stop();
    assert_eq!(placed, Ok(3), "the three replicas placed on n1");
}
