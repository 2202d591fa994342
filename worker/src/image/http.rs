//! A small blocking HTTP/1.1 client, just enough for the registry API.
//!
//! The protocol is hyper's (its client connection API: request writing,
//! response parsing, length/chunked/close-delimited bodies); this module
//! adds what the registry code needs on top: URLs, connecting (TCP, then
//! TLS through [`TlsConnector`]), redirects, timeouts, size bounds, and
//! Go-style transport errors. One request per connection
//! (`Connection: close`) keeps it simple; a pull makes few requests and
//! most of the time goes into the blob bodies.
//!
//! Blocking is deliberate: a pull is file-system work (hashing,
//! decompressing, writing files) as much as network work, so callers run it
//! on a blocking thread (`tokio::task::spawn_blocking`). Each blocking call
//! polls hyper on the caller's thread while a small shared runtime (one
//! thread, see `runtime()`) watches the sockets, so the client works with
//! or without an ambient tokio runtime, and a body is read one frame at a
//! time as the caller asks for it (blobs are never buffered whole).

use std::fmt;
use std::future::{poll_fn, Future};
use std::io::{self, Read};
use std::net::ToSocketAddrs;
use std::pin::{pin, Pin};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Buf, Bytes, Incoming};
use hyper::client::conn::http1;
use hyper::ext::ReasonPhrase;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A registry that stops sending for this long is treated as gone: the
/// bound on each wait (TLS handshake; request and response head; each
/// piece of a body).
const IO_TIMEOUT: Duration = Duration::from_secs(120);
/// The response head (status line, headers) and a chunked body's trailers.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// hyper also bounds the number of header lines (its default is 100).
const MAX_HEADERS: usize = 1024;
const MAX_REDIRECTS: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// An absolute http(s) URL, split the way a request needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub scheme: Scheme,
    /// As written in the URL: IPv6 addresses keep their brackets.
    pub host: String,
    pub port: u16,
    /// Path and query, starting with '/'.
    pub target: String,
}

impl Url {
    pub fn parse(s: &str) -> io::Result<Url> {
        let bad = || invalid(format!("invalid URL {s:?}"));
        let (scheme, rest) = if let Some(r) = s.strip_prefix("http://") {
            (Scheme::Http, r)
        } else if let Some(r) = s.strip_prefix("https://") {
            (Scheme::Https, r)
        } else {
            return Err(bad());
        };
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        if authority.contains('@') || authority.is_empty() {
            return Err(bad());
        }
        let (host, port) = split_host_port(authority).ok_or_else(bad)?;
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| bad())?,
            None => scheme.default_port(),
        };
        Ok(Url { scheme, host: host.to_string(), port, target })
    }

    /// Builds `scheme://authority/path` for a registry: `authority` is a
    /// reference's domain (`host[:port]`).
    pub fn for_authority(scheme: Scheme, authority: &str, target: &str) -> io::Result<Url> {
        Url::parse(&format!("{}://{}{}", scheme.as_str(), authority, target))
    }

    /// Resolves a `Location` header against this URL.
    pub fn join(&self, location: &str) -> io::Result<Url> {
        if location.starts_with("http://") || location.starts_with("https://") {
            return Url::parse(location);
        }
        let mut u = self.clone();
        if let Some(rest) = location.strip_prefix("//") {
            return Url::parse(&format!("{}://{}", self.scheme.as_str(), rest));
        }
        if location.starts_with('/') {
            u.target = location.to_string();
        } else {
            let path = self.target.split('?').next().unwrap_or("/");
            let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            u.target = format!("{dir}{location}");
        }
        Ok(u)
    }

    /// `host[:port]` as the Host header wants it (default ports omitted).
    pub fn authority(&self) -> String {
        if self.port == self.scheme.default_port() {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The host without IPv6 brackets, for connecting and TLS names.
    pub fn bare_host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme.as_str(), self.authority(), self.target)
    }
}

/// Splits `host:port`, `[v6]:port`, `host`.
fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
    if s.starts_with('[') {
        let end = s.find(']')?;
        let after = &s[end + 1..];
        match after.strip_prefix(':') {
            Some(p) => Some((&s[..=end], Some(p))),
            None if after.is_empty() => Some((s, None)),
            None => None,
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) if !h.is_empty() && !p.contains(':') => Some((h, Some(p))),
            Some(_) => None,
            None => Some((s, None)),
        }
    }
}

