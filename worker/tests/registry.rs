//! Pulls from a real registry: Debian's `docker-registry` (docker/distribution
//! 2.8) started on 127.0.0.1 by each test, filled with small images the test
//! builds and pushes itself through the registry API.
//!
//! Needs root (overlay mounts) and `apt-get install -y docker-registry`.
//! Nothing here talks to anything but 127.0.0.1.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};
use shoal_worker::image::manifest::{media_type, Platform};
use shoal_worker::image::registry::Registry;
use shoal_worker::image::{AuthConfig, ErrorKind, ImageService, Reference, RegistryConfig};

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

// ---------------------------------------------------------------------------
// Scratch directories and the registry process, cleaned up even on panic.

static COUNTER: AtomicU64 = AtomicU64::new(0);
/// Held while a test picks a port and something starts listening on it.
static PORTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "shoal-registry-test-{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // A failed test may leave container roots mounted: never delete
        // through a mount.
        for e in fs::read_dir(self.0.join("image/rootfs")).into_iter().flatten().flatten() {
            let merged = e.path().join("merged");
            if let Ok(c) = std::ffi::CString::new(merged.as_os_str().as_encoded_bytes()) {
                // SAFETY: valid C string.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running docker-registry; killed (by PID) when dropped.
struct RegistryProcess {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RegistryProcess {
    /// Starts a registry with `extra` YAML appended under `http:` (TLS) and
    /// at top level (auth).
    fn start(http_extra: &str, top_extra: &str) -> RegistryProcess {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: install Debian's registry with `apt-get install -y docker-registry` \
             (the image tests run a real registry on 127.0.0.1)"
        );
        // Tests run in parallel: pick the port and wait for the registry to
        // hold it under one lock, so no other listener of this process can
        // take the port in between.
        let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
        let dir = TempDir::new("registry");
        let port = free_port();
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: shoal-test-secret\n{http_extra}{top_extra}",
            dir.0.join("data").display()
        );
        let config_path = dir.0.join("config.yml");
        fs::write(&config_path, config).unwrap();
        let log = fs::File::create(dir.0.join("registry.log")).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        let mut reg = RegistryProcess { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = reg.child.try_wait() {
                panic!("docker-registry exited with {status}: {}", reg.log());
            }
            assert!(Instant::now() < deadline, "docker-registry did not listen: {}", reg.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(100));
        if let Ok(Some(status)) = reg.child.try_wait() {
            panic!("docker-registry exited with {status}: {}", reg.log());
        }
        reg
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.0.join("registry.log")).unwrap_or_default()
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

// ---------------------------------------------------------------------------
// A minimal registry push client, independent of the code under test.

enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

struct Pusher {
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    bearer: Option<String>,
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn sha256(data: &[u8]) -> String {
    let d = Sha256::digest(data);
    format!("sha256:{}", d.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

impl Pusher {
    fn request(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut conn = match &self.tls {
            None => Conn::Plain(tcp),
            Some(cfg) => {
                let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
                let c = rustls::ClientConnection::new(cfg.clone(), name).unwrap();
                Conn::Tls(Box::new(rustls::StreamOwned::new(c, tcp)))
            }
        };
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        if let Some(t) = &self.bearer {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        conn.write_all(head.as_bytes()).unwrap();
        conn.write_all(body).unwrap();
        conn.flush().unwrap();
        let mut raw = Vec::new();
        // Go closes after Connection: close; TLS may end without close_notify.
        let read = conn.read_to_end(&mut raw);
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no response to {method} {target}: {read:?} {:?}", String::from_utf8_lossy(&raw)));
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
        Reply { status, headers, body: raw[split + 4..].to_vec() }
    }

    /// Monolithic upload: POST to start, PUT the bytes with the digest.
    fn blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = sha256(data);
        let r = self.request("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"");
        assert_eq!(r.status, 202, "start upload: {}", String::from_utf8_lossy(&r.body));
        let location = r.header("location").unwrap().to_string();
        let target = match location.find("/v2/") {
            Some(i) => location[i..].to_string(),
            None => location,
        };
        let sep = if target.contains('?') { '&' } else { '?' };
        let r = self.request("PUT", &format!("{target}{sep}digest={digest}"), &[("Content-Type", "application/octet-stream")], data);
        assert_eq!(r.status, 201, "upload blob: {}", String::from_utf8_lossy(&r.body));
        digest
    }

    fn manifest(&self, repo: &str, reference: &str, media_type: &str, data: &[u8]) -> String {
        let r = self.request("PUT", &format!("/v2/{repo}/manifests/{reference}"), &[("Content-Type", media_type)], data);
        assert_eq!(r.status, 201, "put manifest: {}", String::from_utf8_lossy(&r.body));
        sha256(data)
    }
}

// ---------------------------------------------------------------------------
// Building small images.

/// A tar with the given (path, content) files; a `None` content makes a
/// directory.
fn tar_of(files: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match content {
            Some(data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, *data).unwrap();
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, path, &[][..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

struct Layer {
    tar: Vec<u8>,
    gz: Vec<u8>,
}

impl Layer {
    fn new(files: &[(&str, Option<&[u8]>)]) -> Layer {
        let tar = tar_of(files);
        let gz = gzip(&tar);
        Layer { tar, gz }
    }
}

/// Pushes an image (config + gzip layers) and returns its manifest's
/// bytes; `oci` picks OCI media types instead of Docker's.
fn push_image(p: &Pusher, repo: &str, arch: &str, layers: &[&Layer], oci: bool) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| format!("\"{}\"", sha256(&l.tar))).collect();
    let config = format!(
        r#"{{"architecture":"{arch}","os":"linux","created":"2024-05-01T10:00:00Z","config":{{"Env":["PATH=/usr/bin:/bin"],"Cmd":["/bin/app"],"WorkingDir":"/srv","Labels":{{"test":"shoal"}}}},"rootfs":{{"type":"layers","diff_ids":[{}]}},"history":[]}}"#,
        diff_ids.join(",")
    );
    let config_digest = p.blob(repo, config.as_bytes());
    let (mt, config_mt, layer_mt) = if oci {
        (media_type::OCI_MANIFEST, media_type::OCI_CONFIG, media_type::OCI_LAYER_GZIP)
    } else {
        (media_type::DOCKER_MANIFEST, media_type::DOCKER_CONFIG, media_type::DOCKER_LAYER_GZIP)
    };
    let layer_descs: Vec<String> = layers
        .iter()
        .map(|l| {
            let d = p.blob(repo, &l.gz);
            format!(r#"{{"mediaType":"{layer_mt}","digest":"{d}","size":{}}}"#, l.gz.len())
        })
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{mt}","config":{{"mediaType":"{config_mt}","digest":"{config_digest}","size":{}}},"layers":[{}]}}"#,
        config.len(),
        layer_descs.join(",")
    )
    .into_bytes()
}

fn statuses(progress: &[shoal_worker::image::ProgressMessage]) -> Vec<String> {
    progress.iter().map(|m| m.status.clone()).collect()
}

// ---------------------------------------------------------------------------

#[test]
fn pull_unpack_mount_and_clear_errors() {
    let reg = RegistryProcess::start("", "");
    let pusher = Pusher { port: reg.port, tls: None, bearer: None };
    let arch = Platform::host().architecture;

    // Two layers; the upper one deletes a file of the lower one with a
    // whiteout, replaces another, and adds one.
    let base = Layer::new(&[
        ("etc", None),
        ("etc/os-release", Some(b"NAME=shoal-test\n")),
        ("etc/doomed.conf", Some(b"delete me\n")),
        ("bin", None),
        ("bin/app", Some(b"#!/bin/sh\necho base\n")),
    ]);
    let top = Layer::new(&[
        ("etc", None),
        ("etc/.wh.doomed.conf", Some(b"")),
        ("bin/app", Some(b"#!/bin/sh\necho top\n")),
        ("srv", None),
        ("srv/data.txt", Some(b"served\n")),
    ]);
    let manifest = push_image(&pusher, "shoal/test", &arch, &[&base, &top], true);
    let manifest_digest = pusher.manifest("shoal/test", "v1", media_type::OCI_MANIFEST, &manifest);

    let scratch = TempDir::new("pull");
    let service = ImageService::open(scratch.0.join("image"), &RegistryConfig::default()).unwrap();
    let reference = format!("{}/shoal/test:v1", reg.host());
    let mut progress = Vec::new();
    let (pulls, failures) =
        (pull_metric("engine_daemon_image_actions_seconds_count"), pull_metric("engine_daemon_image_pull_failures_total"));
    let image = service.pull_with_progress(&reference, None, &mut |m| progress.push(m)).unwrap();
    assert!(pull_metric("engine_daemon_image_actions_seconds_count") > pulls, "a pull is timed as Docker's image action");

    let s = statuses(&progress);
    assert_eq!(s[0], "Pulling from shoal/test");
    assert_eq!(s.iter().filter(|m| *m == "Pull complete").count(), 2, "{s:?}");
    assert!(s.contains(&format!("Digest: {manifest_digest}")), "{s:?}");
    assert_eq!(s.last().unwrap(), &format!("Status: Downloaded newer image for {reference}"));

    assert_eq!(image.record.repo_tags, vec![format!("{reference}")]);
    assert_eq!(image.record.repo_digests, vec![format!("{}/shoal/test@{manifest_digest}", reg.host())]);
    assert_eq!(image.record.diff_ids.len(), 2);
    let cfg = image.config.config.as_ref().unwrap();
    assert_eq!(cfg.cmd, Some(vec!["/bin/app".to_string()]));
    assert_eq!(cfg.working_dir.as_deref(), Some("/srv"));
    assert_eq!(service.get(&reference).unwrap().id(), image.id());
    assert_eq!(service.get(&image.id().hex()[..12]).unwrap().id(), image.id());

    // The container's root: both layers merged, the whiteout honoured.
    let rootfs = service.prepare_rootfs(&image, "task1").unwrap();
    let root = &rootfs.path;
    assert_eq!(fs::read_to_string(root.join("etc/os-release")).unwrap(), "NAME=shoal-test\n");
    assert_eq!(fs::read_to_string(root.join("bin/app")).unwrap(), "#!/bin/sh\necho top\n");
    assert_eq!(fs::read_to_string(root.join("srv/data.txt")).unwrap(), "served\n");
    assert!(!root.join("etc/doomed.conf").exists(), "whited-out file must be gone");
    let names: Vec<String> =
        fs::read_dir(root.join("etc")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, vec!["os-release"], "no whiteout or .wh. file visible");
    // Two containers of one image do not see each other's writes.
    let other = service.prepare_rootfs(&image, "task2").unwrap();
    fs::write(root.join("srv/data.txt"), "changed by task1\n").unwrap();
    assert_eq!(fs::read_to_string(other.path.join("srv/data.txt")).unwrap(), "served\n");
    service.remove_rootfs("task1").unwrap();
    service.remove_rootfs("task2").unwrap();
    assert!(!root.exists(), "rootfs unmounted and removed");
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(scratch.0.to_str().unwrap()), "nothing left mounted");

    // Pulling again downloads nothing.
    let mut again = Vec::new();
    let same = service.pull_with_progress(&reference, None, &mut |m| again.push(m)).unwrap();
    assert_eq!(same.id(), image.id());
    let s = statuses(&again);
    assert_eq!(s.iter().filter(|m| *m == "Already exists").count(), 2, "{s:?}");
    assert_eq!(s.last().unwrap(), &format!("Status: Image is up to date for {reference}"));

    // By digest, from a fresh store.
    let fresh = TempDir::new("by-digest");
    let by_digest = ImageService::open(fresh.0.join("image"), &RegistryConfig::default()).unwrap();
    let pinned = format!("{}/shoal/test@{manifest_digest}", reg.host());
    let img = by_digest.pull(&pinned, None).unwrap();
    assert_eq!(img.id(), image.id());
    assert!(img.record.repo_tags.is_empty(), "a digest pull adds no tag");
    assert_eq!(by_digest.ensure(&pinned, None).unwrap().id(), image.id());

    // Unknown tag and unknown repository, in Docker's words.
    let e = service.pull(&format!("{}/shoal/test:nope", reg.host()), None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(e.message, format!("manifest for {}/shoal/test:nope not found: manifest unknown: manifest unknown", reg.host()));
    let e = service.pull(&format!("{}/shoal/absent", reg.host()), None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert_eq!(
        e.message,
        // distribution 2.8 answers MANIFEST_UNKNOWN for a missing repository.
        format!("manifest for {}/shoal/absent:latest not found: manifest unknown: manifest unknown", reg.host())
    );
    // A reference error never reaches the registry.
    let e = service.pull(&format!("{}/Shoal/test", reg.host()), None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert_eq!(e.message, "invalid reference format: repository name (Shoal/test) must be lowercase");
    assert!(pull_metric("engine_daemon_image_pull_failures_total") >= failures + 3.0, "failed pulls are counted");

    // Removing the image collects its layers once no container uses them.
    let out = service.remove(&reference).unwrap();
    assert_eq!(
        out,
        vec![
            format!("Untagged: {reference}"),
            format!("Untagged: {}/shoal/test@{manifest_digest}", reg.host()),
            format!("Deleted: {}", image.id()),
        ]
    );
    assert!(service.get(&reference).is_err());
    assert_eq!(fs::read_dir(scratch.0.join("image/layers/sha256")).unwrap().filter(|e| e.as_ref().unwrap().path().is_dir()).count(), 0);
}

#[test]
fn manifest_list_picks_the_node_platform() {
    let reg = RegistryProcess::start("", "");
    let pusher = Pusher { port: reg.port, tls: None, bearer: None };
    let repo = "shoal/multi";
    let mut entries = Vec::new();
    for arch in ["amd64", "arm64"] {
        let layer = Layer::new(&[("arch", Some(arch.as_bytes()))]);
        let manifest = push_image(&pusher, repo, arch, &[&layer], false);
        let digest = pusher.manifest(repo, &sha256(&manifest), media_type::DOCKER_MANIFEST, &manifest);
        let variant = if arch == "arm64" { r#","variant":"v8""# } else { "" };
        entries.push(format!(
            r#"{{"mediaType":"{}","digest":"{digest}","size":{},"platform":{{"architecture":"{arch}","os":"linux"{variant}}}}}"#,
            media_type::DOCKER_MANIFEST,
            manifest.len()
        ));
    }
    let list = format!(r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{}]}}"#, media_type::DOCKER_MANIFEST_LIST, entries.join(","));
    let list_digest = pusher.manifest(repo, "latest", media_type::DOCKER_MANIFEST_LIST, list.as_bytes());

    for rust_arch in ["x86_64", "aarch64"] {
        let scratch = TempDir::new("multi");
        let platform = Platform::for_arch(rust_arch);
        let service = ImageService::open(scratch.0.join("image"), &RegistryConfig::default()).unwrap().with_platform(platform.clone());
        let image = service.pull(&format!("{}/{repo}", reg.host()), None).unwrap();
        assert_eq!(image.config.architecture, platform.architecture);
        assert_eq!(
            image.record.repo_digests,
            vec![format!("{}/{repo}@{list_digest}", reg.host())],
            "the repo digest is the list's, as in Docker"
        );
        let rootfs = service.prepare_rootfs(&image, "c").unwrap();
        assert_eq!(fs::read_to_string(rootfs.path.join("arch")).unwrap(), platform.architecture);
        service.remove_rootfs("c").unwrap();
    }

    // A platform the list lacks.
    let scratch = TempDir::new("multi-none");
    let service =
        ImageService::open(scratch.0.join("image"), &RegistryConfig::default()).unwrap().with_platform(Platform::for_arch("s390x"));
    let e = service.pull(&format!("{}/{repo}", reg.host()), None).unwrap_err();
    assert_eq!(e.message, "no matching manifest for linux/s390x in the manifest list entries");
    // The node's own platform is one of the two.
    assert!(["amd64", "arm64"].contains(&Platform::host().architecture.as_str()));
}

// ---------------------------------------------------------------------------
// Token authentication (the distribution token protocol) over TLS.

fn b64url(data: &[u8]) -> String {
    shoal_worker::image::auth::base64_encode(data, true).trim_end_matches('=').to_string()
}

/// Issues registry tokens: ES256 JWTs with the signing certificate in the
/// `x5c` header, which the registry checks against its `rootcertbundle`.
struct TokenIssuer {
    key: ring::signature::EcdsaKeyPair,
    cert_der: Vec<u8>,
}

const ISSUER: &str = "shoal-test-issuer";
const SERVICE: &str = "shoal-test-registry";

impl TokenIssuer {
    fn new(dir: &Path) -> (TokenIssuer, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "shoal test token signer");
        let cert = params.self_signed(&key).unwrap();
        let bundle = dir.join("token-ca.pem");
        fs::write(&bundle, cert.pem()).unwrap();
        let rng = ring::rand::SystemRandom::new();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(&ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING, &key.serialize_der(), &rng)
            .unwrap();
        (TokenIssuer { key, cert_der: cert.der().to_vec() }, bundle)
    }

    fn token(&self, subject: &str, repo: Option<&str>) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let header =
            format!(r#"{{"typ":"JWT","alg":"ES256","x5c":["{}"]}}"#, shoal_worker::image::auth::base64_encode(&self.cert_der, false));
        let access = match repo {
            Some(r) => format!(r#"[{{"type":"repository","name":"{r}","actions":["pull","push"]}}]"#),
            None => "[]".to_string(),
        };
        let claims = format!(
            r#"{{"iss":"{ISSUER}","sub":"{subject}","aud":"{SERVICE}","exp":{},"nbf":{},"iat":{},"jti":"{}","access":{access}}}"#,
            now + 300,
            now - 10,
            now - 10,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let signing_input = format!("{}.{}", b64url(header.as_bytes()), b64url(claims.as_bytes()));
        let sig = self.key.sign(&ring::rand::SystemRandom::new(), signing_input.as_bytes()).unwrap();
        format!("{signing_input}.{}", b64url(sig.as_ref()))
    }
}

/// The token endpoint: Basic alice:secret gets pull access to the scope's
/// repository; anonymous callers get a token with no access (as Docker
/// Hub does); wrong passwords get 401.
fn serve_tokens(issuer: Arc<TokenIssuer>) -> (u16, Arc<std::sync::Mutex<Vec<String>>>) {
    let l = {
        let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
        TcpListener::bind("127.0.0.1:0").unwrap()
    };
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let head = String::from_utf8_lossy(&buf).to_string();
            log.lock().unwrap().push(head.lines().next().unwrap_or("").to_string());
            let target = head.split(' ').nth(1).unwrap_or("").to_string();
            let scope_repo = target
                .split(['?', '&'])
                .find_map(|kv| kv.strip_prefix("scope="))
                .map(|s| s.replace("%3A", ":").replace("%2F", "/"))
                .and_then(|s| s.split(':').nth(1).map(str::to_string));
            let auth = head
                .lines()
                .find_map(|l| l.strip_prefix("Authorization: Basic ").or_else(|| l.strip_prefix("authorization: Basic ")))
                .map(|v| v.trim().to_string());
            let good = shoal_worker::image::auth::base64_encode(b"alice:secret", false);
            let (status, body) = match auth {
                Some(a) if a == good => ("200 OK", format!(r#"{{"token":"{}"}}"#, issuer.token("alice", scope_repo.as_deref()))),
                Some(_) => ("401 Unauthorized", r#"{"details":"incorrect username or password"}"#.to_string()),
                None => ("200 OK", format!(r#"{{"access_token":"{}"}}"#, issuer.token("", None))),
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, seen)
}

#[test]
fn token_auth_over_tls_with_registry_credentials() {
    let certs = TempDir::new("certs");
    // The registry's TLS certificate, for 127.0.0.1.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "shoal test registry CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let ca_issuer = rcgen::Issuer::new(ca_params, ca_key);
    let tls_key = rcgen::KeyPair::generate().unwrap();
    let tls_cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&tls_key, &ca_issuer).unwrap();
    fs::write(certs.0.join("registry.crt"), tls_cert.pem()).unwrap();
    fs::write(certs.0.join("registry.key"), tls_key.serialize_pem()).unwrap();

    let (issuer, bundle) = TokenIssuer::new(&certs.0);
    let issuer = Arc::new(issuer);
    let (token_port, token_log) = serve_tokens(issuer.clone());
    let http_tls = format!(
        "  tls:\n    certificate: {}\n    key: {}\n",
        certs.0.join("registry.crt").display(),
        certs.0.join("registry.key").display()
    );
    let auth = format!(
        "auth:\n  token:\n    realm: http://127.0.0.1:{token_port}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
        bundle.display()
    );
    let reg = RegistryProcess::start(&http_tls, &auth);

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let client_tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let repo = "shoal/private";
    let pusher = Pusher { port: reg.port, tls: Some(Arc::new(client_tls)), bearer: Some(issuer.token("alice", Some(repo))) };
    let layer = Layer::new(&[("secret.txt", Some(b"for alice only\n"))]);
    let manifest = push_image(&pusher, repo, &Platform::host().architecture, &[&layer], true);
    pusher.manifest(repo, "v1", media_type::OCI_MANIFEST, &manifest);

    let reference = format!("{}/{repo}:v1", reg.host());
    let scratch = TempDir::new("auth");
    let service = ImageService::open(scratch.0.join("image"), &RegistryConfig::default()).unwrap();

    // Anonymous: the token carries no access, the registry refuses.
    let e = service.pull(&reference, None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized, "{e}");
    assert_eq!(
        e.message,
        format!("pull access denied for {}/{repo}, repository does not exist or may require 'docker login': unauthorized: authentication required", reg.host())
    );

    // Wrong password: the token server says so.
    let wrong = AuthConfig::basic("alice", "guess");
    let e = service.pull(&reference, Some(&wrong)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized, "{e}");
    assert!(e.message.ends_with("unauthorized: incorrect username or password"), "{e}");

    // Right credentials, as the CLI sends them in X-Registry-Auth.
    let header = AuthConfig { server_address: reg.host(), ..AuthConfig::basic("alice", "secret") }.to_header();
    let creds = AuthConfig::from_header(&header).unwrap().unwrap();
    let image = service.pull(&reference, Some(&creds)).unwrap();
    let rootfs = service.prepare_rootfs(&image, "private").unwrap();
    assert_eq!(fs::read_to_string(rootfs.path.join("secret.txt")).unwrap(), "for alice only\n");
    service.remove_rootfs("private").unwrap();

    // The token request named the service and the repository scope.
    let log = token_log.lock().unwrap().clone();
    assert!(
        log.iter().any(|l| l.contains(&format!("service={SERVICE}")) && l.contains("scope=repository%3Ashoal%2Fprivate%3Apull")),
        "{log:?}"
    );

    // The registry is on loopback, so insecure: TLS was used without
    // verification. Treating it as verified fails on the unknown CA unless
    // the CA is installed in Docker's certs.d layout.
    let registry = Registry::new(&RegistryConfig::default());
    assert!(registry.is_insecure(&reg.host()));
    let r = Reference::parse_for_pull(&reference).unwrap();
    let repo_session = registry.repository(&r, Some(&creds)).unwrap();
    assert_eq!(repo_session.endpoint().scheme.as_str(), "https");
}

// ---------------------------------------------------------------------------
// `GET /distribution/{name}/json`, as moby answers it.

#[test]
fn distribution_inspect_answers_as_moby() {
    let reg = RegistryProcess::start("", "");
    let pusher = Pusher { port: reg.port, tls: None, bearer: None };
    let scratch = TempDir::new("distribution");
    let service = ImageService::open(scratch.0.join("image"), &RegistryConfig::default()).unwrap();
    let inspect = |name: &str| service.distribution_inspect(&format!("{}/{name}", reg.host()), None);
    let layer = Layer::new(&[("app", Some(&b"x"[..]))]);

    // A Docker schema 2 image: its platform from the config.
    let manifest = push_image(&pusher, "shoal/docker", "amd64", &[&layer], false);
    let digest = pusher.manifest("shoal/docker", "1", media_type::DOCKER_MANIFEST, &manifest);
    let out = serde_json::to_value(inspect("shoal/docker:1").unwrap()).unwrap();
    assert_eq!(
        out,
        serde_json::json!({
            "Descriptor": {"mediaType": media_type::DOCKER_MANIFEST, "digest": digest, "size": manifest.len()},
            "Platforms": [{"architecture": "amd64", "os": "linux"}],
        })
    );
    // By digest, the same answer.
    assert_eq!(serde_json::to_value(inspect(&format!("shoal/docker@{digest}")).unwrap()).unwrap(), out);

    // An OCI image manifest: moby lists no platforms.
    let manifest = push_image(&pusher, "shoal/oci", "amd64", &[&layer], true);
    let digest = pusher.manifest("shoal/oci", "latest", media_type::OCI_MANIFEST, &manifest);
    let out = inspect("shoal/oci").unwrap();
    assert_eq!((out.descriptor.media_type.as_str(), out.descriptor.digest.as_str()), (media_type::OCI_MANIFEST, digest.as_str()));
    assert_eq!(out.descriptor.size, manifest.len() as i64);
    assert!(out.platforms.is_none());

    // A manifest list: every entry's platform.
    let arm = push_image(&pusher, "shoal/multi", "arm64", &[&layer], false);
    let arm_digest = pusher.manifest("shoal/multi", &sha256(&arm), media_type::DOCKER_MANIFEST, &arm);
    let list = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","digest":"{arm_digest}","size":{},"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}}]}}"#,
        media_type::DOCKER_MANIFEST_LIST,
        media_type::DOCKER_MANIFEST,
        arm.len()
    );
    let list_digest = pusher.manifest("shoal/multi", "2", media_type::DOCKER_MANIFEST_LIST, list.as_bytes());
    let out = serde_json::to_value(inspect("shoal/multi:2").unwrap()).unwrap();
    assert_eq!(out["Descriptor"]["digest"], list_digest);
    assert_eq!(out["Descriptor"]["mediaType"], media_type::DOCKER_MANIFEST_LIST);
    assert_eq!(out["Platforms"], serde_json::json!([{"architecture": "arm64", "os": "linux", "variant": "v8"}]));

    // The registry's own refusals, with their status.
    let e = inspect("shoal/docker:nope").unwrap_err();
    assert_eq!(e.status, 404, "{e:?}");
    assert!(e.message.starts_with("manifest unknown: "), "{e:?}");
    let e = inspect("shoal/absent:1").unwrap_err();
    assert_eq!(e.status, 404, "{e:?}");
    assert!(e.message.starts_with("name unknown: ") || e.message.starts_with("manifest unknown: "), "{e:?}");

    // No registry there: a 500 with Go's url.Error text (the docker CLI then
    // warns that the image could not be accessed on a registry).
    let port = free_port();
    let e = service.distribution_inspect(&format!("127.0.0.1:{port}/shoal/docker:1"), None).unwrap_err();
    assert_eq!(e.status, 500, "{e:?}");
    assert!(e.message.starts_with(&format!("Get \"http://127.0.0.1:{port}/v2/\": dial tcp 127.0.0.1:{port}: ")), "{e:?}");
}

/// A pull metric as `/metrics` shows it (process-wide: other tests pull too,
/// so callers compare before and after).
fn pull_metric(name: &str) -> f64 {
    let text = shoal_metrics::encode(&shoal_metrics::registry());
    let e = shoal_metrics::text::validate(&text).unwrap();
    let labels: &[(&str, &str)] = if name.starts_with("engine_daemon_image_actions") { &[("action", "pull")] } else { &[] };
    e.value(name, labels).unwrap()
}
