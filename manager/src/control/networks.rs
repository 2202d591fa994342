//! The control API behind `/networks`: swarm-scoped overlay networks, with
//! SwarmKit's checks (the allocator's `check_network` and
//! `check_network_removal`) up front, and again at apply time.

use shoal_api::filters::Filters;
use shoal_api::network::{Network, NetworkCreateRequest, NetworkResource, PeerInfo, VXLAN_ID_OPTION};
use shoal_api::ApiError;

use super::ControlApi;
use crate::store::{Command, Store};

pub const NETWORK_FILTERS: &[&str] = &["dangling", "driver", "id", "label", "name", "scope", "type"];

/// Driver options Shoal acts on; any other is refused by name.
const KNOWN_OPTIONS: &[&str] = &[VXLAN_ID_OPTION, shoal_api::network::ENCRYPTED_OPTION];

/// A network by full ID, name, or unique ID prefix (Docker's lookup order).
pub fn find_network<'a>(st: &'a Store, key: &str) -> Result<&'a Network, ApiError> {
    if let Some(n) = st.networks.get(key) {
        return Ok(n);
    }
    let by_name: Vec<&Network> = st.networks.values().filter(|n| n.spec.name == key).collect();
    if by_name.len() == 1 {
        return Ok(by_name[0]);
    }
    let by_prefix: Vec<&Network> = st.networks.values().filter(|n| !key.is_empty() && n.id.starts_with(key)).collect();
    match by_prefix.len() {
        1 => Ok(by_prefix[0]),
        0 => Err(ApiError::not_found(format!("network {key} not found"))),
        n => Err(ApiError::bad_request(format!("network {key} is ambiguous ({n} matches found)"))),
    }
}

/// What a network create asked for that Shoal keeps but does not act on.
pub fn create_warning(req: &NetworkCreateRequest) -> String {
    let mut w = Vec::new();
    if req.ipam.as_ref().is_some_and(|i| !i.options.is_empty()) {
        w.push("IPAM options (--ipam-opt) are kept but not used: the default IPAM driver takes none");
    }
    w.join("; ")
}

/// Whether a service or a live task uses network `id` (not dangling).
fn in_use(st: &Store, n: &Network) -> bool {
    let refers = |t: &str| t == n.id || t == n.spec.name;
    n.spec.ingress
        || st.services.values().any(|s| s.spec.task_template.networks.iter().any(|a| refers(&a.target)))
        || st
            .tasks
            .values()
            .any(|t| t.status.state <= shoal_api::task::TaskState::Running && t.networks_attachments.iter().any(|a| a.network.id == n.id))
}

/// `network inspect`'s shape, with the nodes that have tasks on it as peers.
fn resource(st: &Store, n: &Network) -> NetworkResource {
    let mut r = NetworkResource::from_swarm(n);
    let mut nodes: Vec<&str> = st
        .tasks
        .values()
        .filter(|t| t.status.state <= shoal_api::task::TaskState::Running && !t.node_id.is_empty())
        .filter(|t| t.networks_attachments.iter().any(|a| a.network.id == n.id))
        .map(|t| t.node_id.as_str())
        .collect();
    nodes.sort();
    nodes.dedup();
    r.peers = nodes
        .into_iter()
        .filter_map(|id| st.nodes.get(id))
        .map(|node| PeerInfo { name: node.description.hostname.clone(), ip: node.status.addr.clone() })
        .collect();
    r
}

impl ControlApi {
    /// `POST /networks/create`: the new network's ID, and Docker's
    /// `Warning` (what is kept but not acted on; empty if nothing).
    pub async fn create_network(&self, req: NetworkCreateRequest) -> Result<(String, String), ApiError> {
        let mut spec = req.to_spec().map_err(ApiError::bad_request)?;
        if let Some(opt) = req.options.keys().find(|k| !KNOWN_OPTIONS.contains(&k.as_str())) {
            return Err(ApiError::bad_request(format!("network driver option {opt:?} is not supported by this version of shoald")));
        }
        if spec.ipam_options.as_ref().is_some_and(|o| o.configs.is_empty()) {
            spec.ipam_options = None;
        }
        {
            let st = self.cluster.store();
            let pool = st.address_pool()?;
            let view = st.allocator_view(&pool);
            crate::allocator::check_network(&view, &spec).map_err(|e| ApiError::from(crate::store::StoreError::from(e)))?;
        }
        let id = shoal_api::id::new_id();
        let now = shoal_api::time::now_rfc3339();
        let network = Network { id: id.clone(), created_at: now.clone(), updated_at: now, spec, ..Default::default() };
        self.cluster.propose(Command::CreateNetwork { network: Box::new(network) }).await?;
        // Answer once the allocator gave it its subnet and VNI (the next
        // leader pass), so an inspect right after shows them as Docker's
        // does; a slow allocation still returns, later.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut applied = self.cluster.applied();
        while !self.cluster.store().networks.get(&id).is_some_and(crate::allocator::is_allocated) {
            if tokio::time::timeout_at(deadline, applied.changed()).await.is_err() {
                break;
            }
        }
        Ok((id, create_warning(&req)))
    }

