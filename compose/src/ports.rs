//! `ports:` in the short form (`"8080:80/udp"`, `"80"`, ranges) and the long
//! form (`target`, `published`, `protocol`, `mode`), all read into one shape.

use std::fmt;

use serde::de::{self, value::MapAccessDeserializer, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    pub target: u32,
    /// `None`: none asked for (the routing mesh picks one).
    pub published: Option<u32>,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// `ingress` or `host`.
    pub mode: String,
    /// Swarm services listen on every address; a host IP is dropped with a
    /// warning, as docker does.
    pub host_ip: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongPort {
    target: u32,
    published: Option<PublishedPort>,
    protocol: Option<Protocol>,
    mode: Option<PublishMode>,
    host_ip: Option<String>,
    #[allow(dead_code)]
    name: Option<String>,
    #[allow(dead_code)]
    app_protocol: Option<String>,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum PublishMode {
    Ingress,
    Host,
}

/// `published` is an integer, or a string holding one.
struct PublishedPort(u32);

impl<'de> Deserialize<'de> for PublishedPort {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_port(&s).map(PublishedPort).map_err(de::Error::custom)
    }
}

/// One item of `ports:`: a short form may stand for several ports (a range).
pub struct PortItem(pub Vec<Port>);

impl<'de> Deserialize<'de> for PortItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PortItem;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a port (\"8080:80/tcp\") or a mapping with target, published, protocol and mode")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortItem, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortItem, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortItem, E> {
                parse_short(v).map(PortItem).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PortItem, A::Error> {
                let long = LongPort::deserialize(MapAccessDeserializer::new(map))?;
                Ok(PortItem(vec![Port {
                    target: long.target,
                    published: long.published.map(|p| p.0),
                    protocol: long.protocol.unwrap_or(Protocol::Tcp).as_str().into(),
                    mode: match long.mode {
                        Some(PublishMode::Host) => "host".into(),
                        _ => "ingress".into(),
                    },
                    host_ip: long.host_ip,
                }]))
            }
        }
        d.deserialize_any(V)
    }
}

/// The whole `ports:` list, ranges expanded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ports(pub Vec<Port>);

impl<'de> Deserialize<'de> for Ports {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ports;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of ports")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ports, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<PortItem>()? {
                    out.extend(item.0);
                }
                Ok(Ports(out))
            }
        }
        d.deserialize_seq(V)
    }
}

fn parse_port(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(p) if p <= 65535 => Ok(p),
        _ => Err(format!("invalid port {s:?}: expected a number from 0 to 65535")),
    }
}

fn parse_range(s: &str) -> Result<(u32, u32), String> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (parse_port(a)?, parse_port(b)?);
            if b < a {
                return Err(format!("invalid port range {s:?}: end is before start"));
            }
            Ok((a, b))
        }
        None => {
            let p = parse_port(s)?;
            Ok((p, p))
        }
    }
}

/// `[[ip:]published[-end]:]target[-end][/protocol]`.
pub fn parse_short(spec: &str) -> Result<Vec<Port>, String> {
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_owned()),
    };
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid port {spec:?}: unknown protocol {protocol:?} (tcp, udp or sctp)"));
    }
    // An IPv6 host address is written in brackets: `[::1]:8080:80`.
    let (host_ip, rest) = match rest.strip_prefix('[') {
        Some(r) => {
            let (ip, after) = r.split_once("]:").ok_or_else(|| format!("invalid port {spec:?}"))?;
            (Some(ip.to_owned()), after)
        }
        None => (None, rest),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (host_ip, published, target) = match (host_ip, parts.as_slice()) {
        (None, [t]) => (None, None, *t),
        (ip, [p, t]) => (ip, Some(*p), *t),
        (None, [ip, p, t]) => (Some(ip.to_string()), Some(*p), *t),
        _ => return Err(format!("invalid port {spec:?}: expected [[ip:]published:]target[/protocol]")),
    };
    let targets = parse_range(target).map_err(|e| format!("{e} in {spec:?}"))?;
    let published = match published {
        Some("") | None => None,
        Some(p) => Some(parse_range(p).map_err(|e| format!("{e} in {spec:?}"))?),
    };
    let count = targets.1 - targets.0 + 1;
    if let Some((a, b)) = published {
        if b - a + 1 != count && count != 1 {
            return Err(format!("invalid port {spec:?}: published and target ranges differ in length"));
        }
    }
    let mut ports = Vec::new();
    for i in 0..count {
        ports.push(Port {
            target: targets.0 + i,
            published: published.map(|(a, b)| if count == 1 && b > a { a } else { a + i }),
            protocol: protocol.clone(),
            mode: "ingress".into(),
            host_ip: host_ip.clone().filter(|ip| !ip.is_empty()),
        });
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(target: u32, published: Option<u32>, protocol: &str) -> Port {
        Port { target, published, protocol: protocol.into(), mode: "ingress".into(), host_ip: None }
    }

    #[test]
    fn short_forms() {
        assert_eq!(parse_short("80").unwrap(), vec![p(80, None, "tcp")]);
        assert_eq!(
            parse_short("8080:80").unwrap(),
            vec![p(8080, Some(8080), "tcp")]
                .into_iter()
                .map(|mut x| {
                    x.target = 80;
                    x
                })
                .collect::<Vec<_>>()
        );
        assert_eq!(parse_short("8080:80/udp").unwrap(), vec![p(80, Some(8080), "udp")]);
        assert_eq!(parse_short("3000-3002").unwrap(), vec![p(3000, None, "tcp"), p(3001, None, "tcp"), p(3002, None, "tcp")]);
        assert_eq!(parse_short("9090-9091:8080-8081").unwrap(), vec![p(8080, Some(9090), "tcp"), p(8081, Some(9091), "tcp")]);
        let with_ip = parse_short("127.0.0.1:5000:5000").unwrap();
        assert_eq!(with_ip[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(with_ip[0].published, Some(5000));
        let v6 = parse_short("[::1]:6000:6000/sctp").unwrap();
        assert_eq!(v6[0].host_ip.as_deref(), Some("::1"));
        assert_eq!(v6[0].protocol, "sctp");
    }

    #[test]
    fn bad_short_forms() {
        for bad in ["http", "80/icmp", "1:2:3:4", "70000", "9-8", "1-3:1-2"] {
            assert!(parse_short(bad).is_err(), "{bad}");
        }
    }
}
