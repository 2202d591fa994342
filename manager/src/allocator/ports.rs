//! Published ports. Ingress-mode ports are cluster-wide: each (protocol,
//! port) has at most one service, explicit ones as asked, the others from
//! 30000-32767 (TCP, UDP and SCTP are separate spaces). Host-mode ports are
//! the node's business (the scheduler keeps two tasks that publish the same
//! one apart): they are copied into the endpoint, never allocated here.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;

use shoal_api::service::{Endpoint, EndpointSpec, PortConfig, PortProtocol, PublishMode, ResolutionMode, Service};

pub const DYNAMIC_PORTS: RangeInclusive<u32> = 30000..=32767;

/// One cluster-wide published port.
pub type PortKey = (PortProtocol, u32);

pub fn key(p: &PortConfig) -> PortKey {
    (p.protocol, p.published_port)
}

/// SwarmKit's checks of an endpoint spec on its own.
pub fn validate_spec(spec: &EndpointSpec) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for p in &spec.ports {
        if spec.mode == Some(ResolutionMode::Dnsrr) && p.publish_mode == PublishMode::Ingress {
            return Err("EndpointSpec: port published with ingress mode can't be used with dnsrr mode".into());
        }
        if p.target_port == 0 || p.target_port > 65535 {
            return Err(format!("EndpointSpec: invalid target port {}", p.target_port));
        }
        if p.published_port > 65535 {
            return Err(format!("EndpointSpec: invalid published port {}", p.published_port));
        }
        if p.published_port != 0 && !seen.insert(key(p)) {
            return Err("EndpointSpec: duplicate published ports provided".into());
        }
    }
    Ok(())
}

/// SwarmKit's `checkPortConflicts`: the spec's published ports against the
/// specs and allocations of the other services, with Docker's messages.
pub fn check_conflicts<'a>(spec: &EndpointSpec, others: impl Iterator<Item = &'a Service>) -> Result<(), String> {
    let mine = |mode: PublishMode| -> BTreeSet<PortKey> {
        spec.ports.iter().filter(|p| p.published_port != 0 && p.publish_mode == mode).map(key).collect()
    };
    let (ingress, host) = (mine(PublishMode::Ingress), mine(PublishMode::Host));
    if ingress.is_empty() && host.is_empty() {
        return Ok(());
    }
    for s in others {
        let theirs = s.spec.endpoint_spec.iter().flat_map(|e| e.ports.iter()).chain(s.endpoint.ports.iter());
        for p in theirs.filter(|p| p.published_port != 0) {
            let k = key(p);
            let conflict = match p.publish_mode {
                PublishMode::Host if ingress.contains(&k) => "a host-published port",
                PublishMode::Ingress if ingress.contains(&k) || host.contains(&k) => "an ingress port",
                _ => continue,
            };
            return Err(format!("port '{}' is already in use by service '{}' ({}) as {conflict}", p.published_port, s.spec.name, s.id));
        }
    }
    Ok(())
}

/// What the rest of the cluster holds while one service's ports are chosen.
pub struct PortBook<'a> {
    /// Allocated ingress ports and their service.
    pub owners: &'a BTreeMap<PortKey, String>,
    /// Ports other services ask for explicitly (dynamic ports avoid them, so
    /// a service waiting for its own allocation never finds its port taken).
    pub wanted: &'a BTreeMap<PortKey, String>,
    pub dynamic: RangeInclusive<u32>,
}

