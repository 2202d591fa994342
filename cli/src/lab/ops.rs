//! The commands that act on an existing lab: ls, exec, kill, stop, start,
//! partition, heal, down, logs.

use super::process;
use super::state::{LabLock, LabState, NodeState};
use super::up::{wait_daemons, START_TIMEOUT};
use super::{cleanup, netns, require_root};
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::Child;
use std::time::Duration;

/// `stop`: SIGTERM, then SIGKILL after this long.
const STOP_GRACE: Duration = Duration::from_secs(15);

pub fn ls(name: &str) -> Result<(), String> {
    let lab = LabState::load_existing(name)?;
    let rows = lab
        .nodes
        .iter()
        .map(|n| {
            let pid = process::running_pid(n);
            vec![
                n.name.clone(),
                n.role.as_str().into(),
                n.addr.clone(),
                node_status(pid.is_some(), n.partitioned).into(),
                pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                n.socket.display().to_string(),
            ]
        })
        .collect();
    print_table(&["NAME", "ROLE", "ADDRESS", "STATUS", "PID", "SOCKET"], rows);
    Ok(())
}

fn node_status(running: bool, partitioned: bool) -> &'static str {
    match (running, partitioned) {
        (true, false) => "running",
        (true, true) => "partitioned",
        (false, false) => "stopped",
        (false, true) => "stopped,partitioned",
    }
}

/// Columns separated by at least three spaces, as Docker's tables are.
fn format_table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}   ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in &rows {
        out += &line(row.iter().map(String::as_str).collect());
    }
    out
}

pub fn print_table(headers: &[&str], rows: Vec<Vec<String>>) {
    print!("{}", format_table(headers, rows));
}

// ---------------------------------------------------------------------------- exec

pub fn exec(name: &str, node: &str, cmd: &[String]) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    require_root()?;
    let lab = LabState::load_existing(name)?;
    let node = lab.node(node)?;
    if !netns::exists(&node.netns) {
        return Err(format!("namespace {} of {} is gone; recreate the lab (down, then up)", node.netns, node.name));
    }
    let ns = process::open_netns(&node.netns)?;
    // Replace this process with CMD inside the namespace, so CMD's exit code, signals
    // and stdio are the caller's directly. Like the daemon, CMD keeps the machine's
    // mounts (cgroups, the daemon's mounts); for network state use `ip`, since /sys
    // shows the root namespace's interfaces.
    let mut command = std::process::Command::new(&cmd[0]);
    command.args(&cmd[1..]).env("SHOAL_HOST", node.host_url());
    process::enter_netns(&mut command, &ns, false);
    let err = command.exec();
    // As a shell does: 127 when CMD is not found, 126 when it cannot be run.
    eprintln!("shoal lab exec: {}: {err}", cmd[0]);
    std::process::exit(if err.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 })
}

// ---------------------------------------------------------------------------- kill / stop / start

/// Run `f` on each named node under the lab lock, saving the state after each.
pub fn each_node(name: &str, nodes: &[String], f: impl Fn(&LabState, &mut NodeState) -> Result<(), String>) -> Result<(), String> {
    require_root()?;
    LabState::load_existing(name)?;
    let _lock = LabLock::acquire(name)?;
    let mut lab = LabState::load_existing(name)?; // re-read under the lock
    for n in nodes {
        lab.node(n)?;
    }
    for n in nodes {
        let mut node = lab.node(n)?.clone();
        let result = f(&lab, &mut node);
        *lab.node_mut(n)? = node;
        lab.save()?;
        result?;
        println!("{n}");
    }
    Ok(())
}

pub fn kill_node(_lab: &LabState, node: &mut NodeState) -> Result<(), String> {
    match process::running_pid(node) {
        Some(pid) => process::kill(&[pid])?,
        None => eprintln!("{}: shoald was not running", node.name),
    }
    node.pid = None;
    Ok(())
}

