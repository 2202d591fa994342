//! Issue 3's acceptance scenario in one lab: 1 manager and 3 workers, and
//! a real registry (Debian's docker-registry) inside the lab, filled with
//! images the test builds from busybox-static. Every node pulls from it by
//! address; nothing leaves the lab.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use shoal_e2e::registry::LabRegistry;
use shoal_e2e::{build_image, build_image_with_cmd, text, wait_for, Lab};

const LONG: Duration = Duration::from_secs(90);
const REG_IP: &str = "192.168.77.11";

fn hostnames(lab: &Lab) -> BTreeMap<String, String> {
    lab.nodes("node-1")
        .iter()
        .map(|n| (n["ID"].as_str().unwrap().to_string(), n["Description"]["Hostname"].as_str().unwrap().to_string()))
        .collect()
}

/// Running tasks (desired and observed) per node hostname.
fn running_per_node(lab: &Lab, service: &str) -> BTreeMap<String, usize> {
    let hosts = hostnames(lab);
    let mut per = BTreeMap::new();
    for t in lab.tasks(service) {
        if t["DesiredState"] == "running" && t["Status"]["State"] == "running" {
            let host = hosts.get(t["NodeID"].as_str().unwrap_or("")).cloned().unwrap_or_default();
            *per.entry(host).or_insert(0) += 1;
        }
    }
    per
}

fn running(lab: &Lab, service: &str) -> usize {
    running_per_node(lab, service).values().sum()
}

fn wait_running(lab: &Lab, service: &str, n: usize) -> BTreeMap<String, usize> {
    wait_for(LONG, &format!("{n} running tasks of {service}"), || {
        let per = running_per_node(lab, service);
        let live = lab.tasks(service).iter().filter(|t| t["DesiredState"] == "running").count();
        (per.values().sum::<usize>() == n && live == n).then_some(per)
    })
}

fn service(lab: &Lab, name: &str) -> Value {
    lab.api("node-1", "GET", &format!("/v1.44/services/{name}"), None).1
}

fn image_of(lab: &Lab, name: &str) -> String {
    service(lab, name)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].as_str().unwrap_or("").to_string()
}

fn update_state(lab: &Lab, name: &str) -> String {
    service(lab, name)["UpdateStatus"]["State"].as_str().unwrap_or("").to_string()
}

fn shoal_err(lab: &Lab, args: &[&str]) -> String {
    let out = lab.shoal("node-1", args);
    assert!(!out.status.success(), "shoal {args:?} should fail");
    text(&out.stderr)
}

