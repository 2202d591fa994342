//! A node's assignments: which tasks belong to the set a node is sent, a
//! digest of that set, and the agent's copy kept up to date from complete
//! and incremental answers.
//!
//! The leader answers a session's first `Assignments` call with the
//! complete set; after that, with the tasks whose version (the Raft index
//! of their last change) is newer than the index the agent last saw. A task
//! leaves the set only through a change (it ends, or is told to stop), so
//! an increment carries departures too. Both sides hash the set the same
//! way; if the agent's copy ever hashes differently, it asks for the
//! complete set again.

use std::collections::BTreeMap;

use shoal_api::task::{Task, TaskState};

use crate::Assignments;

/// Whether a task of `node_id` is in the set its node is sent: everything
/// placed there that has not finished, plus finished tasks still wanted
/// running (so the node reports them once more).
pub fn in_set(t: &Task, node_id: &str) -> bool {
    t.node_id == node_id
        && t.status.state >= TaskState::Assigned
        && (!t.status.state.is_terminal() || t.desired_state <= TaskState::Running)
}

/// FNV-1a over the IDs and versions of a set, in ID order (never 0, which
/// means "nothing known yet").
pub fn digest<'a>(tasks: impl Iterator<Item = &'a Task>) -> u64 {
    let mut h = Fnv64::default();
    for t in tasks {
        h.eat(t.id.as_bytes());
        h.eat(&t.version.index.to_le_bytes());
    }
    h.finish().max(1)
}

/// FNV-1a, 64 bits: the digests both sides of the assignments long poll
/// compute (stable across builds, unlike std's hasher).
pub(crate) struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv64 {
    pub(crate) fn eat(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= *b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}

/// The agent's copy of its node's assignments.
#[derive(Debug, Default)]
pub struct AssignmentView {
    node_id: String,
    tasks: BTreeMap<String, Task>,
    /// The digest and applied index of the last answer taken.
    known: u64,
    since: u64,
}

impl AssignmentView {
    pub fn new(node_id: &str) -> AssignmentView {
        AssignmentView { node_id: node_id.to_string(), ..Default::default() }
    }

    /// What to send in the next `Assignments` request: (known, since).
    pub fn cursor(&self) -> (u64, u64) {
        (self.known, self.since)
    }

    /// Takes an answer. Returns the complete set to act on, or `None` if
    /// the copy no longer matches the leader's (the next request then asks
    /// for the complete set).
    pub fn take(&mut self, a: &Assignments) -> Option<Vec<Task>> {
        if !a.incremental {
            self.tasks.clear();
        }
        for t in &a.tasks {
            if in_set(t, &self.node_id) {
                self.tasks.insert(t.id.clone(), t.clone());
            } else {
                self.tasks.remove(&t.id);
            }
        }
        if crate::discovery::combined_with_mesh(digest(self.tasks.values()), &a.networks, &a.host_ports, a.mesh.as_deref()) != a.digest {
            self.tasks.clear();
            self.known = 0;
            self.since = 0;
            return None;
        }
        self.known = a.digest;
        self.since = a.applied;
        Some(self.tasks.values().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_api::Version;

    fn task(id: &str, version: u64, state: TaskState) -> Task {
        let mut t = Task { id: id.into(), node_id: "n1".into(), version: Version { index: version }, ..Default::default() };
        t.status.state = state;
        t.desired_state = TaskState::Running;
        t
    }

    fn answer(tasks: Vec<Task>, all: &[&Task], incremental: bool, applied: u64) -> Assignments {
        Assignments { tasks, digest: digest(all.iter().copied()), incremental, applied, ..Default::default() }
    }

    #[test]
    fn an_answer_with_a_mesh_view_is_taken_and_its_change_is_seen() {
        let t = task("t1", 1, TaskState::Running);
        let mut a = answer(vec![t.clone()], &[&t], false, 5);
        a.mesh = Some(Box::new(crate::discovery::MeshView {
            ports: vec![crate::discovery::MeshPort { protocol: "tcp".into(), published: 8080, backends: vec![("10.0.0.5".into(), 80)] }],
            ..Default::default()
        }));
        a.digest = crate::discovery::combined_with_mesh(a.digest, &[], &Default::default(), a.mesh.as_deref());
        let mut view = AssignmentView::new("n1");
        assert_eq!(view.take(&a).map(|ts| ts.len()), Some(1), "the digest covers the mesh as the leader folds it");
        let without = crate::discovery::combined_with_mesh(digest([&t].into_iter()), &[], &Default::default(), None);
        assert_ne!(a.digest, without, "a mesh change changes the digest (the long poll answers)");
    }

    #[test]
    fn increments_keep_the_copy_equal_to_the_leaders_set() {
        let mut v = AssignmentView::new("n1");
        let (a, b) = (task("a", 5, TaskState::Assigned), task("b", 6, TaskState::Running));
        let set = v.take(&answer(vec![a.clone(), b.clone()], &[&a, &b], false, 6)).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(v.cursor(), (digest([&a, &b].into_iter()), 6));
        // a runs now; b ended and is told to stop: it leaves the set.
        let a2 = task("a", 7, TaskState::Running);
        let mut b2 = task("b", 8, TaskState::Shutdown);
        b2.desired_state = TaskState::Shutdown;
        let set = v.take(&answer(vec![a2.clone(), b2], &[&a2], true, 8)).unwrap();
        assert_eq!(set, vec![a2]);
    }

    #[test]
    fn a_copy_that_drifted_asks_for_the_complete_set() {
        let mut v = AssignmentView::new("n1");
        let a = task("a", 5, TaskState::Assigned);
        v.take(&answer(vec![a.clone()], &[&a], false, 5)).unwrap();
        // The leader's set also holds c, which this increment does not carry.
        let c = task("c", 9, TaskState::Assigned);
        assert!(v.take(&answer(vec![], &[&a, &c], true, 9)).is_none());
        assert_eq!(v.cursor(), (0, 0), "the next request asks for everything");
        assert_eq!(v.take(&answer(vec![a.clone(), c.clone()], &[&a, &c], false, 9)).unwrap().len(), 2);
    }
}
