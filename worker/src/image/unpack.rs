//! Unpacking layers into directories that overlayfs can stack.
//!
//! Each layer is unpacked once, into its own directory named by its diff
//! ID (the digest of the uncompressed tar), as Docker's overlay2 driver
//! does. Keying by diff ID rather than chain ID is possible because a
//! layer is unpacked on its own, never on top of its parents, so its
//! directory depends on its content alone — and then two images that share
//! a layer at different depths share the directory too.
//!
//! Layer tars mark deletions with OCI whiteouts, which overlayfs spells
//! differently:
//!
//! * `dir/.wh.name` (delete `name`) becomes a 0/0 character device at
//!   `dir/name`;
//! * `dir/.wh..wh..opq` (hide everything below `dir`) becomes the xattr
//!   `trusted.overlay.opaque=y` on `dir`.
//!
//! Layers are untrusted input. Every entry must stay inside the layer
//! directory: names with `..` or a leading `/` are refused, symlinks whose
//! target climbs out of the layer are refused (Docker's rule), and paths
//! are resolved through already-unpacked symlinks as if the layer
//! directory were `/`, so nothing is ever written outside it.

use std::collections::VecDeque;
use std::ffi::{CString, OsStr, OsString};
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use flate2::bufread::MultiGzDecoder;
use nix::fcntl::AT_FDCWD;
use nix::sys::stat::{makedev, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, Gid, Uid};
use tar::EntryType;

use super::digest::{Digest, HashingReader};
use super::error::{ErrorKind, ImageError, Result};
use super::store::{sync_dir, Store};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// Symlink hops allowed while resolving one path (Linux's own limit).
const MAX_SYMLINKS: usize = 40;

/// The default cap on what one layer may unpack to: the uncompressed tar
/// stream and, separately, the bytes written to files (a sparse entry can
/// stand for far more than its bytes in the archive). A layer is untrusted
/// input and a small gzip stream can inflate a thousandfold, so without a
/// cap a hostile registry or archive fills the disk. 32 GiB is far above
/// any real layer (the largest common ones, CUDA and ML runtimes, are a
/// few GiB) while still stopping a bomb long before most data disks fill;
/// `Store::set_max_layer_bytes` changes it.
pub const DEFAULT_MAX_LAYER_BYTES: u64 = 32 << 30;

/// Reads at most `limit` bytes from `inner`; one more byte is an error
/// (and is noted in `tripped`, because the gzip and tar readers above may
/// reword the error on its way up).
struct CappedReader<R> {
    inner: R,
    left: u64,
    message: String,
    tripped: std::rc::Rc<std::cell::RefCell<Option<String>>>,
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            *self.tripped.borrow_mut() = Some(self.message.clone());
            return Err(io::Error::new(io::ErrorKind::InvalidData, self.message.clone()));
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Where a layer with this diff ID lives once unpacked.
pub fn layer_dir(store: &Store, diff_id: &Digest) -> PathBuf {
    store.root().join("layers").join(diff_id.algorithm().name()).join(diff_id.hex())
}

pub fn is_unpacked(store: &Store, diff_id: &Digest) -> bool {
    layer_dir(store, diff_id).is_dir()
}

/// The unpacked size recorded next to the layer (0 if unknown).
pub fn layer_size(store: &Store, diff_id: &Digest) -> u64 {
    fs::read_to_string(size_file(store, diff_id)).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

fn size_file(store: &Store, diff_id: &Digest) -> PathBuf {
    let mut p = layer_dir(store, diff_id).into_os_string();
    p.push(".size");
    PathBuf::from(p)
}

/// Removes an unpacked layer (for garbage collection).
pub fn remove_layer(store: &Store, diff_id: &Digest) -> Result<()> {
    let dir = layer_dir(store, diff_id);
    // Move it aside first so a half-deleted layer is never mistaken for a
    // complete one.
    let doomed = store.temp_path("layer-rm");
    match fs::rename(&dir, &doomed) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ImageError::io(format!("removing layer {diff_id}"), e)),
    }
    let _ = fs::remove_file(size_file(store, diff_id));
    fs::remove_dir_all(&doomed).map_err(|e| ImageError::io(format!("removing layer {diff_id}"), e))
}

/// What the caller knows about the layer it hands over.
pub struct LayerSource<'a> {
    /// The diff ID from the image config: the digest the uncompressed tar
    /// must have, and the layer's name on disk.
    pub diff_id: &'a Digest,
    /// The digest and size of the (possibly compressed) blob as the
    /// manifest describes it, when there is one to check.
    pub blob: Option<(&'a Digest, i64)>,
}

/// Unpacks one layer from its blob stream (gzip or plain tar, told apart
/// by magic bytes, not by media type) into the store, verifying both the
/// blob digest and the diff ID. Returns the unpacked size. If the layer is
/// already there, the stream is not read.
pub fn unpack_layer(store: &Store, input: impl Read, src: &LayerSource<'_>) -> Result<u64> {
    let dest = layer_dir(store, src.diff_id);
    if dest.is_dir() {
        return Ok(layer_size(store, src.diff_id));
    }
    let tmp = store.temp_path("layer");
    fs::create_dir(&tmp).map_err(|e| ImageError::io(format!("creating {}", tmp.display()), e))?;
    let result = unpack_verified(input, &tmp, src, store.max_layer_bytes());
    let size = match result {
        Ok(size) => size,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(|e| ImageError::io("creating layers directory", e))?;
    }
    let _ = fs::write(size_file(store, src.diff_id), size.to_string());
    match fs::rename(&tmp, &dest) {
        Ok(()) => sync_dir(dest.parent().unwrap_or(store.root())),
        // Someone unpacked the same layer meanwhile: theirs is as good.
        Err(_) if dest.is_dir() => {
            let _ = fs::remove_dir_all(&tmp);
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(ImageError::io(format!("storing layer {}", src.diff_id), e));
        }
    }
    Ok(size)
}

