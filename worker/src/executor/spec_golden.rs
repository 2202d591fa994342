//! Golden `config.json` files: the whole spec runc is handed (the default
//! spec, then the task's mounts, `/etc` files, ulimits, sysctls and init,
//! in `Executor::add_runtime_options`'s order) for representative
//! containers, compared as JSON values with `testdata/config-*.json`.
//!
//! Any change to what runc gets shows up here as a list of JSON paths.
//! When the change is meant, regenerate the files with
//! `SHOAL_UPDATE_GOLDEN=1 cargo test -p shoal-worker --lib spec_golden`
//! and review their diff.
//!
//! x86_64 only: the seccomp filter depends on the architecture.
#![cfg(target_arch = "x86_64")]

use std::path::{Path, PathBuf};

use serde_json::Value;
use shoal_api::task::{BindOptions, Limit, Mount, TmpfsOptions, Ulimit};

use super::spec::{oci_spec, SpecOptions};
use super::{etc_files, mounts, process_opts, ContainerInput, ExtraMount};
use crate::volumes::VolumeStore;

/// Stands for the test's scratch directory in the golden files.
const DIR: &str = "<dir>";

fn scratch(case: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("shoal-golden-{case}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("rootfs/etc")).unwrap();
    std::fs::write(d.join("rootfs/etc/passwd"), "root:x:0:0::/root:/bin/sh\nweb:x:33:44::/:/bin/sh\n").unwrap();
    std::fs::write(d.join("rootfs/etc/group"), "root:x:0:\nstaff:x:50:web\nwww:x:44:\naudio:x:29:\n").unwrap();
    std::fs::create_dir_all(d.join("host-data")).unwrap();
    d
}

fn input(dir: &Path) -> ContainerInput {
    ContainerInput {
        id: "c1".into(),
        image_env: vec!["PATH=/img/bin".into(), "LANG=C.UTF-8".into()],
        image_cmd: vec!["serve".into()],
        image_entrypoint: vec!["/entry.sh".into()],
        image_working_dir: "/app".into(),
        rootfs: dir.join("rootfs"),
        hostname: "web-1".into(),
        ..Default::default()
    }
}

fn opts() -> SpecOptions {
    SpecOptions {
        cgroup_parent: "shoal-n1".into(),
        swap_accounting: false,
        nofile: (1_048_576, 1_048_576),
        kernel: (6, 1),
        apparmor: false,
    }
}

fn privileges(json: &str) -> Option<shoal_api::task::Privileges> {
    Some(serde_json::from_str(json).unwrap())
}

/// The spec as `Executor::start` writes it, with the scratch directory
/// replaced by [`DIR`].
fn config_json(c: &ContainerInput, o: &SpecOptions, dir: &Path) -> Value {
    let mut spec = oci_spec(c, o).unwrap();
    let bundle = dir.join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let volumes = VolumeStore::new(dir.join("volumes"));
    let prepared = mounts::prepare(c, &volumes, &mounts::staging_dir(&bundle)).unwrap();
    let mut extra = etc_files::write(c, &bundle).unwrap();
    extra.extend(prepared.mounts);
    mounts::apply(&mut spec, extra).unwrap();
    process_opts::apply(&mut spec, c, Some("/usr/bin/tini-static".into())).unwrap();
    let text = serde_json::to_string(&spec).unwrap().replace(dir.to_str().unwrap(), DIR);
    serde_json::from_str(&text).unwrap()
}

/// Capability lists are sets to runc: compared sorted.
fn normalize(v: &mut Value) {
    if let Some(caps) = v.pointer_mut("/process/capabilities").and_then(Value::as_object_mut) {
        for list in caps.values_mut().filter_map(Value::as_array_mut) {
            list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        }
    }
}

/// The JSON paths where `a` and `b` differ.
fn differences(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                match (x.get(k), y.get(k)) {
                    (Some(l), Some(r)) => differences(&format!("{path}/{k}"), l, r, out),
                    (l, r) => out.push(format!("{path}/{k}: {} != {}", show(l), show(r))),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (l, r)) in x.iter().zip(y).enumerate() {
                differences(&format!("{path}/{i}"), l, r, out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} != {b}")),
        _ => {}
    }
}

fn show(v: Option<&Value>) -> String {
    v.map_or("(absent)".into(), Value::to_string)
}

fn check(case: &str, c: &ContainerInput, o: &SpecOptions, dir: &Path) {
    let mut got = config_json(c, o, dir);
    normalize(&mut got);
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("src/executor/testdata/config-{case}.json"));
    if std::env::var_os("SHOAL_UPDATE_GOLDEN").is_some() {
        std::fs::write(&file, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
    }
    let mut want: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    normalize(&mut want);
    let mut diff = Vec::new();
    differences("", &got, &want, &mut diff);
    std::fs::remove_dir_all(dir).unwrap();
    assert!(diff.is_empty(), "config-{case}.json (got != want):\n{}", diff.join("\n"));
}

/// Image defaults only: Docker's default seccomp profile, no AppArmor.
#[test]
fn plain() {
    let dir = scratch("plain");
    check("plain", &input(&dir), &opts(), &dir);
}

/// Every kind of task mount, a secret, a read-only rootfs, the worker's
/// network namespace, and shared propagation (rootfsPropagation).
#[test]
fn mounts_and_network() {
    let dir = scratch("mounts");
    let mut c = input(&dir);
    let host = dir.join("host-data").to_str().unwrap().to_string();
    let bind = |target: &str, propagation: &str, read_only: bool| Mount {
        r#type: "bind".into(),
        source: host.clone(),
        target: target.into(),
        read_only,
        bind_options: Some(BindOptions { propagation: propagation.into(), non_recursive: false }),
        ..Default::default()
    };
    c.spec.mounts = vec![
        bind("/srv/shared", "rshared", false),
        bind("/srv/ro", "", true),
        Mount { r#type: "volume".into(), source: "data".into(), target: "/var/lib/data".into(), ..Default::default() },
        Mount { r#type: "volume".into(), target: "/cache".into(), ..Default::default() },
        Mount {
            r#type: "tmpfs".into(),
            target: "/dev/shm".into(),
            tmpfs_options: Some(TmpfsOptions { size_bytes: 256 << 20, mode: 0o1777 }),
            ..Default::default()
        },
    ];
    c.spec.read_only = true;
    c.extra_mounts =
        vec![ExtraMount { source: dir.join("secrets/s1"), destination: "/run/secrets/db_pw".into(), read_only: true, noexec: true }];
    c.netns_path = Some("/run/shoal/n1/netns/c1".into());
    check("mounts", &c, &opts(), &dir);
}

/// Limits with swap accounting, a user and groups from the rootfs, a
/// terminal, the spec's command, env and working directory.
#[test]
fn resources_and_process() {
    let dir = scratch("resources");
    let mut c = input(&dir);
    c.limits = Some(Limit { nano_cpus: 1_500_000_000, memory_bytes: 64 << 20, pids: 200 });
    c.spec.user = "web".into();
    c.spec.groups = vec!["audio".into(), "1234".into()];
    c.spec.tty = true;
    c.spec.command = vec!["/bin/sh".into()];
    c.spec.args = vec!["-c".into(), "echo hi".into()];
    c.spec.env = vec!["LANG=en_US.UTF-8".into(), "MODE=prod".into()];
    c.spec.dir = "/srv".into();
    let o = SpecOptions { swap_accounting: true, nofile: (1024, 4096), ..opts() };
    check("resources", &c, &o, &dir);
}

/// Seccomp unconfined, AppArmor disabled on a host that has it,
/// no-new-privileges, capabilities added and dropped.
#[test]
fn unconfined() {
    let dir = scratch("unconfined");
    let mut c = input(&dir);
    c.spec.privileges = privileges(r#"{"Seccomp": {"Mode": "unconfined"}, "AppArmor": {"Mode": "disabled"}, "NoNewPrivileges": true}"#);
    c.spec.capability_add = vec!["NET_ADMIN".into(), "cap_sys_time".into()];
    c.spec.capability_drop = vec!["MKNOD".into(), "CAP_NET_RAW".into()];
    check("unconfined", &c, &SpecOptions { apparmor: true, ..opts() }, &dir);
}

/// A custom seccomp profile (flags, arguments, errnoRet, its own
/// architectures) and every capability dropped.
#[test]
fn custom_seccomp() {
    let dir = scratch("custom-seccomp");
    let mut c = input(&dir);
    let profile = br#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {"names": ["keyctl", "add_key"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"name": "personality", "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_NE"}]},
            {"names": ["ptrace"], "action": "SCMP_ACT_KILL_PROCESS"}
        ]}"#;
    c.spec.privileges = privileges(&format!(r#"{{"Seccomp": {{"Mode": "custom", "Profile": "{}"}}}}"#, shoal_api::base64::encode(profile)));
    c.spec.capability_drop = vec!["ALL".into()];
    c.spec.capability_add = vec!["CHOWN".into()];
    check("custom-seccomp", &c, &opts(), &dir);
}

/// `--init`, sysctls, ulimits (one replacing the default nofile), and
/// CAP_SYS_ADMIN, which changes Docker's seccomp filter; AppArmor loaded.
#[test]
fn init_sysctls_ulimits() {
    let dir = scratch("init");
    let mut c = input(&dir);
    c.spec.init = Some(true);
    c.spec.sysctls =
        [("net.core.somaxconn", "1024"), ("net.ipv4.ip_unprivileged_port_start", "0")].map(|(k, v)| (k.to_string(), v.to_string())).into();
    c.spec.ulimits = vec![Ulimit { name: "nofile".into(), soft: 2048, hard: 8192 }, Ulimit { name: "nproc".into(), soft: 64, hard: 128 }];
    c.spec.capability_add = vec!["SYS_ADMIN".into()];
    check("init", &c, &SpecOptions { apparmor: true, ..opts() }, &dir);
}
