//! Outbound masquerade for the gateway bridge, in an nftables table the
//! node owns (`table ip shoal-<key>`), through the daemon's nftables
//! context (`shoal_overlay::nftables`). One table
//! per node keeps several daemons on a host (or in one namespace) apart,
//! and deleting the table removes every rule we made at once.

use std::process::{Command, Stdio};

use super::subnet::Subnet;

/// The ruleset: masquerade what the bridge's subnet sends anywhere but
/// back into the bridge. The leading `table`/`delete table` pair makes a
/// re-run replace an earlier table instead of failing or doubling rules.
pub fn masquerade_ruleset(table: &str, bridge: &str, subnet: Subnet) -> String {
    format!(
        "table ip {table}\n\
         delete table ip {table}\n\
         table ip {table} {{\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\tip saddr {subnet} oifname != \"{bridge}\" masquerade\n\
         \t}}\n\
         }}\n"
    )
}

/// Installs (or replaces) the node's masquerade table.
pub fn install(table: &str, bridge: &str, subnet: Subnet) -> Result<(), String> {
    apply(&masquerade_ruleset(table, bridge, subnet))
}

/// Deletes the node's table; an absent one is nothing to do.
pub fn remove(table: &str) -> Result<(), String> {
    if !exists(table) {
        return Ok(());
    }
    apply(&format!("delete table ip {table}\n"))
}

/// Host-mode published ports, in the node's own table: a map from
/// (protocol, port) to a task's (address, target port) on the gateway
/// bridge, used for connections to any of the node's addresses from
/// elsewhere (prerouting) and from the node itself (output). The DNAT
/// keeps the client's address; replies go back through the node's
/// conntrack, so they are never masqueraded.
pub fn ports_ruleset(table: &str) -> String {
    [
        format!("table ip {table}"),
        format!("delete table ip {table}"),
        format!("table ip {table} {{"),
        "\tmap published {\n\t\ttype inet_proto . inet_service : ipv4_addr . inet_service\n\t}".to_string(),
        "\tchain prerouting {".to_string(),
        "\t\ttype nat hook prerouting priority -100; policy accept;".to_string(),
        "\t\tfib daddr type local dnat ip addr . port to meta l4proto . th dport map @published".to_string(),
        "\t}".to_string(),
        "\tchain output {".to_string(),
        "\t\ttype nat hook output priority -100; policy accept;".to_string(),
        "\t\tfib daddr type local dnat ip addr . port to meta l4proto . th dport map @published".to_string(),
        "\t}".to_string(),
        "}\n".to_string(),
    ]
    .join("\n")
}

/// One published port: (protocol, published port) -> (address, target port).
pub type Published = ((String, u32), (std::net::Ipv4Addr, u32));

/// The element changes that take the map from `have` to `want`.
pub fn ports_changes(table: &str, have: &[Published], want: &[Published]) -> String {
    let mut s = String::new();
    for ((proto, port), _) in have.iter().filter(|h| !want.contains(h)) {
        s.push_str(&format!("delete element ip {table} published {{ {proto} . {port} }}\n"));
    }
    for ((proto, port), (addr, target)) in want.iter().filter(|w| !have.contains(w)) {
        s.push_str(&format!("add element ip {table} published {{ {proto} . {port} : {addr} . {target} }}\n"));
    }
    s
}

/// Applies nft text (tables, elements) in the daemon's namespace, through
/// the daemon's kept nftables context (about 0.1 ms an update, where an
/// `nft` process costs 12-18 ms).
pub fn apply(text: &str) -> Result<(), String> {
    shoal_overlay::nftables::run_in_own_namespace(text)
}

pub fn exists(table: &str) -> bool {
    Command::new("nft")
        .args(["list", "table", "ip", table])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_ports_change_by_element() {
        let a: Published = (("tcp".into(), 8080), ("172.18.0.2".parse().unwrap(), 80));
        let b: Published = (("udp".into(), 53), ("172.18.0.3".parse().unwrap(), 53));
        assert_eq!(ports_changes("t", &[], std::slice::from_ref(&a)), "add element ip t published { tcp . 8080 : 172.18.0.2 . 80 }\n");
        assert_eq!(ports_changes("t", &[a.clone(), b.clone()], std::slice::from_ref(&b)), "delete element ip t published { tcp . 8080 }\n");
        assert_eq!(ports_changes("t", std::slice::from_ref(&b), std::slice::from_ref(&b)), "");
        assert!(ports_ruleset("t").contains("fib daddr type local dnat ip addr . port to meta l4proto . th dport map @published"));
    }

    #[test]
    fn ruleset_text() {
        let r = masquerade_ruleset("shoal-abc123", "sgw-abc123", "172.18.0.0/24".parse().unwrap());
        assert!(r.starts_with("table ip shoal-abc123\ndelete table ip shoal-abc123\n"), "{r}");
        assert!(r.contains("type nat hook postrouting priority srcnat; policy accept;"), "{r}");
        assert!(r.contains("ip saddr 172.18.0.0/24 oifname != \"sgw-abc123\" masquerade"), "{r}");
    }
}
