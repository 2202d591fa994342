//! Network namespaces owned by shoald: one per task, kept alive by a bind
//! mount of its nsfs file at `<netns dir>/<task>` (as `ip netns add` does
//! under /run/netns), so runc joins it by path instead of making its own.

use std::ffi::CString;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cpath(p: &Path) -> Result<CString, String> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| format!("bad path {}", p.display()))
}

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
    let target = cpath(path)?;
    // unshare(CLONE_NEWNET) changes only the calling thread: a throwaway
    // thread makes the namespace and bind-mounts its own nsfs file.
    let result = std::thread::scope(|s| {
        s.spawn(|| -> Result<(), String> {
            // SAFETY: unshare/mount on this short-lived thread.
            unsafe {
                if libc::unshare(libc::CLONE_NEWNET) < 0 {
                    return Err(format!("creating a network namespace: {}", std::io::Error::last_os_error()));
                }
                let src = CString::new(format!("/proc/self/task/{}/ns/net", libc::gettid())).expect("no NUL");
                if libc::mount(src.as_ptr(), target.as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()) < 0 {
                    return Err(format!("mounting the network namespace at {}: {}", path.display(), std::io::Error::last_os_error()));
                }
            }
            Ok(())
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
    let c = cpath(path)?;
    // SAFETY: umount2 with a valid C string.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } < 0 {
        let e = std::io::Error::last_os_error();
        if !matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOENT)) {
            return Err(format!("unmounting {}: {e}", path.display()));
        }
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("removing {}: {e}", path.display())),
        _ => Ok(()),
    }
}

/// Runs `f` on a thread inside the namespace `ns` and returns its result
/// (for work that must happen in there, e.g. a netlink socket, sysctls).
pub fn run_in<T: Send>(ns: &File, f: impl FnOnce() -> Result<T, String> + Send) -> Result<T, String> {
    use std::os::fd::AsRawFd;
    let fd = ns.as_raw_fd();
    std::thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: setns on this short-lived thread only.
            if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } < 0 {
                return Err(format!("entering a network namespace: {}", std::io::Error::last_os_error()));
            }
            f()
        })
        .join()
        .unwrap_or_else(|_| Err("namespace thread panicked".into()))
    })
}
