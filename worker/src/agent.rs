//! The agent's session with the managers: it heartbeats to the leader
//! (following redirects and failing over between managers), learns the
//! current manager list, and renews its certificate when it nears expiry,
//! when the root CA changed, or when its role changed (promote/demote).

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use shoal_api::{NodeDescription, Role};
use shoal_rpc::client;
use shoal_rpc::credentials::Credentials;
use shoal_rpc::{CallError, HeartbeatRequest, RaftMember};
use tokio::sync::watch;

/// What the agent learned that the daemon acts on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AgentState {
    /// The role the cluster wants for this node (from the heartbeat).
    pub desired_role: Option<Role>,
    /// The role in the node's current certificate.
    pub cert_role: Option<Role>,
    pub managers: Vec<RaftMember>,
    /// Bumped each time credentials were renewed.
    pub renewals: u64,
    pub last_error: Option<String>,
    /// The version of this node's record once the leader has written all
    /// it reported (Ready, address, description); see
    /// `HeartbeatResponse::registered`.
    pub registered: Option<u64>,
}

pub struct AgentConfig {
    pub swarm_dir: std::path::PathBuf,
    pub advertise_addr: String,
    pub description: NodeDescription,
    /// Runs the tasks assigned to this node.
    pub tasks: Option<std::sync::Arc<crate::taskmanager::TaskManager>>,
}

pub struct Agent {
    cfg: AgentConfig,
    creds: Arc<RwLock<Credentials>>,
    state: watch::Sender<AgentState>,
}

impl Agent {
    pub fn start(
        cfg: AgentConfig,
        creds: Arc<RwLock<Credentials>>,
        managers: Vec<RaftMember>,
    ) -> (tokio::task::JoinHandle<()>, watch::Receiver<AgentState>) {
        let cert_role = creds.read().unwrap().identity().ok().map(|i| from_sec(i.role));
        let (tx, rx) = watch::channel(AgentState { managers, cert_role, ..Default::default() });
        let agent = Agent { cfg, creds, state: tx };
        (tokio::spawn(agent.run()), rx)
    }

