//! The routing mesh in real namespaces: a client outside the cluster
//! reaches a published port on node A, whose only task runs on node B.
//! A's entry table DNATs the connection across the ingress overlay; the
//! task sees the client's own address, and its replies go back through A
//! (the return path), for TCP and UDP. A connection from A itself is
//! masqueraded, and a port whose task is gone is refused at once. Needs
//! root; runs in CI.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

use common::mesh_lab::MeshLab;
use shoal_overlay::mesh::ReturnPath;
use shoal_overlay::netns;

/// A TCP request from namespace `ns` to `to`: what the server answered.
fn tcp_ask(ns: &Path, to: &str) -> Result<String, String> {
    let to = to.to_string();
    let mut s = netns::run_in(&netns::open(ns)?, move || {
        TcpStream::connect_timeout(&to.parse().unwrap(), Duration::from_secs(3)).map_err(|e| e.to_string())
    })?;
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    Ok(answer)
}

fn udp_ask(ns: &Path, to: &str) -> Result<String, String> {
    let sock = netns::run_in(&netns::open(ns)?, || UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string()))?;
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    sock.send_to(b"who am i", to).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    let (n, _) = sock.recv_from(&mut buf).map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn a_published_port_answers_on_a_node_without_the_task_and_keeps_the_client_address() {
    let lab = MeshLab::build("mesh");
    let p = |n: &str| lab.path(n);
    let (entry_a, entry_b, task_ip, client_addr) = (lab.entry_a, lab.entry_b, lab.task_ip, lab.client_addr);
    let task = &lab.task;
    lab.serve();

    // A's entry table: 8080/tcp and 5353/udp to the task.
    let mut want = BTreeMap::new();
    want.insert(("tcp".to_string(), 8080), vec![(task_ip, 80)]);
    want.insert(("udp".to_string(), 5353), vec![(task_ip, 53)]);
    lab.publish(&want);

    // Without the return path the reply leaves by the task's default route
    // and never reaches the client.
    assert!(tcp_ask(&p("client"), "10.251.0.1:8080").is_err(), "a reply found its way back without the return path");

    let mut ret = ReturnPath::install(task, "eth0").unwrap();
    assert_eq!(ret.set_entries(task, &BTreeSet::from([entry_a, entry_b])).unwrap(), 2);
    assert_eq!(ret.set_entries(task, &BTreeSet::from([entry_a, entry_b])).unwrap(), 0, "unchanged entries write nothing");
    assert_eq!(tcp_ask(&p("client"), "10.251.0.1:8080").unwrap(), client_addr.to_string(), "the task sees the client's address");
    assert_eq!(udp_ask(&p("client"), "10.251.0.1:5353").unwrap(), client_addr.to_string(), "UDP too");

    // A connection from node A itself goes in masqueraded to A's entry.
    assert_eq!(tcp_ask(&p("host-a"), "127.0.0.1:8080").unwrap(), entry_a.to_string());

    // The task goes: the port is refused at once, not left to time out.
    let gone = BTreeMap::from([(("tcp".to_string(), 8080), vec![]), (("udp".to_string(), 5353), vec![(task_ip, 53)])]);
    lab.republish(&want, &gone);
    let refused = tcp_ask(&p("client"), "10.251.0.1:8080").unwrap_err();
    assert!(refused.contains("refused"), "{refused}");

    // Entry A leaves the mesh: its rule goes from the task.
    assert_eq!(ret.set_entries(task, &BTreeSet::from([entry_b])).unwrap(), 1);
    assert!(udp_ask(&p("client"), "10.251.0.1:5353").is_err(), "replies still routed via a node that left");
}
