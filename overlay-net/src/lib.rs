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

pub mod dns;
pub mod netlink;
pub mod netns;
pub mod overlay;
pub mod subnet;
pub mod vip;
