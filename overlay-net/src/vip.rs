//! Service VIPs balanced with nftables, inside each task's namespace.
//!
//! The kernel here has no IPVS, and nftables is the better tool anyway (as
//! kube-proxy's nftables mode shows): one table per task namespace,
//! `table ip shoal-lb`. A connection to a VIP of a service with N backends
//! finds its VIP in the set `vips-N`, whose rule sends it to the chain
//! `pick-N`; that chain draws `numgen random mod N` and DNATs to the
//! backend the `backends` map holds for (VIP, draw). The DNAT happens on
//! the caller's side of the connection (the `output` hook of its
//! namespace), so the callee sees the caller's own address.
//!
//! Updates are element changes only: a backend change rewrites that
//! service's slots in `backends` (only the slots whose backend changed, as
//! a backend that stays keeps its slot), and moves its VIP from `vips-N` to
//! `vips-M` when its number of backends changes. A set, a chain and a rule
//! are added the first time some service has N backends, and shared by
//! every service with N. There is no verdict map: adding a jump element to
//! one makes the kernel check the whole table for loops at each commit,
//! which is what made a change cost more with more services. So a change
//! costs the same with 10 services or 1,000. Connections already set up
//! keep their conntrack entry (established TCP: 5 days, not IPVS's 15
//! minutes).
//!
//! A service with no backend rejects (a TCP reset, an ICMP error) instead
//! of letting the caller hang: its VIP goes into the `dead` set, which a
//! filter chain rejects (a `nat` chain cannot reject).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

pub const TABLE: &str = "shoal-lb";