    async fn run(self) {
        let mut next = 0usize;
        let mut leader_hint: Option<String> = None;
        // Log subscriptions from the leader we heartbeat to.
        let mut log_listener = crate::logs::Listener::default();
        loop {
            let managers = self.state.borrow().managers.clone();
            // A leader named by a manager we checked is trusted as named
            // (our list may predate it: a manager that joined later).
            let hinted = leader_hint.is_some();
            let addr = match leader_hint.take() {
                Some(a) => a,
                None if managers.is_empty() => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                None => {
                    next = (next + 1) % managers.len();
                    managers[next].addr.clone()
                }
            };
            let tls = self.creds.read().unwrap().client_config();
            let tls = match tls {
                Ok(t) => t,
                Err(e) => {
                    self.note_error(e);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let conn = match client::connect(&addr, tls.clone(), Duration::from_secs(3)).await {
                Ok(c) => c,
                Err(e) => {
                    self.note_error(format!("connecting to manager {addr}: {e}"));
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    continue;
                }
            };
            if let Err(e) = self.check_manager(&conn, &addr, hinted) {
                self.note_error(e);
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            }
            // One session: heartbeats and task states, with assignments
            // long-polled beside them on the same connection (so a change
            // reaches the node at once), until either fails.
            let heartbeats = async {
                let mut sent_description: Option<NodeDescription> = None;
                let mut next_heartbeat = tokio::time::Instant::now();
                loop {
                    if tokio::time::Instant::now() >= next_heartbeat {
                        let mut current = self.cfg.description.clone();
                        current.tls_info = self.tls_info();
                        // The WireGuard key as it is now: it rotates.
                        if let Some(net) = self.cfg.tasks.as_ref().and_then(|tm| tm.network()) {
                            current.data_path_key = net.data_path_key();
                        }
                        let description = (sent_description.as_ref() != Some(&current)).then_some(current);
                        let req = HeartbeatRequest { addr: self.cfg.advertise_addr.clone(), description: description.clone() };
                        match conn.heartbeat(&req, Duration::from_secs(10)).await {
                            Ok(hb) => {
                                if description.is_some() {
                                    sent_description = description;
                                }
                                let period = Duration::from_nanos(hb.period_ns.max(100_000_000) as u64);
                                let renew = self.needs_renewal(hb.desired_role, &hb.root_pem);
                                self.state.send_modify(|s| {
                                    s.desired_role = Some(hb.desired_role);
                                    s.managers = hb.managers.clone();
                                    s.last_error = None;
                                    if hb.registered.is_some() {
                                        s.registered = hb.registered;
                                    }
                                });
                                if let Some(tm) = &self.cfg.tasks {
                                    log_listener.ensure(&addr, &conn, tm.executor());
                                }
                                if renew {
                                    if let Err(e) = self.renew(&conn).await {
                                        self.note_error(e);
                                    }
                                    return None; // reconnect with the new certificate
                                }
                                // A little early, so jitter never makes us late.
                                next_heartbeat = tokio::time::Instant::now() + period.mul_f64(0.8).min(Duration::from_secs(1));
                            }
                            Err(CallError::NotLeader { leader_addr }) => {
                                if leader_addr.is_none() {
                                    tokio::time::sleep(Duration::from_millis(300)).await;
                                }
                                return leader_addr;
                            }
                            Err(CallError::Api(e)) => {
                                self.note_error(e.message);
                                tokio::time::sleep(Duration::from_secs(1)).await;
                                return None;
                            }
                            Err(e) => {
                                self.note_error(format!("heartbeat to {addr}: {e}"));
                                return None;
                            }
                        }
                    }
                    if let Err(e) = self.report_tasks(&conn).await {
                        self.note_error(e);
                        return None;
                    }
                    // Until the next heartbeat, or a task state to report.
                    match &self.cfg.tasks {
                        Some(tm) => {
                            let _ = tokio::time::timeout_at(next_heartbeat, tm.updated.notified()).await;
                        }
                        None => tokio::time::sleep_until(next_heartbeat).await,
                    }
                }
            };
            let assignments = self.poll_assignments(&conn);
            tokio::select! {
                hint = heartbeats => leader_hint = hint,
                (err, hint) = assignments => {
                    self.note_error(err);
                    if hint.is_none() {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    leader_hint = hint;
                }
            }
        }
    }

    /// A manager certificate is not enough to be one: a demoted manager
    /// keeps its certificate until it renews. The agent talks only to nodes
    /// the managers last listed as Raft members, or to the leader one of
    /// them named (`hinted`; our list may predate a manager that joined
    /// later). An empty list, before the first answer, trusts the
    /// certificate.
    fn check_manager(&self, conn: &client::Client, addr: &str, hinted: bool) -> Result<(), String> {
        if hinted {
            return Ok(());
        }
        let managers = self.state.borrow().managers.clone();
        let id = conn.server_identity().ok_or_else(|| format!("manager at {addr} sent no node certificate"))?;
        match trusted_manager(&managers, &id.node_id) {
            true => Ok(()),
            false => Err(format!("{addr} (node {}) is not a manager of this swarm", id.node_id)),
        }
    }

    /// Long-polls this node's assignments and hands each new set to the
    /// task manager. Returns why it stopped, and the leader's address if
    /// this manager is not the leader.
    async fn poll_assignments(&self, conn: &client::Client) -> (String, Option<String>) {
        let Some(tm) = &self.cfg.tasks else { return std::future::pending().await };
        let node_id = match self.creds.read().unwrap().identity() {
            Ok(id) => id.node_id,
            Err(e) => return (format!("assignments: {e}"), None),
        };
        let mut view = shoal_rpc::assignments::AssignmentView::new(&node_id);
        loop {
            let (known, since) = view.cursor();
            match conn.assignments(known, 3_000, since, Duration::from_secs(10)).await {
                Ok(mut a) => {
                    // Incremental answers are folded into the full copy;
                    // the task manager always gets the whole set.
                    if let Some(tasks) = view.take(&a) {
                        a.tasks = tasks;
                        tm.assign(a);
                    }
                }
                Err(CallError::NotLeader { leader_addr }) => return ("assignments: not the leader".into(), leader_addr),
                Err(e) => return (format!("assignments: {e}"), None),
            }
        }
    }

    /// The root this node trusts, as its description reports it.
    fn tls_info(&self) -> shoal_api::TlsInfo {
        let root = self.creds.read().unwrap().root_pem.clone();
        let (subject, key) = shoal_security::identity::tls_info(&root).unwrap_or_default();
        shoal_api::TlsInfo { trust_root: root, cert_issuer_subject: subject, cert_issuer_public_key: key }
    }

    /// Reports the task states the task manager observed since last time.
    async fn report_tasks(&self, conn: &client::Client) -> Result<(), String> {
        let Some(tm) = &self.cfg.tasks else { return Ok(()) };
        let updates = tm.take_updates();
        if updates.is_empty() {
            return Ok(());
        }
        match conn.task_status(&updates, Duration::from_secs(10)).await {
            Ok(()) => Ok(()),
            Err(e) => {
                // Not delivered: keep them for the next round, in order.
                tm.requeue(updates);
                Err(format!("task status: {e}"))
            }
        }
    }

    fn note_error(&self, e: String) {
        tracing::debug!("agent: {e}");
        self.state.send_modify(|s| s.last_error = Some(e));
    }

    fn needs_renewal(&self, desired: Role, root_pem: &str) -> bool {
        let creds = self.creds.read().unwrap();
        let Ok(id) = creds.identity() else { return true };
        if from_sec(id.role) != desired || (!root_pem.is_empty() && creds.root_pem != root_pem) {
            return true;
        }
        renewal_due(id.not_before, id.not_after, SystemTime::now())
    }

    async fn renew(&self, conn: &client::Client) -> Result<(), String> {
        let key = shoal_security::NodeKey::generate()?;
        let (cert_pem, root_pem) =
            conn.renew_cert(&key.csr_pem, Duration::from_secs(10)).await.map_err(|e| format!("renewing certificate: {e}"))?;
        let mut creds = Credentials { root_pem, cert_pem, key_pem: key.key_pem, lock: None };
        let role = creds.identity().map(|i| from_sec(i.role))?;
        {
            // Saved under the lock the manager role keeps (autolock), with
            // the credentials held so a re-wrap cannot slip in between.
            let mut current = self.creds.write().unwrap();
            creds.lock = current.lock.clone();
            creds.save(&self.cfg.swarm_dir).map_err(|e| format!("saving certificate: {e}"))?;
            *current = creds;
        }
        self.state.send_modify(|s| {
            s.cert_role = Some(role);
            s.renewals += 1;
        });
        Ok(())
    }
}

/// Renew past half of the certificate's lifetime, as SwarmKit does.
pub fn renewal_due(not_before: SystemTime, not_after: SystemTime, now: SystemTime) -> bool {
    let life = not_after.duration_since(not_before).unwrap_or_default();
    let left = not_after.duration_since(now).unwrap_or_default();
    left < life / 2
}

pub fn from_sec(r: shoal_security::Role) -> Role {
    match r {
        shoal_security::Role::Manager => Role::Manager,
        shoal_security::Role::Worker => Role::Worker,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renews_after_half_life() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let end = start + Duration::from_secs(100);
        assert!(!renewal_due(start, end, start + Duration::from_secs(10)));
        assert!(!renewal_due(start, end, start + Duration::from_secs(49)));
        assert!(renewal_due(start, end, start + Duration::from_secs(51)));
        assert!(renewal_due(start, end, end + Duration::from_secs(1)), "expired certificates renew");
    }
}

/// Whether `node_id` is among the managers the cluster last listed.
fn trusted_manager(managers: &[RaftMember], node_id: &str) -> bool {
    managers.is_empty() || managers.iter().any(|m| m.node_id == node_id)
}

#[cfg(test)]
mod manager_check_tests {
    use super::*;

    #[test]
    fn only_listed_managers_are_trusted() {
        let list = vec![RaftMember { raft_id: 1, node_id: "m1".into(), addr: "10.0.0.1:2377".into() }];
        assert!(trusted_manager(&list, "m1"));
        assert!(!trusted_manager(&list, "demoted"), "a manager certificate alone is not enough");
        assert!(trusted_manager(&[], "m1"), "before the first list, the certificate decides");
    }
}
