//! Prometheus metrics (`shoald --metrics-addr`).
//!
//! The instruments live in one process-wide [`Metrics`] (as Docker's
//! go-metrics registers its namespaces globally): the crates that do the
//! work update them (atomic counters and gauges; a histogram observation
//! takes one uncontended lock), and the daemon builds a [`Registry`] over
//! them with [`registry`] and serves it in the Prometheus text format.
//! What is cheaper to count at scrape time than to track (objects in the
//! store, the process's memory) is a [`Collector`](prometheus_client::collector::Collector)
//! run on each scrape.
//!
//! Names follow Docker's where Docker has the metric (`swarm_raft_*`,
//! `swarm_manager_*`, `swarm_dispatcher_*` from SwarmKit, `engine_daemon_*`
//! from dockerd, `process_*` from the Go client); the others keep the same
//! namespaces. Latency histograms use the Go client's default buckets, as
//! go-metrics timers do. Label values always come from fixed sets.

pub mod process;
pub mod text;

use std::sync::LazyLock;

pub use prometheus_client;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The Go client's `DefBuckets`, in seconds (what Docker's timers use).
pub const LATENCY_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// One label, name and value from fixed sets.
pub type Label = [(&'static str, &'static str); 1];
/// Two labels.
pub type Labels2 = [(&'static str, &'static str); 2];
/// A family of latency histograms.
pub type Latencies<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Every instrument the daemon's crates update.
pub struct Metrics {
    /// `swarm_raft_term`: this manager's current Raft term.
    pub raft_term: Gauge,
    /// `swarm_manager_leader`: 1 while this manager is the Raft leader.
    pub raft_leader: Gauge,
    /// `swarm_raft_leader_changes_total`: times this manager saw a new leader.
    pub raft_leader_changes: Counter,
    /// `swarm_raft_transaction_latency_seconds`: a proposal, from the call
    /// on the leader until its entry is applied there.
    pub raft_transaction_latency: Histogram,
    /// `swarm_raft_log_entries`: entries in the log (compaction keeps some
    /// behind the last snapshot for slow followers).
    pub raft_log_entries: Gauge,
    /// `swarm_raft_log_size_bytes`: size of the write-ahead log file.
    pub raft_log_bytes: Gauge,
    /// `swarm_raft_snapshots_total`: snapshots this manager took.
    pub raft_snapshots: Counter,
    /// `swarm_raft_snapshot_latency_seconds`: time to take one.
    pub raft_snapshot_latency: Histogram,
    /// `swarm_dispatcher_sessions`: nodes heartbeating to this leader.
    pub dispatcher_sessions: Gauge,
    /// `swarm_dispatcher_heartbeats_total`: heartbeats this leader answered.
    pub dispatcher_heartbeats: Counter,
    /// `swarm_scheduler_decisions_total{result}`: placements tried, by
    /// outcome (`assigned`, `unassignable`).
    pub scheduler_decisions: Family<Label, Counter>,
    /// `swarm_manager_task_state_transitions_total{state}`: task state
    /// changes this manager applied, by the state entered.
    pub task_transitions: Family<Label, Counter>,
    /// `engine_daemon_image_actions_seconds{action}`: Docker's image action
    /// timer (`pull`).
    pub image_actions: Latencies<Label>,
    /// `engine_daemon_image_pull_failures_total`: pulls that failed.
    pub image_pull_failures: Counter,
    /// `engine_daemon_api_request_duration_seconds{method,route}`: Engine
    /// API requests until their response head, by route template.
    pub api_requests: Latencies<Labels2>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let m = Metrics {
        raft_term: Gauge::default(),
        raft_leader: Gauge::default(),
        raft_leader_changes: Counter::default(),
        raft_transaction_latency: latency(),
        raft_log_entries: Gauge::default(),
        raft_log_bytes: Gauge::default(),
        raft_snapshots: Counter::default(),
        raft_snapshot_latency: latency(),
        dispatcher_sessions: Gauge::default(),
        dispatcher_heartbeats: Counter::default(),
        scheduler_decisions: Family::default(),
        task_transitions: Family::default(),
        image_actions: Family::new_with_constructor(latency),
        image_pull_failures: Counter::default(),
        api_requests: Family::new_with_constructor(latency),
    };
    // Series that exist from the start (at 0), as Docker pre-sets its own.
    for r in [SCHEDULER_ASSIGNED, SCHEDULER_UNASSIGNABLE] {
        let _ = m.scheduler_decisions.get_or_create(&[("result", r)]);
    }
    let _ = m.image_actions.get_or_create(&[("action", "pull")]);
    m
});

pub const SCHEDULER_ASSIGNED: &str = "assigned";
pub const SCHEDULER_UNASSIGNABLE: &str = "unassignable";

