//! Bounds on what a node writes into the Raft log through the dispatcher.
//!
//! Node descriptions and task states come from workers, which the managers
//! do not trust with the log's size: every byte they send is replicated to
//! every manager and kept in every snapshot. So a description has a size
//! cap and changes at most once per `DESCRIPTION_INTERVAL` (later changes
//! wait, the newest wins), and the free texts of a task state are cut to a
//! few KiB.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use shoal_api::task::TaskStatus;
use shoal_api::{ApiError, NodeDescription};

/// A description's JSON size cap (a real one is 1-3 KiB).
pub const MAX_DESCRIPTION_BYTES: usize = 64 << 10;
/// The fewest time between two description writes of one node.
pub const DESCRIPTION_INTERVAL: Duration = Duration::from_secs(10);
/// A task state's `Message` and `Err` are cut to this many bytes.
pub const MAX_STATUS_TEXT: usize = 4 << 10;

pub fn check_description(d: &NodeDescription) -> Result<(), ApiError> {
    let size = serde_json::to_vec(d).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_DESCRIPTION_BYTES {
        return Err(ApiError::bad_request(format!("node description too large ({size} bytes, at most {MAX_DESCRIPTION_BYTES})")));
    }
    Ok(())
}

/// Cuts the free texts of a reported task state to `MAX_STATUS_TEXT`.
pub fn bound_status(status: &mut TaskStatus) {
    cut(&mut status.message);
    cut(&mut status.err);
    // A task publishes at most what its service asked for; more is a
    // node's mistake or malice, and would be written to Raft.
    status.port_status.ports.truncate(MAX_PORT_STATUS);
    for p in &mut status.port_status.ports {
        cut(&mut p.name);
    }
}

/// Published ports a task status may carry (Docker allows one per port
/// and protocol; a service with more is not a real one).
pub const MAX_PORT_STATUS: usize = 1024;

fn cut(s: &mut String) {
    if s.len() <= MAX_STATUS_TEXT {
        return;
    }
    let mut end = MAX_STATUS_TEXT - '…'.len_utf8();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
}

/// Which description changes to write now, per node.
#[derive(Default)]
pub struct DescriptionGate {
    last_write: HashMap<String, Instant>,
    pending: HashMap<String, NodeDescription>,
}

impl DescriptionGate {
    /// A node reported `offered` (or nothing new with `None`). Returns the
    /// description to write now, if one is due: the newest offered, at most
    /// once per interval.
    pub fn take(&mut self, node: &str, offered: Option<NodeDescription>, now: Instant) -> Option<NodeDescription> {
        if let Some(d) = offered {
            self.pending.insert(node.to_string(), d);
        }
        if !self.pending.contains_key(node) {
            return None;
        }
        if self.last_write.get(node).is_some_and(|t| now.duration_since(*t) < DESCRIPTION_INTERVAL) {
            return None;
        }
        self.last_write.insert(node.to_string(), now);
        self.pending.remove(node)
    }

    /// Whether a description `node` reported still waits to be written.
    pub fn is_pending(&self, node: &str) -> bool {
        self.pending.contains_key(node)
    }

    /// Forgets nodes that are gone (a new leader starts empty anyway).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.last_write.retain(|k, _| keep(k));
        self.pending.retain(|k, _| keep(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(host: &str) -> NodeDescription {
        NodeDescription { hostname: host.into(), ..Default::default() }
    }

    #[test]
    fn an_oversized_description_is_refused_by_size() {
        assert!(check_description(&desc("node-1")).is_ok());
        let mut d = desc("node-1");
        d.engine.labels = (0..5000).map(|i| (format!("label-{i}"), "x".repeat(20))).collect();
        let e = check_description(&d).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.starts_with("node description too large ("), "{}", e.message);
    }

    #[test]
    fn description_changes_are_written_at_most_once_per_interval_and_the_newest_wins() {
        let mut g = DescriptionGate::default();
        let t0 = Instant::now();
        assert_eq!(g.take("n1", Some(desc("a")), t0).unwrap().hostname, "a");
        assert!(g.take("n1", Some(desc("b")), t0 + Duration::from_secs(1)).is_none());
        assert!(g.is_pending("n1") && !g.is_pending("n2"));
        assert!(g.take("n1", Some(desc("c")), t0 + Duration::from_secs(2)).is_none());
        assert!(g.take("n1", None, t0 + Duration::from_secs(5)).is_none());
        // Another node has its own budget.
        assert!(g.take("n2", Some(desc("x")), t0 + Duration::from_secs(5)).is_some());
        // Once the interval passed, the newest pending one is written, even
        // on a heartbeat that carries none.
        assert_eq!(g.take("n1", None, t0 + DESCRIPTION_INTERVAL).unwrap().hostname, "c");
        assert!(g.take("n1", None, t0 + DESCRIPTION_INTERVAL * 3).is_none(), "nothing pending");
    }

    #[test]
    fn long_status_texts_are_cut_on_a_character_boundary() {
        let mut s = TaskStatus { err: "é".repeat(10_000), message: "short".into(), ..Default::default() };
        bound_status(&mut s);
        assert!(s.err.len() <= MAX_STATUS_TEXT && s.err.ends_with('…'), "{}", s.err.len());
        assert_eq!(s.message, "short");
    }
}
