//! Scenario tests of the allocator over a small in-memory store.

use std::collections::BTreeMap;

use shoal_api::network::{ingress_spec, IpamConfig, IpamOptions, Network, NetworkCreateRequest, NetworkSpec, VXLAN_ID_OPTION};
use shoal_api::service::{EndpointSpec, PortConfig, PortProtocol, PublishMode, ResolutionMode, Service, ServiceSpec};
use shoal_api::task::{NetworkAttachmentConfig, Task, TaskState};
use shoal_api::Version;

use super::*;

/// A store as the allocator sees it, with the writes applied as the store
/// would (versions bumped, so a stale write would show).
#[derive(Default)]
pub(super) struct World {
    pub pool: AddressPool,
    pub networks: BTreeMap<String, Network>,
    pub services: BTreeMap<String, Service>,
    pub tasks: BTreeMap<String, Task>,
    pub nodes: BTreeMap<String, shoal_api::Node>,
    pub index: u64,
    pub clock: u64,
    /// The dynamic port range, when a test needs a small one.
    pub dynamic: Option<std::ops::RangeInclusive<u32>>,
}

impl World {
    pub fn view(&self) -> View<'_> {
        View { pool: &self.pool, networks: &self.networks, services: &self.services, tasks: &self.tasks, nodes: &self.nodes }
    }

    fn bump(&mut self) -> Version {
        self.index += 1;
        Version { index: self.index }
    }

    fn stamp(&mut self) -> String {
        self.clock += 1;
        format!("2026-01-01T00:00:{:02}.{:09}Z", self.clock / 1_000_000_000, self.clock % 1_000_000_000)
    }

    pub fn add_network(&mut self, id: &str, spec: NetworkSpec) {
        let (version, created_at) = (self.bump(), self.stamp());
        self.networks.insert(id.into(), Network { id: id.into(), version, created_at, spec, ..Default::default() });
    }

    pub fn add_service(&mut self, id: &str, name: &str, networks: &[&str], endpoint: Option<EndpointSpec>) {
        let (version, created_at) = (self.bump(), self.stamp());
        let mut s = Service { id: id.into(), version, created_at, ..Default::default() };
        s.spec.name = name.into();
        s.spec.task_template.networks =
            networks.iter().map(|n| NetworkAttachmentConfig { target: n.to_string(), ..Default::default() }).collect();
        s.spec.endpoint_spec = endpoint;
        self.services.insert(id.into(), s);
    }

    pub fn add_task(&mut self, id: &str, service: &str) {
        let (version, created_at) = (self.bump(), self.stamp());
        let spec = self.services[service].spec.task_template.clone();
        let t = Task {
            id: id.into(),
            version,
            created_at,
            service_id: service.into(),
            spec,
            desired_state: TaskState::Running,
            ..Default::default()
        };
        self.tasks.insert(id.into(), t);
    }

    /// Runs the allocator and applies its writes; returns them.
    pub fn pass(&mut self) -> Changes {
        let ch = allocate_with(&self.view(), "now", self.dynamic());
        if !needs_work(&self.view()) {
            assert!(ch.is_empty(), "the fast path skipped a pass that writes {ch:?}");
        }
        assert!(conflicting_claims(&self.view(), &ch).is_empty(), "{:?}", conflicting_claims(&self.view(), &ch));
        for n in &ch.networks {
            assert_eq!(self.networks[&n.id].version, n.version, "written at the version read");
            let mut n = n.clone();
            n.version = self.bump();
            self.networks.insert(n.id.clone(), n);
        }
        for s in &ch.services {
            assert_eq!(self.services[&s.id].version, s.version);
            let mut s = s.clone();
            s.version = self.bump();
            self.services.insert(s.id.clone(), s);
        }
        for t in &ch.tasks {
            assert_eq!(self.tasks[&t.id].version, t.version);
            let mut t = t.clone();
            t.version = self.bump();
            self.tasks.insert(t.id.clone(), t);
        }
        for n in &ch.nodes {
            self.nodes.get_mut(&n.node_id).expect("the node exists").attachments = n.attachments.clone();
        }
        ch
    }

    pub fn add_node(&mut self, id: &str) {
        self.nodes.insert(id.into(), shoal_api::Node { id: id.into(), ..Default::default() });
    }

    /// A node's address on the ingress network, if it has one.
    pub fn node_addr(&self, id: &str) -> Option<String> {
        self.nodes[id].attachments.first().map(|a| a.addresses[0].clone())
    }

    pub fn dynamic(&self) -> std::ops::RangeInclusive<u32> {
        self.dynamic.clone().unwrap_or(DYNAMIC_PORTS)
    }

    pub fn addr(&self, task: &str, network: &str) -> String {
        let t = &self.tasks[task];
        t.networks_attachments.iter().find(|a| a.network.id == network).map(|a| a.addresses[0].clone()).unwrap_or_default()
    }
}

