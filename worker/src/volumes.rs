//! Local volumes on this node, as Docker's `local` driver keeps them:
//! `<data-root>/volumes/<name>/_data` is what containers mount, and
//! `<data-root>/volumes/<name>/volume.json` records the driver, labels and
//! creation time. Named volumes are created on first use and outlive their
//! tasks; anonymous ones (a volume mount without a source) get a name
//! derived from the container and target and are removed with the container,
//! as swarm removes a task's container with its anonymous volumes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What `volume.json` holds (the shape of the Engine API's `Volume`, less
/// the computed fields).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeRecord {
    pub name: String,
    pub driver: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub created_at: String,
    #[serde(default)]
    pub anonymous: bool,
}

#[derive(Clone, Debug)]
pub struct VolumeStore {
    root: PathBuf,
}

/// Docker's rule for local volume names.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = name.len() >= 2 && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(format!(
            "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        ))
    }
}

/// The name of the anonymous volume container `container` mounts at
/// `target`: 64 hex digits like Docker's, stable so every step of one
/// container (prepare, start, remove) agrees on it.
pub fn anonymous_name(container: &str, target: &str) -> String {
    let mut h = Sha256::new();
    h.update(container.as_bytes());
    h.update([0u8]);
    h.update(target.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl VolumeStore {
    pub fn new(root: impl Into<PathBuf>) -> VolumeStore {
        VolumeStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the volume's content lives (what containers mount).
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    /// Creates the volume if it does not exist yet (labels are set on
    /// creation only, as Docker does) and returns its data directory. Only
    /// the `local` driver without options is available on this node.
    pub fn ensure(
        &self,
        name: &str,
        driver: &str,
        options: &BTreeMap<String, String>,
        labels: &BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<PathBuf, String> {
        check_name(name)?;
        if !driver.is_empty() && driver != "local" {
            return Err(format!("create {name}: error looking up volume plugin {driver}: plugin \"{driver}\" not found"));
        }
        if !options.is_empty() {
            let keys: Vec<&str> = options.keys().map(String::as_str).collect();
            return Err(format!(
                "create {name}: options for the local volume driver are not supported on this node yet (got {})",
                keys.join(", ")
            ));
        }
        let dir = self.root.join(name);
        let data = dir.join("_data");
        if data.is_dir() {
            return Ok(data);
        }
        std::fs::create_dir_all(&data).map_err(|e| format!("create {name}: {e}"))?;
        // Docker's local volumes are 0755 root directories until content
        // is copied in.
        let _ = std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o755));
        let rec = VolumeRecord {
            name: name.to_string(),
            driver: "local".into(),
            labels: labels.clone(),
            created_at: shoal_api::time::now_rfc3339(),
            anonymous,
        };
        let json = serde_json::to_vec_pretty(&rec).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("volume.json"), json).map_err(|e| format!("create {name}: {e}"))?;
        Ok(data)
    }

    /// The volume's record, if it exists.
    pub fn get(&self, name: &str) -> Option<VolumeRecord> {
        check_name(name).ok()?;
        let bytes = std::fs::read(self.root.join(name).join("volume.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Every volume on the node, by name.
    pub fn list(&self) -> Vec<VolumeRecord> {
        let Ok(entries) = std::fs::read_dir(&self.root) else { return Vec::new() };
        let mut v: Vec<VolumeRecord> = entries.flatten().filter_map(|e| self.get(&e.file_name().to_string_lossy())).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Deletes the volume and its content.
    pub fn remove(&self, name: &str) -> Result<(), String> {
        check_name(name)?;
        let dir = self.root.join(name);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("removing volume {name}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(tag: &str) -> (VolumeStore, PathBuf) {
        let dir = std::env::temp_dir().join(format!("shoal-volumes-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        (VolumeStore::new(dir.join("volumes")), dir)
    }

    #[test]
    fn names_follow_dockers_rule() {
        assert!(check_name("data").is_ok());
        assert!(check_name("my_vol.1-x").is_ok());
        for bad in ["", "a", "_x", "a/b", "../x", "x y"] {
            assert!(check_name(bad).unwrap_err().contains("includes invalid characters for a local volume name"), "{bad}");
        }
        let anon = anonymous_name("task1", "/data");
        assert_eq!(anon.len(), 64);
        assert!(check_name(&anon).is_ok());
        assert_ne!(anon, anonymous_name("task1", "/other"));
    }

    #[test]
    fn ensure_creates_once_and_keeps_content() {
        let (s, dir) = store("ensure");
        let labels: BTreeMap<String, String> = [("team".to_string(), "a".to_string())].into();
        let data = s.ensure("vol1", "", &BTreeMap::new(), &labels, false).unwrap();
        assert_eq!(data, dir.join("volumes/vol1/_data"));
        std::fs::write(data.join("f"), "x").unwrap();
        // A second use with other labels keeps the first ones and the content.
        let again = s.ensure("vol1", "local", &BTreeMap::new(), &BTreeMap::new(), false).unwrap();
        assert_eq!(std::fs::read_to_string(again.join("f")).unwrap(), "x");
        let rec = s.get("vol1").unwrap();
        assert_eq!(rec.labels, labels);
        assert_eq!(rec.driver, "local");
        assert_eq!(s.list().len(), 1);
        s.remove("vol1").unwrap();
        assert!(s.get("vol1").is_none() && !data.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn other_drivers_and_options_are_refused_and_change_nothing() {
        let (s, dir) = store("drivers");
        let e = s.ensure("vol1", "nfs", &BTreeMap::new(), &BTreeMap::new(), false).unwrap_err();
        assert_eq!(e, "create vol1: error looking up volume plugin nfs: plugin \"nfs\" not found");
        let opts: BTreeMap<String, String> = [("type".to_string(), "nfs".to_string())].into();
        assert!(s.ensure("vol1", "local", &opts, &BTreeMap::new(), false).is_err());
        assert!(!dir.join("volumes/vol1").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
