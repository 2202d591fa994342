//! Encrypted overlays: a node's VXLAN traffic of `--opt encrypted`
//! networks carried inside WireGuard, run in userspace with boringtun (this
//! kernel has no WireGuard module).
//!
//! An encrypted network's VXLAN device uses its own UDP port
//! (`ENCRYPTED_VXLAN_PORT`). The node's nft table marks what leaves for that
//! port, and a policy rule routes marked packets into the node's TUN device
//! (`swg<key>`). The tunnel reads them there, finds the peer by the packet's
//! destination (another node's data path address), encrypts, and sends the
//! result from UDP port `WG_PORT` to that node's `WG_PORT`. The other way,
//! a datagram from a known peer is decrypted and the inner packet (VXLAN
//! for the encrypted port) is written to the TUN, where the kernel delivers
//! it to the VXLAN socket as if it had arrived on the wire. The same table
//! drops anything for the encrypted port that did not come out of the TUN,
//! so nothing of such a network is accepted, or sent, in clear.
//!
//! Each node has a static X25519 key pair made at start; its public key
//! travels in the node's description, and the managers give every node the
//! keys of the nodes it shares an encrypted network with (over mutual TLS).
//! WireGuard's own handshake makes fresh session keys every two minutes.
//!
//! MTU: WireGuard over IPv4 adds 60 bytes (IPv4 20, UDP 8, WireGuard 32),
//! so the TUN gets the underlay's MTU less 60 and an encrypted network's
//! VXLAN devices that less 50.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};

/// The VXLAN port of encrypted networks (VXLAN's own, 4789, stays for the
/// others).
pub const ENCRYPTED_VXLAN_PORT: u16 = 4790;
/// WireGuard's port.
pub const WG_PORT: u16 = 51820;
/// What WireGuard over IPv4 adds to a packet.
pub const WG_OVERHEAD: u32 = 60;
/// The mark, routing table and rule priority that send encrypted VXLAN
/// into the TUN.
pub const WG_MARK: u32 = 0x5747;
pub const WG_RULE_PRIORITY: u32 = 900;
/// How often WireGuard's timers run (handshake retries, rekeying).
const TICK: Duration = Duration::from_millis(250);
/// The largest datagram either way.
const BUF: usize = 65_536;

/// A node's key pair. The secret is wiped from memory when dropped
/// (`StaticSecret` zeroizes itself).
pub struct KeyPair {
    secret: StaticSecret,
    public: PublicKey,
}

impl KeyPair {
    /// A fresh pair from 32 random bytes.
    pub fn from_random(mut bytes: [u8; 32]) -> KeyPair {
        let secret = StaticSecret::from(bytes);
        bytes.iter_mut().for_each(|b| *b = 0);
        let public = PublicKey::from(&secret);
        KeyPair { secret, public }
    }

    /// The public key as WireGuard writes it (base64).
    pub fn public_text(&self) -> String {
        encode_key(self.public.as_bytes())
    }
}

/// A 32-byte key in standard base64 (44 characters, WireGuard's form).
pub fn encode_key(k: &[u8; 32]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(k)
}

/// A key written by `encode_key`; None for anything else.
pub fn decode_key(s: &str) -> Option<[u8; 32]> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s.trim()).ok()?.try_into().ok()
}

struct Peer {
    key: [u8; 32],
    endpoint: SocketAddrV4,
    tunn: Mutex<Tunn>,
}

struct Shared {
    tun: File,
    sock: UdpSocket,
    peers: Mutex<BTreeMap<Ipv4Addr, Arc<Peer>>>,
    stop: AtomicBool,
    next_index: AtomicU32,
}

/// The node's tunnel: TUN device, UDP socket, peers and the threads that
/// move packets between them. Dropping it stops the threads; `remove`
/// also takes down what it set up in the namespace.
pub struct SecureTunnel {
    shared: Arc<Shared>,
    secret: StaticSecret,
    pub ifname: String,
    table: String,
}

/// A TUN device (`IFF_TUN | IFF_NO_PI`: bare IP packets).
fn open_tun(name: &str) -> Result<File, String> {
    let f = std::fs::OpenOptions::new().read(true).write(true).open("/dev/net/tun").map_err(|e| format!("/dev/net/tun: {e}"))?;
    // struct ifreq: the name (16 bytes), then the flags (a short).
    let mut req = [0u8; 40];
    req[..name.len()].copy_from_slice(name.as_bytes());
    req[16..18].copy_from_slice(&(0x0001u16 | 0x1000).to_ne_bytes());
    const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
    // SAFETY: TUNSETIFF reads an ifreq we own.
    if unsafe { libc::ioctl(f.as_raw_fd(), TUNSETIFF, req.as_mut_ptr()) } < 0 {
        return Err(format!("creating TUN {name}: {}", std::io::Error::last_os_error()));
    }
    Ok(f)
}

/// Waits up to `TICK` for `fd` to be readable.
fn readable(fd: i32) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, TICK.as_millis() as i32) > 0 }
}

