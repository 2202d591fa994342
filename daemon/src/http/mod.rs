//! The Engine API server: HTTP/1.1 on a root-only unix socket, Docker's
//! paths (with optional `/vX.YY` prefix), JSON bodies and error shapes.

pub mod containers;
#[cfg(test)]
mod corpus_tests;
mod events;
pub mod exec;
mod images;
mod lifecycle;
mod logs;
mod networks;
mod nodes;
pub mod routes;
mod secrets;
mod services;
mod standalone;
mod stats;
mod swarm;
mod system;
pub mod version;
mod volumes;

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use shoal_api::ApiError;
use tokio::net::UnixListener;

use crate::swarm::SwarmNode;

pub type Reply = Result<Response<Full<Bytes>>, ApiError>;
/// A whole body, or a stream (logs).
pub type Body = http_body_util::Either<Full<Bytes>, logs::StreamBody>;

/// What a handler gets: the parsed request.
pub struct Call {
    pub method: Method,
    /// Path segments after the version prefix.
    pub segs: Vec<String>,
    pub query: HashMap<String, String>,
    pub body: Bytes,
    /// The `X-Registry-Auth` header (registry credentials, base64url JSON).
    pub registry_auth: Option<String>,
    /// The API version in the path (the latest without one).
    pub api: version::ApiVersion,
}

impl Call {
    /// A `GET` with query `q` and nothing else, for tests.
    #[cfg(test)]
    pub fn get_with_query(q: &str) -> Call {
        Call { method: Method::GET, segs: vec![], query: parse_query(q), body: Bytes::new(), registry_auth: None, api: Default::default() }
    }

    pub fn query_bool(&self, key: &str) -> bool {
        matches!(self.query.get(key).map(String::as_str), Some("1" | "true" | "True"))
    }
    /// The body as Docker's Go decoder reads it (`null` is "not set", field
    /// names match ignoring case, unknown fields are ignored; see
    /// `shoal_api::lenient`): every handler decodes its body here.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        if self.body.is_empty() {
            return shoal_api::lenient::from_slice(b"{}").map_err(|e| ApiError::bad_request(format!("missing request body: {e}")));
        }
        shoal_api::lenient::from_slice(&self.body).map_err(|e| ApiError::bad_request(format!("invalid JSON in request body: {e}")))
    }
    pub fn version(&self) -> Result<u64, ApiError> {
        let v = self.query.get("version").ok_or_else(|| ApiError::bad_request("missing version parameter"))?;
        v.parse().map_err(|_| ApiError::bad_request(format!("invalid version {v:?}: must be an integer")))
    }
}

pub async fn serve_unix(node: Arc<SwarmNode>, socket: &Path) -> std::io::Result<()> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(socket)?;
    // Root only: whoever can talk to this socket controls the node.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(serve_conn(node.clone(), stream));
    }
}

/// The API on TCP, mutual TLS only (see `config::tcp_tls`).
pub async fn serve_tcp(node: Arc<SwarmNode>, addr: String, tls: Arc<rustls::ServerConfig>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, _) = listener.accept().await?;
        let (node, acceptor) = (node.clone(), acceptor.clone());
        tokio::spawn(async move {
            let accepted = tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp)).await;
            if let Ok(Ok(stream)) = accepted {
                serve_conn(node, stream).await;
            }
        });
    }
}

async fn serve_conn<IO>(node: Arc<SwarmNode>, io: IO)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| timed(node.clone(), req));
    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), svc).with_upgrades().await;
}

/// `handle`, timed for `engine_daemon_api_request_duration_seconds` (until
/// the response head: a stream's body is not waited for).
async fn timed(node: Arc<SwarmNode>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let started = std::time::Instant::now();
    let (method, route) = (routes::method(req.method()), routes::template(req.uri().path()));
    let resp = handle(node, req).await;
    shoal_metrics::get().api_request(method, route, started.elapsed().as_secs_f64());
    resp
}

