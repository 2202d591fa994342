//! Durable Raft storage: raft-rs's in-memory `MemStorage` backed by a
//! write-ahead log and a snapshot file.
//!
//! # On-disk layout (all in one directory)
//!
//! * `snapshot.bin` — the latest snapshot (our own, or one received from the
//!   leader):
//!   `b"SHOALSNP"` (8 bytes) · `u32` CRC-32 of the payload · protobuf-encoded
//!   `eraftpb::Snapshot` (metadata + state-machine data). Always written as
//!   `snapshot.bin.tmp`, fsynced, renamed into place, then the directory is
//!   fsynced, so it is either the old or the new snapshot, never a mix.
//! * `wal.log` — the write-ahead log: a header `b"SHOALWAL"` · `u32` version
//!   (1), then records:
//!
//!   ```text
//!   [u32 len][u32 crc][u8 kind][payload]      (integers little-endian)
//!   len = 1 + payload length, crc = CRC-32 (IEEE) of kind ++ payload
//!   ```
//!
//!   | kind | name       | payload                                            |
//!   |------|------------|----------------------------------------------------|
//!   | 1    | Entries    | repeated `[u32 n][n bytes protobuf Entry]`          |
//!   | 2    | HardState  | protobuf `HardState`                               |
//!   | 3    | ConfState  | protobuf `ConfState`                               |
//!   | 4    | Commit     | `u64` commit index (only the commit changes)        |
//!   | 5    | Base       | `u64` index · `u64` term: the log is compacted up   |
//!   |      |            | to `index` (entries `<= index` are gone, `term` is  |
//!   |      |            | the term of entry `index`)                         |
//!
//!   Each API call appends one record with a single `write` followed by
//!   `sync_data`. An Entries record starting at index `i` replaces every
//!   entry `>= i` (Raft's conflicting-suffix overwrite). When the log is
//!   rewritten (snapshot created or received) a complete new WAL —
//!   `Base`, the remaining entries, `HardState`, `ConfState` — is written to
//!   `wal.log.tmp`, fsynced, renamed over `wal.log`, and the directory fsynced.
//!
//! # Encryption (WAL version 2, `snapshot.bin` magic `SHOALSNE`)
//!
//! Opened with a [`WalKey`] (every manager's storage is: `raft/wal.key`, a
//! key of this manager's own, wrapped under the unlock key with autolock,
//! see `crate::autolock`), the WAL header says version 2 and each record's
//! payload is sealed:
//!
//! ```text
//! [u32 len][u32 crc][u8 kind][nonce (12)][AES-256-GCM(payload) · tag (16)]
//! ```
//!
//! with the kind byte as additional data and a fresh random nonce per
//! record. `len` and `crc` cover the sealed bytes, so a torn tail is found
//! and cut exactly as in version 1, before anything is decrypted; a record
//! whose CRC holds but that does not open is corruption (or the wrong key),
//! an error. The snapshot file is `b"SHOALSNE"` · `u32` CRC-32 of the rest
//! · nonce · AES-256-GCM(protobuf `Snapshot`) · tag, additional data
//! `b"snapshot"`.
//!
//! Storage opened with a key reads version 1 and `SHOALSNP` (clear, from
//! before encryption or written without a key) and rewrites them encrypted
//! at once: the snapshot first, then the whole WAL through `wal.log.tmp`
//! and a rename, so a crash between the two leaves an encrypted snapshot
//! and a clear WAL, which the next open reads and rewrites again. Storage
//! opened without a key writes version 1, and refuses encrypted files.
//!
//! # Key rotation
//!
//! `rekey` seals everything under a new key: the snapshot is written again
//! under it, then the whole WAL (from memory: compaction point, entries,
//! hard state, conf state), each atomically. A crash between the two
//! leaves the snapshot under the new key and the WAL under the old:
//! `open_rekeying(dir, old, Some(new))` reads each file under whichever
//! of the two opens it, then finishes the rotation. (The manager keeps the
//! new key in `raft/wal.key.next` until the rotation is done, see
//! `crate::autolock`.)
//!
//! # Recovery
//!
//! `open` loads the snapshot, then replays the WAL. A record whose framing or
//! CRC is bad is a *torn tail* (a crash in the middle of the last write) when
//! no valid record follows it: the file is truncated at that point. If a valid
//! record follows a bad one, the log is corrupt and `open` fails. A record
//! with a good CRC that does not decode is an error too.
//!
//! The snapshot and the WAL are two files, so a crash can separate their
//! updates (the snapshot is always written first). On replay, if the log
//! holds the snapshot's (index, term), the log agrees with the snapshot and is
//! kept (a crash while compacting after our own snapshot). Otherwise the log
//! is discarded and starts after the snapshot — exactly what Raft does when
//! it installs a leader's snapshot (a crash between writing a received
//! snapshot and resetting the WAL). The hard state (term, vote) is kept
//! either way; its commit is raised to at least the snapshot index.
//!
//! # In memory
//!
//! Everything lives in a `MemStorage`, which the `RawNode` reads through a
//! [`DiskStorageReader`]; [`DiskStorage`] writes to disk first and then
//! updates that memory. After compaction, the `MemStorage`'s own "snapshot
//! metadata" is the compaction point (the last dropped entry), which may be
//! older than the real snapshot: that is how a few entries before the
//! snapshot are kept for slow followers while `term(first_index - 1)` still
//! answers. The real snapshot with its data is held separately and served by
//! [`DiskStorageReader`]'s `Storage::snapshot`. When that snapshot cannot
//! serve a peer (e.g. it predates the peer joining, so the peer would reject
//! it), Raft is told `SnapshotTemporarilyUnavailable` and
//! [`DiskStorage::snapshot_requested`] turns true: the owner should then take
//! a fresh snapshot.
//!
//! Bootstrap of a brand-new cluster uses raft-rs's classic index-0 scheme
//! (like `MemStorage::new_with_conf_state`): the initial `ConfState` is
//! persisted as a ConfState record, with an empty log and no snapshot.
//!
//! On restart after a snapshot, the log may still hold committed entries up
//! to the snapshot index (the kept ones); set `raft::Config::applied` to the
//! snapshot index so Raft does not hand them to the state machine again.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use ::raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use ::raft::storage::MemStorage;
use ::raft::{GetEntriesContext, RaftState, Storage, StorageError};
use protobuf::Message;

const WAL_FILE: &str = "wal.log";
const WAL_TMP: &str = "wal.log.tmp";
const SNAP_FILE: &str = "snapshot.bin";
const SNAP_TMP: &str = "snapshot.bin.tmp";

const WAL_MAGIC: &[u8; 8] = b"SHOALWAL";
const WAL_VERSION: u32 = 1;
/// The WAL version whose record payloads are sealed.
const WAL_VERSION_SEALED: u32 = 2;
const WAL_HEADER_LEN: usize = 12;
const SNAP_MAGIC: &[u8; 8] = b"SHOALSNP";
const SNAP_MAGIC_SEALED: &[u8; 8] = b"SHOALSNE";
const SNAP_AAD: &[u8] = b"snapshot";
const SNAP_HEADER_LEN: usize = 12;

/// Bytes before a record's kind: `len` and `crc`.
const RECORD_HEADER_LEN: usize = 8;
/// Upper bound on a record's `len` (kind + payload).
const MAX_RECORD_LEN: usize = 1 << 30;

const KIND_ENTRIES: u8 = 1;
const KIND_HARD_STATE: u8 = 2;
const KIND_CONF_STATE: u8 = 3;
const KIND_COMMIT: u8 = 4;
const KIND_BASE: u8 = 5;

type Shared = Arc<RwLock<Option<Snapshot>>>;

/// The key the WAL and snapshot are sealed with (AES-256-GCM); wiped from
/// memory when dropped.
#[derive(Clone)]
pub struct WalKey {
    bytes: [u8; 32],
}

impl Drop for WalKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.bytes);
    }
}

impl WalKey {
    pub fn new(bytes: [u8; 32]) -> WalKey {
        WalKey { bytes }
    }

    fn aead(&self) -> ring::aead::LessSafeKey {
        ring::aead::LessSafeKey::new(ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &self.bytes).expect("32-byte AES key"))
    }

    /// nonce · ciphertext · tag.
    fn seal(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        use ring::rand::SecureRandom;
        let mut nonce = [0u8; ring::aead::NONCE_LEN];
        ring::rand::SystemRandom::new().fill(&mut nonce).expect("the system RNG works");
        let mut out = Vec::with_capacity(nonce.len() + plain.len() + 16);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let mut body = out.split_off(nonce.len());
        self.aead()
            .seal_in_place_append_tag(ring::aead::Nonce::assume_unique_for_key(nonce), ring::aead::Aad::from(aad), &mut body)
            .expect("AES-GCM seals any record we write");
        out.extend_from_slice(&body);
        out
    }

    fn open(&self, aad: &[u8], sealed: &[u8]) -> io::Result<Vec<u8>> {
        let n = ring::aead::NONCE_LEN;
        if sealed.len() < n {
            return Err(invalid_data("sealed record too short".to_string()));
        }
        let nonce = ring::aead::Nonce::try_assume_unique_for_key(&sealed[..n]).map_err(|_| invalid_data("bad nonce".to_string()))?;
        let mut body = sealed[n..].to_vec();
        let len = self
            .aead()
            .open_in_place(nonce, ring::aead::Aad::from(aad), &mut body)
            .map_err(|_| invalid_data("does not open with this node's WAL key".to_string()))?
            .len();
        body.truncate(len);
        Ok(body)
    }
}

/// The durable Raft state of this node. See the module docs for the format.
pub struct DiskStorage {
    dir: PathBuf,
    mem: MemStorage,
    snap: Shared,
    wanted: Arc<AtomicBool>,
    wal: File,
    /// Bytes of `wal` known to be valid and synced.
    wal_len: u64,
    /// Seals what is written (see "Encryption"); None writes in clear.
    key: Option<WalKey>,
}