/// The table, its maps and the output hook (replacing whatever a previous
/// run left).
pub fn init_ruleset() -> String {
    [
        format!("table ip {TABLE}"),
        format!("delete table ip {TABLE}"),
        format!("table ip {TABLE} {{"),
        // Every VIP, so other connections pass with one lookup.
        "\tset vips {\n\t\ttype ipv4_addr\n\t}".to_string(),
        // The modulus in `typeof` only gives the key's type (32 bits); each
        // pick chain draws with its own.
        "\tmap backends {\n\t\ttypeof ip daddr . numgen random mod 2 : ip daddr\n\t}".to_string(),
        "\tset dead {\n\t\ttype ipv4_addr\n\t}".to_string(),
        "\tchain output {".to_string(),
        "\t\ttype nat hook output priority -100; policy accept;".to_string(),
        "\t\tip daddr != @vips accept".to_string(),
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

/// The set, chain and rule for services with `n` backends, for the first
/// such service.
fn pick_ruleset(n: usize) -> String {
    format!(
        "add set ip {TABLE} vips-{n} {{ type ipv4_addr; }}\n\
         add chain ip {TABLE} pick-{n}\n\
         add rule ip {TABLE} pick-{n} dnat to ip daddr . numgen random mod {n} map @backends\n\
         add rule ip {TABLE} output ip daddr @vips-{n} goto pick-{n}\n"
    )
}

/// The slots of a service whose backends become `want`: a backend that
/// stays keeps its slot, a new one takes the slot of one that left (or a
/// new slot at the end), and slots past the new count are filled from the
/// end, so few slots change.
fn next_slots(slots: &[Ipv4Addr], want: &BTreeSet<Ipv4Addr>) -> Vec<Ipv4Addr> {
    let mut next: Vec<Option<Ipv4Addr>> = slots.iter().map(|b| want.contains(b).then_some(*b)).collect();
    let mut new = want.iter().filter(|b| !slots.contains(b)).copied();
    for s in next.iter_mut().filter(|s| s.is_none()) {
        *s = new.next();
    }
    next.extend(new.map(Some));
    // Holes left (fewer backends than before): the last slot moves in, and
    // the hole is looked at again in case that one was a hole too.
    let mut i = 0;
    while i < next.len() {
        if next[i].is_none() {
            next.swap_remove(i);
        } else {
            i += 1;
        }
    }
    next.into_iter().flatten().collect()
}

/// The element changes that take service `vip` from `before` (its slots
/// until now; None: not in the table yet) to `after`.
fn set_service_ruleset(vip: Ipv4Addr, after: &[Ipv4Addr], before: Option<&[Ipv4Addr]>) -> String {
    let old = before.unwrap_or(&[]);
    let mut s = String::new();
    for i in 0..old.len().max(after.len()) {
        let (was, is) = (old.get(i), after.get(i));
        if was == is {
            continue;
        }
        if was.is_some() {
            let _ = writeln!(s, "delete element ip {TABLE} backends {{ {vip} . {i} }}");
        }
        if let Some(b) = is {
            let _ = writeln!(s, "add element ip {TABLE} backends {{ {vip} . {i} : {b} }}");
        }
    }
    if before.is_none() {
        let _ = writeln!(s, "add element ip {TABLE} vips {{ {vip} }}");
    }
    if before.is_none_or(|b| b.len() != after.len()) {
        if !old.is_empty() {
            let _ = writeln!(s, "delete element ip {TABLE} vips-{} {{ {vip} }}", old.len());
        }
        if !after.is_empty() {
            let _ = writeln!(s, "add element ip {TABLE} vips-{} {{ {vip} }}", after.len());
        }
    }
    let was_dead = before.is_some_and(|b| b.is_empty());
    if after.is_empty() && !was_dead {
        let _ = writeln!(s, "add element ip {TABLE} dead {{ {vip} }}");
    } else if !after.is_empty() && was_dead {
        let _ = writeln!(s, "delete element ip {TABLE} dead {{ {vip} }}");
    }
    s
}

/// Removes service `vip` with its slots `slots`.
fn remove_service_ruleset(vip: Ipv4Addr, slots: &[Ipv4Addr]) -> String {
    let mut s = format!("delete element ip {TABLE} vips {{ {vip} }}\n");
    if slots.is_empty() {
        let _ = writeln!(s, "delete element ip {TABLE} dead {{ {vip} }}");
    } else {
        let _ = writeln!(s, "delete element ip {TABLE} vips-{} {{ {vip} }}", slots.len());
    }
    for i in 0..slots.len() {
        let _ = writeln!(s, "delete element ip {TABLE} backends {{ {vip} . {i} }}");
    }
    s
}

/// Runs `rules` once in the calling thread's network namespace (a new
/// nftables context: for one-off scripts; updates keep one, see
/// `nftables`).
pub fn apply(rules: &str) -> Result<(), String> {
    crate::nftables::Nft::here().run(rules)
}

/// What one task's namespace balances: service ID -> (VIP, backends in
/// slot order), and the pick chains made so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Balancer {
    services: BTreeMap<String, (Ipv4Addr, Vec<Ipv4Addr>)>,
    picks: BTreeSet<usize>,
    /// The nftables context of the task's namespace, kept between updates.
    nft: crate::nftables::Kept,
}

/// What a plan leads to once applied.
struct Planned {
    rules: String,
    services: BTreeMap<String, (Ipv4Addr, Vec<Ipv4Addr>)>,
    picks: BTreeSet<usize>,
}

impl Balancer {
    /// The nft text that takes this balancer to `want` (service ID -> VIP
    /// and backends, in any order), and the state it leaves; None: nothing
    /// to do.
    fn plan(&self, want: &BTreeMap<String, (Ipv4Addr, Vec<Ipv4Addr>)>) -> Option<Planned> {
        let mut rules = String::new();
        let mut picks = self.picks.clone();
        let mut services = BTreeMap::new();
        for (id, (vip, slots)) in &self.services {
            match want.get(id) {
                Some((v, _)) if v == vip => {}
                _ => rules.push_str(&remove_service_ruleset(*vip, slots)),
            }
        }
        for (id, (vip, backends)) in want {
            let before = self.services.get(id).filter(|(v, _)| v == vip).map(|(_, slots)| slots.as_slice());
            // Most services did not change: tell without building anything.
            let same = |s: &&[Ipv4Addr]| {
                s.len() == backends.len() && backends.iter().all(|b| s.contains(b)) && s.iter().all(|b| backends.contains(b))
            };
            if let Some(slots) = before.filter(same) {
                services.insert(id.clone(), (*vip, slots.to_vec()));
                continue;
            }
            let set: BTreeSet<Ipv4Addr> = backends.iter().copied().collect();
            let after = next_slots(before.unwrap_or(&[]), &set);
            if !after.is_empty() && picks.insert(after.len()) {
                rules.push_str(&pick_ruleset(after.len()));
            }
            if before != Some(after.as_slice()) {
                rules.push_str(&set_service_ruleset(*vip, &after, before));
            }
            services.insert(id.clone(), (*vip, after));
        }
        (!rules.is_empty()).then_some(Planned { rules, services, picks })
    }

    /// Applies `want` in the namespace `ns` (the table is made on first
    /// use).
    pub fn update(&mut self, ns: &std::fs::File, want: BTreeMap<String, (Ipv4Addr, Vec<Ipv4Addr>)>) -> Result<(), String> {
        let Some(mut planned) = self.plan(&want) else { return Ok(()) };
        if self.services.is_empty() && self.picks.is_empty() {
            planned.rules = format!("{}{}", init_ruleset(), planned.rules);
        }
        let nft = &mut self.nft;
        crate::netns::run_in(ns, || nft.run(&planned.rules))?;
        self.services = planned.services;
        self.picks = planned.picks;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 1, last)
    }

    fn applied(b: &mut Balancer, want: &BTreeMap<String, (Ipv4Addr, Vec<Ipv4Addr>)>) -> String {
        let p = b.plan(want).expect("something to do");
        b.services = p.services;
        b.picks = p.picks;
        p.rules
    }

    #[test]
    fn a_backend_change_touches_only_its_service_s_elements() {
        let mut b = Balancer::default();
        let mut want = BTreeMap::new();
        for i in 0..1000u32 {
            want.insert(format!("s{i:04}"), (Ipv4Addr::from(0x0a01_0000 + i), vec![ip(3), ip(4)]));
        }
        let all = applied(&mut b, &want);
        assert_eq!(all.matches("add element ip shoal-lb vips {").count(), 1000);
        assert_eq!(all.matches("add element ip shoal-lb vips-2 {").count(), 1000);
        assert_eq!(all.matches("add chain").count(), 1, "one pick chain for every service with 2 backends: {}", &all[..200]);
        assert!(b.plan(&want).is_none(), "nothing changed, nothing to run");

        // One backend leaves: its slot goes, and the service moves to pick-1.
        want.get_mut("s0500").unwrap().1 = vec![ip(3)];
        let one = applied(&mut b, &want);
        assert_eq!(
            one,
            "add set ip shoal-lb vips-1 { type ipv4_addr; }\nadd chain ip shoal-lb pick-1\n\
             add rule ip shoal-lb pick-1 dnat to ip daddr . numgen random mod 1 map @backends\n\
             add rule ip shoal-lb output ip daddr @vips-1 goto pick-1\n\
             delete element ip shoal-lb backends { 10.1.1.244 . 1 }\n\
             delete element ip shoal-lb vips-2 { 10.1.1.244 }\nadd element ip shoal-lb vips-1 { 10.1.1.244 }\n"
        );
        // A backend replaced by another: one slot rewritten, nothing else.
        want.get_mut("s0500").unwrap().1 = vec![ip(9)];
        let swap = applied(&mut b, &want);
        assert_eq!(
            swap,
            "delete element ip shoal-lb backends { 10.1.1.244 . 0 }\nadd element ip shoal-lb backends { 10.1.1.244 . 0 : 10.0.1.9 }\n"
        );
        // The order the backends come in does not matter.
        want.get_mut("s0001").unwrap().1 = vec![ip(4), ip(3)];
        assert!(b.plan(&want).is_none());

        want.remove("s0001");
        let gone = applied(&mut b, &want);
        assert_eq!(
            gone,
            "delete element ip shoal-lb vips { 10.1.0.1 }\ndelete element ip shoal-lb vips-2 { 10.1.0.1 }\n\
             delete element ip shoal-lb backends { 10.1.0.1 . 0 }\ndelete element ip shoal-lb backends { 10.1.0.1 . 1 }\n"
        );
    }

    #[test]
    fn backends_that_stay_keep_their_slots() {
        let set = |v: &[u8]| v.iter().map(|n| ip(*n)).collect::<BTreeSet<_>>();
        let slots = |v: &[u8]| v.iter().map(|n| ip(*n)).collect::<Vec<_>>();
        assert_eq!(next_slots(&[], &set(&[5, 3, 4])), slots(&[3, 4, 5]));
        // 4 leaves, 9 comes: 9 takes 4's slot.
        assert_eq!(next_slots(&slots(&[3, 4, 5]), &set(&[3, 5, 9])), slots(&[3, 9, 5]));
        // 3 leaves: the last backend moves into its slot.
        assert_eq!(next_slots(&slots(&[3, 4, 5, 6]), &set(&[4, 5, 6])), slots(&[6, 4, 5]));
        // Several leave, at the end and in the middle.
        assert_eq!(next_slots(&slots(&[3, 4, 5, 6, 7]), &set(&[3, 6])), slots(&[3, 6]));
        assert_eq!(next_slots(&slots(&[3, 4, 5]), &set(&[])), slots(&[]));
    }

    #[test]
    fn a_service_without_backends_is_refused_until_it_has_one() {
        let s = set_service_ruleset(ip(2), &[], None);
        assert_eq!(s, "add element ip shoal-lb vips { 10.0.1.2 }\nadd element ip shoal-lb dead { 10.0.1.2 }\n");
        let back = set_service_ruleset(ip(2), &[ip(3)], Some(&[]));
        assert!(back.contains("add element ip shoal-lb vips-1 { 10.0.1.2 }"), "{back}");
        assert!(back.contains("delete element ip shoal-lb dead { 10.0.1.2 }"), "{back}");
        let none = set_service_ruleset(ip(2), &[], Some(&[ip(3)]));
        assert!(none.contains("delete element ip shoal-lb vips-1 { 10.0.1.2 }") && none.contains("add element ip shoal-lb dead"), "{none}");
        assert!(init_ruleset().contains("ip daddr @dead meta l4proto tcp reject with tcp reset"));
    }
}
