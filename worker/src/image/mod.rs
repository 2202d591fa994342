//! Images on a worker: pull from OCI registries, load from archives, store
//! by digest, unpack layers once, and give each container an overlayfs
//! root file system.
//!
//! | module | what |
//! |---|---|
//! | `reference` | `busybox` → `docker.io/library/busybox:latest`, Docker's rules and errors |
//! | `digest` | `sha256:…` digests; hashing while streaming |
//! | `http`, `tls` | the registry's HTTP client (URLs, redirects, Go-style errors) over the shared blocking client on hyper; rustls for https registries |
//! | `auth` | `X-Registry-Auth` credentials, `WWW-Authenticate` challenges |
//! | `manifest` | manifests, indexes, image config, platform matching |
//! | `registry` | the registry API v2: ping, token auth, manifests, blobs |
//! | `store` | content by digest and the image index, written atomically |
//! | `unpack` | layer tars → directories, whiteouts → overlayfs form |
//! | `rootfs` | per-container overlay mounts |
//! | `archive` | `docker save` / OCI layout tarballs (`shoal image load`) |
//!
//! [`ImageService`] ties them together. Its methods block (network, disk,
//! decompression): from async code, call them in
//! `tokio::task::spawn_blocking` with the service in an `Arc`.

pub mod archive;
pub mod auth;
pub mod digest;
pub mod distribution;
pub mod error;
#[cfg(test)]
mod fuzz_tests;
pub mod http;
pub mod manifest;
pub mod reference;
pub mod registry;
pub mod rootfs;
pub mod store;
pub mod tls;
pub mod unpack;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

pub use archive::LoadedImage;
pub use auth::AuthConfig;
pub use digest::Digest;
pub use error::{ErrorKind, ImageError, Result};
pub use manifest::{ContainerConfig, ImageConfig, Platform};
pub use reference::Reference;
pub use registry::RegistryConfig;
pub use rootfs::Rootfs;
pub use store::ImageRecord;

use manifest::{media_type, MAX_CONFIG_BYTES};
use registry::Registry;
use store::Store;
use unpack::{is_unpacked, unpack_layer, LayerSource};

/// An image on this node: its record and its parsed configuration.
#[derive(Clone, Debug)]
pub struct Image {
    pub record: ImageRecord,
    pub config: ImageConfig,
}

impl Image {
    /// Docker's image ID: the config digest.
    pub fn id(&self) -> &Digest {
        &self.record.id
    }
}

/// One line of pull progress, shaped like the Engine API's JSON message
/// (`{"status": ..., "id": ..., "progressDetail": {"current", "total"}}`)
/// so the daemon can stream it to `docker pull` as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgressMessage {
    /// A layer's short ID, or the tag, or nothing for whole-pull lines.
    pub id: Option<String>,
    pub status: String,
    pub current: Option<u64>,
    pub total: Option<u64>,
}

impl ProgressMessage {
    fn new(id: Option<String>, status: impl Into<String>) -> Self {
        ProgressMessage { id, status: status.into(), current: None, total: None }
    }
}

/// The worker's image service.
pub struct ImageService {
    store: Store,
    registry: Registry,
    platform: Platform,
    /// One lock per layer being unpacked, so concurrent pulls of images
    /// that share a layer download it once.
    unpacking: Mutex<HashMap<Digest, Arc<Mutex<()>>>>,
    /// Pulls and loads hold this shared, garbage collection exclusively: a
    /// layer unpacked by a pull is not referenced by any image until the
    /// pull records it, and must not be collected in between.
    gc: RwLock<()>,
    /// Where `pull`, `load`, `tag`, `untag` and `delete` events go.
    events: std::sync::OnceLock<Arc<dyn shoal_api::event::EventSink>>,
}

impl ImageService {
    /// Opens the image store at `root` (e.g. `<data-root>/image`).
    pub fn open(root: impl Into<PathBuf>, registries: &RegistryConfig) -> Result<ImageService> {
        Ok(ImageService {
            store: Store::open(root)?,
            registry: Registry::new(registries),
            platform: Platform::host(),
            unpacking: Mutex::new(HashMap::new()),
            gc: RwLock::new(()),
            events: std::sync::OnceLock::new(),
        })
    }

    /// Pulls for another platform than the host's (tests; emulation).
    pub fn with_platform(mut self, platform: Platform) -> Self {
        self.platform = platform;
        self
    }

    /// Sends this node's image events to `sink` (once; later calls are ignored).
    pub fn set_events(&self, sink: Arc<dyn shoal_api::event::EventSink>) {
        let _ = self.events.set(sink);
    }

