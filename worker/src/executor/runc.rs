//! The OCI runtime binary (runc, or crun with the same CLI), with a
//! per-node `--root` so several shoald on one host keep separate state.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A detached container's stdio.
pub enum RunIo {
    /// Pipes handed to the container (stdin: `/dev/null` when `None`).
    Pipes { stdin: Option<OwnedFd>, stdout: OwnedFd, stderr: OwnedFd },
    /// A terminal: runc sends its master end to this socket.
    Console(PathBuf),
}

#[derive(Clone, Debug)]
pub struct Runc {
    pub bin: PathBuf,
    pub root: PathBuf,
}

impl Runc {
    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root);
        c
    }

    fn spawn_err(&self, e: std::io::Error) -> String {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("OCI runtime {} not found: install it (apt-get install -y runc)", self.bin.display())
        } else {
            format!("running {}: {e}", self.bin.display())
        }
    }

    /// Run a short command, returning stdout or an error with runc's stderr.
    fn simple(&self, what: &str, args: &[&str]) -> Result<String, String> {
        let out = self.cmd().args(args).stdin(Stdio::null()).output().map_err(|e| self.spawn_err(e))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!("runc {what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
        }
    }

    /// `runc run -d`: the container's stdout and stderr are `stdout` and
    /// `stderr` (the write ends of shoald's capture pipes), stdin is
    /// /dev/null. Returns the container init's pid. runc's own messages go
    /// to `<bundle>/runc.log` and are quoted on failure.
    pub fn run_detached(&self, id: &str, bundle: &Path, stdout: OwnedFd, stderr: OwnedFd) -> Result<i32, String> {
        self.run_detached_with(id, bundle, RunIo::Pipes { stdin: None, stdout, stderr })
    }

    /// `runc run -d` with the container's stdio as `io` says: pipes passed
    /// through (stdin too for `-i`), or a terminal that runc makes and sends
    /// to the console socket (`-t`).
    pub fn run_detached_with(&self, id: &str, bundle: &Path, io: RunIo) -> Result<i32, String> {
        let pid_file = bundle.join("pid");
        let runc_log = bundle.join("runc.log");
        let mut cmd = self.cmd();
        cmd.arg("--log").arg(&runc_log).args(["run", "-d", "--pid-file"]).arg(&pid_file);
        match io {
            RunIo::Pipes { stdin, stdout, stderr } => {
                cmd.stdin(stdin.map(Stdio::from).unwrap_or_else(Stdio::null)).stdout(File::from(stdout)).stderr(File::from(stderr));
            }
            RunIo::Console(socket) => {
                cmd.arg("--console-socket").arg(socket).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let status = cmd.arg("--bundle").arg(bundle).arg(id).status().map_err(|e| self.spawn_err(e))?;
        if !status.success() {
            let msg = std::fs::read_to_string(&runc_log).unwrap_or_default();
            let msg = msg.lines().rev().find(|l| l.contains("error") || l.contains("level=")).unwrap_or("").to_string();
            return Err(format!("runc run {id} failed ({status}): {}", msg.trim()));
        }
        let pid = std::fs::read_to_string(&pid_file).map_err(|e| format!("reading {}: {e}", pid_file.display()))?;
        pid.trim().parse::<i32>().map_err(|e| format!("bad pid {pid:?} in {}: {e}", pid_file.display()))
    }

    /// `runc kill <id> <signal>` (signal by name like `TERM`/`SIGKILL` or number).
    pub fn kill(&self, id: &str, signal: &str) -> Result<(), String> {
        self.simple("kill", &["kill", id, signal]).map(|_| ())
    }

    /// `runc delete --force <id>`; a container runc no longer knows is fine.
    pub fn delete(&self, id: &str) -> Result<(), String> {
        match self.simple("delete", &["delete", "--force", id]) {
            Ok(_) => Ok(()),
            Err(e) if e.contains("does not exist") || e.contains("not exist") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `runc state <id>`'s `status`: creating, created, running, paused, stopped.
    pub fn state(&self, id: &str) -> Result<String, String> {
        let out = self.simple("state", &["state", id])?;
        let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| format!("runc state {id}: bad JSON: {e}"))?;
        v["status"].as_str().map(str::to_string).ok_or_else(|| format!("runc state {id}: no status in {out}"))
    }
}
