//! The cluster port (2377) of a real manager on loopback, attacked the ways
//! issue 7 found: a demoted manager's certificate, and callers without one
//! sending huge messages or holding connections open.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{node, start};
use shoal_api::{ApiError, NodeSpec, Role};
use shoal_manager::store::Command;
use shoal_rpc::client::{Client, Incoming, Outgoing};
use shoal_rpc::CallError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(10);

fn refused<T: std::fmt::Debug>(r: Result<T, CallError>) -> String {
    match r {
        Err(CallError::Api(ApiError { status: 403, message })) => message,
        other => panic!("expected a 403, got {other:?}"),
    }
}

/// Whether the manager ends a stream it receives within `limit`.
async fn ended_within<T: Send + 'static, R: Send + 'static>(s: &Outgoing<T, R>, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if s.is_closed() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.is_closed()
}

/// Whether the manager ends a stream it sends within `limit`.
async fn answers_end_within<T>(s: &mut Incoming<T>, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline.into(), s.next_wire()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(_) => return true,
            Err(_) => return false,
        }
    }
}

/// A Raft message from `from`, as a stream carries it.
fn raft_message(from: u64) -> Vec<u8> {
    let mut m = raft::eraftpb::Message::default();
    m.set_msg_type(raft::eraftpb::MessageType::MsgHeartbeatResponse);
    m.from = from;
    m.to = 1;
    shoal_manager::testing::encode_raft_message(&m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_manager_loses_every_manager_call_and_its_streams() {
    let c = start().await;
    c.mgr.propose(Command::CreateNode { node: Box::new(node("m2", Role::Manager)) }).await.unwrap();
    let m2: Client = c.connect(&c.client_as("m2", shoal_security::Role::Manager)).await;

    // As a manager, m2 may ping and open a Raft stream and a log stream.
    assert_eq!(m2.ping(T).await.unwrap(), "m1");
    let mut raft = m2.raft_stream();
    raft.send_raft(raft_message(2)).await.unwrap();
    let follow = shoal_rpc::logs::LogOptions { follow: true, stdout: true, ..Default::default() };
    let mut logs = m2.log_subscribe(&Default::default(), &follow).await.unwrap();
    // The streams are open: another round trip completes while they are.
    assert_eq!(m2.ping(T).await.unwrap(), "m1");
    assert!(!ended_within(&raft, Duration::from_millis(200)).await, "the raft stream was refused at once");

    // Demoted: its certificate still says manager.
    let version = c.mgr.cluster.store().nodes["m2"].version.index;
    c.mgr
        .propose(Command::UpdateNodeSpec { id: "m2".into(), version, spec: NodeSpec { role: Role::Worker, ..Default::default() } })
        .await
        .unwrap();

    let promote = serde_json::to_vec(&Command::UpdateNodeSpec {
        id: "m2".into(),
        version: version + 1,
        spec: NodeSpec { role: Role::Manager, ..Default::default() },
    })
    .unwrap();
    let not_a_manager = "node m2 is not a manager";
    assert_eq!(refused(m2.propose(7, promote, T).await), not_a_manager, "propose");
    assert_eq!(refused(m2.ping(T).await), not_a_manager, "ping");
    assert_eq!(refused(m2.secrets_key(T).await), not_a_manager, "secrets key");
    assert_eq!(refused(m2.join_raft(2, "127.0.0.1:1", T).await), not_a_manager, "join raft");
    assert_eq!(refused(m2.leave_raft(1, T).await), not_a_manager, "leave raft");
    assert_eq!(c.mgr.cluster.store().nodes["m2"].spec.role, Role::Worker, "the self-promotion did not land");
    assert_eq!(c.mgr.cluster.store().members.len(), 1);
    assert!(ended_within(&raft, T).await, "the raft stream stayed open after the demotion");
    assert!(answers_end_within(&mut logs, T).await, "the log subscription stayed open after the demotion");
    // A new Raft stream is refused too.
    let mut again = m2.raft_stream();
    let _ = again.send_raft(raft_message(2)).await;
    assert!(ended_within(&again, T).await);

    // Node calls still work for it (it is a worker now).
    let hb = shoal_rpc::HeartbeatRequest { addr: "127.0.0.1".into(), description: None };
    m2.heartbeat(&hb, T).await.unwrap();
    c.mgr.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_may_not_speak_raft_for_another_member() {
    let c = start().await;
    c.mgr.propose(Command::CreateNode { node: Box::new(node("m2", Role::Manager)) }).await.unwrap();
    let m2 = c.connect(&c.client_as("m2", shoal_security::Role::Manager)).await;
    let mut raft = m2.raft_stream();
    // A message that claims to come from raft ID 1 (m1's).
    raft.send_raft(raft_message(1)).await.unwrap();
    assert!(ended_within(&raft, T).await);
    let err = raft.finish(T).await.unwrap_err();
    assert!(err.to_string().contains("raft ID 1 is not node m2's"), "{err}");
    c.mgr.stop();
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A caller without a certificate that starts a gRPC message of `claimed`
/// bytes to `path` and keeps sending as long as HTTP/2 lets it. Returns how
/// many bytes the manager let it send, and whether the manager ended the
/// stream (or the connection).
async fn push_oversized(addr: String, tls: Arc<rustls::ClientConfig>, path: &'static str, claimed: u32) -> (usize, bool) {
    let io = raw_tls(&addr, tls).await;
    let (client, conn) = h2::client::handshake(io).await.unwrap();
    tokio::spawn(conn);
    let mut client = client.ready().await.unwrap();
    let req = http::Request::post(format!("http://swarm-manager{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (answer, mut body) = client.send_request(req, false).unwrap();
    let mut prefix = vec![0u8];
    prefix.extend_from_slice(&claimed.to_be_bytes());
    let chunk = bytes::Bytes::from(vec![b'['; 64 << 10]);
    let mut sent = 0usize;
    let mut first = Some(bytes::Bytes::from(prefix));
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && sent < claimed as usize {
        body.reserve_capacity(chunk.len());
        let granted = tokio::time::timeout_at(deadline.into(), std::future::poll_fn(|cx| body.poll_capacity(cx))).await;
        match granted {
            Ok(Some(Ok(n))) if n > 0 => {
                let data = first.take().unwrap_or_else(|| chunk.slice(..n.min(chunk.len())));
                sent += data.len();
                if body.send_data(data, false).is_err() {
                    break;
                }
            }
            Ok(Some(Ok(_))) => continue,
            // The stream or the connection ended, or no more room came.
            _ => break,
        }
    }
    let ended = tokio::time::timeout(Duration::from_secs(5), answer).await.is_ok();
    (sent, ended)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_without_a_certificate_cannot_exhaust_the_manager() {
    let c = start().await;
    let anon_tls = c.anonymous();
    let anon = c.connect(&anon_tls).await;

    // Only Join is served to them: anything else is refused unread.
    let remove = serde_json::to_vec(&serde_json::json!({"RemoveNode": {"id": "m1"}})).unwrap();
    assert!(anon.propose(8, remove, T).await.is_err());
    assert!(anon.secrets_key(T).await.is_err());
    assert!(c.mgr.cluster.store().nodes.contains_key("m1"));

    // Four 60 MiB messages of nested arrays (each took ~500 MiB when a
    // whole frame was read and parsed as JSON before the caller was known):
    // the manager lets each sender put at most its small window in flight,
    // refuses the message from its length, and its RSS does not grow.
    let before = rss_kib();
    let pushes = (0..4).map(|_| push_oversized(c.addr.clone(), anon_tls.clone(), "/shoal.cluster.v1.Join/Join", 60 << 20));
    for (sent, ended) in futures_join(pushes).await {
        assert!(sent <= 2 * shoal_rpc::caps::PRE_AUTH, "the manager took {sent} bytes of an oversized join");
        assert!(ended, "the oversized join was not ended");
    }
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "the manager's RSS grew by {grown} KiB");

    // Many idle connections without a certificate: past the limit they are
    // closed at once, the rest after their short lifetime, and managers are
    // served all along.
    let mut idle = Vec::new();
    for _ in 0..64 {
        idle.push(raw_tls(&c.addr, anon_tls.clone()).await);
    }
    let m1 = c.connect(&c.client_as("m1", shoal_security::Role::Manager)).await;
    assert_eq!(m1.ping(T).await.unwrap(), "m1");
    for conn in idle.iter_mut() {
        let mut buf = [0u8; 256];
        let closed = async {
            loop {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        };
        assert!(
            tokio::time::timeout(Duration::from_secs(30), closed).await.is_ok(),
            "an idle connection without a certificate stayed open"
        );
    }

    // A node's message over its cap is refused too.
    c.mgr.propose(Command::CreateNode { node: Box::new(node("w1", Role::Worker)) }).await.unwrap();
    let w = c.connect(&c.client_as("w1", shoal_security::Role::Worker)).await;
    let big: Vec<shoal_rpc::TaskStatusUpdate> =
        (0..40_000).map(|i| shoal_rpc::TaskStatusUpdate { task_id: format!("{i:0>100}"), status: Default::default() }).collect();
    let err = w.task_status(&big, T).await.unwrap_err();
    assert!(err.to_string().contains("message length too large"), "a 5 MiB message from a worker was read: {err}");
    // And a worker may not call the managers' service at all.
    let err = w.ping(T).await.unwrap_err();
    assert!(err.to_string().contains("a manager certificate is required"), "{err}");
    c.mgr.stop();
}

/// Runs the futures at once; their outputs in order.
async fn futures_join<F: std::future::Future + Send + 'static>(fs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F::Output: Send,
{
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

async fn raw_tls(addr: &str, tls: Arc<rustls::ClientConfig>) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(shoal_rpc::MANAGER_SERVER_NAME).unwrap();
    let mut s = tokio_rustls::TlsConnector::from(tls).connect(name, tcp).await.unwrap();
    s.flush().await.unwrap();
    s
}