/// Unpacks and verifies. The blob stream is capped at the size the
/// manifest declares (a registry that sends more is refused, whatever its
/// Content-Length said), the uncompressed stream and the file contents at
/// `max_unpacked` each; any of them tripping refuses the layer.
fn unpack_verified(input: impl Read, dest: &Path, src: &LayerSource<'_>, max_unpacked: u64) -> Result<u64> {
    let tripped = std::rc::Rc::new(std::cell::RefCell::new(None));
    let result = unpack_capped(input, dest, src, max_unpacked, &tripped);
    // A cap that tripped is the real reason, however the readers above
    // reported it.
    let cap_message = tripped.borrow_mut().take();
    match (result, cap_message) {
        (Err(_), Some(message)) => Err(ImageError::corrupt(message)),
        (result, _) => result,
    }
}

fn unpack_capped(
    input: impl Read,
    dest: &Path,
    src: &LayerSource<'_>,
    max_unpacked: u64,
    tripped: &std::rc::Rc<std::cell::RefCell<Option<String>>>,
) -> Result<u64> {
    let blob_alg = src.blob.map(|(d, _)| d.algorithm()).unwrap_or(src.diff_id.algorithm());
    let name = src.blob.map(|(d, _)| d).unwrap_or(src.diff_id);
    let declared = src.blob.map(|(_, size)| size).filter(|size| *size >= 0);
    let input = CappedReader {
        inner: input,
        left: declared.map(|s| s as u64).unwrap_or(u64::MAX),
        message: format!("layer {name} is larger than the {} bytes its manifest declares", declared.unwrap_or(0)),
        tripped: tripped.clone(),
    };
    let mut compressed = BufReader::with_capacity(256 * 1024, HashingReader::new(input, blob_alg));
    let magic = compressed.fill_buf().map_err(|e| read_error(src, e))?.to_vec();
    let read_err = |e: io::Error| read_error(src, e);
    let cap = |inner| CappedReader {
        inner,
        left: max_unpacked,
        message: format!("layer {name} unpacks to more than {max_unpacked} bytes, the most one layer may take"),
        tripped: tripped.clone(),
    };
    let size;
    let diff;
    if magic.starts_with(&[0x1f, 0x8b]) {
        let decoder: Box<dyn Read + '_> = Box::new(MultiGzDecoder::new(&mut compressed));
        let mut uncompressed = HashingReader::new(cap(decoder), src.diff_id.algorithm());
        size = unpack_tar_limited(&mut uncompressed, dest, max_unpacked)?;
        diff = uncompressed.finish().map_err(read_err)?.0;
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(ImageError::invalid(format!(
            "layer {} is zstd-compressed, which Shoal does not support yet",
            src.blob.map(|(d, _)| d).unwrap_or(src.diff_id)
        )));
    } else {
        let plain: Box<dyn Read + '_> = Box::new(&mut compressed);
        let mut uncompressed = HashingReader::new(cap(plain), src.diff_id.algorithm());
        size = unpack_tar_limited(&mut uncompressed, dest, max_unpacked)?;
        diff = uncompressed.finish().map_err(read_err)?.0;
    }
    // Whatever follows the compressed stream still counts for the blob.
    let (blob_digest, blob_size) = compressed.into_inner().finish().map_err(read_err)?;
    if let Some((want, want_size)) = src.blob {
        // Docker's wording for a corrupt download.
        blob_digest
            .expect(want)
            .map_err(|e| ImageError::corrupt(format!("filesystem layer verification failed for digest {want}: {e}")))?;
        if want_size >= 0 && blob_size != want_size as u64 {
            return Err(ImageError::corrupt(format!("layer {want} is {blob_size} bytes, the manifest says {want_size}")));
        }
    }
    diff.expect(src.diff_id)
        .map_err(|e| ImageError::corrupt(format!("layer does not match the image configuration's diff ID {}: {e}", src.diff_id)))?;
    Ok(size)
}

fn read_error(src: &LayerSource<'_>, e: io::Error) -> ImageError {
    let what = src.blob.map(|(d, _)| d).unwrap_or(src.diff_id);
    let kind = if e.kind() == io::ErrorKind::InvalidData || e.kind() == io::ErrorKind::InvalidInput {
        ErrorKind::Corrupt
    } else {
        ErrorKind::Unavailable
    };
    ImageError::new(kind, format!("reading layer {what}: {e}"))
}

/// Unpacks a tar stream into `dest` (an existing, empty directory),
/// turning whiteouts into their overlayfs form. Returns the total size of
/// the regular files. Does not read past the end-of-archive marker.
pub fn unpack_tar(reader: impl Read, dest: &Path) -> Result<u64> {
    unpack_tar_limited(reader, dest, DEFAULT_MAX_LAYER_BYTES)
}