pub(super) fn overlay(name: &str) -> NetworkSpec {
    NetworkCreateRequest { name: name.into(), ..Default::default() }.to_spec().unwrap()
}

pub(super) fn overlay_with(name: &str, subnet: &str, range: &str, gateway: &str, aux: &[(&str, &str)]) -> NetworkSpec {
    let mut spec = overlay(name);
    spec.ipam_options = Some(IpamOptions {
        configs: vec![IpamConfig {
            subnet: subnet.into(),
            range: range.into(),
            gateway: gateway.into(),
            auxiliary_addresses: aux.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }],
        ..Default::default()
    });
    spec
}

pub(super) fn publish(target: u32, published: u32) -> PortConfig {
    PortConfig {
        protocol: PortProtocol::Tcp,
        target_port: target,
        published_port: published,
        publish_mode: PublishMode::Ingress,
        ..Default::default()
    }
}

fn ports(ps: Vec<PortConfig>) -> Option<EndpointSpec> {
    Some(EndpointSpec { mode: None, ports: ps })
}

#[test]
fn networks_get_dockers_subnets_and_vnis() {
    let mut w = World::default();
    w.add_network("ing", ingress_spec());
    w.add_network("a", overlay("appnet"));
    w.add_network("b", overlay("other"));
    let ch = w.pass();
    assert_eq!(ch.networks.len(), 3);
    let n = |id: &str| w.networks[id].clone();
    assert_eq!(n("ing").allocated_ipam().unwrap().subnet, "10.0.0.0/24");
    assert_eq!(n("ing").vxlan_id(), Some(4096));
    assert_eq!(n("a").allocated_ipam().unwrap().subnet, "10.0.1.0/24");
    assert_eq!(n("a").allocated_ipam().unwrap().gateway, "10.0.1.1");
    assert_eq!(n("a").vxlan_id(), Some(4097));
    assert_eq!(n("b").allocated_ipam().unwrap().subnet, "10.0.2.0/24");
    assert_eq!(n("b").vxlan_id(), Some(4098));
    let inspect = shoal_api::network::NetworkResource::from_swarm(&n("a"));
    assert_eq!(inspect.options[VXLAN_ID_OPTION], "4097");
    assert_eq!(inspect.ipam.config[0].gateway, "10.0.1.1");
    assert!(w.pass().is_empty(), "allocating again changes nothing");

    // Removing a network frees its subnet and VNI for the next one.
    w.networks.remove("a");
    w.add_network("c", overlay("third"));
    w.pass();
    assert_eq!(w.networks["c"].allocated_ipam().unwrap().subnet, "10.0.1.0/24");
    assert_eq!(w.networks["c"].vxlan_id(), Some(4097));
}