    /// `GET /networks`, with Docker's filters.
    pub fn networks(&self, filters: &Filters) -> Result<Vec<NetworkResource>, ApiError> {
        let st = self.cluster.store();
        let mut out = Vec::new();
        for n in st.networks.values() {
            let dangling = !in_use(&st, n);
            let keep = filters.any("id", |v| n.id.starts_with(v))
                && filters.any("name", |v| n.spec.name.contains(v))
                && filters.any("driver", |v| v == "overlay")
                && filters.any("scope", |v| v == "swarm")
                && filters.any("type", |v| v == "custom" || (v == "builtin" && n.spec.ingress))
                && filters.any("dangling", |v| matches!(v, "true" | "1") == dangling)
                && filters.labels_match("label", &n.spec.labels);
            if keep {
                out.push(resource(&st, n));
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// `GET /networks/{id}`.
    pub fn network(&self, key: &str) -> Result<NetworkResource, ApiError> {
        let st = self.cluster.store();
        let n = find_network(&st, key)?;
        Ok(resource(&st, n))
    }

    /// `DELETE /networks/{id}`: refused while in use, as SwarmKit words it.
    pub async fn remove_network(&self, key: &str) -> Result<(), ApiError> {
        let id = {
            let st = self.cluster.store();
            let n = find_network(&st, key)?;
            let pool = st.address_pool()?;
            let view = st.allocator_view(&pool);
            crate::allocator::check_network_removal(&view, &n.id).map_err(|e| ApiError::from(crate::store::StoreError::from(e)))?;
            n.id.clone()
        };
        self.cluster.propose(Command::RemoveNetwork { id }).await.map(|_| ()).map_err(ApiError::from)
    }

    /// `POST /networks/prune`: removes the networks nothing uses (never the
    /// ingress network); the names removed.
    pub async fn prune_networks(&self, filters: &Filters) -> Result<Vec<String>, ApiError> {
        let candidates: Vec<(String, String)> = {
            let st = self.cluster.store();
            st.networks
                .values()
                .filter(|n| !in_use(&st, n) && filters.labels_match("label", &n.spec.labels))
                .map(|n| (n.id.clone(), n.spec.name.clone()))
                .collect()
        };
        let mut removed = Vec::new();
        for (id, name) in candidates {
            if self.cluster.propose(Command::RemoveNetwork { id }).await.is_ok() {
                removed.push(name);
            }
        }
        Ok(removed)
    }

    /// Service networks by ID (names resolved), and the endpoint checked
    /// against the other services' ports: before a create or update.
    pub(crate) fn check_service_networking(
        &self,
        service_id: Option<&str>,
        spec: &mut shoal_api::service::ServiceSpec,
    ) -> Result<(), ApiError> {
        let st = self.cluster.store();
        let pool = st.address_pool()?;
        let view = st.allocator_view(&pool);
        let invalid = |e: String| ApiError::bad_request(format!("rpc error: code = InvalidArgument desc = {e}"));
        spec.task_template.networks = crate::allocator::check_service_networks(&view, spec).map_err(|e| {
            if e.ends_with("not found") {
                ApiError::not_found(e)
            } else {
                invalid(e)
            }
        })?;
        crate::allocator::check_service_endpoint(&view, service_id, spec).map_err(invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_but_unused_create_fields_are_warned_of() {
        let req = |body: &str| serde_json::from_str::<NetworkCreateRequest>(body).unwrap();
        assert_eq!(create_warning(&req(r#"{"Name": "n", "Driver": "overlay"}"#)), "");
        // Attachable networks are acted on (docker run --network).
        assert_eq!(create_warning(&req(r#"{"Name": "n", "Attachable": true}"#)), "");
        let w = create_warning(&req(r#"{"Name": "n", "Attachable": true, "IPAM": {"Options": {"x": "1"}}}"#));
        assert!(w.contains("IPAM options (--ipam-opt)"), "{w}");
    }
}
