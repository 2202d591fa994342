//! A client for the registry HTTP API v2 (the OCI distribution spec):
//! ping, authentication, manifests (with platform selection from manifest
//! lists / indexes) and blobs.
//!
//! Which registries may be spoken to without verified TLS follows Docker:
//! the daemon's `insecure-registries` (host[:port] names or CIDRs), and
//! always 127.0.0.0/8, ::1 and localhost. For those Docker first tries
//! HTTPS without checking the certificate, then plain HTTP; so do we.
//! Every other registry is HTTPS with verified certificates.

use std::collections::HashSet;
use std::io::Read;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;

use super::auth::{parse_challenge, AuthConfig, Challenge, TokenResponse};
use super::digest::Digest;
use super::error::{ErrorKind, ImageError, Result};
use super::http::{self, query_escape, Body, Request, Response, Scheme, Url};
use super::manifest::{media_type, Descriptor, ImageManifest, Manifest, Platform, MANIFEST_ACCEPT, MAX_MANIFEST_BYTES};
use super::reference::Reference;
use super::tls;

/// The daemon's registry settings.
#[derive(Clone, Debug, Default)]
pub struct RegistryConfig {
    /// `insecure-registries` from daemon.json / `--insecure-registry`:
    /// `host[:port]` names or CIDR ranges.
    pub insecure_registries: Vec<String>,
    /// Extra CA certificates per registry, in Docker's layout:
    /// `<certs_dir>/<host[:port]>/*.crt` (Docker reads /etc/docker/certs.d).
    pub certs_dir: Option<PathBuf>,
}

/// Insecure registries as Docker decides them.
#[derive(Clone, Debug)]
struct Insecure {
    names: HashSet<String>,
    cidrs: Vec<(IpAddr, u8)>,
    /// Whether any CIDR beyond the loopback defaults was configured (only
    /// then is it worth resolving host names to test them).
    user_cidrs: bool,
}

impl Insecure {
    fn new(entries: &[String]) -> Insecure {
        let mut names = HashSet::new();
        // Docker always treats loopback registries as insecure.
        let mut cidrs = vec![("127.0.0.0".parse().unwrap(), 8), ("::1".parse().unwrap(), 128)];
        let mut user_cidrs = false;
        for e in entries {
            let e = e.trim().trim_start_matches("http://").trim_start_matches("https://").trim_end_matches('/');
            if let Some(c) = parse_cidr(e) {
                cidrs.push(c);
                user_cidrs = true;
            } else if !e.is_empty() {
                names.insert(e.to_ascii_lowercase());
            }
        }
        Insecure { names, cidrs, user_cidrs }
    }

    fn contains(&self, domain: &str) -> bool {
        let domain = domain.to_ascii_lowercase();
        if self.names.contains(&domain) {
            return true;
        }
        let host = host_of(&domain);
        if host == "localhost" || host.ends_with(".localhost") {
            return true;
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.cidrs.iter().any(|c| cidr_contains(*c, ip));
        }
        if self.user_cidrs {
            // Docker resolves the name and tests each address.
            if let Ok(addrs) = (host, 0).to_socket_addrs() {
                return addrs.into_iter().any(|a| self.cidrs.iter().any(|c| cidr_contains(*c, a.ip())));
            }
        }
        false
    }
}

