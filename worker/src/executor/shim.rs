//! A small process per container that outlives the daemon: it starts the
//! container (`runc run -d`), holds the read ends of its stdout and stderr
//! and writes them to the json-file log, and, being the container's child
//! subreaper, collects its exit code and writes it to `<bundle>/exit`.
//!
//! Why a process and not the daemon itself: when shoald stops or crashes,
//! a pipe whose reader was shoald breaks (the container's next write dies
//! of SIGPIPE, or blocks once the pipe is full if it ignores the signal),
//! and the container's exit code goes to whoever inherits it. With a shim
//! the container keeps running, its output keeps reaching the log, and a
//! daemon started again finds it through `<bundle>/shim.json` and learns
//! how it ended from `<bundle>/exit` (`Executor::adopt`).
//!
//! The shim is `shoal-shim <runc> <runc root> <id> <bundle> <log>`
//! (`worker/src/bin/shoal-shim.rs`, installed beside shoald), or shoald
//! itself as `shoald container-shim ...` where that binary is missing. It
//! runs in a session of its own, so a signal to the daemon's process
//! group does not reach it. It tells the daemon the
//! outcome of the start on fd 3 (`ok <pid>` or `err <message>`), then
//! closes it. It holds one capture thread and about a megabyte of memory
//! (figure in docs/benchmarks.md).
//!
//! A terminal (`-t`) or an open stdin (`-i`) needs the daemon holding the
//! other end; such containers are started without a shim and do not
//! survive a daemon restart.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::waitpid;
use nix::unistd::{dup2_raw, setsid, Pid};
use serde::{Deserialize, Serialize};

use super::runc::Runc;

/// shoald's first argument that makes it a shim.
pub const ARG: &str = "container-shim";
/// In the bundle: the container's exit code, written by the shim when the
/// container has ended and its output is in the log.
pub const EXIT_FILE: &str = "exit";
/// In the bundle: the shim's identity, for a daemon started again.
pub const RECORD_FILE: &str = "shim.json";
/// In the bundle: what the shim itself had to say (its stderr).
const LOG_FILE: &str = "shim.log";
/// How long the shim waits for the output after the container ended (a
/// process that left the container's pid namespace with its stdout open
/// must not keep the shim, and so the exit code, forever).
const OUTPUT_GRACE: Duration = Duration::from_secs(5);

/// How to run a shim: the binary and the arguments before the shim's own.
#[derive(Clone, Debug, PartialEq)]
pub struct ShimCommand {
    pub bin: PathBuf,
    pub args: Vec<String>,
}

impl ShimCommand {
    /// `shoal-shim` beside `daemon` (shoald's own binary), else `daemon
    /// container-shim`.
    pub fn beside(daemon: &Path) -> ShimCommand {
        let small = daemon.with_file_name("shoal-shim");
        if small.is_file() {
            ShimCommand { bin: small, args: Vec::new() }
        } else {
            ShimCommand { bin: daemon.to_path_buf(), args: vec![ARG.to_string()] }
        }
    }
}

/// Which process is the shim of a container, and the container's init.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShimRecord {
    pub shim_pid: i32,
    /// The shim's start time (`/proc/<pid>/stat` field 22): a pid can be
    /// reused, the pair cannot.
    pub shim_start: u64,
    /// The container's init process.
    pub pid: i32,
}

