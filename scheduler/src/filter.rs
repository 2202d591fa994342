//! The filters a node must pass to take a task, and Docker's explanation
//! when no node passes.
//!
//! SwarmKit runs the filters in a fixed order (`pipeline.go`) and, for a
//! task it cannot place, counts for each filter the nodes on which it was
//! the first to fail, then prints the filters from most to least failures:
//! `no suitable node (scheduling constraints not satisfied on 3 nodes;
//! insufficient resources on 1 node)`. We keep that order and wording.
//!
//! The filters split in two for speed (see `statics.rs`): readiness,
//! constraints and platform depend only on the node's attributes and are
//! evaluated once per distinct placement spec; resources, host ports and
//! max-replicas change as tasks land and are checked in the placement loop.
//! SwarmKit's plugin filter is not here: Shoal has no plugins.

use shoal_api::service::{PortConfig, PortProtocol};
use shoal_api::task::{GenericResource, TaskSpec};
use shoal_api::Platform;

use crate::constraint::node_matches;
use crate::generic;
use crate::load::Load;
use crate::nodeinfo::NodeInfo;
use crate::statics::StaticFilter;

/// In SwarmKit's pipeline order, which decides which filter a node that
/// fails several is counted against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    Ready,
    Resource,
    Constraint,
    Platform,
    HostPort,
    MaxReplicas,
}

impl Filter {
    pub const ALL: [Filter; 6] =
        [Filter::Ready, Filter::Resource, Filter::Constraint, Filter::Platform, Filter::HostPort, Filter::MaxReplicas];

    /// SwarmKit's `Explain(nodes)` text for this filter.
    pub fn explain(self, nodes: usize) -> String {
        let (one, many) = match self {
            Filter::Ready => ("1 node not available for new tasks", "nodes not available for new tasks"),
            Filter::Resource => ("insufficient resources on 1 node", "insufficient resources on"),
            Filter::Constraint => ("scheduling constraints not satisfied on 1 node", "scheduling constraints not satisfied on"),
            Filter::Platform => ("unsupported platform on 1 node", "unsupported platform on"),
            Filter::HostPort => ("host-mode port already in use on 1 node", "host-mode port already in use on"),
            // SwarmKit gives no count for this one.
            Filter::MaxReplicas => return "max replicas per node limit exceed".to_string(),
        };
        match (self, nodes) {
            (_, 1) => one.to_string(),
            (Filter::Ready, n) => format!("{n} {many}"),
            (_, n) => format!("{many} {n} nodes"),
        }
    }
}

/// The part of a task group that changes as tasks land: what each task
/// reserves, the host ports it binds, and the per-node replica cap.
/// Built once per batch, with no allocation unless the spec publishes host
/// ports.
pub(crate) struct Demand<'a> {
    pub cpu: i64,
    pub mem: i64,
    pub generic: &'a [GenericResource],
    /// SwarmKit enables the resource filter only when something is reserved.
    pub reserves: bool,
    pub host_ports: Vec<(PortProtocol, u32)>,
    /// 0: no cap.
    pub max_replicas: u64,
}

impl<'a> Demand<'a> {
    pub fn new(spec: &'a TaskSpec, ports: &[PortConfig]) -> Self {
        let (cpu, mem, generic) = match spec.reservations() {
            Some(r) => (r.nano_cpus, r.memory_bytes, r.generic_resources.as_slice()),
            None => (0, 0, &[][..]),
        };
        let mut host_ports = Vec::new();
        for p in ports.iter().filter(|p| p.is_host_published()) {
            let k = (p.protocol, p.published_port);
            if !host_ports.contains(&k) {
                host_ports.push(k);
            }
        }
        Demand {
            cpu,
            mem,
            generic,
            reserves: cpu != 0 || mem != 0 || !generic.is_empty(),
            host_ports,
            max_replicas: spec.placement().map_or(0, |p| p.max_replicas),
        }
    }

    /// The first of the filters that change with load to refuse node `i`.
    /// `load` must have this group's service loaded.
    #[inline]
    pub fn refuses(&self, node: &NodeInfo, load: &Load, i: usize) -> Option<Filter> {
        if self.reserves && !self.resources_fit(node, load, i) {
            return Some(Filter::Resource);
        }
        if !self.host_ports.is_empty() && self.host_ports.iter().any(|p| load.ports[i].contains(p)) {
            return Some(Filter::HostPort);
        }
        if self.max_replicas > 0 && u64::from(load.svc[i]) >= self.max_replicas {
            return Some(Filter::MaxReplicas);
        }
        None
    }

    fn resources_fit(&self, node: &NodeInfo, load: &Load, i: usize) -> bool {
        self.cpu <= load.avail_cpu[i]
            && self.mem <= load.avail_mem[i]
            && self.generic.iter().all(|g| generic::has_enough(&node.generic_resources, &load.generic[i], g))
    }
}

