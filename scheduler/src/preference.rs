//! Placement preferences (`--placement-pref spread=node.labels.zone`) as
//! SwarmKit builds them (`nodeset.go`, `decision_tree.go`): a tree with one
//! level per preference, one branch per label value. A node without the
//! label goes to the `""` branch, so the tree's shape does not depend on
//! which nodes happen to carry the label. Descriptors other than
//! `node.labels.*` / `engine.labels.*` are ignored, as in SwarmKit.
//!
//! Every node counts toward its branch's task count (even one that cannot
//! take this task), but only candidates end up in a leaf.

use std::collections::BTreeMap;

use shoal_api::task::PlacementPreference;

use crate::constraint::{strip_prefix_ci, ENGINE_LABEL_PREFIX, NODE_LABEL_PREFIX};
use crate::nodeinfo::NodeInfo;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Spread<'a> {
    NodeLabel(&'a str),
    EngineLabel(&'a str),
}

impl Spread<'_> {
    fn value<'n>(&self, n: &'n NodeInfo) -> &'n str {
        let labels = match self {
            Spread::NodeLabel(_) => &n.labels,
            Spread::EngineLabel(_) => &n.engine_labels,
        };
        let (Spread::NodeLabel(l) | Spread::EngineLabel(l)) = self;
        labels.get(*l).map_or("", |s| s.as_str())
    }
}

/// The usable spread levels, in order.
pub(crate) fn spreads(prefs: &[PlacementPreference]) -> Vec<Spread<'_>> {
    prefs
        .iter()
        .filter_map(|p| {
            let d = p.spread.as_ref()?.spread_descriptor.as_str();
            strip_prefix_ci(d, NODE_LABEL_PREFIX)
                .map(Spread::NodeLabel)
                .or_else(|| strip_prefix_ci(d, ENGINE_LABEL_PREFIX).map(Spread::EngineLabel))
        })
        .collect()
}

/// One branch of the tree (an arena entry). A leaf has no `kids`.
#[derive(Debug, Default)]
pub(crate) struct Branch {
    /// Active tasks of the service on all nodes below, kept current as tasks
    /// land.
    pub tasks: u64,
    pub kids: Vec<usize>,
    /// Leaf only: the candidate nodes below, ascending.
    pub nodes: Vec<u32>,
}

/// Branches in an arena; the root is index 0.
pub(crate) struct Tree {
    pub branches: Vec<Branch>,
}

impl Tree {
    /// No preferences: one leaf holding every candidate.
    pub fn single(candidates: &[u32], tasks: u64) -> Tree {
        Tree { branches: vec![Branch { tasks, kids: Vec::new(), nodes: candidates.to_vec() }] }
    }

    /// Groups all nodes level by level; `svc[i]` is node i's count of the
    /// service, `candidate[i]` whether it passes the static filters.
    pub fn build(nodes: &[NodeInfo], levels: &[Spread], svc: &[u32], candidate: &[bool]) -> Tree {
        let mut t = Tree { branches: Vec::new() };
        let all: Vec<u32> = (0..nodes.len() as u32).collect();
        t.grow(nodes, levels, svc, candidate, all);
        t
    }

    fn grow(&mut self, nodes: &[NodeInfo], levels: &[Spread], svc: &[u32], candidate: &[bool], members: Vec<u32>) -> usize {
        let at = self.branches.len();
        let tasks = members.iter().map(|&i| u64::from(svc[i as usize])).sum();
        self.branches.push(Branch { tasks, ..Default::default() });
        match levels.split_first() {
            None => {
                self.branches[at].nodes = members.into_iter().filter(|&i| candidate[i as usize]).collect();
            }
            Some((level, rest)) => {
                // BTreeMap: branches in value order, so placement is repeatable.
                let mut groups: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
                for i in members {
                    groups.entry(level.value(&nodes[i as usize])).or_default().push(i);
                }
                for (_, group) in groups {
                    let kid = self.grow(nodes, rest, svc, candidate, group);
                    self.branches[at].kids.push(kid);
                }
            }
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_label_descriptors_make_levels() {
        let prefs = vec![
            PlacementPreference::spread("node.labels.zone"),
            PlacementPreference::spread("node.hostname"),
            PlacementPreference::default(),
            PlacementPreference::spread("Engine.Labels.rack"),
        ];
        assert_eq!(spreads(&prefs), vec![Spread::NodeLabel("zone"), Spread::EngineLabel("rack")]);
    }

    #[test]
    fn nested_levels_group_by_value_with_unlabelled_nodes_together() {
        let mut nodes = Vec::new();
        for (id, zone, rack) in [("a", "z1", "r1"), ("b", "z1", "r2"), ("c", "z2", "r1"), ("d", "", "")] {
            let mut n = NodeInfo::new(id);
            if !zone.is_empty() {
                n.labels.insert("zone".into(), zone.into());
                n.labels.insert("rack".into(), rack.into());
            }
            nodes.push(n);
        }
        let levels = [Spread::NodeLabel("zone"), Spread::NodeLabel("rack")];
        let t = Tree::build(&nodes, &levels, &[1, 0, 2, 0], &[true, true, false, true]);
        let root = &t.branches[0];
        assert_eq!(root.tasks, 3);
        // Branches "", "z1", "z2" in that order.
        let zones: Vec<&Branch> = root.kids.iter().map(|&k| &t.branches[k]).collect();
        assert_eq!(zones.len(), 3);
        assert_eq!(zones[1].tasks, 1);
        assert_eq!(zones[1].kids.len(), 2);
        let z2_leaf = &t.branches[zones[2].kids[0]];
        // Node c counts its tasks but is no candidate.
        assert_eq!((z2_leaf.tasks, z2_leaf.nodes.len()), (2, 0));
        let unlabelled = &t.branches[zones[0].kids[0]];
        assert_eq!(unlabelled.nodes, vec![3]);
    }
}
