//! Exit codes. A container started through its shim (`super::shim`) is
//! the shim's child, and its code comes from the shim: the daemon waits
//! for the shim (its own child) and reads the code the shim wrote, or,
//! for a shim a previous run of the daemon started, watches it through a
//! pidfd. A `-t`/`-i` container has no shim: the daemon is the child
//! subreaper, so when `runc run -d` returns the container's init process
//! has been reparented to us and `waitpid(pid)` yields its status.
//!
//! One waiting thread per process waited for (small stack): a blocking
//! `waitpid(pid)` on exactly that pid is the simplest correct form, needs no
//! event loop, and costs about one small stack (64 KiB reserved, a few
//! pages touched). A pidfd poller would save the threads but cannot reap
//! without `waitid(P_PIDFD)` plumbing; that can replace this later behind
//! the same `ExitWatch` API. We never wait on -1: other code reaps its own
//! children.
//!
//! A subreaper also inherits processes nobody waits for: runc's own
//! intermediate processes (`runc:[1:CHILD]`, one per `runc exec`, so one
//! per health probe) and anything whose `runc exec` died before it. Left
//! unreaped they fill the pid table, and a zombie inside a container's pid
//! namespace keeps that namespace's init from ever finishing its exit (it
//! waits in the kernel until every process of the namespace is reaped), so
//! the container cannot be stopped. `orphans` reaps exactly those.

use std::collections::BTreeSet;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, Once};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::logs::capture::CaptureDone;

/// Make this process the child subreaper (`PR_SET_CHILD_SUBREAPER`), and
/// start the thread that reaps the orphans this brings (see `orphans`).
/// The daemon calls it once at start, before starting containers.
pub fn become_subreaper() -> Result<(), String> {
    nix::sys::prctl::set_child_subreaper(true).map_err(|e| format!("prctl(PR_SET_CHILD_SUBREAPER): {}", std::io::Error::from(e)))?;
    static REAPER: Once = Once::new();
    REAPER.call_once(|| {
        let spawned = std::thread::Builder::new().name("orphan-reaper".into()).stack_size(128 * 1024).spawn(|| {
            let mut reaper = super::orphans::Reaper::default();
            loop {
                std::thread::sleep(super::orphans::SCAN_EVERY);
                reaper.scan_and_reap();
            }
        });
        if let Err(e) = spawned {
            tracing::error!("starting the orphan reaper: {e}");
        }
    });
    Ok(())
}

/// The pids an `ExitWatch` waits for: the orphan reaper leaves them alone.
pub(crate) fn watched() -> &'static Mutex<BTreeSet<i32>> {
    static WATCHED: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());
    &WATCHED
}

/// Docker's exit code of a wait status: the exit code, or 128 + signal.
pub fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

/// The eventual exit code of one process, shared between its waiting
/// thread and any number of readers.
#[derive(Clone, Debug)]
pub struct ExitWatch {
    inner: Arc<(Mutex<Option<i32>>, Condvar)>,
}

impl ExitWatch {
    /// Start a thread that reaps `pid` (which must be our child).
    pub fn spawn(pid: i32) -> Result<ExitWatch, String> {
        Self::spawn_then(pid, |code| code)
    }

    /// As [`ExitWatch::spawn`] for a container's shim (`super::shim`):
    /// the code is the one the shim wrote to `exit_file` (its own status
    /// only if it died before writing one), and `logs` is marked done, as
    /// the shim ends only once the output is written.
    pub fn spawn_shim(pid: i32, exit_file: PathBuf, logs: CaptureDone) -> Result<ExitWatch, String> {
        Self::spawn_then(pid, move |status| {
            logs.set();
            super::shim::read_exit(&exit_file).unwrap_or(status)
        })
    }