/// [`unpack_tar`], refusing once the files' contents pass `limit` bytes
/// (an entry that declares more than what is left is refused before
/// anything of it is written).
pub fn unpack_tar_limited(reader: impl Read, dest: &Path, limit: u64) -> Result<u64> {
    let mut archive = tar::Archive::new(reader);
    let mut size = 0u64;
    // Directory times are set last: creating entries inside a directory
    // changes its mtime.
    let mut dir_times: Vec<(PathBuf, Times)> = Vec::new();
    let entries = archive.entries().map_err(|e| bad_layer(format!("reading tar: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad_layer(format!("reading tar: {e}")))?;
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink) {
            continue;
        }
        let raw_path = entry.path().map_err(|e| bad_layer(format!("entry name: {e}")))?.into_owned();
        let rel = clean_path(&raw_path)?;
        let Some(name) = rel.last().cloned() else {
            // "./": the layer root itself. Its attributes come from the
            // container's upper directory, so there is nothing to do.
            continue;
        };
        let parent_rel = &rel[..rel.len() - 1];
        let name_str = name.to_string_lossy();

        if let Some(hidden) = name_str.strip_prefix(WHITEOUT_PREFIX) {
            let parent = resolve(dest, parent_rel, true)?;
            create_dirs(dest, &parent)?;
            if name_str == OPAQUE_WHITEOUT {
                set_xattr(&parent, OPAQUE_XATTR, b"y").map_err(|e| io_err(&parent, "marking opaque", e))?;
            } else if hidden.starts_with(WHITEOUT_PREFIX) {
                // Other `.wh..wh.` names are AUFS bookkeeping: nothing to do.
            } else {
                check_whiteout_target(hidden, &raw_path)?;
                let target = parent.join(hidden);
                remove_existing(&target)?;
                mknod(&target, SFlag::S_IFCHR, 0).map_err(|e| io_err(&target, "creating whiteout", e))?;
                let h = entry.header();
                lchown(&target, h.uid().unwrap_or(0), h.gid().unwrap_or(0)).map_err(|e| io_err(&target, "chown", e))?;
            }
            continue;
        }

        let parent = resolve(dest, parent_rel, true)?;
        create_dirs(dest, &parent)?;
        let target = parent.join(&name);
        let header = entry.header().clone();
        let uid = header.uid().unwrap_or(0);
        let gid = header.gid().unwrap_or(0);
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let times = Times::of(&mut entry);
        let xattrs = pax_xattrs(&mut entry);

        match kind {
            EntryType::Directory => {
                let is_dir = fs::symlink_metadata(&target).map(|m| m.is_dir()).unwrap_or(false);
                if !is_dir {
                    remove_existing(&target)?;
                    fs::create_dir(&target).map_err(|e| io_err(&target, "mkdir", e))?;
                }
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                remove_existing(&target)?;
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&target)
                    .map_err(|e| io_err(&target, "create", e))?;
                let budget = limit.saturating_sub(size);
                let too_big =
                    || bad_layer(format!("{} would take the layer past {limit} bytes, the most one layer may take", raw_path.display()));
                if entry.size() > budget {
                    drop(f);
                    let _ = fs::remove_file(&target);
                    return Err(too_big());
                }
                let n = io::copy(&mut (&mut entry).take(budget + 1), &mut f)
                    .map_err(|e| bad_layer(format!("reading {}: {e}", raw_path.display())))?;
                if n > budget {
                    return Err(too_big());
                }
                size += n;
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(|e| bad_layer(format!("link name: {e}")))?
                    .ok_or_else(|| bad_layer(format!("symlink {} has no target", raw_path.display())))?
                    .into_owned();
                check_symlink_target(parent_rel, &link, &raw_path)?;
                remove_existing(&target)?;
                symlink(&link, &target).map_err(|e| io_err(&target, "symlink", e))?;
            }
            EntryType::Link => {
                let link = entry
                    .link_name()
                    .map_err(|e| bad_layer(format!("link name: {e}")))?
                    .ok_or_else(|| bad_layer(format!("hard link {} has no target", raw_path.display())))?
                    .into_owned();
                let link_rel = clean_path(&link)?;
                let Some((link_name, link_parent)) = link_rel.split_last() else {
                    return Err(bad_layer(format!("hard link {} points at the layer root", raw_path.display())));
                };
                let source = resolve(dest, link_parent, true)?.join(link_name);
                let meta = fs::symlink_metadata(&source)
                    .map_err(|_| bad_layer(format!("hard link {} points at missing {}", raw_path.display(), link.display())))?;
                if meta.is_dir() {
                    return Err(bad_layer(format!("hard link {} points at a directory", raw_path.display())));
                }
                if source != target {
                    remove_existing(&target)?;
                    fs::hard_link(&source, &target).map_err(|e| io_err(&target, "link", e))?;
                }
                // A hard link shares the source's inode and attributes.
                continue;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let fmt = match kind {
                    EntryType::Char => SFlag::S_IFCHR,
                    EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                remove_existing(&target)?;
                mknod(&target, fmt, makedev(major.into(), minor.into())).map_err(|e| io_err(&target, "mknod", e))?;
            }
            other => {
                tracing::debug!(entry = %raw_path.display(), kind = ?other, "skipping unsupported tar entry");
                continue;
            }
        }

        // Owner first: chown clears set-uid/set-gid bits, chmod restores them.
        lchown(&target, uid, gid).map_err(|e| io_err(&target, "chown", e))?;
        if kind != EntryType::Symlink {
            fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(mode)).map_err(|e| io_err(&target, "chmod", e))?;
        }
        for (key, value) in xattrs {
            // Overlay's own attributes are ours to set (a layer must not
            // plant redirects or opaque markers by xattr); other failures
            // (e.g. a file system without security.* support) are not fatal.
            if key.starts_with("trusted.overlay.") {
                continue;
            }
            if let Err(e) = set_xattr(&target, &key, &value) {
                tracing::debug!(path = %target.display(), key, error = %e, "could not set xattr");
            }
        }
        if kind == EntryType::Directory {
            dir_times.push((target, times));
        } else {
            times.apply(&target).map_err(|e| io_err(&target, "setting times", e))?;
        }
    }
    for (dir, times) in dir_times.iter().rev() {
        times.apply(dir).map_err(|e| io_err(dir, "setting times", e))?;
    }
    Ok(size)
}

