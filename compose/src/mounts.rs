//! A service's `volumes:` in the short form (`data:/var/lib/x:ro`,
//! `./conf:/etc/x`, `/cache`) and the long form (`type`, `source`, `target`,
//! `read_only`, `bind`, `volume`, `tmpfs`), read into one shape.

use std::fmt;

use serde::de::{self, value::MapAccessDeserializer, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::forms::Bytes;

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceVolume {
    /// `volume` (default), `bind`, `tmpfs`, `npipe` or `cluster`.
    #[serde(rename = "type", default = "volume_type")]
    pub kind: String,
    #[serde(default)]
    pub source: Option<String>,
    pub target: String,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub consistency: Option<String>,
    #[serde(default)]
    pub bind: Option<BindOptions>,
    #[serde(default)]
    pub volume: Option<VolumeOptions>,
    #[serde(default)]
    pub tmpfs: Option<TmpfsOptions>,
}

fn volume_type() -> String {
    "volume".into()
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindOptions {
    pub propagation: Option<String>,
    pub create_host_path: Option<bool>,
    pub selinux: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeOptions {
    #[serde(default)]
    pub nocopy: bool,
    pub subpath: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TmpfsOptions {
    pub size: Option<Bytes>,
    pub mode: Option<u32>,
}

/// One item of `volumes:`, short or long.
pub struct VolumeItem(pub ServiceVolume);

impl<'de> Deserialize<'de> for VolumeItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = VolumeItem;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a volume (\"source:target[:mode]\") or a mapping with type, source and target")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<VolumeItem, E> {
                parse_short(v).map(VolumeItem).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<VolumeItem, A::Error> {
                let v = ServiceVolume::deserialize(MapAccessDeserializer::new(map))?;
                if !matches!(v.kind.as_str(), "volume" | "bind" | "tmpfs" | "npipe" | "cluster") {
                    return Err(de::Error::custom(format!(
                        "invalid volume type {:?}: volume type must be volume, bind, tmpfs, npipe, or cluster",
                        v.kind
                    )));
                }
                Ok(VolumeItem(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// Whether a short-form source names a host path rather than a volume.
fn is_host_path(source: &str) -> bool {
    source.starts_with('/') || source.starts_with('.') || source.starts_with('~')
}

/// `[source:]target[:mode,...]`.
pub fn parse_short(spec: &str) -> Result<ServiceVolume, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, modes) = match parts.as_slice() {
        [t] => (None, *t, None),
        [s, t] => (Some(*s), *t, None),
        [s, t, m] => (Some(*s), *t, Some(*m)),
        _ => return Err(format!("invalid volume specification {spec:?}: too many colons")),
    };
    if target.is_empty() {
        return Err(format!("invalid volume specification {spec:?}: empty container path"));
    }
    if !target.starts_with('/') {
        return Err(format!("invalid volume specification {spec:?}: container path must be absolute"));
    }
    let mut v = ServiceVolume { kind: "volume".into(), target: target.into(), ..Default::default() };
    if let Some(s) = source.filter(|s| !s.is_empty()) {
        v.kind = if is_host_path(s) { "bind" } else { "volume" }.into();
        v.source = Some(s.into());
    }
    for mode in modes.into_iter().flat_map(|m| m.split(',')) {
        match mode {
            "ro" => v.read_only = true,
            "rw" => v.read_only = false,
            "nocopy" if v.kind == "volume" => v.volume.get_or_insert_with(Default::default).nocopy = true,
            "z" | "Z" if v.kind == "bind" => v.bind.get_or_insert_with(Default::default).selinux = Some(mode.into()),
            "cached" | "delegated" | "consistent" => v.consistency = Some(mode.into()),
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" if v.kind == "bind" => {
                v.bind.get_or_insert_with(Default::default).propagation = Some(mode.into())
            }
            _ => return Err(format!("invalid volume specification {spec:?}: unknown mode {mode:?}")),
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms() {
        let anon = parse_short("/cache").unwrap();
        assert_eq!((anon.kind.as_str(), anon.source.as_deref(), anon.target.as_str()), ("volume", None, "/cache"));
        let named = parse_short("data:/var/lib/db:ro,nocopy").unwrap();
        assert_eq!(named.kind, "volume");
        assert_eq!(named.source.as_deref(), Some("data"));
        assert!(named.read_only);
        assert!(named.volume.unwrap().nocopy);
        let bind = parse_short("./conf:/etc/app:rw,rslave").unwrap();
        assert_eq!(bind.kind, "bind");
        assert!(!bind.read_only);
        assert_eq!(bind.bind.unwrap().propagation.as_deref(), Some("rslave"));
        assert_eq!(parse_short("~/x:/x").unwrap().kind, "bind");
        assert_eq!(parse_short("/host:/c").unwrap().kind, "bind");
    }

    #[test]
    fn bad_short_forms() {
        for bad in ["data:relative", "a:b:c:d", "data:/x:sideways", "./x:/y:nocopy", ":"] {
            assert!(parse_short(bad).is_err(), "{bad}");
        }
    }
}
