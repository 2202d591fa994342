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
//! The node replaces its static key pair periodically (`rotate`); the new
//! public key reaches its peers through the managers a moment later.
//! Meanwhile each peer keeps the old pairing of keys, whose sessions still
//! carry the traffic, beside the new one (`PeerTunnels`), so a rotation
//! drops no packet and no connection.
//!
//! MTU: WireGuard over IPv4 adds 60 bytes (IPv4 20, UDP 8, WireGuard 32),
//! so the TUN gets the underlay's MTU less 60 and an encrypted network's
//! VXLAN devices that less 50.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
/// The tunnel socket's send and receive buffers.
const SOCKET_BUFFER: usize = 4 << 20;

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

/// One peer's tunnels: one per pairing of our static key and theirs that
/// is still in use. A key rotation (ours, or theirs as the managers report
/// it) makes a new `current` pairing; the old one keeps carrying traffic
/// until the new one has a session, and is kept a little longer for
/// packets already on the wire. So a rotation drops nothing, although
/// each side learns of the other's new key at its own moment.
pub struct PeerTunnels {
    key: [u8; 32],
    current: Pairing,
    /// Older pairings, oldest first.
    retiring: Vec<Pairing>,
    /// When `current` was first seen with a session, while others retire.
    settled_at: Option<Instant>,
    /// The last handshake started by hand on `current` (see `tick`).
    pushed_at: Option<Instant>,
}

struct Pairing {
    /// Our index for this pairing: the top 24 bits of every receiver index
    /// the peer sends to it (boringtun keeps the low 8 for its sessions).
    index: u32,
    tunn: Tunn,
    /// When it stopped being current.
    retired_at: Option<Instant>,
}

