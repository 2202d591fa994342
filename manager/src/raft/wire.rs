//! Raft messages on the wire: raft-rs's `eraftpb::Message` to and from the
//! cluster protocol's `RaftMessage` (the same fields and numbers, read by
//! prost), and the membership changes those messages carry in their
//! entries (`ConfChange`). raft-rs 0.7 links the `protobuf` 2 crate
//! (CVE-2025-53605: a crafted message overflows the stack); with this, no
//! byte from the network reaches that crate's parser (it reads only this
//! node's own sealed WAL and snapshot).

use prost::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeType, ConfState, Entry, EntryType, Message, MessageType, Snapshot, SnapshotMetadata};
use shoal_rpc::wire::{RaftConfChange, RaftConfState, RaftEntry, RaftMessage, RaftSnapshot, RaftSnapshotMetadata};

/// A message, encoded for `Managers.Raft`.
pub fn encode(m: &Message) -> Vec<u8> {
    to_wire(m).encode_to_vec()
}

/// A message from `Managers.Raft`; an unknown message or entry type is an
/// error (raft-rs would misread it).
pub fn decode(bytes: &[u8]) -> Result<Message, String> {
    let w = RaftMessage::decode(bytes).map_err(|e| format!("bad raft message: {e}"))?;
    from_wire(w)
}

/// The membership change a `EntryConfChange` entry holds.
pub fn decode_conf_change(bytes: &[u8]) -> Result<ConfChange, String> {
    let w = RaftConfChange::decode(bytes).map_err(|e| format!("bad conf change: {e}"))?;
    let change_type = match w.change_type {
        0 => ConfChangeType::AddNode,
        1 => ConfChangeType::RemoveNode,
        2 => ConfChangeType::AddLearnerNode,
        t => return Err(format!("bad conf change: change type {t}")),
    };
    Ok(ConfChange { id: w.id, change_type, node_id: w.node_id, context: w.context, ..Default::default() })
}

fn to_wire(m: &Message) -> RaftMessage {
    RaftMessage {
        msg_type: m.msg_type as i32,
        to: m.to,
        from: m.from,
        term: m.term,
        log_term: m.log_term,
        index: m.index,
        entries: m.entries.iter().map(entry_to_wire).collect(),
        commit: m.commit,
        snapshot: m.snapshot.as_ref().map(|s| RaftSnapshot {
            data: s.data.clone(),
            metadata: s.metadata.as_ref().map(|md| RaftSnapshotMetadata {
                conf_state: md.conf_state.as_ref().map(conf_state_to_wire),
                index: md.index,
                term: md.term,
            }),
        }),
        reject: m.reject,
        reject_hint: m.reject_hint,
        context: m.context.clone(),
        request_snapshot: m.request_snapshot,
        deprecated_priority: m.deprecated_priority,
        commit_term: m.commit_term,
        priority: m.priority,
    }
}

fn entry_to_wire(e: &Entry) -> RaftEntry {
    RaftEntry {
        entry_type: e.entry_type as i32,
        term: e.term,
        index: e.index,
        data: e.data.clone(),
        context: e.context.clone(),
        sync_log: e.sync_log,
    }
}

fn conf_state_to_wire(c: &ConfState) -> RaftConfState {
    RaftConfState {
        voters: c.voters.clone(),
        learners: c.learners.clone(),
        voters_outgoing: c.voters_outgoing.clone(),
        learners_next: c.learners_next.clone(),
        auto_leave: c.auto_leave,
    }
}

fn from_wire(w: RaftMessage) -> Result<Message, String> {
    let mut m = Message::default();
    m.set_msg_type(message_type(w.msg_type)?);
    m.to = w.to;
    m.from = w.from;
    m.term = w.term;
    m.log_term = w.log_term;
    m.index = w.index;
    m.set_entries(w.entries.into_iter().map(entry_from_wire).collect::<Result<Vec<_>, _>>()?.into());
    m.commit = w.commit;
    if let Some(s) = w.snapshot {
        let mut snap = Snapshot { data: s.data, ..Default::default() };
        if let Some(md) = s.metadata {
            let mut meta = SnapshotMetadata { index: md.index, term: md.term, ..Default::default() };
            if let Some(c) = md.conf_state {
                meta.set_conf_state(conf_state_from_wire(c));
            }
            snap.set_metadata(meta);
        }
        m.set_snapshot(snap);
    }
    m.reject = w.reject;
    m.reject_hint = w.reject_hint;
    m.context = w.context;
    m.request_snapshot = w.request_snapshot;
    m.deprecated_priority = w.deprecated_priority;
    m.commit_term = w.commit_term;
    m.priority = w.priority;
    Ok(m)
}

