//! The cluster RPC server on port 2377 (`ClusterPort`, a controller on the
//! cluster handle): the three gRPC services of `shoal_rpc` (`Join`,
//! `Dispatcher`, `Managers`), each call checked against what the store says
//! its caller may do now.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use shoal_api::{ApiError, Node, NodeSpec, NodeStatus, Role};
use shoal_rpc::server::{Peer, Services};
use shoal_rpc::status::{from_api, from_call_error, not_leader};
use shoal_rpc::wire::dispatcher::dispatcher_server::Dispatcher as DispatcherService;
use shoal_rpc::wire::join::join_server::Join as JoinService;
use shoal_rpc::wire::managers::managers_server::Managers as ManagersService;
use shoal_rpc::{convert, wire, JoinRequest, JoinResponse, RaftMember};
use shoal_security::{JoinToken, RootCa};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::access::{authorize, until_revoked, Access};
use crate::cluster::Cluster;
use crate::dispatcher::Dispatcher;
use crate::keyfiles::KeyFiles;
use crate::logbroker::LogBroker;
use crate::store::{Command, Store};

type Answer<T> = Result<Response<T>, Status>;
/// A stream of answers (server streaming).
type Outbound<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;
/// Messages of an answer stream buffered before its producer waits.
const STREAM_BUFFER: usize = 16;

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
        let port = self.clone();
        let tls = move || {
            let roots = port.trusted_roots();
            let extra = port.chain_extra();
            match port.keys.creds.read().unwrap().server_config_with(&roots, &extra) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!("cluster TLS config: {e}");
                    None
                }
            }
        };
        let services = Services { join: self.clone(), dispatcher: self.clone(), managers: self, tls };
        shoal_rpc::server::serve(listener, services).await
    }

    /// The caller of `req`, if the store grants it `access`.
    fn caller<T>(&self, req: &Request<T>, access: Access) -> Result<shoal_security::NodeIdentity, Status> {
        authorize(&self.cluster, &Peer::of(req)?, access).map_err(from_api)
    }

    fn not_leader(&self) -> Status {
        not_leader(self.cluster.leader_member().map(|m| m.addr))
    }

    /// Streams what `rx` receives, until it ends, the caller hangs up, or
    /// the store stops granting `access` to the caller (a demotion or
    /// removal applied). Its producer sees `rx` close in each case.
    fn forward<D, W>(&self, id: shoal_security::NodeIdentity, access: Access, mut rx: mpsc::Receiver<D>) -> Outbound<W>
    where
        D: Send + 'static,
        W: for<'a> From<&'a D> + Send + 'static,
    {
        let (out_tx, out_rx) = mpsc::channel::<Result<W, Status>>(1);
        let cluster = self.cluster.clone();
        tokio::spawn(async move {
            let revoked = until_revoked(&cluster, &id, access);
            tokio::pin!(revoked);
            loop {
                tokio::select! {
                    m = rx.recv() => match m {
                        Some(m) => if out_tx.send(Ok(W::from(&m))).await.is_err() { return },
                        None => return,
                    },
                    _ = out_tx.closed() => return,
                    _ = &mut revoked => {
                        tracing::info!("closing a stream of {}: its rights changed", id.node_id);
                        let _ = out_tx.send(Err(Status::permission_denied(format!("node {} may no longer make this call", id.node_id)))).await;
                        return;
                    }
                }
            }
        });
        Box::pin(ReceiverStream::new(out_rx))
    }
}

#[tonic::async_trait]
impl JoinService for ClusterPort {
    async fn join(&self, req: Request<wire::JoinRequest>) -> Answer<wire::JoinResponse> {
        let j = JoinRequest::try_from(req.into_inner()).map_err(Status::invalid_argument)?;
        let joined = self.admit(j).await.map_err(from_api)?;
        Ok(Response::new((&joined).into()))
    }
}