    /// moby's `LogImageEvent`: the image's labels (while it still exists)
    /// and `name`.
    fn log_event(&self, action: &str, id: &str, name: &str) {
        let Some(sink) = self.events.get() else { return };
        let mut attrs = self.get(id).ok().and_then(|i| i.config.config.map(|c| c.labels)).unwrap_or_default();
        attrs.insert("name".into(), name.to_string());
        sink.publish(shoal_api::event::Message::local("image", action, id, attrs));
    }

    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// What the registry says `name` is (`GET /distribution/{name}/json`).
    pub fn distribution_inspect(
        &self,
        name: &str,
        auth: Option<&AuthConfig>,
    ) -> std::result::Result<distribution::DistributionInspect, distribution::InspectError> {
        distribution::inspect(&self.registry, name, auth)
    }

    /// Pulls `reference` (as a user wrote it: `busybox`, `host:5000/x:1`,
    /// `x@sha256:…`) for this node's platform.
    pub fn pull(&self, reference: &str, auth: Option<&AuthConfig>) -> Result<Image> {
        self.pull_with_progress(reference, auth, &mut |_| {})
    }

    /// [`ImageService::pull`], reporting progress as `docker pull` shows it.
    /// Timed as Docker's `engine_daemon_image_actions_seconds{action="pull"}`.
    pub fn pull_with_progress(
        &self,
        reference: &str,
        auth: Option<&AuthConfig>,
        progress: &mut dyn FnMut(ProgressMessage),
    ) -> Result<Image> {
        let started = std::time::Instant::now();
        let r = self.pull_inner(reference, auth, progress);
        shoal_metrics::get().image_pull(started.elapsed().as_secs_f64(), r.is_ok());
        r
    }

    fn pull_inner(&self, reference: &str, auth: Option<&AuthConfig>, progress: &mut dyn FnMut(ProgressMessage)) -> Result<Image> {
        let r = Reference::parse_for_pull(reference)?;
        let _gc = self.gc.read().unwrap_or_else(|e| e.into_inner());
        let what = r.tag().filter(|_| r.digest().is_none()).map(str::to_string).unwrap_or_else(|| r.manifest_reference());
        progress(ProgressMessage::new(Some(what), format!("Pulling from {}", r.path())));
        let mut repo = self.registry.repository(&r, auth)?;
        let resolved = repo.resolve(&self.platform)?;
        let m = &resolved.manifest;
        let mut downloaded = false;

        // The config: small, kept as a blob (its digest is the image ID).
        let config_bytes = if self.store.has_blob(&m.config.digest) {
            self.store.read_blob(&m.config.digest)?
        } else {
            downloaded = true;
            let bytes = repo.fetch_blob_bytes(&m.config, MAX_CONFIG_BYTES).map_err(|e| e.context("error pulling image configuration"))?;
            self.store.write_blob(&m.config.digest, &bytes)?;
            bytes
        };
        let config = ImageConfig::parse(&config_bytes).map_err(ImageError::corrupt)?;
        if config.os != self.platform.os || config.architecture != self.platform.architecture {
            // Docker pulls it anyway and warns; running it may need emulation.
            tracing::warn!(
                image = %r,
                wanted = %self.platform.display(),
                actual = %format!("{}/{}", config.os, config.architecture),
                "image's platform does not match the node's"
            );
        }
        let layers: Vec<_> = m.layers.iter().filter(|l| l.media_type != media_type::DOCKER_FOREIGN_LAYER).collect();
        if layers.len() != config.rootfs.diff_ids.len() {
            return Err(ImageError::corrupt(format!(
                "layers from manifest don't match image configuration ({} layers, {} diff IDs)",
                layers.len(),
                config.rootfs.diff_ids.len()
            )));
        }

        // Layers: skip those already unpacked (by diff ID), say so first
        // for all of them as Docker does, then fetch the rest in order.
        for (desc, diff_id) in layers.iter().zip(&config.rootfs.diff_ids) {
            let status = if is_unpacked(&self.store, diff_id) { "Already exists" } else { "Pulling fs layer" };
            progress(ProgressMessage::new(Some(desc.digest.short().to_string()), status));
        }
        for (desc, diff_id) in layers.iter().zip(&config.rootfs.diff_ids) {
            if is_unpacked(&self.store, diff_id) {
                continue;
            }
            let lock = self.layer_lock(diff_id);
            let _guard = lock.lock().unwrap();
            if is_unpacked(&self.store, diff_id) {
                // Another pull finished it while we waited.
                progress(ProgressMessage::new(Some(desc.digest.short().to_string()), "Already exists"));
                continue;
            }
            downloaded = true;
            let short = desc.digest.short().to_string();
            let stream = repo.fetch_blob(desc)?;
            let total = stream.length.or((desc.size >= 0).then_some(desc.size as u64));
            let reader = ProgressReader { inner: stream.body, id: &short, done: 0, reported: 0, total, progress };
            let src = LayerSource { diff_id, blob: Some((&desc.digest, desc.size)) };
            unpack_layer(&self.store, reader, &src)?;
            progress(ProgressMessage::new(Some(short), "Pull complete"));
        }
        self.forget_layer_locks();

        // Manifests last: an image is recorded only once everything it
        // needs is on disk.
        self.store.write_blob(&resolved.manifest_digest, &resolved.manifest_bytes)?;
        if let Some((d, bytes)) = &resolved.index {
            self.store.write_blob(d, bytes)?;
        }
        let repo_digest = r.with_digest(resolved.repo_digest.clone());
        let tags: Vec<Reference> = if r.digest().is_none() { vec![r.clone()] } else { Vec::new() };
        let was = self.store.lookup(&r.to_string()).map(|i| i.id);
        let size = config.rootfs.diff_ids.iter().map(|d| unpack::layer_size(&self.store, d)).sum();
        let record = ImageRecord {
            id: m.config.digest.clone(),
            repo_tags: Vec::new(),
            repo_digests: vec![repo_digest.to_string()],
            manifest: Some(resolved.manifest_digest.clone()),
            diff_ids: config.rootfs.diff_ids.clone(),
            size,
            created: config.created.clone(),
            os: config.os.clone(),
            architecture: config.architecture.clone(),
        };
        let record = self.store.put_image(record, &tags)?;
        progress(ProgressMessage::new(None, format!("Digest: {}", resolved.repo_digest)));
        let status = if !downloaded && was.as_ref() == Some(&record.id) {
            format!("Status: Image is up to date for {}", r.familiar_string())
        } else {
            format!("Status: Downloaded newer image for {}", r.familiar_string())
        };
        progress(ProgressMessage::new(None, status));
        // As moby: the reference as the user knows it is the actor.
        let familiar = r.familiar_string();
        self.log_event("pull", &familiar, &familiar);
        Ok(Image { record, config })
    }

