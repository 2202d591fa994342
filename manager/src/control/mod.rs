//! The control API behind the Engine API's `/swarm` and `/nodes` endpoints:
//! reads from this manager's store, writes through `Manager::propose`.

use shoal_api::filters::Filters;
use shoal_api::{ApiError, JoinTokens, ManagerStatus, Node, NodeSpec, NodeState, Reachability, Role, Swarm, SwarmSpec};
use shoal_security::JoinToken;

use std::sync::Arc;

use crate::cluster::Cluster;
use crate::keyfiles::KeyFiles;
use crate::membership::check_removal_keeps_quorum;
use crate::store::{ClusterRecord, Command, Store, MANAGER_SECRET_CONTEXT, ROOT_KEY_CONTEXT, WORKER_SECRET_CONTEXT};

mod attachments;
mod configs;
pub mod networks;
mod secrets;
pub(crate) mod services;
pub use attachments::{attach, attachment_task, detach};
pub use configs::CONFIG_FILTERS;
pub use secrets::SECRET_FILTERS;
pub use services::{SERVICE_FILTERS, TASK_FILTERS};

pub const NODE_FILTERS: &[&str] = &["id", "label", "membership", "name", "node.label", "role"];

/// Options of `POST /swarm/update`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SwarmUpdate {
    pub rotate_worker_token: bool,
    pub rotate_manager_token: bool,
    /// `rotateManagerUnlockKey` (`swarm unlock-key --rotate`).
    pub rotate_manager_unlock_key: bool,
}

/// The control API, on the cluster handle: what the daemon's Engine API
/// calls for `/swarm`, `/nodes`, `/services`, `/tasks`, `/secrets`,
/// `/configs` and `/networks`, and the network attachments of its
/// standalone containers.
pub struct ControlApi {
    cluster: Cluster,
    keys: KeyFiles,
    /// This manager's node (`self` in `node inspect self`).
    node_id: String,
    reachability: Arc<crate::reachability::Reachability>,
    autolock: Arc<crate::autolock::Autolock>,
}

impl ControlApi {
    pub(crate) fn new(
        cluster: Cluster,
        keys: KeyFiles,
        node_id: String,
        reachability: Arc<crate::reachability::Reachability>,
        autolock: Arc<crate::autolock::Autolock>,
    ) -> ControlApi {
        ControlApi { cluster, keys, node_id, reachability, autolock }
    }
}

