//! Property test: random sequences of what users and the orchestrator do
//! (networks created and removed, services created, scaled, given new
//! ports and removed, tasks ending and reaped, nodes joining and leaving),
//! with the allocator run and its writes applied after each step, as the
//! leader would. Checked after
//! every step: no address, subnet, VXLAN ID or ingress port has two live
//! owners, and nothing is outside its network's range or on a reserved
//! address (`verify`); each write passes the apply-time check
//! (`conflicting_claims`); a second pass over the result writes nothing
//! (idempotent); every task the allocator let through has an address on
//! each of its networks, and every task it failed says why. At the end,
//! with all tasks and services gone, each network can again give out every
//! address of its range, and with everything gone a new network gets the
//! pool's first subnet and VXLAN ID 4096 and a new service the first
//! dynamic port: nothing leaked.
//!
//! Small subnets (/28 from the pool, /29 and /30 given explicitly, a /28
//! ingress network) make full subnets and overlapping requests common.
//! Deterministic: a fixed seed, no failure files.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use shoal_api::network::{ingress_spec, Network};
use shoal_api::service::{EndpointSpec, PortConfig, PortProtocol, PublishMode, ResolutionMode};
use shoal_api::task::TaskState;

use super::tests::{overlay, overlay_with, World};
use super::*;

pub const CASES: u32 = 256;

/// One `--publish`: (target, published (0 = dynamic), UDP, host mode).
type Publish = (u32, u32, bool, bool);

#[derive(Clone, Debug)]
enum Op {
    /// A network from the pool, or one of a few explicit subnets (some overlap).
    CreateNetwork(Option<usize>),
    RemoveNetwork(usize),
    CreateService {
        networks: Vec<usize>,
        dnsrr: bool,
        ports: Vec<Publish>,
        replicas: usize,
    },
    Scale {
        service: usize,
        replicas: usize,
    },
    UpdatePorts {
        service: usize,
        ports: Vec<Publish>,
    },
    RemoveService(usize),
    /// A task is observed to end (complete or failed).
    EndTask(usize),
    /// The reaper deletes a task that ended.
    ReapTask(usize),
    /// A node joins (it gets an ingress address) or is removed.
    AddNode,
    RemoveNode(usize),
}

/// `--subnet`, `--ip-range`, `--gateway`, `--aux-address`es.
type Explicit = (&'static str, &'static str, &'static str, &'static [(&'static str, &'static str)]);

const EXPLICIT: [Explicit; 5] = [
    ("10.10.0.0/29", "", "", &[]),
    ("10.10.0.0/28", "", "", &[]),
    ("10.20.0.0/29", "", "10.20.0.6", &[("r", "10.20.0.2")]),
    ("10.30.0.0/24", "10.30.0.8/30", "", &[]),
    ("10.40.0.0/30", "", "", &[]),
];

fn port_strategy() -> impl Strategy<Value = Publish> {
    // (target, published (0 = dynamic), udp, host mode)
    (
        1u32..4,
        prop_oneof![Just(0u32), Just(8080u32), Just(8081u32), Just(30000u32), Just(30001u32)],
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => prop::option::of(0..EXPLICIT.len()).prop_map(Op::CreateNetwork),
        1 => (0usize..8).prop_map(Op::RemoveNetwork),
        3 => (prop::collection::vec(0usize..8, 0..3), prop::bool::weighted(0.25), prop::collection::vec(port_strategy(), 0..3), 0usize..6)
            .prop_map(|(networks, dnsrr, ports, replicas)| Op::CreateService { networks, dnsrr, ports, replicas }),
        3 => (0usize..8, 0usize..8).prop_map(|(service, replicas)| Op::Scale { service, replicas }),
        1 => (0usize..8, prop::collection::vec(port_strategy(), 0..3)).prop_map(|(service, ports)| Op::UpdatePorts { service, ports }),
        1 => (0usize..8).prop_map(Op::RemoveService),
        2 => (0usize..64).prop_map(Op::EndTask),
        2 => (0usize..64).prop_map(Op::ReapTask),
        1 => Just(Op::AddNode),
        1 => (0usize..8).prop_map(Op::RemoveNode),
    ]
}

fn endpoint(dnsrr: bool, ports: &[Publish]) -> Option<EndpointSpec> {
    let ports = ports
        .iter()
        .map(|&(target, published, udp, host)| PortConfig {
            protocol: if udp { PortProtocol::Udp } else { PortProtocol::Tcp },
            target_port: target,
            published_port: published,
            publish_mode: if host { PublishMode::Host } else { PublishMode::Ingress },
            ..Default::default()
        })
        .collect();
    Some(EndpointSpec { mode: dnsrr.then_some(ResolutionMode::Dnsrr), ports })
}

fn nth<V>(map: &BTreeMap<String, V>, i: usize) -> Option<&String> {
    (!map.is_empty()).then(|| map.keys().nth(i % map.len()).expect("in range"))
}

