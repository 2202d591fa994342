//! This manager's key files under `swarm/` (the node's TLS key, the data
//! key, the WAL keys) and what guards writing them, shared by the
//! controllers that write them: `autolock::Autolock` and `keyfetch::Fetch`;
//! and the WAL key at start.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use shoal_rpc::credentials::Credentials;

use shoal_rpc::unlock::UnlockKey;

use crate::datakey::{DataKey, SharedDataKey, WAL_KEY_FILE, WAL_KEY_NEXT_FILE};

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

/// The WAL key a data-key file holds (`raft/wal.key` is kept as a data key).
pub(crate) fn wal_key_of(k: &DataKey) -> crate::raft::storage::WalKey {
    crate::raft::storage::WalKey::new(k.bytes())
}

/// This manager's WAL key: the saved one, or a new one (saved under
/// `unlock`) for a manager whose log is new or written before encryption.
/// A key rotation cut short (`WAL_KEY_NEXT_FILE` there) is finished first:
/// the storage sealed under the new key, which then becomes the key.
pub(crate) fn wal_key_at_start(raft_dir: &Path, unlock: Option<&UnlockKey>) -> Result<crate::raft::storage::WalKey, String> {
    use crate::raft::storage::DiskStorage;
    let key = match DataKey::load_file(raft_dir, WAL_KEY_FILE, unlock)? {
        Some(k) => k,
        None => {
            let k = DataKey::generate();
            k.save_file(raft_dir, WAL_KEY_FILE, &[unlock])?;
            k
        }
    };
    if let Some(next) = DataKey::load_file(raft_dir, WAL_KEY_NEXT_FILE, unlock)? {
        let (old, new) = (wal_key_of(&key), wal_key_of(&next));
        DiskStorage::open_rekeying(raft_dir, Some(old), Some(new.clone()))
            .map_err(|e| format!("finishing the WAL key rotation in {}: {e}", raft_dir.display()))?;
        promote_next_wal_key(raft_dir, &next, unlock)?;
        return Ok(new);
    }
    Ok(wal_key_of(&key))
}

/// The last step of a WAL key rotation, once the storage is sealed under
/// `next`: it becomes `WAL_KEY_FILE`, and `WAL_KEY_NEXT_FILE` goes.
pub fn promote_next_wal_key(raft_dir: &Path, next: &DataKey, unlock: Option<&UnlockKey>) -> Result<(), String> {
    next.save_file(raft_dir, WAL_KEY_FILE, &[unlock])?;
    match std::fs::remove_file(raft_dir.join(WAL_KEY_NEXT_FILE)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("removing {WAL_KEY_NEXT_FILE}: {e}")),
    }
}
