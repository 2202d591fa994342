//! Issue 9 on a lab of 1 manager and 3 workers, driven by the stock docker
//! CLI: overlay networks across hosts, service discovery at 127.0.0.11,
//! VIP balancing, `dnsrr`, isolation between networks, `--internal`,
//! `--network-add`, removal refused while in use, subnet and VNI reuse, and
//! nothing left after `lab down`. Every command a task runs, it runs inside
//! its own container (runc exec), with the container's resolver.

use std::collections::BTreeMap;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use shoal_e2e::{build_busybox_image, text, wait_for, Lab};

const LONG: Duration = Duration::from_secs(90);
const LAB: &str = "e2e-overlay";
const IMAGE: &str = "shoal-test/busy:1";
const WORKERS: [&str; 3] = ["node-2", "node-3", "node-4"];

/// (task ID, node hostname, address on its first network) of a service's
/// running tasks, once there are `n`.
fn running(lab: &Lab, service: &str, n: usize) -> Vec<(String, String, String)> {
    let hosts: BTreeMap<String, String> = lab
        .nodes("node-1")
        .iter()
        .map(|n| (n["ID"].as_str().unwrap_or("").to_string(), n["Description"]["Hostname"].as_str().unwrap_or("").to_string()))
        .collect();
    wait_for(LONG, &format!("{n} running tasks of {service}"), || {
        let ts = lab.tasks(service);
        if let Some(f) = ts.iter().find(|t| t["Status"]["State"] == "failed" || t["Status"]["State"] == "rejected") {
            panic!("a task of {service} failed: {}", f["Status"]);
        }
        let run: Vec<(String, String, String)> = ts
            .iter()
            .filter(|t| t["Status"]["State"] == "running" && t["DesiredState"] == "running")
            .map(|t| {
                let addr = t["NetworksAttachments"][0]["Addresses"][0].as_str().unwrap_or("").split('/').next().unwrap_or("").to_string();
                (t["ID"].as_str().unwrap().to_string(), hosts[t["NodeID"].as_str().unwrap()].clone(), addr)
            })
            .collect();
        (run.len() == n).then_some(run)
    })
}

/// Runs `cmd` inside the container of task `id` on `node`.
fn in_task(lab: &Lab, node: &str, id: &str, cmd: &[&str]) -> Output {
    let root = format!("/var/lib/shoal/lab/{LAB}/{node}/runc");
    let mut args = vec!["exec", node, "--", "runc", "--root", &root, "exec", id];
    args.extend_from_slice(cmd);
    lab.lab(&args)
}

fn fetch(lab: &Lab, node: &str, id: &str, url: &str) -> Option<String> {
    let out = in_task(lab, node, id, &["wget", "-qO-", url]);
    out.status.success().then(|| text(&out.stdout).trim().to_string())
}

/// The addresses `name` resolves to inside a task (its own resolver).
fn lookup(lab: &Lab, node: &str, id: &str, name: &str) -> Vec<String> {
    let out = in_task(lab, node, id, &["busybox", "nslookup", name]);
    let s = text(&out.stdout);
    let mut addrs: Vec<String> = s
        .lines()
        .skip_while(|l| !l.starts_with("Name:"))
        .filter_map(|l| l.strip_prefix("Address:"))
        .map(|a| a.trim().to_string())
        .collect();
    addrs.sort();
    addrs
}

const SERVE: &str = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www";

