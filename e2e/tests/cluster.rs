//! Cluster-core scenarios on a real lab: Raft managers, failover,
//! partitions, restarts, quorum loss and recovery, node lifecycle.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shoal_e2e::{by_host, leader_host, text, wait_for, Lab};

const LONG: Duration = Duration::from_secs(60);

fn all_ready(nodes: &[Value], n: usize) -> bool {
    nodes.len() == n && nodes.iter().all(|x| x["Status"]["State"] == "ready" && x["Spec"]["Availability"] == "active")
}

/// Waits until `via` sees `n` nodes Ready, one leader and every other
/// manager Reachable.
fn wait_healthy(lab: &Lab, via: &str, nodes: usize, managers: usize) -> Vec<Value> {
    wait_for(LONG, &format!("{nodes} ready nodes and {managers} healthy managers seen from {via}"), || {
        let list = lab.try_nodes(via)?;
        let leaders = list.iter().filter(|n| n["ManagerStatus"]["Leader"] == true).count();
        let reachable = list.iter().filter(|n| n["ManagerStatus"]["Reachability"] == "reachable").count();
        (all_ready(&list, nodes) && leaders == 1 && reachable == managers).then_some(list)
    })
}

fn labels_of(nodes: &[Value], host: &str) -> Value {
    by_host(nodes).get(host).map(|n| n["Spec"]["Labels"].clone()).unwrap_or(Value::Null)
}

/// Retries a label write through `via` until it lands; returns the time taken.
fn label_until_ok(lab: &Lab, via: &str, target: &str, k: &str, v: &str) -> Duration {
    let start = Instant::now();
    wait_for(LONG, &format!("a label write through {via}"), || lab.label(via, target, k, v).ok());
    start.elapsed()
}