impl PortBook<'_> {
    /// The endpoint's ports for `spec`, index-aligned with `spec.ports`:
    /// explicit ones checked, dynamic ones kept from `previous` when the
    /// same port configuration had one, else the lowest free.
    pub fn allocate(
        &self,
        me: &str,
        spec: &EndpointSpec,
        previous: &Endpoint,
        name_of: &dyn Fn(&str) -> String,
    ) -> Result<Vec<PortConfig>, String> {
        let free_for_me = |k: &PortKey, claimed: &BTreeSet<PortKey>| {
            self.owners.get(k).is_none_or(|o| o == me) && !claimed.contains(k) && self.wanted.get(k).is_none_or(|o| o == me)
        };
        let mut claimed: BTreeSet<PortKey> = BTreeSet::new();
        let mut out: Vec<Option<PortConfig>> = vec![None; spec.ports.len()];
        // Host-mode and explicit ingress ports first.
        for (i, p) in spec.ports.iter().enumerate() {
            if p.publish_mode == PublishMode::Host {
                out[i] = Some(p.clone());
            } else if p.published_port != 0 {
                let k = key(p);
                if let Some(other) = self.owners.get(&k).filter(|o| *o != me) {
                    return Err(format!(
                        "port '{}' is already in use by service '{}' ({other}) as an ingress port",
                        p.published_port,
                        name_of(other)
                    ));
                }
                claimed.insert(k);
                out[i] = Some(p.clone());
            }
        }
        // Dynamic ingress ports: keep what the same configuration had.
        let mut reusable: Vec<(usize, &PortConfig)> = previous.spec.ports.iter().enumerate().collect();
        for (i, p) in spec.ports.iter().enumerate() {
            if out[i].is_some() {
                continue;
            }
            let kept = reusable
                .iter()
                .position(|(j, old)| {
                    *old == p && previous.ports.get(*j).is_some_and(|a| a.published_port != 0 && free_for_me(&key(a), &claimed))
                })
                .map(|at| reusable.remove(at).0);
            let port = match kept {
                Some(j) => previous.ports[j].published_port,
                None => self.dynamic.clone().find(|n| free_for_me(&(p.protocol, *n), &claimed)).ok_or_else(|| {
                    format!(
                        "could not allocate a published port for target port {}/{}: the range {}-{} is used up",
                        p.target_port,
                        proto_name(p.protocol),
                        self.dynamic.start(),
                        self.dynamic.end()
                    )
                })?,
            };
            claimed.insert((p.protocol, port));
            out[i] = Some(PortConfig { published_port: port, ..p.clone() });
        }
        Ok(out.into_iter().map(|p| p.expect("every port handled")).collect())
    }
}

