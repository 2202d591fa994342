//! The cluster RPC server on port 2377 (`ClusterPort`, a controller on the
//! cluster handle): accepts mutual-TLS connections and routes each request,
//! checking who may make it.

use std::sync::Arc;
use std::time::Duration;

use protobuf::Message as _;
use shoal_api::{ApiError, Node, NodeSpec, NodeStatus, Role};
use shoal_rpc::server::{self, Incoming, Peer, ServerConn};
use shoal_rpc::{JoinRequest, JoinResponse, KeyText, RaftMember, Request, Response};
use shoal_security::{JoinToken, RootCa};
use tokio::net::TcpListener;

use crate::access::{authorize, until_revoked, Access};
use crate::cluster::Cluster;
use crate::dispatcher::Dispatcher;
use crate::keyfiles::KeyFiles;
use crate::logbroker::LogBroker;
use crate::store::{Command, Store};

/// How many connections may be in their TLS handshake at once, and how many
/// handshaken connections without a certificate (joining nodes) may wait
/// for their one `Join` answer. Past either, new connections are closed at
/// once: a flood of them costs a few KiB each, not the manager.
const MAX_HANDSHAKES: usize = 256;
const MAX_ANONYMOUS: usize = 32;
/// A TLS handshake, and a `Join` after it, must each arrive within this.
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);
/// A node's request/response connection with nothing sent for this long is
/// closed (agents call at least every heartbeat; streams are exempt).
const IDLE_LIMIT: Duration = Duration::from_secs(120);

/// The cluster port: what it serves requests with.
pub struct ClusterPort {
    cluster: Cluster,
    keys: KeyFiles,
    /// This manager's node (`Ping`'s answer).
    node_id: String,
    dispatcher: Arc<Dispatcher>,
    logs: Arc<LogBroker>,
}

impl ClusterPort {
    pub fn new(cluster: Cluster, keys: KeyFiles, node_id: String, dispatcher: Arc<Dispatcher>, logs: Arc<LogBroker>) -> Arc<ClusterPort> {
        Arc::new(ClusterPort { cluster, keys, node_id, dispatcher, logs })
    }

    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        let anonymous = Arc::new(tokio::sync::Semaphore::new(MAX_ANONYMOUS));
        loop {
            let Ok((tcp, remote)) = listener.accept().await else { continue };
            let Ok(handshake) = handshakes.clone().try_acquire_owned() else {
                tracing::debug!("refusing a connection from {remote}: {MAX_HANDSHAKES} handshakes under way");
                continue;
            };
            let port = self.clone();
            let anonymous = anonymous.clone();
            tokio::spawn(async move {
                let roots = port.trusted_roots();
                let extra = port.chain_extra();
                let cfg = match port.keys.creds.read().unwrap().server_config_with(&roots, &extra) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!("cluster TLS config: {e}");
                        return;
                    }
                };
                let acceptor = server::acceptor(cfg);
                let accepted = tokio::time::timeout(HANDSHAKE_DEADLINE, server::accept(&acceptor, tcp, remote)).await;
                drop(handshake);
                let Ok(Ok(conn)) = accepted else { return };
                if conn.peer.identity.is_none() {
                    let Ok(_slot) = anonymous.try_acquire_owned() else {
                        tracing::debug!("refusing a caller without a certificate from {remote}: {MAX_ANONYMOUS} already waiting");
                        return;
                    };
                    port.join_conn(conn).await;
                    return;
                }
                port.handle_conn(conn).await;
            });
        }
    }

    /// A caller without a certificate: one `Join`, answered, then the
    /// connection closes (the new node comes back with its certificate).
    async fn join_conn(&self, mut conn: ServerConn) {
        let Ok(Ok(Some(Incoming::Request(req)))) = tokio::time::timeout(HANDSHAKE_DEADLINE, conn.next()).await else { return };
        let resp = match *req {
            Request::Join(j) => self.join(j).await.map(Response::Joined).unwrap_or_else(Response::error),
            _ => Response::error(ApiError::new(403, "a node certificate is required for this call")),
        };
        let _ = conn.respond(&resp).await;
    }

    async fn handle_conn(&self, mut conn: ServerConn) {
        loop {
            let req = match tokio::time::timeout(IDLE_LIMIT, conn.next()).await {
                Ok(Ok(Some(Incoming::Request(r)))) => *r,
                _ => return,
            };
            // Long-lived streams end as soon as the store no longer grants
            // what opened them (a demotion or removal applied).
            if let Request::RaftStream = req {
                let Ok(id) = authorize(&self.cluster, &conn.peer, Access::RaftPeer) else { return };
                tokio::select! {
                    _ = raft_stream(&self.cluster, conn, &id.node_id) => {}
                    _ = until_revoked(&self.cluster, &id, Access::RaftPeer) => {
                        tracing::info!("closing the raft stream of {}: no longer a manager", id.node_id);
                    }
                }
                return;
            }
            if let Request::Logs(r) = req {
                let access = if matches!(r, shoal_rpc::logs::LogRequest::Subscribe(..)) { Access::Manager } else { Access::Node };
                if let Some(id) = &conn.peer.identity {
                    let id = id.clone();
                    tokio::select! {
                        _ = self.logs.serve(conn, r) => {}
                        _ = until_revoked(&self.cluster, &id, access) => {}
                    }
                }
                return;
            }
            let resp = match self.handle(req, &conn.peer).await {
                Ok(r) => r,
                Err(e) => Response::error(e),
            };
            if conn.respond(&resp).await.is_err() {
                return;
            }
        }
    }
}

