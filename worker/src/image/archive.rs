//! `shoal image load -i FILE`: images from a `docker save` archive or an
//! OCI image layout tarball, into this node's store.
//!
//! Two layouts are read:
//!
//! * `docker save`: `manifest.json` lists each image's config file,
//!   `RepoTags` and layer tars (`<id>/layer.tar`, or `blobs/sha256/<hex>`
//!   since Docker 25, which also writes an OCI layout alongside).
//! * OCI layout: `index.json` points (maybe through nested indexes) at
//!   manifests in `blobs/<alg>/<hex>`; the name comes from the
//!   `io.containerd.image.name` or `org.opencontainers.image.ref.name`
//!   annotation.
//!
//! A tar can only be read front to back, and `manifest.json` usually comes
//! last, so the file is read more than once: first for the small JSON
//! documents, then once more to stream each needed layer straight into
//! its layer directory. Nothing of the archive is copied to disk as is.
//! The archive may be gzip-compressed (`docker save | gzip`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path};

use flate2::bufread::MultiGzDecoder;
use serde::Deserialize;

use super::digest::Digest;
use super::error::{ImageError, Result};
use super::manifest::{media_type, ImageConfig, ImageIndex, ImageManifest, Manifest, Platform, MAX_CONFIG_BYTES};
use super::reference::Reference;
use super::store::{ImageRecord, Store};
use super::unpack::{is_unpacked, unpack_layer, LayerSource};

/// Files up to this size are kept in memory on the first read: every
/// JSON document of an archive, and no layer worth mentioning.
const SMALL_FILE: u64 = 1 << 20;
/// Cap on what the first read keeps, whatever the archive holds.
const SMALL_TOTAL: u64 = 64 << 20;

/// One image that was loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedImage {
    pub id: Digest,
    /// Familiar names (`busybox:latest`), as `docker load` prints them.
    pub tags: Vec<String>,
}

impl LoadedImage {
    /// What `docker load` prints for this image.
    pub fn messages(&self) -> Vec<String> {
        if self.tags.is_empty() {
            vec![format!("Loaded image ID: {}", self.id)]
        } else {
            self.tags.iter().map(|t| format!("Loaded image: {t}")).collect()
        }
    }
}

/// `docker save`'s manifest.json entries.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SaveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// One image to load, once the documents are understood.
struct Plan {
    config: Vec<u8>,
    /// Archive paths of the layer blobs, bottom first, with the blob digest
    /// and size when a manifest gave them.
    layers: Vec<(String, Option<(Digest, i64)>)>,
    tags: Vec<Reference>,
    manifest: Option<(Digest, Vec<u8>)>,
}

/// What the archive holds, learned by reading it.
#[derive(Default)]
struct Contents {
    docs: HashMap<String, Vec<u8>>,
    /// Symlinks and hard links: path → path they stand for.
    links: HashMap<String, String>,
    files: HashSet<String>,
}

impl Contents {
    /// Follows links (docker save links identical layers together).
    fn resolve(&self, path: &str) -> String {
        let mut p = normalize(path).unwrap_or_default();
        for _ in 0..40 {
            match self.links.get(&p) {
                Some(next) => p = next.clone(),
                None => break,
            }
        }
        p
    }

    fn doc(&self, path: &str) -> Option<&[u8]> {
        self.docs.get(&self.resolve(path)).map(Vec::as_slice)
    }
}

/// Archive paths as plain relative paths; `None` for names that try to
/// leave the archive (which are then ignored: nothing is written by name).
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

/// Opens the archive, decompressing if it is gzip.
fn open(path: &Path) -> Result<Box<dyn Read>> {
    let f = File::open(path).map_err(|e| ImageError::io(format!("opening {}", path.display()), e))?;
    let mut r = BufReader::with_capacity(256 * 1024, f);
    let gz = r.fill_buf().map(|b| b.starts_with(&[0x1f, 0x8b])).unwrap_or(false);
    Ok(if gz { Box::new(MultiGzDecoder::new(r)) } else { Box::new(r) })
}

fn bad(msg: impl std::fmt::Display) -> ImageError {
    ImageError::invalid(format!("invalid image archive: {msg}"))
}

