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
    let runc_ok = std::process::Command::new("runc").arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    assert!(runc_ok, "runc is missing: apt-get install -y runc busybox-static");
    let bb = std::fs::read("/bin/busybox").expect("/bin/busybox is missing: apt-get install -y runc busybox-static");
    // A static binary has no PT_INTERP (3) program header (ELF64 little-endian).
    let u16_at = |o: usize| u16::from_le_bytes([bb[o], bb[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(bb[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    let dynamic = (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes(bb[o..o + 4].try_into().unwrap()) == 3
    });
    assert!(!dynamic, "/bin/busybox is not static: apt-get install -y busybox-static");
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
            volumes_dir: dir.join("volumes"),
            shim: None,
        })
        .unwrap();
        Fixture { dir, exec, id: format!("t-{tag}"), cgroup_parent }
    }

    fn input(&self, cmd: &[&str]) -> ContainerInput {
        let spec = ContainerSpec { command: cmd.iter().map(|s| s.to_string()).collect(), ..Default::default() };
        ContainerInput { id: self.id.clone(), spec, rootfs: self.dir.join("rootfs"), hostname: "box".into(), ..Default::default() }
    }

    /// The container's output as text (the log file's records joined),
    /// once the capture has written all of it.
    fn log(&self) -> String {
        let raw = std::fs::read(self.exec.log_path(&self.id)).unwrap_or_default();
        raw.split(|&b| b == b'\n').filter_map(crate::logs::format::decode).map(|r| r.log).collect()
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
    f.wait_logs(&c);
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
    let c = f.exec.start(&f.input(&["sh", "-c", "trap 'exit 143' TERM; sleep 1000 & wait"])).unwrap();
    assert_eq!(f.exec.runc().state(&c.id).unwrap(), "running");
    let t = std::time::Instant::now();
    let code = f.exec.stop(&c, "SIGTERM", Duration::from_secs(10)).unwrap();
    assert_eq!(code, 143);
    assert!(t.elapsed() < Duration::from_secs(9), "took {:?}", t.elapsed());
}

#[test]
fn ignored_sigterm_gets_sigkill_after_grace() {
    let f = Fixture::new("kill");
    let c = f.exec.start(&f.input(&["sh", "-c", "trap '' TERM; sleep 1000"])).unwrap();
    let t = std::time::Instant::now();
    let code = f.exec.stop(&c, "", Duration::from_millis(500)).unwrap();
    assert_eq!(code, 137);
    assert!(t.elapsed() >= Duration::from_millis(500));
}

#[test]
fn memory_limit_ooms_with_137() {
    let f = Fixture::new("oom");
    let mut input = f.input(&["sh", "-c", "x=aaaaaaaa; while true; do x=$x$x; done"]);
    input.limits = Some(Limit { memory_bytes: 32 << 20, ..Default::default() });
    let c = f.exec.start(&input).unwrap();
    assert_eq!(f.exec.wait_timeout(&c, Duration::from_secs(60)), Some(137), "log: {}", f.log());
}

#[test]
fn network_is_loopback_only() {
    let f = Fixture::new("net");
    let c = f.exec.start(&f.input(&["cat", "/proc/net/dev"])).unwrap();
    assert_eq!(f.exec.wait_timeout(&c, Duration::from_secs(20)), Some(0));
    f.wait_logs(&c);
    let log = f.log();
    let ifaces: Vec<&str> = log.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).collect();
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
    assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
    assert_eq!(c.exit_code(), Some(code));
}

