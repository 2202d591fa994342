//! One overlay network on one node.
//!
//! As Docker's overlay driver lays it out, but with no gossip: a sandbox
//! network namespace per network holds a bridge (`br0`, with the network's
//! gateway address) and a VXLAN device on it. The VXLAN device is created
//! in the node's own namespace and then moved into the sandbox, so its UDP
//! socket (port 4789) stays on the node's underlay while its frames enter
//! the sandbox. Each task on the network gets a veth: one end on the
//! bridge, the other inside the task's namespace with the task's address
//! and the MAC derived from it (02:42 and the address bytes).
//!
//! Remote endpoints are static entries the managers' view dictates
//! (`Overlay::set_peers`): an FDB entry sends frames for a task's MAC to
//! its node, and a neighbour entry on the VXLAN device answers ARP for its
//! address (the device runs with `proxy`, no learning, no flooding). Peers
//! are updated by difference, so a change costs what changed.
//!
//! MTU: VXLAN adds 50 bytes (outer Ethernet 14, IPv4 20, UDP 8, VXLAN 8),
//! so the device, the bridge and every task leg get the underlay's MTU
//! less 50, and a full-size packet from a task never needs fragmenting.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::netlink::{Mac, Netlink};
use crate::netns;
use crate::subnet::Subnet;

/// VXLAN's own overhead over IPv4.
pub const VXLAN_OVERHEAD: u32 = 50;
/// IANA's VXLAN port (Docker's default data path port).
pub const VXLAN_PORT: u16 = 4789;
/// The bridge inside every sandbox.
const BRIDGE: &str = "br0";

/// Where and how this node builds its overlays.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// 6 hex digits naming what the node makes in its own namespace.
    pub key: String,
    /// Sandboxes are pinned here as `ov-<vni>`.
    pub netns_dir: PathBuf,
    /// The node's data path address (VXLAN's local end).
    pub local: Ipv4Addr,
    pub port: u16,
    /// The underlay's MTU (the interface that carries `local`).
    pub underlay_mtu: u32,
    /// The namespace the VXLAN sockets live in: None for the caller's own
    /// (the daemon's), or a pinned one (tests, which play several nodes).
    pub underlay_netns: Option<PathBuf>,
}

impl NodeConfig {
    /// How this node builds an encrypted network: its own VXLAN port (the
    /// one `wg` routes into WireGuard) and WireGuard's overhead taken off
    /// the MTU.
    pub fn encrypted(&self) -> NodeConfig {
        NodeConfig {
            port: crate::wg::ENCRYPTED_VXLAN_PORT,
            underlay_mtu: self.underlay_mtu.saturating_sub(crate::wg::WG_OVERHEAD),
            ..self.clone()
        }
    }
}

/// A network as the managers allocated it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkSpec {
    pub vni: u32,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
}

/// A task on another node: its address on the network and that node's
/// data path address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Peer {
    pub ip: Ipv4Addr,
    pub node: Ipv4Addr,
}

pub struct Overlay {
    cfg: NodeConfig,
    spec: NetworkSpec,
    sandbox: PathBuf,
    /// Remote endpoints installed now: address -> node.
    peers: BTreeMap<Ipv4Addr, Ipv4Addr>,
}

impl Overlay {
    pub fn mtu(cfg: &NodeConfig) -> u32 {
        cfg.underlay_mtu.saturating_sub(VXLAN_OVERHEAD)
    }

    fn vxlan_name(cfg: &NodeConfig, vni: u32) -> String {
        // IFNAMSIZ is 16: "vx" + 6 + 6 hex digits (VNIs fit 24 bits).
        format!("vx{}{:06x}", cfg.key, vni & 0xff_ffff)
    }

    pub fn sandbox_path(cfg: &NodeConfig, vni: u32) -> PathBuf {
        cfg.netns_dir.join(format!("ov-{vni}"))
    }

    fn underlay(&self) -> Result<Netlink, String> {
        open_underlay(&self.cfg)
    }

    fn sandbox_netlink(&self) -> Result<Netlink, String> {
        Ok(Netlink::open_in(&netns::open(&self.sandbox)?)?)
    }

    /// Builds the network's sandbox on this node (or takes over the one a
    /// previous run left, rebuilding it if it is incomplete).
    pub fn create(cfg: &NodeConfig, spec: &NetworkSpec) -> Result<Overlay, String> {
        let sandbox = Self::sandbox_path(cfg, spec.vni);
        let mut ov = Overlay { cfg: cfg.clone(), spec: spec.clone(), sandbox, peers: BTreeMap::new() };
        if ov.sandbox.exists() {
            // A leftover: start from a clean sandbox, its peers are unknown.
            ov.destroy()?;
        }
        if let Err(e) = ov.build() {
            let _ = ov.destroy();
            return Err(e);
        }
        Ok(ov)
    }

    /// Takes over, as it is, the sandbox a previous run of the node left
    /// for tasks that outlived it: their legs are in it and must stay. The
    /// remote endpoints it holds are read back from the VXLAN device (a
    /// static neighbour with its address's MAC and that MAC's FDB entry),
    /// so the managers' next view replaces them by difference, removing
    /// those of endpoints gone meanwhile.
    pub fn adopt(cfg: &NodeConfig, spec: &NetworkSpec) -> Result<Overlay, String> {
        let sandbox = Self::sandbox_path(cfg, spec.vni);
        if !sandbox.exists() {
            return Err(format!("no sandbox {} to take over", sandbox.display()));
        }
        let mut ov = Overlay { cfg: cfg.clone(), spec: spec.clone(), sandbox, peers: BTreeMap::new() };
        let mut sb = ov.sandbox_netlink()?;
        let vx = Self::vxlan_name(cfg, spec.vni);
        if sb.link_index(BRIDGE)?.is_none() {
            return Err(format!("the sandbox {} has no {BRIDGE}", ov.sandbox.display()));
        }
        let index = sb.link_index(&vx)?.ok_or_else(|| format!("the sandbox {} has no {vx}", ov.sandbox.display()))?;
        let fdb: BTreeMap<Mac, Ipv4Addr> = sb.fdb_entries(index)?.into_iter().collect();
        for (ip, mac) in sb.neighbours(index)? {
            if mac == Mac::for_ip(ip) {
                if let Some(node) = fdb.get(&mac) {
                    ov.peers.insert(ip, *node);
                }
            }
        }
        Ok(ov)
    }

