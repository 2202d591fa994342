//! The task resolver in a real namespace: busybox's nslookup inside the
//! task asks 127.0.0.11 over UDP, a TCP client too, and a changed zone is
//! answered at once. Needs root; runs in CI.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, RwLock};

use shoal_overlay::dns::{self, Upstream, Zone};
use shoal_overlay::netlink::Netlink;
use shoal_overlay::netns;

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = netns::remove(&self.0.join("task"));
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn nslookup(ns: &Path, name: &str) -> String {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(["busybox", "nslookup", name, "127.0.0.11"])
        .output()
        .expect("nsenter and busybox (busybox-static) are needed for this test");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_task_resolves_service_names_over_udp_and_tcp() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test builds namespaces and must run as root");
    let dir = Scratch(std::env::temp_dir().join(format!("shoal-dns-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let ns_path = dir.0.join("task");
    netns::create(&ns_path).unwrap();
    let ns = netns::open(&ns_path).unwrap();
    Netlink::open_in(&ns).unwrap().set_up("lo", None).unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let zones: dns::Zones = Arc::new(RwLock::new(HashMap::new()));
    let mut zone = Zone::default();
    zone.add("web", Ipv4Addr::new(10, 0, 1, 2));
    zones.write().unwrap().insert("t1".into(), Arc::new(zone.clone()));
    let server = rt.block_on(async { dns::serve(&ns, "t1", zones.clone(), Upstream::default()) }).unwrap();

    let out = nslookup(&ns_path, "web");
    assert!(out.contains("10.0.1.2"), "{out}");
    // A new task: the next lookup has it, with no delay to wait out.
    zone.add("web", Ipv4Addr::new(10, 0, 1, 9));
    zones.write().unwrap().insert("t1".into(), Arc::new(zone));
    let out = nslookup(&ns_path, "web");
    assert!(out.contains("10.0.1.2") && out.contains("10.0.1.9"), "{out}");
    let out = nslookup(&ns_path, "nothing-here");
    assert!(!out.contains("10.0.1"), "{out}");

    // TCP, from a socket opened inside the task's namespace.
    let mut q = hickory_proto::op::Message::new(42, hickory_proto::op::MessageType::Query, hickory_proto::op::OpCode::Query);
    q.add_query(hickory_proto::op::Query::query(hickory_proto::rr::Name::from_ascii("web.").unwrap(), hickory_proto::rr::RecordType::A));
    let q = q.to_vec().unwrap();
    let mut stream = netns::run_in(&ns, || std::net::TcpStream::connect("127.0.0.11:53").map_err(|e| e.to_string())).unwrap();
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    stream.write_all(&framed).unwrap();
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).unwrap();
    let mut resp = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut resp).unwrap();
    let m = hickory_proto::op::Message::from_vec(&resp).unwrap();
    assert_eq!((m.metadata.id, m.answers.len()), (42, 2));

    server.abort();
}
