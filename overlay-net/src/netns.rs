//! Network namespaces owned by shoald: one per task, kept alive by a bind
//! mount of its nsfs file at `<netns dir>/<task>` (as `ip netns add` does
//! under /run/netns), so runc joins it by path instead of making its own.

use std::fs::File;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

/// Creates a new, empty network namespace and pins it at `path`.
pub fn create(path: &Path) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    // The mount point: an empty file (a leftover from a crash is reused).
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    // unshare(CLONE_NEWNET) changes only the calling thread: a throwaway
    // thread makes the namespace and bind-mounts its own nsfs file.
    let result = std::thread::scope(|s| {
        s.spawn(|| -> Result<(), String> {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(|e| format!("creating a network namespace: {e}"))?;
            let src = format!("/proc/self/task/{}/ns/net", nix::unistd::gettid());
            nix::mount::mount(Some(src.as_str()), path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                .map_err(|e| format!("mounting the network namespace at {}: {e}", path.display()))
        })
        .join()
        .unwrap_or_else(|_| Err("namespace thread panicked".into()))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Opens a pinned namespace (for setns and `IFLA_NET_NS_FD`).
pub fn open(path: &Path) -> Result<File, String> {
    File::open(path).map_err(|e| format!("opening network namespace {}: {e}", path.display()))
}

/// Unpins and deletes the namespace at `path`; the kernel frees it (and the
/// veth end inside, which takes its peer along) once nothing else uses it.
/// A path that is not (or no longer) there is nothing to do.
pub fn remove(path: &Path) -> Result<(), String> {
    match nix::mount::umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(format!("unmounting {}: {e}", path.display())),
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("removing {}: {e}", path.display())),
        _ => Ok(()),
    }
}

/// Runs `f` on a thread inside the namespace `ns` and returns its result
/// (for work that must happen in there, e.g. a netlink socket, sysctls).
pub fn run_in<T: Send>(ns: &File, f: impl FnOnce() -> Result<T, String> + Send) -> Result<T, String> {
    std::thread::scope(|s| {
        s.spawn(move || {
            // setns changes only this short-lived thread.
            nix::sched::setns(ns, CloneFlags::CLONE_NEWNET).map_err(|e| format!("entering a network namespace: {e}"))?;
            f()
        })
        .join()
        .unwrap_or_else(|_| Err("namespace thread panicked".into()))
    })
}
