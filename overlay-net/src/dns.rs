//! The resolver every task on a network gets at 127.0.0.11, as Docker's
//! embedded DNS server.
//!
//! A task may resolve only what shares a network with it: service names
//! and their aliases (the VIP, or every task address for `dnsrr`),
//! `tasks.<service>` (every task address), task names and container
//! hostnames, and the reverse (PTR) names of those addresses. That set is a
//! [`Zone`], built by the caller from the managers' view and swapped whole
//! when it changes, so an answer is never staler than the last assignment
//! (Swarm's gossip keeps stale records for up to its push-pull interval).
//! Anything else goes to the node's own resolvers.
//!
//! Messages are parsed and built with `hickory-proto`; [`answer`] is a pure
//! function of the query bytes and the zone. [`serve`] binds UDP and TCP on
//! 127.0.0.11:53 inside a task's namespace (sockets opened from a thread
//! that entered it keep living there) and answers from shoald's runtime.

use std::collections::HashMap;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Docker's TTL for the records it serves.
pub const TTL: u32 = 600;
/// Where every task finds its resolver.
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
/// A query larger than this is not a query (UDP answers stay under 512
/// bytes unless EDNS asks for more; TCP messages are length-prefixed).
const MAX_MESSAGE: usize = 4096;

/// The names one task may resolve.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Zone {
    names: HashMap<String, Vec<Ipv4Addr>>,
    reverse: HashMap<Ipv4Addr, String>,
    /// Whether names not found here go to the node's resolvers (not for a
    /// task whose only networks are `--internal`).
    pub forward: bool,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Zone {
    /// `name` resolves to `ip` (among others added for it).
    pub fn add(&mut self, name: &str, ip: Ipv4Addr) {
        let list = self.names.entry(key(name)).or_default();
        if !list.contains(&ip) {
            list.push(ip);
        }
    }

    /// `ip`'s reverse name is `name` (the first one given wins).
    pub fn add_reverse(&mut self, ip: Ipv4Addr, name: &str) {
        self.reverse.entry(ip).or_insert_with(|| key(name));
    }

    pub fn lookup(&self, name: &str) -> Option<&[Ipv4Addr]> {
        self.names.get(&key(name)).map(Vec::as_slice)
    }
}

/// What to do with a query.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Not ours: ask the node's resolvers.
    Forward,
    /// Not a DNS message worth an answer.
    Drop,
}

/// The address an `in-addr.arpa` name stands for.
fn reverse_ip(name: &str) -> Option<Ipv4Addr> {
    let rest = key(name).strip_suffix(".in-addr.arpa")?.to_string();
    let mut parts: Vec<u8> = rest.split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    if parts.len() != 4 {
        return None;
    }
    parts.reverse();
    Some(Ipv4Addr::new(parts[0], parts[1], parts[2], parts[3]))
}

/// Answers `query` from `zone`, or says to forward it.
pub fn answer(query: &[u8], zone: &Zone) -> Answer {
    let Ok(req) = Message::from_vec(query) else { return Answer::Drop };
    if req.metadata.message_type != MessageType::Query {
        return Answer::Drop;
    }
    let mut resp = Message::response(req.metadata.id, req.metadata.op_code);
    resp.metadata.recursion_desired = req.metadata.recursion_desired;
    resp.metadata.recursion_available = true;
    let reply = |mut m: Message, code: ResponseCode| {
        m.metadata.response_code = code;
        m.to_vec().map(Answer::Reply).unwrap_or(Answer::Drop)
    };
    if req.metadata.op_code != OpCode::Query || req.queries.len() != 1 {
        return reply(resp, ResponseCode::NotImp);
    }
    let q = req.queries[0].clone();
    resp.add_query(q.clone());
    let name = q.name().to_ascii();
    if q.query_type() == RecordType::PTR {
        return match reverse_ip(&name).and_then(|ip| zone.reverse.get(&ip)) {
            Some(target) => match Name::from_ascii(format!("{target}.")) {
                Ok(t) => {
                    resp.add_answer(Record::from_rdata(q.name().clone(), TTL, RData::PTR(PTR(t))));
                    resp.metadata.authoritative = true;
                    reply(resp, ResponseCode::NoError)
                }
                Err(_) => reply(resp, ResponseCode::ServFail),
            },
            None if zone.forward => Answer::Forward,
            None => reply(resp, ResponseCode::NXDomain),
        };
    }
    let Some(ips) = zone.lookup(&name) else {
        return if zone.forward { Answer::Forward } else { reply(resp, ResponseCode::NXDomain) };
    };
    resp.metadata.authoritative = true;
    if q.query_type() == RecordType::A || q.query_type() == RecordType::ANY {
        // Rotated by the query ID: successive lookups spread over the
        // addresses (dnsrr) without a random source.
        let start = req.metadata.id as usize % ips.len().max(1);
        for ip in ips.iter().cycle().skip(start).take(ips.len()) {
            resp.add_answer(Record::from_rdata(q.name().clone(), TTL, RData::A(A(*ip))));
        }
    }
    // The name exists; other types (AAAA) have no data.
    reply(resp, ResponseCode::NoError)
}

