//! Property tests ("fuzzing" with proptest, see docs/fuzzing.md) of what a
//! registry, an archive or a user controls in image handling: references
//! of any text, manifests, indexes and configs of any JSON, and layers of
//! any small tar archive — unpacking never panics and never touches
//! anything outside its destination.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use serde_json::Value;
use tar::EntryType;

use super::digest::Digest;
use super::manifest::{ImageConfig, Manifest, Platform};
use super::reference::Reference;
use super::unpack::{unpack_tar, unpack_tar_limited};

/// `PROPTEST_CASES` overrides the default count (for longer runs); no
/// failure files are written (CI must stay deterministic).
fn config(default_cases: u32) -> ProptestConfig {
    let base = ProptestConfig::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() { base.cases } else { default_cases };
    ProptestConfig { cases, failure_persistence: None, ..base }
}

// ------------------------------------------------------------ references

const HEX64: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn reference_text() -> impl Strategy<Value = String> {
    let domain = prop::sample::select(vec![
        "",
        "localhost/",
        "localhost:5000/",
        "example.com/",
        "Example.com:443/",
        "[::1]:5000/",
        "[::1/",
        "index.docker.io/",
        "docker.io/",
        "a-b.c/",
        "-a.b/",
        "a:b:c/",
        "registry:/",
        "UPPER/",
    ]);
    let component = prop_oneof![
        prop::sample::select(vec![
            "library", "busybox", "a", "a_b", "a__b", "a___b", "a-b", "a--b", "a.b", "a..b", "A", "_a", "a_", "0", ""
        ])
        .prop_map(str::to_string),
        "[a-z0-9._-]{1,6}",
    ];
    let path = prop::collection::vec(component, 1..4).prop_map(|c| c.join("/"));
    let tag = prop_oneof![
        Just(String::new()),
        prop::sample::select(vec![":latest", ":v1.0", ":-x", ":_x", ":", ":a@b"]).prop_map(str::to_string),
        "[a-zA-Z0-9_.-]{1,10}".prop_map(|t| format!(":{t}")),
        (1usize..140).prop_map(|n| format!(":{}", "t".repeat(n))),
    ];
    let digest = prop_oneof![
        Just(String::new()),
        Just(format!("@sha256:{HEX64}")),
        Just(format!("@sha512:{HEX64}{HEX64}")),
        Just(format!("@sha256:{}", &HEX64[..40])),
        Just(format!("@SHA256:{HEX64}")),
        Just("@sha256:".to_string()),
        "[a-z0-9+._-]{1,8}:[0-9a-fA-F]{30,70}".prop_map(|d| format!("@{d}")),
    ];
    prop_oneof![
        6 => (domain, path, tag, digest).prop_map(|(d, p, t, g)| format!("{d}{p}{t}{g}")),
        1 => ".{0,40}",
        1 => "[a-zA-Z0-9:/@._-]{0,40}",
        1 => Just(HEX64.to_string()),
        1 => (1usize..300).prop_map(|n| format!("example.com/{}", "a".repeat(n))),
    ]
}

// ------------------------------------------------------------ manifests

const MANIFEST_SEEDS: &[(&str, &str)] = &[
    (
        "application/vnd.oci.image.manifest.v1+json",
        r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
           "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","size":1469},
           "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","size":2,"urls":["https://x"],"annotations":{"a":"b"}}],
           "annotations":{"k":"v"}}"#,
    ),
    (
        "application/vnd.docker.distribution.manifest.list.v2+json",
        r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[
           {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","size":7,
            "platform":{"architecture":"amd64","os":"linux"}},
           {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","size":7,
            "platform":{"architecture":"arm","os":"linux","variant":"v7","os.version":"1"}},
           {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","size":7,
            "platform":{"architecture":"unknown","os":"unknown"}}]}"#,
    ),
    ("", r#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#),
    (
        "application/vnd.oci.image.config.v1+json",
        r#"{"architecture":"amd64","os":"linux","variant":"v8","created":"2024-01-01T00:00:00Z","author":"me",
           "config":{"User":"1000","Env":["PATH=/bin"],"Cmd":["sh"],"Entrypoint":null,"WorkingDir":"/","ExposedPorts":{"80/tcp":{}},
             "Volumes":{"/data":{}},"Labels":{"a":"b"},"StopSignal":"SIGTERM","Shell":["/bin/sh","-c"],
             "Healthcheck":{"Test":["CMD","true"],"Interval":1,"Timeout":2,"StartPeriod":3,"StartInterval":4,"Retries":5}},
           "rootfs":{"type":"layers","diff_ids":["sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"]}}"#,
    ),
];