#[test]
fn three_managers_two_workers_form_a_swarm() {
    let lab = Lab::up("e2e-form", 3, 2);
    for m in ["node-1", "node-2", "node-3"] {
        let nodes = wait_healthy(&lab, m, 5, 3);
        let hosts = by_host(&nodes);
        for w in ["node-4", "node-5"] {
            assert!(hosts[w]["ManagerStatus"].is_null(), "{w} is a worker");
            assert_eq!(hosts[w]["Spec"]["Role"], "worker");
        }
    }

    // A write through any manager is read back at once through any other
    // (followers read through Raft's ReadIndex).
    let leader = leader_host(&lab.nodes("node-1")).unwrap();
    let followers: Vec<&str> = ["node-1", "node-2", "node-3"].into_iter().filter(|m| *m != leader).collect();
    for i in 0..30 {
        let via = if i % 2 == 0 { leader.as_str() } else { followers[i % 4 / 2] };
        let name = format!("read-back-{i}");
        let body = json!({"Name": name, "Data": "eA=="});
        let (status, answer) = lab.api(via, "POST", "/v1.44/configs/create", Some(&body));
        assert_eq!(status, 201, "{answer}");
        for m in ["node-1", "node-2", "node-3"].into_iter().filter(|m| *m != via) {
            let (status, answer) = lab.api(m, "GET", &format!("/v1.44/configs/{name}"), None);
            assert_eq!(status, 200, "config {name} written through {via}, read through {m}: {answer}");
        }
    }

    // The table as Docker prints it, with the current node starred.
    let table = lab.shoal_ok("node-2", &["node", "ls"]);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    for col in ["ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ENGINE VERSION"] {
        assert!(header.contains(col), "header {header:?} lacks {col}");
    }
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 5, "{table}");
    let starred: Vec<&&str> = rows.iter().filter(|r| r.contains(" * ")).collect();
    assert_eq!(starred.len(), 1, "{table}");
    assert!(starred[0].contains("node-2"), "{table}");
    assert_eq!(rows.iter().filter(|r| r.contains("Leader")).count(), 1, "{table}");
    assert_eq!(rows.iter().filter(|r| r.contains("Reachable")).count(), 2, "{table}");

    // A worker refuses manager-only calls with Docker's words.
    let out = lab.shoal("node-4", &["node", "ls"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("This node is not a swarm manager."), "{}", text(&out.stderr));

    // `node ls -q` and filters.
    let ids = lab.shoal_ok("node-1", &["node", "ls", "-q"]);
    assert_eq!(ids.lines().count(), 5);
    let managers = lab.shoal_ok("node-1", &["node", "ls", "-q", "--filter", "role=manager"]);
    assert_eq!(managers.lines().count(), 3);

    // Leaving: a manager needs --force; the other two keep a quorum.
    let out = lab.shoal("node-3", &["swarm", "leave"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("participating as a manager"), "{}", text(&out.stderr));
    lab.shoal_ok("node-3", &["swarm", "leave", "--force"]);
    wait_for(LONG, "node-3 to leave the raft membership", || {
        let nodes = lab.try_nodes("node-1")?;
        by_host(&nodes).get("node-3")?["ManagerStatus"].is_null().then_some(())
    });
    label_until_ok(&lab, "node-2", "node-4", "after", "leave");
    assert_eq!(lab.shoal_ok("node-5", &["swarm", "leave"]).trim(), "Node left the swarm.");
    let (_, info) = lab.api("node-5", "GET", "/v1.44/info", None);
    assert_eq!(info["Swarm"]["LocalNodeState"], "inactive");
}

#[test]
fn leader_failover_restart_and_full_stop_keep_state() {
    let lab = Lab::up("e2e-ha", 3, 1);
    let nodes = wait_healthy(&lab, "node-1", 4, 3);
    for (i, host) in ["node-1", "node-2", "node-3", "node-4"].iter().enumerate() {
        lab.label("node-1", host, "before", &i.to_string()).unwrap();
    }
    let leader = leader_host(&nodes).unwrap();
    let survivors: Vec<&str> = ["node-1", "node-2", "node-3"].into_iter().filter(|m| *m != leader).collect();

    lab.lab_ok(&["kill", &leader]);
    let failover = label_until_ok(&lab, survivors[0], "node-4", "after", "kill");
    eprintln!("FIGURE leader failover: first write accepted {:.2}s after SIGKILL of the leader", failover.as_secs_f64());
    // Writes succeed through every surviving manager.
    label_until_ok(&lab, survivors[1], "node-4", "via", survivors[1]);
    let nodes = lab.nodes(survivors[1]);
    let new_leader = leader_host(&nodes).unwrap();
    assert_ne!(new_leader, leader);

    // The killed manager restarts and catches up.
    lab.lab_ok(&["start", &leader]);
    wait_for(LONG, "the restarted manager to catch up", || {
        let nodes = lab.try_nodes(&leader)?;
        let l = labels_of(&nodes, "node-4");
        (l["after"] == "kill" && l["via"] == survivors[1] && l["before"] == "3").then_some(())
    });
    let nodes = wait_healthy(&lab, &leader, 4, 3);
    for (i, host) in ["node-1", "node-2", "node-3"].iter().enumerate() {
        assert_eq!(labels_of(&nodes, host)["before"], i.to_string());
    }

    // Stop every daemon, start them again: nodes, labels and tokens remain.
    let tokens = lab.shoal_ok("node-1", &["swarm", "join-token", "-q", "worker"]);
    for n in ["node-1", "node-2", "node-3", "node-4"] {
        lab.lab_ok(&["stop", n]);
    }
    for n in ["node-1", "node-2", "node-3", "node-4"] {
        lab.lab_ok(&["start", n]);
    }
    let nodes = wait_healthy(&lab, "node-2", 4, 3);
    assert_eq!(labels_of(&nodes, "node-4")["after"], "kill");
    assert_eq!(labels_of(&nodes, "node-1")["before"], "0");
    assert_eq!(lab.shoal_ok("node-3", &["swarm", "join-token", "-q", "worker"]), tokens);
}

#[test]
fn partitioned_manager_refuses_writes_then_converges() {
    let lab = Lab::up("e2e-part", 3, 0);
    let nodes = wait_healthy(&lab, "node-1", 3, 3);
    let cut = leader_host(&nodes).unwrap();
    let others: Vec<&str> = ["node-1", "node-2", "node-3"].into_iter().filter(|m| *m != cut).collect();
    lab.lab_ok(&["partition", &cut]);

    // The majority elects a leader and keeps writing.
    label_until_ok(&lab, others[0], others[1], "during", "partition");
    label_until_ok(&lab, others[1], others[0], "during", "partition");

    // Cut off, the old leader stops leading within an election timeout
    // (check-quorum). A write it took while it still led could have
    // reached the others before the cut, so its answer would rightly be
    // "outcome unknown" (DeadlineExceeded), not this refusal: wait for it.
    wait_for(LONG, "the cut-off manager to stop leading", || leader_host(&lab.try_nodes(&cut)?).is_none().then_some(()));

    // The cut-off manager refuses writes with a clear error, in bounded time.
    let start = Instant::now();
    let out = lab.shoal(&cut, &["node", "update", "--label-add", "lost=write", &cut]);
    let took = start.elapsed();
    assert!(!out.status.success(), "a write on the minority side must fail");
    let err = text(&out.stderr);
    assert!(err.contains("does not have a leader"), "unexpected error: {err}");
    assert!(took < Duration::from_secs(20), "refusal took {took:?}");
    eprintln!("FIGURE partitioned manager refused a write after {:.2}s", took.as_secs_f64());

    lab.lab_ok(&["heal", &cut]);
    wait_for(LONG, "the healed manager to converge", || {
        let nodes = lab.try_nodes(&cut)?;
        (labels_of(&nodes, others[1])["during"] == "partition"
            && labels_of(&nodes, &cut).get("lost").is_none()
            && leader_host(&nodes).is_some())
        .then_some(())
    });
    wait_healthy(&lab, &cut, 3, 3);
    label_until_ok(&lab, &cut, &cut, "healed", "yes");
}

#[test]
fn five_managers_survive_two_losses_and_recover_with_force_new_cluster() {
    let lab = Lab::up("e2e-five", 5, 0);
    wait_healthy(&lab, "node-1", 5, 5);
    lab.label("node-1", "node-1", "kept", "yes").unwrap();

    lab.lab_ok(&["kill", "node-4"]);
    lab.lab_ok(&["kill", "node-5"]);
    label_until_ok(&lab, "node-1", "node-2", "two", "down");

    lab.lab_ok(&["kill", "node-3"]);
    // Without a quorum, writes are refused.
    wait_for(LONG, "writes to be refused without quorum", || {
        let out = lab.shoal("node-1", &["node", "update", "--label-add", "three=down", "node-2"]);
        (!out.status.success() && text(&out.stderr).contains("does not have a leader")).then_some(())
    });

    lab.lab_ok(&["stop", "node-2"]);
    let out = lab.shoal_ok("node-1", &["swarm", "init", "--force-new-cluster"]);
    assert!(out.contains("Swarm initialized"), "{out}");
    label_until_ok(&lab, "node-1", "node-1", "recovered", "yes");
    let nodes = lab.nodes("node-1");
    assert_eq!(nodes.len(), 5, "every node is still known");
    assert_eq!(labels_of(&nodes, "node-1")["kept"], "yes");
    assert_eq!(labels_of(&nodes, "node-2")["two"], "down");
    assert_eq!(leader_host(&nodes).as_deref(), Some("node-1"));
    let members = nodes.iter().filter(|n| !n["ManagerStatus"].is_null()).count();
    assert_eq!(members, 1, "the new cluster has one manager");
}

#[test]
fn bad_join_tokens_are_refused_and_change_nothing() {
    let lab = Lab::up("e2e-tokens", 1, 1);
    wait_healthy(&lab, "node-1", 2, 1);
    let worker_token = lab.shoal_ok("node-1", &["swarm", "join-token", "-q", "worker"]).trim().to_string();
    assert!(worker_token.starts_with("SWMTKN-1-"));
    let parts: Vec<&str> = worker_token.split('-').collect();
    assert_eq!((parts[2].len(), parts[3].len()), (50, 25));
    let manager_token = lab.shoal_ok("node-1", &["swarm", "join-token", "-q", "manager"]).trim().to_string();
    assert_eq!(manager_token.split('-').nth(2), Some(parts[2]), "tokens share the CA digest");

    // node-2 leaves, then tries to come back with bad tokens.
    lab.shoal_ok("node-2", &["swarm", "leave"]);
    let remote = format!("{}:2377", lab.addr(1));
    let join = |token: &str| lab.shoal("node-2", &["swarm", "join", "--token", token, "--advertise-addr", &lab.addr(2), &remote]);
    let before = lab.nodes("node-1").len();

    let cases = [
        ("SWMTKN-1-garbage".to_string(), "invalid join token"),
        (format!("SWMTKN-1-{}-{}", parts[2], "0".repeat(25)), "A valid join token is necessary"),
        (format!("SWMTKN-1-{}-{}", "1".repeat(50), parts[3]), "remote CA does not match fingerprint"),
    ];
    for (token, want) in &cases {
        let out = join(token);
        assert!(!out.status.success(), "join with {token} must fail");
        assert!(text(&out.stderr).contains(want), "join with {token}: {}", text(&out.stderr));
    }

    // A rotated-away token stops working; the new one works.
    lab.shoal_ok("node-1", &["swarm", "join-token", "--rotate", "-q", "worker"]);
    let out = join(&worker_token);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("A valid join token is necessary"), "{}", text(&out.stderr));
    assert_eq!(lab.nodes("node-1").len(), before, "failed joins add no node");

    let fresh = lab.shoal_ok("node-1", &["swarm", "join-token", "-q", "worker"]).trim().to_string();
    assert_ne!(fresh, worker_token);
    let out = join(&fresh);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("This node joined a swarm as a worker."));
}

