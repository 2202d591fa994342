//! IPv4 CIDR arithmetic and the cluster's address pool.
//!
//! A small type of our own (the worker has a similar one for its node-local
//! bridge; the manager does not depend on the worker crate): a subnet is a
//! base address with its host bits cleared and a prefix length.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network, always stored with its host bits cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet {
    base: u32,
    prefix: u8,
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl Subnet {
    /// The subnet of `prefix` bits holding `addr` (host bits dropped).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Subnet> {
        (prefix <= 32).then(|| Subnet { base: u32::from(addr) & mask(prefix), prefix })
    }

    pub fn addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base)
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The first and last address (network and broadcast address).
    pub fn first(&self) -> u32 {
        self.base
    }

    pub fn last(&self) -> u32 {
        self.base | !mask(self.prefix)
    }

    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == self.base
    }

    /// Whether `other` lies wholly inside this subnet.
    pub fn covers(&self, other: &Subnet) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr())
    }

    /// Whether the two share any address (then one contains the other).
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let p = self.prefix.min(other.prefix);
        self.base & mask(p) == other.base & mask(p)
    }

    /// The address with its prefix length, as tasks and VIPs show it:
    /// `10.0.1.5/24`.
    pub fn cidr_of(&self, ip: Ipv4Addr) -> String {
        format!("{ip}/{}", self.prefix)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = String;
    /// `a.b.c.d/n`; host bits are dropped as Go's `net.ParseCIDR` does.
    fn from_str(s: &str) -> Result<Subnet, String> {
        let bad = || format!("invalid CIDR address: {s}");
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        if p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        Subnet::new(addr, prefix).ok_or_else(bad)
    }
}

/// `10.0.1.5/24` (or a bare address): the address part.
pub fn address_of(cidr: &str) -> Option<Ipv4Addr> {
    cidr.split('/').next()?.parse().ok()
}

/// The cluster's default address pool (`swarm init --default-addr-pool`,
/// `--default-addr-pool-mask-length`): networks without `--subnet` get the
/// first subnet of `size` bits, in pool order, that overlaps no network's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressPool {
    pub pools: Vec<Subnet>,
    pub size: u8,
}

pub const DEFAULT_POOL: &str = "10.0.0.0/8";
pub const DEFAULT_POOL_SIZE: u8 = 24;

impl Default for AddressPool {
    fn default() -> Self {
        AddressPool { pools: vec![DEFAULT_POOL.parse().expect("valid")], size: DEFAULT_POOL_SIZE }
    }
}

impl AddressPool {
    /// The pool from the swarm's `DefaultAddrPool` and `SubnetSize`; Docker's
    /// defaults (10.0.0.0/8 in /24s) for what is empty or zero.
    pub fn new(pools: &[String], size: u32) -> Result<AddressPool, String> {
        let mut out = AddressPool::default();
        if !pools.is_empty() {
            out.pools = pools.iter().map(|p| p.parse()).collect::<Result<_, _>>()?;
        }
        if size != 0 {
            out.size = u8::try_from(size).ok().filter(|s| *s <= 32).ok_or_else(|| format!("invalid subnet size {size}"))?;
        }
        if let Some(p) = out.pools.iter().find(|p| p.prefix > out.size) {
            return Err(format!("invalid default address pool {p}: its mask is longer than the subnet size /{}", out.size));
        }
        Ok(out)
    }

    /// The first subnet of the pool that overlaps none of `taken`.
    pub fn next_free(&self, taken: &[Subnet]) -> Option<Subnet> {
        for pool in &self.pools {
            let step = 1u64 << (32 - u32::from(self.size));
            let mut at = u64::from(pool.first());
            let end = u64::from(pool.last());
            while at <= end {
                let candidate = Subnet { base: at as u32, prefix: self.size };
                match taken.iter().filter(|t| t.overlaps(&candidate)).map(|t| u64::from(t.last())).max() {
                    // Skip past the widest overlapping subnet (aligned to
                    // the step), so a /8 taken is skipped in one go.
                    Some(last) => at = (last + 1).div_ceil(step) * step,
                    None => return Some(candidate),
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Subnet {
        x.parse().unwrap()
    }

    #[test]
    fn parse_print_and_relations() {
        assert_eq!(s("10.0.1.7/24").to_string(), "10.0.1.0/24");
        assert!("10.0.0.0".parse::<Subnet>().is_err());
        assert!("10.0.0.0/33".parse::<Subnet>().is_err());
        assert!("10.0.0.0/+8".parse::<Subnet>().is_err());
        assert!("10.0.0.0/".parse::<Subnet>().is_err());
        assert_eq!(s("10.0.1.0/24").last(), u32::from(Ipv4Addr::new(10, 0, 1, 255)));
        assert!(s("10.0.0.0/8").overlaps(&s("10.5.0.0/16")));
        assert!(s("10.0.0.0/8").covers(&s("10.5.0.0/16")));
        assert!(!s("10.5.0.0/16").covers(&s("10.0.0.0/8")));
        assert!(!s("10.0.1.0/24").overlaps(&s("10.0.2.0/24")));
        assert_eq!(s("0.0.0.0/0").size(), 1 << 32);
        assert_eq!(s("10.0.1.0/24").cidr_of(Ipv4Addr::new(10, 0, 1, 5)), "10.0.1.5/24");
        assert_eq!(address_of("10.0.1.5/24"), Some(Ipv4Addr::new(10, 0, 1, 5)));
    }

    #[test]
    fn pool_skips_what_is_taken() {
        let pool = AddressPool::default();
        assert_eq!(pool.next_free(&[]), Some(s("10.0.0.0/24")));
        // The ingress network's 10.0.0.0/24 is skipped: the first overlay
        // gets 10.0.1.0/24, as in Docker.
        assert_eq!(pool.next_free(&[s("10.0.0.0/24")]), Some(s("10.0.1.0/24")));
        assert_eq!(pool.next_free(&[s("10.0.0.0/24"), s("10.0.2.0/24")]), Some(s("10.0.1.0/24")));
        // A wide user subnet is skipped in one step.
        assert_eq!(pool.next_free(&[s("10.0.0.0/12")]), Some(s("10.16.0.0/24")));
        let small = AddressPool::new(&["192.168.0.0/23".into()], 24).unwrap();
        assert_eq!(small.next_free(&[s("192.168.0.0/24"), s("192.168.1.0/24")]), None);
        assert_eq!(AddressPool::new(&["10.10.0.0/16".into(), "10.20.0.0/16".into()], 26).unwrap().pools.len(), 2);
        assert!(AddressPool::new(&["10.10.0.0/16".into()], 8).is_err());
        assert!(AddressPool::new(&["nope".into()], 24).is_err());
    }
}
