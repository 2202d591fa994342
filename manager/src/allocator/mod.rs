//! The network allocator: subnets and VXLAN IDs for networks, virtual IPs
//! and published ports for services, addresses for tasks.
//!
//! # Where allocations live
//!
//! There is no allocator state of its own. As in SwarmKit, every allocation
//! is kept in the object that owns it, so the replicated store is the only
//! ledger and a new leader knows everything the old one gave out:
//!
//! | what | kept in |
//! |---|---|
//! | a network's subnet, gateway, range and aux addresses | `Network.IPAMOptions` |
//! | its VXLAN ID (from 4096) | `Network.DriverState.Options["com.docker.network.driver.overlay.vxlanid_list"]` |
//! | a service's VIP on each network (endpoint mode `vip` only) | `Service.Endpoint.VirtualIPs` |
//! | its published ports (ingress mode: cluster-wide) | `Service.Endpoint.Ports` (index-aligned with `Endpoint.Spec.Ports`) |
//! | a task's address on each network | `Task.NetworksAttachments[].Addresses` |
//!
//! Something is owned exactly as long as its owner is in the store: a
//! network owns its subnet and VNI, a service its VIPs and ingress ports, a
//! task its addresses until it is observed past `running` (it will never
//! run again, so it uses none; the addresses stay in the object as history).
//! Removing a network, service or task therefore frees what it held: the
//! next pass finds it free. A task's MAC address is not stored: it is
//! derived from its IPv4 address as Docker does (`mac_address`).
//!
//! # What the caller does
//!
//! `allocate(&view, now)` is a pure function of a snapshot of the store,
//! like the orchestrators. The leader calls it after every change that
//! matters (a network, service or task created, updated or removed; a task
//! ending) and at least once a second, and proposes the returned `Changes`
//! as one versioned write, applied all or nothing:
//!
//! - each object is written only if the store still has it at the version
//!   it was read (`Version.Index`), like `Command::TaskIntents`; a stale
//!   write is dropped and the next pass reconciles from the new state;
//! - at apply time, `conflicting_claims(&view, &changes)` must be empty
//!   (else the write is dropped): it re-checks the claims against the store
//!   as it is then, so two allocator passes that raced (an old leader's
//!   write still in the log when a new leader allocated) cannot give one
//!   address, subnet, VNI or port to two owners.
//!
//! A pass with nothing to do costs a scan, not a ledger (`needs_work`).
//!
//! ```
//! use std::collections::BTreeMap;
//! use shoal_api::network::{ingress_spec, Network, NetworkCreateRequest};
//! use shoal_api::service::Service;
//! use shoal_api::task::Task;
//! use shoal_manager::allocator::{allocate, conflicting_claims, AddressPool, View};
//!
//! // The store's objects (here: the ingress network and one new overlay).
//! let pool = AddressPool::new(&[], 0).unwrap(); // the swarm's DefaultAddrPool, SubnetSize
//! let mut networks = BTreeMap::new();
//! for (id, spec) in [("ing", ingress_spec()), ("app", NetworkCreateRequest { name: "appnet".into(), ..Default::default() }.to_spec().unwrap())] {
//!     networks.insert(id.to_string(), Network { id: id.into(), spec, ..Default::default() });
//! }
//! let (services, tasks) = (BTreeMap::<String, Service>::new(), BTreeMap::<String, Task>::new());
//! let nodes = BTreeMap::new(); // each node gets an address on the ingress network
//! let view = View { pool: &pool, networks: &networks, services: &services, tasks: &tasks, nodes: &nodes };
//!
//! // On the leader: one pass, proposed as one versioned write ...
//! let changes = allocate(&view, "2026-01-01T00:00:00Z");
//! assert_eq!(changes.networks.len(), 2);
//! // ... which the store applies only if nobody took the same things meanwhile.
//! assert!(conflicting_claims(&view, &changes).is_empty());
//! let app = changes.networks.iter().find(|n| n.id == "app").unwrap();
//! assert_eq!(app.allocated_ipam().unwrap().subnet, "10.0.1.0/24");
//! assert_eq!(app.vxlan_id(), Some(4097));
//! ```
//!
//! Tasks are allocated in state `new` (the orchestrator creates them so) and
//! leave it as `pending` with their attachments (what the scheduler places),
//! or as `failed` with an error that names the cause, e.g. `no available IP
//! addresses on network appnet (10.0.1.0/24)` — never left waiting for
//! something that will not come. A service whose endpoint cannot be
//! allocated keeps its old one and its new tasks fail with that error.
//! `Changes::errors` says what could not be allocated, for the log.
//!
//! The API checks requests up front with the same rules, so users get the
//! error at once: `check_network` (network create), `check_service_networks`
//! and `check_service_endpoint` (service create/update),
//! `check_network_removal` (network remove). They are pure too, so the
//! store can run them again at apply time, where two requests that passed
//! them concurrently are serialised (two creates asking for one subnet or
//! one port: the second is refused there rather than failing its tasks
//! later). IDs and times are inputs; nothing here does I/O or reads a clock.