#[test]
fn services_on_overlays_find_and_reach_each_other_across_hosts() {
    let lab = Lab::up(LAB, 1, 3);
    let dir = std::env::temp_dir().join(format!("shoal-e2e-overlay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let archive = build_busybox_image(&dir);
    for n in ["node-1", "node-2", "node-3", "node-4"] {
        lab.shoal_ok(n, &["image", "load", "-q", "-i", archive.to_str().unwrap()]);
    }
    let markers: Vec<String> = WORKERS
        .iter()
        .map(|n| {
            let m: Value =
                serde_json::from_slice(&std::fs::read(format!("/var/lib/shoal/lab/{LAB}/{n}/network/node.json")).unwrap()).unwrap();
            m["netns_dir"].as_str().unwrap().to_string()
        })
        .collect();

    // Networks, through the stock docker CLI.
    lab.docker_ok("node-1", &["network", "create", "-d", "overlay", "appnet"]);
    lab.docker_ok("node-1", &["network", "create", "-d", "overlay", "other"]);
    lab.docker_ok("node-1", &["network", "create", "-d", "overlay", "--internal", "sealed"]);
    let ls = lab.docker_ok("node-1", &["network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"]);
    for n in ["appnet overlay swarm", "other overlay swarm", "sealed overlay swarm", "ingress overlay swarm"] {
        assert!(ls.lines().any(|l| l == n), "{n} not in:\n{ls}");
    }
    let inspect: Value = serde_json::from_str(&lab.docker_ok("node-1", &["network", "inspect", "appnet"])).unwrap();
    let appnet_subnet = inspect[0]["IPAM"]["Config"][0]["Subnet"].as_str().unwrap().to_string();
    let appnet_vni = inspect[0]["Options"]["com.docker.network.driver.overlay.vxlanid_list"].as_str().unwrap().to_string();

    // Two services on appnet (VIP and dnsrr), one on another overlay, one on
    // an internal one; the tasks spread over the three workers.
    let spread = ["--constraint", "node.role==worker", "--placement-pref", "spread=node.id"];
    let svc = |name: &str, extra: &[&str], cmd: &str| {
        let mut args = vec!["service", "create", "-d", "--name", name, "--replicas", "3"];
        args.extend_from_slice(&spread);
        args.extend_from_slice(extra);
        args.extend_from_slice(&[IMAGE, "sh", "-c", cmd]);
        lab.docker_ok("node-1", &args);
    };
    svc("web", &["--network", "appnet"], SERVE);
    svc("api", &["--network", "appnet", "--endpoint-mode", "dnsrr"], SERVE);
    svc("outsider", &["--network", "other"], "exec sleep 100000");
    svc("hermit", &["--network", "sealed"], "exec sleep 100000");
    let web = running(&lab, "web", 3);
    let api = running(&lab, "api", 3);
    let outsider = running(&lab, "outsider", 3);
    let hermit = running(&lab, "hermit", 3);
    let hosts: std::collections::BTreeSet<&str> = web.iter().map(|(_, h, _)| h.as_str()).collect();
    assert_eq!(hosts.len(), 3, "web runs on three hosts: {web:?}");
    let vip = wait_for(LONG, "web's VIP", || {
        let s: Value = serde_json::from_str(&lab.docker_ok("node-1", &["service", "inspect", "web"])).ok()?;
        s[0]["Endpoint"]["VirtualIPs"][0]["Addr"].as_str().map(|a| a.split('/').next().unwrap().to_string())
    });

    // Every task reaches every other by service name, tasks.<name> and address.
    let mut api_addrs: Vec<String> = api.iter().map(|(_, _, a)| a.clone()).collect();
    api_addrs.sort();
    let mut web_addrs: Vec<String> = web.iter().map(|(_, _, a)| a.clone()).collect();
    web_addrs.sort();
    for (id, node, _) in web.iter().chain(api.iter()) {
        let seen = wait_for(LONG, "the views to reach every node", || {
            let s = lookup(&lab, node, id, "tasks.api");
            (s == api_addrs).then_some(s)
        });
        assert_eq!(seen, api_addrs);
        assert_eq!(lookup(&lab, node, id, "web"), vec![vip.clone()], "a VIP service resolves to its VIP");
        assert_eq!(lookup(&lab, node, id, "api"), api_addrs, "dnsrr resolves to every task");
        assert_eq!(lookup(&lab, node, id, "tasks.web"), web_addrs);
        assert!(fetch(&lab, node, id, "http://web/").is_some(), "{id} on {node} reaches web by name");
        for (_, other_host, addr) in web.iter().chain(api.iter()) {
            let page = fetch(&lab, node, id, &format!("http://{addr}/"));
            assert!(page.is_some(), "{id} on {node} reaches {addr} on {other_host}");
        }
    }

    // The VIP spreads connections over every task, and each sees the
    // caller's own address (the httpd logs nothing, so the answer names
    // the task: its hostname is its container ID prefix).
    let (cid, cnode, _) = &api[0];
    let mut answers: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..30 {
        *answers.entry(fetch(&lab, cnode, cid, "http://web/").expect("web answers")).or_default() += 1;
    }
    eprintln!("FIGURE VIP spread over 30 connections: {answers:?}");
    assert_eq!(answers.len(), 3, "every web task answered: {answers:?}");

    // Another overlay cannot reach them, by name or address; an internal
    // network has no way out.
    let (oid, onode, _) = &outsider[0];
    assert!(lookup(&lab, onode, oid, "web").is_empty(), "web's name is not visible from another network");
    assert!(fetch(&lab, onode, oid, &format!("http://{}/", web[0].2)).is_none());
    let (hid, hnode, _) = &hermit[0];
    let routes = text(&in_task(&lab, hnode, hid, &["ip", "route"]).stdout);
    assert!(!routes.contains("default"), "an internal network's task has no default route:\n{routes}");
    assert!(!in_task(&lab, hnode, hid, &["ping", "-c", "1", "-W", "1", &lab.addr(1)]).status.success());

    // --network-add: outsider joins appnet and then reaches web.
    lab.docker_ok("node-1", &["service", "update", "-d", "--network-add", "appnet", "outsider"]);
    let joined = wait_for(LONG, "outsider's tasks on both networks", || {
        let ts = lab.tasks("outsider");
        let run: Vec<Value> = ts
            .into_iter()
            .filter(|t| t["Status"]["State"] == "running" && t["DesiredState"] == "running")
            .filter(|t| t["NetworksAttachments"].as_array().map(|a| a.len()) == Some(2))
            .collect();
        (run.len() == 3).then_some(run)
    });
    let t = &joined[0];
    let node_of = |t: &Value| {
        let id = t["NodeID"].as_str().unwrap();
        lab.nodes("node-1").iter().find(|n| n["ID"] == id).unwrap()["Description"]["Hostname"].as_str().unwrap().to_string()
    };
    let (tid, tnode) = (t["ID"].as_str().unwrap().to_string(), node_of(t));
    wait_for(LONG, "the joined task to reach web", || fetch(&lab, &tnode, &tid, "http://web/").map(|_| ()));

    // A new task answers by name everywhere soon after it runs.
    lab.docker_ok("node-1", &["service", "scale", "-d", "web=4"]);
    let started = Instant::now();
    let four = running(&lab, "web", 4);
    let mut four_addrs: Vec<String> = four.iter().map(|(_, _, a)| a.clone()).collect();
    four_addrs.sort();
    let ran = started.elapsed();
    for (id, node, _) in &api {
        wait_for(LONG, "the new task in tasks.web everywhere", || (lookup(&lab, node, id, "tasks.web") == four_addrs).then_some(()));
    }
    eprintln!(
        "FIGURE name of a new task resolvable on every node {:.2}s after its service was scaled ({:.2}s after it was seen running)",
        started.elapsed().as_secs_f64(),
        (started.elapsed() - ran).as_secs_f64()
    );

    // Host-mode publishing: the port answers on the nodes that run a task,
    // and only there, and the task sees the caller's own address.
    let cgi =
        "mkdir -p /www/cgi-bin && printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho $REMOTE_ADDR\\n' > /www/cgi-bin/ip \
               && busybox chmod 755 /www/cgi-bin/ip && hostname > /www/index.html && exec httpd -f -p 80 -h /www";
    let mut args = vec!["service", "create", "-d", "--name", "pub", "--replicas", "2", "--publish", "mode=host,published=8080,target=80"];
    args.extend_from_slice(&spread);
    args.extend_from_slice(&[IMAGE, "sh", "-c", cgi]);
    lab.docker_ok("node-1", &args);
    let published = running(&lab, "pub", 2);
    let with_task: std::collections::BTreeSet<&str> = published.iter().map(|(_, h, _)| h.as_str()).collect();
    for (i, host) in WORKERS.iter().enumerate() {
        let url = format!("http://{}:8080/cgi-bin/ip", lab.addr(i + 2));
        let out = lab.lab(&["exec", "node-1", "--", "curl", "-s", "-m", "3", &url]);
        if with_task.contains(host) {
            let seen = wait_for(LONG, "the published port to answer", || {
                let o = lab.lab(&["exec", "node-1", "--", "curl", "-s", "-m", "3", &url]);
                // httpd listens dual-stack: an IPv4 caller shows as [::ffff:a.b.c.d].
                o.status.success().then(|| text(&o.stdout).trim().trim_start_matches("[::ffff:").trim_end_matches(']').to_string())
            });
            assert_eq!(seen, lab.addr(1), "the task sees the caller's lab address, not a NAT address");
        } else {
            assert!(!out.status.success(), "{host} runs no task of pub but answered on 8080");
        }
    }
    // docker service ps shows where each task publishes (its PortStatus).
    let ps = lab.docker_ok("node-1", &["service", "ps", "pub", "--format", "{{.Ports}}"]);
    assert_eq!(ps.lines().collect::<Vec<_>>(), ["*:8080->80/tcp", "*:8080->80/tcp"], "{ps}");
    lab.docker_ok("node-1", &["service", "rm", "pub"]);

    // Removing a network in use is refused and changes nothing; once its
    // services are gone it goes, and a new network gets its subnet and VNI.
    let busy = lab.docker("node-1", &["network", "rm", "appnet"]);
    assert!(!busy.status.success(), "removing a network in use must fail");
    assert!(text(&busy.stderr).contains("is in use by service"), "{}", text(&busy.stderr));
    assert!(lab.docker_ok("node-1", &["network", "ls", "--format", "{{.Name}}"]).lines().any(|l| l == "appnet"));
    lab.docker_ok("node-1", &["service", "rm", "web", "api", "outsider"]);
    wait_for(LONG, "appnet to be removable", || lab.docker("node-1", &["network", "rm", "appnet"]).status.success().then_some(()));
    lab.docker_ok("node-1", &["network", "create", "-d", "overlay", "again"]);
    let again: Value = serde_json::from_str(&lab.docker_ok("node-1", &["network", "inspect", "again"])).unwrap();
    assert_eq!(again[0]["IPAM"]["Config"][0]["Subnet"], appnet_subnet.as_str(), "the freed subnet is given again");
    assert_eq!(again[0]["Options"]["com.docker.network.driver.overlay.vxlanid_list"], appnet_vni.as_str(), "and the VNI");

    // Nothing of the overlays is left after lab down.
    lab.lab_ok(&["down"]);
    for d in markers {
        assert!(!std::path::Path::new(&d).exists(), "{d} is left after lab down");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
