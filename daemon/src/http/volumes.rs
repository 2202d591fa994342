//! `/volumes`: this node's local volumes (`docker volume ls|inspect|create|
//! rm|prune`), as a Docker engine answers for its `local` driver. A volume
//! is in use while a container of this node (running or ended, until it
//! is removed) mounts it; Docker refuses to remove or prune those.

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::StatusCode;
use serde::Deserialize;
use shoal_api::filters::Filters;
use shoal_api::ApiError;
use shoal_worker::containers::ContainerRecord;
use shoal_worker::volumes::{VolumeRecord, VolumeStore};

use super::{json_response, Call, Reply};
use crate::swarm::SwarmNode;

/// moby's filters for `GET /volumes`.
const LIST_FILTERS: &[&str] = &["dangling", "driver", "label", "name"];
/// moby's filters for `POST /volumes/prune` (`all` since API 1.42).
const PRUNE_FILTERS: &[&str] = &["label", "label!", "all"];

fn store(node: &SwarmNode) -> VolumeStore {
    node.tasks.executor().volumes().clone()
}

/// The volume in the Engine API's shape; `usage` for `/system/df`.
pub fn volume_json(store: &VolumeStore, v: &VolumeRecord, usage: Option<(u64, usize)>) -> serde_json::Value {
    let mut j = serde_json::json!({
        "CreatedAt": v.created_at,
        "Driver": v.driver,
        "Labels": v.labels,
        "Mountpoint": store.data_dir(&v.name).to_string_lossy(),
        "Name": v.name,
        "Options": {},
        "Scope": "local",
    });
    if let Some((size, refs)) = usage {
        j["UsageData"] = serde_json::json!({ "Size": size, "RefCount": refs });
    }
    j
}

/// The containers of this node that mount volume `name` (IDs).
pub fn users(containers: &[ContainerRecord], name: &str) -> Vec<String> {
    containers
        .iter()
        .filter(|c| {
            c.mounts.iter().any(|m| {
                m.r#type == "volume"
                    && (m.source == name || (m.source.is_empty() && shoal_worker::volumes::anonymous_name(&c.id, &m.target) == name))
            })
        })
        .map(|c| c.id.clone())
        .collect()
}

fn no_such_volume(name: &str) -> ApiError {
    ApiError::not_found(format!("get {name}: no such volume"))
}

/// `GET /volumes?filters=`.
pub fn list(node: &Arc<SwarmNode>, call: &Call) -> Reply {
    let f = Filters::parse(call.query.get("filters").map(String::as_str), LIST_FILTERS)?;
    for v in f.get("dangling") {
        if !matches!(v.as_str(), "true" | "false" | "1" | "0") {
            return Err(ApiError::bad_request(format!("invalid filter 'dangling={v}'")));
        }
    }
    let store = store(node);
    let containers = node.tasks.containers().list();
    let volumes: Vec<serde_json::Value> = store
        .list()
        .iter()
        .filter(|v| f.get("name").is_empty() || f.any("name", |n| v.name.contains(n)))
        .filter(|v| f.get("driver").is_empty() || f.any("driver", |d| v.driver == d))
        .filter(|v| f.labels_match("label", &v.labels))
        .filter(|v| {
            f.get("dangling").is_empty() || f.any("dangling", |d| matches!(d, "true" | "1") == users(&containers, &v.name).is_empty())
        })
        .map(|v| volume_json(&store, v, None))
        .collect();
    json_response(StatusCode::OK, &serde_json::json!({ "Volumes": volumes, "Warnings": [] }))
}

