//! `GET /containers/{id}/stats`: what `docker stats` reads, sampled from
//! the container's cgroup and network namespace (`shoal_worker::stats`).
//! Streamed once a second by default; `stream=false` answers one object
//! whose `precpu_stats` is a sample taken a second earlier (so the CLI can
//! compute a CPU percentage), or without that wait with `one-shot=true`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::{Response, StatusCode};
use shoal_api::ApiError;
use shoal_worker::stats::{self, CgroupDirs, Sample};
use tokio::sync::mpsc;

use super::logs::StreamBody;
use super::Call;
use crate::swarm::SwarmNode;

const EVERY: Duration = Duration::from_secs(1);

pub fn serve(node: &Arc<SwarmNode>, key: &str, call: &Call) -> Result<Response<StreamBody>, ApiError> {
    let r = super::containers::find(node, key)?;
    let stream = !matches!(call.query.get("stream").map(String::as_str), Some("0" | "false" | "False"));
    let one_shot = call.query_bool("one-shot");
    if one_shot && stream {
        return Err(ApiError::bad_request("cannot have stream=true and one-shot=true"));
    }
    let dirs = CgroupDirs::of(std::path::Path::new("/sys/fs/cgroup"), &node.tasks.executor().cgroup_path(&r.id));
    let containers = node.tasks.containers().clone();
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        let take = |running: bool, pid: i32| {
            let dirs = dirs.clone();
            async move {
                if !running {
                    return (shoal_api::time::now_rfc3339(), Sample::default());
                }
                let s = tokio::task::spawn_blocking(move || stats::sample(&dirs, pid)).await.unwrap_or_default();
                (shoal_api::time::now_rfc3339(), s)
            }
        };
        let line = |v: serde_json::Value| {
            let mut t = v.to_string();
            t.push('\n');
            Bytes::from(t)
        };
        let mut pre: Option<(String, Sample)> = None;
        if !stream && !one_shot && r.running() {
            pre = Some(take(true, r.pid).await);
            tokio::time::sleep(EVERY).await;
        }
        loop {
            let now = containers.get(&r.id).ok();
            let running = now.as_ref().is_some_and(|c| c.running());
            let (at, s) = take(running, r.pid).await;
            let v = stats::to_json(&r.id, &r.name, &at, &s, pre.as_ref().map(|(t, p)| (t.as_str(), p)));
            if tx.send(line(v)).await.is_err() || !stream || !running {
                return;
            }
            pre = Some((at, s));
            tokio::select! {
                _ = tokio::time::sleep(EVERY) => {}
                _ = tx.closed() => return,
            }
        }
    });
    let mut resp = Response::new(StreamBody::new(rx));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert("Content-Type", "application/json".parse().expect("static header"));
    Ok(resp)
}
