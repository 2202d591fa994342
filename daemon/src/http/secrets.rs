//! `/secrets` and `/configs`: lookup by full ID, name or ID prefix (in the
//! manager's store), create answers 201 `{"ID"}`, delete 204. A secret's
//! data is never in an answer.

use std::sync::Arc;

use hyper::StatusCode;
use shoal_api::filters::Filters;
use shoal_api::secret::{ConfigSpec, SecretSpec};
use shoal_api::ApiError;
use shoal_manager::control::{CONFIG_FILTERS, SECRET_FILTERS};

use super::{json_response, Call, Reply};
use crate::swarm::SwarmNode;

fn no_content() -> Reply {
    super::empty_response(StatusCode::NO_CONTENT)
}

fn filters(call: &Call, allowed: &[&str]) -> Result<Filters, ApiError> {
    Filters::parse(call.query.get("filters").map(String::as_str), allowed)
}

pub async fn create_secret(node: &Arc<SwarmNode>, call: &Call) -> Reply {
    let mgr = node.require_manager()?;
    let spec: SecretSpec = call.json()?;
    let id = mgr.control.create_secret(spec).await?;
    json_response(StatusCode::CREATED, &serde_json::json!({ "ID": id }))
}

pub fn list_secrets(node: &Arc<SwarmNode>, call: &Call) -> Reply {
    let mgr = node.require_manager()?;
    json_response(StatusCode::OK, &mgr.control.secrets(&filters(call, SECRET_FILTERS)?))
}

pub fn inspect_secret(node: &Arc<SwarmNode>, id: &str) -> Reply {
    let mgr = node.require_manager()?;
    json_response(StatusCode::OK, &mgr.control.secret(id)?)
}

pub async fn update_secret(node: &Arc<SwarmNode>, id: &str, call: &Call) -> Reply {
    let mgr = node.require_manager()?;
    let version = call.version()?;
    mgr.control.update_secret(id, version, call.json()?).await?;
    super::ok_empty()
}

pub async fn remove_secret(node: &Arc<SwarmNode>, id: &str) -> Reply {
    let mgr = node.require_manager()?;
    mgr.control.remove_secret(id).await?;
    no_content()
}

pub async fn create_config(node: &Arc<SwarmNode>, call: &Call) -> Reply {
    let mgr = node.require_manager()?;
    let spec: ConfigSpec = call.json()?;
    let id = mgr.control.create_config(spec).await?;
    json_response(StatusCode::CREATED, &serde_json::json!({ "ID": id }))
}

pub fn list_configs(node: &Arc<SwarmNode>, call: &Call) -> Reply {
    let mgr = node.require_manager()?;
    json_response(StatusCode::OK, &mgr.control.configs(&filters(call, CONFIG_FILTERS)?))
}

pub fn inspect_config(node: &Arc<SwarmNode>, id: &str) -> Reply {
    let mgr = node.require_manager()?;
    json_response(StatusCode::OK, &mgr.control.config(id)?)
}

pub async fn update_config(node: &Arc<SwarmNode>, id: &str, call: &Call) -> Reply {
    let mgr = node.require_manager()?;
    let version = call.version()?;
    mgr.control.update_config(id, version, call.json()?).await?;
    super::ok_empty()
}

pub async fn remove_config(node: &Arc<SwarmNode>, id: &str) -> Reply {
    let mgr = node.require_manager()?;
    mgr.control.remove_config(id).await?;
    no_content()
}
