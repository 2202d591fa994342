//! One request on one connection, and its response.

use std::future::{poll_fn, Future};
use std::io::{self, Read};
use std::pin::{pin, Pin};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Buf, Bytes, Incoming};
use hyper::client::conn::http1;
use hyper::ext::ReasonPhrase;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::blocking::block_on;

/// What a request can go out on: a unix or TCP socket, TLS over one.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// Bounds on what a server can make the client wait for or hold.
#[derive(Clone, Debug)]
pub struct Options {
    /// The longest wait for sending the request and reading the response
    /// head, then for each piece of the body. `None` waits as long as it
    /// takes (a CLI following logs or events).
    pub timeout: Option<Duration>,
    /// The response head (status line and headers) and a chunked body's
    /// trailers.
    pub max_header_bytes: usize,
    /// Header lines in the response head.
    pub max_headers: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { timeout: None, max_header_bytes: 64 * 1024, max_headers: 1024 }
    }
}

/// One request. Header names go out title-cased (`Content-Type`), as
/// Docker's clients write them; nothing is added but `Content-Length`
/// (when there is a body, and always for POST, PUT and PATCH).
pub struct Request<'a> {
    pub method: &'a str,
    /// Path and query (`/v1.44/info?x=1`).
    pub target: &'a str,
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    pub fn new(method: &'a str, target: &'a str) -> Self {
        Request { method, target, headers: Vec::new(), body: &[] }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }

    fn build(&self) -> io::Result<hyper::Request<Full<Bytes>>> {
        let method = Method::from_bytes(self.method.as_bytes()).map_err(|_| invalid(format!("invalid method {:?}", self.method)))?;
        let target: hyper::Uri = self.target.parse().map_err(|_| invalid(format!("invalid request target {:?}", self.target)))?;
        let mut builder = hyper::Request::builder().method(method).uri(target);
        let headers = builder.headers_mut().expect("a request under construction");
        for (k, v) in &self.headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| invalid(format!("invalid header name {k:?}")))?;
            let value = HeaderValue::from_str(v).map_err(|_| invalid(format!("invalid value for header {k}")))?;
            headers.append(name, value);
        }
        if !self.body.is_empty() || matches!(self.method, "POST" | "PUT" | "PATCH") {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(self.body.len()));
        }
        builder.body(Full::new(Bytes::copy_from_slice(self.body))).map_err(|e| invalid(e.to_string()))
    }
}

/// A response whose body is still on the wire.
pub struct Response {
    pub status: u16,
    /// The reason phrase as sent (`Not Found`), else the standard one.
    pub reason: String,
    /// Names as hyper gives them (lower case); look them up with
    /// [`Response::header`], which ignores case.
    pub headers: Vec<(String, String)>,
    pub body: Body,
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

    /// Reads the whole body, refusing more than `limit` bytes (a server
    /// must not be able to fill the caller's memory).
    pub fn read_body(self, limit: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.body.take(limit + 1).read_to_end(&mut out)?;
        if out.len() as u64 > limit {
            return Err(invalid(format!("response body exceeds {limit} bytes")));
        }
        Ok(out)
    }
}

/// hyper's connection future: it does the socket reads and writes, and is
/// polled whenever the caller waits for something from the connection.
type Driver = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// A response body, pulled from the connection one frame per read: hyper
/// does the framing (length, chunked, until close); nothing is read ahead
/// of the caller beyond hyper's read buffer.
pub struct Body {
    /// Bytes of the last frame not yet handed out.
    chunk: Bytes,
    state: BodyState,
    timeout: Option<Duration>,
}