mod ipam;
mod ports;
#[cfg(test)]
mod proptests;
mod subnets;
#[cfg(test)]
mod tests;
mod vxlan;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use shoal_api::network::{
    IpamConfig, IpamOptions, Network, NetworkAttachment, NetworkSpec, DEFAULT_IPAM_DRIVER, OVERLAY_DRIVER, VXLAN_ID_OPTION,
};
use shoal_api::service::{Endpoint, EndpointSpec, EndpointVirtualIp, PublishMode, ResolutionMode, Service, ServiceSpec};
use shoal_api::task::{Driver, NetworkAttachmentConfig, Task, TaskState, TaskStatus};
use shoal_api::Node;

pub use ipam::{mac_address, Addressing};
pub use ports::{PortKey, DYNAMIC_PORTS};
pub use subnets::{address_of, AddressPool, Subnet, DEFAULT_POOL, DEFAULT_POOL_SIZE};
pub use vxlan::{FIRST_VNI, LAST_VNI};

/// The status message of a task whose networks are allocated (SwarmKit's).
pub const PENDING_MESSAGE: &str = "pending task scheduling";
/// The status message of a network attachment task once allocated.
pub const ATTACHED_MESSAGE: &str = "network attachment ready";
/// The status message of a task that could not be allocated (`Err` says why).
pub const FAILED_MESSAGE: &str = "network allocation failed";

/// What the allocator reads: the cluster's address pool and the store's
/// networks, services and tasks, by ID.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub pool: &'a AddressPool,
    pub networks: &'a BTreeMap<String, Network>,
    pub services: &'a BTreeMap<String, Service>,
    pub tasks: &'a BTreeMap<String, Task>,
    /// Nodes hold an address on the ingress network each (the routing
    /// mesh's entry there).
    pub nodes: &'a BTreeMap<String, Node>,
}

/// One pass's writes: whole objects, each with the version it was read at.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Changes {
    /// Networks newly given a subnet and a VNI.
    pub networks: Vec<Network>,
    /// Services whose `Endpoint` (ports, VIPs) changed.
    pub services: Vec<Service>,
    /// Tasks moved from `new` to `pending` (attached) or `failed`.
    pub tasks: Vec<Task>,
    /// Nodes given their ingress address (or losing a stale one).
    pub nodes: Vec<NodeAttachments>,
    /// What could not be allocated and why (not a write; for the log).
    pub errors: Vec<AllocError>,
}

impl Changes {
    /// No writes (errors alone are not writes).
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty() && self.services.is_empty() && self.tasks.is_empty() && self.nodes.is_empty()
    }
}

/// A node's new `Attachments`: its address on the ingress network, or
/// nothing once there is no ingress network. Only the allocator writes
/// them, so the write is the whole list (no version: a node's version
/// belongs to its spec and status, which the allocator does not touch).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeAttachments {
    pub node_id: String,
    pub attachments: Vec<NetworkAttachment>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllocError {
    pub kind: ObjectKind,
    pub id: String,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ObjectKind {
    Network,
    Service,
    Task,
    Node,
}

/// Who holds an address on a network.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Owner {
    /// A service's virtual IP.
    Vip(String),
    Task(String),
    /// A node's entry into the routing mesh (ingress network only).
    Node(String),
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Vip(s) => write!(f, "the VIP of service {s}"),
            Owner::Task(t) => write!(f, "task {t}"),
            Owner::Node(n) => write!(f, "node {n}"),
        }
    }
}

/// Whether a task still holds its addresses: until it is observed past
/// `running`, as it may still run (or be about to).
pub fn task_holds_addresses(t: &Task) -> bool {
    t.status.state <= TaskState::Running
}

/// Whether the network has its subnet and VNI.
pub fn is_allocated(n: &Network) -> bool {
    n.vxlan_id().is_some() && n.allocated_ipam().is_some()
}

/// Whether a service's tasks join the ingress network (and, in VIP mode,
/// the service gets a VIP there): it has an ingress-mode port, SwarmKit's
/// `IsIngressNetworkNeeded`.
pub fn needs_ingress(spec: &ServiceSpec) -> bool {
    spec.endpoint_spec.as_ref().is_some_and(|e| e.ports.iter().any(|p| p.publish_mode == PublishMode::Ingress))
}

/// The ingress network, if there is one (the oldest, should there be two).
pub fn ingress_network(networks: &BTreeMap<String, Network>) -> Option<&Network> {
    networks.values().filter(|n| n.spec.ingress).min_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)))
}

/// A network by ID, or by name when the name is unique.
pub fn resolve_network<'a>(networks: &'a BTreeMap<String, Network>, target: &str) -> Option<&'a Network> {
    if let Some(n) = networks.get(target) {
        return Some(n);
    }
    let mut named = networks.values().filter(|n| n.spec.name == target);
    match (named.next(), named.next()) {
        (Some(n), None) => Some(n),
        _ => None,
    }
}

