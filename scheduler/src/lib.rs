//! Shoal's scheduler: decides which node each task goes to. Pure: no I/O,
//! no clock, no store; the manager feeds it nodes and the tasks already on
//! them, asks for placements, and writes the answers back.
//!
//! Behaviour follows Docker Swarm (SwarmKit's `manager/scheduler`):
//! - filters, in SwarmKit's order: node ready and active, resource
//!   reservations (CPU, memory, generic resources), constraints, platform,
//!   host-mode ports, `--replicas-max-per-node`;
//! - constraint expressions as SwarmKit parses and matches them
//!   ([`parse_constraints`]);
//! - `--placement-pref spread=node.labels.X` (nested preferences make a tree);
//! - ranking by fewest tasks of the service on the node, then fewest tasks;
//! - tasks of one service version placed together ([`Scheduler::schedule_batch`]);
//! - a task that cannot be placed gets Docker's explanation, e.g.
//!   `no suitable node (scheduling constraints not satisfied on 3 nodes)`,
//!   for the manager to put in `Status.Err` while the task stays pending.
//!
//! Not (yet) SwarmKit's: the plugin filter (Shoal has no plugins), volume
//! (CSI) filters, and down-weighting nodes where the service failed
//! recently (that needs a clock; the manager can add it by feeding counts).
//!
//! ```
//! use shoal_scheduler::{NodeInfo, Scheduler, TaskGroup};
//! use shoal_api::task::TaskSpec;
//!
//! let mut s = Scheduler::new(["n1", "n2", "n3"].map(NodeInfo::new));
//! let spec = TaskSpec::default();
//! let placed = s.schedule_batch(&TaskGroup::new("web", &spec), 6);
//! assert!(placed.iter().all(|p| p.is_ok()));
//! assert_eq!(s.service_tasks("n2", "web"), 2);
//! ```

mod batch;
pub mod constraint;
pub mod filter;
#[cfg(test)]
mod fuzz_tests;
mod generic;
mod load;
pub mod nodeinfo;
mod preference;
mod statics;

use std::collections::HashMap;
use std::sync::Arc;

use shoal_api::service::PortConfig;
use shoal_api::task::{GenericResource, Task, TaskSpec, TaskState};

pub use constraint::{node_matches, parse_constraints, Constraint};
pub use filter::Filter;
pub use nodeinfo::NodeInfo;

use batch::Placer;
use filter::{count_failures, explain, no_suitable_node, Demand};
use load::Load;
use preference::{spreads, Tree};
use statics::{StaticCache, StaticFilter};

/// Tasks that share one spec: the tasks of one service version.
#[derive(Clone, Copy, Debug)]
pub struct TaskGroup<'a> {
    /// `""` for tasks of no service.
    pub service_id: &'a str,
    pub spec: &'a TaskSpec,
    /// The service's published ports (`Endpoint.Ports`, or the spec's when
    /// not allocated yet). Only host-mode ports with a published port
    /// matter: no two such tasks may share a node.
    pub ports: &'a [PortConfig],
}

impl<'a> TaskGroup<'a> {
    pub fn new(service_id: &'a str, spec: &'a TaskSpec) -> Self {
        TaskGroup { service_id, spec, ports: &[] }
    }
    pub fn with_ports(self, ports: &'a [PortConfig]) -> Self {
        TaskGroup { ports, ..self }
    }
}

/// Where a task goes, and (for generic resource reservations) which of the
/// node's resources it was given (`Task.GenericResources`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub node_id: String,
    pub generic_resources: Vec<GenericResource>,
}

/// The nodes and what their tasks hold. Keep one across scheduling rounds
/// and tell it about changes, or build one per round; either works.
#[derive(Default)]
pub struct Scheduler {
    nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    load: Load,
    statics: StaticCache,
}

impl Scheduler {
    pub fn new(nodes: impl IntoIterator<Item = NodeInfo>) -> Self {
        let mut s = Scheduler::default();
        for n in nodes {
            s.upsert_node(n);
        }
        s
    }

    /// Adds a node, or replaces its description (what its tasks hold stays).
    pub fn upsert_node(&mut self, n: NodeInfo) {
        self.statics.clear();
        match self.index.get(&n.id) {
            Some(&i) => {
                self.load.resize_node(i, &self.nodes[i], &n);
                self.nodes[i] = n;
            }
            None => {
                self.index.insert(n.id.clone(), self.nodes.len());
                self.load.push_node(&n);
                self.nodes.push(n);
            }
        }
    }

    /// Forgets a node and what its tasks held.
    pub fn remove_node(&mut self, id: &str) -> bool {
        let Some(i) = self.index.remove(id) else { return false };
        self.statics.clear();
        self.load.swap_remove_node(i);
        self.nodes.swap_remove(i);
        if let Some(moved) = self.nodes.get(i) {
            self.index.insert(moved.id.clone(), i);
        }
        true
    }

    pub fn node(&self, id: &str) -> Option<&NodeInfo> {
        self.index.get(id).map(|&i| &self.nodes[i])
    }

    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// Accounts a task that is already on its node (`task.node_id`): it
    /// holds its reservations (its assigned generic resources if it has
    /// them), its host ports, and counts as active while its desired state
    /// is at most `complete` (as in SwarmKit). Call it once per task; the
    /// scheduler does not track task IDs. False if the node is unknown.
    pub fn add_task(&mut self, task: &Task, ports: &[PortConfig]) -> bool {
        self.account(task, ports, 1)
    }

