//! The dispatcher (leader only): agents heartbeat, the node turns Ready;
//! after three missed periods it turns Down. It answers each node's
//! assignments long poll and takes its task states.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shoal_api::{ApiError, NodeState, NodeStatus};
use shoal_rpc::{CallError, HeartbeatRequest, HeartbeatResponse, TaskStatusUpdate};

use crate::cluster::Cluster;
use crate::datakey::SharedDataKey;
use crate::store::Command;

pub mod bounds;
pub mod views;

/// A node is Down after this many heartbeat periods without one (Docker's).
pub const GRACE_PERIODS: u32 = 3;

/// The dispatcher, a controller on the cluster handle: its `run` loop on
/// every manager (acting on the leader), and the heartbeat, assignments
/// and task-status calls the cluster port hands it.
pub struct Dispatcher {
    cluster: Cluster,
    /// The cluster's data key, which opens the secrets a node's tasks get
    /// (shared with the manager, which fetches it when it joins).
    data_key: SharedDataKey,
    /// When each node's next heartbeat is overdue. Emptied on leadership
    /// changes: a new leader gives every node a full grace period.
    deadlines: Mutex<HashMap<String, Instant>>,
    term: Mutex<u64>,
    /// Description changes, written at most once per interval per node.
    descriptions: Mutex<bounds::DescriptionGate>,
}

impl Dispatcher {
    pub fn new(cluster: Cluster, data_key: SharedDataKey) -> Arc<Dispatcher> {
        Arc::new(Dispatcher { cluster, data_key, deadlines: Mutex::default(), term: Mutex::default(), descriptions: Mutex::default() })
    }

    fn not_leader(&self) -> CallError {
        CallError::NotLeader { leader_addr: self.cluster.leader_member().map(|m| m.addr) }
    }

    fn period(&self) -> Duration {
        let st = self.cluster.store();
        let ns = st.cluster.as_ref().map(|c| c.swarm.spec.dispatcher.heartbeat_period).unwrap_or(shoal_api::DEFAULT_HEARTBEAT_NS);
        Duration::from_nanos(ns.max(100_000_000) as u64)
    }

    pub async fn heartbeat(&self, node_id: &str, hb: HeartbeatRequest) -> Result<HeartbeatResponse, CallError> {
        if !self.cluster.is_leader() {
            return Err(self.not_leader());
        }
        if let Some(d) = &hb.description {
            bounds::check_description(d)?;
        }
        if hb.addr.len() > 255 {
            return Err(ApiError::bad_request("node address too long").into());
        }
        let period = self.period();
        self.deadlines.lock().unwrap().insert(node_id.to_string(), Instant::now() + period * GRACE_PERIODS);
        shoal_metrics::get().dispatcher_heartbeats.inc();
        let (update, desired_role, managers, root_pem) = {
            let st = self.cluster.store();
            let node = st.nodes.get(node_id).ok_or_else(|| ApiError::not_found(format!("node {node_id} not found")))?;
            let offered = hb.description.filter(|d| *d != node.description);
            let description = self.descriptions.lock().unwrap().take(node_id, offered, Instant::now());
            let description = description.filter(|d| *d != node.description);
            let update = node.status.state != NodeState::Ready || node.status.addr != hb.addr || description.is_some();
            let root = st.cluster.as_ref().map(|c| c.root_cert_pem.clone()).unwrap_or_default();
            (update.then_some(description), node.spec.role, st.members.values().cloned().collect(), root)
        };
        let addr = hb.addr.clone();
        if let Some(description) = update {
            let status = NodeStatus { state: NodeState::Ready, message: String::new(), addr: hb.addr };
            self.cluster
                .propose(Command::UpdateNodeStatus { id: node_id.to_string(), status, description: description.map(Box::new) })
                .await?;
        }
        let registered = self.registered(node_id, &addr);
        Ok(HeartbeatResponse { period_ns: period.as_nanos() as i64, desired_role, managers, root_pem, registered })
    }

    /// The version of `node_id`'s record if nothing the node reported is still
    /// to be written: Ready, at `addr`, no description waiting in the gate.
    fn registered(&self, node_id: &str, addr: &str) -> Option<u64> {
        let st = self.cluster.store();
        let node = st.nodes.get(node_id)?;
        let settled =
            node.status.state == NodeState::Ready && node.status.addr == addr && !self.descriptions.lock().unwrap().is_pending(node_id);
        settled.then_some(node.version.index)
    }

