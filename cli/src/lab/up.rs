//! `shoal lab up`: build the network, start the daemons, form the swarm.

use super::process::{self, POLL};
use super::state::{self, LabLock, LabState, NodeState, Role};
use super::{env_flag, netns, ops, require_root};
use std::fs;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// How long `up` and `start` wait for daemons to answer `/_ping`.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `up` waits for every node to be ready in the swarm after joining.
const SWARM_TIMEOUT: Duration = Duration::from_secs(30);

pub fn up(name: &str, managers: usize, workers: usize, daemon: &super::DaemonOptions) -> Result<(), String> {
    require_root()?;
    let mut lab = state::plan(name, managers, workers)?;
    for node in &mut lab.nodes {
        node.insecure_registries = daemon.insecure_registries.clone();
        node.metrics_addr = daemon.metrics_port.map(|p| format!("{}:{p}", node.addr));
        node.no_live_restore = daemon.no_live_restore;
        node.data_path_key_rotation = daemon.data_path_key_rotation.clone();
    }
    let shoald = process::find_shoald()?;
    let exists_err = || format!("lab {name} already exists; run 'shoal lab down --name {name}' first");
    let leftover_netns = netns::list()?.into_iter().any(|n| state::is_lab_netns(name, &n));
    if leftover_netns || state::data_dir(name).exists() {
        return Err(exists_err());
    }
    fs::create_dir_all(state::RUN_ROOT).map_err(|e| format!("cannot create {}: {e}", state::RUN_ROOT))?;
    // Creating the run dir is the atomic claim on the name.
    match fs::create_dir(state::run_dir(name)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(exists_err()),
        Err(e) => return Err(format!("cannot create {}: {e}", state::run_dir(name).display())),
    }
    let _lock = LabLock::acquire(name)?;
    lab.save()?;
    if let Err(e) = bring_up(&mut lab, &shoald) {
        return Err(format!(
            "{e}\nlab {name} is left as it is for inspection ('shoal lab logs --name {name} NODE'); \
             remove it with 'shoal lab down --name {name}'"
        ));
    }
    ops::print_table(
        &["NAME", "ROLE", "ADDRESS", "SOCKET"],
        lab.nodes.iter().map(|n| vec![n.name.clone(), n.role.as_str().into(), n.addr.clone(), n.socket.display().to_string()]).collect(),
    );
    println!("Try: SHOAL_HOST={} shoal node ls", lab.nodes[0].host_url());
    Ok(())
}

fn bring_up(lab: &mut LabState, shoald: &Path) -> Result<(), String> {
    eprintln!("Creating lab {}: {} host namespace(s) on switch {} ({})", lab.name, lab.nodes.len(), lab.switch_netns, lab.subnet);
    netns::create_switch(lab)?;
    for node in &lab.nodes {
        netns::create_host(lab, node)?;
    }

    eprintln!("Starting shoald ({}) on {} node(s)...", shoald.display(), lab.nodes.len());
    let mut children = Vec::new();
    for i in 0..lab.nodes.len() {
        let child = process::spawn_daemon(shoald, &lab.nodes[i])?;
        lab.nodes[i].pid = Some(child.id());
        lab.save()?;
        children.push(child);
    }
    let mut waiting: Vec<(&NodeState, Child)> = lab.nodes.iter().zip(children).collect();
    wait_daemons(&mut waiting, START_TIMEOUT)?;

    if env_flag("SHOAL_LAB_NO_SWARM") {
        eprintln!("SHOAL_LAB_NO_SWARM is set: not forming a swarm");
        return Ok(());
    }
    form_swarm(lab)?;
    wait_swarm_ready(lab, SWARM_TIMEOUT)
}

/// Wait until every daemon answers `/_ping`; fail early when one exits.
pub fn wait_daemons(waiting: &mut [(&NodeState, Child)], timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut ready = vec![false; waiting.len()];
    loop {
        for (i, (node, child)) in waiting.iter_mut().enumerate() {
            if ready[i] {
                continue;
            }
            if process::ping(&node.socket) {
                ready[i] = true;
            } else if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "shoald on {} exited ({status}) before answering GET /_ping\n{}",
                    node.name,
                    process::log_excerpt(node, 20)
                ));
            }
        }
        if ready.iter().all(|r| *r) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let late: Vec<&(&NodeState, Child)> = waiting.iter().zip(&ready).filter(|(_, r)| !**r).map(|(w, _)| w).collect();
            let names: Vec<&str> = late.iter().map(|(n, _)| n.name.as_str()).collect();
            return Err(format!(
                "shoald on {} did not answer GET /_ping on its socket within {}s\n{}",
                names.join(", "),
                timeout.as_secs(),
                process::log_excerpt(late[0].0, 20)
            ));
        }
        std::thread::sleep(POLL);
    }
}

