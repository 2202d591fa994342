//! The replicated store: the Raft state machine.
//!
//! Every change is a `Command` proposed through Raft and applied here on
//! every manager, in log order. `apply` must be deterministic: anything that
//! varies between managers (IDs, secrets, the time) is decided by the
//! proposer and carried inside the command.

mod apply;
pub mod error;
pub mod events;
mod secrets;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use shoal_api::service::{Service, ServiceSpec};
use shoal_api::task::Task;
use shoal_api::{Node, NodeDescription, NodeSpec, NodeStatus, Swarm, SwarmSpec};
use shoal_rpc::RaftMember;

pub use apply::apply;
pub use error::StoreError;
pub use secrets::{check_references, SecretRecord};

/// The cluster object with what only managers may see: the CA key and the
/// join-token secrets. Those three are sealed with the cluster's data key
/// (`ClusterRecord::seal`, opened by `Manager::cluster_keys`), so the Raft
/// log and snapshots never hold them in clear; a record written by an older
/// shoald in clear still opens.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterRecord {
    pub swarm: Swarm,
    pub root_cert_pem: String,
    pub root_key_pem: String,
    pub worker_secret: String,
    pub manager_secret: String,
    /// Autolock's unlock key (`SWMKEY-1-…`), sealed with the data key;
    /// empty while autolock is off. Every manager wraps its TLS key and
    /// its copy of the data key under it (`crate::autolock`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unlock_key: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RootRotation {
    #[serde(default)]
    pub previous_root_pem: String,
    #[serde(default)]
    pub cross_signed_pem: String,
}

/// What the sealed fields of `ClusterRecord` hold, opened.
pub struct ClusterKeys {
    pub root_key_pem: zeroize::Zeroizing<String>,
    pub worker_secret: zeroize::Zeroizing<String>,
    pub manager_secret: zeroize::Zeroizing<String>,
    /// `SWMKEY-1-…` while autolock is on.
    pub unlock_key: Option<zeroize::Zeroizing<String>>,
}

/// The contexts the sealed fields are bound to (a sealed value moved to
/// another field does not open).
pub const ROOT_KEY_CONTEXT: &str = "cluster/root-key";
pub const WORKER_SECRET_CONTEXT: &str = "cluster/worker-secret";
pub const MANAGER_SECRET_CONTEXT: &str = "cluster/manager-secret";
pub const UNLOCK_KEY_CONTEXT: &str = "cluster/unlock-key";

impl ClusterRecord {
    /// Seals a root key or a join-token secret for this record.
    pub fn seal(key: &crate::datakey::DataKey, context: &str, plain: &str) -> String {
        key.seal(context, plain.as_bytes())
    }