#[test]
fn node_lifecycle_promote_demote_remove() {
    let lab = Lab::up("e2e-nodes", 1, 3);
    wait_healthy(&lab, "node-1", 4, 1);
    // Faster heartbeats so Down is detected quickly.
    lab.shoal_ok("node-1", &["swarm", "update", "--dispatcher-heartbeat", "1s"]);

    lab.shoal_ok("node-1", &["node", "promote", "node-2", "node-3"]);
    let nodes = wait_healthy(&lab, "node-1", 4, 3);
    assert_eq!(by_host(&nodes)["node-2"]["Spec"]["Role"], "manager");
    // The promoted node serves manager calls itself.
    wait_healthy(&lab, "node-3", 4, 3);

    // Labels and availability.
    lab.shoal_ok("node-2", &["node", "update", "--label-add", "zone=east", "--availability", "drain", "node-4"]);
    // node-3 is a follower: its store catches up within a moment.
    wait_for(LONG, "node-3 to see the update made through node-2", || {
        let nodes = lab.try_nodes("node-3")?;
        let n4 = by_host(&nodes).get("node-4")?.clone();
        (n4["Spec"]["Labels"]["zone"] == "east" && n4["Spec"]["Availability"] == "drain").then_some(())
    });
    lab.shoal_ok("node-1", &["node", "update", "--label-rm", "zone", "--availability", "active", "node-4"]);
    assert!(by_host(&lab.nodes("node-1"))["node-4"]["Spec"]["Labels"].get("zone").is_none());

    // A stale version is refused and changes nothing.
    let n4 = by_host(&lab.nodes("node-1"))["node-4"].clone();
    let id = n4["ID"].as_str().unwrap();
    let stale = n4["Version"]["Index"].as_u64().unwrap() - 1;
    let (status, body) = lab.api(
        "node-1",
        "POST",
        &format!("/v1.44/nodes/{id}/update?version={stale}"),
        Some(&json!({"Role":"worker","Availability":"pause","Labels":{}})),
    );
    assert_eq!(status, 500, "{body}");
    assert!(body["message"].as_str().unwrap().contains("update out of sequence"));
    assert_eq!(by_host(&lab.nodes("node-1"))["node-4"]["Spec"]["Availability"], "active");

    // Demote back; the quorum guard refuses to demote the last manager.
    lab.shoal_ok("node-1", &["node", "demote", "node-3"]);
    wait_for(LONG, "node-3 to leave the managers", || {
        let nodes = lab.try_nodes("node-1")?;
        (by_host(&nodes)["node-3"]["ManagerStatus"].is_null()).then_some(())
    });
    wait_healthy(&lab, "node-1", 4, 2);
    lab.shoal_ok("node-1", &["node", "demote", "node-2"]);
    wait_healthy(&lab, "node-1", 4, 1);
    let out = lab.shoal("node-1", &["node", "demote", "node-1"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("last manager"), "{}", text(&out.stderr));

    // A running node is only removed with --force; it cannot come back.
    let out = lab.shoal("node-1", &["node", "rm", "node-4"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("is not down and can't be removed"), "{}", text(&out.stderr));
    lab.shoal_ok("node-1", &["node", "rm", "--force", "node-4"]);
    wait_for(LONG, "node-4's old certificate to be refused", || {
        let (_, info) = lab.api("node-4", "GET", "/v1.44/info", None);
        info["Swarm"]["Error"].as_str().filter(|e| e.contains("removed")).map(|_| ())
    });
    let nodes = lab.nodes("node-1");
    assert_eq!(nodes.len(), 3);
    assert!(!by_host(&nodes).contains_key("node-4"));

    // A killed worker turns Down after missed heartbeats, then Ready again.
    lab.lab_ok(&["kill", "node-3"]);
    wait_for(LONG, "node-3 to be Down", || (by_host(&lab.nodes("node-1"))["node-3"]["Status"]["State"] == "down").then_some(()));
    lab.lab_ok(&["start", "node-3"]);
    wait_for(LONG, "node-3 to be Ready", || (by_host(&lab.nodes("node-1"))["node-3"]["Status"]["State"] == "ready").then_some(()));
}

#[test]
fn docker_cli_gets_the_same_answers() {
    let docker = which("docker").expect("the stock docker CLI is part of this test: install docker.io (client only is enough)");
    let lab = Lab::up("e2e-docker", 1, 1);
    wait_healthy(&lab, "node-1", 2, 1);
    let host = format!("unix://{}", lab.socket("node-1"));
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&docker).args(args).env("DOCKER_HOST", &host).output().expect("run docker");
        assert!(out.status.success(), "docker {args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let shoal_ids: Vec<String> = {
        let mut v: Vec<String> = lab.shoal_ok("node-1", &["node", "ls", "-q"]).lines().map(String::from).collect();
        v.sort();
        v
    };
    let mut docker_ids: Vec<String> = run(&["node", "ls", "-q"]).lines().map(String::from).collect();
    docker_ids.sort();
    assert_eq!(docker_ids, shoal_ids);
    let table = run(&["node", "ls"]);
    assert!(table.contains("Leader") && table.contains("node-2"), "{table}");

    let info_id = run(&["info", "--format", "{{.Swarm.NodeID}}"]);
    let self_id = run(&["node", "inspect", "self", "--format", "{{.ID}}"]);
    assert_eq!(info_id.trim(), self_id.trim());
    assert_eq!(run(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).trim(), "active");

    run(&["node", "update", "--label-add", "from=docker", "node-2"]);
    assert_eq!(by_host(&lab.nodes("node-1"))["node-2"]["Spec"]["Labels"]["from"], "docker");

    let token = lab.shoal_ok("node-1", &["swarm", "join-token", "-q", "worker"]);
    let docker_join = run(&["swarm", "join-token", "worker"]);
    assert!(docker_join.contains(token.trim()), "{docker_join}");
    assert!(docker_join.contains(&format!("{}:2377", lab.addr(1))), "{docker_join}");
}

#[test]
fn lab_down_leaves_nothing_behind() {
    let name = "e2e-down";
    {
        let lab = Lab::up(name, 1, 1);
        wait_healthy(&lab, "node-1", 2, 1);
        let out = lab.lab_ok(&["exec", "node-2", "--", "ping", "-c", "1", "-W", "2", &lab.addr(1)]);
        assert!(out.contains("1 received"), "{out}");
        lab.lab_ok(&["down"]);
        lab.lab_ok(&["down"]); // twice is fine
    }
    let netns = std::process::Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(!text(&netns.stdout).contains(&format!("shoal-{name}-")), "{}", text(&netns.stdout));
    assert!(!std::path::Path::new(&format!("/run/shoal/lab/{name}")).exists());
    assert!(!std::path::Path::new(&format!("/var/lib/shoal/lab/{name}")).exists());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&format!("shoal-{name}-")), "a namespace mount is left");
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = text(&cmd);
            assert!(!(cmd.contains("shoald") && cmd.contains(&format!("/lab/{name}/"))), "left running: {cmd}");
        }
    }
    let links = std::process::Command::new("ip").args(["-o", "link"]).output().unwrap();
    assert!(!text(&links.stdout).contains("v-node-"), "a lab link is left in the root namespace");
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| std::path::Path::new(d).join(name)).find(|p| p.exists())
}

