//! Network namespaces and links, through iproute2's `ip` command.
//!
//! Layout of a lab: a switch namespace holding bridge `br0`, and one namespace per
//! host whose `eth0` is one end of a veth pair; the other end lives in the switch
//! namespace, enslaved to the bridge. The pair is created with both ends placed
//! straight into their namespaces (`ip link add ... netns A type veth peer ...
//! netns B`), so no interface ever appears in the root namespace, and names cannot
//! clash with the machine's own interfaces.

use super::state::{LabState, NodeState, HOST_IF, PREFIX_LEN};
use std::process::Command;

/// Run `ip ARGS`, returning stdout; on failure an error with the command and stderr.
pub fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip").args(args).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            "the 'ip' command (iproute2) is not installed; shoal lab needs it".to_string()
        } else {
            format!("cannot run ip: {e}")
        }
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("'ip {}' failed ({}): {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Whether an `ip` error only says that the thing is already gone.
fn is_missing(err: &str) -> bool {
    let e = err.to_ascii_lowercase();
    e.contains("no such file") || e.contains("cannot find") || e.contains("does not exist")
}

/// Names from `ip netns list` output (`name (id: 3)` or just `name`).
pub fn parse_netns_list(out: &str) -> Vec<String> {
    out.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_string).collect()
}

pub fn list() -> Result<Vec<String>, String> {
    ip(&["netns", "list"]).map(|o| parse_netns_list(&o))
}

pub fn exists(name: &str) -> bool {
    std::path::Path::new("/run/netns").join(name).exists()
}

pub fn add(name: &str) -> Result<(), String> {
    ip(&["netns", "add", name]).map(|_| ())
}

/// Delete a namespace; a missing one is not an error.
pub fn delete(name: &str) -> Result<(), String> {
    match ip(&["netns", "del", name]) {
        Err(e) if is_missing(&e) || !exists(name) => Ok(()),
        r => r.map(|_| ()),
    }
}

/// PIDs of processes whose network namespace is `name`.
pub fn pids(name: &str) -> Vec<u32> {
    ip(&["netns", "pids", name]).map(|o| o.split_whitespace().filter_map(|p| p.parse().ok()).collect()).unwrap_or_default()
}

/// The switch: namespace with bridge `br0` up (no STP, so ports forward at once).
pub fn create_switch(lab: &LabState) -> Result<(), String> {
    let sw = lab.switch_netns.as_str();
    add(sw)?;
    ip(&["-n", sw, "link", "add", &lab.bridge, "type", "bridge", "stp_state", "0"])?;
    ip(&["-n", sw, "link", "set", &lab.bridge, "up"])?;
    Ok(())
}

/// The `ip` argument lists that wire one host to the switch (after `ip netns add`).
pub fn host_commands(lab: &LabState, node: &NodeState) -> Vec<Vec<String>> {
    let cidr = format!("{}/{}", node.addr, PREFIX_LEN);
    let v = |args: &[&str]| args.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        v(&["link", "add", HOST_IF, "netns", &node.netns, "type", "veth", "peer", "name", &node.switch_veth, "netns", &lab.switch_netns]),
        v(&["-n", &lab.switch_netns, "link", "set", &node.switch_veth, "master", &lab.bridge, "up"]),
        v(&["-n", &node.netns, "link", "set", "lo", "up"]),
        v(&["-n", &node.netns, "addr", "add", &cidr, "dev", HOST_IF]),
        v(&["-n", &node.netns, "link", "set", HOST_IF, "up"]),
    ]
}

pub fn create_host(lab: &LabState, node: &NodeState) -> Result<(), String> {
    add(&node.netns)?;
    for args in host_commands(lab, node) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ip(&args)?;
    }
    Ok(())
}

/// Connect (`up`) or cut off (`down`) a host at the switch.
pub fn set_switch_port(lab: &LabState, node: &NodeState, up: bool) -> Result<(), String> {
    let state = if up { "up" } else { "down" };
    ip(&["-n", &lab.switch_netns, "link", "set", &node.switch_veth, state]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::state::plan;

    #[test]
    fn netns_list_parsing() {
        let out = "shoal-lab-node-2 (id: 2)\nshoal-lab-sw (id: 0)\nplain\n\n";
        assert_eq!(parse_netns_list(out), ["shoal-lab-node-2", "shoal-lab-sw", "plain"]);
    }

    #[test]
    fn host_wiring_commands() {
        let lab = plan("lab", 1, 1).unwrap();
        let cmds = host_commands(&lab, &lab.nodes[1]);
        let joined: Vec<String> = cmds.iter().map(|c| c.join(" ")).collect();
        assert_eq!(
            joined,
            [
                "link add eth0 netns shoal-lab-node-2 type veth peer name v-node-2 netns shoal-lab-sw",
                "-n shoal-lab-sw link set v-node-2 master br0 up",
                "-n shoal-lab-node-2 link set lo up",
                "-n shoal-lab-node-2 addr add 192.168.77.12/24 dev eth0",
                "-n shoal-lab-node-2 link set eth0 up",
            ]
        );
    }

    #[test]
    fn missing_errors() {
        assert!(is_missing("Cannot remove namespace file \"/run/netns/x\": No such file or directory"));
        assert!(is_missing("Cannot find device \"v-node-1\""));
        assert!(!is_missing("Operation not permitted"));
    }
}