    /// Opens the sealed fields with the data key.
    pub fn open(&self, key: &crate::datakey::DataKey) -> Result<ClusterKeys, String> {
        let open = |context: &str, value: &str| -> Result<zeroize::Zeroizing<String>, String> {
            if !crate::datakey::is_sealed(value) {
                // Written in clear by a shoald from before sealing.
                return Ok(zeroize::Zeroizing::new(value.to_string()));
            }
            let plain = key.open(context, value).map_err(|e| format!("{context}: {e}"))?;
            String::from_utf8(plain.to_vec()).map(zeroize::Zeroizing::new).map_err(|_| format!("{context}: not UTF-8"))
        };
        Ok(ClusterKeys {
            unlock_key: match self.unlock_key.as_str() {
                "" => None,
                sealed => Some(open(UNLOCK_KEY_CONTEXT, sealed)?),
            },
            root_key_pem: open(ROOT_KEY_CONTEXT, &self.root_key_pem)?,
            worker_secret: open(WORKER_SECRET_CONTEXT, &self.worker_secret)?,
            manager_secret: open(MANAGER_SECRET_CONTEXT, &self.manager_secret)?,
        })
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Store {
    pub cluster: Option<ClusterRecord>,
    pub nodes: BTreeMap<String, Node>,
    /// Raft membership, by Raft ID, kept in step with applied conf changes.
    pub members: BTreeMap<u64, RaftMember>,
    /// IDs of nodes removed from the swarm: their certificates are refused.
    pub removed: BTreeSet<String>,
    #[serde(default)]
    pub services: BTreeMap<String, Service>,
    #[serde(default)]
    pub tasks: BTreeMap<String, Task>,
    /// Secrets without their data, which is kept sealed beside them.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretRecord>,
    #[serde(default)]
    pub configs: BTreeMap<String, shoal_api::secret::Config>,
    /// The last root CA rotation: the previous root (still trusted, so a
    /// node that was down for the whole rotation can come back and renew)
    /// and the new root signed by it (sent in managers' TLS chains, so such
    /// a node can verify them).
    #[serde(default)]
    pub root_rotation: RootRotation,
    /// Swarm (overlay) networks, with what the allocator gave them.
    #[serde(default)]
    pub networks: BTreeMap<String, shoal_api::network::Network>,
    /// Registry credentials by service ID (`--with-registry-auth`), sealed
    /// with the data key; never part of the spec the API shows.
    #[serde(default)]
    pub registry_auth: BTreeMap<String, String>,
    /// Results of recently applied proposals, by proposal ID: a proposal
    /// that reaches the log twice (a retry after a lost answer or a leader
    /// change) is applied once and answered with its first result.
    #[serde(default)]
    pub recent: RecentProposals,
    /// Index of the last entry applied.
    pub applied: u64,
}

/// How many applied proposals `Store::recent` remembers. A retry comes
/// within the proposer's 8 s deadline; at thousands of writes a second the
/// oldest of these is still seconds old.
pub const RECENT_PROPOSALS: usize = 20_000;

/// What a proposal's apply answered.
pub type ProposalResult = Result<serde_json::Value, StoreError>;
/// The same, as snapshots hold it.
type RecordedResult = Result<serde_json::Value, error::Recorded>;

/// The last `RECENT_PROPOSALS` applied proposal IDs and their results, in
/// apply order (so every manager forgets the same ones).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(from = "Vec<(u64, RecordedResult)>", into = "Vec<(u64, RecordedResult)>")]
pub struct RecentProposals {
    order: std::collections::VecDeque<u64>,
    results: std::collections::HashMap<u64, ProposalResult>,
}

impl RecentProposals {
    pub fn get(&self, proposal: u64) -> Option<&ProposalResult> {
        self.results.get(&proposal)
    }

    pub fn insert(&mut self, proposal: u64, result: ProposalResult) {
        if self.results.insert(proposal, result).is_none() {
            self.order.push_back(proposal);
        }
        while self.order.len() > RECENT_PROPOSALS {
            if let Some(old) = self.order.pop_front() {
                self.results.remove(&old);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

impl From<Vec<(u64, RecordedResult)>> for RecentProposals {
    fn from(v: Vec<(u64, RecordedResult)>) -> Self {
        let mut r = RecentProposals::default();
        for (id, result) in v {
            r.insert(id, result.map_err(StoreError::from));
        }
        r
    }
}

impl From<RecentProposals> for Vec<(u64, RecordedResult)> {
    fn from(mut r: RecentProposals) -> Self {
        r.order.iter().filter_map(|id| r.results.remove(id).map(|res| (*id, res.map_err(error::Recorded::Typed)))).collect()
    }
}

/// A service's rolling-update progress as the updater decided it, based on
/// the service at `version` (`rollback`: put `PreviousSpec` back).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceProgress {
    pub service_id: String,
    pub version: u64,
    pub status: shoal_api::service::UpdateStatus,
    pub rollback: bool,
}

/// A proposal as written to the log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// Matches the applied entry to the waiting proposer.
    pub proposal: u64,
    /// The proposer's clock, so every manager records the same time.
    pub at: String,
    pub command: Command,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Command {
    CreateCluster {
        cluster: Box<ClusterRecord>,
        node: Box<Node>,
    },
    CreateNode {
        node: Box<Node>,
    },
    UpdateNodeSpec {
        id: String,
        version: u64,
        spec: NodeSpec,
    },
    /// From the dispatcher: liveness and, when it changed, the description.
    UpdateNodeStatus {
        id: String,
        status: NodeStatus,
        description: Option<Box<NodeDescription>>,
    },
    RemoveNode {
        id: String,
    },
    UpdateCluster {
        version: u64,
        spec: Box<SwarmSpec>,
        worker_secret: Option<String>,
        manager_secret: Option<String>,
        /// A new root CA (cert, key) for `swarm ca --rotate`.
        new_root: Option<(String, String)>,
        /// The new root's certificate signed by the old root (with `new_root`).
        #[serde(default)]
        cross_signed: Option<String>,
        /// A new sealed unlock key (autolock turned on or its key rotated),
        /// or `""` (autolock turned off); `None` keeps the current one.
        #[serde(default)]
        unlock_key: Option<String>,
    },
    /// `registry_auth`: the `X-Registry-Auth` the service's images are
    /// pulled with, sealed with the data key (see `Store::registry_auth`).
    CreateService {
        service: Box<Service>,
        #[serde(default)]
        registry_auth: Option<String>,
    },
    /// `previous` restores `PreviousSpec` (`rollback=previous`).
    /// `registry_auth`: new sealed credentials; `None` keeps the current.
    UpdateService {
        id: String,
        version: u64,
        spec: Box<ServiceSpec>,
        rollback: bool,
        #[serde(default)]
        registry_auth: Option<String>,
    },
    RemoveService {
        id: String,
    },
    /// From the updater: the service's `UpdateStatus` (based on `version`);
    /// `rollback` also puts `PreviousSpec` back (automatic rollback).
    SetUpdateStatus {
        id: String,
        version: u64,
        status: shoal_api::service::UpdateStatus,
        rollback: bool,
    },
    /// Creates or replaces tasks without a version check (entries written
    /// before `TaskIntents`; still applied when a log replays them).
    PutTasks {
        tasks: Vec<Task>,
    },
    /// One controller step's writes, applied together: each task written
    /// only if the store still has it at the version the controller read
    /// (`Task::version`; 0 for a new task), each progress change only if
    /// the service is still at `version`. A stale intent is dropped (the
    /// result counts them as `{"stale": n}`) and the controller reconciles
    /// again from the new state, so a change applied between its read and
    /// its write (a reported state, a spec update) is never reverted.
    TaskIntents {
        #[serde(default)]
        delete: Vec<String>,
        #[serde(default)]
        put: Vec<Task>,
        #[serde(default)]
        services: Vec<ServiceProgress>,
    },
    DeleteTasks {
        ids: Vec<String>,
    },
    /// Observed states reported by a node: merged at apply time, so a
    /// concurrent change of desired state is never overwritten.
    UpdateTaskStatus {
        node_id: String,
        updates: Vec<(String, shoal_api::task::TaskStatus)>,
    },
    /// The data travels sealed with the cluster's data key.
    CreateSecret {
        secret: Box<SecretRecord>,
    },
    /// Labels are all a secret's update may change (as in SwarmKit).
    UpdateSecret {
        id: String,
        version: u64,
        labels: BTreeMap<String, String>,
    },
    RemoveSecret {
        id: String,
    },
    /// A network, unallocated (the allocator gives it a subnet and a VNI);
    /// its name and requested subnet are checked again at apply time.
    CreateNetwork {
        network: Box<shoal_api::network::Network>,
    },
    /// Refused while a service or a live task uses the network.
    RemoveNetwork {
        id: String,
    },
    /// One allocator pass (`crate::allocator::allocate`): whole objects,
    /// each read at its `Version`. All or nothing: dropped if any object
    /// changed since, or if any claim clashes with the store as it is now
    /// (the result says `{"stale": true}` and the next pass redoes it).
    Allocate {
        #[serde(default)]
        networks: Vec<shoal_api::network::Network>,
        #[serde(default)]
        services: Vec<Service>,
        #[serde(default)]
        tasks: Vec<Task>,
        /// Nodes' ingress addresses (written as a whole list, no version).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        nodes: Vec<crate::allocator::NodeAttachments>,
    },
    CreateConfig {
        config: Box<shoal_api::secret::Config>,
    },
    UpdateConfig {
        id: String,
        version: u64,
        labels: BTreeMap<String, String>,
    },
    RemoveConfig {
        id: String,
    },
}

impl Store {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("store serialises")
    }
    pub fn from_bytes(b: &[u8]) -> Result<Store, String> {
        if b.is_empty() {
            return Ok(Store::default());
        }
        serde_json::from_slice(b).map_err(|e| format!("corrupt store snapshot: {e}"))
    }

    /// Resolves a node by full ID, hostname, or unique ID prefix, as Docker does.
    pub fn find_node(&self, key: &str) -> Result<&Node, shoal_api::ApiError> {
        if let Some(n) = self.nodes.get(key) {
            return Ok(n);
        }
        let by_name: Vec<&Node> = self.nodes.values().filter(|n| n.description.hostname == key).collect();
        if by_name.len() == 1 {
            return Ok(by_name[0]);
        }
        if by_name.len() > 1 {
            return Err(shoal_api::ApiError::bad_request(format!("node {key} is ambiguous ({} matches found)", by_name.len())));
        }
        let by_prefix: Vec<&Node> = self.nodes.values().filter(|n| n.id.starts_with(key)).collect();
        match by_prefix.len() {
            1 if !key.is_empty() => Ok(by_prefix[0]),
            0 | 1 => Err(shoal_api::ApiError::not_found(format!("node {key} not found"))),
            n => Err(shoal_api::ApiError::bad_request(format!("node {key} is ambiguous ({n} matches found)"))),
        }
    }

    /// Resolves a service by full ID, name, or unique ID prefix.
    pub fn find_service(&self, key: &str) -> Result<&Service, shoal_api::ApiError> {
        if let Some(s) = self.services.get(key) {
            return Ok(s);
        }
        if let Some(s) = self.services.values().find(|s| s.spec.name == key) {
            return Ok(s);
        }
        let by_prefix: Vec<&Service> = self.services.values().filter(|s| s.id.starts_with(key)).collect();
        match by_prefix.len() {
            1 if !key.is_empty() => Ok(by_prefix[0]),
            0 | 1 => Err(shoal_api::ApiError::not_found(format!("service {key} not found"))),
            n => Err(shoal_api::ApiError::bad_request(format!("service {key} is ambiguous ({n} matches found)"))),
        }
    }

    /// The cluster's address pool (`swarm init --default-addr-pool`).
    pub fn address_pool(&self) -> Result<crate::allocator::AddressPool, StoreError> {
        let c = self.cluster.as_ref().ok_or(StoreError::NotInSwarm)?;
        crate::allocator::AddressPool::new(&c.swarm.default_addr_pool, c.swarm.subnet_size).map_err(StoreError::Invalid)
    }

    /// What the allocator reads of this store, with `pool`.
    pub fn allocator_view<'a>(&'a self, pool: &'a crate::allocator::AddressPool) -> crate::allocator::View<'a> {
        crate::allocator::View { pool, networks: &self.networks, services: &self.services, tasks: &self.tasks, nodes: &self.nodes }
    }

    pub fn member_of_node(&self, node_id: &str) -> Option<&RaftMember> {
        self.members.values().find(|m| m.node_id == node_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datakey::DataKey;

    fn record(key: &DataKey) -> ClusterRecord {
        ClusterRecord {
            swarm: Swarm::default(),
            root_cert_pem: "cert".into(),
            root_key_pem: ClusterRecord::seal(key, ROOT_KEY_CONTEXT, "-----BEGIN PRIVATE KEY-----\nabc\n"),
            worker_secret: ClusterRecord::seal(key, WORKER_SECRET_CONTEXT, "worker-secret"),
            manager_secret: ClusterRecord::seal(key, MANAGER_SECRET_CONTEXT, "manager-secret"),
            unlock_key: String::new(),
        }
    }

    #[test]
    fn cluster_keys_are_sealed_in_the_record_and_open_with_the_data_key() {
        let key = DataKey::generate();
        let rec = record(&key);
        let json = serde_json::to_string(&rec).unwrap();
        for clear in ["PRIVATE KEY", "worker-secret", "manager-secret"] {
            assert!(!json.contains(clear), "{clear} in clear in {json}");
        }
        let keys = rec.open(&key).unwrap();
        assert_eq!(keys.root_key_pem.as_str(), "-----BEGIN PRIVATE KEY-----\nabc\n");
        assert_eq!(keys.worker_secret.as_str(), "worker-secret");
        assert_eq!(keys.manager_secret.as_str(), "manager-secret");
        assert!(rec.open(&DataKey::generate()).is_err(), "another cluster's key does not open it");
    }

    #[test]
    fn a_sealed_value_moved_to_another_field_does_not_open() {
        let key = DataKey::generate();
        let mut rec = record(&key);
        rec.worker_secret = rec.manager_secret.clone();
        assert!(rec.open(&key).is_err());
    }

    #[test]
    fn the_unlock_key_is_sealed_in_the_record_and_opens_with_the_data_key() {
        let key = DataKey::generate();
        let mut rec = record(&key);
        assert!(rec.open(&key).unwrap().unlock_key.is_none(), "autolock off: no key");
        assert!(!serde_json::to_string(&rec).unwrap().contains("unlock_key"), "and nothing in the log");
        rec.unlock_key = crate::control::seal_new_unlock_key(&key);
        let text = rec.open(&key).unwrap().unlock_key.unwrap();
        assert!(text.starts_with("SWMKEY-1-"));
        let logged = serde_json::to_string(&rec).unwrap();
        assert!(!logged.contains(&text[9..]), "the key is not in the log in clear");
        let back: ClusterRecord = serde_json::from_str(&logged).unwrap();
        assert_eq!(back.open(&key).unwrap().unlock_key.unwrap().as_str(), text.as_str());
        assert!(back.open(&DataKey::generate()).is_err());
    }

    #[test]
    fn a_record_written_in_clear_by_an_older_shoald_still_opens() {
        let rec = ClusterRecord {
            swarm: Swarm::default(),
            root_cert_pem: "cert".into(),
            root_key_pem: "-----BEGIN PRIVATE KEY-----".into(),
            worker_secret: "w".into(),
            manager_secret: "m".into(),
            unlock_key: String::new(),
        };
        let keys = rec.open(&DataKey::generate()).unwrap();
        assert_eq!((keys.worker_secret.as_str(), keys.manager_secret.as_str()), ("w", "m"));
    }
}
