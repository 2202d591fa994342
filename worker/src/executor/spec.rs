//! The OCI runtime spec (`config.json`) for one container, built with
//! Docker's defaults: mounts, capabilities, masked paths, namespaces (the
//! worker's network namespace for the task, or a new one with loopback
//! only; a private cgroup namespace), rlimits, cgroup limits, and the
//! confinement of `Privileges`: Docker's default seccomp profile unless
//! the service asks for `unconfined` or a custom one (`super::seccomp`),
//! AppArmor where the host has it (`super::apparmor`), no-new-privileges.
//!
//! Built on oci-spec's runtime types. Their builders start from the
//! crate's own `Default`s (youki's: a `sh` process, NOFILE 1024, three
//! capabilities in every set, empty annotations), so every field those
//! defaults fill is set or cleared here; `spec_golden` checks the result.
//! Capability sets are hash sets there: their order in `config.json`
//! varies from one run to the next, which runc does not mind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capabilities, Capability, LinuxBuilder, LinuxCapabilities, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder,
    LinuxMemoryBuilder, LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
    Mount, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};
use serde::de::value::StrDeserializer;
use serde::de::DeserializeOwned;
use shoal_api::task::SeccompChoice;

use super::ContainerInput;

/// Host facts the spec depends on, decided by the executor.
#[derive(Clone, Debug, Default)]
pub struct SpecOptions {
    /// Parent cgroup, one per node (`shoal-<node>`), so several shoald on
    /// one host never collide.
    pub cgroup_parent: String,
    /// The host has swap accounting (cgroup v1 `memory.memsw.*`): then a
    /// memory limit also caps swap at the same value (no swap use).
    pub swap_accounting: bool,
    /// RLIMIT_NOFILE (soft, hard) for the container. Docker's containers
    /// inherit dockerd's (systemd's `LimitNOFILE`, 1048576); we use that,
    /// capped by what this process may grant (see [`nofile_limit`]).
    /// (0, 0) means 1048576.
    pub nofile: (u64, u64),
    /// The kernel's (major, minor), for the seccomp rules that depend on
    /// it; (0, 0) means read it from this host.
    pub kernel: (u32, u32),
    /// The host has AppArmor and `shoal-default` is loaded (see
    /// `super::apparmor`); false everywhere else.
    pub apparmor: bool,
}

/// The NOFILE limit to give containers: 1048576, or our own hard limit if
/// lower (raising it needs CAP_SYS_RESOURCE, which we may not have).
pub fn nofile_limit() -> (u64, u64) {
    use nix::sys::resource::{getrlimit, Resource};
    let hard = getrlimit(Resource::RLIMIT_NOFILE).map(|(_, max)| max.min(1_048_576)).unwrap_or(1024);
    (hard, hard)
}

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The process arguments with Docker's rules: the spec's Command replaces
/// the image's Entrypoint (and then the image's Cmd is dropped); the spec's
/// Args replace the image's Cmd.
pub fn process_args(c: &ContainerInput) -> Result<Vec<String>, String> {
    let (entrypoint, cmd): (Vec<String>, Vec<String>) = if !c.spec.command.is_empty() {
        (c.spec.command.clone(), c.spec.args.clone())
    } else {
        let cmd = if !c.spec.args.is_empty() { c.spec.args.clone() } else { c.image_cmd.clone() };
        (c.image_entrypoint.clone(), cmd)
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err("no command specified".into());
    }
    Ok(args)
}

