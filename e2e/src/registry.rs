//! A real OCI registry inside a lab: Debian's `docker-registry` runs in one
//! node's network namespace (so every node reaches it over the lab network,
//! and nothing outside does), and images built by the tests are pushed to
//! it with the distribution API (`curl`, run in that namespace).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{bin, sh, text, Lab};

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A running registry; killed by PID and its files removed when dropped.
pub struct LabRegistry {
    child: Child,
    dir: PathBuf,
    lab_name: String,
    node: String,
    /// `IP:5000` as the nodes reach it.
    pub addr: String,
}

impl Drop for LabRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl LabRegistry {
    /// Starts the registry on `node` (whose lab address is `ip`), port 5000.
    pub fn start(lab: &Lab, node: &str, ip: &str) -> LabRegistry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: install Debian's registry with `apt-get install -y docker-registry`"
        );
        let dir = std::env::temp_dir().join(format!("shoal-e2e-registry-{}-{}", lab.name, std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let addr = format!("{ip}:5000");
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n  secret: shoal-e2e\n",
            dir.join("data").display()
        );
        std::fs::write(dir.join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        // `shoal lab exec` becomes the registry (exec in the namespace), so
        // the child's PID is the registry's.
        let child = Command::new(bin("shoal"))
            .args(["lab", "exec", "--name", &lab.name, node, "--", REGISTRY_BIN, "serve"])
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting docker-registry in the lab");
        let mut reg = LabRegistry { child, dir, lab_name: lab.name.clone(), node: node.to_string(), addr };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = reg.child.try_wait() {
                panic!("docker-registry exited with {status}: {}", reg.log());
            }
            if reg.curl(&["-fsS", "-o", "/dev/null", &format!("http://{}/v2/", reg.addr)]).status.success() {
                break;
            }
            assert!(Instant::now() < deadline, "docker-registry did not answer: {}", reg.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        reg
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// curl inside the registry's node.
    fn curl(&self, args: &[&str]) -> std::process::Output {
        Command::new(bin("shoal"))
            .args(["lab", "exec", "--name", &self.lab_name, &self.node, "--", "curl", "--max-time", "30"])
            .args(args)
            .output()
            .expect("run curl in the lab")
    }

    /// Pushes a one-layer `docker save` archive (as `build_image` makes) as
    /// `repo:tag`, with an OCI manifest and a gzipped layer.
    pub fn push(&self, archive: &Path, repo: &str, tag: &str) {
        let work = self.dir.join(format!("push-{}-{tag}", repo.replace('/', "_")));
        std::fs::create_dir_all(&work).unwrap();
        sh(&work, &format!("tar -xf {} && gzip -n -c layer1/layer.tar > layer.tgz", archive.display()));
        let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(work.join("manifest.json")).unwrap()).unwrap();
        let config_file = manifest[0]["Config"].as_str().unwrap().to_string();
        let digest = |f: &str| format!("sha256:{}", sh(&work, &format!("sha256sum {f} | cut -d' ' -f1")).trim());
        let size = |f: &str| std::fs::metadata(work.join(f)).unwrap().len();
        for f in [config_file.as_str(), "layer.tgz"] {
            self.upload_blob(repo, &work.join(f), &digest(f));
        }
        let oci = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config_file), "size": size(&config_file)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest("layer.tgz"), "size": size("layer.tgz")}],
        });
        let path = work.join("oci-manifest.json");
        std::fs::write(&path, serde_json::to_vec(&oci).unwrap()).unwrap();
        let out = self.curl(&[
            "-fsS",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.manifest.v1+json",
            "--data-binary",
            &format!("@{}", path.display()),
            &format!("http://{}/v2/{repo}/manifests/{tag}", self.addr),
        ]);
        assert!(out.status.success(), "pushing the manifest of {repo}:{tag}: {}{}", text(&out.stderr), self.log());
    }

    /// A monolithic blob upload: POST for a location, then PUT with the digest.
    fn upload_blob(&self, repo: &str, file: &Path, digest: &str) {
        let out = self.curl(&["-fsS", "-i", "-X", "POST", &format!("http://{}/v2/{repo}/blobs/uploads/", self.addr)]);
        assert!(out.status.success(), "starting an upload: {}", text(&out.stderr));
        let head = text(&out.stdout);
        let location = head
            .lines()
            .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("location")).map(|(_, v)| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no Location in {head}"));
        let location = if location.starts_with('/') { format!("http://{}{location}", self.addr) } else { location };
        let sep = if location.contains('?') { '&' } else { '?' };
        let out = self.curl(&[
            "-fsS",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", file.display()),
            &format!("{location}{sep}digest={digest}"),
        ]);
        assert!(out.status.success(), "uploading {digest}: {}", text(&out.stderr));
    }
}
