//! Addresses within one network: what its IPAM configuration reserves
//! (network and broadcast address, gateway, `--aux-address`es), which part
//! tasks and VIPs are given from (`--ip-range`, else the whole subnet), and
//! the lowest free address given the addresses already owned.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use shoal_api::network::IpamConfig;

use super::subnets::Subnet;

/// A network's addressing, parsed from its (requested or allocated) IPAM
/// configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addressing {
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    /// Where task addresses and VIPs come from.
    pub range: Subnet,
    /// Never given out: network and broadcast address, gateway, aux addresses.
    pub reserved: BTreeSet<u32>,
}

impl Addressing {
    /// Checks a configuration (SwarmKit's words) and fills in the default
    /// gateway, the subnet's first host address. `subnet` is the one given
    /// or the one the pool chose.
    pub fn plan(requested: Option<&IpamConfig>, subnet: Subnet) -> Result<Addressing, String> {
        let empty = IpamConfig::default();
        let c = requested.unwrap_or(&empty);
        let range = if c.range.is_empty() {
            subnet
        } else {
            let r: Subnet = c.range.parse().map_err(|_| format!("ipam configuration: invalid range {}", c.range))?;
            if !subnet.covers(&r) {
                return Err(format!("ipam configuration: subnet {subnet} does not contain range {}", c.range));
            }
            r
        };
        let gateway = if c.gateway.is_empty() {
            Ipv4Addr::from(subnet.first() + u32::from(subnet.prefix() < 32))
        } else {
            let g: Ipv4Addr = c.gateway.parse().map_err(|_| format!("ipam configuration: invalid gateway {}", c.gateway))?;
            if !subnet.contains(g) {
                return Err(format!("ipam configuration: subnet {subnet} does not contain gateway {}", c.gateway));
            }
            g
        };
        let mut reserved = BTreeSet::from([u32::from(gateway)]);
        if subnet.prefix() <= 30 {
            reserved.insert(subnet.first());
            reserved.insert(subnet.last());
        }
        for (name, a) in &c.auxiliary_addresses {
            let ip: Ipv4Addr = a.parse().map_err(|_| format!("ipam configuration: invalid auxiliary address {name}={a}"))?;
            if !subnet.contains(ip) {
                return Err(format!("ipam configuration: subnet {subnet} does not contain auxiliary address {name}={a}"));
            }
            reserved.insert(u32::from(ip));
        }
        Ok(Addressing { subnet, gateway, range, reserved })
    }

    /// The addressing an allocated network recorded.
    pub fn of_allocated(c: &IpamConfig) -> Result<Addressing, String> {
        let subnet: Subnet = c.subnet.parse().map_err(|_| format!("ipam configuration: invalid subnet {}", c.subnet))?;
        Addressing::plan(Some(c), subnet)
    }

    /// The allocated configuration to record in the network object.
    pub fn to_config(&self, requested: Option<&IpamConfig>) -> IpamConfig {
        IpamConfig {
            subnet: self.subnet.to_string(),
            range: requested.map(|c| c.range.clone()).unwrap_or_default(),
            gateway: self.gateway.to_string(),
            auxiliary_addresses: requested.map(|c| c.auxiliary_addresses.clone()).unwrap_or_default(),
        }
    }

    /// Whether `ip` may be given to a task or a VIP at all.
    pub fn assignable(&self, ip: Ipv4Addr) -> bool {
        self.range.contains(ip) && self.subnet.contains(ip) && !self.reserved.contains(&u32::from(ip))
    }

    /// The lowest assignable address at or after `from` not in `used`.
    pub fn next_free<V>(&self, used: &BTreeMap<u32, V>, from: u32) -> Option<Ipv4Addr> {
        let start = from.max(self.range.first());
        (start..=self.range.last()).find(|a| !self.reserved.contains(a) && !used.contains_key(a)).map(Ipv4Addr::from)
    }
}

/// The MAC address Docker derives from an IPv4 address: `02:42` followed by
/// the four bytes of the address.
pub fn mac_address(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(subnet: &str, range: &str, gateway: &str, aux: &[(&str, &str)]) -> IpamConfig {
        IpamConfig {
            subnet: subnet.into(),
            range: range.into(),
            gateway: gateway.into(),
            auxiliary_addresses: aux.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn defaults_and_reservations() {
        let a = Addressing::of_allocated(&cfg("10.0.1.0/24", "", "", &[])).unwrap();
        assert_eq!(a.gateway, Ipv4Addr::new(10, 0, 1, 1));
        let used: BTreeMap<u32, ()> = BTreeMap::new();
        assert_eq!(a.next_free(&used, 0), Some(Ipv4Addr::new(10, 0, 1, 2)));
        assert!(!a.assignable(Ipv4Addr::new(10, 0, 1, 255)));
        assert!(!a.assignable(Ipv4Addr::new(10, 0, 1, 0)));
        let mut used = BTreeMap::new();
        for i in 2..=254u8 {
            used.insert(u32::from(Ipv4Addr::new(10, 0, 1, i)), ());
        }
        assert_eq!(a.next_free(&used, 0), None, "a /24 holds 253 addresses besides the gateway");
    }

    #[test]
    fn range_gateway_and_aux() {
        let a = Addressing::of_allocated(&cfg("10.9.0.0/24", "10.9.0.128/30", "10.9.0.254", &[("r", "10.9.0.129")])).unwrap();
        let used: BTreeMap<u32, ()> = BTreeMap::new();
        // 10.9.0.128 is inside the range and is not the subnet's network address.
        assert_eq!(a.next_free(&used, 0), Some(Ipv4Addr::new(10, 9, 0, 128)));
        let used = BTreeMap::from([(u32::from(Ipv4Addr::new(10, 9, 0, 128)), ())]);
        assert_eq!(a.next_free(&used, 0), Some(Ipv4Addr::new(10, 9, 0, 130)), "the aux address is skipped");
        assert!(!a.assignable(Ipv4Addr::new(10, 9, 0, 254)));
        assert!(!a.assignable(Ipv4Addr::new(10, 9, 0, 5)), "outside the range");
        let s: Subnet = "10.9.0.0/24".parse().unwrap();
        let plan = |c: IpamConfig| Addressing::plan(Some(&c), s).unwrap_err();
        assert_eq!(plan(cfg("", "10.8.0.0/25", "", &[])), "ipam configuration: subnet 10.9.0.0/24 does not contain range 10.8.0.0/25");
        assert_eq!(plan(cfg("", "nope", "", &[])), "ipam configuration: invalid range nope");
        assert_eq!(plan(cfg("", "", "10.8.0.1", &[])), "ipam configuration: subnet 10.9.0.0/24 does not contain gateway 10.8.0.1");
        assert_eq!(plan(cfg("", "", "x", &[])), "ipam configuration: invalid gateway x");
        assert!(plan(cfg("", "", "", &[("r", "10.8.0.3")])).contains("does not contain auxiliary address r=10.8.0.3"));
    }

    #[test]
    fn mac_is_dockers() {
        assert_eq!(mac_address(Ipv4Addr::new(10, 0, 1, 5)), "02:42:0a:00:01:05");
    }
}
