//! Seccomp for containers: Docker's default profile, kept here as data,
//! and the conversion of any profile in Docker's format (the default, or a
//! service's custom one) into the OCI spec's `linux.seccomp` for one
//! container.
//!
//! The default is an allowlist: every call not named below fails with
//! EPERM. What it keeps out of reach of a container without extra
//! capabilities, as Docker's does: the kernel keyring (`keyctl`, `add_key`,
//! `request_key`), `bpf`, `userfaultfd`, `perf_event_open`, new namespaces
//! (`unshare`, `setns`, and `clone` with any `CLONE_NEW*` flag), mounts,
//! kernel modules, `kexec_load`, `reboot`, clock setting, `ptrace` on old
//! kernels, `personality` except the usual flags, and AF_ALG/AF_VSOCK
//! sockets. A capability granted with `--cap-add` unlocks the calls that
//! need it (e.g. CAP_SYS_ADMIN: mount, unshare, setns, clone with
//! namespace flags, clone3; CAP_SYS_PTRACE: ptrace, process_vm_*, kcmp).
//! `clone3` cannot be filtered by its flags (they sit in a struct in
//! memory), so without CAP_SYS_ADMIN it fails with ENOSYS, which makes
//! libcs fall back to `clone`, whose flags the filter can see.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder, LinuxSeccompFilterFlag, LinuxSeccompOperator,
    LinuxSyscallBuilder,
};
use shoal_api::seccomp::{parse_kernel_version, ArchMap, Arg, Filter, Profile, Syscall};

use super::spec::from_spec_name;