    fn build(&mut self) -> Result<(), String> {
        let mtu = Self::mtu(&self.cfg);
        netns::create(&self.sandbox)?;
        let ns = netns::open(&self.sandbox)?;
        let vx = Self::vxlan_name(&self.cfg, self.spec.vni);
        let mut host = self.underlay()?;
        host.del_link(&vx)?;
        host.add_vxlan(&vx, self.spec.vni, self.cfg.local, self.cfg.port, mtu)?;
        host.move_to(&vx, &ns)?;
        let mut sb = Netlink::open_in(&ns)?;
        let br = sb.add_bridge(BRIDGE)?;
        sb.set_mtu(BRIDGE, mtu)?;
        sb.add_addr(BRIDGE, self.spec.gateway, self.spec.subnet.prefix())?;
        sb.set_up(BRIDGE, None)?;
        sb.set_up(&vx, Some(br))?;
        sb.set_up("lo", None)?;
        Ok(())
    }

    /// Removes the sandbox (its bridge, VXLAN device and task legs go with
    /// it). Nothing there is nothing to do.
    pub fn destroy(&mut self) -> Result<(), String> {
        if self.sandbox.exists() {
            if let Ok(mut sb) = self.sandbox_netlink() {
                // Deleted explicitly: the kernel frees a namespace lazily,
                // and a new device with this VNI would clash meanwhile.
                let _ = sb.del_link(&Self::vxlan_name(&self.cfg, self.spec.vni));
            }
            netns::remove(&self.sandbox)?;
        }
        self.peers.clear();
        Ok(())
    }

    /// Gives the task in namespace `task_ns` a leg on this network: `ifname`
    /// there with `ip` and its MAC; `leg` names the bridge side.
    pub fn attach(&self, task_ns: &File, ifname: &str, leg: &str, ip: Ipv4Addr) -> Result<Mac, String> {
        let mtu = Self::mtu(&self.cfg);
        let mac = Mac::for_ip(ip);
        let mut sb = self.sandbox_netlink()?;
        sb.del_link(leg)?;
        sb.add_veth(leg, ifname, task_ns)?;
        let br = sb.link_index(BRIDGE)?.ok_or("the overlay sandbox has no bridge")?;
        sb.set_mtu(leg, mtu)?;
        sb.set_up(leg, Some(br))?;
        // The bridge may have learned this MAC behind the VXLAN port while
        // the address was a task on another node; until this task sends a
        // frame, the bridge would keep sending its traffic there. A static
        // entry puts it behind its leg now (it goes with the leg).
        sb.pin_to_port(leg, mac)?;
        let mut task = Netlink::open_in(task_ns)?;
        task.set_mtu(ifname, mtu)?;
        task.set_mac(ifname, mac)?;
        task.add_addr(ifname, ip, self.spec.subnet.prefix())?;
        task.set_up(ifname, None)?;
        task.set_up("lo", None)?;
        Ok(mac)
    }

    /// Takes a task's leg off the network (its namespace may be gone).
    pub fn detach(&self, leg: &str) -> Result<(), String> {
        Ok(self.sandbox_netlink()?.del_link(leg)?)
    }

    /// Makes the remote endpoints exactly `peers`: entries for new or moved
    /// peers are written, those of peers gone are deleted, the rest are not
    /// touched. Returns how many entries changed.
    pub fn set_peers(&mut self, peers: &[Peer]) -> Result<usize, String> {
        let want: BTreeMap<Ipv4Addr, Ipv4Addr> = peers.iter().map(|p| (p.ip, p.node)).collect();
        let vx = Self::vxlan_name(&self.cfg, self.spec.vni);
        let mut sb = self.sandbox_netlink()?;
        let mut changed = 0;
        for (ip, node) in &self.peers {
            if want.get(ip) != Some(node) {
                let mac = Mac::for_ip(*ip);
                sb.del_fdb(&vx, mac, *node)?;
                if !want.contains_key(ip) {
                    sb.del_neigh(&vx, *ip, mac)?;
                }
                changed += 1;
            }
        }
        self.peers.retain(|ip, node| want.get(ip) == Some(node));
        for (ip, node) in &want {
            if self.peers.get(ip) == Some(node) {
                continue;
            }
            let mac = Mac::for_ip(*ip);
            sb.add_neigh(&vx, *ip, mac)?;
            sb.add_fdb(&vx, mac, *node)?;
            self.peers.insert(*ip, *node);
            changed += 1;
        }
        Ok(changed)
    }

    pub fn spec(&self) -> &NetworkSpec {
        &self.spec
    }

    pub fn sandbox(&self) -> &Path {
        &self.sandbox
    }
}

fn open_underlay(cfg: &NodeConfig) -> Result<Netlink, String> {
    match &cfg.underlay_netns {
        None => Ok(Netlink::open()?),
        Some(p) => Ok(Netlink::open_in(&netns::open(p)?)?),
    }
}