fn bad_layer(msg: String) -> ImageError {
    ImageError::corrupt(format!("invalid layer: {msg}"))
}

fn io_err(path: &Path, what: &str, e: io::Error) -> ImageError {
    ImageError::internal(format!("unpacking layer: {what} {}: {e}", path.display()))
}

/// Splits an entry name into plain components, refusing any that could
/// leave the layer: absolute names and `..`.
fn clean_path(p: &Path) -> Result<Vec<OsString>> {
    let mut out = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) | Component::ParentDir => {
                return Err(bad_layer(format!("{:?} is outside of the layer", p.display().to_string())));
            }
        }
    }
    Ok(out)
}

/// A whiteout deletes one entry of its own directory, so what it names
/// must be a plain name: `.wh.` (empty), `.wh..` (`.`) and `.wh...` (`..`)
/// would otherwise delete the directory itself or its parent, which for a
/// top-level entry is the layer root or the folder of layers in progress.
fn check_whiteout_target(hidden: &str, name: &Path) -> Result<()> {
    if hidden.is_empty() || hidden == "." || hidden == ".." || hidden.contains('/') {
        return Err(bad_layer(format!(
            "whiteout {:?} does not name an entry (it would delete {:?})",
            name.display().to_string(),
            if hidden.is_empty() { "." } else { hidden }
        )));
    }
    Ok(())
}

/// Docker refuses a symlink whose relative target, read from the link's
/// directory, climbs above the layer root. Absolute targets are fine: they
/// are read inside the container's root.
fn check_symlink_target(parent_rel: &[OsString], target: &Path, name: &Path) -> Result<()> {
    if target.is_absolute() {
        return Ok(());
    }
    let mut depth = parent_rel.len() as isize;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return Err(bad_layer(format!(
                "invalid symlink {:?} -> {:?}: it points outside of the layer",
                name.display().to_string(),
                target.display().to_string()
            )));
        }
    }
    Ok(())
}

/// Resolves `rel` inside `root` as if `root` were `/`: symlinks met on the
/// way (already unpacked from this layer) are followed, absolute targets
/// restart at `root`, and `..` stops at `root`. The result is always
/// below `root`. Missing components are kept as they are.
fn resolve(root: &Path, rel: &[OsString], follow_last: bool) -> Result<PathBuf> {
    let mut done: Vec<OsString> = Vec::new();
    let mut todo: VecDeque<OsString> = rel.iter().cloned().collect();
    let mut hops = 0;
    while let Some(c) = todo.pop_front() {
        if c == OsStr::new("..") {
            done.pop();
            continue;
        }
        if c.is_empty() || c == OsStr::new(".") {
            continue;
        }
        let candidate = done.iter().fold(root.to_path_buf(), |p, c| p.join(c)).join(&c);
        let is_last = todo.is_empty();
        match fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() && (!is_last || follow_last) => {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    return Err(bad_layer(format!("too many levels of symbolic links at {}", candidate.display())));
                }
                let target = fs::read_link(&candidate).map_err(|e| io_err(&candidate, "readlink", e))?;
                if target.is_absolute() {
                    done.clear();
                }
                let mut parts: Vec<OsString> = target
                    .components()
                    .filter_map(|c| match c {
                        Component::Normal(n) => Some(n.to_os_string()),
                        Component::ParentDir => Some(OsString::from("..")),
                        _ => None,
                    })
                    .collect();
                parts.extend(todo.drain(..));
                todo = parts.into();
            }
            _ => done.push(c),
        }
    }
    Ok(done.iter().fold(root.to_path_buf(), |p, c| p.join(c)))
}

/// Creates the directories from `root` down to `dir` (which `resolve`
/// produced, so every existing component is a real directory).
fn create_dirs(root: &Path, dir: &Path) -> Result<()> {
    let rel = dir.strip_prefix(root).map_err(|_| bad_layer(format!("{} escapes the layer", dir.display())))?;
    let mut cur = root.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                // A file where the archive needs a directory: tar replaces it.
                fs::remove_file(&cur).map_err(|e| io_err(&cur, "remove", e))?;
                fs::create_dir(&cur).map_err(|e| io_err(&cur, "mkdir", e))?;
            }
            Err(_) => {
                fs::create_dir(&cur).map_err(|e| io_err(&cur, "mkdir", e))?;
                fs::set_permissions(&cur, std::os::unix::fs::PermissionsExt::from_mode(0o755)).map_err(|e| io_err(&cur, "chmod", e))?;
            }
        }
    }
    Ok(())
}