/// Allowed for every container.
const ALLOWED: &[&[&str]] = &[
    // Files and directories.
    &[
        "access",
        "faccessat",
        "faccessat2",
        "chdir",
        "fchdir",
        "chmod",
        "fchmod",
        "fchmodat",
        "fchmodat2",
        "chown",
        "chown32",
        "fchown",
        "fchown32",
        "fchownat",
        "lchown",
        "lchown32",
        "creat",
        "open",
        "openat",
        "openat2",
        "close",
        "close_range",
        "dup",
        "dup2",
        "dup3",
        "fcntl",
        "fcntl64",
        "flock",
        "fsync",
        "fdatasync",
        "syncfs",
        "sync",
        "sync_file_range",
        "ftruncate",
        "ftruncate64",
        "truncate",
        "truncate64",
        "fallocate",
        "fadvise64",
        "fadvise64_64",
        "readahead",
        "getcwd",
        "getdents",
        "getdents64",
        "link",
        "linkat",
        "symlink",
        "symlinkat",
        "unlink",
        "unlinkat",
        "rename",
        "renameat",
        "renameat2",
        "mkdir",
        "mkdirat",
        "rmdir",
        "mknod",
        "mknodat",
        "readlink",
        "readlinkat",
        "stat",
        "stat64",
        "lstat",
        "lstat64",
        "fstat",
        "fstat64",
        "fstatat64",
        "newfstatat",
        "statx",
        "statfs",
        "statfs64",
        "fstatfs",
        "fstatfs64",
        "umask",
        "utime",
        "utimes",
        "utimensat",
        "utimensat_time64",
        "futimesat",
        "name_to_handle_at",
        "copy_file_range",
        "sendfile",
        "sendfile64",
        "splice",
        "tee",
        "vmsplice",
        "lseek",
        "_llseek",
        "read",
        "readv",
        "pread64",
        "preadv",
        "preadv2",
        "write",
        "writev",
        "pwrite64",
        "pwritev",
        "pwritev2",
        "ioctl",
        "statmount",
        "listmount",
        "cachestat",
    ],
    // Extended attributes.
    &[
        "getxattr",
        "lgetxattr",
        "fgetxattr",
        "getxattrat",
        "setxattr",
        "lsetxattr",
        "fsetxattr",
        "setxattrat",
        "listxattr",
        "llistxattr",
        "flistxattr",
        "listxattrat",
        "removexattr",
        "lremovexattr",
        "fremovexattr",
        "removexattrat",
    ],
    // Waiting on descriptors, notifications, pipes.
    &[
        "epoll_create",
        "epoll_create1",
        "epoll_ctl",
        "epoll_ctl_old",
        "epoll_pwait",
        "epoll_pwait2",
        "epoll_wait",
        "epoll_wait_old",
        "eventfd",
        "eventfd2",
        "inotify_add_watch",
        "inotify_init",
        "inotify_init1",
        "inotify_rm_watch",
        "fanotify_mark",
        "poll",
        "ppoll",
        "ppoll_time64",
        "select",
        "_newselect",
        "pselect6",
        "pselect6_time64",
        "signalfd",
        "signalfd4",
        "timerfd_create",
        "timerfd_gettime",
        "timerfd_gettime64",
        "timerfd_settime",
        "timerfd_settime64",
        "pipe",
        "pipe2",
    ],
    // Asynchronous I/O.
    &["io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents", "io_pgetevents_time64"],
    // Processes, credentials, limits.
    &[
        "execve",
        "execveat",
        "exit",
        "exit_group",
        "fork",
        "vfork",
        "wait4",
        "waitid",
        "waitpid",
        "getpid",
        "getppid",
        "gettid",
        "getpgid",
        "setpgid",
        "getpgrp",
        "getsid",
        "setsid",
        "getpriority",
        "setpriority",
        "getuid",
        "getuid32",
        "geteuid",
        "geteuid32",
        "getgid",
        "getgid32",
        "getegid",
        "getegid32",
        "getresuid",
        "getresuid32",
        "getresgid",
        "getresgid32",
        "setuid",
        "setuid32",
        "setgid",
        "setgid32",
        "setreuid",
        "setreuid32",
        "setregid",
        "setregid32",
        "setresuid",
        "setresuid32",
        "setresgid",
        "setresgid32",
        "setfsuid",
        "setfsuid32",
        "setfsgid",
        "setfsgid32",
        "getgroups",
        "getgroups32",
        "setgroups",
        "setgroups32",
        "capget",
        "capset",
        "prctl",
        "getrlimit",
        "ugetrlimit",
        "setrlimit",
        "prlimit64",
        "getrusage",
        "times",
        "get_robust_list",
        "set_robust_list",
        "set_tid_address",
        "get_thread_area",
        "set_thread_area",
        "rseq",
        "seccomp",
        "landlock_add_rule",
        "landlock_create_ruleset",
        "landlock_restrict_self",
        "pidfd_open",
        "pidfd_send_signal",
        "process_mrelease",
        "restart_syscall",
        "uname",
        "sysinfo",
        "getcpu",
        "getrandom",
        "ioprio_get",
        "ioprio_set",
        "membarrier",
        "uretprobe",
        "riscv_hwprobe",
        "map_shadow_stack",
    ],
    // Scheduling.
    &[
        "sched_getaffinity",
        "sched_setaffinity",
        "sched_getattr",
        "sched_setattr",
        "sched_getparam",
        "sched_setparam",
        "sched_getscheduler",
        "sched_setscheduler",
        "sched_get_priority_max",
        "sched_get_priority_min",
        "sched_rr_get_interval",
        "sched_rr_get_interval_time64",
        "sched_yield",
    ],
    // Memory.
    &[
        "brk",
        "mmap",
        "mmap2",
        "munmap",
        "mremap",
        "mprotect",
        "madvise",
        "mincore",
        "mlock",
        "mlock2",
        "mlockall",
        "munlock",
        "munlockall",
        "msync",
        "remap_file_pages",
        "memfd_create",
        "memfd_secret",
        "pkey_alloc",
        "pkey_free",
        "pkey_mprotect",
        "mseal",
    ],
    // Futexes.
    &["futex", "futex_time64", "futex_waitv", "futex_wait", "futex_wake", "futex_requeue"],
    // Signals.
    &[
        "kill",
        "tkill",
        "tgkill",
        "rt_sigaction",
        "rt_sigpending",
        "rt_sigprocmask",
        "rt_sigqueueinfo",
        "rt_tgsigqueueinfo",
        "rt_sigreturn",
        "rt_sigsuspend",
        "rt_sigtimedwait",
        "rt_sigtimedwait_time64",
        "sigaltstack",
        "sigprocmask",
        "sigreturn",
        "pause",
    ],
    // Clocks and timers (reading; setting needs CAP_SYS_TIME below).
    &[
        "time",
        "gettimeofday",
        "clock_gettime",
        "clock_gettime64",
        "clock_getres",
        "clock_getres_time64",
        "clock_nanosleep",
        "clock_nanosleep_time64",
        "nanosleep",
        "adjtimex",
        "clock_adjtime",
        "clock_adjtime64",
        "alarm",
        "getitimer",
        "setitimer",
        "timer_create",
        "timer_delete",
        "timer_getoverrun",
        "timer_gettime",
        "timer_gettime64",
        "timer_settime",
        "timer_settime64",
    ],
    // Sockets (`socket` itself is filtered by family below).
    &[
        "accept",
        "accept4",
        "bind",
        "connect",
        "listen",
        "getpeername",
        "getsockname",
        "getsockopt",
        "setsockopt",
        "recv",
        "recvfrom",
        "recvmsg",
        "recvmmsg",
        "recvmmsg_time64",
        "send",
        "sendto",
        "sendmsg",
        "sendmmsg",
        "shutdown",
        "socketpair",
        "socketcall",
    ],
    // System V IPC and POSIX message queues (the container has its own IPC namespace).
    &[
        "ipc",
        "msgctl",
        "msgget",
        "msgrcv",
        "msgsnd",
        "semctl",
        "semget",
        "semop",
        "semtimedop",
        "semtimedop_time64",
        "shmat",
        "shmctl",
        "shmdt",
        "shmget",
        "mq_getsetattr",
        "mq_notify",
        "mq_open",
        "mq_timedreceive",
        "mq_timedreceive_time64",
        "mq_timedsend",
        "mq_timedsend_time64",
        "mq_unlink",
    ],
];

