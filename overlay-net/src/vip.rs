//! Service VIPs balanced with nftables, inside each task's namespace.
//!
//! The kernel here has no IPVS, and nftables is the better tool anyway (as
//! kube-proxy's nftables mode shows): one table per task namespace,
//! `table ip shoal-lb`, where a verdict map sends a connection to a VIP to
//! the service's own chain, and that chain picks a backend with `numgen
//! random mod N` and DNATs to it. The DNAT happens on the caller's side of
//! the connection (the `output` hook of its namespace), so the callee sees
//! the caller's own address.
//!
//! Updates are by service: a backend change rewrites that service's chain
//! (one rule), a new or removed service adds or deletes one map element;
//! what other services have is never touched, so a change costs the same
//! with 10 services or 1,000. Connections already set up keep their
//! conntrack entry (established TCP: 5 days, not IPVS's 15 minutes).
//!
//! A service with no backend rejects (a TCP reset, an ICMP error) instead
//! of letting the caller hang: its VIP goes into the `dead` set, which a
//! filter chain rejects (a `nat` chain cannot reject).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

pub const TABLE: &str = "shoal-lb";

/// The chain of a service: a short, fixed-length name from its ID.
fn chain(service_id: &str) -> String {
    let id: String = service_id.chars().filter(|c| c.is_ascii_alphanumeric()).take(25).collect();
    format!("svc-{id}")
}

/// The table, its VIP map and the output hook (replacing whatever a
/// previous run left).
pub fn init_ruleset() -> String {
    [
        format!("table ip {TABLE}"),
        format!("delete table ip {TABLE}"),
        format!("table ip {TABLE} {{"),
        "\tmap vips {\n\t\ttype ipv4_addr : verdict\n\t}".to_string(),
        "\tset dead {\n\t\ttype ipv4_addr\n\t}".to_string(),
        "\tchain output {".to_string(),
        "\t\ttype nat hook output priority -100; policy accept;".to_string(),
        "\t\tip daddr vmap @vips".to_string(),
        "\t}".to_string(),
        "\tchain refuse {".to_string(),
        "\t\ttype filter hook output priority 0; policy accept;".to_string(),
        "\t\tip daddr @dead meta l4proto tcp reject with tcp reset".to_string(),
        "\t\tip daddr @dead reject".to_string(),
        "\t}".to_string(),
        "}\n".to_string(),
    ]
    .join("\n")
}

/// Sets service `id`'s VIP and backends. `before`: its backends until now
/// (None: the VIP is not in the map yet).
pub fn set_service_ruleset(id: &str, vip: Ipv4Addr, backends: &[Ipv4Addr], before: Option<&[Ipv4Addr]>) -> String {
    let c = chain(id);
    let mut s = format!("add chain ip {TABLE} {c}\nflush chain ip {TABLE} {c}\n");
    if !backends.is_empty() {
        let map: Vec<String> = backends.iter().enumerate().map(|(i, b)| format!("{i} : {b}")).collect();
        s.push_str(&format!("add rule ip {TABLE} {c} dnat to numgen random mod {} map {{ {} }}\n", backends.len(), map.join(", ")));
    }
    if before.is_none() {
        s.push_str(&format!("add element ip {TABLE} vips {{ {vip} : jump {c} }}\n"));
    }
    let was_dead = before.is_some_and(|b| b.is_empty());
    if backends.is_empty() && !was_dead {
        s.push_str(&format!("add element ip {TABLE} dead {{ {vip} }}\n"));
    } else if !backends.is_empty() && was_dead {
        s.push_str(&format!("delete element ip {TABLE} dead {{ {vip} }}\n"));
    }
    s
}

/// Removes service `id` (its map element first, so nothing jumps to a
/// chain being deleted).
pub fn remove_service_ruleset(id: &str, vip: Ipv4Addr, backends: &[Ipv4Addr]) -> String {
    let c = chain(id);
    let mut s = format!("delete element ip {TABLE} vips {{ {vip} }}\nflush chain ip {TABLE} {c}\ndelete chain ip {TABLE} {c}\n");
    if backends.is_empty() {
        s.push_str(&format!("delete element ip {TABLE} dead {{ {vip} }}\n"));
    }
    s
}

