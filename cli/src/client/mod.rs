//! The Engine API client: requests to the daemon (its unix socket, or
//! `tcp://` with Docker's TLS flags: `host`) over the shared blocking
//! HTTP/1.1 client on hyper (`shoal_http_client`), one connection per
//! request (`Connection: close`), and Docker's error texts. Paths are
//! given without the version prefix; `/v1.44` is added here.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{CliError, CliResult};
use serde_json::Value;
use shoal_http_client::duplex::{self, Writer};
use shoal_http_client::tcp;
use shoal_http_client::tls::ClientFiles;
use shoal_http_client::{unix, ClientConfig, Io, Options, Request, Upgrade};

use crate::json::{self, JsonExt};

mod host;
pub use host::{Host, TlsFlags};

/// A response with its body unread (`body` is `Read`).
pub use shoal_http_client::Response;

pub const API_VERSION: &str = "1.44";

/// The most the CLI reads of an answer it keeps whole (a `tcp://` daemon
/// is at the other end of a network; `service ps` of 100,000 tasks is
/// about 100 MB). Streams (logs, events, pulls) are read as they come.
const MAX_BODY: u64 = 1 << 30;

/// What the CLI does with a response.
pub trait ResponseExt {
    fn read_all(&mut self) -> CliResult<Vec<u8>>;
    fn text(&mut self) -> CliResult<String>;
    fn is_success(&self) -> bool;
}

impl ResponseExt for Response {
    fn read_all(&mut self) -> CliResult<Vec<u8>> {
        let mut buf = Vec::new();
        let read = (&mut self.body).take(MAX_BODY + 1).read_to_end(&mut buf);
        read.map_err(|e| CliError::new(format!("error reading response from daemon: {e}")))?;
        if buf.len() as u64 > MAX_BODY {
            return Err(CliError::new(format!("error reading response from daemon: response body exceeds {MAX_BODY} bytes")));
        }
        Ok(buf)
    }

    fn text(&mut self) -> CliResult<String> {
        Ok(String::from_utf8_lossy(&self.read_all()?).into_owned())
    }

    fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A hijacked connection: the daemon's raw stream and where to write
/// stdin to (`Writer::close_write` is docker's `CloseWrite`). A daemon
/// that streams in a plain answer instead of switching protocols leaves
/// no way to write: `writer` is `None`.
pub struct Hijacked {
    pub reader: Box<dyn Read + Send>,
    pub writer: Option<Writer>,
}

/// Docker's dial timeout, used for the TLS handshake too.
const CONNECT_TIMEOUT: tcp::Timeouts = tcp::Timeouts { dial: Duration::from_secs(30), handshake: Duration::from_secs(30) };

#[derive(Clone, Debug)]
pub struct Client {
    host: Host,
    /// For a `tcp://` host with `--tls` or `--tlsverify`.
    tls: Option<Arc<ClientConfig>>,
}

impl Client {
    #[cfg(test)]
    pub fn new(host: Host) -> Client {
        Client { host, tls: None }
    }

    /// A client whose TCP connections use TLS with `files` (a unix socket
    /// ignores them, as Docker's client does).
    pub fn with_tls(host: Host, files: Option<ClientFiles>) -> CliResult<Client> {
        let tls = match (&host, files) {
            (Host::Tcp { .. }, Some(files)) => Some(shoal_http_client::tls::client_config(&files).map_err(CliError::new)?),
            _ => None,
        };
        Ok(Client { host, tls })
    }

    /// `error during connect: Get "https://host:2376/v1.44/info": …`:
    /// Docker's words for a request that got no answer.
    fn during_connect(&self, method: &str, target: &str, e: impl std::fmt::Display) -> CliError {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let name = shoal_http_client::request_name(method, &format!("{scheme}://{}{target}", self.host.authority()));
        CliError::new(format!("error during connect: {name}: {e}"))
    }

    fn connect(&self, method: &str, target: &str) -> CliResult<Box<dyn Io>> {
        let cannot_connect =
            || CliError::new(format!("Cannot connect to the Shoal daemon at {}. Is the shoald daemon running?", self.host.url()));
        match &self.host {
            Host::Unix(path) => match unix::connect(path) {
                Ok(io) => Ok(Box::new(io)),
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Err(CliError::new(format!(
                    "permission denied while trying to connect to the Shoal daemon socket at {}: dial unix {}: connect: permission denied",
                    self.host.url(),
                    path.display()
                ))),
                Err(_) => Err(cannot_connect()),
            },
            Host::Tcp { host, port } => match tcp::connect(host, *port, self.tls.clone(), CONNECT_TIMEOUT) {
                Ok(io) => Ok(io),
                Err(e) if e.refused() => Err(cannot_connect()),
                Err(e) => Err(self.during_connect(method, target, e)),
            },
        }
    }

    /// Sends a request and returns the response head with its body unread,
    /// whatever the status (for streams such as logs and events).
    pub fn open(&self, method: &str, path: &str, body: Option<&[u8]>) -> CliResult<Response> {
        self.open_with(method, path, body, &[])
    }

    /// [`Client::open`] with extra request headers (`X-Registry-Auth`).
    pub fn open_with(&self, method: &str, path: &str, body: Option<&[u8]>, headers: &[(&str, &str)]) -> CliResult<Response> {
        let target = format!("/v{API_VERSION}{path}");
        let io = self.connect(method, &target)?;
        let mut req = self.request(method, &target, body, "close");
        req.headers.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        // No deadline: logs and events follow for as long as the user wants.
        shoal_http_client::send(io, &req, &Options::default()).map_err(|e| self.during_connect(method, &target, e))
    }

