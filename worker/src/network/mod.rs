//! Container networking on a node: the per-node gateway bridge (Docker's
//! `docker_gwbridge`) and each task's network namespace with a veth leg on
//! it. Overlay networks will add legs of their own (see ARCHITECTURE.md,
//! "Task networking").
//!
//! - `subnet`: IPv4 CIDR arithmetic.
//! - `ipam`: the bridge's subnet out of the address pools (never one the
//!   host already uses) and one address per task, persisted.
//! - `netlink`: a small rtnetlink client (links, bridges, veths,
//!   addresses, routes) over a raw socket.
//! - `netns`: task namespaces pinned by bind mounts, entered by path.
//! - `nft`: outbound masquerade in a table the node owns.
//!
//! Everything a node makes on the host is named from its `key` (6 hex
//! digits), so several shoald on one host never collide: bridge
//! `sgw-<key>`, task veths `ve<key><7 hex>`, nft table `shoal-<key>`,
//! namespaces under `netns_dir`.

pub mod discovery;
pub mod ipam;
pub mod mesh;
pub mod nft;
pub mod overlays;

// The netlink client, namespaces and CIDR math live in `shoal-overlay`,
// which the overlay networks share.
pub use shoal_overlay::{netlink, netns, subnet};

#[cfg(test)]
mod tests;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use ipam::{AddressPool, Ipam};
use netlink::Netlink;
use subnet::Subnet;

/// Gateway bridges are named `sgw-<key>`.
const BRIDGE_PREFIX: &str = "sgw-";

/// The routing mesh's entry legs are named `sig-<key>`.
const MESH_LEG_PREFIX: &str = "sig-";

/// Whether an interface is one shoald makes for its own use: a gateway
/// bridge (node-local addresses, never reachable from other nodes) or the
/// routing mesh's entry leg (an address on the ingress overlay). Neither is
/// a candidate for the address a node advertises to the swarm.
pub fn is_shoal_interface(ifname: &str) -> bool {
    ifname.starts_with(BRIDGE_PREFIX) || ifname.starts_with(MESH_LEG_PREFIX)
}

/// Where and how a node builds its networking.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// 6 hex digits naming everything this node makes on the host.
    pub key: String,
    /// IPAM state and the marker file.
    pub state_dir: PathBuf,
    /// Task namespaces are pinned here, e.g. `/run/shoal/<node>/netns`.
    pub netns_dir: PathBuf,
    /// Where the bridge's subnet comes from (daemon.json `default-address-pools`).
    pub pools: Vec<AddressPool>,
}

impl NetworkConfig {
    pub fn new(key: &str, state_dir: PathBuf, netns_dir: PathBuf) -> NetworkConfig {
        NetworkConfig { key: key.to_string(), state_dir, netns_dir, pools: AddressPool::defaults() }
    }

    pub fn bridge(&self) -> String {
        format!("{BRIDGE_PREFIX}{}", self.key)
    }

    pub fn nft_table(&self) -> String {
        format!("shoal-{}", self.key)
    }

    /// The node's leg onto the ingress network (the routing mesh's entry).
    pub fn mesh_leg(&self) -> String {
        format!("{MESH_LEG_PREFIX}{}", self.key)
    }

    /// The routing mesh's table in the node's namespace.
    pub fn mesh_table(&self) -> String {
        format!("{}-mesh", self.nft_table())
    }

    /// Host-side veth names start with this.
    pub fn veth_prefix(&self) -> String {
        format!("ve{}", self.key)
    }

    /// The host-side veth of `task`'s gateway leg (15 chars, the kernel's limit).
    pub fn host_veth(&self, task: &str) -> String {
        format!("{}{:07x}", self.veth_prefix(), fnv32(task.as_bytes()) & 0x0fff_ffff)
    }

    pub fn netns_path(&self, task: &str) -> PathBuf {
        self.netns_dir.join(task)
    }

    fn task_dir(&self, task: &str) -> PathBuf {
        self.state_dir.join("tasks").join(task)
    }
}

/// What the node made on the host, written where tools that clean up after
/// a killed daemon (`shoal lab down`) can read it: `<state_dir>/node.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct NodeMarker {
    pub bridge: String,
    pub nft_table: String,
    pub netns_dir: PathBuf,
    pub veth_prefix: String,
}

impl NodeMarker {
    pub const FILE: &'static str = "node.json";

    pub fn read(state_dir: &Path) -> Option<NodeMarker> {
        serde_json::from_slice(&std::fs::read(state_dir.join(Self::FILE)).ok()?).ok()
    }
}

/// One interface of a task's namespace.
#[derive(Clone, Debug, PartialEq)]
pub struct Leg {
    /// The name inside the namespace (`eth0`, ...).
    pub ifname: String,
    /// The veth end left on the host side (in the bridge).
    pub host_veth: String,
    pub addr: Ipv4Addr,
    pub prefix: u8,
    /// Set on the leg that carries the default route.
    pub gateway: Option<Ipv4Addr>,
}