fn full_message(n: &Network, a: &Addressing) -> String {
    format!("no available IP addresses on network {} ({})", n.spec.name, a.subnet)
}

/// A network's subnet and the error its exhaustion gives.
fn addressing_of(l: &Ledger, n: &Network) -> Result<(Subnet, String), String> {
    let a = l.nets.get(&n.id).ok_or_else(|| format!("network {} has an unreadable allocation", n.spec.name))?;
    Ok((a.subnet, full_message(n, a)))
}

/// Why a network may not be created or removed, in Docker's (or
/// SwarmKit's) words; the kind decides the answer's status
/// (`store::StoreError`'s mapping).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A name, the ingress network or a VXLAN ID already taken.
    Taken(String),
    NotFound(String),
    /// Still used by a service or a task.
    InUse(String),
    /// Anything else about the request.
    Invalid(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Taken(m) | Refusal::NotFound(m) | Refusal::InUse(m) | Refusal::Invalid(m) => f.write_str(m),
        }
    }
}

const POOL_OVERLAP: &str = "invalid pool request: Pool overlaps with other one on this address space";
const POOL_EXHAUSTED: &str = "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network";
const NO_INGRESS: &str = "service needs ingress network, but no ingress network is present";

// ---------------------------------------------------------------------------
// The ledger: who holds what, rebuilt from the objects on every pass.

#[derive(Default)]
struct Ledger {
    subnets: Vec<(Subnet, String)>,
    vnis: BTreeMap<u32, String>,
    /// Addressing of each allocated network, by network ID.
    nets: BTreeMap<String, Addressing>,
    addrs: BTreeMap<String, BTreeMap<u32, Owner>>,
    ports: BTreeMap<PortKey, String>,
    conflicts: Vec<String>,
    /// Checking a write rather than reading the store: an address on a
    /// network the store does not have allocated (as the write expects) is
    /// a conflict too.
    strict: bool,
}

impl Ledger {
    fn build(view: &View, skip: &dyn Fn(ObjectKind, &str) -> bool) -> Ledger {
        let mut l = Ledger::default();
        for n in view.networks.values().filter(|n| !skip(ObjectKind::Network, &n.id)) {
            l.claim_network(n);
        }
        for s in view.services.values().filter(|s| !skip(ObjectKind::Service, &s.id)) {
            l.claim_service(s);
        }
        for t in view.tasks.values().filter(|t| !skip(ObjectKind::Task, &t.id)) {
            l.claim_task(t);
        }
        for n in view.nodes.values().filter(|n| !skip(ObjectKind::Node, &n.id)) {
            l.claim_node(&n.id, &n.attachments);
        }
        l
    }

    fn claim_node(&mut self, id: &str, attachments: &[NetworkAttachment]) {
        for a in attachments {
            for addr in &a.addresses {
                self.claim_address(&a.network.id, addr, Owner::Node(id.to_string()));
            }
        }
    }

    fn claim_network(&mut self, n: &Network) {
        let (Some(vni), Some(cfg)) = (n.vxlan_id(), n.allocated_ipam()) else { return };
        let a = match Addressing::of_allocated(cfg) {
            Ok(a) => a,
            Err(e) => return self.conflicts.push(format!("network {}: {e}", n.id)),
        };
        if let Some((s, other)) = self.subnets.iter().find(|(s, _)| s.overlaps(&a.subnet)) {
            self.conflicts.push(format!("subnet {} of network {} overlaps {s} of network {other}", a.subnet, n.id));
        }
        if let Some(other) = self.vnis.get(&vni) {
            self.conflicts.push(format!("VXLAN ID {vni} of network {} is also network {other}'s", n.id));
        }
        self.subnets.push((a.subnet, n.id.clone()));
        self.vnis.entry(vni).or_insert_with(|| n.id.clone());
        self.nets.insert(n.id.clone(), a);
        self.addrs.entry(n.id.clone()).or_default();
    }

    fn claim_address(&mut self, network_id: &str, cidr: &str, owner: Owner) {
        // Addresses on networks that are gone conflict with nothing (but a
        // write must not hand out addresses on a network that is not there).
        let Some(a) = self.nets.get(network_id) else {
            if self.strict {
                self.conflicts.push(format!("{owner} is given {cidr} on network {network_id}, which is not allocated"));
            }
            return;
        };
        let Some(ip) = address_of(cidr) else {
            return self.conflicts.push(format!("{owner} has an unreadable address {cidr:?} on network {network_id}"));
        };
        if !a.assignable(ip) {
            self.conflicts.push(format!("{owner} holds {ip} on network {network_id}, which is reserved or outside its range"));
        }
        let held = self.addrs.get_mut(network_id).expect("every allocated network has an address book");
        match held.get(&u32::from(ip)) {
            Some(other) if *other != owner => {
                self.conflicts.push(format!("{ip} on network {network_id} has two owners: {other} and {owner}"))
            }
            _ => {
                held.insert(u32::from(ip), owner);
            }
        }
    }