/// Percent-encodes a query component (everything but RFC 3986 unreserved).
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// What carries the bytes: a plain TCP stream, or TLS over one.
pub trait Connection: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Connection for T {}

/// A TLS handshake in progress (see [`TlsConnector::connect`]).
pub type Handshake<'a> = Pin<Box<dyn Future<Output = io::Result<Box<dyn Connection>>> + Send + 'a>>;

/// Opens connections for `https://` URLs. The registry module supplies one
/// when TLS is available; without it only plain HTTP works.
pub trait TlsConnector: Send + Sync {
    /// Wraps `tcp` in TLS for `url`'s host, handshake included. `verify`
    /// false skips certificate checks (Docker's behaviour for registries
    /// marked insecure).
    fn connect<'a>(&'a self, url: &'a Url, tcp: TcpStream, verify: bool) -> Handshake<'a>;
}

/// One request.
pub struct Request<'a> {
    pub method: &'a str,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
    /// For `https://`: whether to check the server's certificate.
    pub verify_tls: bool,
}

impl<'a> Request<'a> {
    pub fn new(method: &'a str, url: Url) -> Self {
        Request { method, url, headers: Vec::new(), body: &[], verify_tls: true }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// A response whose body is still on the wire.
pub struct Response {
    pub status: u16,
    pub reason: String,
    /// Names as hyper gives them (lower case); look them up with
    /// [`Response::header`], which ignores case.
    pub headers: Vec<(String, String)>,
    /// The URL that answered (after redirects).
    pub url: Url,
    body: Body,
}

impl Response {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// All headers of that name.
    pub fn header_all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.headers.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The declared body length, if any.
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length").and_then(|v| v.trim().parse().ok())
    }

    pub fn into_body(self) -> Body {
        self.body
    }

    /// Reads the whole body, refusing more than `limit` bytes (registries
    /// are untrusted: a manifest must not be allowed to fill memory).
    pub fn read_body(self, limit: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.body.take(limit + 1).read_to_end(&mut out)?;
        if out.len() as u64 > limit {
            return Err(invalid(format!("response body exceeds {limit} bytes")));
        }
        Ok(out)
    }
}

type Conn = http1::Connection<TokioIo<Box<dyn Connection>>, Full<Bytes>>;

/// A response body, pulled from the connection one frame per read: hyper
/// does the framing (length, chunked, until close); nothing is read ahead
/// of the caller beyond hyper's read buffer.
pub struct Body {
    /// Bytes of the last frame not yet handed out.
    chunk: Bytes,
    state: BodyState,
}

enum BodyState {
    Open {
        conn: Option<Pin<Box<Conn>>>,
        incoming: Incoming,
    },
    Done,
    /// A read failed: later reads fail the same way (a truncated body must
    /// never look complete).
    Failed(io::ErrorKind, String),
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.chunk.is_empty() {
                let n = buf.len().min(self.chunk.len());
                buf[..n].copy_from_slice(&self.chunk[..n]);
                self.chunk.advance(n);
                return Ok(n);
            }
            let (conn, incoming) = match &mut self.state {
                _ if buf.is_empty() => return Ok(0),
                BodyState::Done => return Ok(0),
                BodyState::Failed(kind, msg) => return Err(io::Error::new(*kind, msg.clone())),
                BodyState::Open { conn, incoming } => (conn, incoming),
            };
            let frame = block_on(IO_TIMEOUT, drive(conn, incoming.frame())).and_then(|r| match r {
                Some(Ok(frame)) => Ok(Some(frame)),
                Some(Err(e)) => Err(hyper_error(e, true)),
                None => Ok(None),
            });
            match frame {
                // Trailers carry nothing a registry client needs.
                Ok(Some(frame)) => self.chunk = frame.into_data().unwrap_or_default(),
                Ok(None) => {
                    self.state = BodyState::Done;
                    return Ok(0);
                }
                Err(e) => {
                    self.state = BodyState::Failed(e.kind(), e.to_string());
                    return Err(e);
                }
            }
        }
    }
}