const MANIFEST_FIELDS: &[&str] = &[
    "schemaVersion",
    "mediaType",
    "config",
    "layers",
    "manifests",
    "digest",
    "size",
    "platform",
    "architecture",
    "os",
    "variant",
    "os.version",
    "urls",
    "annotations",
    "rootfs",
    "diff_ids",
    "type",
    "Env",
    "Cmd",
    "Entrypoint",
    "Healthcheck",
    "Test",
    "User",
    "ExposedPorts",
    "Volumes",
    "Labels",
];

const MANIFEST_WORDS: &[&str] = &[
    "",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "sha256:00",
    "sha256:",
    "md5:0123456789abcdef0123456789abcdef",
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeF",
    "linux",
    "amd64",
    "arm64",
    "v8",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop_oneof![Just(1u64), Just(2), Just(u32::MAX as u64 + 2), Just(u64::MAX)].prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        prop::sample::select(MANIFEST_WORDS).prop_map(Value::from),
        ".{0,10}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(MANIFEST_FIELDS).prop_map(str::to_string), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every place in a JSON tree, as the path of keys and indexes to it.
fn places(v: &Value, here: &mut Vec<Result<String, usize>>, out: &mut Vec<Vec<Result<String, usize>>>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                here.push(Ok(k.clone()));
                places(c, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                here.push(Err(i));
                places(c, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn at<'a>(v: &'a mut Value, path: &[Result<String, usize>]) -> &'a mut Value {
    path.iter().fold(v, |v, step| match step {
        Ok(k) => &mut v[k.as_str()],
        Err(i) => &mut v[*i],
    })
}

/// A content type and a document: a seed with a few places replaced,
/// nulled, removed or given a new field; or any JSON; or any bytes.
fn manifest_doc() -> impl Strategy<Value = (Option<String>, Vec<u8>)> {
    let content_type = prop_oneof![
        Just(None),
        prop::sample::select(MANIFEST_WORDS).prop_map(|w| Some(format!("{w}; charset=utf-8"))),
        ".{0,10}".prop_map(Some),
    ];
    let seeded = (
        prop::sample::select(MANIFEST_SEEDS),
        any::<bool>(),
        prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, json_value(), prop::sample::select(MANIFEST_FIELDS)), 0..4),
    )
        .prop_map(|((ct, seed), keep_type, edits)| {
            let mut doc: Value = serde_json::from_str(seed).unwrap();
            for (which, how, value, field) in edits {
                let mut all = Vec::new();
                places(&doc, &mut Vec::new(), &mut all);
                let path = which.get(&all).clone();
                match (how, path.split_last()) {
                    (0, Some((last, parent))) => match at(&mut doc, parent) {
                        Value::Object(m) => {
                            m.remove(last.as_ref().unwrap());
                        }
                        Value::Array(a) => {
                            a.remove(*last.as_ref().unwrap_err());
                        }
                        _ => {}
                    },
                    (1, _) => *at(&mut doc, &path) = Value::Null,
                    (2, _) => {
                        if let Value::Object(m) = at(&mut doc, &path) {
                            m.insert(field.to_string(), value);
                        }
                    }
                    _ => *at(&mut doc, &path) = value,
                }
            }
            (keep_type.then(|| ct.to_string()), serde_json::to_vec(&doc).unwrap())
        });
    prop_oneof![
        4 => seeded,
        1 => (content_type.clone(), json_value().prop_map(|v| serde_json::to_vec(&v).unwrap())),
        1 => (content_type, prop::collection::vec(any::<u8>(), 0..64)),
    ]
}

