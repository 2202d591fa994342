//! The data key's fetcher: a manager that joined or was promoted gets the
//! cluster's data key (and, under autolock, the unlock key) from another
//! manager over mutual TLS (`Managers.SecretsKey`, managers only).

use std::sync::Arc;
use std::time::Duration;

use shoal_rpc::client;
use shoal_rpc::unlock::UnlockKey;

use crate::cluster::Cluster;
use crate::datakey::DataKey;
use crate::keyfiles::KeyFiles;

/// Asks the manager at `addr` for the data key, and for the unlock key
/// it comes with while autolock is on.
async fn ask(addr: &str, tls: Arc<rustls::ClientConfig>, timeout: Duration) -> Option<(DataKey, Option<UnlockKey>)> {
    let answer = match client::connect(addr, tls, timeout).await {
        Ok(c) => c.secrets_key(timeout).await,
        Err(e) => Err(e),
    };
    match answer {
        Ok((key, unlock_key)) => {
            let unlock = unlock_key.map(|k| UnlockKey::parse_human(&k.0)).transpose();
            match (DataKey::from_text(&key), unlock) {
                (Ok(k), Ok(u)) => Some((k, u)),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!("secrets key from {addr}: {e}");
                    None
                }
            }
        }
        Err(e) => {
            tracing::debug!("secrets key from {addr}: {e}");
            None
        }
    }
}

/// Saves the data key this manager got and makes it the one it uses. With
/// an unlock key (autolock on), the manager's keys are wrapped under it
/// now, not once it has applied the log that says so: the node key, this
/// data key and the WAL key (whose rotation starts here, if the log has
/// begun). Returns false if the manager stopped meanwhile.
fn keep(keys: &KeyFiles, key: DataKey, lock: Option<UnlockKey>) -> bool {
    {
        // Under the credentials lock, as `Autolock::sync` writes.
        let mut creds = keys.creds.write().unwrap();
        if keys.is_stopped() {
            return false;
        }
        let saved = match lock {
            Some(u) if creds.lock.as_ref() != Some(&u) => crate::autolock::rewrap(&keys.swarm_dir, &key, &mut creds, Some(u)),
            _ => key.save_under(&keys.raft_dir(), &[creds.lock.as_ref()]),
        };
        if let Err(e) = saved {
            tracing::warn!("{e}");
        }
    }
    *keys.data_key.write().unwrap() = Some(key);
    tracing::info!("this manager now holds the secrets key");
    true
}

/// For a manager about to start a Raft log of its own (it joined or was
/// promoted): the data key from one of `seeds` before the log starts, so
/// that under autolock its WAL key is made under the unlock key and no
/// key of it is ever in clear. Best effort: without an answer, `Fetch`
/// gets the key once Raft names the peers.
pub(crate) async fn fetch_before_start(keys: &KeyFiles, seeds: &[shoal_rpc::RaftMember], tls: Arc<rustls::ClientConfig>) {
    for m in seeds {
        if let Some((key, lock)) = ask(&m.addr, tls.clone(), Duration::from_secs(2)).await {
            let locked = lock.is_some();
            if keep(keys, key, lock) && locked {
                tracing::info!("autolock: this manager's keys are wrapped under the unlock key before its Raft log starts");
            }
            return;
        }
    }
}

/// The data key's fetcher, a controller on the cluster handle: a manager
/// that joined or was promoted gets the key from another manager.
pub struct Fetch {
    cluster: Cluster,
    keys: KeyFiles,
}

impl Fetch {
    pub fn new(cluster: Cluster, keys: KeyFiles) -> Fetch {
        Fetch { cluster, keys }
    }

    /// Runs until this manager holds the key (or stops). A manager that
    /// finds itself the only member (a swarm from before secrets existed)
    /// makes one: no sealed data can exist without a key.
    pub async fn run(self) {
        let me = self.cluster.raft_id();
        loop {
            if self.keys.data_key().is_some() {
                return;
            }
            let (peers, alone) = {
                let st = self.cluster.store();
                let peers: Vec<String> = st.members.values().filter(|m| m.raft_id != me).map(|m| m.addr.clone()).collect();
                (peers, st.members.len() == 1 && st.members.contains_key(&me))
            };
            let mut got = alone.then(|| (DataKey::generate(), None));
            for addr in &peers {
                if got.is_some() {
                    break;
                }
                got = ask(addr, self.cluster.client_tls(), Duration::from_secs(5)).await;
            }
            if let Some((key, lock)) = got {
                keep(&self.keys, key, lock);
                return;
            }
            // Peers show up as entries apply: try again then, or after a second.
            let mut applied = self.cluster.applied();
            let _ = tokio::time::timeout(Duration::from_secs(1), applied.changed()).await;
        }
    }
}