/// The zones of the tasks this node serves, by task ID.
pub type Zones = Arc<RwLock<HashMap<String, Arc<Zone>>>>;

/// Where names not in a zone go: the node's resolvers (from its
/// `/etc/resolv.conf`, without loopback ones, which would be our own
/// namespace's and not the task's).
#[derive(Clone, Debug, Default)]
pub struct Upstream {
    pub servers: Vec<SocketAddr>,
}

impl Upstream {
    pub fn from_resolv_conf(text: &str) -> Upstream {
        let servers = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("nameserver"))
            .filter_map(|v| v.trim().parse::<std::net::IpAddr>().ok())
            .filter(|ip| !ip.is_loopback())
            .map(|ip| SocketAddr::new(ip, 53))
            .collect();
        Upstream { servers }
    }

    /// Asks each server in turn (2 s each); SERVFAIL when none answers.
    async fn resolve(&self, query: &[u8]) -> Vec<u8> {
        for server in &self.servers {
            let bind: SocketAddr = if server.is_ipv4() { "0.0.0.0:0".parse().unwrap() } else { "[::]:0".parse().unwrap() };
            let Ok(sock) = tokio::net::UdpSocket::bind(bind).await else { continue };
            if sock.send_to(query, server).await.is_err() {
                continue;
            }
            let mut buf = vec![0u8; MAX_MESSAGE];
            if let Ok(Ok((n, from))) = tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf)).await {
                if from == *server {
                    buf.truncate(n);
                    return buf;
                }
            }
        }
        servfail(query)
    }
}

fn servfail(query: &[u8]) -> Vec<u8> {
    let Ok(req) = Message::from_vec(query) else { return Vec::new() };
    let mut resp = Message::response(req.metadata.id, req.metadata.op_code);
    resp.metadata.response_code = ResponseCode::ServFail;
    resp.queries = req.queries;
    resp.to_vec().unwrap_or_default()
}

async fn respond(query: &[u8], zones: &Zones, task: &str, upstream: &Upstream) -> Option<Vec<u8>> {
    let zone = zones.read().unwrap().get(task).cloned().unwrap_or_default();
    match answer(query, &zone) {
        Answer::Reply(b) => Some(b),
        Answer::Forward => Some(upstream.resolve(query).await),
        Answer::Drop => None,
    }
}

