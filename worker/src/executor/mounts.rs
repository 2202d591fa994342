//! The task's `ContainerSpec.Mounts` as OCI mounts: bind mounts of host
//! paths, local volumes (named ones created on first use, anonymous ones per
//! container; a new, empty volume is filled from the image's content at the
//! target unless `NoCopy`), and tmpfs with size and mode.
//!
//! [`validate`] has no side effects and gives Docker's errors, first the
//! swarm executor's (`invalid mount target, must be an absolute path: x`),
//! then the daemon's (`invalid mount config for type "bind": bind source
//! path does not exist: /x`); the task manager calls it while preparing so
//! a bad mount rejects the task. [`prepare`] creates and fills volumes.

use std::collections::{HashSet, VecDeque};
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::Spec;
use shoal_api::task::Mount;

use super::spec::mount;
use super::ContainerInput;
use crate::volumes::{anonymous_name, VolumeStore};

const PROPAGATIONS: &[&str] = &["private", "rprivate", "shared", "rshared", "slave", "rslave"];

fn config_err(m: &Mount, msg: impl std::fmt::Display) -> String {
    format!("invalid mount config for type \"{}\": {msg}", m.r#type)
}

/// Docker's checks of a task's mounts, in Docker's order and words.
pub fn validate(mounts: &[Mount]) -> Result<(), String> {
    // The swarm executor's checks (daemon/cluster/executor/container).
    for m in mounts {
        if !m.target.starts_with('/') {
            return Err(format!("invalid mount target, must be an absolute path: {}", m.target));
        }
        match m.r#type.as_str() {
            "bind" if !m.source.starts_with('/') => {
                return Err(format!("invalid bind mount source, must be an absolute path: {}", m.source))
            }
            "volume" if m.source.starts_with('/') => {
                return Err(format!("invalid volume mount source, must not be an absolute path: {}", m.source))
            }
            "tmpfs" if !m.source.is_empty() => return Err("invalid tmpfs source, source must be empty".into()),
            "bind" | "volume" | "tmpfs" => {}
            other => return Err(format!("invalid mount type: {other}")),
        }
    }
    // The daemon's checks when it creates the container.
    let mut seen = HashSet::new();
    for m in mounts {
        if clean(&m.target) == "/" {
            return Err(config_err(m, "invalid specification: destination can't be '/'"));
        }
        let extra =
            |present: bool, field: &str| if present { Err(config_err(m, format!("field {field} must not be specified"))) } else { Ok(()) };
        match m.r#type.as_str() {
            "bind" => {
                extra(m.volume_options.is_some(), "VolumeOptions")?;
                extra(m.tmpfs_options.is_some(), "TmpfsOptions")?;
                if let Some(p) = m.bind_options.as_ref().map(|b| b.propagation.as_str()).filter(|p| !p.is_empty()) {
                    if !PROPAGATIONS.contains(&p) {
                        return Err(config_err(m, format!("invalid propagation mode: {p}")));
                    }
                }
                if !Path::new(&m.source).exists() {
                    return Err(config_err(m, format!("bind source path does not exist: {}", m.source)));
                }
            }
            "volume" => {
                extra(m.bind_options.is_some(), "BindOptions")?;
                extra(m.tmpfs_options.is_some(), "TmpfsOptions")?;
                if !m.source.is_empty() {
                    crate::volumes::check_name(&m.source)?;
                }
                if let Some(sub) = m.volume_options.as_ref().map(|v| v.subpath.as_str()).filter(|s| !s.is_empty()) {
                    if Path::new(sub).is_absolute() || Path::new(sub).components().any(|c| c == Component::ParentDir) {
                        return Err(config_err(m, format!("subpath must be a relative path within the volume: {sub}")));
                    }
                }
            }
            _ => {
                extra(m.bind_options.is_some(), "BindOptions")?;
                extra(m.volume_options.is_some(), "VolumeOptions")?;
                if m.tmpfs_options.as_ref().is_some_and(|t| t.size_bytes < 0) {
                    return Err(config_err(m, "invalid tmpfs size"));
                }
            }
        }
        if !seen.insert(clean(&m.target)) {
            return Err(format!("Duplicate mount point: {}", clean(&m.target)));
        }
    }
    Ok(())
}