/// Raft messages from a manager, stepped into our node. raft-rs decodes
/// with the `protobuf` 2 crate, whose parser sees input only from callers
/// the store says may speak Raft.
async fn raft_stream(cluster: &Cluster, mut conn: ServerConn, node_id: &str) {
    while let Ok(Some(Incoming::Raft(bytes))) = conn.next().await {
        let Ok(m) = ::raft::eraftpb::Message::parse_from_bytes(&bytes) else { return };
        let sender = raft_sender(&cluster.store(), node_id, m.from);
        match sender {
            // An ID our store does not know yet passes: a manager being
            // added, or this one catching up (its store is empty until the
            // leader's messages fill it).
            Sender::Owner | Sender::Unknown => cluster.step(m),
            Sender::Impostor => {
                tracing::warn!("dropping raft stream from {node_id}: message claims raft ID {:x}", m.from);
                return;
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Sender {
    Owner,
    Unknown,
    Impostor,
}

/// Whether `node_id` may send a Raft message as `from`: the ID must be the
/// one its node owns in the store. An ID no node owns passes only from a
/// node that owns none (a manager being added).
fn raft_sender(st: &Store, node_id: &str, from: u64) -> Sender {
    match st.members.get(&from) {
        Some(m) if m.node_id == node_id => Sender::Owner,
        Some(_) => Sender::Impostor,
        None if st.member_of_node(node_id).is_some() => Sender::Impostor,
        None => Sender::Unknown,
    }
}

impl ClusterPort {
    /// Roots a peer certificate may chain to: the node's own root and the
    /// cluster's current one (they differ during a CA rotation).
    fn trusted_roots(&self) -> Vec<String> {
        let mut roots = vec![self.keys.creds.read().unwrap().root_pem.clone()];
        let st = self.cluster.store();
        if let Some(c) = &st.cluster {
            if !roots.contains(&c.root_cert_pem) {
                roots.push(c.root_cert_pem.clone());
            }
        }
        // The previous root, so a node that missed the last rotation can
        // come back and renew.
        let previous = &st.root_rotation.previous_root_pem;
        if !previous.is_empty() && !roots.contains(previous) {
            roots.push(previous.clone());
        }
        roots
    }

    /// Certificates to send after ours: the current root signed by the
    /// previous one, when our certificate is under the current root.
    fn chain_extra(&self) -> String {
        let st = self.cluster.store();
        let ours = self.keys.creds.read().unwrap().root_pem.clone();
        match &st.cluster {
            Some(c) if c.root_cert_pem.trim() == ours.trim() => st.root_rotation.cross_signed_pem.clone(),
            _ => String::new(),
        }
    }

    async fn handle(&self, req: Request, peer: &Peer) -> Result<Response, ApiError> {
        match req {
            // Joining is served on connections without a certificate.
            Request::Join(_) => Err(ApiError::bad_request("this node already has a certificate")),
            Request::Heartbeat(hb) => {
                let id = authorize(&self.cluster, peer, Access::Node)?;
                self.dispatcher.heartbeat(&id.node_id, hb).await
            }
            Request::RenewCert { csr_pem } => {
                let id = authorize(&self.cluster, peer, Access::Node)?;
                self.renew(&id.node_id, &csr_pem)
            }
            Request::Propose { proposal, command } => {
                authorize(&self.cluster, peer, Access::Manager)?;
                if !self.cluster.is_leader() {
                    return Ok(self.not_leader());
                }
                let command: Command =
                    serde_json::from_str(command.get()).map_err(|e| ApiError::bad_request(format!("bad proposal: {e}")))?;
                let proposal = if proposal == 0 { crate::raft::new_proposal_id() } else { proposal };
                match self.cluster.propose_as(proposal, command).await {
                    Ok(result) => Ok(Response::Proposed { result }),
                    Err(crate::raft::ProposeError::NotLeader) => Ok(self.not_leader()),
                    Err(e) => Err(e.into()),
                }
            }
            Request::JoinRaft { raft_id, addr } => {
                let id = authorize(&self.cluster, peer, Access::Manager)?;
                if !self.cluster.is_leader() {
                    return Ok(self.not_leader());
                }
                let owner = self.cluster.store().members.get(&raft_id).map(|m| m.node_id.clone());
                if owner.is_some_and(|o| o != id.node_id) {
                    return Err(ApiError::new(403, format!("raft ID {raft_id:x} belongs to another node")));
                }
                self.cluster.add_member(RaftMember { raft_id, node_id: id.node_id, addr }).await.map(Response::Members)
            }
            Request::LeaveRaft { raft_id } => {
                let id = authorize(&self.cluster, peer, Access::Manager)?;
                // A manager takes only itself out (the leader removes
                // demoted ones on its own, see `membership`).
                let owner = self.cluster.store().members.get(&raft_id).map(|m| m.node_id.clone());
                if owner.is_some_and(|o| o != id.node_id) {
                    return Err(ApiError::new(403, format!("raft member {raft_id:x} is not node {}", id.node_id)));
                }
                if !self.cluster.is_leader() {
                    return Ok(self.not_leader());
                }
                self.cluster.remove_member(raft_id).await.map(|_| Response::Ok)
            }
            Request::Ping => {
                authorize(&self.cluster, peer, Access::Manager)?;
                Ok(Response::Pong { node_id: self.node_id.clone() })
            }
            Request::RaftStream => Err(ApiError::bad_request("unexpected raft stream")),
            Request::Assignments { known, wait_ms, since } => {
                let id = authorize(&self.cluster, peer, Access::Node)?;
                // At most 5 s: the agent's call times out after 10.
                self.dispatcher.assignments(&id.node_id, known, since, Duration::from_millis(wait_ms.min(5_000))).await
            }
            Request::TaskStatus { updates } => {
                let id = authorize(&self.cluster, peer, Access::Node)?;
                self.dispatcher.task_status(&id.node_id, updates).await
            }
            Request::Logs(_) => Err(ApiError::bad_request("unexpected log request")),
            Request::SecretsKey => {
                authorize(&self.cluster, peer, Access::Manager)?;
                let key = self.keys.data_key().ok_or_else(|| ApiError::unavailable("this manager does not hold the secrets key yet"))?;
                let unlock_key = match self.cluster.store().cluster.as_ref().filter(|c| !c.unlock_key.is_empty()) {
                    Some(c) => c.open(&key).map_err(ApiError::internal)?.unlock_key.map(|k| KeyText(k.to_string())),
                    None => None,
                };
                Ok(Response::SecretsKey { key: key.to_text(), unlock_key })
            }
            Request::AttachNetwork { container_id, name, network, aliases } => {
                let id = authorize(&self.cluster, peer, Access::Node)?;
                let a = crate::control::attach(&self.cluster, &id.node_id, &container_id, &name, &network, aliases).await?;
                Ok(Response::Attached(Box::new(a)))
            }
            Request::DetachNetwork { container_id } => {
                let id = authorize(&self.cluster, peer, Access::Node)?;
                crate::control::detach(&self.cluster, &id.node_id, &container_id).await.map(|_| Response::Ok)
            }
        }
    }

    fn not_leader(&self) -> Response {
        Response::NotLeader { leader_addr: self.cluster.leader_member().map(|m| m.addr) }
    }

    fn root_ca(&self) -> Result<(RootCa, String, std::time::Duration), ApiError> {
        let st = self.cluster.store();
        let keys = self.keys.cluster_keys(&st)?;
        let c = st.cluster.as_ref().ok_or_else(ApiError::not_in_swarm)?;
        let ca = RootCa::from_pem(&c.root_cert_pem, &keys.root_key_pem).map_err(ApiError::internal)?;
        let expiry = std::time::Duration::from_nanos(c.swarm.spec.ca_config.node_cert_expiry.max(3_600_000_000_000) as u64);
        Ok((ca, c.swarm.id.clone(), expiry))
    }

    async fn join(&self, req: JoinRequest) -> Result<JoinResponse, ApiError> {
        let invalid =
            || ApiError::bad_request("rpc error: code = InvalidArgument desc = A valid join token is necessary to join this cluster");
        crate::dispatcher::bounds::check_description(&req.description)?;
        let token = JoinToken::parse(&req.token).map_err(|_| ApiError::bad_request("invalid join token"))?;
        let (ca, cluster_id, expiry) = self.root_ca()?;
        let keys = self.keys.cluster_keys(&self.cluster.store())?;
        let role = {
            if token.ca_digest != ca.digest() {
                return Err(invalid());
            }
            // Compare against both secrets so the time taken says nothing.
            let is_manager = token.secret_matches(&keys.manager_secret);
            let is_worker = token.secret_matches(&keys.worker_secret);
            if is_manager {
                Role::Manager
            } else if is_worker {
                Role::Worker
            } else {
                return Err(invalid());
            }
        };
        let node_id = shoal_api::id::new_id();
        let sec_role = to_security_role(role);
        let cert_pem = ca.issue(&req.csr_pem, &node_id, sec_role, &cluster_id, expiry).map_err(ApiError::bad_request)?;
        let now = shoal_api::time::now_rfc3339();
        let node = Node {
            id: node_id.clone(),
            created_at: now.clone(),
            updated_at: now,
            spec: NodeSpec { role, ..Default::default() },
            description: req.description,
            status: NodeStatus { addr: req.advertise_addr, ..Default::default() },
            ..Default::default()
        };
        self.cluster.propose(Command::CreateNode { node: Box::new(node) }).await?;
        let managers = self.cluster.store().members.values().cloned().collect();
        Ok(JoinResponse { node_id, cluster_id, role, cert_pem, root_pem: ca.cert_pem().to_string(), managers })
    }

    /// A new certificate for a node's key, for the role its spec says.
    fn renew(&self, node_id: &str, csr_pem: &str) -> Result<Response, ApiError> {
        let (ca, cluster_id, expiry) = self.root_ca()?;
        let role = {
            let st = self.cluster.store();
            st.nodes.get(node_id).map(|n| n.spec.role).ok_or_else(|| ApiError::not_found(format!("node {node_id} not found")))?
        };
        let cert_pem = ca.issue(csr_pem, node_id, to_security_role(role), &cluster_id, expiry).map_err(ApiError::bad_request)?;
        Ok(Response::Cert { cert_pem, root_pem: ca.cert_pem().to_string() })
    }
}

pub fn to_security_role(r: Role) -> shoal_security::Role {
    match r {
        Role::Manager => shoal_security::Role::Manager,
        Role::Worker => shoal_security::Role::Worker,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::check_access;
    use shoal_security::NodeIdentity;
    use std::time::SystemTime;

    fn identity(node: &str, role: shoal_security::Role) -> NodeIdentity {
        NodeIdentity {
            node_id: node.into(),
            role,
            cluster_id: "c1".into(),
            not_before: SystemTime::UNIX_EPOCH,
            not_after: SystemTime::now() + Duration::from_secs(3600),
        }
    }

    /// m1 is a manager and Raft member 1; m2 was a manager (its certificate
    /// still says so) and has been demoted, but is still Raft member 2; w1 is
    /// a worker; gone was removed.
    fn store() -> Store {
        let mut st = Store::default();
        let swarm = shoal_api::Swarm { id: "c1".into(), ..Default::default() };
        st.cluster = Some(crate::store::ClusterRecord {
            swarm,
            root_cert_pem: String::new(),
            root_key_pem: String::new(),
            worker_secret: String::new(),
            manager_secret: String::new(),
            unlock_key: String::new(),
        });
        for (id, role) in [("m1", Role::Manager), ("m2", Role::Worker), ("w1", Role::Worker)] {
            let node = Node { id: id.into(), spec: NodeSpec { role, ..Default::default() }, ..Default::default() };
            st.nodes.insert(id.into(), node);
        }
        for (raft_id, node) in [(1, "m1"), (2, "m2")] {
            st.members.insert(raft_id, RaftMember { raft_id, node_id: node.into(), addr: String::new() });
        }
        st.removed.insert("gone".into());
        st
    }

    #[test]
    fn manager_calls_need_a_manager_role_in_the_store_not_only_in_the_certificate() {
        use shoal_security::Role as Cert;
        let st = store();
        assert!(check_access(&st, &identity("m1", Cert::Manager), Access::Manager).is_ok());
        let demoted = check_access(&st, &identity("m2", Cert::Manager), Access::Manager).unwrap_err();
        assert_eq!((demoted.status, demoted.message.as_str()), (403, "node m2 is not a manager"));
        assert!(check_access(&st, &identity("w1", Cert::Worker), Access::Manager).is_err());
        assert!(check_access(&st, &identity("w1", Cert::Manager), Access::Manager).is_err(), "a worker with a stale manager certificate");
        assert!(check_access(&st, &identity("gone", Cert::Manager), Access::Node).is_err());
        let mut other = identity("m1", Cert::Manager);
        other.cluster_id = "c2".into();
        assert!(check_access(&st, &other, Access::Node).is_err());
    }

    #[test]
    fn raft_streams_stay_open_until_the_membership_change_applies() {
        use shoal_security::Role as Cert;
        let mut st = store();
        // Still a member: its vote is needed to commit its own removal.
        assert!(check_access(&st, &identity("m2", Cert::Manager), Access::RaftPeer).is_ok());
        st.members.remove(&2);
        assert!(check_access(&st, &identity("m2", Cert::Manager), Access::RaftPeer).is_err());
        // A node the store made a manager, before its conf change applied.
        st.nodes.get_mut("w1").unwrap().spec.role = Role::Manager;
        assert!(check_access(&st, &identity("w1", Cert::Manager), Access::RaftPeer).is_ok());
    }

    #[test]
    fn a_raft_message_must_come_from_the_id_its_node_owns() {
        let st = store();
        assert_eq!(raft_sender(&st, "m1", 1), Sender::Owner);
        assert_eq!(raft_sender(&st, "m2", 1), Sender::Impostor, "another member's ID");
        assert_eq!(raft_sender(&st, "m2", 9), Sender::Impostor, "a member speaking as an unknown ID");
        assert_eq!(raft_sender(&st, "new", 9), Sender::Unknown, "a manager being added");
    }
}
