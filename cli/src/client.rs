//! A small blocking HTTP/1.1 client for the Engine API on a unix socket.
//!
//! One connection per request (`Connection: close`), bodies read by
//! `Content-Length`, chunked transfer coding, or until the server closes.
//! Paths are given without the version prefix; `/v1.44` is added here.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use crate::error::{CliError, CliResult};
use serde_json::Value;

use crate::json::{self, JsonExt};

pub const API_VERSION: &str = "1.44";
pub const DEFAULT_HOST: &str = "unix:///run/shoal/shoal.sock";
pub const HOST_ENV: &str = "SHOAL_HOST";

/// Where the daemon listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    Unix(PathBuf),
}

impl Host {
    /// `-H` flag, else `SHOAL_HOST`, else the default socket.
    pub fn select(flag: Option<&str>) -> CliResult<Host> {
        let env = std::env::var(HOST_ENV).ok().filter(|s| !s.is_empty());
        let spec = flag.map(str::to_string).or(env).unwrap_or_else(|| DEFAULT_HOST.to_string());
        Host::parse(&spec)
    }

    pub fn parse(spec: &str) -> CliResult<Host> {
        let spec = spec.trim();
        if let Some(path) = spec.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(CliError::new(format!("invalid host \"{spec}\": missing socket path")));
            }
            return Ok(Host::Unix(PathBuf::from(path)));
        }
        if spec.starts_with('/') {
            return Ok(Host::Unix(PathBuf::from(spec)));
        }
        if spec.starts_with("tcp://") {
            return Err(CliError::new("tcp:// hosts need TLS client certificates; not supported by this build yet"));
        }
        Err(CliError::new(format!("invalid host \"{spec}\": expected unix:///path/to/shoal.sock")))
    }

    /// The host as the user would write it (`unix:///run/shoal/shoal.sock`).
    pub fn url(&self) -> String {
        match self {
            Host::Unix(p) => format!("unix://{}", p.display()),
        }
    }
}

/// The head of a response plus a reader for its (decoded) body.
#[allow(dead_code)] // headers are for streams and `/_ping` (Swarm, Api-Version)
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Box<dyn Read + Send>,
}

