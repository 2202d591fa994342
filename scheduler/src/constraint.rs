//! Placement constraint expressions (`--constraint node.labels.zone==a`).
//!
//! Syntax and matching follow SwarmKit's `manager/constraint`: an expression
//! is `key == value` or `key != value`; keys are case-insensitive except for
//! the label name after `node.labels.` / `engine.labels.`; values compare
//! case-insensitively and whole. `node.ip` takes an address or a CIDR
//! network. A key the scheduler does not know parses but matches no node,
//! and so does a `node.ip` value that is neither address nor network: that
//! is how Swarm behaves, and a service spec valid in Docker stays valid here.

use std::net::{IpAddr, SocketAddr};

use crate::nodeinfo::NodeInfo;

/// Label prefixes a constraint key or spread descriptor may use.
pub const NODE_LABEL_PREFIX: &str = "node.labels.";
pub const ENGINE_LABEL_PREFIX: &str = "engine.labels.";

/// The two operators, in the order SwarmKit tries them (so `a!==b` splits
/// on `==` and fails on its key, as in Docker).
const OPERATORS: [(&str, Op); 2] = [("==", Op::Eq), ("!=", Op::NotEq)];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    NotEq,
}

/// What a constraint looks at on a node, resolved once at parse time so
/// matching does no string comparison of keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    NodeId,
    Hostname,
    Ip,
    Role,
    PlatformOs,
    PlatformArch,
    /// Case-sensitive label name.
    NodeLabel(String),
    EngineLabel(String),
    /// Parses, matches nothing.
    Unknown,
}

/// One parsed `key op value` expression.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Constraint {
    /// The key as written (trimmed).
    pub raw_key: String,
    pub key: Key,
    pub op: Op,
    /// The value as written (trimmed).
    pub value: String,
    /// For `node.ip`: the address or network the value names, if any.
    ip: Option<IpSpec>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum IpSpec {
    Addr(IpAddr),
    Net(IpAddr, u8),
}

/// Parses constraint expressions; the error is SwarmKit's wording, which
/// Docker shows the user as is.
pub fn parse_constraints(exprs: &[String]) -> Result<Vec<Constraint>, String> {
    exprs.iter().map(|e| parse_one(e)).collect()
}

fn parse_one(e: &str) -> Result<Constraint, String> {
    for (text, op) in OPERATORS {
        let Some(at) = e.find(text) else { continue };
        let key = e[..at].trim();
        if !valid_key(key) {
            return Err(format!("key '{key}' is invalid"));
        }
        let value = e[at + text.len()..].trim();
        if !valid_value(value) {
            return Err(format!("value '{value}' is invalid"));
        }
        let key_kind = classify(key);
        let ip = if key_kind == Key::Ip { parse_ip_spec(value) } else { None };
        return Ok(Constraint { raw_key: key.to_string(), key: key_kind, op, value: value.to_string(), ip });
    }
    Err("constraint expected one operator from ==, !=".to_string())
}

/// SwarmKit: `^(?i)[a-z_][a-z0-9\-_.]+$` (so at least two characters).
fn valid_key(k: &str) -> bool {
    let b = k.as_bytes();
    b.len() >= 2
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b[1..].iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// SwarmKit: `^(?i)[a-z0-9:\-_\s\.\*\(\)\?\+\[\]\\\^\$\|\/]+$`: no operator
/// characters (`<`, `>`, `~`, `=`, `!`) so future operators stay free.
fn valid_value(v: &str) -> bool {
    !v.is_empty()
        && v.bytes().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    b':' | b'-'
                        | b'_'
                        | b' '
                        | b'\t'
                        | b'\n'
                        | b'\x0c'
                        | b'\r'
                        | b'.'
                        | b'*'
                        | b'('
                        | b')'
                        | b'?'
                        | b'+'
                        | b'['
                        | b']'
                        | b'\\'
                        | b'^'
                        | b'$'
                        | b'|'
                        | b'/'
                )
        })
}

fn classify(key: &str) -> Key {
    let is = |k: &str| key.eq_ignore_ascii_case(k);
    if is("node.id") {
        Key::NodeId
    } else if is("node.hostname") {
        Key::Hostname
    } else if is("node.ip") {
        Key::Ip
    } else if is("node.role") {
        Key::Role
    } else if is("node.platform.os") {
        Key::PlatformOs
    } else if is("node.platform.arch") {
        Key::PlatformArch
    } else if let Some(l) = strip_prefix_ci(key, NODE_LABEL_PREFIX) {
        Key::NodeLabel(l.to_string())
    } else if let Some(l) = strip_prefix_ci(key, ENGINE_LABEL_PREFIX) {
        Key::EngineLabel(l.to_string())
    } else {
        Key::Unknown
    }
}