impl ControlApi {
    fn store(&self) -> std::sync::RwLockReadGuard<'_, Store> {
        self.cluster.store()
    }

    pub fn swarm(&self) -> Result<Swarm, ApiError> {
        let keys = self.keys.cluster_keys(&self.cluster.store())?;
        let st = self.store();
        let c = st.cluster.as_ref().ok_or_else(ApiError::not_in_swarm)?;
        let digest = shoal_security::ca::cert_digest_pem(&c.root_cert_pem).map_err(ApiError::internal)?;
        let mut s = c.swarm.clone();
        let (subject, key) = shoal_security::identity::tls_info(&c.root_cert_pem).map_err(ApiError::internal)?;
        s.tls_info = shoal_api::TlsInfo { trust_root: c.root_cert_pem.clone(), cert_issuer_subject: subject, cert_issuer_public_key: key };
        // A rotation is done when every node reports trusting the new root.
        // Nodes that are down cannot report; they renew when they return.
        s.root_rotation_in_progress = st
            .nodes
            .values()
            .any(|n| n.status.state == shoal_api::NodeState::Ready && n.description.tls_info.trust_root != c.root_cert_pem);
        s.join_tokens = Some(JoinTokens {
            worker: JoinToken { ca_digest: digest, secret: keys.worker_secret.to_string() }.to_string(),
            manager: JoinToken { ca_digest: digest, secret: keys.manager_secret.to_string() }.to_string(),
        });
        Ok(s)
    }

    /// What `present` needs besides the store, gathered before the store
    /// lock is taken (never lock the store twice in one reader: a queued
    /// writer would deadlock it).
    fn liveness(&self) -> (u64, Vec<u64>) {
        let leader = self.cluster.status().leader;
        (leader, self.reachability.reachable_members())
    }

    /// A node as the API shows it: stored fields plus what only a manager
    /// knows now (leader, reachability, the trust root).
    fn present(st: &Store, (leader, reachable): &(u64, Vec<u64>), n: &Node) -> Node {
        let mut n = n.clone();
        if let Some(m) = st.member_of_node(&n.id) {
            n.manager_status = Some(ManagerStatus {
                leader: *leader == m.raft_id && *leader != 0,
                reachability: if reachable.contains(&m.raft_id) { Reachability::Reachable } else { Reachability::Unreachable },
                addr: m.addr.clone(),
            });
        }
        n
    }

    pub fn nodes(&self, filters: &Filters) -> Vec<Node> {
        let live = self.liveness();
        let st = self.store();
        st.nodes
            .values()
            .filter(|n| filters.any("id", |v| n.id.starts_with(v)))
            .filter(|n| filters.any("name", |v| n.description.hostname.contains(v)))
            .filter(|n| filters.any("role", |v| v == n.spec.role.as_str()))
            .filter(|_| filters.any("membership", |v| v == "accepted"))
            .filter(|n| filters.labels_match("label", &n.description.engine.labels))
            .filter(|n| filters.labels_match("node.label", &n.spec.labels))
            .map(|n| Self::present(&st, &live, n))
            .collect()
    }

    pub fn node(&self, key: &str) -> Result<Node, ApiError> {
        let live = self.liveness();
        let st = self.store();
        let key = if key == "self" { self.node_id.as_str() } else { key };
        let n = st.find_node(key)?;
        Ok(Self::present(&st, &live, n))
    }

    pub fn counts(&self) -> (usize, usize) {
        let st = self.store();
        (st.nodes.len(), st.members.len())
    }

    pub async fn update_node(&self, key: &str, version: u64, spec: NodeSpec) -> Result<(), ApiError> {
        let (id, demoting) = {
            let st = self.store();
            let n = st.find_node(key)?;
            let member = st.member_of_node(&n.id).map(|m| m.raft_id);
            (n.id.clone(), member.filter(|_| spec.role == Role::Worker && n.spec.role == Role::Manager))
        };
        if let Some(raft_id) = demoting {
            let reachable = self.reachability.reachable_members();
            check_removal_keeps_quorum(&self.store(), reachable, raft_id)?;
        }
        self.cluster.propose(Command::UpdateNodeSpec { id, version, spec }).await.map(|_| ()).map_err(ApiError::from)
    }

    pub async fn remove_node(&self, key: &str, force: bool) -> Result<(), ApiError> {
        let id = {
            let st = self.store();
            let n = st.find_node(key)?;
            if st.member_of_node(&n.id).is_some() || n.spec.role == Role::Manager {
                return Err(ApiError::bad_request(format!(
                    "rpc error: code = FailedPrecondition desc = node {} is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal",
                    n.id
                )));
            }
            if !force && n.status.state != NodeState::Down {
                return Err(ApiError::bad_request(format!(
                    "rpc error: code = FailedPrecondition desc = node {} is not down and can't be removed",
                    n.id
                )));
            }
            n.id.clone()
        };
        self.cluster.propose(Command::RemoveNode { id }).await.map(|_| ()).map_err(ApiError::from)
    }

    /// `POST /swarm/update`: a full spec (omitted fields take Docker's
    /// defaults), token rotation, and `CAConfig.ForceRotate` for a new root CA.
    pub async fn update_swarm(&self, version: u64, spec: SwarmSpec, opts: SwarmUpdate) -> Result<(), ApiError> {
        let mut spec = SwarmSpec::from_request(Some(spec));
        validate_spec(&spec)?;
        let (force_rotate_before, digest, current_root, has_unlock_key) = {
            let st = self.store();
            let c = st.cluster.as_ref().ok_or_else(ApiError::not_in_swarm)?;
            (
                c.swarm.spec.ca_config.force_rotate,
                shoal_security::ca::cert_digest_pem(&c.root_cert_pem).map_err(ApiError::internal)?,
                c.root_cert_pem.clone(),
                !c.unlock_key.is_empty(),
            )
        };
        let key = self.keys.data_key().ok_or_else(|| ApiError::unavailable("this manager does not hold the cluster's data key yet"))?;
        // Autolock: a key when it is turned on or rotated, none when it is
        // turned off (as SwarmKit; a rotation while it is off changes nothing).
        let unlock_key = match (spec.encryption_config.auto_lock_managers, has_unlock_key) {
            (true, false) => Some(seal_new_unlock_key(&key)),
            (true, true) if opts.rotate_manager_unlock_key => Some(seal_new_unlock_key(&key)),
            (false, true) => Some(String::new()),
            _ => None,
        };
        // `swarm ca --rotate --ca-cert --ca-key`: rotate to the given root.
        // The key is sealed like a generated one and never kept in the spec
        // (which every API reader sees).
        let signing_key = zeroize::Zeroizing::new(std::mem::take(&mut spec.ca_config.signing_ca_key));
        let given_root = match (spec.ca_config.signing_ca_cert.is_empty(), signing_key.is_empty()) {
            (true, true) => None,
            (true, false) => {
                return Err(ApiError::bad_request(
                    "rpc error: code = InvalidArgument desc = if a signing CA key is provided, the signing CA cert must also be provided",
                ))
            }
            (false, true) => {
                if spec.ca_config.signing_ca_cert.trim() == current_root.trim() {
                    None
                } else {
                    return Err(ApiError::bad_request(
                        "rpc error: code = InvalidArgument desc = rotating to a CA without its key (an external CA) is not supported by this version of shoald",
                    ));
                }
            }
            (false, false) => {
                let ca = shoal_security::RootCa::from_pem(&spec.ca_config.signing_ca_cert, &signing_key)
                    .map_err(|e| ApiError::bad_request(format!("rpc error: code = InvalidArgument desc = invalid signing CA: {e}")))?;
                (ca.cert_pem().trim() != current_root.trim()).then_some(ca)
            }
        };
        let new_ca = match given_root {
            Some(ca) => Some(ca),
            None if spec.ca_config.force_rotate != force_rotate_before => {
                Some(shoal_security::RootCa::generate().map_err(ApiError::internal)?)
            }
            None => None,
        };
        // The new root signed by the current one, so a node that misses the
        // whole rotation can still verify the managers when it returns.
        let cross_signed = match &new_ca {
            Some(ca) => {
                let keys = self.keys.cluster_keys(&self.cluster.store())?;
                let old = shoal_security::RootCa::from_pem(&current_root, &keys.root_key_pem).map_err(ApiError::internal)?;
                Some(old.cross_sign(ca).map_err(ApiError::internal)?)
            }
            None => None,
        };
        let new_root = new_ca.map(|ca| (ca.cert_pem().to_string(), ClusterRecord::seal(&key, ROOT_KEY_CONTEXT, ca.key_pem())));
        let fresh = |context| ClusterRecord::seal(&key, context, &JoinToken::generate(digest).secret);
        self.cluster
            .propose(Command::UpdateCluster {
                version,
                spec: Box::new(spec),
                worker_secret: opts.rotate_worker_token.then(|| fresh(WORKER_SECRET_CONTEXT)),
                manager_secret: opts.rotate_manager_token.then(|| fresh(MANAGER_SECRET_CONTEXT)),
                new_root,
                cross_signed,
                unlock_key,
            })
            .await?;
        // This manager re-wraps its keys before answering (the others do
        // when the change applies there, `Autolock::run`).
        self.autolock.sync().map_err(ApiError::internal)?;
        Ok(())
    }

    /// `GET /swarm/unlockkey`: the key while autolock is on, else "".
    pub fn unlock_key_text(&self) -> Result<zeroize::Zeroizing<String>, ApiError> {
        Ok(self.keys.cluster_keys(&self.cluster.store())?.unlock_key.unwrap_or_default())
    }
}

