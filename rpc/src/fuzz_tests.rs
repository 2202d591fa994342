//! Property tests ("fuzzing" with proptest, see docs/fuzzing.md) of what a
//! peer on port 2377 controls: the frame reader over any byte stream (never
//! a panic, never a buffer larger than the cap), the reassembly of Raft
//! messages from any sequence of pieces, and the decoding of any frame body
//! as `PreAuthRequest` or `Request`.

use std::pin::Pin;
use std::task::{Context, Poll};

use proptest::prelude::*;
use serde_json::Value;
use tokio::io::{AsyncRead, ReadBuf};

use crate::frame::{read_frame_capped, Kind, RaftAssembler, MAX_FRAME};
use crate::{PreAuthRequest, Request};

/// `PROPTEST_CASES` overrides the default count (for longer runs); no
/// failure files are written (CI must stay deterministic).
fn config(default_cases: u32) -> ProptestConfig {
    let base = ProptestConfig::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() { base.cases } else { default_cases };
    ProptestConfig { cases, failure_persistence: None, ..base }
}

/// A peer's bytes, handed out in chunks of the given sizes (in turn), that
/// records the largest buffer the reader ever asked it to fill: the frame
/// reader reads a body straight into a buffer of the declared length, so
/// this is what it allocated.
struct Peer {
    data: Vec<u8>,
    pos: usize,
    chunks: Vec<usize>,
    turn: usize,
    largest_ask: usize,
}

impl AsyncRead for Peer {
    fn poll_read(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let me = &mut *self;
        me.largest_ask = me.largest_ask.max(buf.remaining());
        let chunk = me.chunks[me.turn % me.chunks.len()];
        me.turn += 1;
        let n = chunk.min(buf.remaining()).min(me.data.len() - me.pos);
        buf.put_slice(&me.data[me.pos..me.pos + n]);
        me.pos += n;
        Poll::Ready(Ok(()))
    }
}

/// What `read_frame_capped` must return for a stream, frame after frame:
/// `Some(Ok(..))` a frame, `Some(Err(true))` an error from the length
/// prefix alone (nothing of the body may be read), `Some(Err(false))` any
/// other error, `None` the end.
fn model(data: &[u8], cap: usize) -> Vec<Result<(Kind, Vec<u8>), bool>> {
    let mut out = Vec::new();
    let mut rest = data;
    loop {
        if rest.len() < 4 {
            // A hang-up inside the length prefix reads as a clean end.
            return out;
        }
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        rest = &rest[4..];
        if len == 0 || len > cap.min(MAX_FRAME) {
            out.push(Err(true));
            return out;
        }
        if rest.len() < len {
            out.push(Err(false));
            return out;
        }
        let (body, tail) = rest.split_at(len);
        rest = tail;
        let kind = match body[0] {
            1 => Kind::Json,
            2 => Kind::Raft,
            3 => Kind::RaftPart,
            _ => {
                out.push(Err(false));
                return out;
            }
        };
        out.push(Ok((kind, body[1..].to_vec())));
    }
}

/// Streams that are mostly well-framed (so that the reader gets past the
/// first frame), with lengths at and around the cap, plus raw noise.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let frame = (
        prop_oneof![
            8 => Just(None),
            1 => prop_oneof![Just(Some(0u32)), Just(Some(u32::MAX)), Just(Some(1 << 20)), (0u32..300).prop_map(Some)],
        ],
        prop_oneof![8 => 1u8..4, 1 => any::<u8>()],
        prop::collection::vec(any::<u8>(), 0..100),
        any::<bool>(),
    )
        .prop_map(|(len, kind, body, truncate)| {
            let len = len.unwrap_or(body.len() as u32 + 1);
            let mut f = len.to_be_bytes().to_vec();
            f.push(kind);
            f.extend_from_slice(&body);
            if truncate && f.len() % 4 == 0 {
                f.truncate(f.len() / 2);
            }
            f
        });
    prop_oneof![
        4 => prop::collection::vec(frame, 0..6).prop_map(|fs| fs.concat()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        prop::sample::select(vec!["SWMTKN-1-x-y", "-----BEGIN CERTIFICATE REQUEST-----", "Stdout", "manager", ""]).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The names `Request` and its parts use, so that generated objects often
/// reach past the first field.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "Join",
            "Heartbeat",
            "RenewCert",
            "Propose",
            "JoinRaft",
            "LeaveRaft",
            "Ping",
            "RaftStream",
            "Assignments",
            "TaskStatus",
            "Logs",
            "SecretsKey",
            "token",
            "csr_pem",
            "advertise_addr",
            "raft_addr",
            "raft_id",
            "description",
            "addr",
            "command",
            "known",
            "wait_ms",
            "since",
            "updates",
            "task_id",
            "status",
            "Listen",
            "Publish",
            "Batch",
            "Subscribe",
            "Prune",
            "subscription_id",
            "messages",
            "done",
            "task_ids",
            "tail",
            "since_unix_nanos",
            "follow",
            "stdout",
            "stderr",
            "Hostname",
            "Platform",
            "Resources",
            "Engine",
            "State",
            "Timestamp",
            "Message",
            "ContainerStatus",
            "ExitCode",
        ])
        .prop_map(str::to_string),
        ".{0,8}",
    ]
}