/// A path with `.`, `..` and double slashes resolved lexically.
fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The task's mounts ready for the spec, and the anonymous volumes made
/// for them (removed with the container).
#[derive(Debug, Default)]
pub struct Prepared {
    pub mounts: Vec<oci_spec::runtime::Mount>,
    pub anonymous_volumes: Vec<String>,
}

/// Docker's tmpfs data: `size=<n>[kmg]` with the largest exact unit, and
/// `mode=<octal>`.
pub fn tmpfs_data(size_bytes: i64, mode: u32) -> Vec<String> {
    let mut out = Vec::new();
    if size_bytes > 0 {
        let (mut n, mut suffix) = (size_bytes, "");
        for (s, d) in [("g", 1i64 << 30), ("m", 1 << 20), ("k", 1 << 10)] {
            if size_bytes % d == 0 {
                n = size_bytes / d;
                suffix = s;
                break;
            }
        }
        out.push(format!("size={n}{suffix}"));
    }
    if mode != 0 {
        out.push(format!("mode={mode:o}"));
    }
    out
}

/// Validates, creates the volumes (filling new ones from the image), and
/// returns the OCI mounts.
///
/// A volume's `Subpath` is resolved inside the volume and bind-mounted
/// under `staging` (in the bundle), and runc is handed that mount: see
/// [`stage_subpath`]. The caller releases it with [`release_staged`] once
/// runc has made the container's mounts, or when preparing fails.
pub fn prepare(c: &ContainerInput, volumes: &VolumeStore, staging: &Path) -> Result<Prepared, String> {
    validate(&c.spec.mounts)?;
    let mut out = Prepared::default();
    for m in &c.spec.mounts {
        let target = clean(&m.target);
        let mut options: Vec<String> = Vec::new();
        let (kind, source) = match m.r#type.as_str() {
            "bind" => {
                let b = m.bind_options.clone().unwrap_or_default();
                options.push(if b.non_recursive { "bind" } else { "rbind" }.into());
                options.push(if b.propagation.is_empty() { "rprivate".into() } else { b.propagation });
                ("bind", m.source.clone())
            }
            "volume" => {
                let vo = m.volume_options.clone().unwrap_or_default();
                let anonymous = m.source.is_empty();
                let name = if anonymous { anonymous_name(&c.id, &target) } else { m.source.clone() };
                let driver = vo.driver_config.clone().unwrap_or_default();
                let data = volumes.ensure(&name, &driver.name, &driver.options, &vo.labels, anonymous)?;
                if anonymous {
                    out.anonymous_volumes.push(name.clone());
                }
                if !vo.no_copy {
                    copy_image_content(&c.rootfs, &target, &data).map_err(|e| format!("copying image content into volume {name}: {e}"))?;
                }
                let mut src = data;
                if !vo.subpath.is_empty() {
                    src = stage_subpath(&src, &vo.subpath, staging, out.mounts.len())?;
                }
                options.push("rbind".into());
                options.push("rprivate".into());
                ("bind", src.to_string_lossy().into_owned())
            }
            _ => {
                options.extend(["noexec", "nosuid", "nodev", "rprivate"].map(String::from));
                let t = m.tmpfs_options.clone().unwrap_or_default();
                options.extend(tmpfs_data(t.size_bytes, t.mode));
                ("tmpfs", "tmpfs".to_string())
            }
        };
        if m.read_only {
            options.push("ro".into());
        }
        out.mounts.push(mount(target, kind, source, options));
    }
    Ok(out)
}