/// A task's network: its namespace and its legs. (`/etc/hosts` and
/// `/etc/resolv.conf` are the executor's, see `executor::etc_files`.)
#[derive(Clone, Debug)]
pub struct TaskNetwork {
    pub netns: PathBuf,
    pub legs: Vec<Leg>,
}

/// Where a task's interfaces go, in order: one per overlay attachment
/// (`eth0`, `eth1`, ... as Docker numbers them), then the gateway bridge
/// leg, which carries the default route. With no overlays, as today, the
/// gateway leg is `eth0`.
#[derive(Clone, Debug, PartialEq)]
pub enum LegPlan {
    Overlay { network_id: String, ifname: String },
    Gateway { ifname: String },
}

pub fn plan_legs(attachments: &[shoal_api::network::NetworkAttachment]) -> Vec<LegPlan> {
    let mut legs: Vec<LegPlan> = attachments
        .iter()
        .enumerate()
        .map(|(i, a)| LegPlan::Overlay { network_id: a.network.id.clone(), ifname: format!("eth{i}") })
        .collect();
    legs.push(LegPlan::Gateway { ifname: format!("eth{}", attachments.len()) });
    legs
}

struct State {
    ipam: Ipam,
    /// The overlay networks of this node's tasks.
    overlays: overlays::Overlays,
    /// How overlays are built here, once the node's data path address is
    /// known (it joined a swarm).
    overlay_cfg: Option<shoal_overlay::overlay::NodeConfig>,
    /// Resolvers and VIP balancers of tasks on overlays.
    discovery: discovery::Discovery,
    /// Host-mode ports: what the managers want (by task) and what the
    /// node's `-pub` nft table holds.
    host_ports: std::collections::BTreeMap<String, Vec<shoal_api::service::PortConfig>>,
    /// Ports published by standalone containers (`docker run -p`), by
    /// container: this node's own, no manager knows them.
    local_ports: std::collections::BTreeMap<String, Vec<shoal_api::service::PortConfig>>,
    published: Vec<nft::Published>,
    /// The routing mesh as the managers last described it, this node's
    /// entry into it once made, and its tasks' return paths.
    mesh_view: Option<shoal_rpc::discovery::MeshView>,
    mesh: Option<mesh::Entry>,
    return_paths: mesh::ReturnPaths,
    /// The bridge's index once it is up in this run of the daemon.
    bridge: Option<u32>,
    /// Set by shutdown: a task starting late must not bring the bridge back.
    closed: bool,
    /// This node's WireGuard key pair (made at start, in memory only) and
    /// its tunnel, up while the node is on an encrypted network.
    wg_keys: shoal_overlay::wg::KeyPair,
    tunnel: Option<shoal_overlay::wg::SecureTunnel>,
    /// Tasks on overlays that outlived a restart, to put back on them
    /// once the data path is known (`restore`, `set_data_path`).
    to_adopt: Vec<(String, Vec<overlays::Attachment>)>,
}

fn new_key_pair() -> shoal_overlay::wg::KeyPair {
    let mut b = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    shoal_overlay::wg::KeyPair::from_random(b)
}

/// The node's networking: the gateway bridge (made when the first task
/// needs it) and the tasks' namespaces on it.
pub struct NodeNetwork {
    cfg: NetworkConfig,
    state: Mutex<State>,
}

impl NodeNetwork {
    pub fn new(cfg: NetworkConfig) -> Result<NodeNetwork, String> {
        let ipam = Ipam::open(&cfg.state_dir.join("ipam.json"))?;
        let marker = NodeMarker {
            bridge: cfg.bridge(),
            nft_table: cfg.nft_table(),
            netns_dir: cfg.netns_dir.clone(),
            veth_prefix: cfg.veth_prefix(),
        };
        std::fs::create_dir_all(&cfg.state_dir).map_err(|e| format!("creating {}: {e}", cfg.state_dir.display()))?;
        let path = cfg.state_dir.join(NodeMarker::FILE);
        std::fs::write(&path, serde_json::to_vec_pretty(&marker).map_err(|e| e.to_string())?)
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        Ok(NodeNetwork {
            cfg,
            state: Mutex::new(State {
                ipam,
                overlays: Default::default(),
                overlay_cfg: None,
                discovery: Default::default(),
                host_ports: Default::default(),
                local_ports: Default::default(),
                published: Vec::new(),
                mesh_view: None,
                mesh: None,
                return_paths: Default::default(),
                bridge: None,
                closed: false,
                wg_keys: new_key_pair(),
                tunnel: None,
                to_adopt: Vec::new(),
            }),
        })
    }

