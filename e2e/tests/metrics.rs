//! Issue 11, scope 6: `shoald --metrics-addr` in a lab (one manager, one
//! worker, `lab up --metrics-port`). After a service pulled from the lab
//! registry runs, `curl http://<node>:9323/metrics` from inside the lab
//! answers the Prometheus text format (checked strictly by
//! `shoal_metrics::text`) with Docker's names and values that match the
//! cluster: a leader, one service, two running tasks, transitions, pulls,
//! heartbeats, the API's routes as templates.

use std::time::{Duration, Instant};

use shoal_e2e::registry::LabRegistry;
use shoal_e2e::{build_image_with_cmd, text, Lab};
use shoal_metrics::text::{validate, Exposition};

const REG_IP: &str = "192.168.77.11";
const PORT: &str = "9323";

/// `curl` inside the lab: (HTTP status, body).
fn curl(lab: &Lab, node: &str, url: &str) -> (String, String) {
    let out = lab.lab(&["exec", node, "--", "curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}", url]);
    let body = text(&out.stdout);
    let (body, code) = body.rsplit_once('\n').unwrap_or(("", ""));
    (code.to_string(), body.to_string())
}

/// Scrapes `node` until `check` finds nothing missing (each scrape must
/// validate), up to a deadline; then fails with what is still missing.
fn scrape_until(lab: &Lab, node: &str, ip: &str, check: impl Fn(&Exposition) -> Vec<String>) -> Exposition {
    let url = format!("http://{ip}:{PORT}/metrics");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (code, body) = curl(lab, node, &url);
        let missing = if code == "200" {
            let e = validate(&body).unwrap_or_else(|e| panic!("{node}'s /metrics is not valid Prometheus text: {e}\n{body}"));
            let missing = check(&e);
            if missing.is_empty() {
                return e;
            }
            missing
        } else {
            vec![format!("HTTP {code}")]
        };
        assert!(Instant::now() < deadline, "{node}'s metrics still lack: {missing:?}\n{body}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A condition on one series, for `scrape_until`.
fn want(e: &Exposition, missing: &mut Vec<String>, name: &str, labels: &[(&str, &str)], ok: impl Fn(f64) -> bool, what: &str) {
    match e.value(name, labels) {
        Some(v) if ok(v) => {}
        v => missing.push(format!("{name}{labels:?} {what} (is {v:?})")),
    }
}

#[test]
fn metrics_endpoint_shows_the_cluster() {
    let reg = format!("{REG_IP}:5000");
    let lab = Lab::up_with(
        "mx-metrics",
        1,
        1,
        // A small snapshot interval: forming the swarm and the service take a snapshot.
        &[("SHOAL_RAFT_SNAPSHOT_INTERVAL", "5")],
        &["--insecure-registry", &reg, "--metrics-port", PORT],
    );
    let dir = std::env::temp_dir().join(format!("shoal-e2e-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let registry = LabRegistry::start(&lab, "node-1", REG_IP);
    registry.push(&build_image_with_cmd(&dir, "idle:1", "idle.tar", r#"["sh","-c","sleep 100000"]"#), "idle", "1");
    let _ = std::fs::remove_dir_all(&dir);

    // Two replicas: one on each node, so both pull.
    let image = format!("{reg}/idle:1");
    lab.shoal_ok("node-1", &["service", "create", "-d", "--name", "idle", "--replicas", "2", &image]);

    let m = scrape_until(&lab, "node-1", REG_IP, |e| {
        let mut miss = Vec::new();
        let w = &mut miss;
        let pos = |v: f64| v > 0.0;
        want(e, w, "swarm_manager_leader", &[], |v| v == 1.0, "= 1");
        want(e, w, "swarm_raft_term", &[], |v| v >= 1.0, ">= 1");
        want(e, w, "swarm_raft_leader_changes_total", &[], |v| v >= 1.0, ">= 1");
        want(e, w, "swarm_raft_transaction_latency_seconds_count", &[], pos, "> 0");
        want(e, w, "swarm_raft_log_entries", &[], pos, "> 0");
        want(e, w, "swarm_raft_log_size_bytes", &[], pos, "> 0");
        want(e, w, "swarm_raft_snapshots_total", &[], pos, "> 0");
        want(e, w, "swarm_raft_snapshot_latency_seconds_count", &[], pos, "> 0");
        want(e, w, "swarm_manager_services_total", &[], |v| v == 1.0, "= 1");
        want(e, w, "swarm_manager_nodes", &[("state", "ready")], |v| v == 2.0, "= 2");
        want(e, w, "swarm_manager_tasks_total", &[("state", "running")], |v| v == 2.0, "= 2");
        want(e, w, "swarm_manager_networks_total", &[], |v| v >= 0.0, "present");
        want(e, w, "swarm_manager_secrets_total", &[], |v| v == 0.0, "= 0");
        want(e, w, "swarm_manager_configs_total", &[], |v| v == 0.0, "= 0");
        want(e, w, "swarm_manager_task_state_transitions_total", &[("state", "running")], |v| v >= 2.0, ">= 2");
        want(e, w, "swarm_manager_task_state_transitions_total", &[("state", "assigned")], |v| v >= 2.0, ">= 2");
        want(e, w, "swarm_dispatcher_sessions", &[], |v| v == 2.0, "= 2");
        want(e, w, "swarm_dispatcher_heartbeats_total", &[], pos, "> 0");
        want(e, w, "swarm_scheduler_decisions_total", &[("result", "assigned")], |v| v >= 2.0, ">= 2");
        want(e, w, "swarm_scheduler_pending_tasks", &[], |v| v == 0.0, "= 0");
        want(e, w, "engine_daemon_image_actions_seconds_count", &[("action", "pull")], pos, "> 0");
        want(e, w, "engine_daemon_image_pull_failures_total", &[], |v| v >= 0.0, "present");
        let create = [("method", "POST"), ("route", "/services/create")];
        want(e, w, "engine_daemon_api_request_duration_seconds_count", &create, |v| v == 1.0, "= 1");
        want(e, w, "engine_daemon_engine_cpus_cpus", &[], pos, "> 0");
        want(e, w, "engine_daemon_engine_memory_bytes", &[], pos, "> 0");
        want(e, w, "process_resident_memory_bytes", &[], pos, "> 0");
        want(e, w, "process_cpu_seconds_total", &[], |v| v >= 0.0, "present");
        want(e, w, "process_open_fds", &[], pos, "> 0");
        want(e, w, "process_max_fds", &[], pos, "> 0");
        want(e, w, "process_start_time_seconds", &[], |v| v > 1.5e9, "a time");
        miss
    });
    for (family, kind) in [
        ("swarm_raft_transaction_latency_seconds", "histogram"),
        ("engine_daemon_api_request_duration_seconds", "histogram"),
        ("swarm_manager_task_state_transitions_total", "counter"),
        ("swarm_manager_tasks_total", "gauge"),
        ("process_cpu_seconds_total", "counter"),
    ] {
        assert_eq!(m.kind(family), Some(kind), "{family}");
    }
    // Routes are templates: no series names an object.
    let (status, svc) = lab.api("node-1", "GET", "/v1.44/services/idle", None);
    assert_eq!(status, 200, "{svc}");
    let service_id = svc["ID"].as_str().unwrap().to_string();
    for s in m.series("engine_daemon_api_request_duration_seconds_count") {
        let route = &s.labels.iter().find(|(k, _)| k == "route").expect("route label").1;
        assert!(route == "other" || route.starts_with('/') && !route.contains(&service_id), "{route}");
    }

    // The worker: its engine's pulls and API, no store.
    let node2 = lab.addr(2);
    let w = scrape_until(&lab, "node-2", &node2, |e| {
        let mut miss = Vec::new();
        want(e, &mut miss, "engine_daemon_image_actions_seconds_count", &[("action", "pull")], |v| v > 0.0, "> 0");
        want(e, &mut miss, "swarm_manager_leader", &[], |v| v == 0.0, "= 0");
        miss
    });
    assert!(w.series("swarm_manager_tasks_total").is_empty(), "a worker has no store to count");

    // Only /metrics, only GET (and HEAD).
    let (code, _) = curl(&lab, "node-1", &format!("http://{REG_IP}:{PORT}/nope"));
    assert_eq!(code, "404");
    drop(registry);
}
