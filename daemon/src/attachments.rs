//! Standalone containers on attachable swarm networks (`docker run
//! --network appnet`): the node asks the managers for the container's
//! address on the network at each start (on a manager, its own manager;
//! on a worker, over the cluster port), and gives it back when the
//! container is no longer running. Giving back is a reconciliation (each
//! pass of `swarm::watch_role`): every attachment the managers hold for
//! this node whose container is neither starting nor running goes, so a
//! container that ended, was removed, or was lost with a daemon restart
//! never keeps an address.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use shoal_api::network::NetworkAttachment;
use shoal_api::ApiError;
use shoal_rpc::{client, CallError};

use crate::swarm::SwarmNode;

/// How long a worker waits for the managers' answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Containers between their attach and the end of their start: their
/// attachment must not be reconciled away meanwhile.
#[derive(Default)]
pub struct Starting(Mutex<HashSet<String>>);

impl SwarmNode {
    /// The container's address on `network`, from the managers.
    pub async fn attach_network(
        &self,
        container_id: &str,
        name: &str,
        network: &str,
        aliases: Vec<String>,
    ) -> Result<NetworkAttachment, ApiError> {
        let Some((node_id, ..)) = self.identity() else {
            return Err(ApiError::not_found(format!("network {network} not found")));
        };
        if let Some(mgr) = self.manager() {
            return shoal_manager::control::attach(&mgr.cluster, &node_id, container_id, name, network, aliases).await;
        }
        let aliases = &aliases;
        self.call_managers(|c| async move { c.attach_network(container_id, name, network, aliases.clone(), CALL_TIMEOUT).await }).await
    }

    /// Docker's answer at create for a network that cannot be joined:
    /// outside a swarm none can; a manager knows the networks (a worker
    /// learns at the start, from the managers).
    pub fn check_swarm_network(&self, network: &str) -> Result<(), ApiError> {
        if self.identity().is_none() {
            return Err(ApiError::not_found(format!("network {network} not found")));
        }
        if let Some(mgr) = self.manager() {
            mgr.control.check_attachable(network)?;
        }
        Ok(())
    }

    async fn detach_network(&self, container_id: &str) -> Result<(), ApiError> {
        let Some((node_id, ..)) = self.identity() else { return Ok(()) };
        if let Some(mgr) = self.manager() {
            return shoal_manager::control::detach(&mgr.cluster, &node_id, container_id).await;
        }
        self.call_managers(|c| async move { c.detach_network(container_id, CALL_TIMEOUT).await }).await
    }

    /// A call any manager answers, tried on each in turn.
    async fn call_managers<T, F, Fut>(&self, call: F) -> Result<T, ApiError>
    where
        F: Fn(client::Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, CallError>>,
    {
        let Some((_, _, managers, _)) = self.identity() else { return Err(ApiError::not_in_swarm()) };
        let tls = self.cluster_tls().ok_or_else(ApiError::not_in_swarm)?.map_err(ApiError::internal)?;
        let mut last = ApiError::no_leader();
        for m in managers {
            let answer = match client::connect(&m.addr, tls.clone(), CALL_TIMEOUT).await {
                Ok(c) => call(c).await,
                Err(e) => Err(e),
            };
            match answer {
                Ok(r) => return Ok(r),
                Err(CallError::Api(e)) => return Err(e),
                Err(e) => last = ApiError::unavailable(format!("manager {}: {e}", m.addr)),
            }
        }
        Err(last)
    }

    /// Starts a standalone container, with its address on its swarm
    /// network first if it has one (given back if the start fails).
    pub async fn start_standalone(&self, id: &str) -> Result<bool, shoal_worker::standalone::StandaloneError> {
        use shoal_worker::standalone::StandaloneError;
        let swarm = self.standalone.swarm_network(id);
        if swarm.is_some() {
            self.starting.0.lock().unwrap().insert(id.to_string());
        }
        let attachment = match swarm {
            Some((name, network, aliases)) => match self.attach_network(id, &name, &network, aliases).await {
                Ok(a) => Some(a),
                Err(e) => {
                    self.starting.0.lock().unwrap().remove(id);
                    self.standalone.start_refused(id);
                    return Err(match e.status {
                        404 => StandaloneError::NotFound(e.message),
                        400 | 403 => StandaloneError::Invalid(e.message),
                        _ => StandaloneError::Failed(e.message),
                    });
                }
            },
            None => None,
        };
        let standalone = self.standalone.clone();
        let (owned, attached) = (id.to_string(), attachment.is_some());
        let r = tokio::task::spawn_blocking(move || standalone.start(&owned, attachment))
            .await
            .unwrap_or_else(|e| Err(StandaloneError::Failed(e.to_string())));
        self.starting.0.lock().unwrap().remove(id);
        if attached && r.is_err() {
            if let Err(e) = self.detach_network(id).await {
                tracing::warn!("container {id}: giving back its network attachment: {}", e.message);
            }
        }
        r
    }

    /// Gives back the attachments of this node's containers that are not
    /// starting or running (see the module doc).
    pub async fn release_attachments(&self) {
        let held = self.tasks.attached_containers();
        if held.is_empty() {
            return;
        }
        let live: HashSet<String> = self.standalone.on_swarm_networks().into_iter().collect();
        let stale: Vec<String> = {
            let starting = self.starting.0.lock().unwrap();
            held.into_iter().filter(|c| !live.contains(c) && !starting.contains(c)).collect()
        };
        for c in stale {
            match self.detach_network(&c).await {
                Ok(()) => tracing::info!("container {c}: network attachment given back"),
                Err(e) => tracing::debug!("container {c}: giving back its network attachment: {}", e.message),
            }
        }
    }
}