/// What the `RawNode` reads: the log from memory, snapshots with their data.
#[derive(Clone)]
pub struct DiskStorageReader {
    mem: MemStorage,
    snap: Shared,
    wanted: Arc<AtomicBool>,
}

impl DiskStorage {
    /// Opens (creating if needed) the raft state in `dir`; replays snapshot +
    /// WAL into memory. A torn last WAL record is truncated away; corruption
    /// before the tail is an error.
    pub fn open(dir: &Path) -> io::Result<DiskStorage> {
        Self::open_with(dir, None)
    }

    /// As `open`, sealing everything written with `key` (and rewriting
    /// files found in clear, see "Encryption").
    pub fn open_with(dir: &Path, key: Option<WalKey>) -> io::Result<DiskStorage> {
        Self::open_rekeying(dir, key, None)
    }

    /// As `open_with`, for a key rotation that may have been cut short
    /// (see "Key rotation"): each file is read under `key` or, failing
    /// that, under `next`; then everything is sealed under `next`.
    pub fn open_rekeying(dir: &Path, key: Option<WalKey>, next: Option<WalKey>) -> io::Result<DiskStorage> {
        let mut st = Self::open_under(dir, key.clone(), next.as_ref())?;
        if let Some(next) = next {
            st.rekey(next)?;
        }
        Ok(st)
    }

    fn open_under(dir: &Path, key: Option<WalKey>, next: Option<&WalKey>) -> io::Result<DiskStorage> {
        fs::create_dir_all(dir)?;
        remove_if_exists(&dir.join(WAL_TMP))?;
        remove_if_exists(&dir.join(SNAP_TMP))?;

        let snap_path = dir.join(SNAP_FILE);
        let (snapshot, snap_sealed) = match (read_snapshot_file(&snap_path, key.as_ref()), next) {
            (Err(_), Some(n)) => read_snapshot_file(&snap_path, Some(n))?,
            (r, _) => r?,
        };
        if let (Some(snap), Some(_), false) = (&snapshot, &key, snap_sealed) {
            write_snapshot_file(dir, snap, key.as_ref())?;
        }

        let wal_path = dir.join(WAL_FILE);
        let buf = match fs::read(&wal_path) {
            Ok(buf) => buf,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let mut buf = Vec::new();
                push_wal_header(&mut buf);
                let buf = seal_wal_image(&buf, key.as_ref())?;
                write_atomic(dir, WAL_TMP, WAL_FILE, &buf)?;
                buf
            }
            Err(e) => return Err(e),
        };
        let (wal_state, valid_len, wal_sealed) = match (replay_wal(&buf, key.as_ref()), next) {
            (Err(_), Some(n)) => replay_wal(&buf, Some(n))?,
            (r, _) => r?,
        };
        let wal = OpenOptions::new().read(true).append(true).open(&wal_path)?;
        if valid_len < buf.len() {
            wal.set_len(valid_len as u64)?;
            wal.sync_all()?;
        }

        let mem = build_mem(wal_state, snapshot.as_ref())?;
        let mut st = DiskStorage {
            dir: dir.to_path_buf(),
            mem,
            snap: Arc::new(RwLock::new(snapshot)),
            wanted: Arc::new(AtomicBool::new(false)),
            wal,
            wal_len: valid_len as u64,
            key,
        };
        if st.key.is_some() && !wal_sealed {
            // A clear WAL (older shoald): the same records, sealed.
            let sealed = seal_wal_image(&buf[..valid_len], st.key.as_ref())?;
            st.replace_wal(&sealed)?;
        }
        Ok(st)
    }

    /// True when nothing was ever persisted (fresh node): no snapshot, no
    /// entries, default hard state and conf state.
    pub fn is_fresh(&self) -> bool {
        let state = self.raft_state();
        self.snapshot_index().is_none()
            && self.last_index() == 0
            && state.hard_state == HardState::default()
            && state.conf_state == ConfState::default()
    }

    /// The shared in-memory storage (a clone; same underlying state).
    pub fn mem(&self) -> MemStorage {
        self.mem.clone()
    }

    /// The `raft::Storage` to give to `RawNode::new`.
    pub fn reader(&self) -> DiskStorageReader {
        DiskStorageReader { mem: self.mem.clone(), snap: self.snap.clone(), wanted: self.wanted.clone() }
    }

    /// For a brand-new cluster: persists the initial `ConfState` (raft-rs's
    /// index-0 scheme: empty log, no snapshot; `initial_state()` then reports
    /// it). Fails with `AlreadyExists` unless the storage is fresh.
    pub fn bootstrap(&mut self, conf_state: ConfState) -> io::Result<()> {
        if !self.is_fresh() {
            return Err(io::Error::new(ErrorKind::AlreadyExists, "raft storage is already initialised"));
        }
        self.set_conf_state(conf_state)
    }

    /// Durably appends entries; entries from index `i` replace everything
    /// `>= i`. Written, fsynced, then applied to memory.
    pub fn append(&mut self, entries: &[Entry]) -> io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        check_contiguous(entries)?;
        let first = entries[0].index;
        if first < self.first_index() {
            return Err(invalid_input(format!("append at index {first} overwrites compacted log (first index {})", self.first_index())));
        }
        if first > self.last_index() + 1 {
            return Err(invalid_input(format!("append at index {first} leaves a gap after last index {}", self.last_index())));
        }
        let mut buf = Vec::new();
        push_entries_record(&mut buf, entries)?;
        self.write_wal(&buf)?;
        self.mem.wl().append(entries).map_err(raft_err)
    }

    /// Durably replaces the hard state.
    pub fn set_hard_state(&mut self, hs: HardState) -> io::Result<()> {
        self.check_commit(hs.commit)?;
        let mut buf = Vec::new();
        push_message_record(&mut buf, KIND_HARD_STATE, &hs)?;
        self.write_wal(&buf)?;
        self.mem.wl().set_hardstate(hs);
        Ok(())
    }

    /// Durably updates the commit index only.
    pub fn set_commit(&mut self, commit: u64) -> io::Result<()> {
        self.check_commit(commit)?;
        let mut buf = Vec::new();
        let start = begin_record(&mut buf, KIND_COMMIT);
        buf.extend_from_slice(&commit.to_le_bytes());
        finish_record(&mut buf, start)?;
        self.write_wal(&buf)?;
        self.mem.wl().mut_hard_state().commit = commit;
        Ok(())
    }

    /// Durably replaces the conf state (after applying a conf change).
    pub fn set_conf_state(&mut self, cs: ConfState) -> io::Result<()> {
        let mut buf = Vec::new();
        push_message_record(&mut buf, KIND_CONF_STATE, &cs)?;
        self.write_wal(&buf)?;
        self.mem.wl().set_conf_state(cs);
        Ok(())
    }

    /// Installs a snapshot received from the leader: the snapshot file is
    /// written atomically, then the WAL is reset (log discarded, hard state
    /// kept with commit = snapshot index), then memory is updated.
    pub fn apply_snapshot(&mut self, snap: Snapshot) -> io::Result<()> {
        let meta = snap.get_metadata();
        let (index, term) = (meta.index, meta.term);
        if index == 0 {
            return Err(invalid_input("snapshot at index 0".to_string()));
        }
        if index < self.first_index() {
            return Err(invalid_input(format!("snapshot at index {index} is older than the log (first index {})", self.first_index())));
        }
        write_snapshot_file(&self.dir, &snap, self.key.as_ref())?;

        let mut hs = self.raft_state().hard_state;
        hs.term = hs.term.max(term);
        hs.commit = index;
        let mut buf = Vec::new();
        push_wal_header(&mut buf);
        push_base_record(&mut buf, index, term)?;
        push_message_record(&mut buf, KIND_HARD_STATE, &hs)?;
        push_message_record(&mut buf, KIND_CONF_STATE, meta.get_conf_state())?;
        self.replace_wal(&buf)?;

        let mut meta_only = Snapshot::default();
        meta_only.set_metadata(meta.clone());
        *self.snap.write().unwrap_or_else(|e| e.into_inner()) = Some(snap);
        self.mem.wl().apply_snapshot(meta_only).map_err(raft_err)
    }

    /// Records our own snapshot of the state machine at `applied_index`, then
    /// compacts the log up to `applied_index - keep_entries` in memory and on
    /// disk (the WAL is rewritten with the remaining entries). A no-op when
    /// `applied_index` is not newer than the current snapshot.
    pub fn create_snapshot(&mut self, applied_index: u64, conf_state: ConfState, data: Vec<u8>, keep_entries: u64) -> io::Result<()> {
        if applied_index == 0 || applied_index <= self.snapshot_index().unwrap_or(0) {
            return Ok(());
        }
        let last = self.last_index();
        if applied_index > last {
            return Err(invalid_input(format!("snapshot at index {applied_index} is beyond the last log index {last}")));
        }
        let term = self.mem.term(applied_index).map_err(raft_err)?;
        let mut snap = Snapshot { data: data.into(), ..Default::default() };
        {
            let meta = snap.mut_metadata();
            meta.index = applied_index;
            meta.term = term;
            meta.set_conf_state(conf_state);
        }
        write_snapshot_file(&self.dir, &snap, self.key.as_ref())?;
        *self.snap.write().unwrap_or_else(|e| e.into_inner()) = Some(snap);

        // Compact: the new base is the last dropped entry.
        let old_base = self.first_index() - 1;
        let base = applied_index.saturating_sub(keep_entries).max(old_base);
        let base_term = self.mem.term(base).map_err(raft_err)?;
        let kept = if base < last {
            self.mem.entries(base + 1, last + 1, None, GetEntriesContext::empty(false)).map_err(raft_err)?
        } else {
            Vec::new()
        };
        let state = self.raft_state();
        let buf = self.wal_image(base, base_term, &kept)?;
        self.replace_wal(&buf)?;

        if base > old_base {
            // MemStorage has no "compact and remember the term" operation:
            // install the compaction point as its snapshot metadata (which
            // clears the log), put the kept entries back, restore the state.
            let mut point = Snapshot::default();
            {
                let meta = point.mut_metadata();
                meta.index = base;
                meta.term = base_term;
                meta.set_conf_state(state.conf_state.clone());
            }
            let mut core = self.mem.wl();
            core.apply_snapshot(point).map_err(raft_err)?;
            core.append(&kept).map_err(raft_err)?;
            core.set_hardstate(state.hard_state);
            core.set_conf_state(state.conf_state);
        }
        self.wanted.store(false, Ordering::Release);
        Ok(())
    }

    /// Seals the snapshot and the WAL under `key` from now on: both are
    /// written again under it, each atomically, the snapshot first. A crash
    /// between the two leaves the snapshot under the new key and the WAL
    /// under the old; `open_rekeying` with both reads that, and finishes.
    pub fn rekey(&mut self, key: WalKey) -> io::Result<()> {
        let old = self.key.replace(key);
        let written = (|| {
            if let Some(snap) = self.snapshot() {
                write_snapshot_file(&self.dir, &snap, self.key.as_ref())?;
            }
            let base = self.first_index() - 1;
            let base_term = self.mem.term(base).map_err(raft_err)?;
            let last = self.last_index();
            let entries = if base < last {
                self.mem.entries(base + 1, last + 1, None, GetEntriesContext::empty(false)).map_err(raft_err)?
            } else {
                Vec::new()
            };
            let buf = self.wal_image(base, base_term, &entries)?;
            self.replace_wal(&buf)
        })();
        if written.is_err() {
            self.key = old;
        }
        written
    }

    /// A complete version-1 WAL image: the compaction point, `entries`,
    /// the hard state and the conf state.
    fn wal_image(&self, base: u64, base_term: u64, entries: &[Entry]) -> io::Result<Vec<u8>> {
        let state = self.raft_state();
        let mut buf = Vec::new();
        push_wal_header(&mut buf);
        if base > 0 {
            push_base_record(&mut buf, base, base_term)?;
        }
        if !entries.is_empty() {
            push_entries_record(&mut buf, entries)?;
        }
        push_message_record(&mut buf, KIND_HARD_STATE, &state.hard_state)?;
        push_message_record(&mut buf, KIND_CONF_STATE, &state.conf_state)?;
        Ok(buf)
    }

    /// True when Raft wanted to send a snapshot to a peer but the persisted
    /// one could not serve (none, older than requested, or taken before the
    /// peer joined — raft-rs followers refuse a snapshot whose ConfState
    /// lacks them). Raft retries on its own; take a fresh snapshot with
    /// `create_snapshot` soon (this resets the flag).
    pub fn snapshot_requested(&self) -> bool {
        self.wanted.load(Ordering::Acquire)
    }

    /// The latest persisted snapshot, with its data; `None` if none.
    pub fn snapshot(&self) -> Option<Snapshot> {
        self.snap.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn last_index(&self) -> u64 {
        // MemStorage's index queries never fail.
        Storage::last_index(&self.mem).unwrap_or(0)
    }

    pub fn first_index(&self) -> u64 {
        Storage::first_index(&self.mem).unwrap_or(1)
    }

    /// The write-ahead log file's size in bytes.
    pub fn wal_bytes(&self) -> u64 {
        self.wal_len
    }

    /// Log entries after the latest snapshot (all entries if there is none).
    pub fn entries_since_snapshot(&self) -> u64 {
        self.last_index().saturating_sub(self.snapshot_index().unwrap_or(0))
    }

    /// Deletes all on-disk raft state in `dir` (the directory itself stays).
    pub fn wipe(dir: &Path) -> io::Result<()> {
        if !dir.exists() {
            return Ok(());
        }
        for name in [WAL_TMP, SNAP_TMP, WAL_FILE, SNAP_FILE] {
            remove_if_exists(&dir.join(name))?;
        }
        sync_dir(dir)
    }

    fn snapshot_index(&self) -> Option<u64> {
        self.snap.read().unwrap_or_else(|e| e.into_inner()).as_ref().map(|s| s.get_metadata().index)
    }

    fn raft_state(&self) -> RaftState {
        // MemStorage::initial_state never fails; it clones the state.
        self.mem.initial_state().unwrap_or_default()
    }

    fn check_commit(&self, commit: u64) -> io::Result<()> {
        if commit > self.last_index() {
            return Err(invalid_input(format!("commit index {commit} is beyond the last log index {}", self.last_index())));
        }
        Ok(())
    }

    /// Appends `buf` to the WAL and syncs; on failure, cuts the file back.
    fn write_wal(&mut self, buf: &[u8]) -> io::Result<()> {
        let sealed;
        let buf = match &self.key {
            Some(k) => {
                sealed = seal_records(buf, k)?;
                &sealed[..]
            }
            None => buf,
        };
        match self.wal.write_all(buf).and_then(|_| self.wal.sync_data()) {
            Ok(()) => {
                self.wal_len += buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.wal.set_len(self.wal_len);
                let _ = self.wal.sync_data();
                Err(e)
            }
        }
    }

    /// Atomically replaces the WAL with `buf` and switches to appending to it.
    fn replace_wal(&mut self, buf: &[u8]) -> io::Result<()> {
        let sealed;
        let buf = match &self.key {
            // An image built here (header version 1) gets sealed; one
            // already sealed (`open_with`'s rewrite) goes as it is.
            Some(k) if buf.get(8..12) == Some(&WAL_VERSION.to_le_bytes()[..]) => {
                sealed = seal_wal_image(buf, Some(k))?;
                &sealed[..]
            }
            _ => buf,
        };
        let tmp = self.dir.join(WAL_TMP);
        remove_if_exists(&tmp)?;
        let mut file = OpenOptions::new().read(true).append(true).create_new(true).open(&tmp)?;
        file.write_all(buf)?;
        file.sync_all()?;
        fs::rename(&tmp, self.dir.join(WAL_FILE))?;
        // The handle follows the renamed inode: switch before anything else
        // can fail, so later appends never go to the unlinked old file.
        self.wal = file;
        self.wal_len = buf.len() as u64;
        sync_dir(&self.dir)
    }
}

