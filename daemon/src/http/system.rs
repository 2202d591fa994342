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
            let (nodes, managers) = mgr.control.counts();
            swarm.nodes = Some(nodes);
            swarm.managers = Some(managers);
            swarm.cluster = mgr.control.swarm().ok().map(|mut s| {
                s.join_tokens = None;
                s
            });
            swarm.error = String::new();
        }
    }
    let containers = node.tasks.containers().list();
    let running = containers.iter().filter(|c| c.running()).count();
    let labels: Vec<String> = cfg.engine_labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    json_response(
        StatusCode::OK,
        &json!({
            "ID": swarm.node_id,
            "Containers": containers.len(),
            "ContainersRunning": running,
            "ContainersPaused": 0,
            "ContainersStopped": containers.len() - running,
            "Images": node.images.list().len(),
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
            "CgroupVersion": if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() { "2" } else { "1" },
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
            "LiveRestoreEnabled": cfg.live_restore,
            "Isolation": "",
            "InitBinary": "",
            "SecurityOptions": [],
            "Warnings": null,
        }),
    )
}

/// `GET /system/df`: what this node's images, containers and volumes take
/// on disk, in Docker's shape (the CLI's `system df` sums it). Layer sizes
/// are the unpacked sizes recorded with each layer when it was unpacked; a
/// layer two images share counts in both images' `SharedSize` and once in
/// `LayersSize`.
pub fn df(node: &Arc<SwarmNode>, call: &super::Call) -> Reply {
    use std::collections::HashMap;
    let images = node.images.list();
    let containers = node.tasks.containers().list();
    let mut layer_size: HashMap<String, (u64, usize)> = HashMap::new();
    for r in &images {
        for d in &r.diff_ids {
            let e = layer_size.entry(d.to_string()).or_insert_with(|| (shoal_worker::image::unpack::layer_size(node.images.store(), d), 0));
            e.1 += 1;
        }
    }
    let layers_total: u64 = layer_size.values().map(|(s, _)| s).sum();
    let image_list: Vec<serde_json::Value> = images
        .iter()
        .map(|r| {
            let sizes = || r.diff_ids.iter().filter_map(|d| layer_size.get(&d.to_string()));
            let shared: u64 = sizes().filter(|(_, n)| *n > 1).map(|(s, _)| s).sum();
            let size: u64 = sizes().map(|(s, _)| s).sum();
            let id = r.id.to_string();
            let mut j = super::images::summary(r, size, shared as i64, containers.iter().filter(|c| c.image_id == id).count() as i64);
            if call.api.before(1, 44) {
                j["VirtualSize"] = j["Size"].clone();
            }
            j
        })
        .collect();
    let now = std::time::SystemTime::now();
    let container_list: Vec<serde_json::Value> = containers
        .iter()
        .map(|c| {
            let mut j = super::containers::summary(c, None, now);
            let rw = super::volumes::dir_size(&shoal_worker::image::rootfs::container_dir(node.images.store(), &c.id).join("upper"));
            let image: u64 = images.iter().find(|r| r.id.to_string() == c.image_id).map(|r| r.size).unwrap_or(0);
            j["SizeRw"] = rw.into();
            j["SizeRootFs"] = (rw + image).into();
            j
        })
        .collect();
    let store = node.tasks.executor().volumes().clone();
    let volume_list: Vec<serde_json::Value> = store
        .list()
        .iter()
        .map(|v| {
            let refs = super::volumes::users(&containers, &v.name).len();
            super::volumes::volume_json(&store, v, Some((super::volumes::dir_size(&store.data_dir(&v.name)), refs)))
        })
        .collect();
    json_response(
        StatusCode::OK,
        &json!({
            "LayersSize": layers_total,
            "Images": image_list,
            "Containers": container_list,
            "Volumes": volume_list,
            "BuildCache": [],
        }),
    )
}
