//! The node's image store: content by digest, and a small index of images.
//!
//! ```text
//! <root>/blobs/sha256/<hex>     manifests, indexes and image configs
//! <root>/layers/sha256/<hex>/   unpacked layers, by diff ID (unpack.rs)
//! <root>/rootfs/<container>/    per-container overlay dirs (rootfs.rs)
//! <root>/tmp/                   writes in progress; emptied at start
//! <root>/images.json            image records and their names
//! ```
//!
//! Blobs are written to `tmp/`, verified against their digest, fsynced and
//! renamed into place, so a blob file either is complete and correct or
//! does not exist — a crash or a bad download can never leave a partial
//! blob under a digest name. The index is replaced the same way.
//!
//! Compressed layer blobs are not kept: like Docker's overlay2 store, only
//! the unpacked layer is, and a later pull skips any layer whose diff ID is
//! already unpacked. That halves the disk an image takes.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::digest::{Digest, HashingReader};
use super::error::{ImageError, Result};
use super::reference::Reference;

/// One image on this node. The ID is the config's digest, as in Docker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: Digest,
    /// Full references: `docker.io/library/busybox:latest`.
    #[serde(default)]
    pub repo_tags: Vec<String>,
    /// `docker.io/library/busybox@sha256:…`: the digest the image was
    /// pulled by (the index's, for a multi-platform image).
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// The platform manifest, when the image came from a registry or an
    /// OCI layout (a `docker save` archive has none).
    #[serde(default)]
    pub manifest: Option<Digest>,
    pub diff_ids: Vec<Digest>,
    /// Total size of the unpacked layers (Docker's `Size`).
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
}

#[derive(Default, Serialize, Deserialize)]
struct Index {
    #[serde(default)]
    images: BTreeMap<String, ImageRecord>,
}

pub struct Store {
    root: PathBuf,
    index: Mutex<Index>,
    /// The most one layer may unpack to (see `unpack::DEFAULT_MAX_LAYER_BYTES`).
    max_layer_bytes: AtomicU64,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Store {
    /// Opens (creating if needed) the store at `root`. Leftovers of
    /// interrupted writes in `tmp/` are removed.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        for dir in ["blobs/sha256", "layers/sha256", "rootfs", "tmp"] {
            fs::create_dir_all(root.join(dir)).map_err(|e| ImageError::io(format!("creating {}", root.join(dir).display()), e))?;
        }
        let tmp = root.join("tmp");
        if let Ok(entries) = fs::read_dir(&tmp) {
            for e in entries.flatten() {
                let p = e.path();
                let _ = if p.is_dir() && !p.is_symlink() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
            }
        }
        let index_path = root.join("images.json");
        let index = match fs::read(&index_path) {
            Ok(data) => {
                serde_json::from_slice(&data).map_err(|e| ImageError::internal(format!("reading {}: {e}", index_path.display())))?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Index::default(),
            Err(e) => return Err(ImageError::io(format!("reading {}", index_path.display()), e)),
        };
        Ok(Store { root, index: Mutex::new(index), max_layer_bytes: AtomicU64::new(super::unpack::DEFAULT_MAX_LAYER_BYTES) })
    }

    /// The cap on one layer's unpacked size.
    pub fn max_layer_bytes(&self) -> u64 {
        self.max_layer_bytes.load(Ordering::Relaxed)
    }

