//! What the manager's integration tests share: a real manager on
//! loopback, with a swarm made as `swarm init` makes it.

#![allow(dead_code)]

use std::sync::{Arc, RwLock};
use std::time::Duration;

use shoal_api::{Node, NodeSpec, Role, Swarm};
use shoal_manager::manager::StartMode;
use shoal_manager::store::{ClusterRecord, Command, MANAGER_SECRET_CONTEXT, ROOT_KEY_CONTEXT, WORKER_SECRET_CONTEXT};
use shoal_manager::{Manager, ManagerConfig};
use shoal_rpc::credentials::Credentials;
use shoal_rpc::{client, RaftMember};
use shoal_security::{tls, NodeKey, RootCa};

pub const CLUSTER: &str = "clusterportcluster0000000";

pub struct Cluster {
    pub mgr: Arc<Manager>,
    pub ca: RootCa,
    pub addr: String,
    pub dir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn node(id: &str, role: Role) -> Node {
    Node { id: id.into(), spec: NodeSpec { role, ..Default::default() }, ..Default::default() }
}

/// A one-manager swarm ("m1") as `swarm init` makes it.
pub async fn start() -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let ca = RootCa::generate().unwrap();
    let key = NodeKey::generate().unwrap();
    let cert = ca.issue(&key.csr_pem, "m1", shoal_security::Role::Manager, CLUSTER, Duration::from_secs(3600)).unwrap();
    let creds = Credentials { root_pem: ca.cert_pem().into(), cert_pem: cert, key_pem: key.key_pem, lock: None };
    let addr = format!("127.0.0.1:{}", free_port());
    let cfg = ManagerConfig {
        swarm_dir: dir.path().join("swarm"),
        node_id: "m1".into(),
        raft_id: 1,
        listen_addr: addr.clone(),
        advertise_addr: addr.clone(),
    };
    let mgr = Manager::start(cfg, Arc::new(RwLock::new(creds)), StartMode { bootstrap: true, seeds: vec![], events: None }).await.unwrap();
    // A one-member Raft elects itself within an election timeout.
    while !mgr.is_leader() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let k = mgr.data_key().unwrap();
    let swarm = Swarm { id: CLUSTER.into(), ..Default::default() };
    let cluster = ClusterRecord {
        swarm,
        root_cert_pem: ca.cert_pem().into(),
        root_key_pem: ClusterRecord::seal(&k, ROOT_KEY_CONTEXT, ca.key_pem()),
        worker_secret: ClusterRecord::seal(&k, WORKER_SECRET_CONTEXT, "w"),
        manager_secret: ClusterRecord::seal(&k, MANAGER_SECRET_CONTEXT, "m"),
        unlock_key: String::new(),
    };
    mgr.propose(Command::CreateCluster { cluster: Box::new(cluster), node: Box::new(node("m1", Role::Manager)) }).await.unwrap();
    Cluster { mgr, ca, addr, dir }
}

impl Cluster {
    /// TLS settings of a node holding a certificate for `id` with `role`.
    pub fn client_as(&self, id: &str, role: shoal_security::Role) -> Arc<rustls::ClientConfig> {
        let key = NodeKey::generate().unwrap();
        let cert = self.ca.issue(&key.csr_pem, id, role, CLUSTER, Duration::from_secs(3600)).unwrap();
        tls::client_config(&[self.ca.cert_pem().to_string()], Some((&cert, &key.key_pem))).unwrap()
    }

    /// TLS settings of a caller without a certificate (a joining node).
    pub fn anonymous(&self) -> Arc<rustls::ClientConfig> {
        tls::client_config(&[self.ca.cert_pem().to_string()], None).unwrap()
    }

    /// A connection to m1's cluster port with the TLS settings `tls`.
    pub async fn connect(&self, tls: &Arc<rustls::ClientConfig>) -> client::Client {
        client::connect(&self.addr, tls.clone(), Duration::from_secs(10)).await.unwrap()
    }
}

impl Cluster {
    /// A second manager (`id`, Raft ID `raft_id`) joining the swarm as a
    /// promoted node does: registered as a manager, started empty with m1 as
    /// its seed, then added to Raft by the leader.
    pub async fn join_manager(&self, id: &str, raft_id: u64) -> (Arc<Manager>, tempfile::TempDir) {
        self.mgr.propose(Command::CreateNode { node: Box::new(node(id, Role::Manager)) }).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let key = NodeKey::generate().unwrap();
        let cert = self.ca.issue(&key.csr_pem, id, shoal_security::Role::Manager, CLUSTER, Duration::from_secs(3600)).unwrap();
        let creds = Credentials { root_pem: self.ca.cert_pem().into(), cert_pem: cert, key_pem: key.key_pem, lock: None };
        let addr = format!("127.0.0.1:{}", free_port());
        let cfg = ManagerConfig {
            swarm_dir: dir.path().join("swarm"),
            node_id: id.into(),
            raft_id,
            listen_addr: addr.clone(),
            advertise_addr: addr.clone(),
        };
        let seed = RaftMember { raft_id: 1, node_id: "m1".into(), addr: self.addr.clone() };
        let mgr = Manager::start(cfg, Arc::new(RwLock::new(creds)), StartMode { bootstrap: false, seeds: vec![seed], events: None })
            .await
            .unwrap();
        let c = client::connect(&self.addr, mgr.client_tls(), Duration::from_secs(30)).await.unwrap();
        c.join_raft(raft_id, &addr, Duration::from_secs(30)).await.unwrap();
        (mgr, dir)
    }
}