pub fn proto_name(p: PortProtocol) -> &'static str {
    match p {
        PortProtocol::Tcp => "tcp",
        PortProtocol::Udp => "udp",
        PortProtocol::Sctp => "sctp",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(target: u32, published: u32, proto: PortProtocol, mode: PublishMode) -> PortConfig {
        PortConfig { name: String::new(), protocol: proto, target_port: target, published_port: published, publish_mode: mode }
    }
    fn ingress(target: u32, published: u32) -> PortConfig {
        port(target, published, PortProtocol::Tcp, PublishMode::Ingress)
    }

    #[test]
    fn explicit_dynamic_and_host() {
        let owners = BTreeMap::from([((PortProtocol::Tcp, 30000), "other".to_string())]);
        let wanted = BTreeMap::from([((PortProtocol::Tcp, 30001), "third".to_string())]);
        let book = PortBook { owners: &owners, wanted: &wanted, dynamic: DYNAMIC_PORTS };
        let spec = EndpointSpec {
            mode: None,
            ports: vec![
                ingress(80, 0),
                ingress(81, 8080),
                port(53, 0, PortProtocol::Udp, PublishMode::Ingress),
                port(9000, 9000, PortProtocol::Tcp, PublishMode::Host),
            ],
        };
        let got = book.allocate("me", &spec, &Endpoint::default(), &|_| "x".into()).unwrap();
        let published: Vec<u32> = got.iter().map(|p| p.published_port).collect();
        // 30000/tcp is taken, 30001/tcp wanted by another service; UDP is a separate space.
        assert_eq!(published, vec![30002, 8080, 30000, 9000]);
        // Allocating again from that endpoint keeps every port.
        let owners2: BTreeMap<PortKey, String> = got
            .iter()
            .filter(|p| p.publish_mode == PublishMode::Ingress)
            .map(|p| (key(p), "me".to_string()))
            .chain(owners.clone())
            .collect();
        let prev = Endpoint { spec: spec.clone(), ports: got.clone(), virtual_ips: vec![] };
        let book2 = PortBook { owners: &owners2, wanted: &wanted, dynamic: DYNAMIC_PORTS };
        assert_eq!(book2.allocate("me", &spec, &prev, &|_| "x".into()).unwrap(), got);
        // A port in use by another service is refused with Docker's message.
        let err =
            book.allocate("me", &EndpointSpec { mode: None, ports: vec![ingress(80, 30000)] }, &Endpoint::default(), &|_| "web".into());
        assert_eq!(err.unwrap_err(), "port '30000' is already in use by service 'web' (other) as an ingress port");
    }

    #[test]
    fn dynamic_range_used_up_is_an_error() {
        let owners = BTreeMap::new();
        let wanted = BTreeMap::new();
        let book = PortBook { owners: &owners, wanted: &wanted, dynamic: 30000..=30001 };
        let spec = EndpointSpec { mode: None, ports: vec![ingress(1, 0), ingress(2, 0), ingress(3, 0)] };
        let err = book.allocate("me", &spec, &Endpoint::default(), &|_| String::new()).unwrap_err();
        assert_eq!(err, "could not allocate a published port for target port 3/tcp: the range 30000-30001 is used up");
    }

    #[test]
    fn spec_checks_and_conflicts_use_swarmkits_words() {
        let dnsrr = EndpointSpec { mode: Some(ResolutionMode::Dnsrr), ports: vec![ingress(80, 8080)] };
        assert_eq!(validate_spec(&dnsrr).unwrap_err(), "EndpointSpec: port published with ingress mode can't be used with dnsrr mode");
        let host_dnsrr =
            EndpointSpec { mode: Some(ResolutionMode::Dnsrr), ports: vec![port(80, 8080, PortProtocol::Tcp, PublishMode::Host)] };
        assert!(validate_spec(&host_dnsrr).is_ok());
        let dup = EndpointSpec { mode: None, ports: vec![ingress(80, 8080), ingress(81, 8080)] };
        assert_eq!(validate_spec(&dup).unwrap_err(), "EndpointSpec: duplicate published ports provided");
        let tcp_udp = EndpointSpec { mode: None, ports: vec![ingress(80, 8080), port(80, 8080, PortProtocol::Udp, PublishMode::Ingress)] };
        assert!(validate_spec(&tcp_udp).is_ok());

        let mut web = Service { id: "abc".into(), ..Default::default() };
        web.spec.name = "web".into();
        web.spec.endpoint_spec = Some(EndpointSpec { mode: None, ports: vec![ingress(80, 8080)] });
        let mut hosty = Service { id: "def".into(), ..Default::default() };
        hosty.spec.name = "hosty".into();
        hosty.spec.endpoint_spec = Some(EndpointSpec { mode: None, ports: vec![port(80, 9090, PortProtocol::Tcp, PublishMode::Host)] });
        let all = [web, hosty];
        let want = |p: PortConfig| check_conflicts(&EndpointSpec { mode: None, ports: vec![p] }, all.iter());
        assert_eq!(want(ingress(1, 8080)).unwrap_err(), "port '8080' is already in use by service 'web' (abc) as an ingress port");
        // SwarmKit names the other service's use of the port.
        assert_eq!(want(ingress(1, 9090)).unwrap_err(), "port '9090' is already in use by service 'hosty' (def) as a host-published port");
        assert_eq!(
            want(port(1, 8080, PortProtocol::Tcp, PublishMode::Host)).unwrap_err(),
            "port '8080' is already in use by service 'web' (abc) as an ingress port"
        );
        assert!(want(port(1, 9090, PortProtocol::Tcp, PublishMode::Host)).is_ok(), "host ports may repeat");
        assert!(want(port(1, 8080, PortProtocol::Udp, PublishMode::Ingress)).is_ok());
    }
}