// ------------------------------------------------------------ layers

/// One tar entry as an attacker may write it.
#[derive(Clone, Debug)]
enum Entry {
    File(String, Vec<u8>),
    Dir(String),
    Symlink(String, String),
    Hardlink(String, String),
    Device(String, EntryType, u32, u32),
    Fifo(String),
}

/// Where the sandbox's canary is: link targets naming it by absolute path
/// are written as this placeholder and filled in per case.
const CANARY: &str = "@CANARY@";

/// Mostly names that stay inside (so that archives get past their first
/// entries and later ones meet earlier symlinks), now and then a hostile
/// one: `..`, absolute, or a whiteout naming nothing.
fn entry_name() -> impl Strategy<Value = String> {
    let clean = prop::sample::select(vec![
        "a",
        "b",
        "lnk",
        "up",
        "a",
        "b",
        "lnk",
        "up",
        "etc",
        ".",
        ".wh.a",
        ".wh.lnk",
        ".wh.up",
        ".wh..wh..opq",
        ".wh..wh.plnk",
    ]);
    let hostile = prop::sample::select(vec!["..", "", ".wh.", ".wh..", ".wh...", ".wh.a/b"]);
    let component = prop_oneof![16 => clean, 1 => hostile];
    let lead = prop_oneof![12 => prop::sample::select(vec!["", "./"]), 1 => prop::sample::select(vec!["/", "../"])];
    (lead, prop::collection::vec(component, 1..4), any::<bool>())
        .prop_map(|(lead, parts, dir)| format!("{lead}{}{}", parts.join("/"), if dir { "/" } else { "" }))
        .prop_filter("fits a ustar name", |n| !n.is_empty() && n.len() < 100)
}

fn link_target() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["/", "/etc", "..", "../..", "../../..", "a", "a/b", "lnk", "lnk/..", "./a", "/a/../..", "up/../..", "../canary", ""])
            .prop_map(str::to_string),
        1 => Just(CANARY.to_string()),
        1 => Just(format!("{CANARY}/keep")),
        2 => entry_name(),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        3 => (entry_name(), prop::collection::vec(any::<u8>(), 0..20)).prop_map(|(n, d)| Entry::File(n, d)),
        2 => entry_name().prop_map(Entry::Dir),
        3 => (entry_name(), link_target()).prop_map(|(n, t)| Entry::Symlink(n, t)),
        2 => (entry_name(), prop_oneof![4 => entry_name(), 1 => link_target()]).prop_map(|(n, t)| Entry::Hardlink(n, t)),
        1 => (entry_name(), prop::sample::select(vec![(EntryType::Char, 1, 3), (EntryType::Char, 0, 0), (EntryType::Block, 7, 200)]))
            .prop_map(|(n, (k, ma, mi))| Entry::Device(n, k, ma, mi)),
        1 => entry_name().prop_map(Entry::Fifo),
    ]
}

