//! Image references with Docker's normalisation rules.
//!
//! Users write `busybox`, `alice/app:1.2`, `localhost:5000/x@sha256:…`; the
//! registry needs a host, a repository path and a tag or digest. Docker's
//! rules for getting from one to the other (the `reference` package of
//! docker/distribution) are what every user already knows, so we follow them
//! exactly, including their error messages:
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [domain '/'] path-component ['/' path-component]*
//! domain           := host [':' port-number]
//! host             := domain-name | '[' IPv6 ']'
//! domain-name      := domain-component ['.' domain-component]*
//! domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! path-component   := /[a-z0-9]+/ [separator /[a-z0-9]+/]*
//! separator        := /[_.]|__|[-]+/
//! tag              := /[\w][\w.-]{0,127}/
//! digest           := algorithm ":" /[0-9a-fA-F]{32,}/
//! ```
//!
//! Normalisation: the first path component is a registry host if it contains
//! `.` or `:`, is `localhost`, or has an uppercase letter; otherwise the
//! image is on Docker Hub (`docker.io`), and a single-component Hub name
//! lives under `library/`. A reference with neither tag nor digest means
//! `:latest` when pulled.

use std::fmt;

use super::digest::Digest;

pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// Where Docker Hub's registry API actually answers.
pub const DOCKER_HUB_REGISTRY: &str = "registry-1.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
pub const DEFAULT_TAG: &str = "latest";
/// Docker's limit on the repository path (domain excluded).
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A parsed, normalised reference: always has a domain and a path; a tag,
/// a digest, both, or neither.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// A reference was refused. The text is Docker's (users compare it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferenceError(pub String);

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReferenceError {}

fn err(msg: impl Into<String>) -> ReferenceError {
    ReferenceError(msg.into())
}

const INVALID_FORMAT: &str = "invalid reference format";

