//! The cluster's data key: seals secret payloads before they enter the Raft
//! log, so the log and its snapshots never hold a secret in clear.
//!
//! One 256-bit AES-GCM key per swarm, made by the manager that inits the
//! swarm and kept next to its Raft state (`swarm/raft/secrets.key`, 0600):
//! it lives and dies with the node's manager role (demotion and `swarm
//! leave` delete the Raft directory). A manager that joins or is promoted
//! starts without it and asks the other managers for it over mutual TLS
//! (`Request::SecretsKey`, managers only).
//!
//! What this protects: the WAL and snapshot files, copied or read on their
//! own. Without autolock, not someone holding the whole data directory,
//! which holds the key too (as in SwarmKit without autolock); with autolock
//! the key file is wrapped under the unlock key (`crate::autolock`).

use std::path::Path;
use std::sync::Arc;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use shoal_rpc::unlock::UnlockKey;
use shoal_rpc::KeyText;

pub const KEY_FILE: &str = "secrets.key";
/// This manager's own key for its Raft WAL and snapshots (see
/// `raft::storage`, "Encryption"), kept like the data key: in clear, or
/// wrapped under the unlock key with autolock. Not shared: a joining
/// manager writes its log before it holds the data key.
pub const WAL_KEY_FILE: &str = "wal.key";
/// A new WAL key while the storage is being sealed again under it (a
/// rotation, when autolock is turned on; see `autolock`). Its presence is
/// the rotation's state: `Autolock::run`, or the next start, finishes it.
pub const WAL_KEY_NEXT_FILE: &str = "wal.key.next";
/// `load`'s error for a wrapped key and no unlock key.
pub const LOCKED: &str = "the data key is locked";
/// Prefix of sealed text, so another scheme can follow later.
const SCHEME: &str = "aes256gcm:";

/// The data key as a manager holds it: shared with the controllers that
/// need it, `None` until a joining manager has fetched it.
pub type SharedDataKey = Arc<std::sync::RwLock<Option<DataKey>>>;

#[derive(Clone)]
pub struct DataKey {
    bytes: [u8; 32],
}

