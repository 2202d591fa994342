//! Autolock on a manager: keeps the node's TLS key and its copy of the data
//! key wrapped on disk under the cluster's unlock key (`ClusterRecord::
//! unlock_key`, replicated through Raft and sealed there with the data key),
//! or in clear while autolock is off.
//!
//! Every manager re-wraps when the key it applied differs from the one its
//! files are wrapped under (autolock turned on or off, the key rotated, or
//! a manager that was down or locked through a rotation and was unlocked
//! with the old key). A re-wrap from key A to key B (either may be "none",
//! that is clear) writes, each step atomically (`write_atomic`):
//!
//! 1. `raft/secrets.key` holding the data key under A *and* under B, then
//!    `raft/wal.key` (this manager's WAL key) likewise;
//! 2. `certificates/swarm-node.key` under B;
//! 3. `raft/secrets.key`, then `raft/wal.key`, under B only.
//!
//! A crash before 2 leaves a node that unlocks with A (and re-wraps to B
//! once it applies the store again), after 2 one that unlocks with B: the
//! node key decides which key unlocks, and both key files always open
//! with it.
//!
//! Turning autolock on also rotates the manager's WAL key, so a copy of
//! the data root taken while the key was in clear opens nothing written
//! after: the re-wrap ends by saving a new key as `raft/wal.key.next`
//! (under B); then `finish_rotation` seals the WAL and snapshot under it
//! (through the Raft loop, `RaftHandle::rekey`), saves it as
//! `raft/wal.key` and removes `wal.key.next`. A crash anywhere in between
//! is finished at the next start (`keyfiles::wal_key_at_start`: the
//! storage reads each file under the old or the new key). A re-wrap while
//! a rotation is under way re-wraps `wal.key.next` with `wal.key`.

use std::sync::Arc;
use std::time::Duration;

use shoal_rpc::credentials::Credentials;
use shoal_rpc::unlock::UnlockKey;

use crate::cluster::Cluster;
use crate::datakey::{DataKey, WAL_KEY_FILE, WAL_KEY_NEXT_FILE};
use crate::keyfiles::KeyFiles;

/// Autolock, a controller on the cluster handle: its `run` loop on every
/// manager, and `sync` for a caller that must see the keys re-wrapped
/// before it answers.
pub struct Autolock {
    cluster: Cluster,
    keys: KeyFiles,
}

impl Autolock {
    pub fn new(cluster: Cluster, keys: KeyFiles) -> Arc<Autolock> {
        Arc::new(Autolock { cluster, keys })
    }

    /// Re-checks on every applied entry, and every few seconds, until the
    /// manager stops.
    pub async fn run(self: Arc<Self>) {
        let mut applied = self.cluster.applied();
        while !self.keys.is_stopped() {
            if let Err(e) = self.sync() {
                tracing::warn!("autolock: {e}");
            }
            if let Err(e) = self.finish_rotation().await {
                tracing::warn!("autolock: rotating the WAL key: {e}");
            }
            // Raft gone (the manager role stopped): nothing more to follow.
            if let Ok(Err(_)) = tokio::time::timeout(Duration::from_secs(3), applied.changed()).await {
                return;
            }
        }
    }

    /// The unlock key the cluster record asks for, opened (None: autolock
    /// off, or this manager cannot tell yet).
    fn wanted(&self, data_key: &DataKey) -> Result<Option<Option<UnlockKey>>, String> {
        let st = self.cluster.store();
        let Some(c) = st.cluster.as_ref() else { return Ok(None) };
        if c.unlock_key.is_empty() {
            return Ok(Some(None));
        }
        let keys = c.open(data_key)?;
        let text = keys.unlock_key.ok_or("the cluster's unlock key does not open")?;
        UnlockKey::parse_human(&text).map(|k| Some(Some(k)))
    }

    /// Brings this manager's files in line with the cluster's unlock key.
    /// Returns whether it re-wrapped.
    pub fn sync(&self) -> Result<bool, String> {
        // A manager that has not fetched the data key yet saves it under the
        // current lock when it gets it, and comes back here on the next pass.
        let Some(data_key) = self.keys.data_key() else { return Ok(false) };
        let Some(wanted) = self.wanted(&data_key)? else { return Ok(false) };
        let mut creds = self.keys.creds.write().unwrap();
        // A stopped manager's files are the node's again: a demoted one has
        // put its key back in clear and removed `raft/` (checked under the
        // credentials lock, which that demotion takes after `stop`).
        if self.keys.is_stopped() || creds.lock == wanted {
            return Ok(false);
        }
        rewrap(&self.keys.swarm_dir, &data_key, &mut creds, wanted)?;
        tracing::info!(
            "autolock: this manager's keys are now {}",
            if creds.lock.is_some() { "locked under the unlock key" } else { "in clear" }
        );
        Ok(true)
    }