/// Runs `rules` once in the calling thread's network namespace (a new
/// nftables context: for one-off scripts; updates keep one, see
/// `nftables`).
pub fn apply(rules: &str) -> Result<(), String> {
    crate::nftables::Nft::here().run(rules)
}

/// What one task's namespace balances: service ID -> (VIP, backends).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Balancer {
    services: BTreeMap<String, (Ipv4Addr, Vec<Ipv4Addr>)>,
    /// The nftables context of the task's namespace, kept between updates.
    nft: crate::nftables::Kept,
}

impl Balancer {
    /// The nft text that takes this balancer to `want` (None: nothing to
    /// do), and the new state once it applied.
    pub fn plan(&self, want: &BTreeMap<String, (Ipv4Addr, Vec<Ipv4Addr>)>) -> Option<String> {
        let mut s = String::new();
        for (id, (vip, backends)) in &self.services {
            match want.get(id) {
                Some((v, _)) if v == vip => {}
                _ => s.push_str(&remove_service_ruleset(id, *vip, backends)),
            }
        }
        for (id, (vip, backends)) in want {
            match self.services.get(id) {
                Some((v, b)) if v == vip && b == backends => {}
                Some((v, b)) if v == vip => s.push_str(&set_service_ruleset(id, *vip, backends, Some(b))),
                _ => s.push_str(&set_service_ruleset(id, *vip, backends, None)),
            }
        }
        (!s.is_empty()).then_some(s)
    }

    /// Applies `want` in the namespace `ns` (the table is made on first
    /// use).
    pub fn update(&mut self, ns: &std::fs::File, want: BTreeMap<String, (Ipv4Addr, Vec<Ipv4Addr>)>) -> Result<(), String> {
        let Some(mut rules) = self.plan(&want) else { return Ok(()) };
        if self.services.is_empty() {
            rules = format!("{}{rules}", init_ruleset());
        }
        let nft = &mut self.nft;
        crate::netns::run_in(ns, || nft.run(&rules))?;
        self.services = want;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 1, last)
    }

    #[test]
    fn a_backend_change_touches_only_its_service() {
        let mut b = Balancer::default();
        let mut want = BTreeMap::new();
        for i in 0..1000u32 {
            want.insert(format!("s{i:04}"), (Ipv4Addr::from(0x0a01_0000 + i), vec![ip(3), ip(4)]));
        }
        let all = b.plan(&want).unwrap();
        assert_eq!(all.matches("add element").count(), 1000);
        b.services = want.clone();
        assert!(b.plan(&want).is_none(), "nothing changed, nothing to run");

        want.get_mut("s0500").unwrap().1 = vec![ip(3)];
        let one = b.plan(&want).unwrap();
        assert_eq!(one, format!("add chain ip shoal-lb svc-s0500\nflush chain ip shoal-lb svc-s0500\nadd rule ip shoal-lb svc-s0500 dnat to numgen random mod 1 map {{ 0 : 10.0.1.3 }}\n"));

        want.remove("s0001");
        let gone = b.plan(&want).unwrap();
        assert!(gone.starts_with("delete element ip shoal-lb vips { 10.1.0.1 }\n"), "{gone}");
    }

    #[test]
    fn a_service_without_backends_is_refused_until_it_has_one() {
        let s = set_service_ruleset("abc", ip(2), &[], None);
        assert!(s.contains("add element ip shoal-lb vips { 10.0.1.2 : jump svc-abc }"), "{s}");
        assert!(s.contains("add element ip shoal-lb dead { 10.0.1.2 }"), "{s}");
        let back = set_service_ruleset("abc", ip(2), &[ip(3)], Some(&[]));
        assert!(back.contains("delete element ip shoal-lb dead { 10.0.1.2 }") && !back.contains("vips"), "{back}");
        assert!(init_ruleset().contains("ip daddr @dead meta l4proto tcp reject with tcp reset"));
    }
}
