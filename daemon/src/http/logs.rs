//! `GET /services/{id}/logs` and `GET /tasks/{id}/logs`: a subscription on
//! the leader's log broker, streamed back as Docker does it: each line is
//! `[timestamp ][details ]text`, framed for `application/vnd.docker.
//! multiplexed-stream` (8-byte header: stream 1 stdout, 2 stderr, 3 for the
//! daemon's own error, then the big-endian length) unless the task has a TTY.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use shoal_api::ApiError;
use shoal_gotemplate::template::query_escape;
use shoal_rpc::logs::{LogEvent, LogMessage, LogOptions, LogSelector, LogStream};
use tokio::sync::mpsc;

use super::Call;
use crate::swarm::SwarmNode;

/// A response body fed by a channel; the stream ends when the sender drops,
/// and dropping the body (the client left) drops the subscription.
pub struct StreamBody {
    rx: mpsc::Receiver<Bytes>,
}

impl StreamBody {
    pub fn new(rx: mpsc::Receiver<Bytes>) -> StreamBody {
        StreamBody { rx }
    }
}

impl hyper::body::Body for StreamBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// How the lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Format {
    pub timestamps: bool,
    pub details: bool,
    /// Multiplexed frames (no TTY) or the raw stream.
    pub mux: bool,
}

fn flag(call: &Call, key: &str) -> bool {
    call.query_bool(key)
}

