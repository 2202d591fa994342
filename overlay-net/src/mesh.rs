//! The ingress routing mesh, keeping the client's address.
//!
//! Every node has an entry into the `ingress` overlay: a leg from its own
//! namespace onto the network's bridge, with the node's ingress address
//! (given by the managers) and the MAC derived from it. A connection to a
//! published port on any of the node's addresses is DNATed by the node's
//! `<table>` (`entry_ruleset`) straight to one of the service's tasks on
//! the ingress network, chosen with `numgen random mod N`, and leaves
//! through the leg. Nothing rewrites the source: the task sees the
//! client's own address (Swarm masquerades here and loses it, moby#25526).
//!
//! The reply must go back through the node that did the DNAT, where the
//! connection's conntrack entry lives. So inside each task on the ingress
//! network (`return_ruleset`), a connection that comes in on the ingress
//! leg is marked with the sender's MAC, which is its entry node's ingress
//! address (02:42 and the four address bytes): the conntrack mark is the
//! last four bytes of the source MAC, copied raw. Replies carry that mark
//! (`meta mark set ct mark` in a route hook, so the kernel routes them
//! again), and one policy rule per node (`fwmark M lookup M`, see
//! `mark_of`) sends them via that node's ingress address. No per-connection
//! state beyond conntrack, and a new node costs one rule and one route per
//! task on the network.
//!
//! Connections from the node itself (to `127.0.0.1:<port>` or its own
//! addresses) are DNATed in `output` and masqueraded to the leg's address,
//! so their replies need no rule. A published port with no running task
//! is refused (a TCP reset, an ICMP error) rather than left to hang.
//!
//! Port updates are by difference, one chain per port (`plan`), so a
//! backend change costs one rule whatever the number of ports.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// A published port: (`tcp`/`udp`/`sctp`, port).
pub type PortKey = (String, u32);
/// Its backends: (task address on the ingress network, target port).
pub type Backends = Vec<(Ipv4Addr, u32)>;

/// The conntrack mark, routing rule and table of an entry node: its
/// ingress address's four bytes as nftables copies them out of the MAC
/// (raw, so in the machine's byte order). Never 0, and never one of the
/// kernel's reserved table IDs (253-255), since an assignable address has
/// a non-zero last byte.
pub fn mark_of(entry: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(entry.octets())
}

/// The chain of one published port.
fn port_chain((proto, port): &PortKey) -> String {
    format!("p-{proto}-{port}")
}

/// The node's entry table (replacing whatever a previous run left): the
/// port map used for connections to any local address from elsewhere
/// (`prerouting`) and from the node itself (`output`), masquerade of the
/// node's own connections into the mesh, and refusal of ports with no task.
pub fn entry_ruleset(table: &str, leg: &str) -> String {
    [
        format!("table ip {table}"),
        format!("delete table ip {table}"),
        format!("table ip {table} {{"),
        "\tmap ports {\n\t\ttype inet_proto . inet_service : verdict\n\t}".to_string(),
        "\tset dead {\n\t\ttype inet_proto . inet_service\n\t}".to_string(),
        "\tchain prerouting {".to_string(),
        "\t\ttype nat hook prerouting priority -100; policy accept;".to_string(),
        "\t\tfib daddr type local meta l4proto . th dport vmap @ports".to_string(),
        "\t}".to_string(),
        "\tchain output {".to_string(),
        "\t\ttype nat hook output priority -100; policy accept;".to_string(),
        "\t\tfib daddr type local meta l4proto . th dport vmap @ports".to_string(),
        "\t}".to_string(),
        "\tchain postrouting {".to_string(),
        "\t\ttype nat hook postrouting priority 100; policy accept;".to_string(),
        format!("\t\toifname \"{leg}\" fib saddr type local masquerade"),
        "\t}".to_string(),
        "\tchain refuse {".to_string(),
        "\t\ttype filter hook input priority 0; policy accept;".to_string(),
        "\t\tmeta l4proto . th dport @dead meta l4proto tcp reject with tcp reset".to_string(),
        "\t\tmeta l4proto . th dport @dead reject".to_string(),
        "\t}".to_string(),
        "}\n".to_string(),
    ]
    .join("\n")
}