    pub fn config(&self) -> &NetworkConfig {
        &self.cfg
    }

    /// This node's WireGuard public key, for its description.
    pub fn data_path_key(&self) -> String {
        self.state.lock().unwrap().wg_keys.public_text()
    }

    /// A new WireGuard key pair for this node (periodic rotation): the
    /// tunnel pairs it with every peer at once, and the agent's next
    /// heartbeat carries the public key to the managers, who hand it to the
    /// peers. Until a peer has it, the old pairing carries the traffic.
    pub fn rotate_data_path_key(&self) {
        let mut st = self.state.lock().unwrap();
        st.wg_keys = new_key_pair();
        if let Some(t) = &st.tunnel {
            t.rotate(&st.wg_keys);
        }
    }

    /// The node's WireGuard tunnel, started if it is not up yet.
    fn ensure_tunnel(&self, st: &mut State) -> Result<(), String> {
        if st.tunnel.is_some() {
            return Ok(());
        }
        let cfg = st.overlay_cfg.clone().ok_or("encrypted overlay networks need the node to be in a swarm")?;
        let ifname = format!("swg{}", self.cfg.key);
        let table = format!("{}-wg", self.cfg.nft_table());
        st.tunnel = Some(shoal_overlay::wg::SecureTunnel::start(&st.wg_keys, &ifname, &table, cfg.local, cfg.underlay_mtu)?);
        Ok(())
    }

    /// The WireGuard peers the views of encrypted networks name: the
    /// tunnel comes up with the first such view and stays until the node
    /// leaves (taking it down while an encrypted network's sandbox is
    /// still there would let that network's frames leave in clear).
    fn sync_tunnel(&self, st: &mut State, views: &[shoal_rpc::discovery::NetworkView]) {
        let encrypted: Vec<&shoal_rpc::discovery::NetworkView> = views.iter().filter(|v| v.encrypted).collect();
        if encrypted.is_empty() {
            if let Some(t) = &st.tunnel {
                t.set_peers(&Default::default());
            }
            return;
        }
        if let Err(e) = self.ensure_tunnel(st) {
            tracing::warn!("encrypted overlays: {e}");
            return;
        }
        let peers: std::collections::BTreeMap<Ipv4Addr, [u8; 32]> = encrypted
            .iter()
            .flat_map(|v| v.keys.iter())
            .filter_map(|(node, key)| Some((node.parse().ok()?, shoal_overlay::wg::decode_key(key)?)))
            .collect();
        if let Some(t) = &st.tunnel {
            t.set_peers(&peers);
        }
    }

    /// The bridge's subnet, once chosen.
    pub fn subnet(&self) -> Option<Subnet> {
        self.state.lock().unwrap().ipam.subnet()
    }

    /// The address `task` holds on the gateway bridge. Docker reports no
    /// container address in a task's status for this leg, so it stays here.
    pub fn address_of(&self, task: &str) -> Option<Ipv4Addr> {
        self.state.lock().unwrap().ipam.address_of(task)
    }

    /// Makes the gateway bridge if this run has not yet: a subnet that
    /// overlaps nothing the host has (the one of the last run if it still
    /// fits), the gateway address, masquerade, forwarding.
    fn ensure_bridge(&self, st: &mut State) -> Result<u32, String> {
        if let Some(i) = st.bridge {
            return Ok(i);
        }
        if st.closed {
            return Err("the node is shutting down".into());
        }
        let mut nl = Netlink::open()?;
        let bridge = self.cfg.bridge();
        // A bridge of an earlier run goes: its subnet must be checked anew.
        nl.del_link(&bridge)?;
        let mut in_use: Vec<Subnet> = Vec::new();
        for (_, ip, prefix) in nl.addrs()? {
            in_use.push(Subnet::new(ip, prefix)?);
        }
        for (dst, len) in nl.routes()? {
            in_use.push(Subnet::new(dst, len)?);
        }
        let subnet = match st.ipam.subnet() {
            Some(s) if ipam::choose_subnet(&[AddressPool { base: s, size: s.prefix() }], &in_use).is_ok() => s,
            _ => ipam::choose_subnet(&self.cfg.pools, &in_use)?,
        };
        if st.ipam.subnet() != Some(subnet) {
            st.ipam.set_subnet(subnet)?;
        }
        let gateway = st.ipam.gateway().ok_or("the bridge subnet has no gateway address")?;
        let index = nl.add_bridge(&bridge)?;
        let made = (|| -> Result<(), String> {
            nl.add_addr(&bridge, gateway, subnet.prefix())?;
            nl.set_up(&bridge, None)?;
            nft::install(&self.cfg.nft_table(), &bridge, subnet)?;
            // Masquerade needs forwarding in this namespace (as dockerd
            // turns it on); the bridge's own traffic does not.
            enable_ip_forward()
        })();
        if let Err(e) = made {
            let _ = nl.del_link(&bridge);
            let _ = nft::remove(&self.cfg.nft_table());
            return Err(e);
        }
        tracing::info!("gateway bridge {bridge} up on {subnet} (gateway {gateway})");
        st.bridge = Some(index);
        Ok(index)
    }

