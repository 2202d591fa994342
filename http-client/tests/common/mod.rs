//! Shared by the test binaries (each runs the client in one mode).

/// This thread's ID, for [`wait_until_blocked`].
pub fn thread_id() -> String {
    let link = std::fs::read_link("/proc/thread-self").unwrap();
    link.file_name().unwrap().to_string_lossy().into_owned()
}

/// Waits (10 s at most) until thread `tid` of this process sleeps in the
/// kernel: a reader blocked in its wait, so a close must wake it.
pub fn wait_until_blocked(tid: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
        // The state follows the command name, which is in parentheses.
        if stat.rsplit_once(')').unwrap().1.trim_start().starts_with('S') {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "thread {tid} never blocked");
        std::thread::yield_now();
    }
}