    /// A POST that asks to take the connection over (`Upgrade: tcp`), as
    /// docker's client does for exec and attach. Returns the daemon's
    /// stream and the writing half; a daemon that answers without
    /// upgrading gives its body as the stream.
    pub fn hijack(&self, path: &str, body: &Value) -> CliResult<Hijacked> {
        let target = format!("/v{API_VERSION}{path}");
        let io = self.connect("POST", &target)?;
        let bytes = body.to_compact().into_bytes();
        let req = self.request("POST", &target, Some(&bytes), "Upgrade").header("Upgrade", "tcp");
        match shoal_http_client::send_upgrade(io, &req, &Options::default()).map_err(|e| self.during_connect("POST", &target, e))? {
            Upgrade::Switched { io, read_buf } => {
                let (reader, writer) = duplex::split(io, read_buf);
                Ok(Hijacked { reader: Box::new(reader), writer: Some(writer) })
            }
            Upgrade::Answered(mut resp) if !resp.is_success() => Err(refusal(&mut resp)),
            Upgrade::Answered(resp) => Ok(Hijacked { reader: Box::new(resp.body), writer: None }),
        }
    }

    /// The request as docker's client writes it, with `Connection: close`
    /// (one request per connection) or `Upgrade`; `Host` is the daemon's
    /// address for TCP.
    fn request<'a>(&self, method: &'a str, target: &'a str, body: Option<&'a [u8]>, connection: &str) -> Request<'a> {
        let host = match &self.host {
            Host::Unix(_) => "shoal".to_string(),
            Host::Tcp { .. } => self.host.authority(),
        };
        let mut req = Request::new(method, target)
            .header("Host", host)
            .header("User-Agent", format!("Shoal-Client/{} ({})", env!("CARGO_PKG_VERSION"), std::env::consts::OS))
            .header("Connection", connection);
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b);
        }
        req
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
            return Err(refusal(&mut resp));
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

/// A non-2xx answer as "Error response from daemon: …".
fn refusal(resp: &mut Response) -> CliError {
    let text = resp.text().unwrap_or_default();
    CliError::daemon(resp.status, &error_message(resp.status, &resp.reason, &text))
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

/// Percent-encodes a query component.
pub use shoal_http_client::escape as url_encode;

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
    use std::io::{BufRead, BufReader, Write};

    /// A request's head, read up to its blank line.
    fn read_head(reader: &mut impl BufRead) -> String {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                return head;
            }
            head.push_str(&line);
        }
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
            let head = read_head(&mut reader);
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
        let mut writer = h.writer.unwrap();
        writer.write_all(b"typed").unwrap();
        writer.close_write().unwrap();
        let mut got = String::new();
        h.reader.read_to_string(&mut got).unwrap();
        assert_eq!(got, "first;typed");
        let head = server.join().unwrap();
        assert!(head.starts_with("POST /v1.44/exec/x/start HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("Connection: Upgrade\r\n") && head.contains("Upgrade: tcp\r\n") && !head.contains("close"), "{head}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn hijack_answered_without_switching_streams_the_body() {
        let d = FakeDaemon::start(|_| (200, "plain stream".into()));
        let mut h = d.client().hijack("/exec/x/start", &Value::Null).unwrap();
        assert!(h.writer.is_none());
        let mut got = String::new();
        h.reader.read_to_string(&mut got).unwrap();
        assert_eq!(got, "plain stream");
    }

    #[test]
    fn hijack_refused_is_a_daemon_error() {
        let d = FakeDaemon::start(|_| (409, r#"{"message":"Container abc is not running"}"#.into()));
        let err = d.client().hijack("/exec/x/start", &Value::Null).err().unwrap();
        assert_eq!(err.message, "Error response from daemon: Container abc is not running");
    }

    #[test]
    fn tcp_hosts_plain_and_refused() {
        // A plain-HTTP daemon on loopback (Docker's `tcp://` without TLS).
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let head = read_head(&mut reader);
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n{\"ID\":\"tcp\"}").unwrap();
            head
        });
        let c = Client::with_tls(Host::parse(&format!("tcp://127.0.0.1:{port}")).unwrap(), None).unwrap();
        assert_eq!(c.get("/info").unwrap().at(&["ID"]).str(), "tcp");
        let head = server.join().unwrap();
        assert!(head.starts_with("GET /v1.44/info HTTP/1.1\r\n") && head.contains(&format!("Host: 127.0.0.1:{port}\r\n")), "{head}");
        // Nobody listens there any more.
        let e = c.get("/info").unwrap_err();
        assert_eq!(e.message, format!("Cannot connect to the Shoal daemon at tcp://127.0.0.1:{port}. Is the shoald daemon running?"));
        // TLS to a server that does not speak it: the handshake fails, named.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let _ = s.read(&mut [0u8; 1024]);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        });
        let files = shoal_http_client::tls::ClientFiles { verify: false, ..Default::default() };
        let c = Client::with_tls(Host::parse(&format!("tcp://127.0.0.1:{port}")).unwrap(), Some(files)).unwrap();
        let e = c.get("/info").unwrap_err();
        assert!(
            e.message.starts_with(&format!("error during connect: Get \"https://127.0.0.1:{port}/v1.44/info\": tls: ")),
            "{}",
            e.message
        );
        server.join().unwrap();
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
