//! An upgraded connection as two blocking halves: a CLI reads the
//! daemon's output on one thread while another copies stdin to it (Docker's
//! hijacked connection), whatever carries it (unix socket, TCP, TLS).

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hyper::body::{Buf, Bytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::Notify;

use crate::blocking::block_on;
use crate::exchange::Io;

/// Set by [`Writer::close`]: the reader then ends, even in the middle of a
/// wait for the server.
#[derive(Default)]
struct Closed {
    flag: AtomicBool,
    notify: Notify,
}

/// The receiving half.
pub struct Reader {
    /// What hyper had read past the response head.
    ahead: Bytes,
    half: ReadHalf<Box<dyn Io>>,
    closed: Arc<Closed>,
}

/// The sending half.
pub struct Writer {
    half: WriteHalf<Box<dyn Io>>,
    closed: Arc<Closed>,
}

/// Splits `io`; `read_buf` (from [`Upgrade::Switched`](crate::Upgrade))
/// comes first on the reading side.
pub fn split(io: Box<dyn Io>, read_buf: Bytes) -> (Reader, Writer) {
    let (r, w) = tokio::io::split(io);
    let closed = Arc::new(Closed::default());
    (Reader { ahead: read_buf, half: r, closed: closed.clone() }, Writer { half: w, closed })
}

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.ahead.is_empty() {
            let n = buf.len().min(self.ahead.len());
            buf[..n].copy_from_slice(&self.ahead[..n]);
            self.ahead.advance(n);
            return Ok(n);
        }
        if self.closed.flag.load(Ordering::SeqCst) {
            return Ok(0);
        }
        let (half, closed) = (&mut self.half, &self.closed);
        block_on(None, async move {
            tokio::select! {
                r = half.read(buf) => r,
                // `notify_one` keeps its permit for a wait that starts late.
                _ = closed.notify.notified() => Ok(0),
            }
        })?
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let half = &mut self.half;
        // Flushed each time: TLS keeps written bytes in records until then,
        // and what a user types must reach the server at once.
        block_on(None, async move {
            let n = half.write(buf).await?;
            half.flush().await?;
            Ok(n)
        })?
    }

    fn flush(&mut self) -> io::Result<()> {
        block_on(None, self.half.flush())?
    }
}

impl Writer {
    /// Ends the sending direction (Docker's `CloseWrite`): the server sees
    /// the end of stdin, and its answer still comes in.
    pub fn close_write(&mut self) -> io::Result<()> {
        block_on(None, self.half.shutdown())?
    }

    /// Ends both directions: the reader returns end of stream at once (a
    /// user detaching from an exec).
    pub fn close(&mut self) {
        self.closed.flag.store(true, Ordering::SeqCst);
        self.closed.notify.notify_one();
        let _ = self.close_write();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn pair() -> (Box<dyn Io>, std::net::TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let client = block_on(None, tokio::net::TcpStream::connect(("127.0.0.1", port))).unwrap().unwrap();
        (Box::new(client), l.accept().unwrap().0)
    }

    #[test]
    fn halves_carry_both_directions_and_read_ahead_bytes_first() {
        let (io, mut server) = pair();
        let (mut r, mut w) = split(io, Bytes::from_static(b"ahead;"));
        let reader = std::thread::spawn(move || {
            let mut got = String::new();
            r.read_to_string(&mut got).unwrap();
            got
        });
        w.write_all(b"typed").unwrap();
        w.close_write().unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"typed");
        server.write_all(b"answer").unwrap();
        drop(server);
        assert_eq!(reader.join().unwrap(), "ahead;answer");
    }
}