fn header(name: &str, kind: EntryType, size: u64, link: &str) -> Option<tar::Header> {
    let mut h = tar::Header::new_ustar();
    // Names are written raw: the tar crate's setters refuse `..`.
    h.as_mut_bytes()[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(if kind == EntryType::Directory { 0o755 } else { 0o644 });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    if !link.is_empty() {
        // Raw as well (a link name of up to 100 bytes).
        let bytes = link.as_bytes();
        if bytes.len() > 100 {
            return None;
        }
        h.as_old_mut().linkname[..bytes.len()].copy_from_slice(bytes);
    }
    h.set_cksum();
    Some(h)
}

fn archive(entries: &[Entry], canary: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let canary = canary.display().to_string();
    for e in entries {
        let (h, data) = match e {
            Entry::File(n, d) => (header(n, EntryType::Regular, d.len() as u64, ""), d.clone()),
            Entry::Dir(n) => (header(n, EntryType::Directory, 0, ""), Vec::new()),
            Entry::Symlink(n, t) => (header(n, EntryType::Symlink, 0, &t.replace(CANARY, &canary)), Vec::new()),
            Entry::Hardlink(n, t) => (header(n, EntryType::Link, 0, &t.replace(CANARY, &canary)), Vec::new()),
            Entry::Device(n, k, ma, mi) => {
                let h = header(n, *k, 0, "").map(|mut h| {
                    h.set_device_major(*ma).unwrap();
                    h.set_device_minor(*mi).unwrap();
                    h.set_cksum();
                    h
                });
                (h, Vec::new())
            }
            Entry::Fifo(n) => (header(n, EntryType::Fifo, 0, ""), Vec::new()),
        };
        let Some(h) = h else { continue };
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&data);
        out.extend(std::iter::repeat_n(0u8, (512 - data.len() % 512) % 512));
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

/// What a file system tree looks like, entry by entry (not following
/// symlinks): kind and mode, size, link count, inode, content or link
/// target.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u32, u64, u64, u64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let Ok(m) = fs::symlink_metadata(&p) else { continue };
        let body = if m.file_type().is_symlink() {
            fs::read_link(&p).unwrap().into_os_string().into_encoded_bytes()
        } else if m.is_file() {
            fs::read(&p).unwrap()
        } else {
            Vec::new()
        };
        if m.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                todo.push(e.unwrap().path());
            }
        }
        out.insert(p.strip_prefix(root).unwrap().to_path_buf(), (m.mode(), m.len(), m.nlink(), m.ino(), body));
    }
    out
}