/// `GET /volumes/{name}`.
pub fn inspect(node: &Arc<SwarmNode>, name: &str) -> Reply {
    let store = store(node);
    let v = store.get(name).ok_or_else(|| no_such_volume(name))?;
    json_response(StatusCode::OK, &volume_json(&store, &v, None))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct CreateRequest {
    name: String,
    driver: String,
    driver_opts: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
    cluster_volume_spec: Option<serde_json::Value>,
}

/// `POST /volumes/create`: an existing volume of that name is returned as
/// it is (as Docker does); without a name one is made up.
pub fn create(node: &Arc<SwarmNode>, call: &Call) -> Reply {
    let req: CreateRequest = call.json()?;
    if req.cluster_volume_spec.as_ref().is_some_and(|v| !v.is_null()) {
        return Err(ApiError::bad_request("cluster volumes (ClusterVolumeSpec) are not supported by this node"));
    }
    let name = if req.name.is_empty() { random_name() } else { req.name };
    let store = store(node);
    store.ensure(&name, &req.driver, &req.driver_opts, &req.labels, false).map_err(ApiError::bad_request)?;
    let v = store.get(&name).ok_or_else(|| ApiError::internal(format!("create {name}: not found after creating it")))?;
    json_response(StatusCode::CREATED, &volume_json(&store, &v, None))
}

/// 64 hex digits, as Docker names a volume created without a name.
fn random_name() -> String {
    let b: [u8; 32] = rand::random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `DELETE /volumes/{name}?force=`.
pub fn remove(node: &Arc<SwarmNode>, name: &str, call: &Call) -> Reply {
    let store = store(node);
    if store.get(name).is_none() {
        if call.query_bool("force") {
            return super::empty_response(StatusCode::NO_CONTENT);
        }
        return Err(no_such_volume(name));
    }
    let using = users(&node.tasks.containers().list(), name);
    if !using.is_empty() {
        return Err(ApiError::new(409, format!("remove {name}: volume is in use - [{}]", using.join(", "))));
    }
    store.remove(name).map_err(ApiError::internal)?;
    super::empty_response(StatusCode::NO_CONTENT)
}

/// `POST /volumes/prune?filters=`: unused anonymous volumes, or every
/// unused volume with `all=true` (API 1.42 and later, as Docker).
pub fn prune(node: &Arc<SwarmNode>, call: &Call) -> Reply {
    let f = Filters::parse(call.query.get("filters").map(String::as_str), PRUNE_FILTERS)?;
    let all = f.get("all").iter().any(|v| matches!(v.as_str(), "true" | "1"));
    let store = store(node);
    let containers = node.tasks.containers().list();
    let (mut deleted, mut reclaimed) = (Vec::new(), 0u64);
    for v in store.list() {
        if !(all || v.anonymous) || !f.labels_match("label", &v.labels) || !users(&containers, &v.name).is_empty() {
            continue;
        }
        // `label!=k` / `label!=k=v`: volumes with that label stay.
        let excluded = f.get("label!").iter().any(|want| match want.split_once('=') {
            Some((k, val)) => v.labels.get(k).is_some_and(|x| x == val),
            None => v.labels.contains_key(want.as_str()),
        });
        if excluded {
            continue;
        }
        let size = dir_size(&store.data_dir(&v.name));
        if store.remove(&v.name).is_ok() {
            reclaimed += size;
            deleted.push(v.name);
        }
    }
    json_response(StatusCode::OK, &serde_json::json!({ "VolumesDeleted": deleted, "SpaceReclaimed": reclaimed }))
}

/// Bytes of the regular files under `dir` (symlinks not followed), as
/// `du` counts apparent sizes.
pub fn dir_size(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let Ok(meta) = e.path().symlink_metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_api::task::Mount;

    fn container(id: &str, mounts: &[(&str, &str)]) -> ContainerRecord {
        ContainerRecord {
            id: id.into(),
            mounts: mounts
                .iter()
                .map(|(s, t)| Mount { r#type: "volume".into(), source: s.to_string(), target: t.to_string(), ..Default::default() })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_volume_is_used_by_containers_that_mount_it_by_name_or_anonymously() {
        let cs = [container("c1", &[("data", "/data")]), container("c2", &[("", "/cache")]), container("c3", &[])];
        assert_eq!(users(&cs, "data"), ["c1"]);
        assert_eq!(users(&cs, &shoal_worker::volumes::anonymous_name("c2", "/cache")), ["c2"]);
        assert!(users(&cs, "other").is_empty());
    }

    #[test]
    fn sizes_count_files_below_without_following_links() {
        let dir = std::env::temp_dir().join(format!("shoal-volsize-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("a/x"), vec![0u8; 100]).unwrap();
        std::fs::write(dir.join("a/b/y"), vec![0u8; 23]).unwrap();
        std::os::unix::fs::symlink("/etc", dir.join("link")).unwrap();
        assert_eq!(dir_size(&dir), 123);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