    /// Marks nodes Down whose heartbeats stopped. Runs on every manager, acts on
    /// the leader only.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            let status = self.cluster.status();
            if !status.is_leader {
                shoal_metrics::get().dispatcher_sessions.set(0);
                continue;
            }
            {
                let mut term = self.term.lock().unwrap();
                if *term != status.term {
                    *term = status.term;
                    self.deadlines.lock().unwrap().clear();
                    *self.descriptions.lock().unwrap() = Default::default();
                }
            }
            let grace = self.period() * GRACE_PERIODS;
            let now = Instant::now();
            let overdue: Vec<String> = {
                let st = self.cluster.store();
                let mut deadlines = self.deadlines.lock().unwrap();
                let overdue = st
                    .nodes
                    .values()
                    .filter(|n| n.status.state != NodeState::Down)
                    .filter(|n| *deadlines.entry(n.id.clone()).or_insert(now + grace) < now)
                    .map(|n| n.id.clone())
                    .collect();
                // A session: a Ready node whose heartbeat is not overdue (after a
                // leader change, each node's first grace period counts as one).
                let live =
                    st.nodes.values().filter(|n| n.status.state == NodeState::Ready && deadlines.get(&n.id).is_some_and(|d| *d >= now));
                shoal_metrics::get().dispatcher_sessions.set(live.count() as i64);
                overdue
            };
            for id in overdue {
                let addr = self.cluster.store().nodes.get(&id).map(|n| n.status.addr.clone()).unwrap_or_default();
                let status = NodeStatus { state: NodeState::Down, message: "heartbeat failure".into(), addr };
                if let Err(e) = self.cluster.propose(Command::UpdateNodeStatus { id: id.clone(), status, description: None }).await {
                    tracing::warn!("marking node {id} down: {e}");
                }
            }
        }
    }

    /// The tasks a node must run or stop (see `shoal_rpc::assignments`): the
    /// complete set, or with `since` only what changed after that index. A long
    /// poll: while the set still hashes to `known`, wait up to `wait` for the
    /// store to change.
    pub async fn assignments(&self, node_id: &str, known: u64, since: u64, wait: Duration) -> Result<shoal_rpc::Assignments, CallError> {
        use shoal_rpc::assignments::{digest, in_set};
        let deadline = tokio::time::Instant::now() + wait;
        let mut applied = self.cluster.applied();
        loop {
            if !self.cluster.is_leader() {
                return Err(self.not_leader());
            }
            applied.borrow_and_update();
            {
                let st = self.cluster.store();
                let set = || st.tasks.values().filter(|t| in_set(t, node_id));
                let networks = views::views(&st, node_id, set());
                let host_ports = views::host_ports(&st, set());
                let mesh = views::mesh(&st, node_id);
                let hash = shoal_rpc::discovery::combined_with_mesh(digest(set()), &networks, &host_ports, mesh.as_ref());
                if hash != known || tokio::time::Instant::now() >= deadline {
                    let full: Vec<shoal_api::task::Task> = set().cloned().collect();
                    let key = self.data_key.read().unwrap().clone();
                    let (secrets, configs) = crate::delivery::payloads_for(&st, key.as_ref(), &full);
                    let registry_auth = crate::delivery::registry_auth_for(&st, key.as_ref(), &full);
                    let service_names =
                        full.iter().filter_map(|t| st.services.get(&t.service_id).map(|s| (s.id.clone(), s.spec.name.clone()))).collect();
                    let service_labels = full
                        .iter()
                        .filter_map(|t| st.services.get(&t.service_id))
                        .filter(|s| !s.spec.labels.is_empty())
                        .map(|s| (s.id.clone(), s.spec.labels.clone()))
                        .collect();
                    let incremental = known != 0 && since != 0 && since <= st.applied;
                    let tasks = if incremental {
                        // Changes include tasks that just left the set.
                        st.tasks.values().filter(|t| t.node_id == node_id && t.version.index > since).cloned().collect()
                    } else {
                        full
                    };
                    let answer = shoal_rpc::Assignments {
                        tasks,
                        secrets,
                        configs,
                        digest: hash,
                        incremental,
                        applied: st.applied,
                        registry_auth,
                        networks,
                        host_ports,
                        mesh: mesh.map(Box::new),
                        service_names,
                        service_labels,
                    };
                    return Ok(answer);
                }
            }
            // Leadership changes show on the status watch, not the applied one;
            // the deadline bounds the wait either way.
            let _ = tokio::time::timeout_at(deadline, applied.changed()).await;
        }
    }

    /// Observed states from a node: only for its own tasks, and only forward.
    pub async fn task_status(&self, node_id: &str, updates: Vec<TaskStatusUpdate>) -> Result<(), CallError> {
        if !self.cluster.is_leader() {
            return Err(self.not_leader());
        }
        let changed: Vec<(String, shoal_api::task::TaskStatus)> = {
            let st = self.cluster.store();
            updates
                .into_iter()
                .map(|mut u| {
                    bounds::bound_status(&mut u.status);
                    u
                })
                .filter(|u| {
                    st.tasks
                        .get(&u.task_id)
                        .is_some_and(|t| t.node_id == node_id && u.status.state >= t.status.state && u.status != t.status)
                })
                .map(|u| (u.task_id, u.status))
                .collect()
        };
        if !changed.is_empty() {
            self.cluster.propose(Command::UpdateTaskStatus { node_id: node_id.to_string(), updates: changed }).await?;
        }
        Ok(())
    }
}
