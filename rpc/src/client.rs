//! The calling side: one HTTP/2 connection to a manager over mutual TLS (a
//! tonic `Channel` on our own TLS connector), on which any number of calls
//! and streams run at once. Every unary call has a deadline; it travels to
//! the manager too (`grpc-timeout`).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use shoal_security::NodeIdentity;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::convert::{self, BadMessage};
use crate::logs::{LogEvent, LogLine, LogOptions, LogSelector, SubscriptionMessage};
use crate::status::{to_call_error, CallError};
use crate::wire::dispatcher::dispatcher_client::DispatcherClient;
use crate::wire::join::join_client::JoinClient;
use crate::wire::managers::managers_client::ManagersClient;
use crate::{wire, Assignments, HeartbeatRequest, HeartbeatResponse, JoinRequest, JoinResponse, KeyText, RaftMember, TaskStatusUpdate};
use crate::{MANAGER_SERVER_NAME, MAX_ANSWER};

/// A connection to one manager.
#[derive(Clone)]
pub struct Client {
    channel: Channel,
    /// Who answered the last TLS handshake.
    server: Arc<Mutex<Option<NodeIdentity>>>,
}

/// Connects to the manager at `addr` (host:port) within `timeout`,
/// verifying it as "swarm-manager" under the roots in `tls`, and presenting
/// the node certificate `tls` holds, if any.
pub async fn connect(addr: &str, tls: Arc<rustls::ClientConfig>, timeout: Duration) -> Result<Client, CallError> {
    let server = Arc::new(Mutex::new(None));
    let connector = Connector { addr: addr.to_string(), tls, server: server.clone() };
    let endpoint = Endpoint::from_static("http://swarm-manager")
        .connect_timeout(timeout)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(20))
        .keep_alive_while_idle(true)
        .initial_stream_window_size(Some(crate::STREAM_WINDOW))
        .initial_connection_window_size(Some(crate::CONNECTION_WINDOW));
    let channel = tokio::time::timeout(timeout, endpoint.connect_with_connector(connector))
        .await
        .map_err(|_| CallError::Transport(format!("timed out connecting to {addr}")))?
        .map_err(|e| CallError::Transport(format!("connecting to {addr}: {}", error_chain(&e))))?;
    Ok(Client { channel, server })
}

/// An error with its causes ("transport error: ... : certificate unknown"):
/// the join's CA check reads the cause.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

/// TCP, then TLS, for the channel; records who answered.
#[derive(Clone)]
struct Connector {
    addr: String,
    tls: Arc<rustls::ClientConfig>,
    server: Arc<Mutex<Option<NodeIdentity>>>,
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let c = self.clone();
        Box::pin(async move {
            let tcp = TcpStream::connect(&c.addr).await?;
            tcp.set_nodelay(true)?;
            let name = ServerName::try_from(MANAGER_SERVER_NAME).expect("static server name is valid");
            let stream = TlsConnector::from(c.tls).connect(name, tcp).await?;
            *c.server.lock().unwrap() = shoal_security::tls::peer_identity(stream.get_ref().1.peer_certificates());
            Ok(TokioIo::new(stream))
        })
    }
}

fn request<T>(msg: T, timeout: Duration) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(timeout);
    r
}

/// Runs a call within its deadline (also enforced here: a manager that
/// never answers must not hold the caller).
async fn within<T>(timeout: Duration, call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>) -> Result<T, CallError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(s)) => Err(to_call_error(s)),
        Err(_) => Err(CallError::Transport("request timed out".into())),
    }
}

fn bad(e: BadMessage) -> CallError {
    CallError::Transport(format!("a bad answer from the manager: {e}"))
}

impl Client {
    /// Who answered: the identity in the manager's certificate.
    pub fn server_identity(&self) -> Option<NodeIdentity> {
        self.server.lock().unwrap().clone()
    }

    fn join_service(&self) -> JoinClient<Channel> {
        JoinClient::new(self.channel.clone()).max_decoding_message_size(MAX_ANSWER)
    }

    fn dispatcher(&self) -> DispatcherClient<Channel> {
        DispatcherClient::new(self.channel.clone()).max_decoding_message_size(MAX_ANSWER)
    }

    fn managers(&self) -> ManagersClient<Channel> {
        ManagersClient::new(self.channel.clone()).max_decoding_message_size(MAX_ANSWER)
    }

    pub async fn join(&self, req: &JoinRequest, timeout: Duration) -> Result<JoinResponse, CallError> {
        let r = within(timeout, self.join_service().join(request(wire::JoinRequest::from(req), timeout))).await?;
        JoinResponse::try_from(r).map_err(bad)
    }

    pub async fn heartbeat(&self, req: &HeartbeatRequest, timeout: Duration) -> Result<HeartbeatResponse, CallError> {
        let r = within(timeout, self.dispatcher().heartbeat(request(wire::HeartbeatRequest::from(req), timeout))).await?;
        HeartbeatResponse::try_from(r).map_err(bad)
    }