    /// Undoes [`Scheduler::add_task`] (the task ended or moved away). Pass
    /// the task as it was added: the scheduler keeps no copy. On a task
    /// update, remove the old version and add the new one.
    pub fn remove_task(&mut self, task: &Task, ports: &[PortConfig]) -> bool {
        self.account(task, ports, -1)
    }

    fn account(&mut self, task: &Task, ports: &[PortConfig], sign: i32) -> bool {
        let Some(&i) = self.index.get(&task.node_id) else { return false };
        let l = &mut self.load;
        if task.desired_state <= TaskState::Complete {
            l.add_count(i, &task.service_id, sign);
        }
        if let Some(r) = task.spec.reservations() {
            l.avail_cpu[i] -= i64::from(sign) * r.nano_cpus;
            l.avail_mem[i] -= i64::from(sign) * r.memory_bytes;
            let held = &mut l.generic[i];
            match (task.generic_resources.is_empty(), sign > 0) {
                (false, true) => held.hold(&task.generic_resources),
                (false, false) => held.release(&task.generic_resources),
                // No record of what it was given: take what it asked for.
                (true, true) => {
                    generic::claim(&self.nodes[i].generic_resources, held, &r.generic_resources);
                }
                // Counts come back; named items cannot be told apart
                // without the record, so those stay held.
                (true, false) => held.release(&r.generic_resources),
            }
        }
        for p in ports.iter().filter(|p| p.is_host_published()) {
            if sign > 0 {
                l.hold_port(i, (p.protocol, p.published_port));
            } else {
                l.release_port(i, (p.protocol, p.published_port));
            }
        }
        true
    }

    /// Active tasks of `service_id` on the node.
    pub fn service_tasks(&self, node_id: &str, service_id: &str) -> u32 {
        self.index.get(node_id).map_or(0, |&i| self.load.service_count(i, service_id))
    }

    /// Active tasks of all services on the node.
    pub fn total_tasks(&self, node_id: &str) -> u32 {
        self.index.get(node_id).map_or(0, |&i| self.load.total[i])
    }

    /// CPU (nanoseconds per second) and memory (bytes) not reserved on the node.
    pub fn available(&self, node_id: &str) -> Option<(i64, i64)> {
        self.index.get(node_id).map(|&i| (self.load.avail_cpu[i], self.load.avail_mem[i]))
    }

    /// Places `count` tasks of one service version. Returns one entry per
    /// task: `Ok` with the node, or `Err` with the text for `Status.Err`
    /// (`no suitable node (...)`); placed tasks come first. What the placed
    /// tasks hold is accounted at once, so the next call sees it.
    pub fn schedule_batch(&mut self, group: &TaskGroup, count: usize) -> Vec<Result<Assignment, String>> {
        let mut out = Vec::with_capacity(count);
        self.place(group, count, &mut out);
        out
    }

    /// One task placed on its own: SwarmKit's path for a task with no spec
    /// version. Same as a batch of one.
    pub fn schedule_one(&mut self, group: &TaskGroup) -> Result<Assignment, String> {
        let mut out = Vec::with_capacity(1);
        self.place(group, 1, &mut out);
        out.pop().expect("one result")
    }

    /// A task that already names its node (a global service's task): checks
    /// that the node can take it and accounts it. The error is the bare
    /// explanation (`insufficient resources on 1 node`), as SwarmKit writes
    /// it for such tasks.
    pub fn place_on(&mut self, group: &TaskGroup, node_id: &str) -> Result<Assignment, String> {
        let Some(&i) = self.index.get(node_id) else {
            return Err(format!("node {node_id} not found"));
        };
        let statics = self.statics.get(&self.nodes, group.spec.placement());
        self.load.load_service(group.service_id);
        let demand = Demand::new(group.spec, group.ports);
        let failures = count_failures(std::iter::once(i), &self.nodes, &self.load, &statics, &demand);
        if failures.iter().any(|(_, n)| *n > 0) {
            return Err(explain(&failures));
        }
        let mut out = Vec::with_capacity(1);
        let mut p = Placer { nodes: &self.nodes, load: &mut self.load, demand: &demand, out: &mut out };
        p.place_one(&[i as u32]);
        out.pop().expect("the node fits")
    }

    fn place(&mut self, group: &TaskGroup, count: usize, out: &mut Vec<Result<Assignment, String>>) {
        if count == 0 {
            return;
        }
        let statics: Arc<StaticFilter> = self.statics.get(&self.nodes, group.spec.placement());
        self.load.load_service(group.service_id);
        let demand = Demand::new(group.spec, group.ports);
        let levels = spreads(group.spec.placement().map_or(&[][..], |p| &p.preferences));

        let mut p = Placer { nodes: &self.nodes, load: &mut self.load, demand: &demand, out: &mut *out };
        let placed = if levels.is_empty() && count == 1 {
            p.place_one(&statics.candidates)
        } else {
            let mut tree = if levels.is_empty() {
                Tree::single(&statics.candidates, 0)
            } else {
                let mut candidate = vec![false; p.nodes.len()];
                for &i in &statics.candidates {
                    candidate[i as usize] = true;
                }
                Tree::build(p.nodes, &levels, &p.load.svc, &candidate)
            };
            let mut heaps = vec![None; tree.branches.len()];
            p.place_in(&mut tree, &mut heaps, 0, count)
        };

        if placed < count {
            let failures = count_failures(0..self.nodes.len(), &self.nodes, &self.load, &statics, &demand);
            let why = no_suitable_node(&explain(&failures));
            out.extend(std::iter::repeat_n(Err(why), count - placed));
        }
    }
}

#[cfg(test)]
mod tests;