    fn release_address(&mut self, network_id: &str, cidr: &str, owner: &Owner) {
        if let (Some(held), Some(ip)) = (self.addrs.get_mut(network_id), address_of(cidr)) {
            if held.get(&u32::from(ip)) == Some(owner) {
                held.remove(&u32::from(ip));
            }
        }
    }

    fn claim_service(&mut self, s: &Service) {
        for v in &s.endpoint.virtual_ips {
            self.claim_address(&v.network_id, &v.addr, Owner::Vip(s.id.clone()));
        }
        for p in s.endpoint.ports.iter().filter(|p| p.publish_mode == PublishMode::Ingress && p.published_port != 0) {
            match self.ports.get(&ports::key(p)) {
                Some(other) if *other != s.id => self.conflicts.push(format!(
                    "published port {}/{} has two owners: services {other} and {}",
                    p.published_port,
                    ports::proto_name(p.protocol),
                    s.id
                )),
                _ => {
                    self.ports.insert(ports::key(p), s.id.clone());
                }
            }
        }
    }

    fn release_service(&mut self, s: &Service) {
        for v in &s.endpoint.virtual_ips {
            self.release_address(&v.network_id, &v.addr, &Owner::Vip(s.id.clone()));
        }
        self.ports.retain(|_, owner| *owner != s.id);
    }

    fn claim_task(&mut self, t: &Task) {
        if !task_holds_addresses(t) {
            return;
        }
        for a in &t.networks_attachments {
            let subnet = a.network.allocated_ipam().map(|c| c.subnet.as_str()).unwrap_or_default();
            if self.strict && self.nets.get(&a.network.id).is_some_and(|n| n.subnet.to_string() != subnet) {
                let owner = Owner::Task(t.id.clone());
                self.conflicts.push(format!("{owner} is attached to network {} as {subnet:?}, which is not its allocation", a.network.id));
            }
            for addr in &a.addresses {
                self.claim_address(&a.network.id, addr, Owner::Task(t.id.clone()));
            }
        }
    }

    fn release_task(&mut self, t: &Task) {
        for a in &t.networks_attachments {
            for addr in &a.addresses {
                self.release_address(&a.network.id, addr, &Owner::Task(t.id.clone()));
            }
        }
    }

    /// The next free address of a network after the highest one held (or
    /// after the last one this pass took), wrapping to the lowest free one
    /// at the end of the range. Serial, as libnetwork allocates: a freed
    /// address is not given out again at once, so the conntrack entries,
    /// learned bridge ports and cached neighbours of its previous owner
    /// have aged out by the time a new task has it.
    fn take_address(&mut self, network_id: &str, cursor: &mut BTreeMap<String, u32>, owner: Owner) -> Option<Ipv4Addr> {
        let a = self.nets.get(network_id)?;
        let held = self.addrs.get_mut(network_id)?;
        let from = match cursor.get(network_id) {
            Some(c) => *c,
            None => held.keys().next_back().map_or(0, |last| last.saturating_add(1)),
        };
        let ip = a.next_free(held, from).or_else(|| a.next_free(held, 0))?;
        held.insert(u32::from(ip), owner);
        cursor.insert(network_id.to_string(), u32::from(ip).saturating_add(1));
        Some(ip)
    }

    /// A subnet and VNI for a network not yet allocated.
    fn plan_network(&self, n: &Network, pool: &AddressPool) -> Result<Network, Refusal> {
        let requested: Option<&IpamConfig> = n.spec.ipam_options.as_ref().and_then(|o| o.configs.first());
        let taken: Vec<Subnet> = self.subnets.iter().map(|(s, _)| *s).collect();
        let subnet = match requested.filter(|c| !c.subnet.is_empty()) {
            Some(c) => {
                let s: Subnet =
                    c.subnet.parse().map_err(|_| Refusal::Invalid(format!("ipam configuration: invalid subnet {}", c.subnet)))?;
                if taken.iter().any(|t| t.overlaps(&s)) {
                    return Err(Refusal::Invalid(POOL_OVERLAP.into()));
                }
                s
            }
            None => pool.next_free(&taken).ok_or_else(|| Refusal::Invalid(POOL_EXHAUSTED.into()))?,
        };
        let addressing = Addressing::plan(requested, subnet).map_err(Refusal::Invalid)?;
        let driver_opts = n.spec.driver_configuration.as_ref().map(|d| d.options.clone()).unwrap_or_default();
        let vni = match driver_opts.get(VXLAN_ID_OPTION) {
            Some(v) => {
                let v = vxlan::parse_requested(v).map_err(Refusal::Invalid)?;
                if let Some(other) = self.vnis.get(&v) {
                    return Err(Refusal::Taken(format!("VXLAN ID {v} is already in use by network {other}")));
                }
                v
            }
            None => vxlan::next_free(&self.vnis).ok_or_else(|| Refusal::Invalid("no VXLAN ID is left for the network".into()))?,
        };
        let mut out = n.clone();
        let ipam_driver = n.spec.ipam_options.as_ref().map(|o| o.driver.clone()).unwrap_or_default();
        out.ipam_options = Some(IpamOptions {
            driver: Driver { name: DEFAULT_IPAM_DRIVER.into(), options: ipam_driver.options },
            configs: vec![addressing.to_config(requested)],
        });
        let mut options = driver_opts;
        options.insert(VXLAN_ID_OPTION.into(), vni.to_string());
        out.driver_state = Some(Driver { name: OVERLAY_DRIVER.into(), options });
        Ok(out)
    }
}

