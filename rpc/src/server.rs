//! The serving side: a TLS-accepted connection and who is on the other end.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use shoal_security::NodeIdentity;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::frame::{caps, read_frame_capped, write_frame, Kind};
use crate::{PreAuthRequest, Request, Response};

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
    raft: crate::frame::RaftAssembler,
}

pub async fn accept(acceptor: &TlsAcceptor, tcp: TcpStream, remote: SocketAddr) -> io::Result<ServerConn> {
    tcp.set_nodelay(true)?;
    let stream = acceptor.accept(tcp).await?;
    let identity = shoal_security::tls::peer_identity(stream.get_ref().1.peer_certificates());
    Ok(ServerConn { stream, peer: Peer { remote, identity }, raft: Default::default() })
}

pub fn acceptor(cfg: Arc<rustls::ServerConfig>) -> TlsAcceptor {
    TlsAcceptor::from(cfg)
}

pub enum Incoming {
    Request(Box<Request>),
    Raft(Vec<u8>),
}

impl ServerConn {
    /// The largest frame this caller may send (see `frame::caps`).
    pub fn frame_cap(&self) -> usize {
        match &self.peer.identity {
            None => caps::PRE_AUTH,
            Some(id) if id.role == shoal_security::Role::Manager => caps::MANAGER,
            Some(_) => caps::NODE,
        }
    }

    /// The next request or Raft frame; `None` when the peer hung up. A caller
    /// without a certificate gets only `Join` decoded; anything else it sends
    /// is an error before any of it is parsed.
    pub async fn next(&mut self) -> io::Result<Option<Incoming>> {
        let bad = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
        let anonymous = self.peer.identity.is_none();
        let cap = self.frame_cap();
        loop {
            return match read_frame_capped(&mut self.stream, cap).await? {
                None => Ok(None),
                Some((Kind::Raft | Kind::RaftPart, _)) if anonymous => Err(bad("a Raft frame from a caller without a certificate".into())),
                Some((kind @ (Kind::Raft | Kind::RaftPart), body)) => match self.raft.push(kind, body)? {
                    Some(msg) => Ok(Some(Incoming::Raft(msg))),
                    None => continue,
                },
                Some((Kind::Json, body)) if anonymous => match serde_json::from_slice::<PreAuthRequest>(&body) {
                    Ok(PreAuthRequest::Join(j)) => Ok(Some(Incoming::Request(Box::new(Request::Join(j))))),
                    Err(e) => Err(bad(format!("only Join is served without a node certificate: {e}"))),
                },
                Some((Kind::Json, body)) => {
                    serde_json::from_slice(&body).map(|r| Some(Incoming::Request(Box::new(r)))).map_err(|e| bad(e.to_string()))
                }
            };
        }
    }

    pub async fn respond(&mut self, resp: &Response) -> io::Result<()> {
        let body = serde_json::to_vec(resp).map_err(io::Error::other)?;
        write_frame(&mut self.stream, Kind::Json, &body).await
    }
}
