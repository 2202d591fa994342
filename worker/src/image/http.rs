//! The registry's HTTP client: URLs, the TLS configuration per registry
//! ([`TlsConnector`]), redirects, and Go-style transport errors, over the
//! shared blocking client on hyper (`shoal_http_client`: connecting with
//! TLS, request writing, response parsing, bodies read one frame at a
//! time, size bounds).
//!
//! Blocking is deliberate: a pull is file-system work (hashing,
//! decompressing, writing files) as much as network work, so callers run it
//! on a blocking thread (`tokio::task::spawn_blocking`).

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use shoal_http_client::tcp::{self, ConnectError};
pub use shoal_http_client::Body;
use shoal_http_client::{ClientConfig, Options};

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
pub use shoal_http_client::escape as query_escape;

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Gives the TLS configuration for `https://` URLs. The registry module
/// supplies one when TLS is available; without it only plain HTTP works.
pub trait TlsConnector: Send + Sync {
    /// The configuration for `url`'s registry. `verify` false skips
    /// certificate checks (Docker's behaviour for registries marked
    /// insecure).
    fn config(&self, url: &Url, verify: bool) -> io::Result<Arc<ClientConfig>>;
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

/// A response whose body is still on the wire, and the URL that answered
/// (after redirects). Status, headers and body are the shared client's
/// (`shoal_http_client::Response`).
pub struct Response {
    pub url: Url,
    inner: shoal_http_client::Response,
}

impl std::ops::Deref for Response {
    type Target = shoal_http_client::Response;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl Response {
    pub fn into_body(self) -> Body {
        self.inner.body
    }

    /// Reads the whole body, refusing more than `limit` bytes (registries
    /// are untrusted: a manifest must not be allowed to fill memory).
    pub fn read_body(self, limit: u64) -> io::Result<Vec<u8>> {
        self.inner.read_body(limit)
    }
}

/// The client: stateless apart from the TLS connector.
#[derive(Clone, Default)]
pub struct Client {
    tls: Option<Arc<dyn TlsConnector>>,
}

/// A request failed before an HTTP status came back. Formatted as Go's
/// `url.Error` is, because that is what Docker users see:
/// `Get "http://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused`.
#[derive(Debug)]
pub struct TransportError {
    pub method: String,
    pub url: String,
    pub source: io::Error,
    /// Where a failed dial went: the host (no brackets) and port.
    dial: Option<(String, u16)>,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", shoal_http_client::request_name(&self.method, &self.url))?;
        match &self.dial {
            Some((host, port)) => f.write_str(&shoal_http_client::tcp::dial_error(host, *port, &self.source)),
            None => write!(f, "{}", self.source),
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl Client {
    pub fn new(tls: Option<Arc<dyn TlsConnector>>) -> Client {
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

    fn error(&self, req: &Request<'_>, source: io::Error, dial: Option<(String, u16)>) -> TransportError {
        TransportError { method: req.method.to_string(), url: req.url.to_string(), source, dial }
    }

    fn send_once(&self, req: &Request<'_>) -> Result<Response, TransportError> {
        let url = &req.url;
        let tls = match (url.scheme, &self.tls) {
            (Scheme::Http, _) => None,
            (Scheme::Https, Some(tls)) => Some(tls.config(url, req.verify_tls).map_err(|e| self.error(req, e, None))?),
            (Scheme::Https, None) => return Err(self.error(req, invalid("https is not available in this build".into()), None)),
        };
        // The whole handshake happens here, so a TLS failure is a
        // connection error (and an insecure registry can fall back to
        // plain HTTP).
        let conn =
            tcp::connect(url.bare_host(), url.port, tls, tcp::Timeouts { dial: CONNECT_TIMEOUT, handshake: IO_TIMEOUT }).map_err(|e| {
                match e {
                    ConnectError::Dial { host, port, error } => self.error(req, error, Some((host, port))),
                    ConnectError::Tls(e) => self.error(req, e, None),
                }
            })?;
        let mut request = shoal_http_client::Request::new(req.method, &url.target)
            .header("Host", url.authority())
            .header("User-Agent", concat!("shoal/", env!("CARGO_PKG_VERSION")))
            // One request per connection: a pull makes few requests and
            // spends its time in the blob bodies.
            .header("Connection", "close")
            .body(req.body);
        request.headers.extend(req.headers.iter().cloned());
        let opts = Options { timeout: Some(IO_TIMEOUT), max_header_bytes: MAX_HEADER_BYTES, max_headers: MAX_HEADERS };
        match shoal_http_client::send(conn, &request, &opts) {
            Ok(inner) => Ok(Response { url: url.clone(), inner }),
            Err(e) => Err(self.error(req, e, None)),
        }
    }
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
    fn requests_carry_host_agent_and_close_and_errors_name_the_url() {
        let (port, h) = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".to_vec(),
            format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\n\r\n", "a".repeat(MAX_HEADER_BYTES)).into_bytes(),
            Vec::new(),
        ]);
        let c = Client::default();
        let url = |p: &str| Url::parse(&format!("http://127.0.0.1:{port}{p}")).unwrap();
        let r = c.send(Request::new("GET", url("/a")).header("Accept", "x/y")).unwrap();
        assert_eq!((r.status, r.url.target.as_str()), (200, "/a"));
        assert_eq!(r.read_body(100).unwrap(), b"hello");
        let r = c.send(Request::new("POST", url("/token")).header("Content-Type", "application/x-www-form-urlencoded")).unwrap();
        assert_eq!(r.read_body(10).unwrap(), b"{}");
        let e = c.send(Request::new("GET", url("/big"))).err().unwrap();
        assert_eq!(e.to_string(), format!("Get \"http://127.0.0.1:{port}/big\": response headers too large"));
        let e = c.send(Request::new("GET", url("/none"))).err().unwrap();
        assert_eq!(e.to_string(), format!("Get \"http://127.0.0.1:{port}/none\": connection closed before a response"));
        let seen = h.join().unwrap();
        assert!(seen[0].starts_with("GET /a HTTP/1.1\r\n"), "{}", seen[0]);
        assert!(seen[0].contains(&format!("Host: 127.0.0.1:{port}\r\n")), "{}", seen[0]);
        assert!(seen[0].contains("Accept: x/y\r\n") && seen[0].contains("Connection: close\r\n"), "{}", seen[0]);
        assert!(seen[0].contains("User-Agent: shoal/") && !seen[0].to_lowercase().contains("content-length"), "{}", seen[0]);
        assert!(seen[1].starts_with("POST /token HTTP/1.1\r\n"), "{}", seen[1]);
        assert!(seen[1].contains("Content-Type: application/x-www-form-urlencoded\r\n"), "{}", seen[1]);
        assert!(seen[1].contains("Content-Length: 0\r\n"), "{}", seen[1]);
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
    fn stops_after_ten_redirects() {
        let (port, h) = serve(vec![b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n".to_vec(); MAX_REDIRECTS + 1]);
        let url = Url::parse(&format!("http://127.0.0.1:{port}/start")).unwrap();
        let e = Client::default().send(Request::new("GET", url)).err().unwrap();
        assert_eq!(e.to_string(), format!("Get \"http://127.0.0.1:{port}/again\": stopped after 10 redirects"));
        assert_eq!(h.join().unwrap().len(), MAX_REDIRECTS + 1);
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