/// A fresh unlock key, sealed for the cluster record.
pub fn seal_new_unlock_key(key: &crate::datakey::DataKey) -> String {
    let unlock = shoal_rpc::unlock::UnlockKey::generate();
    ClusterRecord::seal(key, crate::store::UNLOCK_KEY_CONTEXT, &unlock.to_human())
}

pub fn validate_spec(spec: &SwarmSpec) -> Result<(), ApiError> {
    if spec.dispatcher.heartbeat_period < 0 {
        return Err(ApiError::bad_request("invalid heartbeat period: must not be negative"));
    }
    if spec.ca_config.node_cert_expiry != 0 && spec.ca_config.node_cert_expiry < 3_600_000_000_000 {
        return Err(ApiError::bad_request("rpc error: code = InvalidArgument desc = minimum certificate expiry time is: 1h0m0s"));
    }
    if spec.orchestration.task_history_retention_limit < 0 {
        return Err(ApiError::bad_request("invalid task history retention limit: must not be negative"));
    }
    // Kept in the spec but not acted on: refused by name rather than
    // accepted and ignored (their defaults, which clients send back, pass).
    let (ticks, defaults) = ((spec.raft.election_tick, spec.raft.heartbeat_tick), (10, 1));
    if ticks != defaults {
        return Err(ApiError::bad_request(format!(
            "Raft.ElectionTick {} and Raft.HeartbeatTick {} are not supported: Shoal's Raft runs with ElectionTick {} and HeartbeatTick {}",
            ticks.0, ticks.1, defaults.0, defaults.1
        )));
    }
    if spec.raft.keep_old_snapshots != 0 {
        return Err(ApiError::bad_request("Raft.KeepOldSnapshots is not supported: a manager keeps its latest snapshot only"));
    }
    if !spec.ca_config.external_cas.is_empty() {
        return Err(ApiError::bad_request(
            "CAConfig.ExternalCAs (--external-ca) is not supported: the swarm signs with its own root CA (give another one with --ca-cert and --ca-key)",
        ));
    }
    if spec.task_defaults.as_object().is_some_and(|o| o.values().any(|v| !v.is_null() && *v != serde_json::json!({}))) {
        return Err(ApiError::bad_request(
            "TaskDefaults (--log-driver on the swarm) is not supported: tasks log to the json-file log on their node",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swarm_fields_shoal_does_not_act_on_are_refused_by_name() {
        assert!(validate_spec(&SwarmSpec::default()).is_ok(), "Docker's defaults, as clients send them back, pass");
        let refused = |edit: fn(&mut SwarmSpec), field: &str| {
            let mut s = SwarmSpec::default();
            edit(&mut s);
            let e = validate_spec(&s).unwrap_err().message;
            assert!(e.contains(field), "{e}");
        };
        refused(|s| s.raft.election_tick = 20, "Raft.ElectionTick 20");
        refused(|s| s.raft.heartbeat_tick = 2, "Raft.HeartbeatTick 2");
        refused(|s| s.raft.keep_old_snapshots = 1, "Raft.KeepOldSnapshots");
        refused(|s| s.ca_config.external_cas = vec![serde_json::json!({"URL": "https://ca"})], "CAConfig.ExternalCAs");
        refused(|s| s.task_defaults = serde_json::json!({"LogDriver": {"Name": "syslog"}}), "TaskDefaults");
        let s = SwarmSpec { task_defaults: serde_json::json!({"LogDriver": null}), ..Default::default() };
        assert!(validate_spec(&s).is_ok(), "an unset log driver is no setting");
    }
}
