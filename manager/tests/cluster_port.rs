//! The cluster port (2377) of a real manager on loopback, attacked the ways
//! issue 7 found: a demoted manager's certificate, and callers without one
//! sending huge frames or holding connections open.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{node, start};
use shoal_api::{NodeSpec, Role};
use shoal_manager::store::Command;
use shoal_rpc::{client, Request, Response};
use tokio::io::AsyncWriteExt;

fn refused(r: std::io::Result<Response>) -> String {
    match r {
        Ok(Response::Error { status: 403, message }) => message,
        other => panic!("expected a 403, got {other:?}"),
    }
}

/// Waits until the server ends `conn` (end of stream or an error).
async fn closed_within(conn: &mut client::Conn, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match tokio::time::timeout(deadline - Instant::now(), conn.recv()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(_) => return true,
            Err(_) => return false,
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_manager_loses_every_manager_call_and_its_streams() {
    let c = start().await;
    c.mgr.propose(Command::CreateNode { node: Box::new(node("m2", Role::Manager)) }).await.unwrap();
    let m2 = c.client_as("m2", shoal_security::Role::Manager);

    // As a manager, m2 may ping and open a Raft stream.
    assert!(matches!(c.call(&m2, &Request::Ping).await.unwrap(), Response::Pong { .. }));
    let mut raft = client::connect(&c.addr, m2.clone(), Duration::from_secs(5)).await.unwrap();
    raft.start_raft_stream().await.unwrap();
    let mut logs = client::connect(&c.addr, m2.clone(), Duration::from_secs(5)).await.unwrap();
    logs.send(&Request::Logs(shoal_rpc::logs::LogRequest::Subscribe(
        Default::default(),
        shoal_rpc::logs::LogOptions { follow: true, stdout: true, ..Default::default() },
    )))
    .await
    .unwrap();
    // The streams are open: another round trip completes while they are.
    assert!(matches!(c.call(&m2, &Request::Ping).await.unwrap(), Response::Pong { .. }));
    assert!(!closed_within(&mut raft, Duration::from_millis(200)).await, "the raft stream was refused at once");

    // Demoted: its certificate still says manager.
    let version = c.mgr.cluster.store().nodes["m2"].version.index;
    c.mgr
        .propose(Command::UpdateNodeSpec { id: "m2".into(), version, spec: NodeSpec { role: Role::Worker, ..Default::default() } })
        .await
        .unwrap();

    let propose = Request::Propose {
        proposal: 7,
        command: serde_json::value::to_raw_value(&Command::UpdateNodeSpec {
            id: "m2".into(),
            version: version + 1,
            spec: NodeSpec { role: Role::Manager, ..Default::default() },
        })
        .unwrap(),
    };
    for req in [
        propose,
        Request::Ping,
        Request::SecretsKey,
        Request::JoinRaft { raft_id: 2, addr: "127.0.0.1:1".into() },
        Request::LeaveRaft { raft_id: 1 },
    ] {
        let what = format!("{req:?}");
        let msg = refused(c.call(&m2, &req).await);
        assert_eq!(msg, "node m2 is not a manager", "{what}");
    }
    assert_eq!(c.mgr.cluster.store().nodes["m2"].spec.role, Role::Worker, "the self-promotion did not land");
    assert_eq!(c.mgr.cluster.store().members.len(), 1);
    assert!(closed_within(&mut raft, Duration::from_secs(10)).await, "the raft stream stayed open after the demotion");
    assert!(closed_within(&mut logs, Duration::from_secs(10)).await, "the log subscription stayed open after the demotion");
    // A new Raft stream is refused too.
    let mut again = client::connect(&c.addr, m2.clone(), Duration::from_secs(5)).await.unwrap();
    again.start_raft_stream().await.unwrap();
    assert!(closed_within(&mut again, Duration::from_secs(10)).await);

    // Node calls still work for it (it is a worker now).
    let hb = Request::Heartbeat(shoal_rpc::HeartbeatRequest { addr: "127.0.0.1".into(), description: None });
    assert!(matches!(c.call(&m2, &hb).await.unwrap(), Response::Heartbeat(_)));
    c.mgr.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_may_not_speak_raft_for_another_member() {
    let c = start().await;
    c.mgr.propose(Command::CreateNode { node: Box::new(node("m2", Role::Manager)) }).await.unwrap();
    let m2 = c.client_as("m2", shoal_security::Role::Manager);
    let mut raft = client::connect(&c.addr, m2, Duration::from_secs(5)).await.unwrap();
    raft.start_raft_stream().await.unwrap();
    // A heartbeat that claims to come from raft ID 1 (m1's).
    let mut m = raft::eraftpb::Message::default();
    m.set_msg_type(raft::eraftpb::MessageType::MsgHeartbeat);
    m.from = 1;
    m.to = 1;
    let bytes = protobuf::Message::write_to_bytes(&m).unwrap();
    raft.send_raft(&bytes).await.unwrap();
    assert!(closed_within(&mut raft, Duration::from_secs(10)).await);
    c.mgr.stop();
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_without_a_certificate_cannot_exhaust_the_manager() {
    let c = start().await;
    let anon = c.anonymous();

    // Anything but Join is refused unread: no answer, the connection ends.
    let propose = Request::Propose {
        proposal: 8,
        command: serde_json::value::to_raw_value(&serde_json::json!({"RemoveNode": {"id": "m1"}})).unwrap(),
    };
    assert!(c.call(&anon, &propose).await.is_err());
    assert!(c.call(&anon, &Request::SecretsKey).await.is_err());

    // Four 60 MiB frames of nested arrays (each took ~500 MiB when the whole
    // frame was read and parsed as JSON before the caller was known).
    let before = rss_kib();
    let chunk = vec![b'['; 1 << 20];
    for _ in 0..4 {
        let mut conn = raw_tls(&c.addr, anon.clone()).await;
        let len: u32 = 60 << 20;
        let _ = conn.write_all(&len.to_be_bytes()).await;
        let _ = conn.write_all(&[1]).await;
        for _ in 0..60 {
            if conn.write_all(&chunk).await.is_err() {
                break;
            }
        }
    }
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "the manager's RSS grew by {grown} KiB");

    // Many idle connections without a certificate: past the limit they are
    // closed at once, the rest when their Join does not come, and managers
    // are served all along.
    let mut idle = Vec::new();
    for _ in 0..64 {
        idle.push(client::connect(&c.addr, anon.clone(), Duration::from_secs(5)).await.unwrap());
    }
    let m1 = c.client_as("m1", shoal_security::Role::Manager);
    assert!(matches!(c.call(&m1, &Request::Ping).await.unwrap(), Response::Pong { .. }));
    for conn in idle.iter_mut() {
        assert!(closed_within(conn, Duration::from_secs(30)).await, "an idle connection without a certificate stayed open");
    }
    // A node's frame over its cap ends its connection too.
    let w = c.client_as("w1", shoal_security::Role::Worker);
    c.mgr.propose(Command::CreateNode { node: Box::new(node("w1", Role::Worker)) }).await.unwrap();
    let big = Request::TaskStatus {
        updates: (0..40_000).map(|i| shoal_rpc::TaskStatusUpdate { task_id: format!("{i:0>100}"), status: Default::default() }).collect(),
    };
    assert!(c.call(&w, &big).await.is_err(), "a 5 MiB frame from a worker was read");
    c.mgr.stop();
}

async fn raw_tls(addr: &str, tls: Arc<rustls::ClientConfig>) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(shoal_rpc::MANAGER_SERVER_NAME).unwrap();
    tokio_rustls::TlsConnector::from(tls).connect(name, tcp).await.unwrap()
}