// ---------------------------------------------------------------------------
// The pass.

/// Allocates what is missing and returns the writes (see the module docs).
/// `now` (RFC 3339) stamps the status of the tasks it moves on.
pub fn allocate(view: &View, now: &str) -> Changes {
    if !needs_work(view) {
        return Changes::default();
    }
    allocate_with(view, now, DYNAMIC_PORTS)
}

/// Whether a pass could write anything: a network without its allocation,
/// a task in `new`, or a service whose endpoint does not match its spec.
/// A scan without building the ledger, so the idle pass (the common case)
/// is cheap; when it says no, the full pass would write nothing (the
/// property test checks this on every step).
pub fn needs_work(view: &View) -> bool {
    if view.networks.values().any(|n| !is_allocated(n)) {
        return true;
    }
    if view.tasks.values().any(|t| t.status.state == TaskState::New && t.desired_state <= TaskState::Complete) {
        return true;
    }
    let ingress = ingress_network(view.networks);
    if view.nodes.values().any(|n| !node_settled(ingress, n)) {
        return true;
    }
    let ingress = ingress.map(|n| n.id.as_str());
    view.services.values().any(|s| !endpoint_settled(view, ingress, s))
}

/// Whether a node's attachments are what the mesh needs: one address on
/// the allocated ingress network, or none when there is no such network.
fn node_settled(ingress: Option<&Network>, n: &Node) -> bool {
    match ingress.filter(|i| is_allocated(i)) {
        None => n.attachments.is_empty(),
        Some(i) => matches!(n.attachments.as_slice(), [a] if a.network.id == i.id && a.addresses.len() == 1),
    }
}

/// Whether a service's endpoint already is what its spec asks for: the
/// same port configurations (explicit ports as given, ingress ports
/// published) and a VIP on exactly the networks it should have one on.
fn endpoint_settled(view: &View, ingress: Option<&str>, s: &Service) -> bool {
    let default = EndpointSpec::default();
    let spec = s.spec.endpoint_spec.as_ref().unwrap_or(&default);
    if s.endpoint.spec != *spec || s.endpoint.ports.len() != spec.ports.len() {
        return false;
    }
    for (want, have) in spec.ports.iter().zip(&s.endpoint.ports) {
        let same = want.name == have.name
            && want.protocol == have.protocol
            && want.target_port == have.target_port
            && want.publish_mode == have.publish_mode
            && (want.published_port == 0 || want.published_port == have.published_port);
        if !same || (want.publish_mode == PublishMode::Ingress && have.published_port == 0) {
            return false;
        }
    }
    let mut expected: Vec<&str> = Vec::new();
    if spec.mode != Some(ResolutionMode::Dnsrr) {
        if needs_ingress(&s.spec) {
            match ingress {
                Some(id) => expected.push(id),
                None => return true, // an error the full pass reports; nothing to write
            }
        }
        for a in &s.spec.task_template.networks {
            match resolve_network(view.networks, &a.target) {
                Some(n) if !expected.contains(&n.id.as_str()) => expected.push(&n.id),
                Some(_) => {}
                None => return true, // likewise
            }
        }
    }
    s.endpoint.virtual_ips.iter().map(|v| v.network_id.as_str()).eq(expected)
}