#[test]
fn custom_pool_explicit_subnets_and_errors() {
    let mut w = World { pool: AddressPool::new(&["10.20.0.0/16".into()], 26).unwrap(), ..Default::default() };
    w.add_network("a", overlay("a"));
    w.add_network("x", overlay_with("x", "10.20.0.0/26", "", "", &[]));
    w.add_network("y", overlay_with("y", "10.20.0.32/27", "", "", &[]));
    w.add_network("v", {
        let mut s = overlay("v");
        s.driver_configuration.as_mut().unwrap().options.insert(VXLAN_ID_OPTION.into(), "5000".into());
        s
    });
    let ch = w.pass();
    // The explicit subnet goes first; the pool skips it.
    assert_eq!(w.networks["x"].allocated_ipam().unwrap().subnet, "10.20.0.0/26");
    assert_eq!(w.networks["a"].allocated_ipam().unwrap().subnet, "10.20.0.64/26");
    assert_eq!(w.networks["v"].vxlan_id(), Some(5000));
    assert!(!is_allocated(&w.networks["y"]));
    assert_eq!(ch.errors, vec![AllocError { kind: ObjectKind::Network, id: "y".into(), message: POOL_OVERLAP.into() }]);
    assert_eq!(
        check_network(&w.view(), &overlay_with("z", "10.20.0.0/24", "", "", &[])).unwrap_err(),
        Refusal::Invalid(POOL_OVERLAP.into())
    );
    assert_eq!(check_network(&w.view(), &overlay("a")).unwrap_err(), Refusal::Taken("network with name a already exists".into()));
    assert!(check_network(&w.view(), &overlay("new")).is_ok());
    let bad_gw = overlay_with("g", "192.168.5.0/24", "", "192.168.6.1", &[]);
    assert_eq!(
        check_network(&w.view(), &bad_gw).unwrap_err(),
        Refusal::Invalid("ipam configuration: subnet 192.168.5.0/24 does not contain gateway 192.168.6.1".into())
    );
    let mut vni = overlay("vv");
    vni.driver_configuration.as_mut().unwrap().options.insert(VXLAN_ID_OPTION.into(), "5000".into());
    assert_eq!(check_network(&w.view(), &vni).unwrap_err(), Refusal::Taken("VXLAN ID 5000 is already in use by network v".into()));

    // A pool used up: the error says so, for create and for the allocator.
    let mut w = World { pool: AddressPool::new(&["10.30.0.0/25".into()], 26).unwrap(), ..Default::default() };
    w.add_network("a", overlay("a"));
    w.add_network("b", overlay("b"));
    w.pass();
    assert_eq!(check_network(&w.view(), &overlay("c")).unwrap_err(), Refusal::Invalid(POOL_EXHAUSTED.into()));
    w.add_network("c", overlay("c"));
    assert_eq!(w.pass().errors[0].message, POOL_EXHAUSTED);
    // A task on it fails, naming the network, instead of waiting.
    w.add_service("s", "web", &["c"], None);
    w.add_task("t", "s");
    w.pass();
    assert_eq!(w.tasks["t"].status.state, TaskState::Failed);
    assert_eq!(w.tasks["t"].status.err, format!("network c could not be allocated: {POOL_EXHAUSTED}"));

    let mut w = World::default();
    w.add_network("i", ingress_spec());
    assert_eq!(check_network(&w.view(), &ingress_spec()).unwrap_err(), Refusal::Taken("ingress network (i) is already present".into()));
}

#[test]
fn tasks_and_vips_get_addresses_in_range_avoiding_gateway_and_aux() {
    let mut w = World::default();
    w.add_network("n", overlay_with("appnet", "10.9.0.0/24", "10.9.0.128/29", "10.9.0.129", &[("router", "10.9.0.130")]));
    w.add_service("s", "web", &["n"], None);
    for i in 0..4 {
        w.add_task(&format!("t{i}"), "s");
    }
    w.pass();
    // 10.9.0.128 is the VIP; .129 the gateway, .130 an aux address.
    assert_eq!(w.services["s"].endpoint.virtual_ips, vec![EndpointVirtualIp { network_id: "n".into(), addr: "10.9.0.128/24".into() }]);
    let addrs: Vec<String> = (0..4).map(|i| w.addr(&format!("t{i}"), "n")).collect();
    assert_eq!(addrs, vec!["10.9.0.131/24", "10.9.0.132/24", "10.9.0.133/24", "10.9.0.134/24"]);
    let t0 = &w.tasks["t0"];
    assert_eq!(t0.status.state, TaskState::Pending);
    assert_eq!(t0.status.message, PENDING_MESSAGE);
    assert_eq!(t0.networks_attachments[0].network.spec.name, "appnet");
    assert_eq!(t0.networks_attachments[0].network.vxlan_id(), Some(4096));
    assert_eq!(mac_address(address_of(&addrs[0]).unwrap()), "02:42:0a:09:00:83");
    // The range holds 8 addresses: 3 are left (.135, .136 is not: .128-.135).
    w.add_task("t4", "s");
    w.add_task("t5", "s");
    w.pass();
    assert_eq!(w.addr("t4", "n"), "10.9.0.135/24");
    assert_eq!(w.tasks["t5"].status.state, TaskState::Failed);
    assert_eq!(w.tasks["t5"].status.err, "no available IP addresses on network appnet (10.9.0.0/24)");
    assert!(w.tasks["t5"].networks_attachments.is_empty());
    assert!(w.pass().is_empty());
    // A task that ended gives its address back.
    w.tasks.get_mut("t1").unwrap().status.state = TaskState::Complete;
    w.add_task("t6", "s");
    w.pass();
    assert_eq!(w.addr("t6", "n"), "10.9.0.132/24");
    assert!(verify(&w.view()).is_empty());
}

