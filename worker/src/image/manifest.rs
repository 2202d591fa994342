//! The JSON documents of an image: manifests, indexes (manifest lists),
//! descriptors and the image config, in both Docker's and OCI's media types
//! (they share one shape), and platform matching for multi-arch images.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::digest::Digest;

pub mod media_type {
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const OCI_NONDIST_LAYER_GZIP: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
}

/// The Accept header of a manifest request: every kind we can use, so the
/// registry never falls back to schema 1.
pub const MANIFEST_ACCEPT: &str = concat!(
    "application/vnd.docker.distribution.manifest.v2+json, ",
    "application/vnd.docker.distribution.manifest.list.v2+json, ",
    "application/vnd.oci.image.manifest.v1+json, ",
    "application/vnd.oci.image.index.v1+json"
);

/// Limits on documents read into memory (Docker uses the same 4 MiB for
/// manifests; configs of real images are far below 8 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
pub const MAX_CONFIG_BYTES: u64 = 8 << 20;

/// A pointer to content: what it is, its digest and size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, rename = "os.version", skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
}

impl Platform {
    /// The platform this node runs, in OCI's names (Go's GOARCH), mapped from
    /// Rust's `std::env::consts::ARCH`.
    pub fn host() -> Platform {
        Platform::for_arch(std::env::consts::ARCH)
    }

    pub fn for_arch(rust_arch: &str) -> Platform {
        let (arch, variant) = match rust_arch {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "riscv64" => ("riscv64", None),
            "s390x" => ("s390x", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Platform { architecture: arch.to_string(), os: "linux".to_string(), variant: variant.map(str::to_string), os_version: None }
    }

    /// `linux/arm64/v8` as Docker prints platforms (variant only when set).
    pub fn display(&self) -> String {
        match &self.variant {
            Some(v) if !v.is_empty() => format!("{}/{}/{}", self.os, self.architecture, v),
            _ => format!("{}/{}", self.os, self.architecture),
        }
    }

    /// How well `candidate` fits this (wanted) platform: `None` if it cannot
    /// run here, else a rank where lower is better.
    fn rank(&self, candidate: &Platform) -> Option<usize> {
        if candidate.os != self.os || candidate.architecture != self.architecture {
            return None;
        }
        let got = candidate.variant.as_deref().unwrap_or("");
        match self.architecture.as_str() {
            // arm64 images rarely say "v8"; both spellings are the same thing.
            "arm64" => matches!(got, "" | "v8").then_some(0),
            // A v7 CPU runs v7, v6 and v5 code, preferring the newest.
            "arm" => {
                let want = self.variant.as_deref().unwrap_or("v7");
                let order = ["v8", "v7", "v6", "v5"];
                let wi = order.iter().position(|v| *v == want).unwrap_or(1);
                if got.is_empty() {
                    return Some(order.len());
                }
                let gi = order.iter().position(|v| *v == got)?;
                (gi >= wi).then(|| gi - wi)
            }
            // amd64 microarchitecture levels above v1 need CPU features we
            // do not probe for; take the baseline.
            "amd64" => matches!(got, "" | "v1").then_some(0),
            _ => {
                let want = self.variant.as_deref().unwrap_or("");
                (got.is_empty() || got == want).then_some(usize::from(got != want))
            }
        }
    }
}

/// An image manifest (Docker schema 2 or OCI): config plus layers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A manifest list (Docker) or image index (OCI): one manifest per platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl ImageIndex {
    /// The entry for `platform` (Docker's choice: best variant, then first
    /// listed). Entries without a platform (attestations) never match.
    pub fn select(&self, platform: &Platform) -> Option<&Descriptor> {
        self.manifests
            .iter()
            .filter(|d| is_manifest_type(&d.media_type) || d.media_type.is_empty())
            .filter_map(|d| Some((platform.rank(d.platform.as_ref()?)?, d)))
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, d)| d)
    }
}

fn is_manifest_type(mt: &str) -> bool {
    matches!(mt, media_type::DOCKER_MANIFEST | media_type::OCI_MANIFEST)
}

/// Either kind of top-level document.
// One lives per pull, briefly: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Manifest {
    Image(ImageManifest),
    Index(ImageIndex),
}

