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
    /// Where the Engine API listens (unix:///path)
    #[arg(short = 'H', long = "host", default_value = "unix:///run/shoal/shoal.sock")]
    pub host: String,
    /// Node hostname reported to the swarm (default: the system's)
    #[arg(long)]
    pub hostname: Option<String>,
    /// Daemon configuration file (JSON)
    #[arg(long, default_value = "/etc/shoal/daemon.json")]
    pub config_file: PathBuf,
    /// Engine labels (key=value), also settable as "labels" in the config file
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Log level: error, warn, info, debug
    #[arg(long, default_value = "info")]
    pub log_level: String,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub data_root: PathBuf,
    pub socket: PathBuf,
    pub hostname: String,
    pub engine_labels: BTreeMap<String, String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    hostname: Option<String>,
}

impl Config {
    pub fn load(flags: &Flags) -> Result<Config, String> {
        let socket = flags
            .host
            .strip_prefix("unix://")
            .ok_or_else(|| format!("unsupported API address {:?}: only unix:// sockets are served (a TCP listener needs TLS client certificates)", flags.host))?;
        let file: FileConfig = match std::fs::read_to_string(&flags.config_file) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| format!("invalid config file {}: {e}", flags.config_file.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileConfig::default(),
            Err(e) => return Err(format!("reading {}: {e}", flags.config_file.display())),
        };
        let mut engine_labels = BTreeMap::new();
        for l in file.labels.iter().chain(&flags.labels) {
            let (k, v) = l.split_once('=').ok_or_else(|| format!("bad label {l:?}: expected key=value"))?;
            engine_labels.insert(k.to_string(), v.to_string());
        }
        let hostname = flags.hostname.clone().or(file.hostname).unwrap_or_else(system_hostname);
        Ok(Config { data_root: flags.data_root.clone(), socket: PathBuf::from(socket), hostname, engine_labels })
    }

    pub fn swarm_dir(&self) -> PathBuf {
        self.data_root.join("swarm")
    }
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
    fn engine_labels_come_from_file_and_flags() {
        let dir = std::env::temp_dir().join(format!("shoald-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("daemon.json"), r#"{"labels": ["storage=ssd", "zone=a"]}"#).unwrap();
        let cfg = Config::load(&flags(&dir, &["--label", "zone=b", "--hostname", "h1"])).unwrap();
        assert_eq!(cfg.engine_labels["storage"], "ssd");
        assert_eq!(cfg.engine_labels["zone"], "b", "flags override the file");
        assert_eq!(cfg.hostname, "h1");
        assert_eq!(cfg.socket, PathBuf::from("/run/shoal/shoal.sock"));

        std::fs::write(dir.join("daemon.json"), r#"{"labelz": []}"#).unwrap();
        let e = Config::load(&flags(&dir, &[])).unwrap_err();
        assert!(e.contains("invalid config file"), "{e}");
        std::fs::write(dir.join("daemon.json"), r#"{"labels": ["nokey"]}"#).unwrap();
        assert!(Config::load(&flags(&dir, &[])).unwrap_err().contains("bad label"));
        let e = Config::load(&flags(&dir, &["-H", "tcp://0.0.0.0:2375"])).unwrap_err();
        assert!(e.contains("only unix://"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