/// The client: stateless apart from the TLS connector.
#[derive(Clone, Default)]
pub struct Client {
    tls: Option<std::sync::Arc<dyn TlsConnector>>,
}

/// A request failed before an HTTP status came back. Formatted as Go's
/// `url.Error` is, because that is what Docker users see:
/// `Get "http://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused`.
#[derive(Debug)]
pub struct TransportError {
    pub method: String,
    pub url: String,
    pub source: io::Error,
    dial: Option<String>,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut method = self.method.to_lowercase();
        if let Some(first) = method.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        write!(f, "{method} \"{}\": ", self.url)?;
        match (&self.dial, self.source.kind()) {
            (Some(addr), io::ErrorKind::ConnectionRefused) => write!(f, "dial tcp {addr}: connect: connection refused"),
            (Some(addr), io::ErrorKind::TimedOut) => write!(f, "dial tcp {addr}: i/o timeout"),
            (Some(addr), _) => write!(f, "dial tcp {addr}: {}", self.source),
            (None, _) => write!(f, "{}", self.source),
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl Client {
    pub fn new(tls: Option<std::sync::Arc<dyn TlsConnector>>) -> Client {
        Client { tls }
    }

    /// Sends the request, following redirects for GET and HEAD. The
    /// Authorization header is dropped when a redirect leaves the host
    /// (blob storage behind a registry must not see registry credentials).
    pub fn send(&self, mut req: Request<'_>) -> Result<Response, TransportError> {
        for _ in 0..=MAX_REDIRECTS {
            let resp = self.send_once(&req)?;
            let redirect = matches!(resp.status, 301 | 302 | 303 | 307 | 308) && matches!(req.method, "GET" | "HEAD");
            let Some(location) = resp.header("location").filter(|_| redirect) else {
                return Ok(resp);
            };
            let next = req.url.join(location).map_err(|e| self.error(&req, e, None))?;
            if next.host != req.url.host || next.port != req.url.port {
                req.headers.retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
            }
            req.url = next;
        }
        Err(self.error(&req, invalid("stopped after 10 redirects".into()), None))
    }

    fn error(&self, req: &Request<'_>, source: io::Error, dial: Option<String>) -> TransportError {
        TransportError { method: req.method.to_string(), url: req.url.to_string(), source, dial }
    }

    fn send_once(&self, req: &Request<'_>) -> Result<Response, TransportError> {
        let url = &req.url;
        let dial_addr = format!("{}:{}", url.host, url.port);
        let dial_error = |e| self.error(req, e, Some(dial_addr.clone()));
        let tcp = connect(url.bare_host(), url.port).map_err(dial_error)?;
        let conn = block_on(IO_TIMEOUT, async {
            let tcp = TcpStream::from_std(tcp).map_err(|e| (e, true))?;
            let conn: Box<dyn Connection> = match url.scheme {
                Scheme::Http => Box::new(tcp),
                Scheme::Https => match &self.tls {
                    Some(tls) => tls.connect(url, tcp, req.verify_tls).await.map_err(|e| (e, false))?,
                    None => return Err((invalid("https is not available in this build".into()), false)),
                },
            };
            Ok(conn)
        });
        let conn = match conn {
            Ok(Ok(conn)) => conn,
            Ok(Err((e, true))) => return Err(dial_error(e)),
            Ok(Err((e, false))) | Err(e) => return Err(self.error(req, e, None)),
        };
        self.exchange(req, conn).map_err(|e| self.error(req, e, None))
    }

    fn exchange(&self, req: &Request<'_>, conn: Box<dyn Connection>) -> io::Result<Response> {
        let method = Method::from_bytes(req.method.as_bytes()).map_err(|_| invalid(format!("invalid method {}", req.method)))?;
        let target: Uri = req.url.target.parse().map_err(|_| invalid(format!("invalid URL {}", req.url)))?;
        let mut builder = hyper::Request::builder().method(method).uri(target);
        let headers = builder.headers_mut().expect("a request under construction");
        let authority = HeaderValue::from_str(&req.url.authority()).map_err(|_| invalid(format!("invalid URL {}", req.url)))?;
        headers.insert(header::HOST, authority);
        headers.insert(header::USER_AGENT, HeaderValue::from_static(concat!("shoal/", env!("CARGO_PKG_VERSION"))));
        // One request per connection: a pull makes few requests and spends
        // its time in the blob bodies.
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        for (k, v) in &req.headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| invalid(format!("invalid header {k}")))?;
            let value = HeaderValue::from_str(v).map_err(|_| invalid(format!("invalid header {k}")))?;
            headers.append(name, value);
        }
        if !req.body.is_empty() || matches!(req.method, "POST" | "PUT" | "PATCH") {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(req.body.len()));
        }
        let request = builder.body(Full::new(Bytes::copy_from_slice(req.body))).map_err(|e| invalid(e.to_string()))?;