/// The bits of a manifest used to tell its kind when the Content-Type
/// header is missing or generic.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: u32,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

impl Manifest {
    /// Parses a manifest document. The registry's Content-Type is trusted
    /// when it names a known type; otherwise the document's own
    /// `mediaType`, then its shape, decides.
    pub fn parse(content_type: Option<&str>, bytes: &[u8]) -> Result<Manifest, String> {
        let probe: Probe = serde_json::from_slice(bytes).map_err(|e| format!("invalid manifest: {e}"))?;
        let header = content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_string());
        let kind = [header, probe.media_type.clone()].into_iter().flatten().find(|m| {
            matches!(
                m.as_str(),
                media_type::DOCKER_MANIFEST
                    | media_type::OCI_MANIFEST
                    | media_type::DOCKER_MANIFEST_LIST
                    | media_type::OCI_INDEX
                    | media_type::DOCKER_SCHEMA1
                    | media_type::DOCKER_SCHEMA1_SIGNED
            )
        });
        let is_index = match kind.as_deref() {
            Some(media_type::DOCKER_MANIFEST_LIST | media_type::OCI_INDEX) => true,
            Some(media_type::DOCKER_MANIFEST | media_type::OCI_MANIFEST) => false,
            Some(_) => return Err(schema1_error()),
            None if probe.schema_version == 1 => return Err(schema1_error()),
            None if probe.manifests.is_some() => true,
            None if probe.config.is_some() => false,
            None => return Err("unsupported manifest format: neither an image manifest nor an index".into()),
        };
        if probe.schema_version != 2 {
            return Err(format!("unsupported manifest schema version {}", probe.schema_version));
        }
        if is_index {
            serde_json::from_slice(bytes).map(Manifest::Index).map_err(|e| format!("invalid image index: {e}"))
        } else {
            serde_json::from_slice(bytes).map(Manifest::Image).map_err(|e| format!("invalid image manifest: {e}"))
        }
    }
}

fn schema1_error() -> String {
    // Docker 28's wording for the removed format.
    "support Docker Image manifest version 2, schema 1 has been removed".to_string()
}

/// The image configuration (`application/vnd.oci.image.config.v1+json`):
/// what the executor needs to run a container, and the layer diff IDs that
/// tie the layers to it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

/// The run-time defaults baked into an image. Docker spells these in
/// PascalCase, and `null` is common for absent lists.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
    #[serde(default, deserialize_with = "null_default")]
    pub volumes: BTreeMap<String, serde_json::Value>,
    #[serde(default, deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    /// `SHELL`: what runs `CMD-SHELL` health checks (default `/bin/sh -c`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

