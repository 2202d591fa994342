//! Daemon configuration: command-line flags and the optional JSON config
//! file (`/etc/shoal/daemon.json`), in Docker's spirit (`labels`, ...).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;

#[derive(Parser, Debug, Clone)]
#[command(name = "shoald", version, about = "The Shoal node daemon")]
pub struct Flags {
    /// Root of persistent state
    #[arg(long, default_value = "/var/lib/shoal")]
    pub data_root: PathBuf,
    /// Root of the daemon's execution state: tmpfs mounts of task secrets
    #[arg(long, default_value = "/run/shoal")]
    pub exec_root: PathBuf,
    /// Where the Engine API listens: unix:///path, or tcp://ip:port with --tlsverify (repeatable)
    #[arg(short = 'H', long = "host", default_value = "unix:///run/shoal/shoal.sock")]
    pub hosts: Vec<String>,
    /// Require TLS client certificates on tcp:// listeners (mandatory for tcp://)
    #[arg(long)]
    pub tlsverify: bool,
    /// CA that client certificates must chain to
    #[arg(long)]
    pub tlscacert: Option<PathBuf>,
    /// Server certificate (PEM) for tcp:// listeners
    #[arg(long)]
    pub tlscert: Option<PathBuf>,
    /// Server key (PEM) for tcp:// listeners
    #[arg(long)]
    pub tlskey: Option<PathBuf>,
    /// Node hostname reported to the swarm (default: the system's)
    #[arg(long)]
    pub hostname: Option<String>,
    /// Daemon configuration file (JSON)
    #[arg(long, default_value = "/etc/shoal/daemon.json")]
    pub config_file: PathBuf,
    /// Engine labels (key=value), also settable as "labels" in the config file
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// A registry reached over plain HTTP, as dockerd's flag (repeatable;
    /// added to daemon.json's "insecure-registries")
    #[arg(long = "insecure-registry", value_name = "registry")]
    pub insecure_registries: Vec<String>,
    /// Log level: error, warn, info, debug
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// Serve Prometheus metrics at http://IP:PORT/metrics, as dockerd's
    /// flag (also daemon.json's "metrics-addr"); off unless set
    #[arg(long = "metrics-addr", value_name = "IP:PORT")]
    pub metrics_addr: Option<String>,
    /// Leave tasks running when shoald stops or crashes, and take them
    /// back when it starts again: the default (dockerd's flag, accepted)
    #[arg(long = "live-restore", overrides_with = "no_live_restore")]
    pub live_restore: bool,
    /// Stop every task when shoald stops, and remove what a crash left at
    /// the next start (dockerd's default; daemon.json "live-restore": false)
    #[arg(long = "no-live-restore", overrides_with = "live_restore")]
    pub no_live_restore: bool,
    /// How often this node replaces its WireGuard key pair for encrypted
    /// overlays, a Go duration (daemon.json "data-path-key-rotation");
    /// default 12h, as Swarm rotates its data path keys
    #[arg(long = "data-path-key-rotation", value_name = "duration")]
    pub data_path_key_rotation: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub data_root: PathBuf,
    /// Run-time state that must not outlive a reboot (`--exec-root`).
    pub exec_root: PathBuf,
    pub socket: Option<PathBuf>,
    /// TCP listeners with their mutual-TLS settings.
    pub tcp: Vec<(String, std::sync::Arc<rustls::ServerConfig>)>,
    pub hostname: String,
    pub engine_labels: BTreeMap<String, String>,
    /// Registries reached over plain HTTP (daemon.json `insecure-registries`).
    pub insecure_registries: Vec<String>,
    /// Where the gateway bridge's subnet comes from (daemon.json
    /// `default-address-pools`, Docker's key); empty means the defaults.
    pub default_address_pools: Vec<shoal_worker::network::ipam::AddressPool>,
    /// Where `/metrics` is served (`--metrics-addr`, daemon.json
    /// `metrics-addr`); None: not served.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// A stop or crash leaves the tasks running, and the next start takes
    /// them back (on unless `--no-live-restore`).
    pub live_restore: bool,
    /// How often the node's WireGuard key pair is replaced.
    pub data_path_key_rotation: std::time::Duration,
}