    /// Changes the cap on one layer's unpacked size (configuration, tests).
    pub fn set_max_layer_bytes(&self, limit: u64) {
        self.max_layer_bytes.store(limit, Ordering::Relaxed);
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A fresh path under `tmp/` (same file system as everything else, so
    /// renames out of it are atomic).
    pub fn temp_path(&self, prefix: &str) -> PathBuf {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        self.root.join("tmp").join(format!("{prefix}-{}-{n}-{nanos}", std::process::id()))
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join(digest.algorithm().name()).join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Stores `data` under `digest` after checking that it hashes to it.
    pub fn write_blob(&self, digest: &Digest, data: &[u8]) -> Result<()> {
        self.write_blob_from(digest, data).map(|_| ())
    }

    /// Streams a blob into the store, verifying it on the way; returns its
    /// size. On any failure nothing is left behind.
    pub fn write_blob_from(&self, digest: &Digest, reader: impl Read) -> Result<u64> {
        let dest = self.blob_path(digest);
        if dest.is_file() {
            return Ok(fs::metadata(&dest).map(|m| m.len()).unwrap_or(0));
        }
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| ImageError::io("creating blob directory", e))?;
        }
        let tmp = self.temp_path("blob");
        let result = (|| {
            let mut file = File::create(&tmp).map_err(|e| ImageError::io(format!("creating {}", tmp.display()), e))?;
            let mut reader = HashingReader::new(reader, digest.algorithm());
            io::copy(&mut reader, &mut file).map_err(|e| ImageError::io(format!("writing blob {digest}"), e))?;
            let (actual, size) = reader.finish().map_err(|e| ImageError::io(format!("writing blob {digest}"), e))?;
            actual.expect(digest)?;
            file.sync_all().map_err(|e| ImageError::io("syncing blob", e))?;
            drop(file);
            fs::rename(&tmp, &dest).map_err(|e| ImageError::io(format!("storing blob {digest}"), e))?;
            sync_dir(dest.parent().unwrap_or(&self.root));
            Ok(size)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Reads a stored blob, checking it still matches its digest (a
    /// corrupted disk should not silently give a wrong image).
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let data = fs::read(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                ImageError::not_found(format!("blob {digest} not found"))
            } else {
                ImageError::io(format!("reading {}", path.display()), e)
            }
        })?;
        digest.verify(&data).map_err(|e| ImageError::corrupt(format!("stored blob is corrupt: {e}")))?;
        Ok(data)
    }

    pub fn remove_blob(&self, digest: &Digest) -> Result<()> {
        match fs::remove_file(self.blob_path(digest)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ImageError::io(format!("removing blob {digest}"), e)),
        }
    }

    /// Records an image and points `tags` at it. A tag or repo digest
    /// that named another image moves here (the other image keeps its ID
    /// and becomes untagged, as in Docker).
    pub fn put_image(&self, mut record: ImageRecord, tags: &[Reference]) -> Result<ImageRecord> {
        let mut index = self.index.lock().unwrap();
        let mut names: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        let digests = std::mem::take(&mut record.repo_digests);
        if let Some(existing) = index.images.get(&record.id.to_string()) {
            // Keep names it already had.
            for t in &existing.repo_tags {
                if !names.contains(t) {
                    names.push(t.clone());
                }
            }
            for d in &existing.repo_digests {
                if !record.repo_digests.contains(d) {
                    record.repo_digests.push(d.clone());
                }
            }
            if record.manifest.is_none() {
                record.manifest = existing.manifest.clone();
            }
        }
        for d in digests {
            if !record.repo_digests.contains(&d) {
                record.repo_digests.push(d);
            }
        }
        for other in index.images.values_mut() {
            if other.id != record.id {
                other.repo_tags.retain(|t| !names.contains(t));
                other.repo_digests.retain(|d| !record.repo_digests.contains(d));
            }
        }
        names.sort();
        record.repo_tags = names;
        record.repo_digests.sort();
        index.images.insert(record.id.to_string(), record.clone());
        self.save(&index)?;
        Ok(record)
    }

    /// Every image on the node.
    pub fn images(&self) -> Vec<ImageRecord> {
        self.index.lock().unwrap().images.values().cloned().collect()
    }

    pub fn get(&self, id: &Digest) -> Option<ImageRecord> {
        self.index.lock().unwrap().images.get(&id.to_string()).cloned()
    }

    /// Finds an image the way `docker image inspect NAME` does: a full ID
    /// (`sha256:…` or 64 hex), a reference (`busybox`, `busybox:1`,
    /// `name@sha256:…`), or an unambiguous short ID.
    pub fn lookup(&self, name: &str) -> Option<ImageRecord> {
        let index = self.index.lock().unwrap();
        let by_id = |id: &str| index.images.get(id).cloned();
        if let Ok(d) = Digest::parse(name) {
            return by_id(&d.to_string());
        }
        if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return by_id(&format!("sha256:{name}"));
        }
        if let Ok(r) = Reference::parse(name) {
            let wanted =
                if r.digest().is_some() { r.with_digest(r.digest().cloned().expect("checked")) } else { r.clone().with_default_tag() };
            let key = wanted.to_string();
            let list = |i: &ImageRecord| if wanted.digest().is_some() { i.repo_digests.contains(&key) } else { i.repo_tags.contains(&key) };
            if let Some(found) = index.images.values().find(|i| list(i)) {
                return Some(found.clone());
            }
        }
        // A short ID: at least a few hex characters, matching one image.
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            let mut matches = index.images.values().filter(|i| i.id.hex().starts_with(hex));
            if let (Some(one), None) = (matches.next(), matches.next()) {
                return Some(one.clone());
            }
        }
        None
    }

    /// Removes one name from an image; returns the image if that left it
    /// with no name at all (the caller may then delete it).
    pub fn untag(&self, reference: &Reference) -> Result<Option<ImageRecord>> {
        let mut index = self.index.lock().unwrap();
        let key = reference.to_string();
        let mut emptied = None;
        for img in index.images.values_mut() {
            let before = img.repo_tags.len() + img.repo_digests.len();
            img.repo_tags.retain(|t| *t != key);
            img.repo_digests.retain(|d| *d != key);
            let after = img.repo_tags.len() + img.repo_digests.len();
            if after < before && after == 0 {
                emptied = Some(img.clone());
            }
        }
        self.save(&index)?;
        Ok(emptied)
    }

    /// Forgets an image record (its layers are the caller's to collect).
    pub fn remove_image(&self, id: &Digest) -> Result<Option<ImageRecord>> {
        let mut index = self.index.lock().unwrap();
        let removed = index.images.remove(&id.to_string());
        self.save(&index)?;
        Ok(removed)
    }

    fn save(&self, index: &Index) -> Result<()> {
        let data = serde_json::to_vec_pretty(index).map_err(|e| ImageError::internal(e.to_string()))?;
        write_atomic(&self.root.join("images.json"), &data, &self.temp_path("index"))
    }
}