    /// The node's data path address (VXLAN's local end) and so the MTU of
    /// the interface that carries it: overlays can be built from now on.
    pub fn set_data_path(&self, local: Ipv4Addr) -> Result<(), String> {
        let mut nl = Netlink::open()?;
        let index = nl.addrs()?.into_iter().find(|(_, ip, _)| *ip == local).map(|(i, _, _)| i);
        let mtu = index.and_then(|i| nl.links().ok()?.into_iter().find(|l| l.index == i).map(|l| l.mtu)).filter(|m| *m > 0).unwrap_or(1500);
        let cfg = shoal_overlay::overlay::NodeConfig {
            key: self.cfg.key.clone(),
            netns_dir: self.cfg.netns_dir.clone(),
            local,
            port: shoal_overlay::overlay::VXLAN_PORT,
            underlay_mtu: mtu,
            underlay_netns: None,
        };
        tracing::info!("overlay data path {local} (MTU {mtu}, overlays {})", shoal_overlay::overlay::Overlay::mtu(&cfg));
        let mut st = self.state.lock().unwrap();
        st.overlay_cfg = Some(cfg);
        self.adopt_overlay_tasks(&mut st);
        Ok(())
    }

    /// The remote endpoints of overlay network `id`, as the managers see them.
    pub fn set_peers(&self, id: &str, peers: Vec<shoal_overlay::overlay::Peer>) -> Result<usize, String> {
        self.state.lock().unwrap().overlays.set_peers(id, peers)
    }

    /// The node's table of host-mode published ports.
    pub fn ports_table(&self) -> String {
        format!("{}-pub", self.cfg.nft_table())
    }

    /// Takes the host-mode ports the managers want for this node's tasks.
    pub fn set_host_ports(&self, ports: std::collections::BTreeMap<String, Vec<shoal_api::service::PortConfig>>) {
        let mut st = self.state.lock().unwrap();
        st.host_ports = ports;
        if let Err(e) = self.sync_ports(&mut st) {
            tracing::warn!("published ports: {e}");
        }
    }

    /// Publishes a standalone container's ports (`docker run -p`) on this
    /// node, once it has its gateway address: refused with Docker's words
    /// when a port is taken by a task, another container or the routing
    /// mesh.
    pub fn publish_local(&self, id: &str, ports: &[shoal_api::service::PortConfig]) -> Result<(), String> {
        if ports.is_empty() {
            return Ok(());
        }
        let mut st = self.state.lock().unwrap();
        let mesh: Vec<(String, u32)> = st.mesh_view.as_ref().map(|v| mesh::ports_of(v).into_keys().collect()).unwrap_or_default();
        for p in ports {
            let key = (p.protocol.as_str().to_string(), p.published_port);
            let taken = st
                .host_ports
                .values()
                .chain(st.local_ports.values())
                .flatten()
                .any(|o| (o.protocol.as_str(), o.published_port) == (key.0.as_str(), key.1))
                || mesh.contains(&key);
            if taken {
                return Err(format!("Bind for 0.0.0.0:{} failed: port is already allocated", p.published_port));
            }
        }
        st.local_ports.insert(id.to_string(), ports.to_vec());
        let r = self.sync_ports(&mut st);
        if r.is_err() {
            st.local_ports.remove(id);
        }
        r
    }

    /// Makes the node's port map match what is wanted for tasks and
    /// standalone containers that have their gateway address (a task not
    /// attached yet comes in later).
    fn sync_ports(&self, st: &mut State) -> Result<(), String> {
        let mut want: Vec<nft::Published> = Vec::new();
        for (task, ports) in st.host_ports.iter().chain(st.local_ports.iter()) {
            let Some(addr) = st.ipam.address_of(task) else { continue };
            for p in ports {
                want.push(((p.protocol.as_str().to_string(), p.published_port), (addr, p.target_port)));
            }
        }
        if want == st.published {
            return Ok(());
        }
        let table = self.ports_table();
        let mut text = String::new();
        let have = if st.published.is_empty() {
            text.push_str(&nft::ports_ruleset(&table));
            Vec::new()
        } else {
            st.published.clone()
        };
        text.push_str(&nft::ports_changes(&table, &have, &want));
        nft::apply(&text)?;
        st.published = want;
        if st.published.is_empty() {
            nft::remove(&table)?;
        }
        Ok(())
    }