fn form_swarm(lab: &LabState) -> Result<(), String> {
    let first = &lab.nodes[0];
    eprintln!("Initializing a swarm on {} ({})...", first.name, first.addr);
    process::run_shoal(first, &["swarm", "init", "--advertise-addr", &first.addr])?;
    let remote = format!("{}:{}", first.addr, state::SWARM_PORT);
    let token = |role: &str| -> Result<String, String> {
        let t = process::run_shoal(first, &["swarm", "join-token", "-q", role])?.trim().to_string();
        if t.is_empty() || t.contains(char::is_whitespace) {
            return Err(format!("'shoal swarm join-token -q {role}' on {} printed {t:?}, not a token", first.name));
        }
        Ok(t)
    };
    let rest = &lab.nodes[1..];
    let manager_token = if rest.iter().any(|n| n.role == Role::Manager) { Some(token("manager")?) } else { None };
    let worker_token = if rest.iter().any(|n| n.role == Role::Worker) { Some(token("worker")?) } else { None };
    // Managers first (the plan orders them so), one at a time.
    for node in rest {
        let token = match node.role {
            Role::Manager => manager_token.as_deref(),
            Role::Worker => worker_token.as_deref(),
        }
        .expect("token fetched for every role present");
        eprintln!("Joining {} ({}) as a {}...", node.name, node.addr, node.role.as_str());
        process::run_shoal(node, &join_args(node, token, &remote).iter().map(String::as_str).collect::<Vec<_>>())?;
    }
    Ok(())
}

/// `swarm join` arguments for a node.
fn join_args(node: &NodeState, token: &str, remote: &str) -> Vec<String> {
    ["swarm", "join", "--token", token, "--advertise-addr", &node.addr, remote].iter().map(|s| s.to_string()).collect()
}

/// Wait until node-1 lists every lab node as ready (and every manager reachable).
fn wait_swarm_ready(lab: &LabState, timeout: Duration) -> Result<(), String> {
    let first = &lab.nodes[0];
    let deadline = Instant::now() + timeout;
    let want_managers = lab.nodes.iter().filter(|n| n.role == Role::Manager).count();
    loop {
        let last = match process::http_get(&first.socket, "/nodes", Duration::from_secs(5)) {
            Ok((200, body)) => match swarm_readiness(&body) {
                Ok((ready, reachable)) if ready >= lab.nodes.len() && reachable >= want_managers => return Ok(()),
                Ok((ready, reachable)) => {
                    format!("{ready} of {} nodes ready, {reachable} of {want_managers} managers reachable", lab.nodes.len())
                }
                Err(e) => e,
            },
            Ok((status, body)) => format!("GET /nodes: {status} {}", String::from_utf8_lossy(&body).trim()),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(format!("the swarm did not become ready within {}s ({last}, as seen by {})", timeout.as_secs(), first.name));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// From a `GET /nodes` body: how many nodes are ready, how many managers reachable.
fn swarm_readiness(body: &[u8]) -> Result<(usize, usize), String> {
    let nodes: Vec<serde_json::Value> = serde_json::from_slice(body).map_err(|e| format!("GET /nodes: unexpected body: {e}"))?;
    let ready = nodes.iter().filter(|n| n["Status"]["State"] == "ready").count();
    let reachable = nodes.iter().filter(|n| n["ManagerStatus"]["Reachability"] == "reachable").count();
    Ok((ready, reachable))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_command_line() {
        let lab = state::plan("lab", 2, 1).unwrap();
        assert_eq!(
            join_args(&lab.nodes[2], "SWMTKN-1-x-y", "192.168.77.11:2377").join(" "),
            "swarm join --token SWMTKN-1-x-y --advertise-addr 192.168.77.13 192.168.77.11:2377"
        );
    }

    #[test]
    fn readiness_from_nodes_body() {
        let body = br#"[
            {"ID":"a","Status":{"State":"ready"},"ManagerStatus":{"Leader":true,"Reachability":"reachable"}},
            {"ID":"b","Status":{"State":"ready"},"ManagerStatus":{"Reachability":"unreachable"}},
            {"ID":"c","Status":{"State":"down"}}
        ]"#;
        assert_eq!(swarm_readiness(body).unwrap(), (2, 1));
        assert!(swarm_readiness(b"{\"message\":\"x\"}").is_err());
    }
}
