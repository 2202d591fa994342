//! `docker kill|stop|wait|rm` on a node's task containers. A task container
//! stopped, killed or removed by hand ends its task with the container's
//! exit code, and the orchestrator replaces it under the service's restart
//! policy, as in Docker Swarm. `docker restart` of a task container is
//! refused by name: the orchestrator owns its restarts. Standalone
//! containers (`docker run`) are removed and restarted here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::StatusCode;
use shoal_api::ApiError;
use shoal_worker::containers::ContainerRecord;

use bytes::Bytes;
use hyper::Response;
use tokio::sync::mpsc;

use super::containers::find;
use super::logs::StreamBody;
use super::{empty_response, Call, Reply};
use crate::swarm::SwarmNode;

/// The signals `kill` takes by name (with or without `SIG`), as Linux
/// numbers them.
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// A signal as the API takes it (`KILL`, `SIGKILL`, `9`), as a number;
/// moby's "Invalid signal" otherwise.
pub fn parse_signal(s: &str) -> Result<i32, ApiError> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let name = s.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    SIGNALS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v).ok_or_else(|| ApiError::bad_request(format!("Invalid signal: {s}")))
}

fn signal(node: &SwarmNode, r: &ContainerRecord, sig: i32) -> Result<(), ApiError> {
    // moby's `kill` event, with the signal's number.
    node.tasks.containers().note(&r.id, "kill", &[("signal", sig.to_string())]);
    node.tasks.executor().runc().kill(&r.id, &sig.to_string()).map_err(|e| {
        // It ended meanwhile.
        if node.tasks.containers().get(&r.id).is_ok_and(|c| !c.running()) {
            ApiError::conflict(format!("container {} is not running", r.id))
        } else {
            ApiError::internal(e)
        }
    })
}

