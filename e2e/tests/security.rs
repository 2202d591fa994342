//! Issue 7 on a real lab: after a scenario with a secret, a volume and
//! running tasks, an unprivileged local user can open nothing under a
//! node's data root or exec root; the Raft log holds neither the CA key nor
//! a join-token secret in clear; a data root left with loose modes is
//! tightened when shoald starts; containers still get Docker's umask and a
//! `/` that a non-root user can use; an oversized API body is refused.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use shoal_e2e::{build_busybox_image, text, wait_for, Lab};

const LONG: Duration = Duration::from_secs(90);
const LAB: &str = "e2e-security";
const IMAGE: &str = "shoal-test/busy:1";

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn data_root(node: &str) -> PathBuf {
    PathBuf::from(format!("/var/lib/shoal/lab/{LAB}/{node}"))
}

fn exec_root(lab: &Lab, node: &str) -> PathBuf {
    Path::new(&lab.socket(node)).parent().unwrap().to_path_buf()
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Runs `script` as `nobody` (uid and gid 65534, no supplementary groups).
fn as_nobody(script: &str) -> (bool, String, String) {
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--", "sh", "-c", script])
        .output()
        .expect("setpriv (util-linux) is needed for this test");
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// Every path below `dir` (not following symlinks).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(p.clone());
            }
            all.push(p);
        }
    }
    all
}

fn contains(path: &Path, needle: &[u8]) -> bool {
    std::fs::read(path).map(|b| b.windows(needle.len()).any(|w| w == needle)).unwrap_or(false)
}

/// The data root and exec root are 0700, their top-level folders too, and
/// shoald's own state under `swarm/` is 0700 folders and 0600 files.
fn assert_private(lab: &Lab, node: &str) {
    let root = data_root(node);
    for r in [root.clone(), exec_root(lab, node)] {
        assert_eq!(mode(&r), 0o700, "{}", r.display());
        for e in std::fs::read_dir(&r).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                assert_eq!(mode(&e.path()), 0o700, "{}", e.path().display());
            }
        }
    }
    for p in walk(&root.join("swarm")) {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            assert_eq!(mode(&p), 0o700, "{}", p.display());
        } else if meta.is_file() {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }
}

#[test]
fn local_users_reach_nothing_and_keys_are_never_in_clear() {
    let lab = Lab::up(LAB, 1, 1);
    let dir = TempDir(std::env::temp_dir().join(format!("shoal-e2e-security-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let archive = build_busybox_image(&dir.0);
    for n in ["node-1", "node-2"] {
        lab.shoal_ok(n, &["image", "load", "-q", "-i", archive.to_str().unwrap()]);
    }
    let pw = dir.0.join("pw");
    std::fs::write(&pw, "not-for-nobody").unwrap();
    lab.shoal_ok("node-1", &["secret", "create", "db_pw", pw.to_str().unwrap()]);

    // A task on every node with a volume and the secret, and one as a user
    // other than root: each runs only if the container's umask is Docker's
    // 022 and `/` and /etc/hosts are usable by its user.
    let check = "[ \"$(umask)\" = 0022 ] && cat /etc/hosts >/dev/null && ls / >/dev/null || exit 3";
    lab.shoal_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "guarded",
            "--mode",
            "global",
            "--secret",
            "db_pw",
            "--mount",
            "type=volume,source=guarded-data,target=/data",
            IMAGE,
            "sh",
            "-c",
            &format!("{check}; [ -r /run/secrets/db_pw ] || exit 4; echo ok > /data/x; exec sleep 1000"),
        ],
    );
    lab.shoal_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "unprivileged",
            "--mode",
            "global",
            "--user",
            "65534:65534",
            IMAGE,
            "sh",
            "-c",
            &format!("{check}; exec sleep 1000"),
        ],
    );
    for service in ["guarded", "unprivileged"] {
        wait_for(LONG, &format!("{service} to run on both nodes"), || {
            let ts = lab.tasks(service);
            let running = ts.iter().filter(|t| t["Status"]["State"] == "running").count();
            let failed: Vec<_> = ts.iter().filter(|t| t["Status"]["State"] == "failed").collect();
            assert!(failed.is_empty(), "{service} failed: {failed:?}");
            (running == 2).then_some(())
        });
    }

    // Modes, and what nobody can reach.
    for node in ["node-1", "node-2"] {
        assert_private(&lab, node);
        let root = data_root(node);
        // At most the roots themselves (the exec root may sit below a
        // folder nobody cannot enter at all).
        let roots = [root.display().to_string(), exec_root(&lab, node).display().to_string()];
        let (_, listed, _) = as_nobody(&format!("find {} {} 2>/dev/null", roots[0], roots[1]));
        assert!(listed.lines().all(|l| roots.iter().any(|r| r == l)), "nobody listed inside the roots on {node}:\n{listed}");
        for p in walk(&root).into_iter().filter(|p| p.is_file()).take(200) {
            let (ok, _, _) = as_nobody(&format!("cat '{}' >/dev/null", p.display()));
            assert!(!ok, "nobody could read {}", p.display());
        }
    }

    // The Raft log and snapshots hold neither the CA key nor a join secret.
    let token = lab.shoal_ok("node-1", &["swarm", "join-token", "-q", "worker"]);
    let secret = token.trim().rsplit('-').next().unwrap().to_string();
    let raft = data_root("node-1").join("swarm/raft");
    let files = walk(&raft);
    assert!(files.iter().any(|p| p.ends_with("wal.log")), "no WAL in {}", raft.display());
    for p in files.iter().filter(|p| p.is_file()) {
        assert!(!contains(p, b"PRIVATE KEY"), "a private key in clear in {}", p.display());
        assert!(!contains(p, secret.as_bytes()), "the worker join secret in clear in {}", p.display());
        assert!(!contains(p, b"not-for-nobody"), "the secret in clear in {}", p.display());
    }

    // A data root with loose modes is tightened when shoald starts.
    let root = data_root("node-2");
    let key = root.join("swarm/certificates/swarm-node.key");
    for (p, m) in [(&root, 0o755), (&root.join("swarm"), 0o755), (&root.join("image"), 0o755), (&key, 0o644)] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    }
    lab.lab_ok(&["stop", "node-2"]);
    lab.lab_ok(&["start", "node-2"]);
    wait_for(LONG, "node-2 back", || {
        let nodes = lab.try_nodes("node-1")?;
        nodes.iter().all(|n| n["Status"]["State"] == "ready").then_some(())
    });
    assert_private(&lab, "node-2");

    // A request body over the cap is refused by size, and changes nothing.
    let big = dir.0.join("big.json");
    let data = format!("{{\"Name\":\"huge\",\"Data\":\"{}\"}}", "A".repeat(17 << 20));
    std::fs::write(&big, data).unwrap();
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", &lab.socket("node-1")])
        .args(["-X", "POST", "-H", "Content-Type: application/json", "--data-binary"])
        .arg(format!("@{}", big.display()))
        .arg("http://shoal/v1.44/secrets/create")
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "413", "{}", text(&out.stderr));
    let secrets = lab.shoal_ok("node-1", &["secret", "ls", "--format", "{{.Name}}"]);
    assert_eq!(secrets.trim(), "db_pw");

    lab.shoal_ok("node-1", &["service", "rm", "guarded", "unprivileged"]);
    lab.lab_ok(&["down"]);
}
