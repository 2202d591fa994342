//! `GET /events`, as moby's `getEvents`: the kept events between `since`
//! and `until` that pass `filters`, then, unless `until` is past, the new
//! ones as they come, one JSON object per line, until `until` or until the
//! client leaves. A subscriber too slow to keep up is dropped by the hub
//! and its stream ends.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper::{Response, StatusCode};
use shoal_api::event::{parse_timestamp, unix_nanos, EventFilter, Message};
use shoal_api::ApiError;
use tokio::sync::mpsc;

use super::logs::StreamBody;
use super::Call;
use crate::swarm::SwarmNode;

/// What the request asks for.
#[derive(Debug, PartialEq)]
pub struct Query {
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub filter: EventFilter,
}

pub fn parse(call: &Call) -> Result<Query, ApiError> {
    let get = |k: &str| call.query.get(k).map(String::as_str).unwrap_or("");
    let since = parse_timestamp(get("since"))?;
    let until = parse_timestamp(get("until"))?;
    if let (Some(s), Some(u)) = (since, until) {
        if u < s {
            return Err(ApiError::bad_request(format!("`since` time ({}) cannot be after `until` time ({})", get("since"), get("until"))));
        }
    }
    let filter = EventFilter::parse(call.query.get("filters").map(String::as_str))?;
    Ok(Query { since, until, filter })
}

fn line(m: &Message) -> Bytes {
    let mut v = serde_json::to_vec(m).expect("events serialise");
    v.push(b'\n');
    Bytes::from(v)
}

pub fn serve(node: &Arc<SwarmNode>, call: &Call) -> Result<Response<StreamBody>, ApiError> {
    let q = parse(call)?;
    let now = unix_nanos(SystemTime::now());
    // An `until` already past: the kept events only.
    let only_past = q.until.is_some_and(|u| u < now);
    let (past, mut live) = node.events.subscribe(q.since, q.until, q.filter);
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        for m in &past {
            if tx.send(line(m)).await.is_err() {
                return;
            }
        }
        if only_past {
            return;
        }
        let ends = async {
            match q.until {
                Some(u) => tokio::time::sleep(Duration::from_nanos(u.saturating_sub(now).max(0) as u64)).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(ends);
        loop {
            tokio::select! {
                m = live.recv() => match m {
                    Some(m) => {
                        if tx.send(line(&m)).await.is_err() {
                            return;
                        }
                    }
                    // Dropped by the hub (too slow): the stream ends.
                    None => return,
                },
                _ = &mut ends => return,
                _ = tx.closed() => return,
            }
        }
    });
    let mut resp = Response::new(StreamBody::new(rx));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert("Content-Type", "application/json".parse().expect("static header"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(q: &str) -> Call {
        Call::get_with_query(q)
    }

    #[test]
    fn since_until_and_filters_as_docker_sends_them() {
        let q =
            parse(&call("since=1700000000.000000000&until=1700000060.5&filters=%7B%22type%22%3A%7B%22service%22%3Atrue%7D%7D")).unwrap();
        assert_eq!(q.since, Some(1_700_000_000_000_000_000));
        assert_eq!(q.until, Some(1_700_000_060_500_000_000));
        assert_eq!(q.filter, EventFilter::parse(Some(r#"{"type":{"service":true}}"#)).unwrap());
        let none = parse(&call("")).unwrap();
        assert_eq!((none.since, none.until), (None, None));
    }

    #[test]
    fn refusals_in_docker_s_words() {
        let e = parse(&call("since=20&until=10")).unwrap_err();
        assert_eq!((e.status, e.message.as_str()), (400, "`since` time (20) cannot be after `until` time (10)"));
        assert_eq!(parse(&call("since=yesterday")).unwrap_err().status, 400);
        assert_eq!(parse(&call("filters=%7B%22colour%22%3A%5B%22red%22%5D%7D")).unwrap_err().status, 400);
    }
}
