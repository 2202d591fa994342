//! Unix sockets, the Engine API's local transport.

use std::io;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::Path;

/// A connected socket, ready for [`send`](crate::send).
pub use tokio::net::UnixStream;

/// Connects to the socket at `path`. The connect itself is the blocking
/// one, so its errors are the system's as they are (permission denied,
/// no such file, connection refused).
pub fn connect(path: &Path) -> io::Result<UnixStream> {
    let s = StdUnixStream::connect(path)?;
    s.set_nonblocking(true)?;
    let _rt = crate::enter()?;
    UnixStream::from_std(s)
}