#[tonic::async_trait]
impl DispatcherService for ClusterPort {
    async fn heartbeat(&self, req: Request<wire::HeartbeatRequest>) -> Answer<wire::HeartbeatResponse> {
        let id = self.caller(&req, Access::Node)?;
        let hb = shoal_rpc::HeartbeatRequest::try_from(req.into_inner()).map_err(Status::invalid_argument)?;
        let answer = self.dispatcher.heartbeat(&id.node_id, hb).await.map_err(from_call_error)?;
        Ok(Response::new((&answer).into()))
    }

    async fn renew_cert(&self, req: Request<wire::RenewCertRequest>) -> Answer<wire::CertResponse> {
        let id = self.caller(&req, Access::Node)?;
        let (cert_pem, root_pem) = self.renew(&id.node_id, &req.into_inner().csr_pem).map_err(from_api)?;
        Ok(Response::new(wire::CertResponse { cert_pem, root_pem }))
    }

    async fn assignments(&self, req: Request<wire::AssignmentsRequest>) -> Answer<wire::Assignments> {
        let id = self.caller(&req, Access::Node)?;
        let r = req.into_inner();
        // At most 5 s: the agent's call times out after 10.
        let wait = Duration::from_millis(r.wait_ms.min(5_000));
        let answer = self.dispatcher.assignments(&id.node_id, r.known, r.since, wait).await.map_err(from_call_error)?;
        Ok(Response::new((&answer).into()))
    }

    async fn task_status(&self, req: Request<wire::TaskStatusRequest>) -> Answer<wire::Empty> {
        let id = self.caller(&req, Access::Node)?;
        let updates = convert::task_status_from_wire(req.into_inner()).map_err(Status::invalid_argument)?;
        self.dispatcher.task_status(&id.node_id, updates).await.map_err(from_call_error)?;
        Ok(Response::new(wire::Empty {}))
    }

    async fn attach_network(&self, req: Request<wire::AttachNetworkRequest>) -> Answer<wire::Attachment> {
        let id = self.caller(&req, Access::Node)?;
        let r = req.into_inner();
        let a =
            crate::control::attach(&self.cluster, &id.node_id, &r.container_id, &r.name, &r.network, r.aliases).await.map_err(from_api)?;
        Ok(Response::new(wire::Attachment { attachment: convert::to_json(&a) }))
    }

    async fn detach_network(&self, req: Request<wire::DetachNetworkRequest>) -> Answer<wire::Empty> {
        let id = self.caller(&req, Access::Node)?;
        crate::control::detach(&self.cluster, &id.node_id, &req.into_inner().container_id).await.map_err(from_api)?;
        Ok(Response::new(wire::Empty {}))
    }

    type LogListenStream = Outbound<wire::LogSubscription>;

    async fn log_listen(&self, req: Request<wire::Empty>) -> Answer<Self::LogListenStream> {
        let id = self.caller(&req, Access::Node)?;
        if !self.cluster.is_leader() {
            return Err(self.not_leader());
        }
        let (logs, node_id) = (self.logs.clone(), id.node_id.clone());
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(async move { logs.listen(&node_id, tx).await });
        Ok(Response::new(self.forward(id, Access::Node, rx)))
    }

    async fn log_publish(&self, req: Request<Streaming<wire::LogBatch>>) -> Answer<wire::Empty> {
        let id = self.caller(&req, Access::Node)?;
        if !self.cluster.is_leader() {
            return Err(self.not_leader());
        }
        tokio::select! {
            _ = self.logs.publish_stream(&id.node_id, req.into_inner()) => {}
            _ = until_revoked(&self.cluster, &id, Access::Node) => {}
        }
        Ok(Response::new(wire::Empty {}))
    }

    async fn log_prune(&self, req: Request<wire::LogPruneRequest>) -> Answer<wire::LogPruneResponse> {
        self.caller(&req, Access::Node)?;
        if !self.cluster.is_leader() {
            return Err(self.not_leader());
        }
        Ok(Response::new(wire::LogPruneResponse { gone: self.logs.gone(req.into_inner().task_ids) }))
    }
}

