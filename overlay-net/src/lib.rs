//! The node side of Shoal's networks.
//!
//! - `subnet`: IPv4 CIDR arithmetic.
//! - `netlink`: a small rtnetlink client (links, bridges, veths, VXLAN
//!   devices, addresses, routes, FDB and neighbour entries) over a raw
//!   socket.
//! - `netns`: network namespaces pinned by bind mounts, entered by path.
//! - `overlay`: an overlay network on one node: a sandbox namespace with a
//!   bridge and a VXLAN device, task legs, and static FDB/neighbour entries
//!   for the remote endpoints the managers name.
//! - `dns`: the task resolver at 127.0.0.11; `vip`: VIP balancing with
//!   nftables inside each task; `nftables`: scripts run through
//!   libnftables with a context kept per namespace.
//! - `mesh`: the ingress routing mesh (a node's entry table, and the
//!   return path inside tasks that keeps the client's address).
//! - `wg`: encrypted overlays, their VXLAN inside WireGuard (boringtun,
//!   in userspace) between nodes.

pub mod dns;
pub mod mesh;
pub mod netlink;
pub mod netns;
pub mod nftables;
pub mod overlay;
pub mod subnet;
pub mod vip;
pub mod wg;
