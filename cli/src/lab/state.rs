//! The lab's plan and its on-disk record (`/run/shoal/lab/<lab>/state.json`).
//!
//! Everything here is pure or plain file I/O: the layout of names, addresses and
//! paths is decided by [`plan`], and the record is written before anything is
//! created so that `lab down` can always find what a (half-failed) `up` made.

use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Runtime files of every lab (state, sockets); on tmpfs.
pub const RUN_ROOT: &str = "/run/shoal/lab";
/// Persistent files of every lab (daemon state dirs, logs).
pub const DATA_ROOT: &str = "/var/lib/shoal/lab";
/// The lab network; host i (1-based) gets `.(10+i)`.
pub const SUBNET_PREFIX: &str = "192.168.77";
pub const PREFIX_LEN: u8 = 24;
/// Addresses .11 ..= .254.
pub const MAX_NODES: usize = 244;
/// The bridge inside the switch namespace.
pub const BRIDGE: &str = "br0";
/// The interface name inside each host namespace.
pub const HOST_IF: &str = "eth0";
/// Swarm cluster port the joiners dial.
pub const SWARM_PORT: u16 = 2377;
/// Longest lab name: keeps socket paths far below the 108-byte sun_path limit.
pub const MAX_LAB_NAME: usize = 32;

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Manager,
    Worker,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Manager => "manager",
            Role::Worker => "worker",
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct NodeState {
    pub name: String,
    pub role: Role,
    /// IPv4 address of eth0, without prefix length.
    pub addr: String,
    /// The host's network namespace.
    pub netns: String,
    /// The switch-side end of the host's veth pair (inside the switch namespace).
    pub switch_veth: String,
    pub socket: PathBuf,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    /// PID of the daemon we last started; None when it is known to be stopped.
    #[serde(default)]
    pub pid: Option<u32>,
    /// The switch-side veth is down.
    #[serde(default)]
    pub partitioned: bool,
    /// Registries the daemon reaches over plain HTTP (`lab up --insecure-registry`).
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Where the daemon serves Prometheus metrics (`lab up --metrics-port`).
    #[serde(default)]
    pub metrics_addr: Option<String>,
    /// The daemon runs with `--no-live-restore` (`lab up --no-live-restore`).
    #[serde(default)]
    pub no_live_restore: bool,
    /// The daemon's `--data-path-key-rotation` (`lab up --data-path-key-rotation`).
    #[serde(default)]
    pub data_path_key_rotation: Option<String>,
}

