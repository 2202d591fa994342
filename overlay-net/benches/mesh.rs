//! Figures for the routing mesh and VIP balancing (root; real namespaces
//! and nftables): `cargo bench -p shoal-overlay --bench mesh`.
//!
//! 1. The cost of one backend change, with 10 and with 1,000 published
//!    ports (and VIP services) of 10 tasks each already installed: the
//!    time to plan and apply the nft text for that one change.
//! 2. Requests through the mesh against the same requests straight to the
//!    task, over the same path (client -> node A -> overlay -> task on B):
//!    sequential TCP connect + answer + close, p50/p99 and requests/s.
//! 3. One TCP stream's throughput from node A to the task on B over the
//!    overlay, against node A to node B over their plain link (the
//!    underlay the overlay runs on).
//! 4. The same between two tasks over an encrypted overlay (`--opt
//!    encrypted`: VXLAN inside WireGuard, boringtun in userspace).

#[path = "../tests/common/mesh_lab.rs"]
mod mesh_lab;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use shoal_overlay::mesh::{self, Backends, PortKey, ReturnPath};
use shoal_overlay::netns;
use shoal_overlay::vip::Balancer;

const CHANGES: usize = 50;
const REQUESTS: usize = 2000;

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn backends(i: usize, n: usize) -> Backends {
    (0..n).map(|j| (Ipv4Addr::from(0x0a40_0000 + (i * 16 + j) as u32), 80)).collect()
}

fn rule_updates(count: usize) {
    let dir = std::env::temp_dir().join(format!("shoal-rules-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("node");
    netns::create(&path).unwrap();
    let ns = netns::open(&path).unwrap();

    // The entry table with `count` ports of 10 tasks.
    let table = "bench-mesh";
    let mut ports: BTreeMap<PortKey, Backends> = (0..count).map(|i| (("tcp".to_string(), 10_000 + i as u32), backends(i, 10))).collect();
    // The worker keeps one nftables context for its own namespace (see
    // `nftables`); this one is made, and kept, in the bench's namespace.
    let mut nft = netns::run_in(&ns, || Ok(shoal_overlay::nftables::Nft::here())).unwrap();
    let start = Instant::now();
    let text = format!("{}{}", mesh::entry_ruleset(table, "sig-bench"), mesh::plan(table, &BTreeMap::new(), &ports).unwrap());
    nft.run(&text).unwrap();
    let load = start.elapsed();
    let mut times = Vec::new();
    for k in 0..CHANGES {
        let mut want = ports.clone();
        let key = ("tcp".to_string(), 10_000 + (k * 7 % count) as u32);
        let b = want.get_mut(&key).unwrap();
        if b.len() == 10 {
            b.pop();
        } else {
            *b = backends(k * 7 % count, 10);
        }
        let t = Instant::now();
        let text = mesh::plan(table, &ports, &want).unwrap();
        nft.run(&text).unwrap();
        times.push(t.elapsed());
        ports = want;
    }
    println!(
        "mesh entry, {count} ports x 10 tasks: first load {}, one backend change p50 {} p99 {}",
        ms(load),
        ms(pct(&mut times, 0.5)),
        ms(pct(&mut times, 0.99))
    );

    // A task's VIP balancer with `count` services of 10 tasks, in a
    // namespace of its own as a task's is (a context's cache covers every
    // table of its namespace).
    let task_path = dir.join("task");
    netns::create(&task_path).unwrap();
    let task = netns::open(&task_path).unwrap();
    let mut services: BTreeMap<String, (Ipv4Addr, Vec<Ipv4Addr>)> = (0..count)
        .map(|i| (format!("svc{i:05}"), (Ipv4Addr::from(0x0a50_0000 + i as u32), backends(i, 10).into_iter().map(|(a, _)| a).collect())))
        .collect();
    let mut lb = Balancer::default();
    let start = Instant::now();
    lb.update(&task, services.clone()).unwrap();
    let load = start.elapsed();
    let mut times = Vec::new();
    for k in 0..CHANGES {
        let name = format!("svc{:05}", k * 7 % count);
        let b = &mut services.get_mut(&name).unwrap().1;
        if b.len() == 10 {
            b.pop();
        } else {
            *b = backends(k * 7 % count, 10).into_iter().map(|(a, _)| a).collect();
        }
        let want = services.clone();
        let t = Instant::now();
        lb.update(&task, want).unwrap();
        times.push(t.elapsed());
    }
    println!(
        "VIP balancer, {count} services x 10 tasks: first load {}, one backend change p50 {} p99 {}",
        ms(load),
        ms(pct(&mut times, 0.5)),
        ms(pct(&mut times, 0.99))
    );
    drop((nft, lb, ns, task));
    let _ = netns::remove(&path);
    let _ = netns::remove(&task_path);
    let _ = std::fs::remove_dir_all(&dir);
}

fn ask(to: SocketAddr) -> Duration {
    let t = Instant::now();
    let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(3)).expect("connect");
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).expect("answer");
    assert!(!answer.is_empty());
    t.elapsed()
}

