//! `--metrics-addr`: Prometheus metrics at `http://IP:PORT/metrics`, as
//! dockerd serves them (plain HTTP, no authentication: bind it to a
//! loopback or private address). The instruments are `shoal_metrics`'s;
//! this adds what is read at scrape time: the manager's store (SwarmKit's
//! `swarm_manager_*` object counts, pending tasks) and the engine's facts.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};
use hyper_util::rt::TokioIo;
use shoal_api::task::TaskState;
use shoal_api::NodeState;
use shoal_metrics::prometheus_client::collector::Collector;
use shoal_metrics::prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use shoal_metrics::prometheus_client::metrics::gauge::ConstGauge;
use shoal_metrics::prometheus_client::metrics::MetricType;
use shoal_metrics::prometheus_client::registry::Registry;

use crate::swarm::SwarmNode;

/// The registry `/metrics` encodes: the process-wide instruments, the
/// process collector, and this node's store and engine collectors.
pub fn registry(node: Arc<SwarmNode>) -> Registry {
    let m = shoal_metrics::get();
    // Every task state from the start (at 0), so a rate over it never
    // starts from a missing series.
    for s in TaskState::ALL {
        let _ = m.task_transitions.get_or_create(&[("state", s.as_str())]);
    }
    let mut r = shoal_metrics::registry();
    r.register_collector(Box::new(StoreCollector { node: node.clone() }));
    r.register_collector(Box::new(EngineCollector { node }));
    r
}

/// What the manager's store holds, counted at each scrape (a worker has no
/// store and shows none of these).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoreCounts {
    /// By `NodeState`, in its order.
    pub nodes: [u64; 4],
    /// By `TaskState`, in its order.
    pub tasks: [u64; TaskState::ALL.len()],
    pub services: u64,
    pub networks: u64,
    pub secrets: u64,
    pub configs: u64,
    /// Tasks waiting for the scheduler (pending, to run).
    pub pending: u64,
}

const NODE_STATES: [NodeState; 4] = [NodeState::Unknown, NodeState::Down, NodeState::Ready, NodeState::Disconnected];

pub fn store_counts(st: &shoal_manager::store::Store) -> StoreCounts {
    let mut c = StoreCounts::default();
    for n in st.nodes.values() {
        c.nodes[n.status.state as usize] += 1;
    }
    for t in st.tasks.values() {
        c.tasks[t.status.state as usize] += 1;
        if t.status.state == TaskState::Pending && t.desired_state <= TaskState::Complete {
            c.pending += 1;
        }
    }
    c.services = st.services.len() as u64;
    c.networks = st.networks.len() as u64;
    c.secrets = st.secrets.len() as u64;
    c.configs = st.configs.len() as u64;
    c
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(v);
    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
}

fn labelled_gauges<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &'static str,
    values: impl Iterator<Item = (&'a str, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (value, n) in values {
        let labels = [(label, value)];
        ConstGauge::new(n as i64).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

struct StoreCollector {
    node: Arc<SwarmNode>,
}

impl std::fmt::Debug for StoreCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreCollector")
    }
}

impl Collector for StoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(mgr) = self.node.manager() else { return Ok(()) };
        let c = store_counts(&mgr.cluster.store());
        // SwarmKit's names (manager/metrics/collector.go).
        let nodes = NODE_STATES.iter().map(|s| (s.as_str(), c.nodes[*s as usize]));
        labelled_gauges(&mut encoder, "swarm_manager_nodes", "The number of nodes.", "state", nodes)?;
        let tasks = TaskState::ALL.iter().map(|s| (s.as_str(), c.tasks[*s as usize]));
        labelled_gauges(&mut encoder, "swarm_manager_tasks_total", "The number of tasks in the cluster object store.", "state", tasks)?;
        for (name, what, n) in [
            ("swarm_manager_services_total", "services", c.services),
            ("swarm_manager_networks_total", "networks", c.networks),
            ("swarm_manager_secrets_total", "secrets", c.secrets),
            ("swarm_manager_configs_total", "configs", c.configs),
        ] {
            gauge(&mut encoder, name, &format!("The number of {what} in the cluster object store."), n as i64)?;
        }
        gauge(&mut encoder, "swarm_scheduler_pending_tasks", "Tasks waiting to be placed by the scheduler.", c.pending as i64)
    }
}

/// dockerd's `engine_daemon_engine_*`: the host's CPUs and memory, and
/// what the engine is.
struct EngineCollector {
    node: Arc<SwarmNode>,
}

impl std::fmt::Debug for EngineCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineCollector")
    }
}