#[test]
fn root_ca_rotation_reissues_every_certificate() {
    let lab = Lab::up("e2e-ca", 3, 1);
    wait_healthy(&lab, "node-1", 4, 3);
    lab.shoal_ok("node-1", &["swarm", "update", "--dispatcher-heartbeat", "1s"]);
    let old_token = lab.shoal_ok("node-1", &["swarm", "join-token", "-q", "worker"]);
    let old_root = lab.shoal_ok("node-1", &["swarm", "ca"]);
    assert!(old_root.starts_with("-----BEGIN CERTIFICATE-----"), "{old_root}");

    let out = lab.shoal_ok("node-2", &["swarm", "ca", "--rotate"]);
    // Progress lines come first, then the new root certificate.
    let new_root = out[out.find("-----BEGIN CERTIFICATE-----").expect("a root certificate is printed")..].to_string();
    assert_ne!(new_root, old_root);
    // Every node ends up trusting the new root, and the swarm keeps working.
    let nodes = wait_for(LONG, "every node to trust the new root", || {
        let nodes = lab.try_nodes("node-3")?;
        let done = nodes.iter().all(|n| n["Description"]["TLSInfo"]["TrustRoot"].as_str().map(str::trim) == Some(new_root.trim()));
        done.then_some(nodes)
    });
    assert_eq!(nodes.len(), 4);
    let (_, swarm) = lab.api("node-1", "GET", "/v1.44/swarm", None);
    assert_eq!(swarm["RootRotationInProgress"], false);
    wait_healthy(&lab, "node-1", 4, 3);
    label_until_ok(&lab, "node-3", "node-4", "after", "rotation");

    // Tokens now carry the new root's digest.
    let new_token = lab.shoal_ok("node-1", &["swarm", "join-token", "-q", "worker"]);
    assert_ne!(new_token.split('-').nth(2), old_token.split('-').nth(2));
}

