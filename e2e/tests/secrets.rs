//! Secrets and configs end to end: created from a file and from stdin,
//! never shown by the API, sealed in the managers' Raft log, delivered only
//! to the node that runs the task, mounted from a tmpfs and gone with it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use shoal_e2e::{bin, build_busybox_image, text, wait_for, Lab};

const LONG: Duration = Duration::from_secs(90);
const LAB: &str = "e2e-secrets";

/// Every regular file below `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                if let Ok(bytes) = std::fs::read(e.path()) {
                    if bytes.windows(needle.len()).any(|w| w == needle) {
                        hits.push(e.path().display().to_string());
                    }
                }
            }
        }
    }
    hits
}

/// (mount point, fs type) of the host's mounts below `prefix`.
fn mounts_below(prefix: &str) -> Vec<(String, String)> {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() > 2 && f[1].starts_with(prefix)).then(|| (f[1].to_string(), f[2].to_string()))
        })
        .collect()
}

#[test]
fn secrets_and_configs_reach_only_their_task_on_tmpfs() {
    let lab = Lab::up(LAB, 1, 1);
    let dir = std::env::temp_dir().join(format!("shoal-e2e-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let archive = build_busybox_image(&dir);
    for n in ["node-1", "node-2"] {
        lab.shoal_ok(n, &["image", "load", "-q", "-i", archive.to_str().unwrap()]);
    }
    // Unique bytes to look for on disk later. The service command below
    // spells them split in two, so the service spec does not contain them.
    let (head, tail) = ("s3cr", format!("et-{}-quokka", std::process::id()));
    let value = format!("{head}{tail}");
    let pw_file = dir.join("db_pw");
    std::fs::write(&pw_file, &value).unwrap();
    let site_file = dir.join("site.conf");
    std::fs::write(&site_file, "listen 8080;").unwrap();

    // Created from a file and from stdin; the ID is printed.
    let id = lab.shoal_ok("node-1", &["secret", "create", "--label", "env=test", "db_pw", pw_file.to_str().unwrap()]);
    assert_eq!(id.trim().len(), 25, "{id}");
    let mut child = Command::new(bin("shoal"))
        .args(["-H", &format!("unix://{}", lab.socket("node-1")), "secret", "create", "from_stdin", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"piped-value").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "secret create from stdin: {}", text(&out.stderr));
    lab.shoal_ok("node-1", &["config", "create", "site", site_file.to_str().unwrap()]);

    // Listed and inspected, never with their data.
    let ls = lab.shoal_ok("node-1", &["secret", "ls"]);
    assert!(ls.starts_with("ID ") && ls.contains("DRIVER") && ls.contains("db_pw") && ls.contains("from_stdin"), "{ls}");
    let (status, inspected) = lab.api("node-1", "GET", "/v1.44/secrets/db_pw", None);
    assert_eq!(status, 200, "{inspected}");
    assert_eq!(inspected["ID"], id.trim());
    assert_eq!(inspected["Spec"]["Labels"]["env"], "test");
    assert!(inspected["Spec"].get("Data").is_none(), "a secret's data never comes back: {inspected}");
    let pretty = lab.shoal_ok("node-1", &["secret", "inspect", "--pretty", "db_pw"]);
    assert!(pretty.contains("Name:              db_pw") && !pretty.contains(&value), "{pretty}");
    let (_, list) = lab.api("node-1", "GET", "/v1.44/secrets", None);
    assert!(!list.to_string().contains("Data"), "{list}");
    let (_, config) = lab.api("node-1", "GET", "/v1.44/configs/site", None);
    assert_eq!(config["Spec"]["Data"], "bGlzdGVuIDgwODA7", "a config's data does come back");

    // Duplicate names are refused with Docker's 409.
    let dup = lab.shoal("node-1", &["secret", "create", "db_pw", pw_file.to_str().unwrap()]);
    assert!(!dup.status.success());
    assert_eq!(text(&dup.stderr).trim(), "Error response from daemon: rpc error: code = AlreadyExists desc = secret db_pw already exists");
    let (status, _) = lab.api("node-1", "POST", "/v1.44/secrets/create", Some(&serde_json::json!({"Name": "db_pw", "Data": "eA=="})));
    assert_eq!(status, 409);
    let unknown = lab.shoal("node-1", &["service", "create", "-d", "--secret", "nope", "shoal-test/busy:1"]);
    assert_eq!(text(&unknown.stderr).trim(), "secret not found: nope");

    // A task on the worker reads both; it prints a marker only if the
    // contents are right. Another compares against a wrong value and fails.
    let check = format!(
        "test \"$(cat /run/secrets/db_pw)\" = \"{head}\"'{tail}' && test \"$(cat /etc/site.conf)\" = 'listen 8080;' && echo contents-ok && sleep 1000"
    );
    lab.shoal_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "reader",
            "--constraint",
            "node.role==worker",
            "--secret",
            "src=db_pw",
            "--config",
            "source=site,target=/etc/site.conf",
            "shoal-test/busy:1",
            "sh",
            "-c",
            &check,
        ],
    );
    lab.shoal_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "wrong",
            "--constraint",
            "node.role==worker",
            "--restart-condition",
            "none",
            "--secret",
            "src=db_pw",
            "shoal-test/busy:1",
            "sh",
            "-c",
            "test \"$(cat /run/secrets/db_pw)\" = wrong",
        ],
    );
    let task = wait_for(LONG, "the reader task to run", || lab.tasks("reader").into_iter().find(|t| t["Status"]["State"] == "running"));
    let task_id = task["ID"].as_str().unwrap().to_string();
    assert_eq!(task["NodeID"], lab.shoal_ok("node-2", &["info", "--format", "{{.Swarm.NodeID}}"]).trim());
    let worker_data = format!("/var/lib/shoal/lab/{LAB}/node-2");
    let log = format!("{worker_data}/containers/logs/{task_id}.log");
    wait_for(LONG, "the container to confirm the contents", || std::fs::read_to_string(&log).ok().filter(|l| l.contains("contents-ok")));
    let failed =
        wait_for(LONG, "the wrong-secret task to fail", || lab.tasks("wrong").into_iter().find(|t| t["Status"]["State"] == "failed"));
    assert_eq!(failed["Status"]["Err"], "task: non-zero exit (1)");

    // The files live on a tmpfs of the task's own, under the node's run dir.
    let secrets_dir = format!("/run/shoal/lab/{LAB}/node-2/secrets/");
    let mounts = mounts_below(&secrets_dir);
    assert!(mounts.contains(&(format!("{secrets_dir}{task_id}"), "tmpfs".to_string())), "{mounts:?}");
    // The scan finds bytes that are there (the container's log marker)...
    assert!(!files_containing(Path::new(&worker_data), b"contents-ok").is_empty(), "the disk scan works");
    // ...and nothing on disk holds the secret: not the worker's data dir, and not
    // the manager's (its Raft log and snapshot keep it sealed).
    let b64 = shoal_api_base64(value.as_bytes());
    for node in ["node-1", "node-2"] {
        let data = format!("/var/lib/shoal/lab/{LAB}/{node}");
        assert!(Path::new(&data).join("swarm").exists(), "{data} is the node's data dir");
        for needle in [value.as_bytes(), b64.as_bytes()] {
            let hits = files_containing(Path::new(&data), needle);
            assert!(hits.is_empty(), "secret bytes found on disk of {node}: {hits:?}");
        }
    }

    // The stock docker CLI sees the same secrets and drives them too.
    let docker = |args: &[&str]| {
        let out = Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", lab.socket("node-1")))
            .output()
            .expect("the stock docker CLI is part of this test: install docker.io (client only is enough)");
        assert!(out.status.success(), "docker {args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    assert_eq!(docker(&["secret", "ls", "--format", "{{.Name}}"]), "db_pw\nfrom_stdin\n");
    let docker_id = docker(&["secret", "create", "from_docker", pw_file.to_str().unwrap()]);
    assert!(lab.shoal_ok("node-1", &["secret", "ls", "-q"]).contains(docker_id.trim()));
    assert_eq!(docker(&["secret", "rm", "from_docker"]), "from_docker\n");
    assert!(docker(&["config", "inspect", "--pretty", "site"]).contains("listen 8080;"));

    // In use: refused with the services named.
    let refused = lab.shoal("node-1", &["secret", "rm", "db_pw"]);
    assert!(!refused.status.success());
    assert_eq!(
        text(&refused.stderr).trim(),
        "Error response from daemon: rpc error: code = InvalidArgument desc = secret 'db_pw' is in use by the following services: reader, wrong"
            .replace("reader, wrong", &users(&lab))
    );
    let refused = lab.shoal("node-1", &["config", "rm", "site"]);
    assert!(text(&refused.stderr).contains("config 'site' is in use by the following service: reader"), "{}", text(&refused.stderr));

    // Once the services are gone, so are the mounts, and the secret can go.
    lab.shoal_ok("node-1", &["service", "rm", "reader", "wrong"]);
    assert_eq!(lab.shoal_ok("node-1", &["secret", "rm", "db_pw", "from_stdin"]), "db_pw\nfrom_stdin\n");
    assert_eq!(lab.shoal_ok("node-1", &["config", "rm", "site"]), "site\n");
    wait_for(LONG, "the task's tmpfs to be unmounted", || mounts_below(&secrets_dir).is_empty().then_some(()));
    wait_for(LONG, "the task's mount point to be removed", || {
        std::fs::read_dir(&secrets_dir).map(|d| d.count() == 0).unwrap_or(true).then_some(())
    });
    assert_eq!(lab.shoal_ok("node-1", &["secret", "ls", "-q"]), "");
    let gone = lab.shoal("node-1", &["secret", "inspect", "db_pw"]);
    assert!(text(&gone.stderr).contains("secret db_pw not found"), "{}", text(&gone.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The services listed in the in-use error: SwarmKit lists them in store
/// (ID) order, so the order of "reader" and "wrong" follows their IDs.
fn users(lab: &Lab) -> String {
    let (_, services) = lab.api("node-1", "GET", "/v1.44/services", None);
    let mut by_id: Vec<(String, String)> = services
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["ID"].as_str().unwrap().to_string(), s["Spec"]["Name"].as_str().unwrap().to_string()))
        .collect();
    by_id.sort();
    by_id.into_iter().map(|(_, n)| n).collect::<Vec<_>>().join(", ")
}

/// Standard base64, to look for the form the API carried the secret in.
fn shoal_api_base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() { A[((n >> (18 - 6 * i)) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

/// Managers that joined later fetch the data key: a secret created through
/// a follower (sealed there) is unsealed by the leader for the worker.
#[test]
fn joining_managers_share_the_data_key() {
    let lab = Lab::up("e2e-secrets-ha", 3, 0);
    let dir = std::env::temp_dir().join(format!("shoal-e2e-secrets-ha-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let archive = build_busybox_image(&dir);
    lab.shoal_ok("node-3", &["image", "load", "-q", "-i", archive.to_str().unwrap()]);
    let leader = wait_for(LONG, "a leader", || lab.try_nodes("node-1").and_then(|n| shoal_e2e::leader_host(&n)));
    let follower = ["node-1", "node-2", "node-3"].into_iter().find(|n| *n != leader).unwrap();
    // The follower may still be fetching the key right after joining.
    let pw = dir.join("pw");
    std::fs::write(&pw, "ha-value").unwrap();
    wait_for(LONG, "the follower to create a secret", || {
        lab.shoal(follower, &["secret", "create", "ha_pw", pw.to_str().unwrap()]).status.success().then_some(())
    });
    for n in ["node-1", "node-2", "node-3"] {
        let key = Path::new(&format!("/var/lib/shoal/lab/e2e-secrets-ha/{n}/swarm/raft/secrets.key")).to_path_buf();
        use std::os::unix::fs::PermissionsExt;
        let mode = wait_for(LONG, "every manager to hold the key", || std::fs::metadata(&key).ok()).permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{n}");
    }
    lab.shoal_ok(
        follower,
        &[
            "service",
            "create",
            "-d",
            "--name",
            "ha",
            "--constraint",
            "node.hostname==node-3",
            "--secret",
            "ha_pw",
            "shoal-test/busy:1",
            "sh",
            "-c",
            "test \"$(cat /run/secrets/ha_pw)\" = ha-value && echo ha-ok && sleep 1000",
        ],
    );
    let task = wait_for(LONG, "the task to run", || lab.tasks("ha").into_iter().find(|t| t["Status"]["State"] == "running"));
    let log = format!("/var/lib/shoal/lab/e2e-secrets-ha/node-3/containers/logs/{}.log", task["ID"].as_str().unwrap());
    wait_for(LONG, "the container to read the secret", || std::fs::read_to_string(&log).ok().filter(|l| l.contains("ha-ok")));
    lab.shoal_ok("node-1", &["service", "rm", "ha"]);
    let _ = std::fs::remove_dir_all(&dir);
}