    /// Takes the managers' view of the routing mesh: makes this node's
    /// entry (once it has its ingress address and overlays can be built),
    /// sets the published ports, and updates the return paths of its
    /// tasks; with no view, the entry goes.
    pub fn set_mesh(&self, view: Option<shoal_rpc::discovery::MeshView>) {
        let mut st = self.state.lock().unwrap();
        // Unchanged and in place (a failed attempt is tried again).
        let in_place = match (&view, &st.mesh) {
            (None, _) => true,
            (Some(v), Some(m)) => m.ports == mesh::ports_of(v),
            (Some(_), None) => false,
        };
        if st.mesh_view == view && in_place {
            return;
        }
        st.mesh_view = view.clone();
        let Some(view) = view else {
            self.remove_mesh_entry(&mut st);
            return;
        };
        let entries = mesh::entries_of(&view);
        let cfg = &self.cfg;
        st.return_paths.update(&view.attachment.network.id, &entries, |task| netns::open(&cfg.netns_path(task)));
        if let Err(e) = self.sync_mesh_entry(&mut st, &view) {
            tracing::warn!("routing mesh: {e}");
        }
    }

    fn sync_mesh_entry(&self, st: &mut State, view: &shoal_rpc::discovery::MeshView) -> Result<(), String> {
        let Some(cfg) = st.overlay_cfg.clone() else { return Ok(()) };
        let a = overlays::Attachment::read(&view.attachment)?;
        if st.mesh.as_ref().is_some_and(|m| m.network_id != a.network_id || m.addr != a.addr) {
            self.remove_mesh_entry(st);
        }
        let (leg, table) = (self.cfg.mesh_leg(), self.cfg.mesh_table());
        let fresh = st.mesh.is_none();
        if fresh {
            let own = std::fs::File::open("/proc/self/ns/net").map_err(|e| format!("opening the node's namespace: {e}"))?;
            st.overlays.attach(&cfg, mesh::ENTRY, &a, &own, &leg)?;
            // Replies of the node's own connections into the mesh leave
            // with a loopback source until masqueraded; forwarding is what
            // the entry is for.
            let p = format!("/proc/sys/net/ipv4/conf/{leg}/route_localnet");
            let made = std::fs::write(&p, "1").map_err(|e| format!("{p}: {e}")).and_then(|_| enable_ip_forward());
            if let Err(e) = made {
                st.overlays.detach(mesh::ENTRY);
                return Err(e);
            }
            tracing::info!("routing mesh entry {leg} {}/{} on network {}", a.addr, a.spec.subnet.prefix(), a.name);
            st.mesh = Some(mesh::Entry { network_id: a.network_id.clone(), addr: a.addr, ports: Default::default() });
        }
        let want = mesh::ports_of(view);
        let entry = st.mesh.as_mut().expect("made above");
        let text = mesh::entry_text(&table, &leg, fresh, &entry.ports, &want);
        if !text.is_empty() {
            nft::apply(&text)?;
            for ((proto, port), backends) in want.iter().filter(|(k, b)| entry.ports.get(*k) != Some(*b)) {
                let to: Vec<String> = backends.iter().map(|(a, p)| format!("{a}:{p}")).collect();
                tracing::info!("routing mesh {proto}/{port} -> [{}]", to.join(", "));
            }
            entry.ports = want;
        }
        Ok(())
    }

    fn remove_mesh_entry(&self, st: &mut State) {
        if st.mesh.take().is_some() {
            st.overlays.detach(mesh::ENTRY);
            tracing::info!("routing mesh entry removed");
        }
        if let Err(e) = nft::remove(&self.cfg.mesh_table()) {
            tracing::warn!("{e}");
        }
    }

    /// Takes the managers' view of the networks of this node's tasks:
    /// VXLAN peers, and every task's names and VIP rules.
    pub fn apply_views(&self, views: Vec<shoal_rpc::discovery::NetworkView>) {
        let mut st = self.state.lock().unwrap();
        if st.discovery.views() == views.as_slice() {
            return;
        }
        for v in &views {
            let peers = v
                .peers
                .iter()
                .filter_map(|p| Some(shoal_overlay::overlay::Peer { ip: p.addr.parse().ok()?, node: p.node.parse().ok()? }))
                .collect();
            if let Err(e) = st.overlays.set_peers(&v.network_id, peers) {
                tracing::warn!("network {}: {e}", v.name);
            }
        }
        self.sync_tunnel(&mut st, &views);
        st.discovery.set_views(views);
        for (task, networks) in st.overlays.tasks() {
            if task == mesh::ENTRY {
                continue;
            }
            let ns = match netns::open(&self.cfg.netns_path(&task)) {
                Ok(ns) => ns,
                Err(e) => {
                    tracing::warn!("task {task}: {e}");
                    continue;
                }
            };
            if let Err(e) = st.discovery.refresh(&task, &networks, &ns) {
                tracing::warn!("task {task}: {e}");
            }
        }
    }