fn mesh_against_direct() {
    let lab = mesh_lab::MeshLab::build("mesh-bench");
    lab.serve();
    lab.publish(&BTreeMap::from([(("tcp".to_string(), 8080), vec![(lab.task_ip, 80)])]));
    let mut ret = ReturnPath::install(&lab.task, "eth0").unwrap();
    ret.set_entries(&lab.task, &BTreeSet::from([lab.entry_a, lab.entry_b])).unwrap();
    let mesh_to = SocketAddr::from((lab.a_side, 8080));
    let direct_to = SocketAddr::from((lab.task_ip, 80));
    // All requests from one thread inside the client's namespace,
    // alternating, so both see the same conditions.
    let (mut via_mesh, mut direct, mesh_total, direct_total) = netns::run_in(&lab.client, || {
        for _ in 0..50 {
            ask(mesh_to);
            ask(direct_to);
        }
        let (mut m, mut d) = (Vec::with_capacity(REQUESTS), Vec::with_capacity(REQUESTS));
        for _ in 0..REQUESTS {
            m.push(ask(mesh_to));
            d.push(ask(direct_to));
        }
        let (mt, dt) = (m.iter().sum::<Duration>(), d.iter().sum::<Duration>());
        Ok((m, d, mt, dt))
    })
    .unwrap();
    let rps = |total: Duration| REQUESTS as f64 / total.as_secs_f64();
    println!(
        "{REQUESTS} sequential requests (connect, answer, close) through the mesh: p50 {} p99 {}, {:.0} requests/s",
        ms(pct(&mut via_mesh, 0.5)),
        ms(pct(&mut via_mesh, 0.99)),
        rps(mesh_total)
    );
    println!(
        "{REQUESTS} sequential requests straight to the task:                 p50 {} p99 {}, {:.0} requests/s",
        ms(pct(&mut direct, 0.5)),
        ms(pct(&mut direct, 0.99)),
        rps(direct_total)
    );
    println!("mesh / direct requests per second: {:.2}", rps(mesh_total) / rps(direct_total));
}

/// A sink on `port` in namespace `ns`: reads each connection to its end,
/// then answers one byte.
fn sink(ns: &std::fs::File, port: u16) {
    let l = netns::run_in(ns, move || std::net::TcpListener::bind(("0.0.0.0", port)).map_err(|e| e.to_string())).unwrap();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = vec![0u8; 1 << 20];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
            }
            let _ = s.write_all(b"k");
        }
    });
}

/// Gbit/s of one stream of `mib` MiB from namespace `from` to `to`.
fn stream(from: &std::fs::File, to: SocketAddr, mib: usize) -> f64 {
    netns::run_in(from, move || {
        let buf = vec![7u8; 1 << 20];
        let t = Instant::now();
        let mut s = TcpStream::connect(to).map_err(|e| e.to_string())?;
        for _ in 0..mib {
            s.write_all(&buf).map_err(|e| e.to_string())?;
        }
        s.shutdown(std::net::Shutdown::Write).map_err(|e| e.to_string())?;
        let mut k = [0u8; 1];
        s.read_exact(&mut k).map_err(|e| e.to_string())?;
        Ok((mib as f64 * 8.0 * 1.048_576e6) / t.elapsed().as_secs_f64() / 1e9)
    })
    .unwrap()
}

fn throughput() {
    let lab = mesh_lab::MeshLab::build("tput-bench");
    sink(&lab.task, 5001);
    sink(&lab.host_b, 5001);
    let (overlay, plain) = (SocketAddr::from((lab.task_ip, 5001)), SocketAddr::from((std::net::Ipv4Addr::new(198, 51, 100, 2), 5001)));
    stream(&lab.host_a, overlay, 64);
    stream(&lab.host_a, plain, 64);
    let (mut o, mut p) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        o.push(stream(&lab.host_a, overlay, 1024));
        p.push(stream(&lab.host_a, plain, 1024));
    }
    let best = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    println!("one TCP stream, 1 GiB, best of 3: over the overlay {:.2} Gbit/s, over the plain link {:.2} Gbit/s", best(&o), best(&p));
    println!("overlay / plain link: {:.2} (runs: overlay {o:.2?}, plain {p:.2?})", best(&o) / best(&p));
}

