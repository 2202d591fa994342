//! `/swarm`: inspect, init, join, leave, update.

use std::sync::Arc;

use hyper::StatusCode;
use shoal_api::{ApiError, InitRequest, JoinRequest};
use shoal_manager::control::SwarmUpdate;

use super::{json_response, ok_empty, Call, Reply};
use crate::swarm::SwarmNode;

pub fn inspect(node: &Arc<SwarmNode>) -> Reply {
    let mgr = node.require_manager()?;
    json_response(StatusCode::OK, &mgr.swarm()?)
}

pub async fn init(node: &Arc<SwarmNode>, call: &Call) -> Reply {
    let req: InitRequest = call.json()?;
    let id = node.init(req).await?;
    json_response(StatusCode::OK, &id)
}

pub async fn join(node: &Arc<SwarmNode>, call: &Call) -> Reply {
    let req: JoinRequest = call.json()?;
    node.join(req).await?;
    ok_empty()
}

pub async fn leave(node: &Arc<SwarmNode>, call: &Call) -> Reply {
    node.leave(call.query_bool("force")).await?;
    ok_empty()
}

pub async fn update(node: &Arc<SwarmNode>, call: &Call) -> Reply {
    let mgr = node.require_manager()?;
    let version = call.version()?;
    let spec: serde_json::Value = call.json()?;
    if !spec.is_object() {
        return Err(ApiError::bad_request("invalid swarm spec: expected a JSON object"));
    }
    let opts = SwarmUpdate {
        rotate_worker_token: call.query_bool("rotateWorkerToken"),
        rotate_manager_token: call.query_bool("rotateManagerToken"),
    };
    mgr.update_swarm(version, &spec, opts).await?;
    ok_empty()
}

pub fn unlock_key(node: &Arc<SwarmNode>) -> Reply {
    node.require_manager()?;
    json_response(StatusCode::OK, &serde_json::json!({"UnlockKey": ""}))
}
