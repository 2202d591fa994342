//! `/images`: what this node holds locally (`docker load`, `docker images`).

use std::sync::Arc;

use hyper::StatusCode;
use shoal_api::ApiError;
use shoal_worker::image::store::ImageRecord;
use shoal_worker::image::{ErrorKind, ImageError};

use super::{json_response, Call, Reply};
use crate::swarm::SwarmNode;

fn api_error(e: ImageError) -> ApiError {
    let status = match e.kind {
        ErrorKind::InvalidArgument | ErrorKind::Corrupt => 400,
        ErrorKind::NotFound => 404,
        ErrorKind::Unauthorized => 401,
        ErrorKind::Conflict => 409,
        ErrorKind::Unavailable => 503,
        _ => 500,
    };
    ApiError::new(status, e.message)
}

/// `POST /images/load`: the body is a `docker save` or OCI image archive.
/// Answers with Docker's JSON message stream (`{"stream": "Loaded image: x\n"}`).
pub async fn load(node: &Arc<SwarmNode>, archive: &std::path::Path) -> Reply {
    let images = node.images.clone();
    let archive = archive.to_path_buf();
    let loaded = tokio::task::spawn_blocking(move || images.load(&archive).map_err(api_error))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    let mut out = String::new();
    for img in loaded {
        for m in img.messages() {
            out.push_str(&serde_json::json!({ "stream": format!("{m}\n") }).to_string());
            out.push('\n');
        }
    }
    let mut r = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(out)));
    r.headers_mut().insert("Content-Type", "application/json".parse().expect("static header"));
    Ok(r)
}

/// `GET /images/json`, in Docker's shape (familiar short names).
pub fn list(node: &Arc<SwarmNode>, api: super::version::ApiVersion) -> Reply {
    let list: Vec<serde_json::Value> = node
        .images
        .list()
        .iter()
        .map(|r| {
            let mut j = summary(r, r.size, -1, -1);
            super::version::image_summary(&mut j, api);
            j
        })
        .collect();
    json_response(StatusCode::OK, &list)
}

/// Docker's `ImageSummary` of `r` (`/images/json`, `/system/df`), with
/// its size, shared size and container count (-1: not computed).
pub fn summary(r: &ImageRecord, size: u64, shared: i64, containers: i64) -> serde_json::Value {
    serde_json::json!({
        "Id": r.id.to_string(),
        "ParentId": "",
        "RepoTags": r.repo_tags.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
        "RepoDigests": r.repo_digests.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
        "Created": unix_seconds(r.created.as_deref()),
        "Size": size,
        "SharedSize": shared,
        "Labels": {},
        "Containers": containers,
    })
}

/// `GET /distribution/{name}/json`: the registry's descriptor and platforms
/// for `name`, as moby answers (any node answers, as any Docker engine
/// does). Registry credentials come in `X-Registry-Auth`; unreadable ones
/// are ignored, as moby ignores them here.
pub async fn distribution(node: &Arc<SwarmNode>, name: String, registry_auth: Option<&str>) -> Reply {
    let auth = registry_auth.and_then(|h| shoal_worker::image::AuthConfig::from_header(h).ok().flatten());
    let images = node.images.clone();
    let answer = tokio::task::spawn_blocking(move || images.distribution_inspect(&name, auth.as_ref()))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    match answer {
        Ok(inspect) => json_response(StatusCode::OK, &inspect),
        Err(e) => Err(ApiError::new(e.status, e.message)),
    }
}

/// Docker's familiar form of a full reference (`docker.io/library/x:1` is
/// `x:1`).
fn familiar(r: &str) -> String {
    r.trim_start_matches("docker.io/library/").trim_start_matches("docker.io/").to_string()
}

fn unix_seconds(rfc3339: Option<&str>) -> i64 {
    rfc3339
        .and_then(shoal_api::time::parse_rfc3339)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The image's config blob as JSON (its digest is the image ID).
fn config_json(node: &SwarmNode, record: &ImageRecord) -> Result<serde_json::Value, ApiError> {
    let bytes = node.images.store().read_blob(&record.id).map_err(api_error)?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::internal(format!("image {}: config: {e}", record.id)))
}

fn lookup(node: &SwarmNode, name: &str) -> Result<ImageRecord, ApiError> {
    node.images.store().lookup(name).ok_or_else(|| ApiError::not_found(format!("No such image: {name}")))
}

/// `GET /images/{name}/json`, in Docker's shape.
pub fn inspect(node: &Arc<SwarmNode>, name: &str, api: super::version::ApiVersion) -> Reply {
    let r = lookup(node, name)?;
    let config = config_json(node, &r)?;
    let mut j = serde_json::json!({
        "Id": r.id.to_string(),
        "RepoTags": r.repo_tags.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
        "RepoDigests": r.repo_digests.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
        "Parent": "",
        "Comment": config.get("comment").cloned().unwrap_or_else(|| "".into()),
        "Created": config.get("created").cloned().unwrap_or_else(|| "".into()),
        "DockerVersion": config.get("docker_version").cloned().unwrap_or_else(|| "".into()),
        "Author": config.get("author").cloned().unwrap_or_else(|| "".into()),
        "Config": config.get("config").cloned().unwrap_or(serde_json::Value::Null),
        "Architecture": r.architecture,
        "Os": r.os,
        "Size": r.size,
        "GraphDriver": { "Name": "overlay2", "Data": null },
        "RootFS": { "Type": "layers", "Layers": r.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>() },
        "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" },
    });
    if let Some(v) = config.get("variant") {
        j["Variant"] = v.clone();
    }
    super::version::image_inspect(&mut j, api);
    json_response(StatusCode::OK, &j)
}