/// Two hosts on an underlay link, an encrypted overlay on both with their
/// WireGuard tunnels, a task on each; one TCP stream between the tasks.
fn encrypted_throughput() {
    use shoal_overlay::overlay::{NetworkSpec, NodeConfig, Overlay, Peer};
    use shoal_overlay::wg::{KeyPair, SecureTunnel};
    let dir = std::env::temp_dir().join(format!("shoal-wg-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let names = ["host-a", "host-b", "task-a", "task-b"];
    for n in names {
        netns::create(&dir.join(n)).unwrap();
    }
    let open = |n: &str| netns::open(&dir.join(n)).unwrap();
    let (host_a, host_b, task_a, task_b) = (open("host-a"), open("host-b"), open("task-a"), open("task-b"));
    let (ua, ub) = mesh_lab::link_hosts(&host_a, &host_b);
    let spec = NetworkSpec { vni: 4101, subnet: "10.250.2.0/24".parse().unwrap(), gateway: Ipv4Addr::new(10, 250, 2, 1) };
    let node = |key: &str, local, sub: &str, host: &str| {
        NodeConfig {
            key: key.into(),
            netns_dir: dir.join(sub),
            local,
            port: shoal_overlay::overlay::VXLAN_PORT,
            underlay_mtu: 1500,
            underlay_netns: Some(dir.join(host)),
        }
        .encrypted()
    };
    let (ka, kb) = (KeyPair::from_random([11u8; 32]), KeyPair::from_random([22u8; 32]));
    let tun = |ns: &std::fs::File, k: &KeyPair, local: Ipv4Addr| {
        let name = format!("swgbench{}", local.octets()[3]);
        netns::run_in(ns, move || SecureTunnel::start(k, &name, "bench-wg", local, 1500)).unwrap()
    };
    let (wa, wb) = (tun(&host_a, &ka, ua), tun(&host_b, &kb, ub));
    let key = |k: &KeyPair| shoal_overlay::wg::decode_key(&k.public_text()).unwrap();
    wa.set_peers(&BTreeMap::from([(ub, key(&kb))]));
    wb.set_peers(&BTreeMap::from([(ua, key(&ka))]));
    let mut ova = Overlay::create(&node("cccccc", ua, "a", "host-a"), &spec).unwrap();
    let mut ovb = Overlay::create(&node("dddddd", ub, "b", "host-b"), &spec).unwrap();
    let (ip_a, ip_b) = (Ipv4Addr::new(10, 250, 2, 2), Ipv4Addr::new(10, 250, 2, 3));
    ova.attach(&task_a, "eth0", "ovleg-wa", ip_a).unwrap();
    ovb.attach(&task_b, "eth0", "ovleg-wb", ip_b).unwrap();
    ova.set_peers(&[Peer { ip: ip_b, node: ub }]).unwrap();
    ovb.set_peers(&[Peer { ip: ip_a, node: ua }]).unwrap();
    sink(&task_b, 5002);
    sink(&host_b, 5002);
    let (enc, plain) = (SocketAddr::from((ip_b, 5002)), SocketAddr::from((ub, 5002)));
    stream(&task_a, enc, 16);
    let (mut e, mut p) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        e.push(stream(&task_a, enc, 256));
        p.push(stream(&host_a, plain, 1024));
    }
    let best = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    println!(
        "one TCP stream, best of 3: over the encrypted overlay {:.2} Gbit/s, over the plain link {:.2} Gbit/s; ratio {:.3}",
        best(&e),
        best(&p),
        best(&e) / best(&p)
    );
    drop((wa, wb));
    let _ = ova.destroy();
    let _ = ovb.destroy();
    for n in names {
        let _ = netns::remove(&dir.join(n));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would too: run
    // only when benchmarking.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this bench builds namespaces and must run as root");
    // `cargo bench ... -- rules` (or mesh, throughput, encrypted) runs only those.
    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let run = |part: &str| only.is_empty() || only.iter().any(|o| o == part);
    if run("rules") {
        rule_updates(10);
        rule_updates(1000);
    }
    if run("mesh") {
        mesh_against_direct();
    }
    if run("throughput") {
        throughput();
    }
    if run("encrypted") {
        encrypted_throughput();
    }
}