    /// A container's shim that a previous run of the daemon started: not
    /// our child, so its end is seen through a pidfd (`None` from
    /// `ShimRecord::open_if_alive`: it already ended). Then as
    /// [`ExitWatch::spawn_shim`].
    pub fn adopt_shim(pidfd: Option<OwnedFd>, exit_file: PathBuf, logs: CaptureDone) -> Result<ExitWatch, String> {
        let w = ExitWatch { inner: Arc::new((Mutex::new(None), Condvar::new())) };
        let w2 = w.clone();
        let finish = move || {
            logs.set();
            // A shim that died without writing the code (killed by hand):
            // nothing tells the container's code any more.
            w2.finish(super::shim::read_exit(&exit_file).unwrap_or(255));
        };
        let Some(fd) = pidfd else {
            finish();
            return Ok(w);
        };
        std::thread::Builder::new()
            .name("wait-adopted".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let mut p = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                // Readable once the process has ended; EINTR is tried again.
                while poll(&mut p, PollTimeout::NONE).is_err() {}
                finish();
            })
            .map_err(|e| format!("starting wait thread: {e}"))?;
        Ok(w)
    }

    fn spawn_then(pid: i32, then: impl FnOnce(i32) -> i32 + Send + 'static) -> Result<ExitWatch, String> {
        let w = ExitWatch { inner: Arc::new((Mutex::new(None), Condvar::new())) };
        let w2 = w.clone();
        watched().lock().unwrap().insert(pid);
        std::thread::Builder::new()
            .name(format!("wait-{pid}"))
            .stack_size(64 * 1024)
            .spawn(move || {
                let code = loop {
                    let mut status: libc::c_int = 0;
                    // libc, not nix: nix's waitpid reaps a process killed by a
                    // real-time signal, then fails (EINVAL: not in its Signal
                    // enum), and the 128 + n code would be lost.
                    // SAFETY: waitpid on one pid into a local status.
                    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
                    if r == pid {
                        break exit_code(status);
                    }
                    if Errno::last() == Errno::EINTR {
                        continue;
                    }
                    // ECHILD: not our child (no subreaper?) or already reaped.
                    break 255;
                };
                watched().lock().unwrap().remove(&pid);
                w2.finish(then(code));
            })
            .map_err(|e| {
                watched().lock().unwrap().remove(&pid);
                format!("starting wait thread: {e}")
            })?;
        Ok(w)
    }

    /// Records the exit code and wakes every waiter.
    fn finish(&self, code: i32) {
        let (m, cv) = &*self.inner;
        *m.lock().unwrap() = Some(code);
        cv.notify_all();
    }

    /// The exit code, if the process has ended.
    pub fn try_get(&self) -> Option<i32> {
        *self.inner.0.lock().unwrap()
    }

    /// Block until the process ends.
    pub fn wait(&self) -> i32 {
        let (m, cv) = &*self.inner;
        let mut g = m.lock().unwrap();
        loop {
            if let Some(c) = *g {
                return c;
            }
            g = cv.wait(g).unwrap();
        }
    }

    /// Block up to `timeout`; `None` if still running.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        let (m, cv) = &*self.inner;
        let mut g = m.lock().unwrap();
        loop {
            if let Some(c) = *g {
                return Some(c);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            g = cv.wait_timeout(g, deadline - now).unwrap().0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_like_docker() {
        assert_eq!(exit_code(3 << 8), 3);
        assert_eq!(exit_code(libc::SIGKILL), 137);
        assert_eq!(exit_code(libc::SIGTERM), 143);
    }

    #[test]
    #[allow(clippy::zombie_processes)] // reaped by ExitWatch's waitpid
    fn a_real_time_signal_gives_128_plus_its_number() {
        // Why the waitpid stays on libc: nix's cannot name signal 40.
        let child = std::process::Command::new("/bin/sh").args(["-c", "kill -40 $$"]).spawn().unwrap();
        let w = ExitWatch::spawn(child.id() as i32).unwrap();
        assert_eq!(w.wait_timeout(Duration::from_secs(10)), Some(168));
    }

    #[test]
    #[allow(clippy::zombie_processes)] // reaped by child.wait() below
    fn an_adopted_shim_is_seen_ending_through_its_pidfd() {
        let dir = std::env::temp_dir().join(format!("shoal-adopt-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let exit_file = dir.join(super::super::shim::EXIT_FILE);
        std::fs::write(&exit_file, "7").unwrap();
        let mut child = std::process::Command::new("sleep").arg("0.2").spawn().unwrap();
        let pid = child.id() as i32;
        let rec = super::super::shim::ShimRecord { shim_pid: pid, shim_start: super::super::shim::start_time(pid).unwrap(), pid: 1 };
        let pidfd = rec.open_if_alive().unwrap();
        assert!(pidfd.is_some());
        let logs = CaptureDone::default();
        let w = ExitWatch::adopt_shim(pidfd, exit_file, logs.clone()).unwrap();
        assert_eq!(w.wait_timeout(Duration::from_secs(10)), Some(7), "the code the shim wrote");
        assert!(logs.is_done());
        child.wait().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    #[allow(clippy::zombie_processes)] // reaped by ExitWatch's waitpid
    fn watches_a_child() {
        let child = std::process::Command::new("/bin/sh").args(["-c", "exit 5"]).spawn().unwrap();
        let w = ExitWatch::spawn(child.id() as i32).unwrap();
        assert_eq!(w.wait_timeout(Duration::from_secs(10)), Some(5));
        assert_eq!(w.wait(), 5);
    }
}