/// Image env, then the spec's env (a later `KEY=` replaces an earlier one),
/// with Docker's default PATH and HOSTNAME.
pub fn process_env(c: &ContainerInput) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut vals: BTreeMap<String, String> = BTreeMap::new();
    let mut put = |kv: &str, order: &mut Vec<String>| {
        let key = kv.split('=').next().unwrap_or("").to_string();
        if !vals.contains_key(&key) {
            order.push(key.clone());
        }
        vals.insert(key, kv.to_string());
    };
    put(&format!("PATH={DEFAULT_PATH}"), &mut order);
    if !c.hostname.is_empty() {
        put(&format!("HOSTNAME={}", c.hostname), &mut order);
    }
    // Docker's, for a container with a terminal (the image and the user
    // may set another).
    if c.spec.tty {
        put("TERM=xterm", &mut order);
    }
    for kv in c.image_env.iter().chain(c.spec.env.iter()) {
        put(kv, &mut order);
    }
    order.into_iter().map(|k| vals.remove(&k).unwrap()).collect()
}

/// A resolved user: uid, gid and additional gids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Resolve Docker's `user[:group]` (names or numbers) against the rootfs's
/// `/etc/passwd` and `/etc/group`. Empty means root.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<User, String> {
    if user.is_empty() {
        return Ok(User { uid: 0, gid: 0, additional_gids: vec![] });
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
    let groups = std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
    // name:x:uid:gid:...
    let pw_entry = passwd.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| f.len() >= 4 && (f[0] == u || f[2] == u));
    let (uid, default_gid, name) = match (u.parse::<u32>(), &pw_entry) {
        (Ok(n), Some(f)) => (n, f[3].parse().unwrap_or(0), Some(f[0].to_string())),
        (Ok(n), None) => (n, 0, None),
        (Err(_), Some(f)) => {
            (f[2].parse().map_err(|_| format!("bad uid in /etc/passwd for user {u}"))?, f[3].parse().unwrap_or(0), Some(f[0].to_string()))
        }
        (Err(_), None) => return Err(format!("unable to find user {u}: no matching entries in passwd file")),
    };
    let group_lines: Vec<Vec<&str>> = groups.lines().map(|l| l.split(':').collect()).filter(|f: &Vec<&str>| f.len() >= 3).collect();
    let gid = match g {
        None => default_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group_lines
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| format!("unable to find group {g}: no matching entries in group file"))?,
        },
    };
    let mut additional_gids = Vec::new();
    if let Some(name) = name {
        for f in &group_lines {
            if f.len() >= 4 && f[3].split(',').any(|m| m == name) {
                if let Ok(n) = f[2].parse::<u32>() {
                    if n != gid && !additional_gids.contains(&n) {
                        additional_gids.push(n);
                    }
                }
            }
        }
    }
    Ok(User { uid, gid, additional_gids })
}

/// The capability list after the spec's add/drop (Docker's names, with or
/// without the `CAP_` prefix; `ALL` is understood).
fn capabilities(c: &ContainerInput) -> Vec<String> {
    let norm = |s: &str| {
        let s = s.to_ascii_uppercase();
        if s == "ALL" || s.starts_with("CAP_") {
            s
        } else {
            format!("CAP_{s}")
        }
    };
    let drop: Vec<String> = c.spec.capability_drop.iter().map(|s| norm(s)).collect();
    let mut caps: Vec<String> = if drop.iter().any(|d| d == "ALL") {
        vec![]
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).filter(|s| !drop.contains(s)).collect()
    };
    for a in c.spec.capability_add.iter().map(|s| norm(s)) {
        if a != "ALL" && !caps.contains(&a) {
            caps.push(a);
        }
    }
    caps
}

/// `--group`: names (from the rootfs's `/etc/group`) or numbers.
pub fn supplementary_groups(rootfs: &Path, groups: &[String]) -> Result<Vec<u32>, String> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let file = std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
    groups
        .iter()
        .map(|g| {
            g.parse::<u32>().or_else(|_| {
                file.lines()
                    .map(|l| l.split(':').collect::<Vec<_>>())
                    .find(|f| f.len() >= 3 && f[0] == g)
                    .and_then(|f| f[2].parse().ok())
                    .ok_or_else(|| format!("unable to find group {g}: no matching entries in group file"))
            })
        })
        .collect()
}