/// `prefix` matched case-insensitively, followed by at least one character.
pub(crate) fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() > prefix.len() && s.is_char_boundary(prefix.len()) && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

fn parse_ip_spec(v: &str) -> Option<IpSpec> {
    if let Ok(ip) = v.parse::<IpAddr>() {
        return Some(IpSpec::Addr(ip.to_canonical()));
    }
    let (addr, bits) = v.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    if bits.is_empty() || !bits.bytes().all(|c| c.is_ascii_digit()) || bits.len() > 3 {
        return None;
    }
    let bits: u8 = bits.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some(IpSpec::Net(addr, bits))
}

/// The node's address: Docker stores a bare IP; an `ip:port` is tolerated.
fn node_ip(addr: &str) -> Option<IpAddr> {
    addr.parse::<IpAddr>().ok().or_else(|| addr.parse::<SocketAddr>().ok().map(|s| s.ip())).map(|ip| ip.to_canonical())
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    // Compare in the network's family; an IPv4 node is seen as IPv4-mapped
    // inside an IPv6 network, as Go's net.IPNet does.
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => prefix_eq(&a.octets(), &n.octets(), bits),
        (IpAddr::V4(a), IpAddr::V6(n)) => prefix_eq(&a.to_ipv6_mapped().octets(), &n.octets(), bits),
        (IpAddr::V6(a), IpAddr::V6(n)) => prefix_eq(&a.octets(), &n.octets(), bits),
        (IpAddr::V6(_), IpAddr::V4(_)) => false,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = (bits / 8) as usize;
    if a[..full] != b[..full] {
        return false;
    }
    let rest = bits % 8;
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[full] & mask == b[full] & mask
    }
}

impl Constraint {
    /// Whole-string, case-insensitive comparison, then the operator.
    fn test(&self, what: &str) -> bool {
        let same = self.value.eq_ignore_ascii_case(what);
        match self.op {
            Op::Eq => same,
            Op::NotEq => !same,
        }
    }

    /// Does this node satisfy the expression? A missing attribute or label
    /// reads as the empty string (so `!=` matches it, `==` does not).
    pub fn matches(&self, n: &NodeInfo) -> bool {
        match &self.key {
            Key::NodeId => self.test(&n.id),
            Key::Hostname => self.test(&n.hostname),
            Key::Role => self.test(n.role.as_str()),
            Key::PlatformOs => self.test(&n.platform.os),
            Key::PlatformArch => self.test(&n.platform.architecture),
            Key::NodeLabel(l) => self.test(n.labels.get(l).map_or("", |s| s)),
            Key::EngineLabel(l) => self.test(n.engine_labels.get(l).map_or("", |s| s)),
            Key::Ip => {
                let inside = match (self.ip, node_ip(&n.addr)) {
                    // A malformed address or network never matches.
                    (None, _) => return false,
                    (Some(IpSpec::Addr(want)), ip) => ip == Some(want),
                    (Some(IpSpec::Net(net, bits)), Some(ip)) => in_net(ip, net, bits),
                    (Some(IpSpec::Net(..)), None) => false,
                };
                inside == (self.op == Op::Eq)
            }
            Key::Unknown => false,
        }
    }
}

