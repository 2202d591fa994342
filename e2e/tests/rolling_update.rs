//! Rolling updates, rollbacks and the restart supervisor on real
//! containers: a 1-manager, 2-worker lab with the test image loaded.

use std::time::Duration;

use serde_json::Value;
use shoal_e2e::{build_busybox_image, wait_for, Lab};

const LONG: Duration = Duration::from_secs(120);

fn service(lab: &Lab, name: &str) -> Value {
    lab.api("node-1", "GET", &format!("/v1.44/services/{name}"), None).1
}

fn update_state(lab: &Lab, name: &str) -> String {
    service(lab, name)["UpdateStatus"]["State"].as_str().unwrap_or("").to_string()
}

fn has_env(t: &Value, env: &str) -> bool {
    t["Spec"]["ContainerSpec"]["Env"].as_array().map(|a| a.iter().any(|e| e == env)).unwrap_or(false)
}

/// Running tasks that do / do not carry `env`.
fn running_split(lab: &Lab, name: &str, env: &str) -> (usize, usize) {
    let ts = lab.tasks(name);
    let running: Vec<&Value> = ts.iter().filter(|t| t["Status"]["State"] == "running" && t["DesiredState"] == "running").collect();
    let with = running.iter().filter(|t| has_env(t, env)).count();
    (with, running.len() - with)
}

