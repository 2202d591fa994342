//! Container root file systems: an overlayfs mount per container, with the
//! image's unpacked layers as read-only lower directories and a private
//! upper directory for whatever the container writes.
//!
//! ```text
//! <root>/rootfs/<container>/upper     the container's changes
//! <root>/rootfs/<container>/work      overlayfs scratch space
//! <root>/rootfs/<container>/merged    the mount: the container's /
//! <root>/rootfs/<container>/layers.json  which layers it uses (so garbage
//!                                        collection leaves them alone)
//! ```
//!
//! Mount options are limited to one page (4096 bytes). Absolute layer
//! paths fit about 40 layers; beyond that the mount is made from a child
//! process that changes into the layers directory first and passes short
//! relative paths, as Docker's overlay2 driver does (about 55 layers).

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

use super::digest::Digest;
use super::error::{ImageError, Result};
use super::store::{write_atomic, Store};
use super::unpack::{is_unpacked, layer_dir};

/// The kernel's limit on mount data.
const MOUNT_DATA_MAX: usize = 4095;

/// A prepared (mounted) container root file system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rootfs {
    pub container_id: String,
    /// The merged view: use as the OCI spec's `root.path`.
    pub path: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// The layers in use, bottom first (diff IDs).
    pub layers: Vec<Digest>,
}

/// Container IDs become directory names: keep them to a safe alphabet.
fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ImageError::invalid(format!("invalid container ID {id:?}")))
    }
}

pub fn container_dir(store: &Store, id: &str) -> PathBuf {
    store.root().join("rootfs").join(id)
}

/// Mounts a root file system for `container_id` from `layers` (diff IDs,
/// bottom first, as in the image config). Calling it again for a
/// container whose root is already mounted returns the existing one, so a
/// restarted daemon can pick its containers up.
pub fn prepare(store: &Store, layers: &[Digest], container_id: &str) -> Result<Rootfs> {
    check_id(container_id)?;
    for l in layers {
        if !is_unpacked(store, l) {
            return Err(ImageError::not_found(format!("layer {l} is not unpacked on this node")));
        }
    }
    let dir = container_dir(store, container_id);
    let rootfs = Rootfs {
        container_id: container_id.to_string(),
        path: dir.join("merged"),
        upper: dir.join("upper"),
        work: dir.join("work"),
        layers: layers.to_vec(),
    };
    if is_mountpoint(&rootfs.path) {
        return Ok(rootfs);
    }
    for d in [&rootfs.upper, &rootfs.work, &rootfs.path] {
        fs::create_dir_all(d).map_err(|e| ImageError::io(format!("creating {}", d.display()), e))?;
    }
    // The merged root takes the upper directory's mode: a container's `/` is
    // 0755 as in Docker (shoald's umask would make it 0700, and a container
    // user other than root could then reach nothing).
    fs::set_permissions(&rootfs.upper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| ImageError::io(format!("chmod {}", rootfs.upper.display()), e))?;
    let record = serde_json::to_vec(&rootfs.layers).map_err(|e| ImageError::internal(e.to_string()))?;
    write_atomic(&dir.join("layers.json"), &record, &store.temp_path("rootfs-layers"))?;

    // overlayfs wants at least one lower directory; an image without layers
    // (FROM scratch with only metadata) gets an empty one.
    let mut lowers: Vec<PathBuf> = layers.iter().rev().map(|l| layer_dir(store, l)).collect();
    if lowers.is_empty() {
        let empty = store.root().join("layers").join("empty");
        fs::create_dir_all(&empty).map_err(|e| ImageError::io("creating empty layer", e))?;
        lowers.push(empty);
    }
    let index_off = if Path::new("/sys/module/overlay/parameters/index").exists() { ",index=off" } else { "" };
    let absolute =
        format!("lowerdir={},upperdir={},workdir={}{index_off}", join_paths(&lowers), rootfs.upper.display(), rootfs.work.display());
    let result = if absolute.len() <= MOUNT_DATA_MAX {
        mount_overlay(&rootfs.path, &absolute, None)
    } else {
        // Relative to <root>/layers: "sha256/<hex>" per layer.
        let base = store.root().join("layers");
        let rel: Vec<PathBuf> = lowers.iter().map(|l| l.strip_prefix(&base).unwrap_or(l).to_path_buf()).collect();
        let data =
            format!("lowerdir={},upperdir={},workdir={}{index_off}", join_paths(&rel), rootfs.upper.display(), rootfs.work.display());
        if data.len() > MOUNT_DATA_MAX {
            return Err(ImageError::invalid(format!("image has too many layers ({}) for an overlay mount", layers.len())));
        }
        mount_overlay(&rootfs.path, &data, Some(&base))
    };
    result.map_err(|e| ImageError::io(format!("mounting overlay rootfs at {}", rootfs.path.display()), e))?;
    Ok(rootfs)
}