fn allocate_with(view: &View, now: &str, dynamic: std::ops::RangeInclusive<u32>) -> Changes {
    let mut l = Ledger::build(view, &|_, _| false);
    let mut ch = Changes::default();

    // Networks: those asking for a subnet first, so the pool does not take
    // it from under them; then by age.
    let mut nets: BTreeMap<String, Network> = BTreeMap::new();
    let mut net_errors: BTreeMap<String, String> = BTreeMap::new();
    let mut pending: Vec<&Network> = view.networks.values().filter(|n| !is_allocated(n)).collect();
    let explicit = |n: &Network| n.spec.ipam_options.as_ref().and_then(|o| o.configs.first()).is_some_and(|c| !c.subnet.is_empty());
    pending.sort_by(|a, b| (!explicit(a), &a.created_at, &a.id).cmp(&(!explicit(b), &b.created_at, &b.id)));
    for n in pending {
        match l.plan_network(n, view.pool) {
            Ok(done) => {
                l.claim_network(&done);
                nets.insert(done.id.clone(), done.clone());
                ch.networks.push(done);
            }
            Err(e) => {
                net_errors.insert(n.id.clone(), e.to_string());
                ch.errors.push(AllocError { kind: ObjectKind::Network, id: n.id.clone(), message: e.to_string() });
            }
        }
    }
    for (id, n) in view.networks {
        nets.entry(id.clone()).or_insert_with(|| n.clone());
    }
    let ingress = ingress_network(&nets).map(|n| n.id.clone());

    // A network a service or task asks for, allocated, or why not.
    let usable = |target: &str| -> Result<&Network, String> {
        let n = resolve_network(&nets, target).ok_or_else(|| format!("network {target} not found"))?;
        match net_errors.get(&n.id) {
            Some(e) => Err(format!("network {} could not be allocated: {e}", n.spec.name)),
            None if !is_allocated(n) => Err(format!("network {} is not allocated", n.spec.name)),
            None => Ok(n),
        }
    };
    // The networks of a service's tasks (ingress first, as SwarmKit), once each.
    let networks_of = |spec: &ServiceSpec, task_networks: &[NetworkAttachmentConfig]| -> Result<Vec<String>, String> {
        let mut out: Vec<String> = Vec::new();
        if needs_ingress(spec) {
            let id = ingress.as_deref().ok_or(NO_INGRESS)?;
            out.push(usable(id)?.id.clone());
        }
        for target in task_networks {
            let id = usable(&target.target)?.id.clone();
            if !out.contains(&id) {
                out.push(id);
            }
        }
        Ok(out)
    };

    // Services, oldest first (the first to ask keeps a contested port).
    let mut wanted: BTreeMap<PortKey, String> = BTreeMap::new();
    let mut services: Vec<&Service> = view.services.values().collect();
    services.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
    for s in &services {
        for p in s.spec.endpoint_spec.iter().flat_map(|e| e.ports.iter()) {
            if p.publish_mode == PublishMode::Ingress && p.published_port != 0 {
                wanted.entry(ports::key(p)).or_insert_with(|| s.id.clone());
            }
        }
    }
    let name_of = |id: &str| view.services.get(id).map(|s| s.spec.name.clone()).unwrap_or_default();
    let mut cursor: BTreeMap<String, u32> = BTreeMap::new();
    let mut svc_errors: BTreeMap<String, String> = BTreeMap::new();
    for s in services {
        let planned = (|| -> Result<Endpoint, String> {
            let spec = s.spec.endpoint_spec.clone().unwrap_or_default();
            ports::validate_spec(&spec)?;
            let book = ports::PortBook { owners: &l.ports, wanted: &wanted, dynamic: dynamic.clone() };
            let allocated_ports = book.allocate(&s.id, &spec, &s.endpoint, &name_of)?;
            let mut vips = Vec::new();
            if spec.mode != Some(ResolutionMode::Dnsrr) {
                for net_id in networks_of(&s.spec, &s.spec.task_template.networks)? {
                    let me = Owner::Vip(s.id.clone());
                    let kept = s.endpoint.virtual_ips.iter().find(|v| {
                        v.network_id == net_id
                            && address_of(&v.addr).is_some_and(|ip| l.addrs.get(&net_id).and_then(|h| h.get(&u32::from(ip))) == Some(&me))
                    });
                    let addr = match kept {
                        Some(v) => v.addr.clone(),
                        None => {
                            let (subnet, full) = addressing_of(&l, &nets[&net_id])?;
                            let ip = l.take_address(&net_id, &mut cursor, me).ok_or(full)?;
                            subnet.cidr_of(ip)
                        }
                    };
                    vips.push(EndpointVirtualIp { network_id: net_id, addr });
                }
            }
            Ok(Endpoint { spec, ports: allocated_ports, virtual_ips: vips })
        })();
        match planned {
            Ok(ep) if ep == s.endpoint => {}
            Ok(ep) => {
                let mut new = (*s).clone();
                new.endpoint = ep;
                l.release_service(s);
                l.claim_service(&new);
                ch.services.push(new);
            }
            Err(e) => {
                // VIPs taken on the way stay unused: give them back.
                let me = Owner::Vip(s.id.clone());
                for held in l.addrs.values_mut() {
                    held.retain(|_, o| *o != me);
                }
                l.claim_service(s);
                svc_errors.insert(s.id.clone(), e.clone());
                ch.errors.push(AllocError { kind: ObjectKind::Service, id: s.id.clone(), message: e });
            }
        }
    }

    // A standalone container's networks: attachable overlays only.
    let attachable_of = |task_networks: &[NetworkAttachmentConfig]| -> Result<Vec<String>, String> {
        let mut out: Vec<String> = Vec::new();
        for target in task_networks {
            let n = usable(&target.target)?;
            if !n.spec.attachable || n.spec.ingress {
                return Err(format!("network {} not manually attachable", n.spec.name));
            }
            if !out.contains(&n.id) {
                out.push(n.id.clone());
            }
        }
        Ok(out)
    };

    // Tasks waiting in `new`: a service's, or a network attachment task
    // (already on its node: it goes to `assigned`, past the scheduler).
    for t in view.tasks.values() {
        if t.status.state != TaskState::New || t.desired_state > TaskState::Complete {
            continue;
        }
        let service = view.services.get(&t.service_id);
        if service.is_none() && !t.spec.is_attachment() {
            continue;
        }
        let attached = (|| -> Result<Vec<NetworkAttachment>, String> {
            let wanted = match service {
                Some(s) => match svc_errors.get(&s.id) {
                    Some(e) => return Err(e.clone()),
                    None => networks_of(&s.spec, &t.spec.networks)?,
                },
                None => attachable_of(&t.spec.networks)?,
            };
            let mut out = Vec::new();
            for net_id in wanted {
                let n = &nets[&net_id];
                let (subnet, full) = addressing_of(&l, n)?;
                match l.take_address(&net_id, &mut cursor, Owner::Task(t.id.clone())) {
                    Some(ip) => out.push(NetworkAttachment { network: n.clone(), addresses: vec![subnet.cidr_of(ip)] }),
                    None => {
                        // Give back what this task took on other networks.
                        let partial = Task { id: t.id.clone(), networks_attachments: out, ..Default::default() };
                        l.release_task(&partial);
                        return Err(full);
                    }
                }
            }
            Ok(out)
        })();
        let mut new = t.clone();
        match attached {
            Ok(attachments) => {
                new.networks_attachments = attachments;
                let (state, message) =
                    if t.spec.is_attachment() { (TaskState::Assigned, ATTACHED_MESSAGE) } else { (TaskState::Pending, PENDING_MESSAGE) };
                new.status = TaskStatus { timestamp: now.into(), state, message: message.into(), ..Default::default() };
            }
            Err(e) => {
                ch.errors.push(AllocError { kind: ObjectKind::Task, id: t.id.clone(), message: e.clone() });
                new.status = TaskStatus {
                    timestamp: now.into(),
                    state: TaskState::Failed,
                    message: FAILED_MESSAGE.into(),
                    err: e,
                    ..Default::default()
                };
            }
        }
        ch.tasks.push(new);
    }

    // Nodes: an address each on the ingress network, kept while it is
    // theirs (a node's address never moves while it is in the cluster).
    let ingress_net = ingress.as_ref().and_then(|id| nets.get(id)).filter(|n| is_allocated(n) && !net_errors.contains_key(&n.id));
    for node in view.nodes.values() {
        let me = Owner::Node(node.id.clone());
        let want: Vec<NetworkAttachment> =
            match ingress_net {
                None => Vec::new(),
                Some(n) => {
                    let kept =
                        node.attachments.iter().find(|a| a.network.id == n.id).and_then(|a| a.addresses.first()).filter(|c| {
                            address_of(c).is_some_and(|ip| l.addrs.get(&n.id).and_then(|h| h.get(&u32::from(ip))) == Some(&me))
                        });
                    let cidr = match kept {
                        Some(c) => Some(c.clone()),
                        None => match addressing_of(&l, n) {
                            Ok((subnet, full)) => match l.take_address(&n.id, &mut cursor, me.clone()) {
                                Some(ip) => Some(subnet.cidr_of(ip)),
                                None => {
                                    ch.errors.push(AllocError { kind: ObjectKind::Node, id: node.id.clone(), message: full });
                                    None
                                }
                            },
                            Err(e) => {
                                ch.errors.push(AllocError { kind: ObjectKind::Node, id: node.id.clone(), message: e });
                                None
                            }
                        },
                    };
                    cidr.map(|c| vec![NetworkAttachment { network: n.clone(), addresses: vec![c] }]).unwrap_or_default()
                }
            };
        let same = want.len() == node.attachments.len()
            && want.iter().zip(&node.attachments).all(|(w, h)| w.network.id == h.network.id && w.addresses == h.addresses);
        if !same {
            ch.nodes.push(NodeAttachments { node_id: node.id.clone(), attachments: want });
        }
    }
    ch
}