    fn layer_lock(&self, diff_id: &Digest) -> Arc<Mutex<()>> {
        self.unpacking.lock().unwrap().entry(diff_id.clone()).or_default().clone()
    }

    /// Drops lock entries nobody holds (keeps the map from growing).
    fn forget_layer_locks(&self) {
        self.unpacking.lock().unwrap().retain(|_, l| Arc::strong_count(l) > 1);
    }

    /// What the executor calls before starting a task: the local image if
    /// the reference pins a digest that is already here; otherwise a pull,
    /// falling back to a local image of that name if the pull fails (as
    /// Docker's swarm executor does).
    pub fn ensure(&self, reference: &str, auth: Option<&AuthConfig>) -> Result<Image> {
        let r = Reference::parse_for_pull(reference)?;
        if r.digest().is_some() {
            if let Ok(img) = self.get(&r.with_digest(r.digest().cloned().expect("checked")).to_string()) {
                return Ok(img);
            }
        }
        match self.pull(reference, auth) {
            Ok(img) => Ok(img),
            Err(e) => match self.get(reference) {
                Ok(img) => {
                    tracing::warn!(image = reference, error = %e, "pull failed, using the local image");
                    Ok(img)
                }
                Err(_) => Err(e),
            },
        }
    }

    /// A local image by reference, ID or short ID.
    pub fn get(&self, name: &str) -> Result<Image> {
        let record = self.store.lookup(name).ok_or_else(|| ImageError::not_found(format!("No such image: {name}")))?;
        let config = ImageConfig::parse(&self.store.read_blob(&record.id)?).map_err(ImageError::corrupt)?;
        Ok(Image { record, config })
    }

    pub fn list(&self) -> Vec<ImageRecord> {
        self.store.images()
    }

    /// `shoal image load -i FILE`: every image in a `docker save` or OCI
    /// layout archive (gzip or not).
    pub fn load(&self, archive: &Path) -> Result<Vec<LoadedImage>> {
        let loaded = {
            let _gc = self.gc.read().unwrap_or_else(|e| e.into_inner());
            archive::load(&self.store, archive, &self.platform)?
        };
        for img in &loaded {
            let id = img.id.to_string();
            for tag in &img.tags {
                self.log_event("tag", &id, tag);
            }
            self.log_event("load", &id, &id);
        }
        Ok(loaded)
    }

