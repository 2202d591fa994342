//! VIP balancing in a real namespace: connections from a client task to a
//! service's VIP spread over its backends, the backend sees the client's
//! own address, a backend taken out gets no new connection, and a service
//! with none refuses at once. Needs root and nft; runs in CI.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use shoal_overlay::netns;
use shoal_overlay::overlay::{NetworkSpec, NodeConfig, Overlay};
use shoal_overlay::vip::Balancer;

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        for n in ["host", "client", "b1", "b2", "ov/ov-4200"] {
            let _ = netns::remove(&self.0.join(n));
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server in namespace `ns` that answers each connection with its name
/// and the address it saw the caller at.
fn serve(ns: &std::fs::File, name: &'static str) {
    let l = netns::run_in(ns, || TcpListener::bind("0.0.0.0:8080").map_err(|e| e.to_string())).unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut s = s;
            let peer = s.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
            let _ = s.write_all(format!("{name} {peer}").as_bytes());
        }
    });
}

fn call(client: &std::fs::File, vip: Ipv4Addr) -> Result<String, String> {
    let mut s = netns::run_in(client, || {
        TcpStream::connect_timeout(&SocketAddr::from((vip, 8080)), Duration::from_secs(2)).map_err(|e| e.to_string())
    })?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

#[test]
fn connections_to_a_vip_spread_over_its_backends() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test builds namespaces and must run as root");
    let dir = Scratch(std::env::temp_dir().join(format!("shoal-vip-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let p = |n: &str| dir.0.join(n);
    for n in ["host", "client", "b1", "b2"] {
        netns::create(&p(n)).unwrap();
    }
    let cfg = NodeConfig {
        key: "cccccc".into(),
        netns_dir: p("ov"),
        local: Ipv4Addr::new(198, 51, 100, 9),
        port: 4789,
        underlay_mtu: 1500,
        underlay_netns: Some(p("host")),
    };
    let spec = NetworkSpec { vni: 4200, subnet: "10.250.1.0/24".parse().unwrap(), gateway: Ipv4Addr::new(10, 250, 1, 1) };
    let ov = Overlay::create(&cfg, &spec).unwrap();
    let ip = |n: u8| Ipv4Addr::new(10, 250, 1, n);
    let ns: HashMap<&str, std::fs::File> = ["client", "b1", "b2"].iter().map(|n| (*n, netns::open(&p(n)).unwrap())).collect();
    ov.attach(&ns["client"], "eth0", "leg-c", ip(2)).unwrap();
    ov.attach(&ns["b1"], "eth0", "leg-b1", ip(3)).unwrap();
    ov.attach(&ns["b2"], "eth0", "leg-b2", ip(4)).unwrap();
    serve(&ns["b1"], "b1");
    serve(&ns["b2"], "b2");

    let vip = ip(100);
    let mut lb = Balancer::default();
    lb.update(&ns["client"], BTreeMap::from([("web".to_string(), (vip, vec![ip(3), ip(4)]))])).unwrap();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..40 {
        let answer = call(&ns["client"], vip).unwrap();
        let (name, peer) = answer.split_once(' ').unwrap();
        assert_eq!(peer, "10.250.1.2", "the backend sees the caller's own address");
        *seen.entry(name.to_string()).or_default() += 1;
    }
    assert_eq!(seen.len(), 2, "both backends got connections: {seen:?}");

    // b2 leaves: no new connection goes to it.
    lb.update(&ns["client"], BTreeMap::from([("web".to_string(), (vip, vec![ip(3)]))])).unwrap();
    for _ in 0..10 {
        assert!(call(&ns["client"], vip).unwrap().starts_with("b1 "));
    }
    // None left: refused at once, not a hang.
    lb.update(&ns["client"], BTreeMap::from([("web".to_string(), (vip, vec![]))])).unwrap();
    let e = call(&ns["client"], vip).unwrap_err();
    assert!(e.contains("refused"), "{e}");
    // A backend again, then the service goes: its VIP is just an address
    // nobody has.
    lb.update(&ns["client"], BTreeMap::from([("web".to_string(), (vip, vec![ip(4)]))])).unwrap();
    assert!(call(&ns["client"], vip).unwrap().starts_with("b2 "));
    lb.update(&ns["client"], BTreeMap::new()).unwrap();
    assert!(call(&ns["client"], vip).is_err());
}