/// Sets one port's backends. `before`: its backends until now (None: the
/// port is not in the map yet).
fn set_port(table: &str, key: &PortKey, backends: &Backends, before: Option<&Backends>) -> String {
    let (proto, port) = key;
    let c = port_chain(key);
    let mut s = format!("add chain ip {table} {c}\nflush chain ip {table} {c}\n");
    if !backends.is_empty() {
        let map: Vec<String> = backends.iter().enumerate().map(|(i, (a, p))| format!("{i} : {a} . {p}")).collect();
        s.push_str(&format!(
            "add rule ip {table} {c} meta l4proto {proto} dnat ip addr . port to numgen random mod {} map {{ {} }}\n",
            backends.len(),
            map.join(", ")
        ));
    }
    if before.is_none() {
        s.push_str(&format!("add element ip {table} ports {{ {proto} . {port} : jump {c} }}\n"));
    }
    let was_dead = before.is_some_and(|b| b.is_empty());
    if backends.is_empty() && !was_dead {
        s.push_str(&format!("add element ip {table} dead {{ {proto} . {port} }}\n"));
    } else if !backends.is_empty() && was_dead {
        s.push_str(&format!("delete element ip {table} dead {{ {proto} . {port} }}\n"));
    }
    s
}

/// Removes one port (its map element first, so nothing jumps to a chain
/// being deleted).
fn remove_port(table: &str, key: &PortKey, backends: &Backends) -> String {
    let (proto, port) = key;
    let c = port_chain(key);
    let mut s =
        format!("delete element ip {table} ports {{ {proto} . {port} }}\nflush chain ip {table} {c}\ndelete chain ip {table} {c}\n");
    if backends.is_empty() {
        s.push_str(&format!("delete element ip {table} dead {{ {proto} . {port} }}\n"));
    }
    s
}

/// The nft text that takes the entry table from `have` to `want` (None:
/// nothing to do). Ports whose backends did not change are not touched.
pub fn plan(table: &str, have: &BTreeMap<PortKey, Backends>, want: &BTreeMap<PortKey, Backends>) -> Option<String> {
    let mut s = String::new();
    for (k, b) in have {
        if !want.contains_key(k) {
            s.push_str(&remove_port(table, k, b));
        }
    }
    for (k, b) in want {
        match have.get(k) {
            Some(h) if h == b => {}
            Some(h) => s.push_str(&set_port(table, k, b, Some(h))),
            None => s.push_str(&set_port(table, k, b, None)),
        }
    }
    (!s.is_empty()).then_some(s)
}

/// The table inside a task on the ingress network that marks connections
/// coming in on `ifname` with their entry node and routes replies by it.
pub const RETURN_TABLE: &str = "shoal-mesh";

pub fn return_ruleset(ifname: &str) -> String {
    [
        format!("table ip {RETURN_TABLE}"),
        format!("delete table ip {RETURN_TABLE}"),
        format!("table ip {RETURN_TABLE} {{"),
        "\tchain prerouting {".to_string(),
        "\t\ttype filter hook prerouting priority -150; policy accept;".to_string(),
        // Bytes 8..12 of the Ethernet header: the last four of the source
        // MAC, which are the entry node's ingress address.
        format!("\t\tiifname \"{ifname}\" ct state new ct mark set @ll,64,32"),
        "\t}".to_string(),
        "\tchain output {".to_string(),
        "\t\ttype route hook output priority -150; policy accept;".to_string(),
        "\t\tct mark != 0 meta mark set ct mark".to_string(),
        "\t}".to_string(),
        "}\n".to_string(),
    ]
    .join("\n")
}

/// What one task's return path holds: the entry nodes it has a rule for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReturnPath {
    pub ifname: String,
    pub entries: BTreeSet<Ipv4Addr>,
}

/// The priority of the per-node rules: before the main table (32766).
pub const RULE_PRIORITY: u32 = 1000;