    /// Mounts a root file system for a container of `image`.
    pub fn prepare_rootfs(&self, image: &Image, container_id: &str) -> Result<Rootfs> {
        rootfs::prepare(&self.store, &image.record.diff_ids, container_id)
    }

    /// Unmounts and deletes a container's root file system.
    pub fn remove_rootfs(&self, container_id: &str) -> Result<()> {
        rootfs::remove(&self.store, container_id)
    }

    /// `docker rmi NAME`: removing a tag while others remain only untags;
    /// removing the last tag (or the image by ID) also drops its repo
    /// digests, the image, its blobs and the layers nothing else uses
    /// (layers of existing container roots stay). Returns Docker's lines
    /// (`Untagged: …`, `Deleted: …`).
    pub fn remove(&self, name: &str) -> Result<Vec<String>> {
        let id = self.store.lookup(name).map(|r| r.id.to_string());
        let out = self.remove_unlogged(name)?;
        // moby's events: `untag` per name removed, `delete` for the image,
        // both with the image ID as actor and name.
        for line in &out {
            let action = if line.starts_with("Untagged: ") { "untag" } else { "delete" };
            if let Some(id) = &id {
                self.log_event(action, id, id);
            }
        }
        Ok(out)
    }

    fn remove_unlogged(&self, name: &str) -> Result<Vec<String>> {
        let _gc = self.gc.write().unwrap_or_else(|e| e.into_inner());
        let record = self.store.lookup(name).ok_or_else(|| ImageError::not_found(format!("No such image: {name}")))?;
        let mut out = Vec::new();
        let named = Reference::parse(name).ok().map(|r| if r.digest().is_some() { r } else { r.with_default_tag() }).filter(|r| {
            let s = r.to_string();
            record.repo_tags.contains(&s) || record.repo_digests.contains(&s)
        });
        let mut tags_left = record.repo_tags.len();
        match &named {
            Some(r) => {
                self.store.untag(r)?;
                out.push(format!("Untagged: {}", r.familiar_string()));
                if r.digest().is_none() {
                    tags_left -= 1;
                }
                if tags_left > 0 {
                    return Ok(out);
                }
            }
            None if tags_left > 1 => {
                return Err(ImageError::new(
                    ErrorKind::Conflict,
                    format!(
                        "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                        record.id.short()
                    ),
                ));
            }
            None => {}
        }
        let done = named.map(|r| r.to_string());
        for n in record.repo_tags.iter().chain(&record.repo_digests) {
            if Some(n) == done.as_ref() {
                continue;
            }
            if let Ok(r) = Reference::parse(n) {
                self.store.untag(&r)?;
                out.push(format!("Untagged: {}", r.familiar_string()));
            }
        }
        self.store.remove_image(&record.id)?;
        self.store.remove_blob(&record.id)?;
        if let Some(m) = &record.manifest {
            self.store.remove_blob(m)?;
        }
        out.push(format!("Deleted: {}", record.id));
        self.prune_unlocked()?;
        Ok(out)
    }

    /// Removes unpacked layers that no image and no container uses.
    /// Returns how many went.
    pub fn prune_layers(&self) -> Result<usize> {
        let _gc = self.gc.write().unwrap_or_else(|e| e.into_inner());
        self.prune_unlocked()
    }

    fn prune_unlocked(&self) -> Result<usize> {
        let mut keep: std::collections::HashSet<Digest> = self.store.images().into_iter().flat_map(|i| i.diff_ids).collect();
        keep.extend(rootfs::layers_in_use(&self.store));
        let dir = self.store.root().join("layers").join("sha256");
        let mut removed = 0;
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(d) = Digest::parse(&format!("sha256:{name}")) else { continue };
            if !keep.contains(&d) && e.path().is_dir() {
                unpack::remove_layer(&self.store, &d)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Counts a layer download and reports it every half megabyte.
struct ProgressReader<'a, R> {
    inner: R,
    id: &'a str,
    done: u64,
    reported: u64,
    total: Option<u64>,
    progress: &'a mut dyn FnMut(ProgressMessage),
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        let finished = n == 0 && self.done > self.reported;
        if self.done - self.reported >= 512 * 1024 || finished {
            self.reported = self.done;
            (self.progress)(ProgressMessage {
                id: Some(self.id.to_string()),
                status: "Downloading".into(),
                current: Some(self.done),
                total: self.total,
            });
        }
        Ok(n)
    }
}