/// The nft table of the node's namespace for encrypted overlays.
pub fn ruleset(table: &str, ifname: &str) -> String {
    [
        format!("table ip {table}"),
        format!("delete table ip {table}"),
        format!("table ip {table} {{"),
        "\tchain out {".to_string(),
        "\t\ttype route hook output priority -150; policy accept;".to_string(),
        format!("\t\tudp dport {ENCRYPTED_VXLAN_PORT} meta mark set {WG_MARK:#x}"),
        "\t}".to_string(),
        "\tchain in {".to_string(),
        "\t\ttype filter hook input priority 0; policy accept;".to_string(),
        format!("\t\tudp dport {ENCRYPTED_VXLAN_PORT} iifname != \"{ifname}\" drop"),
        "\t}".to_string(),
        "}\n".to_string(),
    ]
    .join("\n")
}

/// Deletes nft table `table` if it is there.
fn remove_table(table: &str) -> Result<(), String> {
    crate::vip::apply(&format!("table ip {table}\ndelete table ip {table}\n"))
}

impl SecureTunnel {
    /// Sets up the tunnel in the caller's namespace: TUN `ifname` with
    /// MTU `underlay_mtu - WG_OVERHEAD`, the socket on `local:WG_PORT`, the
    /// routing of encrypted VXLAN into the TUN (nft table `table`), and the
    /// threads.
    pub fn start(keys: &KeyPair, ifname: &str, table: &str, local: Ipv4Addr, underlay_mtu: u32) -> Result<SecureTunnel, String> {
        let tun = open_tun(ifname)?;
        let mut nl = crate::netlink::Netlink::open()?;
        let made = (|| -> Result<UdpSocket, String> {
            nl.set_mtu(ifname, underlay_mtu.saturating_sub(WG_OVERHEAD))?;
            nl.set_up(ifname, None)?;
            // Decrypted packets come in on the TUN from peers whose route is
            // the underlay: the reverse-path filter must let them in.
            let conf = |c: &str| format!("/proc/sys/net/ipv4/conf/{c}/rp_filter");
            std::fs::write(conf(ifname), "0").map_err(|e| format!("{}: {e}", conf(ifname)))?;
            if std::fs::read_to_string(conf("all")).map(|v| v.trim() == "1").unwrap_or(false) {
                std::fs::write(conf("all"), "2").map_err(|e| format!("{}: {e}", conf("all")))?;
            }
            nl.replace_dev_route_in_table(WG_MARK, ifname)?;
            nl.add_mark_rule(WG_MARK, WG_MARK, WG_RULE_PRIORITY)?;
            crate::vip::apply(&ruleset(table, ifname))?;
            UdpSocket::bind(SocketAddrV4::new(local, WG_PORT)).map_err(|e| format!("binding {local}:{WG_PORT}: {e}"))
        })();
        let sock = match made {
            Ok(s) => s,
            Err(e) => {
                let _ = nl.del_mark_rule(WG_MARK, WG_MARK, WG_RULE_PRIORITY);
                let _ = remove_table(table);
                return Err(e);
            }
        };
        let shared =
            Arc::new(Shared { tun, sock, peers: Mutex::new(BTreeMap::new()), stop: AtomicBool::new(false), next_index: AtomicU32::new(1) });
        for (name, run) in [("wg-out", out_loop as fn(&Shared)), ("wg-in", in_loop), ("wg-timers", timer_loop)] {
            let s = shared.clone();
            std::thread::Builder::new().name(name.into()).spawn(move || run(&s)).map_err(|e| format!("starting {name}: {e}"))?;
        }
        tracing::info!("encrypted overlays: WireGuard on {ifname}, {local}:{WG_PORT}");
        Ok(SecureTunnel { shared, secret: keys.secret.clone(), ifname: ifname.to_string(), table: table.to_string() })
    }

    /// Makes the peers exactly `peers` (data path address -> public key),
    /// by difference: a peer whose key is unchanged keeps its sessions.
    pub fn set_peers(&self, peers: &BTreeMap<Ipv4Addr, [u8; 32]>) {
        let mut have = self.shared.peers.lock().unwrap();
        have.retain(|addr, p| peers.get(addr) == Some(&p.key));
        for (addr, key) in peers {
            if have.contains_key(addr) {
                continue;
            }
            let index = self.shared.next_index.fetch_add(1, Ordering::Relaxed);
            let tunn = Tunn::new(self.secret.clone(), PublicKey::from(*key), None, None, index, None);
            have.insert(*addr, Arc::new(Peer { key: *key, endpoint: SocketAddrV4::new(*addr, WG_PORT), tunn: Mutex::new(tunn) }));
        }
    }

    /// Stops the threads and takes down the rule, route table entry, nft
    /// table and TUN device.
    pub fn remove(self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Ok(mut nl) = crate::netlink::Netlink::open() {
            let _ = nl.del_mark_rule(WG_MARK, WG_MARK, WG_RULE_PRIORITY);
        }
        let _ = remove_table(&self.table);
        // The device goes with the last descriptor, once the threads let go.
    }
}

