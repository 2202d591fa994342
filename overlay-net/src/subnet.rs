//! IPv4 subnets in CIDR form: parsing, containment, overlap, and splitting a
//! pool into smaller subnets (Docker's `default-address-pools` base + size).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network, always stored with its host bits cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet {
    base: u32,
    prefix: u8,
}

impl Subnet {
    /// The subnet holding `addr` with `prefix` bits (host bits dropped).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Subnet, String> {
        if prefix > 32 {
            return Err(format!("invalid prefix length {prefix}: it must be 0 to 32"));
        }
        Ok(Subnet { base: u32::from(addr) & mask(prefix), prefix })
    }

    pub fn addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base)
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// How many addresses the subnet spans (2^(32-prefix)).
    pub fn size(&self) -> u64 {
        1u64 << (32 - self.prefix as u32)
    }

    /// The `i`-th address of the subnet (0 is the network address).
    pub fn nth(&self, i: u64) -> Option<Ipv4Addr> {
        (i < self.size()).then(|| Ipv4Addr::from(self.base.wrapping_add(i as u32)))
    }

    /// The index of `ip` in the subnet, if it is inside.
    pub fn index_of(&self, ip: Ipv4Addr) -> Option<u64> {
        self.contains(ip).then(|| (u32::from(ip) - self.base) as u64)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == self.base
    }

    /// Whether the two subnets share any address (one contains the other).
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let p = self.prefix.min(other.prefix);
        self.base & mask(p) == other.base & mask(p)
    }

    /// The subnets of `prefix` bits this one splits into, in order; an
    /// error when `prefix` is shorter than this subnet's.
    pub fn split(&self, prefix: u8) -> Result<impl Iterator<Item = Subnet>, String> {
        if prefix < self.prefix || prefix > 32 {
            return Err(format!("cannot split {self} into /{prefix} subnets"));
        }
        let step = 1u64 << (32 - prefix as u32);
        let count = self.size() / step;
        let base = self.base as u64;
        Ok((0..count).map(move |i| Subnet { base: (base + i * step) as u32, prefix }))
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix as u32)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = String;
    fn from_str(s: &str) -> Result<Subnet, String> {
        let bad = || format!("invalid CIDR address: {s}");
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Subnet::new(addr, prefix)
    }
}

impl serde::Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Subnet, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let s: Subnet = "172.18.3.7/24".parse().unwrap();
        assert_eq!(s.to_string(), "172.18.3.0/24");
        assert_eq!(s.size(), 256);
        assert!("172.18.0.0".parse::<Subnet>().is_err());
        assert!("172.18.0.0/33".parse::<Subnet>().is_err());
        assert!("x/24".parse::<Subnet>().is_err());
        assert_eq!("0.0.0.0/0".parse::<Subnet>().unwrap().size(), 1 << 32);
    }

    #[test]
    fn overlap_and_contains() {
        let a: Subnet = "172.18.0.0/16".parse().unwrap();
        let b: Subnet = "172.18.5.0/24".parse().unwrap();
        let c: Subnet = "172.19.0.0/24".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c) && !c.overlaps(&b));
        assert!(b.contains("172.18.5.200".parse().unwrap()));
        assert!(!b.contains("172.18.6.1".parse().unwrap()));
        assert_eq!(b.index_of("172.18.5.9".parse().unwrap()), Some(9));
        assert_eq!(b.nth(1), Some("172.18.5.1".parse().unwrap()));
        assert_eq!(b.nth(256), None);
        // A default route overlaps everything.
        assert!("0.0.0.0/0".parse::<Subnet>().unwrap().overlaps(&b));
    }

    #[test]
    fn split_pools() {
        let a: Subnet = "172.18.0.0/16".parse().unwrap();
        let parts: Vec<Subnet> = a.split(24).unwrap().collect();
        assert_eq!(parts.len(), 256);
        assert_eq!(parts[1].to_string(), "172.18.1.0/24");
        assert_eq!(parts[255].to_string(), "172.18.255.0/24");
        assert!(a.split(8).is_err());
    }
}
