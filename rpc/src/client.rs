//! The calling side: one TLS connection, one request at a time.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::frame::{read_frame, write_frame, Kind};
use crate::{Request, Response, MANAGER_SERVER_NAME};

pub struct Conn {
    stream: TlsStream<TcpStream>,
}

/// Connects to a manager at `addr` (host:port) within `timeout`, verifying it as
/// "swarm-manager" under the roots in `tls`.
pub async fn connect(addr: &str, tls: Arc<rustls::ClientConfig>, timeout: Duration) -> io::Result<Conn> {
    let fut = async {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from(MANAGER_SERVER_NAME).expect("static server name is valid");
        let stream = TlsConnector::from(tls).connect(name, tcp).await?;
        Ok(Conn { stream })
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("timed out connecting to {addr}")))?
}

impl Conn {
    /// Who answered: the identity in the manager's certificate.
    pub fn server_identity(&self) -> Option<shoal_security::NodeIdentity> {
        shoal_security::tls::peer_identity(self.stream.get_ref().1.peer_certificates())
    }

    pub async fn call(&mut self, req: &Request, timeout: Duration) -> io::Result<Response> {
        let fut = async {
            let body = serde_json::to_vec(req).map_err(io::Error::other)?;
            write_frame(&mut self.stream, Kind::Json, &body).await?;
            match read_frame(&mut self.stream).await? {
                Some((Kind::Json, body)) => serde_json::from_slice(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
                Some(_) => Err(io::Error::new(io::ErrorKind::InvalidData, "unexpected frame kind")),
                None => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed by the manager")),
            }
        };
        tokio::time::timeout(timeout, fut).await.map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "request timed out"))?
    }

    /// Sends a request without waiting for an answer (streams such as logs).
    pub async fn send(&mut self, req: &Request) -> io::Result<()> {
        let body = serde_json::to_vec(req).map_err(io::Error::other)?;
        write_frame(&mut self.stream, Kind::Json, &body).await
    }

    /// The next response frame of a stream; `None` when the manager hung up.
    pub async fn recv(&mut self) -> io::Result<Option<Response>> {
        match read_frame(&mut self.stream).await? {
            Some((Kind::Json, body)) => serde_json::from_slice(&body).map(Some).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Some(_) => Err(io::Error::new(io::ErrorKind::InvalidData, "unexpected frame kind")),
            None => Ok(None),
        }
    }

    /// Turns this connection into a Raft stream (no responses are sent back).
    pub async fn start_raft_stream(&mut self) -> io::Result<()> {
        let body = serde_json::to_vec(&Request::RaftStream).map_err(io::Error::other)?;
        write_frame(&mut self.stream, Kind::Json, &body).await
    }

    /// Sends one Raft message (in pieces when it is larger than a frame).
    pub async fn send_raft(&mut self, msg: &[u8]) -> io::Result<()> {
        crate::frame::write_raft_message(&mut self.stream, msg).await
    }
}

/// Connects, makes one call, closes.
pub async fn call_once(addr: &str, tls: Arc<rustls::ClientConfig>, req: &Request, timeout: Duration) -> io::Result<Response> {
    let mut c = connect(addr, tls, timeout).await?;
    c.call(req, timeout).await
}
