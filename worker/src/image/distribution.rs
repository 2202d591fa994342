//! `GET /distribution/{name}/json`: what a registry says a reference
//! names, in Docker's `DistributionInspect` shape, so `docker service
//! create` can pin `image@digest` (and the image's platforms) as it does
//! against Docker.
//!
//! Follows moby's `getDistributionInfo`: the reference is parsed with
//! Docker's rules (no tag and no digest means `latest`), the registry's
//! `/v2/` is pinged (an unreachable registry is a 500 with Go's `url.Error`
//! text, so the CLI prints its usual "could not be accessed on a registry"
//! warning), the manifest is fetched by tag or digest, and a refusal is
//! the registry's own error (errcode text, status by code). Platforms come
//! from a manifest list / image index's entries, or from the image config
//! of a Docker schema 2 manifest; moby lists none for an OCI image
//! manifest (`null`), and neither does this.

use serde::Serialize;

use super::auth::AuthConfig;
use super::http::Response;
use super::manifest::{media_type, Descriptor, Manifest, MAX_CONFIG_BYTES};
use super::reference::Reference;
use super::registry::{api_errors, Registry};
use super::{ErrorKind, ImageError};

/// Docker's `registry.DistributionInspect`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DistributionInspect {
    #[serde(rename = "Descriptor")]
    pub descriptor: InspectDescriptor,
    /// `null` when the manifest names none (Go's nil slice).
    #[serde(rename = "Platforms")]
    pub platforms: Option<Vec<InspectPlatform>>,
}

/// The OCI descriptor as moby fills it here: media type, digest, size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InspectDescriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: i64,
}

/// An OCI platform (`ocispec.Platform`, empty optional fields omitted).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct InspectPlatform {
    pub architecture: String,
    pub os: String,
    #[serde(rename = "os.version", skip_serializing_if = "String::is_empty")]
    pub os_version: String,
    #[serde(rename = "os.features", skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

/// Why there is no answer: the HTTP status moby would send, and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InspectError {
    pub status: u16,
    pub message: String,
}

impl InspectError {
    fn new(status: u16, message: impl Into<String>) -> InspectError {
        InspectError { status, message: message.into() }
    }
}

/// Asks the registry what `name` (as a user wrote it) is.
pub fn inspect(registry: &Registry, name: &str, auth: Option<&AuthConfig>) -> Result<DistributionInspect, InspectError> {
    // A bare image ID (or `sha256:<hex>`) parses as a digest, not a name.
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(InspectError::new(500, "no manifest found for full image ID"));
    }
    let reference = Reference::parse(name).map_err(|e| InspectError::new(400, e.0))?.with_default_tag();
    if reference.path() == "scratch" || reference.path() == "library/scratch" {
        return Err(InspectError::new(400, "'scratch' is a reserved name"));
    }
    let mut repo = registry.repository(&reference, auth).map_err(|e| InspectError::new(status_of(&e), e.message))?;
    let mut refusal = None;
    let fetched = repo
        .fetch_manifest_or(&reference.manifest_reference(), |_, resp| {
            let (status, message) = errcode_failure(resp);
            refusal = Some(status);
            ImageError::new(ErrorKind::NotFound, message)
        })
        .map_err(|e| InspectError::new(refusal.unwrap_or_else(|| status_of(&e)), e.message))?;
    let media = manifest_media_type(&fetched.media_type, &fetched.bytes, &fetched.manifest);
    let platforms = match &fetched.manifest {
        Manifest::Index(index) => Some(index.manifests.iter().map(from_descriptor).collect()),
        // moby reads the platform of a Docker schema 2 image from its
        // config (quietly none if that fails); an OCI manifest gets none.
        Manifest::Image(m) if media == media_type::DOCKER_MANIFEST => {
            repo.fetch_blob_bytes(&m.config, MAX_CONFIG_BYTES).ok().and_then(|bytes| platform_of_config(&bytes)).map(|p| vec![p])
        }
        Manifest::Image(_) => None,
    };
    Ok(DistributionInspect {
        descriptor: InspectDescriptor { media_type: media, digest: fetched.digest.to_string(), size: fetched.bytes.len() as i64 },
        platforms,
    })
}

/// moby's status for errors that are not the registry's own: a malformed
/// reference is the caller's (400); anything else, an unreachable
/// registry included, is a 500.
fn status_of(e: &ImageError) -> u16 {
    match e.kind {
        ErrorKind::InvalidArgument => 400,
        ErrorKind::Unauthorized => 401,
        _ => 500,
    }
}