/// The fields of each request variant with the kind of value each takes
/// (`s` text, `u` number, `b` bool, `d` node description, `a` list of
/// objects, `l` log selector and options, `v` anything).
const SHAPES: &[(&str, &[(&str, char)])] = &[
    ("Join", &[("token", 's'), ("csr_pem", 's'), ("advertise_addr", 's'), ("raft_addr", 's'), ("raft_id", 'u'), ("description", 'd')]),
    ("Heartbeat", &[("addr", 's'), ("description", 'd')]),
    ("RenewCert", &[("csr_pem", 's')]),
    ("Propose", &[("command", 'v')]),
    ("JoinRaft", &[("raft_id", 'u'), ("addr", 's')]),
    ("LeaveRaft", &[("raft_id", 'u')]),
    ("Assignments", &[("known", 'u'), ("wait_ms", 'u'), ("since", 'u')]),
    ("TaskStatus", &[("updates", 'a')]),
];

/// A value of the given kind most of the time, anything otherwise.
fn shaped(kind: char) -> BoxedStrategy<Value> {
    let right: BoxedStrategy<Value> = match kind {
        's' => ".{0,12}".prop_map(Value::from).boxed(),
        'u' => prop_oneof![any::<u64>().prop_map(Value::from), Just(Value::from(-1)), Just(Value::from(1.5))].boxed(),
        'b' => any::<bool>().prop_map(Value::from).boxed(),
        'd' => (
            prop::option::of(shaped('s')),
            prop::option::of((shaped('s'), shaped('s')).prop_map(|(a, o)| serde_json::json!({"Architecture": a, "OS": o}))),
            prop::option::of((any::<i64>(), any::<i64>()).prop_map(|(c, m)| serde_json::json!({"NanoCPUs": c, "MemoryBytes": m}))),
            prop::option::of(
                (shaped('s'), prop::collection::btree_map(".{0,6}", ".{0,6}", 0..3), prop::collection::vec(json_value(), 0..3))
                    .prop_map(|(v, l, p)| serde_json::json!({"EngineVersion": v, "Labels": l, "Plugins": p})),
            ),
        )
            .prop_map(|(h, p, r, e)| {
                let mut d = serde_json::Map::new();
                for (k, v) in [("Hostname", h), ("Platform", p), ("Resources", r), ("Engine", e)] {
                    if let Some(v) = v {
                        d.insert(k.to_string(), v);
                    }
                }
                Value::Object(d)
            })
            .boxed(),
        'a' => prop::collection::vec(
            (
                ".{0,6}",
                prop::collection::btree_map(
                    prop::sample::select(vec!["State", "Timestamp", "Message", "Err", "ContainerStatus", "PortStatus"]),
                    json_value(),
                    0..4,
                ),
            )
                .prop_map(|(id, status)| serde_json::json!({"task_id": id, "status": status})),
            0..3,
        )
        .prop_map(Value::Array)
        .boxed(),
        _ => json_value().boxed(),
    };
    prop_oneof![6 => right, 1 => json_value()].boxed()
}

/// An object for one variant of `Request`: its fields (most of them), each
/// of its kind (most of the time).
fn shaped_request() -> impl Strategy<Value = Value> {
    // `Join` (the one request read before the caller is known) most often.
    prop_oneof![2 => Just(0usize), 3 => 0..SHAPES.len()].prop_flat_map(|i| {
        let (variant, fields) = SHAPES[i];
        let parts: Vec<_> =
            fields.iter().map(|&(name, kind)| prop::option::weighted(0.95, shaped(kind)).prop_map(move |v| (name, v))).collect();
        parts.prop_map(move |parts| {
            let body: serde_json::Map<String, Value> = parts.into_iter().filter_map(|(n, v)| Some((n.to_string(), v?))).collect();
            serde_json::json!({ variant: body })
        })
    })
}

/// Log requests take over a connection, so their shapes come too.
fn log_request() -> impl Strategy<Value = Value> {
    let options = (any::<bool>(), prop::option::of(any::<u64>()), prop::option::of(any::<i64>()), any::<bool>(), any::<bool>())
        .prop_map(|(follow, tail, since, stdout, stderr)| serde_json::json!({"follow": follow, "tail": tail, "since_unix_nanos": since, "stdout": stdout, "stderr": stderr}));
    let line = (".{0,6}", prop::sample::select(vec!["Stdout", "Stderr", "Other"]), ".{0,10}", ".{0,10}")
        .prop_map(|(t, s, time, data)| serde_json::json!({"task_id": t, "stream": s, "time": time, "data": data}));
    prop_oneof![
        Just(serde_json::json!("Listen")),
        ".{0,8}".prop_map(|id| serde_json::json!({"Publish": {"subscription_id": id}})),
        (prop::collection::vec(line, 0..3), any::<bool>())
            .prop_map(|(m, done)| serde_json::json!({"Batch": {"messages": m, "done": done}})),
        (prop::collection::vec(".{0,4}", 0..3), options)
            .prop_map(|(ids, o)| serde_json::json!({"Subscribe": [{"service_ids": ids, "task_ids": []}, o]})),
        prop::collection::vec(".{0,4}", 0..3).prop_map(|ids| serde_json::json!({"Prune": {"task_ids": ids}})),
        json_value(),
    ]
    .prop_map(|l| serde_json::json!({ "Logs": l }))
}

