//! This manager's key files under `swarm/` (the node's TLS key, the data
//! key, the WAL keys) and what guards writing them, shared by the
//! controllers that write them: `autolock::Autolock` and `datakey::Fetch`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use shoal_rpc::credentials::Credentials;

use crate::datakey::{DataKey, SharedDataKey};

#[derive(Clone)]
pub struct KeyFiles {
    /// `<data-root>/swarm`.
    pub swarm_dir: PathBuf,
    /// The node's credentials. Every write of a key file holds their lock
    /// and checks `is_stopped` under it.
    pub creds: Arc<RwLock<Credentials>>,
    /// The data key, once this manager holds it.
    pub data_key: SharedDataKey,
    /// Set when the manager stops. Aborting a task takes effect only at its
    /// next await, so a stopped manager's task may still be about to write;
    /// the node may meanwhile have made the files its own again (a demoted
    /// manager puts its key back in clear, under the credentials lock,
    /// after `stop`).
    stopped: Arc<AtomicBool>,
}

impl KeyFiles {
    pub fn new(swarm_dir: PathBuf, creds: Arc<RwLock<Credentials>>, data_key: Option<DataKey>) -> KeyFiles {
        KeyFiles { swarm_dir, creds, data_key: Arc::new(RwLock::new(data_key)), stopped: Arc::default() }
    }

    /// `swarm/raft`, where the data key and WAL keys live.
    pub fn raft_dir(&self) -> PathBuf {
        self.swarm_dir.join("raft")
    }

    pub fn data_key(&self) -> Option<DataKey> {
        self.data_key.read().unwrap().clone()
    }

    /// The cluster record's sealed keys (root CA key, join-token secrets,
    /// unlock key), opened with the data key.
    pub fn cluster_keys(&self, st: &crate::store::Store) -> Result<crate::store::ClusterKeys, shoal_api::ApiError> {
        use shoal_api::ApiError;
        let key = self.data_key().ok_or_else(|| ApiError::unavailable("this manager does not hold the cluster's data key yet"))?;
        let c = st.cluster.as_ref().ok_or_else(ApiError::not_in_swarm)?;
        c.open(&key).map_err(ApiError::internal)
    }

    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}