/// A registry's refusal as docker/distribution's client reports it:
/// errcode text (`manifest unknown: manifest unknown`; several as
/// `errors:` lines) with the status of the first code.
fn errcode_failure(resp: Response) -> (u16, String) {
    let (status, reason) = (resp.status, resp.reason.clone());
    let body = resp.read_body(1 << 20).unwrap_or_default();
    let errors = api_errors(&body);
    let Some(first) = errors.first() else {
        return match status {
            401 => (401, "unauthorized: authentication required".into()),
            404 => (404, "manifest unknown: manifest unknown".into()),
            _ => (500, format!("received unexpected HTTP status: {status} {reason}")),
        };
    };
    let code_status = match first.code.as_str() {
        "MANIFEST_UNKNOWN" | "NAME_UNKNOWN" | "BLOB_UNKNOWN" | "MANIFEST_BLOB_UNKNOWN" => 404,
        "UNAUTHORIZED" => 401,
        "DENIED" => 403,
        "UNSUPPORTED" => 405,
        "TOOMANYREQUESTS" => 429,
        "NAME_INVALID" | "TAG_INVALID" | "MANIFEST_INVALID" | "DIGEST_INVALID" | "SIZE_INVALID" => 400,
        _ => 500,
    };
    let message = if errors.len() == 1 {
        first.to_string()
    } else {
        let mut m = String::from("errors:\n");
        for e in &errors {
            m.push_str(&format!("{e}\n"));
        }
        m
    };
    (code_status, message)
}

/// The manifest's media type as moby reports it (the payload's own kind):
/// the registry's Content-Type when it names a manifest kind, else the
/// document's `mediaType`, else OCI's name for what it parsed as.
fn manifest_media_type(content_type: &str, bytes: &[u8], manifest: &Manifest) -> String {
    let known = [media_type::DOCKER_MANIFEST, media_type::DOCKER_MANIFEST_LIST, media_type::OCI_MANIFEST, media_type::OCI_INDEX];
    if known.contains(&content_type) {
        return content_type.to_string();
    }
    let own = serde_json::from_slice::<serde_json::Value>(bytes).ok().and_then(|v| v["mediaType"].as_str().map(str::to_string));
    match own {
        Some(m) if known.contains(&m.as_str()) => m,
        _ => match manifest {
            Manifest::Index(_) => media_type::OCI_INDEX.to_string(),
            Manifest::Image(_) => media_type::OCI_MANIFEST.to_string(),
        },
    }
}

/// An index entry's platform (Go's zero value when it names none).
fn from_descriptor(d: &Descriptor) -> InspectPlatform {
    let Some(p) = &d.platform else { return InspectPlatform::default() };
    InspectPlatform {
        architecture: p.architecture.clone(),
        os: p.os.clone(),
        os_version: p.os_version.clone().unwrap_or_default(),
        os_features: Vec::new(),
        variant: p.variant.clone().unwrap_or_default(),
    }
}

/// The platform an image config names, if it names an OS or architecture.
fn platform_of_config(bytes: &[u8]) -> Option<InspectPlatform> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let p = InspectPlatform {
        architecture: s("architecture"),
        os: s("os"),
        os_version: s("os.version"),
        os_features: v["os.features"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        variant: s("variant"),
    };
    (!p.os.is_empty() || !p.architecture.is_empty()).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_in_dockers_shape() {
        let out = DistributionInspect {
            descriptor: InspectDescriptor { media_type: media_type::OCI_MANIFEST.into(), digest: "sha256:ab".into(), size: 528 },
            platforms: None,
        };
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            json!({"Descriptor": {"mediaType": media_type::OCI_MANIFEST, "digest": "sha256:ab", "size": 528}, "Platforms": null})
        );
        let p = InspectPlatform { architecture: "arm".into(), os: "linux".into(), variant: "v7".into(), ..Default::default() };
        assert_eq!(serde_json::to_value(&p).unwrap(), json!({"architecture": "arm", "os": "linux", "variant": "v7"}));
    }

    #[test]
    fn platforms_from_a_config() {
        let p = platform_of_config(br#"{"architecture":"amd64","os":"linux","rootfs":{}}"#).unwrap();
        assert_eq!((p.architecture.as_str(), p.os.as_str(), p.variant.as_str()), ("amd64", "linux", ""));
        assert!(platform_of_config(br#"{"rootfs":{}}"#).is_none());
    }

    #[test]
    fn refusals_before_any_registry_is_asked() {
        let registry = Registry::new(&Default::default());
        let e = inspect(&registry, &"a".repeat(64), None).unwrap_err();
        assert_eq!(e, InspectError::new(500, "no manifest found for full image ID"));
        let e = inspect(&registry, "Busybox", None).unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.message, "invalid reference format: repository name (library/Busybox) must be lowercase");
        assert_eq!(inspect(&registry, "scratch", None).unwrap_err().message, "'scratch' is a reserved name");
    }
}
