//! Tearing a lab down without leaving namespaces, mounts, files or processes.

use super::netns;
use super::process;
use super::state::{self, LabState};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long daemons get between SIGTERM and SIGKILL on `lab down`.
const DOWN_GRACE: Duration = Duration::from_secs(10);
/// The same for other processes left inside the lab's namespaces (`lab exec` shells).
const STRAY_GRACE: Duration = Duration::from_secs(3);

/// Remove lab `lab`: everything the state file names, plus anything that looks like
/// it belongs to the lab even without a state file. Safe to repeat.
pub fn down(lab: &str) -> Result<bool, String> {
    state::validate_lab_name(lab)?;
    let run_dir = state::run_dir(lab);
    let data_dir = state::data_dir(lab);
    let _lock = if run_dir.is_dir() { state::LabLock::acquire(lab).ok() } else { None };
    let saved = LabState::load(lab).unwrap_or_else(|e| {
        eprintln!("warning: {e}; cleaning up by name");
        None
    });
    let mut found_any = saved.is_some() || run_dir.exists() || data_dir.exists();
    let mut errors = Vec::new();

    // 1. Daemons: the recorded ones (verified) and any other with a state dir of this lab.
    let mut pids: Vec<u32> = saved.iter().flat_map(|s| s.nodes.iter()).filter_map(process::running_pid).collect();
    for pid in process::daemons_under(&data_dir) {
        if !pids.contains(&pid) {
            pids.push(pid);
        }
    }
    if !pids.is_empty() {
        found_any = true;
        eprintln!("Stopping {} daemon(s)...", pids.len());
        if let Err(e) = process::terminate(&pids, DOWN_GRACE) {
            errors.push(e);
        }
    }

    // 1b. Containers a killed daemon could not stop: each node keeps runc's
    // state under `<data dir>/<node>/runc`; delete what is listed there.
    remove_containers(&data_dir, &mut errors);

    // 1c. Task networking a killed daemon left: namespace mounts (outside
    // the lab's namespaces, so deleting those would not free them), then
    // the gateway bridge, task veths and nft table inside each host.
    let hosts: Vec<(PathBuf, String)> = saved.iter().flat_map(|s| s.nodes.iter()).map(|n| (n.data_dir.clone(), n.netns.clone())).collect();
    remove_networks(&data_dir, &hosts, &mut errors);

    // 2. Namespaces: recorded ones and any `shoal-<lab>-{sw,node-N}` that exists.
    let mut names: Vec<String> = Vec::new();
    if let Some(s) = &saved {
        names.extend(s.nodes.iter().map(|n| n.netns.clone()));
        names.push(s.switch_netns.clone());
    }
    match netns::list() {
        Ok(listed) => {
            for n in listed.into_iter().filter(|n| state::is_lab_netns(lab, n)) {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        Err(e) => errors.push(e),
    }
    // Hosts before the switch (their veths go with them), then the switch.
    names.sort_by_key(|n| n.ends_with("-sw"));
    let present: Vec<&String> = names.iter().filter(|n| netns::exists(n)).collect();
    if !present.is_empty() {
        found_any = true;
        // Whatever still runs inside (e.g. a `lab exec` shell) would keep a namespace alive.
        let strays: Vec<u32> = present.iter().flat_map(|n| netns::pids(n)).filter(|&p| p != std::process::id()).collect();
        if !strays.is_empty() {
            eprintln!("Stopping {} other process(es) inside the lab's namespaces...", strays.len());
            if let Err(e) = process::terminate(&strays, STRAY_GRACE) {
                errors.push(e);
            }
        }
        eprintln!("Deleting {} network namespace(s)...", present.len());
    }
    for n in &names {
        if let Err(e) = netns::delete(n) {
            errors.push(e);
        }
    }

    // 3. Files: first anything mounted below them (never delete through a mount).
    for dir in [&run_dir, &data_dir] {
        if let Err(e) = remove_tree(dir) {
            errors.push(e);
        }
    }
    release_netns_dir();

    if errors.is_empty() {
        Ok(found_any)
    } else {
        Err(format!(
            "lab {lab} was not removed completely:\n  {}\nrun 'shoal lab down --name {lab}' again after fixing the cause",
            errors.join("\n  ")
        ))
    }
}

/// Unmount everything below `dir` (deepest first), then delete it.
/// `runc --root <node>/runc list -q`, then `delete --force` each container
/// (which kills it). Absent runc or state is nothing to do.
fn remove_containers(data_dir: &Path, errors: &mut Vec<String>) {
    let Ok(nodes) = fs::read_dir(data_dir) else { return };
    for node in nodes.flatten() {
        let root = node.path().join("runc");
        if !root.is_dir() {
            continue;
        }
        kill_shims(&node.path().join("containers/bundles"));
        remove_containers_of(&root, errors);
        // The node's (now empty) parent cgroup, named in a marker file.
        if let Ok(parent) = fs::read_to_string(node.path().join("containers/cgroup-parent")) {
            let parent = parent.trim();
            if !parent.is_empty() && !parent.contains('/') && !parent.contains("..") {
                let cg = Path::new("/sys/fs/cgroup");
                let _ = fs::remove_dir(cg.join(parent));
                for h in fs::read_dir(cg).into_iter().flatten().flatten() {
                    let _ = fs::remove_dir(h.path().join(parent));
                }
            }
        }
    }
}

/// SIGKILL to each container's shim (`<bundle>/shim.json`, see
/// shoal-worker's `executor::shim`) that still runs: a shim outlives its
/// daemon, and must not write into the files being removed.
fn kill_shims(bundles: &Path) {
    #[derive(serde::Deserialize)]
    struct Shim {
        shim_pid: i32,
        shim_start: u64,
    }
    for b in fs::read_dir(bundles).into_iter().flatten().flatten() {
        let Ok(text) = fs::read(b.path().join("shim.json")) else { continue };
        let Ok(shim) = serde_json::from_slice::<Shim>(&text) else { continue };
        // The same process only if its start time matches (pids are reused).
        let stat = fs::read_to_string(format!("/proc/{}/stat", shim.shim_pid)).unwrap_or_default();
        let start = stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().nth(19)).and_then(|t| t.parse::<u64>().ok());
        if shim.shim_pid > 0 && start == Some(shim.shim_start) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(shim.shim_pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// What a node's `shoald` records about the networking it made
/// (`<data dir>/network/node.json`, see shoal-worker's `network` module).
#[derive(serde::Deserialize)]
struct NetworkMarker {
    bridge: String,
    nft_table: String,
    netns_dir: PathBuf,
    veth_prefix: String,
}

/// For each node with a network marker: unmount and delete its task
/// namespaces; inside its host namespace (`hosts`: data dir → namespace),
/// delete its veths, bridge and nft table.
fn remove_networks(data_dir: &Path, hosts: &[(PathBuf, String)], errors: &mut Vec<String>) {
    let Ok(nodes) = fs::read_dir(data_dir) else { return };
    for node in nodes.flatten() {
        let Ok(text) = fs::read(node.path().join("network/node.json")) else { continue };
        let Ok(m) = serde_json::from_slice::<NetworkMarker>(&text) else { continue };
        // Only what the daemon named as its own: a dir under /run/shoal.
        if m.netns_dir.starts_with("/run/shoal/") && !m.netns_dir.components().any(|c| c.as_os_str() == "..") {
            for e in fs::read_dir(&m.netns_dir).into_iter().flatten().flatten() {
                if let Err(err) = umount_detach(&e.path()) {
                    errors.push(err);
                } else {
                    let _ = fs::remove_file(e.path());
                }
            }
            let _ = fs::remove_dir(&m.netns_dir);
            if let Some(parent) = m.netns_dir.parent() {
                let _ = fs::remove_dir(parent);
            }
        }
        let Some((_, ns)) = hosts.iter().find(|(d, _)| *d == node.path()) else { continue };
        if !netns::exists(ns) {
            continue;
        }
        if let Ok(out) = netns::ip(&["-n", ns, "-o", "link", "show"]) {
            for name in link_names(&out).into_iter().filter(|n| n.starts_with(&m.veth_prefix) || *n == m.bridge) {
                let _ = netns::ip(&["-n", ns, "link", "del", &name]);
            }
        }
        let nft = |args: &[&str]| std::process::Command::new("ip").args(["netns", "exec", ns, "nft"]).args(args).output();
        // The masquerade table and the host-mode ports table beside it.
        for table in [m.nft_table.clone(), format!("{}-pub", m.nft_table), format!("{}-mesh", m.nft_table)] {
            if nft(&["list", "table", "ip", &table]).map(|o| o.status.success()).unwrap_or(false) {
                match nft(&["delete", "table", "ip", &table]) {
                    Ok(o) if o.status.success() => {}
                    Ok(o) => errors.push(format!("nft delete table ip {table}: {}", String::from_utf8_lossy(&o.stderr).trim())),
                    Err(e) => errors.push(format!("nft delete table ip {table}: {e}")),
                }
            }
        }
    }
}

/// Interface names from `ip -o link show` (`3: name@peer: <...> ...`).
pub fn link_names(out: &str) -> Vec<String> {
    out.lines().filter_map(|l| l.split(": ").nth(1)).map(|n| n.split('@').next().unwrap_or(n).to_string()).collect()
}

fn remove_containers_of(root: &Path, errors: &mut Vec<String>) {
    let runc = |args: &[&str]| std::process::Command::new("runc").arg("--root").arg(root).args(args).output();
    let Ok(out) = runc(&["list", "-q"]) else { return };
    for id in String::from_utf8_lossy(&out.stdout).lines().map(str::trim).filter(|l| !l.is_empty()) {
        match runc(&["delete", "--force", id]) {
            Ok(o) if o.status.success() => {}
            Ok(o) => errors.push(format!("runc delete {id}: {}", String::from_utf8_lossy(&o.stderr).trim())),
            Err(e) => errors.push(format!("runc delete {id}: {e}")),
        }
    }
}

fn remove_tree(dir: &Path) -> Result<(), String> {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut below: Vec<PathBuf> = mount_points(&mounts).into_iter().filter(|m| m.starts_with(dir)).collect();
    below.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    below.dedup();
    for m in &below {
        umount_detach(m)?;
    }
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot remove {}: {e}", dir.display())),
    }
}

fn umount_detach(path: &Path) -> Result<(), String> {
    use nix::errno::Errno;
    match nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH) {
        // EINVAL, ENOENT: not (or no longer) a mount point.
        Ok(()) | Err(Errno::EINVAL | Errno::ENOENT) => Ok(()),
        Err(e) => Err(format!("cannot unmount {}: {}", path.display(), std::io::Error::from(e))),
    }
}

/// Mount points (field 5) of a mountinfo text, with octal escapes decoded.
pub fn mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo.lines().filter_map(|l| l.split(' ').nth(4)).map(|m| PathBuf::from(unescape_mount_path(m))).collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
pub fn unescape_mount_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') as u32 * 64 + (b[i + 2] - b'0') as u32 * 8 + (b[i + 3] - b'0') as u32;
            if v <= 255 {
                out.push(v as u8);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `ip netns add` turns /run/netns into a shared bind mount of itself the first time
/// it runs. Once no namespace is left there, undo that so no mount stays behind.
fn release_netns_dir() {
    let dir = Path::new("/run/netns");
    let empty = fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(false);
    let mounted = fs::read_to_string("/proc/self/mountinfo").map(|m| mount_points(&m).iter().any(|p| p == dir)).unwrap_or(false);
    if empty && mounted {
        // Not detached: if someone just bound a new namespace there, this fails (EBUSY).
        let _ = nix::mount::umount2(dir, nix::mount::MntFlags::empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_parsing() {
        let info = "22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
                    90 22 0:4 net:[4026532] /run/netns/shoal-lab-sw rw shared:5 - nsfs nsfs rw\n\
                    91 22 0:50 / /var/lib/shoal/lab/lab/node-1/with\\040space rw - tmpfs tmpfs rw\n";
        let m = mount_points(info);
        assert_eq!(
            m,
            [PathBuf::from("/"), PathBuf::from("/run/netns/shoal-lab-sw"), PathBuf::from("/var/lib/shoal/lab/lab/node-1/with space"),]
        );
    }

    #[test]
    fn link_names_from_ip_output() {
        let out = "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue\n\
                   5: sgw-a1b2c3: <BROADCAST,MULTICAST,UP> mtu 1500\n\
                   7: vea1b2c30123abc@if2: <BROADCAST,MULTICAST,UP> mtu 1500 master sgw-a1b2c3\n";
        assert_eq!(link_names(out), ["lo", "sgw-a1b2c3", "vea1b2c30123abc"]);
    }

    #[test]
    fn unescaping() {
        assert_eq!(unescape_mount_path("a\\040b\\011c\\134d"), "a b\tc\\d");
        assert_eq!(unescape_mount_path("plain"), "plain");
        assert_eq!(unescape_mount_path("trail\\04"), "trail\\04");
        assert_eq!(unescape_mount_path("x\\999"), "x\\999");
    }

    #[test]
    fn remove_tree_removes_and_tolerates_missing() {
        let dir = std::env::temp_dir().join(format!("shoal-lab-test-{}", std::process::id()));
        fs::create_dir_all(dir.join("a/b")).unwrap();
        fs::write(dir.join("a/b/f"), "x").unwrap();
        remove_tree(&dir).unwrap();
        assert!(!dir.exists());
        remove_tree(&dir).unwrap();
    }
}
