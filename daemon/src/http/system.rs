//! `/_ping`, `/version`, `/info`.

use std::sync::Arc;

use hyper::StatusCode;
use serde_json::json;
use shoal_api::info::{LocalNodeState, Peer, SwarmInfo};

use super::{json_response, Reply};
use crate::swarm::SwarmNode;

pub fn ping(node: &Arc<SwarmNode>) -> Reply {
    let swarm = match node.local_state() {
        LocalNodeState::Active if node.manager().is_some() => "active/manager",
        LocalNodeState::Active => "active/worker",
        LocalNodeState::Pending => "pending",
        LocalNodeState::Error => "error",
        LocalNodeState::Locked => "locked",
        LocalNodeState::Inactive => "inactive",
    };
    let mut r = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(b"OK")));
    let h = r.headers_mut();
    h.insert("Swarm", swarm.parse().expect("static header"));
    h.insert("Content-Type", "text/plain; charset=utf-8".parse().expect("static header"));
    h.insert("Cache-Control", "no-cache, no-store, must-revalidate".parse().expect("static header"));
    Ok(r)
}

fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default()
}

pub fn version() -> Reply {
    let v = shoal_api::ENGINE_VERSION;
    json_response(
        StatusCode::OK,
        &json!({
            "Platform": {"Name": "Shoal"},
            "Components": [{"Name": "Engine", "Version": v, "Details": {
                "ApiVersion": shoal_api::API_VERSION, "MinAPIVersion": shoal_api::MIN_API_VERSION,
                "Os": "linux", "Arch": go_arch(), "KernelVersion": kernel_version()}}],
            "Version": v,
            "ApiVersion": shoal_api::API_VERSION,
            "MinAPIVersion": shoal_api::MIN_API_VERSION,
            "GitCommit": "",
            "GoVersion": "rust",
            "Os": "linux",
            "Arch": go_arch(),
            "KernelVersion": kernel_version(),
            "BuildTime": "",
        }),
    )
}

/// Architecture names as Docker (Go) spells them.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub fn info(node: &Arc<SwarmNode>) -> Reply {
    let cfg = &node.cfg;
    let desc = shoal_worker::description::describe(&cfg.hostname, &cfg.engine_labels);
    let mut swarm = SwarmInfo { local_node_state: node.local_state(), ..Default::default() };
    if let Some((node_id, addr, managers, error)) = node.identity() {
        swarm.node_id = node_id;
        swarm.node_addr = addr;
        swarm.error = error.unwrap_or_default();
        swarm.remote_managers = Some(managers.iter().map(|m| Peer { node_id: m.node_id.clone(), addr: m.addr.clone() }).collect());
        if let Some(mgr) = node.manager() {
            swarm.control_available = true;
            let (nodes, managers) = mgr.counts();
            swarm.nodes = Some(nodes);
            swarm.managers = Some(managers);
            swarm.cluster = mgr.swarm().ok().map(|mut s| {
                s.join_tokens = None;
                s
            });
            swarm.error = String::new();
        }
    }
    let labels: Vec<String> = cfg.engine_labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    json_response(
        StatusCode::OK,
        &json!({
            "ID": swarm.node_id,
            "Containers": 0, "ContainersRunning": 0, "ContainersPaused": 0, "ContainersStopped": 0,
            "Images": 0,
            "Driver": "overlayfs",
            "DriverStatus": [],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "overlay"], "Authorization": null, "Log": ["json-file"]},
            "MemoryLimit": true, "SwapLimit": false, "CpuCfsPeriod": true, "CpuCfsQuota": true,
            "IPv4Forwarding": true,
            "Debug": false,
            "NFd": 0, "NGoroutines": 0,
            "SystemTime": shoal_api::time::now_rfc3339(),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": "2",
            "KernelVersion": kernel_version(),
            "OperatingSystem": "Shoal",
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": desc.platform.architecture,
            "NCPU": desc.resources.nano_cpus / 1_000_000_000,
            "MemTotal": desc.resources.memory_bytes,
            "DockerRootDir": cfg.data_root,
            "Name": cfg.hostname,
            "Labels": labels,
            "ExperimentalBuild": false,
            "ServerVersion": shoal_api::ENGINE_VERSION,
            "Runtimes": {"runc": {"path": "runc"}},
            "DefaultRuntime": "runc",
            "Swarm": swarm,
            "LiveRestoreEnabled": false,
            "Isolation": "",
            "InitBinary": "",
            "SecurityOptions": [],
            "Warnings": null,
        }),
    )
}