/// A frame body: a request of the right shape (mostly), a variant name
/// over any value, a unit variant, any JSON, any bytes, deep nesting.
fn request_json() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => shaped_request().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => log_request().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => (field_name(), json_value()).prop_map(|(k, v)| serde_json::to_vec(&serde_json::json!({ k: v })).unwrap()),
        1 => field_name().prop_map(|k| serde_json::to_vec(&Value::String(k)).unwrap()),
        1 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        // Deep nesting, past serde_json's recursion limit.
        1 => (1usize..400).prop_map(|n| format!("{{\"Propose\":{{\"command\":{}1{}}}}}", "[".repeat(n), "]".repeat(n)).into_bytes()),
    ]
}

/// Equal JSON, but for floating-point numbers, which may move by an ulp
/// per trip: serde_json without its `float_roundtrip` feature does not
/// always parse a float back to the same bits (free-form JSON such as a
/// node's engine plugins, or a proposed command, can hold floats).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x - y).abs() <= 1e-15 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w))),
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// The reader agrees frame by frame with a model of the format, never
    /// panics, and never asks for a buffer larger than the cap: a length
    /// over the cap is refused before a byte of the body is read.
    #[test]
    fn frames_are_read_as_the_model_says_within_the_cap(
        data in stream(),
        cap in prop_oneof![1 => 1usize..64, 2 => 64usize..300, 1 => Just(crate::frame::caps::PRE_AUTH), 1 => Just(MAX_FRAME)],
        chunks in prop::collection::vec(1usize..9, 1..4),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let want = model(&data, cap);
        let mut peer = Peer { data, pos: 0, chunks, turn: 0, largest_ask: 0 };
        let mut got = Vec::new();
        rt.block_on(async {
            loop {
                let before = peer.pos;
                match read_frame_capped(&mut peer, cap).await {
                    Ok(Some(f)) => got.push(Ok(f)),
                    Ok(None) => break,
                    Err(_) => {
                        got.push(Err(peer.pos == before + 4));
                        break;
                    }
                }
            }
        });
        prop_assert!(peer.largest_ask <= cap.max(4), "asked for {} bytes with a cap of {}", peer.largest_ask, cap);
        // A length refused by the cap is refused before the body is read;
        // other errors (a truncated body, a bad kind) may come after it.
        let got: Vec<_> = got.into_iter().zip(want.iter()).map(|(g, w)| match (g, w) {
            (Err(_), Err(false)) => Err(false),
            (g, _) => g,
        }).collect();
        prop_assert_eq!(&got, &want);
    }

    /// Any sequence of Raft pieces: whole messages come out exactly when a
    /// `Raft` frame ends them, each the concatenation of the pieces since
    /// the last one; a JSON frame in between is an error.
    #[test]
    fn raft_pieces_reassemble(pieces in prop::collection::vec((0u8..3, prop::collection::vec(any::<u8>(), 0..40)), 0..12)) {
        let mut asm = RaftAssembler::default();
        let mut pending: Vec<u8> = Vec::new();
        for (k, body) in pieces {
            let kind = [Kind::Json, Kind::Raft, Kind::RaftPart][k as usize];
            let got = asm.push(kind, body.clone());
            match kind {
                Kind::Json => {
                    prop_assert!(got.is_err());
                    // The connection ends on this error; nothing further to check.
                    return Ok(());
                }
                Kind::RaftPart => {
                    prop_assert_eq!(got.unwrap(), None);
                    pending.extend_from_slice(&body);
                }
                Kind::Raft => {
                    pending.extend_from_slice(&body);
                    prop_assert_eq!(got.unwrap(), Some(std::mem::take(&mut pending)));
                }
            }
        }
    }

    /// Any frame body decodes as a pre-authentication request or a request,
    /// or is refused, without panicking; whatever decodes encodes again and
    /// decodes to the same thing.
    #[test]
    fn requests_decode_from_any_body(body in request_json()) {
        let _ = serde_json::from_slice::<PreAuthRequest>(&body);
        if let Ok(r) = serde_json::from_slice::<Request>(&body) {
            let again = serde_json::to_vec(&r).expect("a decoded request encodes");
            let back: Request = serde_json::from_slice(&again).expect("an encoded request decodes");
            let twice = serde_json::to_vec(&back).unwrap();
            // Past serde_json's depth limit as a tree (a `Propose` command
            // nested just under it), compare the texts.
            match (serde_json::from_slice::<Value>(&again), serde_json::from_slice::<Value>(&twice)) {
                (Ok(a), Ok(b)) => prop_assert!(same_json(&a, &b), "{} became {}", a, b),
                _ => prop_assert_eq!(again, twice),
            }
        }
    }
}