/// Opens `sub` below the directory `root` as an `O_PATH` descriptor with
/// openat2(2) and `RESOLVE_IN_ROOT`: the kernel resolves every component,
/// symlinks and `..` included, as if `root` were `/`, so the result is
/// always inside `root` whatever a container planted there (a symlink
/// `x -> /` names the volume's own root). Magic links (`/proc/self/fd/..`)
/// are refused.
pub fn open_in_root(root: &Path, sub: &str) -> io::Result<OwnedFd> {
    let root_c = CString::new(root.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let sub_c = CString::new(sub).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let dir = nix::fcntl::open(root_c.as_c_str(), OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?;
    let how =
        OpenHow::new().flags(OFlag::O_PATH | OFlag::O_CLOEXEC).resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    Ok(nix::fcntl::openat2(&dir, sub_c.as_c_str(), how)?)
}

/// A volume's `Subpath`, made safe to hand to runc. runc bind-mounts the
/// `source` path of config.json itself, and a path inside a volume can be
/// changed by any container using the volume (a symlink `x -> /` planted
/// there would make `data/x` the host's `/`). So the subpath is opened with
/// [`open_in_root`] and that very descriptor is bind-mounted (through
/// `/proc/self/fd/<n>`) at `<staging>/<n>`, a root-only folder in the
/// bundle that no container can reach; runc gets the staging path.
fn stage_subpath(data: &Path, sub: &str, staging: &Path, n: usize) -> Result<PathBuf, String> {
    let fd = open_in_root(data, sub).map_err(|e| match e.raw_os_error() {
        Some(e) if e == Errno::ENOENT as i32 => format!("cannot access path {}: no such file or directory", data.join(sub).display()),
        _ => format!("cannot access path {} inside its volume: {e}", data.join(sub).display()),
    })?;
    let st = nix::sys::stat::fstat(&fd).map_err(|e| format!("cannot access path {}: {}", data.join(sub).display(), io::Error::from(e)))?;
    let err = |what: &str, p: &Path, e: io::Error| format!("staging volume subpath {sub}: {what} {}: {e}", p.display());
    std::fs::create_dir_all(staging).map_err(|e| err("creating", staging, e))?;
    std::fs::set_permissions(staging, std::fs::Permissions::from_mode(0o700)).map_err(|e| err("chmod", staging, e))?;
    let point = staging.join(n.to_string());
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
        std::fs::create_dir(&point).map_err(|e| err("creating", &point, e))?;
    } else {
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&point).map_err(|e| err("creating", &point, e))?;
    }
    let src = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default();
    let dst = CString::new(point.as_os_str().as_bytes()).map_err(|_| format!("staging volume subpath {sub}: bad path"))?;
    // A bind mount takes no type or data.
    if let Err(e) =
        nix::mount::mount(Some(src.as_c_str()), dst.as_c_str(), None::<&CStr>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&CStr>)
    {
        let _ = std::fs::remove_dir(&point).or_else(|_| std::fs::remove_file(&point));
        return Err(err("bind-mounting", &point, e.into()));
    }
    Ok(point)
}

/// Where [`prepare`] stages volume subpaths for a container's bundle.
pub fn staging_dir(bundle: &Path) -> PathBuf {
    bundle.join("subpaths")
}

/// Unmounts and removes what [`stage_subpath`] made under `staging` (also
/// what a killed daemon left). An error means a staged mount is still
/// there: then the bundle must not be deleted recursively, which would go
/// into the volume.
pub fn release_staged(staging: &Path) -> Result<(), String> {
    let entries = match std::fs::read_dir(staging) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("reading {}: {e}", staging.display())),
    };
    for e in entries.flatten() {
        let p = e.path();
        let c = CString::new(p.as_os_str().as_bytes()).map_err(|_| format!("bad path {}", p.display()))?;
        // Lazily, so a busy mount still goes; EINVAL: not (or no longer) a mount.
        match nix::mount::umount2(c.as_c_str(), MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
            Ok(()) | Err(Errno::EINVAL) => {}
            Err(e) => return Err(format!("unmounting {}: {}", p.display(), io::Error::from(e))),
        }
        // remove_dir / remove_file never follow into a mount: a point still
        // mounted fails with EBUSY rather than emptying the volume.
        std::fs::remove_dir(&p).or_else(|_| std::fs::remove_file(&p)).map_err(|e| format!("removing {}: {e}", p.display()))?;
    }
    std::fs::remove_dir(staging).map_err(|e| format!("removing {}: {e}", staging.display()))
}

