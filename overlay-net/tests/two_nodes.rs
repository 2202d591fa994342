//! Two "nodes" (namespaces joined by a veth, the underlay) each build the
//! same overlay network and put a task on it: the tasks reach each other
//! only once each node has the other's endpoint as a peer, full-size
//! packets pass without fragmenting (the MTU leaves room for VXLAN), a
//! sandbox is taken over with its peers after a restart, and removing a
//! peer cuts it off again. Needs root; runs in CI.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use shoal_overlay::netlink::Netlink;
use shoal_overlay::netns;
use shoal_overlay::overlay::{NetworkSpec, NodeConfig, Overlay, Peer};

/// Removes the test's namespaces (and so its links) even when it fails.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        for name in ["host-a", "host-b", "task-a", "task-b", "task-c", "a/ov-4097", "b/ov-4097"] {
            let _ = netns::remove(&self.0.join(name));
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ping(ns: &Path, to: &str, extra: &[&str]) -> bool {
    Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(["ping", "-c", "1", "-W", "1"])
        .args(extra)
        .arg(to)
        .output()
        .expect("nsenter and ping are needed for this test")
        .status
        .success()
}

/// A ping that must get through: tried again for up to 5 s (a neighbour
/// entry left failed by an earlier unanswered ping can drop the first one).
/// What must not get through is asked once, with `ping`.
fn reaches(ns: &Path, to: &str, extra: &[&str]) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if ping(ns, to, extra) {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
    }
}

#[test]
fn tasks_on_two_nodes_talk_over_vxlan_with_static_peers() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test builds namespaces and must run as root");
    let dir = Scratch(std::env::temp_dir().join(format!("shoal-overlay-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let p = |n: &str| dir.0.join(n);
    for n in ["host-a", "host-b", "task-a", "task-b", "task-c"] {
        netns::create(&p(n)).unwrap();
    }
    // The underlay: 198.51.100.1 (a) <-> 198.51.100.2 (b).
    let (ua, ub) = (Ipv4Addr::new(198, 51, 100, 1), Ipv4Addr::new(198, 51, 100, 2));
    let host_b = netns::open(&p("host-b")).unwrap();
    let mut a = Netlink::open_in(&netns::open(&p("host-a")).unwrap()).unwrap();
    a.add_veth("under0", "under1", &host_b).unwrap();
    a.add_addr("under0", ua, 24).unwrap();
    a.set_up("under0", None).unwrap();
    a.set_up("lo", None).unwrap();
    let mut b = Netlink::open_in(&host_b).unwrap();
    b.add_addr("under1", ub, 24).unwrap();
    b.set_up("under1", None).unwrap();
    b.set_up("lo", None).unwrap();

    let spec = NetworkSpec { vni: 4097, subnet: "10.250.0.0/24".parse().unwrap(), gateway: Ipv4Addr::new(10, 250, 0, 1) };
    let node = |key: &str, local, sub: &str, host: &str| NodeConfig {
        key: key.into(),
        netns_dir: p(sub),
        local,
        port: shoal_overlay::overlay::VXLAN_PORT,
        underlay_mtu: 1500,
        underlay_netns: Some(p(host)),
    };
    let mut ova = Overlay::create(&node("aaaaaa", ua, "a", "host-a"), &spec).unwrap();
    let mut ovb = Overlay::create(&node("bbbbbb", ub, "b", "host-b"), &spec).unwrap();
    let (ta, tb) = (Ipv4Addr::new(10, 250, 0, 2), Ipv4Addr::new(10, 250, 0, 3));
    ova.attach(&netns::open(&p("task-a")).unwrap(), "eth0", "ovleg-a", ta).unwrap();
    ovb.attach(&netns::open(&p("task-b")).unwrap(), "eth0", "ovleg-b", tb).unwrap();

    assert!(ping(&p("task-a"), "10.250.0.1", &[]), "the gateway on the local bridge answers");
    assert!(!ping(&p("task-a"), "10.250.0.3", &[]), "no peer yet, no way across");

    assert_eq!(ova.set_peers(&[Peer { ip: tb, node: ub }]).unwrap(), 1);
    assert_eq!(ovb.set_peers(&[Peer { ip: ta, node: ua }]).unwrap(), 1);
    assert_eq!(ova.set_peers(&[Peer { ip: tb, node: ub }]).unwrap(), 0, "an unchanged peer set writes nothing");
    assert!(reaches(&p("task-a"), "10.250.0.3", &[]), "a reaches b over the overlay");
    assert!(reaches(&p("task-b"), "10.250.0.2", &[]), "b reaches a");
    // 1450 - 28 bytes of IP and ICMP headers: a full-size packet, not
    // fragmented, fits the tunnel; one byte more does not fit the MTU.
    assert!(reaches(&p("task-a"), "10.250.0.3", &["-M", "do", "-s", "1422"]));
    assert!(!ping(&p("task-a"), "10.250.0.3", &["-M", "do", "-s", "1423"]));

    // Node a's daemon restarts: its sandbox is taken over as it is, with
    // the peers it holds read back (nothing to write for the same set, and
    // the removal below finds the entry to delete).
    drop(ova);
    let mut ova = Overlay::adopt(&node("aaaaaa", ua, "a", "host-a"), &spec).unwrap();
    assert!(reaches(&p("task-a"), "10.250.0.3", &[]), "taking over changes nothing");
    assert_eq!(ova.set_peers(&[Peer { ip: tb, node: ub }]).unwrap(), 0, "the peer was read back");
    assert!(Overlay::adopt(&node("aaaaaa", ua, "a", "host-a"), &NetworkSpec { vni: 4098, ..spec.clone() }).is_err(), "no such sandbox");

    // The peer goes: a cannot reach b any more.
    assert_eq!(ova.set_peers(&[]).unwrap(), 1);
    assert!(!ping(&p("task-a"), "10.250.0.3", &[]));

    // b's address comes back as a task on node a (same address, same MAC).
    // a's bridge learned that MAC behind the VXLAN port and task-a still
    // has it in its neighbour cache; the new leg's pinned entry sends the
    // very next frame to the new task, before it has sent anything.
    ovb.detach("ovleg-b").unwrap();
    ova.attach(&netns::open(&p("task-c")).unwrap(), "eth0", "ovleg-c", tb).unwrap();
    assert!(reaches(&p("task-a"), "10.250.0.3", &[]), "a reaches the address's new owner on its own node");

    ova.detach("ovleg-a").unwrap();
    ova.destroy().unwrap();
    ovb.destroy().unwrap();
    assert!(!p("a/ov-4097").exists() && !p("b/ov-4097").exists());
}