/// A relative symlink's target, read lexically from where the link is:
/// does it climb above `root`? (Absolute targets are read inside the
/// container's root, so they cannot.)
fn climbs_out(link_rel: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth = link_rel.components().count() as isize - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

static CASE: AtomicUsize = AtomicUsize::new(0);

/// A fresh `sandbox/{dest,canary}` for one case.
fn sandbox() -> (PathBuf, PathBuf, PathBuf) {
    let n = CASE.fetch_add(1, Ordering::Relaxed);
    let root = std::env::temp_dir().join(format!("shoal-fuzz-unpack-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    let (dest, canary) = (root.join("dest"), root.join("canary"));
    fs::create_dir_all(&dest).unwrap();
    fs::create_dir_all(canary.join("sub")).unwrap();
    fs::write(canary.join("keep"), b"canary").unwrap();
    std::os::unix::fs::symlink("keep", canary.join("sub/link")).unwrap();
    (root, dest, canary)
}

proptest! {
    #![proptest_config(config(512))]

    /// Any text parses as a reference or is refused with Docker's words;
    /// what parses formats (in full and in Docker's short form) to text
    /// that parses back to the same reference.
    #[test]
    fn references_parse_and_reformat(s in reference_text()) {
        if let Ok(r) = Reference::parse(&s) {
            prop_assert_eq!(Reference::parse(&r.to_string()), Ok(r.clone()), "full form of {}", s);
            // Docker's familiar form is for display, and ambiguous for Hub
            // repositories whose first component looks like a host
            // (`docker.io/a.b/c` shows as `a.b/c`, which names host `a.b`):
            // Docker's own `FamiliarString` does the same.
            let familiar = r.familiar_name();
            let first = familiar.split_once('/').map(|(f, _)| f);
            if !first.is_some_and(|f| f == "localhost" || f.contains(['.', ':'])) {
                prop_assert_eq!(Reference::parse(&r.familiar_string()), Ok(r.clone()), "familiar form of {}", s);
            }
            let _ = (r.registry_host(), r.manifest_reference(), r.familiar_name());
            let pulled = r.clone().with_default_tag();
            prop_assert_eq!(Reference::parse(&pulled.to_string()), Ok(pulled.clone()));
        }
        let _ = Reference::parse_for_pull(&s);
        let _ = Digest::parse(&s);
    }

    /// Any document parses as a manifest, an index or a config, or is
    /// refused; a platform is chosen from any index without panicking.
    #[test]
    fn manifests_and_configs_parse((content_type, doc) in manifest_doc()) {
        if let Ok(Manifest::Index(ix)) = Manifest::parse(content_type.as_deref(), &doc) {
            for p in [Platform::host(), Platform::for_arch("arm"), Platform::for_arch("aarch64"), Platform::default()] {
                let _ = ix.select(&p);
            }
        }
        let _ = ImageConfig::parse(&doc);
    }
}

proptest! {
    // Each case unpacks into a fresh directory: fewer cases by default.
    #![proptest_config(config(256))]

    /// Any small archive of hostile entries unpacks or is refused without
    /// panicking, and never changes anything outside its destination: the
    /// sibling canary keeps every entry, mode, link count and byte, nothing
    /// else appears beside the destination, no hard link inside shares an
    /// inode with a file outside, and no relative symlink that landed where
    /// the archive named it climbs out (Docker's rule; one that landed
    /// through an earlier symlink may: see docs/fuzzing.md).
    #[test]
    fn layers_unpack_inside_their_directory(
        entries in prop::collection::vec(entry(), 0..9),
        flips in prop_oneof![6 => Just(Vec::new()), 1 => prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..3)],
        limited in any::<bool>(),
    ) {
        let (root, dest, canary) = sandbox();
        let before = snapshot(&canary);
        let mut tar = archive(&entries, &canary);
        // Now and then a damaged header or body, too.
        for (at, byte) in &flips {
            let i = at.index(tar.len());
            tar[i] = *byte;
        }
        let result = if limited { unpack_tar_limited(&tar[..], &dest, 24) } else { unpack_tar(&tar[..], &dest) };
        // Docker's rule for symlinks, where a link landed at the name the
        // archive gave it (no symlink on the way there).
        let mut landed = Vec::new();
        for e in &entries {
            if let Entry::Symlink(name, _) = e {
                let rel: PathBuf = Path::new(name).components().filter(|c| matches!(c, Component::Normal(_))).collect();
                let direct = Path::new(name).components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
                let mut ok = direct && !rel.as_os_str().is_empty();
                let mut cur = dest.clone();
                for c in rel.parent().into_iter().flat_map(|p| p.components()) {
                    cur.push(c);
                    ok &= fs::symlink_metadata(&cur).is_ok_and(|m| m.is_dir());
                }
                if let (true, Ok(target)) = (ok, fs::read_link(dest.join(&rel))) {
                    landed.push((rel, target));
                }
            }
        }
        let after = snapshot(&canary);
        let beside: Vec<_> = fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name()).collect();
        let inside = snapshot(&dest);
        let _ = fs::remove_dir_all(&root);

        prop_assert_eq!(before, after, "the canary changed ({:?})", result);
        prop_assert_eq!(beside.len(), 2, "{:?}", beside);
        for (rel, target) in &landed {
            prop_assert!(!climbs_out(rel, target), "{} -> {} climbs out ({:?})", rel.display(), target.display(), result);
        }
        // Hard links: every link of a file in the destination is in it.
        let mut seen: BTreeMap<(u64, u64), u64> = BTreeMap::new();
        for (mode, _, nlink, ino, _) in inside.values() {
            match mode & libc::S_IFMT {
                libc::S_IFDIR => {}
                _ => *seen.entry((*ino, *nlink)).or_default() += 1,
            }
        }
        for ((ino, nlink), count) in seen {
            prop_assert_eq!(count, nlink, "inode {} has links outside the destination", ino);
        }
    }
}
