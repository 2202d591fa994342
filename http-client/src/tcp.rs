//! TCP connections, with TLS when a configuration is given (the Engine
//! API on `tcp://`).

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use tokio::net::TcpStream;

use crate::blocking::block_on;
use crate::exchange::Io;

/// Why a connection could not be made.
#[derive(Debug)]
pub enum ConnectError {
    /// No TCP connection (refused, unreachable, name not found, timeout).
    Dial { host: String, port: u16, error: io::Error },
    /// Connected, but the TLS handshake failed.
    Tls(io::Error),
}

impl ConnectError {
    /// Nobody listens there (what Docker calls "Cannot connect").
    pub fn refused(&self) -> bool {
        matches!(self, ConnectError::Dial { error, .. } if error.kind() == io::ErrorKind::ConnectionRefused)
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Dial { host, port, error } => f.write_str(&dial_error(host, *port, error)),
            ConnectError::Tls(e) => write!(f, "{e}"),
        }
    }
}

/// A failed dial in Go's words, as Docker's tools print it:
/// `dial tcp 10.0.0.1:2376: connect: connection refused`,
/// `dial tcp 10.0.0.1:2376: i/o timeout`, `dial tcp: lookup h: no such host`.
pub fn dial_error(host: &str, port: u16, e: &io::Error) -> String {
    let addr = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    if e.kind() == io::ErrorKind::TimedOut {
        return format!("dial tcp {addr}: i/o timeout");
    }
    if e.raw_os_error().is_none() && e.to_string().starts_with("failed to lookup address") {
        return format!("dial tcp: lookup {host}: no such host");
    }
    format!("dial tcp {addr}: connect: {}", crate::os_error_text(e))
}

/// How long connecting may take.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Name lookup and the TCP connection, all addresses together.
    pub dial: Duration,
    /// The TLS handshake.
    pub handshake: Duration,
}

/// Connects to `host:port`, then shakes hands with `tls` if given. `host`
/// is a name or an address (IPv6 without brackets); with TLS the server's
/// certificate must name it.
pub fn connect(host: &str, port: u16, tls: Option<Arc<ClientConfig>>, timeouts: Timeouts) -> Result<Box<dyn Io>, ConnectError> {
    // A timeout here is block_on's own error ("i/o timeout").
    let tcp = match block_on(Some(timeouts.dial), TcpStream::connect((host, port))) {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(error)) | Err(error) => return Err(ConnectError::Dial { host: host.to_string(), port, error }),
    };
    let _ = tcp.set_nodelay(true);
    let Some(config) = tls else { return Ok(Box::new(tcp)) };
    match block_on(Some(timeouts.handshake), crate::tls::handshake(tcp, config, host)) {
        Ok(Ok(stream)) => Ok(Box::new(stream)),
        Ok(Err(e)) | Err(e) => Err(ConnectError::Tls(e)),
    }
}