/// `GET /images/{name}/history`: the config's history, newest first, each
/// step that made a layer with that layer's unpacked size; the top one
/// carries the image ID and tags, the others `<missing>` (as for every
/// pulled image in Docker).
pub fn history(node: &Arc<SwarmNode>, name: &str) -> Reply {
    let r = lookup(node, name)?;
    let config = config_json(node, &r)?;
    let steps = config.get("history").and_then(|h| h.as_array()).cloned().unwrap_or_default();
    let mut layers = r.diff_ids.iter();
    let mut out: Vec<serde_json::Value> = steps
        .iter()
        .map(|s| {
            let empty = s.get("empty_layer").and_then(|e| e.as_bool()).unwrap_or(false);
            let size =
                if empty { 0 } else { layers.next().map(|d| shoal_worker::image::unpack::layer_size(node.images.store(), d)).unwrap_or(0) };
            serde_json::json!({
                "Id": "<missing>",
                "Created": unix_seconds(s.get("created").and_then(|c| c.as_str())),
                "CreatedBy": s.get("created_by").and_then(|c| c.as_str()).unwrap_or(""),
                "Tags": null,
                "Size": size,
                "Comment": s.get("comment").and_then(|c| c.as_str()).unwrap_or(""),
            })
        })
        .collect();
    out.reverse();
    match out.first_mut() {
        Some(top) => {
            top["Id"] = r.id.to_string().into();
            top["Tags"] = serde_json::json!(r.repo_tags.iter().map(|t| familiar(t)).collect::<Vec<_>>());
        }
        // An image without history (some archives): one line for it.
        None => out.push(serde_json::json!({
            "Id": r.id.to_string(), "Created": unix_seconds(r.created.as_deref()), "CreatedBy": "",
            "Tags": r.repo_tags.iter().map(|t| familiar(t)).collect::<Vec<_>>(), "Size": r.size, "Comment": "",
        })),
    }
    json_response(StatusCode::OK, &out)
}

/// Docker's refusal to delete an image a container of this node uses:
/// `None` when the removal may go ahead. Removing one of several tags only
/// untags, which is always allowed.
fn in_use(node: &SwarmNode, name: &str, r: &ImageRecord, force: bool) -> Option<ApiError> {
    // Named by one of its tags, read as the worker's `remove` reads it.
    let by_tag = shoal_worker::image::reference::Reference::parse(name)
        .ok()
        .filter(|n| n.digest().is_none())
        .is_some_and(|n| r.repo_tags.contains(&n.with_default_tag().to_string()));
    if by_tag && r.repo_tags.len() > 1 {
        return None;
    }
    let id = r.id.to_string();
    let users: Vec<shoal_worker::containers::ContainerRecord> =
        node.tasks.containers().list().into_iter().filter(|c| c.image_id == id).collect();
    let short = |s: &str| s.trim_start_matches("sha256:").chars().take(12).collect::<String>();
    if let Some(c) = users.iter().find(|c| c.running()) {
        return Some(ApiError::new(
            409,
            format!(
                "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
                short(&id),
                short(&c.id)
            ),
        ));
    }
    match users.first() {
        Some(c) if !force => Some(ApiError::new(
            409,
            format!(
                "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                short(&c.id),
                short(&id)
            ),
        )),
        _ => None,
    }
}

/// `DELETE /images/{name}?force=&noprune=`: Docker's list of
/// `{"Untagged": …}` and `{"Deleted": …}`.
pub async fn remove(node: &Arc<SwarmNode>, name: &str, call: &Call) -> Reply {
    let r = lookup(node, name)?;
    if let Some(e) = in_use(node, name, &r, call.query_bool("force")) {
        return Err(e);
    }
    let images = node.images.clone();
    let n = name.to_string();
    let lines =
        tokio::task::spawn_blocking(move || images.remove(&n)).await.map_err(|e| ApiError::internal(e.to_string()))?.map_err(api_error)?;
    json_response(StatusCode::OK, &deleted_items(&lines))
}

/// The worker's `Untagged: x` / `Deleted: y` lines as Docker's items.
fn deleted_items(lines: &[String]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .filter_map(|l| {
            if let Some(x) = l.strip_prefix("Untagged: ") {
                Some(serde_json::json!({ "Untagged": x }))
            } else {
                l.strip_prefix("Deleted: ").map(|x| serde_json::json!({ "Deleted": x }))
            }
        })
        .collect()
}