/// `host` of `host`, `host:port`, `[v6]:port`.
fn host_of(domain: &str) -> &str {
    if let Some(rest) = domain.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    domain.split(':').next().unwrap_or("")
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

fn cidr_contains((net, bits): (IpAddr, u8), ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// The registry client. Cheap to clone; shared by all pulls of a node.
#[derive(Clone)]
pub struct Registry {
    insecure: Arc<Insecure>,
    http: http::Client,
}

impl Registry {
    pub fn new(config: &RegistryConfig) -> Registry {
        let connector = tls::Connector::new(config.certs_dir.clone());
        Registry { insecure: Arc::new(Insecure::new(&config.insecure_registries)), http: http::Client::new(Some(Arc::new(connector))) }
    }

    /// Whether `domain` (a reference's `host[:port]`) may be used without
    /// verified TLS.
    pub fn is_insecure(&self, domain: &str) -> bool {
        self.insecure.contains(domain)
    }

    /// Opens a session with the repository of `reference`: finds a working
    /// endpoint (HTTPS, or HTTP for insecure registries) and learns how the
    /// registry wants to be authenticated.
    pub fn repository(&self, reference: &Reference, auth: Option<&AuthConfig>) -> Result<Repository> {
        let host = reference.registry_host().to_string();
        let candidates: Vec<(Scheme, bool)> = if self.is_insecure(reference.domain()) {
            vec![(Scheme::Https, false), (Scheme::Http, false)]
        } else {
            vec![(Scheme::Https, true)]
        };
        let mut last_err = None;
        for (i, (scheme, verify)) in candidates.iter().enumerate() {
            let url = Url::for_authority(*scheme, &host, "/v2/")
                .map_err(|e| ImageError::invalid(format!("invalid registry address {host}: {e}")))?;
            let mut req = Request::new("GET", url);
            req.verify_tls = *verify;
            match self.http.send(req) {
                Ok(resp) => {
                    let challenge = if resp.status == 401 { challenges(&resp) } else { None };
                    let base = Url::for_authority(*scheme, &host, "/").expect("checked above");
                    let mut repo = Repository {
                        http: self.http.clone(),
                        reference: reference.clone(),
                        base,
                        verify_tls: *verify,
                        auth: auth.cloned().filter(AuthConfig::has_credentials),
                        authorization: None,
                    };
                    if let Some(c) = challenge {
                        repo.answer_challenge(&c)?;
                    }
                    return Ok(repo);
                }
                Err(e) => {
                    tracing::debug!(attempt = i, error = %e, "registry endpoint failed");
                    last_err = Some(e);
                }
            }
        }
        let e = last_err.expect("at least one candidate");
        Err(ImageError::new(ErrorKind::Unavailable, e.to_string()))
    }
}

/// The registry's preferred challenge: Bearer over Basic.
fn challenges(resp: &Response) -> Option<Challenge> {
    let all: Vec<Challenge> = resp.header_all("www-authenticate").filter_map(parse_challenge).collect();
    all.iter().find(|c| c.scheme == "bearer").or_else(|| all.iter().find(|c| c.scheme == "basic")).cloned()
}

/// A session with one repository of one registry.
pub struct Repository {
    http: http::Client,
    reference: Reference,
    /// `scheme://host[:port]/` of the endpoint that answered the ping.
    base: Url,
    verify_tls: bool,
    auth: Option<AuthConfig>,
    /// The Authorization header to send, once we have one.
    authorization: Option<String>,
}

/// A manifest as fetched: the bytes (whose digest is the manifest's
/// identity) and their parse.
#[derive(Clone, Debug)]
pub struct FetchedManifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub manifest: Manifest,
}

/// What a reference resolves to on this node's platform.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The digest the reference resolved to (for a multi-platform image,
    /// the index's). Docker records it as the image's repo digest.
    pub repo_digest: Digest,
    /// The platform-specific image manifest.
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    pub manifest_bytes: Vec<u8>,
    pub manifest_media_type: String,
    /// The index it was picked from, if any, with its bytes.
    pub index: Option<(Digest, Vec<u8>)>,
}

impl Repository {
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// The endpoint in use (`http://127.0.0.1:5000/`, ...).
    pub fn endpoint(&self) -> &Url {
        &self.base
    }

    fn url(&self, target: &str) -> Url {
        let mut u = self.base.clone();
        u.target = target.to_string();
        u
    }

