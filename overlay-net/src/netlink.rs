//! A small rtnetlink client over a raw `NETLINK_ROUTE` socket: just the
//! messages the gateway bridge and task namespaces need (links, bridges,
//! veth pairs, IPv4 addresses and routes). Message encoding and decoding
//! are pure functions, unit-tested on bytes; [`Netlink`] does the I/O.
//!
//! A netlink socket talks to the network namespace it was opened in, so
//! [`Netlink::open_in`] opens one from a short-lived thread that entered
//! the target namespace: the daemon's own threads never switch namespace.

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};

// Message types and flags (linux/netlink.h, linux/rtnetlink.h).
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_GETROUTE: u16 = 26;
pub const RTM_NEWNEIGH: u16 = 28;
pub const RTM_DELNEIGH: u16 = 29;
pub const RTM_GETNEIGH: u16 = 30;
pub const RTM_NEWRULE: u16 = 32;
pub const RTM_DELRULE: u16 = 33;
pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;

// Attributes.
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
// linux/if_link.h: IFLA_VXLAN_*.
const IFLA_VXLAN_ID: u16 = 1;
const IFLA_VXLAN_LOCAL: u16 = 4;
const IFLA_VXLAN_LEARNING: u16 = 7;
const IFLA_VXLAN_PROXY: u16 = 11;
const IFLA_VXLAN_L2MISS: u16 = 13;
const IFLA_VXLAN_L3MISS: u16 = 14;
const IFLA_VXLAN_PORT: u16 = 15;
// linux/neighbour.h.
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const NUD_PERMANENT: u16 = 0x80;
const NTF_SELF: u8 = 0x02;
const NTF_MASTER: u8 = 0x04;
const NUD_NOARP: u16 = 0x40;
const AF_BRIDGE: u8 = libc::AF_BRIDGE as u8;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_DST: u16 = 1;
const RTA_GATEWAY: u16 = 5;
const RTA_OIF: u16 = 4;
const RTA_TABLE: u16 = 15;
// linux/fib_rules.h.
const FRA_PRIORITY: u16 = 6;
const FRA_FWMARK: u16 = 10;
const FRA_TABLE: u16 = 15;
const FRA_FWMASK: u16 = 16;
const FR_ACT_TO_TBL: u8 = 1;
const NLM_F_REPLACE: u16 = 0x100;

const IFF_UP: u32 = 0x1;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RTN_UNICAST: u8 = 1;
const AF_INET: u8 = libc::AF_INET as u8;
const AF_UNSPEC: u8 = libc::AF_UNSPEC as u8;

/// A route attribute; `Nested` holds attributes of its own.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    Bytes(u16, Vec<u8>),
    Nested(u16, Vec<Attr>),
}

impl Attr {
    fn str(kind: u16, s: &str) -> Attr {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        Attr::Bytes(kind, b)
    }
    fn u32(kind: u16, v: u32) -> Attr {
        Attr::Bytes(kind, v.to_ne_bytes().to_vec())
    }
    fn ip(kind: u16, ip: Ipv4Addr) -> Attr {
        Attr::Bytes(kind, ip.octets().to_vec())
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0, 0, 0, 0]);
        let kind = match self {
            Attr::Bytes(k, data) => {
                out.extend_from_slice(data);
                *k
            }
            Attr::Nested(k, attrs) => {
                for a in attrs {
                    a.encode(out);
                }
                *k
            }
        };
        let len = (out.len() - start) as u16;
        out[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        out[start + 2..start + 4].copy_from_slice(&kind.to_ne_bytes());
        pad4(out);
    }
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// `struct ifinfomsg`.
pub fn ifinfomsg(index: i32, flags: u32, change: u32) -> Vec<u8> {
    let mut b = vec![AF_UNSPEC, 0, 0, 0];
    b.extend_from_slice(&index.to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&change.to_ne_bytes());
    b
}

/// `struct ndmsg`: family, link, state, flags (type unspecified).
pub fn ndmsg(family: u8, index: u32, state: u16, flags: u8) -> Vec<u8> {
    let mut b = vec![family, 0, 0, 0];
    b.extend_from_slice(&(index as i32).to_ne_bytes());
    b.extend_from_slice(&state.to_ne_bytes());
    b.push(flags);
    b.push(0);
    b
}

/// A MAC address, `aa:bb:cc:dd:ee:ff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// Docker's MAC for an IPv4 endpoint: 02:42 and the four address bytes.
    pub fn for_ip(ip: Ipv4Addr) -> Mac {
        let o = ip.octets();
        Mac([0x02, 0x42, o[0], o[1], o[2], o[3]])
    }
}

impl std::fmt::Display for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

/// `struct ifaddrmsg`.
fn ifaddrmsg(prefix: u8, index: u32) -> Vec<u8> {
    let mut b = vec![AF_INET, prefix, 0, RT_SCOPE_UNIVERSE];
    b.extend_from_slice(&index.to_ne_bytes());
    b
}

/// `struct rtmsg`.
fn rtmsg(dst_len: u8) -> Vec<u8> {
    let mut b = vec![AF_INET, dst_len, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST];
    b.extend_from_slice(&0u32.to_ne_bytes());
    b
}

