//! Registry credentials and the registry's authentication challenges.
//!
//! Credentials arrive the way the Docker CLI sends them: the
//! `X-Registry-Auth` header is base64url of a JSON `AuthConfig`
//! (`{"username","password","serveraddress",...}`); with
//! `--with-registry-auth` a service carries the same blob to the workers.
//! A registry asks for credentials with `WWW-Authenticate`: `Basic` means
//! "send them to me", `Bearer realm=...,service=...,scope=...` means
//! "trade them for a token at the realm" (the distribution token protocol).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Docker's `AuthConfig` (api/types/registry). Unknown fields are ignored
/// so newer CLIs keep working.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// base64 of `user:password`, as in `~/.docker/config.json`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(default, rename = "serveraddress", skip_serializing_if = "String::is_empty")]
    pub server_address: String,
    /// An OAuth2 refresh token (from `docker login` against some registries).
    #[serde(default, rename = "identitytoken", skip_serializing_if = "String::is_empty")]
    pub identity_token: String,
    /// A bearer token to send to the registry as it is.
    #[serde(default, rename = "registrytoken", skip_serializing_if = "String::is_empty")]
    pub registry_token: String,
}

/// Never print secrets (these end up in logs and error chains).
impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .field("server_address", &self.server_address)
            .field("password", &if self.password.is_empty() { "" } else { "<redacted>" })
            .finish_non_exhaustive()
    }
}

impl AuthConfig {
    pub fn basic(username: &str, password: &str) -> AuthConfig {
        AuthConfig { username: username.into(), password: password.into(), ..Default::default() }
    }

    /// Decodes an `X-Registry-Auth` header value. Docker encodes with
    /// base64url; standard base64 and missing padding are accepted too, as
    /// older clients sent those. An empty header means no credentials.
    pub fn from_header(value: &str) -> Result<Option<AuthConfig>, String> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        let json = base64_decode(value).ok_or("invalid X-Registry-Auth header: not base64")?;
        if json.iter().all(|b| b.is_ascii_whitespace()) || json == b"{}" || json == b"null" {
            return Ok(None);
        }
        // Read as Docker reads it (Go's decoder: field names in any case).
        let mut cfg: AuthConfig = shoal_api::lenient::from_slice(&json).map_err(|e| format!("invalid X-Registry-Auth header: {e}"))?;
        cfg.fill_from_auth_field();
        Ok(Some(cfg))
    }

    /// Encodes for an `X-Registry-Auth` header (base64url, as Docker does).
    pub fn to_header(&self) -> String {
        base64_encode(&serde_json::to_vec(self).unwrap_or_default(), true)
    }

    /// If only `auth` (base64 of `user:password`) was given, split it.
    fn fill_from_auth_field(&mut self) {
        if self.username.is_empty() && !self.auth.is_empty() {
            if let Some(raw) = base64_decode(&self.auth) {
                if let Some((u, p)) = String::from_utf8_lossy(&raw).split_once(':') {
                    self.username = u.to_string();
                    self.password = p.trim_end_matches('\0').to_string();
                }
            }
        }
    }

    /// Has something to send to a registry or token server.
    pub fn has_credentials(&self) -> bool {
        !self.username.is_empty() || !self.identity_token.is_empty() || !self.registry_token.is_empty()
    }

    /// `Basic <base64(user:password)>`.
    pub fn basic_header(&self) -> Option<String> {
        if self.username.is_empty() {
            return None;
        }
        let raw = format!("{}:{}", self.username, self.password);
        Some(format!("Basic {}", base64_encode(raw.as_bytes(), false)))
    }
}

/// One `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// Lowercased: `basic` or `bearer`.
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }
}

/// Parses a `WWW-Authenticate` header value: `Scheme k="v", k2=v2`.
/// Quoted values may contain commas and `\"` escapes (scopes do:
/// `scope="repository:a:pull,push"`).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = match header.find(char::is_whitespace) {
        Some(i) => (&header[..i], header[i..].trim_start()),
        None => (header, ""),
    };
    if scheme.is_empty() {
        return None;
    }
    let mut params = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            break;
        }
        while matches!(chars.peek(), Some(c) if c.is_whitespace()) {
            chars.next();
        }
        if chars.peek() != Some(&'=') {
            params.insert(key.to_ascii_lowercase(), String::new());
            continue;
        }
        chars.next();
        while matches!(chars.peek(), Some(c) if c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n)
                        }
                    }
                    '"' => break,
                    _ => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        params.insert(key.to_ascii_lowercase(), value);
    }
    Some(Challenge { scheme: scheme.to_ascii_lowercase(), params })
}

