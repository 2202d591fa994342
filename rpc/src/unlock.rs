//! Autolock's key-encryption key: the swarm's unlock key.
//!
//! With autolock on, a manager keeps its private TLS key
//! (`certificates/swarm-node.key`) and the cluster's data key
//! (`raft/secrets.key`) wrapped under this key, which only the operator
//! holds: a restarted manager stays locked until it is given the key
//! (`POST /swarm/unlock`).
//!
//! The key is 32 random bytes, shown as SwarmKit shows it:
//! `SWMKEY-1-` followed by the bytes in standard base64 without padding.
//!
//! # Wrapped text
//!
//! `SHOAL-WRAPPED-1:` · base64( nonce (12 bytes) · AES-256-GCM ciphertext
//! and tag ), the additional data being the file's purpose (`swarm-node.key`,
//! `secrets.key`), so a wrapped blob moved to another file does not open.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, Zeroizing};

const HUMAN_PREFIX: &str = "SWMKEY-1-";
const WRAPPED_PREFIX: &str = "SHOAL-WRAPPED-1:";

/// Docker's answer to a key that is not `SWMKEY-1-<base64>`.
pub const INVALID_KEY_STRING: &str = "invalid key string";
/// Docker's answer to a well-formed key that does not open this manager.
pub const INVALID_KEY: &str = "swarm could not be unlocked: invalid key provided";

/// The unlock key; wiped from memory when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct UnlockKey {
    bytes: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for UnlockKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnlockKey(<redacted>)")
    }
}

impl UnlockKey {
    pub fn generate() -> UnlockKey {
        let mut bytes = Zeroizing::new(vec![0u8; 32]);
        SystemRandom::new().fill(&mut bytes).expect("the system RNG works");
        UnlockKey { bytes }
    }

    /// `SWMKEY-1-…`, what the operator is shown and types back.
    pub fn to_human(&self) -> Zeroizing<String> {
        let mut b64 = shoal_api::base64::encode(&self.bytes);
        let human = Zeroizing::new(format!("{HUMAN_PREFIX}{}", b64.trim_end_matches('=')));
        b64.zeroize();
        human
    }

    /// Parses `SWMKEY-1-…`; any other text is Docker's "invalid key string".
    /// A well-formed key of the wrong length parses (and then opens nothing).
    pub fn parse_human(text: &str) -> Result<UnlockKey, String> {
        let body = text.trim().strip_prefix(HUMAN_PREFIX).ok_or(INVALID_KEY_STRING)?;
        if body.contains('=') || body.is_empty() {
            return Err(INVALID_KEY_STRING.into());
        }
        let bytes = shoal_api::base64::decode(body).map_err(|_| INVALID_KEY_STRING.to_string())?;
        Ok(UnlockKey { bytes: Zeroizing::new(bytes) })
    }

    fn aead(&self) -> Option<LessSafeKey> {
        UnboundKey::new(&AES_256_GCM, &self.bytes).ok().map(LessSafeKey::new)
    }

    /// Encrypts `plain` for the file named by `purpose`.
    pub fn wrap(&self, purpose: &str, plain: &[u8]) -> String {
        let aead = self.aead().expect("generated and stored unlock keys are 32 bytes");
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).expect("the system RNG works");
        let mut buf = Zeroizing::new(plain.to_vec());
        aead.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(purpose.as_bytes()), &mut *buf)
            .expect("AES-GCM seals any length we use");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        format!("{WRAPPED_PREFIX}{}", shoal_api::base64::encode(&out))
    }

    /// The plain bytes of text `wrap` made for `purpose`, or `INVALID_KEY`
    /// when this key does not open it (or it was tampered with).
    pub fn unwrap(&self, purpose: &str, wrapped: &str) -> Result<Zeroizing<Vec<u8>>, String> {
        let text = wrapped.trim().strip_prefix(WRAPPED_PREFIX).ok_or("not wrapped text")?;
        let raw = shoal_api::base64::decode(text)?;
        if raw.len() < NONCE_LEN {
            return Err("wrapped text too short".into());
        }
        let aead = self.aead().ok_or(INVALID_KEY)?;
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| "bad nonce")?;
        let mut buf = Zeroizing::new(body.to_vec());
        let len = aead.open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut buf).map_err(|_| INVALID_KEY.to_string())?.len();
        buf.truncate(len);
        Ok(buf)
    }
}

/// Whether `text` (a key file's content) is wrapped under an unlock key.
pub fn is_wrapped(text: &str) -> bool {
    text.trim_start().starts_with(WRAPPED_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_form_round_trips_as_swarmkit_writes_it() {
        let k = UnlockKey::generate();
        let h = k.to_human();
        assert!(h.starts_with("SWMKEY-1-"));
        assert_eq!(h.len(), "SWMKEY-1-".len() + 43, "32 bytes, base64 without padding");
        assert!(!h.contains('='));
        assert_eq!(UnlockKey::parse_human(&h).unwrap(), k);
        assert_eq!(UnlockKey::parse_human(&format!("  {}\n", &*h)).unwrap(), k);
        for bad in ["", "SWMKEY-1-", "SWMTKN-1-abc", "swmkey-1-abc", "SWMKEY-1-!!!", "SWMKEY-1-abc="] {
            assert_eq!(UnlockKey::parse_human(bad).unwrap_err(), INVALID_KEY_STRING, "{bad:?}");
        }
        assert!(!format!("{k:?}").contains(&h[9..]));
    }

    #[test]
    fn wrap_unwrap_and_a_wrong_key_is_refused() {
        let k = UnlockKey::generate();
        let w = k.wrap("secrets.key", b"data key bytes");
        assert!(is_wrapped(&w));
        assert!(!is_wrapped("bm90IHdyYXBwZWQ="));
        assert!(!w.contains("data key bytes"));
        assert_ne!(w, k.wrap("secrets.key", b"data key bytes"), "a fresh nonce each time");
        assert_eq!(k.unwrap("secrets.key", &w).unwrap().as_slice(), b"data key bytes");
        assert_eq!(UnlockKey::generate().unwrap("secrets.key", &w).unwrap_err(), INVALID_KEY);
        assert_eq!(k.unwrap("swarm-node.key", &w).unwrap_err(), INVALID_KEY, "bound to its file");
        // A well-formed key of another length opens nothing and panics not.
        let short = UnlockKey::parse_human("SWMKEY-1-YWJj").unwrap();
        assert_eq!(short.unwrap("secrets.key", &w).unwrap_err(), INVALID_KEY);
        let mut raw = shoal_api::base64::decode(w.strip_prefix(WRAPPED_PREFIX).unwrap()).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = format!("{WRAPPED_PREFIX}{}", shoal_api::base64::encode(&raw));
        assert!(k.unwrap("secrets.key", &tampered).is_err());
    }

    #[test]
    fn rotation_old_key_stops_opening_what_the_new_one_wrapped() {
        let old = UnlockKey::generate();
        let plain = b"-----BEGIN PRIVATE KEY-----";
        let w1 = old.wrap("swarm-node.key", plain);
        let new = UnlockKey::generate();
        let w2 = new.wrap("swarm-node.key", &old.unwrap("swarm-node.key", &w1).unwrap());
        assert_eq!(new.unwrap("swarm-node.key", &w2).unwrap().as_slice(), plain);
        assert_eq!(old.unwrap("swarm-node.key", &w2).unwrap_err(), INVALID_KEY);
    }
}
