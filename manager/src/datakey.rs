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
//! own. What it does not: someone holding the whole data directory, which
//! holds the key too (as in SwarmKit without autolock).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use shoal_rpc::{client, KeyText, Request, Response};

use crate::manager::Manager;

pub const KEY_FILE: &str = "secrets.key";
/// Prefix of sealed text, so another scheme can follow later.
const SCHEME: &str = "aes256gcm:";

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

    pub fn to_text(&self) -> KeyText {
        KeyText(shoal_api::base64::encode(&self.bytes))
    }

    pub fn from_text(text: &KeyText) -> Result<DataKey, String> {
        let raw = shoal_api::base64::decode(text.0.trim()).map_err(|e| format!("bad data key: {e}"))?;
        let bytes: [u8; 32] = raw.try_into().map_err(|_| "bad data key: not 32 bytes".to_string())?;
        Ok(DataKey { bytes })
    }

    pub fn load(raft_dir: &Path) -> Result<Option<DataKey>, String> {
        match std::fs::read_to_string(raft_dir.join(KEY_FILE)) {
            Ok(t) => DataKey::from_text(&KeyText(t)).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("reading the secrets key: {e}")),
        }
    }

    pub fn save(&self, raft_dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(raft_dir).map_err(|e| format!("creating {}: {e}", raft_dir.display()))?;
        shoal_rpc::credentials::write_atomic(&raft_dir.join(KEY_FILE), self.to_text().0.as_bytes(), 0o600)
            .map_err(|e| format!("saving the secrets key: {e}"))
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
pub fn at_start(raft_dir: &Path, bootstrap: bool) -> Result<Option<DataKey>, String> {
    if let Some(k) = DataKey::load(raft_dir)? {
        return Ok(Some(k));
    }
    if bootstrap {
        let k = DataKey::generate();
        k.save(raft_dir)?;
        return Ok(Some(k));
    }
    Ok(None)
}

/// Gets the key from another manager (runs until it has one). A manager
/// that finds itself the only member (a swarm from before secrets existed)
/// makes one: no sealed data can exist without a key.
pub async fn fetch(mgr: Arc<Manager>) {
    let raft_dir = mgr.cfg.swarm_dir.join("raft");
    loop {
        if mgr.data_key().is_some() {
            return;
        }
        let (peers, alone) = {
            let st = mgr.raft.store.read().unwrap();
            let peers: Vec<String> = st.members.values().filter(|m| m.raft_id != mgr.cfg.raft_id).map(|m| m.addr.clone()).collect();
            (peers, st.members.len() == 1 && st.members.contains_key(&mgr.cfg.raft_id))
        };
        let mut got = None;
        if alone {
            got = Some(DataKey::generate());
        }
        for addr in &peers {
            if got.is_some() {
                break;
            }
            match client::call_once(addr, mgr.client_tls(), &Request::SecretsKey, Duration::from_secs(5)).await {
                Ok(Response::SecretsKey { key }) => match DataKey::from_text(&key) {
                    Ok(k) => got = Some(k),
                    Err(e) => tracing::warn!("secrets key from {addr}: {e}"),
                },
                Ok(Response::Error { message, .. }) => tracing::debug!("secrets key from {addr}: {message}"),
                _ => {}
            }
        }
        if let Some(k) = got {
            if let Err(e) = k.save(&raft_dir) {
                tracing::warn!("{e}");
            }
            *mgr.data_key.write().unwrap() = Some(k);
            tracing::info!("this manager now holds the secrets key");
            return;
        }
        // Peers show up as entries apply: try again then, or after a second.
        let mut applied = mgr.raft.applied.clone();
        let _ = tokio::time::timeout(Duration::from_secs(1), applied.changed()).await;
    }
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
        assert!(at_start(dir.path(), false).unwrap().is_none(), "a joining manager starts without one");
        let k = at_start(dir.path(), true).unwrap().unwrap();
        let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = at_start(dir.path(), false).unwrap().unwrap();
        assert_eq!(again.open("x", &k.seal("x", b"data")).unwrap().as_slice(), b"data");
        assert!(!format!("{k:?}").contains(&k.to_text().0));
    }
}