/// A whole message: `nlmsghdr`, the fixed header, then the attributes.
pub fn encode(kind: u16, flags: u16, seq: u32, header: &[u8], attrs: &[Attr]) -> Vec<u8> {
    let mut out = vec![0u8; 16];
    out.extend_from_slice(header);
    pad4(&mut out);
    for a in attrs {
        a.encode(&mut out);
    }
    let len = out.len() as u32;
    out[0..4].copy_from_slice(&len.to_ne_bytes());
    out[4..6].copy_from_slice(&kind.to_ne_bytes());
    out[6..8].copy_from_slice(&flags.to_ne_bytes());
    out[8..12].copy_from_slice(&seq.to_ne_bytes());
    out
}

/// One received message: type, sequence number, payload after `nlmsghdr`.
#[derive(Debug, PartialEq)]
pub struct Received<'a> {
    pub kind: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

/// Splits a datagram into messages; stops at the first malformed one.
pub fn split_messages(buf: &[u8]) -> Vec<Received<'_>> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 16 <= buf.len() {
        let len = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
        if len < 16 || off + len > buf.len() {
            break;
        }
        out.push(Received {
            kind: u16::from_ne_bytes(buf[off + 4..off + 6].try_into().unwrap()),
            seq: u32::from_ne_bytes(buf[off + 8..off + 12].try_into().unwrap()),
            payload: &buf[off + 16..off + len],
        });
        off += (len + 3) & !3;
    }
    out
}

/// The attributes after a fixed header of `skip` bytes: (type, data).
pub fn parse_attrs(payload: &[u8], skip: usize) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut off = (skip + 3) & !3;
    while off + 4 <= payload.len() {
        let len = u16::from_ne_bytes(payload[off..off + 2].try_into().unwrap()) as usize;
        let kind = u16::from_ne_bytes(payload[off + 2..off + 4].try_into().unwrap()) & 0x3fff;
        if len < 4 || off + len > payload.len() {
            break;
        }
        out.push((kind, &payload[off + 4..off + len]));
        off += (len + 3) & !3;
    }
    out
}

/// The errno in an `NLMSG_ERROR` payload (0 is an acknowledgement).
pub fn error_code(payload: &[u8]) -> i32 {
    payload.get(0..4).map(|b| -i32::from_ne_bytes(b.try_into().unwrap())).unwrap_or(libc::EIO)
}

fn cstr(data: &[u8]) -> String {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).into_owned()
}

fn ipv4(data: &[u8]) -> Option<Ipv4Addr> {
    let b: [u8; 4] = data.get(0..4)?.try_into().ok()?;
    Some(Ipv4Addr::from(b))
}

/// A link of a dump: index, name, and its bridge (`IFLA_MASTER`) if any.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub master: Option<u32>,
    pub mtu: u32,
}

pub fn parse_link(payload: &[u8]) -> Option<Link> {
    let index = u32::from_ne_bytes(payload.get(4..8)?.try_into().ok()?);
    let mut link = Link { index, name: String::new(), master: None, mtu: 0 };
    for (kind, data) in parse_attrs(payload, 16) {
        match kind {
            IFLA_IFNAME => link.name = cstr(data),
            IFLA_MTU => link.mtu = data.get(0..4).map(|b| u32::from_ne_bytes(b.try_into().unwrap())).unwrap_or(0),
            IFLA_MASTER => link.master = data.get(0..4).map(|b| u32::from_ne_bytes(b.try_into().unwrap())),
            _ => {}
        }
    }
    Some(link)
}

/// An IPv4 address of a dump: link index, address, prefix length.
pub fn parse_addr(payload: &[u8]) -> Option<(u32, Ipv4Addr, u8)> {
    if *payload.first()? != AF_INET {
        return None;
    }
    let prefix = *payload.get(1)?;
    let index = u32::from_ne_bytes(payload.get(4..8)?.try_into().ok()?);
    let attrs = parse_attrs(payload, 8);
    let find = |k| attrs.iter().find(|(kind, _)| *kind == k).and_then(|(_, d)| ipv4(d));
    Some((index, find(IFA_LOCAL).or_else(|| find(IFA_ADDRESS))?, prefix))
}

/// An IPv4 route of a dump: destination and prefix length (0.0.0.0/0 for a default route).
pub fn parse_route(payload: &[u8]) -> Option<(Ipv4Addr, u8)> {
    if *payload.first()? != AF_INET {
        return None;
    }
    let dst_len = *payload.get(1)?;
    let dst = parse_attrs(payload, 12).into_iter().find(|(k, _)| *k == RTA_DST).and_then(|(_, d)| ipv4(d)).unwrap_or(Ipv4Addr::UNSPECIFIED);
    Some((dst, dst_len))
}

/// Request builders, kept pure so the tests can read their bytes.
pub mod req {
    use super::*;

    pub fn new_bridge(seq: u32, name: &str) -> Vec<u8> {
        encode(
            RTM_NEWLINK,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            seq,
            &ifinfomsg(0, 0, 0),
            &[Attr::str(IFLA_IFNAME, name), Attr::Nested(IFLA_LINKINFO, vec![Attr::str(IFLA_INFO_KIND, "bridge")])],
        )
    }

