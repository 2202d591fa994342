//! Real runc, real namespaces. These FAIL (never skip) without runc and a
//! static busybox: `apt-get install -y runc busybox-static`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A test container's world: rootfs, state dir, runc root, cgroup parent.
/// Drop removes the container (runc delete), dirs and cgroup parents, also
/// when the test fails.
struct Fixture {
    dir: PathBuf,
    exec: Executor,
    id: String,
    cgroup_parent: String,
}

fn check_tools() {
    let runc_ok = std::process::Command::new("runc")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        runc_ok,
        "runc is missing: apt-get install -y runc busybox-static"
    );
    let bb = std::fs::read("/bin/busybox")
        .expect("/bin/busybox is missing: apt-get install -y runc busybox-static");
    // A static binary has no PT_INTERP (3) program header (ELF64 little-endian).
    let u16_at = |o: usize| u16::from_le_bytes([bb[o], bb[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(bb[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    let dynamic = (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes(bb[o..o + 4].try_into().unwrap()) == 3
    });
    assert!(
        !dynamic,
        "/bin/busybox is not static: apt-get install -y busybox-static"
    );
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        check_tools();
        supervise::become_subreaper().unwrap();
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{}-{}-{}", name, std::process::id(), n);
        let dir = std::env::temp_dir().join(format!("shoal-exec-{tag}"));
        let rootfs = dir.join("rootfs");
        for d in ["bin", "etc", "proc", "sys", "dev", "tmp"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for l in ["sh", "echo", "sleep", "cat", "ls", "id", "pwd"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(l)).unwrap();
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        let cgroup_parent = format!("shoal-test-{tag}");
        let exec = Executor::new(ExecutorConfig {
            state_dir: dir.join("state"),
            runc_bin: "runc".into(),
            runc_root: dir.join("runc"),
            cgroup_parent: cgroup_parent.clone(),
        })
        .unwrap();
        Fixture {
            dir,
            exec,
            id: format!("t-{tag}"),
            cgroup_parent,
        }
    }

    fn input(&self, cmd: &[&str]) -> ContainerInput {
        let spec = ContainerSpec {
            command: cmd.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        ContainerInput {
            id: self.id.clone(),
            spec,
            rootfs: self.dir.join("rootfs"),
            hostname: "box".into(),
            ..Default::default()
        }
    }

    /// The container's output as text (the log file's records joined),
    /// once the capture has written all of it.
    fn log(&self) -> String {
        let raw = std::fs::read(self.exec.log_path(&self.id)).unwrap_or_default();
        raw.split(|&b| b == b'\n')
            .filter_map(crate::logs::format::decode)
            .map(|r| r.log)
            .collect()
    }

    fn wait_logs(&self, c: &Container) {
        assert!(c.logs.wait_timeout(Duration::from_secs(20)), "output capture did not end");
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.exec.runc().kill(&self.id, "SIGKILL");
        let _ = self.exec.remove_id(&self.id);
        self.exec.remove_log(&self.id);
        if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in entries.flatten() {
                let p: &Path = &e.path().join(&self.cgroup_parent);
                let _ = std::fs::remove_dir(p);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn echo_exits_zero_and_logs() {
    let f = Fixture::new("echo");
    let c = f.exec.start(&f.input(&["echo", "hello"])).unwrap();
    assert!(c.pid > 0);
    assert_eq!(f.exec.wait_timeout(&c, Duration::from_secs(20)), Some(0));
    assert_eq!(f.exec.runc().state(&c.id).unwrap(), "stopped");
    f.wait_logs(&c);
    assert!(f.log().contains("hello"), "log: {:?}", f.log());
    f.exec.remove(&c).unwrap();
    assert!(!c.bundle.exists());
}

#[test]
fn stdout_and_stderr_are_captured_apart_and_outlive_the_container() {
    let f = Fixture::new("streams");
    let c = f.exec.start(&f.input(&["sh", "-c", "echo out1; echo err1 >&2; echo out2"])).unwrap();
    assert_eq!(f.exec.wait_timeout(&c, Duration::from_secs(20)), Some(0));
    f.wait_logs(&c);
    let raw = std::fs::read(&c.log_path).unwrap();
    let recs: Vec<_> = raw.split(|&b| b == b'\n').filter_map(crate::logs::format::decode).collect();
    let of = |s: &str| recs.iter().filter(|r| r.stream == s).map(|r| r.log.as_str()).collect::<Vec<_>>();
    assert_eq!(of("stdout"), ["out1\n", "out2\n"], "{recs:?}");
    assert_eq!(of("stderr"), ["err1\n"], "{recs:?}");
    assert!(recs.iter().all(|r| r.unix_nanos().is_some()), "{recs:?}");
    f.exec.remove(&c).unwrap();
    assert!(c.log_path.exists(), "the log file outlives the container");
    f.exec.remove_log(&c.id);
    assert!(!c.log_path.exists());
}

#[test]
fn exit_code_is_reported() {
    let f = Fixture::new("exit3");
    let c = f.exec.start(&f.input(&["sh", "-c", "exit 3"])).unwrap();
    assert_eq!(f.exec.wait_timeout(&c, Duration::from_secs(20)), Some(3));
}

#[test]
fn sigterm_stops_sleep() {
    let f = Fixture::new("term");
    // sh as pid 1 with a TERM trap (a pid-1 process without a handler
    // ignores SIGTERM, as in Docker).
    let c = f
        .exec
        .start(&f.input(&["sh", "-c", "trap 'exit 143' TERM; sleep 1000 & wait"]))
        .unwrap();
    assert_eq!(f.exec.runc().state(&c.id).unwrap(), "running");
    let t = std::time::Instant::now();
    let code = f.exec.stop(&c, "SIGTERM", Duration::from_secs(10)).unwrap();
    assert_eq!(code, 143);
    assert!(
        t.elapsed() < Duration::from_secs(9),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn ignored_sigterm_gets_sigkill_after_grace() {
    let f = Fixture::new("kill");
    let c = f
        .exec
        .start(&f.input(&["sh", "-c", "trap '' TERM; sleep 1000"]))
        .unwrap();
    let t = std::time::Instant::now();
    let code = f.exec.stop(&c, "", Duration::from_millis(500)).unwrap();
    assert_eq!(code, 137);
    assert!(t.elapsed() >= Duration::from_millis(500));
}

#[test]
fn memory_limit_ooms_with_137() {
    let f = Fixture::new("oom");
    let mut input = f.input(&["sh", "-c", "x=aaaaaaaa; while true; do x=$x$x; done"]);
    input.limits = Some(Limit {
        memory_bytes: 32 << 20,
        ..Default::default()
    });
    let c = f.exec.start(&input).unwrap();
    assert_eq!(
        f.exec.wait_timeout(&c, Duration::from_secs(60)),
        Some(137),
        "log: {}",
        f.log()
    );
}

#[test]
fn network_is_loopback_only() {
    let f = Fixture::new("net");
    let c = f.exec.start(&f.input(&["cat", "/proc/net/dev"])).unwrap();
    assert_eq!(f.exec.wait_timeout(&c, Duration::from_secs(20)), Some(0));
    f.wait_logs(&c);
    let log = f.log();
    let ifaces: Vec<&str> = log
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(ifaces, ["lo"], "log: {log}");
}

#[test]
fn bad_command_is_a_clear_error() {
    let f = Fixture::new("bad");
    let err = f.exec.start(&f.input(&["/nope"])).unwrap_err();
    assert!(err.contains("runc run") && err.contains("/nope"), "{err}");
}

#[test]
fn plain_sleep_stops_within_grace() {
    let f = Fixture::new("sleep");
    let c = f.exec.start(&f.input(&["sleep", "1000"])).unwrap();
    let t = std::time::Instant::now();
    // As pid 1 without a handler, sleep ignores SIGTERM (as in Docker), so
    // this ends with SIGKILL after the grace period: 137, or 143 if not.
    let code = f.exec.stop(&c, "SIGTERM", Duration::from_secs(1)).unwrap();
    assert!(code == 143 || code == 137, "exit code {code}");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(c.exit_code(), Some(code));
}

#[test]
fn user_and_env_and_cwd_reach_the_process() {
    let f = Fixture::new("env");
    let mut input = f.input(&["sh", "-c", "echo user=$(id -u 2>/dev/null || echo x) A=$A PWD=$(pwd) HOST=$(cat /proc/sys/kernel/hostname)"]);
    input.image_env = vec!["A=image".into()];
    input.spec.env = vec!["A=spec".into()];
    input.spec.dir = "/tmp".into();
    input.spec.user = "1000:1000".into();
    let c = f.exec.start(&input).unwrap();
    assert_eq!(f.exec.wait_timeout(&c, Duration::from_secs(20)), Some(0));
    f.wait_logs(&c);
    let log = f.log();
    assert!(
        log.contains("user=1000 A=spec PWD=/tmp HOST=box"),
        "log: {log}"
    );
}

#[test]
fn extra_mounts_are_read_only_files_in_the_container() {
    let f = Fixture::new("extra");
    let secret = f.dir.join("secret-0");
    std::fs::write(&secret, "s3cret").unwrap();
    let mut input = f.input(&["sh", "-c", "test \"$(cat /run/secrets/db_pw)\" = s3cret && ! echo x > /run/secrets/db_pw"]);
    input.extra_mounts = vec![ExtraMount { source: secret, destination: "/run/secrets/db_pw".into(), read_only: true, noexec: true }];
    let c = f.exec.start(&input).unwrap();
    assert_eq!(f.exec.wait_timeout(&c, Duration::from_secs(20)), Some(0), "log: {}", f.log());
    assert_eq!(std::fs::read_to_string(f.dir.join("secret-0")).unwrap(), "s3cret", "the container could not write it");
}
