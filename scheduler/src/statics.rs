//! The filters that depend only on a node's attributes (readiness,
//! constraints, platform), evaluated once per distinct placement and kept.
//!
//! Why: SwarmKit runs every filter on every node for every task (or task
//! group); with constraints that is a label lookup and string comparison per
//! node per task. The answer only changes when a node changes, so we compute
//! the list of nodes that pass once, keyed by the constraint strings and
//! platforms, and drop the cache whenever a node is added, updated or
//! removed. Many one-off tasks with the same placement then cost one cache
//! lookup each instead of a pass of string work over all nodes.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use shoal_api::task::Placement;
use shoal_api::Platform;

use crate::constraint::{node_matches, parse_constraints, Constraint};
use crate::filter::platform_supported;
use crate::nodeinfo::NodeInfo;

/// Beyond this many distinct placements the cache starts over, so a stream
/// of ever-different constraints cannot grow it without bound.
const MAX_ENTRIES: usize = 4096;

pub(crate) struct StaticFilter {
    constraint_src: Vec<String>,
    pub platforms: Vec<Platform>,
    /// `None` when the constraints do not parse: SwarmKit then disables the
    /// constraint filter (the API validated them already, so this is only
    /// reached by specs written around the API).
    pub constraints: Option<Vec<Constraint>>,
    /// Indices of the nodes passing readiness, constraints and platform,
    /// ascending.
    pub candidates: Vec<u32>,
}

#[derive(Default)]
pub(crate) struct StaticCache {
    entries: HashMap<u64, Vec<Arc<StaticFilter>>>,
    len: usize,
}

impl StaticCache {
    pub fn clear(&mut self) {
        self.entries.clear();
        self.len = 0;
    }

    pub fn get(&mut self, nodes: &[NodeInfo], placement: Option<&Placement>) -> Arc<StaticFilter> {
        let (cons, plats): (&[String], &[Platform]) = match placement {
            Some(p) => (&p.constraints, &p.platforms),
            None => (&[], &[]),
        };
        let mut h = DefaultHasher::new();
        cons.hash(&mut h);
        for p in plats {
            p.architecture.hash(&mut h);
            p.os.hash(&mut h);
        }
        let key = h.finish();
        if let Some(hit) = self.entries.get(&key).and_then(|v| v.iter().find(|e| e.constraint_src == cons && e.platforms == plats)) {
            return hit.clone();
        }
        if self.len >= MAX_ENTRIES {
            self.clear();
        }
        let constraints = if cons.is_empty() { None } else { parse_constraints(cons).ok() };
        let candidates = nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| {
                n.accepts_tasks() && constraints.as_deref().is_none_or(|c| node_matches(c, n)) && platform_supported(plats, &n.platform)
            })
            .map(|(i, _)| i as u32)
            .collect();
        let entry = Arc::new(StaticFilter { constraint_src: cons.to_vec(), platforms: plats.to_vec(), constraints, candidates });
        self.entries.entry(key).or_default().push(entry.clone());
        self.len += 1;
        entry
    }
}
