//! Founding a swarm (`swarm init`), in two steps around the start of the
//! first manager's Raft: `identity` makes the root CA and the first
//! manager's certificate (the manager needs it to start); `found` then
//! writes the swarm into the new log: the cluster record with the CA key
//! and both join-token secrets sealed under the data key (and autolock's
//! unlock key when asked), the first node, and Docker's `ingress` network.

use std::time::Duration;

use shoal_api::{ApiError, Node, NodeDescription, NodeSpec, NodeStatus, Role, Swarm, SwarmSpec};
use shoal_rpc::credentials::Credentials;
use shoal_security::{JoinToken, NodeKey, RootCa};

use crate::store::{ClusterRecord, Command, MANAGER_SECRET_CONTEXT, ROOT_KEY_CONTEXT, WORKER_SECRET_CONTEXT};
use crate::Manager;

/// Who the new swarm and its first manager are.
pub struct Identity {
    pub ca: RootCa,
    pub cluster_id: String,
    pub node_id: String,
    /// The first manager's credentials: a manager certificate under `ca`.
    pub creds: Credentials,
}

/// The swarm-wide settings `swarm init` takes, checked by the caller.
pub struct Settings {
    pub spec: SwarmSpec,
    pub data_path_port: u32,
    pub default_addr_pool: Vec<String>,
    pub subnet_size: u32,
}

/// A new root CA and the first manager's certificate, valid for the
/// spec's node certificate expiry.
pub fn identity(spec: &SwarmSpec) -> Result<Identity, String> {
    let ca = RootCa::generate()?;
    let node_id = shoal_api::id::new_id();
    let cluster_id = shoal_api::id::new_id();
    let key = NodeKey::generate()?;
    let expiry = Duration::from_nanos(spec.ca_config.node_cert_expiry as u64);
    let cert_pem = ca.issue(&key.csr_pem, &node_id, shoal_security::Role::Manager, &cluster_id, expiry)?;
    let creds = Credentials { root_pem: ca.cert_pem().to_string(), cert_pem, key_pem: key.key_pem, lock: None };
    Ok(Identity { ca, cluster_id, node_id, creds })
}

/// Writes the swarm into `mgr`'s log (its only member, leading): the
/// cluster record, the first node (`description`, reached at `addr`), and
/// the `ingress` network. With autolock in the spec, the manager's keys are
/// wrapped before this returns.
pub async fn found(mgr: &Manager, id: &Identity, settings: Settings, description: NodeDescription, addr: String) -> Result<(), ApiError> {
    let data_key = mgr.data_key().ok_or_else(|| ApiError::internal("the new manager has no data key"))?;
    let now = shoal_api::time::now_rfc3339();
    let autolock = settings.spec.encryption_config.auto_lock_managers;
    let swarm = Swarm {
        id: id.cluster_id.clone(),
        created_at: now.clone(),
        updated_at: now.clone(),
        spec: settings.spec,
        tls_info: shoal_api::TlsInfo { trust_root: id.ca.cert_pem().to_string(), ..Default::default() },
        data_path_port: settings.data_path_port,
        default_addr_pool: settings.default_addr_pool,
        subnet_size: settings.subnet_size,
        ..Default::default()
    };
    let digest = id.ca.digest();
    // The CA key and the join-token secrets enter the Raft log sealed.
    let cluster = ClusterRecord {
        swarm,
        root_cert_pem: id.ca.cert_pem().to_string(),
        root_key_pem: ClusterRecord::seal(&data_key, ROOT_KEY_CONTEXT, id.ca.key_pem()),
        worker_secret: ClusterRecord::seal(&data_key, WORKER_SECRET_CONTEXT, &JoinToken::generate(digest).secret),
        manager_secret: ClusterRecord::seal(&data_key, MANAGER_SECRET_CONTEXT, &JoinToken::generate(digest).secret),
        unlock_key: if autolock { crate::control::seal_new_unlock_key(&data_key) } else { String::new() },
    };
    let node = Node {
        id: id.node_id.clone(),
        created_at: now.clone(),
        updated_at: now,
        spec: NodeSpec { role: Role::Manager, ..Default::default() },
        description,
        status: NodeStatus { addr, ..Default::default() },
        ..Default::default()
    };
    mgr.propose(Command::CreateCluster { cluster: Box::new(cluster), node: Box::new(node) }).await?;
    // `--autolock`: the keys are wrapped before init answers.
    if let Err(e) = mgr.autolock.sync() {
        tracing::warn!("autolock: {e}");
    }
    // Docker's `ingress` network, made with the swarm (the routing mesh
    // uses it; `network create --ingress` can replace it).
    let ingress = shoal_api::network::Network {
        id: shoal_api::id::new_id(),
        created_at: shoal_api::time::now_rfc3339(),
        spec: shoal_api::network::ingress_spec(),
        ..Default::default()
    };
    if let Err(e) = mgr.propose(Command::CreateNetwork { network: Box::new(ingress) }).await {
        tracing::warn!("creating the ingress network: {e}");
    }
    Ok(())
}
