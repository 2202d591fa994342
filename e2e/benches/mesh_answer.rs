//! Time to answer through the routing mesh (issue 9's figure): a service
//! publishing port 8080 is scaled from 0 to 1 replica, and the clock runs
//! until port 8080 of each node of the lab answers, those without the task
//! included. Each round first scales back to 0 and waits until no node
//! answers. The time includes the container's start, its RUNNING report,
//! the managers' new views and every node's rule update.
//!
//! Pollers run inside node-1's namespace (`shoal lab exec ... curl`), one
//! per node, each trying again at once until an answer; the client sits
//! on a lab node, so only the lab's own addresses are asked.
//!
//! `cargo build --release --workspace && cargo bench -p shoal-e2e --bench mesh_answer`
//! (as root: it builds a lab of network namespaces, named `bench-mesh`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shoal_e2e::{bin, build_busybox_image, wait_for, Lab};

const LAB: &str = "bench-mesh";
const NODES: usize = 3;
const ROUNDS: usize = 15;

/// A process in node-1 that ends once `url` answers (or fails, when
/// `answers` is false).
fn poller(url: &str, answers: bool) -> Child {
    let script = if answers {
        format!("until curl -s -o /dev/null -m 1 {url}; do :; done")
    } else {
        format!("while curl -s -o /dev/null -m 1 {url}; do :; done")
    };
    Command::new(bin("shoal"))
        .args(["lab", "exec", "--name", LAB, "node-1", "--", "sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("shoal lab exec")
}

fn percentiles(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0;
    (at(0.5), at(0.99), at(1.0))
}

fn main() {
    let lab = Lab::up(LAB, 1, NODES - 1);
    let dir = std::env::temp_dir().join(format!("shoal-bench-mesh-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let archive = build_busybox_image(&dir);
    for n in 1..=NODES {
        lab.shoal_ok(&format!("node-{n}"), &["image", "load", "-q", "-i", archive.to_str().unwrap()]);
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
            "0",
            "-p",
            "8080:80",
            "shoal-test/busy:1",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/www",
        ],
    );
    let urls: Vec<String> = (1..=NODES).map(|n| format!("http://{}:8080/", lab.addr(n))).collect();
    let mut first = Vec::new();
    let mut every = Vec::new();
    for _ in 0..ROUNDS {
        lab.shoal_ok("node-1", &["service", "scale", "-d", "web=0"]);
        for mut p in urls.iter().map(|u| poller(u, false)).collect::<Vec<_>>() {
            p.wait().unwrap();
        }
        wait_for(Duration::from_secs(60), "no web task", || {
            lab.tasks("web").iter().all(|t| t["Status"]["State"] != "running").then_some(())
        });
        let t0 = Instant::now();
        lab.shoal_ok("node-1", &["service", "scale", "-d", "web=1"]);
        let mut pollers: Vec<Child> = urls.iter().map(|u| poller(u, true)).collect();
        let mut times = Vec::new();
        while !pollers.is_empty() {
            pollers.retain_mut(|p| match p.try_wait().unwrap() {
                Some(_) => {
                    times.push(t0.elapsed());
                    false
                }
                None => true,
            });
            std::thread::sleep(Duration::from_millis(2));
        }
        first.push(*times.iter().min().unwrap());
        every.push(*times.iter().max().unwrap());
    }
    println!("| {ROUNDS} rounds, {NODES} nodes, release build | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|");
    let (a, b, c) = percentiles(first);
    println!("| scale 0 -> 1 until port 8080 of the first node answers | {a:.0} | {b:.0} | {c:.0} |");
    let (a, b, c) = percentiles(every);
    println!("| scale 0 -> 1 until port 8080 of every node answers | {a:.0} | {b:.0} | {c:.0} |");
    lab.lab_ok(&["down"]);
    let _ = std::fs::remove_dir_all(&dir);
}