    /// Sends a request with our Authorization; on 401 answers the
    /// challenge (which may name a new scope) and retries once.
    fn send(&mut self, method: &str, target: &str, accept: Option<&str>) -> Result<Response> {
        let mut answered = false;
        loop {
            let mut req = Request::new(method, self.url(target));
            req.verify_tls = self.verify_tls;
            if let Some(a) = accept {
                req = req.header("Accept", a);
            }
            if let Some(auth) = &self.authorization {
                req = req.header("Authorization", auth.clone());
            }
            let resp = self.http.send(req).map_err(|e| ImageError::new(ErrorKind::Unavailable, e.to_string()))?;
            if resp.status == 401 && !answered {
                if let Some(c) = challenges(&resp) {
                    answered = true;
                    let before = self.authorization.clone();
                    self.answer_challenge(&c)?;
                    if self.authorization != before {
                        continue;
                    }
                }
            }
            return Ok(resp);
        }
    }

    /// Turns a challenge into an Authorization header: credentials as they
    /// are for Basic, a token from the realm for Bearer.
    fn answer_challenge(&mut self, c: &Challenge) -> Result<()> {
        match c.scheme.as_str() {
            "basic" => {
                self.authorization = self.auth.as_ref().and_then(AuthConfig::basic_header);
                Ok(())
            }
            "bearer" => {
                if let Some(token) = self.auth.as_ref().map(|a| a.registry_token.clone()).filter(|t| !t.is_empty()) {
                    self.authorization = Some(format!("Bearer {token}"));
                    return Ok(());
                }
                let token = self.fetch_token(c)?;
                self.authorization = Some(format!("Bearer {token}"));
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The distribution token protocol: GET the realm with service and
    /// scope (Basic credentials if we have them), or POST a refresh token
    /// (OAuth2) when the login produced an identity token.
    fn fetch_token(&self, c: &Challenge) -> Result<String> {
        let realm = c.param("realm").ok_or_else(|| ImageError::corrupt("registry sent a Bearer challenge without a realm"))?;
        let mut realm_url =
            Url::parse(realm).map_err(|_| ImageError::corrupt(format!("registry sent an unusable token realm {realm:?}")))?;
        let service = c.param("service").unwrap_or("");
        // Ask for pull on our repository, plus whatever scope the registry
        // named (it may differ, e.g. for cross-repository mounts).
        let mut scopes = vec![format!("repository:{}:pull", self.reference.path())];
        if let Some(s) = c.param("scope") {
            for s in s.split(' ') {
                if !s.is_empty() && !scopes.iter().any(|x| x == s) {
                    scopes.push(s.to_string());
                }
            }
        }
        let identity = self.auth.as_ref().map(|a| a.identity_token.as_str()).unwrap_or("");
        let resp = if !identity.is_empty() {
            let mut form = format!(
                "grant_type=refresh_token&client_id=shoal&service={}&refresh_token={}",
                query_escape(service),
                query_escape(identity)
            );
            for s in &scopes {
                form.push_str(&format!("&scope={}", query_escape(s)));
            }
            let mut req = Request::new("POST", realm_url.clone()).header("Content-Type", "application/x-www-form-urlencoded");
            req.body = form.as_bytes();
            req.verify_tls = self.verify_tls;
            self.send_token_request(req)?
        } else {
            let mut query = format!("service={}", query_escape(service));
            for s in &scopes {
                query.push_str(&format!("&scope={}", query_escape(s)));
            }
            if let Some(a) = &self.auth {
                if !a.username.is_empty() {
                    query.push_str(&format!("&account={}", query_escape(&a.username)));
                }
            }
            let sep = if realm_url.target.contains('?') { '&' } else { '?' };
            realm_url.target = format!("{}{sep}{query}", realm_url.target);
            let mut req = Request::new("GET", realm_url.clone());
            req.verify_tls = self.verify_tls;
            if let Some(basic) = self.auth.as_ref().and_then(AuthConfig::basic_header) {
                req = req.header("Authorization", basic);
            }
            self.send_token_request(req)?
        };
        let status = resp.status;
        let reason = resp.reason.clone();
        let body =
            resp.read_body(1 << 20).map_err(|e| ImageError::new(ErrorKind::Unavailable, format!("reading token from {realm}: {e}")))?;
        if status == 401 || status == 403 {
            let detail = api_errors(&body).first().map(ApiError::to_string);
            return Err(ImageError::new(
                ErrorKind::Unauthorized,
                format!("Get \"{realm}\": unauthorized: {}", detail.unwrap_or_else(|| "incorrect username or password".into())),
            ));
        }
        if !(200..300).contains(&status) {
            return Err(ImageError::new(
                ErrorKind::Unavailable,
                format!("token auth attempt for registry: {realm} request failed with status: {status} {reason}"),
            ));
        }
        serde_json::from_slice::<TokenResponse>(&body)
            .ok()
            .and_then(TokenResponse::into_token)
            .ok_or_else(|| ImageError::corrupt(format!("token server {realm} sent no token")))
    }

    fn send_token_request(&self, req: Request<'_>) -> Result<Response> {
        self.http.send(req).map_err(|e| ImageError::new(ErrorKind::Unavailable, e.to_string()))
    }

    /// Fetches a manifest by tag or digest, checking its digest: against
    /// the digest asked for, or against what the registry says it is.
    pub fn fetch_manifest(&mut self, tag_or_digest: &str) -> Result<FetchedManifest> {
        self.fetch_manifest_or(tag_or_digest, |repo, resp| repo.pull_error(resp))
    }

    /// [`Repository::fetch_manifest`] with the error a refusal (a status
    /// other than 200) becomes chosen by the caller.
    pub fn fetch_manifest_or(
        &mut self,
        tag_or_digest: &str,
        refused: impl FnOnce(&Repository, Response) -> ImageError,
    ) -> Result<FetchedManifest> {
        let target = format!("/v2/{}/manifests/{}", self.reference.path(), tag_or_digest);
        let resp = self.send("GET", &target, Some(MANIFEST_ACCEPT))?;
        if resp.status != 200 {
            return Err(refused(self, resp));
        }
        let media_type = resp.header("content-type").unwrap_or("").split(';').next().unwrap_or("").trim().to_string();
        let header_digest = resp.header("docker-content-digest").map(str::to_string);
        let bytes = resp
            .read_body(MAX_MANIFEST_BYTES)
            .map_err(|e| ImageError::new(ErrorKind::Unavailable, format!("reading manifest {tag_or_digest}: {e}")))?;
        let digest = Digest::sha256_of(&bytes);
        let expected = match Digest::parse(tag_or_digest) {
            Ok(d) => Some(d),
            Err(_) => header_digest.as_deref().and_then(|h| Digest::parse(h).ok()),
        };
        if let Some(expected) = expected {
            // Compare with the same algorithm the name used.
            let mut h = super::digest::Hasher::new(expected.algorithm());
            h.update(&bytes);
            if h.finish() != expected {
                return Err(ImageError::corrupt(format!("manifest verification failed for digest {expected}")));
            }
            let manifest = Manifest::parse(Some(&media_type), &bytes).map_err(ImageError::corrupt)?;
            return Ok(FetchedManifest { digest: expected, media_type, bytes, manifest });
        }
        let manifest = Manifest::parse(Some(&media_type), &bytes).map_err(ImageError::corrupt)?;
        Ok(FetchedManifest { digest, media_type, bytes, manifest })
    }

    /// Resolves the reference to the image manifest for `platform`: fetches
    /// the tag or digest, and if that is a manifest list / index, the
    /// entry for the platform.
    pub fn resolve(&mut self, platform: &Platform) -> Result<Resolved> {
        let top = self.fetch_manifest(&self.reference.manifest_reference())?;
        match top.manifest {
            Manifest::Image(m) => Ok(Resolved {
                repo_digest: top.digest.clone(),
                manifest_digest: top.digest,
                manifest: m,
                manifest_bytes: top.bytes,
                manifest_media_type: top.media_type,
                index: None,
            }),
            Manifest::Index(index) => {
                let entry = index.select(platform).ok_or_else(|| {
                    ImageError::not_found(format!("no matching manifest for {} in the manifest list entries", platform.display()))
                })?;
                let child = self.fetch_manifest(&entry.digest.to_string())?;
                if entry.size >= 0 && child.bytes.len() as i64 != entry.size {
                    return Err(ImageError::corrupt(format!(
                        "manifest {} is {} bytes, the index says {}",
                        entry.digest,
                        child.bytes.len(),
                        entry.size
                    )));
                }
                match child.manifest {
                    Manifest::Image(m) => Ok(Resolved {
                        repo_digest: top.digest.clone(),
                        manifest_digest: child.digest,
                        manifest: m,
                        manifest_bytes: child.bytes,
                        manifest_media_type: child.media_type,
                        index: Some((top.digest, top.bytes)),
                    }),
                    Manifest::Index(_) => Err(ImageError::corrupt(format!(
                        "manifest list entry {} for {} is itself a list",
                        entry.digest,
                        platform.display()
                    ))),
                }
            }
        }
    }

    /// Starts downloading a blob. The caller must verify what it reads
    /// (see [`Repository::fetch_blob_bytes`] for small blobs).
    pub fn fetch_blob(&mut self, desc: &Descriptor) -> Result<BlobStream> {
        if desc.media_type == media_type::DOCKER_FOREIGN_LAYER || !desc.urls.is_empty() {
            return Err(ImageError::invalid(format!(
                "layer {} is a foreign (non-distributable) layer, which Shoal does not download",
                desc.digest
            )));
        }
        // The size caps the download (see `unpack`): it must be there.
        if desc.size < 0 {
            return Err(ImageError::corrupt(format!("the manifest gives blob {} no size", desc.digest)));
        }
        let target = format!("/v2/{}/blobs/{}", self.reference.path(), desc.digest);
        let resp = self.send("GET", &target, None)?;
        if resp.status != 200 {
            return Err(self.blob_error(resp, &desc.digest));
        }
        let length = resp.content_length();
        if let (Some(len), true) = (length, desc.size >= 0) {
            if len != desc.size as u64 {
                return Err(ImageError::corrupt(format!("blob {} is {len} bytes, the manifest says {}", desc.digest, desc.size)));
            }
        }
        Ok(BlobStream { body: resp.into_body(), length })
    }

    /// Downloads a small blob (an image config) into memory, verified.
    pub fn fetch_blob_bytes(&mut self, desc: &Descriptor, limit: u64) -> Result<Vec<u8>> {
        if desc.size as u64 > limit {
            return Err(ImageError::corrupt(format!("blob {} is too large ({} bytes)", desc.digest, desc.size)));
        }
        let mut stream = self.fetch_blob(desc)?;
        let mut data = Vec::new();
        (&mut stream.body)
            .take(limit + 1)
            .read_to_end(&mut data)
            .map_err(|e| ImageError::new(ErrorKind::Unavailable, format!("downloading {}: {e}", desc.digest)))?;
        if data.len() as u64 > limit {
            return Err(ImageError::corrupt(format!("blob {} is too large", desc.digest)));
        }
        let mut h = super::digest::Hasher::new(desc.digest.algorithm());
        h.update(&data);
        h.finish().expect(&desc.digest)?;
        Ok(data)
    }

    /// A failed manifest request, in Docker's words for pulls.
    fn pull_error(&self, resp: Response) -> ImageError {
        let status = resp.status;
        let reason = resp.reason.clone();
        let body = resp.read_body(1 << 20).unwrap_or_default();
        let first = api_errors(&body).into_iter().next().or_else(|| match status {
            404 => Some(ApiError { code: "MANIFEST_UNKNOWN".into(), message: "manifest unknown".into() }),
            401 => Some(ApiError { code: "UNAUTHORIZED".into(), message: "authentication required".into() }),
            _ => None,
        });
        let Some(e) = first else {
            return ImageError::new(ErrorKind::Unavailable, format!("received unexpected HTTP status: {status} {reason}"));
        };
        let r = &self.reference;
        match e.code.as_str() {
            "MANIFEST_UNKNOWN" => ImageError::not_found(format!("manifest for {} not found: {e}", r.familiar_string())),
            "NAME_UNKNOWN" => ImageError::not_found(format!("repository {} not found: {e}", r.familiar_name())),
            "DENIED" | "UNAUTHORIZED" => ImageError::new(
                if e.code == "DENIED" { ErrorKind::NotFound } else { ErrorKind::Unauthorized },
                format!("pull access denied for {}, repository does not exist or may require 'docker login': {e}", r.familiar_name()),
            ),
            _ => ImageError::new(ErrorKind::Unavailable, e.to_string()),
        }
    }

    fn blob_error(&self, resp: Response, digest: &Digest) -> ImageError {
        let status = resp.status;
        let reason = resp.reason.clone();
        let body = resp.read_body(1 << 20).unwrap_or_default();
        match api_errors(&body).into_iter().next() {
            Some(e) if e.code == "BLOB_UNKNOWN" => ImageError::not_found(format!("fetching blob {digest}: {e}")),
            Some(e) if status == 401 || status == 403 => ImageError::new(ErrorKind::Unauthorized, format!("fetching blob {digest}: {e}")),
            Some(e) => ImageError::new(ErrorKind::Unavailable, format!("fetching blob {digest}: {e}")),
            None if status == 404 => ImageError::not_found(format!("fetching blob {digest}: blob unknown: blob unknown to registry")),
            None => ImageError::new(
                ErrorKind::Unavailable,
                format!("fetching blob {digest}: received unexpected HTTP status: {status} {reason}"),
            ),
        }
    }
}

/// A blob download in progress.
pub struct BlobStream {
    pub body: Body,
    /// Content-Length, when the registry sent one.
    pub length: Option<u64>,
}

/// One entry of the registry's `{"errors":[...]}` body.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct ApiError {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// As docker/distribution's errcode prints it: `manifest unknown: manifest unknown`.
impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let code = self.code.to_lowercase().replace('_', " ");
        if self.message.is_empty() {
            f.write_str(&code)
        } else {
            write!(f, "{code}: {}", self.message)
        }
    }
}

pub fn api_errors(body: &[u8]) -> Vec<ApiError> {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<ApiError>,
        // Some token servers answer {"details": "..."}.
        #[serde(default)]
        details: Option<String>,
    }
    match serde_json::from_slice::<Errors>(body) {
        Ok(e) if !e.errors.is_empty() => e.errors.into_iter().filter(|e| !e.code.is_empty()).collect(),
        Ok(Errors { details: Some(d), .. }) => vec![ApiError { code: "UNAUTHORIZED".into(), message: d }],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::Mutex;

    #[test]
    fn insecure_registries_follow_docker() {
        let i = Insecure::new(&["myreg:5000".into(), "10.1.0.0/16".into(), "http://other.test/".into()]);
        assert!(i.contains("127.0.0.1:5000"));
        assert!(i.contains("127.9.9.9"));
        assert!(i.contains("[::1]:5000"));
        assert!(i.contains("localhost:5000"));
        assert!(i.contains("localhost"));
        assert!(i.contains("myreg:5000"));
        assert!(!i.contains("myreg:5001"), "names match with their port");
        assert!(i.contains("10.1.200.3:443"));
        assert!(!i.contains("10.2.0.1"));
        assert!(i.contains("other.test"));
        let default = Insecure::new(&[]);
        assert!(!default.contains("registry-1.docker.io"));
        assert!(!default.contains("192.168.1.1:5000"));
        assert_eq!(parse_cidr("10.0.0.0/33"), None);
        assert!(cidr_contains(parse_cidr("0.0.0.0/0").unwrap(), "8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn api_errors_read_like_errcode() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#;
        let e = api_errors(body);
        assert_eq!(e[0].to_string(), "manifest unknown: manifest unknown");
        assert_eq!(api_errors(br#"{"details":"incorrect username or password"}"#)[0].message, "incorrect username or password");
        assert!(api_errors(b"<html>").is_empty());
    }

    /// A fake registry + token server on loopback that checks the token
    /// dance: 401 with a Bearer challenge, token for Basic credentials,
    /// then the manifest for the right token only.
    fn fake_registry(requests: Arc<Mutex<Vec<String>>>) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let mut s = s.unwrap();
                let mut reader = BufReader::new(s.try_clone().unwrap());
                // A TLS ClientHello (our https attempt): hang up, as a
                // plain-HTTP server effectively does.
                if reader.fill_buf().map(|b| b.first() == Some(&0x16)).unwrap_or(true) {
                    continue;
                }
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                requests.lock().unwrap().push(head.clone());
                let target = head.split(' ').nth(1).unwrap_or("").to_string();
                let auth = head.lines().find(|l| l.to_lowercase().starts_with("authorization:")).map(|l| l[14..].trim().to_string());
                let challenge = format!(
                    "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"fake\",scope=\"repository:team/app:pull\"\r\n"
                );
                let (status, extra, body) = if target.starts_with("/token") {
                    if auth.as_deref() == Some("Basic YWxpY2U6c2VjcmV0") {
                        ("200 OK", String::new(), r#"{"token":"tok-alice"}"#.to_string())
                    } else {
                        ("401 Unauthorized", String::new(), r#"{"details":"incorrect username or password"}"#.to_string())
                    }
                } else if auth.as_deref() != Some("Bearer tok-alice") {
                    (
                        "401 Unauthorized",
                        challenge,
                        r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_string(),
                    )
                } else if target == "/v2/team/app/manifests/latest" {
                    let d = Digest::sha256_of(b"cfg");
                    let m = format!(
                        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{d}","size":3}},"layers":[]}}"#,
                        media_type::OCI_MANIFEST,
                        media_type::OCI_CONFIG
                    );
                    ("200 OK", format!("Content-Type: {}\r\n", media_type::OCI_MANIFEST), m)
                } else if target == "/v2/" {
                    ("200 OK", String::new(), "{}".to_string())
                } else {
                    ("404 Not Found", String::new(), r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#.to_string())
                };
                let _ = write!(s, "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\n\r\n{body}", body.len());
            }
        });
        port
    }

    #[test]
    fn bearer_token_flow_with_basic_credentials() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let port = fake_registry(log.clone());
        let registry = Registry::new(&RegistryConfig::default());
        let r = Reference::parse_for_pull(&format!("127.0.0.1:{port}/team/app")).unwrap();

        let mut repo = registry.repository(&r, Some(&AuthConfig::basic("alice", "secret"))).unwrap();
        assert_eq!(repo.endpoint().scheme, Scheme::Http, "falls back from https to http");
        let m = repo.fetch_manifest("latest").unwrap();
        assert!(matches!(m.manifest, Manifest::Image(_)));
        let seen = log.lock().unwrap().clone();
        let token_req = seen.iter().find(|r| r.starts_with("GET /token")).expect("asked for a token");
        assert!(token_req.contains("service=fake"), "{token_req}");
        assert!(token_req.contains("scope=repository%3Ateam%2Fapp%3Apull"), "{token_req}");
        assert!(token_req.contains("account=alice"), "{token_req}");

        let e = repo.fetch_manifest("nope").unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(e.message, format!("manifest for 127.0.0.1:{port}/team/app:latest not found: manifest unknown: manifest unknown"));

        let e = registry.repository(&r, Some(&AuthConfig::basic("alice", "wrong"))).err().unwrap();
        assert_eq!(e.kind, ErrorKind::Unauthorized);
        assert!(e.message.ends_with("unauthorized: incorrect username or password"), "{}", e.message);

        // Anonymous: the token server refuses too.
        let e = registry.repository(&r, None).err().unwrap();
        assert_eq!(e.kind, ErrorKind::Unauthorized);
    }

    #[test]
    fn unreachable_registry_is_reported_like_docker() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let registry = Registry::new(&RegistryConfig::default());
        let r = Reference::parse_for_pull(&format!("127.0.0.1:{port}/x")).unwrap();
        let e = registry.repository(&r, None).err().unwrap();
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert_eq!(e.message, format!("Get \"http://127.0.0.1:{port}/v2/\": dial tcp 127.0.0.1:{port}: connect: connection refused"));
    }
}