    /// A certificate for the key of `csr_pem`: (certificate, root), PEM.
    pub async fn renew_cert(&self, csr_pem: &str, timeout: Duration) -> Result<(String, String), CallError> {
        let req = wire::RenewCertRequest { csr_pem: csr_pem.to_string() };
        let r = within(timeout, self.dispatcher().renew_cert(request(req, timeout))).await?;
        Ok((r.cert_pem, r.root_pem))
    }

    /// The calling node's tasks (a long poll, see `crate::assignments`).
    pub async fn assignments(&self, known: u64, wait_ms: u64, since: u64, timeout: Duration) -> Result<Assignments, CallError> {
        let req = wire::AssignmentsRequest { known, wait_ms, since };
        let r = within(timeout, self.dispatcher().assignments(request(req, timeout))).await?;
        Assignments::try_from(r).map_err(bad)
    }

    pub async fn task_status(&self, updates: &[TaskStatusUpdate], timeout: Duration) -> Result<(), CallError> {
        within(timeout, self.dispatcher().task_status(request(convert::task_status_to_wire(updates), timeout))).await.map(|_| ())
    }

    /// A standalone container on the calling node joins an attachable
    /// swarm network (`docker run --network`): its address there.
    pub async fn attach_network(
        &self,
        container_id: &str,
        name: &str,
        network: &str,
        aliases: Vec<String>,
        timeout: Duration,
    ) -> Result<shoal_api::network::NetworkAttachment, CallError> {
        let req = wire::AttachNetworkRequest {
            container_id: container_id.to_string(),
            name: name.to_string(),
            network: network.to_string(),
            aliases,
        };
        let r = within(timeout, self.dispatcher().attach_network(request(req, timeout))).await?;
        convert::from_json("attachment", &r.attachment).map_err(bad)
    }

    pub async fn detach_network(&self, container_id: &str, timeout: Duration) -> Result<(), CallError> {
        let req = wire::DetachNetworkRequest { container_id: container_id.to_string() };
        within(timeout, self.dispatcher().detach_network(request(req, timeout))).await.map(|_| ())
    }

    /// The leader's log subscriptions for this node, as they come.
    pub async fn log_listen(&self) -> Result<Incoming<wire::LogSubscription>, CallError> {
        let r = self.dispatcher().log_listen(wire::Empty {}).await.map_err(to_call_error)?;
        Ok(Incoming(r.into_inner()))
    }

    /// Opens the stream that carries one subscription's log lines.
    pub fn log_publish(&self, subscription_id: &str) -> Outgoing<wire::LogBatch, wire::Empty> {
        let mut client = self.dispatcher();
        Outgoing::open(move |s| async move { client.log_publish(s).await }, subscription_id.to_string())
    }

    /// Which of these tasks (whose log files the node keeps) are gone.
    pub async fn log_prune(&self, task_ids: Vec<String>, timeout: Duration) -> Result<Vec<String>, CallError> {
        within(timeout, self.dispatcher().log_prune(request(wire::LogPruneRequest { task_ids }, timeout))).await.map(|r| r.gone)
    }

    /// A store command (as JSON) proposed through the leader; its answer.
    pub async fn propose(&self, proposal: u64, command: Vec<u8>, timeout: Duration) -> Result<serde_json::Value, CallError> {
        let r = within(timeout, self.managers().propose(request(wire::ProposeRequest { proposal, command }, timeout))).await?;
        convert::from_json("result", &r.result).map_err(bad)
    }

    pub async fn join_raft(&self, raft_id: u64, addr: &str, timeout: Duration) -> Result<Vec<RaftMember>, CallError> {
        let req = wire::JoinRaftRequest { raft_id, addr: addr.to_string() };
        within(timeout, self.managers().join_raft(request(req, timeout))).await.map(|r| convert::members_from_wire(r.members))
    }

    pub async fn leave_raft(&self, raft_id: u64, timeout: Duration) -> Result<(), CallError> {
        within(timeout, self.managers().leave_raft(request(wire::LeaveRaftRequest { raft_id }, timeout))).await.map(|_| ())
    }

    /// The answering manager's node ID.
    pub async fn ping(&self, timeout: Duration) -> Result<String, CallError> {
        within(timeout, self.managers().ping(request(wire::Empty {}, timeout))).await.map(|p| p.node_id)
    }

    /// The cluster's data key, and its unlock key while autolock is on.
    pub async fn secrets_key(&self, timeout: Duration) -> Result<(KeyText, Option<KeyText>), CallError> {
        let r = within(timeout, self.managers().secrets_key(request(wire::Empty {}, timeout))).await?;
        Ok((KeyText(r.key), r.unlock_key.map(KeyText)))
    }