#[test]
fn a_node_down_for_a_whole_ca_rotation_comes_back_without_rejoining() {
    let lab = Lab::up("e2e-ca2", 1, 1);
    wait_healthy(&lab, "node-1", 2, 1);
    lab.shoal_ok("node-1", &["swarm", "update", "--dispatcher-heartbeat", "1s"]);
    lab.lab_ok(&["stop", "node-2"]);
    wait_for(LONG, "node-2 to be down", || {
        let nodes = lab.try_nodes("node-1")?;
        (by_host(&nodes).get("node-2")?["Status"]["State"] == "down").then_some(())
    });
    // The rotation completes without node-2 (only Ready nodes report;
    // the CLI, like docker's, would wait for every node: detach).
    let old_root = lab.shoal_ok("node-1", &["swarm", "ca"]).trim().to_string();
    lab.shoal_ok("node-1", &["swarm", "ca", "--rotate", "--detach"]);
    let new_root = wait_for(LONG, "the rotation to complete on the ready nodes", || {
        let (_, sw) = lab.api("node-1", "GET", "/v1.44/swarm", None);
        let root = sw["TLSInfo"]["TrustRoot"].as_str()?.trim().to_string();
        (root != old_root && sw["RootRotationInProgress"] == false).then_some(root)
    });
    // node-2 still trusts only the old root and holds a certificate from it:
    // the cross-signed root lets it verify the manager, the previous root
    // stays trusted for its certificate, and it renews under the new root.
    lab.lab_ok(&["start", "node-2"]);
    wait_for(LONG, "node-2 back and on the new root", || {
        let nodes = lab.try_nodes("node-1")?;
        let n = by_host(&nodes).get("node-2")?.clone();
        (n["Status"]["State"] == "ready" && n["Description"]["TLSInfo"]["TrustRoot"].as_str().map(str::trim) == Some(new_root.as_str()))
            .then_some(())
    });
    let root = std::fs::read_to_string(format!("/var/lib/shoal/lab/{}/node-2/swarm/certificates/swarm-root-ca.crt", lab.name)).unwrap();
    assert_eq!(root.trim(), new_root, "node-2 saved the new root");
}

