//! `docker kill|stop|wait|rm|restart` on a worker's task container with the
//! stock docker CLI (1 manager + 1 worker): a task container stopped,
//! killed or removed by hand ends its task with the container's exit code
//! and the orchestrator replaces it, as in Docker Swarm; `docker rm`
//! without `-f` and `docker restart` are refused with a reason.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use shoal_e2e::{build_busybox_image, text, wait_for, Lab};

const LONG: Duration = Duration::from_secs(90);

/// The running task of `service` that is not in `not`, and its container's name.
fn running_task(lab: &Lab, service: &str, not: &[String]) -> (Value, String) {
    let t = wait_for(LONG, &format!("a new running task of {service}"), || {
        lab.tasks(service).into_iter().find(|t| t["Status"]["State"] == "running" && !not.iter().any(|id| t["ID"] == id.as_str()))
    });
    let name = format!("{service}.{}.{}", t["Slot"], t["ID"].as_str().unwrap());
    (t, name)
}

#[test]
fn task_containers_stopped_killed_or_removed_by_hand_are_replaced() {
    let lab = Lab::up("e2e-clife", 1, 1);
    let dir = std::env::temp_dir().join(format!("shoal-e2e-clife-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let archive = build_busybox_image(&dir);
    lab.shoal_ok("node-2", &["image", "load", "-q", "-i", archive.to_str().unwrap()]);
    let w = "node-2";
    let unix = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let since = unix().to_string();
    lab.docker_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "lc",
            "--constraint",
            "node.role==worker",
            "--no-resolve-image",
            "--restart-delay",
            "0s",
            "shoal-test/busy:1",
            "sleep",
            "1000",
        ],
    );
    let mut seen = Vec::new();
    let (t1, c1) = running_task(&lab, "lc", &seen);
    seen.push(t1["ID"].as_str().unwrap().to_string());

    // docker wait blocks until docker kill ends the container: 137.
    let waiter = Command::new("docker")
        .args(["wait", &c1])
        .env("DOCKER_HOST", format!("unix://{}", lab.socket(w)))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let bad = lab.docker(w, &["kill", "--signal", "NOPE", &c1]);
    assert!(text(&bad.stderr).contains("Invalid signal: NOPE"), "{}", text(&bad.stderr));
    assert_eq!(lab.docker_ok(w, &["kill", &c1]).trim(), c1);
    let waited = waiter.wait_with_output().unwrap();
    assert_eq!(text(&waited.stdout).trim(), "137");
    let ended = wait_for(LONG, "the killed task to fail", || {
        lab.tasks("lc").into_iter().find(|t| t["ID"] == t1["ID"] && t["Status"]["State"] == "failed")
    });
    assert_eq!(ended["Status"]["Err"], "task: non-zero exit (137)", "{ended}");
    let again = lab.docker(w, &["kill", &c1]);
    assert!(text(&again.stderr).contains("is not running"), "{}", text(&again.stderr));

    // docker stop: SIGTERM (ignored by sleep as PID 1), then SIGKILL after -t.
    let (t2, c2) = running_task(&lab, "lc", &seen);
    seen.push(t2["ID"].as_str().unwrap().to_string());
    assert_eq!(lab.docker_ok(w, &["stop", "-t", "1", &c2]).trim(), c2);
    let ps = lab.docker_ok(w, &["ps", "-a", "--filter", &format!("name={c2}"), "--format", "{{.Status}}"]);
    assert!(ps.starts_with("Exited (137)"), "{ps}");

    // docker restart is the orchestrator's; docker rm needs -f while running.
    let (t3, c3) = running_task(&lab, "lc", &seen);
    seen.push(t3["ID"].as_str().unwrap().to_string());
    let restart = lab.docker(w, &["restart", &c3]);
    assert!(!restart.status.success() && text(&restart.stderr).contains("which the orchestrator restarts"), "{}", text(&restart.stderr));
    let rm = lab.docker(w, &["rm", &c3]);
    assert!(text(&rm.stderr).contains("container is running: stop the container before removing or force remove"), "{}", text(&rm.stderr));
    assert_eq!(lab.docker_ok(w, &["rm", "-f", &c3]).trim(), c3);
    assert!(lab.docker_ok(w, &["ps", "-a", "-q", "--no-trunc", "--filter", &format!("name={c3}")]).trim().is_empty());
    let (t4, _) = running_task(&lab, "lc", &seen);
    assert_ne!(t4["ID"], t3["ID"], "replaced");

    // docker events saw what was done: kill with its signal, then stop.
    let until = (unix() + 1).to_string();
    let fmt = "{{.Action}} {{index .Actor.Attributes \"signal\"}}";
    let ev = lab.docker_ok(
        w,
        &["events", "--since", &since, "--until", &until, "--filter", "event=kill", "--filter", "event=stop", "--format", fmt],
    );
    let lines: Vec<&str> = ev.lines().map(str::trim).collect();
    assert!(lines.contains(&"kill 9") && lines.contains(&"kill 15") && lines.contains(&"stop"), "{ev}");

    lab.lab_ok(&["down"]);
    let _ = std::fs::remove_dir_all(&dir);
}