#[test]
fn user_and_env_and_cwd_reach_the_process() {
    let f = Fixture::new("env");
    let mut input =
        f.input(&["sh", "-c", "echo user=$(id -u 2>/dev/null || echo x) A=$A PWD=$(pwd) HOST=$(cat /proc/sys/kernel/hostname)"]);
    input.image_env = vec!["A=image".into()];
    input.spec.env = vec!["A=spec".into()];
    input.spec.dir = "/tmp".into();
    input.spec.user = "1000:1000".into();
    let c = f.exec.start(&input).unwrap();
    assert_eq!(f.exec.wait_timeout(&c, Duration::from_secs(20)), Some(0));
    f.wait_logs(&c);
    let log = f.log();
    assert!(log.contains("user=1000 A=spec PWD=/tmp HOST=box"), "log: {log}");
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

// ---------------------------------------------------------------- health

use crate::health::{self, HealthMonitor, HealthSettings, HealthStatus};

fn probe_settings(cmd: &[&str], retries: u32) -> HealthSettings {
    HealthSettings {
        command: cmd.iter().map(|s| s.to_string()).collect(),
        interval: Duration::from_millis(100),
        timeout: Duration::from_secs(10),
        start_period: Duration::ZERO,
        start_interval: Duration::from_millis(100),
        retries,
    }
}

#[test]
fn probes_run_inside_the_container() {
    let f = Fixture::new("probe");
    let mut input = f.input(&["sleep", "1000"]);
    input.spec.env = vec!["PROBE_VAR=from-spec".into()];
    let c = f.exec.start(&input).unwrap();
    let run = |cmd: &[&str], timeout: Duration| {
        let cmd: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        health::probe::run(f.exec.runc(), &c.id, &c.bundle, &cmd, timeout)
    };
    let ok = run(&["sh", "-c", "echo $PROBE_VAR $(cat /proc/sys/kernel/hostname)"], Duration::from_secs(20));
    assert_eq!((ok.exit_code, ok.output.as_str()), (0, "from-spec box\n"));
    let failed = run(&["sh", "-c", "echo nope >&2; exit 3"], Duration::from_secs(20));
    assert_eq!((failed.exit_code, failed.output.as_str()), (3, "nope\n"));
    // Past the timeout the probe is killed and the result says so.
    let slow = run(&["sh", "-c", "echo started; exec sleep 1000"], Duration::from_millis(700));
    assert_eq!(slow.exit_code, -1);
    assert_eq!(slow.output, "Health check exceeded timeout (700ms): started\n");
    let missing = run(&["/nope"], Duration::from_secs(20));
    assert_ne!(missing.exit_code, 0);
    f.exec.stop(&c, "SIGKILL", Duration::from_secs(1)).unwrap();
}

/// Our zombie children named as runc names its own processes.
fn runc_zombies() -> std::collections::BTreeSet<i32> {
    let mut out = std::collections::BTreeSet::new();
    for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        for pid in std::fs::read_to_string(t.path().join("children")).unwrap_or_default().split_whitespace() {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.contains("(runc:[") && stat.split(") ").nth(1).is_some_and(|r| r.starts_with('Z')) {
                out.insert(pid.parse().unwrap());
            }
        }
    }
    out
}