async fn handle(node: Arc<SwarmNode>, mut req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = parse_query(req.uri().query().unwrap_or(""));
    let registry_auth = req.headers().get("X-Registry-Auth").and_then(|v| v.to_str().ok()).map(str::to_string);
    let (versioned, api) = match split_version(&path) {
        Ok((segs, api)) => (Ok(segs), api),
        Err(e) => (Err(e), version::ApiVersion::latest()),
    };
    let reply = match versioned {
        Err(e) => Err(e),
        Ok(segs) if method == Method::POST && segs == ["images", "load"] => {
            // An image archive goes to a file as it arrives, never whole
            // into memory.
            let tmp = node.images.store().temp_path("load");
            match save_body(req.into_body(), &tmp, MAX_ARCHIVE_BYTES).await {
                Ok(()) => {
                    let r = images::load(&node, &tmp).await.map(|r| r.map(Body::Left));
                    let _ = std::fs::remove_file(&tmp);
                    r
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    Err(e)
                }
            }
        }
        Ok(segs) if method == Method::POST && segs.len() == 3 && segs[0] == "containers" && segs[2] == "attach" => {
            // As exec start: the client hijacks the connection.
            let upgrade = req.headers().contains_key(hyper::header::UPGRADE).then(|| hyper::upgrade::on(&mut req));
            let call = Call { method: method.clone(), segs: segs.clone(), query, body: Bytes::new(), registry_auth, api };
            standalone::attach(&node, &segs[1], &call, upgrade).await
        }
        Ok(segs) if method == Method::POST && segs.len() == 3 && segs[0] == "exec" && segs[2] == "start" => {
            // The client hijacks the connection (HTTP upgrade) for the
            // process's streams.
            let upgrade = req.headers().contains_key(hyper::header::UPGRADE).then(|| hyper::upgrade::on(&mut req));
            match http_body_util::Limited::new(req.into_body(), MAX_BODY_BYTES).collect().await {
                Ok(b) => exec::start(&node, &segs[1], b.to_bytes(), upgrade, api).await,
                Err(e) => Err(ApiError::bad_request(format!("reading request body: {e}"))),
            }
        }
        Ok(segs) => match http_body_util::Limited::new(req.into_body(), MAX_BODY_BYTES).collect().await {
            Ok(b) => route_streams(&node, Call { method: method.clone(), segs, query, body: b.to_bytes(), registry_auth, api }).await,
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                Err(ApiError::new(413, format!("request body too large (at most {MAX_BODY_BYTES} bytes)")))
            }
            Err(e) => Err(ApiError::bad_request(format!("reading request body: {e}"))),
        },
    };
    let mut resp = reply.unwrap_or_else(|e| error_response(&e).map(Body::Left));
    let h = resp.headers_mut();
    h.insert("Api-Version", shoal_api::API_VERSION.parse().expect("static header"));
    h.insert("Ostype", "linux".parse().expect("static header"));
    h.insert("Docker-Experimental", "false".parse().expect("static header"));
    h.insert("Server", format!("Shoal/{} (linux)", shoal_api::ENGINE_VERSION).parse().expect("static header"));
    if method == Method::HEAD {
        *resp.body_mut() = Body::Left(Full::new(Bytes::new()));
    }
    Ok(resp)
}

/// The largest request body read into memory: specs, secrets (500 KiB in
/// Docker) and configs (1000 KiB) fit with room to spare.
pub const MAX_BODY_BYTES: usize = 16 << 20;
/// The largest image archive `/images/load` takes.
pub const MAX_ARCHIVE_BYTES: u64 = 32 << 30;

/// Writes a request body to `path` (0600) as it arrives, refusing more than
/// `cap` bytes.
async fn save_body(mut body: Incoming, path: &Path, cap: u64) -> Result<(), ApiError> {
    use tokio::io::AsyncWriteExt;
    let io = |e: std::io::Error| ApiError::internal(format!("saving the archive: {e}"));
    let mut f = tokio::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).await.map_err(io)?;
    let mut written = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            written += data.len() as u64;
            if written > cap {
                return Err(ApiError::new(413, format!("image archive too large (at most {cap} bytes)")));
            }
            f.write_all(&data).await.map_err(io)?;
        }
    }
    f.flush().await.map_err(io)
}

/// Strips `/v1.44` and checks it against what we serve: the segments
/// after it, and the version named (the latest if none).
fn split_version(path: &str) -> Result<(Vec<String>, version::ApiVersion), ApiError> {
    let mut segs: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
    let mut api = version::ApiVersion::latest();
    if let Some(v) = segs.first().and_then(|s| s.strip_prefix('v')) {
        if v.contains('.') && v.chars().all(|c| c.is_ascii_digit() || c == '.') {
            if version_lt(v, shoal_api::MIN_API_VERSION) {
                return Err(ApiError::bad_request(format!(
                    "client version {v} is too old. Minimum supported API version is {}, please upgrade your client to a newer version",
                    shoal_api::MIN_API_VERSION
                )));
            }
            if version_lt(shoal_api::API_VERSION, v) {
                return Err(ApiError::bad_request(format!(
                    "client version {v} is too new. Maximum supported API version is {}",
                    shoal_api::API_VERSION
                )));
            }
            api = version::ApiVersion::parse(v).unwrap_or(api);
            segs.remove(0);
        }
    }
    Ok((segs, api))
}

fn version_lt(a: &str, b: &str) -> bool {
    let p = |s: &str| s.split('.').map(|x| x.parse::<u32>().unwrap_or(0)).collect::<Vec<_>>();
    p(a) < p(b)
}

