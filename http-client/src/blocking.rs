//! Running hyper's futures to completion on the caller's thread.
//!
//! The sockets are registered with one small runtime shared by the
//! process (one worker thread, started on first use), whose reactor and
//! timers wake the caller; the caller polls the future itself and parks
//! in between. So the client works the same from a plain thread, from a
//! `spawn_blocking` thread of a daemon's runtime, from a test with no
//! runtime at all, and even from inside an async task (where it blocks,
//! as a blocking socket would). A process with nothing async in it (the
//! CLI) can instead let each waiting thread drive a current-thread
//! runtime itself ([`drive_on_calling_threads`]).

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use tokio::runtime::{EnterGuard, Runtime};

/// Asked for by [`drive_on_calling_threads`] before the runtime exists.
static CALLERS_DRIVE: AtomicBool = AtomicBool::new(false);

/// The shared runtime, and whether callers drive it (a current-thread
/// runtime) or its own I/O thread does. The mode is fixed when it is built.
struct Shared {
    runtime: Runtime,
    callers_drive: bool,
}

static RUNTIME: OnceLock<Result<Shared, String>> = OnceLock::new();

fn shared() -> io::Result<&'static Shared> {
    RUNTIME
        .get_or_init(|| {
            let callers_drive = CALLERS_DRIVE.load(Ordering::SeqCst);
            let mut builder = if callers_drive {
                tokio::runtime::Builder::new_current_thread()
            } else {
                let mut b = tokio::runtime::Builder::new_multi_thread();
                b.worker_threads(1).thread_name("shoal-http-io");
                b
            };
            let runtime = builder.enable_io().enable_time().build().map_err(|e| format!("starting the HTTP client's runtime: {e}"))?;
            Ok(Shared { runtime, callers_drive })
        })
        .as_ref()
        .map_err(|e| io::Error::other(e.clone()))
}

/// For a process that is not async at all (a CLI): the thread waiting in
/// [`block_on`] waits in the reactor itself, instead of being woken by the
/// shared I/O thread, which saves two thread switches per wait (about
/// 0.4 ms per request on the 2-core test machine). [`block_on`] then
/// panics if called from inside an async task (tokio's `Runtime::block_on`
/// rule). Must come before the first request: a runtime already built
/// keeps its mode (a debug build asserts).
pub fn drive_on_calling_threads() {
    CALLERS_DRIVE.store(true, Ordering::SeqCst);
    debug_assert!(RUNTIME.get().is_none_or(|r| r.as_ref().map_or(true, |s| s.callers_drive)), "the HTTP client's runtime was built before");
}

/// Enters the shared runtime's context, for work with its sockets outside
/// [`block_on`] (such as turning an upgraded socket back into a std one).
pub fn enter() -> io::Result<EnterGuard<'static>> {
    Ok(shared()?.runtime.enter())
}

/// Wakes the thread blocked in [`block_on`].
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `fut` to completion on the calling thread; with a `timeout`, gives
/// up after it with an error of kind `TimedOut` ("i/o timeout", Go's
/// words). Unlike tokio's `Handle::block_on` this does not panic inside
/// an async context (it blocks the task's thread, as a blocking socket
/// would), unless callers drive the runtime ([`drive_on_calling_threads`]).
pub fn block_on<F: Future>(timeout: Option<Duration>, fut: F) -> io::Result<F::Output> {
    let shared = shared()?;
    let fut = async move {
        match timeout {
            Some(t) => tokio::time::timeout(t, fut).await.map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "i/o timeout")),
            None => Ok(fut.await),
        }
    };
    if shared.callers_drive {
        return shared.runtime.block_on(fut);
    }
    let _context = shared.runtime.enter();
    // Out of tokio's cooperative budgeting: called from inside a task, the
    // task's budget would run out and never be renewed (the task does not
    // yield while this blocks), and every read would then stay pending.
    let mut fut = pin!(tokio::task::unconstrained(fut));
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(r) = fut.as_mut().poll(&mut cx) {
            return r;
        }
        std::thread::park();
    }
}
