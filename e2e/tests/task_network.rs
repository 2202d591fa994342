//! Task networking on a lab node: each container of a service gets `eth0`
//! on the node's gateway bridge, reaches the other container and the
//! bridge, and nothing (veth, namespace mount, bridge, nft table) is left
//! after `service rm`, nor after `lab down` following a killed daemon.
//! Only addresses inside the lab node's own namespaces are pinged.

use std::time::Duration;

use serde_json::Value;
use shoal_e2e::{build_busybox_image, text, wait_for, Lab};

const LONG: Duration = Duration::from_secs(90);
const LAB: &str = "e2e-net";

fn running_ids(lab: &Lab, service: &str, n: usize) -> Vec<String> {
    wait_for(LONG, &format!("{n} running tasks of {service}"), || {
        let ts = lab.tasks(service);
        let running: Vec<String> = ts
            .iter()
            .filter(|t| t["Status"]["State"] == "running")
            .map(|t| t["Status"]["ContainerStatus"]["ContainerID"].as_str().unwrap_or("").to_string())
            .collect();
        (running.len() == n).then_some(running)
    })
}

/// Runs CMD inside container `id` on node-2 (runc exec, the container's own
/// namespaces and rootfs).
fn in_container(lab: &Lab, id: &str, cmd: &[&str]) -> std::process::Output {
    let root = format!("/var/lib/shoal/lab/{LAB}/node-2/runc");
    let mut args = vec!["exec", "node-2", "--", "runc", "--root", &root, "exec", id];
    args.extend_from_slice(cmd);
    lab.lab(&args)
}

/// `inet 172.18.0.2/24` from `ip -4 -o addr show eth0` → ("172.18.0.2", 24).
fn inet(out: &str) -> Option<(String, u8)> {
    let cidr = out.split_whitespace().skip_while(|w| *w != "inet").nth(1)?;
    let (a, p) = cidr.split_once('/')?;
    Some((a.to_string(), p.parse().ok()?))
}

/// The gateway bridge's address on node-2 (`sgw-*`), once it exists.
fn bridge_addr(lab: &Lab) -> Option<(String, u8)> {
    let out = lab.lab_ok(&["exec", "node-2", "--", "ip", "-4", "-o", "addr", "show"]);
    out.lines().find(|l| l.contains(" sgw-")).and_then(inet)
}

fn same_subnet(a: &str, b: &str, prefix: u8) -> bool {
    let n = |s: &str| u32::from(s.parse::<std::net::Ipv4Addr>().unwrap()) >> (32 - prefix as u32);
    n(a) == n(b)
}

/// What node-2's daemon says it names its things (its network marker):
/// (namespace dir, veth prefix).
fn node2_names() -> (String, String) {
    let path = format!("/var/lib/shoal/lab/{LAB}/node-2/network/node.json");
    let m: Value = serde_json::from_slice(&std::fs::read(&path).expect("node-2's network marker")).unwrap();
    (m["netns_dir"].as_str().unwrap().to_string(), m["veth_prefix"].as_str().unwrap().to_string())
}

/// Mount points below `netns_dir` (node-2's pinned task namespaces).
/// The pinned namespaces of tasks (a node in a swarm also keeps the
/// ingress network's sandbox, `ov-<vni>`, for the routing mesh).
fn netns_mounts(netns_dir: &str) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&format!("{netns_dir}/")) && !m.starts_with(&format!("{netns_dir}/ov-")))
        .map(str::to_string)
        .collect()
}

fn node2_links(lab: &Lab) -> String {
    lab.lab_ok(&["exec", "node-2", "--", "ip", "-o", "link", "show"])
}

