//! Autolock on a real lab, through the stock docker CLI: `swarm update
//! --autolock=true` prints the unlock key; the manager's data root then
//! holds neither its TLS key, the data key, the CA key, a join-token secret
//! nor a secret's payload in clear; a restarted manager stays locked
//! (Docker's 503 text, `Swarm: locked`) and a wrong key changes nothing;
//! `docker swarm unlock` brings back the secret and the service; after
//! `unlock-key --rotate` the old key no longer unlocks and the new one
//! does; turning it on rotates the manager's WAL key (the key that was in
//! clear opens nothing of the log after); a worker is never locked;
//! `--autolock=false` puts it all back.
//! The Raft log and snapshots are sealed whole (nothing of the cluster's
//! state in clear under `swarm/`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::json;
use shoal_e2e::{text, wait_for, Lab};
use shoal_rpc::unlock::UnlockKey;

const LONG: Duration = Duration::from_secs(90);
const LAB: &str = "al-autolock";
const PAYLOAD: &str = "autolock-secret-payload-3f9d1c";
const CONFIG_PAYLOAD: &str = "autolock-config-payload-77ab02";
const LOCKED: &str = "Swarm is encrypted and needs to be unlocked before it can be used. Please use \"docker swarm unlock\" to unlock it.";

fn data_root(node: &str) -> PathBuf {
    PathBuf::from(format!("/var/lib/shoal/lab/{LAB}/{node}"))
}

/// `docker swarm unlock` with `key` on stdin, as an operator pipes it.
fn docker_unlock(lab: &Lab, node: &str, key: &str) -> Output {
    unlock_with(Command::new("docker").env("DOCKER_HOST", format!("unix://{}", lab.socket(node))), key)
}

/// `shoal swarm unlock`, the same way.
fn shoal_unlock(lab: &Lab, node: &str, key: &str) -> Output {
    unlock_with(Command::new(shoal_e2e::bin("shoal")).arg("-H").arg(format!("unix://{}", lab.socket(node))), key)
}

