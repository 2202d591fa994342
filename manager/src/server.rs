//! The cluster RPC server on port 2377: accepts mutual-TLS connections and
//! routes each request, checking who may make it.

use std::sync::Arc;
use std::time::Duration;

use protobuf::Message as _;
use shoal_api::{ApiError, Node, NodeSpec, NodeStatus, Role};
use shoal_rpc::server::{self, Incoming, Peer, ServerConn};
use shoal_rpc::{JoinRequest, JoinResponse, RaftMember, Request, Response};
use shoal_security::{JoinToken, NodeIdentity, RootCa};
use tokio::net::TcpListener;

use crate::manager::Manager;
use crate::store::Command;

pub async fn serve(mgr: Arc<Manager>, listener: TcpListener) {
    loop {
        let Ok((tcp, remote)) = listener.accept().await else { continue };
        let mgr = mgr.clone();
        tokio::spawn(async move {
            let roots = mgr.trusted_roots();
            let cfg = match mgr.creds.read().unwrap().server_config(&roots) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("cluster TLS config: {e}");
                    return;
                }
            };
            let acceptor = server::acceptor(cfg);
            let accepted = tokio::time::timeout(Duration::from_secs(10), server::accept(&acceptor, tcp, remote)).await;
            if let Ok(Ok(conn)) = accepted {
                handle_conn(mgr, conn).await;
            }
        });
    }
}

async fn handle_conn(mgr: Arc<Manager>, mut conn: ServerConn) {
    loop {
        let req = match conn.next().await {
            Ok(Some(Incoming::Request(r))) => *r,
            _ => return,
        };
        if let Request::RaftStream = req {
            if let Ok(id) = mgr.authorize(&conn.peer, true) {
                raft_stream(&mgr, conn, &id.node_id).await;
            }
            return;
        }
        if let Request::Logs(r) = req {
            crate::logbroker::serve(mgr, conn, r).await;
            return;
        }
        let resp = match mgr.handle(req, &conn.peer).await {
            Ok(r) => r,
            Err(e) => Response::error(e),
        };
        if conn.respond(&resp).await.is_err() {
            return;
        }
    }
}

/// Raft messages from an authenticated manager, stepped into our node. Only
/// managers get here: raft-rs decodes with the `protobuf` 2 crate, whose
/// parser must not see input from anyone else.
async fn raft_stream(mgr: &Manager, mut conn: ServerConn, node_id: &str) {
    while let Ok(Some(Incoming::Raft(bytes))) = conn.next().await {
        let Ok(m) = ::raft::eraftpb::Message::parse_from_bytes(&bytes) else { return };
        // A manager may speak only for its own Raft ID. IDs not yet in our
        // store (a member being added, or entries not replayed yet) pass.
        let owner = mgr.raft.store.read().unwrap().members.get(&m.from).map(|x| x.node_id.clone());
        if owner.is_some_and(|o| o != node_id) {
            tracing::warn!("dropping raft stream from {node_id}: message claims raft ID {:x}", m.from);
            return;
        }
        mgr.raft.step(m);
    }
}

impl Manager {
    /// Roots a peer certificate may chain to: the node's own root and the
    /// cluster's current one (they differ during a CA rotation).
    pub(crate) fn trusted_roots(&self) -> Vec<String> {
        let mut roots = vec![self.creds.read().unwrap().root_pem.clone()];
        if let Some(c) = &self.raft.store.read().unwrap().cluster {
            if !roots.contains(&c.root_cert_pem) {
                roots.push(c.root_cert_pem.clone());
            }
        }
        roots
    }

    /// The caller's identity, if its certificate belongs to a current member
    /// of this swarm (and to a manager, when `manager_only`).
    pub(crate) fn authorize(&self, peer: &Peer, manager_only: bool) -> Result<NodeIdentity, ApiError> {
        let id = peer
            .identity
            .clone()
            .ok_or_else(|| ApiError::new(403, "a node certificate is required for this call"))?;
        let st = self.raft.store.read().unwrap();
        if let Some(c) = &st.cluster {
            if c.swarm.id != id.cluster_id {
                return Err(ApiError::new(403, "certificate belongs to another swarm"));
            }
        }
        if st.removed.contains(&id.node_id) {
            return Err(ApiError::new(403, format!("node {} was removed from the swarm", id.node_id)));
        }
        if manager_only && id.role != shoal_security::Role::Manager {
            return Err(ApiError::new(403, "this call is for managers only"));
        }
        Ok(id)
    }

