//! Daemon processes: finding the binaries, starting `shoald` inside a host
//! namespace, recognising and signalling it later, and talking HTTP to its socket.

use super::state::NodeState;
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How often waits re-check their condition.
pub const POLL: Duration = Duration::from_millis(50);

/// The running `shoal` executable.
pub fn shoal_exe() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find the shoal executable: {e}"))
}

/// `SHOALD_BIN`, else `shoald` next to this executable, else on PATH.
pub fn find_shoald() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("SHOALD_BIN").filter(|b| !b.is_empty()) {
        let p = PathBuf::from(&bin);
        return if is_executable(&p) {
            Ok(fs::canonicalize(&p).unwrap_or(p))
        } else {
            Err(format!("SHOALD_BIN={} is not an executable file", p.display()))
        };
    }
    let exe_dir = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf));
    let mut candidates: Vec<PathBuf> = exe_dir.iter().map(|d| d.join("shoald")).collect();
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("shoald")));
    }
    candidates.into_iter().find(|c| is_executable(c)).ok_or_else(|| {
        let dir = exe_dir.map(|d| d.display().to_string()).unwrap_or_else(|| "?".into());
        format!("cannot find shoald: not in {dir} (next to shoal) nor on PATH; set SHOALD_BIN to its path")
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The arguments `shoald` gets for `node`.
pub fn daemon_args(node: &NodeState) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "--data-root".into(),
        (&node.data_dir).into(),
        "--host".into(),
        node.host_url().into(),
        "--hostname".into(),
        (&node.name).into(),
        // The node's run dir (beside its socket): the tmpfs mounts of its
        // tasks' secrets go there, and `lab down` unmounts what is left.
        "--exec-root".into(),
        node.socket.parent().expect("socket path has a parent").into(),
    ];
    for r in &node.insecure_registries {
        args.push("--insecure-registry".into());
        args.push(r.into());
    }
    if let Some(addr) = &node.metrics_addr {
        args.push("--metrics-addr".into());
        args.push(addr.into());
    }
    if node.no_live_restore {
        args.push("--no-live-restore".into());
    }
    if let Some(every) = &node.data_path_key_rotation {
        args.push("--data-path-key-rotation".into());
        args.push(every.into());
    }
    args
}

/// Open a named network namespace (`/run/netns/<name>`), to enter it with setns.
pub fn open_netns(name: &str) -> Result<fs::File, String> {
    let path = Path::new("/run/netns").join(name);
    fs::File::open(&path).map_err(|e| format!("cannot open network namespace {name} ({}): {e}", path.display()))
}

/// Make `cmd` start inside the network namespace `netns` (an open /run/netns file,
/// which must stay open until the command is spawned), and in a session of its own
/// when `detach`. Only the network namespace changes: the command shares the
/// machine's mounts, /sys/fs/cgroup included, as a daemon on a real host would.
/// (`ip netns exec` would also remount /sys, which hides the cgroup mounts.)
pub fn enter_netns(cmd: &mut Command, netns: &fs::File, detach: bool) {
    use std::os::unix::io::{AsRawFd, BorrowedFd};
    let fd = netns.as_raw_fd();
    // SAFETY: only async-signal-safe calls (setsid, setns; nix allocates
    // nothing for either) between fork and exec; `netns` outlives the spawn.
    unsafe {
        cmd.pre_exec(move || {
            if detach {
                nix::unistd::setsid()?;
            }
            nix::sched::setns(BorrowedFd::borrow_raw(fd), nix::sched::CloneFlags::CLONE_NEWNET)?;
            Ok(())
        });
    }
}

