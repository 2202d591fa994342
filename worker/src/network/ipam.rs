//! Node-local IPAM for the gateway bridge: picks the bridge's subnet out of
//! the address pools (skipping anything the host already routes), and hands
//! out one address per task. The state is a small JSON file written
//! atomically on every change, so a restarted daemon neither gives an
//! address twice nor forgets which tasks held one.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::subnet::Subnet;

/// Docker's `default-address-pools` entry: split `base` into `/size` subnets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressPool {
    pub base: Subnet,
    pub size: u8,
}

impl AddressPool {
    /// Docker's docker_gwbridge range, 172.18.0.0/16, in /24s (a /24 per
    /// node is plenty for one node's tasks and leaves room for several
    /// daemons sharing a host).
    pub fn defaults() -> Vec<AddressPool> {
        vec![AddressPool { base: "172.18.0.0/16".parse().expect("valid"), size: 24 }]
    }
}

/// The first subnet of the pools that overlaps none of `in_use` (the
/// host's addresses and routes, other bridges included).
pub fn choose_subnet(pools: &[AddressPool], in_use: &[Subnet]) -> Result<Subnet, String> {
    for pool in pools {
        for candidate in pool.base.split(pool.size)? {
            // A default route (0.0.0.0/0) overlaps everything but takes no
            // addresses: only more specific routes count.
            if !in_use.iter().filter(|u| u.prefix() > 0).any(|u| u.overlaps(&candidate)) {
                return Ok(candidate);
            }
        }
    }
    Err("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into())
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
struct State {
    subnet: Option<Subnet>,
    /// Task ID → its address.
    allocations: BTreeMap<String, Ipv4Addr>,
}

/// The bridge subnet and the addresses given out in it, persisted at `path`.
#[derive(Debug)]
pub struct Ipam {
    path: PathBuf,
    state: State,
}

impl Ipam {
    /// Loads the state at `path`; a missing file is an empty state.
    pub fn open(path: &Path) -> Result<Ipam, String> {
        let state = match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| format!("reading {}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        Ok(Ipam { path: path.to_path_buf(), state })
    }

    pub fn subnet(&self) -> Option<Subnet> {
        self.state.subnet
    }

    /// Sets the bridge subnet. Allocations outside it are dropped (their
    /// tasks are gone: the subnet only changes when the bridge is made anew).
    pub fn set_subnet(&mut self, subnet: Subnet) -> Result<(), String> {
        self.state.subnet = Some(subnet);
        self.state.allocations.retain(|_, ip| subnet.contains(*ip));
        self.save()
    }

    /// The bridge's own address: the subnet's first host address.
    pub fn gateway(&self) -> Option<Ipv4Addr> {
        self.state.subnet.and_then(|s| s.nth(1))
    }

    /// The address of `owner` (a task ID), allocating the lowest free one if
    /// it has none. Asking twice gives the same address.
    pub fn allocate(&mut self, owner: &str) -> Result<Ipv4Addr, String> {
        let subnet = self.state.subnet.ok_or("the gateway bridge has no subnet yet")?;
        if let Some(ip) = self.state.allocations.get(owner) {
            return Ok(*ip);
        }
        let used: std::collections::HashSet<Ipv4Addr> = self.state.allocations.values().copied().collect();
        // 0 is the network, 1 the gateway, the last one the broadcast.
        let ip = (2..subnet.size().saturating_sub(1))
            .filter_map(|i| subnet.nth(i))
            .find(|ip| !used.contains(ip))
            .ok_or_else(|| format!("no available IPv4 addresses on this network's address pools: {subnet}"))?;
        self.state.allocations.insert(owner.to_string(), ip);
        if let Err(e) = self.save() {
            self.state.allocations.remove(owner);
            return Err(e);
        }
        Ok(ip)
    }

    /// Gives `owner`'s address back; unknown owners are nothing to do.
    pub fn release(&mut self, owner: &str) -> Result<(), String> {
        if self.state.allocations.remove(owner).is_some() {
            self.save()?;
        }
        Ok(())
    }

    /// The tasks holding an address.
    pub fn owners(&self) -> Vec<String> {
        self.state.allocations.keys().cloned().collect()
    }

    pub fn address_of(&self, owner: &str) -> Option<Ipv4Addr> {
        self.state.allocations.get(owner).copied()
    }

    /// Write to a temporary file, fsync, rename: a crash leaves the old or
    /// the new state, never half of one.
    fn save(&self) -> Result<(), String> {
        use std::io::Write;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        let tmp = self.path.with_extension("tmp");
        let body = serde_json::to_vec_pretty(&self.state).map_err(|e| e.to_string())?;
        let mut f = std::fs::File::create(&tmp).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
        f.write_all(&body).and_then(|_| f.sync_all()).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| format!("writing {}: {e}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("shoal-ipam-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn sn(s: &str) -> Subnet {
        s.parse().unwrap()
    }

    #[test]
    fn subnet_choice_skips_what_the_host_uses() {
        let pools = AddressPool::defaults();
        assert_eq!(choose_subnet(&pools, &[]).unwrap(), sn("172.18.0.0/24"));
        // The lab's and this machine's networks, and a default route, do not collide.
        let host = [sn("192.168.77.0/24"), sn("192.0.2.0/24"), sn("0.0.0.0/0")];
        assert_eq!(choose_subnet(&pools, &host).unwrap(), sn("172.18.0.0/24"));
        // Another node's bridge on the same host, and a host route inside the pool.
        let busy = [sn("172.18.0.0/24"), sn("172.18.1.7/32")];
        assert_eq!(choose_subnet(&pools, &busy).unwrap(), sn("172.18.2.0/24"));
        // A host network covering the whole pool moves us to the next pool.
        let two = vec![AddressPool { base: sn("172.18.0.0/16"), size: 24 }, AddressPool { base: sn("10.20.0.0/16"), size: 24 }];
        assert_eq!(choose_subnet(&two, &[sn("172.16.0.0/12")]).unwrap(), sn("10.20.0.0/24"));
        let err = choose_subnet(&pools, &[sn("172.0.0.0/8")]).unwrap_err();
        assert!(err.contains("non-overlapping"), "{err}");
    }

    #[test]
    fn allocation_and_release() {
        let d = tmp("alloc");
        let mut ipam = Ipam::open(&d.join("ipam.json")).unwrap();
        assert!(ipam.allocate("t1").is_err(), "no subnet yet");
        ipam.set_subnet(sn("172.18.0.0/30")).unwrap();
        assert_eq!(ipam.gateway(), Some("172.18.0.1".parse().unwrap()));
        let a = ipam.allocate("t1").unwrap();
        assert_eq!(a, "172.18.0.2".parse::<Ipv4Addr>().unwrap());
        assert_eq!(ipam.allocate("t1").unwrap(), a, "same owner, same address");
        // A /30 has one address for tasks: the next owner finds none.
        let err = ipam.allocate("t2").unwrap_err();
        assert!(err.contains("no available IPv4 addresses"), "{err}");
        ipam.release("t1").unwrap();
        assert_eq!(ipam.allocate("t2").unwrap(), a);
        ipam.release("nobody").unwrap();
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn state_survives_a_restart() {
        let d = tmp("persist");
        let path = d.join("net/ipam.json");
        {
            let mut ipam = Ipam::open(&path).unwrap();
            ipam.set_subnet(sn("172.18.4.0/24")).unwrap();
            ipam.allocate("a").unwrap();
            ipam.allocate("b").unwrap();
            ipam.allocate("c").unwrap();
            ipam.release("b").unwrap();
        }
        let mut again = Ipam::open(&path).unwrap();
        assert_eq!(again.subnet(), Some(sn("172.18.4.0/24")));
        assert_eq!(again.owners(), ["a", "c"]);
        assert_eq!(again.address_of("c"), Some("172.18.4.4".parse().unwrap()));
        // The freed .3 goes to the next task; .2 and .4 stay taken.
        assert_eq!(again.allocate("d").unwrap(), "172.18.4.3".parse::<Ipv4Addr>().unwrap());
        assert_eq!(again.allocate("e").unwrap(), "172.18.4.5".parse::<Ipv4Addr>().unwrap());
        // A new subnet drops allocations that no longer fit.
        again.set_subnet(sn("172.18.9.0/24")).unwrap();
        assert!(again.owners().is_empty());
        std::fs::write(&path, "not json").unwrap();
        assert!(Ipam::open(&path).is_err());
        let _ = std::fs::remove_dir_all(&d);
    }
}