/// Calls a capability unlocks.
const BY_CAPABILITY: &[(&str, &[&str])] = &[
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    ("CAP_SYS_MODULE", &["delete_module", "init_module", "finit_module"]),
    ("CAP_SYS_PACCT", &["acct"]),
    ("CAP_SYS_PTRACE", &["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"]),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    ("CAP_SYS_TIME", &["settimeofday", "stime", "clock_settime", "clock_settime64"]),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    ("CAP_SYS_NICE", &["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"]),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// Calls only some architectures have (Go's architecture names).
const BY_ARCH: &[(&[&str], &[&str])] = &[
    (&["amd64", "x32"], &["arch_prctl"]),
    (&["amd64", "x32", "x86"], &["modify_ldt"]),
    (&["arm", "arm64"], &["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"]),
    (&["ppc64le"], &["sync_file_range2", "swapcontext"]),
    (&["s390", "s390x"], &["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"]),
    (&["riscv64"], &["riscv_flush_icache"]),
];

/// `personality(2)` values allowed without conditions: PER_LINUX,
/// PER_LINUX32 (0x8), UNAME26 (0x20000), both, and the query 0xffffffff.
const PERSONALITIES: &[u64] = &[0x0, 0x0008, 0x20000, 0x20008, 0xffff_ffff];

/// CLONE_NEWNS | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWCGROUP.
const CLONE_NAMESPACE_FLAGS: u64 = 0x0002_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000 | 0x0200_0000;

const AF_ALG: u64 = 38;
const AF_VSOCK: u64 = 40;
const ENOSYS: u32 = 38;
const EPERM: u32 = 1;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn allow(list: &[&str]) -> Syscall {
    Syscall { names: names(list), action: "SCMP_ACT_ALLOW".into(), ..Default::default() }
}

fn arg(index: u32, value: u64, op: &str) -> Arg {
    Arg { index, value, value_two: 0, op: op.into() }
}

fn caps(list: &[&str]) -> Option<Filter> {
    Some(Filter { caps: names(list), ..Default::default() })
}

/// Docker's default profile, in Docker's own format.
pub fn default_profile() -> Profile {
    let mut rules: Vec<Syscall> = vec![allow(&ALLOWED.concat())];
    // ptrace and process_vm_* became safe to allow with kernel 4.8
    // (before, ptrace could bypass seccomp).
    rules.push(Syscall {
        includes: Some(Filter { min_kernel: "4.8".into(), ..Default::default() }),
        ..allow(&["process_vm_readv", "process_vm_writev", "ptrace"])
    });
    // Every socket family but AF_ALG (38) and AF_VSOCK (40).
    for (value, op) in [(AF_ALG, "SCMP_CMP_LT"), (AF_ALG + 1, "SCMP_CMP_EQ"), (AF_VSOCK, "SCMP_CMP_GT")] {
        rules.push(Syscall { args: vec![arg(0, value, op)], ..allow(&["socket"]) });
    }
    for p in PERSONALITIES {
        rules.push(Syscall { args: vec![arg(0, *p, "SCMP_CMP_EQ")], ..allow(&["personality"]) });
    }
    for (arches, list) in BY_ARCH {
        rules.push(Syscall { includes: Some(Filter { arches: names(arches), ..Default::default() }), ..allow(list) });
    }
    for (cap, list) in BY_CAPABILITY {
        rules.push(Syscall { includes: caps(&[cap]), ..allow(list) });
    }
    // Without CAP_SYS_ADMIN: clone only without namespace flags (the flags
    // are the first argument, the second on s390), clone3 not at all.
    let no_ns = |index| Arg { index, value: CLONE_NAMESPACE_FLAGS, value_two: 0, op: "SCMP_CMP_MASKED_EQ".into() };
    rules.push(Syscall {
        args: vec![no_ns(0)],
        excludes: Some(Filter { caps: names(&["CAP_SYS_ADMIN"]), arches: names(&["s390", "s390x"]), ..Default::default() }),
        ..allow(&["clone"])
    });
    rules.push(Syscall {
        args: vec![no_ns(1)],
        includes: Some(Filter { arches: names(&["s390", "s390x"]), ..Default::default() }),
        excludes: caps(&["CAP_SYS_ADMIN"]),
        ..allow(&["clone"])
    });
    rules.push(Syscall {
        names: names(&["clone3"]),
        action: "SCMP_ACT_ERRNO".into(),
        errno_ret: Some(ENOSYS),
        excludes: caps(&["CAP_SYS_ADMIN"]),
        ..Default::default()
    });
    let map = |arch: &str, subs: &[&str]| ArchMap { architecture: arch.into(), sub_architectures: names(subs) };
    Profile {
        default_action: "SCMP_ACT_ERRNO".into(),
        default_errno_ret: Some(EPERM),
        arch_map: vec![map("SCMP_ARCH_X86_64", &["SCMP_ARCH_X86", "SCMP_ARCH_X32"]), map("SCMP_ARCH_AARCH64", &["SCMP_ARCH_ARM"])],
        syscalls: rules,
        ..Default::default()
    }
}

/// This machine's architecture: Go's name (what `arches` filters use) and
/// libseccomp's.
pub fn native_arch() -> (&'static str, &'static str) {
    if cfg!(target_arch = "x86_64") {
        ("amd64", "SCMP_ARCH_X86_64")
    } else if cfg!(target_arch = "aarch64") {
        ("arm64", "SCMP_ARCH_AARCH64")
    } else if cfg!(target_arch = "riscv64") {
        ("riscv64", "SCMP_ARCH_RISCV64")
    } else if cfg!(target_arch = "s390x") {
        ("s390x", "SCMP_ARCH_S390X")
    } else {
        ("", "")
    }
}

/// The running kernel's (major, minor), (0, 0) if unknown.
pub fn kernel_version() -> (u32, u32) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.trim().split(['.', '-']);
    let major = parts.next().and_then(|p| p.parse().ok());
    let minor = parts.next().and_then(|p| p.parse().ok());
    major.zip(minor).unwrap_or((0, 0))
}