#[tonic::async_trait]
impl ManagersService for ClusterPort {
    async fn propose(&self, req: Request<wire::ProposeRequest>) -> Answer<wire::ProposeResponse> {
        self.caller(&req, Access::Manager)?;
        if !self.cluster.is_leader() {
            return Err(self.not_leader());
        }
        let r = req.into_inner();
        let command: Command =
            serde_json::from_slice(&r.command).map_err(|e| from_api(ApiError::bad_request(format!("bad proposal: {e}"))))?;
        let proposal = if r.proposal == 0 { crate::raft::new_proposal_id() } else { r.proposal };
        use crate::raft::ProposeError;
        match self.cluster.propose_as(proposal, command).await {
            Ok(result) => Ok(Response::new(wire::ProposeResponse { result: convert::to_json(&result) })),
            Err(ProposeError::NotLeader) => Err(self.not_leader()),
            // No answer here: the proposal may still commit (the caller
            // retries under the same ID).
            Err(ProposeError::Timeout) => Err(Status::deadline_exceeded("the proposal was not applied in time")),
            Err(ProposeError::Stopped) => Err(Status::unavailable("raft node is stopped")),
            Err(e @ (ProposeError::Refused(_) | ProposeError::Applied(_))) => Err(from_api(e.into())),
        }
    }

    async fn join_raft(&self, req: Request<wire::JoinRaftRequest>) -> Answer<wire::Members> {
        let id = self.caller(&req, Access::Manager)?;
        if !self.cluster.is_leader() {
            return Err(self.not_leader());
        }
        let wire::JoinRaftRequest { raft_id, addr } = req.into_inner();
        let owner = self.cluster.store().members.get(&raft_id).map(|m| m.node_id.clone());
        if owner.is_some_and(|o| o != id.node_id) {
            return Err(from_api(ApiError::new(403, format!("raft ID {raft_id:x} belongs to another node"))));
        }
        let members = self.cluster.add_member(RaftMember { raft_id, node_id: id.node_id, addr }).await.map_err(from_api)?;
        Ok(Response::new(wire::Members { members: convert::members_to_wire(&members) }))
    }

    async fn leave_raft(&self, req: Request<wire::LeaveRaftRequest>) -> Answer<wire::Empty> {
        let id = self.caller(&req, Access::Manager)?;
        let raft_id = req.into_inner().raft_id;
        // A manager takes only itself out (the leader removes demoted ones
        // on its own, see `membership`).
        let owner = self.cluster.store().members.get(&raft_id).map(|m| m.node_id.clone());
        if owner.is_some_and(|o| o != id.node_id) {
            return Err(from_api(ApiError::new(403, format!("raft member {raft_id:x} is not node {}", id.node_id))));
        }
        if !self.cluster.is_leader() {
            return Err(self.not_leader());
        }
        self.cluster.remove_member(raft_id).await.map_err(from_api)?;
        Ok(Response::new(wire::Empty {}))
    }

    async fn ping(&self, req: Request<wire::Empty>) -> Answer<wire::Pong> {
        self.caller(&req, Access::Manager)?;
        Ok(Response::new(wire::Pong { node_id: self.node_id.clone() }))
    }

    async fn secrets_key(&self, req: Request<wire::Empty>) -> Answer<wire::SecretsKeyResponse> {
        self.caller(&req, Access::Manager)?;
        let key = self.keys.data_key().ok_or_else(|| from_api(ApiError::unavailable("this manager does not hold the secrets key yet")))?;
        let unlock_key = match self.cluster.store().cluster.as_ref().filter(|c| !c.unlock_key.is_empty()) {
            Some(c) => c.open(&key).map_err(|e| from_api(ApiError::internal(e)))?.unlock_key.map(|k| k.to_string()),
            None => None,
        };
        Ok(Response::new(wire::SecretsKeyResponse { key: key.to_text().0, unlock_key }))
    }

