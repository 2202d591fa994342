//! A node's TLS credentials: the root CA it trusts, its certificate and key.
//! Kept on disk as Docker keeps them (`swarm/certificates/`), written
//! atomically so a crash never leaves a half-written key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use shoal_security::{identity, tls, NodeIdentity};

use crate::unlock::{self, UnlockKey};

#[derive(Clone, Debug)]
pub struct Credentials {
    pub root_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    /// With autolock on (managers only): the unlock key the private key is
    /// wrapped under on disk (`unlock`).
    pub lock: Option<UnlockKey>,
}

const ROOT: &str = "swarm-root-ca.crt";
const CERT: &str = "swarm-node.crt";
const KEY: &str = "swarm-node.key";
/// The additional data a wrapped node key is bound to.
const KEY_PURPOSE: &str = "swarm-node.key";

impl Drop for Credentials {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key_pem);
    }
}

impl Credentials {
    pub fn dir(swarm_dir: &Path) -> PathBuf {
        swarm_dir.join("certificates")
    }

    /// Credentials whose key is in clear on disk; a wrapped (locked) key is
    /// an error (`is_locked`, `load_unlocked`).
    pub fn load(swarm_dir: &Path) -> std::io::Result<Credentials> {
        Self::load_unlocked(swarm_dir, None)
    }

    /// Whether the node's key on disk is wrapped under an unlock key.
    pub fn is_locked(swarm_dir: &Path) -> bool {
        std::fs::read_to_string(Self::dir(swarm_dir).join(KEY)).map(|t| unlock::is_wrapped(&t)).unwrap_or(false)
    }

    /// Loads the credentials, opening a wrapped key with `key`; the error
    /// of a key that does not open it says `unlock::INVALID_KEY`. A key in
    /// clear loads whatever `key` is (the unlock key is kept for the next
    /// save only when it opened the key).
    pub fn load_unlocked(swarm_dir: &Path, key: Option<&UnlockKey>) -> std::io::Result<Credentials> {
        let d = Self::dir(swarm_dir);
        let stored = zeroize::Zeroizing::new(std::fs::read_to_string(d.join(KEY))?);
        let (key_pem, lock) = if unlock::is_wrapped(&stored) {
            let k = key.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::PermissionDenied, "the node key is locked"))?;
            let plain = k.unwrap(KEY_PURPOSE, &stored).map_err(|e| std::io::Error::new(std::io::ErrorKind::PermissionDenied, e))?;
            let pem = String::from_utf8(plain.to_vec()).map_err(std::io::Error::other)?;
            (pem, Some(k.clone()))
        } else {
            (stored.to_string(), None)
        };
        Ok(Credentials {
            root_pem: std::fs::read_to_string(d.join(ROOT))?,
            cert_pem: std::fs::read_to_string(d.join(CERT))?,
            key_pem,
            lock,
        })
    }

    /// Writes the credentials; the private key wrapped under `lock` if set.
    pub fn save(&self, swarm_dir: &Path) -> std::io::Result<()> {
        let d = Self::dir(swarm_dir);
        std::fs::create_dir_all(&d)?;
        match &self.lock {
            Some(k) => write_atomic(&d.join(KEY), k.wrap(KEY_PURPOSE, self.key_pem.as_bytes()).as_bytes(), 0o600)?,
            None => write_atomic(&d.join(KEY), self.key_pem.as_bytes(), 0o600)?,
        }
        write_atomic(&d.join(CERT), self.cert_pem.as_bytes(), 0o644)?;
        write_atomic(&d.join(ROOT), self.root_pem.as_bytes(), 0o644)
    }

    pub fn identity(&self) -> Result<NodeIdentity, String> {
        identity::identity_from_pem(&self.cert_pem)
    }

    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        tls::client_config(std::slice::from_ref(&self.root_pem), Some((&self.cert_pem, &self.key_pem)))
    }

    /// Server config trusting `roots` (the current root, plus the previous one
    /// while a CA rotation is under way).
    pub fn server_config(&self, roots: &[String]) -> Result<Arc<rustls::ServerConfig>, String> {
        self.server_config_with(roots, "")
    }

    /// As `server_config`, with `extra` certificates (PEM) sent after the
    /// root in the chain (a cross-signed root during a rotation).
    pub fn server_config_with(&self, roots: &[String], extra: &str) -> Result<Arc<rustls::ServerConfig>, String> {
        let chain_tail = format!("{}\n{}", self.root_pem.trim_end(), extra);
        tls::server_config(roots, &self.cert_pem, &self.key_pem, if extra.is_empty() { &self.root_pem } else { &chain_tail })
    }
}

/// Writes `path` so that it holds either the old or the new content, never a
/// mix: temp file, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}