/// The query's options, with moby's checks and wording.
pub fn parse_options(call: &Call) -> Result<(LogOptions, Format), ApiError> {
    let (stdout, stderr) = (flag(call, "stdout"), flag(call, "stderr"));
    if !stdout && !stderr {
        return Err(ApiError::bad_request("Bad parameters: you must choose at least one stream"));
    }
    let tail = match call.query.get("tail").map(String::as_str) {
        None | Some("") | Some("all") => None,
        Some(t) => {
            let n: i64 = t.parse().map_err(|_| ApiError::bad_request(r#"tail value must be a positive integer or "all""#))?;
            if n < 0 {
                return Err(ApiError::bad_request("negative tail values not supported"));
            }
            Some(n as u64)
        }
    };
    let since_unix_nanos = match call.query.get("since").map(String::as_str) {
        None | Some("") | Some("0") => None,
        Some(s) => Some(parse_since(s).ok_or_else(|| {
            ApiError::bad_request(format!("could not parse since timestamp: strconv.ParseInt: parsing {s:?}: invalid syntax"))
        })?),
    };
    let opts = LogOptions { follow: flag(call, "follow"), tail, since_unix_nanos, stdout, stderr };
    Ok((opts, Format { timestamps: flag(call, "timestamps"), details: flag(call, "details"), mux: true }))
}

/// The API's `since`: `seconds[.nanoseconds]` since the epoch, as the
/// docker client sends it.
pub fn parse_since(s: &str) -> Option<i128> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let nanos: i128 = if frac.is_empty() {
        0
    } else {
        if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        format!("{frac:0<9}").parse().ok()?
    };
    Some(secs as i128 * 1_000_000_000 + nanos)
}

/// Docker's details for a swarm log line, sorted by key.
pub fn details(m: &LogMessage) -> String {
    [
        ("com.docker.swarm.node.id", &m.node_id),
        ("com.docker.swarm.service.id", &m.service_id),
        ("com.docker.swarm.task.id", &m.line.task_id),
    ]
    .iter()
    .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
    .collect::<Vec<_>>()
    .join(",")
}

/// One log line as written to the stream (before framing).
pub fn render(m: &LogMessage, f: Format) -> Vec<u8> {
    let mut out = Vec::with_capacity(m.line.data.len() + 160);
    if f.timestamps {
        out.extend_from_slice(m.line.time.as_bytes());
        out.push(b' ');
    }
    if f.details {
        out.extend_from_slice(details(m).as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(m.line.data.as_bytes());
    out
}

/// Docker's stdcopy frame: `[stream, 0, 0, 0, len (u32 BE)]` then the payload.
pub fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&[stream, 0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The bytes for one broker event.
pub fn encode_event(ev: &LogEvent, f: Format) -> Vec<u8> {
    let mut out = Vec::new();
    match ev {
        LogEvent::Messages(ms) => {
            for m in ms {
                let line = render(m, f);
                if f.mux {
                    let stream = match m.line.stream {
                        LogStream::Stdout => 1,
                        LogStream::Stderr => 2,
                    };
                    out.extend_from_slice(&frame(stream, &line));
                } else {
                    out.extend_from_slice(&line);
                }
            }
        }
        LogEvent::End { warning: Some(w) } => {
            let text = format!("Error grabbing logs: rpc error: code = Unknown desc = {w}\n");
            if f.mux {
                out.extend_from_slice(&frame(3, text.as_bytes()));
            } else {
                out.extend_from_slice(text.as_bytes());
            }
        }
        LogEvent::End { warning: None } => {}
    }
    out
}

pub enum Target<'a> {
    Service(&'a str),
    Task(&'a str),
}

pub async fn serve(node: &Arc<SwarmNode>, target: Target<'_>, call: &Call) -> Result<Response<StreamBody>, ApiError> {
    let mgr = node.require_manager()?;
    let (opts, mut fmt) = parse_options(call)?;
    let (selector, tty) = match target {
        Target::Service(key) => {
            let s = mgr.control.service(key)?;
            let tty = s.spec.task_template.container_spec.as_ref().is_some_and(|c| c.tty);
            (LogSelector { service_ids: vec![s.id], task_ids: vec![] }, tty)
        }
        Target::Task(key) => {
            let t = mgr.control.task(key)?;
            let tty = t.spec.container_spec.as_ref().is_some_and(|c| c.tty);
            (LogSelector { service_ids: vec![], task_ids: vec![t.id] }, tty)
        }
    };
    fmt.mux = !tty;
    let mut events = mgr.subscribe_logs(selector, opts).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            let end = matches!(ev, LogEvent::End { .. });
            let bytes = encode_event(&ev, fmt);
            if !bytes.is_empty() && tx.send(Bytes::from(bytes)).await.is_err() {
                return; // the client left; dropping `events` ends the subscription
            }
            if end {
                return;
            }
        }
    });
    let mut resp = Response::new(StreamBody { rx });
    *resp.status_mut() = StatusCode::OK;
    let ctype = super::version::stream_type(fmt.mux, call.api);
    resp.headers_mut().insert("Content-Type", ctype.parse().expect("static header"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_rpc::logs::LogLine;

    fn call(q: &str) -> Call {
        Call::get_with_query(q)
    }

    fn msg(stream: LogStream, data: &str) -> LogMessage {
        LogMessage {
            node_id: "node1".into(),
            service_id: "svc1".into(),
            line: LogLine { task_id: "task1".into(), stream, time: "2024-05-01T10:00:00.000000001Z".into(), data: data.into() },
        }
    }

    #[test]
    fn options_are_checked_with_mobys_words() {
        assert_eq!(parse_options(&call("follow=1")).unwrap_err().message, "Bad parameters: you must choose at least one stream");
        assert_eq!(parse_options(&call("stdout=1&tail=x")).unwrap_err().message, r#"tail value must be a positive integer or "all""#);
        assert_eq!(parse_options(&call("stdout=1&tail=-1")).unwrap_err().message, "negative tail values not supported");
        assert!(parse_options(&call("stdout=1&since=yesterday")).is_err());
        let (o, f) = parse_options(&call("stdout=1&tail=5&follow=1&timestamps=1&since=1714557600.5")).unwrap();
        assert_eq!(
            o,
            LogOptions { follow: true, tail: Some(5), since_unix_nanos: Some(1_714_557_600_500_000_000), stdout: true, stderr: false }
        );
        assert!(f.timestamps && !f.details);
        assert_eq!(parse_options(&call("stderr=true&tail=all")).unwrap().0.tail, None);
        assert_eq!(parse_since("12"), Some(12_000_000_000));
        assert_eq!(parse_since("12.000000003"), Some(12_000_000_003));
    }

    #[test]
    fn lines_are_rendered_and_framed_like_docker() {
        let m = msg(LogStream::Stderr, "boom\n");
        let all = Format { timestamps: true, details: true, mux: true };
        assert_eq!(
            String::from_utf8(render(&m, all)).unwrap(),
            "2024-05-01T10:00:00.000000001Z com.docker.swarm.node.id=node1,com.docker.swarm.service.id=svc1,com.docker.swarm.task.id=task1 boom\n"
        );
        let plain = Format { mux: true, ..Default::default() };
        let bytes = encode_event(&LogEvent::Messages(vec![msg(LogStream::Stdout, "hi\n"), m]), plain);
        assert_eq!(&bytes[..8], &[1, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(&bytes[8..11], b"hi\n");
        assert_eq!(&bytes[11..19], &[2, 0, 0, 0, 0, 0, 0, 5]);
        assert_eq!(&bytes[19..], b"boom\n");
        let raw = encode_event(&LogEvent::Messages(vec![msg(LogStream::Stdout, "hi\n")]), Format::default());
        assert_eq!(raw, b"hi\n");
        let end = encode_event(&LogEvent::End { warning: Some("warning: x".into()) }, plain);
        assert_eq!(end[0], 3);
        assert!(String::from_utf8_lossy(&end[8..]).starts_with("Error grabbing logs: "));
        assert!(encode_event(&LogEvent::End { warning: None }, plain).is_empty());
        assert_eq!(query_escape("a b=c,d"), "a+b%3Dc%2Cd");
    }
}