enum BodyState {
    Open {
        conn: Option<Driver>,
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
            let frame = block_on(self.timeout, drive(conn, incoming.frame())).and_then(|r| match r {
                Some(Ok(frame)) => Ok(Some(frame)),
                Some(Err(e)) => Err(hyper_error(e, true)),
                None => Ok(None),
            });
            match frame {
                // Trailers carry nothing any caller needs.
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

fn builder(opts: &Options) -> http1::Builder {
    let mut b = http1::Builder::new();
    b.title_case_headers(true)
        .max_header_size(opts.max_header_bytes)
        .max_headers(opts.max_headers)
        // Lenient where Go's client is: a server's odd header does not
        // lose the caller its answer.
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .ignore_invalid_headers_in_responses(true);
    b
}

/// Sends `req` on `io` and reads the response head; the body is read as
/// the caller reads [`Response::body`].
pub fn send<T: Io>(io: T, req: &Request<'_>, opts: &Options) -> io::Result<Response> {
    let request = req.build()?;
    let (resp, conn) = block_on(opts.timeout, exchange(io, request, opts, false))??;
    Ok(response(resp, conn, opts.timeout))
}

/// Writes the request and reads the response head; the connection's
/// driver comes back with it (it still carries the body, or the upgrade).
async fn exchange<T: Io>(
    io: T,
    request: hyper::Request<Full<Bytes>>,
    opts: &Options,
    upgrades: bool,
) -> io::Result<(hyper::Response<Incoming>, Option<Driver>)> {
    let (mut sender, conn) = builder(opts).handshake::<_, Full<Bytes>>(TokioIo::new(io)).await.map_err(|e| hyper_error(e, false))?;
    let mut conn: Option<Driver> = Some(if upgrades { Box::pin(conn.with_upgrades()) } else { Box::pin(conn) });
    let resp = drive(&mut conn, sender.send_request(request)).await.map_err(|e| hyper_error(e, false))?;
    Ok((resp, conn))
}

/// The answer to a request that asked to take the connection over
/// (`Connection: Upgrade`).
pub enum Upgrade<T> {
    /// `101 Switching Protocols`: the connection is the caller's now.
    /// `read_buf` holds what the server sent after its head that hyper had
    /// already read; it comes before anything read from `io`.
    Switched { io: T, read_buf: Bytes },
    /// The server answered without switching (a refusal, or an old
    /// server streaming in the body).
    Answered(Response),
}

/// [`send`] for a request that asks to upgrade the connection.
pub fn send_upgrade<T: Io>(io: T, req: &Request<'_>, opts: &Options) -> io::Result<Upgrade<T>> {
    let request = req.build()?;
    let timeout = opts.timeout;
    block_on(timeout, async {
        let (mut resp, mut conn) = exchange(io, request, opts, true).await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Ok(Upgrade::Answered(response(resp, conn, timeout)));
        }
        // The connection future ends once it has handed the socket over.
        let upgraded = drive(&mut conn, hyper::upgrade::on(&mut resp)).await.map_err(|e| hyper_error(e, false))?;
        let parts = upgraded
            .downcast::<TokioIo<T>>()
            .map_err(|_| io::Error::other("the upgraded connection is not the one the request went out on"))?;
        Ok(Upgrade::Switched { io: parts.io.into_inner(), read_buf: parts.read_buf })
    })?
}

fn response(resp: hyper::Response<Incoming>, conn: Option<Driver>, timeout: Option<Duration>) -> Response {
    let (parts, incoming) = resp.into_parts();
    let reason = match parts.extensions.get::<ReasonPhrase>() {
        Some(r) => String::from_utf8_lossy(r.as_bytes()).into_owned(),
        None => parts.status.canonical_reason().unwrap_or("").to_string(),
    };
    let headers =
        parts.headers.iter().map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).trim().to_string())).collect();
    let body = Body { chunk: Bytes::new(), state: BodyState::Open { conn, incoming }, timeout };
    Response { status: parts.status.as_u16(), reason, headers, body }
}