/// Docker's mounts of every container: (destination, type, source, options).
const DEFAULT_MOUNTS: &[(&str, &str, &str, &[&str])] = &[
    ("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
    ("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"]),
    ("/dev/pts", "devpts", "devpts", &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
    ("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"]),
    ("/sys/fs/cgroup", "cgroup", "cgroup", &["ro", "nosuid", "noexec", "nodev"]),
    ("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
    ("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]),
];

/// One entry of the spec's `mounts`.
pub fn mount<S: Into<String>>(
    destination: impl Into<PathBuf>,
    kind: &str,
    source: impl Into<PathBuf>,
    options: impl IntoIterator<Item = S>,
) -> Mount {
    // Through the setters: `MountBuilder` can only fail on id mappings,
    // which these mounts never have.
    let mut m = Mount::default();
    m.set_destination(destination.into());
    m.set_typ(Some(kind.to_string()));
    m.set_source(Some(source.into()));
    m.set_options(Some(options.into_iter().map(Into::into).collect()));
    m
}

/// An oci-spec enum from the spec's own name for it (`CAP_CHOWN`,
/// `RLIMIT_NOFILE`, `SCMP_ACT_ALLOW`...), through the same serde mapping
/// that writes it back into `config.json`.
pub fn from_spec_name<T: DeserializeOwned>(name: &str) -> Result<T, String> {
    T::deserialize(StrDeserializer::<serde::de::value::Error>::new(name)).map_err(|e| e.to_string())
}

fn oci_err(e: oci_spec::OciSpecError) -> String {
    format!("building the OCI spec: {e}")
}

/// The whole `config.json`.
pub fn oci_spec(c: &ContainerInput, opts: &SpecOptions) -> Result<Spec, String> {
    let args = process_args(c)?;
    let mut user = resolve_user(&c.rootfs, if c.spec.user.is_empty() { &c.image_user } else { &c.spec.user })?;
    for gid in supplementary_groups(&c.rootfs, &c.spec.groups)? {
        if gid != user.gid && !user.additional_gids.contains(&gid) {
            user.additional_gids.push(gid);
        }
    }
    let cwd = if !c.spec.dir.is_empty() {
        c.spec.dir.clone()
    } else if !c.image_working_dir.is_empty() {
        c.image_working_dir.clone()
    } else {
        "/".to_string()
    };
    if !cwd.starts_with('/') {
        return Err(format!("the working directory '{cwd}' is invalid, it needs to be an absolute path"));
    }
    let caps = capabilities(c);
    let privileges = c.spec.privileges.clone().unwrap_or_default();
    privileges.validate()?;
    let seccomp_profile = match privileges.seccomp_choice()? {
        SeccompChoice::Default => Some(super::seccomp::default_profile()),
        SeccompChoice::Unconfined => None,
        SeccompChoice::Custom(p) => Some(p),
    };
    let kernel = if opts.kernel == (0, 0) { super::seccomp::kernel_version() } else { opts.kernel };
    let seccomp = seccomp_profile
        .map(|p| super::seccomp::to_oci(&p, &super::seccomp::Target { caps: &caps, arch: super::seccomp::native_arch(), kernel }))
        .transpose()?;
    let apparmor_disabled = privileges.app_armor.as_ref().is_some_and(|a| a.mode == "disabled");
    let apparmor_profile = super::apparmor::profile_for(opts.apparmor, apparmor_disabled);
    let nofile = if opts.nofile == (0, 0) { (1_048_576, 1_048_576) } else { opts.nofile };

    let mounts = DEFAULT_MOUNTS
        .iter()
        .map(|(dest, kind, source, options)| mount(*dest, kind, *source, options.iter().copied()))
        .chain(c.extra_mounts.iter().map(super::ExtraMount::to_oci))
        .collect::<Vec<_>>();

    let user = UserBuilder::default()
        .uid(user.uid)
        .gid(user.gid)
        .additional_gids(user.additional_gids)
        .umask(0o022u32)
        .build()
        .map_err(oci_err)?;
    let nofile = PosixRlimitBuilder::default().typ(PosixRlimitType::RlimitNofile).hard(nofile.1).soft(nofile.0).build().map_err(oci_err)?;
    let mut process = ProcessBuilder::default()
        .terminal(c.spec.tty)
        .user(user)
        .args(args)
        .env(process_env(c))
        .cwd(cwd)
        .capabilities(capability_sets(&caps)?)
        .rlimits(vec![nofile])
        .no_new_privileges(privileges.no_new_privileges);
    if let Some(p) = apparmor_profile {
        process = process.apparmor_profile(p);
    }

    let mut linux = LinuxBuilder::default()
        .cgroups_path(format!("/{}/{}", opts.cgroup_parent.trim_matches('/'), c.id))
        .resources(resources(c, opts)?)
        .namespaces(namespaces(c)?)
        .masked_paths(MASKED_PATHS.iter().map(|p| p.to_string()).collect::<Vec<_>>())
        .readonly_paths(READONLY_PATHS.iter().map(|p| p.to_string()).collect::<Vec<_>>());
    if let Some(s) = seccomp {
        linux = linux.seccomp(s);
    }

    let mut spec = SpecBuilder::default()
        .version("1.0.2")
        .process(process.build().map_err(oci_err)?)
        .root(RootBuilder::default().path(c.rootfs.clone()).readonly(c.spec.read_only).build().map_err(oci_err)?)
        .hostname(c.hostname.clone())
        .mounts(mounts)
        .linux(linux.build().map_err(oci_err)?)
        .build()
        .map_err(oci_err)?;
    // The builder starts from oci-spec's `Spec::default()`, which has an
    // empty annotations map; runc reads absent and empty alike, and we
    // have none to give.
    spec.set_annotations(None);
    Ok(spec)
}

/// The same set as bounding, effective and permitted capabilities.
/// An unknown name is refused with Docker's words.
fn capability_sets(caps: &[String]) -> Result<LinuxCapabilities, String> {
    let set = caps
        .iter()
        .map(|name| from_spec_name::<Capability>(name).map_err(|_| format!("unknown capability: {name:?}")))
        .collect::<Result<Capabilities, String>>()?;
    let mut sets =
        LinuxCapabilitiesBuilder::default().bounding(set.clone()).effective(set.clone()).permitted(set).build().map_err(oci_err)?;
    // The builder starts from oci-spec's defaults, which give these two
    // sets three capabilities; Docker leaves them empty.
    sets.set_inheritable(None);
    sets.set_ambient(None);
    Ok(sets)
}

/// Devices denied (runc then allows its default ones), and the task's limits.
fn resources(c: &ContainerInput, opts: &SpecOptions) -> Result<LinuxResources, String> {
    let deny_all = LinuxDeviceCgroupBuilder::default().allow(false).access("rwm").build().map_err(oci_err)?;
    let mut resources = LinuxResourcesBuilder::default().devices(vec![deny_all]);
    if let Some(l) = c.limits.as_ref() {
        if l.memory_bytes > 0 {
            let mut memory = LinuxMemoryBuilder::default().limit(l.memory_bytes);
            if opts.swap_accounting {
                memory = memory.swap(l.memory_bytes);
            }
            resources = resources.memory(memory.build().map_err(oci_err)?);
        }
        if l.nano_cpus > 0 {
            let period: i64 = 100_000;
            let cpu = LinuxCpuBuilder::default().quota(l.nano_cpus * period / 1_000_000_000).period(period as u64);
            resources = resources.cpu(cpu.build().map_err(oci_err)?);
        }
        if l.pids > 0 {
            resources = resources.pids(LinuxPidsBuilder::default().limit(l.pids).build().map_err(oci_err)?);
        }
    }
    resources.build().map_err(oci_err)
}

/// New pid, ipc, uts, mount and cgroup namespaces. The network one is the
/// worker's for the task when it made one (runc joins it by path),
/// otherwise a new one with loopback only.
fn namespaces(c: &ContainerInput) -> Result<Vec<LinuxNamespace>, String> {
    use LinuxNamespaceType as Ns;
    [Ns::Pid, Ns::Ipc, Ns::Uts, Ns::Mount, Ns::Network, Ns::Cgroup]
        .into_iter()
        .map(|kind| {
            let ns = LinuxNamespaceBuilder::default().typ(kind);
            match (&c.netns_path, kind) {
                (Some(path), Ns::Network) => ns.path(path.clone()),
                _ => ns,
            }
            .build()
            .map_err(oci_err)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use shoal_api::task::{ContainerSpec, Limit};

    /// The spec as runc reads it.
    fn spec_json(c: &ContainerInput, opts: &SpecOptions) -> Result<Value, String> {
        oci_spec(c, opts).map(|s| serde_json::to_value(s).unwrap())
    }

    fn input() -> ContainerInput {
        ContainerInput {
            id: "c1".into(),
            image_env: vec!["PATH=/img/bin".into(), "A=1".into()],
            image_cmd: vec!["cmd1".into()],
            image_entrypoint: vec!["ep".into()],
            image_working_dir: "/work".into(),
            image_user: String::new(),
            spec: ContainerSpec::default(),
            limits: None,
            rootfs: "/nonexistent".into(),
            hostname: "h1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn args_follow_docker_rules() {
        let mut c = input();
        assert_eq!(process_args(&c).unwrap(), ["ep", "cmd1"]);
        c.spec.args = vec!["a".into()];
        assert_eq!(process_args(&c).unwrap(), ["ep", "a"]);
        c.spec.command = vec!["x".into()];
        c.spec.args = vec![];
        assert_eq!(process_args(&c).unwrap(), ["x"]);
        c.spec.args = vec!["y".into()];
        assert_eq!(process_args(&c).unwrap(), ["x", "y"]);
        let mut e = input();
        e.image_cmd.clear();
        e.image_entrypoint.clear();
        assert!(process_args(&e).is_err());
    }

    #[test]
    fn env_merges_image_then_spec() {
        let mut c = input();
        c.spec.env = vec!["A=2".into(), "B=3".into()];
        assert_eq!(process_env(&c), ["PATH=/img/bin", "HOSTNAME=h1", "A=2", "B=3"]);
        c.image_env.clear();
        assert!(process_env(&c)[0].starts_with("PATH=/usr/local/sbin"));
    }

    #[test]
    fn users_resolve_from_rootfs() {
        let dir = std::env::temp_dir().join(format!("shoal-spec-user-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(dir.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\nweb:x:33:44::/:/bin/sh\n").unwrap();
        std::fs::write(dir.join("etc/group"), "root:x:0:\nstaff:x:50:web\nwww:x:44:\n").unwrap();
        assert_eq!(supplementary_groups(&dir, &["staff".into(), "44".into()]).unwrap(), vec![50, 44]);
        assert_eq!(
            supplementary_groups(&dir, &["wheel-less".into()]).unwrap_err(),
            "unable to find group wheel-less: no matching entries in group file"
        );
        assert_eq!(resolve_user(&dir, "").unwrap().uid, 0);
        assert_eq!(resolve_user(&dir, "web").unwrap(), User { uid: 33, gid: 44, additional_gids: vec![50] });
        assert_eq!(resolve_user(&dir, "web:staff").unwrap().gid, 50);
        assert_eq!(resolve_user(&dir, "1000:7").unwrap(), User { uid: 1000, gid: 7, additional_gids: vec![] });
        assert!(resolve_user(&dir, "nobody").unwrap_err().contains("unable to find user nobody"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn spec_has_limits_namespaces_and_defaults() {
        let mut c = input();
        c.limits = Some(Limit { nano_cpus: 1_500_000_000, memory_bytes: 32 << 20, pids: 100 });
        c.spec.read_only = true;
        c.spec.capability_drop = vec!["net_raw".into()];
        c.spec.capability_add = vec!["SYS_ADMIN".into()];
        let s = spec_json(
            &c,
            &SpecOptions { cgroup_parent: "shoal-n1".into(), swap_accounting: true, nofile: (1024, 4096), ..Default::default() },
        )
        .unwrap();
        assert_eq!(s["linux"]["cgroupsPath"], "/shoal-n1/c1");
        assert_eq!(s["linux"]["resources"]["memory"]["limit"], 32 << 20);
        assert_eq!(s["linux"]["resources"]["memory"]["swap"], 32 << 20);
        assert_eq!(s["linux"]["resources"]["cpu"]["quota"], 150_000);
        assert_eq!(s["linux"]["resources"]["cpu"]["period"], 100_000);
        assert_eq!(s["linux"]["resources"]["pids"]["limit"], 100);
        assert_eq!(s["root"]["readonly"], true);
        assert_eq!(s["root"]["path"], "/nonexistent");
        assert_eq!(s["hostname"], "h1");
        assert_eq!(s["process"]["cwd"], "/work");
        let ns: Vec<&str> = s["linux"]["namespaces"].as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap()).collect();
        assert_eq!(ns, ["pid", "ipc", "uts", "mount", "network", "cgroup"]);
        let caps = s["process"]["capabilities"]["bounding"].as_array().unwrap();
        assert!(!caps.contains(&json!("CAP_NET_RAW")));
        assert!(caps.contains(&json!("CAP_SYS_ADMIN")));
        assert!(caps.contains(&json!("CAP_CHOWN")));
        assert_eq!(s["process"]["rlimits"][0]["type"], "RLIMIT_NOFILE");
        assert_eq!(s["process"]["rlimits"][0]["soft"], 1024);
        assert_eq!(s["process"]["rlimits"][0]["hard"], 4096);
        assert!(s["linux"]["maskedPaths"].as_array().unwrap().contains(&json!("/proc/kcore")));
        let dests: Vec<&str> = s["mounts"].as_array().unwrap().iter().map(|m| m["destination"].as_str().unwrap()).collect();
        for d in ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"] {
            assert!(dests.contains(&d), "{d}");
        }
        c.spec.dir = "rel".into();
        assert!(spec_json(&c, &SpecOptions::default()).is_err());
    }

    #[test]
    fn none_of_oci_specs_own_defaults_leak_in() {
        // The builders start from oci-spec's `Default`s (youki's choices):
        // none of those may reach runc.
        let s = oci_spec(&input(), &SpecOptions::default()).unwrap();
        assert_eq!(s.annotations(), &None);
        let caps = s.process().as_ref().unwrap().capabilities().as_ref().unwrap();
        assert_eq!((caps.inheritable(), caps.ambient()), (&None, &None));
        assert_eq!(caps.bounding().as_ref().unwrap().len(), DEFAULT_CAPS.len());
        let json = spec_json(&input(), &SpecOptions::default()).unwrap();
        assert_eq!(json["ociVersion"], "1.0.2");
        assert!(json["linux"].get("devices").is_none() && json["linux"].get("sysctl").is_none());
    }

    #[test]
    fn unknown_capabilities_are_refused_with_dockers_words() {
        let mut c = input();
        c.spec.capability_add = vec!["CAP_NOT_A_THING".into()];
        assert_eq!(oci_spec(&c, &SpecOptions::default()).unwrap_err(), r#"unknown capability: "CAP_NOT_A_THING""#);
        // Dropping one that does not exist changes nothing, as before.
        c.spec.capability_add.clear();
        c.spec.capability_drop = vec!["NOT_A_THING".into()];
        assert!(oci_spec(&c, &SpecOptions::default()).is_ok());
    }

    #[test]
    fn extra_mounts_come_last_read_only() {
        let mut c = input();
        c.extra_mounts = vec![super::super::ExtraMount {
            source: "/run/shoal/secrets/t1/secret-0".into(),
            destination: "/run/secrets/db_pw".into(),
            read_only: true,
            noexec: true,
        }];
        let s = spec_json(&c, &SpecOptions::default()).unwrap();
        let last = s["mounts"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["destination"], "/run/secrets/db_pw");
        assert_eq!(last["type"], "bind");
        assert_eq!(last["source"], "/run/shoal/secrets/t1/secret-0");
        assert!(last["options"].as_array().unwrap().contains(&json!("ro")));
        assert!(last["options"].as_array().unwrap().contains(&json!("noexec")));
    }

    fn privileges(json: &str) -> Option<shoal_api::task::Privileges> {
        Some(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn confinement_defaults_to_dockers_seccomp_profile_without_apparmor_here() {
        let c = input();
        let s = spec_json(&c, &SpecOptions { kernel: (6, 1), ..Default::default() }).unwrap();
        let seccomp = &s["linux"]["seccomp"];
        assert_eq!(seccomp["defaultAction"], "SCMP_ACT_ERRNO");
        let allowed: Vec<&str> = seccomp["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == "SCMP_ACT_ALLOW")
            .flat_map(|r| r["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()))
            .collect();
        assert!(allowed.contains(&"read") && allowed.contains(&"clone"));
        for n in ["keyctl", "unshare", "bpf", "userfaultfd", "perf_event_open", "mount"] {
            assert!(!allowed.contains(&n), "{n}");
        }
        assert_eq!(s["process"]["noNewPrivileges"], false);
        assert!(s["process"].get("apparmorProfile").is_none(), "no AppArmor on the host: nothing set");
        let s = spec_json(&c, &SpecOptions { apparmor: true, ..Default::default() }).unwrap();
        assert_eq!(s["process"]["apparmorProfile"], "shoal-default");
        // CAP_SYS_ADMIN unlocks unshare, as in Docker.
        let mut admin = input();
        admin.spec.capability_add = vec!["CAP_SYS_ADMIN".into()];
        let s = spec_json(&admin, &SpecOptions::default()).unwrap();
        assert!(s["linux"]["seccomp"]["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["names"].as_array().unwrap().contains(&json!("unshare"))));
    }

    #[test]
    fn privileges_choose_the_confinement() {
        let mut c = input();
        c.spec.privileges = privileges(r#"{"Seccomp": {"Mode": "unconfined"}, "AppArmor": {"Mode": "disabled"}, "NoNewPrivileges": true}"#);
        let s = spec_json(&c, &SpecOptions { apparmor: true, ..Default::default() }).unwrap();
        assert!(s["linux"].get("seccomp").is_none());
        assert_eq!(s["process"]["apparmorProfile"], "unconfined");
        assert_eq!(s["process"]["noNewPrivileges"], true);
        let s = spec_json(&c, &SpecOptions::default()).unwrap();
        assert!(s["process"].get("apparmorProfile").is_none());

        let profile = br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO"}]}"#;
        c.spec.privileges =
            privileges(&format!(r#"{{"Seccomp": {{"Mode": "custom", "Profile": "{}"}}}}"#, shoal_api::base64::encode(profile)));
        let s = spec_json(&c, &SpecOptions::default()).unwrap();
        assert_eq!(s["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
        assert_eq!(s["linux"]["seccomp"]["syscalls"], json!([{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO"}]));

        c.spec.privileges = privileges(r#"{"SELinuxContext": {"Level": "s0:c1"}}"#);
        assert!(spec_json(&c, &SpecOptions::default()).unwrap_err().starts_with("Privileges.SELinuxContext is not supported"));
    }

    #[test]
    fn spec_joins_the_workers_network_namespace() {
        let mut c = input();
        let s = spec_json(&c, &SpecOptions::default()).unwrap();
        assert_eq!(s["linux"]["namespaces"][4], json!({"type": "network"}));
        c.netns_path = Some("/run/shoal/n/netns/c1".into());
        let s = spec_json(&c, &SpecOptions::default()).unwrap();
        assert_eq!(s["linux"]["namespaces"][4], json!({"type": "network", "path": "/run/shoal/n/netns/c1"}));
    }
}
