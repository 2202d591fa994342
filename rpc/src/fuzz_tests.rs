//! Property tests ("fuzzing" with proptest, see docs/fuzzing.md) of what a
//! peer on port 2377 controls once the gRPC layer has framed a message (it
//! checks the size cap from the length prefix): the decoding of any bytes
//! as each request message and its conversion (never a panic; a bad field
//! is an error), and the reassembly of Raft messages from any sequence of
//! pieces.

use proptest::prelude::*;
use prost::Message;

use crate::{convert, wire, RaftAssembler};

/// `PROPTEST_CASES` overrides the default count (for longer runs); no
/// failure files are written (CI must stay deterministic).
fn config(default_cases: u32) -> ProptestConfig {
    let base = ProptestConfig::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() { base.cases } else { default_cases };
    ProptestConfig { cases, failure_persistence: None, ..base }
}

/// Decodes `bytes` as every request a manager reads and converts what
/// decodes. Only errors may come out.
fn read_every_request(bytes: &[u8]) {
    if let Ok(m) = wire::JoinRequest::decode(bytes) {
        let _ = crate::JoinRequest::try_from(m);
    }
    if let Ok(m) = wire::HeartbeatRequest::decode(bytes) {
        let _ = crate::HeartbeatRequest::try_from(m);
    }
    if let Ok(m) = wire::TaskStatusRequest::decode(bytes) {
        let _ = convert::task_status_from_wire(m);
    }
    if let Ok(m) = wire::LogBatch::decode(bytes) {
        let _ = convert::log_lines_from_wire(m.lines);
    }
    if let Ok(m) = wire::LogSubscribeRequest::decode(bytes) {
        let _ = convert::log_subscribe_from_wire(m);
    }
    let _ = wire::AssignmentsRequest::decode(bytes);
    let _ = wire::AttachNetworkRequest::decode(bytes);
    let _ = wire::ProposeRequest::decode(bytes);
    let _ = wire::RaftMessage::decode(bytes);
    // And what a node reads from a manager.
    if let Ok(m) = wire::Assignments::decode(bytes) {
        let _ = crate::Assignments::try_from(m);
    }
    if let Ok(m) = wire::LogEvent::decode(bytes) {
        let _ = crate::logs::LogEvent::try_from(m);
    }
}

/// Messages that are mostly well-formed (so decoding gets past the first
/// field), with JSON fields that are often almost objects, then cut or
/// with bytes flipped.
fn message() -> impl Strategy<Value = Vec<u8>> {
    let json = prop_oneof![
        Just(b"{}".to_vec()),
        Just(br#"{"Hostname":"h","Platform":{"OS":"linux"}}"#.to_vec()),
        Just(br#"{"State":"running","Timestamp":"2024-01-01T00:00:00Z"}"#.to_vec()),
        Just(br#"{"ID":"t","Spec":{"ContainerSpec":{"Image":"x"}}}"#.to_vec()),
        proptest::collection::vec(any::<u8>(), 0..64),
    ];
    let text = "[a-z0-9:.]{0,12}";
    let built = (json.clone(), json, text, any::<u64>(), any::<bool>()).prop_map(|(j1, j2, t, n, b)| match n % 5 {
        0 => wire::JoinRequest { token: t.clone(), description: j1, raft_id: n, ..Default::default() }.encode_to_vec(),
        1 => wire::HeartbeatRequest { addr: t, description: j1 }.encode_to_vec(),
        2 => wire::TaskStatusRequest { updates: vec![wire::TaskStatusUpdate { task_id: t, status: j1 }] }.encode_to_vec(),
        3 => wire::Assignments { tasks: vec![j1, j2], incremental: b, mesh: b"{".to_vec(), ..Default::default() }.encode_to_vec(),
        _ => wire::LogBatch { subscription_id: t, lines: vec![wire::LogLine { stream: (n % 4) as i32, ..Default::default() }], done: b }
            .encode_to_vec(),
    });
    (built, proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3), any::<usize>()).prop_map(|(mut m, flips, cut)| {
        for (at, b) in flips {
            if !m.is_empty() {
                let i = at % m.len();
                m[i] ^= b;
            }
        }
        if cut % 4 == 0 && !m.is_empty() {
            m.truncate(cut % m.len());
        }
        m
    })
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn any_bytes_decode_to_a_message_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        read_every_request(&bytes);
    }

    #[test]
    fn damaged_messages_decode_to_a_message_or_an_error(bytes in message()) {
        read_every_request(&bytes);
    }

    #[test]
    fn raft_pieces_reassemble_to_what_was_cut(
        messages in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..6),
        cuts in proptest::collection::vec(1usize..16, 1..8),
    ) {
        let mut asm = RaftAssembler::default();
        let mut got = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let size = cuts[i % cuts.len()];
            let pieces: Vec<&[u8]> = if m.is_empty() { vec![&m[..]] } else { m.chunks(size).collect() };
            for (j, p) in pieces.iter().enumerate() {
                let more = j + 1 < pieces.len();
                if let Some(whole) = asm.push(wire::RaftPiece { data: p.to_vec(), more }).unwrap() {
                    prop_assert!(!more);
                    got.push(whole);
                }
            }
        }
        prop_assert_eq!(got, messages);
    }
}
