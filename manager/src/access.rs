//! Who may make a cluster call: the rights of a node's certificate are
//! those the store gives its node now (a demoted or removed node's
//! certificate keeps its role field, not its rights). Shared by the RPC
//! server and the log broker's streams.

use shoal_api::{ApiError, Role};
use shoal_rpc::server::Peer;
use shoal_security::NodeIdentity;

use crate::cluster::Cluster;
use crate::store::Store;

/// What a call needs of its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Any node of this swarm.
    Node,
    /// A manager now: a manager certificate and a manager role in the store.
    Manager,
    /// A Raft stream: a manager certificate, and a node that is a Raft member
    /// (a demoted manager stays one until its removal commits, which needs
    /// its votes), or one the store makes a manager that is joining Raft.
    RaftPeer,
}

/// Whether the store grants `access` to the holder of `id`: the rights of a
/// certificate are those its node has in the store now.
pub fn check_access(st: &Store, id: &NodeIdentity, access: Access) -> Result<(), ApiError> {
    if let Some(c) = &st.cluster {
        if c.swarm.id != id.cluster_id {
            return Err(ApiError::new(403, "certificate belongs to another swarm"));
        }
    }
    if st.removed.contains(&id.node_id) {
        return Err(ApiError::new(403, format!("node {} was removed from the swarm", id.node_id)));
    }
    if access == Access::Node {
        return Ok(());
    }
    let manager_only = || ApiError::new(403, "this call is for managers only");
    if id.role != shoal_security::Role::Manager {
        return Err(manager_only());
    }
    // A store that has not applied anything yet (this manager is joining)
    // cannot judge; the certificate chains to our root.
    if st.cluster.is_none() && st.nodes.is_empty() {
        return Ok(());
    }
    let role_now = st.nodes.get(&id.node_id).map(|n| n.spec.role);
    let member = st.member_of_node(&id.node_id).is_some();
    match access {
        Access::Manager if role_now == Some(Role::Manager) => Ok(()),
        Access::RaftPeer if member || role_now == Some(Role::Manager) => Ok(()),
        _ => Err(ApiError::new(403, format!("node {} is not a manager", id.node_id))),
    }
}

/// The caller's identity, if its certificate belongs to this swarm and the
/// store grants it `access`.
pub fn authorize(cluster: &Cluster, peer: &Peer, access: Access) -> Result<NodeIdentity, ApiError> {
    let id = peer.identity.clone().ok_or_else(|| ApiError::new(403, "a node certificate is required for this call"))?;
    check_access(&cluster.store(), &id, access)?;
    Ok(id)
}

/// Returns once the store stops granting `access` to `id` (checked at every
/// applied entry), or when Raft stops.
pub async fn until_revoked(cluster: &Cluster, id: &NodeIdentity, access: Access) {
    let mut applied = cluster.applied();
    loop {
        if check_access(&cluster.store(), id, access).is_err() {
            return;
        }
        if applied.changed().await.is_err() {
            return;
        }
    }
}