#[test]
fn a_task_on_two_networks_gives_back_the_first_when_the_second_is_full() {
    let mut w = World::default();
    w.add_network("big", overlay("big"));
    w.add_network("tiny", overlay_with("tiny", "10.50.0.0/30", "", "", &[]));
    // dnsrr: no VIPs, so the /30's single host address (after the gateway) is for one task.
    w.add_service("s", "db", &["big", "tiny"], Some(EndpointSpec { mode: Some(ResolutionMode::Dnsrr), ports: vec![] }));
    w.add_task("t1", "s");
    w.add_task("t2", "s");
    w.pass();
    assert!(w.services["s"].endpoint.virtual_ips.is_empty(), "dnsrr gets no VIP");
    assert_eq!(w.addr("t1", "tiny"), "10.50.0.2/30");
    assert_eq!(w.tasks["t2"].status.err, "no available IP addresses on network tiny (10.50.0.0/30)");
    // t2's address on `big` (.3) went back: the next task takes it, then
    // fails on `tiny` too and gives it back again.
    w.add_task("t3", "s");
    let ch = w.pass();
    assert_eq!(ch.tasks[0].status.err, "no available IP addresses on network tiny (10.50.0.0/30)");
    assert_eq!(w.addr("t1", "big"), "10.0.0.2/24");
    // Once t1 ended, a new task gets both of its addresses.
    w.tasks.get_mut("t1").unwrap().status.state = TaskState::Failed;
    w.add_task("t4", "s");
    w.pass();
    assert_eq!((w.addr("t4", "big").as_str(), w.addr("t4", "tiny").as_str()), ("10.0.0.2/24", "10.50.0.2/30"));
    assert!(verify(&w.view()).is_empty());
}

