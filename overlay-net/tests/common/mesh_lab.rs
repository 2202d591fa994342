//! Two nodes and a client in real namespaces, for the routing mesh's test
//! and bench: node A (the entry, with the client's link) and node B (the
//! task's node) joined by an underlay veth, the ingress overlay on both, an
//! entry leg on each node, and one task on B with servers that answer with
//! the caller's address (TCP on 80, UDP on 53). Everything goes on drop.

#![allow(dead_code)] // each user takes what it needs

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::PathBuf;

use shoal_overlay::mesh::{self, Backends, PortKey};
use shoal_overlay::netlink::Netlink;
use shoal_overlay::netns;
use shoal_overlay::overlay::{NetworkSpec, NodeConfig, Overlay, Peer};

const NAMESPACES: [&str; 6] = ["client", "host-a", "host-b", "task", "a/ov-4100", "b/ov-4100"];
pub const TABLE: &str = "shoal-test-mesh";

pub struct MeshLab {
    pub dir: PathBuf,
    pub host_a: std::fs::File,
    pub host_b: std::fs::File,
    pub client: std::fs::File,
    pub task: std::fs::File,
    pub ova: Overlay,
    pub ovb: Overlay,
    pub entry_a: Ipv4Addr,
    pub entry_b: Ipv4Addr,
    pub task_ip: Ipv4Addr,
    pub client_addr: Ipv4Addr,
    /// A's address on the client's link (where published ports answer).
    pub a_side: Ipv4Addr,
}

