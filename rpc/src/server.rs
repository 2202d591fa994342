//! The serving side: the TLS accept loop on port 2377 and the two HTTP/2
//! servers behind it.
//!
//! A connection is first a TLS handshake (ours, so the roots can follow a
//! CA rotation and the caller's certificate is known before any request).
//! Then:
//! - a caller without a certificate (a joining node) goes to a server that
//!   has only the `Join` service: small messages, small flow-control
//!   windows, one stream at a time, a few such connections at once, and
//!   a connection lives at most `ANONYMOUS_LIFETIME`;
//! - a node goes to the server of `Dispatcher` (any node) and `Managers`
//!   (a manager certificate), each with its own message size cap. The
//!   certificate is checked before a byte of a request is decoded; the
//!   manager's handlers then check the store (rights come from the store).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use shoal_security::NodeIdentity;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::server::TlsStream;
use tonic::body::Body;
use tonic::transport::server::Connected;
use tonic::Status;

use crate::wire::dispatcher::dispatcher_server::{Dispatcher, DispatcherServer};
use crate::wire::join::join_server::{Join, JoinServer};
use crate::wire::managers::managers_server::{Managers, ManagersServer};
use crate::{caps, CONNECTION_WINDOW, STREAM_WINDOW};

/// How many connections may be in their TLS handshake at once, and how many
/// handshaken connections without a certificate (joining nodes) may be
/// open. Past either, new connections are closed at once: a flood of them
/// costs a few KiB each, not the manager.
const MAX_HANDSHAKES: usize = 256;
const MAX_ANONYMOUS: usize = 32;
/// A TLS handshake must end within this.
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);
/// A connection without a certificate is closed this long after its
/// handshake, answered or not (a join is one call).
pub const ANONYMOUS_LIFETIME: Duration = Duration::from_secs(10);
/// Streams at once on one node's connection.
const MAX_STREAMS: u32 = 256;

/// The caller of a request, from its connection (in every request's
/// extensions): `identity` is `None` for a node with no certificate yet.
#[derive(Clone, Debug)]
pub struct Peer {
    pub remote: SocketAddr,
    pub identity: Option<NodeIdentity>,
}

impl Peer {
    /// The caller of `req` (every request served here has one).
    pub fn of<T>(req: &tonic::Request<T>) -> Result<Peer, Status> {
        req.extensions().get::<Peer>().cloned().ok_or_else(|| Status::internal("a request without its connection"))
    }
}

/// What the servers serve, and the TLS settings of the moment.
pub struct Services<J, D, M, T> {
    pub join: Arc<J>,
    pub dispatcher: Arc<D>,
    pub managers: Arc<M>,
    /// The TLS settings for the next connection (the trusted roots change
    /// during a CA rotation); `None` refuses it.
    pub tls: T,
}