/// Serves DNS for task `task` inside its namespace until the returned
/// handle is aborted (or the namespace goes).
pub fn serve(task_ns: &File, task: &str, zones: Zones, upstream: Upstream) -> Result<tokio::task::JoinHandle<()>, String> {
    let at = SocketAddr::from((ADDRESS, 53));
    let (udp, tcp) = crate::netns::run_in(task_ns, || {
        let udp = std::net::UdpSocket::bind(at).map_err(|e| format!("binding {at}/udp in the task: {e}"))?;
        let tcp = std::net::TcpListener::bind(at).map_err(|e| format!("binding {at}/tcp in the task: {e}"))?;
        udp.set_nonblocking(true).map_err(|e| e.to_string())?;
        tcp.set_nonblocking(true).map_err(|e| e.to_string())?;
        Ok((udp, tcp))
    })?;
    let udp = tokio::net::UdpSocket::from_std(udp).map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpListener::from_std(tcp).map_err(|e| e.to_string())?;
    let task = task.to_string();
    Ok(tokio::spawn(async move {
        let udp = Arc::new(udp);
        let mut buf = vec![0u8; MAX_MESSAGE];
        loop {
            tokio::select! {
                r = udp.recv_from(&mut buf) => {
                    let Ok((n, from)) = r else { continue };
                    let query = buf[..n].to_vec();
                    let (udp, zones, task, upstream) = (udp.clone(), zones.clone(), task.clone(), upstream.clone());
                    tokio::spawn(async move {
                        if let Some(resp) = respond(&query, &zones, &task, &upstream).await {
                            let _ = udp.send_to(&resp, from).await;
                        }
                    });
                }
                c = tcp.accept() => {
                    let Ok((mut stream, _)) = c else { continue };
                    let (zones, task, upstream) = (zones.clone(), task.clone(), upstream.clone());
                    tokio::spawn(async move {
                        // Length-prefixed messages until the client closes
                        // or is idle for 10 s.
                        loop {
                            let mut len = [0u8; 2];
                            let read = tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut len)).await;
                            if !matches!(read, Ok(Ok(_))) {
                                return;
                            }
                            let len = u16::from_be_bytes(len) as usize;
                            if len == 0 || len > MAX_MESSAGE {
                                return;
                            }
                            let mut query = vec![0u8; len];
                            if stream.read_exact(&mut query).await.is_err() {
                                return;
                            }
                            let Some(resp) = respond(&query, &zones, &task, &upstream).await else { return };
                            let mut out = (resp.len() as u16).to_be_bytes().to_vec();
                            out.extend_from_slice(&resp);
                            if stream.write_all(&out).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;

    fn query(name: &str, kind: RecordType, id: u16) -> Vec<u8> {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
        m.to_vec().unwrap()
    }

    fn parse(a: Answer) -> Message {
        match a {
            Answer::Reply(b) => Message::from_vec(&b).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    fn addrs(m: &Message) -> Vec<Ipv4Addr> {
        m.answers
            .iter()
            .filter_map(|r| match r.data {
                RData::A(A(ip)) => Some(ip),
                _ => None,
            })
            .collect()
    }

    fn zone() -> Zone {
        let mut z = Zone { forward: true, ..Default::default() };
        z.add("web", Ipv4Addr::new(10, 0, 1, 2));
        for (i, ip) in [3u8, 4].iter().enumerate() {
            let ip = Ipv4Addr::new(10, 0, 1, *ip);
            z.add("tasks.web", ip);
            z.add(&format!("web.{}.abc", i + 1), ip);
            z.add_reverse(ip, &format!("web.{}.abc.appnet", i + 1));
        }
        z
    }

    #[test]
    fn service_names_tasks_and_reverse_names_answer_locally() {
        let z = zone();
        let m = parse(answer(&query("web.", RecordType::A, 7), &z));
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.authoritative);
        assert_eq!(addrs(&m), vec![Ipv4Addr::new(10, 0, 1, 2)]);
        assert_eq!(m.answers[0].ttl, TTL);
        // Case does not matter; every task address, rotated by query ID.
        let a = addrs(&parse(answer(&query("TASKS.Web.", RecordType::A, 0), &z)));
        let b = addrs(&parse(answer(&query("tasks.web.", RecordType::A, 1), &z)));
        assert_eq!(a.len(), 2);
        assert_eq!(a, b.iter().rev().copied().collect::<Vec<_>>());
        // The name exists: AAAA is an empty NOERROR, not NXDOMAIN.
        let m = parse(answer(&query("web.", RecordType::AAAA, 3), &z));
        assert_eq!((m.metadata.response_code, m.answers.len()), (ResponseCode::NoError, 0));
        let m = parse(answer(&query("4.1.0.10.in-addr.arpa.", RecordType::PTR, 9), &z));
        match &m.answers[0].data {
            RData::PTR(PTR(n)) => assert_eq!(n.to_ascii(), "web.2.abc.appnet."),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_names_are_forwarded_unless_the_task_is_internal_only() {
        let mut z = zone();
        assert_eq!(answer(&query("example.org.", RecordType::A, 1), &z), Answer::Forward);
        assert_eq!(answer(&query("9.9.0.10.in-addr.arpa.", RecordType::PTR, 1), &z), Answer::Forward);
        z.forward = false;
        let m = parse(answer(&query("example.org.", RecordType::A, 1), &z));
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(answer(b"not dns", &z), Answer::Drop);
    }

    #[test]
    fn upstreams_come_from_resolv_conf_without_loopback() {
        let u = Upstream::from_resolv_conf("search lab\nnameserver 127.0.0.53\nnameserver 10.9.8.7\n# nameserver 1.1.1.1\n");
        assert_eq!(u.servers, vec!["10.9.8.7:53".parse().unwrap()]);
    }
}