/// `HEALTHCHECK` from the image; durations in nanoseconds as in Docker.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    #[serde(default, deserialize_with = "null_default")]
    pub test: Vec<String>,
    #[serde(default)]
    pub interval: i64,
    #[serde(default)]
    pub timeout: i64,
    #[serde(default)]
    pub start_period: i64,
    #[serde(default)]
    pub start_interval: i64,
    #[serde(default)]
    pub retries: i64,
}

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl ImageConfig {
    pub fn parse(bytes: &[u8]) -> Result<ImageConfig, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("invalid image config: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(platform: Option<(&str, &str, Option<&str>)>, n: u8) -> Descriptor {
        Descriptor {
            media_type: media_type::OCI_MANIFEST.into(),
            digest: Digest::sha256_of(&[n]),
            size: 1,
            platform: platform.map(|(os, arch, v)| Platform {
                os: os.into(),
                architecture: arch.into(),
                variant: v.map(Into::into),
                os_version: None,
            }),
            urls: vec![],
            annotations: None,
        }
    }

    #[test]
    fn maps_rust_arch_to_oci_names() {
        assert_eq!(Platform::for_arch("x86_64").display(), "linux/amd64");
        assert_eq!(Platform::for_arch("aarch64").display(), "linux/arm64/v8");
        assert_eq!(Platform::for_arch("arm").display(), "linux/arm/v7");
        assert_eq!(Platform::for_arch("x86").architecture, "386");
        assert_eq!(Platform::host().os, "linux");
    }

    #[test]
    fn selects_the_platform_entry() {
        let index = ImageIndex {
            schema_version: 2,
            media_type: Some(media_type::OCI_INDEX.into()),
            manifests: vec![
                desc(Some(("unknown", "unknown", None)), 0),
                desc(Some(("linux", "arm", Some("v6"))), 1),
                desc(Some(("linux", "arm64", None)), 2),
                desc(Some(("linux", "amd64", Some("v3"))), 3),
                desc(Some(("linux", "amd64", None)), 4),
                desc(Some(("linux", "arm", Some("v7"))), 5),
                desc(Some(("windows", "amd64", None)), 6),
                desc(None, 7),
            ],
            annotations: None,
        };
        let pick = |arch: &str| index.select(&Platform::for_arch(arch)).map(|d| d.digest.clone());
        assert_eq!(pick("x86_64"), Some(Digest::sha256_of(&[4])));
        assert_eq!(pick("aarch64"), Some(Digest::sha256_of(&[2])), "arm64 without variant fits v8");
        assert_eq!(pick("arm"), Some(Digest::sha256_of(&[5])), "v7 preferred over v6");
        assert_eq!(pick("s390x"), None);
        let mut v6 = Platform::for_arch("arm");
        v6.variant = Some("v6".into());
        assert_eq!(index.select(&v6).map(|d| d.digest.clone()), Some(Digest::sha256_of(&[1])));
    }

    #[test]
    fn parses_each_kind_of_manifest() {
        let d = Digest::sha256_of(b"c");
        let image = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{d}","size":1}},"layers":[{{"mediaType":"{}","digest":"{d}","size":2}}]}}"#,
            media_type::DOCKER_MANIFEST,
            media_type::DOCKER_CONFIG,
            media_type::DOCKER_LAYER_GZIP
        );
        match Manifest::parse(Some(media_type::DOCKER_MANIFEST), image.as_bytes()).unwrap() {
            Manifest::Image(m) => assert_eq!((m.layers.len(), m.config.size), (1, 1)),
            other => panic!("{other:?}"),
        }
        // No header and no mediaType (allowed by OCI): the shape decides.
        let bare = format!(r#"{{"schemaVersion":2,"config":{{"digest":"{d}","size":1}},"layers":[]}}"#);
        assert!(matches!(Manifest::parse(Some("application/octet-stream"), bare.as_bytes()), Ok(Manifest::Image(_))));
        let index = r#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(Manifest::parse(None, index.as_bytes()), Ok(Manifest::Index(_))));
        assert!(matches!(
            Manifest::parse(Some("application/vnd.oci.image.index.v1+json; charset=utf-8"), index.as_bytes()),
            Ok(Manifest::Index(_))
        ));
        let schema1 = r#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#;
        assert!(Manifest::parse(None, schema1.as_bytes()).unwrap_err().contains("schema 1 has been removed"));
        assert!(Manifest::parse(None, b"nope").unwrap_err().starts_with("invalid manifest"));
    }

    #[test]
    fn parses_docker_image_configs_with_nulls() {
        let d = Digest::sha256_of(b"layer");
        let json = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Env":["PATH=/bin"],"Cmd":["sh"],"Entrypoint":null,
            "Labels":null,"ExposedPorts":{{"80/tcp":{{}}}},"WorkingDir":"/srv","User":"1000",
            "Healthcheck":{{"Test":["CMD","true"],"Interval":1000000000,"Retries":3}}}},
            "rootfs":{{"type":"layers","diff_ids":["{d}"]}},"history":[{{"created_by":"x"}}]}}"#
        );
        let c = ImageConfig::parse(json.as_bytes()).unwrap();
        let cc = c.config.unwrap();
        assert_eq!(cc.env, vec!["PATH=/bin"]);
        assert_eq!(cc.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(cc.entrypoint, None);
        assert!(cc.labels.is_empty());
        assert!(cc.exposed_ports.contains_key("80/tcp"));
        assert_eq!(cc.healthcheck.unwrap().retries, 3);
        assert_eq!(c.rootfs.diff_ids, vec![d]);
    }
}