#[test]
fn published_ports_and_the_ingress_network() {
    let mut w = World::default();
    w.add_network("ing", ingress_spec());
    w.add_network("n", overlay("appnet"));
    w.add_service("web", "web", &["n"], ports(vec![publish(80, 8080), publish(443, 0)]));
    w.add_service("api", "api", &[], ports(vec![publish(80, 0), PortConfig { publish_mode: PublishMode::Host, ..publish(81, 9000) }]));
    w.add_task("w1", "web");
    w.pass();
    let web = &w.services["web"];
    let published: Vec<u32> = web.endpoint.ports.iter().map(|p| p.published_port).collect();
    assert_eq!(published, vec![8080, 30000]);
    // Ingress VIP first, then the service's own network.
    assert_eq!(
        web.endpoint.virtual_ips,
        vec![
            EndpointVirtualIp { network_id: "ing".into(), addr: "10.0.0.2/24".into() },
            EndpointVirtualIp { network_id: "n".into(), addr: "10.0.1.2/24".into() },
        ]
    );
    let api = &w.services["api"];
    assert_eq!(api.endpoint.ports.iter().map(|p| p.published_port).collect::<Vec<_>>(), vec![30001, 9000]);
    assert_eq!(api.endpoint.virtual_ips, vec![EndpointVirtualIp { network_id: "ing".into(), addr: "10.0.0.3/24".into() }]);
    // The task is on ingress and on its network.
    let nets: Vec<&str> = w.tasks["w1"].networks_attachments.iter().map(|a| a.network.id.as_str()).collect();
    assert_eq!(nets, vec!["ing", "n"]);
    assert_eq!(w.addr("w1", "ing"), "10.0.0.4/24");
    assert!(w.pass().is_empty());

    // Docker's refusal of a port in use.
    let mut spec = w.services["api"].spec.clone();
    spec.endpoint_spec = ports(vec![publish(80, 8080)]);
    assert_eq!(
        check_service_endpoint(&w.view(), Some("api"), &spec).unwrap_err(),
        "port '8080' is already in use by service 'web' (web) as an ingress port"
    );
    spec.endpoint_spec = ports(vec![publish(80, 30000)]);
    assert!(check_service_endpoint(&w.view(), Some("api"), &spec).is_err(), "dynamic ports count as taken");
    assert!(
        check_service_endpoint(&w.view(), Some("web"), &w.services["web"].spec.clone()).is_ok(),
        "a service does not conflict with itself"
    );

    // An update keeps the dynamic port of an unchanged port config and
    // frees the ones it drops.
    let s = w.services.get_mut("web").unwrap();
    s.spec.endpoint_spec = ports(vec![publish(443, 0), publish(9999, 0)]);
    s.version.index += 100;
    w.pass();
    let published: Vec<u32> = w.services["web"].endpoint.ports.iter().map(|p| p.published_port).collect();
    assert_eq!(published, vec![30000, 30002]);
    let mut spec = w.services["api"].spec.clone();
    spec.endpoint_spec = ports(vec![publish(80, 8080)]);
    assert!(check_service_endpoint(&w.view(), Some("api"), &spec).is_ok(), "8080 is free again");

    // Dropping the ports drops the ingress VIP (tasks already placed keep theirs).
    let s = w.services.get_mut("web").unwrap();
    s.spec.endpoint_spec = None;
    w.pass();
    assert_eq!(w.services["web"].endpoint.virtual_ips, vec![EndpointVirtualIp { network_id: "n".into(), addr: "10.0.1.2/24".into() }]);
    assert!(w.services["web"].endpoint.ports.is_empty());
    assert!(verify(&w.view()).is_empty());
}

#[test]
fn ingress_ports_without_an_ingress_network_fail_the_tasks() {
    let mut w = World::default();
    w.add_service("s", "web", &[], ports(vec![publish(80, 8080)]));
    assert_eq!(check_service_endpoint(&w.view(), Some("s"), &w.services["s"].spec.clone()).unwrap_err(), NO_INGRESS);
    w.add_task("t", "s");
    let ch = w.pass();
    assert_eq!(ch.errors[0], AllocError { kind: ObjectKind::Service, id: "s".into(), message: NO_INGRESS.into() });
    assert_eq!(w.tasks["t"].status.state, TaskState::Failed);
    assert_eq!(w.tasks["t"].status.err, NO_INGRESS);
    assert!(w.services["s"].endpoint.ports.is_empty(), "nothing half-allocated");
}

#[test]
fn tasks_without_networks_go_straight_to_pending() {
    let mut w = World::default();
    w.add_service("s", "web", &[], None);
    w.add_task("t", "s");
    let ch = w.pass();
    assert!(ch.services.is_empty(), "an endpoint with nothing to allocate is already right");
    assert_eq!(w.tasks["t"].status.state, TaskState::Pending);
    assert!(w.tasks["t"].networks_attachments.is_empty());
    // Tasks past `new`, or no longer wanted, are not touched.
    w.add_task("u", "s");
    w.tasks.get_mut("u").unwrap().desired_state = TaskState::Shutdown;
    assert!(w.pass().is_empty());
}