    /// Finishes a WAL key rotation under way (see the module doc): the Raft
    /// loop seals the storage under the new key, which then becomes the key.
    /// Returns whether it rotated.
    async fn finish_rotation(&self) -> Result<bool, String> {
        let raft_dir = self.keys.raft_dir();
        let next = {
            let creds = self.keys.creds.read().unwrap();
            if self.keys.is_stopped() {
                return Ok(false);
            }
            match DataKey::load_file(&raft_dir, WAL_KEY_NEXT_FILE, creds.lock.as_ref())? {
                Some(k) => k,
                None => return Ok(false),
            }
        };
        self.cluster.rekey(&next).await?;
        let creds = self.keys.creds.write().unwrap();
        if self.keys.is_stopped() {
            return Ok(false);
        }
        crate::keyfiles::promote_next_wal_key(&raft_dir, &next, creds.lock.as_ref())?;
        tracing::info!("autolock: this manager's Raft log is sealed under a new WAL key");
        Ok(true)
    }
}

/// The three steps of the module's documentation, from `creds.lock` to
/// `to`, then the start of a WAL key rotation when autolock turns on.
pub fn rewrap(swarm_dir: &std::path::Path, data_key: &DataKey, creds: &mut Credentials, to: Option<UnlockKey>) -> Result<(), String> {
    let raft_dir = swarm_dir.join("raft");
    let from = creds.lock.clone();
    let wal_key = DataKey::load_file(&raft_dir, WAL_KEY_FILE, from.as_ref())?;
    let next_key = DataKey::load_file(&raft_dir, WAL_KEY_NEXT_FILE, from.as_ref())?;
    let both = [from.as_ref(), to.as_ref()];
    data_key.save_under(&raft_dir, &both)?;
    for (name, key) in [(WAL_KEY_FILE, &wal_key), (WAL_KEY_NEXT_FILE, &next_key)] {
        if let Some(k) = key {
            k.save_file(&raft_dir, name, &both)?;
        }
    }
    creds.lock = to.clone();
    if let Err(e) = creds.save(swarm_dir) {
        creds.lock = from;
        return Err(format!("saving the node key: {e}"));
    }
    data_key.save_under(&raft_dir, &[to.as_ref()])?;
    for (name, key) in [(WAL_KEY_FILE, &wal_key), (WAL_KEY_NEXT_FILE, &next_key)] {
        if let Some(k) = key {
            k.save_file(&raft_dir, name, &[to.as_ref()])?;
        }
    }
    if from.is_none() && to.is_some() && next_key.is_none() && wal_key.is_some() {
        DataKey::generate().save_file(&raft_dir, WAL_KEY_NEXT_FILE, &[to.as_ref()])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_rpc::unlock::INVALID_KEY;

    fn creds(dir: &std::path::Path) -> Credentials {
        let key = shoal_security::NodeKey::generate().unwrap();
        let c = Credentials { root_pem: "root".into(), cert_pem: "cert".into(), key_pem: key.key_pem, lock: None };
        c.save(dir).unwrap();
        c
    }

    fn files(dir: &std::path::Path) -> String {
        let mut all = String::new();
        for p in ["raft/secrets.key", "certificates/swarm-node.key"] {
            all += &std::fs::read_to_string(dir.join(p)).unwrap();
        }
        all
    }

    /// Turning autolock on starts a WAL key rotation (a new key in
    /// `wal.key.next`, wrapped); a re-wrap meanwhile re-wraps it too; a
    /// start finishes it: the log, written under the old key, reads back
    /// under the new one only, which is now `wal.key`.
    #[test]
    fn turning_autolock_on_rotates_the_wal_key() {
        use crate::raft::storage::DiskStorage;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let raft = d.join("raft");
        let mut c = creds(d);
        let dk = DataKey::generate();
        dk.save(&raft).unwrap();
        let old = crate::keyfiles::wal_key_at_start(&raft, None).unwrap();
        let old_text = std::fs::read_to_string(raft.join(WAL_KEY_FILE)).unwrap();
        {
            let mut st = DiskStorage::open_with(&raft, Some(old.clone())).unwrap();
            st.set_conf_state(::raft::eraftpb::ConfState::from((vec![1], vec![]))).unwrap();
            st.append(&[::raft::eraftpb::Entry {
                index: 1,
                term: 1,
                data: b"written in clear days".to_vec().into(),
                ..Default::default()
            }])
            .unwrap();
        }

        let a = UnlockKey::generate();
        rewrap(d, &dk, &mut c, Some(a.clone())).unwrap();
        assert!(raft.join(WAL_KEY_NEXT_FILE).exists(), "a rotation is under way");
        assert_eq!(DataKey::load_file(&raft, WAL_KEY_NEXT_FILE, None).unwrap_err(), crate::datakey::LOCKED);
        // The unlock key rotated before the rotation finished: both follow.
        let b = UnlockKey::generate();
        rewrap(d, &dk, &mut c, Some(b.clone())).unwrap();
        let next = DataKey::load_file(&raft, WAL_KEY_NEXT_FILE, Some(&b)).unwrap().expect("still under way");
        assert!(DataKey::load_file(&raft, WAL_KEY_NEXT_FILE, Some(&a)).is_err());

        // A start (the daemon restarted before `finish_rotation` ran).
        let new = crate::keyfiles::wal_key_at_start(&raft, Some(&b)).unwrap();
        assert!(!raft.join(WAL_KEY_NEXT_FILE).exists());
        assert!(same(DataKey::load_file(&raft, WAL_KEY_FILE, Some(&b)), &next), "the new key is the key");
        assert!(DiskStorage::open_with(&raft, Some(old)).is_err(), "the key that was in clear opens nothing now");
        let st = DiskStorage::open_with(&raft, Some(new)).unwrap();
        assert_eq!(st.last_index(), 1);
        assert!(!std::fs::read_to_string(raft.join(WAL_KEY_FILE)).unwrap().contains(old_text.trim()));
    }

    fn same(a: Result<Option<DataKey>, String>, b: &DataKey) -> bool {
        a.ok().flatten().is_some_and(|k| k.to_text().0 == b.to_text().0)
    }

    #[test]
    fn locking_wraps_both_keys_and_only_the_right_key_opens_them() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut c = creds(d);
        let dk = DataKey::generate();
        dk.save(&d.join("raft")).unwrap();
        let wal = crate::keyfiles::wal_key_at_start(&d.join("raft"), None).unwrap();
        let wal_text = std::fs::read_to_string(d.join("raft").join(WAL_KEY_FILE)).unwrap();
        assert!(!Credentials::is_locked(d) && !DataKey::is_locked(&d.join("raft")));

        let k = UnlockKey::generate();
        rewrap(d, &dk, &mut c, Some(k.clone())).unwrap();
        assert!(Credentials::is_locked(d) && DataKey::is_locked(&d.join("raft")));
        let on_disk = files(d) + &std::fs::read_to_string(d.join("raft").join(WAL_KEY_FILE)).unwrap();
        assert!(!on_disk.contains(&dk.to_text().0), "the data key is not in clear");
        assert!(!on_disk.contains(wal_text.trim()), "the WAL key is not in clear");
        assert_eq!(DataKey::load_file(&d.join("raft"), WAL_KEY_FILE, None).unwrap_err(), crate::datakey::LOCKED);
        assert!(DataKey::load_file(&d.join("raft"), WAL_KEY_FILE, Some(&UnlockKey::generate())).is_err());
        // The WAL key itself is wrapped, not changed, by the re-wrap (its
        // rotation is the next step, `turning_autolock_on_rotates_the_wal_key`).
        let wal_again =
            DataKey::load_file(&d.join("raft"), WAL_KEY_FILE, Some(&k)).unwrap().map(|k| crate::keyfiles::wal_key_of(&k)).unwrap();
        let dir2 = tempfile::tempdir().unwrap();
        {
            let mut st = crate::raft::storage::DiskStorage::open_with(dir2.path(), Some(wal.clone())).unwrap();
            st.set_commit(0).unwrap();
        }
        assert!(crate::raft::storage::DiskStorage::open_with(dir2.path(), Some(wal_again)).is_ok(), "the same WAL key");
        assert!(!on_disk.contains("PRIVATE KEY"), "the node key is not in clear");
        let e = Credentials::load(d).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
        let wrong = UnlockKey::generate();
        assert!(Credentials::load_unlocked(d, Some(&wrong)).unwrap_err().to_string().contains(INVALID_KEY));
        assert_eq!(DataKey::load(&d.join("raft"), Some(&wrong)).unwrap_err(), INVALID_KEY);
        assert_eq!(DataKey::load(&d.join("raft"), None).unwrap_err(), crate::datakey::LOCKED);
        let back = Credentials::load_unlocked(d, Some(&k)).unwrap();
        assert_eq!(back.key_pem, c.key_pem);
        assert_eq!(back.lock.as_ref(), Some(&k));
        let dk2 = DataKey::load(&d.join("raft"), Some(&k)).unwrap().unwrap();
        assert_eq!(dk2.to_text().0, dk.to_text().0);

        // Turned off: both back in clear.
        rewrap(d, &dk, &mut c, None).unwrap();
        assert!(!Credentials::is_locked(d) && !DataKey::is_locked(&d.join("raft")));
        assert_eq!(Credentials::load(d).unwrap().key_pem, c.key_pem);
        assert_eq!(DataKey::load(&d.join("raft"), None).unwrap().unwrap().to_text().0, dk.to_text().0);
    }

    #[test]
    fn rotation_the_old_key_stops_working_and_the_new_one_does() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut c = creds(d);
        let dk = DataKey::generate();
        let old = UnlockKey::generate();
        c.lock = Some(old.clone());
        c.save(d).unwrap();
        dk.save_under(&d.join("raft"), &[Some(&old)]).unwrap();
        let new = UnlockKey::generate();
        rewrap(d, &dk, &mut c, Some(new.clone())).unwrap();
        assert!(Credentials::load_unlocked(d, Some(&old)).is_err());
        assert!(DataKey::load(&d.join("raft"), Some(&old)).is_err());
        assert!(Credentials::load_unlocked(d, Some(&new)).is_ok());
        assert!(DataKey::load(&d.join("raft"), Some(&new)).unwrap().is_some());
    }

    /// A crash after each step of a re-wrap leaves a node that one of the
    /// two keys unlocks entirely (node key and data key alike).
    #[test]
    fn a_crash_at_any_step_of_a_rewrap_leaves_a_node_one_key_unlocks() {
        let dk = DataKey::generate();
        let a = UnlockKey::generate();
        let b = UnlockKey::generate();
        for (from, to) in [(None, Some(&a)), (Some(&a), Some(&b)), (Some(&a), None)] {
            for crash_after in 0..=3 {
                let dir = tempfile::tempdir().unwrap();
                let d = dir.path();
                let mut c = creds(d);
                c.lock = from.cloned();
                c.save(d).unwrap();
                dk.save_under(&d.join("raft"), &[from]).unwrap();
                let wk = DataKey::generate();
                wk.save_file(&d.join("raft"), WAL_KEY_FILE, &[from]).unwrap();
                // The steps of `rewrap`, stopped after `crash_after` of them.
                if crash_after >= 1 {
                    dk.save_under(&d.join("raft"), &[from, to]).unwrap();
                    wk.save_file(&d.join("raft"), WAL_KEY_FILE, &[from, to]).unwrap();
                }
                if crash_after >= 2 {
                    c.lock = to.cloned();
                    c.save(d).unwrap();
                }
                if crash_after >= 3 {
                    dk.save_under(&d.join("raft"), &[to]).unwrap();
                    wk.save_file(&d.join("raft"), WAL_KEY_FILE, &[to]).unwrap();
                }
                let same = |x: Result<Option<DataKey>, String>, want: &DataKey| {
                    x.map(|x| x.is_some_and(|x| x.to_text().0 == want.to_text().0)).unwrap_or(false)
                };
                let opens = |k: Option<&UnlockKey>| {
                    Credentials::load_unlocked(d, k).is_ok()
                        && same(DataKey::load(&d.join("raft"), k), &dk)
                        && same(DataKey::load_file(&d.join("raft"), WAL_KEY_FILE, k), &wk)
                };
                let unlocker = if crash_after >= 2 { to } else { from };
                assert!(opens(unlocker), "from {from:?} to {to:?}, crash after step {crash_after}");
            }
        }
    }
}