#[test]
fn rolling_update_rollback_and_restart_limits() {
    let lab = Lab::up("e2e-roll", 1, 2);
    let dir = std::env::temp_dir().join(format!("shoal-e2e-roll-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let archive = build_busybox_image(&dir);
    for n in ["node-1", "node-2", "node-3"] {
        lab.shoal_ok(n, &["image", "load", "-q", "-i", archive.to_str().unwrap()]);
    }

    lab.shoal_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "web",
            "--replicas",
            "4",
            "--stop-grace-period",
            "3s",
            "--update-parallelism",
            "2",
            "--update-delay",
            "2s",
            "--update-monitor",
            "1s",
            "shoal-test/busy:1",
            "sleep",
            "1000",
        ],
    );
    wait_for(LONG, "4 running tasks", || (running_split(&lab, "web", "V=2") == (0, 4)).then_some(()));

    // Parallelism 2 with a delay: at most two slots are mid-update at any
    // time (an old task stopping, or a new one not running yet), never
    // fewer than two tasks run, and the third new task comes at least the
    // delay after the second.
    lab.shoal_ok("node-1", &["service", "update", "-d", "--env-add", "V=2", "web"]);
    let deadline = std::time::Instant::now() + LONG;
    let mut most_in_flight = 0;
    while update_state(&lab, "web") != "completed" {
        assert!(std::time::Instant::now() < deadline, "the update did not complete: {}", service(&lab, "web"));
        let ts = lab.tasks("web");
        let stopping =
            ts.iter().filter(|t| !has_env(t, "V=2") && t["DesiredState"] != "running" && t["Status"]["State"] == "running").count();
        let starting =
            ts.iter().filter(|t| has_env(t, "V=2") && t["DesiredState"] == "running" && t["Status"]["State"] != "running").count();
        let running = ts.iter().filter(|t| t["DesiredState"] == "running" && t["Status"]["State"] == "running").count();
        assert!(stopping + starting <= 2, "{stopping} stopping and {starting} starting at once");
        assert!(running >= 2, "only {running} running");
        most_in_flight = most_in_flight.max(stopping + starting);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(most_in_flight, 2, "two slots were updated together");
    assert_eq!(running_split(&lab, "web", "V=2"), (4, 0));
    let mut created: Vec<std::time::SystemTime> = lab
        .tasks("web")
        .iter()
        .filter(|t| has_env(t, "V=2"))
        .map(|t| shoal_api::time::parse_rfc3339(t["CreatedAt"].as_str().unwrap()).unwrap())
        .collect();
    created.sort();
    let gap = created[2].duration_since(created[1]).unwrap();
    assert!(gap >= Duration::from_secs(2), "the second batch came {gap:?} after the first; the delay is 2s");
    let ps = lab.shoal_ok("node-1", &["service", "ps", "web"]);
    assert!(ps.contains("\\_ web.1"), "history rows: {ps}");

    // `service rollback` returns to the previous spec.
    lab.shoal_ok("node-1", &["service", "rollback", "-d", "web"]);
    wait_for(LONG, "the rollback to complete", || (update_state(&lab, "web") == "rollback_completed").then_some(()));
    assert_eq!(running_split(&lab, "web", "V=2"), (0, 4));
    assert_eq!(service(&lab, "web")["UpdateStatus"]["Message"], "rollback completed");

    // An update whose command exits 1, with failure action rollback: it
    // rolls back by itself, and the tasks run the old command again.
    lab.shoal_ok(
        "node-1",
        &["service", "update", "-d", "--update-failure-action", "rollback", "--restart-delay", "0s", "--args", "sh -c 'exit 1'", "web"],
    );
    wait_for(LONG, "the automatic rollback", || (update_state(&lab, "web") == "rollback_completed").then_some(()));
    let svc = service(&lab, "web");
    assert_eq!(svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Args"], serde_json::json!(["sleep", "1000"]), "{svc}");
    let msg = svc["UpdateStatus"]["Message"].as_str().unwrap_or("");
    assert_eq!(msg, "rollback completed");
    wait_for(LONG, "4 tasks of the old spec running", || (running_split(&lab, "web", "V=2") == (0, 4)).then_some(()));
    let failed = lab.tasks("web").into_iter().filter(|t| t["Status"]["State"] == "failed").count();
    assert!(failed >= 1, "the failed tasks of the bad spec stay in the history");

    // --restart-max-attempts 2: the first run and two restarts, then no more.
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
            "shoal-test/busy:1",
            "sh",
            "-c",
            "exit 1",
        ],
    );
    wait_for(LONG, "three failed runs", || {
        (lab.tasks("flaky").iter().filter(|t| t["Status"]["State"] == "failed").count() == 3).then_some(())
    });
    // Give the orchestrator passes to act (a service created now must run),
    // then the count must still be three.
    lab.shoal_ok("node-1", &["service", "create", "-d", "--name", "marker", "shoal-test/busy:1", "sleep", "1000"]);
    wait_for(LONG, "the marker service", || (running_split(&lab, "marker", "-") == (0, 1)).then_some(()));
    lab.shoal_ok("node-1", &["service", "update", "-d", "--replicas", "2", "marker"]);
    wait_for(LONG, "the marker service scaled", || (running_split(&lab, "marker", "-") == (0, 2)).then_some(()));
    assert_eq!(lab.tasks("flaky").len(), 3, "no fourth run after two restarts");
    let ls = lab.shoal_ok("node-1", &["service", "ls"]);
    assert!(ls.lines().any(|l| l.contains("flaky") && l.contains("0/1")), "{ls}");

    // A replicated job: 4 completions, 2 at a time; `service ls` counts them.
    lab.shoal_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "batch",
            "--mode",
            "replicated-job",
            "--replicas",
            "4",
            "--max-concurrent",
            "2",
            "shoal-test/busy:1",
            "sh",
            "-c",
            "exit 0",
        ],
    );
    wait_for(LONG, "4 completed job tasks", || {
        (lab.tasks("batch").iter().filter(|t| t["Status"]["State"] == "complete").count() == 4).then_some(())
    });
    let ls = lab.shoal_ok("node-1", &["service", "ls"]);
    assert!(ls.lines().any(|l| l.contains("batch") && l.contains("replicated job") && l.contains("0/0 (4/4 completed)")), "{ls}");
    // A global job runs once on each of the three nodes.
    lab.shoal_ok(
        "node-1",
        &["service", "create", "-d", "--name", "each", "--mode", "global-job", "shoal-test/busy:1", "sh", "-c", "exit 0"],
    );
    wait_for(LONG, "a completed task per node", || {
        (lab.tasks("each").iter().filter(|t| t["Status"]["State"] == "complete").count() == 3).then_some(())
    });

    lab.shoal_ok("node-1", &["service", "rm", "web", "flaky", "marker", "batch", "each"]);
    let _ = std::fs::remove_dir_all(&dir);
}