pub fn stop_node(_lab: &LabState, node: &mut NodeState) -> Result<(), String> {
    match process::running_pid(node) {
        Some(pid) => process::terminate(&[pid], STOP_GRACE)?,
        None => eprintln!("{}: shoald was not running", node.name),
    }
    node.pid = None;
    Ok(())
}

pub fn start_nodes(name: &str, nodes: &[String]) -> Result<(), String> {
    require_root()?;
    LabState::load_existing(name)?;
    let _lock = LabLock::acquire(name)?;
    let mut lab = LabState::load_existing(name)?;
    for n in nodes {
        lab.node(n)?;
    }
    let shoald = process::find_shoald()?;
    let mut started: Vec<(String, Child)> = Vec::new();
    for n in nodes {
        let node = lab.node(n)?;
        if let Some(pid) = process::running_pid(node) {
            eprintln!("{n}: shoald is already running (pid {pid})");
            continue;
        }
        if !netns::exists(&node.netns) {
            return Err(format!("namespace {} of {n} is gone; recreate the lab (down, then up)", node.netns));
        }
        let child = process::spawn_daemon(&shoald, node)?;
        lab.node_mut(n)?.pid = Some(child.id());
        lab.save()?;
        started.push((n.clone(), child));
    }
    let mut waiting = Vec::new();
    for (n, child) in started {
        waiting.push((lab.node(&n)?, child));
    }
    wait_daemons(&mut waiting, START_TIMEOUT)?;
    for n in nodes {
        println!("{n}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------- partition / heal

pub fn set_partition(lab: &LabState, node: &mut NodeState, partitioned: bool) -> Result<(), String> {
    netns::set_switch_port(lab, node, !partitioned)?;
    node.partitioned = partitioned;
    Ok(())
}

// ---------------------------------------------------------------------------- down

pub fn down(name: &str) -> Result<(), String> {
    require_root()?;
    if cleanup::down(name)? {
        println!("lab {name} removed");
    } else {
        println!("lab {name} does not exist; nothing to remove");
    }
    Ok(())
}

// ---------------------------------------------------------------------------- logs

pub fn logs(name: &str, node: &str, tail: Option<usize>, follow: bool) -> Result<(), String> {
    let lab = LabState::load_existing(name)?;
    let node = lab.node(node)?;
    let path = &node.log;
    let mut file = fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let shown = match tail {
        Some(n) => process::tail_lines(&text, n),
        None => &text,
    };
    let mut out = std::io::stdout().lock();
    let w = |out: &mut std::io::StdoutLock, b: &[u8]| out.write_all(b).and_then(|_| out.flush());
    if w(&mut out, shown.as_bytes()).is_err() {
        return Ok(()); // closed pipe (e.g. `| head`)
    }
    if !follow {
        return Ok(());
    }
    let mut pos = bytes.len() as u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let len = fs::metadata(path).map(|m| m.len()).unwrap_or(pos);
        if len < pos {
            pos = 0; // truncated
        }
        if len > pos {
            file.seek(SeekFrom::Start(pos)).map_err(|e| e.to_string())?;
            let n = file.read(&mut buf).map_err(|e| e.to_string())?;
            pos += n as u64;
            if w(&mut out, &buf[..n]).is_err() {
                return Ok(());
            }
            continue;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_format() {
        let t = format_table(
            &["NAME", "ROLE", "SOCKET"],
            vec![vec!["node-1".into(), "manager".into(), "/a".into()], vec!["node-10".into(), "worker".into(), "/bb".into()]],
        );
        assert_eq!(t, "NAME      ROLE      SOCKET\nnode-1    manager   /a\nnode-10   worker    /bb\n");
    }

    #[test]
    fn statuses() {
        assert_eq!(node_status(true, false), "running");
        assert_eq!(node_status(true, true), "partitioned");
        assert_eq!(node_status(false, false), "stopped");
        assert_eq!(node_status(false, true), "stopped,partitioned");
    }
}
