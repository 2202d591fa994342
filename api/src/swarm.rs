//! The swarm (cluster) object and the requests that create or join one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::node::TlsInfo;
use crate::Version;

pub const SECOND_NS: i64 = 1_000_000_000;
/// Docker's defaults, as users know them.
pub const DEFAULT_HEARTBEAT_NS: i64 = 5 * SECOND_NS;
pub const DEFAULT_TASK_HISTORY: i64 = 5;
pub const DEFAULT_CERT_EXPIRY_NS: i64 = 90 * 24 * 3600 * SECOND_NS;
pub const DEFAULT_SNAPSHOT_INTERVAL: u64 = 10_000;
pub const DEFAULT_SLOW_FOLLOWER_ENTRIES: u64 = 500;
pub const DEFAULT_DATA_PATH_PORT: u32 = 4789;
pub const CLUSTER_PORT: u16 = 2377;

/// `GET /swarm`: ClusterInfo plus the join tokens.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Swarm {
    #[serde(rename = "ID")]
    pub id: String,
    pub version: Version,
    pub created_at: String,
    pub updated_at: String,
    pub spec: SwarmSpec,
    #[serde(rename = "TLSInfo")]
    pub tls_info: TlsInfo,
    pub root_rotation_in_progress: bool,
    pub data_path_port: u32,
    pub default_addr_pool: Vec<String>,
    pub subnet_size: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_tokens: Option<JoinTokens>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JoinTokens {
    pub worker: String,
    pub manager: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmSpec {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub orchestration: Orchestration,
    #[serde(default)]
    pub raft: RaftConfig,
    #[serde(default)]
    pub dispatcher: DispatcherConfig,
    #[serde(default, rename = "CAConfig")]
    pub ca_config: CaConfig,
    #[serde(default)]
    pub encryption_config: EncryptionConfig,
    #[serde(default = "empty_object")]
    pub task_defaults: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

impl Default for SwarmSpec {
    fn default() -> Self {
        SwarmSpec {
            name: "default".into(),
            labels: BTreeMap::new(),
            orchestration: Orchestration::default(),
            raft: RaftConfig::default(),
            dispatcher: DispatcherConfig::default(),
            ca_config: CaConfig::default(),
            encryption_config: EncryptionConfig::default(),
            task_defaults: empty_object(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Orchestration {
    #[serde(default = "default_history")]
    pub task_history_retention_limit: i64,
}
fn default_history() -> i64 {
    DEFAULT_TASK_HISTORY
}
impl Default for Orchestration {
    fn default() -> Self {
        Orchestration { task_history_retention_limit: DEFAULT_TASK_HISTORY }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RaftConfig {
    #[serde(default = "default_snapshot_interval")]
    pub snapshot_interval: u64,
    #[serde(default)]
    pub keep_old_snapshots: u64,
    #[serde(default = "default_slow_followers")]
    pub log_entries_for_slow_followers: u64,
    #[serde(default = "default_election_tick")]
    pub election_tick: i64,
    #[serde(default = "default_heartbeat_tick")]
    pub heartbeat_tick: i64,
}
fn default_snapshot_interval() -> u64 {
    DEFAULT_SNAPSHOT_INTERVAL
}
fn default_slow_followers() -> u64 {
    DEFAULT_SLOW_FOLLOWER_ENTRIES
}
fn default_election_tick() -> i64 {
    10
}
fn default_heartbeat_tick() -> i64 {
    1
}
impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            snapshot_interval: DEFAULT_SNAPSHOT_INTERVAL,
            keep_old_snapshots: 0,
            log_entries_for_slow_followers: DEFAULT_SLOW_FOLLOWER_ENTRIES,
            election_tick: default_election_tick(),
            heartbeat_tick: default_heartbeat_tick(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DispatcherConfig {
    #[serde(default = "default_heartbeat")]
    pub heartbeat_period: i64,
}
fn default_heartbeat() -> i64 {
    DEFAULT_HEARTBEAT_NS
}
impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig { heartbeat_period: DEFAULT_HEARTBEAT_NS }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CaConfig {
    #[serde(default = "default_cert_expiry")]
    pub node_cert_expiry: i64,
    #[serde(default, rename = "ExternalCAs", skip_serializing_if = "Vec::is_empty")]
    pub external_cas: Vec<serde_json::Value>,
    #[serde(default, rename = "SigningCACert", skip_serializing_if = "String::is_empty")]
    pub signing_ca_cert: String,
    #[serde(default, rename = "SigningCAKey", skip_serializing_if = "String::is_empty")]
    pub signing_ca_key: String,
    #[serde(default)]
    pub force_rotate: u64,
}
fn default_cert_expiry() -> i64 {
    DEFAULT_CERT_EXPIRY_NS
}
impl Default for CaConfig {
    fn default() -> Self {
        CaConfig {
            node_cert_expiry: DEFAULT_CERT_EXPIRY_NS,
            external_cas: Vec::new(),
            signing_ca_cert: String::new(),
            signing_ca_key: String::new(),
            force_rotate: 0,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptionConfig {
    #[serde(default)]
    pub auto_lock_managers: bool,
}

impl SwarmSpec {
    /// A spec as `POST /swarm/init` and `/swarm/update` take it: omitted and
    /// `null` fields at Docker's defaults, zero values too (`fill_defaults`).
    pub fn from_request(spec: Option<SwarmSpec>) -> SwarmSpec {
        let mut spec = spec.unwrap_or_default();
        spec.fill_defaults();
        spec
    }

    /// Zero means "not set" in Docker's Go types: take the defaults then.
    pub fn fill_defaults(&mut self) {
        let d = SwarmSpec::default();
        if self.dispatcher.heartbeat_period == 0 {
            self.dispatcher.heartbeat_period = d.dispatcher.heartbeat_period;
        }
        if self.ca_config.node_cert_expiry == 0 {
            self.ca_config.node_cert_expiry = d.ca_config.node_cert_expiry;
        }
        if self.raft.election_tick == 0 {
            self.raft.election_tick = d.raft.election_tick;
        }
        if self.raft.heartbeat_tick == 0 {
            self.raft.heartbeat_tick = d.raft.heartbeat_tick;
        }
        if self.raft.snapshot_interval == 0 {
            self.raft.snapshot_interval = d.raft.snapshot_interval;
        }
        if self.raft.log_entries_for_slow_followers == 0 {
            self.raft.log_entries_for_slow_followers = d.raft.log_entries_for_slow_followers;
        }
        if self.name.is_empty() {
            self.name = d.name;
        }
    }
}

/// `POST /swarm/init`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InitRequest {
    pub listen_addr: String,
    pub advertise_addr: String,
    pub data_path_addr: String,
    pub data_path_port: u32,
    pub default_addr_pool: Vec<String>,
    pub subnet_size: u32,
    pub force_new_cluster: bool,
    pub spec: Option<SwarmSpec>,
    /// `swarm init --autolock` (the spec's `EncryptionConfig` may say so too).
    pub auto_lock_managers: bool,
}

/// `POST /swarm/unlock`.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UnlockRequest {
    pub unlock_key: String,
}

impl std::fmt::Debug for UnlockRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnlockRequest(<redacted>)")
    }
}

/// `POST /swarm/join`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JoinRequest {
    pub listen_addr: String,
    pub advertise_addr: String,
    pub data_path_addr: String,
    pub remote_addrs: Vec<String>,
    pub join_token: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_defaults_match_docker() {
        let s: SwarmSpec = serde_json::from_str("{}").unwrap();
        assert_eq!(s.dispatcher.heartbeat_period, 5_000_000_000);
        assert_eq!(s.orchestration.task_history_retention_limit, 5);
        assert_eq!(s.ca_config.node_cert_expiry, 7_776_000_000_000_000);
        assert_eq!(s.raft.snapshot_interval, 10_000);
    }

    #[test]
    fn partial_spec_takes_defaults() {
        let s = SwarmSpec::from_request(Some(crate::lenient::from_str(r#"{"orchestration": {"TaskHistoryRetentionLimit": 2}}"#).unwrap()));
        assert_eq!(s.orchestration.task_history_retention_limit, 2);
        assert_eq!(s.raft, RaftConfig::default());
        let body = r#"{"Orchestration": {"TaskHistoryRetentionLimit": null}, "Dispatcher": {"HeartbeatPeriod": 0}, "TaskDefaults": null}"#;
        let s = SwarmSpec::from_request(Some(crate::lenient::from_str(body).unwrap()));
        assert_eq!(s, SwarmSpec::default());
        // Whatever is left out, the defaults are the same as without a spec.
        assert_eq!(SwarmSpec::from_request(Some(crate::lenient::from_str("{}").unwrap())), SwarmSpec::default());
        assert_eq!(SwarmSpec::from_request(None), SwarmSpec::default());
    }
}