        let head = block_on(IO_TIMEOUT, async {
            let (mut sender, conn) = http1::Builder::new()
                // Header names go out as Docker's client writes them
                // (`Content-Type`), not lower-cased.
                .title_case_headers(true)
                .max_header_size(MAX_HEADER_BYTES)
                .max_headers(MAX_HEADERS)
                // As lenient as the hand-written parser this replaced.
                .allow_spaces_after_header_name_in_responses(true)
                .allow_obsolete_multiline_headers_in_responses(true)
                .ignore_invalid_headers_in_responses(true)
                .handshake::<_, Full<Bytes>>(TokioIo::new(conn))
                .await
                .map_err(|e| hyper_error(e, false))?;
            let mut conn = Some(Box::pin(conn));
            let resp = drive(&mut conn, sender.send_request(request)).await;
            resp.map(|r| (r, conn)).map_err(|e| hyper_error(e, false))
        })??;
        let (resp, conn) = head;
        let (parts, incoming) = resp.into_parts();
        let reason = match parts.extensions.get::<ReasonPhrase>() {
            Some(r) => String::from_utf8_lossy(r.as_bytes()).into_owned(),
            None => parts.status.canonical_reason().unwrap_or("").to_string(),
        };
        let headers =
            parts.headers.iter().map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).trim().to_string())).collect();
        let body = Body { chunk: Bytes::new(), state: BodyState::Open { conn, incoming } };
        Ok(Response { status: parts.status.as_u16(), reason, headers, url: req.url.clone(), body })
    }
}

/// Polls `fut` while also driving the connection it needs (hyper's
/// connection future does the actual reading and writing). No task is
/// spawned: the socket is only read while a caller waits for data.
async fn drive<F: Future>(conn: &mut Option<Pin<Box<Conn>>>, fut: F) -> F::Output {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        if let Some(c) = conn.as_mut() {
            // Its result reaches `fut` too (hyper hands connection errors to
            // the pending response or body), so it needs no handling here.
            if c.as_mut().poll(cx).is_ready() {
                *conn = None;
            }
        }
        fut.as_mut().poll(cx)
    })
    .await
}

/// hyper's errors as the I/O errors this module has always returned.
fn hyper_error(e: hyper::Error, in_body: bool) -> io::Error {
    if e.is_parse_too_large() {
        return invalid("response headers too large".into());
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
    let mut cause = None;
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            cause = Some(io);
            break;
        }
        source = s.source();
    }
    let eof = e.is_incomplete_message() || cause.is_some_and(|c| c.kind() == io::ErrorKind::UnexpectedEof);
    match cause {
        _ if eof && in_body => io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before the end of the body"),
        _ if eof => io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before a response"),
        Some(io) => io::Error::new(io.kind(), io.to_string()),
        None if e.is_parse() => invalid(format!("malformed HTTP response: {e}")),
        None => io::Error::other(e.to_string()),
    }
}

/// The runtime whose reactor and timers serve the client's sockets: one
/// worker thread, started on first use and shared by the process. Callers
/// block on their own thread (see [`block_on`]), so it works the same from
/// a `spawn_blocking` thread of the daemon's runtime, from a plain thread,
/// or from a test with no runtime at all.
fn runtime() -> io::Result<&'static Runtime> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("shoal-registry-io")
                .enable_io()
                .enable_time()
                .build()
                .map_err(|e| format!("starting the registry client's I/O thread: {e}"))
        })
        .as_ref()
        .map_err(|e| io::Error::other(e.clone()))
}

