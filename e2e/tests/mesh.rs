//! The ingress routing mesh (issue 9) on a lab of 1 manager and 3
//! workers, driven by the stock docker CLI: `-p 8080:80` with 2 replicas on
//! 2 of the 3 workers answers on all 4 nodes, from both tasks, and the
//! service sees the client's own lab address; a steady stream of requests
//! through a node without a task, and through the service's VIP from a
//! task on another overlay-attached node, loses none while the service is
//! scaled down and rolled (stop-first and start-first), and while a
//! worker's daemon is SIGKILLed, marked down, replaced and started again;
//! `--publish-add` and `--publish-rm` take effect on every node.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use shoal_e2e::{build_busybox_image, text, wait_for, Lab};

const LONG: Duration = Duration::from_secs(90);
const LAB: &str = "e2e-mesh";
const IMAGE: &str = "shoal-test/busy:1";
const NODES: [&str; 4] = ["node-1", "node-2", "node-3", "node-4"];

/// Each task answers `/cgi-bin/ip` with the caller's address and its own
/// hostname (its container ID prefix).
const SERVE: &str =
    "mkdir -p /www/cgi-bin && printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho $REMOTE_ADDR $(hostname)\\n' \
     > /www/cgi-bin/ip && busybox chmod 755 /www/cgi-bin/ip && exec httpd -f -p 80 -h /www";

/// One request from lab node `from` to `url`: (caller address the task
/// saw, task hostname), or None if it failed.
fn ask(lab: &Lab, from: &str, url: &str) -> Option<(String, String)> {
    ask_in(&lab.name, from, url).ok()
}

/// `ask` by lab name (for a thread: a `Lab` tears its lab down when
/// dropped); a failure is curl's exit code and what it said.
fn ask_in(lab: &str, from: &str, url: &str) -> Result<(String, String), String> {
    let out = Command::new(shoal_e2e::bin("shoal"))
        .args(["lab", "exec", "--name", lab, from, "--", "curl", "-sS", "-m", "3", url])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("curl exit {:?}: {}", out.status.code(), text(&out.stderr).trim()));
    }
    let body = text(&out.stdout);
    let mut words = body.split_whitespace();
    // httpd listens dual-stack: an IPv4 caller shows as [::ffff:a.b.c.d].
    let answer = |w: Option<&str>| w.map(str::to_string).ok_or_else(|| format!("unexpected answer {body:?}"));
    let addr = answer(words.next())?.trim_start_matches("[::ffff:").trim_end_matches(']').to_string();
    Ok((addr, answer(words.next())?))
}

/// Calls `ask` without pause until `stop`; answers how many succeeded and
/// what each failure said, with the phase it happened in and when.
fn steady(
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicUsize>,
    phases: &'static [&'static str],
    ask: impl Fn() -> Result<(), String> + Send + 'static,
) -> std::thread::JoinHandle<(usize, Vec<String>)> {
    std::thread::spawn(move || {
        let (mut ok, mut failed) = (0usize, Vec::new());
        while !stop.load(Ordering::Relaxed) {
            match ask() {
                Ok(()) => ok += 1,
                Err(e) => {
                    let at = shoal_api::time::now_rfc3339();
                    failed.push(format!("{} (at {at}): {e}", phases[phase.load(Ordering::Relaxed)]))
                }
            }
        }
        (ok, failed)
    })
}

/// The hostname of the node task `t` is on.
fn lab_host(lab: &Lab, t: &Value) -> String {
    let nodes = lab.nodes("node-1");
    let node = nodes.iter().find(|n| n["ID"] == t["NodeID"]).expect("the task's node");
    node["Description"]["Hostname"].as_str().unwrap().to_string()
}