/// What a tunnel hands back: a datagram for the peer, or a decrypted
/// packet for the TUN.
#[derive(Debug)]
pub enum Emit<'a> {
    Network(&'a [u8]),
    Tunnel(&'a [u8]),
}

/// How long a retiring pairing stays once `current` has a session: packets
/// the peer sent through the old one before it switched still arrive.
const DRAIN: Duration = Duration::from_secs(5);
/// A retiring pairing's sessions are dead after WireGuard's
/// REJECT_AFTER_TIME (180 s) anyway.
const RETIRE_AT_MOST: Duration = Duration::from_secs(190);
/// While a pairing retires, how often `current` starts a handshake of its
/// own (nothing else would start one while the old pairing carries the
/// traffic).
const PUSH_EVERY: Duration = Duration::from_secs(1);

fn has_session(t: &Tunn) -> bool {
    t.time_since_last_handshake().is_some()
}

impl PeerTunnels {
    pub fn new(ours: &StaticSecret, key: [u8; 32], index: u32) -> PeerTunnels {
        PeerTunnels { key, current: Pairing::new(ours, key, index), retiring: Vec::new(), settled_at: None, pushed_at: None }
    }

    /// The peer's public key as last set.
    pub fn key(&self) -> [u8; 32] {
        self.key
    }

    /// A new pairing (our key `ours`, theirs `key`) becomes current; the
    /// old one retires.
    pub fn renew(&mut self, ours: &StaticSecret, key: [u8; 32], index: u32, now: Instant) {
        let mut old = std::mem::replace(&mut self.current, Pairing::new(ours, key, index));
        old.retired_at = Some(now);
        self.retiring.push(old);
        self.key = key;
        self.settled_at = None;
        self.pushed_at = None;
    }

    /// How many pairings are in use (1 outside a rotation).
    #[cfg(test)]
    fn pairings(&self) -> usize {
        1 + self.retiring.len()
    }

    /// Encrypts `packet` for the peer: through `current` once it has a
    /// session, else through the newest retiring pairing that still has
    /// one, else through `current` (which queues it behind a handshake).
    pub fn encapsulate<'a>(&mut self, packet: &[u8], out: &'a mut [u8]) -> Option<&'a [u8]> {
        let via = if has_session(&self.current.tunn) {
            &mut self.current
        } else {
            match self.retiring.iter_mut().rev().find(|p| has_session(&p.tunn)) {
                Some(p) => p,
                None => &mut self.current,
            }
        };
        match via.tunn.encapsulate(packet, out) {
            TunnResult::WriteToNetwork(b) => Some(b),
            _ => None,
        }
    }

    /// Takes one datagram from the peer. A handshake initiation goes to
    /// the pairing whose key it was made for (current first); anything
    /// else to the pairing its receiver index names.
    pub fn decapsulate(&mut self, from: Ipv4Addr, datagram: &[u8], out: &mut [u8], emit: &mut dyn FnMut(Emit<'_>)) {
        use boringtun::noise::Packet;
        let receiver = match Tunn::parse_incoming_packet(datagram) {
            Ok(Packet::HandshakeInit(_)) => None,
            Ok(Packet::HandshakeResponse(p)) => Some(p.receiver_idx),
            Ok(Packet::PacketCookieReply(p)) => Some(p.receiver_idx),
            Ok(Packet::PacketData(p)) => Some(p.receiver_idx),
            Err(_) => return,
        };
        let pairings = std::iter::once(&mut self.current).chain(self.retiring.iter_mut().rev());
        for p in pairings {
            if receiver.is_some_and(|r| r >> 8 != p.index) {
                continue;
            }
            match p.tunn.decapsulate(Some(IpAddr::V4(from)), datagram, out) {
                // Not made for this pairing's keys: try the next one.
                TunnResult::Err(_) if receiver.is_none() => continue,
                TunnResult::WriteToNetwork(b) => {
                    emit(Emit::Network(b));
                    // Packets queued behind the handshake go next.
                    while let TunnResult::WriteToNetwork(b) = p.tunn.decapsulate(None, &[], out) {
                        emit(Emit::Network(b));
                    }
                }
                TunnResult::WriteToTunnelV4(b, _) => emit(Emit::Tunnel(b)),
                _ => {}
            }
            return;
        }
    }

    /// WireGuard's timers on every pairing; during a rotation, a handshake
    /// pushed on `current` each `PUSH_EVERY` until it has a session (it
    /// fails until the peer knows our new key, or we know theirs), and the
    /// retiring pairings dropped once they are no longer needed.
    pub fn tick(&mut self, now: Instant, out: &mut [u8], emit: &mut dyn FnMut(Emit<'_>)) {
        for p in std::iter::once(&mut self.current).chain(self.retiring.iter_mut()) {
            if let TunnResult::WriteToNetwork(b) = p.tunn.update_timers(out) {
                emit(Emit::Network(b));
            }
        }
        if self.retiring.is_empty() {
            return;
        }
        if has_session(&self.current.tunn) {
            let settled = *self.settled_at.get_or_insert(now);
            if now.duration_since(settled) >= DRAIN {
                self.retiring.clear();
                self.settled_at = None;
                return;
            }
        } else if self.pushed_at.is_none_or(|t| now.duration_since(t) >= PUSH_EVERY) {
            self.pushed_at = Some(now);
            if let TunnResult::WriteToNetwork(b) = self.current.tunn.format_handshake_initiation(out, true) {
                emit(Emit::Network(b));
            }
        }
        self.retiring.retain(|p| p.retired_at.is_none_or(|t| now.duration_since(t) < RETIRE_AT_MOST));
    }
}

impl Pairing {
    fn new(ours: &StaticSecret, key: [u8; 32], index: u32) -> Pairing {
        Pairing { index, tunn: Tunn::new(ours.clone(), PublicKey::from(key), None, None, index, None), retired_at: None }
    }
}

struct Peer {
    endpoint: SocketAddrV4,
    tunnels: Mutex<PeerTunnels>,
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
    /// Our static key as last set (`start`, `rotate`).
    secret: Mutex<StaticSecret>,
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
fn wait_readable(fd: std::os::fd::BorrowedFd<'_>) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let _ = poll(&mut [PollFd::new(fd, PollFlags::POLLIN)], PollTimeout::from(TICK.as_millis() as u16));
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
            let sock = UdpSocket::bind(SocketAddrV4::new(local, WG_PORT)).map_err(|e| format!("binding {local}:{WG_PORT}: {e}"))?;
            sock.set_read_timeout(Some(TICK)).map_err(|e| format!("socket timeout: {e}"))?;
            // Room for bursts: with the default buffers (about 200 KiB) a
            // burst of a fast TCP stream overflows them, the drops make TCP
            // back off, and the tunnel crawls (as wireguard-go, which sets
            // 7 MiB). Forced past rmem_max/wmem_max: shoald runs as root.
            use nix::sys::socket::{setsockopt, sockopt};
            for (what, r) in [
                ("receive", setsockopt(&sock, sockopt::RcvBufForce, &SOCKET_BUFFER)),
                ("send", setsockopt(&sock, sockopt::SndBufForce, &SOCKET_BUFFER)),
            ] {
                if let Err(e) = r {
                    tracing::warn!("encrypted overlays: the socket's {what} buffer stays small: {e}");
                }
            }
            let flags =
                nix::fcntl::OFlag::from_bits_retain(nix::fcntl::fcntl(&tun, nix::fcntl::FcntlArg::F_GETFL).map_err(|e| e.to_string())?);
            nix::fcntl::fcntl(&tun, nix::fcntl::FcntlArg::F_SETFL(flags | nix::fcntl::OFlag::O_NONBLOCK))
                .map_err(|e| format!("TUN non-blocking: {e}"))?;
            Ok(sock)
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
        Ok(SecureTunnel { shared, secret: Mutex::new(keys.secret.clone()), ifname: ifname.to_string(), table: table.to_string() })
    }

    /// Makes the peers exactly `peers` (data path address -> public key),
    /// by difference: a peer whose key is unchanged keeps its sessions,
    /// and one whose key changed keeps its old pairing until the new one
    /// carries traffic.
    pub fn set_peers(&self, peers: &BTreeMap<Ipv4Addr, [u8; 32]>) {
        let secret = self.secret.lock().unwrap().clone();
        let mut have = self.shared.peers.lock().unwrap();
        have.retain(|addr, _| peers.contains_key(addr));
        let now = Instant::now();
        let index = || self.shared.next_index.fetch_add(1, Ordering::Relaxed);
        for (addr, key) in peers {
            match have.get(addr) {
                Some(p) => {
                    let mut t = p.tunnels.lock().unwrap();
                    if t.key() != *key {
                        t.renew(&secret, *key, index(), now);
                    }
                }
                None => {
                    let tunnels = Mutex::new(PeerTunnels::new(&secret, *key, index()));
                    have.insert(*addr, Arc::new(Peer { endpoint: SocketAddrV4::new(*addr, WG_PORT), tunnels }));
                }
            }
        }
    }

    /// Makes `keys` this node's static key pair: every peer gets a new
    /// pairing under it, and the old one keeps carrying traffic until the
    /// peer has learnt the new public key (from the managers) and a
    /// handshake under it has succeeded.
    pub fn rotate(&self, keys: &KeyPair) {
        let mut secret = self.secret.lock().unwrap();
        *secret = keys.secret.clone();
        let now = Instant::now();
        for p in self.shared.peers.lock().unwrap().values() {
            let mut t = p.tunnels.lock().unwrap();
            let key = t.key();
            t.renew(&secret, key, self.shared.next_index.fetch_add(1, Ordering::Relaxed), now);
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
        // The TUN is non-blocking: packets are read while there are any,
        // and poll waits only when it is empty (one call less per packet).
        let n = match tun.read(&mut pkt) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                wait_readable(s.tun.as_fd());
                continue;
            }
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
        let mut tunnels = peer.tunnels.lock().unwrap();
        if let Some(b) = tunnels.encapsulate(&pkt[..n], &mut out) {
            let _ = s.sock.send_to(b, peer.endpoint);
        }
    }
}

/// Sends what a peer's tunnels hand back: datagrams to the peer, decrypted
/// packets to the TUN.
fn emitter<'s>(s: &'s Shared, peer: &'s Peer) -> impl FnMut(Emit<'_>) + 's {
    move |e| match e {
        Emit::Network(b) => {
            let _ = s.sock.send_to(b, peer.endpoint);
        }
        Emit::Tunnel(b) => {
            let _ = (&s.tun).write(b);
        }
    }
}