    /// Builds `task`'s namespace: a leg on each overlay network it is
    /// attached to (`eth0`, ... in order), then a veth into the gateway
    /// bridge with an address and the default route (unless every network
    /// of the task is `--internal`: then there is no way out), loopback.
    /// Anything half made is undone on error.
    pub fn attach(&self, task: &str, attachments: &[shoal_api::network::NetworkAttachment]) -> Result<TaskNetwork, String> {
        let overlays: Vec<overlays::Attachment> = attachments.iter().map(overlays::Attachment::read).collect::<Result<_, _>>()?;
        let gateway_leg = overlays.is_empty() || overlays.iter().any(|a| !a.internal);
        let bridge = if gateway_leg {
            let mut st = self.state.lock().unwrap();
            self.ensure_bridge(&mut st)?;
            let addr = st.ipam.allocate(task)?;
            Some((st.ipam.gateway().expect("bridge has a subnet"), st.ipam.subnet().expect("bridge has a subnet"), addr))
        } else {
            None
        };
        let r = self.build(task, &overlays, bridge);
        if r.is_err() {
            self.detach(task);
        }
        r
    }

    fn build(
        &self,
        task: &str,
        overlays: &[overlays::Attachment],
        bridge: Option<(Ipv4Addr, Subnet, Ipv4Addr)>,
    ) -> Result<TaskNetwork, String> {
        let ns_path = self.cfg.netns_path(task);
        netns::create(&ns_path)?;
        let ns = netns::open(&ns_path)?;
        let mut legs = Vec::new();
        for (i, a) in overlays.iter().enumerate() {
            let ifname = format!("eth{i}");
            let mut st = self.state.lock().unwrap();
            let cfg = st.overlay_cfg.clone().ok_or("overlay networks need the node to be in a swarm")?;
            if a.encrypted {
                // Its frames must never leave in clear: no tunnel, no network.
                self.ensure_tunnel(&mut st)?;
            }
            st.overlays.attach(&cfg, task, a, &ns, &ifname)?;
            tracing::info!("task {task}: {ifname} {}/{} on network {}", a.addr, a.spec.subnet.prefix(), a.name);
            if a.ingress {
                // The entries of the view's ingress network, if it is this one.
                let entries =
                    st.mesh_view.as_ref().filter(|v| v.attachment.network.id == a.network_id).map(mesh::entries_of).unwrap_or_default();
                st.return_paths.add(task, &a.network_id, &ns, &ifname, &entries)?;
            }
            legs.push(Leg {
                ifname,
                host_veth: overlays::leg_name(task, &a.network_id),
                addr: a.addr,
                prefix: a.spec.subnet.prefix(),
                gateway: None,
            });
        }
        if !overlays.is_empty() {
            let networks: Vec<String> = overlays.iter().map(|a| a.network_id.clone()).collect();
            let mut st = self.state.lock().unwrap();
            st.discovery.start(task, &ns)?;
            st.discovery.refresh(task, &networks, &ns)?;
        }
        if let Some((gateway, subnet, addr)) = bridge {
            let ifname = format!("eth{}", overlays.len());
            let leg = Leg { ifname, host_veth: self.cfg.host_veth(task), addr, prefix: subnet.prefix(), gateway: Some(gateway) };
            self.add_leg(&ns, &leg)?;
            tracing::info!("task {task}: {} {addr}/{} via {gateway}", leg.ifname, subnet.prefix());
            legs.push(leg);
            let mut st = self.state.lock().unwrap();
            self.sync_ports(&mut st)?;
        } else {
            Netlink::open_in(&ns)?.set_up("lo", None)?;
        }
        Ok(TaskNetwork { netns: ns_path, legs })
    }

    /// One veth leg: created with its inside end already in the namespace
    /// (it never appears on the host under a clashing name), host end into
    /// the bridge, then address, loopback and route inside.
    fn add_leg(&self, ns: &std::fs::File, leg: &Leg) -> Result<(), String> {
        let bridge = {
            let st = self.state.lock().unwrap();
            st.bridge.ok_or("the gateway bridge is not up")?
        };
        let mut host = Netlink::open()?;
        host.del_link(&leg.host_veth)?; // a leftover of the same task
        host.add_veth(&leg.host_veth, &leg.ifname, ns)?;
        host.set_up(&leg.host_veth, Some(bridge))?;
        let mut inside = Netlink::open_in(ns)?;
        inside.set_up("lo", None)?;
        inside.add_addr(&leg.ifname, leg.addr, leg.prefix)?;
        inside.set_up(&leg.ifname, None)?;
        if let Some(gw) = leg.gateway {
            inside.add_default_route(gw)?;
        }
        Ok(())
    }

