//! One probe: `runc exec` of the check's command inside the container, with
//! the container's own user, environment and working directory (runc exec
//! starts from the bundle's process spec, as Docker's exec does). stdout and
//! stderr go to a file in the bundle; the first 4096 bytes become the
//! result's output. Past the timeout the probe process is killed.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::state::{go_duration, limit_output, ProbeResult, MAX_OUTPUT};
use crate::executor::runc::Runc;

/// Runs `command` in container `id` (bundle `bundle`), waiting at most
/// `timeout` for it. A probe that cannot even start is a failed result
/// (exit code -1) carrying the error, as in Docker.
pub fn run(runc: &Runc, id: &str, bundle: &Path, command: &[String], timeout: Duration) -> ProbeResult {
    let start = shoal_api::time::now_rfc3339();
    let (exit_code, output) = match exec(runc, id, bundle, command, timeout) {
        Ok(r) => r,
        Err(e) => (-1, e),
    };
    ProbeResult { start, end: shoal_api::time::now_rfc3339(), exit_code, output: limit_output(output) }
}

fn exec(runc: &Runc, id: &str, bundle: &Path, command: &[String], timeout: Duration) -> Result<(i64, String), String> {
    if command.is_empty() {
        return Err("health check has no command".into());
    }
    let out_path = bundle.join("health.out");
    let pid_path = bundle.join("health.pid");
    let _ = std::fs::remove_file(&pid_path);
    let out = File::create(&out_path).map_err(|e| format!("creating {}: {e}", out_path.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut child = Command::new(&runc.bin)
        .arg("--root")
        .arg(&runc.root)
        .args(["exec", "--pid-file"])
        .arg(&pid_path)
        .arg(id)
        .args(command)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("running {}: {e}", runc.bin.display()))?;
    let timed_out = !wait_exit(child.id() as i32, timeout);
    if timed_out {
        kill_probe(&pid_path, child.id() as i32);
    }
    let status = child.wait().map_err(|e| format!("waiting for the health check: {e}"))?;
    let text = read_head(&out_path);
    let _ = std::fs::remove_file(&out_path);
    if timed_out {
        let msg = if text.is_empty() {
            format!("Health check exceeded timeout ({})", go_duration(timeout))
        } else {
            format!("Health check exceeded timeout ({}): {text}", go_duration(timeout))
        };
        return Ok((-1, msg));
    }
    let code = crate::executor::supervise::exit_code(std::os::unix::process::ExitStatusExt::into_raw(status));
    Ok((code as i64, text))
}

/// Waits up to `timeout` for process `pid` (our child) to end without
/// reaping it; false on timeout. A pidfd becomes readable when the process
/// exits, so poll(2) gives the timed wait std's `Child` lacks.
fn wait_exit(pid: i32, timeout: Duration) -> bool {
    // nix has no pidfd calls: the raw system call.
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    if fd < 0 {
        // No pidfd (old kernel): fall back to an untimed wait by the caller.
        return true;
    }
    // SAFETY: fd is a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let left_ms = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut p = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut p, left_ms) {
            Ok(0) => return false,
            Err(Errno::EINTR) => {}
            Ok(_) | Err(_) => return true,
        }
    }
}

/// Kills the probe's process inside the container (its host pid is in the
/// pid file runc exec wrote); runc exec then returns. Without a pid file
/// (runc had not started it yet) runc exec itself is killed.
fn kill_probe(pid_file: &Path, runc_pid: i32) {
    let pid = std::fs::read_to_string(pid_file).ok().and_then(|s| s.trim().parse::<i32>().ok());
    let target = match pid {
        Some(p) if p > 0 => p,
        _ => runc_pid,
    };
    let _ = kill(Pid::from_raw(target), Signal::SIGKILL);
}

fn read_head(path: &Path) -> String {
    let mut buf = Vec::new();
    if let Ok(f) = File::open(path) {
        let _ = f.take(MAX_OUTPUT as u64 + 1).read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}
