//! `/images`: what this node holds locally (`docker load`, `docker images`).

use std::sync::Arc;

use hyper::StatusCode;
use shoal_api::ApiError;
use shoal_worker::image::{ErrorKind, ImageError};

use super::{json_response, Reply};
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
pub fn list(node: &Arc<SwarmNode>) -> Reply {
    let short = |r: &str| r.trim_start_matches("docker.io/library/").trim_start_matches("docker.io/").to_string();
    let list: Vec<serde_json::Value> = node
        .images
        .list()
        .into_iter()
        .map(|r| {
            let created = r
                .created
                .as_deref()
                .and_then(shoal_api::time::parse_rfc3339)
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
                .unwrap_or(0);
            serde_json::json!({
                "Id": r.id.to_string(),
                "ParentId": "",
                "RepoTags": r.repo_tags.iter().map(|t| short(t)).collect::<Vec<_>>(),
                "RepoDigests": r.repo_digests.iter().map(|t| short(t)).collect::<Vec<_>>(),
                "Created": created,
                "Size": r.size,
                "SharedSize": -1,
                "Labels": {},
                "Containers": -1,
            })
        })
        .collect();
    json_response(StatusCode::OK, &list)
}