    /// A veth pair: `name` here, `peer` created straight inside the
    /// namespace `peer_netns_fd` refers to (so it never shows up here).
    pub fn new_veth(seq: u32, name: &str, peer: &str, peer_netns_fd: i32) -> Vec<u8> {
        let mut peer_info = ifinfomsg(0, 0, 0);
        let mut nested = Vec::new();
        Attr::str(IFLA_IFNAME, peer).encode(&mut nested);
        Attr::u32(IFLA_NET_NS_FD, peer_netns_fd as u32).encode(&mut nested);
        peer_info.extend_from_slice(&nested);
        encode(
            RTM_NEWLINK,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            seq,
            &ifinfomsg(0, 0, 0),
            &[
                Attr::str(IFLA_IFNAME, name),
                Attr::Nested(
                    IFLA_LINKINFO,
                    vec![Attr::str(IFLA_INFO_KIND, "veth"), Attr::Nested(IFLA_INFO_DATA, vec![Attr::Bytes(VETH_INFO_PEER, peer_info)])],
                ),
            ],
        )
    }

    /// Up (and optionally into bridge `master`).
    pub fn set_up(seq: u32, index: u32, master: Option<u32>) -> Vec<u8> {
        let attrs: Vec<Attr> = master.map(|m| Attr::u32(IFLA_MASTER, m)).into_iter().collect();
        encode(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, &ifinfomsg(index as i32, IFF_UP, IFF_UP), &attrs)
    }

    pub fn del_link(seq: u32, index: u32) -> Vec<u8> {
        encode(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, seq, &ifinfomsg(index as i32, 0, 0), &[])
    }

    pub fn get_link(seq: u32, name: &str) -> Vec<u8> {
        encode(RTM_GETLINK, NLM_F_REQUEST, seq, &ifinfomsg(0, 0, 0), &[Attr::str(IFLA_IFNAME, name)])
    }

    pub fn dump_links(seq: u32) -> Vec<u8> {
        encode(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq, &ifinfomsg(0, 0, 0), &[])
    }

    pub fn add_addr(seq: u32, index: u32, ip: Ipv4Addr, prefix: u8) -> Vec<u8> {
        encode(
            RTM_NEWADDR,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            seq,
            &ifaddrmsg(prefix, index),
            &[Attr::ip(IFA_LOCAL, ip), Attr::ip(IFA_ADDRESS, ip)],
        )
    }

    pub fn dump_addrs(seq: u32) -> Vec<u8> {
        encode(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq, &ifaddrmsg(0, 0), &[])
    }

    pub fn add_default_route(seq: u32, gateway: Ipv4Addr) -> Vec<u8> {
        encode(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, &rtmsg(0), &[Attr::ip(RTA_GATEWAY, gateway)])
    }

    /// A VXLAN device with no learning and no flooding: every remote
    /// endpoint is a static FDB entry, and ARP for them is answered from
    /// static neighbour entries on the device (`proxy`).
    pub fn new_vxlan(seq: u32, name: &str, vni: u32, local: Ipv4Addr, port: u16, mtu: u32) -> Vec<u8> {
        encode(
            RTM_NEWLINK,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            seq,
            &ifinfomsg(0, 0, 0),
            &[
                Attr::str(IFLA_IFNAME, name),
                Attr::u32(IFLA_MTU, mtu),
                Attr::Nested(
                    IFLA_LINKINFO,
                    vec![
                        Attr::str(IFLA_INFO_KIND, "vxlan"),
                        Attr::Nested(
                            IFLA_INFO_DATA,
                            vec![
                                Attr::u32(IFLA_VXLAN_ID, vni),
                                Attr::ip(IFLA_VXLAN_LOCAL, local),
                                Attr::Bytes(IFLA_VXLAN_LEARNING, vec![0]),
                                Attr::Bytes(IFLA_VXLAN_PROXY, vec![1]),
                                Attr::Bytes(IFLA_VXLAN_L2MISS, vec![0]),
                                Attr::Bytes(IFLA_VXLAN_L3MISS, vec![0]),
                                // The UDP port is in network byte order.
                                Attr::Bytes(IFLA_VXLAN_PORT, port.to_be_bytes().to_vec()),
                            ],
                        ),
                    ],
                ),
            ],
        )
    }

    /// Moves a link into the namespace `netns_fd` refers to.
    pub fn set_netns(seq: u32, index: u32, netns_fd: i32) -> Vec<u8> {
        encode(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, &ifinfomsg(index as i32, 0, 0), &[Attr::u32(IFLA_NET_NS_FD, netns_fd as u32)])
    }

    pub fn set_mtu(seq: u32, index: u32, mtu: u32) -> Vec<u8> {
        encode(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, &ifinfomsg(index as i32, 0, 0), &[Attr::u32(IFLA_MTU, mtu)])
    }

    pub fn set_mac(seq: u32, index: u32, mac: Mac) -> Vec<u8> {
        encode(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, &ifinfomsg(index as i32, 0, 0), &[Attr::Bytes(IFLA_ADDRESS, mac.0.to_vec())])
    }

    /// A static FDB entry on a VXLAN device: frames for `mac` go to the
    /// node at `dst`. `add: false` deletes it.
    pub fn fdb(seq: u32, add: bool, index: u32, mac: Mac, dst: Ipv4Addr) -> Vec<u8> {
        let (kind, flags) = neigh_op(add);
        encode(
            kind,
            flags,
            seq,
            &ndmsg(AF_BRIDGE, index, NUD_PERMANENT, NTF_SELF),
            &[Attr::Bytes(NDA_LLADDR, mac.0.to_vec()), Attr::ip(NDA_DST, dst)],
        )
    }

