//! Resource usage of a container, read from its cgroup (v2, or the v1
//! controllers of a hybrid host) and its network namespace, in the shape of
//! the Engine API's `/containers/{id}/stats` (what `docker stats` reads).
//!
//! Reading is split from parsing: the `parse_*` functions take the files'
//! text and are tested on their own; `sample` reads one snapshot.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// Where a container's cgroup lives.
#[derive(Clone, Debug, PartialEq)]
pub enum CgroupDirs {
    /// The unified hierarchy: one directory.
    V2(PathBuf),
    /// One directory per v1 controller (cpuacct, memory, pids, blkio).
    V1 { cpuacct: PathBuf, memory: PathBuf, pids: PathBuf, blkio: PathBuf },
}

impl CgroupDirs {
    /// The cgroup of `path` (`/parent/id`, as in the OCI spec's
    /// `cgroupsPath`) under the host's hierarchy at `root`.
    pub fn of(root: &Path, path: &str) -> CgroupDirs {
        let rel = path.trim_start_matches('/');
        if root.join("cgroup.controllers").exists() {
            return CgroupDirs::V2(root.join(rel));
        }
        CgroupDirs::V1 {
            cpuacct: root.join("cpuacct").join(rel),
            memory: root.join("memory").join(rel),
            pids: root.join("pids").join(rel),
            blkio: root.join("blkio").join(rel),
        }
    }
}

/// One snapshot of the counters the CLI turns into its columns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    /// Nanoseconds of CPU: total, in the kernel, in user space.
    pub cpu_total: u64,
    pub cpu_kernel: u64,
    pub cpu_user: u64,
    /// The host's CPU time in nanoseconds (all CPUs, from /proc/stat).
    pub system_cpu: u64,
    pub online_cpus: u64,
    pub memory_usage: u64,
    pub memory_limit: u64,
    pub memory_stat: BTreeMap<String, u64>,
    pub pids_current: u64,
    pub pids_limit: Option<u64>,
    /// (major, minor, op, bytes).
    pub io: Vec<(u64, u64, String, u64)>,
    /// Interface → (rx bytes, rx packets, rx errors, rx dropped, tx bytes, tx packets, tx errors, tx dropped).
    pub networks: BTreeMap<String, [u64; 8]>,
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn read_u64(p: &Path) -> Option<u64> {
    read(p).trim().parse().ok()
}

/// `key value` lines (`memory.stat`, `cpu.stat`, `cpuacct.stat`).
pub fn parse_flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.parse().ok()?))
        })
        .collect()
}

/// v2 `io.stat`: `MAJ:MIN rbytes=.. wbytes=.. ...` → Docker's read/write
/// entries.
pub fn parse_io_stat_v2(text: &str) -> Vec<(u64, u64, String, u64)> {
    let mut out = Vec::new();
    for l in text.lines() {
        let mut w = l.split_whitespace();
        let Some((maj, min)) = w.next().and_then(|d| d.split_once(':')) else { continue };
        let (Ok(maj), Ok(min)) = (maj.parse(), min.parse()) else { continue };
        for kv in w {
            match kv.split_once('=') {
                Some(("rbytes", v)) => out.push((maj, min, "read".to_string(), v.parse().unwrap_or(0))),
                Some(("wbytes", v)) => out.push((maj, min, "write".to_string(), v.parse().unwrap_or(0))),
                _ => {}
            }
        }
    }
    out
}

/// v1 `blkio.throttle.io_service_bytes`: `MAJ:MIN Op value` lines (and a
/// `Total` line, left out as Docker does).
pub fn parse_blkio_v1(text: &str) -> Vec<(u64, u64, String, u64)> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (maj, min) = w.next()?.split_once(':')?;
            let op = w.next()?.to_lowercase();
            Some((maj.parse().ok()?, min.parse().ok()?, op, w.next()?.parse().ok()?))
        })
        .collect()
}

/// `/proc/<pid>/net/dev` → per interface counters (loopback left out, as
/// Docker shows only the container's own interfaces).
pub fn parse_net_dev(text: &str) -> BTreeMap<String, [u64; 8]> {
    let mut out = BTreeMap::new();
    for l in text.lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else { continue };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let f: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        if f.len() >= 12 {
            out.insert(name.to_string(), [f[0], f[1], f[2], f[3], f[8], f[9], f[10], f[11]]);
        }
    }
    out
}