impl ShimRecord {
    pub fn load(bundle: &Path) -> Result<ShimRecord, String> {
        let path = bundle.join(RECORD_FILE);
        let text = std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn save(&self, bundle: &Path) -> Result<(), String> {
        super::replace_file(&bundle.join(RECORD_FILE), &serde_json::to_vec(self).map_err(|e| e.to_string())?)
    }

    /// A pidfd of the shim if it still runs (`None`: it has ended). Opened
    /// before the start time is compared, so the pidfd is of this shim.
    pub fn open_if_alive(&self) -> Result<Option<OwnedFd>, String> {
        // nix has no pidfd calls: the raw system call.
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, self.shim_pid, 0) };
        if fd < 0 {
            return match Errno::last() {
                Errno::ESRCH => Ok(None),
                e => Err(format!("pidfd_open({}): {}", self.shim_pid, std::io::Error::from(e))),
            };
        }
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Ok((start_time(self.shim_pid) == Some(self.shim_start)).then_some(fd))
    }

    /// Ends the shim (SIGKILL) if it still runs, and waits until it has:
    /// before its container is removed without it, so it writes nothing
    /// into a bundle being deleted.
    pub fn kill_and_wait(&self) -> Result<(), String> {
        let Some(fd) = self.open_if_alive()? else { return Ok(()) };
        // nix has no pidfd calls: the raw system call.
        // SAFETY: a live pidfd, a signal number and no siginfo.
        let r =
            unsafe { libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), libc::SIGKILL, std::ptr::null::<libc::siginfo_t>(), 0) };
        if r < 0 {
            let e = Errno::last();
            if e != Errno::ESRCH {
                return Err(format!("killing the shim {}: {}", self.shim_pid, std::io::Error::from(e)));
            }
        }
        let mut p = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        if poll(&mut p, PollTimeout::from(10_000u16)) == Ok(0) {
            return Err(format!("the shim {} did not end after SIGKILL", self.shim_pid));
        }
        Ok(())
    }
}