/// How many addresses a network can give out.
fn capacity(n: &Network) -> usize {
    let a = Addressing::of_allocated(n.allocated_ipam().expect("allocated")).unwrap();
    (a.range.first()..=a.range.last()).filter(|ip| a.assignable(Ipv4Addr::from(*ip))).count()
}

struct Sim {
    w: World,
    next: u64,
}

impl Sim {
    fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{:04}", self.next)
    }

    fn live_tasks(&self, service: &str) -> Vec<String> {
        self.w.tasks.values().filter(|t| t.service_id == service && t.desired_state <= TaskState::Running).map(|t| t.id.clone()).collect()
    }

    fn step(&mut self, op: &Op) {
        match op {
            Op::CreateNetwork(explicit) => {
                let id = self.id("n");
                let spec = match explicit {
                    None => overlay(&id),
                    Some(i) => {
                        let (subnet, range, gateway, aux) = EXPLICIT[*i];
                        overlay_with(&id, subnet, range, gateway, aux)
                    }
                };
                // As the API: refused up front when it cannot be allocated.
                if check_network(&self.w.view(), &spec).is_ok() {
                    self.w.add_network(&id, spec);
                }
            }
            Op::RemoveNetwork(i) => {
                if let Some(id) = nth(&self.w.networks, *i).cloned() {
                    if check_network_removal(&self.w.view(), &id).is_ok() {
                        self.w.networks.remove(&id);
                    }
                }
            }
            Op::CreateService { networks, dnsrr, ports, replicas } => {
                let targets: Vec<String> = networks.iter().filter_map(|i| nth(&self.w.networks, *i).cloned()).collect();
                let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
                let id = self.id("s");
                let mut probe = Service::default();
                probe.spec.endpoint_spec = endpoint(*dnsrr, ports);
                if check_service_endpoint(&self.w.view(), None, &probe.spec).is_err() {
                    return;
                }
                self.w.add_service(&id, &id, &targets, endpoint(*dnsrr, ports));
                for _ in 0..*replicas {
                    let t = self.id("t");
                    self.w.add_task(&t, &id);
                }
            }
            Op::Scale { service, replicas } => {
                let Some(id) = nth(&self.w.services, *service).cloned() else { return };
                let live = self.live_tasks(&id);
                for _ in live.len()..*replicas {
                    let t = self.id("t");
                    self.w.add_task(&t, &id);
                }
                // Scaling down: the orchestrator stops the extra tasks (they
                // keep their addresses until they are seen stopped).
                for t in live.iter().skip(*replicas) {
                    let t = self.w.tasks.get_mut(t).expect("live");
                    t.desired_state = TaskState::Shutdown;
                    t.version.index += 1_000_000;
                }
            }
            Op::UpdatePorts { service, ports } => {
                let Some(id) = nth(&self.w.services, *service).cloned() else { return };
                let mut spec = self.w.services[&id].spec.clone();
                let dnsrr = spec.endpoint_spec.as_ref().is_some_and(|e| e.mode == Some(ResolutionMode::Dnsrr));
                spec.endpoint_spec = endpoint(dnsrr, ports);
                if check_service_endpoint(&self.w.view(), Some(&id), &spec).is_ok() {
                    let s = self.w.services.get_mut(&id).expect("exists");
                    s.spec = spec;
                    s.version.index += 1_000_000;
                }
            }
            Op::RemoveService(i) => {
                let Some(id) = nth(&self.w.services, *i).cloned() else { return };
                self.w.services.remove(&id);
                for t in self.w.tasks.values_mut().filter(|t| t.service_id == id) {
                    t.desired_state = TaskState::Shutdown;
                }
            }
            Op::EndTask(i) => {
                let Some(id) = nth(&self.w.tasks, *i).cloned() else { return };
                let t = self.w.tasks.get_mut(&id).expect("exists");
                if !t.status.state.is_terminal() && t.status.state != TaskState::New {
                    t.status.state = if i % 2 == 0 { TaskState::Complete } else { TaskState::Failed };
                }
            }
            Op::ReapTask(i) => {
                let Some(id) = nth(&self.w.tasks, *i).cloned() else { return };
                if self.w.tasks[&id].status.state.is_terminal() {
                    self.w.tasks.remove(&id);
                }
            }
            Op::AddNode => {
                let id = self.id("node");
                self.w.add_node(&id);
            }
            Op::RemoveNode(i) => {
                if let Some(id) = nth(&self.w.nodes, *i).cloned() {
                    self.w.nodes.remove(&id);
                }
            }
        }
    }

    fn check(&mut self) {
        let changes = self.w.pass();
        let problems = verify(&self.w.view());
        assert!(problems.is_empty(), "double owners after {changes:?}: {problems:?}");
        let again = allocate_with(&self.w.view(), "later", self.w.dynamic());
        assert!(again.is_empty(), "a second pass wrote {again:?}");
        // The fast path sees work only where something could not be
        // allocated (and the full pass says so again).
        assert!(!needs_work(&self.w.view()) || !again.errors.is_empty(), "the fast path sees work where there is none");
        for t in self.w.tasks.values() {
            if t.status.state == TaskState::Failed && t.status.message == FAILED_MESSAGE {
                assert!(!t.status.err.is_empty());
                assert!(t.networks_attachments.is_empty());
            }
            if t.status.state == TaskState::Pending {
                // One attachment per network (the ingress one when the
                // service publishes through the mesh), never more.
                assert!(t.networks_attachments.len() <= t.spec.networks.len() + 1);
                if !t.spec.networks.is_empty() {
                    assert!(!t.networks_attachments.is_empty(), "task {} went pending without its networks", t.id);
                }
                for a in &t.networks_attachments {
                    assert_eq!(a.addresses.len(), 1);
                    // A network may go while a stopping task still names
                    // it (SwarmKit's removal check counts only tasks that
                    // are to run); its addresses went with it.
                    let Some(n) = self.w.networks.get(&a.network.id) else { continue };
                    let addressing = Addressing::of_allocated(n.allocated_ipam().unwrap()).unwrap();
                    assert!(addressing.assignable(address_of(&a.addresses[0]).unwrap()));
                }
            }
        }
        for s in self.w.services.values() {
            let dnsrr = s.endpoint.spec.mode == Some(ResolutionMode::Dnsrr);
            assert!(!dnsrr || s.endpoint.virtual_ips.is_empty(), "dnsrr services have no VIP");
        }
    }

    /// Everything that held an address goes; each network can give out its
    /// whole range again.
    fn drain_and_refill(&mut self) {
        self.w.services.clear();
        self.w.tasks.clear();
        self.w.nodes.clear();
        self.check();
        let networks: Vec<(String, usize)> =
            self.w.networks.values().filter(|n| is_allocated(n)).map(|n| (n.id.clone(), capacity(n))).collect();
        for (net, cap) in &networks {
            let id = format!("fill-{net}");
            self.w.add_service(&id, &id, &[net.as_str()], Some(EndpointSpec { mode: Some(ResolutionMode::Dnsrr), ports: vec![] }));
            for i in 0..=*cap {
                self.w.add_task(&format!("{id}-{i:04}"), &id);
            }
        }
        self.check();
        for (net, cap) in &networks {
            let id = format!("fill-{net}");
            let tasks: Vec<&Task> = self.w.tasks.values().filter(|t| t.service_id == id).collect();
            let placed = tasks.iter().filter(|t| t.status.state == TaskState::Pending).count();
            assert_eq!(placed, *cap, "network {net} gives out its whole range again");
            let failed: Vec<&&Task> = tasks.iter().filter(|t| t.status.state == TaskState::Failed).collect();
            assert_eq!(failed.len(), 1);
            assert!(failed[0].status.err.starts_with(&format!("no available IP addresses on network {net} (")));
        }
        // Everything goes: the first subnet, VNI and port are free again.
        self.w.services.clear();
        self.w.tasks.clear();
        self.w.networks.clear();
        self.w.add_network("again", overlay("again"));
        self.w.add_service("svc", "svc", &["again"], endpoint(false, &[(80, 0, false, false)]));
        self.w.add_network("ing", ingress_spec());
        self.check();
        assert_eq!(self.w.networks["again"].allocated_ipam().unwrap().subnet, "10.10.0.0/28");
        let vnis: BTreeSet<u32> = self.w.networks.values().filter_map(|n| n.vxlan_id()).collect();
        assert_eq!(vnis, BTreeSet::from([4096, 4097]));
        assert_eq!(self.w.services["svc"].endpoint.ports[0].published_port, 30000);
    }
}

fn small_ingress() -> NetworkSpec {
    let mut spec = ingress_spec();
    spec.ipam_options.as_mut().unwrap().configs[0].subnet = "10.0.0.0/28".into();
    spec
}

proptest! {
    #![proptest_config(Config {
        cases: CASES,
        rng_seed: RngSeed::Fixed(0x5_04a1),
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn no_address_has_two_live_owners_and_everything_comes_back(
        with_ingress in any::<bool>(),
        few_ports in prop::bool::weighted(0.25),
        ops in prop::collection::vec(op_strategy(), 1..60),
    ) {
        let mut sim = Sim { w: World { pool: AddressPool::new(&["10.10.0.0/24".into()], 28).unwrap(), ..Default::default() }, next: 0 };
        if with_ingress {
            sim.w.add_network("ingress", small_ingress());
        }
        if few_ports {
            sim.w.dynamic = Some(30000..=30003);
        }
        sim.check();
        for op in &ops {
            sim.step(op);
            sim.check();
        }
        sim.drain_and_refill();
    }
}