/// Start `shoald` for `node` inside its namespace, detached: its own session,
/// stdin from /dev/null, stdout and stderr appended to the node's log.
pub fn spawn_daemon(shoald: &Path, node: &NodeState) -> Result<Child, String> {
    let sock_dir = node.socket.parent().expect("socket path has a parent");
    for dir in [sock_dir, node.data_dir.as_path()] {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    remove_stale_socket(&node.socket)?;
    let netns = open_netns(&node.netns)?;
    let mut log =
        fs::OpenOptions::new().create(true).append(true).open(&node.log).map_err(|e| format!("cannot open {}: {e}", node.log.display()))?;
    let args = daemon_args(node);
    let shown: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let _ = writeln!(
        log,
        "--- shoal lab: starting {} {} in network namespace {} (unix time {}) ---",
        shoald.display(),
        shown.join(" "),
        node.netns,
        unix_now()
    );
    let log_err = log.try_clone().map_err(|e| format!("cannot open {}: {e}", node.log.display()))?;
    let mut cmd = Command::new(shoald);
    cmd.args(&args).stdin(Stdio::null()).stdout(Stdio::from(log)).stderr(Stdio::from(log_err));
    enter_netns(&mut cmd, &netns, true);
    cmd.spawn().map_err(|e| format!("cannot start {} for {}: {e}", shoald.display(), node.name))
}

fn remove_stale_socket(sock: &Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    match fs::symlink_metadata(sock) {
        Ok(m) if m.file_type().is_socket() => fs::remove_file(sock).map_err(|e| format!("cannot remove stale {}: {e}", sock.display())),
        _ => Ok(()),
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Arguments of a process, from /proc/PID/cmdline (empty for zombies and the gone).
pub fn cmdline(pid: u32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline")).map(|b| parse_cmdline(&b)).unwrap_or_default()
}

pub fn parse_cmdline(raw: &[u8]) -> Vec<String> {
    raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

/// Whether `args` is a daemon started for the node whose state dir is `data_dir`:
/// it carries `--data-root <data_dir>`, `--host unix://...` and `--hostname`, as
/// separate arguments, as [`daemon_args`] gives them.
pub fn is_daemon_cmdline(args: &[String], data_dir: &Path) -> bool {
    let want = data_dir.to_string_lossy();
    let pair = |flag: &str, ok: &dyn Fn(&str) -> bool| args.windows(2).any(|w| w[0] == flag && ok(&w[1]));
    pair("--data-root", &|v| v == want) && pair("--host", &|v| v.starts_with("unix://")) && pair("--hostname", &|v| !v.is_empty())
}

/// The `--data-root` value of a daemon command line, if any.
pub fn data_root_arg(args: &[String]) -> Option<&str> {
    args.windows(2).find(|w| w[0] == "--data-root").map(|w| w[1].as_str())
}

/// Whether PID is a live (not zombie) process.
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the last ')' (the command name may hold parens).
        Ok(stat) => match stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next()) {
            Some(state) => state != "Z" && state != "X",
            None => false,
        },
        Err(_) => false,
    }
}

/// The node's recorded daemon PID, if that process is alive and is this node's daemon
/// (so a reused PID is never signalled).
pub fn running_pid(node: &NodeState) -> Option<u32> {
    node.pid.filter(|&pid| alive(pid) && is_daemon_cmdline(&cmdline(pid), &node.data_dir))
}

/// Live processes whose command line carries `--data-root` under `root`: daemons of
/// a lab, including any whose PID never made it into the state file.
pub fn daemons_under(root: &Path) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let args = cmdline(pid);
        if let Some(dir) = data_root_arg(&args) {
            if Path::new(dir).starts_with(root) && is_daemon_cmdline(&args, Path::new(dir)) && alive(pid) {
                found.push(pid);
            }
        }
    }
    found
}

/// Sends `sig` to `pid`; a process already gone is not an error.
pub fn signal(pid: u32, sig: nix::sys::signal::Signal) -> Result<(), String> {
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(format!("cannot signal process {pid}: {}", std::io::Error::from(e))),
    }
}

/// Wait until none of `pids` is alive; returns the ones still alive at the deadline.
pub fn wait_gone(pids: &[u32], timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(POLL);
    }
}

/// SIGTERM, wait up to `grace`, then SIGKILL and wait for the end.
pub fn terminate(pids: &[u32], grace: Duration) -> Result<(), String> {
    for &pid in pids {
        signal(pid, nix::sys::signal::Signal::SIGTERM)?;
    }
    let left = wait_gone(pids, grace);
    kill(&left)
}

/// SIGKILL and wait until the processes are gone.
pub fn kill(pids: &[u32]) -> Result<(), String> {
    for &pid in pids {
        signal(pid, nix::sys::signal::Signal::SIGKILL)?;
    }
    let left = wait_gone(pids, Duration::from_secs(10));
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("processes {left:?} did not exit after SIGKILL"))
    }
}

/// `GET path` over the unix socket, with `timeout` on each wait (the
/// answer's head, then each piece of its body); returns status and body.
pub fn http_get(socket: &Path, path: &str, timeout: Duration) -> Result<(u16, Vec<u8>), String> {
    let err = |e: std::io::Error| format!("{}: {e}", socket.display());
    let io = shoal_http_client::unix::connect(socket).map_err(err)?;
    let req = shoal_http_client::Request::new("GET", path).header("Host", "shoal").header("Connection", "close");
    let opts = shoal_http_client::Options { timeout: Some(timeout), ..Default::default() };
    let r = shoal_http_client::send(io, &req, &opts).map_err(err)?;
    let status = r.status;
    Ok((status, r.read_body(64 << 20).map_err(err)?))
}

/// Whether the daemon at `socket` answers `GET /_ping` with 200.
pub fn ping(socket: &Path) -> bool {
    matches!(http_get(socket, "/_ping", Duration::from_secs(2)), Ok((200, _)))
}

/// Run `shoal -H unix://<socket> ARGS` (this executable); stdout on success, an
/// error naming the command and carrying its stderr otherwise.
pub fn run_shoal(node: &NodeState, args: &[&str]) -> Result<String, String> {
    let exe = shoal_exe()?;
    let host = node.host_url();
    let out = Command::new(&exe)
        .arg("-H")
        .arg(&host)
        .args(args)
        .env("SHOAL_HOST", &host)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let msg = if stderr.trim().is_empty() { stdout.trim() } else { stderr.trim() };
        let msg = msg.strip_prefix("Error: ").unwrap_or(msg);
        Err(format!("'shoal -H {host} {}' on {} failed ({}): {msg}", shown_args(args), node.name, out.status))
    }
}

