//! Reaping the zombies a child subreaper inherits and nobody else waits for.
//!
//! The daemon's own children are waited for by the code that started them
//! (`std::process`, tokio, an `ExitWatch`), so the reaper must never take
//! one of those: that code would then get ECHILD instead of an exit code.
//! It reaps a zombie child only when all of these hold:
//!
//! - no `ExitWatch` waits for it;
//! - it is one of runc's own processes (`runc:[0:PARENT]`, `runc:[1:CHILD]`,
//!   `runc:[2:INIT]`: nothing here runs a program by those names), or it
//!   lives in another pid namespace than ours and is not that namespace's
//!   init (a process left in a container by a `runc exec` that died);
//! - it was already a zombie at the previous scan, a second earlier: a
//!   process whose waiter is about to take it (an exec's pid is known only
//!   once `runc exec` returns) is never raced.
//!
//! Scans read the children lists of our threads (`/proc/self/task/*/children`)
//! and, for each zombie, its `stat` and `status`: a few files per child, once
//! a second, nothing when there are no zombies.

use std::collections::BTreeSet;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

/// How often the reaper looks (and so the longest a stray zombie lives:
/// two scans).
pub const SCAN_EVERY: Duration = Duration::from_secs(1);

/// One zombie child, as /proc shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Zombie {
    pub pid: i32,
    pub comm: String,
    /// Its pid in each pid namespace, from ours inwards (`NSpid`).
    pub ns_pids: Vec<i32>,
    /// Whether it is in another pid namespace than ours.
    pub other_ns: bool,
}

/// Whether nobody but the reaper will ever wait for `z`.
pub fn is_stray(z: &Zombie, watched: &BTreeSet<i32>) -> bool {
    if watched.contains(&z.pid) {
        return false;
    }
    if z.comm.starts_with("runc:[") {
        return true;
    }
    // A container's init is watched by its ExitWatch; one not watched yet
    // (its `runc run` just returned) must not be taken either.
    z.other_ns && z.ns_pids.last().is_some_and(|p| *p != 1)
}

/// The reaper's memory between scans: the stray zombies seen last time.
#[derive(Default)]
pub struct Reaper {
    seen: BTreeSet<i32>,
}

impl Reaper {
    /// One scan: reaps the strays seen twice in a row; how many.
    pub fn scan_and_reap(&mut self) -> usize {
        let strays: BTreeSet<i32> = {
            let watched = super::supervise::watched().lock().unwrap().clone();
            zombie_children().into_iter().filter(|z| is_stray(z, &watched)).map(|z| z.pid).collect()
        };
        let mut reaped = 0;
        for pid in strays.intersection(&self.seen) {
            // Checked again under the lock: an ExitWatch started since the
            // scan owns it now.
            if super::supervise::watched().lock().unwrap().contains(pid) {
                continue;
            }
            let pid = Pid::from_raw(*pid);
            // EINVAL (which waitpid itself cannot give here): nix reaped it
            // but has no name for the signal that killed it.
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(status) if status.pid() == Some(pid) => reaped += 1,
                Err(Errno::EINVAL) => reaped += 1,
                _ => {}
            }
        }
        if reaped > 0 {
            tracing::debug!("reaped {reaped} orphaned process(es)");
        }
        self.seen = strays;
        reaped
    }
}

/// Our zombie children.
fn zombie_children() -> Vec<Zombie> {
    let our_ns = std::fs::read_link("/proc/self/ns/pid").ok();
    let mut out = Vec::new();
    for pid in children() {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some((comm, state)) = parse_stat(&stat) else { continue };
        if state != 'Z' {
            continue;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
        out.push(Zombie { pid, comm, ns_pids: ns_pids(&status), other_ns: ns.is_some() && ns != our_ns });
    }
    out
}

/// The pids of our children: every thread's `children` list, or (kernels
/// without it) every process whose parent we are.
fn children() -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    let me = std::process::id() as i32;
    let mut listed = false;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
                listed = true;
                out.extend(text.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
            }
        }
    }
    if !listed {
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
            let ppid = std::fs::read_to_string(e.path().join("stat")).ok().and_then(|s| parse_ppid(&s));
            if ppid == Some(me) {
                out.insert(pid);
            }
        }
    }
    out
}