impl NodeState {
    /// `unix://<socket>`, what `-H` / `SHOAL_HOST` take.
    pub fn host_url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct LabState {
    pub name: String,
    pub switch_netns: String,
    pub bridge: String,
    /// e.g. `192.168.77.0/24`
    pub subnet: String,
    pub nodes: Vec<NodeState>,
}

/// A lab name becomes part of namespace names and paths: keep it tame.
pub fn validate_lab_name(name: &str) -> Result<(), String> {
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let first_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if name.is_empty() || name.len() > MAX_LAB_NAME || !ok_chars || !first_ok {
        return Err(format!(
            "invalid lab name {name:?}: use 1 to {MAX_LAB_NAME} characters [a-zA-Z0-9_-], starting with a letter or digit"
        ));
    }
    Ok(())
}

pub fn run_dir(lab: &str) -> PathBuf {
    Path::new(RUN_ROOT).join(lab)
}

pub fn data_dir(lab: &str) -> PathBuf {
    Path::new(DATA_ROOT).join(lab)
}

pub fn state_path(lab: &str) -> PathBuf {
    run_dir(lab).join("state.json")
}

pub fn lock_path(lab: &str) -> PathBuf {
    run_dir(lab).join("lock")
}

pub fn switch_netns_name(lab: &str) -> String {
    format!("shoal-{lab}-sw")
}

pub fn host_netns_name(lab: &str, node: &str) -> String {
    format!("shoal-{lab}-{node}")
}

pub fn node_name(index: usize) -> String {
    format!("node-{index}")
}

/// Address of host `index` (1-based).
pub fn node_addr(index: usize) -> String {
    format!("{SUBNET_PREFIX}.{}", 10 + index)
}

/// Whether `netns` is one of the names lab `lab` would create: `shoal-<lab>-sw` or
/// `shoal-<lab>-node-<n>`. Exact, so lab `a` never claims lab `a-b`'s namespaces.
pub fn is_lab_netns(lab: &str, netns: &str) -> bool {
    let Some(rest) = netns.strip_prefix("shoal-").and_then(|r| r.strip_prefix(lab)).and_then(|r| r.strip_prefix('-')) else {
        return false;
    };
    if rest == "sw" {
        return true;
    }
    match rest.strip_prefix("node-") {
        Some(n) => !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

/// Lay out a lab: managers first, then workers.
pub fn plan(lab: &str, managers: usize, workers: usize) -> Result<LabState, String> {
    validate_lab_name(lab)?;
    if managers == 0 {
        return Err("a lab needs at least one manager (--managers 1 or more)".into());
    }
    let total =
        managers.checked_add(workers).filter(|t| *t <= MAX_NODES).ok_or_else(|| format!("a lab holds at most {MAX_NODES} nodes"))?;
    let nodes = (1..=total)
        .map(|i| {
            let name = node_name(i);
            let node_run = run_dir(lab).join(&name);
            let node_data = data_dir(lab).join(&name);
            NodeState {
                role: if i <= managers { Role::Manager } else { Role::Worker },
                addr: node_addr(i),
                netns: host_netns_name(lab, &name),
                switch_veth: format!("v-{name}"),
                socket: node_run.join("shoald.sock"),
                log: node_data.join("shoald.log"),
                data_dir: node_data,
                pid: None,
                partitioned: false,
                insecure_registries: Vec::new(),
                metrics_addr: None,
                no_live_restore: false,
                data_path_key_rotation: None,
                name,
            }
        })
        .collect();
    Ok(LabState {
        name: lab.to_string(),
        switch_netns: switch_netns_name(lab),
        bridge: BRIDGE.to_string(),
        subnet: format!("{SUBNET_PREFIX}.0/{PREFIX_LEN}"),
        nodes,
    })
}

impl LabState {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("lab state serializes")
    }

    pub fn from_json(text: &str) -> Result<LabState, String> {
        serde_json::from_str(text).map_err(|e| format!("corrupt lab state: {e}"))
    }

    /// The lab's state, or None when it has no state file.
    pub fn load(lab: &str) -> Result<Option<LabState>, String> {
        let path = state_path(lab);
        match fs::read_to_string(&path) {
            Ok(text) => LabState::from_json(&text).map(Some).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// The lab's state, or an error telling the user how to make one.
    pub fn load_existing(lab: &str) -> Result<LabState, String> {
        validate_lab_name(lab)?;
        match LabState::load(lab)? {
            Some(s) => Ok(s),
            None => {
                let others: Vec<String> = list_labs().into_iter().filter(|l| l != lab).collect();
                let hint = if others.is_empty() {
                    String::new()
                } else {
                    format!(" (existing labs: {}; choose one with --name)", others.join(", "))
                };
                Err(format!("lab {lab} does not exist; start it with 'shoal lab up --name {lab}'{hint}"))
            }
        }
    }

    /// Write atomically (temp file + rename), so readers never see half a file.
    pub fn save(&self) -> Result<(), String> {
        let path = state_path(&self.name);
        let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(self.to_json().as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            format!("cannot write {}: {e}", path.display())
        })
    }

    pub fn node(&self, name: &str) -> Result<&NodeState, String> {
        self.nodes.iter().find(|n| n.name == name).ok_or_else(|| self.no_such_node(name))
    }

    pub fn node_mut(&mut self, name: &str) -> Result<&mut NodeState, String> {
        let err = self.no_such_node(name);
        self.nodes.iter_mut().find(|n| n.name == name).ok_or(err)
    }

    fn no_such_node(&self, name: &str) -> String {
        let names: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
        format!("lab {} has no node {name:?} (nodes: {})", self.name, names.join(", "))
    }
}

/// Names of labs that have a state file.
pub fn list_labs() -> Vec<String> {
    let mut labs: Vec<String> = fs::read_dir(RUN_ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("state.json").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    labs.sort();
    labs
}

/// An exclusive advisory lock on a lab (flock on `<run dir>/lock`), so that two
/// `shoal lab` commands do not interleave their read-modify-write of the state.
pub struct LabLock {
    _lock: nix::fcntl::Flock<fs::File>,
}

impl LabLock {
    pub fn acquire(lab: &str) -> Result<LabLock, String> {
        let path = lock_path(lab);
        let mut file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        loop {
            match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive) {
                Ok(lock) => return Ok(LabLock { _lock: lock }),
                Err((f, nix::errno::Errno::EINTR)) => file = f,
                Err((_, e)) => return Err(format!("cannot lock {}: {}", path.display(), std::io::Error::from(e))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_lays_out_managers_first() {
        let s = plan("lab", 2, 1).unwrap();
        assert_eq!(s.switch_netns, "shoal-lab-sw");
        assert_eq!(s.subnet, "192.168.77.0/24");
        let names: Vec<_> = s.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["node-1", "node-2", "node-3"]);
        let roles: Vec<_> = s.nodes.iter().map(|n| n.role).collect();
        assert_eq!(roles, [Role::Manager, Role::Manager, Role::Worker]);
        let n3 = &s.nodes[2];
        assert_eq!(n3.addr, "192.168.77.13");
        assert_eq!(n3.netns, "shoal-lab-node-3");
        assert_eq!(n3.switch_veth, "v-node-3");
        assert_eq!(n3.socket, Path::new("/run/shoal/lab/lab/node-3/shoald.sock"));
        assert_eq!(n3.data_dir, Path::new("/var/lib/shoal/lab/lab/node-3"));
        assert_eq!(n3.log, Path::new("/var/lib/shoal/lab/lab/node-3/shoald.log"));
        assert_eq!(n3.host_url(), "unix:///run/shoal/lab/lab/node-3/shoald.sock");
    }

    #[test]
    fn addresses() {
        assert_eq!(node_addr(1), "192.168.77.11");
        assert_eq!(node_addr(MAX_NODES), "192.168.77.254");
        assert!(plan("lab", 1, MAX_NODES - 1).is_ok());
        assert!(plan("lab", 1, MAX_NODES).is_err());
        assert!(plan("lab", 0, 3).is_err());
        assert!(plan("lab", usize::MAX, usize::MAX).is_err());
    }

    #[test]
    fn names_stay_within_limits() {
        let long = "a".repeat(MAX_LAB_NAME);
        let s = plan(&long, 1, MAX_NODES - 1).unwrap();
        for n in &s.nodes {
            assert!(n.socket.as_os_str().len() < 108);
            assert!(n.switch_veth.len() <= 15, "{}", n.switch_veth);
        }
    }

    #[test]
    fn lab_names() {
        for ok in ["lab", "a", "test-1", "x_y", "9"] {
            assert!(validate_lab_name(ok).is_ok(), "{ok}");
        }
        let too_long = "a".repeat(MAX_LAB_NAME + 1);
        for bad in ["", "-a", "a/b", "a b", "..", "a.b", too_long.as_str()] {
            assert!(validate_lab_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lab_netns_matching_is_exact() {
        assert!(is_lab_netns("a", "shoal-a-sw"));
        assert!(is_lab_netns("a", "shoal-a-node-1"));
        assert!(is_lab_netns("a", "shoal-a-node-12"));
        assert!(!is_lab_netns("a", "shoal-a-b-sw"));
        assert!(!is_lab_netns("a", "shoal-a-b-node-1"));
        assert!(!is_lab_netns("a", "shoal-a-node-"));
        assert!(!is_lab_netns("a", "shoal-a-node-x"));
        assert!(!is_lab_netns("a", "shoal-ab-sw"));
        assert!(!is_lab_netns("a", "other"));
        assert!(is_lab_netns("a-b", "shoal-a-b-sw"));
        assert!(!is_lab_netns("a-node", "shoal-a-node-1"));
    }

    #[test]
    fn state_round_trip() {
        let mut s = plan("t", 1, 2).unwrap();
        s.nodes[1].pid = Some(4242);
        s.nodes[2].partitioned = true;
        let back = LabState::from_json(&s.to_json()).unwrap();
        assert_eq!(back, s);
        let v: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(v["nodes"][0]["role"], "manager");
        assert_eq!(v["nodes"][1]["pid"], 4242);
        assert!(LabState::from_json("{").is_err());
    }

    #[test]
    fn state_missing_optional_fields() {
        let mut v: serde_json::Value = serde_json::from_str(&plan("t", 1, 0).unwrap().to_json()).unwrap();
        let node = v["nodes"][0].as_object_mut().unwrap();
        node.remove("pid");
        node.remove("partitioned");
        let back = LabState::from_json(&v.to_string()).unwrap();
        assert_eq!(back.nodes[0].pid, None);
        assert!(!back.nodes[0].partitioned);
    }

    #[test]
    fn node_lookup() {
        let s = plan("t", 1, 1).unwrap();
        assert_eq!(s.node("node-2").unwrap().role, Role::Worker);
        let err = s.node("node-9").unwrap_err();
        assert!(err.contains("node-1, node-2"), "{err}");
    }
}