// ---------------------------------------------------------------------------
// Checks.

/// Every double owner and misplaced allocation in the store: subnets that
/// overlap, a VNI or ingress port held twice, an address with two live
/// owners, or one that is reserved or outside its network's range. Empty
/// in a healthy store.
pub fn verify(view: &View) -> Vec<String> {
    Ledger::build(view, &|_, _| false).conflicts
}

/// Apply-time check of one pass's writes against the store as it is when
/// they are applied: what they claim that someone else now holds, and
/// addresses on networks the store does not have allocated as the write
/// expects. Empty means the write may be applied. Should the caller split
/// a large pass into several entries, networks go first, then services,
/// then tasks, and a refused entry ends the pass (the next one redoes the
/// rest).
pub fn conflicting_claims(view: &View, changes: &Changes) -> Vec<String> {
    let ids = |kind: ObjectKind| -> BTreeSet<&str> {
        match kind {
            ObjectKind::Network => changes.networks.iter().map(|n| n.id.as_str()).collect(),
            ObjectKind::Service => changes.services.iter().map(|s| s.id.as_str()).collect(),
            ObjectKind::Task => changes.tasks.iter().map(|t| t.id.as_str()).collect(),
            ObjectKind::Node => changes.nodes.iter().map(|n| n.node_id.as_str()).collect(),
        }
    };
    let changed = [ids(ObjectKind::Network), ids(ObjectKind::Service), ids(ObjectKind::Task), ids(ObjectKind::Node)];
    let mut l = Ledger::build(view, &|kind, id| changed[kind as usize].contains(id));
    l.strict = true;
    let before = l.conflicts.len();
    for n in &changes.networks {
        l.claim_network(n);
    }
    for s in &changes.services {
        l.claim_service(s);
    }
    for t in &changes.tasks {
        l.claim_task(t);
    }
    for n in &changes.nodes {
        l.claim_node(&n.node_id, &n.attachments);
    }
    l.conflicts.split_off(before)
}

