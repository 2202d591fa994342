//! Docker-compatible join tokens:
//! `SWMTKN-1-<50 base36 chars: sha256 of root CA DER>-<25 base36 chars: secret>`.
//!
//! The digest lets a joining node pin the cluster's root CA before it trusts
//! anything (see `tls::bootstrap_client_config`); the secret authorises it
//! and selects the role (managers and workers have different secrets, but
//! the same digest).

use std::fmt;

use rand::RngCore;

use crate::base36;
use crate::Error;

const PREFIX: &str = "SWMTKN";
const VERSION: &str = "1";
const DIGEST_LEN: usize = 50;
const SECRET_LEN: usize = 25;
const SECRET_BYTES: usize = 16;

/// Docker reports every malformed token the same way; so do we.
const INVALID: &str = "invalid join token";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinToken {
    pub ca_digest: [u8; 32],
    /// The 25-character base-36 secret part.
    pub secret: String,
}

fn is_base36(s: &str) -> bool {
    s.bytes().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
}

impl JoinToken {
    /// A token for the given root CA with a fresh 128-bit random secret.
    pub fn generate(ca_digest: [u8; 32]) -> JoinToken {
        let mut secret = [0u8; SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        JoinToken { ca_digest, secret: base36::encode_fixed(&secret, SECRET_LEN) }
    }

    pub fn parse(s: &str) -> Result<JoinToken, Error> {
        let invalid = || INVALID.to_string();
        let parts: Vec<&str> = s.split('-').collect();
        let [prefix, version, digest, secret] = parts[..] else {
            return Err(invalid());
        };
        if prefix != PREFIX || version != VERSION || digest.len() != DIGEST_LEN || secret.len() != SECRET_LEN || !is_base36(secret) {
            return Err(invalid());
        }
        // decode() rejects non-base36 characters; 50 digits can exceed 256
        // bits, so also reject values that do not fit a sha256 digest.
        let bytes = base36::decode(digest).ok_or_else(invalid)?;
        if bytes.len() > 32 {
            return Err(invalid());
        }
        let mut ca_digest = [0u8; 32];
        ca_digest[32 - bytes.len()..].copy_from_slice(&bytes);
        Ok(JoinToken { ca_digest, secret: secret.to_string() })
    }

    /// Constant-time comparison of the secret part, so a manager checking
    /// tokens does not leak how many leading characters were right.
    pub fn secret_matches(&self, other_secret: &str) -> bool {
        let a = self.secret.as_bytes();
        let b = other_secret.as_bytes();
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Display for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}-{VERSION}-{}-{}", base36::encode_fixed(&self.ca_digest, DIGEST_LEN), self.secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> [u8; 32] {
        let mut d = [0u8; 32];
        for (i, b) in d.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(200);
        }
        d
    }

    #[test]
    fn round_trip_and_lengths() {
        let tok = JoinToken::generate(digest());
        let text = tok.to_string();
        let parts: Vec<&str> = text.split('-').collect();
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0], "SWMTKN");
        assert_eq!(parts[1], "1");
        assert_eq!(parts[2].len(), 50);
        assert_eq!(parts[3].len(), 25);
        assert_eq!(tok.secret.len(), 25);
        assert_eq!(JoinToken::parse(&text).unwrap(), tok);
    }

    #[test]
    fn small_digest_round_trips_with_padding() {
        let mut d = [0u8; 32];
        d[31] = 1;
        let tok = JoinToken::generate(d);
        let text = tok.to_string();
        assert!(text.starts_with(&format!("SWMTKN-1-{}1-", "0".repeat(49))));
        assert_eq!(JoinToken::parse(&text).unwrap().ca_digest, d);
        let max = JoinToken::generate([0xff; 32]);
        assert_eq!(JoinToken::parse(&max.to_string()).unwrap(), max);
    }

    #[test]
    fn manager_and_worker_tokens_share_digest_part() {
        let ca = crate::RootCa::generate().unwrap();
        let m = JoinToken::generate(ca.digest()).to_string();
        let w = JoinToken::generate(ca.digest()).to_string();
        assert_eq!(m[..60], w[..60]);
        assert_ne!(m[60..], w[60..]);
    }

    #[test]
    fn parse_rejects_malformed() {
        let good = JoinToken::generate(digest()).to_string();
        let d = &good[9..59];
        let s = &good[60..];
        let bad = [
            String::new(),
            format!("SWMTKX-1-{d}-{s}"),
            format!("swmtkn-1-{d}-{s}"),
            format!("SWMTKN-2-{d}-{s}"),
            format!("SWMTKN-1-{d}"),
            format!("SWMTKN-1-{d}-{s}-x"),
            format!("SWMTKN-{d}-{s}"),
            format!("SWMTKN-1-{}-{s}", &d[1..]),
            format!("SWMTKN-1-{d}0-{s}"),
            format!("SWMTKN-1-{d}-{}", &s[1..]),
            format!("SWMTKN-1-{d}-{s}0"),
            format!("SWMTKN-1-{}-{s}", d.to_uppercase().replace(char::is_numeric, "A")),
            format!("SWMTKN-1-{d}-{}A", &s[1..]),
            format!("SWMTKN-1-{d}-{}_", &s[1..]),
            format!("SWMTKN-1-{}!-{s}", &d[1..]),
            // 50 'z's is > 2^256: not a sha256 digest.
            format!("SWMTKN-1-{}-{s}", "z".repeat(50)),
        ];
        for t in bad {
            assert_eq!(JoinToken::parse(&t), Err("invalid join token".to_string()), "{t}");
        }
    }

    #[test]
    fn secret_matches_compares_exactly() {
        let tok = JoinToken::generate(digest());
        let other = JoinToken::generate(digest());
        assert!(tok.secret_matches(&tok.secret.clone()));
        assert!(!tok.secret_matches(&other.secret));
        assert!(!tok.secret_matches(&tok.secret[..24]));
        assert!(!tok.secret_matches(""));
        let mut flipped = tok.secret.clone().into_bytes();
        flipped[24] = if flipped[24] == b'0' { b'1' } else { b'0' };
        assert!(!tok.secret_matches(std::str::from_utf8(&flipped).unwrap()));
    }
}