/// The process-wide instruments.
pub fn get() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    /// A task entered `state` (a `TaskState` name, a fixed set).
    pub fn task_transition(&self, state: &'static str) {
        self.task_transitions.get_or_create(&[("state", state)]).inc();
    }

    /// The scheduler placed a task, or found no node for it.
    pub fn scheduler_decision(&self, assigned: bool) {
        let r = if assigned { SCHEDULER_ASSIGNED } else { SCHEDULER_UNASSIGNABLE };
        self.scheduler_decisions.get_or_create(&[("result", r)]).inc();
    }

    /// An image pull ended after `seconds`.
    pub fn image_pull(&self, seconds: f64, ok: bool) {
        if ok {
            self.image_actions.get_or_create(&[("action", "pull")]).observe(seconds);
        } else {
            self.image_pull_failures.inc();
        }
    }

    /// An Engine API request was answered (route: a template from a fixed
    /// table, never the raw path).
    pub fn api_request(&self, method: &'static str, route: &'static str, seconds: f64) {
        self.api_requests.get_or_create(&[("method", method), ("route", route)]).observe(seconds);
    }
}

/// A registry over the process-wide instruments and the process collector;
/// the daemon adds its own collectors (store counts, engine facts).
pub fn registry() -> Registry {
    let m = get();
    let mut r = Registry::default();
    r.register("swarm_raft_term", "The current Raft term of this manager", m.raft_term.clone());
    r.register("swarm_manager_leader", "Indicates if this manager node is a leader", m.raft_leader.clone());
    r.register("swarm_raft_leader_changes", "Times this manager saw the Raft leader change", m.raft_leader_changes.clone());
    r.register(
        "swarm_raft_transaction_latency_seconds",
        "Raft transaction latency: from the proposal on the leader until its entry is applied",
        m.raft_transaction_latency.clone(),
    );
    r.register("swarm_raft_log_entries", "Entries in this manager's Raft log since its last compaction", m.raft_log_entries.clone());
    r.register("swarm_raft_log_size_bytes", "Size of the Raft write-ahead log file", m.raft_log_bytes.clone());
    r.register("swarm_raft_snapshots", "Raft snapshots this manager took", m.raft_snapshots.clone());
    r.register("swarm_raft_snapshot_latency_seconds", "Raft snapshot create latency", m.raft_snapshot_latency.clone());
    r.register(
        "swarm_dispatcher_sessions",
        "Nodes with a live heartbeat session on this dispatcher (leader only)",
        m.dispatcher_sessions.clone(),
    );
    r.register("swarm_dispatcher_heartbeats", "Heartbeats this dispatcher answered", m.dispatcher_heartbeats.clone());
    r.register("swarm_scheduler_decisions", "Task placements the scheduler tried, by result", m.scheduler_decisions.clone());
    r.register(
        "swarm_manager_task_state_transitions",
        "Task state changes applied to this manager's store, by the state entered",
        m.task_transitions.clone(),
    );
    r.register(
        "engine_daemon_image_actions_seconds",
        "The number of seconds it takes to process each image action",
        m.image_actions.clone(),
    );
    r.register("engine_daemon_image_pull_failures", "Image pulls that failed", m.image_pull_failures.clone());
    r.register(
        "engine_daemon_api_request_duration_seconds",
        "Engine API requests, from their arrival until the response head, by method and route template",
        m.api_requests.clone(),
    );
    r.register_collector(Box::new(process::ProcessCollector));
    r
}

/// The registry in the Prometheus text format (version 0.0.4), what
/// Docker's `/metrics` serves.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, registry).expect("writing to a String cannot fail");
    out
}

/// The `Content-Type` of [`encode`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_encodes_valid_text_with_docker_names() {
        let before = text::validate(&encode(&registry())).unwrap();
        get().task_transition("running");
        get().scheduler_decision(true);
        get().image_pull(0.2, true);
        get().image_pull(0.1, false);
        get().api_request("GET", "/services", 0.003);
        get().raft_transaction_latency.observe(0.02);
        let out = encode(&registry());
        let after = text::validate(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        // Counters only move forward (other tests may move them too).
        let moved = |name: &str, labels: &[(&str, &str)]| {
            let b = before.value(name, labels).unwrap_or(0.0);
            let a = after.value(name, labels).unwrap_or_else(|| panic!("{name} {labels:?} missing:\n{out}"));
            assert!(a > b, "{name} {labels:?}: {b} -> {a}");
        };
        moved("swarm_manager_task_state_transitions_total", &[("state", "running")]);
        moved("swarm_scheduler_decisions_total", &[("result", "assigned")]);
        moved("engine_daemon_image_actions_seconds_count", &[("action", "pull")]);
        moved("engine_daemon_image_pull_failures_total", &[]);
        moved("engine_daemon_api_request_duration_seconds_count", &[("method", "GET"), ("route", "/services")]);
        moved("swarm_raft_transaction_latency_seconds_count", &[]);
        assert_eq!(after.kind("swarm_raft_transaction_latency_seconds"), Some("histogram"));
        assert_eq!(after.kind("swarm_raft_leader_changes_total"), Some("counter"));
        assert_eq!(after.kind("swarm_manager_leader"), Some("gauge"));
        assert!(after.value("swarm_scheduler_decisions_total", &[("result", "unassignable")]).is_some(), "pre-set at 0");
        assert!(after.value("process_resident_memory_bytes", &[]).unwrap() > 0.0);
        assert!(
            out.contains("engine_daemon_api_request_duration_seconds_bucket{method=\"GET\",route=\"/services\",le=\"0.005\"}"),
            "{out}"
        );
    }
}