/// Removes whatever is at `path` (not following symlinks), so an entry can
/// replace an earlier one of the same name.
fn remove_existing(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(|e| io_err(path, "remove", e)),
        Ok(_) => fs::remove_file(path).map_err(|e| io_err(path, "remove", e)),
        Err(_) => Ok(()),
    }
}

/// Access and modification times of an entry (PAX gives sub-second ones).
#[derive(Clone, Copy)]
struct Times {
    atime: (i64, i64),
    mtime: (i64, i64),
}

impl Times {
    fn of<R: Read>(entry: &mut tar::Entry<'_, R>) -> Times {
        let m = entry.header().mtime().unwrap_or(0) as i64;
        let mut t = Times { atime: (m, 0), mtime: (m, 0) };
        if let Ok(Some(exts)) = entry.pax_extensions() {
            for ext in exts.flatten() {
                let parsed = ext.value().ok().and_then(parse_pax_time);
                match (ext.key().unwrap_or(""), parsed) {
                    ("mtime", Some(v)) => t.mtime = v,
                    ("atime", Some(v)) => t.atime = v,
                    _ => {}
                }
            }
        }
        t
    }

    fn apply(&self, path: &Path) -> io::Result<()> {
        let atime = TimeSpec::new(self.atime.0 as _, self.atime.1 as _);
        let mtime = TimeSpec::new(self.mtime.0 as _, self.mtime.1 as _);
        let p = cstr(path)?;
        nix::sys::stat::utimensat(AT_FDCWD, p.as_c_str(), &atime, &mtime, UtimensatFlags::NoFollowSymlink)?;
        Ok(())
    }
}

/// `1700000000.123456789` → (seconds, nanoseconds).
fn parse_pax_time(s: &str) -> Option<(i64, i64)> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nanos = 0i64;
    for (i, c) in frac.chars().take(9).enumerate() {
        nanos += c.to_digit(10)? as i64 * 10i64.pow(8 - i as u32);
    }
    Some((secs, if secs < 0 { -nanos } else { nanos }))
}

/// Extended attributes recorded as PAX `SCHILY.xattr.<name>` records.
fn pax_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(Some(exts)) = entry.pax_extensions() {
        for ext in exts.flatten() {
            if let Some(name) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
                out.push((name.to_string(), ext.value_bytes().to_vec()));
            }
        }
    }
    out
}