#[allow(dead_code)]
impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn read_all(&mut self) -> CliResult<Vec<u8>> {
        let mut buf = Vec::new();
        self.body.read_to_end(&mut buf).map_err(|e| CliError::new(format!("error reading response from daemon: {e}")))?;
        Ok(buf)
    }

    pub fn text(&mut self) -> CliResult<String> {
        Ok(String::from_utf8_lossy(&self.read_all()?).into_owned())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A hijacked connection: the daemon's raw stream and the socket to write
/// stdin to (`shutdown(Write)` is docker's `CloseWrite`).
pub struct Hijacked {
    pub reader: Box<dyn Read + Send>,
    pub writer: UnixStream,
}

#[derive(Clone, Debug)]
pub struct Client {
    host: Host,
}

impl Client {
    pub fn new(host: Host) -> Client {
        Client { host }
    }

    #[allow(dead_code)]
    pub fn host(&self) -> &Host {
        &self.host
    }

    fn connect(&self) -> CliResult<UnixStream> {
        let Host::Unix(path) = &self.host;
        UnixStream::connect(path).map_err(|e| {
            if e.kind() == io::ErrorKind::PermissionDenied {
                CliError::new(format!(
                    "permission denied while trying to connect to the Shoal daemon socket at {}: dial unix {}: connect: permission denied",
                    self.host.url(),
                    path.display()
                ))
            } else {
                CliError::new(format!("Cannot connect to the Shoal daemon at {}. Is the shoald daemon running?", self.host.url()))
            }
        })
    }

    /// Sends a request and returns the response head with its body unread,
    /// whatever the status (for streams such as logs and events).
    pub fn open(&self, method: &str, path: &str, body: Option<&[u8]>) -> CliResult<Response> {
        self.open_with(method, path, body, &[])
    }

    /// [`Client::open`] with extra request headers (`X-Registry-Auth`).
    pub fn open_with(&self, method: &str, path: &str, body: Option<&[u8]>, headers: &[(&str, &str)]) -> CliResult<Response> {
        let mut stream = self.connect()?;
        let request = build_request(method, &format!("/v{API_VERSION}{path}"), body, headers);
        stream.write_all(&request).map_err(|e| CliError::new(format!("error during connect: {e}")))?;
        read_response(Box::new(stream), method == "HEAD").map_err(|e| CliError::new(format!("error reading response from daemon: {e}")))
    }

    /// A POST that asks to take the connection over (`Upgrade: tcp`), as
    /// docker's client does for exec and attach. Returns the daemon's
    /// stream and the socket to write to; a daemon that answers without
    /// upgrading gives its body as the stream.
    pub fn hijack(&self, path: &str, body: &Value) -> CliResult<Hijacked> {
        let mut stream = self.connect()?;
        let bytes = body.to_compact().into_bytes();
        let mut request = build_request("POST", &format!("/v{API_VERSION}{path}"), Some(&bytes), &[("Upgrade", "tcp")]);
        // build_request says `Connection: close`; an upgrade says `Upgrade`.
        let text = String::from_utf8_lossy(&request).replacen("Connection: close\r\n", "Connection: Upgrade\r\n", 1);
        request = text.into_bytes();
        stream.write_all(&request).map_err(|e| CliError::new(format!("error during connect: {e}")))?;
        let reader = stream.try_clone().map_err(|e| CliError::new(format!("error during connect: {e}")))?;
        let mut resp =
            read_response(Box::new(reader), false).map_err(|e| CliError::new(format!("error reading response from daemon: {e}")))?;
        if resp.status != 101 && !resp.is_success() {
            let (status, reason) = (resp.status, resp.reason.clone());
            let text = resp.text().unwrap_or_default();
            return Err(CliError::daemon(status, &error_message(status, &reason, &text)));
        }
        Ok(Hijacked { reader: resp.body, writer: stream })
    }

    /// Sends a request; a non-2xx answer becomes "Error response from daemon: …".
    pub fn send(&self, method: &str, path: &str, body: Option<&Value>) -> CliResult<Response> {
        self.send_with(method, path, body, &[])
    }

    /// [`Client::send`] with extra request headers.
    pub fn send_with(&self, method: &str, path: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> CliResult<Response> {
        let bytes = body.map(|b| b.to_compact().into_bytes());
        let mut resp = self.open_with(method, path, bytes.as_deref(), headers)?;
        if !resp.is_success() {
            let status = resp.status;
            let reason = resp.reason.clone();
            let text = resp.text().unwrap_or_default();
            return Err(CliError::daemon(status, &error_message(status, &reason, &text)));
        }
        Ok(resp)
    }

    /// The raw body text of a successful request.
    pub fn raw(&self, method: &str, path: &str, body: Option<&Value>) -> CliResult<String> {
        self.send(method, path, body)?.text()
    }

    /// A successful request's body parsed as JSON (`Null` when empty).
    pub fn json(&self, method: &str, path: &str, body: Option<&Value>) -> CliResult<Value> {
        let text = self.raw(method, path, body)?;
        parse_body(&text)
    }

    pub fn get(&self, path: &str) -> CliResult<Value> {
        self.json("GET", path, None)
    }

    pub fn post(&self, path: &str, body: Option<&Value>) -> CliResult<Value> {
        self.json("POST", path, body)
    }

    /// A POST with `X-Registry-Auth` when `registry_auth` is set.
    pub fn post_auth(&self, path: &str, body: Option<&Value>, registry_auth: Option<&str>) -> CliResult<Value> {
        let headers: Vec<(&str, &str)> = registry_auth.map(|a| ("X-Registry-Auth", a)).into_iter().collect();
        parse_body(&self.send_with("POST", path, body, &headers)?.text()?)
    }

    pub fn delete(&self, path: &str) -> CliResult<Value> {
        self.json("DELETE", path, None)
    }
}

pub fn parse_body(text: &str) -> CliResult<Value> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    json::parse(text).map_err(|e| CliError::new(format!("error decoding response from daemon: {e}")))
}

/// Docker's error body is `{"message": "..."}`; fall back to the text, then
/// to the status line.
fn error_message(status: u16, reason: &str, body: &str) -> String {
    if let Ok(v) = json::parse(body) {
        if let Some(m) = v["message"].as_str() {
            return m.to_string();
        }
    }
    let t = body.trim();
    if !t.is_empty() {
        return t.to_string();
    }
    format!("{status} {reason}").trim().to_lowercase()
}

fn build_request(method: &str, target: &str, body: Option<&[u8]>, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: shoal\r\nUser-Agent: Shoal-Client/{} ({})\r\nConnection: close\r\n",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match body {
        Some(b) => head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len())),
        None if method == "POST" || method == "PUT" => head.push_str("Content-Length: 0\r\n"),
        None => {}
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if let Some(b) = body {
        out.extend_from_slice(b);
    }
    out
}

