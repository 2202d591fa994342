//! Health checks and mounts of service tasks on real containers in a lab
//! (1 manager + 1 worker): a task stays STARTING until its check passes,
//! an always-failing check fails the task with Docker's unhealthy error and
//! the slot is refilled, a named volume outlives its service, a tmpfs
//! mount is a tmpfs inside the container, and a missing bind source is
//! rejected with Docker's message.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use shoal_e2e::{build_busybox_image, wait_for, Lab};

const LONG: Duration = Duration::from_secs(90);
const IMAGE: &str = "shoal-test/busy:1";

fn state(t: &Value) -> &str {
    t["Status"]["State"].as_str().unwrap_or("")
}

/// The one task of a one-replica service, once there is exactly one.
fn only_task(lab: &Lab, service: &str) -> Option<Value> {
    let ts = lab.tasks(service);
    (ts.len() == 1).then(|| ts[0].clone())
}

/// A host directory for the test, removed also when the test fails.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn wait_file(path: &Path, what: &str) {
    wait_for(LONG, what, || path.exists().then_some(()));
}

#[test]
fn health_checks_and_mounts() {
    let lab = Lab::up("e2e-health", 1, 1);
    let tmp = TempDir(std::env::temp_dir().join(format!("shoal-e2e-health-{}", std::process::id())));
    std::fs::create_dir_all(&tmp.0).unwrap();
    let archive = build_busybox_image(&tmp.0);
    for n in ["node-1", "node-2"] {
        lab.shoal_ok(n, &["image", "load", "-q", "-i", archive.to_str().unwrap()]);
    }

    // 1. STARTING until healthy. The container makes /tmp/ok only once the
    // test creates ctl/go on the host; each probe leaves ctl/probed, so the
    // test knows probes ran (and failed) while the task was still starting.
    let ctl = tmp.0.join("ctl");
    std::fs::create_dir_all(&ctl).unwrap();
    let ctl_mount = format!("type=bind,source={},target=/ctl", ctl.display());
    lab.shoal_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "slow",
            "--mount",
            &ctl_mount,
            "--health-cmd",
            "echo > /ctl/probed; test -f /tmp/ok",
            "--health-interval",
            "1s",
            "--health-retries",
            "2",
            "--health-start-period",
            "5m",
            "--health-start-interval",
            "1s",
            IMAGE,
            "sh",
            "-c",
            "while [ ! -f /ctl/go ]; do sleep 1; done; echo > /tmp/ok; exec sleep 100000",
        ],
    );
    wait_file(&ctl.join("probed"), "a first health probe");
    wait_for(LONG, "the task to be reported starting", || only_task(&lab, "slow").filter(|t| state(t) == "starting"));
    // Another failed probe later, the task is still starting, not running
    // (failures inside the start period do not make it unhealthy either).
    std::fs::remove_file(ctl.join("probed")).unwrap();
    wait_file(&ctl.join("probed"), "another health probe");
    let t = only_task(&lab, "slow").unwrap();
    assert_eq!(state(&t), "starting", "{t}");
    std::fs::write(ctl.join("go"), "").unwrap();
    let t = wait_for(LONG, "the task to run once healthy", || only_task(&lab, "slow").filter(|t| state(t) == "running"));
    assert_eq!(t["Status"]["Message"], "started");

    // 2. A check that always fails: the container is stopped (sleep as
    // pid 1 ignores SIGTERM, so SIGKILL after the 1s grace: 137), the task
    // fails with Docker's error, and the slot gets a new task.
    lab.shoal_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "sick",
            "--health-cmd",
            "exit 1",
            "--health-interval",
            "1s",
            "--health-retries",
            "2",
            "--stop-grace-period",
            "1s",
            "--restart-delay",
            "1s",
            IMAGE,
            "sleep",
            "100000",
        ],
    );
    let failed = wait_for(LONG, "the unhealthy task to fail", || lab.tasks("sick").into_iter().find(|t| state(t) == "failed"));
    assert_eq!(failed["Status"]["Err"], "task: non-zero exit (137): dockerexec: unhealthy container", "{failed}");
    assert_eq!(failed["Status"]["ContainerStatus"]["ExitCode"], 137);
    wait_for(LONG, "a replacement task", || {
        let ts = lab.tasks("sick");
        (ts.len() >= 2 && ts.iter().any(|t| t["ID"] != failed["ID"] && t["Slot"] == failed["Slot"])).then_some(())
    });
    let ps = lab.shoal_ok("node-1", &["service", "ps", "--no-trunc", "sick"]);
    assert!(ps.contains("\\_ sick.1"), "history shows in service ps:\n{ps}");
    assert!(ps.contains("task: non-zero exit (137): dockerexec: unhealthy container"), "{ps}");
    lab.shoal_ok("node-1", &["service", "rm", "slow", "sick"]);

    // 3. A named volume outlives its service: the worker (the only node
    // with that role) writes, the service goes, a new one reads it back.
    let vol = ["--constraint", "node.role==worker", "--restart-condition", "none", "--mount", "type=volume,source=e2edata,target=/data"];
    let run_once = |script: &str| {
        let mut args = vec!["service", "create", "-d", "--name", "vol"];
        args.extend_from_slice(&vol);
        args.extend_from_slice(&[IMAGE, "sh", "-c", script]);
        lab.shoal_ok("node-1", &args);
        let t = wait_for(LONG, "the volume task to end", || {
            only_task(&lab, "vol").filter(|t| matches!(state(t), "complete" | "failed" | "rejected"))
        });
        lab.shoal_ok("node-1", &["service", "rm", "vol"]);
        wait_for(LONG, "the volume service's tasks to go", || lab.tasks("vol").is_empty().then_some(()));
        t
    };
    let wrote = run_once("echo hello > /data/f");
    assert_eq!(state(&wrote), "complete", "{wrote}");
    let read = run_once("read x < /data/f && [ \"$x\" = hello ]");
    assert_eq!(state(&read), "complete", "the file written by the first service is in the volume: {read}");

    // 4. tmpfs with a size is a tmpfs in the container's /proc/mounts.
    lab.shoal_ok(
        "node-1",
        &[
            "service", "create", "-d", "--name", "scratch", "--restart-condition", "none",
            "--mount", "type=tmpfs,target=/scratch,tmpfs-size=1m", IMAGE, "sh", "-c",
            "while read dev mnt typ opts rest; do [ \"$mnt\" = /scratch ] && [ \"$typ\" = tmpfs ] && case $opts in *size=1024k*) exit 0;; esac; done < /proc/mounts; exit 1",
        ],
    );
    let t = wait_for(LONG, "the tmpfs task to end", || only_task(&lab, "scratch").filter(|t| matches!(state(t), "complete" | "failed")));
    assert_eq!(state(&t), "complete", "/scratch is a 1m tmpfs: {t}");

    // 5. A bind mount of a missing host path: rejected with Docker's words.
    lab.shoal_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "nobind",
            "--restart-condition",
            "none",
            "--mount",
            "type=bind,source=/nonexistent-shoal-e2e,target=/x",
            IMAGE,
            "true",
        ],
    );
    let t = wait_for(LONG, "the task to be rejected", || only_task(&lab, "nobind").filter(|t| state(t) == "rejected"));
    assert_eq!(t["Status"]["Err"], "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent-shoal-e2e");
    lab.shoal_ok("node-1", &["service", "rm", "scratch", "nobind"]);
}
