//! `docker events` and `shoal events` against shoald (1 manager + 1
//! worker): a service's create/update/remove on the manager with Docker's
//! attributes (`updatestate.old/new`), filtered by type and service; the
//! worker's own container start/die and image load events on its socket;
//! a node update; a live stream; and `shoal events` printing the same
//! lines as the stock CLI.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use shoal_e2e::{text, wait_for, Lab};

const LONG: Duration = Duration::from_secs(90);

/// Now as a Unix timestamp the CLIs take for `--since`/`--until`.
fn unix_now() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

/// `docker events --since S --until now ARGS --format '{{json .}}'` on
/// `node`: the past events, parsed.
fn past_events(lab: &Lab, node: &str, since: &str, args: &[&str]) -> Vec<Value> {
    let until = unix_now();
    let mut full = vec!["events", "--since", since, "--until", until.as_str(), "--format", "{{json .}}"];
    full.extend_from_slice(args);
    lab.docker_ok(node, &full).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

fn attr<'a>(e: &'a Value, k: &str) -> &'a str {
    e["Actor"]["Attributes"][k].as_str().unwrap_or("")
}

#[test]
fn docker_events_shows_cluster_and_node_events() {
    let lab = Lab::up("ev-e2e", 1, 1);
    let since = unix_now();
    lab.load_test_image(&["node-2"]);

    // A live subscriber on the manager, started before anything happens.
    let mut live = Command::new("docker")
        .args(["events", "--filter", "type=service", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}"])
        .env("DOCKER_HOST", format!("unix://{}", lab.socket("node-1")))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker events");
    let (tx, rx) = mpsc::channel();
    let stdout = live.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The stream is open once the subscriber is registered: a noise service
    // created now shows up on it (retried until it does, no fixed wait).
    let deadline = Instant::now() + LONG;
    let mut n = 0;
    'subscribed: loop {
        assert!(Instant::now() < deadline, "the live docker events stream never showed a service event");
        n += 1;
        let name = format!("probe{n}");
        lab.docker_ok(
            "node-1",
            &["service", "create", "-d", "--no-resolve-image", "--name", &name, "--replicas", "0", "shoal-test/busy:1"],
        );
        let until = Instant::now() + Duration::from_secs(5);
        while let Ok(line) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            if line.starts_with("service create probe") {
                break 'subscribed;
            }
        }
    }

    // A service's life: create, update (a rolling update), remove.
    lab.docker_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--no-resolve-image",
            "--name",
            "x",
            "--constraint",
            "node.role==worker",
            "--stop-grace-period",
            "1s",
            "shoal-test/busy:1",
            "sleep",
            "1000",
        ],
    );
    let first = wait_for(LONG, "x's first task to run", || lab.tasks("x").into_iter().find(|t| t["Status"]["State"] == "running"));
    lab.docker_ok("node-1", &["service", "update", "-d", "--env-add", "A=1", "x"]);
    wait_for(LONG, "x's update to complete", || {
        let (_, s) = lab.api("node-1", "GET", "/v1.44/services/x", None);
        (s["UpdateStatus"]["State"] == "completed").then_some(())
    });
    lab.docker_ok("node-1", &["service", "rm", "x"]);

    let filter = ["--filter", "type=service", "--filter", "service=x"];
    let events = wait_for(LONG, "x's remove event", || {
        let ev = past_events(&lab, "node-1", &since, &filter);
        ev.iter().any(|e| e["Action"] == "remove").then_some(ev)
    });
    let summary: Vec<String> = events.iter().map(|e| format!("{} {} {}", e["Type"], e["Action"], attr(e, "name"))).collect();
    for e in &events {
        assert_eq!((e["Type"].as_str(), e["scope"].as_str(), attr(e, "name")), (Some("service"), Some("swarm"), "x"), "{summary:?}");
        assert!(e["timeNano"].as_i64().unwrap() > 0 && e["time"].as_i64().unwrap() > 0, "{e}");
    }
    assert_eq!(events.first().unwrap()["Action"], "create", "{summary:?}");
    assert_eq!(events.last().unwrap()["Action"], "remove", "{summary:?}");
    let id = events[0]["Actor"]["ID"].as_str().unwrap();
    assert!(events.iter().all(|e| e["Actor"]["ID"] == id), "{summary:?}");
    let updates: Vec<&Value> = events.iter().filter(|e| e["Action"] == "update").collect();
    assert!(updates.iter().any(|e| attr(e, "updatestate.new") == "updating"), "{events:?}");
    assert!(updates.iter().any(|e| attr(e, "updatestate.old") == "updating" && attr(e, "updatestate.new") == "completed"), "{events:?}");
    // Only x: the probes are filtered out.
    assert!(!summary.iter().any(|s| s.contains("probe")), "{summary:?}");

    // The live stream saw them too, as they came.
    let mut seen = Vec::new();
    wait_for(LONG, "the live stream to show x's create and remove", || {
        while let Ok(l) = rx.try_recv() {
            seen.push(l);
        }
        (seen.iter().any(|l| l == "service create x") && seen.iter().any(|l| l == "service remove x")).then_some(())
    });
    let _ = live.kill();
    let _ = live.wait();

    // The worker's own engine events: its task containers started and died
    // (the update replaced the first; the removal stopped the second).
    let first_id = first["ID"].as_str().unwrap();
    let containers = wait_for(LONG, "the worker's container die events", || {
        let ev = past_events(&lab, "node-2", &since, &["--filter", "type=container", "--filter", "event=start", "--filter", "event=die"]);
        (ev.iter().filter(|e| e["Action"] == "die").count() >= 2).then_some(ev)
    });
    let start = containers.iter().find(|e| e["Action"] == "start" && e["Actor"]["ID"] == first_id).expect("the first task's start");
    assert_eq!(start["scope"], "local");
    assert_eq!(
        (start["status"].as_str(), start["id"].as_str(), start["from"].as_str()),
        (Some("start"), Some(first_id), Some("shoal-test/busy:1"))
    );
    assert_eq!(attr(start, "name"), format!("x.1.{first_id}"));
    assert_eq!(attr(start, "image"), "shoal-test/busy:1");
    assert_eq!(attr(start, "com.docker.swarm.service.name"), "x");
    assert_eq!(attr(start, "com.docker.swarm.task.id"), first_id);
    let die = containers.iter().find(|e| e["Action"] == "die" && e["Actor"]["ID"] == first_id).expect("the first task's die");
    assert!(!attr(die, "exitCode").is_empty(), "{die}");
    assert!(containers.iter().all(|e| e["Type"] == "container"), "{containers:?}");
    // Workers have no cluster events; their image load is local.
    assert!(past_events(&lab, "node-2", &since, &["--filter", "scope=swarm"]).is_empty());
    let images = past_events(&lab, "node-2", &since, &["--filter", "type=image"]);
    assert!(images.iter().any(|e| e["Action"] == "load"), "{images:?}");
    assert!(images.iter().any(|e| e["Action"] == "tag" && attr(e, "name") == "shoal-test/busy:1"), "{images:?}");

    // A node update names what changed.
    lab.docker_ok("node-1", &["node", "update", "--availability", "drain", "node-2"]);
    let nodes = wait_for(LONG, "node-2's update event", || {
        let ev = past_events(&lab, "node-1", &since, &["--filter", "type=node", "--filter", "node=node-2"]);
        ev.iter().any(|e| attr(e, "availability.new") == "drain").then_some(ev)
    });
    let drained = nodes.iter().find(|e| attr(e, "availability.new") == "drain").unwrap();
    assert_eq!(
        (drained["Action"].as_str(), attr(drained, "availability.old"), attr(drained, "name")),
        (Some("update"), "active", "node-2")
    );

    // `shoal events` prints what `docker events` prints, line for line.
    let until = unix_now();
    let args = ["events", "--since", since.as_str(), "--until", until.as_str(), "--filter", "type=service", "--filter", "service=x"];
    let docker = lab.docker_ok("node-1", &args);
    let shoal = lab.shoal_ok("node-1", &args);
    assert_eq!(shoal, docker);
    assert!(docker.lines().next().unwrap().contains(&format!(" service create {id} (name=x)")), "{docker}");
    let fmt = ["--format", "{{json .}}"];
    let docker = lab.docker_ok("node-2", &[&args[..5], &fmt[..]].concat());
    let shoal = lab.shoal_ok("node-2", &[&args[..5], &fmt[..]].concat());
    assert_eq!(shoal, docker);
    assert!(docker.contains("\"Type\":\"container\""), "{docker}");

    // Docker's refusal of a reversed range.
    let out = lab.docker("node-1", &["events", "--since", until.as_str(), "--until", since.as_str()]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("cannot be after `until` time"), "{}", text(&out.stderr));
}
