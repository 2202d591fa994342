//! nftables scripts run through libnftables, the library the `nft`
//! command is built on, with one context kept per network namespace.
//!
//! Why: a rule update through a new `nft -f -` process costs 12-18 ms
//! here (process start, and the library's own start-up: a new context
//! alone costs about 12 ms), whatever the update; a kept context runs the
//! same script in about 0.1 ms. A context's netlink socket belongs to the
//! network namespace of the thread that made it, so a `Nft` made inside a
//! namespace keeps acting there, from any thread.
//!
//! The library is loaded at run time (`libnftables.so.1`, from the
//! nftables package): where it cannot be loaded, scripts go to an `nft`
//! process as before.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// libnftables' entry points (see libnftables(3)).
struct Lib {
    _lib: libloading::Library,
    ctx_new: unsafe extern "C" fn(u32) -> *mut c_void,
    ctx_free: unsafe extern "C" fn(*mut c_void),
    buffer_output: unsafe extern "C" fn(*mut c_void) -> c_int,
    buffer_error: unsafe extern "C" fn(*mut c_void) -> c_int,
    get_output: unsafe extern "C" fn(*mut c_void) -> *const c_char,
    get_error: unsafe extern "C" fn(*mut c_void) -> *const c_char,
    run: unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int,
}

fn lib() -> Option<&'static Lib> {
    static LIB: OnceLock<Option<Lib>> = OnceLock::new();
    LIB.get_or_init(|| {
        // SAFETY: loading the nftables package's own library, whose
        // initialisers only set up its tables; the symbols are looked up
        // with the signatures libnftables(3) documents.
        let loaded = unsafe {
            let lib = libloading::Library::new("libnftables.so.1").ok()?;
            Lib {
                ctx_new: *lib.get(b"nft_ctx_new\0").ok()?,
                ctx_free: *lib.get(b"nft_ctx_free\0").ok()?,
                buffer_output: *lib.get(b"nft_ctx_buffer_output\0").ok()?,
                buffer_error: *lib.get(b"nft_ctx_buffer_error\0").ok()?,
                get_output: *lib.get(b"nft_ctx_get_output_buffer\0").ok()?,
                get_error: *lib.get(b"nft_ctx_get_error_buffer\0").ok()?,
                run: *lib.get(b"nft_run_cmd_from_buffer\0").ok()?,
                _lib: lib,
            }
        };
        Some(loaded)
    })
    .as_ref()
}

/// Runs nftables scripts in the network namespace it was made in.
pub struct Nft {
    /// A libnftables context (null when the library is not there).
    ctx: *mut c_void,
}

// SAFETY: a context is used by one thread at a time (`run` takes `&mut
// self`); libnftables keeps no thread-local state for it.
unsafe impl Send for Nft {}

impl std::fmt::Debug for Nft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.ctx.is_null() { "Nft(nft process)" } else { "Nft(libnftables)" })
    }
}

impl Nft {
    /// A runner for the calling thread's network namespace.
    pub fn here() -> Nft {
        let ctx = match lib() {
            Some(l) => {
                // SAFETY: nft_ctx_new returns a new context or null; the
                // buffering calls take the context it returned.
                unsafe {
                    let ctx = (l.ctx_new)(0);
                    if !ctx.is_null() {
                        (l.buffer_output)(ctx);
                        (l.buffer_error)(ctx);
                    }
                    ctx
                }
            }
            None => std::ptr::null_mut(),
        };
        Nft { ctx }
    }

    /// Runs a script (as `nft -f -` would), all of it or none.
    pub fn run(&mut self, script: &str) -> Result<(), String> {
        let Some(l) = lib().filter(|_| !self.ctx.is_null()) else { return run_process(script) };
        let text = CString::new(script).map_err(|_| "an nftables script with a NUL byte".to_string())?;
        // SAFETY: the context is ours and alive; the buffers it returns
        // are read before the next call on it (each read resets them).
        unsafe {
            let rc = (l.run)(self.ctx, text.as_ptr());
            let _ = (l.get_output)(self.ctx);
            let err = (l.get_error)(self.ctx);
            if rc == 0 {
                return Ok(());
            }
            let msg = if err.is_null() { String::new() } else { CStr::from_ptr(err).to_string_lossy().trim().to_string() };
            Err(format!("nftables refused the rules: {msg}"))
        }
    }
}