impl Reference {
    /// Parses what a user typed (Docker's `ParseNormalizedNamed`). The tag is
    /// left as written: see [`Reference::with_default_tag`].
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(err(format!("invalid repository name ({s}), cannot specify 64-byte hexadecimal strings")));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split(':').next().unwrap_or("");
        if remote.to_lowercase() != remote {
            return Err(err(format!("{INVALID_FORMAT}: repository name ({remote}) must be lowercase")));
        }
        let parsed = parse_any(&format!("{domain}/{remainder}"))?;
        // The grammar lets a name have no domain (when the first component
        // is not a valid host); after normalisation that only happens for
        // malformed hosts, which Docker could not pull from either.
        let domain = match parsed.domain {
            Some(d) if d == domain => d,
            _ => return Err(err(INVALID_FORMAT)),
        };
        Ok(Reference { domain, path: parsed.path, tag: parsed.tag, digest: parsed.digest })
    }

    /// Parses and applies the pull default: no tag and no digest means
    /// `latest` (Docker's `TagNameOnly`).
    pub fn parse_for_pull(s: &str) -> Result<Reference, ReferenceError> {
        Ok(Reference::parse(s)?.with_default_tag())
    }

    /// Adds `:latest` when the reference names neither a tag nor a digest.
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// The same repository with a different tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !valid_tag(tag) {
            return Err(err("invalid tag format"));
        }
        Ok(Reference { tag: Some(tag.to_string()), digest: None, ..self.clone() })
    }

    /// The same repository pinned to a digest, without a tag (what Docker
    /// records as a "repo digest").
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference { tag: None, digest: Some(digest), ..self.clone() }
    }

    /// `docker.io`, `localhost:5000`, `[::1]:5000`, ...
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry: `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The full repository name: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The name as Docker shows it: `busybox`, `alice/app`,
    /// `localhost:5000/x`.
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.path.clone(),
        }
    }

    /// The whole reference as Docker shows it: `busybox:latest`.
    pub fn familiar_string(&self) -> String {
        self.render(&self.familiar_name())
    }

    /// What a pull asks the registry for: the digest when there is one
    /// (Docker ignores the tag of `name:tag@digest`), else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// The host whose `/v2/` API serves this repository: Docker Hub's names
    /// live under `docker.io` but its registry answers elsewhere.
    pub fn registry_host(&self) -> &str {
        if self.domain == DEFAULT_DOMAIN {
            DOCKER_HUB_REGISTRY
        } else {
            &self.domain
        }
    }

    fn render(&self, name: &str) -> String {
        let mut s = name.to_string();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }
}

/// The full form: `docker.io/library/busybox:latest`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(&self.name()))
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// Decides which part of a user's string is the registry (Docker's
/// `splitDockerDomain`). Runs before validation, on the raw string.
fn split_docker_domain(name: &str) -> (String, String) {
    let Some((maybe_domain, maybe_remote)) = name.split_once('/') else {
        // A single component is always a Docker Hub official image, even
        // "localhost" or "example.com" (Docker does the same).
        return (DEFAULT_DOMAIN.to_string(), format!("{OFFICIAL_REPO_PREFIX}{name}"));
    };
    let (domain, remote) =
        if maybe_domain == "localhost" || maybe_domain.contains(['.', ':']) || maybe_domain.to_lowercase() != maybe_domain {
            let d = if maybe_domain == LEGACY_DEFAULT_DOMAIN { DEFAULT_DOMAIN } else { maybe_domain };
            (d.to_string(), maybe_remote.to_string())
        } else {
            (DEFAULT_DOMAIN.to_string(), name.to_string())
        };
    if domain == DEFAULT_DOMAIN && !remote.contains('/') {
        return (domain, format!("{OFFICIAL_REPO_PREFIX}{remote}"));
    }
    (domain, remote)
}

/// The grammar's parts before normalisation.
struct Parsed {
    domain: Option<String>,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Docker's `Parse`: the reference grammar, then the digest's own rules.
fn parse_any(s: &str) -> Result<Parsed, ReferenceError> {
    if s.is_empty() {
        return Err(err("repository name must have at least one component"));
    }
    match match_reference(s) {
        Some(p) => {
            if p.path.len() > NAME_TOTAL_LENGTH_MAX {
                return Err(err(format!("repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")));
            }
            let digest = match p.digest {
                Some(d) => Some(Digest::parse(d).map_err(|e| err(e.to_string()))?),
                None => None,
            };
            Ok(Parsed { domain: p.domain.map(str::to_string), path: p.path.to_string(), tag: p.tag.map(str::to_string), digest })
        }
        None => {
            let lower = s.to_lowercase();
            if lower != s && match_reference(&lower).is_some() {
                Err(err("repository name must be lowercase"))
            } else {
                Err(err(INVALID_FORMAT))
            }
        }
    }
}

struct Matched<'a> {
    domain: Option<&'a str>,
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// Matches the whole grammar (the anchored `ReferenceRegexp`) by hand.
fn match_reference(s: &str) -> Option<Matched<'_>> {
    // No part of the grammar but the digest separator contains '@'.
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => {
            if !valid_digest_syntax(d) {
                return None;
            }
            (r, Some(d))
        }
        None => (s, None),
    };
    // A ':' after the last '/' can only separate the tag: a port belongs to
    // the domain, and a domain is always followed by '/'.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].find(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        if !valid_tag(t) {
            return None;
        }
    }
    let (domain, path) = match_name(name)?;
    Some(Matched { domain, path, tag, digest })
}

/// `[domain '/'] remote-name`. Like Go's regexp, prefer reading the first
/// component as a domain when that leads to a match.
fn match_name(name: &str) -> Option<(Option<&str>, &str)> {
    if let Some((first, rest)) = name.split_once('/') {
        if valid_domain_and_port(first) && valid_remote_name(rest) {
            return Some((Some(first), rest));
        }
    }
    if valid_remote_name(name) {
        return Some((None, name));
    }
    None
}

fn valid_remote_name(s: &str) -> bool {
    s.split('/').all(valid_path_component)
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or one or more `-`.
fn valid_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !is_lower_alnum(b[0]) || !is_lower_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_lower_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_lower_alnum(b[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn valid_domain_and_port(s: &str) -> bool {
    let (host, port) = if let Some(inner) = s.strip_prefix('[') {
        // IPv6 literal between brackets; Docker allows hex digits and ':'.
        let Some(end) = inner.find(']') else { return false };
        let addr = &inner[..end];
        if addr.is_empty() || !addr.bytes().all(|c| c.is_ascii_hexdigit() || c == b':') {
            return false;
        }
        let after = &inner[end + 1..];
        match after.strip_prefix(':') {
            Some(p) => (None, Some(p)),
            None if after.is_empty() => (None, None),
            None => return false,
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(s), None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    match host {
        Some(h) => !h.is_empty() && h.split('.').all(valid_domain_component),
        None => true,
    }
}

fn valid_domain_component(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// `[\w][\w.-]{0,127}`.
fn valid_tag(s: &str) -> bool {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let b = s.as_bytes();
    !b.is_empty() && b.len() <= 128 && word(b[0]) && b.iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

/// `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`: the
/// shape only; which algorithms exist is the digest parser's business.
fn valid_digest_syntax(s: &str) -> bool {
    let Some((alg, hex)) = s.split_once(':') else { return false };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(|c| c.is_ascii_alphanumeric())
    });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa";

    fn full(s: &str) -> String {
        Reference::parse_for_pull(s).unwrap().to_string()
    }

    fn error(s: &str) -> String {
        Reference::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn docker_hub_names_are_normalised() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("alice/app"), "docker.io/alice/app:latest");
        assert_eq!(full("alice/team/app:v1"), "docker.io/alice/team/app:v1");
        assert_eq!(full("docker.io/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("index.docker.io/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("docker.io/library/busybox"), "docker.io/library/busybox:latest");
        // Single components are always Hub images, even host-like ones.
        assert_eq!(full("localhost"), "docker.io/library/localhost:latest");
        assert_eq!(full("localhost:5000"), "docker.io/library/localhost:5000");
    }

    #[test]
    fn domains_are_detected_like_docker() {
        let r = Reference::parse("localhost/app").unwrap();
        assert_eq!((r.domain(), r.path()), ("localhost", "app"));
        let r = Reference::parse("localhost:5000/a/b:t").unwrap();
        assert_eq!((r.domain(), r.path(), r.tag()), ("localhost:5000", "a/b", Some("t")));
        let r = Reference::parse("127.0.0.1:5000/app").unwrap();
        assert_eq!(r.domain(), "127.0.0.1:5000");
        let r = Reference::parse("registry.example.com/team/app:2").unwrap();
        assert_eq!((r.domain(), r.path()), ("registry.example.com", "team/app"));
        let r = Reference::parse("myhost:5000/app").unwrap();
        assert_eq!(r.domain(), "myhost:5000");
        let r = Reference::parse("[::1]:5000/app:t").unwrap();
        assert_eq!((r.domain(), r.path(), r.tag()), ("[::1]:5000", "app", Some("t")));
        // An uppercase first component is taken as a host name.
        let r = Reference::parse("Registry/app").unwrap();
        assert_eq!(r.domain(), "Registry");
        // Without '.', ':' or "localhost", it is a Hub namespace.
        let r = Reference::parse("myhost/app").unwrap();
        assert_eq!((r.domain(), r.path()), ("docker.io", "myhost/app"));
        // Other registries get no library/ prefix.
        assert_eq!(Reference::parse("localhost:5000/app").unwrap().path(), "app");
    }

    #[test]
    fn digests_and_tags() {
        let d = format!("sha256:{HEX}");
        let r = Reference::parse_for_pull(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.tag(), None, "a digest needs no default tag");
        assert_eq!(r.digest().unwrap().to_string(), d);
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{d}"));
        assert_eq!(r.manifest_reference(), d);

        let r = Reference::parse(&format!("localhost:5000/app:v1@{d}")).unwrap();
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.manifest_reference(), d, "the digest wins over the tag");
        assert_eq!(r.familiar_string(), format!("localhost:5000/app:v1@{d}"));

        let r = Reference::parse_for_pull("busybox").unwrap();
        assert_eq!(r.manifest_reference(), "latest");
        let tag128 = "a".repeat(128);
        assert!(Reference::parse(&format!("busybox:{tag128}")).is_ok());
        assert!(Reference::parse("busybox:_under.score-Dash").is_ok());
    }

    #[test]
    fn familiar_forms() {
        let f = |s: &str| Reference::parse_for_pull(s).unwrap().familiar_string();
        assert_eq!(f("docker.io/library/busybox"), "busybox:latest");
        assert_eq!(f("alice/app:2"), "alice/app:2");
        assert_eq!(f("docker.io/library/a/b"), "library/a/b:latest");
        assert_eq!(f("localhost:5000/app"), "localhost:5000/app:latest");
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.familiar_name(), "busybox");
        assert_eq!(r.familiar_string(), "busybox", "no tag was given");
        assert_eq!(r.name(), "docker.io/library/busybox");
        assert_eq!(r.registry_host(), "registry-1.docker.io");
        assert_eq!(Reference::parse("localhost:5000/x").unwrap().registry_host(), "localhost:5000");
    }

    #[test]
    fn separators_follow_the_grammar() {
        for ok in ["a.b", "a_b", "a__b", "a-b", "a---b", "a.b-c_d", "0ab", "a1/b2/c3"] {
            assert!(Reference::parse(ok).is_ok(), "{ok} should parse");
        }
        for bad in ["a..b", "a___b", "-ab", "ab-", "a_.b", ".ab", "a/", "/a", "a//b", "a b", "a:", ":t", ""] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn errors_use_dockers_words() {
        assert_eq!(error("Busybox"), "invalid reference format: repository name (library/Busybox) must be lowercase");
        assert_eq!(error("alice/App:1"), "invalid reference format: repository name (alice/App) must be lowercase");
        assert_eq!(error("localhost:5000/App"), "invalid reference format: repository name (App) must be lowercase");
        assert_eq!(error("busybox:"), "invalid reference format");
        assert_eq!(error("busybox:a:b"), "invalid reference format");
        assert_eq!(error("busybox:.tag"), "invalid reference format");
        assert_eq!(error(&format!("busybox:{}", "a".repeat(129))), "invalid reference format");
        assert_eq!(error("busy box"), "invalid reference format");
        assert_eq!(error("busybox@sha256:abc"), "invalid reference format");
        assert_eq!(error(""), "invalid reference format");
        assert_eq!(error(&format!("busybox@sha256:{}", &HEX[..40])), "invalid checksum digest length");
        assert_eq!(error(&format!("busybox@md5:{}", &HEX[..32])), "unsupported digest algorithm");
        assert_eq!(error(&format!("busybox@sha256:{}", HEX.to_uppercase())), "invalid checksum digest format");
        assert_eq!(error(HEX), format!("invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings"));
        // Uppercase where the grammar forbids it but the lowercase form fits.
        assert_eq!(error("Foo.com/bar:t/X"), "invalid reference format");
        assert_eq!(error("localhost:5000/a@sha256:x"), "invalid reference format");
    }

    #[test]
    fn name_length_is_limited() {
        let long = "a".repeat(256);
        assert_eq!(error(&format!("localhost:5000/{long}")), "repository name must not be more than 255 characters");
        let ok = "a".repeat(255);
        assert!(Reference::parse(&format!("localhost:5000/{ok}")).is_ok());
        // "library/" counts: a 248-character official name is 256 long.
        assert!(Reference::parse(&"a".repeat(248)).is_err());
        assert!(Reference::parse(&"a".repeat(247)).is_ok());
    }

    #[test]
    fn derived_references() {
        let r = Reference::parse_for_pull("busybox").unwrap();
        let d = Digest::parse(&format!("sha256:{HEX}")).unwrap();
        assert_eq!(r.with_digest(d.clone()).to_string(), format!("docker.io/library/busybox@sha256:{HEX}"));
        assert_eq!(r.with_tag("1.0").unwrap().to_string(), "docker.io/library/busybox:1.0");
        assert_eq!(r.with_tag("bad tag").unwrap_err().to_string(), "invalid tag format");
        let parsed: Reference = "alice/app:1".parse().unwrap();
        assert_eq!(parsed.tag(), Some("1"));
    }
}