/// Adds `extra` mounts to a spec: a default mount at the same destination
/// gives way, and parents are mounted before their children (Docker sorts
/// by the number of path components). Shared or slave propagation asks for
/// the matching root propagation, as Docker sets it.
pub fn apply(spec: &mut Spec, extra: Vec<oci_spec::runtime::Mount>) -> Result<(), String> {
    if extra.is_empty() {
        return Ok(());
    }
    let dests: HashSet<&Path> = extra.iter().map(|m| m.destination().as_path()).collect();
    let mut all: Vec<oci_spec::runtime::Mount> =
        spec.mounts().iter().flatten().filter(|m| !dests.contains(m.destination().as_path())).cloned().collect();
    let mut extra = extra;
    extra.sort_by_key(|m| m.destination().to_string_lossy().split('/').filter(|s| !s.is_empty()).count());
    let has = |want: &[&str]| extra.iter().flat_map(|m| m.options().iter().flatten()).any(|o| want.contains(&o.as_str()));
    let propagation = if has(&["shared", "rshared"]) {
        Some("rshared")
    } else if has(&["slave", "rslave"]) {
        Some("rslave")
    } else {
        None
    };
    all.extend(extra);
    spec.set_mounts(Some(all));
    if let Some(p) = propagation {
        spec.linux_mut().as_mut().ok_or("spec has no linux section")?.set_rootfs_propagation(Some(p.to_string()));
    }
    Ok(())
}

/// Resolves `target` inside `root` the way the container would see it:
/// symlinks are followed but never leave `root`. `None` if it does not exist.
pub fn resolve_in_root(root: &Path, target: &str) -> Option<PathBuf> {
    let mut parts: VecDeque<String> = target.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
    let mut cur = PathBuf::new();
    let mut hops = 0;
    while let Some(p) = parts.pop_front() {
        if p == "." {
            continue;
        }
        if p == ".." {
            cur.pop();
            continue;
        }
        let next = cur.join(&p);
        let meta = std::fs::symlink_metadata(root.join(&next)).ok()?;
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let link = std::fs::read_link(root.join(&next)).ok()?;
            let link = link.to_string_lossy().into_owned();
            if link.starts_with('/') {
                cur = PathBuf::new();
            }
            for (i, part) in link.split('/').filter(|s| !s.is_empty()).enumerate() {
                parts.insert(i, part.to_string());
            }
        } else {
            cur = next;
        }
    }
    Some(root.join(cur))
}