/// A token server's answer. Docker accepts either field.
#[derive(Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub access_token: String,
}

impl TokenResponse {
    pub fn into_token(self) -> Option<String> {
        if !self.token.is_empty() {
            Some(self.token)
        } else if !self.access_token.is_empty() {
            Some(self.access_token)
        } else {
            None
        }
    }
}

/// base64 with padding; `url` picks the URL-safe alphabet.
pub fn base64_encode(data: &[u8], url: bool) -> String {
    if url {
        shoal_api::base64::encode_url(data)
    } else {
        shoal_api::base64::encode(data)
    }
}

/// Decodes base64 in either alphabet, with or without padding.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    shoal_api::base64::decode_any(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_both_alphabets() {
        for data in [&b""[..], b"f", b"fo", b"foo", b"foob", b"\xff\xfe\xfd\xfc"] {
            for url in [false, true] {
                let enc = base64_encode(data, url);
                assert_eq!(base64_decode(&enc).unwrap(), data, "{enc}");
                assert_eq!(base64_decode(enc.trim_end_matches('=')).unwrap(), data);
            }
        }
        assert_eq!(base64_encode(b"\xfb\xff", false), "+/8=");
        assert_eq!(base64_encode(b"\xfb\xff", true), "-_8=");
        assert_eq!(base64_encode(b"user:pass", false), "dXNlcjpwYXNz");
        assert!(base64_decode("a").is_none());
        assert!(base64_decode("a*b=").is_none());
    }

    #[test]
    fn decodes_x_registry_auth() {
        let json = r#"{"username":"alice","password":"s3cret","serveraddress":"127.0.0.1:5000","extra":1}"#;
        let header = base64_encode(json.as_bytes(), true);
        let cfg = AuthConfig::from_header(&header).unwrap().unwrap();
        assert_eq!((cfg.username.as_str(), cfg.password.as_str()), ("alice", "s3cret"));
        assert_eq!(cfg.server_address, "127.0.0.1:5000");
        assert_eq!(cfg.basic_header().unwrap(), "Basic YWxpY2U6czNjcmV0");
        // Round trip through our own encoder.
        assert_eq!(AuthConfig::from_header(&cfg.to_header()).unwrap().unwrap(), cfg);
        // The docker config.json "auth" field.
        let json = format!(r#"{{"auth":"{}"}}"#, base64_encode(b"bob:pw:with:colons", false));
        let cfg = AuthConfig::from_header(&base64_encode(json.as_bytes(), false)).unwrap().unwrap();
        assert_eq!((cfg.username.as_str(), cfg.password.as_str()), ("bob", "pw:with:colons"));
        // Field names in any case, `null` as not set, as Docker reads them.
        let json = r#"{"Username":"carol","Password":"pw","ServerAddress":"reg:5000","Email":null}"#;
        let cfg = AuthConfig::from_header(&base64_encode(json.as_bytes(), true)).unwrap().unwrap();
        assert_eq!((cfg.username.as_str(), cfg.password.as_str(), cfg.server_address.as_str()), ("carol", "pw", "reg:5000"));
        // Empty values mean anonymous.
        assert_eq!(AuthConfig::from_header("").unwrap(), None);
        assert_eq!(AuthConfig::from_header(&base64_encode(b"{}", true)).unwrap(), None);
        assert!(AuthConfig::from_header("!!!").unwrap_err().contains("not base64"));
        assert!(AuthConfig::from_header(&base64_encode(b"[1]", true)).is_err());
        // Secrets stay out of Debug output.
        assert!(!format!("{:?}", AuthConfig::basic("u", "hunter2")).contains("hunter2"));
    }

    #[test]
    fn parses_challenges() {
        let c = parse_challenge(r#"Bearer realm="http://127.0.0.1:1234/token",service="registry.test",scope="repository:a/b:pull,push""#)
            .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("http://127.0.0.1:1234/token"));
        assert_eq!(c.param("service"), Some("registry.test"));
        assert_eq!(c.param("scope"), Some("repository:a/b:pull,push"));
        let c = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!((c.scheme.as_str(), c.param("realm")), ("basic", Some("Registry Realm")));
        let c = parse_challenge(r#"Bearer realm=http://h/t , service = "s\"q", error=insufficient_scope"#).unwrap();
        assert_eq!(c.param("realm"), Some("http://h/t"));
        assert_eq!(c.param("service"), Some("s\"q"));
        assert_eq!(c.param("error"), Some("insufficient_scope"));
        assert!(parse_challenge("  ").is_none());
    }
}
