//! What the tasks on each node hold: active task counts, free CPU and
//! memory, host ports in use, generic resources held. One dense array per
//! quantity, indexed like the scheduler's node list, because the placement
//! loop reads these for thousands of nodes per task and dense arrays keep
//! that in cache.
//!
//! Per-service counts are sparse (a service is on few nodes): a map per
//! service from node index to count. While a batch of one service is being
//! placed, that service's counts are "loaded" into the dense `svc` array, so
//! the loop reads an array instead of hashing the service ID per node.
//! Consecutive batches (or one-off tasks) of the same service keep it loaded.

use std::collections::HashMap;

use shoal_api::service::PortProtocol;

use crate::generic::Held;
use crate::nodeinfo::NodeInfo;

#[derive(Default)]
pub(crate) struct Load {
    /// Active tasks (desired state at most `complete`), all services.
    pub total: Vec<u32>,
    /// Node total minus what its tasks reserve (may go negative if the node
    /// shrank).
    pub avail_cpu: Vec<i64>,
    pub avail_mem: Vec<i64>,
    /// Host-mode published ports in use (few per node: a list is enough).
    pub ports: Vec<Vec<(PortProtocol, u32)>>,
    pub generic: Vec<Held>,
    /// Active tasks of the loaded service, per node.
    pub svc: Vec<u32>,
    loaded: Option<String>,
    /// Nodes whose `svc` entry may be non-zero (to flush and reset).
    touched: Vec<u32>,
    /// Per service (except the loaded one): node index -> active tasks.
    by_service: HashMap<String, HashMap<u32, u32>>,
}

impl Load {
    pub fn push_node(&mut self, n: &NodeInfo) {
        self.total.push(0);
        self.avail_cpu.push(n.nano_cpus);
        self.avail_mem.push(n.memory_bytes);
        self.ports.push(Vec::new());
        self.generic.push(Held::default());
        self.svc.push(0);
    }

    /// A node's description changed: keep what tasks reserve, move the
    /// totals.
    pub fn resize_node(&mut self, i: usize, old: &NodeInfo, new: &NodeInfo) {
        self.avail_cpu[i] += new.nano_cpus - old.nano_cpus;
        self.avail_mem[i] += new.memory_bytes - old.memory_bytes;
    }

    /// Forgets node `i`; the last node takes its index (as `Vec::swap_remove`).
    pub fn swap_remove_node(&mut self, i: usize) {
        self.flush();
        let last = (self.total.len() - 1) as u32;
        self.total.swap_remove(i);
        self.avail_cpu.swap_remove(i);
        self.avail_mem.swap_remove(i);
        self.ports.swap_remove(i);
        self.generic.swap_remove(i);
        self.svc.swap_remove(i);
        for counts in self.by_service.values_mut() {
            counts.remove(&(i as u32));
            if let Some(c) = counts.remove(&last) {
                if last as usize != i {
                    counts.insert(i as u32, c);
                }
            }
        }
        self.by_service.retain(|_, c| !c.is_empty());
    }

    /// Makes `service` the one whose counts are in `svc`.
    pub fn load_service(&mut self, service: &str) {
        if self.loaded.as_deref() == Some(service) {
            return;
        }
        self.flush();
        if let Some(counts) = self.by_service.remove(service) {
            for (i, c) in counts {
                self.svc[i as usize] = c;
                self.touched.push(i);
            }
        }
        self.loaded = Some(service.to_string());
    }

    /// Writes the loaded service's counts back to its map and clears `svc`.
    fn flush(&mut self) {
        let Some(service) = self.loaded.take() else { return };
        let mut counts = HashMap::new();
        for i in self.touched.drain(..) {
            let c = std::mem::take(&mut self.svc[i as usize]);
            if c > 0 {
                counts.insert(i, c);
            }
        }
        if !counts.is_empty() {
            self.by_service.insert(service, counts);
        }
    }

    /// One more active task of the loaded service on node `i`.
    #[inline]
    pub fn bump_loaded(&mut self, i: usize) {
        if self.svc[i] == 0 {
            self.touched.push(i as u32);
        }
        self.svc[i] += 1;
        self.total[i] += 1;
    }

    /// Adds `delta` active tasks of `service` on node `i`, without loading it.
    pub fn add_count(&mut self, i: usize, service: &str, delta: i32) {
        self.total[i] = self.total[i].saturating_add_signed(delta);
        if self.loaded.as_deref() == Some(service) {
            if self.svc[i] == 0 && delta > 0 {
                self.touched.push(i as u32);
            }
            self.svc[i] = self.svc[i].saturating_add_signed(delta);
            return;
        }
        let counts = self.by_service.entry(service.to_string()).or_default();
        let c = counts.entry(i as u32).or_default();
        *c = c.saturating_add_signed(delta);
        if *c == 0 {
            counts.remove(&(i as u32));
            if counts.is_empty() {
                self.by_service.remove(service);
            }
        }
    }

    /// Active tasks of `service` on node `i`.
    pub fn service_count(&self, i: usize, service: &str) -> u32 {
        if self.loaded.as_deref() == Some(service) {
            return self.svc[i];
        }
        self.by_service.get(service).and_then(|c| c.get(&(i as u32))).copied().unwrap_or(0)
    }

    pub fn hold_port(&mut self, i: usize, p: (PortProtocol, u32)) {
        if !self.ports[i].contains(&p) {
            self.ports[i].push(p);
        }
    }

    pub fn release_port(&mut self, i: usize, p: (PortProtocol, u32)) {
        self.ports[i].retain(|q| *q != p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Load {
        let mut l = Load::default();
        for id in ["a", "b", "c"] {
            l.push_node(&NodeInfo::new(id));
        }
        l
    }

    #[test]
    fn service_counts_survive_loading_other_services() {
        let mut l = three();
        l.add_count(0, "web", 2);
        l.add_count(2, "db", 1);
        l.load_service("web");
        assert_eq!(l.svc, vec![2, 0, 0]);
        l.bump_loaded(1);
        l.load_service("db");
        assert_eq!(l.svc, vec![0, 0, 1]);
        assert_eq!(l.service_count(1, "web"), 1);
        assert_eq!(l.service_count(0, "web"), 2);
        assert_eq!(l.total, vec![2, 1, 1]);
        l.add_count(0, "web", -2);
        assert_eq!(l.service_count(0, "web"), 0);
        l.load_service("web");
        assert_eq!(l.svc, vec![0, 1, 0]);
    }

    #[test]
    fn removing_a_node_moves_the_last_into_its_place() {
        let mut l = three();
        l.add_count(0, "web", 1);
        l.add_count(2, "web", 3);
        l.swap_remove_node(0);
        assert_eq!(l.total, vec![3, 0]);
        assert_eq!(l.service_count(0, "web"), 3);
        assert_eq!(l.service_count(1, "web"), 0);
    }
}