/// Swarm rotates its data path keys every 12 hours.
pub const DEFAULT_DATA_PATH_KEY_ROTATION: std::time::Duration = std::time::Duration::from_secs(12 * 3600);
/// Shorter would mean a handshake storm for nothing (WireGuard rekeys its
/// sessions every two minutes anyway).
const MIN_DATA_PATH_KEY_ROTATION: std::time::Duration = std::time::Duration::from_secs(1);

/// One `default-address-pools` entry as written in daemon.json.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolEntry {
    base: String,
    size: u8,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default, rename = "insecure-registries")]
    insecure_registries: Vec<String>,
    #[serde(default, rename = "default-address-pools")]
    default_address_pools: Vec<PoolEntry>,
    #[serde(default, rename = "metrics-addr")]
    metrics_addr: Option<String>,
    #[serde(default, rename = "live-restore")]
    live_restore: Option<bool>,
    #[serde(default, rename = "data-path-key-rotation")]
    data_path_key_rotation: Option<String>,
}

impl Config {
    pub fn load(flags: &Flags) -> Result<Config, String> {
        let mut socket = None;
        let mut tcp = Vec::new();
        for host in &flags.hosts {
            if let Some(path) = host.strip_prefix("unix://") {
                if socket.replace(PathBuf::from(path)).is_some() {
                    return Err("only one unix:// API socket can be served".into());
                }
            } else if let Some(addr) = host.strip_prefix("tcp://") {
                tcp.push((addr.to_string(), tcp_tls(flags, host)?));
            } else {
                return Err(format!("unsupported API address {host:?}: use unix:///path or tcp://ip:port"));
            }
        }
        let file: FileConfig = match std::fs::read_to_string(&flags.config_file) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| format!("invalid config file {}: {e}", flags.config_file.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileConfig::default(),
            Err(e) => return Err(format!("reading {}: {e}", flags.config_file.display())),
        };
        let mut engine_labels = BTreeMap::new();
        for l in file.labels.iter().chain(&flags.labels) {
            let (k, v) = l.split_once('=').ok_or_else(|| format!("bad label {l:?}: expected key=value"))?;
            engine_labels.insert(k.to_string(), v.to_string());
        }
        let hostname = flags.hostname.clone().or(file.hostname).unwrap_or_else(system_hostname);
        let mut insecure_registries = file.insecure_registries.clone();
        insecure_registries.extend(flags.insecure_registries.iter().cloned());
        let mut default_address_pools = Vec::new();
        for p in &file.default_address_pools {
            let base: shoal_worker::network::subnet::Subnet =
                p.base.parse().map_err(|e| format!("invalid default-address-pools entry {:?}: {e}", p.base))?;
            if p.size < base.prefix() || p.size > 30 {
                return Err(format!(
                    "invalid default-address-pools entry {}: size {} must be between the base's prefix length and 30",
                    p.base, p.size
                ));
            }
            default_address_pools.push(shoal_worker::network::ipam::AddressPool { base, size: p.size });
        }
        let metrics_addr = match flags.metrics_addr.as_ref().or(file.metrics_addr.as_ref()).filter(|a| !a.is_empty()) {
            None => None,
            Some(a) => Some(a.parse().map_err(|_| format!("invalid metrics-addr {a:?}: expected IP:PORT, e.g. 127.0.0.1:9323"))?),
        };
        let data_path_key_rotation = match flags.data_path_key_rotation.as_ref().or(file.data_path_key_rotation.as_ref()) {
            None => DEFAULT_DATA_PATH_KEY_ROTATION,
            Some(text) => {
                let ns = shoal_api::duration::parse_go_duration(text).map_err(|e| format!("invalid data-path-key-rotation: {e}"))?;
                let d = std::time::Duration::from_nanos(ns.max(0) as u64);
                if d < MIN_DATA_PATH_KEY_ROTATION {
                    return Err(format!("invalid data-path-key-rotation {text:?}: it must be at least 1s"));
                }
                d
            }
        };
        Ok(Config {
            data_root: flags.data_root.clone(),
            exec_root: flags.exec_root.clone(),
            socket,
            tcp,
            hostname,
            engine_labels,
            insecure_registries,
            default_address_pools,
            metrics_addr,
            live_restore: if flags.live_restore {
                true
            } else if flags.no_live_restore {
                false
            } else {
                file.live_restore.unwrap_or(true)
            },
            data_path_key_rotation,
        })
    }

