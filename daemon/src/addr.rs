//! Choosing the addresses a node listens on and advertises, with Docker's
//! rules and error messages.

use std::net::{IpAddr, Ipv4Addr};

use shoal_api::ApiError;

/// IPv4 addresses of the system's interfaces (name, address), loopback excluded.
pub fn interface_addrs() -> Vec<(String, Ipv4Addr)> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else { return Vec::new() };
    addrs
        .filter_map(|ifa| Some((ifa.address?.as_sockaddr_in()?.ip(), ifa.interface_name)))
        .filter(|(ip, _)| !ip.is_loopback())
        .map(|(ip, name)| (name, ip))
        .collect()
}

/// Splits "host[:port]" or an interface name into (ip, port).
pub fn resolve(spec: &str, default_port: u16, flag: &str) -> Result<(IpAddr, u16), ApiError> {
    if let Ok(ip) = spec.parse::<IpAddr>() {
        return Ok((ip, default_port));
    }
    if let Ok(sa) = spec.parse::<std::net::SocketAddr>() {
        return Ok((sa.ip(), sa.port()));
    }
    let (host, port) = match spec.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| ApiError::bad_request(format!("invalid port in {flag}: {spec}")))?),
        None => (spec, default_port),
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok((ip, port));
    }
    let matches: Vec<Ipv4Addr> = interface_addrs().into_iter().filter(|(n, _)| n == host).map(|(_, a)| a).collect();
    match matches.as_slice() {
        [ip] => Ok((IpAddr::V4(*ip), port)),
        [] => Err(ApiError::bad_request(format!("{flag} must be an IP address or network interface (with optional port number)"))),
        _ => Err(ApiError::bad_request(format!("interface {host} has more than one IPv4 address"))),
    }
}

/// The address to advertise when none was given: the listen address if it
/// is specific, else the system's only address (the node's own gateway
/// bridge for task networking does not count: it is node-local).
pub fn choose_advertise(listen_ip: IpAddr) -> Result<IpAddr, ApiError> {
    if !listen_ip.is_unspecified() {
        return Ok(listen_ip);
    }
    let addrs: Vec<(String, Ipv4Addr)> =
        interface_addrs().into_iter().filter(|(name, _)| !shoal_worker::network::is_shoal_interface(name)).collect();
    pick_single(&addrs)
}

fn pick_single(addrs: &[(String, Ipv4Addr)]) -> Result<IpAddr, ApiError> {
    let mut distinct: Vec<&(String, Ipv4Addr)> = Vec::new();
    for a in addrs {
        if !distinct.iter().any(|d| d.1 == a.1) {
            distinct.push(a);
        }
    }
    match distinct.as_slice() {
        [] => Err(ApiError::bad_request("could not find the system's IP address")),
        [(_, ip)] => Ok(IpAddr::V4(*ip)),
        [(n1, a1), (n2, a2), ..] => Err(ApiError::bad_request(format!(
            "could not choose an IP address to advertise since this system has multiple addresses on different interfaces ({a1} on {n1} and {a2} on {n2})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_addresses_skip_loopback_and_resolve_by_name() {
        let addrs = interface_addrs();
        for (name, ip) in &addrs {
            assert!(!name.is_empty() && !ip.is_loopback(), "{name} {ip}");
        }
        // An interface with one IPv4 address resolves to it by name.
        if let Some((name, ip)) = addrs.iter().find(|(n, _)| addrs.iter().filter(|(m, _)| m == n).count() == 1) {
            assert_eq!(resolve(&format!("{name}:4000"), 2377, "x").unwrap(), (IpAddr::V4(*ip), 4000));
        }
    }

    #[test]
    fn resolves_ip_and_port_forms() {
        assert_eq!(resolve("10.1.2.3", 2377, "x").unwrap(), ("10.1.2.3".parse().unwrap(), 2377));
        assert_eq!(resolve("10.1.2.3:4000", 2377, "x").unwrap(), ("10.1.2.3".parse().unwrap(), 4000));
        assert!(resolve("no-such-iface0", 2377, "--advertise-addr").is_err());
    }

    #[test]
    fn several_addresses_need_a_choice() {
        let addrs = vec![("enp0s3".to_string(), Ipv4Addr::new(10, 0, 2, 15)), ("enp0s8".to_string(), Ipv4Addr::new(192, 168, 66, 100))];
        let e = pick_single(&addrs).unwrap_err();
        assert_eq!(e.message, "could not choose an IP address to advertise since this system has multiple addresses on different interfaces (10.0.2.15 on enp0s3 and 192.168.66.100 on enp0s8)");
        assert_eq!(pick_single(&addrs[..1]).unwrap(), "10.0.2.15".parse::<IpAddr>().unwrap());
        assert!(pick_single(&[]).is_err());
    }
}
