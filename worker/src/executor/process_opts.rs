//! Per-task process and kernel settings on top of the default spec:
//! `--ulimit` (rlimits; an explicit `nofile` replaces the default),
//! `--sysctl` (namespaced sysctls; runc refuses the ones a container may
//! not set), and `--init`.
//!
//! `--init`: Docker runs its bundled `docker-init` (tini) as the
//! container's pid 1, bind-mounted read-only at `/sbin/docker-init`. We do
//! the same with a static tini found on the node: `docker-init` on PATH, or
//! Debian's `/usr/bin/tini-static` (`apt-get install tini`). It must be
//! static because the image may carry no C library. Without one the task
//! fails to start with an error that says what to install; we never start
//! the container without the init it asked for.

use std::path::PathBuf;

use oci_spec::runtime::{PosixRlimitBuilder, PosixRlimitType, Spec};

use super::spec::{from_spec_name, mount};
use super::ContainerInput;

/// Where Docker puts its init inside the container.
pub const INIT_PATH: &str = "/sbin/docker-init";

const ULIMITS: &[&str] = &[
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// Finds a static init binary on this node.
pub fn find_init() -> Option<PathBuf> {
    let on_path =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).map(|d| d.join("docker-init")).find(|c| c.is_file())).unwrap_or(None);
    on_path.or_else(|| Some(PathBuf::from("/usr/bin/tini-static")).filter(|p| p.is_file()))
}

/// Applies ulimits, sysctls and init to `spec`. `init` is the init binary
/// to use when the task asks for one.
pub fn apply(spec: &mut Spec, c: &ContainerInput, init: Option<PathBuf>) -> Result<(), String> {
    if !c.spec.ulimits.is_empty() {
        let process = spec.process_mut().as_mut().ok_or("spec has no process")?;
        let mut rlimits = process.rlimits().clone().unwrap_or_default();
        for u in &c.spec.ulimits {
            let name = u.name.to_ascii_lowercase();
            if !ULIMITS.contains(&name.as_str()) {
                return Err(format!("invalid ulimit type: {}", u.name));
            }
            if u.soft > u.hard {
                return Err(format!("ulimit soft limit must be less than or equal to hard limit: {} > {}", u.soft, u.hard));
            }
            let kind: PosixRlimitType = from_spec_name(&format!("RLIMIT_{}", name.to_ascii_uppercase()))?;
            rlimits.retain(|r| r.typ() != kind);
            // Docker's cast to the kernel's unsigned limits: -1 is RLIM_INFINITY.
            let limit = PosixRlimitBuilder::default().typ(kind).hard(u.hard as u64).soft(u.soft as u64);
            rlimits.push(limit.build().map_err(|e| e.to_string())?);
        }
        process.set_rlimits(Some(rlimits));
    }
    if !c.spec.sysctls.is_empty() {
        let linux = spec.linux_mut().as_mut().ok_or("spec has no linux section")?;
        linux.set_sysctl(Some(c.spec.sysctls.clone().into_iter().collect()));
    }
    if c.spec.init == Some(true) {
        let Some(bin) = init else {
            return Err("--init needs a static init binary on this node: install tini (apt-get install tini, for /usr/bin/tini-static) or put docker-init on PATH".into());
        };
        let process = spec.process_mut().as_mut().ok_or("spec has no process")?;
        let args = [INIT_PATH.to_string(), "--".to_string()].into_iter().chain(process.args().clone().unwrap_or_default()).collect();
        process.set_args(Some(args));
        let mounts = spec.mounts_mut().as_mut().ok_or("spec has no mounts")?;
        mounts.push(mount(INIT_PATH, "bind", bin, ["bind", "ro"]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shoal_api::task::{ContainerSpec, Ulimit};

    fn base() -> Spec {
        let mut s = Spec::default();
        let process = s.process_mut().as_mut().unwrap();
        process.set_args(Some(vec!["sleep".into(), "1".into()]));
        process.set_rlimits(Some(vec![PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .hard(10u64)
            .soft(10u64)
            .build()
            .unwrap()]));
        s.set_mounts(Some(vec![]));
        s
    }

    /// The spec as runc reads it.
    fn as_json(s: &Spec) -> serde_json::Value {
        serde_json::to_value(s).unwrap()
    }

    #[test]
    fn ulimits_and_sysctls() {
        let c = ContainerInput {
            spec: ContainerSpec {
                ulimits: vec![Ulimit { name: "nofile".into(), soft: 100, hard: 200 }, Ulimit { name: "nproc".into(), soft: 50, hard: 50 }],
                sysctls: [("net.ipv4.ip_forward".to_string(), "1".to_string())].into(),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut s = base();
        apply(&mut s, &c, None).unwrap();
        let s = as_json(&s);
        assert_eq!(
            s["process"]["rlimits"],
            json!([{"type": "RLIMIT_NOFILE", "hard": 200, "soft": 100}, {"type": "RLIMIT_NPROC", "hard": 50, "soft": 50}])
        );
        assert_eq!(s["linux"]["sysctl"]["net.ipv4.ip_forward"], "1");
        let bad = ContainerInput {
            spec: ContainerSpec { ulimits: vec![Ulimit { name: "bogus".into(), soft: 1, hard: 1 }], ..Default::default() },
            ..Default::default()
        };
        assert_eq!(apply(&mut base(), &bad, None).unwrap_err(), "invalid ulimit type: bogus");
        // -1 is unlimited, as Docker casts it (runc's limits are unsigned).
        let unlimited = ContainerInput {
            spec: ContainerSpec { ulimits: vec![Ulimit { name: "core".into(), soft: -1, hard: -1 }], ..Default::default() },
            ..Default::default()
        };
        let mut s = base();
        apply(&mut s, &unlimited, None).unwrap();
        assert_eq!(as_json(&s)["process"]["rlimits"][1], json!({"type": "RLIMIT_CORE", "hard": u64::MAX, "soft": u64::MAX}));
    }

    #[test]
    fn init_wraps_the_command_or_refuses() {
        let c = ContainerInput { spec: ContainerSpec { init: Some(true), ..Default::default() }, ..Default::default() };
        let mut s = base();
        apply(&mut s, &c, Some("/usr/bin/tini-static".into())).unwrap();
        let s = as_json(&s);
        assert_eq!(s["process"]["args"], json!(["/sbin/docker-init", "--", "sleep", "1"]));
        assert_eq!(s["mounts"][0]["destination"], INIT_PATH);
        assert_eq!(s["mounts"][0]["source"], "/usr/bin/tini-static");
        let e = apply(&mut base(), &c, None).unwrap_err();
        assert!(e.contains("--init needs a static init binary"), "{e}");
        // Init false or unset: nothing changes.
        let mut s = base();
        apply(&mut s, &ContainerInput::default(), None).unwrap();
        assert_eq!(s, base());
    }
}