    pub fn swarm_dir(&self) -> PathBuf {
        self.data_root.join("swarm")
    }
}

/// The mutual-TLS settings a tcp:// listener must have: an open TCP API is
/// how hosts get taken over, so there is no plain or server-only TLS mode.
fn tcp_tls(flags: &Flags, host: &str) -> Result<std::sync::Arc<rustls::ServerConfig>, String> {
    let (Some(ca), Some(cert), Some(key), true) = (&flags.tlscacert, &flags.tlscert, &flags.tlskey, flags.tlsverify) else {
        return Err(format!(
            "refusing to serve the API on {host} without client certificates: tcp:// needs --tlsverify with --tlscacert, --tlscert and --tlskey"
        ));
    };
    let read = |p: &PathBuf| std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()));
    shoal_security::tls::api_server_config(&read(ca)?, &read(cert)?, &read(key)?)
}

fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(dir: &std::path::Path, extra: &[&str]) -> Flags {
        let mut args = vec!["shoald".to_string(), "--data-root".into(), dir.join("d").display().to_string()];
        args.push("--config-file".into());
        args.push(dir.join("daemon.json").display().to_string());
        args.extend(extra.iter().map(|s| s.to_string()));
        Flags::parse_from(args)
    }

    #[test]
    fn live_restore_is_on_unless_a_flag_or_the_file_turns_it_off() {
        let dir = std::env::temp_dir().join(format!("shoald-config-lr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("daemon.json"), "{}").unwrap();
        let live = |extra: &[&str]| Config::load(&flags(&dir, extra)).unwrap().live_restore;
        assert!(live(&[]), "on by default");
        assert!(!live(&["--no-live-restore"]));
        assert!(live(&["--no-live-restore", "--live-restore"]), "the last flag wins");
        std::fs::write(dir.join("daemon.json"), r#"{"live-restore": false}"#).unwrap();
        assert!(!live(&[]), "daemon.json turns it off");
        assert!(live(&["--live-restore"]), "a flag overrides the file");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_data_path_key_rotation_is_a_go_duration_from_a_flag_or_the_file() {
        let dir = std::env::temp_dir().join(format!("shoald-config-dpk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("daemon.json"), "{}").unwrap();
        let load = |extra: &[&str]| Config::load(&flags(&dir, extra)).map(|c| c.data_path_key_rotation);
        assert_eq!(load(&[]), Ok(DEFAULT_DATA_PATH_KEY_ROTATION));
        assert_eq!(load(&["--data-path-key-rotation", "1m30s"]), Ok(std::time::Duration::from_secs(90)));
        assert_eq!(
            load(&["--data-path-key-rotation", "5"]),
            Err("invalid data-path-key-rotation: time: missing unit in duration \"5\"".into())
        );
        assert_eq!(
            load(&["--data-path-key-rotation", "10ms"]),
            Err("invalid data-path-key-rotation \"10ms\": it must be at least 1s".into())
        );
        std::fs::write(dir.join("daemon.json"), r#"{"data-path-key-rotation": "2h"}"#).unwrap();
        assert_eq!(load(&[]), Ok(std::time::Duration::from_secs(7200)));
        assert_eq!(load(&["--data-path-key-rotation", "3s"]), Ok(std::time::Duration::from_secs(3)), "a flag overrides the file");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn engine_labels_come_from_file_and_flags() {
        let dir = std::env::temp_dir().join(format!("shoald-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("daemon.json"), r#"{"labels": ["storage=ssd", "zone=a"]}"#).unwrap();
        let cfg = Config::load(&flags(&dir, &["--label", "zone=b", "--hostname", "h1"])).unwrap();
        assert_eq!(cfg.engine_labels["storage"], "ssd");
        assert_eq!(cfg.engine_labels["zone"], "b", "flags override the file");
        assert_eq!(cfg.hostname, "h1");
        assert_eq!(cfg.socket, Some(PathBuf::from("/run/shoal/shoal.sock")));

        std::fs::write(dir.join("daemon.json"), r#"{"labelz": []}"#).unwrap();
        let e = Config::load(&flags(&dir, &[])).unwrap_err();
        assert!(e.contains("invalid config file"), "{e}");
        std::fs::write(dir.join("daemon.json"), r#"{"labels": ["nokey"]}"#).unwrap();
        assert!(Config::load(&flags(&dir, &[])).unwrap_err().contains("bad label"));
        std::fs::write(dir.join("daemon.json"), r#"{"default-address-pools": [{"base": "10.99.0.0/16", "size": 24}]}"#).unwrap();
        let pools = Config::load(&flags(&dir, &[])).unwrap().default_address_pools;
        assert_eq!(pools[0].base.to_string(), "10.99.0.0/16");
        assert_eq!(pools[0].size, 24);
        std::fs::write(dir.join("daemon.json"), r#"{"default-address-pools": [{"base": "10.99.0.0/16", "size": 8}]}"#).unwrap();
        let e = Config::load(&flags(&dir, &[])).unwrap_err();
        assert!(e.contains("size 8"), "{e}");
        std::fs::write(dir.join("daemon.json"), r#"{"default-address-pools": [{"base": "10.99.0.0", "size": 24}]}"#).unwrap();
        let e = Config::load(&flags(&dir, &[])).unwrap_err();
        assert!(e.contains("invalid CIDR address: 10.99.0.0"), "{e}");
        std::fs::write(dir.join("daemon.json"), "{}").unwrap();
        assert!(Config::load(&flags(&dir, &[])).unwrap().default_address_pools.is_empty());
        assert_eq!(Config::load(&flags(&dir, &[])).unwrap().metrics_addr, None, "metrics are off unless configured");
        let addr = Config::load(&flags(&dir, &["--metrics-addr", "127.0.0.1:9323"])).unwrap().metrics_addr;
        assert_eq!(addr, Some("127.0.0.1:9323".parse().unwrap()));
        std::fs::write(dir.join("daemon.json"), r#"{"metrics-addr": "0.0.0.0:9100"}"#).unwrap();
        assert_eq!(Config::load(&flags(&dir, &[])).unwrap().metrics_addr, Some("0.0.0.0:9100".parse().unwrap()));
        let addr = Config::load(&flags(&dir, &["--metrics-addr", "127.0.0.1:9323"])).unwrap().metrics_addr;
        assert_eq!(addr, Some("127.0.0.1:9323".parse().unwrap()), "the flag overrides the file");
        let e = Config::load(&flags(&dir, &["--metrics-addr", "localhost"])).unwrap_err();
        assert!(e.contains("invalid metrics-addr \"localhost\""), "{e}");
        std::fs::write(dir.join("daemon.json"), "{}").unwrap();
        let e = Config::load(&flags(&dir, &["-H", "tcp://0.0.0.0:2375"])).unwrap_err();
        assert!(e.contains("without client certificates"), "{e}");
        let e = Config::load(&flags(&dir, &["-H", "tcp://0.0.0.0:2376", "--tlsverify"])).unwrap_err();
        assert!(e.contains("--tlscacert"), "{e}");
        assert!(Config::load(&flags(&dir, &["-H", "fd://"])).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