/// Reads a status line and headers, and wraps the rest in the right body reader.
pub fn read_response(stream: Box<dyn Read + Send>, head_only: bool) -> io::Result<Response> {
    let mut reader = BufReader::new(stream);
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    let (status, reason, headers) = loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(bad("the daemon closed the connection without a response"));
        }
        let line = line.trim_end();
        let mut parts = line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        if !version.starts_with("HTTP/1.") {
            return Err(bad(&format!("malformed HTTP status line {line:?}")));
        }
        let status: u16 = parts.next().and_then(|s| s.parse().ok()).ok_or_else(|| bad("malformed HTTP status code"))?;
        let reason = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Err(bad("unexpected end of response headers"));
            }
            let h = h.trim_end_matches(['\r', '\n']);
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        // Skip interim 1xx responses (not 101: the connection is ours now).
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        break (status, reason, headers);
    };
    let find = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let body: Box<dyn Read + Send> = if head_only || status == 204 || status == 304 {
        Box::new(io::empty())
    } else if find("Transfer-Encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        Box::new(ChunkedReader::new(reader))
    } else if let Some(len) = find("Content-Length") {
        let n: u64 = len.parse().map_err(|_| bad("malformed Content-Length"))?;
        Box::new(reader.take(n))
    } else {
        Box::new(reader)
    };
    Ok(Response { status, reason, headers, body })
}

/// Decodes `Transfer-Encoding: chunked`.
pub struct ChunkedReader<R: BufRead> {
    inner: R,
    remaining: u64,
    done: bool,
    first: bool,
}

impl<R: BufRead> ChunkedReader<R> {
    pub fn new(inner: R) -> Self {
        ChunkedReader { inner, remaining: 0, done: false, first: true }
    }

    fn next_chunk(&mut self) -> io::Result<()> {
        let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
        if !self.first {
            // CRLF after the previous chunk's data
            let mut crlf = String::new();
            self.inner.read_line(&mut crlf)?;
            if !crlf.trim_end_matches(['\r', '\n']).is_empty() {
                return Err(bad("malformed chunked encoding"));
            }
        }
        self.first = false;
        let mut line = String::new();
        if self.inner.read_line(&mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "unexpected EOF in chunked body"));
        }
        let size = line.trim_end_matches(['\r', '\n']);
        let size = size.split(';').next().unwrap_or("").trim();
        let n = u64::from_str_radix(size, 16).map_err(|_| bad("malformed chunk size"))?;
        if n == 0 {
            // trailers until an empty line (or EOF)
            loop {
                let mut t = String::new();
                if self.inner.read_line(&mut t)? == 0 || t.trim_end_matches(['\r', '\n']).is_empty() {
                    break;
                }
            }
            self.done = true;
        }
        self.remaining = n;
        Ok(())
    }
}

