//! Keeps the Raft membership in step with node roles (leader only): a
//! manager demoted or removed in the store leaves Raft; when it is the
//! leader itself, it first hands leadership to an up-to-date peer
//! (`Cluster::remove_member`).

use std::time::Duration;

use shoal_api::{ApiError, Role};

use crate::cluster::Cluster;

/// The membership reconciler, a controller on the cluster handle.
pub struct Membership {
    cluster: Cluster,
}

impl Membership {
    pub fn new(cluster: Cluster) -> Membership {
        Membership { cluster }
    }

    /// Runs until its task is aborted (the manager stops).
    pub async fn run(self) {
        let mut tick = tokio::time::interval(Duration::from_millis(300));
        loop {
            tick.tick().await;
            if !self.cluster.is_leader() {
                continue;
            }
            let leaving: Vec<u64> = {
                let st = self.cluster.store();
                st.members
                    .values()
                    .filter(|m| st.nodes.get(&m.node_id).map(|n| n.spec.role == Role::Worker).unwrap_or(true))
                    .map(|m| m.raft_id)
                    .collect()
            };
            for id in leaving {
                if let Err(e) = self.cluster.remove_member(id).await {
                    tracing::info!("raft member {id:x} not removed yet: {e}");
                }
            }
        }
    }
}

/// Docker's quorum guard for demoting or removing a manager: refuse when the
/// managers left reachable could not form a majority of the smaller cluster.
pub fn check_removal_keeps_quorum(st: &crate::store::Store, reachable: Vec<u64>, raft_id: u64) -> Result<(), ApiError> {
    let voters = st.members.len();
    if voters <= 1 {
        return Err(ApiError::bad_request(
            "rpc error: code = FailedPrecondition desc = attempting to demote the last manager of the swarm",
        ));
    }
    let reachable_after = reachable.into_iter().filter(|id| *id != raft_id).count();
    let quorum_after = (voters - 1) / 2 + 1;
    if reachable_after < quorum_after {
        return Err(ApiError::bad_request(
            "rpc error: code = FailedPrecondition desc = can't remove member from the raft: this would result in a loss of quorum",
        ));
    }
    Ok(())
}