/// Polls `fut` while also driving the connection it needs. No task is
/// spawned: the socket is only read while a caller waits for data.
async fn drive<F: Future>(conn: &mut Option<Driver>, fut: F) -> F::Output {
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

/// hyper's errors as I/O errors that say what happened.
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

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    /// Serves canned raw responses, one per connection, and returns the
    /// head of each request.
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

    fn tcp(port: u16) -> tokio::net::TcpStream {
        block_on(None, tokio::net::TcpStream::connect(("127.0.0.1", port))).unwrap().unwrap()
    }

    fn get(port: u16, target: &str) -> io::Result<Response> {
        send(tcp(port), &Request::new("GET", target), &Options::default())
    }

    #[test]
    fn reads_length_chunked_and_close_delimited_bodies() {
        let (port, h) = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello-extra".to_vec(),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\nX-T: 1\r\n\r\n".to_vec(),
            b"HTTP/1.0 200 OK\r\n\r\nuntil close".to_vec(),
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nX-A: 1\r\nx-a: 2\r\n\r\n{}".to_vec(),
        ]);
        let r = send(tcp(port), &Request::new("GET", "/a").header("accept", "x/y").header("Host", "h"), &Options::default()).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.read_body(100).unwrap(), b"hello");
        assert_eq!(get(port, "/b").unwrap().read_body(100).unwrap(), b"abcdefg");
        assert_eq!(get(port, "/c").unwrap().read_body(100).unwrap(), b"until close");
        let r = get(port, "/d").unwrap();
        assert_eq!((r.status, r.reason.as_str()), (404, "Not Found"));
        assert_eq!(r.header_all("x-a").collect::<Vec<_>>(), vec!["1", "2"]);
        assert_eq!(r.content_length(), Some(2));
        let seen = h.join().unwrap();
        assert!(seen[0].starts_with("GET /a HTTP/1.1\r\n"), "{}", seen[0]);
        // Title-cased names, only the headers asked for.
        assert!(seen[0].contains("Accept: x/y\r\n") && seen[0].contains("Host: h\r\n"), "{}", seen[0]);
        assert!(!seen[0].to_lowercase().contains("content-length"), "{}", seen[0]);
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
            b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}".to_vec(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
            b"HTTP/1.1 500 \r\nContent-Length: 0\r\n\r\n".to_vec(),
            chunked,
        ]);
        let opts = Options::default();
        let r = send(tcp(port), &Request::new("HEAD", "/m"), &opts).unwrap();
        assert_eq!((r.status, r.content_length(), r.header("docker-content-digest")), (200, Some(100), Some("sha256:x")));
        assert!(r.read_body(1000).unwrap().is_empty());
        let r = send(tcp(port), &Request::new("POST", "/c").header("Content-Type", "application/json").body(b"{\"a\":1}"), &opts).unwrap();
        assert_eq!((r.status, r.reason.as_str()), (201, "Created"));
        assert_eq!(r.read_body(10).unwrap(), b"{}");
        send(tcp(port), &Request::new("POST", "/empty"), &opts).unwrap();
        let r = get(port, "/e").unwrap();
        assert_eq!((r.status, r.reason.as_str()), (500, ""));
        let mut body = get(port, "/blob").unwrap().body;
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
        assert!(seen[0].starts_with("HEAD /m HTTP/1.1\r\n"), "{}", seen[0]);
        assert!(seen[1].contains("Content-Type: application/json\r\nContent-Length: 7\r\n"), "{}", seen[1]);
        assert!(seen[2].contains("Content-Length: 0\r\n"), "{}", seen[2]);
    }

    #[test]
    fn bodies_that_stop_early_and_oversized_heads_fail() {
        let (port, h) = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123".to_vec(),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab".to_vec(),
            format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\n\r\n", "a".repeat(64 * 1024)).into_bytes(),
            Vec::new(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n01234567890".to_vec(),
        ]);
        let mut body = get(port, "/short").unwrap().body;
        let mut got = Vec::new();
        let e = body.read_to_end(&mut got).unwrap_err();
        assert_eq!((e.kind(), e.to_string().as_str()), (io::ErrorKind::UnexpectedEof, "connection closed before the end of the body"));
        assert_eq!(got, b"0123");
        // A truncated body never turns into a clean end.
        assert_eq!(body.read(&mut [0u8; 8]).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        let e = get(port, "/chunk").unwrap().read_body(100).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        assert_eq!(get(port, "/big").err().unwrap().to_string(), "response headers too large");
        assert_eq!(get(port, "/none").err().unwrap().to_string(), "connection closed before a response");
        assert_eq!(get(port, "/long").unwrap().read_body(10).unwrap_err().to_string(), "response body exceeds 10 bytes");
        h.join().unwrap();
    }

    #[test]
    fn bad_requests_are_refused_before_anything_is_sent() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let opts = Options::default();
        let e = send(tcp(port), &Request::new("GET", "/a b"), &opts).err().unwrap();
        assert_eq!(e.to_string(), "invalid request target \"/a b\"");
        let e = send(tcp(port), &Request::new("GET", "/").header("X-A", "1\r\nX-B: 2"), &opts).err().unwrap();
        assert_eq!(e.to_string(), "invalid value for header X-A");
        let e = send(tcp(port), &Request::new("G T", "/"), &opts).err().unwrap();
        assert_eq!(e.to_string(), "invalid method \"G T\"");
        // The connections were dropped unused.
        for _ in 0..3 {
            let (mut s, _) = l.accept().unwrap();
            assert_eq!(s.read(&mut [0u8; 16]).unwrap(), 0);
        }
    }

    #[test]
    fn a_silent_server_times_out_when_asked_to() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let opts = Options { timeout: Some(Duration::from_millis(50)), ..Options::default() };
        let e = send(tcp(port), &Request::new("GET", "/"), &opts).err().unwrap();
        assert_eq!((e.kind(), e.to_string().as_str()), (io::ErrorKind::TimedOut, "i/o timeout"));
        let (mut silent, _) = l.accept().unwrap();
        assert!(silent.read(&mut [0u8; 1024]).unwrap() > 0);
        // And in a body that stops coming: long enough that the head
        // surely comes within it on a loaded machine.
        let opts = Options { timeout: Some(Duration::from_secs(1)), ..Options::default() };
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            assert!(s.read(&mut [0u8; 1024]).unwrap() > 0);
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01").unwrap();
            // Held open until the client gives up.
            let _ = s.read(&mut [0u8; 1024]);
        });
        let mut body = send(tcp(port), &Request::new("GET", "/"), &opts).unwrap().body;
        let mut got = Vec::new();
        assert_eq!(body.read_to_end(&mut got).unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert_eq!(got, b"01");
        drop(body);
        h.join().unwrap();
        let e = block_on(Some(Duration::from_millis(20)), std::future::pending::<()>()).unwrap_err();
        assert_eq!((e.kind(), e.to_string().as_str()), (io::ErrorKind::TimedOut, "i/o timeout"));
    }

    #[test]
    fn an_upgrade_hands_over_the_socket_with_what_was_read_ahead() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = l.accept().unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let mut body = vec![0u8; 2];
            reader.read_exact(&mut body).unwrap();
            // Bytes right behind the head reach the client in hyper's buffer.
            conn.write_all(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nfirst;").unwrap();
            // What the client sends until it half-closes comes back.
            let mut rest = Vec::new();
            reader.read_to_end(&mut rest).unwrap();
            conn.write_all(&rest).unwrap();
            head
        });
        let req = Request::new("POST", "/exec/x/start").header("Connection", "Upgrade").header("Upgrade", "tcp").body(b"{}");
        let Upgrade::Switched { io, read_buf } = send_upgrade(tcp(port), &req, &Options::default()).unwrap() else {
            panic!("not upgraded")
        };
        let mut got = read_buf.to_vec();
        let mut s = {
            let _rt = crate::enter().unwrap();
            io.into_std().unwrap()
        };
        s.set_nonblocking(false).unwrap();
        s.write_all(b"typed").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        s.read_to_end(&mut got).unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), "first;typed");
        let head = server.join().unwrap();
        assert!(head.starts_with("POST /exec/x/start HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("Connection: Upgrade\r\n") && head.contains("Upgrade: tcp\r\n"), "{head}");
    }

    #[test]
    fn an_upgrade_refused_is_an_ordinary_answer() {
        let (port, h) = serve(vec![b"HTTP/1.1 409 Conflict\r\nContent-Length: 14\r\n\r\n{\"message\":1}\n".to_vec()]);
        let req = Request::new("POST", "/exec/x/start").header("Connection", "Upgrade").header("Upgrade", "tcp");
        let Upgrade::Answered(r) = send_upgrade(tcp(port), &req, &Options::default()).unwrap() else { panic!("upgraded") };
        assert_eq!(r.status, 409);
        assert_eq!(r.read_body(100).unwrap(), b"{\"message\":1}\n");
        h.join().unwrap();
    }

    /// Daemons call the client from `spawn_blocking`; tools and tests from
    /// plain threads; a careless caller from async code directly.
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
        let fetch = move || io::copy(&mut get(port, "/").unwrap().body, &mut io::sink()).unwrap();
        let multi = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        assert_eq!(multi.block_on(async { tokio::task::spawn_blocking(fetch).await.unwrap() }), LEN as u64);
        let single = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        assert_eq!(single.block_on(async { fetch() }), LEN as u64);
        h.join().unwrap();
    }
}
