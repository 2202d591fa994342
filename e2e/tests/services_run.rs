//! Services on real containers: tasks run through runc on the lab's nodes,
//! report their states, stop on removal, and exit codes come back.

use std::time::Duration;

use shoal_e2e::{build_busybox_image, wait_for, Lab};

const LONG: Duration = Duration::from_secs(90);

#[test]
fn services_run_real_containers() {
    let lab = Lab::up("e2e-run", 1, 1);
    let dir = std::env::temp_dir().join(format!("shoal-e2e-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let archive = build_busybox_image(&dir);
    for n in ["node-1", "node-2"] {
        lab.shoal_ok(n, &["image", "load", "-q", "-i", archive.to_str().unwrap()]);
    }

    lab.shoal_ok("node-1", &["service", "create", "-d", "--name", "sleeper", "--replicas", "4", "shoal-test/busy:1", "sleep", "4242"]);
    wait_for(LONG, "4 running tasks", || {
        let ts = lab.tasks("sleeper");
        (ts.len() == 4 && ts.iter().all(|t| t["Status"]["State"] == "running")).then_some(())
    });
    let ls = lab.shoal_ok("node-1", &["service", "ls"]);
    assert!(ls.contains("4/4"), "{ls}");

    // A command that fails: the exit code comes back, and with
    // restart-condition none the slot stays failed.
    lab.shoal_ok(
        "node-1",
        &["service", "create", "-d", "--name", "fails", "--restart-condition", "none", "shoal-test/busy:1", "sh", "-c", "exit 3"],
    );
    let failed =
        wait_for(LONG, "the failing task to be reported", || lab.tasks("fails").into_iter().find(|t| t["Status"]["State"] == "failed"));
    assert_eq!(failed["Status"]["Err"], "task: non-zero exit (3)");
    assert_eq!(failed["Status"]["ContainerStatus"]["ExitCode"], 3);

    // An image that cannot be had is rejected with the reason. The registry
    // named is a closed port on the node's own loopback: nothing leaves it.
    lab.shoal_ok("node-1", &["service", "create", "-d", "--name", "noimage", "--restart-condition", "none", "127.0.0.1:1/missing:1"]);
    let rejected = wait_for(LONG, "the task of an unknown image to be rejected", || {
        lab.tasks("noimage").into_iter().find(|t| t["Status"]["State"] == "rejected")
    });
    assert!(!rejected["Status"]["Err"].as_str().unwrap_or("").is_empty(), "{rejected}");

    // Removing the service stops its containers; the tasks are reaped.
    lab.shoal_ok("node-1", &["service", "rm", "sleeper", "fails", "noimage"]);
    wait_for(LONG, "every task to be gone", || {
        let (_, all) = lab.api("node-1", "GET", "/v1.44/tasks", None);
        (all.as_array().map(|a| a.is_empty()).unwrap_or(false)).then_some(())
    });
    // 4242: no other test uses it, so labs running at the same time do not count.
    let out = lab.lab_ok(&["exec", "node-2", "--", "sh", "-c", "ps -eo args | grep -c '^sleep 4242' || true"]);
    assert_eq!(out.trim(), "0", "no container process is left: {out}");
    let _ = std::fs::remove_dir_all(&dir);
}