    async fn handle(self: &Arc<Self>, req: Request, peer: &Peer) -> Result<Response, ApiError> {
        match req {
            Request::Join(j) => self.join(j).await.map(Response::Joined),
            Request::Heartbeat(hb) => {
                let id = self.authorize(peer, false)?;
                crate::dispatcher::heartbeat(self, &id.node_id, hb).await
            }
            Request::RenewCert { csr_pem } => {
                let id = self.authorize(peer, false)?;
                self.renew(&id.node_id, &csr_pem)
            }
            Request::Propose { command } => {
                self.authorize(peer, true)?;
                if !self.is_leader() {
                    return Ok(Response::NotLeader { leader_addr: self.leader_member().map(|m| m.addr) });
                }
                let command: Command = serde_json::from_value(command)
                    .map_err(|e| ApiError::bad_request(format!("bad proposal: {e}")))?;
                let result = self.raft.propose_local(command, crate::manager::PROPOSE_TIMEOUT).await?;
                Ok(Response::Proposed { result })
            }
            Request::JoinRaft { raft_id, addr } => {
                let id = self.authorize(peer, true)?;
                if !self.is_leader() {
                    return Ok(Response::NotLeader { leader_addr: self.leader_member().map(|m| m.addr) });
                }
                self.add_member(RaftMember { raft_id, node_id: id.node_id, addr }).await
            }
            Request::LeaveRaft { raft_id } => {
                self.authorize(peer, true)?;
                if !self.is_leader() {
                    return Ok(Response::NotLeader { leader_addr: self.leader_member().map(|m| m.addr) });
                }
                self.remove_member(raft_id).await.map(|_| Response::Ok)
            }
            Request::Ping => {
                self.authorize(peer, true)?;
                Ok(Response::Pong { node_id: self.cfg.node_id.clone() })
            }
            Request::RaftStream => Err(ApiError::bad_request("unexpected raft stream")),
            Request::Assignments { known, wait_ms, since } => {
                let id = self.authorize(peer, false)?;
                // At most 5 s: the agent's call times out after 10.
                crate::dispatcher::assignments(self, &id.node_id, known, since, Duration::from_millis(wait_ms.min(5_000))).await
            }
            Request::TaskStatus { updates } => {
                let id = self.authorize(peer, false)?;
                crate::dispatcher::task_status(self, &id.node_id, updates).await
            }
            Request::Logs(_) => Err(ApiError::bad_request("unexpected log request")),
            Request::SecretsKey => {
                self.authorize(peer, true)?;
                let key = self.data_key().ok_or_else(|| ApiError::unavailable("this manager does not hold the secrets key yet"))?;
                Ok(Response::SecretsKey { key: key.to_text() })
            }
        }
    }

    async fn add_member(&self, member: RaftMember) -> Result<Response, ApiError> {
        let already = self.raft.store.read().unwrap().members.get(&member.raft_id).cloned();
        if already.is_none() {
            tracing::info!("adding raft member {:x} ({}) at {}", member.raft_id, member.node_id, member.addr);
            self.raft.transport.add_seed(member.raft_id, member.addr.clone());
            let r = self
                .raft
                .change_membership(::raft::eraftpb::ConfChangeType::AddNode, member, crate::manager::PROPOSE_TIMEOUT)
                .await;
            tracing::info!("raft membership change: {r:?}");
            r?;
        }
        Ok(Response::Members(self.raft.store.read().unwrap().members.values().cloned().collect()))
    }

    /// Removes a Raft member; the leader hands leadership on first if it is
    /// the one leaving.
    pub(crate) async fn remove_member(&self, raft_id: u64) -> Result<(), ApiError> {
        let member = self.raft.store.read().unwrap().members.get(&raft_id).cloned();
        let Some(member) = member else { return Ok(()) };
        if raft_id == self.cfg.raft_id {
            crate::membership::hand_over_leadership(self);
            return Err(ApiError::unavailable("leadership is being transferred; retry"));
        }
        self.raft
            .change_membership(::raft::eraftpb::ConfChangeType::RemoveNode, member, crate::manager::PROPOSE_TIMEOUT)
            .await
            .map(|_| ())
    }

    fn root_ca(&self) -> Result<(RootCa, String, std::time::Duration), ApiError> {
        let st = self.raft.store.read().unwrap();
        let c = st.cluster.as_ref().ok_or_else(ApiError::not_in_swarm)?;
        let ca = RootCa::from_pem(&c.root_cert_pem, &c.root_key_pem).map_err(ApiError::internal)?;
        let expiry = std::time::Duration::from_nanos(c.swarm.spec.ca_config.node_cert_expiry.max(3_600_000_000_000) as u64);
        Ok((ca, c.swarm.id.clone(), expiry))
    }

    async fn join(&self, req: JoinRequest) -> Result<JoinResponse, ApiError> {
        let invalid = || ApiError::bad_request("rpc error: code = InvalidArgument desc = A valid join token is necessary to join this cluster");
        let token = JoinToken::parse(&req.token).map_err(|_| ApiError::bad_request("invalid join token"))?;
        let (ca, cluster_id, expiry) = self.root_ca()?;
        let role = {
            let st = self.raft.store.read().unwrap();
            let c = st.cluster.as_ref().ok_or_else(ApiError::not_in_swarm)?;
            if token.ca_digest != ca.digest() {
                return Err(invalid());
            }
            // Compare against both secrets so the time taken says nothing.
            let is_manager = token.secret_matches(&c.manager_secret);
            let is_worker = token.secret_matches(&c.worker_secret);
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
        self.propose(Command::CreateNode { node: Box::new(node) }).await?;
        let managers = self.raft.store.read().unwrap().members.values().cloned().collect();
        Ok(JoinResponse { node_id, cluster_id, role, cert_pem, root_pem: ca.cert_pem().to_string(), managers })
    }

    /// A new certificate for a node's key, for the role its spec says.
    fn renew(&self, node_id: &str, csr_pem: &str) -> Result<Response, ApiError> {
        let (ca, cluster_id, expiry) = self.root_ca()?;
        let role = {
            let st = self.raft.store.read().unwrap();
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
