//! The route label of `engine_daemon_api_request_duration_seconds`: each
//! request's path as one of a fixed set of Engine API templates
//! (`/services/{id}/update`), never the raw path, so the number of series
//! stays bounded whatever clients send. Matching borrows the path and
//! allocates nothing.

use hyper::Method;

/// A pattern segment: a literal, one segment (`{id}`), or one or more
/// (image names hold slashes).
#[derive(Clone, Copy)]
enum Seg {
    Lit(&'static str),
    One,
    Many,
}
use Seg::{Lit, Many, One};

/// Templates in matching order: literals before the patterns they would
/// also match (`/images/json` before `/images/{name}`).
const ROUTES: &[(&str, &[Seg])] = &[
    ("/_ping", &[Lit("_ping")]),
    ("/version", &[Lit("version")]),
    ("/info", &[Lit("info")]),
    ("/events", &[Lit("events")]),
    ("/system/df", &[Lit("system"), Lit("df")]),
    ("/auth", &[Lit("auth")]),
    ("/swarm", &[Lit("swarm")]),
    ("/swarm/init", &[Lit("swarm"), Lit("init")]),
    ("/swarm/join", &[Lit("swarm"), Lit("join")]),
    ("/swarm/leave", &[Lit("swarm"), Lit("leave")]),
    ("/swarm/update", &[Lit("swarm"), Lit("update")]),
    ("/swarm/unlockkey", &[Lit("swarm"), Lit("unlockkey")]),
    ("/swarm/unlock", &[Lit("swarm"), Lit("unlock")]),
    ("/nodes", &[Lit("nodes")]),
    ("/nodes/{id}", &[Lit("nodes"), One]),
    ("/nodes/{id}/update", &[Lit("nodes"), One, Lit("update")]),
    ("/services", &[Lit("services")]),
    ("/services/create", &[Lit("services"), Lit("create")]),
    ("/services/{id}", &[Lit("services"), One]),
    ("/services/{id}/update", &[Lit("services"), One, Lit("update")]),
    ("/services/{id}/logs", &[Lit("services"), One, Lit("logs")]),
    ("/tasks", &[Lit("tasks")]),
    ("/tasks/{id}", &[Lit("tasks"), One]),
    ("/tasks/{id}/logs", &[Lit("tasks"), One, Lit("logs")]),
    ("/secrets", &[Lit("secrets")]),
    ("/secrets/create", &[Lit("secrets"), Lit("create")]),
    ("/secrets/{id}", &[Lit("secrets"), One]),
    ("/secrets/{id}/update", &[Lit("secrets"), One, Lit("update")]),
    ("/configs", &[Lit("configs")]),
    ("/configs/create", &[Lit("configs"), Lit("create")]),
    ("/configs/{id}", &[Lit("configs"), One]),
    ("/configs/{id}/update", &[Lit("configs"), One, Lit("update")]),
    ("/networks", &[Lit("networks")]),
    ("/networks/create", &[Lit("networks"), Lit("create")]),
    ("/networks/prune", &[Lit("networks"), Lit("prune")]),
    ("/networks/{id}", &[Lit("networks"), One]),
    ("/networks/{id}/connect", &[Lit("networks"), One, Lit("connect")]),
    ("/networks/{id}/disconnect", &[Lit("networks"), One, Lit("disconnect")]),
    ("/containers/json", &[Lit("containers"), Lit("json")]),
    ("/containers/create", &[Lit("containers"), Lit("create")]),
    ("/containers/prune", &[Lit("containers"), Lit("prune")]),
    ("/containers/{id}", &[Lit("containers"), One]),
    ("/containers/{id}/json", &[Lit("containers"), One, Lit("json")]),
    ("/containers/{id}/logs", &[Lit("containers"), One, Lit("logs")]),
    ("/containers/{id}/top", &[Lit("containers"), One, Lit("top")]),
    ("/containers/{id}/stats", &[Lit("containers"), One, Lit("stats")]),
    ("/containers/{id}/exec", &[Lit("containers"), One, Lit("exec")]),
    ("/containers/{id}/start", &[Lit("containers"), One, Lit("start")]),
    ("/containers/{id}/stop", &[Lit("containers"), One, Lit("stop")]),
    ("/containers/{id}/restart", &[Lit("containers"), One, Lit("restart")]),
    ("/containers/{id}/kill", &[Lit("containers"), One, Lit("kill")]),
    ("/containers/{id}/wait", &[Lit("containers"), One, Lit("wait")]),
    ("/containers/{id}/attach", &[Lit("containers"), One, Lit("attach")]),
    ("/containers/{id}/resize", &[Lit("containers"), One, Lit("resize")]),
    ("/exec/{id}/start", &[Lit("exec"), One, Lit("start")]),
    ("/exec/{id}/resize", &[Lit("exec"), One, Lit("resize")]),
    ("/exec/{id}/json", &[Lit("exec"), One, Lit("json")]),
    ("/images/json", &[Lit("images"), Lit("json")]),
    ("/images/create", &[Lit("images"), Lit("create")]),
    ("/images/load", &[Lit("images"), Lit("load")]),
    ("/images/prune", &[Lit("images"), Lit("prune")]),
    ("/images/{name}/json", &[Lit("images"), Many, Lit("json")]),
    ("/images/{name}/history", &[Lit("images"), Many, Lit("history")]),
    ("/images/{name}", &[Lit("images"), Many]),
    ("/distribution/{name}/json", &[Lit("distribution"), Many, Lit("json")]),
    ("/volumes", &[Lit("volumes")]),
    ("/volumes/create", &[Lit("volumes"), Lit("create")]),
    ("/volumes/prune", &[Lit("volumes"), Lit("prune")]),
    ("/volumes/{name}", &[Lit("volumes"), One]),
];

/// What a path that matches no template is counted as.
pub const OTHER: &str = "other";

/// The most segments a matched path may have (a longer one is `other`).
const MAX_SEGS: usize = 16;

/// The template of `path` (with or without a `/vX.YY` prefix).
pub fn template(path: &str) -> &'static str {
    let mut segs = [""; MAX_SEGS];
    let mut n = 0;
    for s in path.split('/').filter(|s| !s.is_empty()) {
        if n == MAX_SEGS {
            return OTHER;
        }
        segs[n] = s;
        n += 1;
    }
    let mut segs = &segs[..n];
    if segs.first().and_then(|s| s.strip_prefix('v')).is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.')) {
        segs = &segs[1..];
    }
    ROUTES.iter().find(|(_, pattern)| matches(pattern, segs)).map(|(t, _)| *t).unwrap_or(OTHER)
}