/// Reads the archive once, keeping small files (and any path in `want`).
fn scan(path: &Path, contents: &mut Contents, want: &HashSet<String>) -> Result<()> {
    let mut archive = tar::Archive::new(open(path)?);
    let mut kept = 0u64;
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let name = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        let Some(name) = normalize(&name) else { continue };
        match entry.header().entry_type() {
            tar::EntryType::Symlink => {
                if let Ok(Some(target)) = entry.link_name() {
                    let dir = Path::new(&name).parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
                    if let Some(t) = normalize(&format!("{dir}/{}", target.to_string_lossy())) {
                        contents.links.insert(name, t);
                    }
                }
            }
            tar::EntryType::Link => {
                if let Ok(Some(target)) = entry.link_name() {
                    if let Some(t) = normalize(&target.to_string_lossy()) {
                        contents.links.insert(name, t);
                    }
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                contents.files.insert(name.clone());
                let size = entry.size();
                let wanted = want.contains(&name);
                let small = size <= SMALL_FILE && kept + size <= SMALL_TOTAL;
                if (wanted || small) && !contents.docs.contains_key(&name) {
                    if size > MAX_CONFIG_BYTES {
                        return Err(bad(format!("{name} is too large for an image document")));
                    }
                    let mut data = Vec::with_capacity(size as usize);
                    entry.read_to_end(&mut data).map_err(bad)?;
                    kept += size;
                    contents.docs.insert(name, data);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Loads every image in the archive at `path`. `platform` picks the entry
/// of multi-platform OCI indexes.
pub fn load(store: &Store, path: &Path, platform: &Platform) -> Result<Vec<LoadedImage>> {
    let mut contents = Contents::default();
    scan(path, &mut contents, &HashSet::new())?;
    // Plans may need documents the first read did not keep (large ones);
    // fetch them and try again, a few rounds at most (nested indexes).
    let plans = loop {
        match plan(&contents, platform)? {
            Ok(plans) => break plans,
            Err(missing) => {
                let missing: HashSet<String> = missing.into_iter().map(|p| contents.resolve(&p)).collect();
                if let Some(absent) = missing.iter().find(|p| !contents.files.contains(*p)) {
                    return Err(bad(format!("{absent} is missing")));
                }
                if missing.iter().all(|p| contents.docs.contains_key(p)) {
                    return Err(bad("inconsistent documents"));
                }
                scan(path, &mut contents, &missing)?;
            }
        }
    };
    if plans.is_empty() {
        return Err(bad("no images found (expected manifest.json or index.json)"));
    }

    // The images' configs name the layers (diff IDs); stream the ones not
    // unpacked yet in one more read of the archive.
    let mut parsed = Vec::new();
    let mut needed: BTreeMap<String, (Digest, Option<(Digest, i64)>)> = BTreeMap::new();
    for p in plans {
        let config = ImageConfig::parse(&p.config).map_err(bad)?;
        if config.rootfs.diff_ids.len() != p.layers.len() {
            return Err(bad(format!("the image config lists {} layers, the manifest {}", config.rootfs.diff_ids.len(), p.layers.len())));
        }
        for ((layer_path, blob), diff_id) in p.layers.iter().zip(&config.rootfs.diff_ids) {
            if !is_unpacked(store, diff_id) {
                let physical = contents.resolve(layer_path);
                if !contents.files.contains(&physical) {
                    return Err(bad(format!("layer {layer_path} is missing")));
                }
                needed.entry(physical).or_insert_with(|| (diff_id.clone(), blob.clone()));
            }
        }
        parsed.push((p, config));
    }
    if !needed.is_empty() {
        let mut archive = tar::Archive::new(open(path)?);
        for entry in archive.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            let name = entry.path().map_err(bad)?.to_string_lossy().into_owned();
            let Some(name) = normalize(&name) else { continue };
            let Some((diff_id, blob)) = needed.get(&name) else { continue };
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let src = LayerSource { diff_id, blob: blob.as_ref().map(|(d, s)| (d, *s)) };
            unpack_layer(store, &mut entry, &src).map_err(|e| e.context(format!("loading layer {name}")))?;
        }
        for (name, (diff_id, _)) in &needed {
            if !is_unpacked(store, diff_id) {
                return Err(bad(format!("layer {name} could not be read")));
            }
        }
    }

    let mut loaded = Vec::new();
    for (p, config) in parsed {
        let id = Digest::sha256_of(&p.config);
        store.write_blob(&id, &p.config)?;
        if let Some((d, bytes)) = &p.manifest {
            store.write_blob(d, bytes)?;
        }
        let size = config.rootfs.diff_ids.iter().map(|d| super::unpack::layer_size(store, d)).sum();
        let record = ImageRecord {
            id: id.clone(),
            repo_tags: Vec::new(),
            repo_digests: Vec::new(),
            manifest: p.manifest.as_ref().map(|(d, _)| d.clone()),
            diff_ids: config.rootfs.diff_ids.clone(),
            size,
            created: config.created.clone(),
            os: config.os.clone(),
            architecture: config.architecture.clone(),
        };
        store.put_image(record, &p.tags)?;
        loaded.push(LoadedImage { id, tags: p.tags.iter().map(Reference::familiar_string).collect() });
    }
    Ok(loaded)
}

/// Works out the images from the documents read so far: `Ok(Ok(plans))`,
/// or `Ok(Err(paths))` when more documents must be read first.
fn plan(c: &Contents, platform: &Platform) -> Result<std::result::Result<Vec<Plan>, Vec<String>>> {
    let mut missing = Vec::new();
    let need = |path: &str, missing: &mut Vec<String>| -> Option<Vec<u8>> {
        let d = c.doc(path).map(<[u8]>::to_vec);
        if d.is_none() {
            missing.push(path.to_string());
        }
        d
    };
    let mut plans = Vec::new();
    if let Some(manifest) = c.doc("manifest.json") {
        let entries: Vec<SaveEntry> = serde_json::from_slice(manifest).map_err(|e| bad(format!("manifest.json: {e}")))?;
        for e in entries {
            let Some(config) = need(&e.config, &mut missing) else { continue };
            let mut tags = Vec::new();
            for t in e.repo_tags.unwrap_or_default() {
                let r = Reference::parse(&t).map_err(|err| bad(format!("invalid tag {t:?}: {err}")))?;
                tags.push(r.with_default_tag());
            }
            plans.push(Plan { config, layers: e.layers.into_iter().map(|l| (l, None)).collect(), tags, manifest: None });
        }
    } else if let Some(index) = c.doc("index.json") {
        let index: ImageIndex = serde_json::from_slice(index).map_err(|e| bad(format!("index.json: {e}")))?;
        for desc in &index.manifests {
            let name = image_name(desc.annotations.as_ref());
            let Some(bytes) = need(&blob_path(&desc.digest), &mut missing) else { continue };
            verify(&desc.digest, &bytes)?;
            // Follow nested indexes down to this platform's manifest.
            let mut current = (desc.digest.clone(), bytes);
            let mut depth = 0;
            let manifest = loop {
                match Manifest::parse(None, &current.1).map_err(bad)? {
                    Manifest::Image(m) => break Some(m),
                    Manifest::Index(inner) => {
                        depth += 1;
                        let Some(entry) = inner.select(platform).filter(|_| depth < 8) else {
                            return Err(bad(format!("no matching manifest for {} in the archive's index", platform.display())));
                        };
                        let Some(b) = need(&blob_path(&entry.digest), &mut missing) else { break None };
                        verify(&entry.digest, &b)?;
                        current = (entry.digest.clone(), b);
                    }
                }
            };
            let Some(m): Option<ImageManifest> = manifest else { continue };
            let Some(config) = need(&blob_path(&m.config.digest), &mut missing) else { continue };
            verify(&m.config.digest, &config)?;
            let layers = m
                .layers
                .iter()
                .filter(|l| l.media_type != media_type::DOCKER_FOREIGN_LAYER)
                .map(|l| (blob_path(&l.digest), Some((l.digest.clone(), l.size))))
                .collect();
            plans.push(Plan { config, layers, tags: name.into_iter().collect(), manifest: Some(current) });
        }
    }
    Ok(if missing.is_empty() { Ok(plans) } else { Err(missing) })
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm().name(), d.hex())
}

fn verify(d: &Digest, data: &[u8]) -> Result<()> {
    let mut h = super::digest::Hasher::new(d.algorithm());
    h.update(data);
    h.finish().expect(d).map_err(|e| bad(format!("blob {d}: {e}")))
}

/// The image name an OCI layout gives an index entry, if any. A bare tag
/// (`latest`) in `org.opencontainers.image.ref.name` names no repository.
fn image_name(annotations: Option<&BTreeMap<String, String>>) -> Option<Reference> {
    let a = annotations?;
    let full = a
        .get("io.containerd.image.name")
        .or_else(|| a.get("org.opencontainers.image.ref.name").filter(|n| n.contains('/') || n.contains(':')))?;
    Reference::parse(full).ok().map(Reference::with_default_tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::unpack::layer_dir;
    use crate::image::unpack::tests::{gzip, TarBuilder};
    use std::fs;

    fn temp(name: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("shoal-archive-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        p
    }

    /// Writes an outer archive from (name, content) pairs and symlinks.
    fn outer(files: &[(&str, Vec<u8>)], links: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, &data[..]).unwrap();
        }
        for (name, target) in links {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, name, target).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn config(diff_ids: &[&Digest]) -> Vec<u8> {
        let ids: Vec<String> = diff_ids.iter().map(|d| format!("\"{d}\"")).collect();
        format!(
            r#"{{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z","config":{{"Cmd":["sh"]}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
            ids.join(",")
        )
        .into_bytes()
    }

    #[test]
    fn loads_a_docker_save_archive_with_linked_layers() {
        let dir = temp("docker");
        let store = Store::open(dir.join("store")).unwrap();
        let l1 = TarBuilder::new().file("bin/sh", b"shell", 0o755).finish();
        let l2 = TarBuilder::new().file("bin/.wh.sh", b"", 0o644).file("etc/motd", b"hi", 0o644).finish();
        let (d1, d2) = (Digest::sha256_of(&l1), Digest::sha256_of(&l2));
        // Second image reuses layer 1 through a symlink, as docker save does.
        let cfg_a = config(&[&d1, &d2]);
        let cfg_b = config(&[&d1]);
        let id_a = Digest::sha256_of(&cfg_a);
        let id_b = Digest::sha256_of(&cfg_b);
        let manifest = format!(
            r#"[{{"Config":"{}.json","RepoTags":["busybox:latest","localhost:5000/app:1"],"Layers":["aaa/layer.tar","bbb/layer.tar"]}},
               {{"Config":"{}.json","RepoTags":null,"Layers":["ccc/layer.tar"]}}]"#,
            id_a.hex(),
            id_b.hex()
        );
        let archive = outer(
            &[
                ("aaa/layer.tar", l1.clone()),
                ("bbb/layer.tar", l2),
                (&format!("{}.json", id_a.hex()), cfg_a),
                (&format!("{}.json", id_b.hex()), cfg_b),
                ("manifest.json", manifest.into_bytes()),
            ],
            &[("ccc/layer.tar", "../aaa/layer.tar")],
        );
        let file = dir.join("save.tar.gz");
        fs::write(&file, gzip(&archive)).unwrap();
        let loaded = load(&store, &file, &Platform::for_arch("x86_64")).unwrap();
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[0].messages(), vec!["Loaded image: busybox:latest", "Loaded image: localhost:5000/app:1"]);
        assert_eq!(loaded[1].messages(), vec![format!("Loaded image ID: {id_b}")]);
        let img = store.lookup("busybox").unwrap();
        assert_eq!(img.id, id_a);
        assert_eq!(img.diff_ids, vec![d1.clone(), d2.clone()]);
        assert_eq!(img.size, 7);
        assert_eq!(store.lookup("localhost:5000/app:1").unwrap().id, id_a);
        assert!(store.has_blob(&id_a));
        assert_eq!(fs::read(layer_dir(&store, &d1).join("bin/sh")).unwrap(), b"shell");
        assert!(store.get(&id_b).is_some());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn loads_an_oci_layout_with_a_multi_platform_index() {
        let dir = temp("oci");
        let store = Store::open(dir.join("store")).unwrap();
        let layer = TarBuilder::new().file("arch", b"amd64", 0o644).finish();
        let gz = gzip(&layer);
        let diff = Digest::sha256_of(&layer);
        let blob = Digest::sha256_of(&gz);
        let cfg = config(&[&diff]);
        let cfg_d = Digest::sha256_of(&cfg);
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{cfg_d}","size":{}}},"layers":[{{"mediaType":"{}","digest":"{blob}","size":{}}}]}}"#,
            media_type::OCI_MANIFEST,
            media_type::OCI_CONFIG,
            cfg.len(),
            media_type::OCI_LAYER_GZIP,
            gz.len()
        );
        let m_d = Digest::sha256_of(manifest.as_bytes());
        let other = Digest::sha256_of(b"arm manifest that is not in the archive");
        let inner = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[
              {{"mediaType":"{}","digest":"{other}","size":10,"platform":{{"os":"linux","architecture":"arm64"}}}},
              {{"mediaType":"{}","digest":"{m_d}","size":{},"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
            media_type::OCI_INDEX,
            media_type::OCI_MANIFEST,
            media_type::OCI_MANIFEST,
            manifest.len()
        );
        let inner_d = Digest::sha256_of(inner.as_bytes());
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{inner_d}","size":{},
              "annotations":{{"io.containerd.image.name":"docker.io/library/multi:1","org.opencontainers.image.ref.name":"1"}}}}]}}"#,
            media_type::OCI_INDEX,
            inner.len()
        );
        let bp = |d: &Digest| format!("blobs/sha256/{}", d.hex());
        let archive = outer(
            &[
                ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
                ("index.json", index.into_bytes()),
                (&bp(&inner_d), inner.into_bytes()),
                (&bp(&m_d), manifest.into_bytes()),
                (&bp(&cfg_d), cfg),
                (&bp(&blob), gz),
            ],
            &[],
        );
        let file = dir.join("oci.tar");
        fs::write(&file, &archive).unwrap();
        let loaded = load(&store, &file, &Platform::for_arch("x86_64")).unwrap();
        assert_eq!(loaded[0].tags, vec!["multi:1"]);
        let img = store.lookup("multi:1").unwrap();
        assert_eq!(img.id, cfg_d);
        assert_eq!(img.manifest, Some(m_d));
        assert_eq!(fs::read(layer_dir(&store, &diff).join("arch")).unwrap(), b"amd64");
        // For arm64 the chosen manifest is not in the archive.
        let e = load(&store, &file, &Platform::for_arch("aarch64")).unwrap_err();
        assert!(e.message.contains("is missing"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_broken_archives() {
        let dir = temp("broken");
        let store = Store::open(dir.join("store")).unwrap();
        let file = dir.join("a.tar");
        fs::write(&file, outer(&[("hello.txt", b"x".to_vec())], &[])).unwrap();
        let e = load(&store, &file, &Platform::host()).unwrap_err();
        assert!(e.message.contains("no images found"), "{e}");

        // A layer whose content does not match the config's diff ID.
        let layer = TarBuilder::new().file("f", b"1", 0o644).finish();
        let cfg = config(&[&Digest::sha256_of(b"something else")]);
        let manifest = r#"[{"Config":"c.json","RepoTags":["x:1"],"Layers":["l/layer.tar"]}]"#;
        fs::write(&file, outer(&[("l/layer.tar", layer), ("c.json", cfg), ("manifest.json", manifest.into())], &[])).unwrap();
        let e = load(&store, &file, &Platform::host()).unwrap_err();
        assert!(e.message.contains("diff ID"), "{e}");
        assert!(store.lookup("x:1").is_none());

        let manifest = r#"[{"Config":"c.json","RepoTags":["Bad:1"],"Layers":[]}]"#;
        fs::write(&file, outer(&[("c.json", config(&[])), ("manifest.json", manifest.into())], &[])).unwrap();
        let e = load(&store, &file, &Platform::host()).unwrap_err();
        assert!(e.message.contains("must be lowercase"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