/// Serves port 2377 on `listener` until the task is aborted.
pub async fn serve<J, D, M, T>(listener: TcpListener, services: Services<J, D, M, T>)
where
    J: Join,
    D: Dispatcher,
    M: Managers,
    T: Fn() -> Option<Arc<rustls::ServerConfig>> + Send + Sync + 'static,
{
    let (anon_tx, anon_rx) = mpsc::channel::<io::Result<Conn>>(MAX_ANONYMOUS);
    let (node_tx, node_rx) = mpsc::channel::<io::Result<Conn>>(MAX_HANDSHAKES);

    let join = JoinServer::from_arc(services.join).max_decoding_message_size(caps::PRE_AUTH);
    let anonymous = tonic::transport::Server::builder()
        .initial_stream_window_size(Some(caps::PRE_AUTH as u32))
        .initial_connection_window_size(Some(caps::PRE_AUTH as u32))
        .max_concurrent_streams(Some(1))
        .timeout(ANONYMOUS_LIFETIME)
        .serve_with_incoming(join, tokio_stream::wrappers::ReceiverStream::new(anon_rx));

    let routes = Routes {
        dispatcher: DispatcherServer::from_arc(services.dispatcher).max_decoding_message_size(caps::NODE),
        managers: ManagersServer::from_arc(services.managers).max_decoding_message_size(caps::MANAGER),
    };
    let nodes = tonic::transport::Server::builder()
        .initial_stream_window_size(Some(STREAM_WINDOW))
        .initial_connection_window_size(Some(CONNECTION_WINDOW))
        .max_concurrent_streams(Some(MAX_STREAMS))
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .serve_with_incoming(routes, tokio_stream::wrappers::ReceiverStream::new(node_rx));

    let tls = Arc::new(services.tls);
    let accept = async move {
        let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        let anonymous = Arc::new(Semaphore::new(MAX_ANONYMOUS));
        loop {
            let Ok((tcp, remote)) = listener.accept().await else { continue };
            let Ok(handshake) = handshakes.clone().try_acquire_owned() else {
                tracing::debug!("refusing a connection from {remote}: {MAX_HANDSHAKES} handshakes under way");
                continue;
            };
            let (tls, anonymous, anon_tx, node_tx) = (tls.clone(), anonymous.clone(), anon_tx.clone(), node_tx.clone());
            tokio::spawn(async move {
                let Some(cfg) = tls() else { return };
                let accepted = tokio::time::timeout(HANDSHAKE_DEADLINE, handshake_with(cfg, tcp, remote)).await;
                drop(handshake);
                let Ok(Ok(mut conn)) = accepted else { return };
                if conn.peer.identity.is_some() {
                    let _ = node_tx.send(Ok(conn)).await;
                    return;
                }
                let Ok(slot) = anonymous.try_acquire_owned() else {
                    tracing::debug!("refusing a caller without a certificate from {remote}: {MAX_ANONYMOUS} already open");
                    return;
                };
                conn.anonymous = Some((slot, Box::pin(tokio::time::sleep(ANONYMOUS_LIFETIME))));
                let _ = anon_tx.send(Ok(conn)).await;
            });
        }
    };
    tokio::select! {
        _ = accept => {}
        r = anonymous => tracing::warn!("cluster port (joins) stopped: {r:?}"),
        r = nodes => tracing::warn!("cluster port stopped: {r:?}"),
    }
}

async fn handshake_with(cfg: Arc<rustls::ServerConfig>, tcp: TcpStream, remote: SocketAddr) -> io::Result<Conn> {
    tcp.set_nodelay(true)?;
    let stream = tokio_rustls::TlsAcceptor::from(cfg).accept(tcp).await?;
    let identity = shoal_security::tls::peer_identity(stream.get_ref().1.peer_certificates());
    Ok(Conn { stream, peer: Peer { remote, identity }, anonymous: None })
}

/// A handshaken connection, as the HTTP/2 server reads it.
struct Conn {
    stream: TlsStream<TcpStream>,
    peer: Peer,
    /// For a caller without a certificate: its place among the few such
    /// connections allowed, and when the connection ends.
    anonymous: Option<(OwnedSemaphorePermit, Pin<Box<tokio::time::Sleep>>)>,
}

impl Connected for Conn {
    type ConnectInfo = Peer;
    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if let Some((_, end)) = &mut self.anonymous {
            if end.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "a connection without a certificate lived too long")));
            }
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Sends each request to its service by the path's service name, once the
/// caller's certificate allows it: before a byte of the request is decoded.
/// (tonic's own router would bring axum along for two routes.)
#[derive(Clone)]
struct Routes<D, M> {
    dispatcher: D,
    managers: M,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<D, M> tower_service::Service<http::Request<Body>> for Routes<D, M>
where
    D: tower_service::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible> + Clone + Send + 'static,
    D::Future: Send,
    M: tower_service::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible> + Clone + Send + 'static,
    M::Future: Send,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let path = req.uri().path();
        let service = path.trim_start_matches('/').split('/').next().unwrap_or_default();
        let role = req.extensions().get::<Peer>().and_then(|p| p.identity.as_ref()).map(|id| id.role);
        let refuse = |why: &str| -> Self::Future {
            let answer = Status::permission_denied(why).into_http();
            Box::pin(async { Ok(answer) })
        };
        if service == crate::wire::dispatcher::dispatcher_server::SERVICE_NAME {
            if role.is_none() {
                return refuse("a node certificate is required for this call");
            }
            let mut d = self.dispatcher.clone();
            Box::pin(async move { d.call(req).await })
        } else if service == crate::wire::managers::managers_server::SERVICE_NAME {
            if role != Some(shoal_security::Role::Manager) {
                return refuse("a manager certificate is required for this call");
            }
            let mut m = self.managers.clone();
            Box::pin(async move { m.call(req).await })
        } else {
            let answer = Status::unimplemented("no such service").into_http();
            Box::pin(async { Ok(answer) })
        }
    }
}