/// Streaming endpoints, then everything else through `route`.
async fn route_streams(node: &Arc<SwarmNode>, call: Call) -> Result<Response<Body>, ApiError> {
    let segs: Vec<&str> = call.segs.iter().map(String::as_str).collect();
    let target = match (call.method.as_str(), segs.as_slice()) {
        ("GET", ["services", id, "logs"]) => Some(logs::Target::Service(id)),
        ("GET", ["tasks", id, "logs"]) => Some(logs::Target::Task(id)),
        ("GET", ["containers", id, "logs"]) => return containers::logs(node, id, &call).await.map(|r| r.map(Body::Right)),
        ("GET", ["events"]) => return events::serve(node, &call).map(|r| r.map(Body::Right)),
        ("POST", ["images", "create"]) => return images::create(node, &call).map(|r| r.map(Body::Right)),
        ("GET", ["containers", id, "stats"]) => return stats::serve(node, id, &call).map(|r| r.map(Body::Right)),
        ("POST", ["containers", id, "wait"]) => return lifecycle::wait(node, id, &call).await.map(|r| r.map(Body::Right)),
        _ => None,
    };
    match target {
        Some(t) => logs::serve(node, t, &call).await.map(|r| r.map(Body::Right)),
        None => route(node, call).await.map(|r| r.map(Body::Left)),
    }
}

/// The routes that read the cluster's replicated state.
const SWARM_READS: [&str; 7] = ["swarm", "nodes", "services", "tasks", "secrets", "configs", "networks"];

/// A swarm read on a follower first waits until the follower holds every
/// write committed before the request (Raft's ReadIndex: one round trip to
/// the leader), so a write made through any manager is read back through
/// any other, as Docker's managers give by proxying reads to the leader.
/// With no leader in reach the follower answers from what it has, where
/// Docker would refuse.
async fn read_committed(node: &SwarmNode, call: &Call) {
    if call.method != Method::GET || !call.segs.first().is_some_and(|s| SWARM_READS.contains(&s.as_str())) {
        return;
    }
    let Some(mgr) = node.manager() else { return };
    if mgr.is_leader() {
        return;
    }
    if let Err(e) = mgr.cluster.read_barrier(READ_BARRIER_WAIT).await {
        tracing::debug!("answering {} from this manager's state: {e:?}", call.segs.join("/"));
    }
}

/// How long a follower's read waits for the leader before answering from
/// its own state.
const READ_BARRIER_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