    async fn raft(&self, req: Request<Streaming<wire::RaftPiece>>) -> Answer<wire::Empty> {
        let id = self.caller(&req, Access::RaftPeer)?;
        tokio::select! {
            r = raft_stream(&self.cluster, req.into_inner(), &id.node_id) => r?,
            _ = until_revoked(&self.cluster, &id, Access::RaftPeer) => {
                tracing::info!("closing the raft stream of {}: no longer a manager", id.node_id);
                return Err(Status::permission_denied(format!("node {} is not a manager", id.node_id)));
            }
        }
        Ok(Response::new(wire::Empty {}))
    }

    type LogSubscribeStream = Outbound<wire::LogEvent>;

    async fn log_subscribe(&self, req: Request<wire::LogSubscribeRequest>) -> Answer<Self::LogSubscribeStream> {
        let id = self.caller(&req, Access::Manager)?;
        if !self.cluster.is_leader() {
            return Err(self.not_leader());
        }
        let (selector, options) = convert::log_subscribe_from_wire(req.into_inner());
        let logs = self.logs.clone();
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(async move { logs.subscribe_stream(selector, options, tx).await });
        Ok(Response::new(self.forward(id, Access::Manager, rx)))
    }
}

/// Raft messages from a manager, stepped into our node, until the stream
/// ends. raft-rs's own decoder (`protobuf` 2) never sees these bytes: they
/// are read by prost (`wire::RaftMessage`) and converted.
async fn raft_stream(cluster: &Cluster, mut pieces: Streaming<wire::RaftPiece>, node_id: &str) -> Result<(), Status> {
    let mut asm = shoal_rpc::RaftAssembler::default();
    while let Some(piece) = pieces.message().await? {
        let Some(bytes) = asm.push(piece).map_err(Status::invalid_argument)? else { continue };
        let m = crate::raft::wire::decode(&bytes).map_err(Status::invalid_argument)?;
        match raft_sender(&cluster.store(), node_id, m.from) {
            // An ID our store does not know yet passes: a manager being
            // added, or this one catching up (its store is empty until the
            // leader's messages fill it).
            Sender::Owner | Sender::Unknown => cluster.step(m),
            Sender::Impostor => {
                tracing::warn!("dropping raft stream from {node_id}: message claims raft ID {:x}", m.from);
                return Err(Status::permission_denied(format!("raft ID {:x} is not node {node_id}'s", m.from)));
            }
        }
    }
    Ok(())
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

    fn root_ca(&self) -> Result<(RootCa, String, std::time::Duration), ApiError> {
        let st = self.cluster.store();
        let keys = self.keys.cluster_keys(&st)?;
        let c = st.cluster.as_ref().ok_or_else(ApiError::not_in_swarm)?;
        let ca = RootCa::from_pem(&c.root_cert_pem, &keys.root_key_pem).map_err(ApiError::internal)?;
        let expiry = std::time::Duration::from_nanos(c.swarm.spec.ca_config.node_cert_expiry.max(3_600_000_000_000) as u64);
        Ok((ca, c.swarm.id.clone(), expiry))
    }

    /// A node joining with a token: its certificate, and its record.
    async fn admit(&self, req: JoinRequest) -> Result<JoinResponse, ApiError> {
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
    fn renew(&self, node_id: &str, csr_pem: &str) -> Result<(String, String), ApiError> {
        let (ca, cluster_id, expiry) = self.root_ca()?;
        let role = {
            let st = self.cluster.store();
            st.nodes.get(node_id).map(|n| n.spec.role).ok_or_else(|| ApiError::not_found(format!("node {node_id} not found")))?
        };
        let cert_pem = ca.issue(csr_pem, node_id, to_security_role(role), &cluster_id, expiry).map_err(ApiError::bad_request)?;
        Ok((cert_pem, ca.cert_pem().to_string()))
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