fn join_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":")
}

fn cstr(s: &[u8]) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

/// mount(2) of type overlay. With `chdir`, done in a forked child that
/// first changes into that directory, so relative lower paths resolve there
/// without touching the daemon's own working directory.
fn mount_overlay(target: &Path, data: &str, chdir: Option<&Path>) -> io::Result<()> {
    let source = cstr(b"overlay")?;
    let fstype = cstr(b"overlay")?;
    let target_c = cstr(target.as_os_str().as_bytes())?;
    let data_c = cstr(data.as_bytes())?;
    // With &CStr arguments nix passes the pointers through: no allocation.
    let mount_it =
        || mount(Some(source.as_c_str()), target_c.as_c_str(), Some(fstype.as_c_str()), MsFlags::empty(), Some(data_c.as_c_str()));
    let Some(dir) = chdir else {
        return Ok(mount_it()?);
    };
    let dir_c = cstr(dir.as_os_str().as_bytes())?;
    // SAFETY: the child only makes raw system calls (chdir, mount, _exit),
    // which are async-signal-safe, on memory prepared before the fork.
    let child = match unsafe { fork() }? {
        ForkResult::Parent { child } => child,
        ForkResult::Child => {
            let r = nix::unistd::chdir(dir_c.as_c_str()).and_then(|()| mount_it());
            // The exit code is the errno (read raw: nix maps numbers it does
            // not know to 0). nix has no _exit(2), and std's exit runs atexit
            // handlers: libc.
            // SAFETY: _exit ends the child at once.
            unsafe { libc::_exit(if r.is_ok() { 0 } else { Errno::last_raw() }) }
        }
    };
    loop {
        match waitpid(child, None) {
            Err(Errno::EINTR) => {}
            Ok(WaitStatus::Exited(_, 0)) => return Ok(()),
            Ok(WaitStatus::Exited(_, code)) => return Err(io::Error::from_raw_os_error(code)),
            // Killed by a signal. EINVAL (which waitpid itself cannot give
            // here): nix reaped it but has no name for its signal.
            Ok(_) | Err(Errno::EINVAL) => return Err(io::Error::other("mount helper process died")),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether `path` is the root of a mount (its device differs from its
/// parent's — true for every overlay mount).
pub fn is_mountpoint(path: &Path) -> bool {
    let (Ok(me), Some(parent)) = (fs::symlink_metadata(path), path.parent()) else { return false };
    match fs::symlink_metadata(parent) {
        Ok(p) => me.dev() != p.dev() || me.ino() == p.ino(),
        Err(_) => false,
    }
}

/// Unmounts a container's root file system and deletes its directories
/// (the container's changes with them). Safe to call twice or for a
/// container that has none. The directories are only deleted once the
/// mount is gone, never through it.
pub fn remove(store: &Store, container_id: &str) -> Result<()> {
    check_id(container_id)?;
    let dir = container_dir(store, container_id);
    if !dir.exists() {
        return Ok(());
    }
    let merged = dir.join("merged");
    if is_mountpoint(&merged) {
        let target = cstr(merged.as_os_str().as_bytes()).map_err(|e| ImageError::io("unmount", e))?;
        // Lazy detach, as Docker's overlay2 does: a process still holding a
        // file open must not keep the mount (and the task) around.
        match umount2(target.as_c_str(), MntFlags::MNT_DETACH) {
            Ok(()) | Err(Errno::EINVAL) => {}
            Err(e) => return Err(ImageError::io(format!("unmounting {}", merged.display()), e.into())),
        }
        if is_mountpoint(&merged) {
            return Err(ImageError::internal(format!("{} is still mounted", merged.display())));
        }
    }
    // Move the directory aside first: a half-deleted rootfs is never
    // mistaken for a usable one.
    let doomed = store.temp_path("rootfs-rm");
    fs::rename(&dir, &doomed).map_err(|e| ImageError::io(format!("removing {}", dir.display()), e))?;
    fs::remove_dir_all(&doomed).map_err(|e| ImageError::io(format!("removing {}", doomed.display()), e))
}

/// The layers used by every container root on the node (mounted or not).
pub fn layers_in_use(store: &Store) -> Vec<Digest> {
    let mut out = Vec::new();
    for e in fs::read_dir(store.root().join("rootfs")).into_iter().flatten().flatten() {
        if let Ok(data) = fs::read(e.path().join("layers.json")) {
            if let Ok(layers) = serde_json::from_slice::<Vec<Digest>>(&data) {
                out.extend(layers);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::unpack::tests::TarBuilder;
    use crate::image::unpack::{unpack_layer, LayerSource};

    /// A scratch store root that is unmounted and deleted even when the
    /// test panics (never deleting through a live mount).
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let p = std::env::temp_dir().join(format!("shoal-rootfs-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            Scratch(p)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            for e in fs::read_dir(self.0.join("rootfs")).into_iter().flatten().flatten() {
                if let Ok(c) = cstr(e.path().join("merged").as_os_str().as_bytes()) {
                    let _ = umount2(c.as_c_str(), MntFlags::MNT_DETACH);
                }
            }
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn layer(store: &Store, tar: Vec<u8>) -> Digest {
        let d = Digest::sha256_of(&tar);
        unpack_layer(store, &tar[..], &LayerSource { diff_id: &d, blob: None }).unwrap();
        d
    }

    #[test]
    fn container_ids_are_checked() {
        for bad in ["", ".", "..", "a/b", "a b", &"x".repeat(129)] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
        assert!(check_id("3f2a_task.1-x").is_ok());
    }

    /// Mounts a real overlay (needs root, which the test environment has).
    #[test]
    fn mounts_layers_with_whiteouts_and_removes_cleanly() {
        let scratch = Scratch::new("mount");
        let store = Store::open(&scratch.0).unwrap();
        let base = layer(
            &store,
            TarBuilder::new().file("etc/keep", b"base", 0o644).file("etc/gone", b"old", 0o644).file("cache/a", b"a", 0o644).finish(),
        );
        let top = layer(
            &store,
            TarBuilder::new()
                .file("etc/.wh.gone", b"", 0o644)
                .file("etc/keep", b"top", 0o644)
                .file("cache/.wh..wh..opq", b"", 0o644)
                .file("cache/b", b"b", 0o644)
                .finish(),
        );
        let rootfs = prepare(&store, &[base.clone(), top.clone()], "c1").unwrap();
        assert!(is_mountpoint(&rootfs.path));
        assert_eq!(fs::read(rootfs.path.join("etc/keep")).unwrap(), b"top", "upper layer wins");
        assert!(!rootfs.path.join("etc/gone").exists(), "whiteout hides the file");
        assert!(!rootfs.path.join("cache/a").exists(), "opaque dir hides lower contents");
        assert!(rootfs.path.join("cache/b").exists());
        // Writes go to the container's upper dir, not the shared layers.
        fs::write(rootfs.path.join("etc/keep"), b"changed").unwrap();
        assert_eq!(fs::read(rootfs.upper.join("etc/keep")).unwrap(), b"changed");
        assert_eq!(fs::read(layer_dir(&store, &top).join("etc/keep")).unwrap(), b"top");
        assert_eq!(layers_in_use(&store), vec![base.clone(), top.clone()]);

        // Idempotent prepare.
        assert_eq!(prepare(&store, &[base.clone(), top.clone()], "c1").unwrap(), rootfs);

        remove(&store, "c1").unwrap();
        assert!(!container_dir(&store, "c1").exists());
        assert!(layer_dir(&store, &base).join("etc/keep").exists(), "layers survive");
        remove(&store, "c1").unwrap();
        assert!(layers_in_use(&store).is_empty());

        // A missing layer is refused before anything is mounted.
        let e = prepare(&store, &[Digest::sha256_of(b"nope")], "c2").unwrap_err();
        assert!(e.message.contains("not unpacked"), "{e}");
    }

    #[test]
    fn many_layers_mount_through_relative_paths() {
        let scratch = Scratch::new("many");
        let store = Store::open(&scratch.0).unwrap();
        let layers: Vec<Digest> =
            (0..50).map(|i| layer(&store, TarBuilder::new().file(&format!("f{i}"), format!("{i}").as_bytes(), 0o644).finish())).collect();
        let rootfs = prepare(&store, &layers, "many").unwrap();
        assert_eq!(fs::read(rootfs.path.join("f0")).unwrap(), b"0");
        assert_eq!(fs::read(rootfs.path.join("f49")).unwrap(), b"49");
        remove(&store, "many").unwrap();
    }
}