#[test]
fn tasks_get_eth0_on_the_gateway_bridge() {
    let lab = Lab::up(LAB, 1, 1);
    let dir = std::env::temp_dir().join(format!("shoal-e2e-net-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let archive = build_busybox_image(&dir);
    lab.shoal_ok("node-2", &["image", "load", "-q", "-i", archive.to_str().unwrap()]);

    lab.shoal_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "pair",
            "--replicas",
            "2",
            "--constraint",
            "node.role==worker",
            "shoal-test/busy:1",
            "sleep",
            "1000",
        ],
    );
    let ids = running_ids(&lab, "pair", 2);
    let (gw, prefix) = wait_for(LONG, "the gateway bridge on node-2", || bridge_addr(&lab));

    let mut addrs = Vec::new();
    for id in &ids {
        let out = in_container(&lab, id, &["ip", "-4", "-o", "addr", "show", "eth0"]);
        assert!(out.status.success(), "ip addr in {id}: {}{}", text(&out.stdout), text(&out.stderr));
        let (addr, p) = inet(&text(&out.stdout)).unwrap_or_else(|| panic!("no IPv4 on eth0 in {id}: {}", text(&out.stdout)));
        assert_eq!(p, prefix);
        assert!(same_subnet(&addr, &gw, prefix), "{addr} is not in the bridge's {gw}/{prefix}");
        assert_ne!(addr, gw);
        let route = text(&in_container(&lab, id, &["ip", "route"]).stdout);
        assert!(route.contains(&format!("default via {gw}")), "{route}");
        let hosts = text(&in_container(&lab, id, &["cat", "/etc/hosts"]).stdout);
        assert!(hosts.contains("127.0.0.1\tlocalhost") && hosts.contains(&format!("{addr}\t")), "{hosts}");
        addrs.push(addr);
    }
    assert_ne!(addrs[0], addrs[1]);

    // Container -> container and container -> bridge, on node-2 only.
    for (from, to) in [(&ids[0], &addrs[1]), (&ids[1], &addrs[0]), (&ids[0], &gw)] {
        wait_for(Duration::from_secs(30), &format!("{from} to reach {to}"), || {
            in_container(&lab, from, &["ping", "-c", "1", "-W", "1", to]).status.success().then_some(())
        });
    }
    let (netns_dir, veth_prefix) = node2_names();
    assert!(netns_dir.starts_with("/run/shoal/node-2-"), "{netns_dir}");
    assert_eq!(netns_mounts(&netns_dir).len(), 2, "one pinned namespace per task");
    assert_eq!(node2_links(&lab).matches(&format!(": {veth_prefix}")).count(), 2, "one veth per task");
    let nft = lab.lab_ok(&["exec", "node-2", "--", "nft", "list", "tables"]);
    assert!(nft.contains("table ip shoal-"), "{nft}");

    // service rm: veths, namespace mounts, the idle bridge and its table go.
    lab.shoal_ok("node-1", &["service", "rm", "pair"]);
    wait_for(LONG, "node-2 to hold no task networking", || {
        let links = node2_links(&lab);
        let tables = lab.lab_ok(&["exec", "node-2", "--", "nft", "list", "tables"]);
        let clean = !links.contains(&format!(": {veth_prefix}"))
            && !links.contains(": sgw-")
            && netns_mounts(&netns_dir).is_empty()
            // only the routing mesh's table stays while the node is in the swarm
            && !tables.lines().any(|t| t.contains("shoal-") && !t.ends_with("-mesh"));
        clean.then_some(())
    });

    // A daemon killed with tasks running leaves its namespaces pinned;
    // lab down removes them.
    lab.shoal_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "again",
            "--replicas",
            "2",
            "--constraint",
            "node.role==worker",
            "shoal-test/busy:1",
            "sleep",
            "1000",
        ],
    );
    running_ids(&lab, "again", 2);
    wait_for(LONG, "two pinned namespaces", || (netns_mounts(&netns_dir).len() == 2).then_some(()));
    lab.lab_ok(&["kill", "node-2"]);
    assert_eq!(netns_mounts(&netns_dir).len(), 2, "a killed daemon cleans nothing");
    lab.lab_ok(&["down"]);
    assert!(netns_mounts(&netns_dir).is_empty(), "lab down left {:?}", netns_mounts(&netns_dir));
    let node_dir = std::path::Path::new(&netns_dir).parent().unwrap();
    assert!(!node_dir.exists(), "lab down left {}", node_dir.display());
    let _ = std::fs::remove_dir_all(&dir);
}