impl Drop for DataKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.bytes);
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl DataKey {
    pub fn generate() -> DataKey {
        let mut bytes = [0u8; 32];
        SystemRandom::new().fill(&mut bytes).expect("the system RNG works");
        DataKey { bytes }
    }

    /// The 32 bytes, for a WAL key (`raft/wal.key` is kept as a data key).
    pub(crate) fn bytes(&self) -> [u8; 32] {
        self.bytes
    }

    pub fn to_text(&self) -> KeyText {
        KeyText(shoal_api::base64::encode(&self.bytes))
    }

    pub fn from_text(text: &KeyText) -> Result<DataKey, String> {
        let raw = shoal_api::base64::decode(text.0.trim()).map_err(|e| format!("bad data key: {e}"))?;
        let bytes: [u8; 32] = raw.try_into().map_err(|_| "bad data key: not 32 bytes".to_string())?;
        Ok(DataKey { bytes })
    }

    /// The key saved in `raft_dir`, opened with `unlock` where it is
    /// wrapped (autolock). The file holds one key per line, in clear
    /// (base64) or wrapped (`shoal_rpc::unlock`); the first line that opens
    /// wins. During a re-wrap it briefly holds the key under both the old
    /// and the new unlock key, so a crash at any point leaves a file that
    /// opens with whichever key the node's TLS key is wrapped under.
    pub fn load(raft_dir: &Path, unlock: Option<&UnlockKey>) -> Result<Option<DataKey>, String> {
        Self::load_file(raft_dir, KEY_FILE, unlock)
    }

    /// As `load`, from `raft_dir/name` (`KEY_FILE` or `WAL_KEY_FILE`).
    pub fn load_file(raft_dir: &Path, name: &str, unlock: Option<&UnlockKey>) -> Result<Option<DataKey>, String> {
        let text = match std::fs::read_to_string(raft_dir.join(name)) {
            Ok(t) => zeroize::Zeroizing::new(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("reading {name}: {e}")),
        };
        let mut wrapped = false;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if shoal_rpc::unlock::is_wrapped(line) {
                wrapped = true;
                if let Some(k) = unlock {
                    if let Ok(plain) = k.unwrap(name, line) {
                        let bytes: [u8; 32] = plain.as_slice().try_into().map_err(|_| "bad data key: not 32 bytes".to_string())?;
                        return Ok(Some(DataKey { bytes }));
                    }
                }
            } else {
                return DataKey::from_text(&KeyText(line.to_string())).map(Some);
            }
        }
        match (wrapped, unlock) {
            (true, None) => Err(LOCKED.into()),
            _ => Err(shoal_rpc::unlock::INVALID_KEY.into()),
        }
    }

    /// Whether the saved key is wrapped under an unlock key (and none of
    /// its lines is in clear).
    pub fn is_locked(raft_dir: &Path) -> bool {
        std::fs::read_to_string(raft_dir.join(KEY_FILE))
            .map(|t| {
                let mut lines = t.lines().map(str::trim).filter(|l| !l.is_empty()).peekable();
                lines.peek().is_some() && lines.all(shoal_rpc::unlock::is_wrapped)
            })
            .unwrap_or(false)
    }

    /// Saves the key in clear (autolock off).
    pub fn save(&self, raft_dir: &Path) -> Result<(), String> {
        self.save_under(raft_dir, &[None])
    }

    /// Saves the key once per entry of `locks`: wrapped under each unlock
    /// key given, in clear for `None`.
    pub fn save_under(&self, raft_dir: &Path, locks: &[Option<&UnlockKey>]) -> Result<(), String> {
        self.save_file(raft_dir, KEY_FILE, locks)
    }

    /// As `save_under`, to `raft_dir/name`.
    pub fn save_file(&self, raft_dir: &Path, name: &str, locks: &[Option<&UnlockKey>]) -> Result<(), String> {
        std::fs::create_dir_all(raft_dir).map_err(|e| format!("creating {}: {e}", raft_dir.display()))?;
        let mut text = zeroize::Zeroizing::new(String::new());
        for lock in locks {
            match lock {
                Some(k) => text.push_str(&k.wrap(name, &self.bytes)),
                None => text.push_str(&self.to_text().0),
            }
            text.push('\n');
        }
        shoal_rpc::credentials::write_atomic(&raft_dir.join(name), text.as_bytes(), 0o600).map_err(|e| format!("saving {name}: {e}"))
    }

    fn aead(&self) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.bytes).expect("32-byte AES key"))
    }

    /// Encrypts `plain`, bound to `context` (the object's ID: a sealed blob
    /// moved to another object does not open). A fresh random nonce each time.
    pub fn seal(&self, context: &str, plain: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).expect("the system RNG works");
        let mut buf = plain.to_vec();
        self.aead()
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context.as_bytes()), &mut buf)
            .expect("AES-GCM seals any length we allow");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        format!("{SCHEME}{}", shoal_api::base64::encode(&out))
    }

    /// The plain bytes, wiped from memory when dropped.
    pub fn open(&self, context: &str, sealed: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
        let text = sealed.strip_prefix(SCHEME).ok_or("sealed data of an unknown scheme")?;
        let raw = shoal_api::base64::decode(text)?;
        if raw.len() < NONCE_LEN {
            return Err("sealed data too short".into());
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| "bad nonce")?;
        let mut buf = zeroize::Zeroizing::new(body.to_vec());
        let len = self
            .aead()
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| "sealed data does not open with this key".to_string())?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

/// Whether `text` is sealed data (of any scheme this version knows).
pub fn is_sealed(text: &str) -> bool {
    text.starts_with(SCHEME)
}

/// The key at start: the saved one, or a new one for a new swarm.
pub fn at_start(raft_dir: &Path, bootstrap: bool, unlock: Option<&UnlockKey>) -> Result<Option<DataKey>, String> {
    if let Some(k) = DataKey::load(raft_dir, unlock)? {
        return Ok(Some(k));
    }
    if bootstrap {
        let k = DataKey::generate();
        k.save(raft_dir)?;
        return Ok(Some(k));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper_detection() {
        let k = DataKey::generate();
        let sealed = k.seal("id1", b"s3cret");
        assert!(!sealed.contains("s3cret"));
        assert_ne!(sealed, k.seal("id1", b"s3cret"), "fresh nonce each time");
        assert_eq!(k.open("id1", &sealed).unwrap().as_slice(), b"s3cret");
        assert!(k.open("id2", &sealed).is_err(), "bound to its object");
        assert!(DataKey::generate().open("id1", &sealed).is_err(), "another key does not open it");
        let mut raw = shoal_api::base64::decode(sealed.strip_prefix(SCHEME).unwrap()).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = format!("{SCHEME}{}", shoal_api::base64::encode(&raw));
        assert!(k.open("id1", &tampered).is_err());
    }

    #[test]
    fn key_file_round_trip_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        assert!(at_start(dir.path(), false, None).unwrap().is_none(), "a joining manager starts without one");
        let k = at_start(dir.path(), true, None).unwrap().unwrap();
        let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = at_start(dir.path(), false, None).unwrap().unwrap();
        assert_eq!(again.open("x", &k.seal("x", b"data")).unwrap().as_slice(), b"data");
        assert!(!format!("{k:?}").contains(&k.to_text().0));
    }
}
