//! `/services` and `/tasks`.

use std::sync::Arc;

use hyper::StatusCode;
use shoal_api::filters::Filters;
use shoal_api::service::ServiceSpec;
use shoal_api::ApiError;
use shoal_manager::control::{SERVICE_FILTERS, TASK_FILTERS};

use super::{json_response, Call, Reply};
use crate::swarm::SwarmNode;

fn spec(call: &Call) -> Result<ServiceSpec, ApiError> {
    call.json().map_err(|e| ApiError::bad_request(e.message.replace("invalid JSON in request body", "invalid service spec")))
}

pub async fn create(node: &Arc<SwarmNode>, call: &Call) -> Reply {
    let mgr = node.require_manager()?;
    let id = mgr.create_service(spec(call)?, call.registry_auth.as_deref()).await?;
    json_response(StatusCode::CREATED, &serde_json::json!({"ID": id, "Warnings": null}))
}

pub fn list(node: &Arc<SwarmNode>, call: &Call) -> Reply {
    let mgr = node.require_manager()?;
    let filters = Filters::parse(call.query.get("filters").map(String::as_str), SERVICE_FILTERS)?;
    json_response(StatusCode::OK, &mgr.services(&filters, call.query_bool("status")))
}

pub fn inspect(node: &Arc<SwarmNode>, id: &str) -> Reply {
    let mgr = node.require_manager()?;
    json_response(StatusCode::OK, &mgr.service(id)?)
}

pub async fn update(node: &Arc<SwarmNode>, id: &str, call: &Call) -> Reply {
    let mgr = node.require_manager()?;
    let version = call.version()?;
    let rollback = call.query.get("rollback").map(String::as_str) == Some("previous");
    let spec = if rollback { ServiceSpec::default() } else { spec(call)? };
    mgr.update_service(id, version, spec, rollback, call.registry_auth.as_deref()).await?;
    json_response(StatusCode::OK, &serde_json::json!({"Warnings": null}))
}

pub async fn remove(node: &Arc<SwarmNode>, id: &str) -> Reply {
    let mgr = node.require_manager()?;
    mgr.remove_service(id).await?;
    super::ok_empty()
}

pub fn tasks(node: &Arc<SwarmNode>, call: &Call) -> Reply {
    let mgr = node.require_manager()?;
    let filters = Filters::parse(call.query.get("filters").map(String::as_str), TASK_FILTERS)?;
    json_response(StatusCode::OK, &mgr.tasks(&filters))
}

pub fn task(node: &Arc<SwarmNode>, id: &str) -> Reply {
    let mgr = node.require_manager()?;
    json_response(StatusCode::OK, &mgr.task(id)?)
}
