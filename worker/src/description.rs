//! What a node says about itself: hostname, platform, resources, engine.

use std::collections::BTreeMap;

use shoal_api::{EngineDescription, NodeDescription, Platform, Resources};

pub fn describe(hostname: &str, engine_labels: &BTreeMap<String, String>) -> NodeDescription {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as i64;
    NodeDescription {
        hostname: hostname.to_string(),
        platform: Platform { architecture: std::env::consts::ARCH.to_string(), os: std::env::consts::OS.to_string() },
        resources: Resources { nano_cpus: cpus * 1_000_000_000, memory_bytes: total_memory() },
        engine: EngineDescription {
            engine_version: shoal_api::ENGINE_VERSION.to_string(),
            labels: engine_labels.clone(),
            plugins: Vec::new(),
        },
        tls_info: Default::default(),
        data_path_key: String::new(),
    }
}

/// The host's memory in bytes (`MemTotal` of /proc/meminfo; 0 if unknown).
pub fn total_memory() -> i64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    parse_mem_total(&text).unwrap_or(0)
}

fn parse_mem_total(meminfo: &str) -> Option<i64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mem_total() {
        assert_eq!(parse_mem_total("MemTotal:       16384 kB\nMemFree: 1 kB\n"), Some(16 * 1024 * 1024));
        assert_eq!(parse_mem_total("nothing"), None);
    }

    #[test]
    fn describes_this_machine() {
        let d = describe("h", &BTreeMap::new());
        assert_eq!(d.platform.os, "linux");
        assert!(d.resources.nano_cpus >= 1_000_000_000);
    }
}