#[test]
fn networks_by_name_and_missing_networks() {
    let mut w = World::default();
    w.add_network("n", overlay("appnet"));
    w.add_service("s", "web", &["appnet"], None);
    w.add_service("g", "ghost", &["nope"], None);
    w.add_task("t", "s");
    w.add_task("u", "g");
    w.pass();
    assert_eq!(w.addr("t", "n"), "10.0.0.3/24");
    assert_eq!(w.tasks["u"].status.err, "network nope not found");
}

#[test]
fn service_networks_are_resolved_and_ingress_is_refused() {
    let mut w = World::default();
    w.add_network("ing", ingress_spec());
    w.add_network("n", overlay("appnet"));
    let spec = |targets: &[&str]| {
        let mut s = ServiceSpec::default();
        s.task_template.networks = targets
            .iter()
            .map(|t| NetworkAttachmentConfig { target: t.to_string(), aliases: vec!["db".into()], ..Default::default() })
            .collect();
        s
    };
    let resolved = check_service_networks(&w.view(), &spec(&["appnet"])).unwrap();
    assert_eq!((resolved[0].target.as_str(), resolved[0].aliases.as_slice()), ("n", &["db".to_string()][..]));
    assert_eq!(check_service_networks(&w.view(), &spec(&["nope"])).unwrap_err(), "network nope not found");
    assert_eq!(
        check_service_networks(&w.view(), &spec(&["ingress"])).unwrap_err(),
        "Service cannot be explicitly attached to the ingress network \"ingress\""
    );
    assert!(check_service_networks(&w.view(), &spec(&["n", "appnet"])).is_err());
}

#[test]
fn removing_a_network_in_use_is_refused_in_dockers_words() {
    let mut w = World::default();
    w.add_network("ing", ingress_spec());
    w.add_network("n", overlay("appnet"));
    w.add_network("free", overlay("free"));
    w.add_service("s", "web", &["n"], ports(vec![publish(80, 0)]));
    w.add_task("t", "s");
    w.pass();
    assert_eq!(check_network_removal(&w.view(), "n").unwrap_err(), Refusal::InUse("network n is in use by service s".into()));
    assert_eq!(
        check_network_removal(&w.view(), "ing").unwrap_err(),
        Refusal::InUse("ingress network cannot be removed because service s depends on it".into())
    );
    assert!(check_network_removal(&w.view(), "free").is_ok());
    assert_eq!(check_network_removal(&w.view(), "zzz").unwrap_err(), Refusal::NotFound("network zzz not found".into()));
    // The service goes; its task is still running.
    w.services.remove("s");
    assert_eq!(check_network_removal(&w.view(), "n").unwrap_err(), Refusal::InUse("network n is in use by task t".into()));
    w.tasks.get_mut("t").unwrap().status.state = TaskState::Shutdown;
    assert!(check_network_removal(&w.view(), "n").is_ok());
    assert!(check_network_removal(&w.view(), "ing").is_ok());
}

#[test]
fn a_racing_write_is_caught_at_apply_time() {
    let mut w = World::default();
    w.add_network("n", overlay("appnet"));
    w.add_service("s", "web", &["n"], Some(EndpointSpec { mode: Some(ResolutionMode::Dnsrr), ports: vec![] }));
    w.pass();
    w.add_task("a", "s");
    w.add_task("b", "s");
    // Two passes computed from the same store (an old and a new leader)...
    let old_leader = allocate(&w.view(), "now");
    w.tasks.remove("b");
    let new_leader = allocate(&w.view(), "now");
    // ... the first lands; the second would give a's address to b.
    let mut after = World { pool: w.pool.clone(), networks: w.networks.clone(), services: w.services.clone(), ..Default::default() };
    for t in old_leader.tasks.iter().filter(|t| t.id == "a") {
        after.tasks.insert(t.id.clone(), t.clone());
    }
    // Pretend b was given a's address by the racing pass.
    let mut b = new_leader.tasks[0].clone();
    b.id = "b".into();
    after.tasks.insert("b".into(), Task { status: Default::default(), networks_attachments: vec![], ..b.clone() });
    let racing = Changes { tasks: vec![b], ..Default::default() };
    let conflicts = conflicting_claims(&after.view(), &racing);
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert!(conflicts[0].contains("has two owners"));
}