impl ::raft::Storage for DiskStorageReader {
    fn initial_state(&self) -> ::raft::Result<RaftState> {
        self.mem.initial_state()
    }

    fn entries(&self, low: u64, high: u64, max_size: impl Into<Option<u64>>, context: GetEntriesContext) -> ::raft::Result<Vec<Entry>> {
        self.mem.entries(low, high, max_size, context)
    }

    fn term(&self, idx: u64) -> ::raft::Result<u64> {
        self.mem.term(idx)
    }

    fn first_index(&self) -> ::raft::Result<u64> {
        self.mem.first_index()
    }

    fn last_index(&self) -> ::raft::Result<u64> {
        self.mem.last_index()
    }

    /// The latest persisted snapshot with its data when it is at least
    /// `request_index` and its ConfState includes `to` (raft-rs followers
    /// ignore snapshots that do not); otherwise `SnapshotTemporarilyUnavailable`
    /// — Raft retries later — and `DiskStorage::snapshot_requested` turns true.
    fn snapshot(&self, request_index: u64, to: u64) -> ::raft::Result<Snapshot> {
        if let Some(s) = &*self.snap.read().unwrap_or_else(|e| e.into_inner()) {
            let meta = s.get_metadata();
            let cs = meta.get_conf_state();
            let member = cs
                .get_voters()
                .iter()
                .chain(cs.get_learners())
                .chain(cs.get_voters_outgoing())
                .chain(cs.get_learners_next())
                .any(|id| *id == to);
            if meta.index >= request_index && member {
                return Ok(s.clone());
            }
        }
        self.wanted.store(true, Ordering::Release);
        Err(::raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable))
    }
}

// ---------------------------------------------------------------------------
// Recovery.

/// The log state described by a WAL.
#[derive(Default)]
struct WalState {
    base_index: u64,
    base_term: u64,
    /// Entries `base_index + 1 ..`, contiguous.
    entries: Vec<Entry>,
    hard_state: HardState,
    conf_state: Option<ConfState>,
}

enum Record {
    Entries(Vec<Entry>),
    HardState(HardState),
    ConfState(ConfState),
    Commit(u64),
    Base(u64, u64),
}

impl WalState {
    fn last_index(&self) -> u64 {
        self.base_index + self.entries.len() as u64
    }

    fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.base_index {
            return Some(self.base_term);
        }
        if index < self.base_index {
            return None;
        }
        self.entries.get((index - self.base_index - 1) as usize).map(|e| e.term)
    }

    fn apply(&mut self, rec: Record) -> io::Result<()> {
        match rec {
            Record::Entries(ents) => self.splice(ents)?,
            Record::HardState(hs) => self.hard_state = hs,
            Record::ConfState(cs) => self.conf_state = Some(cs),
            Record::Commit(c) => self.hard_state.commit = c,
            Record::Base(index, term) => {
                self.entries.retain(|e| e.index > index);
                if self.entries.first().is_some_and(|e| e.index != index + 1) {
                    self.entries.clear();
                }
                self.base_index = index;
                self.base_term = term;
            }
        }
        Ok(())
    }

    fn splice(&mut self, mut ents: Vec<Entry>) -> io::Result<()> {
        if ents.is_empty() {
            return Ok(());
        }
        check_contiguous(&ents).map_err(|e| invalid_data(e.to_string()))?;
        if ents[0].index <= self.base_index {
            let skip = (self.base_index + 1 - ents[0].index) as usize;
            if skip >= ents.len() {
                return Ok(());
            }
            ents.drain(..skip);
        }
        let first = ents[0].index;
        if first > self.last_index() + 1 {
            return Err(invalid_data(format!("WAL entries at index {first} leave a gap after index {}", self.last_index())));
        }
        self.entries.truncate((first - self.base_index - 1) as usize);
        self.entries.extend(ents);
        Ok(())
    }
}