    /// A static neighbour (ARP) entry: `ip` is at `mac`. `add: false`
    /// deletes it.
    pub fn neigh(seq: u32, add: bool, index: u32, ip: Ipv4Addr, mac: Mac) -> Vec<u8> {
        let (kind, flags) = neigh_op(add);
        encode(
            kind,
            flags,
            seq,
            &ndmsg(AF_INET, index, NUD_PERMANENT, 0),
            &[Attr::ip(NDA_DST, ip), Attr::Bytes(NDA_LLADDR, mac.0.to_vec())],
        )
    }

    fn neigh_op(add: bool) -> (u16, u16) {
        if add {
            // Replace: an entry that moved to another node is updated in place.
            (RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | 0x100)
        } else {
            (RTM_DELNEIGH, NLM_F_REQUEST | NLM_F_ACK)
        }
    }

    /// A static entry in the bridge's own forwarding table: `mac` is
    /// behind port `index` (`bridge fdb replace MAC dev PORT master static`).
    pub fn bridge_port_fdb(seq: u32, index: u32, mac: Mac) -> Vec<u8> {
        let (kind, flags) = neigh_op(true);
        encode(kind, flags, seq, &ndmsg(AF_BRIDGE, index, NUD_NOARP, NTF_MASTER), &[Attr::Bytes(NDA_LLADDR, mac.0.to_vec())])
    }

    /// `default via <gateway> dev <oif>` in routing table `table`
    /// (replacing one there).
    pub fn table_default_route(seq: u32, table: u32, gateway: Ipv4Addr, oif: u32) -> Vec<u8> {
        let mut h = rtmsg(0);
        h[4] = 0; // RT_TABLE_UNSPEC: the table is RTA_TABLE (it may exceed 255)
        let attrs = [Attr::ip(RTA_GATEWAY, gateway), Attr::u32(RTA_OIF, oif), Attr::u32(RTA_TABLE, table)];
        encode(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, seq, &h, &attrs)
    }

    /// `default dev <oif> scope link` in table `table` (no gateway: a
    /// point-to-point device such as a TUN).
    pub fn table_dev_route(seq: u32, table: u32, oif: u32) -> Vec<u8> {
        let mut h = rtmsg(0);
        h[4] = 0;
        h[6] = RT_SCOPE_LINK;
        let attrs = [Attr::u32(RTA_OIF, oif), Attr::u32(RTA_TABLE, table)];
        encode(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, seq, &h, &attrs)
    }