fn matches(pattern: &[Seg], segs: &[&str]) -> bool {
    match (pattern.first(), segs.first()) {
        (None, None) => true,
        (Some(Lit(l)), Some(s)) => l == s && matches(&pattern[1..], &segs[1..]),
        (Some(One), Some(_)) => matches(&pattern[1..], &segs[1..]),
        // One or more segments, then the rest of the pattern.
        (Some(Many), Some(_)) => (1..=segs.len()).any(|k| matches(&pattern[1..], &segs[k..])),
        _ => false,
    }
}

/// The method label: the Engine API's methods, anything else `other`.
pub fn method(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        _ => OTHER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_templates() {
        for (path, want) in [
            ("/_ping", "/_ping"),
            ("/v1.44/services", "/services"),
            ("/v1.44/services/create", "/services/create"),
            ("/v1.41/services/abc123/update", "/services/{id}/update"),
            ("/services/web", "/services/{id}"),
            ("/v1.44/tasks/t1/logs", "/tasks/{id}/logs"),
            ("/v1.44/nodes/n1", "/nodes/{id}"),
            ("/images/json", "/images/json"),
            ("/v1.44/images/192.168.77.11:5000/busybox:latest/json", "/images/{name}/json"),
            ("/images/busybox", "/images/{name}"),
            ("/images/library/busybox", "/images/{name}"),
            ("/v1.44/distribution/192.168.77.11:5000/x/json", "/distribution/{name}/json"),
            ("/containers/abc/json", "/containers/{id}/json"),
            ("/exec/e1/start", "/exec/{id}/start"),
            ("/swarm/init", "/swarm/init"),
            ("/", OTHER),
            ("/v1.44", OTHER),
            ("/nope", OTHER),
            ("/services/a/b/c", OTHER),
            ("/distribution/json", OTHER),
            (&"/x".repeat(40), OTHER),
        ] {
            assert_eq!(template(path), want, "{path}");
        }
    }

    #[test]
    fn every_template_is_reachable_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for (t, _) in ROUTES {
            assert!(seen.insert(*t), "{t} twice");
            // The template itself, with placeholders as values, finds itself.
            let path = t.replace("{id}", "x1").replace("{name}", "n1");
            assert_eq!(template(&path), *t, "{path}");
        }
        assert_eq!(method(&Method::PATCH), OTHER);
        assert_eq!(method(&Method::GET), "GET");
    }
}