impl Collector for EngineCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let d = shoal_worker::description::describe(&self.node.cfg.hostname, &self.node.cfg.engine_labels);
        let r = &d.resources;
        gauge(
            &mut encoder,
            "engine_daemon_engine_cpus_cpus",
            "The number of cpus that the host system of the engine has.",
            r.nano_cpus / 1_000_000_000,
        )?;
        gauge(
            &mut encoder,
            "engine_daemon_engine_memory_bytes",
            "The number of bytes of memory that the host system of the engine has.",
            r.memory_bytes,
        )?;
        let info = [
            ("version", shoal_api::ENGINE_VERSION),
            ("architecture", std::env::consts::ARCH),
            ("os_type", "linux"),
            ("graphdriver", "overlay2"),
        ];
        let mut family = encoder.encode_descriptor(
            "engine_daemon_engine_info",
            "The information related to the engine and the OS it is running on.",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(1).encode(family.encode_family(&info)?)
    }
}

/// Binds `addr` (so a taken port fails the daemon's start, as dockerd's
/// does) and serves `/metrics` there until the daemon stops.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

pub async fn serve(listener: tokio::net::TcpListener, registry: Arc<Registry>) -> std::io::Result<()> {
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of descriptors, a connection reset before accept:
                // the next one may well work.
                tracing::warn!("metrics listener: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let r = answer(&registry, req.method(), req.uri().path());
                async move { Ok::<_, Infallible>(r) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), svc).await;
        });
    }
}

fn answer(registry: &Registry, method: &Method, path: &str) -> Response<Full<Bytes>> {
    let plain = |status: StatusCode, text: &'static str| {
        let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
        *r.status_mut() = status;
        r.headers_mut().insert("Content-Type", "text/plain; charset=utf-8".parse().expect("static header"));
        r
    };
    if path != "/metrics" {
        return plain(StatusCode::NOT_FOUND, "404 page not found\n");
    }
    if method != Method::GET && method != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed\n");
    }
    let body = if method == Method::HEAD { String::new() } else { shoal_metrics::encode(registry) };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert("Content-Type", shoal_metrics::CONTENT_TYPE.parse().expect("static header"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_api::task::{Task, TaskStatus};

    #[test]
    fn store_counts_by_kind_and_state() {
        let mut st = shoal_manager::store::Store::default();
        let mut node = shoal_api::Node { id: "n1".into(), ..Default::default() };
        node.status.state = NodeState::Ready;
        st.nodes.insert("n1".into(), node);
        st.nodes.insert("n2".into(), shoal_api::Node { id: "n2".into(), ..Default::default() });
        st.services.insert("s1".into(), Default::default());
        let task = |id: &str, state, desired| Task {
            id: id.into(),
            status: TaskStatus { state, ..Default::default() },
            desired_state: desired,
            ..Default::default()
        };
        for t in [
            task("t1", TaskState::Running, TaskState::Running),
            task("t2", TaskState::Pending, TaskState::Running),
            task("t3", TaskState::Pending, TaskState::Shutdown),
            task("t4", TaskState::Running, TaskState::Running),
        ] {
            st.tasks.insert(t.id.clone(), t);
        }
        let c = store_counts(&st);
        assert_eq!(c.nodes, [1, 0, 1, 0]);
        assert_eq!(c.tasks[TaskState::Running as usize], 2);
        assert_eq!(c.tasks[TaskState::Pending as usize], 2);
        assert_eq!(c.pending, 1, "a pending task told to stop is not waiting for the scheduler");
        assert_eq!((c.services, c.networks, c.secrets, c.configs), (1, 0, 0, 0));
        assert_eq!(NODE_STATES.iter().map(|s| *s as usize).collect::<Vec<_>>(), [0, 1, 2, 3]);
        assert!(TaskState::ALL.iter().enumerate().all(|(i, s)| *s as usize == i));
    }

    #[test]
    fn metrics_answers_only_get_on_its_path() {
        let mut registry = shoal_metrics::registry();
        #[derive(Debug)]
        struct Engine;
        impl Collector for Engine {
            fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
                labelled_gauges(&mut encoder, "swarm_manager_nodes", "The number of nodes.", "state", [("ready", 2u64)].into_iter())
            }
        }
        registry.register_collector(Box::new(Engine));
        let r = answer(&registry, &Method::GET, "/metrics");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["Content-Type"], "text/plain; version=0.0.4; charset=utf-8");
        assert_eq!(answer(&registry, &Method::GET, "/").status(), StatusCode::NOT_FOUND);
        assert_eq!(answer(&registry, &Method::POST, "/metrics").status(), StatusCode::METHOD_NOT_ALLOWED);
        let text = shoal_metrics::encode(&registry);
        let e = shoal_metrics::text::validate(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(e.value("swarm_manager_nodes", &[("state", "ready")]), Some(2.0));
    }
}