/// The exit code the shim wrote, once it has.
pub fn read_exit(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A process's start time in clock ticks since boot.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name (which may hold spaces and parentheses):
    // state is field 3, start time field 22.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Starts the shim for container `id` (the daemon's side) and waits until
/// it has started the container or failed to. The shim is our child: its
/// end is collected with an `ExitWatch` (`spawn_shim`).
pub fn start(shim: &ShimCommand, runc: &Runc, id: &str, bundle: &Path, log: &Path) -> Result<ShimRecord, String> {
    let _ = std::fs::remove_file(bundle.join(EXIT_FILE));
    let (mut ready_r, ready_w) = std::io::pipe().map_err(|e| format!("creating the shim's pipe: {e}"))?;
    let shim_log = File::create(bundle.join(LOG_FILE)).map_err(|e| format!("creating {}: {e}", bundle.join(LOG_FILE).display()))?;
    let mut cmd = Command::new(&shim.bin);
    cmd.args(&shim.args).arg(&runc.bin).arg(&runc.root).arg(id).arg(bundle).arg(log);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(shim_log);
    let w = ready_w.as_raw_fd();
    // Between fork and exec: only async-signal-safe calls (these nix
    // wrappers take descriptors, not paths, and allocate nothing).
    unsafe {
        cmd.pre_exec(move || {
            setsid()?;
            // SAFETY: `w` stays open in the child until exec.
            let w = BorrowedFd::borrow_raw(w);
            // dup2 clears close-on-exec on the copy; already fd 3, clear it.
            if w.as_raw_fd() == 3 {
                fcntl(w, FcntlArg::F_SETFD(FdFlag::empty()))?;
            } else {
                // SAFETY: fd 3 is the shim's to have; the copy must survive
                // the exec, so it is released, not closed.
                let _ = dup2_raw(w, 3)?.into_raw_fd();
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| format!("starting the container shim {}: {e}", shim.bin.display()))?;
    drop(ready_w);
    let shim_pid = child.id() as i32;
    // Our copy of the pid is all we keep: an ExitWatch reaps the shim.
    drop(child);
    let mut answer = String::new();
    let _ = ready_r.read_to_string(&mut answer);
    let answer = answer.trim();
    if let Some(pid) = answer.strip_prefix("ok ") {
        let pid = pid.parse().map_err(|_| format!("the container shim answered {answer:?}"))?;
        let shim_start = start_time(shim_pid).unwrap_or(0);
        let record = ShimRecord { shim_pid, shim_start, pid };
        record.save(bundle)?;
        return Ok(record);
    }
    // Failed: the shim exits at once; reap it so it leaves no zombie.
    let _ = waitpid(Pid::from_raw(shim_pid), None);
    match answer.strip_prefix("err ") {
        Some(e) => Err(e.to_string()),
        None => {
            let said = std::fs::read_to_string(bundle.join(LOG_FILE)).unwrap_or_default();
            Err(format!("the container shim ended before starting the container: {}", said.trim()))
        }
    }
}

/// The shim process (`shoald container-shim ...`): returns its exit code,
/// the container's.
pub fn main(args: &[String]) -> i32 {
    let [runc_bin, runc_root, id, bundle, log] = args else {
        eprintln!("usage: shoald {ARG} <runc> <runc-root> <container-id> <bundle> <log>");
        return 2;
    };
    // fd 3 is the daemon's pipe; nothing else may have opened it.
    let mut ready = unsafe { File::from_raw_fd(3) };
    let bundle = PathBuf::from(bundle);
    let started = (|| -> Result<(i32, crate::logs::capture::CaptureDone), String> {
        // The container's init is reparented to us when `runc run -d`
        // returns: its exit status comes here.
        nix::sys::prctl::set_child_subreaper(true).map_err(|e| format!("prctl(PR_SET_CHILD_SUBREAPER): {}", std::io::Error::from(e)))?;
        let (read_ends, write_ends) = crate::logs::capture::pipes().map_err(|e| format!("creating output pipes: {e}"))?;
        let logs = crate::logs::capture::spawn(id, read_ends, Path::new(log)).map_err(|e| format!("capturing output to {log}: {e}"))?;
        let runc = Runc { bin: runc_bin.into(), root: runc_root.into() };
        let pid = runc.run_detached(id, &bundle, write_ends.stdout, write_ends.stderr)?;
        Ok((pid, logs))
    })();
    let (pid, logs) = match started {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(ready, "err {e}");
            return 1;
        }
    };
    if writeln!(ready, "ok {pid}").is_err() {
        eprintln!("the daemon went away while the container started");
    }
    drop(ready);
    let code = wait_for(pid);
    logs.wait_timeout(OUTPUT_GRACE);
    if let Err(e) = super::replace_file(&bundle.join(EXIT_FILE), code.to_string().as_bytes()) {
        eprintln!("{e}");
    }
    code
}

/// Reaps every child (runc's own processes are reparented here too) until
/// `pid` ends; its Docker exit code.
fn wait_for(pid: i32) -> i32 {
    loop {
        let mut status: libc::c_int = 0;
        // libc, not nix: nix's waitpid loses the status of a process killed
        // by a real-time signal (see `supervise::ExitWatch::spawn_then`).
        // SAFETY: waitpid into a local status.
        let r = unsafe { libc::waitpid(-1, &mut status, 0) };
        if r == pid {
            return super::supervise::exit_code(status);
        }
        if r < 0 && Errno::last() != Errno::EINTR {
            return 255; // no child left: nothing to wait for
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_read_past_a_name_with_spaces_and_parentheses() {
        let me = std::process::id() as i32;
        let t = start_time(me).expect("our own start time");
        assert_eq!(start_time(me), Some(t), "stable");
        assert_eq!(start_time(-1), None);
    }

    #[test]
    fn a_record_of_a_live_process_opens_and_a_reused_pid_does_not() {
        let me = std::process::id() as i32;
        let live = ShimRecord { shim_pid: me, shim_start: start_time(me).unwrap(), pid: 1 };
        assert!(live.open_if_alive().unwrap().is_some());
        let reused = ShimRecord { shim_start: live.shim_start + 1, ..live.clone() };
        assert!(reused.open_if_alive().unwrap().is_none(), "same pid, other start time: not our shim");
    }

    #[test]
    #[allow(clippy::zombie_processes)] // reaped by child.wait() below
    fn kill_and_wait_ends_a_live_shim_and_then_finds_nothing() {
        use std::os::unix::process::ExitStatusExt;
        let mut child = Command::new("sleep").arg("100").spawn().unwrap();
        let pid = child.id() as i32;
        let rec = ShimRecord { shim_pid: pid, shim_start: start_time(pid).unwrap(), pid: 1 };
        rec.kill_and_wait().unwrap();
        // Ended (a zombie until reaped): killed by our SIGKILL.
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
        assert!(rec.open_if_alive().unwrap().is_none(), "reaped: ESRCH");
        rec.kill_and_wait().unwrap();
    }

    #[test]
    fn the_exit_file_is_read_as_the_shim_writes_it() {
        let dir = std::env::temp_dir().join(format!("shoal-shim-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(EXIT_FILE);
        assert_eq!(read_exit(&path), None);
        super::super::replace_file(&path, b"137").unwrap();
        assert_eq!(read_exit(&path), Some(137));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