/// Replays a WAL image; returns its state and the length of its valid prefix
/// (shorter than `buf` when a torn tail must be cut).
/// (state, valid length, whether the WAL is sealed).
fn replay_wal(buf: &[u8], key: Option<&WalKey>) -> io::Result<(WalState, usize, bool)> {
    if buf.len() < WAL_HEADER_LEN || &buf[..8] != WAL_MAGIC {
        return Err(invalid_data("wal.log: bad header".to_string()));
    }
    let version = u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]);
    let key = match version {
        WAL_VERSION => None,
        WAL_VERSION_SEALED => Some(key.ok_or_else(|| invalid_data("wal.log is encrypted and no key was given".to_string()))?),
        _ => return Err(invalid_data(format!("wal.log: unsupported version {version}"))),
    };
    let mut state = WalState::default();
    let mut pos = WAL_HEADER_LEN;
    while pos < buf.len() {
        match frame_at(buf, pos) {
            Some((kind, payload, next)) => {
                let rec = open_record(kind, payload, key).map_err(|e| invalid_data(format!("wal.log: record at offset {pos}: {e}")))?;
                state.apply(rec)?;
                pos = next;
            }
            None => {
                if (pos + 1..buf.len()).any(|q| valid_record_at(buf, q, key)) {
                    return Err(invalid_data(format!("wal.log: corrupt record at offset {pos} followed by valid records")));
                }
                return Ok((state, pos, key.is_some()));
            }
        }
    }
    Ok((state, buf.len(), key.is_some()))
}

/// A record's payload, opened when the WAL is sealed, decoded.
fn open_record(kind: u8, payload: &[u8], key: Option<&WalKey>) -> io::Result<Record> {
    match key {
        Some(k) => decode_record(kind, &k.open(&[kind], payload)?),
        None => decode_record(kind, payload),
    }
}

/// The records of `buf` (a sequence of version-1 records, no header) with
/// their payloads sealed.
fn seal_records(buf: &[u8], key: &WalKey) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(buf.len() + buf.len() / 8 + 64);
    let mut pos = 0;
    while pos < buf.len() {
        let (kind, payload, next) = frame_at(buf, pos).ok_or_else(|| invalid_input(format!("unframed WAL bytes at offset {pos}")))?;
        let start = begin_record(&mut out, kind);
        out.extend_from_slice(&key.seal(&[kind], payload));
        finish_record(&mut out, start)?;
        pos = next;
    }
    Ok(out)
}

/// A whole version-1 WAL image (header and records), sealed under `key`
/// as version 2; unchanged without a key.
fn seal_wal_image(buf: &[u8], key: Option<&WalKey>) -> io::Result<Vec<u8>> {
    let Some(key) = key else { return Ok(buf.to_vec()) };
    let mut out = Vec::with_capacity(buf.len() + 64);
    out.extend_from_slice(WAL_MAGIC);
    out.extend_from_slice(&WAL_VERSION_SEALED.to_le_bytes());
    out.extend_from_slice(&seal_records(&buf[WAL_HEADER_LEN..], key)?);
    Ok(out)
}

/// A well-framed record with a matching CRC at `pos`: (kind, payload, next).
fn frame_at(buf: &[u8], pos: usize) -> Option<(u8, &[u8], usize)> {
    let header = buf.get(pos..pos + RECORD_HEADER_LEN)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 || len > MAX_RECORD_LEN {
        return None;
    }
    let body_start = pos + RECORD_HEADER_LEN;
    let body = buf.get(body_start..body_start + len)?;
    if crc32(body) != crc {
        return None;
    }
    Some((body[0], &body[1..], body_start + len))
}

fn valid_record_at(buf: &[u8], pos: usize, key: Option<&WalKey>) -> bool {
    matches!(frame_at(buf, pos), Some((kind, payload, _)) if open_record(kind, payload, key).is_ok())
}

fn decode_record(kind: u8, payload: &[u8]) -> io::Result<Record> {
    match kind {
        KIND_ENTRIES => {
            let mut ents = Vec::new();
            let mut rest = payload;
            while !rest.is_empty() {
                if rest.len() < 4 {
                    return Err(invalid_data("truncated entry length".to_string()));
                }
                let n = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                let bytes = rest.get(4..4 + n).ok_or_else(|| invalid_data("truncated entry".to_string()))?;
                ents.push(Entry::parse_from_bytes(bytes).map_err(pb_err)?);
                rest = &rest[4 + n..];
            }
            Ok(Record::Entries(ents))
        }
        KIND_HARD_STATE => Ok(Record::HardState(HardState::parse_from_bytes(payload).map_err(pb_err)?)),
        KIND_CONF_STATE => Ok(Record::ConfState(ConfState::parse_from_bytes(payload).map_err(pb_err)?)),
        KIND_COMMIT => Ok(Record::Commit(read_u64(payload, 0, 8)?)),
        KIND_BASE => Ok(Record::Base(read_u64(payload, 0, 16)?, read_u64(payload, 8, 16)?)),
        other => Err(invalid_data(format!("unknown record kind {other}"))),
    }
}

fn read_u64(payload: &[u8], at: usize, expected_len: usize) -> io::Result<u64> {
    if payload.len() != expected_len {
        return Err(invalid_data(format!("payload of {} bytes, expected {expected_len}", payload.len())));
    }
    let mut b = [0u8; 8];
    b.copy_from_slice(&payload[at..at + 8]);
    Ok(u64::from_le_bytes(b))
}

/// Combines a replayed WAL with the snapshot into a `MemStorage`.
fn build_mem(mut wal: WalState, snapshot: Option<&Snapshot>) -> io::Result<MemStorage> {
    if let Some(snap) = snapshot {
        let meta = snap.get_metadata();
        let (index, term) = (meta.index, meta.term);
        if index < wal.base_index {
            return Err(invalid_data(format!("wal.log is compacted to index {} but snapshot.bin is at {index}", wal.base_index)));
        }
        if wal.term_at(index) != Some(term) {
            // The log does not contain the snapshot: it is superseded.
            wal.base_index = index;
            wal.base_term = term;
            wal.entries.clear();
            wal.conf_state = Some(meta.get_conf_state().clone());
        }
        if wal.conf_state.is_none() {
            wal.conf_state = Some(meta.get_conf_state().clone());
        }
        wal.hard_state.term = wal.hard_state.term.max(term);
        wal.hard_state.commit = wal.hard_state.commit.max(index);
    }
    if wal.hard_state.commit > wal.last_index() {
        return Err(invalid_data(format!(
            "persisted commit index {} is beyond the last log index {}",
            wal.hard_state.commit,
            wal.last_index()
        )));
    }
    let conf_state = wal.conf_state.unwrap_or_default();
    let mem = MemStorage::new();
    {
        let mut core = mem.wl();
        if wal.base_index > 0 {
            let mut point = Snapshot::default();
            let meta = point.mut_metadata();
            meta.index = wal.base_index;
            meta.term = wal.base_term;
            meta.set_conf_state(conf_state.clone());
            core.apply_snapshot(point).map_err(raft_err)?;
        }
        core.append(&wal.entries).map_err(raft_err)?;
        core.set_hardstate(wal.hard_state);
        core.set_conf_state(conf_state);
    }
    Ok(mem)
}

// ---------------------------------------------------------------------------
// Encoding and files.

fn push_wal_header(out: &mut Vec<u8>) {
    out.extend_from_slice(WAL_MAGIC);
    out.extend_from_slice(&WAL_VERSION.to_le_bytes());
}

/// Starts a record; returns its offset for `finish_record`.
fn begin_record(out: &mut Vec<u8>, kind: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; RECORD_HEADER_LEN]);
    out.push(kind);
    start
}

