//! `/services` and `/tasks`.

use std::sync::Arc;

use hyper::StatusCode;
use shoal_api::filters::Filters;
use shoal_api::service::ServiceSpec;
use shoal_api::ApiError;
use shoal_manager::control::{SERVICE_FILTERS, TASK_FILTERS};

use super::{json_response, Call, Reply};
use crate::swarm::SwarmNode;

/// The spec in the body, as dockerd takes it from a client of the
/// request's API version (`version::adjust_service_spec`).
fn spec(call: &Call) -> Result<ServiceSpec, ApiError> {
    let mut spec: ServiceSpec =
        call.json().map_err(|e| ApiError::bad_request(e.message.replace("invalid JSON in request body", "invalid service spec")))?;
    super::version::adjust_service_spec(&mut spec, call.api);
    Ok(spec)
}

/// What the answer's `Warnings` says of the request: the fields kept but
/// not acted on (`null` when none, as Docker writes it).
fn warnings(spec: &ServiceSpec, call: &Call) -> serde_json::Value {
    let raw: serde_json::Value = serde_json::from_slice(&call.body).unwrap_or_default();
    let w = shoal_api::warnings::service(spec, &raw);
    if w.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::json!(w)
    }
}

pub async fn create(node: &Arc<SwarmNode>, call: &Call) -> Reply {
    let mgr = node.require_manager()?;
    let spec = spec(call)?;
    let warnings = warnings(&spec, call);
    let id = mgr.control.create_service(spec, call.registry_auth.as_deref()).await?;
    json_response(StatusCode::CREATED, &serde_json::json!({"ID": id, "Warnings": warnings}))
}

pub fn list(node: &Arc<SwarmNode>, call: &Call) -> Reply {
    let mgr = node.require_manager()?;
    let filters = Filters::parse(call.query.get("filters").map(String::as_str), SERVICE_FILTERS)?;
    // `?status` from 1.41 on; a bad value is refused, as dockerd does.
    let status = if call.api.before(1, 41) {
        false
    } else {
        match call.query.get("status").map(String::as_str) {
            None | Some("") => false,
            Some(v) => parse_go_bool(v).ok_or_else(|| ApiError::bad_request(format!("invalid value for status: {v}")))?,
        }
    };
    json_response(StatusCode::OK, &mgr.control.services(&filters, status))
}

/// `GET /services/{id}`; with `insertDefaults` (the docker CLI's `service
/// inspect` always asks) the spec has SwarmKit's defaults filled in.
pub fn inspect(node: &Arc<SwarmNode>, id: &str, call: &Call) -> Reply {
    let mgr = node.require_manager()?;
    let service = mgr.control.service(id)?;
    if docker_bool(call.query.get("insertDefaults")) {
        return json_response(StatusCode::OK, &service.with_defaults());
    }
    json_response(StatusCode::OK, &service)
}

/// moby's `httputils.BoolValue`: anything but empty, `0`, `no`, `false`
/// or `none` (any case, trimmed) is true. The docker CLI sends `1`, older
/// ones `true`.
fn docker_bool(v: Option<&String>) -> bool {
    let v = v.map(|s| s.trim().to_ascii_lowercase()).unwrap_or_default();
    !matches!(v.as_str(), "" | "0" | "no" | "false" | "none")
}

pub async fn update(node: &Arc<SwarmNode>, id: &str, call: &Call) -> Reply {
    let mgr = node.require_manager()?;
    let version = call.version()?;
    let rollback = call.query.get("rollback").map(String::as_str) == Some("previous");
    let spec = if rollback { ServiceSpec::default() } else { spec(call)? };
    let warnings = if rollback { serde_json::Value::Null } else { warnings(&spec, call) };
    mgr.control.update_service(id, version, spec, rollback, call.registry_auth.as_deref()).await?;
    json_response(StatusCode::OK, &serde_json::json!({"Warnings": warnings}))
}

pub async fn remove(node: &Arc<SwarmNode>, id: &str) -> Reply {
    let mgr = node.require_manager()?;
    mgr.control.remove_service(id).await?;
    super::ok_empty()
}

pub fn tasks(node: &Arc<SwarmNode>, call: &Call) -> Reply {
    let mgr = node.require_manager()?;
    let filters = Filters::parse(call.query.get("filters").map(String::as_str), TASK_FILTERS)?;
    json_response(StatusCode::OK, &mgr.control.tasks(&filters))
}

pub fn task(node: &Arc<SwarmNode>, id: &str) -> Reply {
    let mgr = node.require_manager()?;
    json_response(StatusCode::OK, &mgr.control.task(id)?)
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::docker_bool;

    #[test]
    fn insert_defaults_is_read_as_moby_reads_booleans() {
        for yes in ["1", "true", "True", "yes", " on "] {
            assert!(docker_bool(Some(&yes.to_string())), "{yes}");
        }
        for no in ["", "0", "false", "FALSE", "no", "none"] {
            assert!(!docker_bool(Some(&no.to_string())), "{no}");
        }
        assert!(!docker_bool(None));
    }
}
