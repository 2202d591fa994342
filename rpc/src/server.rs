//! The serving side: a TLS-accepted connection and who is on the other end.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use shoal_security::NodeIdentity;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::frame::{read_frame, write_frame, Kind};
use crate::{Request, Response};

/// The authenticated peer: `identity` is `None` for a node with no
/// certificate yet (it may only join).
#[derive(Clone, Debug)]
pub struct Peer {
    pub remote: SocketAddr,
    pub identity: Option<NodeIdentity>,
}

pub struct ServerConn {
    stream: TlsStream<TcpStream>,
    pub peer: Peer,
}

pub async fn accept(acceptor: &TlsAcceptor, tcp: TcpStream, remote: SocketAddr) -> io::Result<ServerConn> {
    tcp.set_nodelay(true)?;
    let stream = acceptor.accept(tcp).await?;
    let identity = shoal_security::tls::peer_identity(stream.get_ref().1.peer_certificates());
    Ok(ServerConn { stream, peer: Peer { remote, identity } })
}

pub fn acceptor(cfg: Arc<rustls::ServerConfig>) -> TlsAcceptor {
    TlsAcceptor::from(cfg)
}

pub enum Incoming {
    Request(Box<Request>),
    Raft(Vec<u8>),
}

impl ServerConn {
    /// The next request or Raft frame; `None` when the peer hung up.
    pub async fn next(&mut self) -> io::Result<Option<Incoming>> {
        match read_frame(&mut self.stream).await? {
            None => Ok(None),
            Some((Kind::Raft, body)) => Ok(Some(Incoming::Raft(body))),
            Some((Kind::Json, body)) => serde_json::from_slice(&body)
                .map(|r| Some(Incoming::Request(Box::new(r))))
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }

    pub async fn respond(&mut self, resp: &Response) -> io::Result<()> {
        let body = serde_json::to_vec(resp).map_err(io::Error::other)?;
        write_frame(&mut self.stream, Kind::Json, &body).await
    }
}