/// (comm, state) from a `/proc/<pid>/stat` line. The comm is between the
/// first `(` and the last `)`: it may hold spaces and parentheses.
fn parse_stat(stat: &str) -> Option<(String, char)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let state = stat.get(close + 1..)?.split_whitespace().next()?.chars().next()?;
    Some((comm, state))
}

fn parse_ppid(stat: &str) -> Option<i32> {
    stat.get(stat.rfind(')')? + 1..)?.split_whitespace().nth(1)?.parse().ok()
}

/// `NSpid` of a `/proc/<pid>/status`.
fn ns_pids(status: &str) -> Vec<i32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|v| v.split_whitespace().filter_map(|p| p.parse().ok()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zombie(pid: i32, comm: &str, ns_pids: &[i32], other_ns: bool) -> Zombie {
        Zombie { pid, comm: comm.into(), ns_pids: ns_pids.to_vec(), other_ns }
    }

    #[test]
    fn only_processes_nobody_waits_for_are_strays() {
        let none = BTreeSet::new();
        assert!(is_stray(&zombie(10, "runc:[1:CHILD]", &[10], false), &none), "runc's intermediate");
        assert!(is_stray(&zombie(11, "runc:[2:INIT]", &[11, 617], true), &none), "an exec whose runc died");
        assert!(is_stray(&zombie(12, "wget", &[12, 40], true), &none), "a probe left in a container");
        assert!(!is_stray(&zombie(13, "httpd", &[13, 1], true), &none), "a container's init: its ExitWatch takes it");
        assert!(!is_stray(&zombie(14, "runc", &[14], false), &none), "our own `runc` child: its Command waits");
        assert!(!is_stray(&zombie(15, "nft", &[15], false), &none));
        assert!(!is_stray(&zombie(16, "sh", &[16, 5], true), &BTreeSet::from([16])), "a TTY exec an ExitWatch waits for");
    }

    #[test]
    fn proc_files_are_read_as_the_kernel_writes_them() {
        let stat = "22522 (runc:[2:INIT]) Z 13868 22522 13868 0 -1 4228164 0 0 0 0";
        assert_eq!(parse_stat(stat), Some(("runc:[2:INIT]".to_string(), 'Z')));
        assert_eq!(parse_ppid(stat), Some(13868));
        assert_eq!(parse_stat("7 (a) b) c) S 1 7"), Some(("a) b) c".to_string(), 'S')));
        assert_eq!(ns_pids("Name:\tx\nNSpid:\t22522\t617\nNSpgid:\t1\n"), vec![22522, 617]);
        assert_eq!(ns_pids(""), Vec::<i32>::new());
    }

    /// A real orphan named as runc names its intermediate process, left to
    /// this (subreaper) process: gone after two scans, while a child that
    /// its own code waits for is left alone.
    #[test]
    fn a_real_orphan_is_reaped_and_a_waited_child_is_not() {
        super::super::supervise::become_subreaper().unwrap();
        // The subshell outlives its parent, so it is reparented to us, then
        // renames itself (a builtin: no exec) and exits as our zombie.
        let mut parent = std::process::Command::new("/bin/sh")
            .args(["-c", "(sleep 0.2; printf 'runc:[1:CHILD]' > /proc/self/comm) & echo $!"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = String::new();
        std::io::Read::read_to_string(parent.stdout.as_mut().unwrap(), &mut out).unwrap();
        let orphan: i32 = out.trim().parse().unwrap();
        parent.wait().unwrap();
        let mut kept = std::process::Command::new("/bin/sh").args(["-c", "exit 3"]).spawn().unwrap();

        let mut reaper = Reaper::default();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::path::Path::new(&format!("/proc/{orphan}")).exists() {
            assert!(std::time::Instant::now() < deadline, "orphan {orphan} was never reaped");
            reaper.scan_and_reap();
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(kept.wait().unwrap().code(), Some(3), "the waited child's exit code reached its waiter");
    }
}
