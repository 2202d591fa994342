//! Controllers on the cluster handle (store view, leader watch, proposer)
//! run without a `Manager`: here each runs on a one-member Raft alone, with
//! no manager, RPC server or other controller.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use shoal_api::service::{Service, ServiceMode, ServiceSpec};
use shoal_api::task::{ContainerSpec, Task, TaskState};
use shoal_api::{Node, NodeState, NodeStatus};
use shoal_manager::cluster::Cluster;
use shoal_manager::logbroker::LogBroker;
use shoal_manager::orchestrator::Orchestrator;
use shoal_manager::store::Command;
use shoal_manager::testing::{RaftHandle, StartOptions};
use shoal_rpc::logs::{LogEvent, LogOptions, LogSelector};
use shoal_rpc::RaftMember;
use shoal_security::{tls, NodeKey, Role, RootCa};

/// A one-member Raft that leads, and the handle on it.
struct Alone {
    raft: RaftHandle,
    cluster: Cluster,
    _dir: tempfile::TempDir,
}

async fn alone() -> Alone {
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
    Alone { raft, cluster, _dir: dir }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orchestrator_runs_on_a_cluster_handle_alone() {
    let one = alone().await;
    let node = Node {
        id: "n1".into(),
        status: NodeStatus { state: NodeState::Ready, message: String::new(), addr: "10.0.0.1".into() },
        ..Default::default()
    };
    one.cluster.propose(Command::CreateNode { node: Box::new(node) }).await.unwrap();
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
    one.cluster.propose(Command::CreateService { service: Box::new(service), registry_auth: None }).await.unwrap();

    let controller = tokio::spawn(Orchestrator::new(one.cluster.clone()).run());
    let mut applied = one.cluster.applied();
    let placed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let assigned = {
                let st = one.cluster.store();
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
    one.raft.stop();
    assert_eq!(placed, Ok(3), "the three replicas placed on n1");
}

/// The leader's broker answers from the store behind the handle: a task
/// whose node has no log listener ends the stream at once, with Docker's
/// warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_broker_answers_on_a_cluster_handle_alone() {
    let one = alone().await;
    let task = Task { id: "t1".into(), node_id: "n1".into(), ..Default::default() };
    one.cluster.propose(Command::PutTasks { tasks: vec![task] }).await.unwrap();

    let broker = LogBroker::new(one.cluster.clone());
    let selector = LogSelector { service_ids: vec![], task_ids: vec!["t1".into()] };
    let mut events = broker.subscribe(selector, LogOptions { stdout: true, ..Default::default() }).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), events.recv()).await;
    one.raft.stop();
    let warning = "warning: incomplete log stream. some logs could not be retrieved for the following reasons: node n1 is not available";
    assert_eq!(end, Ok(Some(LogEvent::End { warning: Some(warning.into()) })));
}