/// Fills in the length and CRC of the record begun at `start`.
fn finish_record(out: &mut Vec<u8>, start: usize) -> io::Result<()> {
    let body_start = start + RECORD_HEADER_LEN;
    let len = out.len() - body_start;
    if len > MAX_RECORD_LEN {
        out.truncate(start);
        return Err(invalid_input(format!("WAL record of {len} bytes is too large")));
    }
    let crc = crc32(&out[body_start..]);
    out[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

fn push_message_record<M: Message>(out: &mut Vec<u8>, kind: u8, msg: &M) -> io::Result<()> {
    let start = begin_record(out, kind);
    if let Err(e) = msg.write_to_vec(out) {
        out.truncate(start);
        return Err(pb_err(e));
    }
    finish_record(out, start)
}

fn push_entries_record(out: &mut Vec<u8>, entries: &[Entry]) -> io::Result<()> {
    let start = begin_record(out, KIND_ENTRIES);
    for e in entries {
        let at = out.len();
        out.extend_from_slice(&[0u8; 4]);
        if let Err(err) = e.write_to_vec(out) {
            out.truncate(start);
            return Err(pb_err(err));
        }
        let n = out.len() - at - 4;
        if n > MAX_RECORD_LEN {
            out.truncate(start);
            return Err(invalid_input(format!("raft entry of {n} bytes is too large")));
        }
        out[at..at + 4].copy_from_slice(&(n as u32).to_le_bytes());
    }
    finish_record(out, start)
}

fn push_base_record(out: &mut Vec<u8>, index: u64, term: u64) -> io::Result<()> {
    let start = begin_record(out, KIND_BASE);
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(&term.to_le_bytes());
    finish_record(out, start)
}

fn write_snapshot_file(dir: &Path, snap: &Snapshot, key: Option<&WalKey>) -> io::Result<()> {
    let mut payload = snap.write_to_bytes().map_err(pb_err)?;
    let magic = match key {
        Some(k) => {
            payload = k.seal(SNAP_AAD, &payload);
            SNAP_MAGIC_SEALED
        }
        None => SNAP_MAGIC,
    };
    let mut buf = Vec::with_capacity(SNAP_HEADER_LEN + payload.len());
    buf.extend_from_slice(magic);
    buf.extend_from_slice(&crc32(&payload).to_le_bytes());
    buf.extend_from_slice(&payload);
    write_atomic(dir, SNAP_TMP, SNAP_FILE, &buf)
}

/// The snapshot, and whether its file is sealed.
fn read_snapshot_file(path: &Path, key: Option<&WalKey>) -> io::Result<(Option<Snapshot>, bool)> {
    let buf = match fs::read(path) {
        Ok(buf) => buf,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok((None, false)),
        Err(e) => return Err(e),
    };
    let sealed = buf.get(..8) == Some(&SNAP_MAGIC_SEALED[..]);
    if buf.len() < SNAP_HEADER_LEN || (&buf[..8] != SNAP_MAGIC && !sealed) {
        return Err(invalid_data("snapshot.bin: bad header".to_string()));
    }
    let crc = u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]);
    let payload = &buf[SNAP_HEADER_LEN..];
    if crc32(payload) != crc {
        return Err(invalid_data("snapshot.bin: checksum mismatch".to_string()));
    }
    let opened;
    let payload = if sealed {
        let key = key.ok_or_else(|| invalid_data("snapshot.bin is encrypted and no key was given".to_string()))?;
        opened = key.open(SNAP_AAD, payload).map_err(|e| invalid_data(format!("snapshot.bin: {e}")))?;
        &opened[..]
    } else {
        payload
    };
    let snap = Snapshot::parse_from_bytes(payload).map_err(|e| invalid_data(format!("snapshot.bin: {e}")))?;
    Ok((Some(snap), sealed))
}

/// Writes `dir/tmp_name`, fsyncs it, renames it to `dir/name`, fsyncs `dir`.
fn write_atomic(dir: &Path, tmp_name: &str, name: &str, buf: &[u8]) -> io::Result<()> {
    let tmp = dir.join(tmp_name);
    {
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        f.write_all(buf)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn check_contiguous(entries: &[Entry]) -> io::Result<()> {
    for pair in entries.windows(2) {
        if pair[1].index != pair[0].index + 1 {
            return Err(invalid_input(format!("entries are not contiguous: {} followed by {}", pair[0].index, pair[1].index)));
        }
    }
    if entries.first().is_some_and(|e| e.index == 0) {
        return Err(invalid_input("entry at index 0".to_string()));
    }
    Ok(())
}

fn invalid_data(msg: String) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, msg)
}

fn invalid_input(msg: String) -> io::Error {
    io::Error::new(ErrorKind::InvalidInput, msg)
}

fn pb_err(e: protobuf::ProtobufError) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, format!("protobuf: {e}"))
}

fn raft_err(e: ::raft::Error) -> io::Error {
    io::Error::other(format!("raft storage: {e}"))
}

// ---------------------------------------------------------------------------
// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as crc32fast computes it.

fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::raft::eraftpb::EntryType;
    use ::raft::{Config, RawNode};

    fn entry(index: u64, term: u64, data: &str) -> Entry {
        Entry { index, term, data: data.as_bytes().to_vec().into(), ..Default::default() }
    }

    fn hs(term: u64, vote: u64, commit: u64) -> HardState {
        HardState { term, vote, commit, ..Default::default() }
    }

    fn voters(ids: &[u64]) -> ConfState {
        ConfState::from((ids.to_vec(), Vec::<u64>::new()))
    }

    fn all_entries(st: &DiskStorage) -> Vec<Entry> {
        let (first, last) = (st.first_index(), st.last_index());
        if last < first {
            return Vec::new();
        }
        st.mem().entries(first, last + 1, None, GetEntriesContext::empty(false)).unwrap()
    }

    fn datas(st: &DiskStorage) -> Vec<(u64, u64, String)> {
        all_entries(st).into_iter().map(|e| (e.index, e.term, String::from_utf8(e.data.to_vec()).unwrap())).collect()
    }

    fn state(st: &DiskStorage) -> RaftState {
        st.reader().initial_state().unwrap()
    }

    fn wal_path(dir: &Path) -> PathBuf {
        dir.join(WAL_FILE)
    }

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn fresh_then_reopen_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut st = DiskStorage::open(dir.path()).unwrap();
            assert!(st.is_fresh());
            assert_eq!((st.first_index(), st.last_index()), (1, 0));
            assert!(st.snapshot().is_none());
            st.bootstrap(voters(&[1])).unwrap();
            assert!(!st.is_fresh());
            assert!(st.bootstrap(voters(&[1])).is_err());
            st.append(&[entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 2, "c")]).unwrap();
            st.set_hard_state(hs(2, 1, 2)).unwrap();
            st.set_commit(3).unwrap();
            st.set_conf_state(voters(&[1, 2])).unwrap();
            assert_eq!(st.entries_since_snapshot(), 3);
        }
        let st = DiskStorage::open(dir.path()).unwrap();
        assert!(!st.is_fresh());
        assert_eq!(datas(&st), vec![(1, 1, "a".into()), (2, 1, "b".into()), (3, 2, "c".into())]);
        let rs = state(&st);
        assert_eq!(rs.hard_state, hs(2, 1, 3));
        assert_eq!(rs.conf_state, voters(&[1, 2]));
        assert!(st.snapshot().is_none());
    }

    #[test]
    fn rejects_bad_appends_and_commits() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = DiskStorage::open(dir.path()).unwrap();
        st.append(&[entry(1, 1, "a")]).unwrap();
        assert!(st.append(&[entry(3, 1, "gap")]).is_err());
        assert!(st.append(&[entry(2, 1, "x"), entry(4, 1, "y")]).is_err());
        assert!(st.set_commit(2).is_err());
        assert!(st.set_hard_state(hs(1, 0, 5)).is_err());
        drop(st);
        let st = DiskStorage::open(dir.path()).unwrap();
        assert_eq!(datas(&st), vec![(1, 1, "a".into())]);
    }

    #[test]
    fn conflicting_suffix_overwrite_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut st = DiskStorage::open(dir.path()).unwrap();
            st.append(&[entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 1, "c"), entry(4, 1, "d")]).unwrap();
            st.append(&[entry(3, 2, "C"), entry(4, 2, "D"), entry(5, 2, "E")]).unwrap();
            st.append(&[entry(2, 3, "B")]).unwrap();
            assert_eq!(datas(&st), vec![(1, 1, "a".into()), (2, 3, "B".into())]);
        }
        let st = DiskStorage::open(dir.path()).unwrap();
        assert_eq!(datas(&st), vec![(1, 1, "a".into()), (2, 3, "B".into())]);
        assert_eq!(st.last_index(), 2);
    }

    fn key(b: u8) -> WalKey {
        WalKey::new([b; 32])
    }

    /// A rotation from key 1 to key 2 cut short at each point (nothing
    /// rewritten yet, the snapshot only, both files) reads back whole with
    /// both keys and ends under key 2 alone; key 1 then opens nothing.
    #[test]
    fn a_key_rotation_cut_short_anywhere_is_finished_on_open() {
        for cut in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            {
                let mut st = DiskStorage::open_with(dir.path(), Some(key(1))).unwrap();
                st.set_conf_state(voters(&[1])).unwrap();
                st.append(&[entry(1, 1, "one"), entry(2, 1, "two"), entry(3, 1, "three")]).unwrap();
                st.set_hard_state(hs(1, 1, 3)).unwrap();
                st.create_snapshot(2, voters(&[1]), b"state at two".to_vec(), 0).unwrap();
                match cut {
                    0 => {}
                    1 => write_snapshot_file(dir.path(), &st.snapshot().unwrap(), Some(&key(2))).unwrap(),
                    _ => st.rekey(key(2)).unwrap(),
                }
            }
            let st = DiskStorage::open_rekeying(dir.path(), Some(key(1)), Some(key(2))).unwrap();
            assert_eq!(datas(&st), vec![(3, 1, "three".into())], "cut {cut}");
            assert_eq!(&st.snapshot().unwrap().data[..], b"state at two");
            assert_eq!(state(&st).hard_state, hs(1, 1, 3));
            drop(st);
            assert!(DiskStorage::open_with(dir.path(), Some(key(1))).is_err(), "cut {cut}: the old key opens nothing");
            let st = DiskStorage::open_with(dir.path(), Some(key(2))).unwrap();
            assert_eq!(datas(&st), vec![(3, 1, "three".into())]);
        }
    }

    fn contains(path: &Path, needle: &[u8]) -> bool {
        fs::read(path).map(|b| b.windows(needle.len()).any(|w| w == needle)).unwrap_or(false)
    }

    /// Entries, hard state, conf state and snapshot all round-trip sealed;
    /// neither file holds a byte of them in clear; the wrong key and no key
    /// are refused.
    #[test]
    fn sealed_wal_and_snapshot_round_trip_and_hold_nothing_in_clear() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut st = DiskStorage::open_with(dir.path(), Some(key(7))).unwrap();
            st.set_conf_state(voters(&[1])).unwrap();
            st.append(&[entry(1, 1, "secret-entry-one"), entry(2, 1, "secret-entry-two")]).unwrap();
            st.set_hard_state(hs(1, 1, 2)).unwrap();
            st.create_snapshot(1, voters(&[1]), b"snapshot-state-in-clear?".to_vec(), 0).unwrap();
            st.append(&[entry(3, 1, "secret-entry-three")]).unwrap();
            st.set_commit(3).unwrap();
        }
        let wal = wal_path(dir.path());
        assert_eq!(&fs::read(&wal).unwrap()[8..12], &WAL_VERSION_SEALED.to_le_bytes());
        assert_eq!(&fs::read(dir.path().join(SNAP_FILE)).unwrap()[..8], SNAP_MAGIC_SEALED);
        for needle in [&b"secret-entry"[..], b"snapshot-state"] {
            assert!(!contains(&wal, needle) && !contains(&dir.path().join(SNAP_FILE), needle));
        }
        let st = DiskStorage::open_with(dir.path(), Some(key(7))).unwrap();
        assert_eq!(datas(&st), vec![(2, 1, "secret-entry-two".into()), (3, 1, "secret-entry-three".into())]);
        assert_eq!(state(&st).hard_state, hs(1, 1, 3));
        assert_eq!(st.snapshot().unwrap().get_data(), b"snapshot-state-in-clear?");
        drop(st);
        assert!(DiskStorage::open_with(dir.path(), Some(key(8))).is_err(), "another key opens nothing");
        assert!(DiskStorage::open(dir.path()).is_err(), "nor does no key");
    }

    /// A WAL and snapshot written in clear (an older shoald) are read and
    /// rewritten sealed when opened with a key; a crash between the
    /// snapshot's rewrite and the WAL's (sealed snapshot, clear WAL) is
    /// read and finished on the next open.
    #[test]
    fn clear_files_are_sealed_on_open_and_a_crash_between_the_two_rewrites_is_finished_later() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut st = DiskStorage::open(dir.path()).unwrap();
            st.append(&[entry(1, 1, "old-clear-a"), entry(2, 1, "old-clear-b")]).unwrap();
            st.set_hard_state(hs(1, 1, 2)).unwrap();
            st.create_snapshot(1, voters(&[1]), b"old-clear-snapshot".to_vec(), 5).unwrap();
        }
        let wal = wal_path(dir.path());
        let clear_wal = fs::read(&wal).unwrap();
        assert!(contains(&wal, b"old-clear-a"));
        // The crash point: the snapshot rewritten sealed, the WAL not yet.
        {
            let (snap, sealed) = read_snapshot_file(&dir.path().join(SNAP_FILE), None).unwrap();
            assert!(!sealed);
            write_snapshot_file(dir.path(), &snap.unwrap(), Some(&key(3))).unwrap();
        }
        for _ in 0..2 {
            let st = DiskStorage::open_with(dir.path(), Some(key(3))).unwrap();
            assert_eq!(datas(&st), vec![(1, 1, "old-clear-a".into()), (2, 1, "old-clear-b".into())]);
            assert_eq!(st.snapshot().unwrap().get_data(), b"old-clear-snapshot");
            assert!(!contains(&wal, b"old-clear") && !contains(&dir.path().join(SNAP_FILE), b"old-clear"));
        }
        // From a wholly clear pair too.
        let dir2 = tempfile::tempdir().unwrap();
        fs::write(wal_path(dir2.path()), &clear_wal).unwrap();
        let st = DiskStorage::open_with(dir2.path(), Some(key(3))).unwrap();
        assert_eq!(datas(&st), vec![(1, 1, "old-clear-a".into()), (2, 1, "old-clear-b".into())]);
        assert!(!contains(&wal_path(dir2.path()), b"old-clear"));
    }

    /// A torn tail of a sealed WAL (cut anywhere in the last record, or
    /// garbage after it) is cut away exactly as in a clear one; a flipped
    /// byte inside a record followed by good ones is an error.
    #[test]
    fn sealed_wal_torn_tails_are_repaired_and_middle_corruption_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut st = DiskStorage::open_with(dir.path(), Some(key(5))).unwrap();
            st.append(&[entry(1, 1, "a")]).unwrap();
            st.set_hard_state(hs(1, 1, 1)).unwrap();
        }
        let path = wal_path(dir.path());
        let good = fs::read(&path).unwrap();
        {
            let mut st = DiskStorage::open_with(dir.path(), Some(key(5))).unwrap();
            st.append(&[entry(2, 1, "b")]).unwrap();
        }
        let full = fs::read(&path).unwrap();
        for cut in good.len() + 1..full.len() {
            fs::write(&path, &full[..cut]).unwrap();
            let mut st = DiskStorage::open_with(dir.path(), Some(key(5))).unwrap();
            assert_eq!(datas(&st), vec![(1, 1, "a".into())], "cut at {cut}");
            assert_eq!(fs::metadata(&path).unwrap().len(), good.len() as u64);
            st.append(&[entry(2, 2, "x")]).unwrap();
            drop(st);
            let st = DiskStorage::open_with(dir.path(), Some(key(5))).unwrap();
            assert_eq!(datas(&st), vec![(1, 1, "a".into()), (2, 2, "x".into())]);
        }
        let mut bad = full.clone();
        bad[WAL_HEADER_LEN + RECORD_HEADER_LEN + 20] ^= 0x01;
        fs::write(&path, &bad).unwrap();
        assert!(DiskStorage::open_with(dir.path(), Some(key(5))).is_err());
        // A record whose CRC holds but that does not open: an error, never
        // taken for a torn tail.
        let mut forged = full[..good.len()].to_vec();
        let start = forged.len();
        begin_record(&mut forged, KIND_COMMIT);
        forged.extend_from_slice(&key(6).seal(&[KIND_COMMIT], &1u64.to_le_bytes()));
        finish_record(&mut forged, start).unwrap();
        fs::write(&path, &forged).unwrap();
        assert!(DiskStorage::open_with(dir.path(), Some(key(5))).is_err());
    }

    #[test]
    fn torn_tail_truncated_is_repaired() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut st = DiskStorage::open(dir.path()).unwrap();
            st.append(&[entry(1, 1, "a")]).unwrap();
            st.append(&[entry(2, 1, "b"), entry(3, 1, "c")]).unwrap();
        }
        let path = wal_path(dir.path());
        let len = fs::metadata(&path).unwrap().len();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 3).unwrap();
        drop(f);
        {
            let mut st = DiskStorage::open(dir.path()).unwrap();
            assert_eq!(datas(&st), vec![(1, 1, "a".into())]);
            // The file was cut back, so new appends land right after.
            st.append(&[entry(2, 2, "x")]).unwrap();
        }
        let st = DiskStorage::open(dir.path()).unwrap();
        assert_eq!(datas(&st), vec![(1, 1, "a".into()), (2, 2, "x".into())]);
    }

    #[test]
    fn torn_tail_garbage_is_repaired() {
        for garbage in [vec![0x42u8; 5], vec![0u8; 64], vec![0xFF, 0xFF, 0xFF, 0x7F, 1, 2, 3, 4, 5, 6, 7], {
            // A well-framed header whose body is short of its length.
            let mut g = Vec::new();
            g.extend_from_slice(&100u32.to_le_bytes());
            g.extend_from_slice(&[9, 9, 9, 9, KIND_ENTRIES, 1, 2]);
            g
        }] {
            let dir = tempfile::tempdir().unwrap();
            {
                let mut st = DiskStorage::open(dir.path()).unwrap();
                st.append(&[entry(1, 1, "a"), entry(2, 1, "b")]).unwrap();
                st.set_hard_state(hs(1, 1, 2)).unwrap();
            }
            let path = wal_path(dir.path());
            let good_len = fs::metadata(&path).unwrap().len();
            let mut f = OpenOptions::new().append(true).open(&path).unwrap();
            f.write_all(&garbage).unwrap();
            drop(f);
            let st = DiskStorage::open(dir.path()).unwrap();
            assert_eq!(datas(&st), vec![(1, 1, "a".into()), (2, 1, "b".into())]);
            assert_eq!(state(&st).hard_state, hs(1, 1, 2));
            assert_eq!(fs::metadata(&path).unwrap().len(), good_len);
        }
    }

    #[test]
    fn corrupted_middle_record_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut st = DiskStorage::open(dir.path()).unwrap();
            st.append(&[entry(1, 1, "first-entry")]).unwrap();
            st.append(&[entry(2, 1, "second")]).unwrap();
            st.set_hard_state(hs(1, 1, 2)).unwrap();
        }
        let path = wal_path(dir.path());
        let orig = fs::read(&path).unwrap();

        // A flipped payload byte in the first record.
        let mut bad = orig.clone();
        bad[WAL_HEADER_LEN + RECORD_HEADER_LEN + 4] ^= 0x01;
        fs::write(&path, &bad).unwrap();
        let err = DiskStorage::open(dir.path()).err().expect("corruption must fail");
        assert_eq!(err.kind(), ErrorKind::InvalidData);

        // A damaged length field in the first record.
        let mut bad = orig.clone();
        bad[WAL_HEADER_LEN + 2] = 0x7F;
        fs::write(&path, &bad).unwrap();
        assert!(DiskStorage::open(dir.path()).is_err());

        // A bad file header.
        let mut bad = orig.clone();
        bad[0] = b'X';
        fs::write(&path, &bad).unwrap();
        assert!(DiskStorage::open(dir.path()).is_err());

        fs::write(&path, &orig).unwrap();
        assert!(DiskStorage::open(dir.path()).is_ok());
    }

    #[test]
    fn valid_crc_but_undecodable_record_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        drop(DiskStorage::open(dir.path()).unwrap());
        let mut buf = Vec::new();
        push_wal_header(&mut buf);
        let start = begin_record(&mut buf, KIND_HARD_STATE);
        buf.extend_from_slice(&[0xFF, 0xFF, 0xFF]);
        finish_record(&mut buf, start).unwrap();
        fs::write(wal_path(dir.path()), &buf).unwrap();
        let err = DiskStorage::open(dir.path()).err().expect("must fail");
        assert_eq!(err.kind(), ErrorKind::InvalidData);
    }

    #[test]
    fn create_snapshot_compacts_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let cs = voters(&[1, 2, 3]);
        {
            let mut st = DiskStorage::open(dir.path()).unwrap();
            st.set_conf_state(cs.clone()).unwrap();
            let ents: Vec<Entry> = (1..=20).map(|i| entry(i, 1 + i / 10, &format!("e{i}"))).collect();
            st.append(&ents).unwrap();
            st.set_hard_state(hs(3, 1, 18)).unwrap();
            assert!(st.reader().snapshot(0, 2).is_err());

            st.create_snapshot(15, cs.clone(), b"state@15".to_vec(), 5).unwrap();
            assert_eq!(st.first_index(), 11);
            assert_eq!(st.last_index(), 20);
            assert_eq!(st.entries_since_snapshot(), 5);
            let r = st.reader();
            assert_eq!(r.term(10).unwrap(), 2); // the compaction point still answers
            assert!(r.term(9).is_err());
            let snap = r.snapshot(0, 2).unwrap();
            assert_eq!(snap.get_metadata().index, 15);
            assert_eq!(snap.get_metadata().term, 2);
            assert_eq!(&snap.data[..], b"state@15");
            assert_eq!(snap.get_metadata().get_conf_state(), &cs);
            assert!(!st.snapshot_requested());
            assert!(r.snapshot(16, 2).is_err());
            assert!(st.snapshot_requested());
            st.create_snapshot(16, cs.clone(), b"state@16".to_vec(), 6).unwrap();
            assert!(!st.snapshot_requested());
            assert!(r.snapshot(0, 9).is_err(), "node 9 is not in the snapshot's ConfState");
            assert!(st.snapshot_requested());
            st.create_snapshot(15, cs.clone(), b"state@15".to_vec(), 5).unwrap();
            assert_eq!(&r.snapshot(0, 2).unwrap().data[..], b"state@16");
            // Stale snapshot requests are no-ops.
            st.create_snapshot(12, cs.clone(), b"old".to_vec(), 5).unwrap();
            assert_eq!(&st.snapshot().unwrap().data[..], b"state@16");
            st.append(&[entry(21, 3, "e21")]).unwrap();
        }
        let st = DiskStorage::open(dir.path()).unwrap();
        assert_eq!(st.first_index(), 11);
        assert_eq!(st.last_index(), 21);
        let d = datas(&st);
        assert_eq!(d.first().unwrap(), &(11, 2, "e11".to_string()));
        assert_eq!(d.last().unwrap(), &(21, 3, "e21".to_string()));
        assert_eq!(st.reader().term(10).unwrap(), 2);
        let snap = st.snapshot().unwrap();
        assert_eq!((snap.get_metadata().index, &snap.data[..]), (16, &b"state@16"[..]));
        assert_eq!(state(&st).hard_state, hs(3, 1, 18));
        assert_eq!(state(&st).conf_state, cs);

        // keep_entries = 0 drops everything up to the snapshot.
        let mut st = st;
        st.create_snapshot(20, cs.clone(), b"state@20".to_vec(), 0).unwrap();
        assert_eq!((st.first_index(), st.last_index()), (21, 21));
        drop(st);
        let st = DiskStorage::open(dir.path()).unwrap();
        assert_eq!((st.first_index(), st.last_index()), (21, 21));
        assert_eq!(st.reader().term(20).unwrap(), 3);
        assert_eq!(&st.snapshot().unwrap().data[..], b"state@20");
    }

    #[test]
    fn crash_between_snapshot_and_wal_rewrite_keeps_log() {
        // Our own snapshot written but the WAL not yet rewritten: the old WAL
        // contains the snapshot point, so it is kept as is.
        let dir = tempfile::tempdir().unwrap();
        {
            let mut st = DiskStorage::open(dir.path()).unwrap();
            st.append(&(1..=10).map(|i| entry(i, 1, "x")).collect::<Vec<_>>()).unwrap();
            st.set_hard_state(hs(1, 1, 8)).unwrap();
        }
        let mut snap = Snapshot { data: b"s".to_vec().into(), ..Default::default() };
        snap.mut_metadata().index = 8;
        snap.mut_metadata().term = 1;
        snap.mut_metadata().set_conf_state(voters(&[1]));
        write_snapshot_file(dir.path(), &snap, None).unwrap();
        let st = DiskStorage::open(dir.path()).unwrap();
        assert_eq!((st.first_index(), st.last_index()), (1, 10));
        assert_eq!(state(&st).hard_state, hs(1, 1, 8));
    }

    #[test]
    fn crash_between_received_snapshot_and_wal_reset_discards_log() {
        // A leader's snapshot written but the WAL not yet reset: the old log
        // disagrees with the snapshot, so it is dropped; the vote is kept.
        let dir = tempfile::tempdir().unwrap();
        {
            let mut st = DiskStorage::open(dir.path()).unwrap();
            st.append(&(1..=10).map(|i| entry(i, 1, "old")).collect::<Vec<_>>()).unwrap();
            st.set_hard_state(hs(1, 7, 3)).unwrap();
        }
        let mut snap = Snapshot { data: b"leader".to_vec().into(), ..Default::default() };
        snap.mut_metadata().index = 8;
        snap.mut_metadata().term = 2;
        snap.mut_metadata().set_conf_state(voters(&[1, 2]));
        write_snapshot_file(dir.path(), &snap, None).unwrap();
        let st = DiskStorage::open(dir.path()).unwrap();
        assert_eq!((st.first_index(), st.last_index()), (9, 8));
        assert_eq!(state(&st).hard_state, hs(2, 7, 8));
        assert_eq!(state(&st).conf_state, voters(&[1, 2]));
    }

    #[test]
    fn apply_snapshot_resets_log_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut snap = Snapshot { data: b"leader-state".to_vec().into(), ..Default::default() };
        snap.mut_metadata().index = 50;
        snap.mut_metadata().term = 4;
        snap.mut_metadata().set_conf_state(voters(&[1, 2, 3]));
        {
            let mut st = DiskStorage::open(dir.path()).unwrap();
            st.append(&[entry(1, 1, "a"), entry(2, 1, "b")]).unwrap();
            st.set_hard_state(hs(3, 2, 1)).unwrap();
            st.apply_snapshot(snap.clone()).unwrap();
            assert_eq!((st.first_index(), st.last_index()), (51, 50));
            assert_eq!(state(&st).hard_state, hs(4, 2, 50));
            assert_eq!(&st.reader().snapshot(0, 1).unwrap().data[..], b"leader-state");
            assert_eq!(st.entries_since_snapshot(), 0);
            // Older snapshots are refused.
            let mut old = snap.clone();
            old.mut_metadata().index = 10;
            assert!(st.apply_snapshot(old).is_err());
            st.append(&[entry(51, 4, "next")]).unwrap();
            st.set_hard_state(hs(4, 2, 51)).unwrap();
        }
        let st = DiskStorage::open(dir.path()).unwrap();
        assert!(!st.is_fresh());
        assert_eq!((st.first_index(), st.last_index()), (51, 51));
        assert_eq!(datas(&st), vec![(51, 4, "next".into())]);
        assert_eq!(st.reader().term(50).unwrap(), 4);
        assert_eq!(state(&st).hard_state, hs(4, 2, 51));
        assert_eq!(state(&st).conf_state, voters(&[1, 2, 3]));
        assert_eq!(st.snapshot().unwrap(), snap);
    }

    #[test]
    fn wipe_removes_everything() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut st = DiskStorage::open(dir.path()).unwrap();
            st.bootstrap(voters(&[1])).unwrap();
            st.append(&[entry(1, 1, "a")]).unwrap();
            st.create_snapshot(1, voters(&[1]), b"x".to_vec(), 0).unwrap();
        }
        DiskStorage::wipe(dir.path()).unwrap();
        DiskStorage::wipe(&dir.path().join("missing")).unwrap();
        let st = DiskStorage::open(dir.path()).unwrap();
        assert!(st.is_fresh());
        assert!(st.snapshot().is_none());
    }

    /// Persists and applies every Ready the way the manager's loop does;
    /// returns the applied normal entries' data.
    fn drive(node: &mut RawNode<DiskStorageReader>, st: &mut DiskStorage, applied: &mut Vec<Entry>) {
        while node.has_ready() {
            let mut rd = node.ready();
            if !rd.snapshot().is_empty() {
                st.apply_snapshot(rd.snapshot().clone()).unwrap();
            }
            let mut committed = rd.take_committed_entries();
            st.append(rd.entries()).unwrap();
            if let Some(h) = rd.hs() {
                st.set_hard_state(h.clone()).unwrap();
            }
            let mut light = node.advance(rd);
            if let Some(c) = light.commit_index() {
                st.set_commit(c).unwrap();
            }
            committed.extend(light.take_committed_entries());
            for e in committed {
                match e.get_entry_type() {
                    EntryType::EntryNormal if !e.data.is_empty() => applied.push(e),
                    EntryType::EntryConfChange => {
                        let cc = ::raft::eraftpb::ConfChange::parse_from_bytes(&e.data).unwrap();
                        let cs = node.apply_conf_change(&cc).unwrap();
                        st.set_conf_state(cs).unwrap();
                    }
                    _ => {}
                }
            }
            node.advance_apply();
        }
    }

    #[test]
    fn raw_node_on_disk_storage_survives_restart() {
        let dir = tempfile::tempdir().unwrap();
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let cfg = Config { id: 1, election_tick: 10, heartbeat_tick: 1, ..Default::default() };
        let mut applied = Vec::new();
        let proposed_index;
        {
            let mut st = DiskStorage::open(dir.path()).unwrap();
            assert!(st.is_fresh());
            st.bootstrap(voters(&[1])).unwrap();
            let mut node = RawNode::new(&cfg, st.reader(), &logger).unwrap();
            node.campaign().unwrap();
            drive(&mut node, &mut st, &mut applied);
            assert_eq!(node.raft.state, ::raft::StateRole::Leader);
            node.propose(vec![], b"hello".to_vec()).unwrap();
            drive(&mut node, &mut st, &mut applied);
            assert_eq!(applied.len(), 1);
            assert_eq!(&applied[0].data[..], b"hello");
            proposed_index = applied[0].index;
            assert_eq!(state(&st).hard_state.commit, proposed_index);

            // Snapshot the "state machine" and compact everything.
            let cs = state(&st).conf_state;
            st.create_snapshot(proposed_index, cs, b"sm:hello".to_vec(), 0).unwrap();
            assert_eq!(st.first_index(), proposed_index + 1);
        }
        let mut st = DiskStorage::open(dir.path()).unwrap();
        assert!(!st.is_fresh());
        let snap = st.snapshot().unwrap();
        assert_eq!(snap.get_metadata().index, proposed_index);
        assert_eq!(&snap.data[..], b"sm:hello");
        assert_eq!(state(&st).hard_state.commit, proposed_index);

        // Restart Raft on the reopened storage; it leads again and commits more.
        let cfg = Config { applied: proposed_index, ..cfg };
        let mut node = RawNode::new(&cfg, st.reader(), &logger).unwrap();
        let mut applied = Vec::new();
        node.campaign().unwrap();
        drive(&mut node, &mut st, &mut applied);
        assert_eq!(node.raft.state, ::raft::StateRole::Leader);
        node.propose(vec![], b"world".to_vec()).unwrap();
        drive(&mut node, &mut st, &mut applied);
        assert_eq!(applied.len(), 1);
        assert_eq!(&applied[0].data[..], b"world");
        let world_index = applied[0].index;
        drop(node);
        drop(st);

        let st = DiskStorage::open(dir.path()).unwrap();
        let ents = all_entries(&st);
        assert!(ents.iter().any(|e| e.index == world_index && &e.data[..] == b"world"));
        assert_eq!(state(&st).hard_state.commit, world_index);
    }

    #[test]
    fn raw_node_entry_survives_reopen_without_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let cfg = Config { id: 1, election_tick: 10, heartbeat_tick: 1, ..Default::default() };
        let index;
        {
            // The manager's bootstrap: conf state at index 0, then a
            // committed entry 1 adding the founder.
            let mut st = DiskStorage::open(dir.path()).unwrap();
            st.bootstrap(voters(&[1])).unwrap();
            let mut cc = ::raft::eraftpb::ConfChange::default();
            cc.set_change_type(::raft::eraftpb::ConfChangeType::AddNode);
            cc.node_id = 1;
            let mut e = entry(1, 1, "");
            e.set_entry_type(EntryType::EntryConfChange);
            e.data = cc.write_to_bytes().unwrap().into();
            st.append(&[e]).unwrap();
            st.set_hard_state(hs(1, 1, 1)).unwrap();
            let mut node = RawNode::new(&cfg, st.reader(), &logger).unwrap();
            let mut applied = Vec::new();
            // Raft will not campaign before the conf change is applied.
            drive(&mut node, &mut st, &mut applied);
            assert_eq!(node.raft.raft_log.applied, 1);
            node.campaign().unwrap();
            drive(&mut node, &mut st, &mut applied);
            node.propose(vec![], b"persist-me".to_vec()).unwrap();
            drive(&mut node, &mut st, &mut applied);
            index = applied[0].index;
        }
        let st = DiskStorage::open(dir.path()).unwrap();
        let e = all_entries(&st).into_iter().find(|e| e.index == index).unwrap();
        assert_eq!(&e.data[..], b"persist-me");
        // A restarted node replays the committed entry to the state machine.
        let mut st = st;
        let mut node = RawNode::new(&cfg, st.reader(), &logger).unwrap();
        let mut applied = Vec::new();
        drive(&mut node, &mut st, &mut applied);
        assert_eq!(applied.iter().map(|e| e.index).collect::<Vec<_>>(), vec![index]);
    }

    struct Peer {
        node: RawNode<DiskStorageReader>,
        st: DiskStorage,
        applied: Vec<Vec<u8>>,
        restored: Option<Vec<u8>>,
    }

    fn apply_committed(p: &mut Peer, ents: Vec<Entry>) {
        for e in ents {
            match e.get_entry_type() {
                EntryType::EntryNormal if !e.data.is_empty() => p.applied.push(e.data.to_vec()),
                EntryType::EntryConfChange => {
                    let cc = ::raft::eraftpb::ConfChange::parse_from_bytes(&e.data).unwrap();
                    let cs = p.node.apply_conf_change(&cc).unwrap();
                    p.st.set_conf_state(cs).unwrap();
                }
                _ => {}
            }
        }
    }

    /// One peer's pending Readies, persisted and applied; returns outbound messages.
    fn process(p: &mut Peer) -> Vec<::raft::eraftpb::Message> {
        let mut out = Vec::new();
        while p.node.has_ready() {
            let mut rd = p.node.ready();
            out.extend(rd.take_messages());
            if !rd.snapshot().is_empty() {
                let snap = rd.snapshot().clone();
                p.restored = Some(snap.data.to_vec());
                p.st.apply_snapshot(snap).unwrap();
            }
            let committed = rd.take_committed_entries();
            apply_committed(p, committed);
            p.st.append(rd.entries()).unwrap();
            if let Some(h) = rd.hs() {
                p.st.set_hard_state(h.clone()).unwrap();
            }
            out.extend(rd.take_persisted_messages());
            let mut light = p.node.advance(rd);
            if let Some(c) = light.commit_index() {
                p.st.set_commit(c).unwrap();
            }
            out.extend(light.take_messages());
            let committed = light.take_committed_entries();
            apply_committed(p, committed);
            p.node.advance_apply();
        }
        out
    }

    fn settle(peers: &mut [Peer]) {
        for _ in 0..1000 {
            let mut msgs = Vec::new();
            for p in peers.iter_mut() {
                msgs.extend(process(p));
            }
            if msgs.is_empty() {
                return;
            }
            for m in msgs {
                let to = m.to as usize - 1;
                let _ = peers[to].node.step(m);
            }
        }
        panic!("cluster did not settle");
    }

    #[test]
    fn fresh_follower_catches_up_from_compacted_leader_via_snapshot() {
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let d1 = tempfile::tempdir().unwrap();
        let d2 = tempfile::tempdir().unwrap();
        let cfg = |id| Config { id, election_tick: 10, heartbeat_tick: 1, ..Default::default() };

        let mut st1 = DiskStorage::open(d1.path()).unwrap();
        st1.bootstrap(voters(&[1])).unwrap();
        let n1 = RawNode::new(&cfg(1), st1.reader(), &logger).unwrap();
        let st2 = DiskStorage::open(d2.path()).unwrap();
        assert!(st2.is_fresh());
        let n2 = RawNode::new(&cfg(2), st2.reader(), &logger).unwrap();
        let mut peers = vec![
            Peer { node: n1, st: st1, applied: Vec::new(), restored: None },
            Peer { node: n2, st: st2, applied: Vec::new(), restored: None },
        ];

        peers[0].node.campaign().unwrap();
        settle(&mut peers);
        for i in 0..5 {
            peers[0].node.propose(vec![], format!("cmd{i}").into_bytes()).unwrap();
        }
        settle(&mut peers);
        assert_eq!(peers[0].applied.len(), 5);

        // The leader snapshots its state machine and drops its whole log.
        let applied = peers[0].node.raft.raft_log.applied;
        let cs = peers[0].st.reader().initial_state().unwrap().conf_state;
        peers[0].st.create_snapshot(applied, cs, b"five commands".to_vec(), 0).unwrap();
        assert_eq!(peers[0].st.first_index(), applied + 1);

        // Add node 2; it can only catch up through the snapshot.
        let mut cc = ::raft::eraftpb::ConfChange::default();
        cc.set_change_type(::raft::eraftpb::ConfChangeType::AddNode);
        cc.node_id = 2;
        peers[0].node.propose_conf_change(vec![], cc).unwrap();
        settle(&mut peers);
        // The old snapshot predates node 2, so it cannot be used: the
        // storage asks for a fresh one, which the "manager" takes.
        let mut requested = false;
        for _ in 0..30 {
            for p in peers.iter_mut() {
                p.node.tick();
            }
            settle(&mut peers);
            if peers[0].st.snapshot_requested() {
                requested = true;
                let applied = peers[0].node.raft.raft_log.applied;
                let cs = peers[0].st.reader().initial_state().unwrap().conf_state;
                peers[0].st.create_snapshot(applied, cs, b"five commands".to_vec(), 0).unwrap();
                assert!(!peers[0].st.snapshot_requested());
            }
        }
        assert!(requested);
        let applied = peers[0].st.snapshot().unwrap().get_metadata().index;
        assert_eq!(peers[1].restored.as_deref(), Some(&b"five commands"[..]));
        assert_eq!(peers[1].st.snapshot().unwrap().get_metadata().index, applied);

        // Both commit new entries together.
        peers[0].node.propose(vec![], b"after".to_vec()).unwrap();
        settle(&mut peers);
        assert_eq!(peers[1].applied, vec![b"after".to_vec()]);
        assert_eq!(peers[0].applied.last().unwrap(), &b"after".to_vec());
        assert_eq!(peers[1].st.reader().initial_state().unwrap().conf_state, voters(&[1, 2]));

        // The follower's state survives a restart.
        let last = peers[1].st.last_index();
        let commit = peers[1].node.raft.raft_log.committed;
        drop(peers);
        let st2 = DiskStorage::open(d2.path()).unwrap();
        assert_eq!(st2.last_index(), last);
        assert_eq!(st2.reader().initial_state().unwrap().hard_state.commit, commit);
        assert_eq!(&st2.snapshot().unwrap().data[..], b"five commands");
        assert_eq!(st2.reader().initial_state().unwrap().conf_state, voters(&[1, 2]));
    }
}
