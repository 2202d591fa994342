//! Service and task logs end to end: containers on three lab nodes print to
//! stdout and stderr; `shoal service logs` and the stock `docker service
//! logs` show every replica's lines with Docker's `name.slot.task@node`
//! context, `--tail`, `-t`, `--raw` and `-f` behave like Docker's.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use shoal_e2e::{bin, build_busybox_image, text, wait_for, Lab};

const LONG: Duration = Duration::from_secs(90);
const REPLICAS: usize = 3;

fn running_tasks(lab: &Lab) -> Vec<Value> {
    let filters = "%7B%22service%22%3A%7B%22logsvc%22%3Atrue%7D%7D";
    match lab.api("node-1", "GET", &format!("/v1.44/tasks?filters={filters}"), None) {
        (200, Value::Array(v)) => v.into_iter().filter(|t| t["Status"]["State"] == "running").collect(),
        _ => Vec::new(),
    }
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

#[test]
fn service_logs_from_every_node() {
    let lab = Lab::up("e2e-logs", 1, 2);
    let dir = std::env::temp_dir().join(format!("shoal-e2e-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let archive = build_busybox_image(&dir);
    for n in ["node-1", "node-2", "node-3"] {
        lab.shoal_ok(n, &["image", "load", "-q", "-i", archive.to_str().unwrap()]);
    }
    let script = "echo hello-out; echo hello-err >&2; i=0; while true; do i=$((i+1)); echo tick-$i; sleep 1; done";
    lab.shoal_ok(
        "node-1",
        &["service", "create", "-d", "--name", "logsvc", "--replicas", &REPLICAS.to_string(), "shoal-test/busy:1", "sh", "-c", script],
    );
    let tasks = wait_for(LONG, "3 running tasks on 3 nodes", || {
        let ts = running_tasks(&lab);
        let nodes: BTreeSet<String> = ts.iter().map(|t| t["NodeID"].as_str().unwrap_or("").to_string()).collect();
        (ts.len() == REPLICAS && nodes.len() == REPLICAS).then_some(ts)
    });
    let hostnames: std::collections::BTreeMap<String, String> = lab
        .nodes("node-1")
        .iter()
        .map(|n| (n["ID"].as_str().unwrap().to_string(), n["Description"]["Hostname"].as_str().unwrap().to_string()))
        .collect();
    let prefix = |t: &Value| {
        let id = t["ID"].as_str().unwrap();
        format!("logsvc.{}.{}@{}    | ", t["Slot"], &id[..12], hostnames[t["NodeID"].as_str().unwrap()])
    };
    let expected_out: BTreeSet<String> = tasks.iter().map(|t| format!("{}hello-out", prefix(t))).collect();
    let expected_err: BTreeSet<String> = tasks.iter().map(|t| format!("{}hello-err", prefix(t))).collect();

    // Every replica's first lines, stdout and stderr apart, with Docker's context.
    let out = wait_for(LONG, "every replica's lines", || {
        let o = lab.shoal("node-1", &["service", "logs", "logsvc"]);
        let got: BTreeSet<String> = lines(&text(&o.stdout)).into_iter().filter(|l| l.ends_with("hello-out")).collect();
        (o.status.success() && got == expected_out).then_some(o)
    });
    let err: BTreeSet<String> = lines(&text(&out.stderr)).into_iter().filter(|l| l.ends_with("hello-err")).collect();
    assert_eq!(err, expected_err, "stderr lines go to stderr: {}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("hello-err"));

    // The stock docker CLI prints the same.
    let docker = Command::new("docker")
        .args(["service", "logs", "logsvc"])
        .env("DOCKER_HOST", format!("unix://{}", lab.socket("node-1")))
        .output()
        .expect("the docker CLI is part of this test");
    assert!(docker.status.success(), "docker service logs: {}", text(&docker.stderr));
    let got: BTreeSet<String> = lines(&text(&docker.stdout)).into_iter().filter(|l| l.ends_with("hello-out")).collect();
    assert_eq!(got, expected_out, "docker stdout: {}", text(&docker.stdout));
    let got: BTreeSet<String> = lines(&text(&docker.stderr)).into_iter().filter(|l| l.ends_with("hello-err")).collect();
    assert_eq!(got, expected_err, "docker stderr: {}", text(&docker.stderr));

    // --tail 1: one line per task, over both streams.
    let o = lab.shoal("node-1", &["service", "logs", "--tail", "1", "logsvc"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let all = lines(&text(&o.stdout)).len() + lines(&text(&o.stderr)).len();
    assert_eq!(all, REPLICAS, "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(lines(&text(&o.stdout)).iter().all(|l| l.contains("| tick-")), "{}", text(&o.stdout));

    // -t: an RFC 3339 timestamp first; --raw: the bare lines.
    let o = lab.shoal_ok("node-1", &["service", "logs", "-t", "logsvc"]);
    let first = o.lines().find(|l| l.ends_with("hello-out")).expect("a hello-out line");
    let (ts, rest) = first.split_once(' ').unwrap();
    assert!(ts.len() == 30 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{first}");
    assert!(expected_out.contains(rest), "{first}");
    let o = lab.shoal_ok("node-1", &["service", "logs", "--raw", "logsvc"]);
    assert_eq!(o.lines().filter(|l| *l == "hello-out").count(), REPLICAS, "{o}");

    // A task by ID.
    let t = &tasks[0];
    let o = lab.shoal_ok("node-1", &["service", "logs", t["ID"].as_str().unwrap()]);
    assert!(o.lines().any(|l| l == format!("{}hello-out", prefix(t))), "{o}");
    assert!(o.lines().all(|l| l.starts_with(&prefix(t))), "only that task: {o}");

    // Unknown names get Docker's error.
    let o = lab.shoal("node-1", &["service", "logs", "nosuchthing"]);
    assert!(!o.status.success());
    assert_eq!(text(&o.stderr).trim(), "no such task or service: nosuchthing");

    // -f: a line printed after the call started arrives.
    let before = lab.shoal_ok("node-1", &["service", "logs", "--raw", "logsvc"]);
    let max_tick = before.lines().filter_map(|l| l.strip_prefix("tick-")?.parse::<u64>().ok()).max().unwrap_or(0);
    let mut child = Command::new(bin("shoal"))
        .args(["-H", &format!("unix://{}", lab.socket("node-1")), "service", "logs", "-f", "--tail", "0", "logsvc"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start shoal service logs -f");
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let seen = seen.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                seen.lock().unwrap().push(l);
            }
        })
    };
    let fresh = wait_for(LONG, "a followed line printed after the call", || {
        seen.lock()
            .unwrap()
            .iter()
            .find(|l| l.rsplit_once("| tick-").and_then(|(_, n)| n.parse::<u64>().ok()).is_some_and(|n| n > max_tick))
            .cloned()
    });
    assert!(tasks.iter().any(|t| fresh.starts_with(&prefix(t))), "{fresh}");
    child.kill().expect("stop the follower we started");
    let _ = child.wait();
    let _ = reader.join();

    lab.shoal_ok("node-1", &["service", "rm", "logsvc"]);
    let _ = std::fs::remove_dir_all(&dir);
}