fn entry_from_wire(w: RaftEntry) -> Result<Entry, String> {
    let entry_type = match w.entry_type {
        0 => EntryType::EntryNormal,
        1 => EntryType::EntryConfChange,
        2 => EntryType::EntryConfChangeV2,
        t => return Err(format!("bad raft message: entry type {t}")),
    };
    Ok(Entry { entry_type, term: w.term, index: w.index, data: w.data, context: w.context, sync_log: w.sync_log, ..Default::default() })
}

fn conf_state_from_wire(w: RaftConfState) -> ConfState {
    ConfState {
        voters: w.voters,
        learners: w.learners,
        voters_outgoing: w.voters_outgoing,
        learners_next: w.learners_next,
        auto_leave: w.auto_leave,
        ..Default::default()
    }
}

fn message_type(t: i32) -> Result<MessageType, String> {
    use protobuf::ProtobufEnum;
    MessageType::from_i32(t).ok_or_else(|| format!("bad raft message: message type {t}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use protobuf::Message as _;

    fn sample() -> Message {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgSnapshot);
        (m.to, m.from, m.term, m.log_term, m.index, m.commit, m.commit_term) = (2, 1, 7, 6, 40, 39, 6);
        (m.reject, m.reject_hint, m.request_snapshot, m.deprecated_priority, m.priority) = (true, 3, 4, 5, -6);
        m.context = bytes::Bytes::from_static(b"ctx");
        let entries = vec![
            Entry { entry_type: EntryType::EntryNormal, term: 7, index: 41, data: b"cmd".to_vec().into(), ..Default::default() },
            Entry { entry_type: EntryType::EntryConfChangeV2, term: 7, index: 42, context: b"c".to_vec().into(), ..Default::default() },
        ];
        m.set_entries(entries.into());
        let mut meta = SnapshotMetadata { index: 38, term: 5, ..Default::default() };
        meta.set_conf_state(ConfState { voters: vec![1, 2], learners: vec![3], auto_leave: true, ..Default::default() });
        let mut snap = Snapshot { data: b"store".to_vec().into(), ..Default::default() };
        snap.set_metadata(meta);
        m.set_snapshot(snap);
        m
    }

    #[test]
    fn a_message_crosses_the_wire_unchanged() {
        let m = sample();
        assert_eq!(decode(&encode(&m)).unwrap(), m);
    }

    #[test]
    fn the_wire_form_is_raft_rs_own_encoding() {
        // Same field numbers and types: raft-rs's encoder and ours write
        // bytes each other's decoder reads.
        let m = sample();
        let theirs = m.write_to_bytes().unwrap();
        assert_eq!(decode(&theirs).unwrap(), m);
        assert_eq!(Message::parse_from_bytes(&encode(&m)).unwrap(), m);
    }

    #[test]
    fn conf_changes_read_as_raft_rs_writes_them() {
        for change_type in [ConfChangeType::AddNode, ConfChangeType::RemoveNode, ConfChangeType::AddLearnerNode] {
            let cc = ConfChange { id: 9, change_type, node_id: 0xabc, context: b"10.0.0.1:2377".to_vec().into(), ..Default::default() };
            assert_eq!(decode_conf_change(&cc.write_to_bytes().unwrap()).unwrap(), cc);
        }
        let odd = RaftConfChange { change_type: 7, ..Default::default() };
        assert!(decode_conf_change(&odd.encode_to_vec()).unwrap_err().contains("change type 7"));
    }

    #[test]
    fn unknown_types_are_refused() {
        let w = RaftMessage { msg_type: 99, ..Default::default() };
        assert!(decode(&w.encode_to_vec()).unwrap_err().contains("message type 99"));
        let w = RaftMessage { entries: vec![RaftEntry { entry_type: 9, ..Default::default() }], ..Default::default() };
        assert!(decode(&w.encode_to_vec()).unwrap_err().contains("entry type 9"));
    }
}
