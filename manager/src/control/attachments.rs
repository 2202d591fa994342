//! Network attachments: a standalone container's place on an attachable
//! overlay (`docker run --network appnet` on any node of the swarm), kept
//! as SwarmKit keeps it: a task with runtime `attachment` on the
//! container's node. The allocator gives it an address like a service's
//! task (and moves it to `assigned`: it is on its node already); the
//! dispatcher counts it among the node's tasks, so the node learns the
//! network's peers and names; the node runs nothing for it. It goes when
//! the container stops (`detach_network`) or its node leaves the swarm
//! (the reaper). Its name (the container's) and aliases resolve on the
//! network to its address (`dispatcher::views`).

use std::time::Duration;

use shoal_api::network::NetworkAttachment;
use shoal_api::task::{NetworkAttachmentConfig, NetworkAttachmentSpec, Task, TaskSpec, TaskState, TaskStatus, ATTACHMENT_RUNTIME};
use shoal_api::ApiError;

use super::networks::find_network;
use super::ControlApi;
use crate::cluster::Cluster;
use crate::store::{Command, Store};

/// How long an attach waits for the allocator.
const ALLOCATION_WAIT: Duration = Duration::from_secs(10);

/// A new attachment task for `container_id` on `node_id` (state `new`: the
/// allocator takes it from there).
pub fn attachment_task(id: String, node_id: &str, container: (&str, &str), network_id: &str, aliases: Vec<String>, now: &str) -> Task {
    let (container_id, name) = container;
    Task {
        id,
        name: name.to_string(),
        node_id: node_id.to_string(),
        spec: TaskSpec {
            runtime: ATTACHMENT_RUNTIME.into(),
            network_attachment_spec: Some(NetworkAttachmentSpec { container_id: container_id.to_string() }),
            networks: vec![NetworkAttachmentConfig { target: network_id.to_string(), aliases, ..Default::default() }],
            ..Default::default()
        },
        status: TaskStatus { timestamp: now.to_string(), state: TaskState::New, ..Default::default() },
        desired_state: TaskState::Running,
        ..Default::default()
    }
}

/// The attachment tasks of a container on a node.
fn attachments_of<'a>(st: &'a Store, node_id: &'a str, container_id: &'a str) -> impl Iterator<Item = &'a Task> + 'a {
    st.tasks.values().filter(move |t| {
        t.node_id == node_id
            && t.spec.is_attachment()
            && t.spec.network_attachment_spec.as_ref().is_some_and(|s| s.container_id == container_id)
    })
}

/// The network `key` names, if a standalone container may join it; else
/// Docker's refusal.
fn attachable<'a>(st: &'a Store, key: &str) -> Result<&'a shoal_api::network::Network, ApiError> {
    let n = find_network(st, key)?;
    if !n.spec.attachable || n.spec.ingress {
        return Err(ApiError::new(
            403,
            format!("Could not attach to network {key}: rpc error: code = PermissionDenied desc = network {key} not manually attachable"),
        ));
    }
    Ok(n)
}

impl ControlApi {
    /// Whether a standalone container may join `network`, in Docker's words.
    pub fn check_attachable(&self, network: &str) -> Result<(), ApiError> {
        attachable(&self.cluster.store(), network).map(|_| ())
    }
}

/// Attaches a standalone container on `node_id` to a swarm network (name,
/// ID or ID prefix), with network aliases; answers its address there once
/// the allocator gave it one. Attaching again answers the same attachment.
pub async fn attach(
    cluster: &Cluster,
    node_id: &str,
    container_id: &str,
    name: &str,
    network: &str,
    aliases: Vec<String>,
) -> Result<NetworkAttachment, ApiError> {
    // Bounds on what a node writes into Raft through this call.
    let long = |s: &str| s.len() > 255;
    if container_id.is_empty() || long(container_id) || long(name) || aliases.len() > 32 || aliases.iter().any(|a| long(a)) {
        return Err(ApiError::bad_request("network attachment: container ID or aliases out of bounds"));
    }
    let (network_id, existing) = {
        let st = cluster.store();
        let n = attachable(&st, network)?;
        let existing = attachments_of(&st, node_id, container_id)
            .find(|t| t.spec.networks.iter().any(|c| c.target == n.id) && !t.status.state.is_terminal())
            .map(|t| t.id.clone());
        (n.id.clone(), existing)
    };
    let id = match existing {
        Some(id) => id,
        None => {
            let id = shoal_api::id::new_id();
            let now = shoal_api::time::now_rfc3339();
            let task = attachment_task(id.clone(), node_id, (container_id, name), &network_id, aliases, &now);
            cluster.propose(Command::TaskIntents { delete: Vec::new(), put: vec![task], services: Vec::new() }).await?;
            id
        }
    };
    let deadline = tokio::time::Instant::now() + ALLOCATION_WAIT;
    let mut applied = cluster.applied();
    loop {
        applied.borrow_and_update();
        {
            let st = cluster.store();
            let t = st.tasks.get(&id).ok_or_else(|| ApiError::not_found(format!("network attachment {id} was removed")))?;
            match t.status.state {
                TaskState::New => {}
                TaskState::Failed => return Err(ApiError::internal(format!("attaching to network {network}: {}", t.status.err))),
                _ => {
                    return t
                        .networks_attachments
                        .first()
                        .cloned()
                        .ok_or_else(|| ApiError::internal(format!("network attachment {id} has no address")))
                }
            }
        }
        if tokio::time::timeout_at(deadline, applied.changed()).await.is_err() {
            return Err(ApiError::internal(format!("attaching to network {network}: no address was allocated within 10 s")));
        }
    }
}

/// Gives back a standalone container's attachments on `node_id` (its
/// addresses are free for others at once).
pub async fn detach(cluster: &Cluster, node_id: &str, container_id: &str) -> Result<(), ApiError> {
    let ids: Vec<String> = {
        let st = cluster.store();
        attachments_of(&st, node_id, container_id).map(|t| t.id.clone()).collect()
    };
    if ids.is_empty() {
        return Ok(());
    }
    cluster.propose(Command::TaskIntents { delete: ids, put: Vec::new(), services: Vec::new() }).await.map(|_| ()).map_err(ApiError::from)
}