/// All constraints hold on the node.
pub fn node_matches(constraints: &[Constraint], n: &NodeInfo) -> bool {
    constraints.iter().all(|c| c.matches(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_api::Role;

    fn p(e: &str) -> Result<Constraint, String> {
        parse_constraints(&[e.to_string()]).map(|mut v| v.remove(0))
    }

    fn node() -> NodeInfo {
        let mut n = NodeInfo::new("n1abc");
        n.hostname = "web-1".into();
        n.addr = "192.168.77.12".into();
        n.role = Role::Worker;
        n.platform.os = "linux".into();
        n.platform.architecture = "x86_64".into();
        n.labels.insert("zone".into(), "East".into());
        n.engine_labels.insert("disk".into(), "ssd".into());
        n
    }

    #[test]
    fn valid_forms_parse() {
        let c = p(" node.labels.zone == east ").unwrap();
        assert_eq!((c.key, c.op, c.value.as_str()), (Key::NodeLabel("zone".into()), Op::Eq, "east"));
        let c = p("NODE.ROLE!=manager").unwrap();
        assert_eq!((c.key, c.op), (Key::Role, Op::NotEq));
        assert_eq!(p("engine.labels.disk==ssd").unwrap().key, Key::EngineLabel("disk".into()));
        // Label names keep their case.
        assert_eq!(p("node.labels.Zone==a").unwrap().key, Key::NodeLabel("Zone".into()));
        assert_eq!(p("_node==_node1").unwrap().key, Key::Unknown);
        assert_eq!(p("node==[a-b]+c*(n|b)/").unwrap().value, "[a-b]+c*(n|b)/");
        assert_eq!(p("node==node 1").unwrap().value, "node 1");
        assert_eq!(p("node.ip==10.0.0.0/8").unwrap().key, Key::Ip);
    }

    #[test]
    fn bad_syntax_has_swarmkits_words() {
        let ops = "constraint expected one operator from ==, !=";
        assert_eq!(p("nodeabc").unwrap_err(), ops);
        assert_eq!(p("node ~ abc").unwrap_err(), ops);
        assert_eq!(p("").unwrap_err(), ops);
        assert_eq!(p("1node==a2").unwrap_err(), "key '1node' is invalid");
        assert_eq!(p("no de== node1").unwrap_err(), "key 'no de' is invalid");
        assert_eq!(p("no*de==node1").unwrap_err(), "key 'no*de' is invalid");
        assert_eq!(p("==node1").unwrap_err(), "key '' is invalid");
        assert_eq!(p("n==x").unwrap_err(), "key 'n' is invalid");
        assert_eq!(p("node==").unwrap_err(), "value '' is invalid");
        assert_eq!(p("node== ").unwrap_err(), "value '' is invalid");
        assert_eq!(p("node==a<b").unwrap_err(), "value 'a<b' is invalid");
        // `==` is tried first, so `!==` leaves a `!` on the key.
        assert_eq!(p("node!==a").unwrap_err(), "key 'node!' is invalid");
        // The first bad expression of a list is reported.
        let err = parse_constraints(&["node.role==worker".into(), "zone".into()]).unwrap_err();
        assert_eq!(err, ops);
    }

    #[test]
    fn matching_each_key() {
        let n = node();
        let m = |e: &str| p(e).unwrap().matches(&n);
        assert!(m("node.id==N1ABC"));
        assert!(!m("node.id!=n1abc"));
        assert!(m("node.hostname==web-1"));
        assert!(m("node.hostname!=web-2"));
        assert!(m("node.role==worker"));
        assert!(!m("node.role==manager"));
        assert!(m("node.platform.os==linux"));
        assert!(m("node.platform.arch==x86_64"));
        // Label values compare case-insensitively; names do not.
        assert!(m("node.labels.zone==east"));
        assert!(!m("node.labels.Zone==east"));
        assert!(m("node.labels.Zone!=east"));
        // A missing label is the empty string.
        assert!(!m("node.labels.rack==r1"));
        assert!(m("node.labels.rack!=r1"));
        assert!(m("engine.labels.disk==SSD"));
        assert!(!m("engine.labels.disk!=ssd"));
        // Unknown keys match no node, whatever the operator.
        assert!(!m("node.name==web-1"));
        assert!(!m("node.name!=web-1"));
    }

    #[test]
    fn node_ip_takes_addresses_and_cidrs() {
        let n = node();
        let m = |e: &str| p(e).unwrap().matches(&n);
        assert!(m("node.ip==192.168.77.12"));
        assert!(!m("node.ip!=192.168.77.12"));
        assert!(!m("node.ip==192.168.77.13"));
        assert!(m("node.ip==192.168.77.0/24"));
        assert!(m("node.ip==192.168.0.0/16"));
        assert!(!m("node.ip!=192.168.77.0/24"));
        assert!(m("node.ip!=10.0.0.0/8"));
        assert!(m("node.ip==192.168.77.8/29"));
        assert!(!m("node.ip==192.168.77.0/29"));
        assert!(m("node.ip==0.0.0.0/0"));
        assert!(m("node.ip==::ffff:192.168.77.12"));
        // Malformed: no node matches, with either operator.
        assert!(!m("node.ip==192.168.77"));
        assert!(!m("node.ip!=192.168.77"));
        assert!(!m("node.ip==10.0.0.0/33"));
        let mut v6 = node();
        v6.addr = "2001:db8::2".into();
        assert!(p("node.ip==2001:db8::2").unwrap().matches(&v6));
        assert!(p("node.ip==2001:db8::/32").unwrap().matches(&v6));
        assert!(!p("node.ip==10.0.0.0/8").unwrap().matches(&v6));
        assert!(p("node.ip!=10.0.0.0/8").unwrap().matches(&v6));
        // An address with a port is read as its IP.
        let mut with_port = node();
        with_port.addr = "10.1.2.3:2377".into();
        assert!(p("node.ip==10.1.2.3").unwrap().matches(&with_port));
    }

    #[test]
    fn all_constraints_must_hold() {
        let n = node();
        let cs = parse_constraints(&["node.role==worker".into(), "node.labels.zone==east".into()]).unwrap();
        assert!(node_matches(&cs, &n));
        let cs = parse_constraints(&["node.role==worker".into(), "node.labels.zone==west".into()]).unwrap();
        assert!(!node_matches(&cs, &n));
        assert!(node_matches(&[], &n));
    }
}
