//! TCP connections, with TLS when a configuration is given (the Engine
//! API on `tcp://`).

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
    Dial(io::Error),
    /// Connected, but the TLS handshake failed.
    Tls(io::Error),
}

/// Connects to `host:port`, then shakes hands with `tls` if given; both
/// within `timeout`. `host` is a name or an address (IPv6 without
/// brackets); with TLS the server's certificate must name it.
pub fn connect(host: &str, port: u16, tls: Option<Arc<ClientConfig>>, timeout: Duration) -> Result<Box<dyn Io>, ConnectError> {
    // A timeout here is block_on's own error ("i/o timeout").
    let tcp = match block_on(Some(timeout), TcpStream::connect((host, port))) {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) | Err(e) => return Err(ConnectError::Dial(e)),
    };
    let _ = tcp.set_nodelay(true);
    let Some(config) = tls else { return Ok(Box::new(tcp)) };
    match block_on(Some(timeout), crate::tls::handshake(tcp, config, host)) {
        Ok(Ok(stream)) => Ok(Box::new(stream)),
        Ok(Err(e)) | Err(e) => Err(ConnectError::Tls(e)),
    }
}