#[test]
fn a_write_on_a_network_the_store_lacks_is_refused() {
    let mut w = World::default();
    w.add_network("n", overlay("appnet"));
    w.add_service("s", "web", &["n"], None);
    w.add_task("t", "s");
    // One pass allocates the network and attaches the task ...
    let ch = allocate(&w.view(), "now");
    assert_eq!((ch.networks.len(), ch.tasks.len()), (1, 1));
    // ... but only its task entry lands.
    let tasks_only = Changes { tasks: ch.tasks.clone(), ..Default::default() };
    let conflicts = conflicting_claims(&w.view(), &tasks_only);
    assert!(conflicts[0].contains("which is not allocated"), "{conflicts:?}");
    // Or the network was allocated differently meanwhile.
    let mut other = ch.networks[0].clone();
    other.ipam_options.as_mut().unwrap().configs[0] =
        IpamConfig { subnet: "10.0.9.0/24".into(), gateway: "10.0.9.1".into(), ..Default::default() };
    w.networks.insert("n".into(), other);
    let conflicts = conflicting_claims(&w.view(), &tasks_only);
    assert!(conflicts.iter().any(|c| c.contains("not its allocation")), "{conflicts:?}");
    assert!(conflicting_claims(&World::default().view(), &Changes::default()).is_empty());
}

#[test]
fn verify_finds_double_owners() {
    let mut w = World::default();
    w.add_network("n", overlay("appnet"));
    w.add_service("s", "web", &["n"], None);
    w.add_task("a", "s");
    w.add_task("b", "s");
    w.pass();
    assert!(verify(&w.view()).is_empty());
    let stolen = w.tasks["a"].networks_attachments.clone();
    w.tasks.get_mut("b").unwrap().networks_attachments = stolen;
    assert_eq!(verify(&w.view()), vec!["10.0.0.3/24 on network n has two owners: task a and task b".replace("/24", "")]);
}

#[test]
fn an_idle_pass_skips_the_ledger() {
    let mut w = World::default();
    w.add_network("ing", ingress_spec());
    w.add_network("n", overlay("appnet"));
    w.add_service("s", "web", &["n"], ports(vec![publish(80, 0)]));
    w.add_task("t", "s");
    assert!(needs_work(&w.view()));
    w.pass();
    assert!(!needs_work(&w.view()));
    // Any change that matters is seen.
    let s = w.services.get_mut("s").unwrap();
    s.spec.task_template.networks.clear();
    assert!(needs_work(&w.view()), "a VIP network dropped");
    w.pass();
    w.services.get_mut("s").unwrap().spec.endpoint_spec = ports(vec![publish(80, 8080)]);
    assert!(needs_work(&w.view()), "a port changed");
    w.pass();
    w.add_network("m", overlay("other"));
    assert!(needs_work(&w.view()), "a new network");
    w.pass();
    assert!(!needs_work(&w.view()));
}

#[test]
fn every_node_gets_one_ingress_address_kept_while_it_is_in_the_cluster() {
    let mut w = World::default();
    w.add_node("node-a");
    w.add_node("node-b");
    w.pass();
    assert_eq!(w.node_addr("node-a"), None, "no ingress network, no address");
    w.add_network("ing", ingress_spec());
    w.add_service("s1", "web", &[], ports(vec![publish(80, 8080)]));
    w.add_task("t1", "s1");
    w.pass();
    let (a, b) = (w.node_addr("node-a").unwrap(), w.node_addr("node-b").unwrap());
    assert_ne!(a, b);
    assert!(a.starts_with("10.0.0.") && a.ends_with("/24"), "{a}");
    let task = w.addr("t1", "ing");
    assert!(task != a && task != b && !task.is_empty(), "tasks and nodes share the network's addresses: {task} {a} {b}");
    assert!(w.pass().is_empty(), "addresses stay where they are");
    assert!(!needs_work(&w.view()));

    // A node that leaves frees its address; a new one may take it.
    w.nodes.remove("node-a");
    w.add_node("node-c");
    w.pass();
    assert_eq!(w.node_addr("node-b").unwrap(), b, "the other node keeps its address");
    assert!(verify(&w.view()).is_empty());

    // No ingress network: the nodes' addresses go.
    w.networks.remove("ing");
    assert!(needs_work(&w.view()));
    let ch = w.pass();
    assert_eq!(ch.nodes.len(), 2);
    assert_eq!((w.node_addr("node-b"), w.node_addr("node-c")), (None, None));
}

