//! Tasks outlive their daemon: a worker's shoald is killed (SIGKILL) with
//! ten tasks running and started again. The same containers (same PIDs)
//! keep running and are taken back, no task is replaced, every line they
//! wrote while the daemon was down is in their logs, and a task whose
//! container exited while the daemon was down is reported with its exit
//! code. Only the lab's own namespaces and processes are touched.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use shoal_e2e::{build_busybox_image, text, wait_for, Lab};

const LONG: Duration = Duration::from_secs(90);
const LAB: &str = "e2e-live";

/// Task ID → container PID of the running tasks of `service`.
fn running_pids(lab: &Lab, service: &str) -> BTreeMap<String, i64> {
    lab.tasks(service)
        .iter()
        .filter(|t| t["Status"]["State"] == "running")
        .map(|t| (t["ID"].as_str().unwrap().to_string(), t["Status"]["ContainerStatus"]["PID"].as_i64().unwrap_or(0)))
        .collect()
}

fn alive(pid: i64) -> bool {
    // A zombie has no command line: it is not running any more.
    pid > 0 && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

/// Waits until the managers (on node-1) see `node` ready again.
fn wait_ready_again(lab: &Lab, node: &str) {
    wait_for(LONG, &format!("{node} ready again"), || {
        lab.nodes("node-1").iter().any(|n| n["Description"]["Hostname"] == node && n["Status"]["State"] == "ready").then_some(())
    });
}

fn log_lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map(|t| t.lines().count()).unwrap_or(0)
}

/// The numbers of the `tick N` lines, in order.
fn ticks(out: &str) -> Vec<u64> {
    out.lines().filter_map(|l| l.trim().strip_prefix("tick ")?.trim().parse().ok()).collect()
}

