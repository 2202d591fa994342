//! Outbound masquerade for the gateway bridge, in an nftables table the
//! node owns (`table ip shoal-<key>`), through the `nft` binary. One table
//! per node keeps several daemons on a host (or in one namespace) apart,
//! and deleting the table removes every rule we made at once.

use std::io::Write;
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

fn nft(args: &[&str], stdin: Option<&str>) -> Result<(), String> {
    let mut cmd = Command::new("nft");
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            "the 'nft' command (nftables) is not installed; the gateway bridge's masquerade needs it".to_string()
        } else {
            format!("cannot run nft: {e}")
        }
    })?;
    if let (Some(text), Some(mut w)) = (stdin, child.stdin.take()) {
        w.write_all(text.as_bytes()).map_err(|e| format!("writing to nft: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("running nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("'nft {}' failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Installs (or replaces) the node's masquerade table.
pub fn install(table: &str, bridge: &str, subnet: Subnet) -> Result<(), String> {
    nft(&["-f", "-"], Some(&masquerade_ruleset(table, bridge, subnet)))
}

/// Deletes the node's table; an absent one is nothing to do.
pub fn remove(table: &str) -> Result<(), String> {
    if !exists(table) {
        return Ok(());
    }
    nft(&["delete", "table", "ip", table], None)
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
    fn ruleset_text() {
        let r = masquerade_ruleset("shoal-abc123", "sgw-abc123", "172.18.0.0/24".parse().unwrap());
        assert!(r.starts_with("table ip shoal-abc123\ndelete table ip shoal-abc123\n"), "{r}");
        assert!(r.contains("type nat hook postrouting priority srcnat; policy accept;"), "{r}");
        assert!(r.contains("ip saddr 172.18.0.0/24 oifname != \"sgw-abc123\" masquerade"), "{r}");
    }
}