impl Drop for MeshLab {
    fn drop(&mut self) {
        let _ = self.ova.destroy();
        let _ = self.ovb.destroy();
        for name in NAMESPACES {
            let _ = netns::remove(&self.dir.join(name));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Two hosts' underlay: a veth between namespaces `host_a` (198.51.100.1)
/// and `host_b` (198.51.100.2), up, with loopback up on both; their
/// addresses.
pub fn link_hosts(host_a: &std::fs::File, host_b: &std::fs::File) -> (Ipv4Addr, Ipv4Addr) {
    let (ua, ub) = (Ipv4Addr::new(198, 51, 100, 1), Ipv4Addr::new(198, 51, 100, 2));
    let mut a = Netlink::open_in(host_a).unwrap();
    a.add_veth("under0", "under1", host_b).unwrap();
    a.add_addr("under0", ua, 24).unwrap();
    a.set_up("under0", None).unwrap();
    a.set_up("lo", None).unwrap();
    let mut b = Netlink::open_in(host_b).unwrap();
    b.add_addr("under1", ub, 24).unwrap();
    b.set_up("under1", None).unwrap();
    b.set_up("lo", None).unwrap();
    (ua, ub)
}

pub fn sysctl(ns: &std::fs::File, key: &str, value: &str) {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    netns::run_in(ns, || std::fs::write(&path, value).map_err(|e| format!("{path}: {e}"))).unwrap();
}

impl MeshLab {
    pub fn build(tag: &str) -> MeshLab {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(unsafe { libc::geteuid() }, 0, "the routing mesh's namespaces need root");
        let dir = std::env::temp_dir().join(format!("shoal-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for n in ["client", "host-a", "host-b", "task"] {
            netns::create(&dir.join(n)).unwrap();
        }
        let open = |n: &str| netns::open(&dir.join(n)).unwrap();
        let (host_a, host_b, client, task) = (open("host-a"), open("host-b"), open("client"), open("task"));

        // The underlay between the nodes, and the client's own link to A.
        let (ua, ub) = link_hosts(&host_a, &host_b);
        let (a_side, client_addr) = (Ipv4Addr::new(10, 251, 0, 1), Ipv4Addr::new(10, 251, 0, 2));
        let mut a = Netlink::open_in(&host_a).unwrap();
        a.add_veth("cli0", "cli1", &client).unwrap();
        a.add_addr("cli0", a_side, 24).unwrap();
        a.set_up("cli0", None).unwrap();
        let mut c = Netlink::open_in(&client).unwrap();
        c.add_addr("cli1", client_addr, 24).unwrap();
        c.set_up("cli1", None).unwrap();
        c.set_up("lo", None).unwrap();
        c.add_default_route(a_side).unwrap();

        // The ingress network on both nodes: each node's entry, the task on B.
        let spec = NetworkSpec { vni: 4100, subnet: "10.250.1.0/24".parse().unwrap(), gateway: Ipv4Addr::new(10, 250, 1, 1) };
        let node = |key: &str, local, sub: &str, host: &str| NodeConfig {
            key: key.into(),
            netns_dir: dir.join(sub),
            local,
            port: shoal_overlay::overlay::VXLAN_PORT,
            underlay_mtu: 1500,
            underlay_netns: Some(dir.join(host)),
        };
        let mut ova = Overlay::create(&node("aaaaaa", ua, "a", "host-a"), &spec).unwrap();
        let mut ovb = Overlay::create(&node("bbbbbb", ub, "b", "host-b"), &spec).unwrap();
        let (entry_a, entry_b, task_ip) = (Ipv4Addr::new(10, 250, 1, 2), Ipv4Addr::new(10, 250, 1, 3), Ipv4Addr::new(10, 250, 1, 5));
        ova.attach(&host_a, "sig-test", "ovleg-ea", entry_a).unwrap();
        ovb.attach(&host_b, "sig-test", "ovleg-eb", entry_b).unwrap();
        ovb.attach(&task, "eth0", "ovleg-t", task_ip).unwrap();
        ova.set_peers(&[Peer { ip: entry_b, node: ub }, Peer { ip: task_ip, node: ub }]).unwrap();
        ovb.set_peers(&[Peer { ip: entry_a, node: ua }]).unwrap();
        // The task's default route, as its gateway leg gives it in a node:
        // here via its own node, which has no way to the client, so only
        // the return path brings replies back.
        Netlink::open_in(&task).unwrap().add_default_route(entry_b).unwrap();
        sysctl(&host_a, "net.ipv4.ip_forward", "1");
        sysctl(&host_a, "net.ipv4.conf.sig-test.route_localnet", "1");

        MeshLab { dir, host_a, host_b, client, task, ova, ovb, entry_a, entry_b, task_ip, client_addr, a_side }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Servers in the task that answer with the caller's address.
    pub fn serve(&self) {
        let listener = netns::run_in(&self.task, || TcpListener::bind("0.0.0.0:80").map_err(|e| e.to_string())).unwrap();
        std::thread::spawn(move || {
            for mut s in listener.incoming().flatten() {
                let peer = s.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
                let _ = s.write_all(peer.as_bytes());
            }
        });
        let udp = netns::run_in(&self.task, || UdpSocket::bind("0.0.0.0:53").map_err(|e| e.to_string())).unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            while let Ok((_, from)) = udp.recv_from(&mut buf) {
                let _ = udp.send_to(from.ip().to_string().as_bytes(), from);
            }
        });
    }

    /// Installs A's entry table with `ports`.
    pub fn publish(&self, ports: &BTreeMap<PortKey, Backends>) {
        let text = format!("{}{}", mesh::entry_ruleset(TABLE, "sig-test"), mesh::plan(TABLE, &BTreeMap::new(), ports).unwrap_or_default());
        netns::run_in(&self.host_a, || shoal_overlay::vip::apply(&text)).unwrap();
    }

    /// Changes A's entry table from `have` to `want`.
    pub fn republish(&self, have: &BTreeMap<PortKey, Backends>, want: &BTreeMap<PortKey, Backends>) {
        if let Some(text) = mesh::plan(TABLE, have, want) {
            netns::run_in(&self.host_a, || shoal_overlay::vip::apply(&text)).unwrap();
        }
    }
}