/// Whatever runc processes probes leave to the subreaper are reaped (in a
/// lab's daemons every `runc exec` left its `runc:[1:CHILD]`, thousands an
/// hour with a health check; this test process does not get them, so that
/// half only guards). And a process that a dead `runc exec` left inside
/// the container, once killed with it, is reaped: until it is, the
/// container's init cannot finish exiting and the stop hangs (this half
/// fails without the reaper).
#[test]
fn probes_leave_no_zombies_and_a_container_with_an_orphaned_exec_stops() {
    let f = Fixture::new("orphans");
    let c = f.exec.start(&f.input(&["sleep", "1000"])).unwrap();
    for _ in 0..5 {
        let r = health::probe::run(f.exec.runc(), &c.id, &c.bundle, &["echo".to_string()], Duration::from_secs(20));
        assert_eq!(r.exit_code, 0, "{r:?}");
    }
    let left = runc_zombies();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !runc_zombies().is_disjoint(&left) {
        assert!(std::time::Instant::now() < deadline, "runc's processes were never reaped: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A `runc exec` killed while its process runs: the process is ours now.
    let pid_file = f.dir.join("exec.pid");
    let mut exec = std::process::Command::new(&f.exec.runc().bin)
        .arg("--root")
        .arg(&f.exec.runc().root)
        .args(["exec", "--pid-file"])
        .arg(&pid_file)
        .args([&c.id, "sleep", "1000"])
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&pid_file).map(|s| s.trim().is_empty()).unwrap_or(true) {
        assert!(std::time::Instant::now() < deadline, "runc exec never wrote its pid file");
        std::thread::sleep(Duration::from_millis(20));
    }
    exec.kill().unwrap();
    exec.wait().unwrap();
    assert_eq!(f.exec.stop(&c, "SIGKILL", Duration::from_secs(1)), Ok(137));
}

#[test]
fn monitor_turns_healthy_then_unhealthy() {
    let f = Fixture::new("monitor");
    let c = f.exec.start(&f.input(&["sleep", "1000"])).unwrap();
    let monitor = HealthMonitor::new(f.exec.runc().clone());
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    monitor.watch(&c.id, c.bundle.clone(), probe_settings(&["sh", "-c", "test -f /tmp/ok"], 2), move |s| {
        let _ = tx.lock().unwrap().send(s);
    });
    let wait_change = || rx.recv_timeout(Duration::from_secs(30)).expect("a health status change");
    // Failing probes while starting: after 2 the container is unhealthy.
    assert_eq!(wait_change(), HealthStatus::Unhealthy);
    let snap = monitor.snapshot(&c.id).unwrap();
    assert!(snap.failing_streak >= 2 && snap.log.iter().all(|r| r.exit_code == 1), "{snap:?}");
    // The file appears (the fixture's rootfs is a plain directory).
    std::fs::write(f.dir.join("rootfs/tmp/ok"), "").unwrap();
    assert_eq!(wait_change(), HealthStatus::Healthy);
    assert_eq!(monitor.snapshot(&c.id).unwrap().failing_streak, 0);
    monitor.unwatch(&c.id);
    assert!(monitor.snapshot(&c.id).is_none());
    f.exec.stop(&c, "SIGKILL", Duration::from_secs(1)).unwrap();
}

// ---------------------------------------------------------------- mounts

use shoal_api::task::{Mount, TmpfsOptions, Ulimit, VolumeOptions};

fn mount(kind: &str, source: &str, target: &str) -> Mount {
    Mount { r#type: kind.into(), source: source.into(), target: target.into(), ..Default::default() }
}

#[test]
fn bind_volume_and_tmpfs_mounts_reach_the_container() {
    let f = Fixture::new("mounts");
    let host = f.dir.join("host");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in"), "from host").unwrap();
    std::fs::create_dir_all(f.dir.join("rootfs/seed")).unwrap();
    std::fs::write(f.dir.join("rootfs/seed/file"), "from image").unwrap();
    let mut ro = mount("bind", host.to_str().unwrap(), "/ro");
    ro.read_only = true;
    let mut tmp = mount("tmpfs", "", "/scratch");
    tmp.tmpfs_options = Some(TmpfsOptions { size_bytes: 1 << 20, mode: 0o700 });
    let mut input = f.input(&[
        "sh",
        "-c",
        "cat /seed/file; echo; echo written > /seed/new; cat /ro/in; echo; (echo x > /ro/x) 2>/dev/null && echo ro-writable || echo ro-refused; \
         echo w > /rw/out; while read dev mnt typ opts rest; do [ $mnt = /scratch ] && echo $typ $opts; done < /proc/mounts; true",
    ]);
    input.spec.mounts = vec![mount("volume", "data1", "/seed"), ro, mount("bind", host.to_str().unwrap(), "/rw"), tmp];
    let c = f.exec.start(&input).unwrap();
    assert_eq!(f.exec.wait_timeout(&c, Duration::from_secs(20)), Some(0), "log: {}", f.log());
    f.wait_logs(&c);
    let log = f.log();
    assert!(log.contains("from image\n"), "{log}");
    assert!(log.contains("from host\n"), "{log}");
    assert!(log.contains("ro-refused"), "{log}");
    assert!(log.contains("tmpfs rw,nosuid,nodev,noexec") && log.contains("size=1024k") && log.contains("mode=700"), "{log}");
    assert_eq!(std::fs::read_to_string(host.join("out")).unwrap(), "w\n");
    // The new named volume was filled from the image's /seed.
    let data = f.exec.volumes().data_dir("data1");
    assert_eq!(std::fs::read_to_string(data.join("file")).unwrap(), "from image");
    assert_eq!(std::fs::read_to_string(data.join("new")).unwrap(), "written\n");
    f.exec.remove(&c).unwrap();
    // The named volume outlives the container.
    assert!(data.join("new").exists());
}

#[test]
fn new_volumes_are_filled_from_the_image_unless_nocopy() {
    let f = Fixture::new("copyup");
    std::fs::create_dir_all(f.dir.join("rootfs/seed")).unwrap();
    std::fs::write(f.dir.join("rootfs/seed/file"), "from image").unwrap();
    let mut nocopy = mount("volume", "empty1", "/other");
    nocopy.target = "/seed2".into();
    std::fs::create_dir_all(f.dir.join("rootfs/seed2")).unwrap();
    std::fs::write(f.dir.join("rootfs/seed2/file"), "hidden").unwrap();
    nocopy.volume_options = Some(VolumeOptions { no_copy: true, ..Default::default() });
    let mut input = f.input(&["sh", "-c", "cat /seed/file; echo; ls /seed2; echo end"]);
    input.spec.mounts = vec![mount("volume", "", "/seed"), nocopy];
    let c = f.exec.start(&input).unwrap();
    assert_eq!(f.exec.wait_timeout(&c, Duration::from_secs(20)), Some(0));
    f.wait_logs(&c);
    assert_eq!(f.log(), "from image\nend\n");
    // The anonymous volume goes with the container; the named one stays.
    let anon = crate::volumes::anonymous_name(&c.id, "/seed");
    assert!(f.exec.volumes().get(&anon).is_some());
    f.exec.remove(&c).unwrap();
    assert!(f.exec.volumes().get(&anon).is_none());
    assert!(f.exec.volumes().get("empty1").is_some());
}

#[test]
fn a_planted_symlink_in_a_volume_keeps_a_subpath_mount_inside_it() {
    let f = Fixture::new("subpath");
    let data = f.exec.volumes().ensure("shared", "", &Default::default(), &Default::default(), false).unwrap();
    std::fs::write(data.join("volume-marker"), "in volume").unwrap();
    // A container using the volume planted `x -> /` (and one with `..`s).
    std::os::unix::fs::symlink("/", data.join("x")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../../etc", data.join("up")).unwrap();
    let mut via_root = mount("volume", "shared", "/mnt");
    via_root.volume_options = Some(VolumeOptions { subpath: "x".into(), no_copy: true, ..Default::default() });
    let mut via_up = mount("volume", "shared", "/up");
    via_up.volume_options = Some(VolumeOptions { subpath: "up".into(), no_copy: true, ..Default::default() });
    std::fs::create_dir_all(data.join("etc")).unwrap();
    std::fs::write(data.join("etc/volume-etc"), "").unwrap();
    let mut input = f.input(&["sh", "-c", "cat /mnt/volume-marker; echo; ls /up; test -e /mnt/etc/hostname && echo HOST-ROOT; true"]);
    input.spec.mounts = vec![via_root, via_up];
    let c = f.exec.start(&input).unwrap();
    assert_eq!(f.exec.wait_timeout(&c, Duration::from_secs(20)), Some(0), "log: {}", f.log());
    f.wait_logs(&c);
    let log = f.log();
    assert_eq!(log, "in volume\nvolume-etc\n", "the host's / or /etc must not be what is mounted");
    // The staged mounts are gone once runc has started the container.
    assert!(!mounts::staging_dir(&c.bundle).exists());
    f.exec.remove(&c).unwrap();
    assert_eq!(std::fs::read_to_string(data.join("volume-marker")).unwrap(), "in volume");
}

#[test]
fn a_missing_bind_source_is_refused_before_anything_runs() {
    let f = Fixture::new("nobind");
    let mut input = f.input(&["true"]);
    input.spec.mounts = vec![mount("volume", "", "/v"), mount("bind", "/nonexistent-shoal-bind", "/x")];
    let err = f.exec.start(&input).unwrap_err();
    assert_eq!(err, "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent-shoal-bind");
    assert!(f.exec.volumes().list().is_empty());
}

#[test]
fn etc_files_ulimits_and_read_only_root() {
    let f = Fixture::new("etc");
    let mut input = f.input(&[
        "sh",
        "-c",
        "cat /etc/hostname /etc/hosts; ulimit -n; ulimit -Hn; (echo x > /etc/x) 2>/dev/null && echo root-writable || echo root-read-only",
    ]);
    input.spec.hosts = vec!["10.1.2.3 db".into()];
    input.spec.ulimits = vec![Ulimit { name: "nofile".into(), soft: 321, hard: 654 }];
    input.spec.read_only = true;
    let c = f.exec.start(&input).unwrap();
    assert_eq!(f.exec.wait_timeout(&c, Duration::from_secs(20)), Some(0), "log: {}", f.log());
    f.wait_logs(&c);
    let log = f.log();
    assert!(log.starts_with("box\n127.0.0.1\tlocalhost\n"), "{log}");
    assert!(log.contains("10.1.2.3\tdb\n321\n654\nroot-read-only\n"), "{log}");
}

#[test]
fn init_runs_as_pid_one() {
    assert!(process_opts::find_init().is_some(), "no static init on this host: apt-get install tini");
    let f = Fixture::new("init");
    let mut input = f.input(&["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo pid=$$"]);
    input.spec.init = Some(true);
    let c = f.exec.start(&input).unwrap();
    assert_eq!(f.exec.wait_timeout(&c, Duration::from_secs(20)), Some(0), "log: {}", f.log());
    f.wait_logs(&c);
    let log = f.log();
    assert!(log.starts_with("/sbin/docker-init -- sh -c"), "{log}");
    assert!(!log.contains("pid=1\n"), "{log}");
}

#[test]
fn image_volumes_become_anonymous_volumes_unless_a_mount_is_there() {
    let cfg: crate::image::manifest::ContainerConfig = serde_json::from_str(r#"{"Volumes":{"/data":{},"/logs/":{}}}"#).unwrap();
    let mut input = ContainerInput::default();
    input.spec.mounts.push(shoal_api::task::Mount { r#type: "tmpfs".into(), target: "/logs".into(), ..Default::default() });
    let input = input.with_image_config(Some(&cfg));
    let targets: Vec<(&str, &str)> = input.spec.mounts.iter().map(|m| (m.r#type.as_str(), m.target.as_str())).collect();
    assert_eq!(targets, vec![("tmpfs", "/logs"), ("volume", "/data")]);
    assert!(input.spec.mounts[1].source.is_empty(), "anonymous");
}

#[test]
fn supplementary_groups_reach_the_process() {
    let f = Fixture::new("groups");
    let mut input = f.input(&["sh", "-c", "while read k v; do [ \"$k\" = Groups: ] && echo \"groups=$v\"; done < /proc/self/status; true"]);
    input.spec.user = "1000:1000".into();
    input.spec.groups = vec!["44".into(), "45".into()];
    let c = f.exec.start(&input).unwrap();
    assert_eq!(f.exec.wait_timeout(&c, Duration::from_secs(20)), Some(0));
    f.wait_logs(&c);
    let log = f.log();
    assert!(log.contains("groups=44 45"), "log: {log}");
}

// ---------------------------------------------------------------- confinement

/// A static x86_64 program of a few bytes (busybox has no keyctl applet,
/// and the host's tools are dynamically linked): it makes one system call
/// with three integer arguments and exits with the call's errno, or 0 if
/// the call succeeded. Hand-assembled: an ELF header, one loadable program
/// header, then the code.
fn syscall_probe(nr: u32, a0: u32, a1: u32, a2: u32) -> Vec<u8> {
    if cfg!(not(target_arch = "x86_64")) {
        panic!("the syscall probe is x86_64 machine code; add one for this architecture");
    }
    let mut code = Vec::new();
    for (op, v) in [(0xb8u8, nr), (0xbf, a0), (0xbe, a1), (0xba, a2)] {
        // mov eax/edi/esi/edx, imm32
        code.push(op);
        code.extend_from_slice(&v.to_le_bytes());
    }
    code.extend_from_slice(&[
        0x0f, 0x05, // syscall
        0x31, 0xff, // xor edi, edi
        0x48, 0x85, 0xc0, // test rax, rax
        0x79, 0x05, // jns +5
        0x48, 0x89, 0xc7, // mov rdi, rax
        0xf7, 0xdf, // neg edi
        0xb8, 60, 0, 0, 0, // mov eax, 60 (exit)
        0x0f, 0x05, // syscall
    ]);
    let base: u64 = 0x40_0000;
    let (ehsize, phsize) = (64u64, 56u64);
    let total = ehsize + phsize + code.len() as u64;
    let mut elf = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&0x3eu16.to_le_bytes()); // EM_X86_64
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&(base + ehsize + phsize).to_le_bytes()); // entry
    elf.extend_from_slice(&ehsize.to_le_bytes()); // program headers
    elf.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    elf.extend_from_slice(&0u32.to_le_bytes());
    for v in [ehsize as u16, phsize as u16, 1, 64, 0, 0] {
        elf.extend_from_slice(&v.to_le_bytes());
    }
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // R+X
    for v in [0, base, base, total, total, 0x1000] {
        elf.extend_from_slice(&v.to_le_bytes());
    }
    assert_eq!(elf.len() as u64, ehsize + phsize);
    elf.extend_from_slice(&code);
    elf
}

/// keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0) on x86_64.
fn install_keyctl_probe(f: &Fixture) {
    use std::os::unix::fs::PermissionsExt;
    let path = f.dir.join("rootfs/bin/keyctl-probe");
    std::fs::write(&path, syscall_probe(250, 0, -3i32 as u32, 0)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Runs the confinement script under `privileges`; its output.
fn confinement_run(name: &str, privileges: Option<&str>) -> String {
    let f = Fixture::new(name);
    install_keyctl_probe(&f);
    for l in ["unshare", "tr"] {
        std::os::unix::fs::symlink("busybox", f.dir.join("rootfs/bin").join(l)).unwrap();
    }
    let mut input = f.input(&[
        "sh",
        "-c",
        "unshare -U true 2>/dev/null; echo unshare=$?; keyctl-probe; echo keyctl=$?; \
         while read l; do case $l in *:/) ;; *) echo cgroup-path=$l;; esac; done < /proc/self/cgroup; echo end",
    ]);
    input.spec.privileges = privileges.map(|p| serde_json::from_str(p).unwrap());
    let c = f.exec.start(&input).unwrap();
    assert_eq!(f.exec.wait_timeout(&c, Duration::from_secs(20)), Some(0), "log: {}", f.log());
    f.wait_logs(&c);
    f.log()
}

#[test]
fn the_default_seccomp_profile_blocks_user_namespaces_and_keyctl() {
    // Without seccomp these succeed for root in a container: that is what
    // the unconfined run below shows, so this fails if the profile goes.
    let log = confinement_run("seccomp-default", None);
    assert!(log.contains("unshare=1\n"), "unshare -U refused: {log}");
    assert!(log.contains("keyctl=1\n"), "keyctl fails with EPERM (1): {log}");
    // A private cgroup namespace: the container's cgroups are its root.
    assert!(!log.contains("cgroup-path="), "{log}");
    assert!(log.ends_with("end\n"), "{log}");
}

#[test]
fn seccomp_unconfined_and_custom_profiles_are_applied() {
    let log = confinement_run("seccomp-unconfined", Some(r#"{"Seccomp": {"Mode": "unconfined"}}"#));
    assert!(log.contains("unshare=0\n"), "{log}");
    let keyctl = log.lines().find_map(|l| l.strip_prefix("keyctl=")).unwrap();
    assert_ne!(keyctl, "1", "no EPERM from seccomp: {log}");

    // A custom profile: everything allowed but keyctl, which says EACCES.
    let profile =
        br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#;
    let privileges = format!(r#"{{"Seccomp": {{"Mode": "custom", "Profile": "{}"}}}}"#, shoal_api::base64::encode(profile));
    let log = confinement_run("seccomp-custom", Some(&privileges));
    assert!(log.contains("unshare=0\nkeyctl=13\n"), "{log}");
}