impl ReturnPath {
    /// Sets up the task's side in namespace `ns` (once, at attach): the
    /// marking table and reverse-path filtering off (replies to clients
    /// leave by a different leg than the default route's).
    pub fn install(ns: &std::fs::File, ifname: &str) -> Result<ReturnPath, String> {
        let rules = return_ruleset(ifname);
        let ifname_owned = ifname.to_string();
        crate::netns::run_in(ns, move || {
            for conf in ["all", "default", &ifname_owned] {
                let p = format!("/proc/sys/net/ipv4/conf/{conf}/rp_filter");
                std::fs::write(&p, "0").map_err(|e| format!("{p}: {e}"))?;
            }
            crate::vip::apply(&rules)
        })?;
        Ok(ReturnPath { ifname: ifname.to_string(), entries: BTreeSet::new() })
    }

    /// Makes the per-node rules and routes exactly `entries` (by
    /// difference). Returns how many changed.
    pub fn set_entries(&mut self, ns: &std::fs::File, entries: &BTreeSet<Ipv4Addr>) -> Result<usize, String> {
        let mut nl = crate::netlink::Netlink::open_in(ns)?;
        let mut changed = 0;
        for gone in self.entries.difference(entries).copied().collect::<Vec<_>>() {
            let m = mark_of(gone);
            nl.del_mark_rule(m, m, RULE_PRIORITY)?;
            self.entries.remove(&gone);
            changed += 1;
        }
        for new in entries.difference(&self.entries.clone()) {
            let m = mark_of(*new);
            nl.replace_route_in_table(m, *new, &self.ifname)?;
            nl.add_mark_rule(m, m, RULE_PRIORITY)?;
            self.entries.insert(*new);
            changed += 1;
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, last)
    }

    #[test]
    fn marks_are_the_address_bytes_in_memory_order() {
        let m = mark_of(ip(2));
        assert_eq!(m.to_ne_bytes(), [10, 0, 0, 2]);
        assert!(!(253..=255).contains(&m) && m != 0);
    }

    #[test]
    fn a_backend_change_touches_only_its_port() {
        let key = |p: u32| ("tcp".to_string(), p);
        let mut have = BTreeMap::new();
        for p in 0..1000u32 {
            have.insert(key(10000 + p), vec![(ip(3), 80), (ip(4), 80)]);
        }
        let all = plan("t", &BTreeMap::new(), &have).unwrap();
        assert_eq!(all.matches("add element ip t ports").count(), 1000);
        assert!(plan("t", &have, &have).is_none());

        let mut want = have.clone();
        want.insert(key(10500), vec![(ip(3), 80)]);
        assert_eq!(
            plan("t", &have, &want).unwrap(),
            "add chain ip t p-tcp-10500\nflush chain ip t p-tcp-10500\n\
             add rule ip t p-tcp-10500 meta l4proto tcp dnat ip addr . port to numgen random mod 1 map { 0 : 10.0.0.3 . 80 }\n"
        );
        want.remove(&key(10001));
        let gone = plan("t", &have, &want).unwrap();
        assert!(gone.starts_with("delete element ip t ports { tcp . 10001 }\n"), "{gone}");
    }

    #[test]
    fn a_port_without_tasks_is_refused_until_it_has_one() {
        let k = ("udp".to_string(), 53);
        let none = plan("t", &BTreeMap::new(), &BTreeMap::from([(k.clone(), vec![])])).unwrap();
        assert!(none.contains("add element ip t ports { udp . 53 : jump p-udp-53 }"), "{none}");
        assert!(none.contains("add element ip t dead { udp . 53 }") && !none.contains("dnat"), "{none}");
        let back = plan("t", &BTreeMap::from([(k.clone(), vec![])]), &BTreeMap::from([(k, vec![(ip(9), 53)])])).unwrap();
        assert!(back.contains("delete element ip t dead { udp . 53 }") && back.contains("meta l4proto udp dnat"), "{back}");
        assert!(entry_ruleset("t", "sig-x").contains("oifname \"sig-x\" fib saddr type local masquerade"));
        assert!(return_ruleset("eth0").contains("iifname \"eth0\" ct state new ct mark set @ll,64,32"));
    }
}