/// Wakes the thread blocked in [`block_on`].
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `fut` to completion on the calling thread, giving up after
/// `timeout` (an error of kind `TimedOut`). Unlike `Handle::block_on` this
/// never panics inside an async context: it just blocks, as the blocking
/// sockets this replaced did.
fn block_on<F: Future>(timeout: Duration, fut: F) -> io::Result<F::Output> {
    let _context = runtime()?.enter();
    // Out of tokio's cooperative budgeting: called from inside a task, the
    // task's budget would run out and never be renewed (the task does not
    // yield while this blocks), and every read would then stay pending.
    let mut fut = pin!(tokio::task::unconstrained(tokio::time::timeout(timeout, fut)));
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(r) = fut.as_mut().poll(&mut cx) {
            return r.map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "i/o timeout"));
        }
        std::thread::park();
    }
}

fn connect(host: &str, port: u16) -> io::Result<std::net::TcpStream> {
    let mut last = None;
    for addr in (host, port).to_socket_addrs()? {
        match std::net::TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => {
                s.set_nonblocking(true)?;
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such host")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    #[test]
    fn parses_and_joins_urls() {
        let u = Url::parse("http://127.0.0.1:5000/v2/a/b/manifests/latest?x=1").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.target.as_str()), ("127.0.0.1", 5000, "/v2/a/b/manifests/latest?x=1"));
        assert_eq!(u.to_string(), "http://127.0.0.1:5000/v2/a/b/manifests/latest?x=1");
        let v6 = Url::parse("https://[::1]:8443/token").unwrap();
        assert_eq!((v6.bare_host(), v6.port, v6.authority()), ("::1", 8443, "[::1]:8443".to_string()));
        let d = Url::parse("https://example.test").unwrap();
        assert_eq!((d.port, d.target.as_str(), d.authority()), (443, "/", "example.test".to_string()));
        assert_eq!(Url::parse("http://h?q").unwrap().target, "/?q");
        assert!(Url::parse("ftp://x/").is_err());
        assert!(Url::parse("http://user@x/").is_err());
        assert!(Url::parse("http://x:99999/").is_err());
        assert_eq!(u.join("/other").unwrap().to_string(), "http://127.0.0.1:5000/other");
        assert_eq!(u.join("blob").unwrap().target, "/v2/a/b/manifests/blob");
        assert_eq!(u.join("http://10.0.0.1/x").unwrap().host, "10.0.0.1");
        assert_eq!(u.join("//h2:1/y").unwrap().to_string(), "http://h2:1/y");
    }

    #[test]
    fn escapes_queries() {
        assert_eq!(query_escape("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
        assert_eq!(query_escape("x y~"), "x%20y~");
    }

    /// Serves canned raw responses, one per connection, and returns what
    /// each request looked like.
    fn serve(responses: Vec<Vec<u8>>) -> (u16, std::thread::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for r in responses {
                let (mut s, _) = l.accept().unwrap();
                let mut reader = BufReader::new(s.try_clone().unwrap());
                let mut req = String::new();
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                    req.push_str(&line);
                }
                seen.push(req);
                s.write_all(&r).unwrap();
            }
            seen
        });
        (port, h)
    }

    #[test]
    fn reads_length_chunked_and_close_delimited_bodies() {
        let (port, h) = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello-extra".to_vec(),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\nX-T: 1\r\n\r\n".to_vec(),
            b"HTTP/1.0 200 OK\r\n\r\nuntil close".to_vec(),
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nX-A: 1\r\nx-a: 2\r\n\r\n{}".to_vec(),
        ]);
        let c = Client::default();
        let url = |p: &str| Url::parse(&format!("http://127.0.0.1:{port}{p}")).unwrap();
        let r = c.send(Request::new("GET", url("/a")).header("Accept", "x/y")).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.read_body(100).unwrap(), b"hello");
        let r = c.send(Request::new("GET", url("/b"))).unwrap();
        assert_eq!(r.read_body(100).unwrap(), b"abcdefg");
        let r = c.send(Request::new("GET", url("/c"))).unwrap();
        assert_eq!(r.read_body(100).unwrap(), b"until close");
        let r = c.send(Request::new("GET", url("/d"))).unwrap();
        assert_eq!((r.status, r.reason.as_str()), (404, "Not Found"));
        assert_eq!(r.header_all("x-a").collect::<Vec<_>>(), vec!["1", "2"]);
        let seen = h.join().unwrap();
        assert!(seen[0].starts_with("GET /a HTTP/1.1\r\n"), "{}", seen[0]);
        assert!(seen[0].contains(&format!("Host: 127.0.0.1:{port}\r\n")));
        assert!(seen[0].contains("Accept: x/y\r\n"));
    }

    #[test]
    fn limits_bodies_and_follows_redirects_without_leaking_credentials() {
        let (port2, h2) = serve(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nblob".to_vec()]);
        let redirect = format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: http://localhost:{port2}/data\r\nContent-Length: 0\r\n\r\n");
        let (port, h) = serve(vec![redirect.into_bytes(), b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789".to_vec()]);
        let c = Client::default();
        let url = Url::parse(&format!("http://127.0.0.1:{port}/v2/x/blobs/y")).unwrap();
        let r = c.send(Request::new("GET", url.clone()).header("Authorization", "Bearer secret")).unwrap();
        assert_eq!(r.url.port, port2);
        assert_eq!(r.read_body(10).unwrap(), b"blob");
        let r = c.send(Request::new("GET", url)).unwrap();
        assert!(r.read_body(9).unwrap_err().to_string().contains("exceeds 9 bytes"));
        h.join().unwrap();
        let seen = h2.join().unwrap();
        assert!(!seen[0].to_lowercase().contains("authorization"), "{}", seen[0]);
    }

    #[test]
    fn head_post_reasons_and_large_streamed_bodies() {
        // 4 MiB in chunks of 64 KiB: more than one of hyper's reads.
        let blob: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
        let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for c in blob.chunks(64 << 10) {
            chunked.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            chunked.extend_from_slice(c);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let (port, h) = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nDocker-Content-Digest: sha256:x\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".to_vec(),
            b"HTTP/1.1 404 Nope\r\nContent-Length: 0\r\n\r\n".to_vec(),
            b"HTTP/1.1 500 \r\nContent-Length: 0\r\n\r\n".to_vec(),
            chunked,
        ]);
        let c = Client::default();
        let url = |p: &str| Url::parse(&format!("http://127.0.0.1:{port}{p}")).unwrap();
        let r = c.send(Request::new("HEAD", url("/v2/x/manifests/latest"))).unwrap();
        assert_eq!((r.status, r.content_length(), r.header("docker-content-digest")), (200, Some(100), Some("sha256:x")));
        assert!(r.read_body(1000).unwrap().is_empty());
        let r = c.send(Request::new("POST", url("/token")).header("Content-Type", "application/x-www-form-urlencoded")).unwrap();
        assert_eq!(r.read_body(10).unwrap(), b"{}");
        let r = c.send(Request::new("GET", url("/n"))).unwrap();
        assert_eq!((r.status, r.reason.as_str()), (404, "Nope"));
        let r = c.send(Request::new("GET", url("/e"))).unwrap();
        assert_eq!((r.status, r.reason.as_str()), (500, ""));
        let mut body = c.send(Request::new("GET", url("/blob"))).unwrap().into_body();
        let mut got = Vec::new();
        let mut buf = [0u8; 1000];
        loop {
            let n = body.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got == blob, "{} bytes instead of {}", got.len(), blob.len());
        assert_eq!(body.read(&mut buf).unwrap(), 0);
        let seen = h.join().unwrap();
        assert!(seen[0].starts_with("HEAD /v2/x/manifests/latest HTTP/1.1\r\n"), "{}", seen[0]);
        assert!(seen[1].starts_with("POST /token HTTP/1.1\r\n"), "{}", seen[1]);
        assert!(seen[1].contains("Content-Type: application/x-www-form-urlencoded\r\n"), "{}", seen[1]);
        assert!(seen[1].contains("Content-Length: 0\r\n"), "{}", seen[1]);
        assert!(!seen[2].to_lowercase().contains("content-length"), "{}", seen[2]);
        assert!(seen[2].contains("Connection: close\r\n") && seen[2].contains("User-Agent: shoal/"), "{}", seen[2]);
    }

    #[test]
    fn bodies_that_stop_early_and_oversized_heads_fail() {
        let (port, h) = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123".to_vec(),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab".to_vec(),
            format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\n\r\n", "a".repeat(MAX_HEADER_BYTES)).into_bytes(),
            Vec::new(),
        ]);
        let c = Client::default();
        let url = |p: &str| Url::parse(&format!("http://127.0.0.1:{port}{p}")).unwrap();
        let mut body = c.send(Request::new("GET", url("/short"))).unwrap().into_body();
        let mut got = Vec::new();
        let e = body.read_to_end(&mut got).unwrap_err();
        assert_eq!((e.kind(), e.to_string().as_str()), (io::ErrorKind::UnexpectedEof, "connection closed before the end of the body"));
        assert_eq!(got, b"0123");
        // A truncated body never turns into a clean end.
        assert_eq!(body.read(&mut [0u8; 8]).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        let r = c.send(Request::new("GET", url("/chunk"))).unwrap();
        let e = r.read_body(100).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        let e = c.send(Request::new("GET", url("/big"))).err().unwrap();
        assert_eq!(e.to_string(), format!("Get \"http://127.0.0.1:{port}/big\": response headers too large"));
        let e = c.send(Request::new("GET", url("/none"))).err().unwrap();
        assert_eq!(e.to_string(), format!("Get \"http://127.0.0.1:{port}/none\": connection closed before a response"));
        h.join().unwrap();
    }

    #[test]
    fn stops_after_ten_redirects() {
        let (port, h) = serve(vec![b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n".to_vec(); MAX_REDIRECTS + 1]);
        let url = Url::parse(&format!("http://127.0.0.1:{port}/start")).unwrap();
        let e = Client::default().send(Request::new("GET", url)).err().unwrap();
        assert_eq!(e.to_string(), format!("Get \"http://127.0.0.1:{port}/again\": stopped after 10 redirects"));
        assert_eq!(h.join().unwrap().len(), MAX_REDIRECTS + 1);
    }

    /// The daemon calls the client from `spawn_blocking`; tests and tools
    /// from plain threads; a careless caller from async code directly.
    #[test]
    fn works_with_or_without_an_ambient_runtime() {
        // Many socket reads: tokio's cooperative budget of an async caller
        // must not stall the client (it did before `unconstrained`).
        const LEN: usize = 96 << 20;
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            for _ in 0..2 {
                let (mut s, _) = l.accept().unwrap();
                let mut reader = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap() > 2 {
                    line.clear();
                }
                s.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {LEN}\r\n\r\n").as_bytes()).unwrap();
                let piece = [b'x'; 64 << 10];
                for _ in 0..LEN / piece.len() {
                    s.write_all(&piece).unwrap();
                }
            }
        });
        let url = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let get = move || {
            let mut body = Client::default().send(Request::new("GET", url.clone())).unwrap().into_body();
            io::copy(&mut body, &mut io::sink()).unwrap()
        };
        let multi = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let get2 = get.clone();
        assert_eq!(multi.block_on(async { tokio::task::spawn_blocking(get2).await.unwrap() }), LEN as u64);
        let single = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        assert_eq!(single.block_on(async { get() }), LEN as u64);
        h.join().unwrap();
        let e = block_on(Duration::from_millis(20), std::future::pending::<()>()).unwrap_err();
        assert_eq!((e.kind(), e.to_string().as_str()), (io::ErrorKind::TimedOut, "i/o timeout"));
    }

    #[test]
    fn connection_errors_read_like_docker() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = Url::parse(&format!("http://127.0.0.1:{port}/v2/")).unwrap();
        let e = Client::default().send(Request::new("GET", url)).err().unwrap();
        assert_eq!(e.to_string(), format!("Get \"http://127.0.0.1:{port}/v2/\": dial tcp 127.0.0.1:{port}: connect: connection refused"));
    }
}