/// Peers -> TUN: decrypted packets, and the handshake's own replies.
fn in_loop(s: &Shared) {
    let mut buf = vec![0u8; BUF];
    let mut out = vec![0u8; BUF];
    while !s.stop.load(Ordering::Relaxed) {
        // Blocking with a timeout (`start`), so the stop flag is seen.
        let (n, from) = match s.sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(_) => continue,
        };
        let SocketAddr::V4(from) = from else { continue };
        // Only the nodes the managers named.
        let Some(peer) = peer_for(s, *from.ip()) else { continue };
        peer.tunnels.lock().unwrap().decapsulate(*from.ip(), &buf[..n], &mut out, &mut emitter(s, &peer));
    }
}

/// Handshake retries, rekeying, keepalives and rotations.
fn timer_loop(s: &Shared) {
    let mut out = vec![0u8; BUF];
    while !s.stop.load(Ordering::Relaxed) {
        std::thread::sleep(TICK);
        let peers: Vec<Arc<Peer>> = s.peers.lock().unwrap().values().cloned().collect();
        let now = Instant::now();
        for p in peers {
            p.tunnels.lock().unwrap().tick(now, &mut out, &mut emitter(s, &p));
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

    /// An IPv4/UDP packet whose payload carries `n`.
    fn packet(n: u32) -> Vec<u8> {
        let mut p = vec![0x45u8, 0, 0, 32, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        p.extend_from_slice(&[0x12, 0xb6, 0x12, 0xb6, 0, 12, 0, 0]);
        p.extend_from_slice(&n.to_be_bytes());
        p
    }

    /// Two peers' tunnels wired back to back: what one sends, the other
    /// gets, until the wire is empty; returns what each TUN received.
    fn pump(a: &mut PeerTunnels, b: &mut PeerTunnels, wire: &mut Vec<(bool, Vec<u8>)>) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
        let mut out = vec![0u8; BUF];
        while !wire.is_empty() {
            let (to_b, datagram) = wire.remove(0);
            let (me, got) = if to_b { (&mut *b, &mut got_b) } else { (&mut *a, &mut got_a) };
            let from = if to_b { Ipv4Addr::new(192, 0, 2, 1) } else { Ipv4Addr::new(192, 0, 2, 2) };
            let mut sent = Vec::new();
            me.decapsulate(from, &datagram, &mut out, &mut |e| match e {
                Emit::Network(d) => sent.push((!to_b, d.to_vec())),
                Emit::Tunnel(p) => got.push(p.to_vec()),
            });
            wire.extend(sent);
        }
        (got_a, got_b)
    }

    fn send(from_a: bool, t: &mut PeerTunnels, n: u32, wire: &mut Vec<(bool, Vec<u8>)>) {
        let mut out = vec![0u8; BUF];
        if let Some(d) = t.encapsulate(&packet(n), &mut out) {
            wire.push((from_a, d.to_vec()));
        }
    }

    fn tick(from_a: bool, t: &mut PeerTunnels, now: Instant, wire: &mut Vec<(bool, Vec<u8>)>) {
        let mut out = vec![0u8; BUF];
        t.tick(now, &mut out, &mut |e| {
            if let Emit::Network(d) = e {
                wire.push((from_a, d.to_vec()))
            }
        });
    }

    #[test]
    fn a_key_rotation_on_either_side_loses_no_packet() {
        let (a0, b0) = (KeyPair::from_random([1u8; 32]), KeyPair::from_random([2u8; 32]));
        let mut a = PeerTunnels::new(&a0.secret, *b0.public.as_bytes(), 1);
        let mut b = PeerTunnels::new(&b0.secret, *a0.public.as_bytes(), 1);
        let mut wire = Vec::new();
        let mut n = 0u32;
        // Packets both ways, every one of which must arrive.
        let mut exchange = |a: &mut PeerTunnels, b: &mut PeerTunnels, wire: &mut Vec<(bool, Vec<u8>)>, now: Instant| {
            for _ in 0..5 {
                n += 1;
                send(true, a, n, wire);
                send(false, b, n + 1_000_000, wire);
                tick(true, a, now, wire);
                tick(false, b, now, wire);
                let (got_a, got_b) = pump(a, b, wire);
                assert_eq!(got_b, vec![packet(n)], "a -> b, packet {n}");
                assert_eq!(got_a, vec![packet(n + 1_000_000)], "b -> a, packet {n}");
            }
        };
        let t0 = Instant::now();
        exchange(&mut a, &mut b, &mut wire, t0);

        // a rotates; b does not know the new key yet: the old pairing
        // carries everything, and a's pushed handshakes are refused.
        let a1 = KeyPair::from_random([3u8; 32]);
        a.renew(&a1.secret, *b0.public.as_bytes(), 2, t0);
        for s in 1..4 {
            exchange(&mut a, &mut b, &mut wire, t0 + PUSH_EVERY * s);
        }
        assert_eq!(a.pairings(), 2);
        assert!(!has_session(&a.current.tunn), "b cannot know a's new key yet");

        // b learns it (from the managers): the new pairing takes over.
        b.renew(&b0.secret, *a1.public.as_bytes(), 2, t0);
        for s in 4..8 {
            exchange(&mut a, &mut b, &mut wire, t0 + PUSH_EVERY * s);
        }
        assert!(has_session(&a.current.tunn) && has_session(&b.current.tunn), "the new pairing has a session");
        // Once drained, the old pairing goes: a's old key opens nothing.
        let later = t0 + PUSH_EVERY * 8 + DRAIN * 2;
        exchange(&mut a, &mut b, &mut wire, later);
        exchange(&mut a, &mut b, &mut wire, later + DRAIN);
        assert_eq!((a.pairings(), b.pairings()), (1, 1));
        let mut stale = PeerTunnels::new(&a0.secret, *b0.public.as_bytes(), 9);
        let mut out = vec![0u8; BUF];
        let init = stale.encapsulate(&packet(0), &mut out).expect("a handshake").to_vec();
        let mut answered = false;
        b.decapsulate(Ipv4Addr::new(192, 0, 2, 1), &init, &mut out, &mut |_| answered = true);
        assert!(!answered, "a handshake under a's old key is refused");

        // Then b rotates too, and a learns of it: still nothing lost.
        let b1 = KeyPair::from_random([4u8; 32]);
        b.renew(&b1.secret, *a1.public.as_bytes(), 3, later);
        exchange(&mut a, &mut b, &mut wire, later + DRAIN * 2);
        a.renew(&a1.secret, *b1.public.as_bytes(), 3, later);
        for s in 0..4 {
            exchange(&mut a, &mut b, &mut wire, later + DRAIN * 3 + PUSH_EVERY * s);
        }
        assert!(has_session(&a.current.tunn) && has_session(&b.current.tunn));
    }
}