fn docker(lab: &Lab, args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", lab.socket("node-1")))
        .env("DOCKER_CLI_HINTS", "false")
        .output()
        .expect("run the docker CLI (install docker.io)");
    assert!(out.status.success(), "docker {args:?}: {}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn issue_3_acceptance() {
    let lab = Lab::up_with("e2e-acc", 1, 3, &[], &["--insecure-registry", &format!("{REG_IP}:5000")]);
    let dir = std::env::temp_dir().join(format!("shoal-e2e-acc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let registry = LabRegistry::start(&lab, "node-1", REG_IP);
    let web = format!("{REG_IP}:5000/web");
    registry.push(&build_image(&dir, "web:1", "web1.tar"), "web", "1");
    registry.push(&build_image_with_cmd(&dir, "web:2", "web2.tar", r#"["sh","-c","sleep 100000"]"#), "web", "2");
    registry.push(&build_image_with_cmd(&dir, "fail:1", "fail.tar", r#"["sh","-c","exit 1"]"#), "fail", "1");
    let (web1, web2, fail1) = (format!("{web}:1"), format!("{web}:2"), format!("{REG_IP}:5000/fail:1"));

    // Six replicas, two per worker (the manager keeps to managing); each
    // prints where it runs, then serves /www. Without -d the CLI shows the
    // convergence and returns once converged.
    let out = lab.shoal_ok(
        "node-1",
        &[
            "service",
            "create",
            "--name",
            "web",
            "--replicas",
            "6",
            "--constraint",
            "node.role==worker",
            "--stop-grace-period",
            "1s",
            &web1,
            "sh",
            "-c",
            "echo started on $(hostname); exec httpd -f -p 80 -h /www",
        ],
    );
    assert!(out.contains("overall progress: 6 out of 6 tasks") && out.contains("converged"), "{out}");
    let per = wait_running(&lab, "web", 6);
    assert_eq!(per.values().copied().collect::<Vec<_>>(), vec![2, 2, 2], "{per:?}");
    lab.shoal_ok("node-1", &["service", "scale", "-d", "web=10"]);
    wait_running(&lab, "web", 10);
    let ps = lab.shoal_ok("node-1", &["service", "ps", "-f", "desired-state=running", "web"]);
    assert_eq!(ps.lines().filter(|l| l.contains("Running")).count(), 10, "{ps}");
    let logs = wait_for(LONG, "a log line from every replica", || {
        let out = lab.shoal("node-1", &["service", "logs", "web"]);
        let l = text(&out.stdout);
        (l.matches("started on").count() >= 10).then_some(l)
    });
    for node in ["node-2", "node-3", "node-4"] {
        assert!(logs.contains(&format!("@{node}")), "lines from {node}: {logs}");
    }

    // A label and a constraint pin tasks; an impossible one leaves them
    // pending with the reason; moving the label moves the tasks.
    lab.shoal_ok("node-1", &["node", "update", "--label-add", "zone=a", "node-2"]);
    lab.shoal_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "pinned",
            "--replicas",
            "3",
            "--constraint",
            "node.labels.zone==a",
            &web1,
            "sleep",
            "100000",
        ],
    );
    assert_eq!(wait_running(&lab, "pinned", 3).keys().collect::<Vec<_>>(), ["node-2"]);
    lab.shoal_ok("node-1", &["service", "create", "-d", "--name", "nowhere", "--constraint", "node.labels.zone==mars", &web1]);
    wait_for(LONG, "the unplaceable task's reason", || {
        lab.tasks("nowhere")
            .iter()
            .any(|t| {
                t["Status"]["State"] == "pending"
                    && t["Status"]["Err"] == "no suitable node (scheduling constraints not satisfied on 4 nodes)"
            })
            .then_some(())
    });
    lab.shoal_ok("node-1", &["node", "update", "--label-rm", "zone", "node-2"]);
    lab.shoal_ok("node-1", &["node", "update", "--label-add", "zone=a", "node-3"]);
    wait_for(LONG, "pinned tasks to follow the label", || {
        (running_per_node(&lab, "pinned").keys().collect::<Vec<_>>() == ["node-3"] && running(&lab, "pinned") == 3).then_some(())
    });

    // Spread over zones of unequal size: zone a has node-3, zone b node-2
    // and node-4: half the tasks go to each zone.
    lab.shoal_ok("node-1", &["node", "update", "--label-add", "zone=b", "node-2"]);
    lab.shoal_ok("node-1", &["node", "update", "--label-add", "zone=b", "node-4"]);
    lab.shoal_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "spread",
            "--replicas",
            "4",
            "--constraint",
            "node.role==worker",
            "--placement-pref",
            "spread=node.labels.zone",
            &web1,
            "sleep",
            "100000",
        ],
    );
    let per = wait_running(&lab, "spread", 4);
    assert_eq!(per.get("node-3"), Some(&2), "zone a gets half: {per:?}");
    assert_eq!(per.get("node-2").unwrap_or(&0) + per.get("node-4").unwrap_or(&0), 2, "zone b the other half: {per:?}");

    // Global: one task per node, and a node that joins afterwards gets one.
    lab.shoal_ok("node-4", &["swarm", "leave"]);
    wait_for(LONG, "node-4 to be down", || {
        lab.nodes("node-1").iter().any(|n| n["Description"]["Hostname"] == "node-4" && n["Status"]["State"] == "down").then_some(())
    });
    lab.shoal_ok("node-1", &["node", "rm", "node-4"]);
    lab.shoal_ok("node-1", &["service", "create", "-d", "--name", "agent", "--mode", "global", &web1, "sleep", "100000"]);
    assert_eq!(wait_running(&lab, "agent", 3).len(), 3);
    let token = lab.shoal_ok("node-1", &["swarm", "join-token", "-q", "worker"]);
    lab.shoal_ok("node-4", &["swarm", "join", "--token", token.trim(), &format!("{}:2377", lab.addr(1))]);
    let per = wait_running(&lab, "agent", 4);
    assert!(per.contains_key("node-4"), "the new node runs the global task: {per:?}");
    wait_running(&lab, "web", 10);

    // Draining a node stops its global task and moves its replicated ones.
    lab.shoal_ok("node-1", &["node", "update", "--availability", "drain", "node-3"]);
    wait_for(LONG, "node-3 to be empty", || {
        let gone = ["web", "agent", "spread"].iter().all(|s| !running_per_node(&lab, s).contains_key("node-3"));
        (gone && running(&lab, "web") == 10 && running(&lab, "agent") == 3).then_some(())
    });
    lab.shoal_ok("node-1", &["node", "update", "--availability", "active", "node-3"]);

    // SIGKILL a worker's daemon: after the heartbeat grace its tasks run
    // elsewhere. How long until the service is back at full strength.
    let victim = "node-4";
    let t0 = Instant::now();
    lab.lab_ok(&["kill", victim]);
    wait_for(Duration::from_secs(120), "web back at 10 running tasks without node-4", || {
        let per = running_per_node(&lab, "web");
        (!per.contains_key(victim) && per.values().sum::<usize>() == 10).then_some(())
    });
    println!("figure: web back at full strength {:.1} s after SIGKILL of {victim}'s shoald", t0.elapsed().as_secs_f64());
    lab.lab_ok(&["start", victim]);
    wait_for(LONG, "node-4 ready again", || {
        lab.nodes("node-1").iter().any(|n| n["Description"]["Hostname"] == victim && n["Status"]["State"] == "ready").then_some(())
    });

    // A rolling update two at a time with a delay, then `service rollback`.
    lab.shoal_ok(
        "node-1",
        &[
            "service",
            "update",
            "-d",
            "--image",
            &web2,
            "--update-parallelism",
            "2",
            "--update-delay",
            "1s",
            "--update-monitor",
            "1s",
            "--rollback-parallelism",
            "0",
            "--rollback-monitor",
            "1s",
            "web",
        ],
    );
    wait_for(LONG, "the update to complete", || (update_state(&lab, "web") == "completed").then_some(()));
    let new = lab
        .tasks("web")
        .into_iter()
        .filter(|t| t["DesiredState"] == "running" && t["Spec"]["ContainerSpec"]["Image"] == web2.as_str())
        .count();
    assert_eq!(new, 10);
    lab.shoal_ok("node-1", &["service", "rollback", "-d", "web"]);
    wait_for(LONG, "the rollback to complete", || (update_state(&lab, "web") == "rollback_completed").then_some(()));
    assert_eq!(image_of(&lab, "web"), web1);
    // An image whose command exits 1, with failure action rollback.
    lab.shoal_ok("node-1", &["service", "update", "-d", "--image", &fail1, "--args", "", "--update-failure-action", "rollback", "web"]);
    wait_for(LONG, "the automatic rollback", || (update_state(&lab, "web") == "rollback_completed").then_some(()));
    assert_eq!(image_of(&lab, "web"), web1);
    wait_running(&lab, "web", 10);

    // Restart limits, and a failing health check that replaces the task.
    lab.shoal_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "flaky",
            "--restart-condition",
            "on-failure",
            "--restart-max-attempts",
            "2",
            "--restart-delay",
            "0s",
            &fail1,
        ],
    );
    wait_for(LONG, "three failed runs", || {
        (lab.tasks("flaky").iter().filter(|t| t["Status"]["State"] == "failed").count() == 3).then_some(())
    });
    lab.shoal_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "sick",
            "--health-cmd",
            "false",
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
            "--restart-delay",
            "0s",
            &web1,
            "sleep",
            "100000",
        ],
    );
    let sick = wait_for(LONG, "an unhealthy task failed and replaced", || {
        let ts = lab.tasks("sick");
        let failed = ts.iter().find(|t| t["Status"]["State"] == "failed")?.clone();
        (ts.len() >= 2).then_some(failed)
    });
    assert_eq!(sick["Status"]["Err"], "task: non-zero exit (137): dockerexec: unhealthy container", "{sick}");
    assert_eq!(lab.tasks("flaky").len(), 3, "no fourth run of the flaky service");

    // A secret, readable in the container at /run/secrets/<name>.
    let mut child = Command::new(shoal_e2e::bin("shoal"))
        .args(["-H", &format!("unix://{}", lab.socket("node-1")), "secret", "create", "db_pw", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"s3cret-value").unwrap();
    assert!(child.wait().unwrap().success());
    lab.shoal_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "reader",
            "--secret",
            "db_pw",
            &web1,
            "sh",
            "-c",
            "echo secret=$(cat /run/secrets/db_pw); sleep 100000",
        ],
    );
    wait_for(LONG, "the secret in the container", || {
        text(&lab.shoal("node-1", &["service", "logs", "--raw", "reader"]).stdout).contains("secret=s3cret-value").then_some(())
    });

    // Out of memory: 32 MiB limit, a 64 MiB buffer: exit 137, failed.
    lab.shoal_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "oom",
            "--limit-memory",
            "32M",
            "--restart-condition",
            "none",
            &web1,
            "dd",
            "if=/dev/zero",
            "of=/dev/null",
            "bs=64M",
            "count=1",
        ],
    );
    let oom = wait_for(LONG, "the OOM-killed task", || lab.tasks("oom").into_iter().find(|t| t["Status"]["State"] == "failed"));
    assert_eq!(oom["Status"]["ContainerStatus"]["ExitCode"], 137, "{oom}");
    assert_eq!(oom["Status"]["Err"], "task: non-zero exit (137)", "{oom}");

    // Bad input changes nothing and says why.
    lab.shoal_ok(
        "node-1",
        &["service", "create", "-d", "--name", "ghost", "--restart-condition", "none", &format!("{REG_IP}:5000/nope:1")],
    );
    let rejected =
        wait_for(LONG, "the unknown image's task rejected", || lab.tasks("ghost").into_iter().find(|t| t["Status"]["State"] == "rejected"));
    let err = rejected["Status"]["Err"].as_str().unwrap_or("");
    assert!(err.contains("nope") && (err.contains("not found") || err.contains("unknown")), "{err}");
    let before = lab.shoal_ok("node-1", &["service", "ls", "-q"]);
    let e = shoal_err(&lab, &["service", "create", "--name", "bad", "--constraint", "node.labels.zone~a", &web1]);
    assert!(e.contains("constraint expected one operator from ==, !="), "{e}");
    let e = shoal_err(&lab, &["service", "create", "--name", "web", &web1]);
    assert!(e.contains("service web already exists"), "{e}");
    let svc = service(&lab, "web");
    let stale = svc["Version"]["Index"].as_u64().unwrap() - 1;
    let (status, body) = lab.api("node-1", "POST", &format!("/v1.44/services/web/update?version={stale}"), Some(&svc["Spec"]));
    assert_eq!((status, body["message"].as_str().unwrap_or("")), (500, "rpc error: code = Unknown desc = update out of sequence"));
    assert_eq!(lab.shoal_ok("node-1", &["service", "ls", "-q"]), before, "nothing changed");

    // The same core flow through the stock docker CLI.
    docker(
        &lab,
        &[
            "service",
            "create",
            "-d",
            "--name",
            "dk",
            "--replicas",
            "2",
            "--constraint",
            "node.role==worker",
            "--stop-grace-period",
            "1s",
            "--update-parallelism",
            "0",
            "--rollback-parallelism",
            "0",
            &web1,
            "sh",
            "-c",
            "echo hello from docker; exec sleep 100000",
        ],
    );
    wait_running(&lab, "dk", 2);
    assert_eq!(docker(&lab, &["service", "ps", "-q", "-f", "desired-state=running", "dk"]).lines().count(), 2);
    docker(&lab, &["service", "scale", "-d", "dk=3"]);
    wait_running(&lab, "dk", 3);
    docker(&lab, &["service", "update", "-d", "--env-add", "V=2", "dk"]);
    wait_for(LONG, "docker's update to complete", || (update_state(&lab, "dk") == "completed").then_some(()));
    docker(&lab, &["service", "rollback", "-d", "dk"]);
    wait_for(LONG, "docker's rollback to complete", || (update_state(&lab, "dk") == "rollback_completed").then_some(()));
    let dlogs = wait_for(LONG, "docker service logs", || {
        let l = docker(&lab, &["service", "logs", "dk"]);
        (l.matches("hello from docker").count() >= 3).then_some(l)
    });
    assert!(dlogs.contains("dk.1.") && dlogs.contains("| hello from docker"), "{dlogs}");

    let all = ["web", "pinned", "nowhere", "spread", "agent", "flaky", "sick", "reader", "oom", "ghost"];
    for s in all {
        lab.shoal_ok("node-1", &["service", "rm", s]);
    }
    docker(&lab, &["service", "rm", "dk"]);
    wait_for(LONG, "every task gone", || {
        let (_, all) = lab.api("node-1", "GET", "/v1.44/tasks", None);
        all.as_array().map(|a| a.is_empty()).unwrap_or(false).then_some(())
    });
    drop(registry);
    let _ = std::fs::remove_dir_all(&dir);
}