/// SwarmKit's platform filter: the node must run one of the platforms the
/// image supports; an empty field matches anything, and `x86_64`/`aarch64`
/// are the same as `amd64`/`arm64`.
pub fn platform_supported(wanted: &[Platform], node: &Platform) -> bool {
    fn norm(a: &str) -> &str {
        match a {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            a => a,
        }
    }
    wanted.is_empty()
        || wanted.iter().any(|p| {
            (p.architecture.is_empty() || norm(&p.architecture) == norm(&node.architecture)) && (p.os.is_empty() || p.os == node.os)
        })
}

/// The first filter (in pipeline order) node `i` fails, if any.
pub(crate) fn first_failure(node: &NodeInfo, load: &Load, i: usize, statics: &StaticFilter, demand: &Demand) -> Option<Filter> {
    if !node.accepts_tasks() {
        return Some(Filter::Ready);
    }
    if demand.reserves && !demand.resources_fit(node, load, i) {
        return Some(Filter::Resource);
    }
    if let Some(cs) = &statics.constraints {
        if !node_matches(cs, node) {
            return Some(Filter::Constraint);
        }
    }
    if !platform_supported(&statics.platforms, &node.platform) {
        return Some(Filter::Platform);
    }
    demand.refuses(node, load, i).filter(|f| *f != Filter::Resource)
}

/// SwarmKit's `Pipeline.Explain`: the failing filters, most failures first
/// (ties in pipeline order), joined by `; `. Empty when no node failed.
pub fn explain(failures: &[(Filter, usize)]) -> String {
    let mut v: Vec<(Filter, usize)> = failures.iter().copied().filter(|(_, n)| *n > 0).collect();
    v.sort_by_key(|&(_, n)| std::cmp::Reverse(n)); // stable: ties keep pipeline order
    v.iter().map(|(f, n)| f.explain(*n)).collect::<Vec<_>>().join("; ")
}

/// Counts, over `nodes`, the first filter each fails.
pub(crate) fn count_failures(
    nodes: impl Iterator<Item = usize>,
    all: &[NodeInfo],
    load: &Load,
    statics: &StaticFilter,
    demand: &Demand,
) -> Vec<(Filter, usize)> {
    let mut counts: Vec<(Filter, usize)> = Filter::ALL.iter().map(|f| (*f, 0)).collect();
    for i in nodes {
        if let Some(f) = first_failure(&all[i], load, i, statics, demand) {
            counts[Filter::ALL.iter().position(|x| *x == f).unwrap()].1 += 1;
        }
    }
    counts
}

/// The `Status.Err` of a task no node can take.
pub fn no_suitable_node(explanation: &str) -> String {
    if explanation.is_empty() {
        "no suitable node".to_string()
    } else {
        format!("no suitable node ({explanation})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_filter_explains_itself_as_swarmkit_does() {
        let cases = [
            (Filter::Ready, "1 node not available for new tasks", "3 nodes not available for new tasks"),
            (Filter::Resource, "insufficient resources on 1 node", "insufficient resources on 3 nodes"),
            (Filter::Constraint, "scheduling constraints not satisfied on 1 node", "scheduling constraints not satisfied on 3 nodes"),
            (Filter::Platform, "unsupported platform on 1 node", "unsupported platform on 3 nodes"),
            (Filter::HostPort, "host-mode port already in use on 1 node", "host-mode port already in use on 3 nodes"),
            (Filter::MaxReplicas, "max replicas per node limit exceed", "max replicas per node limit exceed"),
        ];
        for (f, one, three) in cases {
            assert_eq!(f.explain(1), one);
            assert_eq!(f.explain(3), three);
        }
    }

    #[test]
    fn explanation_lists_most_failures_first() {
        let e = explain(&[(Filter::Ready, 1), (Filter::Resource, 0), (Filter::Constraint, 3), (Filter::HostPort, 1)]);
        assert_eq!(
            e,
            "scheduling constraints not satisfied on 3 nodes; 1 node not available for new tasks; \
             host-mode port already in use on 1 node"
        );
        assert_eq!(no_suitable_node(e.split("; ").next().unwrap()), "no suitable node (scheduling constraints not satisfied on 3 nodes)");
        assert_eq!(no_suitable_node(""), "no suitable node");
    }

    #[test]
    fn platforms_normalise_architecture_names() {
        let node = Platform { architecture: "x86_64".into(), os: "linux".into() };
        let p = |a: &str, o: &str| Platform { architecture: a.into(), os: o.into() };
        assert!(platform_supported(&[], &node));
        assert!(platform_supported(&[p("amd64", "linux")], &node));
        assert!(platform_supported(&[p("", "linux")], &node));
        assert!(platform_supported(&[p("arm64", "linux"), p("amd64", "")], &node));
        assert!(!platform_supported(&[p("arm64", "linux")], &node));
        assert!(!platform_supported(&[p("amd64", "windows")], &node));
        let arm = Platform { architecture: "arm64".into(), os: "linux".into() };
        assert!(platform_supported(&[p("aarch64", "linux")], &arm));
    }
}
