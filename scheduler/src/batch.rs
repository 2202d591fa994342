//! Placing a group of identical tasks (one service version).
//!
//! Ranking is SwarmKit's: fewest tasks of this service on the node, then
//! fewest tasks in all. SwarmKit sorts the candidates and walks them; we
//! keep a min-heap keyed by (service tasks, all tasks, node index), so each
//! task costs O(log nodes) and ties go to the earlier node, which makes the
//! outcome repeatable. A node that stops fitting after a task lands (its
//! resources, host port or replica cap used up) leaves the heap for the rest
//! of the batch: within a batch nothing frees up.
//!
//! With spread preferences the tasks are first divided between the tree's
//! branches (SwarmKit's `scheduleNTasksOnSubtree`): each round evens out
//! the branches' counts of this service, a branch that cannot take its
//! share is full for the rest of the batch and the others share what is
//! left; inside a leaf the heap decides.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::filter::Demand;
use crate::generic;
use crate::load::Load;
use crate::nodeinfo::NodeInfo;
use crate::preference::Tree;
use crate::Assignment;

type NodeHeap = BinaryHeap<Reverse<(u32, u32, u32)>>;

pub(crate) struct Placer<'a> {
    pub nodes: &'a [NodeInfo],
    pub load: &'a mut Load,
    pub demand: &'a Demand<'a>,
    pub out: &'a mut Vec<Result<Assignment, String>>,
}

impl Placer<'_> {
    #[inline]
    fn fits(&self, i: usize) -> bool {
        self.demand.refuses(&self.nodes[i], self.load, i).is_none()
    }

    #[inline]
    fn key(&self, i: u32) -> Reverse<(u32, u32, u32)> {
        Reverse((self.load.svc[i as usize], self.load.total[i as usize], i))
    }

    /// Puts one task on node `i`: counts, reservations, ports, generic
    /// resources, and the result.
    fn land(&mut self, i: usize) {
        let d = self.demand;
        let l = &mut *self.load;
        l.bump_loaded(i);
        let mut given = Vec::new();
        if d.reserves {
            l.avail_cpu[i] -= d.cpu;
            l.avail_mem[i] -= d.mem;
            if !d.generic.is_empty() {
                given = generic::claim(&self.nodes[i].generic_resources, &mut l.generic[i], d.generic);
            }
        }
        for &p in &d.host_ports {
            l.hold_port(i, p);
        }
        self.out.push(Ok(Assignment { node_id: self.nodes[i].id.clone(), generic_resources: given }));
    }

    /// One task: a single pass for the best fitting candidate. Cheaper than
    /// building a heap to pop it once.
    pub fn place_one(&mut self, candidates: &[u32]) -> usize {
        let (svc, total) = (&self.load.svc, &self.load.total);
        let mut best: Option<(u64, usize)> = None;
        for &c in candidates {
            let i = c as usize;
            // (service tasks, all tasks) packed so one comparison ranks.
            let key = (u64::from(svc[i]) << 32) | u64::from(total[i]);
            if best.is_none_or(|(b, _)| key < b) && self.fits(i) {
                best = Some((key, i));
            }
        }
        match best {
            Some((_, i)) => {
                self.land(i);
                1
            }
            None => 0,
        }
    }

    /// Places up to `n` tasks on the tree below branch `b`; returns how many.
    pub fn place_in(&mut self, tree: &mut Tree, heaps: &mut [Option<NodeHeap>], b: usize, n: usize) -> usize {
        let placed =
            if tree.branches[b].kids.is_empty() { self.place_in_leaf(tree, heaps, b, n) } else { self.spread_over_kids(tree, heaps, b, n) };
        tree.branches[b].tasks += placed as u64;
        placed
    }

    fn place_in_leaf(&mut self, tree: &Tree, heaps: &mut [Option<NodeHeap>], b: usize, n: usize) -> usize {
        let heap = heaps[b]
            .get_or_insert_with(|| tree.branches[b].nodes.iter().filter(|&&i| self.fits(i as usize)).map(|&i| self.key(i)).collect());
        let mut placed = 0;
        while placed < n {
            // Keys are current: only this loop changes these nodes' counts.
            let Some(Reverse((_, _, i))) = heap.pop() else { break };
            self.land(i as usize);
            placed += 1;
            if self.fits(i as usize) {
                heap.push(self.key(i));
            }
        }
        placed
    }

    fn spread_over_kids(&mut self, tree: &mut Tree, heaps: &mut [Option<NodeHeap>], b: usize, n: usize) -> usize {
        let kids = tree.branches[b].kids.clone();
        let mut full = vec![false; kids.len()];
        let mut placed = 0;
        while placed < n {
            let usable = full.iter().filter(|f| !**f).count() as u64;
            if usable == 0 {
                break;
            }
            let have: u64 = kids.iter().zip(&full).filter(|(_, f)| !**f).map(|(&k, _)| tree.branches[k].tasks).sum();
            let goal = have + (n - placed) as u64;
            let (per_branch, mut extra) = (goal / usable, goal % usable);
            let mut progress = false;
            for (k, &kid) in kids.iter().enumerate() {
                if full[k] || placed == n {
                    continue;
                }
                let tasks = tree.branches[kid].tasks;
                if tasks < per_branch || (tasks == per_branch && extra > 0) {
                    let target = per_branch + u64::from(extra > 0);
                    let want = ((target - tasks) as usize).min(n - placed);
                    let got = self.place_in(tree, heaps, kid, want);
                    placed += got;
                    progress = true;
                    if got < want {
                        full[k] = true;
                    } else {
                        extra = extra.saturating_sub(1);
                    }
                }
            }
            // Cannot happen with consistent counts (some branch is always
            // below its share); guards against looping forever regardless.
            if !progress {
                break;
            }
        }
        placed
    }
}