/// What one container's filter needs to know about it and the host.
pub struct Target<'a> {
    /// The container's capabilities (`CAP_*`).
    pub caps: &'a [String],
    /// Go's name of the architecture (`amd64`), and libseccomp's.
    pub arch: (&'a str, &'a str),
    pub kernel: (u32, u32),
}

/// Does `f` hold for the target (all of its caps, one of its arches, at
/// least its kernel)?
fn holds(f: &Filter, t: &Target<'_>) -> bool {
    let kernel_ok = match parse_kernel_version(&f.min_kernel) {
        Some(min) => t.kernel >= min,
        None => true,
    };
    f.caps.iter().all(|c| t.caps.contains(c)) && (f.arches.is_empty() || f.arches.iter().any(|a| a == t.arch.0)) && kernel_ok
}

/// Does any part of an `excludes` filter hold (one of its caps, its arch,
/// a kernel at least its version)?
fn excluded(f: &Filter, t: &Target<'_>) -> bool {
    f.caps.iter().any(|c| t.caps.contains(c))
        || f.arches.iter().any(|a| a == t.arch.0)
        || parse_kernel_version(&f.min_kernel).is_some_and(|min| t.kernel >= min)
}

/// The OCI `linux.seccomp` object for a container: the rules whose
/// conditions hold for it, and the architectures of the native entry of
/// `archMap` (or the profile's `architectures`).
///
/// Names (actions, operators, architectures, flags) go through
/// oci-spec's enums; [`Profile::validate`] admits only names those enums
/// know, so an error here means the two lists have drifted apart.
pub fn to_oci(p: &Profile, t: &Target<'_>) -> Result<LinuxSeccomp, String> {
    let name = |kind: &str, n: &str| format!("seccomp profile: {kind} {n:?} is not known to the OCI spec types");
    let mut architectures: Vec<&String> = p.architectures.iter().collect();
    if let Some(m) = p.arch_map.iter().find(|m| m.architecture == t.arch.1) {
        architectures.push(&m.architecture);
        architectures.extend(&m.sub_architectures);
    }
    let architectures =
        architectures.into_iter().map(|a| from_spec_name::<Arch>(a).map_err(|_| name("architecture", a))).collect::<Result<Vec<_>, _>>()?;
    let mut syscalls = Vec::new();
    for s in &p.syscalls {
        if s.includes.as_ref().is_some_and(|f| !holds(f, t)) || s.excludes.as_ref().is_some_and(|f| excluded(f, t)) {
            continue;
        }
        let names: Vec<String> = std::iter::once(&s.name).filter(|n| !n.is_empty()).chain(&s.names).cloned().collect();
        let action = from_spec_name::<LinuxSeccompAction>(&s.action).map_err(|_| name("action", &s.action))?;
        let mut rule = LinuxSyscallBuilder::default().names(names).action(action);
        if let Some(e) = s.errno_ret {
            rule = rule.errno_ret(e);
        }
        if !s.args.is_empty() {
            let args = s
                .args
                .iter()
                .map(|a| {
                    let op = from_spec_name::<LinuxSeccompOperator>(&a.op).map_err(|_| name("operator", &a.op))?;
                    // valueTwo always written (0 when unused), as Docker does.
                    LinuxSeccompArgBuilder::default()
                        .index(a.index as usize)
                        .value(a.value)
                        .value_two(a.value_two)
                        .op(op)
                        .build()
                        .map_err(|e| e.to_string())
                })
                .collect::<Result<Vec<_>, _>>()?;
            rule = rule.args(args);
        }
        syscalls.push(rule.build().map_err(|e| e.to_string())?);
    }
    let default_action = from_spec_name::<LinuxSeccompAction>(&p.default_action).map_err(|_| name("action", &p.default_action))?;
    let mut out = LinuxSeccompBuilder::default().default_action(default_action).architectures(architectures).syscalls(syscalls);
    if let Some(e) = p.default_errno_ret {
        out = out.default_errno_ret(e);
    }
    if !p.flags.is_empty() {
        let flags = p
            .flags
            .iter()
            .map(|f| from_spec_name::<LinuxSeccompFilterFlag>(f).map_err(|_| name("flag", f)))
            .collect::<Result<Vec<_>, _>>()?;
        out = out.flags(flags);
    }
    out.build().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const DEFAULT_CAPS: &[&str] = super::super::spec::DEFAULT_CAPS;

    /// The filter as runc reads it.
    fn oci_json(p: &Profile, t: &Target<'_>) -> serde_json::Value {
        serde_json::to_value(to_oci(p, t).unwrap()).unwrap()
    }

    fn target(caps: &[&str]) -> (Vec<String>, (u32, u32)) {
        (caps.iter().map(|s| s.to_string()).collect(), (6, 1))
    }

    /// Names allowed unconditionally (no args) by an OCI filter.
    fn allowed(oci: &serde_json::Value) -> BTreeSet<String> {
        oci["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == "SCMP_ACT_ALLOW" && r.get("args").is_none())
            .flat_map(|r| r["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()))
            .collect()
    }

    #[test]
    fn the_default_profile_is_valid_and_blocks_what_docker_blocks() {
        let p = default_profile();
        p.validate().unwrap();
        // It survives Docker's JSON form (what a custom profile arrives as).
        assert_eq!(Profile::parse(&serde_json::to_vec(&p).unwrap()).unwrap(), p);
        let (caps, kernel) = target(DEFAULT_CAPS);
        let oci = oci_json(&p, &Target { caps: &caps, arch: ("amd64", "SCMP_ARCH_X86_64"), kernel });
        assert_eq!(oci["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(oci["defaultErrnoRet"], 1);
        assert_eq!(oci["architectures"], serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]));
        let ok = allowed(&oci);
        for n in ["read", "write", "openat", "execve", "futex", "exit_group", "chroot", "arch_prctl", "ptrace", "epoll_pwait"] {
            assert!(ok.contains(n), "{n} allowed");
        }
        for n in [
            "keyctl",
            "add_key",
            "request_key",
            "bpf",
            "userfaultfd",
            "perf_event_open",
            "unshare",
            "setns",
            "mount",
            "umount2",
            "init_module",
            "kexec_load",
            "reboot",
            "clock_settime",
            "syslog",
            "open_by_handle_at",
            "set_tls",
            "personality",
            "socket",
            "clone",
            "clone3",
            "iopl",
        ] {
            assert!(!ok.contains(n), "{n} not allowed unconditionally");
        }
        let rules = oci["syscalls"].as_array().unwrap();
        let rule_for = |n: &'static str| rules.iter().filter(move |r| r["names"].as_array().unwrap().iter().any(|x| x == n));
        // clone only without namespace flags; clone3 says ENOSYS.
        let clone: Vec<_> = rule_for("clone").collect();
        assert_eq!(clone.len(), 1);
        assert_eq!(
            clone[0]["args"][0],
            serde_json::json!({"index": 0, "value": 0x7E02_0000u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"})
        );
        let clone3: Vec<_> = rule_for("clone3").collect();
        assert_eq!(
            (clone3.len(), &clone3[0]["action"], &clone3[0]["errnoRet"]),
            (1, &serde_json::json!("SCMP_ACT_ERRNO"), &serde_json::json!(38))
        );
        assert_eq!(rule_for("personality").count(), 5);
        let families: Vec<_> = rule_for("socket").map(|r| (r["args"][0]["op"].clone(), r["args"][0]["value"].clone())).collect();
        assert_eq!(families.len(), 3, "{families:?}");
        // On arm64 the arm-only calls come in, the x86 ones go.
        let arm = allowed(&oci_json(&p, &Target { caps: &caps, arch: ("arm64", "SCMP_ARCH_AARCH64"), kernel }));
        assert!(arm.contains("set_tls") && !arm.contains("arch_prctl") && !arm.contains("modify_ldt"));
        let arm_oci = oci_json(&p, &Target { caps: &caps, arch: ("arm64", "SCMP_ARCH_AARCH64"), kernel });
        assert_eq!(arm_oci["architectures"], serde_json::json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]));
        // Kernels before 4.8 do not get ptrace.
        assert!(!allowed(&oci_json(&p, &Target { caps: &caps, arch: ("amd64", "SCMP_ARCH_X86_64"), kernel: (4, 4) })).contains("ptrace"));
    }

    #[test]
    fn capabilities_unlock_their_calls() {
        let p = default_profile();
        let mut with: Vec<&str> = DEFAULT_CAPS.to_vec();
        with.extend(["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYSLOG"]);
        let (caps, kernel) = target(&with);
        let oci = oci_json(&p, &Target { caps: &caps, arch: ("amd64", "SCMP_ARCH_X86_64"), kernel });
        let ok = allowed(&oci);
        for n in ["mount", "unshare", "setns", "clone", "clone3", "bpf", "perf_event_open", "kcmp", "syslog"] {
            assert!(ok.contains(n), "{n} with the capability");
        }
        // ...and then the restricted clone rules are gone.
        let rules = oci["syscalls"].as_array().unwrap();
        assert!(!rules.iter().any(|r| r["action"] == "SCMP_ACT_ERRNO"), "no clone3 ENOSYS rule with CAP_SYS_ADMIN");
        assert!(!ok.contains("keyctl") && !ok.contains("init_module"), "other calls stay blocked");
        let (caps, kernel) = target(&["CAP_SYS_MODULE"]);
        let ok = allowed(&oci_json(&p, &Target { caps: &caps, arch: ("amd64", "SCMP_ARCH_X86_64"), kernel }));
        assert!(ok.contains("init_module") && ok.contains("finit_module") && !ok.contains("chroot"));
    }

    #[test]
    fn custom_profiles_keep_their_own_architectures_and_flags() {
        let p = Profile::parse(
            br#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                 "syscalls": [{"name": "keyctl", "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
        )
        .unwrap();
        let caps = Vec::new();
        let oci = oci_json(&p, &Target { caps: &caps, arch: ("amd64", "SCMP_ARCH_X86_64"), kernel: (6, 1) });
        assert_eq!(
            oci,
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]})
        );
    }

    #[test]
    fn every_name_a_profile_may_use_has_an_oci_spec_type() {
        // `Profile::validate` and oci-spec's enums must agree, or a valid
        // profile would fail at container start.
        use shoal_api::seccomp::{ACTIONS, ARCHITECTURES, FLAGS, OPERATORS};
        for a in ACTIONS {
            assert!(from_spec_name::<LinuxSeccompAction>(a).is_ok(), "{a}");
        }
        for o in OPERATORS {
            assert!(from_spec_name::<LinuxSeccompOperator>(o).is_ok(), "{o}");
        }
        for a in ARCHITECTURES {
            assert!(from_spec_name::<Arch>(a).is_ok(), "{a}");
        }
        for f in FLAGS {
            assert!(from_spec_name::<LinuxSeccompFilterFlag>(f).is_ok(), "{f}");
        }
    }

    #[test]
    fn kernel_versions_parse() {
        let (major, _) = kernel_version();
        assert!(major >= 3, "this host's kernel");
    }
}