#[test]
fn snapshots_compact_the_log_and_bring_new_managers_up_to_date() {
    // Snapshot every 20 entries, keeping 10 behind: a manager added later
    // must be brought up to date from a snapshot, not the log alone.
    let lab = Lab::up_with_env("e2e-snap", 1, 2, &[("SHOAL_RAFT_SNAPSHOT_INTERVAL", "20")]);
    wait_healthy(&lab, "node-1", 3, 1);
    for i in 0..40 {
        lab.label("node-1", "node-3", &format!("k{i}"), &i.to_string()).unwrap();
    }
    let raft_dir = format!("/var/lib/shoal/lab/{}/node-1/swarm/raft", lab.name);
    assert!(std::path::Path::new(&raft_dir).join("snapshot.bin").exists(), "no snapshot in {raft_dir}");

    lab.shoal_ok("node-1", &["node", "promote", "node-2"]);
    wait_for(LONG, "the new manager to hold every label", || {
        let nodes = lab.try_nodes("node-2")?;
        let l = labels_of(&nodes, "node-3");
        (0..40).all(|i| l[format!("k{i}")] == i.to_string().as_str()).then_some(())
    });
    wait_healthy(&lab, "node-2", 3, 2);

    // Restart both managers: state comes back from snapshot plus log.
    lab.lab_ok(&["stop", "node-1"]);
    lab.lab_ok(&["stop", "node-2"]);
    lab.lab_ok(&["start", "node-1"]);
    lab.lab_ok(&["start", "node-2"]);
    let nodes = wait_healthy(&lab, "node-1", 3, 2);
    let l = labels_of(&nodes, "node-3");
    assert!((0..40).all(|i| l[format!("k{i}")] == i.to_string().as_str()), "{l}");
    label_until_ok(&lab, "node-2", "node-3", "after", "restart");
}