/// Hostnames of the running tasks of `service`, once there are `n`, and
/// the nodes they run on.
fn running(lab: &Lab, service: &str, n: usize) -> BTreeSet<String> {
    let hosts: BTreeMap<String, String> = lab
        .nodes("node-1")
        .iter()
        .map(|n| (n["ID"].as_str().unwrap_or("").to_string(), n["Description"]["Hostname"].as_str().unwrap_or("").to_string()))
        .collect();
    wait_for(LONG, &format!("{n} running tasks of {service}"), || {
        let ts = lab.tasks(service);
        let run: Vec<&Value> = ts.iter().filter(|t| t["Status"]["State"] == "running" && t["DesiredState"] == "running").collect();
        (run.len() == n).then(|| run.iter().map(|t| hosts[t["NodeID"].as_str().unwrap()].clone()).collect())
    })
}

#[test]
fn a_published_port_answers_on_every_node_with_the_clients_address_and_drops_nothing() {
    let lab = Lab::up(LAB, 1, 3);
    let dir = std::env::temp_dir().join(format!("shoal-e2e-mesh-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let archive = build_busybox_image(&dir);
    for n in NODES {
        lab.shoal_ok(n, &["image", "load", "-q", "-i", archive.to_str().unwrap()]);
    }

    let spread = ["--constraint", "node.role==worker", "--placement-pref", "spread=node.id"];
    // A task is a backend once it runs, which with a health check means
    // once it answers (as in Swarm); without one, a new task would get
    // connections in the moment between its start and httpd's listen.
    lab.docker_ok("node-1", &["network", "create", "-d", "overlay", "meshnet"]);
    let mut args = vec!["service", "create", "-d", "--name", "pub", "--replicas", "2", "--publish", "8080:80", "--network", "meshnet"];
    args.extend_from_slice(&["--health-cmd", "wget -q -O /dev/null http://127.0.0.1/", "--health-interval", "100ms"]);
    args.extend_from_slice(&spread);
    args.extend_from_slice(&[IMAGE, "sh", "-c", SERVE]);
    lab.docker_ok("node-1", &args);
    let hosts = running(&lab, "pub", 2);
    let idle = NODES[1..].iter().find(|n| !hosts.contains(**n)).expect("one worker has no task").to_string();

    let ls = lab.docker_ok("node-1", &["service", "ls", "--format", "{{.Name}} {{.Ports}}"]);
    assert!(ls.lines().any(|l| l == "pub *:8080->80/tcp"), "{ls}");
    let inspect: Value = serde_json::from_str(&lab.docker_ok("node-1", &["service", "inspect", "pub"])).unwrap();
    assert_eq!(inspect[0]["Endpoint"]["Ports"][0]["PublishedPort"], 8080);
    let ingress: Value = serde_json::from_str(&lab.docker_ok("node-1", &["network", "inspect", "ingress"])).unwrap();
    assert_eq!(inspect[0]["Endpoint"]["VirtualIPs"][0]["NetworkID"], ingress[0]["Id"], "a VIP on the ingress network");

    // Every node answers, the manager and the idle worker included; the
    // answers come from both tasks; each task saw the caller's lab address.
    let started = Instant::now();
    for (i, node) in NODES.iter().enumerate() {
        let url = format!("http://{}:8080/cgi-bin/ip", lab.addr(i + 1));
        // The caller is another node, so its address is a lab address.
        let (from, from_addr) = if i == 0 { ("node-2", lab.addr(2)) } else { ("node-1", lab.addr(1)) };
        let mut tasks = BTreeSet::new();
        wait_for(LONG, &format!("answers from both tasks through {node}"), || {
            let (seen, task) = ask(&lab, from, &url)?;
            assert_eq!(seen, from_addr, "through {node}, the task saw {seen}, not the caller's own address");
            tasks.insert(task);
            (tasks.len() == 2).then_some(())
        });
    }
    eprintln!("FIGURE both tasks answered through each of the 4 nodes within {:.2}s", started.elapsed().as_secs_f64());

    // Requests through the idle worker, without pause, while the service
    // is scaled down and rolled both ways: none fails.
    let stop = Arc::new(AtomicBool::new(false));
    let phase = Arc::new(AtomicUsize::new(0));
    const PHASES: [&str; 6] =
        ["scale 2->3", "scale 3->2", "stop-first update", "start-first update", "a worker's daemon SIGKILLed", "that daemon started again"];
    let url = format!("http://{}:8080/cgi-bin/ip", lab.addr(NODES.iter().position(|n| *n == idle).unwrap() + 1));
    // East-west as well: a task on the manager calls pub through its VIP
    // on meshnet, without pause, through the same phases.
    lab.docker_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "caller",
            "--network",
            "meshnet",
            "--constraint",
            "node.role==manager",
            IMAGE,
            "sleep",
            "100000",
        ],
    );
    let caller = lab.running_container("caller", LONG);
    let through_vip = {
        let (socket, caller) = (lab.socket("node-1"), caller.clone());
        move || -> Result<String, String> {
            let out = Command::new("docker")
                .args(["exec", &caller, "busybox", "timeout", "5", "wget", "-qO-", "http://pub/cgi-bin/ip"])
                .env("DOCKER_HOST", format!("unix://{socket}"))
                .output()
                .map_err(|e| e.to_string())?;
            if out.status.success() {
                Ok(text(&out.stdout))
            } else {
                Err(format!("exit {:?}: {}", out.status.code(), text(&out.stderr).trim()))
            }
        }
    };
    wait_for(LONG, "pub through its VIP", || through_vip().ok());
    let vip_client = steady(stop.clone(), phase.clone(), &PHASES, move || through_vip().map(|_| ()));
    let client = {
        let (url, idle) = (url.clone(), idle.clone());
        steady(stop.clone(), phase.clone(), &PHASES, move || {
            ask_in(LAB, "node-1", &url).map(|_| ()).map_err(|e| {
                // Where the entry node sent the connections that got no
                // answer (conntrack keeps them for a while).
                let ct = Command::new(shoal_e2e::bin("shoal"))
                    .args(["lab", "exec", "--name", LAB, &idle, "--", "grep", "-E", "tcp .*UNREPLIED", "/proc/net/nf_conntrack"])
                    .output()
                    .map(|o| text(&o.stdout))
                    .unwrap_or_default();
                format!("{e}; unanswered at the entry: {ct}")
            })
        })
    };
    lab.docker_ok("node-1", &["service", "scale", "-d", "pub=3"]);
    running(&lab, "pub", 3);
    phase.store(1, Ordering::Relaxed);
    lab.docker_ok("node-1", &["service", "scale", "-d", "pub=2"]);
    running(&lab, "pub", 2);
    phase.store(2, Ordering::Relaxed);
    lab.docker_ok("node-1", &["service", "update", "--env-add", "ROLL=1", "pub"]);
    phase.store(3, Ordering::Relaxed);
    lab.docker_ok("node-1", &["service", "update", "--env-add", "ROLL=2", "--update-order", "start-first", "pub"]);
    let hosts = running(&lab, "pub", 2);
    // A worker with a task crashes: its tasks live on (live restore) and
    // keep answering until the managers mark the node down and replace
    // them elsewhere, which takes them out of every node's backends first.
    let victim = hosts.iter().find(|h| **h != idle).expect("a task on a worker other than the entry").clone();
    let victim_task = |lab: &Lab| lab.tasks("pub").into_iter().find(|t| t["Status"]["State"] == "running" && lab_host(lab, t) == victim);
    let old = victim_task(&lab).expect("the victim's task")["ID"].as_str().unwrap().to_string();
    phase.store(4, Ordering::Relaxed);
    lab.lab_ok(&["kill", &victim]);
    wait_for(LONG, &format!("{victim} to be marked down"), || {
        lab.nodes("node-1").iter().any(|n| n["Description"]["Hostname"] == victim.as_str() && n["Status"]["State"] == "down").then_some(())
    });
    // Down first, replaced next (the orchestrator's pass after the node
    // went down): wait for two running tasks, none on the victim.
    wait_for(LONG, &format!("pub's task on {victim} replaced elsewhere"), || {
        let hosts = running(&lab, "pub", 2);
        (!hosts.contains(&victim)).then_some(())
    });
    phase.store(5, Ordering::Relaxed);
    lab.lab_ok(&["start", &victim]);
    wait_for(LONG, &format!("{victim} ready again and its old task stopped"), || {
        let ready = lab.nodes("node-1").iter().any(|n| n["Description"]["Hostname"] == victim.as_str() && n["Status"]["State"] == "ready");
        let stopped = lab.tasks("pub").iter().any(|t| t["ID"] == old.as_str() && t["Status"]["State"] != "running");
        (ready && stopped).then_some(())
    });
    running(&lab, "pub", 2);
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = client.join().unwrap();
    let (vip_ok, vip_failed) = vip_client.join().unwrap();
    eprintln!("FIGURE requests through the VIP during the same: {vip_ok} answered, {} failed", vip_failed.len());
    assert!(vip_ok > 20, "too few requests through the VIP to mean anything: {vip_ok}");
    assert!(
        vip_failed.is_empty(),
        "{} of {} requests through the VIP failed, during: {vip_failed:?}",
        vip_failed.len(),
        vip_ok + vip_failed.len()
    );
    eprintln!(
        "FIGURE requests through the mesh during scale 2->3->2, two rolling updates and a worker crash: {ok} answered, {} failed",
        failed.len()
    );
    assert!(ok > 20, "too few requests to mean anything: {ok}");
    assert!(failed.is_empty(), "{} of {} requests failed, during: {failed:?}", failed.len(), ok + failed.len());

    // --publish-add / --publish-rm, with the stock CLI (which removes by
    // target port, before adding).
    lab.docker_ok("node-1", &["service", "update", "--publish-add", "9090:80", "--publish-rm", "80", "pub"]);
    let on = |port: u16| format!("http://{}:{port}/cgi-bin/ip", lab.addr(1));
    wait_for(LONG, "9090 to answer on node-1", || ask(&lab, "node-2", &on(9090)));
    wait_for(LONG, "8080 to stop answering", || ask(&lab, "node-2", &on(8080)).is_none().then_some(()));
    let ls = lab.docker_ok("node-1", &["service", "ls", "--format", "{{.Name}} {{.Ports}}"]);
    assert!(ls.lines().any(|l| l == "pub *:9090->80/tcp"), "{ls}");

    // A port with no task any more is refused, not left to hang.
    lab.docker_ok("node-1", &["service", "scale", "-d", "pub=0"]);
    wait_for(LONG, "9090 to be refused", || {
        let out = lab.lab(&["exec", "node-2", "--", "curl", "-s", "-m", "3", &on(9090)]);
        // curl: 7 is "connection refused", 28 a timeout.
        (out.status.code() == Some(7)).then_some(())
    });

    // `network create --ingress` replaces the ingress network: once the old
    // one is removed and a new one made, a new service's port answers
    // through it, on a node without its task, with the caller's address.
    lab.docker_ok("node-1", &["service", "rm", "pub"]);
    wait_for(LONG, "the ingress network to be removable", || {
        let (status, _) = lab.api("node-1", "DELETE", "/v1.44/networks/ingress", None);
        (status == 204 || status == 200).then_some(())
    });
    lab.docker_ok("node-1", &["network", "create", "-d", "overlay", "--ingress", "--subnet", "10.99.0.0/24", "mesh2"]);
    let mut args = vec!["service", "create", "-d", "--name", "pub2", "--replicas", "1", "--publish", "7070:80"];
    args.extend_from_slice(&spread);
    args.extend_from_slice(&[IMAGE, "sh", "-c", SERVE]);
    lab.docker_ok("node-1", &args);
    let host = running(&lab, "pub2", 1).into_iter().next().unwrap();
    let elsewhere = NODES.iter().position(|n| *n != host && *n != "node-1").unwrap();
    let url = format!("http://{}:7070/cgi-bin/ip", lab.addr(elsewhere + 1));
    let (seen, _) = wait_for(LONG, "pub2 through the new ingress network", || ask(&lab, "node-1", &url));
    assert_eq!(seen, lab.addr(1));
    let t = &lab.tasks("pub2")[0];
    assert!(t["NetworksAttachments"][0]["Addresses"][0].as_str().unwrap().starts_with("10.99.0."), "{t}");

    lab.lab_ok(&["down"]);
    let _ = std::fs::remove_dir_all(&dir);
}