/// Fills an empty volume with what the image has at `target` (Docker's
/// copy-up): content, modes and owners, and the volume root takes the
/// mode and owner of the image's directory.
pub fn copy_image_content(rootfs: &Path, target: &str, volume: &Path) -> io::Result<()> {
    if std::fs::read_dir(volume)?.next().is_some() {
        return Ok(());
    }
    let Some(src) = resolve_in_root(rootfs, target) else { return Ok(()) };
    let meta = std::fs::metadata(&src)?;
    if !meta.is_dir() {
        return Ok(());
    }
    copy_tree(&src, volume)?;
    std::fs::set_permissions(volume, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    std::os::unix::fs::lchown(volume, Some(meta.uid()), Some(meta.gid()))
}

fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&from)?;
        let ft = meta.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&to)?;
            copy_tree(&from, &to)?;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else if ft.is_file() {
            std::fs::copy(&from, &to)?;
        } else {
            // Devices, fifos and sockets are not copied into volumes.
            continue;
        }
        std::os::unix::fs::lchown(&to, Some(meta.uid()), Some(meta.gid()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::spec::mount as oci_mount;
    use super::*;
    use serde_json::json;
    use shoal_api::task::{BindOptions, ContainerSpec, TmpfsOptions, VolumeOptions};

    /// A mount as runc reads it.
    fn oci_json(m: &oci_spec::runtime::Mount) -> serde_json::Value {
        serde_json::to_value(m).unwrap()
    }

    fn mount(kind: &str, source: &str, target: &str) -> Mount {
        Mount { r#type: kind.into(), source: source.into(), target: target.into(), ..Default::default() }
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("shoal-mounts-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn validation_uses_dockers_words() {
        let err = |m: Mount| validate(&[m]).unwrap_err();
        assert_eq!(err(mount("bind", "/tmp", "rel")), "invalid mount target, must be an absolute path: rel");
        assert_eq!(err(mount("bind", "rel", "/x")), "invalid bind mount source, must be an absolute path: rel");
        assert_eq!(err(mount("volume", "/abs", "/x")), "invalid volume mount source, must not be an absolute path: /abs");
        assert_eq!(err(mount("tmpfs", "x", "/x")), "invalid tmpfs source, source must be empty");
        assert_eq!(err(mount("npipe", "", "/x")), "invalid mount type: npipe");
        assert_eq!(
            err(mount("bind", "/nonexistent-shoal-src", "/x")),
            "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent-shoal-src"
        );
        assert_eq!(
            err(mount("tmpfs", "", "/")),
            "invalid mount config for type \"tmpfs\": invalid specification: destination can't be '/'"
        );
        let mut m = mount("tmpfs", "", "/x");
        m.volume_options = Some(VolumeOptions::default());
        assert_eq!(err(m), "invalid mount config for type \"tmpfs\": field VolumeOptions must not be specified");
        let mut m = mount("bind", "/tmp", "/x");
        m.bind_options = Some(BindOptions { propagation: "sideways".into(), ..Default::default() });
        assert_eq!(err(m), "invalid mount config for type \"bind\": invalid propagation mode: sideways");
        assert!(err(mount("volume", "a/b", "/x")).contains("includes invalid characters for a local volume name"));
        assert_eq!(validate(&[mount("tmpfs", "", "/x"), mount("volume", "v1", "/x/")]).unwrap_err(), "Duplicate mount point: /x");
        assert!(validate(&[mount("bind", "/tmp", "/x"), mount("volume", "", "/y"), mount("tmpfs", "", "/z")]).is_ok());
    }

    #[test]
    fn tmpfs_options_like_docker() {
        assert_eq!(tmpfs_data(1 << 20, 0o1777), ["size=1m", "mode=1777"]);
        assert_eq!(tmpfs_data(3 << 30, 0), ["size=3g"]);
        assert_eq!(tmpfs_data(1536, 0o700), ["size=1536", "mode=700"]);
        assert_eq!(tmpfs_data(2048, 0), ["size=2k"]);
        assert!(tmpfs_data(0, 0).is_empty());
    }

    #[test]
    fn each_mount_type_becomes_its_oci_mount() {
        let dir = tmpdir("spec");
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(rootfs.join("srv/data/sub")).unwrap();
        std::fs::write(rootfs.join("srv/data/hello"), "from image").unwrap();
        std::fs::set_permissions(rootfs.join("srv/data"), std::fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::symlink("/srv/data", rootfs.join("link")).unwrap();
        let volumes = VolumeStore::new(dir.join("volumes"));
        let mut bind = mount("bind", dir.to_str().unwrap(), "/host");
        bind.read_only = true;
        bind.bind_options = Some(BindOptions { propagation: "rslave".into(), non_recursive: true });
        let named = mount("volume", "vol1", "/link");
        let mut nocopy = mount("volume", "vol2", "/srv/data");
        nocopy.volume_options = Some(VolumeOptions { no_copy: true, ..Default::default() });
        let anon = mount("volume", "", "/srv/data");
        let mut tmp = mount("tmpfs", "", "/scratch");
        tmp.tmpfs_options = Some(TmpfsOptions { size_bytes: 1 << 20, mode: 0o700 });
        let input = ContainerInput {
            id: "c1".into(),
            rootfs: rootfs.clone(),
            spec: ContainerSpec { mounts: vec![bind, named, tmp], ..Default::default() },
            ..Default::default()
        };
        let p = prepare(&input, &volumes, &dir.join("staging")).unwrap();
        assert!(p.anonymous_volumes.is_empty());
        assert_eq!(
            oci_json(&p.mounts[0]),
            json!({"destination": "/host", "type": "bind", "source": dir.to_str().unwrap(), "options": ["bind", "rslave", "ro"]})
        );
        let data1 = dir.join("volumes/vol1/_data");
        assert_eq!(
            oci_json(&p.mounts[1]),
            json!({"destination": "/link", "type": "bind", "source": data1.to_str().unwrap(), "options": ["rbind", "rprivate"]})
        );
        // Filled through the image's symlink, with the directory's mode.
        assert_eq!(std::fs::read_to_string(data1.join("hello")).unwrap(), "from image");
        assert!(data1.join("sub").is_dir());
        assert_eq!(std::fs::metadata(&data1).unwrap().mode() & 0o777, 0o750);
        assert_eq!(
            oci_json(&p.mounts[2]),
            json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["noexec", "nosuid", "nodev", "rprivate", "size=1m", "mode=700"]})
        );
        // A volume already holding data is not filled again.
        std::fs::write(data1.join("hello"), "changed").unwrap();
        prepare(&input, &volumes, &dir.join("staging")).unwrap();
        assert_eq!(std::fs::read_to_string(data1.join("hello")).unwrap(), "changed");

        // NoCopy leaves a new volume empty; an anonymous volume is named
        // after the container and target and reported for removal.
        let input2 = ContainerInput { spec: ContainerSpec { mounts: vec![nocopy], ..Default::default() }, ..input.clone() };
        prepare(&input2, &volumes, &dir.join("staging")).unwrap();
        assert_eq!(std::fs::read_dir(dir.join("volumes/vol2/_data")).unwrap().count(), 0);
        let input3 = ContainerInput { spec: ContainerSpec { mounts: vec![anon], ..Default::default() }, ..input.clone() };
        let p3 = prepare(&input3, &volumes, &dir.join("staging")).unwrap();
        assert_eq!(p3.anonymous_volumes, [anonymous_name("c1", "/srv/data")]);
        assert!(volumes.data_dir(&p3.anonymous_volumes[0]).join("hello").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn resolving_never_leaves_the_root() {
        let dir = tmpdir("resolve");
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc", dir.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../etc", dir.join("up")).unwrap();
        assert_eq!(resolve_in_root(&dir, "/abs"), Some(dir.join("etc")));
        assert_eq!(resolve_in_root(&dir, "/up"), Some(dir.join("etc")));
        assert_eq!(resolve_in_root(&dir, "/missing"), None);
        std::os::unix::fs::symlink("loop", dir.join("loop")).unwrap();
        assert_eq!(resolve_in_root(&dir, "/loop"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn same_inode(a: &Path, b: &Path) -> bool {
        let (a, b) = (std::fs::metadata(a).unwrap(), std::fs::metadata(b).unwrap());
        (a.dev(), a.ino()) == (b.dev(), b.ino())
    }

    #[test]
    fn subpaths_resolve_inside_the_volume_whatever_it_holds() {
        let dir = tmpdir("subpath");
        let volumes = VolumeStore::new(dir.join("volumes"));
        let data = volumes.ensure("vol", "", &Default::default(), &Default::default(), false).unwrap();
        std::fs::create_dir_all(data.join("etc")).unwrap();
        std::fs::write(data.join("marker"), "in volume").unwrap();
        // What a container using the volume could plant.
        std::os::unix::fs::symlink("/", data.join("x")).unwrap();
        std::os::unix::fs::symlink("../../../../../../..", data.join("up")).unwrap();
        std::os::unix::fs::symlink("/proc/self/root", data.join("magic")).unwrap();
        let fd = open_in_root(&data, "x").unwrap();
        let via_fd = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        assert!(same_inode(&via_fd, &data), "x -> / names the volume's root");
        assert!(!same_inode(&via_fd, Path::new("/")));
        let up = open_in_root(&data, "up/etc").unwrap();
        assert!(same_inode(Path::new(&format!("/proc/self/fd/{}", up.as_raw_fd())), &data.join("etc")), "`..` stops at the volume's root");
        assert!(open_in_root(&data, "magic/etc").is_err(), "magic links are refused");

        // The mount runc is handed is the staged volume root, not the host's /.
        let staging = dir.join("bundle/subpaths");
        let mut m = mount("volume", "vol", "/data");
        m.volume_options = Some(VolumeOptions { subpath: "x".into(), no_copy: true, ..Default::default() });
        let mut missing = mount("volume", "vol", "/other");
        missing.volume_options = Some(VolumeOptions { subpath: "x/nope".into(), no_copy: true, ..Default::default() });
        let input = ContainerInput {
            id: "c1".into(),
            rootfs: dir.join("rootfs"),
            spec: ContainerSpec { mounts: vec![m], ..Default::default() },
            ..Default::default()
        };
        let p = prepare(&input, &volumes, &staging).unwrap();
        let source = p.mounts[0].source().clone().unwrap();
        assert!(source.starts_with(&staging), "{source:?}");
        assert!(same_inode(&source, &data));
        assert_eq!(std::fs::read_to_string(source.join("marker")).unwrap(), "in volume");
        assert!(!same_inode(&source, Path::new("/")));
        release_staged(&staging).unwrap();
        assert!(!staging.exists());
        assert_eq!(std::fs::read_to_string(data.join("marker")).unwrap(), "in volume", "releasing leaves the volume alone");

        let input = ContainerInput { spec: ContainerSpec { mounts: vec![missing], ..Default::default() }, ..input };
        let e = prepare(&input, &volumes, &staging).unwrap_err();
        assert!(e.starts_with("cannot access path") && e.contains("no such file or directory"), "{e}");
        release_staged(&staging).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn extra_mounts_replace_defaults_and_sort_parents_first() {
        let mut spec = Spec::default();
        spec.set_mounts(Some(vec![oci_mount("/proc", "proc", "proc", [""; 0]), oci_mount("/dev/shm", "tmpfs", "shm", [""; 0])]));
        apply(
            &mut spec,
            vec![
                oci_mount("/a/b", "bind", "/x", ["rbind", "rshared"]),
                oci_mount("/dev/shm", "tmpfs", "tmpfs", ["size=1m"]),
                oci_mount("/a", "bind", "/y", ["rbind"]),
            ],
        )
        .unwrap();
        let mounts = spec.mounts().clone().unwrap();
        let dests: Vec<&str> = mounts.iter().map(|m| m.destination().to_str().unwrap()).collect();
        // Same depth keeps the task's order.
        assert_eq!(dests, ["/proc", "/a", "/a/b", "/dev/shm"]);
        assert_eq!(mounts[3].options().as_ref().unwrap()[0], "size=1m");
        assert_eq!(spec.linux().as_ref().unwrap().rootfs_propagation().as_deref(), Some("rshared"));
    }
}