    /// Takes `task`'s network apart: its veth, namespace and address.
    /// Safe to call for a task with nothing (or only part) made.
    pub fn detach(&self, task: &str) {
        let cfg = &self.cfg;
        {
            let mut st = self.state.lock().unwrap();
            st.discovery.stop(task);
            st.return_paths.remove(task);
            st.overlays.detach(task);
        }
        match Netlink::open().and_then(|mut nl| nl.del_link(&cfg.host_veth(task))) {
            Ok(()) => {}
            Err(e) => tracing::warn!("task {task}: {e}"),
        }
        if let Err(e) = netns::remove(&cfg.netns_path(task)) {
            tracing::warn!("task {task}: {e}");
        }
        let _ = std::fs::remove_dir_all(cfg.task_dir(task));
        let mut st = self.state.lock().unwrap();
        st.local_ports.remove(task);
        if let Err(e) = st.ipam.release(task) {
            tracing::warn!("task {task}: releasing its address: {e}");
        }
        if let Err(e) = self.sync_ports(&mut st) {
            tracing::warn!("published ports: {e}");
        }
        // The last task gone: the bridge and its nft table go too, so an
        // idle node keeps nothing on the host (the next task makes them
        // anew, checking the subnet again). Under the lock, so a task
        // being attached (it holds an address already) keeps them.
        if st.bridge.is_some() && st.ipam.owners().is_empty() {
            st.bridge = None;
            if let Err(e) = Netlink::open().and_then(|mut nl| nl.del_link(&cfg.bridge())) {
                tracing::warn!("{e}");
            }
            if let Err(e) = nft::remove(&cfg.nft_table()) {
                tracing::warn!("{e}");
            }
            tracing::info!("gateway bridge {} removed: no task uses it", cfg.bridge());
        }
    }

    /// At start: removes what an earlier run left (its tasks' namespaces,
    /// veths and addresses, its bridge and nft table), when no task of it
    /// is taken back (see `restore`).
    pub fn remove_leftovers(&self) {
        let owners = self.state.lock().unwrap().ipam.owners();
        for t in owners {
            self.detach(&t);
        }
        self.sweep(&Keep::default());
    }

    /// At start, with the tasks whose containers outlived the previous run
    /// (`TaskManager::restore`) and their attachments: their namespaces,
    /// veths and addresses stay, and so do the bridge with its masquerade
    /// table and the sandboxes of their overlays. Everything else goes as
    /// in `remove_leftovers`. Their overlays are taken over once the node
    /// knows its data path (`set_data_path`: their resolvers, balancers
    /// and return paths are set up again then); published ports and the
    /// routing mesh come back with the first assignments, as after any
    /// start.
    pub fn restore(&self, keep: &[(String, Vec<shoal_api::network::NetworkAttachment>)]) {
        let mut kept: Vec<(String, Vec<overlays::Attachment>)> = Vec::new();
        for (task, attachments) in keep {
            match attachments.iter().map(overlays::Attachment::read).collect::<Result<Vec<_>, _>>() {
                Ok(a) => kept.push((task.clone(), a)),
                Err(e) => tracing::warn!("task {task}: its networks: {e}"),
            }
        }
        let ids: Vec<&str> = kept.iter().map(|(t, _)| t.as_str()).collect();
        let owners = self.state.lock().unwrap().ipam.owners();
        for t in owners.iter().filter(|t| !ids.contains(&t.as_str())) {
            self.detach(t);
        }
        let on_bridge = {
            let st = self.state.lock().unwrap();
            kept.iter().filter(|(t, _)| st.ipam.address_of(t).is_some()).count()
        };
        let sandboxes = kept.iter().flat_map(|(_, a)| a.iter().map(|a| format!("ov-{}", a.spec.vni)));
        self.sweep(&Keep {
            netns: ids.iter().map(|t| t.to_string()).chain(sandboxes).collect(),
            veths: ids.iter().map(|t| self.cfg.host_veth(t)).collect(),
            bridge: on_bridge > 0,
        });
        let bridge = Netlink::open().ok().and_then(|mut nl| nl.link_index(&self.cfg.bridge()).ok().flatten());
        let mut st = self.state.lock().unwrap();
        match (bridge, st.ipam.subnet()) {
            (Some(index), Some(subnet)) if on_bridge > 0 => {
                if let Err(e) = nft::install(&self.cfg.nft_table(), &self.cfg.bridge(), subnet).and_then(|_| enable_ip_forward()) {
                    tracing::warn!("gateway bridge {}: {e}", self.cfg.bridge());
                }
                st.bridge = Some(index);
                tracing::info!("gateway bridge {} kept for {on_bridge} task(s) that outlived the restart", self.cfg.bridge());
            }
            (None, _) if on_bridge > 0 => {
                tracing::warn!("the gateway bridge {} is gone: {on_bridge} task(s) kept have no way out", self.cfg.bridge())
            }
            _ => {}
        }
        st.to_adopt = kept.into_iter().filter(|(_, a)| !a.is_empty()).collect();
    }

