//! Real kernel networking, as root: a gateway bridge and task namespaces,
//! with pings between them. The test thread first moves into a network
//! namespace of its own, so the bridge, veths and nft table never touch
//! the machine's interfaces, and every address pinged is one made here.
//! These FAIL (never skip) without root, `nft` and a static busybox.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sched::{setns, unshare, CloneFlags};
use nix::unistd::geteuid;

use super::overlays::tests as overlays_tests;
use super::*;

/// Removes what the test made, also when it fails.
struct Cleanup {
    dir: PathBuf,
    nets: Vec<std::sync::Arc<NodeNetwork>>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for n in &self.nets {
            n.shutdown();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ping_ok(ns: Option<&Path>, addr: Ipv4Addr) -> bool {
    let mut cmd = Command::new("busybox");
    cmd.args(["ping", "-c", "1", "-W", "1", &addr.to_string()]);
    let file = ns.map(|p| netns::open(p).unwrap());
    if let Some(f) = &file {
        let fd = f.as_raw_fd();
        // SAFETY: only setns between fork and exec; the file stays open
        // until the command has run.
        unsafe {
            cmd.pre_exec(move || {
                setns(std::os::fd::BorrowedFd::borrow_raw(fd), CloneFlags::CLONE_NEWNET)?;
                Ok(())
            });
        }
    }
    cmd.output().map(|o| o.status.success()).unwrap_or(false)
}

/// Pings until one answers or 15 s pass (a new bridge port may take a moment).
fn eventually_pings(ns: Option<&Path>, addr: Ipv4Addr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if ping_ok(ns, addr) {
            return true;
        }
    }
    false
}

fn config(dir: &Path, name: &str) -> NetworkConfig {
    let key = format!("{:06x}", fnv32(format!("{name}-{}", std::process::id()).as_bytes()) & 0xff_ffff);
    NetworkConfig::new(&key, dir.join(name).join("state"), dir.join(name).join("netns"))
}

#[test]
fn gateway_bridge_connects_task_namespaces() {
    assert!(geteuid().is_root(), "this test builds network namespaces and must run as root");
    assert!(nft_available(), "nft is missing: apt-get install -y nftables");
    // Moves only this test's thread (and the threads and processes
    // it starts) into a fresh network namespace.
    unshare(CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("unshare: {}", std::io::Error::from(e)));

    let dir = std::env::temp_dir().join(format!("shoal-net-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cleanup = Cleanup { dir: dir.clone(), nets: vec![] };
    let cfg = config(&dir, "n1");
    let net = std::sync::Arc::new(NodeNetwork::new(cfg.clone()).unwrap());
    cleanup.nets.push(net.clone());

    let a = net.attach("task-a", &[]).unwrap();
    let b = net.attach("task-b", &[]).unwrap();
    // A fresh namespace uses nothing: the pool's first /24.
    assert_eq!(net.subnet().unwrap().to_string(), "172.18.0.0/24");
    let (ip_a, ip_b) = (a.legs[0].addr, b.legs[0].addr);
    assert_eq!(ip_a.to_string(), "172.18.0.2");
    assert_eq!(ip_b.to_string(), "172.18.0.3");
    assert_eq!(a.legs[0].ifname, "eth0");
    let gw: Ipv4Addr = "172.18.0.1".parse().unwrap();

    // Bridge address -> task, task -> task, task -> bridge address.
    assert!(eventually_pings(None, ip_a), "host namespace cannot reach task a");
    assert!(eventually_pings(Some(&a.netns), ip_b), "task a cannot reach task b");
    assert!(eventually_pings(Some(&b.netns), gw), "task b cannot reach the gateway");

    assert!(nft::exists(&cfg.nft_table()), "the masquerade table is installed");

    // A second node in the same namespace sees the first bridge's subnet
    // as taken and picks the next one.
    let cfg2 = config(&dir, "n2");
    let net2 = std::sync::Arc::new(NodeNetwork::new(cfg2.clone()).unwrap());
    cleanup.nets.push(net2.clone());
    let c = net2.attach("task-c", &[]).unwrap();
    assert_eq!(net2.subnet().unwrap().to_string(), "172.18.1.0/24");
    assert_eq!(c.legs[0].addr.to_string(), "172.18.1.2");

    // Detach: veth, namespace, files and address go; the other task stays.
    net.detach("task-a");
    let mut nl = Netlink::open().unwrap();
    assert_eq!(nl.link_index(&cfg.host_veth("task-a")).unwrap(), None);
    assert!(nl.link_index(&cfg.host_veth("task-b")).unwrap().is_some());
    assert!(!a.netns.exists());
    assert_eq!(net.address_of("task-a"), None);
    assert!(eventually_pings(None, ip_b), "task b is still reachable");
    assert!(!ping_ok(None, ip_a), "the detached task's address no longer answers");
    // The freed address is given again, the persisted state agrees.
    assert_eq!(ipam::Ipam::open(&cfg.state_dir.join("ipam.json")).unwrap().owners(), ["task-b"]);

    // The last task of a node gone, its bridge and nft table go too.
    net2.detach("task-c");
    assert_eq!(nl.link_index(&cfg2.bridge()).unwrap(), None);
    assert!(!nft::exists(&cfg2.nft_table()));
    assert!(nl.link_index(&cfg.bridge()).unwrap().is_some(), "node 1 still has task b");

    // A restarted daemon (new NodeNetwork on the same state) cleans up
    // what the old one left, reusing its names.
    let restarted = NodeNetwork::new(cfg.clone()).unwrap();
    restarted.remove_leftovers();
    assert!(!b.netns.exists());
    assert_eq!(nl.link_index(&cfg.bridge()).unwrap(), None);
    assert!(!nft::exists(&cfg.nft_table()));
    let again = restarted.attach("task-d", &[]).unwrap();
    assert_eq!(restarted.subnet().unwrap().to_string(), "172.18.0.0/24", "the subnet of the last run is kept");
    assert_eq!(again.legs[0].addr.to_string(), "172.18.0.2");
    restarted.shutdown();

    // Shutdown leaves nothing: no bridge, veth, namespace or nft table.
    net2.shutdown();
    let names: Vec<String> = nl.links().unwrap().into_iter().map(|l| l.name).collect();
    assert_eq!(names, ["lo"], "links left: {names:?}");
    assert!(!nft::exists(&cfg2.nft_table()));
    assert!(!cfg.netns_dir.exists() && !cfg2.netns_dir.exists());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(dir.to_str().unwrap()), "a namespace mount is left");
    drop(cleanup);
}

fn nft_available() -> bool {
    Command::new("nft").arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

#[test]
fn legs_put_overlays_first_and_the_gateway_last() {
    use shoal_api::network::{Network, NetworkAttachment};
    assert_eq!(plan_legs(&[]), [LegPlan::Gateway { ifname: "eth0".into() }]);
    let att = |id: &str| NetworkAttachment { network: Network { id: id.into(), ..Default::default() }, addresses: vec![] };
    assert_eq!(
        plan_legs(&[att("n1"), att("n2")]),
        [
            LegPlan::Overlay { network_id: "n1".into(), ifname: "eth0".into() },
            LegPlan::Overlay { network_id: "n2".into(), ifname: "eth1".into() },
            LegPlan::Gateway { ifname: "eth2".into() },
        ]
    );
}

#[test]
fn names_fit_the_kernel_limit() {
    let cfg = NetworkConfig::new("a1b2c3", PathBuf::from("/s"), PathBuf::from("/n"));
    assert_eq!(cfg.bridge(), "sgw-a1b2c3");
    assert_eq!(cfg.nft_table(), "shoal-a1b2c3");
    let v = cfg.host_veth("x3d9f0q1w2e3r4t5y6u7i8o9p");
    assert!(v.starts_with("vea1b2c3") && v.len() == 15, "{v}");
    assert_ne!(v, cfg.host_veth("another-task"));
}

#[test]
fn tasks_on_an_overlay_get_their_legs_in_order_and_the_sandbox_goes_with_the_last() {
    assert!(geteuid().is_root(), "this test builds network namespaces and must run as root");
    assert!(nft_available(), "nft is missing: apt-get install -y nftables");
    // Moves only this test's thread into a fresh network namespace.
    unshare(CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("unshare: {}", std::io::Error::from(e)));
    let dir = std::env::temp_dir().join(format!("shoal-net-ov-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cleanup = Cleanup { dir: dir.clone(), nets: vec![] };
    // The node's underlay: a dummy-like veth pair with the data path address.
    let mut nl = Netlink::open().unwrap();
    let self_ns = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
    nl.add_veth("under0", "under1", &self_ns).unwrap();
    nl.add_addr("under0", "198.51.100.7".parse().unwrap(), 24).unwrap();
    nl.set_up("under0", None).unwrap();
    nl.set_up("under1", None).unwrap();
    let cfg = config(&dir, "ov");
    // The task resolvers run on the daemon's runtime.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let _rt = rt.enter();
    let net = std::sync::Arc::new(NodeNetwork::new(cfg.clone()).unwrap());
    cleanup.nets.push(net.clone());
    let att = |addr: &str| vec![overlays_tests::attachment("n1", 4300, "10.250.7.0/24", "10.250.7.1", addr)];

    assert!(net.attach("early", &att("10.250.7.9/24")).unwrap_err().contains("swarm"), "no data path yet");
    net.set_data_path("198.51.100.7".parse().unwrap()).unwrap();
    let a = net.attach("task-a", &att("10.250.7.2/24")).unwrap();
    let b = net.attach("task-b", &att("10.250.7.3/24")).unwrap();
    let names: Vec<&str> = a.legs.iter().map(|l| l.ifname.as_str()).collect();
    assert_eq!(names, ["eth0", "eth1"], "the overlay first, the gateway bridge last");
    assert_eq!(a.legs[0].addr.to_string(), "10.250.7.2");
    assert!(a.legs[1].gateway.is_some(), "the default route goes through the gateway bridge");
    assert!(eventually_pings(Some(&a.netns), "10.250.7.3".parse().unwrap()), "task a reaches task b over the overlay");

    // The managers' view: b's service answers by name in a, and its VIP
    // balances to b.
    let view = shoal_rpc::discovery::NetworkView {
        network_id: "n1".into(),
        name: "net-n1".into(),
        services: vec![shoal_rpc::discovery::ServiceView {
            id: "s-b".into(),
            name: "bee".into(),
            vip: Some("10.250.7.100".into()),
            tasks: vec![shoal_rpc::discovery::TaskEndpoint { name: "bee.1.task-b".into(), addr: "10.250.7.3".into() }],
            ..Default::default()
        }],
        ..Default::default()
    };
    net.apply_views(vec![view]);
    let lookup = |name: &str| {
        let out = Command::new("nsenter")
            .arg(format!("--net={}", a.netns.display()))
            .args(["busybox", "nslookup", name, "127.0.0.11"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(lookup("bee").contains("10.250.7.100"), "{}", lookup("bee"));
    assert!(lookup("tasks.bee").contains("10.250.7.3"), "{}", lookup("tasks.bee"));
    assert!(eventually_pings(Some(&a.netns), "10.250.7.100".parse().unwrap()), "the VIP leads to task b");
    let sandbox = cfg.netns_dir.join("ov-4300");
    assert!(sandbox.exists());

    // An internal network: no gateway leg, no way out.
    let mut internal = att("10.250.7.4/24");
    internal[0].network.spec.internal = true;
    let c = net.attach("task-c", &internal).unwrap();
    assert_eq!(c.legs.len(), 1, "only the overlay leg");
    assert!(!ping_ok(Some(&c.netns), "172.18.0.1".parse().unwrap()), "an internal task has no route out");

    net.detach("task-a");
    net.detach("task-c");
    assert!(sandbox.exists(), "task b still uses the network");

    // n1 is removed while task-b still stops, and its VNI goes to a new
    // network n2: n2's first task replaces the stale sandbox, and task-b's
    // late detach does not take n2's with it.
    let n2 = vec![overlays_tests::attachment("n2", 4300, "10.250.8.0/24", "10.250.8.1", "10.250.8.2/24")];
    let d = net.attach("task-d", &n2).unwrap();
    net.detach("task-b");
    assert!(sandbox.exists(), "the stale network's last task left the new network's sandbox alone");
    assert_eq!(d.legs[0].addr.to_string(), "10.250.8.2");
    net.detach("task-d");
    assert!(!sandbox.exists(), "the last task took the sandbox with it");
    let _ = b;
}

#[test]
fn shoals_own_interfaces_are_not_advertise_candidates() {
    let cfg = NetworkConfig::new("1a41c8", std::path::PathBuf::from("/x"), std::path::PathBuf::from("/y"));
    assert!(is_shoal_interface(&cfg.bridge()));
    assert!(is_shoal_interface(&cfg.mesh_leg()), "the mesh leg holds an ingress address, not the node's");
    assert!(!is_shoal_interface("eth0") && !is_shoal_interface("signal0"));
}