/// The host's CPU time in nanoseconds: the `cpu` line of /proc/stat, in
/// clock ticks (USER_HZ is 100 on Linux).
pub fn parse_proc_stat_cpu(text: &str) -> u64 {
    let ticks: u64 = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .map(|l| l.split_whitespace().skip(1).take(8).filter_map(|x| x.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    ticks * (1_000_000_000 / 100)
}

/// A limit file's value (`max` or the v1 "no limit" sentinel is none).
fn limit(text: &str) -> Option<u64> {
    let v: u64 = text.trim().parse().ok()?;
    // v1 writes an unlimited memory limit as a huge page-rounded number.
    (v < (1 << 62)).then_some(v)
}

/// One snapshot of the cgroup `dirs` and of process `pid`'s network
/// namespace (0: none).
pub fn sample(dirs: &CgroupDirs, pid: i32) -> Sample {
    let mut s = Sample {
        system_cpu: parse_proc_stat_cpu(&read(Path::new("/proc/stat"))),
        online_cpus: std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1),
        ..Default::default()
    };
    let host_memory = crate::description::total_memory().max(0) as u64;
    match dirs {
        CgroupDirs::V2(d) => {
            let cpu = parse_flat_keyed(&read(&d.join("cpu.stat")));
            s.cpu_total = cpu.get("usage_usec").copied().unwrap_or(0) * 1000;
            s.cpu_user = cpu.get("user_usec").copied().unwrap_or(0) * 1000;
            s.cpu_kernel = cpu.get("system_usec").copied().unwrap_or(0) * 1000;
            s.memory_usage = read_u64(&d.join("memory.current")).unwrap_or(0);
            s.memory_limit = limit(&read(&d.join("memory.max"))).unwrap_or(host_memory);
            s.memory_stat = parse_flat_keyed(&read(&d.join("memory.stat")));
            s.pids_current = read_u64(&d.join("pids.current")).unwrap_or(0);
            s.pids_limit = limit(&read(&d.join("pids.max")));
            s.io = parse_io_stat_v2(&read(&d.join("io.stat")));
        }
        CgroupDirs::V1 { cpuacct, memory, pids, blkio } => {
            s.cpu_total = read_u64(&cpuacct.join("cpuacct.usage")).unwrap_or(0);
            s.cpu_user = read_u64(&cpuacct.join("cpuacct.usage_user")).unwrap_or(0);
            s.cpu_kernel = read_u64(&cpuacct.join("cpuacct.usage_sys")).unwrap_or(0);
            s.memory_usage = read_u64(&memory.join("memory.usage_in_bytes")).unwrap_or(0);
            s.memory_limit = limit(&read(&memory.join("memory.limit_in_bytes"))).unwrap_or(host_memory).min(host_memory.max(1));
            s.memory_stat = parse_flat_keyed(&read(&memory.join("memory.stat")));
            s.pids_current = read_u64(&pids.join("pids.current")).unwrap_or(0);
            s.pids_limit = limit(&read(&pids.join("pids.max")));
            s.io = parse_blkio_v1(&read(&blkio.join("blkio.throttle.io_service_bytes")));
        }
    }
    if pid > 0 {
        s.networks = parse_net_dev(&read(&Path::new("/proc").join(pid.to_string()).join("net/dev")));
    }
    s
}

fn cpu_json(s: Option<&Sample>) -> Value {
    match s {
        Some(s) => json!({
            "cpu_usage": { "total_usage": s.cpu_total, "usage_in_kernelmode": s.cpu_kernel, "usage_in_usermode": s.cpu_user },
            "system_cpu_usage": s.system_cpu,
            "online_cpus": s.online_cpus,
            "throttling_data": { "periods": 0, "throttled_periods": 0, "throttled_time": 0 },
        }),
        None => json!({
            "cpu_usage": { "total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0 },
            "throttling_data": { "periods": 0, "throttled_periods": 0, "throttled_time": 0 },
        }),
    }
}

/// The Engine API's stats object from a sample and the one before it
/// (`pre`, with its time), for container `id` named `name`.
pub fn to_json(id: &str, name: &str, now: &str, s: &Sample, pre: Option<(&str, &Sample)>) -> Value {
    let io: Vec<Value> = s.io.iter().map(|(maj, min, op, v)| json!({ "major": maj, "minor": min, "op": op, "value": v })).collect();
    let networks: serde_json::Map<String, Value> = s
        .networks
        .iter()
        .map(|(n, c)| {
            (
                n.clone(),
                json!({
                    "rx_bytes": c[0], "rx_packets": c[1], "rx_errors": c[2], "rx_dropped": c[3],
                    "tx_bytes": c[4], "tx_packets": c[5], "tx_errors": c[6], "tx_dropped": c[7],
                }),
            )
        })
        .collect();
    let mut pids = json!({ "current": s.pids_current });
    if let Some(l) = s.pids_limit {
        pids["limit"] = l.into();
    }
    json!({
        "read": now,
        "preread": pre.map(|(t, _)| t.to_string()).unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        "pids_stats": pids,
        "blkio_stats": { "io_service_bytes_recursive": io, "io_serviced_recursive": null, "io_queue_recursive": null,
            "io_service_time_recursive": null, "io_wait_time_recursive": null, "io_merged_recursive": null,
            "io_time_recursive": null, "sectors_recursive": null },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_json(Some(s)),
        "precpu_stats": cpu_json(pre.map(|(_, p)| p)),
        "memory_stats": { "usage": s.memory_usage, "stats": s.memory_stat, "limit": s.memory_limit },
        "name": format!("/{name}"),
        "id": id,
        "networks": networks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_files_are_read_as_the_kernel_writes_them() {
        let m = parse_flat_keyed("cache 4096\ninactive_file 1024\ntotal_inactive_file 2048\n");
        assert_eq!((m["inactive_file"], m["total_inactive_file"]), (1024, 2048));
        assert_eq!(
            parse_io_stat_v2("8:0 rbytes=4096 wbytes=512 rios=1 wios=2 dbytes=0 dios=0\n"),
            vec![(8, 0, "read".to_string(), 4096), (8, 0, "write".to_string(), 512)]
        );
        assert_eq!(
            parse_blkio_v1("8:0 Read 100\n8:0 Write 7\n8:0 Sync 107\nTotal 107\n")[..2],
            [(8, 0, "read".to_string(), 100), (8, 0, "write".to_string(), 7)]
        );
        let net = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n    lo: 10 1 0 0 0 0 0 0 10 1 0 0 0 0 0 0\n  eth0: 1500 12 1 2 0 0 0 0 900 9 3 4 0 0 0 0\n";
        let n = parse_net_dev(net);
        assert_eq!(n.keys().collect::<Vec<_>>(), ["eth0"], "loopback left out");
        assert_eq!(n["eth0"], [1500, 12, 1, 2, 900, 9, 3, 4]);
        assert_eq!(parse_proc_stat_cpu("cpu  100 0 50 850 0 0 0 0 0 0\ncpu0 1 2 3\n"), 1000 * 10_000_000);
        assert_eq!(limit("max\n"), None);
        assert_eq!(limit("9223372036854771712\n"), None, "v1's unlimited");
        assert_eq!(limit("67108864\n"), Some(64 << 20));
    }

    #[test]
    fn the_stats_object_has_docker_s_shape() {
        let s = Sample { cpu_total: 5, system_cpu: 100, online_cpus: 2, memory_usage: 10, memory_limit: 20, ..Default::default() };
        let j = to_json("abc", "web.1.x", "2026-01-01T00:00:01Z", &s, Some(("2026-01-01T00:00:00Z", &Sample::default())));
        assert_eq!(j["name"], "/web.1.x");
        assert_eq!(j["cpu_stats"]["cpu_usage"]["total_usage"], 5);
        assert_eq!(j["precpu_stats"]["system_cpu_usage"], 0);
        assert_eq!((j["memory_stats"]["usage"].as_u64(), j["memory_stats"]["limit"].as_u64()), (Some(10), Some(20)));
        assert_eq!(j["preread"], "2026-01-01T00:00:00Z");
        let first = to_json("abc", "n", "t", &s, None);
        assert_eq!(first["preread"], "0001-01-01T00:00:00Z");
        assert!(first["precpu_stats"].get("system_cpu_usage").is_none());
    }

    #[test]
    fn this_process_cgroup_can_be_sampled() {
        // Whatever hierarchy the host has, the root cgroup reads without
        // error and the host's CPU time moves forward.
        let dirs = CgroupDirs::of(Path::new("/sys/fs/cgroup"), "/");
        let a = sample(&dirs, std::process::id() as i32);
        assert!(a.system_cpu > 0 && a.online_cpus >= 1, "{a:?}");
        assert!(a.memory_limit > 0, "{a:?}");
    }
}