    /// Puts the tasks on overlays that outlived a restart back on their
    /// networks (see `restore`), now that overlays can be built.
    fn adopt_overlay_tasks(&self, st: &mut State) {
        let Some(cfg) = st.overlay_cfg.clone() else { return };
        for (task, attachments) in std::mem::take(&mut st.to_adopt) {
            let ns = match netns::open(&self.cfg.netns_path(&task)) {
                Ok(ns) => ns,
                Err(e) => {
                    tracing::warn!("task {task}: {e}");
                    continue;
                }
            };
            let adopted = (|| -> Result<(), String> {
                for (i, a) in attachments.iter().enumerate() {
                    st.overlays.adopt(&cfg, &task, a)?;
                    if a.ingress {
                        st.return_paths.add(&task, &a.network_id, &ns, &format!("eth{i}"), &Default::default())?;
                    }
                }
                let networks: Vec<String> = attachments.iter().map(|a| a.network_id.clone()).collect();
                st.discovery.start(&task, &ns)?;
                st.discovery.refresh(&task, &networks, &ns)
            })();
            match adopted {
                Ok(()) => tracing::info!("task {task}: back on {} overlay network(s)", attachments.len()),
                Err(e) => tracing::warn!("task {task}: taking its overlays back: {e}"),
            }
        }
    }

    /// At shutdown (containers already stopped): nothing is left behind.
    pub fn shutdown(&self) {
        self.state.lock().unwrap().closed = true;
        {
            let mut st = self.state.lock().unwrap();
            st.mesh = None;
            st.mesh_view = None;
        }
        self.state.lock().unwrap().overlays.clear();
        if let Some(t) = self.state.lock().unwrap().tunnel.take() {
            t.remove();
        }
        self.remove_leftovers();
        self.state.lock().unwrap().bridge = None;
    }

    /// Whatever carries this node's names, known to IPAM or not, except
    /// what `keep` names (tasks that outlived a restart, see `restore`).
    fn sweep(&self, keep: &Keep) {
        if let Ok(entries) = std::fs::read_dir(&self.cfg.netns_dir) {
            for e in entries.flatten().filter(|e| !keep.netns.iter().any(|k| *k == e.file_name().to_string_lossy())) {
                if let Err(err) = netns::remove(&e.path()) {
                    tracing::warn!("{err}");
                }
            }
        }
        let _ = std::fs::remove_dir(&self.cfg.netns_dir); // only if empty
        if let Some(parent) = self.cfg.netns_dir.parent() {
            let _ = std::fs::remove_dir(parent); // only if empty
        }
        let tasks = self.cfg.state_dir.join("tasks");
        for e in std::fs::read_dir(&tasks).into_iter().flatten().flatten() {
            if !keep.netns.iter().any(|k| *k == e.file_name().to_string_lossy()) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let _ = std::fs::remove_dir(&tasks); // only if empty
        if let Ok(mut nl) = Netlink::open() {
            let prefix = self.cfg.veth_prefix();
            for l in nl.links().unwrap_or_default() {
                if l.name.starts_with(&prefix) && !keep.veths.contains(&l.name) {
                    let _ = nl.del_link(&l.name);
                }
            }
            if !keep.bridge {
                if let Err(e) = nl.del_link(&self.cfg.bridge()) {
                    tracing::warn!("{e}");
                }
            }
            if let Err(e) = nl.del_link(&self.cfg.mesh_leg()) {
                tracing::warn!("{e}");
            }
        }
        if !keep.bridge {
            if let Err(e) = nft::remove(&self.cfg.nft_table()) {
                tracing::warn!("{e}");
            }
        }
        if let Err(e) = nft::remove(&self.ports_table()) {
            tracing::warn!("{e}");
        }
        if let Err(e) = nft::remove(&self.cfg.mesh_table()) {
            tracing::warn!("{e}");
        }
        self.state.lock().unwrap().published.clear();
    }
}

/// What a `sweep` leaves: the namespaces (of tasks and sandboxes, by
/// file name) and host veths of tasks that outlived a restart, and the
/// gateway bridge with its table when one of them is on it.
#[derive(Default)]
struct Keep {
    netns: Vec<String>,
    veths: Vec<String>,
    bridge: bool,
}

fn enable_ip_forward() -> Result<(), String> {
    let p = "/proc/sys/net/ipv4/ip_forward";
    if std::fs::read_to_string(p).map(|s| s.trim() == "1").unwrap_or(false) {
        return Ok(());
    }
    std::fs::write(p, "1").map_err(|e| format!("enabling IPv4 forwarding ({p}): {e}"))
}

/// FNV-1a, for short stable names.
pub fn fnv32(b: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &x in b {
        h ^= x as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}