#[test]
fn tasks_keep_running_through_a_daemon_crash_and_are_taken_back() {
    let lab = Lab::up(LAB, 1, 1);
    let dir = std::env::temp_dir().join(format!("shoal-e2e-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let archive = build_busybox_image(&dir);
    lab.shoal_ok("node-2", &["image", "load", "-q", "-i", archive.to_str().unwrap()]);
    let on_worker = ["--constraint", "node.role==worker"];
    let mut ticker = vec!["service", "create", "-d", "--name", "ticker", "--replicas", "10"];
    ticker.extend(on_worker);
    ticker.extend(["shoal-test/busy:1", "sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"]);
    lab.shoal_ok("node-1", &ticker);
    let mut ender = vec!["service", "create", "-d", "--name", "ender", "--restart-condition", "none"];
    ender.extend(on_worker);
    ender.extend(["shoal-test/busy:1", "sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.1; done; exit 3"]);
    lab.shoal_ok("node-1", &ender);
    let before = wait_for(LONG, "10 running ticker tasks", || Some(running_pids(&lab, "ticker")).filter(|m| m.len() == 10));
    let ender_before = wait_for(LONG, "the ender task running", || Some(running_pids(&lab, "ender")).filter(|m| m.len() == 1));
    let (ender_task, ender_pid) = ender_before.into_iter().next().unwrap();
    assert!(before.values().all(|p| alive(*p)), "{before:?}");

    lab.lab_ok(&["kill", "node-2"]);
    let node = format!("/var/lib/shoal/lab/{LAB}/node-2");
    let first = before.keys().next().unwrap().clone();
    let log = Path::new(&node).join(format!("containers/logs/{first}.log"));
    // The daemon is gone: the containers run on and their output still
    // reaches the log (neither blocked nor killed by a broken pipe).
    let at_kill = log_lines(&log);
    wait_for(LONG, "ten more lines logged while the daemon is down", || (log_lines(&log) >= at_kill + 10).then_some(()));
    assert!(before.values().all(|p| alive(*p)), "the containers outlive the daemon");
    // The ender's container exits (code 3) while the daemon is down.
    let runc_root = format!("{node}/runc");
    let touched = lab.lab(&["exec", "node-2", "--", "runc", "--root", &runc_root, "exec", &ender_task, "sh", "-c", ": > /tmp/go"]);
    assert!(touched.status.success(), "{}", text(&touched.stderr));
    wait_for(LONG, "the ender's container to exit", || (!alive(ender_pid)).then_some(()));

    lab.lab_ok(&["start", "node-2"]);
    wait_ready_again(&lab, "node-2");
    // The ender is reported with the code its container exited with.
    let ended = wait_for(LONG, "the ender task to be reported failed", || {
        lab.tasks("ender").into_iter().find(|t| t["ID"] == ender_task.as_str() && t["Status"]["State"] == "failed")
    });
    assert_eq!(ended["Status"]["ContainerStatus"]["ExitCode"], 3, "{ended}");
    assert_eq!(ended["Status"]["Err"], "task: non-zero exit (3)", "{ended}");
    // The same ten tasks and processes, none replaced.
    let tasks = lab.tasks("ticker");
    assert_eq!(tasks.len(), 10, "no task was added: {tasks:?}");
    assert_eq!(running_pids(&lab, "ticker"), before, "the same tasks run with the same PIDs");
    assert!(before.values().all(|p| alive(*p)));
    // docker ps on the node lists them again.
    let ps = lab.docker_ok("node-2", &["ps", "-q", "--no-trunc"]);
    assert!(before.keys().all(|id| ps.contains(id.as_str())), "{ps}");

    // Every line, those written while the daemon was down included, once
    // and in order, through the managers' log path.
    let at_check = log_lines(&log);
    let out = wait_for(LONG, "the task's logs up to the restart", || {
        let out = lab.docker("node-1", &["service", "logs", "--raw", &first]);
        let t = ticks(&text(&out.stdout));
        (out.status.success() && t.len() >= at_check).then_some(t)
    });
    let expected: Vec<u64> = (0..out.len() as u64).collect();
    assert_eq!(out, expected, "no line lost or repeated");

    // The tasks taken back are still managed: scaling down stops five,
    // and leaving the swarm ends the others.
    lab.shoal_ok("node-1", &["service", "scale", "-d", "ticker=5"]);
    wait_for(LONG, "five ticker containers to end", || (before.values().filter(|p| alive(**p)).count() == 5).then_some(()));
    lab.docker_ok("node-2", &["swarm", "leave"]);
    assert!(before.values().all(|p| !alive(*p)), "swarm leave ends the node's tasks");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A stop (SIGTERM) leaves the tasks running as a crash does, and `docker
/// info` says so; under `--no-live-restore` a stop ends them, as dockerd's
/// does by default.
#[test]
fn a_stop_leaves_the_tasks_running_unless_live_restore_is_off() {
    let dir = std::env::temp_dir().join(format!("shoal-e2e-live-stop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let archive = build_busybox_image(&dir);
    for (lab_name, flags, kept) in [("e2e-live-stop", &[][..], true), ("e2e-live-off", &["--no-live-restore"][..], false)] {
        let lab = Lab::up_with(lab_name, 1, 1, &[], flags);
        lab.shoal_ok("node-2", &["image", "load", "-q", "-i", archive.to_str().unwrap()]);
        let info = lab.docker_ok("node-2", &["info", "--format", "{{.LiveRestoreEnabled}}"]);
        assert_eq!(info.trim(), kept.to_string(), "{lab_name}");
        lab.shoal_ok(
            "node-1",
            &[
                "service",
                "create",
                "-d",
                "--name",
                "kept",
                "--replicas",
                "3",
                "--constraint",
                "node.role==worker",
                "shoal-test/busy:1",
                "sleep",
                "1000",
            ],
        );
        let before = wait_for(LONG, "3 running tasks", || Some(running_pids(&lab, "kept")).filter(|m| m.len() == 3));
        lab.lab_ok(&["stop", "node-2"]);
        if !kept {
            assert!(before.values().all(|p| !alive(*p)), "--no-live-restore: a stop ends the tasks");
            continue;
        }
        assert!(before.values().all(|p| alive(*p)), "a stop leaves them running");
        lab.lab_ok(&["start", "node-2"]);
        wait_ready_again(&lab, "node-2");
        assert_eq!(lab.tasks("kept").len(), 3, "no task was added");
        assert_eq!(running_pids(&lab, "kept"), before);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Tasks on an overlay network are taken back too: after the worker's
/// daemon is killed and started again, the same containers answer by
/// service name through the VIP, and a task started afterwards joins the
/// same network.
#[test]
fn tasks_on_an_overlay_keep_their_names_and_vips_through_a_daemon_crash() {
    let lab = Lab::up("e2e-live-ov", 1, 1);
    let dir = std::env::temp_dir().join(format!("shoal-e2e-live-ov-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let archive = build_busybox_image(&dir);
    lab.shoal_ok("node-2", &["image", "load", "-q", "-i", archive.to_str().unwrap()]);
    lab.shoal_ok("node-1", &["network", "create", "-d", "overlay", "appnet"]);
    let on_worker = ["--constraint", "node.role==worker", "--network", "appnet"];
    let mut web = vec!["service", "create", "-d", "--name", "web", "--replicas", "2"];
    web.extend(on_worker);
    web.extend(["shoal-test/busy:1", "httpd", "-f", "-p", "80", "-h", "/www"]);
    lab.shoal_ok("node-1", &web);
    let mut client = vec!["service", "create", "-d", "--name", "client"];
    client.extend(on_worker);
    client.extend(["shoal-test/busy:1", "sleep", "100000"]);
    lab.shoal_ok("node-1", &client);
    let webs = wait_for(LONG, "2 running web tasks", || Some(running_pids(&lab, "web")).filter(|m| m.len() == 2));
    let clients = wait_for(LONG, "the client running", || Some(running_pids(&lab, "client")).filter(|m| m.len() == 1));
    let client_task = clients.keys().next().unwrap().clone();
    let runc_root = "/var/lib/shoal/lab/e2e-live-ov/node-2/runc";
    let in_client = |cmd: &[&str]| {
        let mut args = vec!["exec", "node-2", "--", "runc", "--root", runc_root, "exec", &client_task];
        args.extend_from_slice(cmd);
        lab.lab(&args)
    };
    let fetch = |addr: &str| {
        let out = in_client(&["busybox", "timeout", "3", "wget", "-qO-", &format!("http://{addr}/")]);
        out.status.success() && text(&out.stdout).contains("hello from shoal")
    };
    // The name through the task's resolver (nslookup asks 127.0.0.11; the
    // static busybox's own lookups do not), then the page through the VIP.
    let resolve = |name: &str| {
        let out = text(&in_client(&["busybox", "nslookup", name]).stdout);
        out.lines().skip_while(|l| !l.starts_with("Name:")).find_map(|l| l.strip_prefix("Address:")).map(|a| a.trim().to_string())
    };
    let by_name = |name: &str| resolve(name).is_some_and(|a| fetch(&a));
    wait_for(LONG, "the client to reach web by name", || by_name("web").then_some(()));
    let vip = resolve("web").unwrap();

    lab.lab_ok(&["kill", "node-2"]);
    lab.lab_ok(&["start", "node-2"]);
    wait_ready_again(&lab, "node-2");
    wait_for(LONG, "the client to reach web by name again", || by_name("web").then_some(()));
    assert_eq!(resolve("web"), Some(vip), "the same VIP");
    assert!(by_name("tasks.web"), "tasks.web resolves too");
    assert_eq!(running_pids(&lab, "web"), webs, "the same web tasks and processes");
    assert_eq!(running_pids(&lab, "client"), clients);
    assert_eq!(lab.tasks("web").len() + lab.tasks("client").len(), 3, "no task was added");

    // A task started after the restart joins the network taken back.
    lab.shoal_ok("node-1", &["service", "scale", "-d", "web=3"]);
    let now = wait_for(LONG, "3 running web tasks", || Some(running_pids(&lab, "web")).filter(|m| m.len() == 3));
    let new_task = now.keys().find(|k| !webs.contains_key(*k)).unwrap().clone();
    let addr = wait_for(LONG, "the new task's address", || {
        let t = lab.tasks("web").into_iter().find(|t| t["ID"] == new_task.as_str())?;
        let a = t["NetworksAttachments"][0]["Addresses"][0].as_str()?.split('/').next()?.to_string();
        Some(a)
    });
    wait_for(LONG, "the client to reach the new task", || fetch(&addr).then_some(()));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `docker run` containers outlive their daemon as tasks do: after a
/// crash the node lists them again as they were (running, created,
/// exited with their code), the running one with the same PID, its
/// output while the daemon was down in its log, and each can be stopped,
/// started and removed as before.
#[test]
fn standalone_containers_are_listed_again_and_the_running_one_taken_back() {
    let lab = Lab::up("e2e-live-run", 1, 0);
    let dir = std::env::temp_dir().join(format!("shoal-e2e-live-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let archive = build_busybox_image(&dir);
    let n = "node-1";
    lab.shoal_ok(n, &["image", "load", "-q", "-i", archive.to_str().unwrap()]);
    let image = "shoal-test/busy:1";
    let ticker = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done";
    let keeper = lab.docker_ok(n, &["run", "-d", "--name", "keeper", "-p", "8089:80", image, "sh", "-c", ticker]).trim().to_string();
    lab.docker_ok(n, &["create", "--name", "idle", image, "sleep", "1"]);
    let done = lab.docker(n, &["run", "--name", "done", image, "sh", "-c", "exit 7"]);
    assert_eq!(done.status.code(), Some(7));
    let pid_of = |name: &str| lab.docker_ok(n, &["inspect", "--format", "{{.State.Pid}}", name]).trim().parse::<i64>().unwrap();
    let pid = pid_of("keeper");
    assert!(alive(pid));
    let states = || lab.docker_ok(n, &["ps", "-a", "--filter", "is-task=false", "--format", "{{.Names}} {{.State}} {{.Status}}"]);
    let before = states();

    lab.lab_ok(&["kill", n]);
    let log = Path::new(&format!("/var/lib/shoal/lab/e2e-live-run/{n}/containers/logs/{keeper}.log")).to_path_buf();
    let at_kill = log_lines(&log);
    wait_for(LONG, "five more lines logged while the daemon is down", || (log_lines(&log) >= at_kill + 5).then_some(()));
    lab.lab_ok(&["start", n]);
    wait_for(LONG, "the node's API again", || lab.docker(n, &["ps"]).status.success().then_some(()));

    let after = states();
    let lines = |s: &str| -> Vec<String> { s.lines().map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" ")).collect() };
    assert_eq!(lines(&after), lines(&before), "{before}\n---\n{after}");
    assert!(after.contains("done exited Exited (7)"), "{after}");
    assert_eq!(pid_of("keeper"), pid, "the same process");
    let t = ticks(&lab.docker_ok(n, &["logs", "keeper"]));
    assert!(t.len() > at_kill, "{t:?}");
    assert_eq!(t, (0..t.len() as u64).collect::<Vec<_>>(), "no line lost or repeated");
    // Published again: the port is still taken (the CLI's create of the
    // clashing one stays, created, as with Docker).
    let clash = lab.docker(n, &["run", "-d", "--name", "clash", "-p", "8089:80", image, "sleep", "1"]);
    assert!(text(&clash.stderr).contains("port is already allocated"), "{}", text(&clash.stderr));

    lab.docker_ok(n, &["stop", "-t", "1", "keeper"]);
    assert!(!alive(pid));
    assert_eq!(lab.docker(n, &["start", "-a", "done"]).status.code(), Some(7), "an exited one starts again");
    lab.docker_ok(n, &["start", "idle"]);
    lab.docker_ok(n, &["rm", "-f", "keeper", "idle", "done", "clash"]);
    assert_eq!(lab.docker_ok(n, &["ps", "-a", "-q", "--filter", "is-task=false"]), "");
    let _ = std::fs::remove_dir_all(&dir);
}
