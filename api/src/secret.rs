//! Secrets and configs (`/secrets`, `/configs`) and the references a
//! container spec makes to them, in Docker's JSON shape.
//!
//! `Data` is base64 in JSON. A secret's data goes in with `POST
//! /secrets/create` and never comes back out of the API; a config's does.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::task::Driver;
use crate::Version;

/// SwarmKit's limit on a secret's data: strictly less than 500 KiB.
pub const MAX_SECRET_SIZE: usize = 500 * 1024;
/// SwarmKit's limit on a config's data: strictly less than 1000 KiB.
pub const MAX_CONFIG_SIZE: usize = 1000 * 1024;
/// Where a secret reference with a relative target lands in the container.
pub const SECRETS_DIR: &str = "/run/secrets";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Secret {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(default)]
    pub version: Version,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    #[serde(default)]
    pub spec: SecretSpec,
}

#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Docker always prints `Labels`, even empty.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default, with = "crate::base64::opt", skip_serializing_if = "Option::is_none")]
    pub data: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<Driver>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templating: Option<Driver>,
}

/// Never prints the data, so a stray `{:?}` cannot leak a secret to a log.
impl fmt::Debug for SecretSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretSpec")
            .field("name", &self.name)
            .field("labels", &self.labels)
            .field("data", &self.data.as_ref().map(|d| format!("<{} bytes>", d.len())))
            .field("driver", &self.driver)
            .field("templating", &self.templating)
            .finish()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Config {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(default)]
    pub version: Version,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    #[serde(default)]
    pub spec: ConfigSpec,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default, with = "crate::base64::opt", skip_serializing_if = "Option::is_none")]
    pub data: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templating: Option<Driver>,
}

/// Where and how a secret or config appears in the container
/// (`--secret source=db_pw,target=pw,uid=33,gid=33,mode=0400`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileTarget {
    #[serde(rename = "Name", default)]
    pub name: String,
    #[serde(rename = "UID", default)]
    pub uid: String,
    #[serde(rename = "GID", default)]
    pub gid: String,
    /// Permission bits (Go's `os.FileMode`, 0444 by default in the CLI).
    #[serde(rename = "Mode", default)]
    pub mode: u32,
}

impl FileTarget {
    /// uid and gid as numbers; what is not a number is root.
    pub fn owner(&self) -> (u32, u32) {
        (self.uid.parse().unwrap_or(0), self.gid.parse().unwrap_or(0))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretReference {
    #[serde(rename = "File", default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileTarget>,
    #[serde(rename = "SecretID", default)]
    pub secret_id: String,
    #[serde(rename = "SecretName", default)]
    pub secret_name: String,
}

impl SecretReference {
    /// The path in the container: a relative target is under `/run/secrets`.
    pub fn target_path(&self) -> Option<String> {
        let name = &self.file.as_ref()?.name;
        Some(if name.starts_with('/') { name.clone() } else { format!("{SECRETS_DIR}/{name}") })
    }
}

/// `{"Runtime": {}}`: a config used by the runtime, not a file (Windows
/// credential specs). Kept so such specs round-trip.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeTarget {}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigReference {
    #[serde(rename = "File", default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileTarget>,
    #[serde(rename = "Runtime", default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeTarget>,
    #[serde(rename = "ConfigID", default)]
    pub config_id: String,
    #[serde(rename = "ConfigName", default)]
    pub config_name: String,
}

impl ConfigReference {
    /// The path in the container: a relative target is under `/`.
    pub fn target_path(&self) -> Option<String> {
        let name = &self.file.as_ref()?.name;
        Some(if name.starts_with('/') { name.clone() } else { format!("/{name}") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_json_is_dockers() {
        let s: SecretSpec = serde_json::from_str(r#"{"Name":"db_pw","Labels":{"a":"b"},"Data":"czNjcmV0"}"#).unwrap();
        assert_eq!(s.data.as_deref(), Some(&b"s3cret"[..]));
        assert!(!format!("{s:?}").contains("s3cret"), "Debug never shows the data");
        let shown = Secret { id: "x".into(), spec: SecretSpec { data: None, ..s }, ..Default::default() };
        let v = serde_json::to_value(&shown).unwrap();
        assert_eq!(v["Spec"], serde_json::json!({"Name": "db_pw", "Labels": {"a": "b"}}));
        assert_eq!(v["Version"]["Index"], 0);
        let bad = serde_json::from_str::<SecretSpec>(r#"{"Name":"x","Data":"!!"}"#).unwrap_err();
        assert!(bad.to_string().contains("illegal base64 data at input byte 0"), "{bad}");
    }

    #[test]
    fn references_and_targets() {
        let r: SecretReference =
            serde_json::from_str(r#"{"File":{"Name":"db_pw","UID":"33","GID":"0","Mode":292},"SecretName":"db_pw"}"#).unwrap();
        assert_eq!(r.target_path().unwrap(), "/run/secrets/db_pw");
        assert_eq!(r.file.as_ref().unwrap().owner(), (33, 0));
        assert_eq!(r.file.as_ref().unwrap().mode, 0o444);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["SecretID"], "");
        let c = ConfigReference { file: Some(FileTarget { name: "site.conf".into(), ..Default::default() }), ..Default::default() };
        assert_eq!(c.target_path().unwrap(), "/site.conf");
        let abs = ConfigReference { file: Some(FileTarget { name: "/etc/x".into(), ..Default::default() }), ..Default::default() };
        assert_eq!(abs.target_path().unwrap(), "/etc/x");
    }
}
