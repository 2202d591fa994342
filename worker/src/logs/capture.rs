//! Capturing a container's stdout and stderr in shoald itself, with no
//! helper process: the container gets the write ends of two pipes, one
//! thread per container polls the read ends and appends a timestamped
//! json-file record per line to the task's log file.
//!
//! The thread holds two 16 KiB line buffers and a 32 KiB read buffer; it
//! ends when both pipes reach end of file (every process holding the write
//! ends exited), which is also what [`CaptureDone`] reports.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use shoal_rpc::logs::LogStream;

use super::format::{encode, Splitter};

/// Write ends for the runtime (given to runc as its stdout and stderr).
pub struct WriteEnds {
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// Read ends, kept by shoald.
pub struct ReadEnds {
    stdout: OwnedFd,
    /// `None` for a terminal, whose one stream is the container's stdout.
    stderr: Option<OwnedFd>,
}

impl ReadEnds {
    /// A terminal's master end: everything read is the container's stdout
    /// (Docker's json-file log of a TTY container has only stdout).
    pub fn terminal(master: OwnedFd) -> ReadEnds {
        ReadEnds { stdout: master, stderr: None }
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    // Close-on-exec on both ends: no other child (another container's runc)
    // may inherit them, or the reader would never see end of file. The
    // runtime gets the write ends through dup2, which clears the flag.
    Ok(nix::unistd::pipe2(OFlag::O_CLOEXEC)?)
}

pub fn pipes() -> io::Result<(ReadEnds, WriteEnds)> {
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    Ok((ReadEnds { stdout: out_r, stderr: Some(err_r) }, WriteEnds { stdout: out_w, stderr: err_w }))
}

/// Set once the capture thread has written everything and closed the file.
#[derive(Clone, Debug, Default)]
pub struct CaptureDone(Arc<(Mutex<bool>, Condvar)>);

impl CaptureDone {
    pub(crate) fn set(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }

    pub fn is_done(&self) -> bool {
        *self.0 .0.lock().unwrap()
    }

    /// Waits up to `timeout`; whether the capture has ended.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let (m, cv) = &*self.0;
        let g = m.lock().unwrap();
        let (g, _) = cv.wait_timeout_while(g, timeout, |done| !*done).unwrap();
        *g
    }
}

/// Starts the capture thread for one container, appending to `log`.
pub fn spawn(name: &str, ends: ReadEnds, log: &Path) -> io::Result<CaptureDone> {
    let file = OpenOptions::new().create(true).append(true).open(log)?;
    let done = CaptureDone::default();
    let d = done.clone();
    std::thread::Builder::new().name(format!("logs-{}", &name[..name.len().min(10)])).stack_size(128 * 1024).spawn(move || {
        if let Err(e) = capture(ends, file) {
            tracing::warn!("capturing container output: {e}");
        }
        d.set();
    })?;
    Ok(done)
}

fn capture(ends: ReadEnds, mut file: File) -> io::Result<()> {
    // A terminal's output is kept as it comes, a record per read: an
    // interactive program's prompt has no newline and must not wait for one.
    let raw = ends.stderr.is_none();
    let mut open = [Some(ends.stdout), ends.stderr];
    let mut splitters = [Splitter::default(), Splitter::default()];
    let streams = [LogStream::Stdout, LogStream::Stderr];
    let mut buf = vec![0u8; 32 * 1024];
    let mut out = Vec::new();
    while open.iter().any(Option::is_some) {
        // Which of the two streams has something (data, end of file or an
        // error): only the open ones are polled.
        let mut ready = [false; 2];
        {
            let (slots, mut pfds): (Vec<usize>, Vec<PollFd>) =
                open.iter().enumerate().filter_map(|(i, fd)| Some((i, PollFd::new(fd.as_ref()?.as_fd(), PollFlags::POLLIN)))).unzip();
            match poll(&mut pfds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            for (i, p) in slots.into_iter().zip(&pfds) {
                // `None`: events nix has no name for, which count too.
                ready[i] = p.revents().is_none_or(|r| !r.is_empty());
            }
        }
        for i in 0..2 {
            if !ready[i] {
                continue;
            }
            let Some(fd) = open[i].as_ref() else { continue };
            let n = match nix::unistd::read(fd, &mut buf) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(_) => 0, // a broken pipe ends this stream like end of file
            };
            let time = shoal_api::time::now_rfc3339();
            let mut emit = |piece: &[u8]| out.extend_from_slice(&encode(streams[i], &time, piece));
            if n == 0 {
                splitters[i].finish(&mut emit);
                open[i] = None;
            } else if raw {
                emit(&buf[..n]);
            } else {
                splitters[i].push(&buf[..n], &mut emit);
            }
        }
        if !out.is_empty() {
            // One write per round, so a reader never sees half a record
            // unless the disk is full.
            file.write_all(&out)?;
            out.clear();
        }
    }
    file.sync_data().ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::format::decode;

    #[test]
    fn both_streams_are_recorded_until_the_writers_close() {
        let dir = std::env::temp_dir().join(format!("shoal-capture-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("t.log");
        let (r, w) = pipes().unwrap();
        let done = spawn("t", r, &log).unwrap();
        let mut out = File::from(w.stdout);
        let mut err = File::from(w.stderr);
        out.write_all(b"one\ntw").unwrap();
        err.write_all(b"oops\n").unwrap();
        out.write_all(b"o\n").unwrap();
        assert!(!done.is_done());
        drop(out);
        err.write_all(b"tail without newline").unwrap();
        drop(err);
        assert!(done.wait_timeout(Duration::from_secs(10)), "capture ended");
        let text = std::fs::read(&log).unwrap();
        let recs: Vec<_> = text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| decode(l).unwrap()).collect();
        let of = |s: &str| recs.iter().filter(|r| r.stream == s).map(|r| r.log.clone()).collect::<Vec<_>>();
        assert_eq!(of("stdout"), ["one\n", "two\n"]);
        assert_eq!(of("stderr"), ["oops\n", "tail without newline"]);
        assert!(recs.iter().all(|r| r.unix_nanos().is_some()), "{recs:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