/// Checks a network about to be created (after
/// `NetworkCreateRequest::to_spec`): its IPAM configuration, its subnet
/// against the other networks', the pool when it gives none, a second
/// ingress network, a requested VXLAN ID. The message is Docker's or
/// SwarmKit's where they have one.
pub fn check_network(view: &View, spec: &NetworkSpec) -> Result<(), Refusal> {
    if spec.ingress {
        if let Some(n) = ingress_network(view.networks) {
            return Err(Refusal::Taken(format!("ingress network ({}) is already present", n.id)));
        }
    }
    if view.networks.values().any(|n| n.spec.name == spec.name) {
        return Err(Refusal::Taken(format!("network with name {} already exists", spec.name)));
    }
    let l = Ledger::build(view, &|_, _| false);
    let candidate = Network { spec: spec.clone(), ..Default::default() };
    l.plan_network(&candidate, view.pool).map(|_| ())
}

/// Checks a service's endpoint before create (`service_id` None) or update:
/// SwarmKit's `validateEndpointSpec` and `checkPortConflicts`, and that an
/// ingress network exists when ingress ports are asked for.
pub fn check_service_endpoint(view: &View, service_id: Option<&str>, spec: &ServiceSpec) -> Result<(), String> {
    let endpoint = spec.endpoint_spec.clone().unwrap_or_default();
    ports::validate_spec(&endpoint)?;
    ports::check_conflicts(&endpoint, view.services.values().filter(|s| Some(s.id.as_str()) != service_id))?;
    if needs_ingress(spec) && ingress_network(view.networks).is_none() {
        return Err(NO_INGRESS.into());
    }
    Ok(())
}

/// The service's networks with names resolved to IDs (what the store
/// should keep, so a later network of the same name is not joined by
/// mistake), or Docker's refusal: an unknown network, or the ingress
/// network named explicitly (SwarmKit's `validateNetworks`).
pub fn check_service_networks(view: &View, spec: &ServiceSpec) -> Result<Vec<NetworkAttachmentConfig>, String> {
    let mut out: Vec<NetworkAttachmentConfig> = Vec::new();
    for a in &spec.task_template.networks {
        let n = resolve_network(view.networks, &a.target).ok_or_else(|| format!("network {} not found", a.target))?;
        if n.spec.ingress {
            return Err(format!("Service cannot be explicitly attached to the ingress network {:?}", n.spec.name));
        }
        if out.iter().any(|o| o.target == n.id) {
            return Err(format!("network {} is given more than once", a.target));
        }
        out.push(NetworkAttachmentConfig { target: n.id.clone(), ..a.clone() });
    }
    Ok(out)
}

/// Why a network may not be removed now (in use: SwarmKit's
/// `FailedPrecondition`, which Docker answers with status 400), or Ok.
pub fn check_network_removal(view: &View, network_id: &str) -> Result<(), Refusal> {
    let Some(n) = view.networks.get(network_id) else {
        return Err(Refusal::NotFound(format!("network {network_id} not found")));
    };
    let refuse = |what: String| Err(Refusal::InUse(what));
    let refers = |target: &str| target == n.id || target == n.spec.name;
    if n.spec.ingress {
        if let Some(s) = view.services.values().find(|s| needs_ingress(&s.spec)) {
            return refuse(format!("ingress network cannot be removed because service {} depends on it", s.id));
        }
    }
    if let Some(s) = view.services.values().find(|s| s.spec.task_template.networks.iter().any(|a| refers(&a.target))) {
        return refuse(format!("network {} is in use by service {}", n.id, s.id));
    }
    let live = |t: &&Task| t.desired_state <= TaskState::Running && t.status.state <= TaskState::Running;
    let uses = |t: &&Task| t.spec.networks.iter().any(|a| refers(&a.target)) || t.networks_attachments.iter().any(|a| a.network.id == n.id);
    if let Some(t) = view.tasks.values().filter(live).find(uses) {
        return refuse(format!("network {} is in use by task {}", n.id, t.id));
    }
    Ok(())
}