fn cstr(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

fn mknod(path: &Path, kind: SFlag, dev: libc::dev_t) -> io::Result<()> {
    let p = cstr(path)?;
    nix::sys::stat::mknod(p.as_c_str(), kind, Mode::from_bits_truncate(0o600), dev)?;
    Ok(())
}

/// lchown(2), which nix spells as fchownat with `AT_SYMLINK_NOFOLLOW`.
fn lchown(path: &Path, uid: u64, gid: u64) -> io::Result<()> {
    let p = cstr(path)?;
    let (uid, gid) = (Uid::from_raw(uid as libc::uid_t), Gid::from_raw(gid as libc::gid_t));
    fchownat(AT_FDCWD, p.as_c_str(), Some(uid), Some(gid), nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)?;
    Ok(())
}

pub(crate) fn set_xattr(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let p = cstr(path)?;
    let n = CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "xattr name contains NUL"))?;
    // nix has no xattr calls (and rustix is not in the worker's tree): libc.
    // SAFETY: valid C strings; value pointer and length describe a slice.
    let r = unsafe { libc::lsetxattr(p.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
pub(crate) fn get_xattr(path: &Path, name: &str) -> io::Result<Vec<u8>> {
    let p = cstr(path)?;
    let n = CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "xattr name contains NUL"))?;
    let mut buf = vec![0u8; 256];
    // nix has no xattr calls: libc, as in `set_xattr`.
    // SAFETY: valid C strings; buf is writable for its length.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(r as usize);
    Ok(buf)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    /// Builds tar archives in tests, with full control over names (the
    /// `tar` crate's builder refuses `..`, which we need to test refusal).
    #[derive(Default)]
    pub struct TarBuilder {
        out: Vec<u8>,
    }

    impl TarBuilder {
        pub fn new() -> Self {
            Self::default()
        }

        fn header(&mut self, name: &str, kind: EntryType, size: u64, mode: u32, link: &str) -> tar::Header {
            let mut h = tar::Header::new_ustar();
            h.as_mut_bytes()[..name.len()].copy_from_slice(name.as_bytes());
            h.set_entry_type(kind);
            h.set_size(size);
            h.set_mode(mode);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_700_000_000);
            if !link.is_empty() {
                h.set_link_name(link).unwrap();
            }
            h.set_cksum();
            h
        }

        pub fn file(mut self, name: &str, data: &[u8], mode: u32) -> Self {
            let h = self.header(name, EntryType::Regular, data.len() as u64, mode, "");
            self.out.extend_from_slice(h.as_bytes());
            self.out.extend_from_slice(data);
            let pad = (512 - data.len() % 512) % 512;
            self.out.extend(std::iter::repeat_n(0u8, pad));
            self
        }

        pub fn file_owned(mut self, name: &str, data: &[u8], mode: u32, uid: u64, gid: u64) -> Self {
            let mut h = self.header(name, EntryType::Regular, data.len() as u64, mode, "");
            h.set_uid(uid);
            h.set_gid(gid);
            h.set_cksum();
            self.out.extend_from_slice(h.as_bytes());
            self.out.extend_from_slice(data);
            self.out.extend(std::iter::repeat_n(0u8, (512 - data.len() % 512) % 512));
            self
        }

        pub fn dir(mut self, name: &str, mode: u32) -> Self {
            let h = self.header(name, EntryType::Directory, 0, mode, "");
            self.out.extend_from_slice(h.as_bytes());
            self
        }

        pub fn symlink(mut self, name: &str, target: &str) -> Self {
            let h = self.header(name, EntryType::Symlink, 0, 0o777, target);
            self.out.extend_from_slice(h.as_bytes());
            self
        }

        pub fn hardlink(mut self, name: &str, target: &str) -> Self {
            let h = self.header(name, EntryType::Link, 0, 0o644, target);
            self.out.extend_from_slice(h.as_bytes());
            self
        }

        pub fn fifo(mut self, name: &str) -> Self {
            let h = self.header(name, EntryType::Fifo, 0, 0o644, "");
            self.out.extend_from_slice(h.as_bytes());
            self
        }

        pub fn finish(mut self) -> Vec<u8> {
            self.out.extend(std::iter::repeat_n(0u8, 1024));
            self.out
        }
    }

    pub fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn tempdir(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("shoal-unpack-{name}-{}-{:?}", std::process::id(), std::thread::current().id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn unpacks_files_dirs_links_and_modes() {
        let dir = tempdir("basic");
        let tar = TarBuilder::new()
            .dir("./", 0o755)
            .dir("bin/", 0o755)
            .file("bin/tool", b"#!/bin/sh\n", 0o4755)
            .file_owned("home/user/notes", b"hi", 0o640, 1000, 1001)
            .symlink("bin/alias", "tool")
            .symlink("abs", "/etc/passwd")
            .hardlink("bin/tool2", "bin/tool")
            .fifo("run/pipe")
            .finish();
        let size = unpack_tar(&tar[..], &dir).unwrap();
        assert_eq!(size, 12);
        let tool = fs::metadata(dir.join("bin/tool")).unwrap();
        assert_eq!(tool.permissions().mode() & 0o7777, 0o4755, "set-uid survives chown");
        assert_eq!(tool.mtime(), 1_700_000_000);
        assert_eq!(fs::read_link(dir.join("bin/alias")).unwrap(), Path::new("tool"));
        assert_eq!(fs::read_link(dir.join("abs")).unwrap(), Path::new("/etc/passwd"));
        assert_eq!(fs::metadata(dir.join("bin/tool2")).unwrap().ino(), tool.ino());
        let notes = fs::metadata(dir.join("home/user/notes")).unwrap();
        assert_eq!((notes.uid(), notes.gid(), notes.permissions().mode() & 0o777), (1000, 1001, 0o640));
        assert!(fs::symlink_metadata(dir.join("run/pipe")).unwrap().file_type().is_fifo());
        assert_eq!(fs::metadata(dir.join("bin")).unwrap().mtime(), 1_700_000_000, "dir times set last");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn converts_whiteouts_for_overlayfs() {
        let dir = tempdir("whiteout");
        let tar = TarBuilder::new()
            .dir("etc/", 0o755)
            .file("etc/.wh.removed.conf", b"", 0o644)
            .dir("var/cache/", 0o755)
            .file("var/cache/.wh..wh..opq", b"", 0o644)
            .file("var/cache/fresh", b"new", 0o644)
            .file("deep/er/.wh.gone", b"", 0o644)
            .file(".wh..wh.plnk", b"", 0o644)
            .finish();
        unpack_tar(&tar[..], &dir).unwrap();
        let wh = fs::symlink_metadata(dir.join("etc/removed.conf")).unwrap();
        assert!(wh.file_type().is_char_device(), "whiteout is a char device");
        assert_eq!(wh.rdev(), 0, "device 0/0");
        assert!(!dir.join("etc/.wh.removed.conf").exists());
        assert!(fs::symlink_metadata(dir.join("deep/er/gone")).unwrap().file_type().is_char_device());
        assert_eq!(get_xattr(&dir.join("var/cache"), OPAQUE_XATTR).unwrap(), b"y");
        assert_eq!(fs::read(dir.join("var/cache/fresh")).unwrap(), b"new", "opaque dirs keep their own entries");
        assert!(get_xattr(&dir.join("etc"), OPAQUE_XATTR).is_err());
        assert!(!dir.join(".wh..wh.plnk").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_path_traversal() {
        let outside = tempdir("outside");
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("dotdot", TarBuilder::new().file("../escape", b"x", 0o644).finish()),
            ("nested dotdot", TarBuilder::new().file("a/../../escape", b"x", 0o644).finish()),
            ("absolute", TarBuilder::new().file("/escape", b"x", 0o644).finish()),
            ("symlink out", TarBuilder::new().symlink("up", "../..").finish()),
            ("symlink out deep", TarBuilder::new().symlink("a/b/up", "../../../x").finish()),
            ("hardlink out", TarBuilder::new().hardlink("h", "../etc/passwd").finish()),
            ("whiteout out", TarBuilder::new().file("../.wh.x", b"", 0o644).finish()),
        ];
        for (what, tar) in cases {
            let dir = tempdir("traversal");
            let e = unpack_tar(&tar[..], &dir.join(".")).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Corrupt, "{what}: {e}");
            assert!(e.message.contains("outside of the layer"), "{what}: {e}");
            assert!(!dir.parent().unwrap().join("escape").exists(), "{what}");
            fs::remove_dir_all(&dir).unwrap();
        }
        fs::remove_dir_all(&outside).unwrap();
    }

    #[test]
    fn whiteouts_that_name_no_entry_are_refused() {
        // Each layer is unpacked into `sandbox/layer`, next to a sibling
        // that stands for other layers being unpacked: a whiteout naming
        // `.`, `..` or nothing must not delete either, nor the layer's own
        // earlier entries.
        for name in [".wh.", ".wh..", ".wh...", "sub/.wh.", "sub/.wh..", "sub/.wh..."] {
            let sandbox = tempdir("whiteout-names");
            let dest = sandbox.join("layer");
            fs::create_dir(&dest).unwrap();
            fs::write(sandbox.join("sibling"), "other layer").unwrap();
            let tar = TarBuilder::new().file("sub/keep", b"k", 0o644).file("keep", b"k", 0o644).file(name, b"", 0o644).finish();
            let e = unpack_tar(&tar[..], &dest).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Corrupt, "{name}: {e}");
            assert!(e.message.contains("does not name an entry"), "{name}: {e}");
            assert_eq!(fs::read(sandbox.join("sibling")).unwrap(), b"other layer", "{name}");
            assert_eq!(fs::read(dest.join("keep")).unwrap(), b"k", "{name}");
            assert_eq!(fs::read(dest.join("sub/keep")).unwrap(), b"k", "{name}");
            fs::remove_dir_all(&sandbox).unwrap();
        }
        // Through unpack_layer the half-made layer goes away and nothing is stored.
        let root = std::env::temp_dir().join(format!("shoal-unpack-wh-store-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let store = Store::open(&root).unwrap();
        let tar = TarBuilder::new().file("a", b"x", 0o644).file(".wh...", b"", 0o644).finish();
        let diff_id = Digest::sha256_of(&tar);
        let e = unpack_layer(&store, &tar[..], &LayerSource { diff_id: &diff_id, blob: None }).unwrap_err();
        assert!(e.message.contains("does not name an entry"), "{e}");
        assert!(!is_unpacked(&store, &diff_id));
        assert!(root.join("tmp").is_dir() && fs::read_dir(root.join("tmp")).unwrap().next().is_none());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn writes_through_symlinks_stay_inside() {
        // A symlink to an absolute path outside, then a file "through" it:
        // the write lands inside the layer, at the link's target read as if
        // the layer were the root.
        let dir = tempdir("through");
        let victim = tempdir("victim");
        let tar =
            TarBuilder::new().symlink("lib", &victim.display().to_string()).file("lib/evil", b"x", 0o644).symlink("loop", "loop").finish();
        unpack_tar(&tar[..], &dir).unwrap();
        assert!(!victim.join("evil").exists(), "nothing written outside");
        let inside = dir.join(victim.strip_prefix("/").unwrap()).join("evil");
        assert_eq!(fs::read(&inside).unwrap(), b"x");
        // A file entry replaces a symlink rather than writing through it.
        let tar = TarBuilder::new().symlink("f", "/etc/hostname").file("f", b"mine", 0o644).finish();
        unpack_tar(&tar[..], &dir).unwrap();
        assert_eq!(fs::read(dir.join("f")).unwrap(), b"mine");
        fs::remove_dir_all(&dir).unwrap();
        fs::remove_dir_all(&victim).unwrap();
    }

    #[test]
    fn symlink_loops_are_refused() {
        let dir = tempdir("loop");
        let tar = TarBuilder::new().symlink("a", "b").symlink("b", "a").file("a/x", b"", 0o644).finish();
        let e = unpack_tar(&tar[..], &dir).unwrap_err();
        assert!(e.message.contains("too many levels"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unpack_layer_verifies_digests_and_is_done_once() {
        let root = std::env::temp_dir().join(format!("shoal-unpack-store-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let store = Store::open(&root).unwrap();
        let tar = TarBuilder::new().file("hello", b"world", 0o644).finish();
        let gz = gzip(&tar);
        let diff_id = Digest::sha256_of(&tar);
        let blob = Digest::sha256_of(&gz);

        // Wrong blob digest: refused, nothing left behind.
        let wrong = Digest::sha256_of(b"something else");
        let src = LayerSource { diff_id: &diff_id, blob: Some((&wrong, gz.len() as i64)) };
        let e = unpack_layer(&store, &gz[..], &src).unwrap_err();
        assert!(e.message.starts_with("filesystem layer verification failed for digest"), "{e}");
        assert!(!is_unpacked(&store, &diff_id));
        assert!(fs::read_dir(root.join("tmp")).unwrap().next().is_none());

        // Wrong diff ID: refused.
        let bad_diff = Digest::sha256_of(b"nope");
        let src = LayerSource { diff_id: &bad_diff, blob: Some((&blob, gz.len() as i64)) };
        assert!(unpack_layer(&store, &gz[..], &src).unwrap_err().message.contains("diff ID"));
        assert!(!is_unpacked(&store, &bad_diff));

        // Right digests: unpacked (gzip detected by magic), size recorded.
        let src = LayerSource { diff_id: &diff_id, blob: Some((&blob, gz.len() as i64)) };
        assert_eq!(unpack_layer(&store, &gz[..], &src).unwrap(), 5);
        assert_eq!(fs::read(layer_dir(&store, &diff_id).join("hello")).unwrap(), b"world");
        assert_eq!(layer_size(&store, &diff_id), 5);
        // Second time: the stream is not even read.
        let src = LayerSource { diff_id: &diff_id, blob: None };
        assert_eq!(unpack_layer(&store, &b"garbage"[..], &src).unwrap(), 5);

        // An uncompressed layer (docker save) works too.
        let tar2 = TarBuilder::new().file("plain", b"p", 0o644).finish();
        let d2 = Digest::sha256_of(&tar2);
        unpack_layer(&store, &tar2[..], &LayerSource { diff_id: &d2, blob: Some((&d2, tar2.len() as i64)) }).unwrap();
        assert!(layer_dir(&store, &d2).join("plain").exists());
        remove_layer(&store, &d2).unwrap();
        assert!(!is_unpacked(&store, &d2));
        fs::remove_dir_all(&root).unwrap();
    }

    fn temp_store(name: &str) -> (PathBuf, Store) {
        let root = std::env::temp_dir().join(format!("shoal-unpack-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let store = Store::open(&root).unwrap();
        (root, store)
    }

    fn nothing_kept(root: &Path, store: &Store, diff_id: &Digest) -> bool {
        !is_unpacked(store, diff_id) && fs::read_dir(root.join("tmp")).unwrap().next().is_none()
    }

    #[test]
    fn a_blob_longer_than_the_manifest_says_is_refused() {
        let (root, store) = temp_store("blob-cap");
        let tar = TarBuilder::new().file("hello", b"world", 0o644).finish();
        let gz = gzip(&tar);
        let diff_id = Digest::sha256_of(&tar);
        let blob = Digest::sha256_of(&gz);
        // The registry sends the right layer, then keeps going.
        let mut flood = gz.clone();
        flood.extend(std::iter::repeat_n(0u8, 1 << 20));
        let src = LayerSource { diff_id: &diff_id, blob: Some((&blob, gz.len() as i64)) };
        let e = unpack_layer(&store, &flood[..], &src).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Corrupt);
        assert_eq!(e.message, format!("layer {blob} is larger than the {} bytes its manifest declares", gz.len()));
        assert!(nothing_kept(&root, &store, &diff_id));
        // A manifest that declares less than the layer is: refused mid-stream.
        let src = LayerSource { diff_id: &diff_id, blob: Some((&blob, 20)) };
        let e = unpack_layer(&store, &gz[..], &src).unwrap_err();
        assert_eq!(e.message, format!("layer {blob} is larger than the 20 bytes its manifest declares"));
        assert!(nothing_kept(&root, &store, &diff_id));
        // Exactly the declared size is fine.
        let src = LayerSource { diff_id: &diff_id, blob: Some((&blob, gz.len() as i64)) };
        assert_eq!(unpack_layer(&store, &gz[..], &src).unwrap(), 5);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn unpacked_size_is_capped() {
        let (root, store) = temp_store("unpacked-cap");
        store.set_max_layer_bytes(8192);
        // A gzip bomb in miniature: 64 KiB of zeros in a few hundred bytes.
        let tar = TarBuilder::new().file("small", b"ok", 0o644).file("big", &vec![0u8; 64 << 10], 0o644).finish();
        let gz = gzip(&tar);
        assert!(gz.len() < 1024);
        let diff_id = Digest::sha256_of(&tar);
        let blob = Digest::sha256_of(&gz);
        let src = LayerSource { diff_id: &diff_id, blob: Some((&blob, gz.len() as i64)) };
        let e = unpack_layer(&store, &gz[..], &src).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Corrupt);
        assert!(e.message.contains("big would take the layer past 8192 bytes"), "{e}");
        assert!(nothing_kept(&root, &store, &diff_id));
        // Many entries, no content: the tar stream itself passes the cap.
        let mut many = TarBuilder::new();
        for i in 0..40 {
            many = many.file(&format!("empty{i}"), b"", 0o644);
        }
        let tar = many.finish();
        let diff_id = Digest::sha256_of(&tar);
        let e = unpack_layer(&store, &tar[..], &LayerSource { diff_id: &diff_id, blob: None }).unwrap_err();
        assert_eq!(e.message, format!("layer {diff_id} unpacks to more than 8192 bytes, the most one layer may take"));
        assert!(nothing_kept(&root, &store, &diff_id));
        // Under the cap all is well.
        store.set_max_layer_bytes(1 << 20);
        assert_eq!(unpack_layer(&store, &gz[..], &src).unwrap(), 2 + (64 << 10));
        fs::remove_dir_all(&root).unwrap();

        // Two files each under the cap, together over it.
        let dir = tempdir("cap-sum");
        let tar = TarBuilder::new().file("a", &[1u8; 600], 0o644).file("b", &[2u8; 600], 0o644).finish();
        let e = unpack_tar_limited(&tar[..], &dir, 1000).unwrap_err();
        assert!(e.message.contains("b would take the layer past 1000 bytes"), "{e}");
        assert!(!dir.join("b").exists(), "nothing of the refused entry is written");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time("1700000000.5"), Some((1_700_000_000, 500_000_000)));
        assert_eq!(parse_pax_time("12"), Some((12, 0)));
        assert_eq!(parse_pax_time("x"), None);
    }
}