async fn route(node: &Arc<SwarmNode>, call: Call) -> Reply {
    read_committed(node, &call).await;
    let segs: Vec<&str> = call.segs.iter().map(String::as_str).collect();
    match (call.method.as_str(), segs.as_slice()) {
        ("GET" | "HEAD", ["_ping"]) => system::ping(node),
        ("GET", ["version"]) => system::version(),
        ("GET", ["info"]) => system::info(node),
        ("GET", ["swarm"]) => swarm::inspect(node),
        ("POST", ["swarm", "init"]) => swarm::init(node, &call).await,
        ("POST", ["swarm", "join"]) => swarm::join(node, &call).await,
        ("POST", ["swarm", "leave"]) => swarm::leave(node, &call).await,
        ("POST", ["swarm", "update"]) => swarm::update(node, &call).await,
        ("GET", ["swarm", "unlockkey"]) => swarm::unlock_key(node),
        ("POST", ["swarm", "unlock"]) => swarm::unlock(node, &call).await,
        ("GET", ["nodes"]) => nodes::list(node, &call),
        ("GET", ["nodes", id]) => nodes::inspect(node, id),
        ("POST", ["nodes", id, "update"]) => nodes::update(node, id, &call).await,
        ("DELETE", ["nodes", id]) => nodes::remove(node, id, &call).await,
        ("POST", ["services", "create"]) => services::create(node, &call).await,
        ("GET", ["services"]) => services::list(node, &call),
        ("GET", ["services", id]) => services::inspect(node, id, &call),
        ("POST", ["services", id, "update"]) => services::update(node, id, &call).await,
        ("DELETE", ["services", id]) => services::remove(node, id).await,
        ("GET", ["images", "json"]) => images::list(node, call.api),
        ("POST", ["images", "prune"]) => images::prune(node, &call).await,
        ("GET", ["images", name @ .., "json"]) if !name.is_empty() => images::inspect(node, &name.join("/"), call.api),
        ("GET", ["images", name @ .., "history"]) if !name.is_empty() => images::history(node, &name.join("/")),
        ("DELETE", ["images", name @ ..]) if !name.is_empty() => images::remove(node, &name.join("/"), &call).await,
        ("GET", ["volumes"]) => volumes::list(node, &call),
        ("POST", ["volumes", "create"]) => volumes::create(node, &call),
        ("POST", ["volumes", "prune"]) => volumes::prune(node, &call),
        ("GET", ["volumes", name]) => volumes::inspect(node, name),
        ("DELETE", ["volumes", name]) => volumes::remove(node, name, &call),
        ("GET", ["system", "df"]) => system::df(node, &call),
        ("GET", ["distribution", name @ .., "json"]) if !name.is_empty() => {
            images::distribution(node, name.join("/"), call.registry_auth.as_deref()).await
        }
        ("POST", ["secrets", "create"]) => secrets::create_secret(node, &call).await,
        ("GET", ["secrets"]) => secrets::list_secrets(node, &call),
        ("GET", ["secrets", id]) => secrets::inspect_secret(node, id),
        ("POST", ["secrets", id, "update"]) => secrets::update_secret(node, id, &call).await,
        ("DELETE", ["secrets", id]) => secrets::remove_secret(node, id).await,
        ("POST", ["configs", "create"]) => secrets::create_config(node, &call).await,
        ("GET", ["configs"]) => secrets::list_configs(node, &call),
        ("GET", ["configs", id]) => secrets::inspect_config(node, id),
        ("POST", ["configs", id, "update"]) => secrets::update_config(node, id, &call).await,
        ("DELETE", ["configs", id]) => secrets::remove_config(node, id).await,
        ("POST", ["networks", "create"]) => networks::create(node, &call).await,
        ("POST", ["networks", "prune"]) => networks::prune(node, &call).await,
        ("GET", ["networks"]) => networks::list(node, &call),
        ("GET", ["networks", id]) => networks::inspect(node, id),
        ("DELETE", ["networks", id]) => networks::remove(node, id).await,
        ("POST", ["containers", "create"]) => standalone::create(node, &call),
        ("POST", ["containers", id, "start"]) => standalone::start(node, id).await,
        ("POST", ["containers", id, "resize"]) => standalone::resize(node, id, &call),
        ("GET", ["containers", "json"]) => containers::list(node, &call),
        ("GET", ["containers", id, "json"]) => containers::inspect(node, id),
        ("GET", ["containers", id, "top"]) => containers::top(node, id, &call).await,
        ("POST", ["containers", id, "kill"]) => lifecycle::kill(node, id, &call).await,
        ("POST", ["containers", id, "stop"]) => lifecycle::stop(node, id, &call).await,
        ("POST", ["containers", id, "restart"]) => lifecycle::restart(node, id, &call).await,
        ("DELETE", ["containers", id]) => lifecycle::remove(node, id, &call).await,
        ("POST", ["containers", id, "exec"]) => exec::create(node, id, &call),
        ("GET", ["exec", id, "json"]) => exec::inspect(node, id),
        ("POST", ["exec", id, "resize"]) => exec::resize(node, id, &call),
        ("GET", ["tasks"]) => services::tasks(node, &call),
        ("GET", ["tasks", id]) => services::task(node, id),
        _ => Err(ApiError::not_found(format!("page not found: {} {}", call.method, call.segs.join("/")))),
    }
}

pub fn json_response<T: serde::Serialize>(status: StatusCode, v: &T) -> Reply {
    let body = serde_json::to_vec(v).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert("Content-Type", "application/json".parse().expect("static header"));
    Ok(r)
}

/// An answer with no body and `status` (204 after a remove, 304, ...).
pub fn empty_response(status: StatusCode) -> Reply {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    Ok(r)
}

pub fn ok_empty() -> Reply {
    Ok(Response::new(Full::new(Bytes::new())))
}

fn error_response(e: &ApiError) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(e.body())));
    *r.status_mut() = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert("Content-Type", "application/json".parse().expect("static header"));
    r
}

/// A query string as Go's `url.ParseQuery` reads it (`+` is a space, `%XX`
/// a byte); the last of repeated keys wins.
fn parse_query(q: &str) -> HashMap<String, String> {
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// A path segment: `%XX` is a byte (`+` stays a plus, as in a URL path).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefix() {
        assert_eq!(split_version("/v1.44/nodes/abc").unwrap().0, vec!["nodes", "abc"]);
        assert_eq!(split_version("/nodes").unwrap().0, vec!["nodes"]);
        assert_eq!(split_version("/v1.12/nodes").unwrap_err().status, 400);
        assert_eq!(split_version("/v9.99/nodes").unwrap_err().status, 400);
        assert_eq!(split_version("/v1.41/services").unwrap().1, version::ApiVersion(1, 41));
        assert_eq!(split_version("/services").unwrap().1, version::ApiVersion::latest());
    }

    #[test]
    fn query_decoding() {
        let q = parse_query("filters=%7B%22role%22%3A%7B%22manager%22%3Atrue%7D%7D&force=1");
        assert_eq!(q["filters"], r#"{"role":{"manager":true}}"#);
        assert_eq!(q["force"], "1");
        assert_eq!(percent_decode("a%2"), "a%2");
    }
}
