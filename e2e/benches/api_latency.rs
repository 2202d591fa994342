//! Engine API latency on a real one-node lab (issue 11's figures):
//! `GET /services?status=true` (what `docker service ls` asks) with 1,000
//! services, `GET /tasks` with 10,000 tasks, and `GET /containers/json`
//! and the stock `docker ps` with 100 running task containers.
//!
//! The 10,000 tasks belong to 10 services whose placement no node meets,
//! so they stay pending in the store (no containers); the 100 containers
//! are a separate service on the node. Requests go over the node's unix
//! socket, one at a time; the time is from the request's first byte to the
//! response's last.
//!
//! `cargo build --release --workspace && cargo bench -p shoal-e2e --bench api_latency`
//! (as root: it builds a lab of network namespaces, named `bench-api`).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use serde_json::json;
use shoal_e2e::{build_busybox_image, wait_for, Lab};

const ROUNDS: usize = 200;

/// One request over the socket, read to the end; its duration.
fn timed(socket: &str, path: &str) -> Duration {
    let start = Instant::now();
    let mut s = UnixStream::connect(socket).expect("the node's socket");
    let req = format!("GET {path} HTTP/1.1\r\nHost: shoal\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    assert!(raw.starts_with(b"HTTP/1.1 200"), "{path}: {}", String::from_utf8_lossy(&raw[..raw.len().min(200)]));
    start.elapsed()
}

fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0;
    (at(0.5), at(0.99))
}

fn report(what: &str, v: Vec<Duration>) {
    let (p50, p99) = percentiles(v);
    println!("| {what} | {p50:.2} | {p99:.2} |");
}

fn main() {
    let lab = Lab::up("bench-api", 1, 0);
    let node = "node-1";
    let socket = lab.socket(node);
    let dir = std::env::temp_dir().join(format!("shoal-bench-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let archive = build_busybox_image(&dir);
    lab.shoal_ok(node, &["image", "load", "-q", "-i", archive.to_str().unwrap()]);

    let started = Instant::now();
    for i in 0..1_000 {
        let spec = json!({"Name": format!("s{i:04}"), "TaskTemplate": {"ContainerSpec": {"Image": "shoal-test/busy:1"}},
                          "Mode": {"Replicated": {"Replicas": 0}}});
        let (status, body) = lab.api(node, "POST", "/v1.44/services/create", Some(&spec));
        assert_eq!(status, 201, "{body}");
    }
    eprintln!("1,000 services created in {:.1}s", started.elapsed().as_secs_f64());
    for i in 0..10 {
        let spec = json!({"Name": format!("pending{i}"), "Mode": {"Replicated": {"Replicas": 1_000}},
                          "TaskTemplate": {"ContainerSpec": {"Image": "shoal-test/busy:1"},
                                           "Placement": {"Constraints": ["node.labels.nowhere==1"]}}});
        let (status, body) = lab.api(node, "POST", "/v1.44/services/create", Some(&spec));
        assert_eq!(status, 201, "{body}");
    }
    wait_for(Duration::from_secs(300), "10,000 pending tasks", || {
        let (_, tasks) = lab.api(node, "GET", "/v1.44/tasks", None);
        (tasks.as_array().map(Vec::len).unwrap_or(0) >= 10_000).then_some(())
    });
    let spec = json!({"Name": "hundred", "Mode": {"Replicated": {"Replicas": 100}},
                      "TaskTemplate": {"ContainerSpec": {"Image": "shoal-test/busy:1", "Command": ["sleep", "100000"]}}});
    let (status, body) = lab.api(node, "POST", "/v1.44/services/create", Some(&spec));
    assert_eq!(status, 201, "{body}");
    wait_for(Duration::from_secs(600), "100 running containers", || {
        let (_, list) = lab.api(node, "GET", "/v1.44/containers/json", None);
        (list.as_array().map(Vec::len).unwrap_or(0) >= 100).then_some(())
    });

    println!("| call (one node, release build) | p50 ms | p99 ms |");
    println!("|---|---|---|");
    let services: Vec<Duration> = (0..ROUNDS).map(|_| timed(&socket, "/v1.44/services?status=true")).collect();
    report("`GET /services?status=true`, 1,011 services, 10,100 tasks", services);
    let tasks: Vec<Duration> = (0..ROUNDS).map(|_| timed(&socket, "/v1.44/tasks")).collect();
    report("`GET /tasks`, 10,100 tasks", tasks);
    let containers: Vec<Duration> = (0..ROUNDS).map(|_| timed(&socket, "/v1.44/containers/json")).collect();
    report("`GET /containers/json`, 100 task containers", containers);
    let ps: Vec<Duration> = (0..ROUNDS / 4)
        .map(|_| {
            let start = Instant::now();
            lab.docker_ok(node, &["ps", "-q"]);
            start.elapsed()
        })
        .collect();
    report("stock `docker ps` (the CLI process included), 100 task containers", ps);

    lab.lab_ok(&["down"]);
    let _ = std::fs::remove_dir_all(&dir);
}