/// Arguments for an error message, with join tokens (credentials) left out.
fn shown_args(args: &[&str]) -> String {
    let mut shown: Vec<&str> = Vec::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        shown.push(if i > 0 && args[i - 1] == "--token" { "<token>" } else { a });
    }
    shown.join(" ")
}

/// The last `n` lines of `text`.
pub fn tail_lines(text: &str, n: usize) -> &str {
    if n == 0 {
        return "";
    }
    let trimmed = text.strip_suffix('\n').unwrap_or(text);
    let mut count = 0;
    for (i, b) in trimmed.bytes().enumerate().rev() {
        if b == b'\n' {
            count += 1;
            if count == n {
                return &text[i + 1..];
            }
        }
    }
    text
}

/// The last lines of a node's log, for error messages.
pub fn log_excerpt(node: &NodeState, lines: usize) -> String {
    match fs::read(&node.log) {
        Ok(b) => {
            let text = String::from_utf8_lossy(&b);
            let t = tail_lines(&text, lines).trim_end();
            if t.is_empty() {
                format!("(log {} is empty)", node.log.display())
            } else {
                format!("last lines of {}:\n{t}", node.log.display())
            }
        }
        Err(e) => format!("(cannot read {}: {e})", node.log.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::state::plan;
    use std::io::Read;

    #[test]
    fn daemon_command_line() {
        let lab = plan("lab", 1, 1).unwrap();
        let args = daemon_args(&lab.nodes[1]);
        let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(
            args.join(" "),
            "--data-root /var/lib/shoal/lab/lab/node-2 \
             --host unix:///run/shoal/lab/lab/node-2/shoald.sock --hostname node-2 \
             --exec-root /run/shoal/lab/lab/node-2"
        );
        let mut metrics = lab.nodes[1].clone();
        metrics.metrics_addr = Some("192.168.77.12:9323".into());
        let with: Vec<String> = daemon_args(&metrics).iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert!(with.join(" ").ends_with(" --metrics-addr 192.168.77.12:9323"), "{with:?}");
        // What /proc/PID/cmdline shows for the daemon (binary or interpreted script).
        let dir = Path::new("/var/lib/shoal/lab/lab/node-2");
        let mut bin = vec!["/usr/bin/shoald".to_string()];
        bin.extend(args.iter().cloned());
        assert!(is_daemon_cmdline(&bin, dir));
        let mut script = vec!["python3".to_string()];
        script.extend(bin.iter().cloned());
        assert!(is_daemon_cmdline(&script, dir));
        assert!(!is_daemon_cmdline(&bin, Path::new("/var/lib/shoal/lab/lab/node-1")));
        assert!(!is_daemon_cmdline(&["sh".into(), "-c".into(), bin.join(" ")], dir));
        assert!(!is_daemon_cmdline(&["vi".into(), "--data-root".into(), dir.display().to_string()], dir));
        assert_eq!(data_root_arg(&bin), Some("/var/lib/shoal/lab/lab/node-2"));
    }

    #[test]
    fn cmdline_parsing() {
        assert_eq!(parse_cmdline(b"/bin/shoald\0--data-root\0/x\0"), ["/bin/shoald", "--data-root", "/x"]);
        assert!(parse_cmdline(b"").is_empty());
    }

    #[test]
    fn http_get_reads_a_chunked_answer_over_the_socket() {
        let dir = std::env::temp_dir().join(format!("shoal-lab-http-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("d.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let server = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let mut head = [0u8; 1024];
            let n = c.read(&mut head).unwrap();
            assert!(head[..n].starts_with(b"GET /_ping HTTP/1.1\r\n"));
            c.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n").unwrap();
            listener
        });
        assert_eq!(http_get(&sock, "/_ping", Duration::from_secs(5)).unwrap(), (200, b"[1,2]".to_vec()));
        let listener = server.join().unwrap();
        // A daemon that accepts and never answers: the probe gives up.
        let e = http_get(&sock, "/_ping", Duration::from_millis(100)).unwrap_err();
        assert_eq!(e, format!("{}: i/o timeout", sock.display()));
        drop(listener);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tokens_stay_out_of_errors() {
        assert_eq!(shown_args(&["swarm", "join", "--token", "SWMTKN-1-a-b", "10.0.0.1:2377"]), "swarm join --token <token> 10.0.0.1:2377");
    }

    #[test]
    fn tails() {
        assert_eq!(tail_lines("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(tail_lines("a\nb\nc", 2), "b\nc");
        assert_eq!(tail_lines("a\nb\n", 5), "a\nb\n");
        assert_eq!(tail_lines("a\nb\n", 0), "");
        assert_eq!(tail_lines("", 3), "");
    }

    #[test]
    fn own_process_is_alive() {
        assert!(alive(std::process::id()));
        assert!(!alive(u32::MAX));
    }
}