    /// `fwmark <mark> lookup <table> pref <priority>`, added or deleted.
    pub fn mark_rule(seq: u32, add: bool, mark: u32, table: u32, priority: u32) -> Vec<u8> {
        // struct fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action, flags.
        let mut h = vec![AF_INET, 0, 0, 0, 0, 0, 0, FR_ACT_TO_TBL];
        h.extend_from_slice(&0u32.to_ne_bytes());
        let attrs =
            [Attr::u32(FRA_PRIORITY, priority), Attr::u32(FRA_FWMARK, mark), Attr::u32(FRA_FWMASK, u32::MAX), Attr::u32(FRA_TABLE, table)];
        let (kind, flags) = if add {
            (RTM_NEWRULE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
        } else {
            (RTM_DELRULE, NLM_F_REQUEST | NLM_F_ACK)
        };
        encode(kind, flags, seq, &h, &attrs)
    }

    pub fn dump_neigh(seq: u32, family: u8) -> Vec<u8> {
        encode(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, seq, &ndmsg(family, 0, 0, 0), &[])
    }

    pub fn dump_routes(seq: u32) -> Vec<u8> {
        let mut h = rtmsg(0);
        h[4] = 0; // every table
        encode(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq, &h, &[])
    }
}

/// An rtnetlink socket in one network namespace.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

/// What went wrong, with the errno when the kernel refused.
#[derive(Debug)]
pub struct NlError {
    pub errno: i32,
    pub message: String,
}

impl std::fmt::Display for NlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<NlError> for String {
    fn from(e: NlError) -> String {
        e.message
    }
}

fn nix_err(what: &str, e: nix::errno::Errno) -> NlError {
    NlError { errno: e as i32, message: format!("{what}: {}", io::Error::from(e)) }
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> Result<Netlink, NlError> {
        use nix::sys::socket::{bind, socket, AddressFamily, NetlinkAddr, SockFlag, SockProtocol, SockType};
        let fd = socket(AddressFamily::Netlink, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::NetlinkRoute)
            .map_err(|e| nix_err("opening a netlink socket", e))?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(|e| nix_err("binding a netlink socket", e))?;
        Ok(Netlink { fd, seq: 1 })
    }

    /// A socket in the namespace `netns` (an open nsfs file).
    pub fn open_in(netns: &File) -> Result<Netlink, NlError> {
        std::thread::scope(|s| {
            s.spawn(|| {
                // setns changes only this short-lived thread.
                nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| nix_err("entering the network namespace", e))?;
                Netlink::open()
            })
            .join()
            .unwrap_or_else(|_| Err(NlError { errno: libc::EIO, message: "netlink thread panicked".into() }))
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn send(&self, msg: &[u8]) -> Result<(), NlError> {
        // The kernel is the default destination of an unconnected netlink
        // socket.
        nix::sys::socket::send(self.fd.as_raw_fd(), msg, nix::sys::socket::MsgFlags::empty())
            .map(|_| ())
            .map_err(|e| nix_err("sending a netlink request", e))
    }

    fn recv(&self, buf: &mut Vec<u8>) -> Result<usize, NlError> {
        buf.resize(64 * 1024, 0);
        nix::sys::socket::recv(self.fd.as_raw_fd(), buf, nix::sys::socket::MsgFlags::empty())
            .map_err(|e| nix_err("reading a netlink answer", e))
    }

    /// Sends a request and waits for its acknowledgement.
    fn request(&mut self, build: impl FnOnce(u32) -> Vec<u8>, what: &str) -> Result<(), NlError> {
        let seq = self.next_seq();
        self.send(&build(seq))?;
        let mut buf = Vec::new();
        loop {
            let n = self.recv(&mut buf)?;
            for m in split_messages(&buf[..n]) {
                if m.seq != seq || m.kind != NLMSG_ERROR {
                    continue;
                }
                let errno = error_code(m.payload);
                if errno == 0 {
                    return Ok(());
                }
                return Err(NlError { errno, message: format!("{what}: {}", io::Error::from_raw_os_error(errno)) });
            }
        }
    }

    /// Sends a request that answers with data (a dump or a single get) and
    /// collects the payloads of type `want`.
    fn collect(&mut self, build: impl FnOnce(u32) -> Vec<u8>, want: u16, what: &str) -> Result<Vec<Vec<u8>>, NlError> {
        let seq = self.next_seq();
        self.send(&build(seq))?;
        let mut out = Vec::new();
        let mut buf = Vec::new();
        loop {
            let n = self.recv(&mut buf)?;
            let mut done = false;
            for m in split_messages(&buf[..n]) {
                if m.seq != seq {
                    continue;
                }
                match m.kind {
                    NLMSG_DONE => done = true,
                    NLMSG_ERROR => {
                        let errno = error_code(m.payload);
                        if errno != 0 {
                            return Err(NlError { errno, message: format!("{what}: {}", io::Error::from_raw_os_error(errno)) });
                        }
                        done = true;
                    }
                    k if k == want => {
                        out.push(m.payload.to_vec());
                    }
                    _ => {}
                }
            }
            // A single get answers with one message and no DONE.
            if done || (!out.is_empty() && !is_multipart(&buf[..n])) {
                return Ok(out);
            }
        }
    }

    /// The index of link `name`, or None if there is none.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>, NlError> {
        match self.collect(|s| req::get_link(s, name), RTM_NEWLINK, &format!("looking up {name}")) {
            Ok(v) => Ok(v.first().and_then(|p| parse_link(p)).map(|l| l.index)),
            Err(e) if e.errno == libc::ENODEV => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn require_index(&mut self, name: &str) -> Result<u32, NlError> {
        self.link_index(name)?.ok_or_else(|| NlError { errno: libc::ENODEV, message: format!("link {name} not found") })
    }

    pub fn links(&mut self) -> Result<Vec<Link>, NlError> {
        let v = self.collect(req::dump_links, RTM_NEWLINK, "listing links")?;
        Ok(v.iter().filter_map(|p| parse_link(p)).collect())
    }

    pub fn add_bridge(&mut self, name: &str) -> Result<u32, NlError> {
        self.request(|s| req::new_bridge(s, name), &format!("creating bridge {name}"))?;
        self.require_index(name)
    }

    /// Creates veth `name` here with its peer `peer` inside `peer_netns`.
    pub fn add_veth(&mut self, name: &str, peer: &str, peer_netns: &File) -> Result<u32, NlError> {
        let fd = peer_netns.as_raw_fd();
        self.request(|s| req::new_veth(s, name, peer, fd), &format!("creating veth pair {name}"))?;
        self.require_index(name)
    }

    pub fn set_up(&mut self, name: &str, master: Option<u32>) -> Result<(), NlError> {
        let index = self.require_index(name)?;
        self.request(|s| req::set_up(s, index, master), &format!("setting {name} up"))
    }

    /// Deletes link `name`; a missing one is nothing to do.
    pub fn del_link(&mut self, name: &str) -> Result<(), NlError> {
        let Some(index) = self.link_index(name)? else { return Ok(()) };
        match self.request(|s| req::del_link(s, index), &format!("deleting {name}")) {
            Err(e) if e.errno == libc::ENODEV => Ok(()),
            r => r,
        }
    }

    /// Adds `ip/prefix` to link `name`; an address already there is fine.
    pub fn add_addr(&mut self, name: &str, ip: Ipv4Addr, prefix: u8) -> Result<(), NlError> {
        let index = self.require_index(name)?;
        match self.request(|s| req::add_addr(s, index, ip, prefix), &format!("adding {ip}/{prefix} to {name}")) {
            Err(e) if e.errno == libc::EEXIST => Ok(()),
            r => r,
        }
    }

    /// Every IPv4 address: (link index, address, prefix length).
    pub fn addrs(&mut self) -> Result<Vec<(u32, Ipv4Addr, u8)>, NlError> {
        let v = self.collect(req::dump_addrs, RTM_NEWADDR, "listing addresses")?;
        Ok(v.iter().filter_map(|p| parse_addr(p)).collect())
    }

    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<(), NlError> {
        self.request(|s| req::add_default_route(s, gateway), &format!("adding the default route via {gateway}"))
    }

    /// `default via <gateway> dev <ifname>` in routing table `table`.
    pub fn replace_route_in_table(&mut self, table: u32, gateway: Ipv4Addr, ifname: &str) -> Result<(), NlError> {
        let index = self.require_index(ifname)?;
        self.request(|s| req::table_default_route(s, table, gateway, index), &format!("routing table {table} via {gateway} dev {ifname}"))
    }

    /// `default dev <ifname>` in routing table `table`.
    pub fn replace_dev_route_in_table(&mut self, table: u32, ifname: &str) -> Result<(), NlError> {
        let index = self.require_index(ifname)?;
        self.request(|s| req::table_dev_route(s, table, index), &format!("routing table {table} dev {ifname}"))
    }

    /// `fwmark <mark> lookup <table>`; one already there is fine.
    pub fn add_mark_rule(&mut self, mark: u32, table: u32, priority: u32) -> Result<(), NlError> {
        match self.request(|s| req::mark_rule(s, true, mark, table, priority), &format!("adding the rule for mark {mark:#x}")) {
            Err(e) if e.errno == libc::EEXIST => Ok(()),
            r => r,
        }
    }

    /// Deletes `fwmark <mark> lookup <table>`; one not there is fine.
    pub fn del_mark_rule(&mut self, mark: u32, table: u32, priority: u32) -> Result<(), NlError> {
        match self.request(|s| req::mark_rule(s, false, mark, table, priority), &format!("deleting the rule for mark {mark:#x}")) {
            Err(e) if e.errno == libc::ENOENT => Ok(()),
            r => r,
        }
    }

    /// Every IPv4 route's destination, in every table.
    pub fn routes(&mut self) -> Result<Vec<(Ipv4Addr, u8)>, NlError> {
        let v = self.collect(req::dump_routes, RTM_NEWROUTE, "listing routes")?;
        Ok(v.iter().filter_map(|p| parse_route(p)).collect())
    }
}

impl Netlink {
    /// Creates VXLAN device `name` in this namespace (its UDP socket lives
    /// here even after the device moves into a sandbox).
    pub fn add_vxlan(&mut self, name: &str, vni: u32, local: Ipv4Addr, port: u16, mtu: u32) -> Result<u32, NlError> {
        self.request(|s| req::new_vxlan(s, name, vni, local, port, mtu), &format!("creating vxlan {name} (VNI {vni})"))?;
        self.require_index(name)
    }

    /// Moves link `name` into `netns`.
    pub fn move_to(&mut self, name: &str, netns: &File) -> Result<(), NlError> {
        let index = self.require_index(name)?;
        let fd = netns.as_raw_fd();
        self.request(|s| req::set_netns(s, index, fd), &format!("moving {name} to another namespace"))
    }

    pub fn set_mtu(&mut self, name: &str, mtu: u32) -> Result<(), NlError> {
        let index = self.require_index(name)?;
        self.request(|s| req::set_mtu(s, index, mtu), &format!("setting the MTU of {name} to {mtu}"))
    }

    pub fn set_mac(&mut self, name: &str, mac: Mac) -> Result<(), NlError> {
        let index = self.require_index(name)?;
        self.request(|s| req::set_mac(s, index, mac), &format!("setting the MAC of {name} to {mac}"))
    }

    /// Adds (or replaces) a static FDB entry `mac -> dst` on device `name`.
    pub fn add_fdb(&mut self, name: &str, mac: Mac, dst: Ipv4Addr) -> Result<(), NlError> {
        let index = self.require_index(name)?;
        self.request(|s| req::fdb(s, true, index, mac, dst), &format!("adding fdb {mac} -> {dst} on {name}"))
    }

    /// Pins `mac` to bridge port `name` (replacing what the bridge learned).
    pub fn pin_to_port(&mut self, name: &str, mac: Mac) -> Result<(), NlError> {
        let index = self.require_index(name)?;
        self.request(|s| req::bridge_port_fdb(s, index, mac), &format!("pinning {mac} to bridge port {name}"))
    }

    /// Deletes an FDB entry; a missing one is nothing to do.
    pub fn del_fdb(&mut self, name: &str, mac: Mac, dst: Ipv4Addr) -> Result<(), NlError> {
        let index = self.require_index(name)?;
        match self.request(|s| req::fdb(s, false, index, mac, dst), &format!("deleting fdb {mac} on {name}")) {
            Err(e) if e.errno == libc::ENOENT => Ok(()),
            r => r,
        }
    }

    /// Adds (or replaces) a static neighbour entry `ip -> mac` on `name`.
    pub fn add_neigh(&mut self, name: &str, ip: Ipv4Addr, mac: Mac) -> Result<(), NlError> {
        let index = self.require_index(name)?;
        self.request(|s| req::neigh(s, true, index, ip, mac), &format!("adding neighbour {ip} at {mac} on {name}"))
    }

    /// Deletes a neighbour entry; a missing one is nothing to do.
    pub fn del_neigh(&mut self, name: &str, ip: Ipv4Addr, mac: Mac) -> Result<(), NlError> {
        let index = self.require_index(name)?;
        match self.request(|s| req::neigh(s, false, index, ip, mac), &format!("deleting neighbour {ip} on {name}")) {
            Err(e) if e.errno == libc::ENOENT => Ok(()),
            r => r,
        }
    }

    /// The static neighbour entries (IPv4 address, MAC) on link `index`.
    pub fn neighbours(&mut self, index: u32) -> Result<Vec<(Ipv4Addr, Mac)>, NlError> {
        let v = self.collect(|s| req::dump_neigh(s, AF_INET), RTM_NEWNEIGH, "listing neighbours")?;
        Ok(v.iter()
            .filter_map(|p| parse_neigh(p))
            .filter(|n| n.index == index && n.state & NUD_PERMANENT != 0)
            .filter_map(|n| Some((n.ip?, n.mac?)))
            .collect())
    }

    /// The static FDB entries (MAC, remote address) on link `index`.
    pub fn fdb_entries(&mut self, index: u32) -> Result<Vec<(Mac, Ipv4Addr)>, NlError> {
        let v = self.collect(|s| req::dump_neigh(s, AF_BRIDGE), RTM_NEWNEIGH, "listing fdb entries")?;
        Ok(v.iter()
            .filter_map(|p| parse_neigh(p))
            .filter(|n| n.index == index && n.state & NUD_PERMANENT != 0)
            .filter_map(|n| Some((n.mac?, n.ip?)))
            .collect())
    }
}

/// A decoded `RTM_NEWNEIGH`.
#[derive(Debug, PartialEq)]
pub struct Neigh {
    pub index: u32,
    pub state: u16,
    pub ip: Option<Ipv4Addr>,
    pub mac: Option<Mac>,
}

pub fn parse_neigh(payload: &[u8]) -> Option<Neigh> {
    if payload.len() < 12 {
        return None;
    }
    let index = i32::from_ne_bytes(payload[4..8].try_into().ok()?) as u32;
    let state = u16::from_ne_bytes(payload[8..10].try_into().ok()?);
    let mut n = Neigh { index, state, ip: None, mac: None };
    for (kind, data) in parse_attrs(payload, 12) {
        match kind {
            NDA_DST => n.ip = ipv4(data),
            NDA_LLADDR if data.len() == 6 => n.mac = Some(Mac(data.try_into().ok()?)),
            _ => {}
        }
    }
    Some(n)
}

fn is_multipart(buf: &[u8]) -> bool {
    buf.get(6..8).map(|b| u16::from_ne_bytes(b.try_into().unwrap()) & 0x2 != 0).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], i: usize) -> u16 {
        u16::from_ne_bytes(b[i..i + 2].try_into().unwrap())
    }
    fn u32_at(b: &[u8], i: usize) -> u32 {
        u32::from_ne_bytes(b[i..i + 4].try_into().unwrap())
    }

    #[test]
    fn header_and_padding() {
        let m = req::get_link(7, "eth0");
        // nlmsghdr 16 + ifinfomsg 16 + attr (4 + "eth0\0" = 9, padded to 12).
        assert_eq!(m.len(), 44);
        assert_eq!(u32_at(&m, 0), 44);
        assert_eq!(u16_at(&m, 4), RTM_GETLINK);
        assert_eq!(u16_at(&m, 6), NLM_F_REQUEST);
        assert_eq!(u32_at(&m, 8), 7);
        assert_eq!(u16_at(&m, 32), 9, "attribute length excludes padding");
        assert_eq!(u16_at(&m, 34), IFLA_IFNAME);
        assert_eq!(&m[36..41], b"eth0\0");
        assert_eq!(&m[41..44], &[0, 0, 0]);
    }

    #[test]
    fn bridge_request_nests_the_kind() {
        let m = req::new_bridge(1, "sgw-abcdef");
        assert_eq!(u16_at(&m, 6), NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        let attrs = parse_attrs(&m[16..], 16);
        assert_eq!(attrs.len(), 2);
        assert_eq!(attrs[0], (IFLA_IFNAME, &b"sgw-abcdef\0"[..]));
        assert_eq!(attrs[1].0, IFLA_LINKINFO);
        let inner = parse_attrs(attrs[1].1, 0);
        assert_eq!(inner, vec![(IFLA_INFO_KIND, &b"bridge\0"[..])]);
    }

    #[test]
    fn vxlan_fdb_and_neighbour_requests() {
        let m = req::new_vxlan(5, "vx1", 4097, Ipv4Addr::new(198, 51, 100, 1), 4789, 1450);
        let msgs = split_messages(&m);
        let attrs = parse_attrs(msgs[0].payload, 16);
        let info = attrs.iter().find(|(k, _)| *k == IFLA_LINKINFO).unwrap().1;
        let info = parse_attrs(info, 0);
        assert_eq!(info[0], (IFLA_INFO_KIND, &b"vxlan\0"[..]));
        let data = parse_attrs(info[1].1, 0);
        assert!(data.contains(&(IFLA_VXLAN_ID, &4097u32.to_ne_bytes()[..])));
        assert!(data.contains(&(IFLA_VXLAN_PORT, &[0x12, 0xb5][..])), "the port in network byte order");
        assert!(data.contains(&(IFLA_VXLAN_LEARNING, &[0][..])));
        assert!(data.contains(&(IFLA_VXLAN_PROXY, &[1][..])));
        assert!(attrs.contains(&(IFLA_MTU, &1450u32.to_ne_bytes()[..])));

        let mac = Mac::for_ip(Ipv4Addr::new(10, 0, 1, 5));
        assert_eq!(mac.to_string(), "02:42:0a:00:01:05");
        let f = req::fdb(6, true, 9, mac, Ipv4Addr::new(198, 51, 100, 2));
        let msgs = split_messages(&f);
        assert_eq!(msgs[0].kind, RTM_NEWNEIGH);
        let p = msgs[0].payload;
        assert_eq!(p[0], AF_BRIDGE);
        assert_eq!(p[10], NTF_SELF);
        let n = parse_neigh(p).unwrap();
        assert_eq!((n.index, n.state, n.mac, n.ip), (9, NUD_PERMANENT, Some(mac), Some(Ipv4Addr::new(198, 51, 100, 2))));
        let d = req::neigh(7, false, 9, Ipv4Addr::new(10, 0, 1, 5), mac);
        assert_eq!(split_messages(&d)[0].kind, RTM_DELNEIGH);
    }

    #[test]
    fn veth_request_carries_the_peer_and_its_namespace() {
        let m = req::new_veth(3, "vabcdef-1234567", "eth0", 42);
        let attrs = parse_attrs(&m[16..], 16);
        let info = parse_attrs(attrs[1].1, 0);
        assert_eq!(info[0], (IFLA_INFO_KIND, &b"veth\0"[..]));
        assert_eq!(info[1].0, IFLA_INFO_DATA);
        let data = parse_attrs(info[1].1, 0);
        assert_eq!(data[0].0, VETH_INFO_PEER);
        // The peer is an ifinfomsg followed by its own attributes.
        let peer = parse_attrs(data[0].1, 16);
        assert_eq!(peer[0], (IFLA_IFNAME, &b"eth0\0"[..]));
        assert_eq!(peer[1], (IFLA_NET_NS_FD, &42u32.to_ne_bytes()[..]));
        // The outer length covers everything, 4-byte aligned.
        assert_eq!(u32_at(&m, 0) as usize, m.len());
        assert_eq!(m.len() % 4, 0);
    }

    #[test]
    fn up_address_and_route_requests() {
        let m = req::set_up(1, 5, Some(9));
        let ifi = &m[16..32];
        assert_eq!(i32::from_ne_bytes(ifi[4..8].try_into().unwrap()), 5);
        assert_eq!(u32_at(ifi, 8), IFF_UP);
        assert_eq!(u32_at(ifi, 12), IFF_UP);
        assert_eq!(parse_attrs(&m[16..], 16), vec![(IFLA_MASTER, &9u32.to_ne_bytes()[..])]);

        let a = req::add_addr(2, 5, "172.18.0.2".parse().unwrap(), 24);
        assert_eq!(&a[16..20], &[AF_INET, 24, 0, 0]);
        assert_eq!(u32_at(&a, 20), 5);
        let attrs = parse_attrs(&a[16..], 8);
        assert_eq!(attrs[0], (IFA_LOCAL, &[172, 18, 0, 2][..]));

        let r = req::add_default_route(3, "172.18.0.1".parse().unwrap());
        assert_eq!(&r[16..24], &[AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST]);
        assert_eq!(parse_attrs(&r[16..], 12), vec![(RTA_GATEWAY, &[172, 18, 0, 1][..])]);
    }

    #[test]
    fn answers_parse() {
        // Two messages in one datagram: an error (EEXIST) and DONE.
        let mut buf = encode(NLMSG_ERROR, 0, 4, &(-libc::EEXIST).to_ne_bytes(), &[]);
        buf.extend(encode(NLMSG_DONE, 0, 4, &[0, 0, 0, 0], &[]));
        let msgs = split_messages(&buf);
        assert_eq!(msgs.len(), 2);
        assert_eq!(error_code(msgs[0].payload), libc::EEXIST);
        assert_eq!(msgs[1].kind, NLMSG_DONE);
        // A truncated message is dropped.
        assert_eq!(split_messages(&buf[..18]).len(), 0);

        let link = encode(RTM_NEWLINK, 0, 1, &ifinfomsg(12, 0, 0), &[Attr::str(IFLA_IFNAME, "sgw-1"), Attr::u32(IFLA_MASTER, 3)]);
        assert_eq!(parse_link(&link[16..]), Some(Link { index: 12, name: "sgw-1".into(), master: Some(3), mtu: 0 }));
        let addr = encode(RTM_NEWADDR, 0, 1, &ifaddrmsg(24, 7), &[Attr::ip(IFA_ADDRESS, "192.0.2.2".parse().unwrap())]);
        assert_eq!(parse_addr(&addr[16..]), Some((7, "192.0.2.2".parse().unwrap(), 24)));
        let mut rt = rtmsg(16);
        rt[0] = AF_INET;
        let route = encode(RTM_NEWROUTE, 0, 1, &rt, &[Attr::ip(RTA_DST, "10.1.0.0".parse().unwrap())]);
        assert_eq!(parse_route(&route[16..]), Some(("10.1.0.0".parse().unwrap(), 16)));
        let default = encode(RTM_NEWROUTE, 0, 1, &rtmsg(0), &[Attr::ip(RTA_GATEWAY, "10.1.0.1".parse().unwrap())]);
        assert_eq!(parse_route(&default[16..]), Some((Ipv4Addr::UNSPECIFIED, 0)));
    }
}
