//! `/networks`: swarm-scoped overlay networks, kept by the managers. On a
//! node that is not a manager the list is empty (Docker lists only the
//! node's local networks there, which Shoal does not have).

use std::sync::Arc;

use hyper::StatusCode;
use shoal_api::filters::Filters;
use shoal_api::network::NetworkCreateRequest;
use shoal_api::ApiError;
use shoal_manager::control::networks::NETWORK_FILTERS;

use super::{json_response, Call, Reply};
use crate::swarm::SwarmNode;

fn filters(call: &Call) -> Result<Filters, ApiError> {
    Filters::parse(call.query.get("filters").map(String::as_str), NETWORK_FILTERS)
}

pub async fn create(node: &Arc<SwarmNode>, call: &Call) -> Reply {
    let mgr = node.require_manager()?;
    let req: NetworkCreateRequest = call.json()?;
    let (id, warning) = mgr.control.create_network(req).await?;
    json_response(StatusCode::CREATED, &serde_json::json!({ "Id": id, "Warning": warning }))
}

pub fn list(node: &Arc<SwarmNode>, call: &Call) -> Reply {
    let filters = filters(call)?;
    match node.manager() {
        Some(mgr) => json_response(StatusCode::OK, &mgr.control.networks(&filters)?),
        None => json_response(StatusCode::OK, &Vec::<serde_json::Value>::new()),
    }
}

/// `GET /networks/{id}`. A node that is not a manager knows no networks
/// (a Docker engine there looks only at its local ones, and ignores the
/// cluster's not-a-manager error): an unknown one is moby's 404, so
/// `docker inspect <name>` on a worker goes on to its other object kinds.
pub fn inspect(node: &Arc<SwarmNode>, id: &str) -> Reply {
    match node.manager() {
        Some(mgr) => json_response(StatusCode::OK, &mgr.control.network(id)?),
        None => Err(no_such_network(id)),
    }
}

/// libnetwork's `ErrNoSuchNetwork`.
fn no_such_network(id: &str) -> ApiError {
    ApiError::not_found(format!("network {id} not found"))
}

pub async fn remove(node: &Arc<SwarmNode>, id: &str) -> Reply {
    let mgr = node.require_manager()?;
    mgr.control.remove_network(id).await?;
    super::empty_response(StatusCode::NO_CONTENT)
}

pub async fn prune(node: &Arc<SwarmNode>, call: &Call) -> Reply {
    let mgr = node.require_manager()?;
    let removed = mgr.control.prune_networks(&filters(call)?).await?;
    json_response(StatusCode::OK, &serde_json::json!({ "NetworksDeleted": removed }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unknown_network_is_mobys_404() {
        let e = super::no_such_network("nosuch");
        assert_eq!((e.status, e.message.as_str()), (404, "network nosuch not found"));
    }
}