/// Replaces `dest` with `data` atomically: write a temp file, fsync,
/// rename over, fsync the directory.
pub fn write_atomic(dest: &Path, data: &[u8], tmp: &Path) -> Result<()> {
    let result = (|| {
        let mut f = File::create(tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(tmp, dest)?;
        if let Some(dir) = dest.parent() {
            sync_dir(dir);
        }
        Ok(())
    })();
    result.map_err(|e: io::Error| {
        let _ = fs::remove_file(tmp);
        ImageError::io(format!("writing {}", dest.display()), e)
    })
}

/// Makes a rename durable. Best effort: some file systems refuse fsync on
/// directories, and the data itself is already synced.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn temp_root(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!(
            "shoal-store-{name}-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        p
    }

    fn record(n: u8) -> ImageRecord {
        ImageRecord {
            id: Digest::sha256_of(&[n]),
            repo_tags: vec![],
            repo_digests: vec![],
            manifest: None,
            diff_ids: vec![Digest::sha256_of(&[n, n])],
            size: 10,
            created: None,
            os: "linux".into(),
            architecture: "amd64".into(),
        }
    }

    fn tmp_is_empty(store: &Store) -> bool {
        fs::read_dir(store.root().join("tmp")).unwrap().next().is_none()
    }

    #[test]
    fn blobs_are_verified_and_written_whole() {
        let root = temp_root("blobs");
        let store = Store::open(&root).unwrap();
        let d = Digest::sha256_of(b"hello");
        store.write_blob(&d, b"hello").unwrap();
        assert!(store.has_blob(&d));
        assert_eq!(store.read_blob(&d).unwrap(), b"hello");
        assert_eq!(store.blob_path(&d), root.join("blobs/sha256").join(d.hex()));

        // Wrong content for the digest: refused, nothing stored.
        let other = Digest::sha256_of(b"other");
        let e = store.write_blob(&other, b"not other").unwrap_err();
        assert_eq!(e.kind, super::super::error::ErrorKind::Corrupt);
        assert!(e.message.contains("digest mismatch"), "{e}");
        assert!(!store.has_blob(&other));
        assert!(tmp_is_empty(&store));

        // Corruption on disk is caught when reading.
        fs::write(store.blob_path(&d), b"jello").unwrap();
        assert!(store.read_blob(&d).unwrap_err().message.contains("corrupt"));
        fs::remove_dir_all(&root).unwrap();
    }

    /// A reader that yields some data and then fails, like a connection
    /// dropped mid-download.
    struct Broken(usize);
    impl Read for Broken {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::new(io::ErrorKind::ConnectionReset, "connection reset by peer"));
            }
            let n = buf.len().min(self.0).min(1000);
            buf[..n].fill(b'x');
            self.0 -= n;
            Ok(n)
        }
    }

    #[test]
    fn failed_writes_leave_no_partial_blob() {
        let root = temp_root("atomic");
        let store = Store::open(&root).unwrap();
        let full = vec![b'x'; 10_000];
        let d = Digest::sha256_of(&full);
        let e = store.write_blob_from(&d, Broken(5_000)).unwrap_err();
        assert!(e.message.contains("connection reset"), "{e}");
        assert!(!store.blob_path(&d).exists(), "no partial blob under the digest");
        assert!(tmp_is_empty(&store), "temp file cleaned up");
        // The complete content then goes in fine.
        assert_eq!(store.write_blob_from(&d, &full[..]).unwrap(), 10_000);
        assert_eq!(store.read_blob(&d).unwrap().len(), 10_000);

        // Leftovers of a crash in tmp/ are swept on open.
        fs::write(root.join("tmp/blob-crashed"), b"partial").unwrap();
        fs::create_dir_all(root.join("tmp/layer-crashed/usr")).unwrap();
        let store = Store::open(&root).unwrap();
        assert!(tmp_is_empty(&store));
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn records_names_and_lookups() {
        let root = temp_root("index");
        let store = Store::open(&root).unwrap();
        let busybox = Reference::parse_for_pull("busybox").unwrap();
        let mut a = record(1);
        let repo_digest = busybox.with_digest(Digest::sha256_of(b"manifest"));
        a.repo_digests = vec![repo_digest.to_string()];
        store.put_image(a.clone(), std::slice::from_ref(&busybox)).unwrap();

        for name in ["busybox", "busybox:latest", "docker.io/library/busybox:latest", &a.id.to_string(), a.id.hex(), &a.id.hex()[..12]] {
            assert_eq!(store.lookup(name).map(|i| i.id), Some(a.id.clone()), "{name}");
        }
        assert_eq!(store.lookup(&repo_digest.familiar_string()).map(|i| i.id), Some(a.id.clone()));
        assert!(store.lookup("busybox:other").is_none());
        assert!(store.lookup("alpine").is_none());

        // Moving the tag to a new image leaves the old one untagged.
        let b = record(2);
        store.put_image(b.clone(), std::slice::from_ref(&busybox)).unwrap();
        assert_eq!(store.lookup("busybox").unwrap().id, b.id);
        assert!(store.get(&a.id).unwrap().repo_tags.is_empty());

        // The index survives a reopen.
        drop(store);
        let store = Store::open(&root).unwrap();
        assert_eq!(store.images().len(), 2);
        assert_eq!(store.lookup("busybox").unwrap().id, b.id);
        let emptied = store.untag(&busybox).unwrap();
        assert_eq!(emptied.map(|i| i.id), Some(b.id.clone()));
        store.remove_image(&b.id).unwrap();
        assert_eq!(store.images().len(), 1);
        fs::remove_dir_all(&root).unwrap();
    }
}