fn unlock_with(cmd: &mut Command, key: &str) -> Output {
    let mut child = cmd
        .args(["swarm", "unlock"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the docker CLI is needed for this test");
    child.stdin.take().unwrap().write_all(format!("{key}\n").as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn local_state(lab: &Lab, node: &str) -> Option<String> {
    let out = lab.docker(node, &["info", "--format", "{{.Swarm.LocalNodeState}}"]);
    out.status.success().then(|| text(&out.stdout).trim().to_string())
}

/// Restarts the node's daemon and waits until its API answers.
fn restart(lab: &Lab, node: &str) {
    lab.lab_ok(&["kill", node]);
    lab.lab_ok(&["start", node]);
    wait_for(LONG, "the daemon to answer", || local_state(lab, node));
}

fn assert_locked(lab: &Lab, node: &str) {
    assert_eq!(local_state(lab, node).as_deref(), Some("locked"));
    let info = lab.docker_ok(node, &["info"]);
    assert!(info.contains("Swarm: locked"), "{info}");
    let out = lab.docker(node, &["node", "ls"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains(LOCKED), "{}", text(&out.stderr));
    let (status, body) = lab.api(node, "GET", "/v1.44/swarm", None);
    assert_eq!((status, body["message"].as_str()), (503, Some(LOCKED)));
}

fn unlock_and_wait(lab: &Lab, node: &str, key: &str) {
    let out = docker_unlock(lab, node, key);
    assert!(out.status.success(), "unlock: {}{}", text(&out.stdout), text(&out.stderr));
    wait_for(LONG, "the unlocked manager to serve the swarm", || {
        let out = lab.docker(node, &["node", "ls", "-q"]);
        (out.status.success() && !text(&out.stdout).trim().is_empty()).then_some(())
    });
}

fn refused_with(lab: &Lab, node: &str, key: &str, message: &str) {
    let out = docker_unlock(lab, node, key);
    assert!(!out.status.success(), "the key {key:?} was accepted");
    assert!(text(&out.stderr).contains(message), "{}", text(&out.stderr));
    assert_eq!(local_state(lab, node).as_deref(), Some("locked"), "a refused key changes nothing");
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => all.push(e.path()),
                _ => {}
            }
        }
    }
    all
}

/// The files under `dir` that hold `needle`.
fn holding(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| std::fs::read(p).map(|b| b.windows(needle.len()).any(|w| w == needle)).unwrap_or(false))
        .collect()
}

fn unlock_key_from(out: &str) -> String {
    out.split_whitespace().find(|w| w.starts_with("SWMKEY-1-")).unwrap_or_else(|| panic!("no unlock key in {out}")).to_string()
}

#[test]
fn a_locked_manager_needs_the_unlock_key_and_keeps_nothing_in_clear() {
    let lab = Lab::up(LAB, 1, 1);
    let root = data_root("node-1");
    let data_key_text = std::fs::read_to_string(root.join("swarm/raft/secrets.key")).unwrap();
    let data_key = shoal_api::base64::decode(data_key_text.trim()).unwrap();
    assert_eq!(data_key.len(), 32, "autolock off: the data key sits in clear (0600)");
    let wal_key = shoal_api::base64::decode(std::fs::read_to_string(root.join("swarm/raft/wal.key")).unwrap().trim()).unwrap();
    let wal_key: [u8; 32] = wal_key.try_into().expect("autolock off: the WAL key sits in clear");
    let token = lab.docker_ok("node-1", &["swarm", "join-token", "-q", "worker"]);
    let token_secret = token.trim().rsplit('-').next().unwrap().to_string();

    // A secret and a service that uses it.
    let (status, body) = lab.api(
        "node-1",
        "POST",
        "/v1.44/secrets/create",
        Some(&json!({"Name": "al-pass", "Data": shoal_api::base64::encode(PAYLOAD.as_bytes())})),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = lab.api(
        "node-1",
        "POST",
        "/v1.44/configs/create",
        Some(&json!({"Name": "al-conf", "Data": shoal_api::base64::encode(CONFIG_PAYLOAD.as_bytes())})),
    );
    assert_eq!(status, 201, "{body}");
    lab.docker_ok("node-1", &["service", "create", "-d", "--no-resolve-image", "--name", "al-web", "--secret", "al-pass", "al/none:1"]);

    // Autolock on, through the stock CLI: Docker's text with the key.
    let out = lab.docker_ok("node-1", &["swarm", "update", "--autolock=true"]);
    assert!(out.contains("Swarm updated."), "{out}");
    assert!(out.contains("To unlock a swarm manager after it restarts, run the `docker swarm unlock`"), "{out}");
    let key = unlock_key_from(&out);
    assert_eq!(lab.docker_ok("node-1", &["swarm", "unlock-key", "-q"]).trim(), key);
    let info = lab.docker_ok("node-1", &["info"]);
    assert!(info.contains("Autolock Managers: true"), "{info}");

    // Nothing under the manager's data root in clear: its TLS key and the
    // CA key (PEM), the data key (text and bytes), a join-token secret, the
    // secret's payload, the unlock key itself.
    let check_nothing_in_clear = |key: &str| {
        let needles: [(&str, &[u8]); 6] = [
            ("a private key", b"PRIVATE KEY"),
            ("the data key (text)", data_key_text.trim().as_bytes()),
            ("the data key (bytes)", &data_key),
            ("the worker join-token secret", token_secret.as_bytes()),
            ("the secret's payload", PAYLOAD.as_bytes()),
            ("the unlock key", key.as_bytes()),
        ];
        for (what, needle) in needles {
            let found = holding(&root, needle);
            assert!(found.is_empty(), "{what} in clear in {found:?}");
        }
        // The Raft log and snapshot are sealed whole: not even a config's
        // payload or a service's name.
        for needle in [CONFIG_PAYLOAD, "al-web", "al-conf"] {
            let found = holding(&root.join("swarm"), needle.as_bytes());
            assert!(found.is_empty(), "{needle:?} in clear in {found:?}");
        }
    };
    check_nothing_in_clear(&key);

    // Restarted, the manager is locked; a wrong or malformed key changes nothing.
    restart(&lab, "node-1");
    assert_locked(&lab, "node-1");
    let wrong = "SWMKEY-1-Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyMTI";
    refused_with(&lab, "node-1", wrong, "swarm could not be unlocked: invalid key provided");
    refused_with(&lab, "node-1", "not-a-key", "invalid key string");
    check_nothing_in_clear(&key);

    // The right key: back, with the secret and the service.
    unlock_and_wait(&lab, "node-1", &key);
    assert_eq!(local_state(&lab, "node-1").as_deref(), Some("active"));
    assert!(lab.docker_ok("node-1", &["secret", "ls", "--format", "{{.Name}}"]).lines().any(|l| l == "al-pass"));
    assert!(lab.docker_ok("node-1", &["service", "ls", "--format", "{{.Name}}"]).lines().any(|l| l == "al-web"));
    let out = docker_unlock(&lab, "node-1", &key);
    assert!(text(&out.stderr).contains("swarm is not locked"), "{}", text(&out.stderr));

    // Workers are not locked.
    restart(&lab, "node-2");
    assert_eq!(local_state(&lab, "node-2").as_deref(), Some("active"));

    // Rotation: the old key no longer unlocks, the new one does.
    let new_key = lab.docker_ok("node-1", &["swarm", "unlock-key", "--rotate", "-q"]).trim().to_string();
    assert!(new_key.starts_with("SWMKEY-1-") && new_key != key, "{new_key}");
    assert_eq!(lab.docker_ok("node-1", &["swarm", "unlock-key", "-q"]).trim(), new_key);
    restart(&lab, "node-1");
    assert_locked(&lab, "node-1");
    refused_with(&lab, "node-1", &key, "swarm could not be unlocked: invalid key provided");
    check_nothing_in_clear(&new_key);
    // Turning autolock on rotated the WAL key (online, or at the unlock
    // above at the latest): the key that sat in clear before opens nothing
    // of the log now. (Read while the manager is locked: nothing holds it.)
    let raft_dir = root.join("swarm/raft");
    assert!(!raft_dir.join("wal.key.next").exists(), "the rotation finished");
    let old = shoal_manager::testing::WalKey::new(wal_key);
    assert!(shoal_manager::testing::DiskStorage::open_with(&raft_dir, Some(old)).is_err(), "the old WAL key opens the log");
    unlock_and_wait(&lab, "node-1", &new_key);
    assert!(lab.docker_ok("node-1", &["secret", "ls", "--format", "{{.Name}}"]).lines().any(|l| l == "al-pass"));

    // Autolock off: a restart no longer locks, and unlock-key has none.
    lab.docker_ok("node-1", &["swarm", "update", "--autolock=false"]);
    let out = lab.docker("node-1", &["swarm", "unlock-key"]);
    assert!(!out.status.success() && text(&out.stderr).contains("no unlock key is set"), "{}", text(&out.stderr));
    restart(&lab, "node-1");
    wait_for(LONG, "the manager to serve the swarm without a key", || {
        let out = lab.docker("node-1", &["node", "ls", "-q"]);
        out.status.success().then_some(())
    });
    assert_eq!(local_state(&lab, "node-1").as_deref(), Some("active"));
}

fn wrapped(node_root: &Path, file: &str) -> bool {
    std::fs::read_to_string(node_root.join(file)).map(|t| t.starts_with("SHOAL-WRAPPED-1:")).unwrap_or(false)
}

const KEY_FILES: [&str; 3] = ["swarm/certificates/swarm-node.key", "swarm/raft/secrets.key", "swarm/raft/wal.key"];

/// Every manager wraps its keys when autolock is turned on; one that was
/// down through a rotation unlocks with the old key and then re-wraps
/// under the new one; a demoted manager's key goes back in clear.
#[test]
fn every_manager_follows_the_unlock_key_and_a_demoted_one_is_not_locked() {
    const LAB3: &str = "al-managers";
    let lab = Lab::up(LAB3, 3, 0);
    let root = |n: &str| PathBuf::from(format!("/var/lib/shoal/lab/{LAB3}/{n}"));
    let out = lab.docker_ok("node-1", &["swarm", "update", "--autolock=true"]);
    let key = unlock_key_from(&out);
    wait_for(LONG, "every manager to wrap its keys", || {
        ["node-1", "node-2", "node-3"].iter().all(|n| KEY_FILES.iter().all(|f| wrapped(&root(n), f))).then_some(())
    });

    // node-3 is down while the key rotates.
    lab.lab_ok(&["stop", "node-3"]);
    let new_key = lab.docker_ok("node-1", &["swarm", "unlock-key", "--rotate", "-q"]).trim().to_string();
    assert_ne!(new_key, key);
    lab.lab_ok(&["start", "node-3"]);
    wait_for(LONG, "node-3 to answer", || local_state(&lab, "node-3"));
    assert_locked(&lab, "node-3");
    // Its files are still under the old key: that one unlocks it (as in
    // Docker), then it re-wraps under the new one once it has caught up.
    refused_with(&lab, "node-3", &new_key, "swarm could not be unlocked: invalid key provided");
    unlock_and_wait(&lab, "node-3", &key);
    wait_for(LONG, "node-3 to serve the rotated key", || {
        let out = lab.docker("node-3", &["swarm", "unlock-key", "-q"]);
        (out.status.success() && text(&out.stdout).trim() == new_key).then_some(())
    });
    wait_for(LONG, "node-3 to re-wrap its keys under the new key", || {
        let new = UnlockKey::parse_human(&new_key).unwrap();
        KEY_FILES
            .iter()
            .all(|f| {
                let text = std::fs::read_to_string(root("node-3").join(f)).unwrap_or_default();
                let name = Path::new(f).file_name().unwrap().to_str().unwrap();
                text.lines().all(|l| new.unwrap(name, l).is_ok())
            })
            .then_some(())
    });
    restart(&lab, "node-3");
    assert_locked(&lab, "node-3");
    refused_with(&lab, "node-3", &key, "swarm could not be unlocked: invalid key provided");
    unlock_and_wait(&lab, "node-3", &new_key);

    // Demoted, node-2 is a worker: never locked, its key in clear.
    lab.docker_ok("node-1", &["node", "demote", "node-2"]);
    wait_for(LONG, "the demoted node's key to go back in clear", || {
        (!wrapped(&root("node-2"), KEY_FILES[0]) && !root("node-2").join("swarm/raft").exists()).then_some(())
    });
    restart(&lab, "node-2");
    assert_eq!(local_state(&lab, "node-2").as_deref(), Some("active"));

    // It leaves and joins again as a manager: it gets the data key and the
    // unlock key from a peer before its Raft log starts, so its keys are
    // wrapped from the first (its WAL key never in clear), not once it has
    // caught up with the log that says autolock is on.
    lab.docker_ok("node-2", &["swarm", "leave"]);
    let token = lab.docker_ok("node-1", &["swarm", "join-token", "-q", "manager"]);
    lab.docker_ok(
        "node-2",
        &["swarm", "join", "--token", token.trim(), "--advertise-addr", &lab.addr(2), &format!("{}:2377", lab.addr(1))],
    );
    let log = std::fs::read_to_string(root("node-2").join("shoald.log")).unwrap();
    assert!(
        log.contains("this manager's keys are wrapped under the unlock key before its Raft log starts"),
        "the joining manager got the unlock key only later: its WAL key began in clear"
    );
    let unlock = UnlockKey::parse_human(&new_key).unwrap();
    for f in KEY_FILES {
        let text = std::fs::read_to_string(root("node-2").join(f)).unwrap_or_default();
        let name = Path::new(f).file_name().unwrap().to_str().unwrap();
        assert!(wrapped(&root("node-2"), f), "{f} is in clear on the manager that just joined");
        assert!(text.lines().all(|l| unlock.unwrap(name, l).is_ok()), "{f} is not under the current unlock key");
    }
    restart(&lab, "node-2");
    assert_locked(&lab, "node-2");
    unlock_and_wait(&lab, "node-2", &new_key);
}

/// `docker swarm init --autolock` prints Docker's text with the key and the
/// keys are wrapped from the start; a locked manager leaves only with
/// `--force`.
#[test]
fn init_with_autolock_locks_from_the_start_and_a_locked_manager_leaves_only_by_force() {
    const LAB1: &str = "al-init";
    let lab = Lab::up(LAB1, 1, 0);
    lab.docker_ok("node-1", &["swarm", "leave", "--force"]);
    let out = lab.docker_ok("node-1", &["swarm", "init", "--autolock", "--advertise-addr", &lab.addr(1)]);
    assert!(out.contains("Swarm initialized: current node"), "{out}");
    assert!(out.contains("To unlock a swarm manager after it restarts, run the `docker swarm unlock`"), "{out}");
    assert!(out.contains("Remember to store this key in a password manager"), "{out}");
    let key = unlock_key_from(&out);
    assert_eq!(lab.shoal_ok("node-1", &["swarm", "unlock-key", "-q"]).trim(), key);
    let root = PathBuf::from(format!("/var/lib/shoal/lab/{LAB1}/node-1"));
    assert!(KEY_FILES.iter().all(|f| wrapped(&root, f)), "wrapped before init answers");
    restart(&lab, "node-1");
    assert_locked(&lab, "node-1");
    // shoal's own CLI: Docker's errors, then the key.
    let out = shoal_unlock(&lab, "node-1", "SWMKEY-1-Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyMTI");
    assert!(!out.status.success() && text(&out.stderr).contains("swarm could not be unlocked: invalid key provided"));
    let out = shoal_unlock(&lab, "node-1", &key);
    assert!(out.status.success(), "shoal swarm unlock: {}", text(&out.stderr));
    wait_for(LONG, "the manager to serve", || lab.docker("node-1", &["node", "ls", "-q"]).status.success().then_some(()));
    let out = lab.shoal_ok("node-1", &["swarm", "unlock-key", "--rotate"]);
    assert!(out.contains("Successfully rotated manager unlock key."), "{out}");
    let key = unlock_key_from(&out);
    restart(&lab, "node-1");
    assert_locked(&lab, "node-1");
    unlock_and_wait(&lab, "node-1", &key);
    restart(&lab, "node-1");
    assert_locked(&lab, "node-1");
    let out = lab.docker("node-1", &["swarm", "leave"]);
    assert!(!out.status.success() && text(&out.stderr).contains("Please unlock it first or use `--force`"), "{}", text(&out.stderr));
    lab.docker_ok("node-1", &["swarm", "leave", "--force"]);
    assert_eq!(local_state(&lab, "node-1").as_deref(), Some("inactive"));
    assert!(!root.join("swarm").exists());
}
