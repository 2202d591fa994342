//! Choosing the addresses a node listens on and advertises, with Docker's
//! rules and error messages.

use std::net::{IpAddr, Ipv4Addr};

use shoal_api::ApiError;

/// IPv4 addresses of the system's interfaces (name, address), loopback excluded.
pub fn interface_addrs() -> Vec<(String, Ipv4Addr)> {
    let mut out = Vec::new();
    // SAFETY: getifaddrs fills a linked list we only read and then free.
    unsafe {
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut head) != 0 {
            return out;
        }
        let mut cur = head;
        while !cur.is_null() {
            let ifa = &*cur;
            if !ifa.ifa_addr.is_null() && (*ifa.ifa_addr).sa_family as i32 == libc::AF_INET {
                let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                let name = std::ffi::CStr::from_ptr(ifa.ifa_name).to_string_lossy().into_owned();
                if !ip.is_loopback() {
                    out.push((name, ip));
                }
            }
            cur = ifa.ifa_next;
        }
        libc::freeifaddrs(head);
    }
    out
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