/// moby's filters for `POST /images/prune`.
const PRUNE_FILTERS: &[&str] = &["dangling", "label", "label!", "until"];

/// `POST /images/prune?filters=`: images no container of this node uses,
/// only the untagged ones unless `dangling=false` (`docker image prune -a`).
pub async fn prune(node: &Arc<SwarmNode>, call: &Call) -> Reply {
    let f = shoal_api::filters::Filters::parse(call.query.get("filters").map(String::as_str), PRUNE_FILTERS)?;
    if !f.get("until").is_empty() || !f.get("label").is_empty() || !f.get("label!").is_empty() {
        // Images keep no labels or creation-on-this-node time here yet.
        return Err(ApiError::bad_request("image prune: the until, label and label! filters are not supported by this node"));
    }
    let only_dangling = !f.get("dangling").iter().any(|v| matches!(v.as_str(), "false" | "0"));
    let used: std::collections::HashSet<String> = node.tasks.containers().list().into_iter().map(|c| c.image_id).collect();
    let (mut items, mut reclaimed) = (Vec::new(), 0u64);
    for r in node.images.list() {
        if used.contains(&r.id.to_string()) || (only_dangling && !r.repo_tags.is_empty()) {
            continue;
        }
        // By each tag in turn (the last one deletes), or by ID if none.
        let names: Vec<String> = if r.repo_tags.is_empty() { vec![r.id.to_string()] } else { r.repo_tags.clone() };
        let images = node.images.clone();
        let removed = tokio::task::spawn_blocking(move || {
            let mut lines = Vec::new();
            for n in names {
                lines.extend(images.remove(&n)?);
            }
            Ok::<_, ImageError>(lines)
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
        if let Ok(lines) = removed {
            reclaimed += r.size;
            items.extend(deleted_items(&lines));
        }
    }
    json_response(StatusCode::OK, &serde_json::json!({ "ImagesDeleted": items, "SpaceReclaimed": reclaimed }))
}

/// `POST /images/create?fromImage=&tag=&platform=`: `docker pull`, with
/// Docker's JSON progress stream (the CLI draws its bars from it). An error
/// after the stream began ends it with Docker's `errorDetail` message.
/// Importing (`fromSrc`) is refused by name.
pub fn create(node: &Arc<SwarmNode>, call: &Call) -> Result<hyper::Response<super::logs::StreamBody>, ApiError> {
    if call.query.get("fromSrc").is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::new(501, "importing images (fromSrc) is not supported by this node"));
    }
    let from =
        call.query.get("fromImage").filter(|s| !s.is_empty()).ok_or_else(|| ApiError::bad_request("fromImage or fromSrc is required"))?;
    let reference = match call.query.get("tag").filter(|t| !t.is_empty()) {
        // A tag that is a digest joins with `@`, as the CLI sends it.
        Some(t) if t.contains(':') => format!("{from}@{t}"),
        Some(t) => format!("{from}:{t}"),
        None => from.clone(),
    };
    if let Some(p) = call.query.get("platform").filter(|p| !p.is_empty()) {
        let host = node.images.platform();
        let want: Vec<&str> = p.split('/').collect();
        if want.first() != Some(&host.os.as_str()) || want.get(1).is_some_and(|a| *a != host.architecture) {
            return Err(ApiError::bad_request(format!(
                "pulling for platform {p} is not supported by this node (it runs {}/{})",
                host.os, host.architecture
            )));
        }
    }
    let auth = call.registry_auth.as_deref().and_then(|h| shoal_worker::image::AuthConfig::from_header(h).ok().flatten());
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(64);
    let images = node.images.clone();
    tokio::task::spawn_blocking(move || {
        let send = |v: serde_json::Value| {
            let mut line = v.to_string();
            line.push_str("\r\n");
            let _ = tx.blocking_send(bytes::Bytes::from(line));
        };
        let pulled = images.pull_with_progress(&reference, auth.as_ref(), &mut |m| send(progress_json(&m)));
        if let Err(e) = pulled {
            send(serde_json::json!({ "errorDetail": { "message": e.message }, "error": e.message }));
        }
    });
    let mut resp = hyper::Response::new(super::logs::StreamBody::new(rx));
    resp.headers_mut().insert("Content-Type", "application/json".parse().expect("static header"));
    Ok(resp)
}

/// One progress message as Docker's JSON stream writes it.
fn progress_json(m: &shoal_worker::image::ProgressMessage) -> serde_json::Value {
    let mut j = serde_json::json!({ "status": m.status });
    if let Some(id) = &m.id {
        j["id"] = id.clone().into();
    }
    if m.current.is_some() || m.total.is_some() {
        let mut d = serde_json::Map::new();
        if let Some(c) = m.current {
            d.insert("current".into(), c.into());
        }
        if let Some(t) = m.total {
            d.insert("total".into(), t.into());
        }
        j["progressDetail"] = d.into();
    } else if m.id.is_some() {
        j["progressDetail"] = serde_json::json!({});
    }
    j
}
