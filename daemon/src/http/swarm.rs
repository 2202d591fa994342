//! `/swarm`: inspect, init, join, leave, update.

use std::sync::Arc;

use hyper::StatusCode;
use shoal_api::{ApiError, InitRequest, JoinRequest, SwarmSpec, UnlockRequest};
use shoal_manager::control::SwarmUpdate;

use super::{json_response, ok_empty, Call, Reply};
use crate::swarm::SwarmNode;

pub fn inspect(node: &Arc<SwarmNode>) -> Reply {
    let mgr = node.require_manager()?;
    json_response(StatusCode::OK, &mgr.control.swarm()?)
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
    let spec: SwarmSpec =
        call.json().map_err(|e| ApiError::bad_request(e.message.replace("invalid JSON in request body", "invalid swarm spec")))?;
    let opts = SwarmUpdate {
        rotate_worker_token: call.query_bool("rotateWorkerToken"),
        rotate_manager_token: call.query_bool("rotateManagerToken"),
        rotate_manager_unlock_key: call.query_bool("rotateManagerUnlockKey"),
    };
    mgr.control.update_swarm(version, spec, opts).await?;
    ok_empty()
}

pub fn unlock_key(node: &Arc<SwarmNode>) -> Reply {
    let mgr = node.require_manager()?;
    let key = mgr.control.unlock_key_text()?;
    json_response(StatusCode::OK, &serde_json::json!({"UnlockKey": key.as_str()}))
}

pub async fn unlock(node: &Arc<SwarmNode>, call: &Call) -> Reply {
    let mut req: UnlockRequest = call.json()?;
    let key = zeroize::Zeroizing::new(std::mem::take(&mut req.unlock_key));
    node.unlock(&key).await?;
    ok_empty()
}