impl Drop for Nft {
    fn drop(&mut self) {
        if let (Some(l), false) = (lib(), self.ctx.is_null()) {
            // SAFETY: the context is ours and used no more.
            unsafe { (l.ctx_free)(self.ctx) }
        }
    }
}

/// Scripts longer than this many lines run in a context of their own.
const LARGE: usize = 64;

/// A runner made on first use inside the namespace it serves, kept with
/// the state that owns it (a clone starts without one; two compare equal
/// whatever they hold: it is a cache, not state).
#[derive(Debug, Default)]
pub struct Kept(Option<Nft>);

impl Kept {
    /// Runs a script with the kept runner, made here if there is none
    /// yet: call it from inside the namespace it serves. A large script (a
    /// first load, a node joining many services at once) runs in a context
    /// made for it alone: a context that ran a large batch keeps it in its
    /// cache and fetches it all again after every later commit. Measured
    /// with 1,000 services of 10 tasks (`cargo bench -p shoal-overlay
    /// --bench mesh -- rules`): one backend change took 3.9 ms at p50 after
    /// the first load had gone through the kept context, 0.8 ms when it had
    /// not.
    pub fn run(&mut self, script: &str) -> Result<(), String> {
        if script.lines().count() > LARGE {
            return Nft::here().run(script);
        }
        self.0.get_or_insert_with(Nft::here).run(script)
    }
}

impl Clone for Kept {
    fn clone(&self) -> Kept {
        Kept(None)
    }
}

impl PartialEq for Kept {
    fn eq(&self, _: &Kept) -> bool {
        true
    }
}

/// Runs a script in the calling process's own network namespace (the
/// host's, for a daemon), through one runner kept for the process. Not
/// for threads that entered another namespace.
pub fn run_in_own_namespace(script: &str) -> Result<(), String> {
    static OWN: std::sync::Mutex<Kept> = std::sync::Mutex::new(Kept(None));
    OWN.lock().unwrap_or_else(|p| p.into_inner()).run(script)
}

/// `nft -f -` in the calling thread's network namespace.
fn run_process(script: &str) -> Result<(), String> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft (nftables): {e}"))?;
    child.stdin.take().expect("piped").write_all(script.as_bytes()).map_err(|e| format!("writing to nft: {e}"))?;
    let out = child.wait_with_output().map_err(|e| format!("running nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("nftables refused the rules: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs root (namespaces), as CI runs: a context made in a namespace
    /// acts there when used from a thread outside it; a refused script
    /// says why and changes nothing.
    #[test]
    fn a_context_keeps_acting_in_its_namespace() {
        assert!(lib().is_some(), "libnftables.so.1 (the nftables package) is needed");
        let dir = std::env::temp_dir().join(format!("shoal-nft-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (pa, pb) = (dir.join("a"), dir.join("b"));
        crate::netns::create(&pa).unwrap();
        crate::netns::create(&pb).unwrap();
        let (na, nb) = (crate::netns::open(&pa).unwrap(), crate::netns::open(&pb).unwrap());
        let mut a = crate::netns::run_in(&na, || Ok(Nft::here())).unwrap();
        let mut b = crate::netns::run_in(&nb, || Ok(Nft::here())).unwrap();
        // Used from this thread (not in either namespace).
        a.run("add table ip only-in-a\n").unwrap();
        b.run("add table ip only-in-b\n").unwrap();
        let err = a.run("add table ip t2\nadd chain ip nowhere c\n").unwrap_err();
        assert!(err.contains("nowhere") || err.contains("No such file"), "{err}");
        let list = |ns: &std::fs::File| {
            crate::netns::run_in(ns, || {
                let out = Command::new("nft").args(["list", "tables"]).output().map_err(|e| e.to_string())?;
                Ok(String::from_utf8_lossy(&out.stdout).into_owned())
            })
            .unwrap()
        };
        let (ta, tb) = (list(&na), list(&nb));
        assert_eq!(ta.trim(), "table ip only-in-a", "the refused script added nothing: {ta}");
        assert_eq!(tb.trim(), "table ip only-in-b");
        drop((a, b, na, nb));
        let _ = crate::netns::remove(&pa);
        let _ = crate::netns::remove(&pb);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