impl<R: BufRead> Read for ChunkedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.remaining == 0 {
            if self.done {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let want = buf.len().min(self.remaining as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "unexpected EOF in chunked body"));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Percent-encodes a query component.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Builds `?k=v&k2=v2` (empty when there are no parameters).
pub fn query(params: &[(&str, String)]) -> String {
    if params.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = params.iter().map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v))).collect();
    format!("?{}", parts.join("&"))
}

/// Percent-encodes a path segment (an ID or a name given by the user).
pub fn path_segment(s: &str) -> String {
    url_encode(s)
}

#[cfg(test)]
pub mod testing {
    //! A fake daemon: a unix socket in a temp dir answering canned responses.

    use std::io::{BufRead, BufReader, Read, Write};
    use std::os::unix::net::UnixListener;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Debug)]
    pub struct Request {
        pub method: String,
        pub target: String,
        pub body: String,
    }

    pub struct FakeDaemon {
        pub dir: PathBuf,
        pub socket: PathBuf,
        pub requests: Arc<Mutex<Vec<Request>>>,
    }

    type Handler = dyn Fn(&Request) -> (u16, String) + Send + Sync;

    impl FakeDaemon {
        /// Runs a command against this daemon: (its result, what it printed).
        pub fn run(&self, f: impl FnOnce(&mut crate::commands::Env) -> crate::error::CliResult) -> (crate::error::CliResult, String) {
            let client = self.client();
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let r = {
                let mut env = crate::commands::Env { client: &client, out: &mut out, err: &mut err, prog: "shoal".into() };
                f(&mut env)
            };
            (r, String::from_utf8(out).expect("commands print UTF-8"))
        }

        /// Serves `handler(request) -> (status, body)` until dropped.
        pub fn start(handler: impl Fn(&Request) -> (u16, String) + Send + Sync + 'static) -> FakeDaemon {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!("shoal-cli-test-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let socket = dir.join("shoal.sock");
            let listener = UnixListener::bind(&socket).unwrap();
            let requests = Arc::new(Mutex::new(Vec::new()));
            let reqs = requests.clone();
            let handler: Arc<Handler> = Arc::new(handler);
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    let Ok(mut conn) = conn else { break };
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        continue;
                    }
                    let mut it = line.split_whitespace();
                    let method = it.next().unwrap_or("").to_string();
                    let target = it.next().unwrap_or("").to_string();
                    let mut len = 0usize;
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some(v) = h.strip_prefix("Content-Length:") {
                            len = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0u8; len];
                    reader.read_exact(&mut body).unwrap();
                    let req = Request { method, target, body: String::from_utf8(body).unwrap() };
                    reqs.lock().unwrap().push(req.clone());
                    let (status, body) = handler(&req);
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(resp.as_bytes());
                }
            });
            FakeDaemon { dir, socket, requests }
        }

        pub fn client(&self) -> super::Client {
            super::Client::new(super::Host::Unix(self.socket.clone()))
        }

        pub fn requests(&self) -> Vec<Request> {
            self.requests.lock().unwrap().clone()
        }
    }

    impl Drop for FakeDaemon {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::FakeDaemon;
    use super::*;

    #[test]
    fn chunked_decoding() {
        let raw = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\n";
        let mut r = ChunkedReader::new(&raw[..]);
        let mut out = String::new();
        r.read_to_string(&mut out).unwrap();
        assert_eq!(out, "Wikipedia in\r\n\r\nchunks.");
    }

    #[test]
    fn chunked_truncated_is_an_error() {
        let raw = b"a\r\nabc";
        let mut r = ChunkedReader::new(&raw[..]);
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).is_err());
    }

    #[test]
    fn response_parsing() {
        let raw =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nApi-Version: 1.44\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
                .to_vec();
        let mut r = read_response(Box::new(io::Cursor::new(raw)), false).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("api-version"), Some("1.44"));
        assert_eq!(r.text().unwrap(), "{}");
        let raw = b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nhelloEXTRA".to_vec();
        let mut r = read_response(Box::new(io::Cursor::new(raw)), false).unwrap();
        assert_eq!(r.text().unwrap(), "hello");
    }

    #[test]
    fn hosts() {
        assert_eq!(Host::parse("unix:///tmp/x.sock").unwrap(), Host::Unix("/tmp/x.sock".into()));
        assert_eq!(Host::parse("/tmp/x.sock").unwrap().url(), "unix:///tmp/x.sock");
        assert_eq!(
            Host::parse("tcp://1.2.3.4:2376").unwrap_err().message,
            "tcp:// hosts need TLS client certificates; not supported by this build yet"
        );
        assert!(Host::parse("ssh://x").is_err());
    }

    #[test]
    fn encoding() {
        assert_eq!(url_encode(r#"{"role":{"manager":true}}"#), "%7B%22role%22%3A%7B%22manager%22%3Atrue%7D%7D");
        assert_eq!(query(&[("force", "true".into()), ("v", "a b".into())]), "?force=true&v=a%20b");
        assert_eq!(query(&[]), "");
    }

    #[test]
    fn end_to_end_against_fake_daemon() {
        let d = FakeDaemon::start(|req| match (req.method.as_str(), req.target.as_str()) {
            ("GET", "/v1.44/info") => (200, r#"{"ID":"x","Swarm":{"NodeID":"n1"}}"#.into()),
            ("POST", "/v1.44/swarm/leave?force=false") => (200, String::new()),
            _ => (503, r#"{"message":"This node is not a swarm manager."}"#.into()),
        });
        let c = d.client();
        let info = c.get("/info").unwrap();
        assert_eq!(info.at(&["Swarm", "NodeID"]).str(), "n1");
        assert_eq!(c.post("/swarm/leave?force=false", None).unwrap(), Value::Null);
        let err = c.get("/nodes").unwrap_err();
        assert_eq!(err.message, "Error response from daemon: This node is not a swarm manager.");
        assert_eq!(err.http_status, Some(503));
        let reqs = d.requests();
        assert_eq!(reqs[1].method, "POST");
    }

    #[test]
    fn hijacked_connections_carry_both_directions() {
        use std::os::unix::net::UnixListener;
        let dir = std::env::temp_dir().join(format!("shoal-cli-hijack-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("s.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
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
            conn.write_all(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nfirst;").unwrap();
            // What the client sends until it half-closes comes back.
            let mut rest = Vec::new();
            reader.read_to_end(&mut rest).unwrap();
            conn.write_all(&rest).unwrap();
            head
        });
        let c = Client::new(Host::Unix(sock));
        let mut h = c.hijack("/exec/x/start", &json::object::<&str>([])).unwrap();
        h.writer.write_all(b"typed").unwrap();
        h.writer.shutdown(std::net::Shutdown::Write).unwrap();
        let mut got = String::new();
        h.reader.read_to_string(&mut got).unwrap();
        assert_eq!(got, "first;typed");
        let head = server.join().unwrap();
        assert!(head.starts_with("POST /v1.44/exec/x/start HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("Connection: Upgrade\r\n") && head.contains("Upgrade: tcp\r\n") && !head.contains("close"), "{head}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn hijack_refused_is_a_daemon_error() {
        let d = FakeDaemon::start(|_| (409, r#"{"message":"Container abc is not running"}"#.into()));
        let err = d.client().hijack("/exec/x/start", &Value::Null).err().unwrap();
        assert_eq!(err.message, "Error response from daemon: Container abc is not running");
    }

    #[test]
    fn connection_refused_message() {
        let c = Client::new(Host::Unix("/nonexistent/shoal.sock".into()));
        assert_eq!(
            c.get("/info").unwrap_err().message,
            "Cannot connect to the Shoal daemon at unix:///nonexistent/shoal.sock. Is the shoald daemon running?"
        );
    }
}