#[test]
fn a_write_giving_a_node_an_address_someone_took_meanwhile_is_refused() {
    let mut w = World::default();
    w.add_node("node-a");
    w.add_network("ing", ingress_spec());
    w.pass();
    let taken = w.node_addr("node-a").unwrap();
    w.add_node("node-b");
    let mut ch = allocate_with(&w.view(), "now", w.dynamic());
    ch.nodes[0].attachments[0].addresses = vec![taken];
    let clashes = conflicting_claims(&w.view(), &ch);
    assert_eq!(clashes.len(), 1, "{clashes:?}");
    assert!(clashes[0].contains("two owners: node node-a and node node-b"), "{clashes:?}");
}

#[test]
fn a_freed_address_is_not_given_again_at_once() {
    let mut w = World::default();
    w.add_network("n", overlay_with("appnet", "10.9.0.0/24", "10.9.0.0/29", "10.9.0.1", &[]));
    w.add_service("s", "web", &["n"], Some(EndpointSpec { mode: Some(ResolutionMode::Dnsrr), ports: vec![] }));
    w.add_task("t0", "s");
    w.add_task("t1", "s");
    w.pass();
    assert_eq!((w.addr("t0", "n").as_str(), w.addr("t1", "n").as_str()), ("10.9.0.2/24", "10.9.0.3/24"));
    // t0 ends and is replaced: the new task gets the next address, not t0's
    // (whose old connections and learned ports may linger elsewhere).
    w.tasks.get_mut("t0").unwrap().status.state = TaskState::Complete;
    w.add_task("t2", "s");
    w.pass();
    assert_eq!(w.addr("t2", "n"), "10.9.0.4/24");
    // At the end of the range it wraps to the lowest free address.
    for i in 3..7 {
        w.add_task(&format!("t{i}"), "s");
    }
    w.pass();
    assert_eq!(w.addr("t5", "n"), "10.9.0.7/24");
    assert_eq!(w.addr("t6", "n"), "10.9.0.2/24", "wrapped to the one t0 freed");
}

#[test]
fn a_standalone_containers_attachment_gets_an_address_on_attachable_networks_only() {
    let mut w = World::default();
    let mut attachable = overlay_with("appnet", "10.9.0.0/24", "", "", &[]);
    attachable.attachable = true;
    w.add_network("a", attachable);
    w.add_network("p", overlay_with("private", "10.9.1.0/24", "", "", &[]));
    w.add_node("node1");
    let add = |w: &mut World, id: &str, net: &str| {
        let t = crate::control::attachment_task(id.into(), "node1", (&format!("ctr-{id}"), id), net, vec!["db".into()], "now");
        let version = w.bump();
        w.tasks.insert(id.into(), Task { version, ..t });
    };
    add(&mut w, "x1", "a");
    add(&mut w, "x2", "p");
    w.pass();
    // On its node already: past the scheduler, straight to assigned.
    let x1 = &w.tasks["x1"];
    assert_eq!((x1.status.state, x1.status.message.as_str()), (TaskState::Assigned, ATTACHED_MESSAGE));
    assert_eq!(w.addr("x1", "a"), "10.9.0.2/24");
    let x2 = &w.tasks["x2"];
    assert_eq!((x2.status.state, x2.status.err.as_str()), (TaskState::Failed, "network private not manually attachable"));
    assert!(x2.networks_attachments.is_empty());
    // Its address is owned like a task's: the next one gets another.
    add(&mut w, "x3", "a");
    w.pass();
    assert_eq!(w.addr("x3", "a"), "10.9.0.3/24");
    assert!(verify(&w.view()).is_empty());
    // Gone from the store (detached): its address is free again.
    w.tasks.remove("x1");
    assert!(verify(&w.view()).is_empty());
}