/// The container's exit code once it has ended, waiting up to `limit`.
async fn exited(node: &SwarmNode, id: &str, limit: Option<Duration>) -> Option<i32> {
    let start = Instant::now();
    loop {
        match node.tasks.containers().get(id) {
            Ok(c) if c.exit_code.is_some() => return c.exit_code,
            Ok(_) => {}
            // Removed: a standalone one's code is kept a while.
            Err(_) => return node.standalone.removed_exit_code(id),
        }
        if limit.is_some_and(|l| start.elapsed() >= l) {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `POST /containers/{id}/kill?signal=`.
pub async fn kill(node: &Arc<SwarmNode>, key: &str, call: &Call) -> Reply {
    let r = find(node, key)?;
    let sig = parse_signal(call.query.get("signal").filter(|s| !s.is_empty()).map(String::as_str).unwrap_or("KILL"))?;
    if !r.running() {
        return Err(ApiError::conflict(format!("cannot kill container: {key}: container {} is not running", r.id)));
    }
    signal(node, &r, sig)?;
    empty_response(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/stop?t=&signal=`: the stop signal (the
/// container's, or SIGTERM), then SIGKILL after `t` seconds (10 by
/// default; -1 waits for ever). 304 if it was not running.
pub async fn stop(node: &Arc<SwarmNode>, key: &str, call: &Call) -> Reply {
    let r = find(node, key)?;
    let t: i64 = match call.query.get("t").filter(|s| !s.is_empty()) {
        Some(v) => v.parse().map_err(|_| ApiError::bad_request(format!("strconv.Atoi: parsing {v:?}: invalid syntax")))?,
        None => 10,
    };
    let stop_signal = call.query.get("signal").filter(|s| !s.is_empty()).cloned().unwrap_or_else(|| {
        if r.stop_signal.is_empty() {
            "SIGTERM".into()
        } else {
            r.stop_signal.clone()
        }
    });
    let sig = parse_signal(&stop_signal)?;
    if !r.running() {
        return empty_response(StatusCode::NOT_MODIFIED);
    }
    signal(node, &r, sig)?;
    let grace = (t >= 0).then(|| Duration::from_secs(t as u64));
    if exited(node, &r.id, grace).await.is_none() && node.tasks.containers().get(&r.id).is_ok_and(|c| c.running()) {
        signal(node, &r, 9)?;
        exited(node, &r.id, Some(Duration::from_secs(30))).await;
    }
    node.tasks.containers().note(&r.id, "stop", &[]);
    empty_response(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/wait?condition=`: blocks until the container has
/// ended (`not-running`, the default, answers at once for one that is not
/// running; `next-exit` waits for the run to end; `removed` also for its
/// removal). As Docker's, the headers go out at once and the body when the
/// wait is over: the docker CLI's `run` sends its `start` only once its
/// wait has been answered.
pub async fn wait(node: &Arc<SwarmNode>, key: &str, call: &Call) -> Result<Response<StreamBody>, ApiError> {
    let r = find(node, key)?;
    let condition = call.query.get("condition").cloned().unwrap_or_default();
    if !matches!(condition.as_str(), "" | "not-running" | "next-exit" | "removed") {
        return Err(ApiError::bad_request(format!("invalid condition: {condition:?}")));
    }
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    let node = node.clone();
    tokio::spawn(async move {
        let code = if matches!(condition.as_str(), "" | "not-running") && !r.running() {
            r.exit_code.unwrap_or(0)
        } else {
            // A client that leaves ends the wait.
            tokio::select! {
                code = exited(&node, &r.id, None) => code.or(r.exit_code).unwrap_or(137),
                _ = tx.closed() => return,
            }
        };
        if condition == "removed" {
            while node.tasks.containers().get(&r.id).is_ok() {
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let body = serde_json::json!({ "StatusCode": code, "Error": null });
        let _ = tx.send(Bytes::from(format!("{body}\n"))).await;
    });
    let mut resp = Response::new(StreamBody::new(rx));
    resp.headers_mut().insert("Content-Type", "application/json".parse().expect("static header"));
    Ok(resp)
}

/// `DELETE /containers/{id}?force=`: a running one only with `force`
/// (killed first); the container then leaves every list.
pub async fn remove(node: &Arc<SwarmNode>, key: &str, call: &Call) -> Reply {
    let r = find(node, key)?;
    if r.running() {
        if !call.query_bool("force") {
            return Err(ApiError::conflict(format!(
                "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                r.name
            )));
        }
        signal(node, &r, 9)?;
        exited(node, &r.id, Some(Duration::from_secs(30))).await;
    }
    if r.is_task() {
        node.tasks.containers().forget(&r.id);
    } else {
        node.standalone.remove(&r.id);
    }
    empty_response(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/restart?t=`: a standalone container is stopped
/// (as `stop`) and started again; refused for task containers.
pub async fn restart(node: &Arc<SwarmNode>, key: &str, call: &Call) -> Reply {
    let r = find(node, key)?;
    if !r.is_task() {
        if r.running() {
            let resp = stop(node, key, call).await?;
            if resp.status() != StatusCode::NO_CONTENT && resp.status() != StatusCode::NOT_MODIFIED {
                return Ok(resp);
            }
        }
        super::standalone::run_blocking(node, &r.id)
            .await
            .map_err(|e| ApiError::new(e.status, format!("Cannot restart container {key}: {}", e.message)))?;
        return empty_response(StatusCode::NO_CONTENT);
    }
    Err(ApiError::bad_request(format!(
        "cannot restart container {}: it is the task {} of service {}, which the orchestrator restarts (docker service update --force {})",
        r.name, r.task_id, r.service_name, r.service_name
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_read_as_docker_reads_them() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), 10);
        assert_eq!(parse_signal("3").unwrap(), 3);
        assert_eq!(parse_signal("NOPE").unwrap_err().message, "Invalid signal: NOPE");
        assert!(parse_signal("0").is_err() && parse_signal("99").is_err());
    }
}