impl Drop for SecureTunnel {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

fn peer_for(s: &Shared, addr: Ipv4Addr) -> Option<Arc<Peer>> {
    s.peers.lock().unwrap().get(&addr).cloned()
}

/// TUN -> peers: encrypted VXLAN packets, sent to their destination node.
fn out_loop(s: &Shared) {
    let mut pkt = vec![0u8; BUF];
    let mut out = vec![0u8; BUF];
    let mut tun = &s.tun;
    while !s.stop.load(Ordering::Relaxed) {
        if !readable(s.tun.as_raw_fd()) {
            continue;
        }
        let n = match tun.read(&mut pkt) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!("encrypted overlays: reading the TUN: {e}");
                return;
            }
        };
        if n < 20 || pkt[0] >> 4 != 4 {
            continue;
        }
        let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
        // No key for that node: dropped, never sent in clear.
        let Some(peer) = peer_for(s, dst) else { continue };
        let mut t = peer.tunn.lock().unwrap();
        if let TunnResult::WriteToNetwork(b) = t.encapsulate(&pkt[..n], &mut out) {
            let _ = s.sock.send_to(b, peer.endpoint);
        }
    }
}

/// Peers -> TUN: decrypted packets, and the handshake's own replies.
fn in_loop(s: &Shared) {
    let mut buf = vec![0u8; BUF];
    let mut out = vec![0u8; BUF];
    let mut tun = &s.tun;
    while !s.stop.load(Ordering::Relaxed) {
        if !readable(s.sock.as_raw_fd()) {
            continue;
        }
        let (n, from) = match s.sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(_) => continue,
        };
        let SocketAddr::V4(from) = from else { continue };
        // Only the nodes the managers named.
        let Some(peer) = peer_for(s, *from.ip()) else { continue };
        let mut t = peer.tunn.lock().unwrap();
        let mut first = true;
        loop {
            let datagram: &[u8] = if first { &buf[..n] } else { &[] };
            let src = first.then_some(IpAddr::V4(*from.ip()));
            first = false;
            match t.decapsulate(src, datagram, &mut out) {
                TunnResult::WriteToNetwork(b) => {
                    let _ = s.sock.send_to(b, peer.endpoint);
                    // Packets queued behind the handshake go next.
                    continue;
                }
                TunnResult::WriteToTunnelV4(b, _) => {
                    let _ = tun.write(b);
                }
                _ => {}
            }
            break;
        }
    }
}

/// Handshake retries, rekeying and keepalives.
fn timer_loop(s: &Shared) {
    let mut out = vec![0u8; BUF];
    while !s.stop.load(Ordering::Relaxed) {
        std::thread::sleep(TICK);
        let peers: Vec<Arc<Peer>> = s.peers.lock().unwrap().values().cloned().collect();
        for p in peers {
            let mut t = p.tunn.lock().unwrap();
            if let TunnResult::WriteToNetwork(b) = t.update_timers(&mut out) {
                let _ = s.sock.send_to(b, p.endpoint);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_written_as_wireguard_writes_them() {
        let k = KeyPair::from_random([7u8; 32]);
        let text = k.public_text();
        assert_eq!(text.len(), 44);
        assert_eq!(decode_key(&text), Some(*k.public.as_bytes()));
        assert_eq!(encode_key(&[0u8; 32]), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        assert_eq!(decode_key("not a key"), None);
        assert_eq!(decode_key("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="), None);
    }

    #[test]
    fn two_tunnels_handshake_and_carry_a_packet_without_a_network() {
        // The state machines alone, wired back to back (no sockets).
        let a = KeyPair::from_random([1u8; 32]);
        let b = KeyPair::from_random([2u8; 32]);
        let mut ta = Tunn::new(a.secret.clone(), b.public, None, None, 1, None);
        let mut tb = Tunn::new(b.secret.clone(), a.public, None, None, 2, None);
        let mut packet = vec![0x45u8, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        packet.extend_from_slice(&[0x12, 0xb6, 0x12, 0xb6, 0, 8, 0, 0]);
        let (mut x, mut y) = (vec![0u8; BUF], vec![0u8; BUF]);
        // a wants to send: a handshake initiation goes out first.
        let init = match ta.encapsulate(&packet, &mut x) {
            TunnResult::WriteToNetwork(m) => m.to_vec(),
            other => panic!("{other:?}"),
        };
        let resp = match tb.decapsulate(None, &init, &mut y) {
            TunnResult::WriteToNetwork(m) => m.to_vec(),
            other => panic!("{other:?}"),
        };
        // a takes the response and sends the queued packet.
        let data = match ta.decapsulate(None, &resp, &mut x) {
            TunnResult::WriteToNetwork(m) => m.to_vec(),
            other => panic!("{other:?}"),
        };
        let data = match ta.decapsulate(None, &[], &mut x) {
            TunnResult::WriteToNetwork(m) => m.to_vec(),
            _ => data,
        };
        assert!(!data.windows(8).any(|w| w == &packet[20..28]), "the payload is not in clear on the wire");
        match tb.decapsulate(None, &data, &mut y) {
            TunnResult::WriteToTunnelV4(p, src) => {
                assert_eq!(p, &packet[..]);
                assert_eq!(src, Ipv4Addr::new(10, 0, 0, 1));
            }
            other => panic!("{other:?}"),
        }
    }
}
