//! `/nodes`.

use std::sync::Arc;

use hyper::StatusCode;
use shoal_api::filters::Filters;
use shoal_api::{ApiError, NodeSpec};
use shoal_manager::control::NODE_FILTERS;

use super::{json_response, ok_empty, Call, Reply};
use crate::swarm::SwarmNode;

pub fn list(node: &Arc<SwarmNode>, call: &Call) -> Reply {
    let mgr = node.require_manager()?;
    let filters = Filters::parse(call.query.get("filters").map(String::as_str), NODE_FILTERS)?;
    json_response(StatusCode::OK, &mgr.control.nodes(&filters))
}

pub fn inspect(node: &Arc<SwarmNode>, id: &str) -> Reply {
    let mgr = node.require_manager()?;
    json_response(StatusCode::OK, &mgr.control.node(id)?)
}

pub async fn update(node: &Arc<SwarmNode>, id: &str, call: &Call) -> Reply {
    let mgr = node.require_manager()?;
    let version = call.version()?;
    let spec: NodeSpec = call.json()?;
    for k in spec.labels.keys() {
        if k.is_empty() {
            return Err(ApiError::bad_request("invalid label: empty key"));
        }
    }
    mgr.control.update_node(id, version, spec).await?;
    ok_empty()
}

pub async fn remove(node: &Arc<SwarmNode>, id: &str, call: &Call) -> Reply {
    let mgr = node.require_manager()?;
    mgr.control.remove_node(id, call.query_bool("force")).await?;
    ok_empty()
}