    /// Opens a stream of Raft messages to this manager.
    pub fn raft_stream(&self) -> Outgoing<wire::RaftPiece, wire::Empty> {
        let mut client = self.managers();
        Outgoing::open(move |s| async move { client.raft(s).await }, String::new())
    }

    /// Logs from the leader's broker, for an API caller on a follower.
    pub async fn log_subscribe(&self, selector: &LogSelector, options: &LogOptions) -> Result<Incoming<wire::LogEvent>, CallError> {
        let r = self.managers().log_subscribe(convert::log_subscribe_to_wire(selector, options)).await.map_err(to_call_error)?;
        Ok(Incoming(r.into_inner()))
    }
}

/// A stream of messages from the manager.
pub struct Incoming<T>(tonic::Streaming<T>);

impl<T> Incoming<T> {
    /// The next message; `None` once the manager ended the stream.
    pub async fn next_wire(&mut self) -> Result<Option<T>, CallError> {
        self.0.message().await.map_err(to_call_error)
    }
}

impl Incoming<wire::LogSubscription> {
    pub async fn next(&mut self) -> Result<Option<SubscriptionMessage>, CallError> {
        Ok(self.next_wire().await?.map(Into::into))
    }
}

impl Incoming<wire::LogEvent> {
    pub async fn next(&mut self) -> Result<Option<LogEvent>, CallError> {
        self.next_wire().await?.map(LogEvent::try_from).transpose().map_err(bad)
    }
}

/// Messages in this many are queued before `send` waits (HTTP/2 flow
/// control then reaches back to the sender).
const OUTGOING_QUEUE: usize = 8;

type CallResult<R> = Result<tonic::Response<R>, tonic::Status>;

/// A stream of messages to the manager (a client-streaming call).
pub struct Outgoing<T, R> {
    tx: Option<mpsc::Sender<T>>,
    call: tokio::task::JoinHandle<CallResult<R>>,
    /// What every message of the stream names (a log subscription).
    label: String,
}

impl<T: Send + 'static, R: Send + 'static> Outgoing<T, R> {
    fn open<F, Fut>(start: F, label: String) -> Self
    where
        F: FnOnce(tokio_stream::wrappers::ReceiverStream<T>) -> Fut,
        Fut: Future<Output = CallResult<R>> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(OUTGOING_QUEUE);
        let call = tokio::spawn(start(tokio_stream::wrappers::ReceiverStream::new(rx)));
        Outgoing { tx: Some(tx), call, label }
    }

    async fn send_wire(&mut self, msg: T) -> Result<(), CallError> {
        let Some(tx) = &self.tx else { return Err(CallError::Transport("the stream was closed".into())) };
        if tx.send(msg).await.is_ok() {
            return Ok(());
        }
        // The call ended: why is in its answer.
        self.tx = None;
        Err(match (&mut self.call).await {
            Ok(Err(s)) => to_call_error(s),
            Ok(Ok(_)) => CallError::Transport("the manager ended the stream".into()),
            Err(e) => CallError::Transport(e.to_string()),
        })
    }

    /// Whether the manager has ended the call (refused or closed it).
    pub fn is_closed(&self) -> bool {
        self.call.is_finished()
    }

    /// Ends the stream and waits for the manager's answer.
    pub async fn finish(mut self, timeout: Duration) -> Result<R, CallError> {
        self.tx = None;
        within(timeout, async { (&mut self.call).await.unwrap_or_else(|e| Err(tonic::Status::cancelled(e.to_string()))) }).await
    }
}

impl<T, R> Drop for Outgoing<T, R> {
    fn drop(&mut self) {
        self.call.abort();
    }
}

impl Outgoing<wire::RaftPiece, wire::Empty> {
    /// Sends one encoded `wire::RaftMessage`, in pieces when it is larger
    /// than one gRPC message may be.
    pub async fn send_raft(&mut self, encoded: Vec<u8>) -> Result<(), CallError> {
        if encoded.len() <= crate::RAFT_PIECE {
            return self.send_wire(wire::RaftPiece { data: encoded, more: false }).await;
        }
        let mut pieces = encoded.chunks(crate::RAFT_PIECE).peekable();
        while let Some(p) = pieces.next() {
            let more = pieces.peek().is_some();
            self.send_wire(wire::RaftPiece { data: p.to_vec(), more }).await?;
        }
        Ok(())
    }
}

impl Outgoing<wire::LogBatch, wire::Empty> {
    /// Sends log lines of the subscription; `done` ends it (non-follow).
    pub async fn send_lines(&mut self, lines: &[LogLine], done: bool) -> Result<(), CallError> {
        let batch = wire::LogBatch { subscription_id: self.label.clone(), lines: lines.iter().map(Into::into).collect(), done };
        self.send_wire(batch).await
    }
}
