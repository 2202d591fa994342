//! Secrets and configs in the store: applying their commands, resolving
//! them by ID, name or ID prefix, and the reference checks services need.
//!
//! A secret's data is kept sealed (`SecretRecord::sealed`, see
//! `crate::datakey`): the store, the Raft log and the snapshots never hold
//! it in clear, and `apply` never needs the key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shoal_api::secret::{Config, Secret};
use shoal_api::service::ServiceSpec;
use shoal_api::{ApiError, Version};

use super::error::{Code, StoreError};
use super::{Command, Store};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SecretRecord {
    /// The secret as the API shows it: `Spec.Data` is always None here.
    pub secret: Secret,
    /// The data, sealed with the cluster's data key, bound to the secret's ID.
    pub sealed: String,
}

/// "service web" / "services a, b", SwarmKit's listing in its errors.
fn in_use(kind: &str, name: &str, services: &[String]) -> StoreError {
    let noun = if services.len() == 1 { "service" } else { "services" };
    StoreError::rpc(Code::InvalidArgument, format!("{kind} '{name}' is in use by the following {noun}: {}", services.join(", ")))
}

pub(super) fn apply(store: &mut Store, version: Version, at: String, cmd: Command) -> Result<serde_json::Value, StoreError> {
    match cmd {
        Command::CreateSecret { secret } => {
            let name = &secret.secret.spec.name;
            // Names are unique regardless of case, as in SwarmKit's store.
            if store.secrets.values().any(|s| s.secret.spec.name.eq_ignore_ascii_case(name)) {
                return Err(StoreError::rpc(Code::AlreadyExists, format!("secret {name} already exists")));
            }
            let mut rec = *secret;
            rec.secret.spec.data = None;
            rec.secret.version = version;
            store.secrets.insert(rec.secret.id.clone(), rec);
        }
        Command::UpdateSecret { id, version: expected, labels } => {
            let rec = store.secrets.get_mut(&id).ok_or_else(|| StoreError::rpc(Code::NotFound, format!("secret {id} not found")))?;
            if rec.secret.version.index != expected {
                return Err(StoreError::OutOfSequence);
            }
            rec.secret.spec.labels = labels;
            rec.secret.version = version;
            rec.secret.updated_at = at;
        }
        Command::RemoveSecret { id } => {
            let rec = store.secrets.get(&id).ok_or_else(|| StoreError::rpc(Code::NotFound, format!("secret {id} not found")))?;
            let users = services_using(store, |c| c.secrets.iter().any(|r| r.secret_id == id));
            if !users.is_empty() {
                return Err(in_use("secret", &rec.secret.spec.name, &users));
            }
            store.secrets.remove(&id);
        }
        Command::CreateConfig { config } => {
            let name = &config.spec.name;
            if store.configs.values().any(|c| c.spec.name.eq_ignore_ascii_case(name)) {
                return Err(StoreError::rpc(Code::AlreadyExists, format!("config {name} already exists")));
            }
            let mut config = *config;
            config.version = version;
            store.configs.insert(config.id.clone(), config);
        }
        Command::UpdateConfig { id, version: expected, labels } => {
            let c = store.configs.get_mut(&id).ok_or_else(|| StoreError::rpc(Code::NotFound, format!("config {id} not found")))?;
            if c.version.index != expected {
                return Err(StoreError::OutOfSequence);
            }
            c.spec.labels = labels;
            c.version = version;
            c.updated_at = at;
        }
        Command::RemoveConfig { id } => {
            let c = store.configs.get(&id).ok_or_else(|| StoreError::rpc(Code::NotFound, format!("config {id} not found")))?;
            let users = services_using(store, |cs| cs.configs.iter().any(|r| r.config_id == id));
            if !users.is_empty() {
                return Err(in_use("config", &c.spec.name, &users));
            }
            store.configs.remove(&id);
        }
        other => unreachable!("not a secret or config command: {other:?}"),
    }
    Ok(serde_json::Value::Null)
}

/// Names of the services whose container spec satisfies `uses`.
fn services_using(store: &Store, uses: impl Fn(&shoal_api::task::ContainerSpec) -> bool) -> Vec<String> {
    store
        .services
        .values()
        .filter(|s| s.spec.task_template.container_spec.as_ref().is_some_and(&uses))
        .map(|s| s.spec.name.clone())
        .collect()
}

/// Every secret and config a service spec references exists under that ID
/// and name (checked at apply time, so a concurrent removal cannot slip
/// between validation and commit). SwarmKit's wording.
pub fn check_references(store: &Store, spec: &ServiceSpec) -> Result<(), StoreError> {
    let Some(c) = spec.task_template.container_spec.as_ref() else { return Ok(()) };
    let missing: Vec<String> = c
        .secrets
        .iter()
        .filter(|r| store.secrets.get(&r.secret_id).map(|s| s.secret.spec.name != r.secret_name).unwrap_or(true))
        .map(|r| r.secret_name.clone())
        .collect();
    if !missing.is_empty() {
        let noun = if missing.len() == 1 { "secret" } else { "secrets" };
        return Err(StoreError::rpc(Code::InvalidArgument, format!("{noun} not found: {}", missing.join(", "))));
    }
    let missing: Vec<String> = c
        .configs
        .iter()
        .filter(|r| store.configs.get(&r.config_id).map(|x| x.spec.name != r.config_name).unwrap_or(true))
        .map(|r| r.config_name.clone())
        .collect();
    if !missing.is_empty() {
        let noun = if missing.len() == 1 { "config" } else { "configs" };
        return Err(StoreError::rpc(Code::InvalidArgument, format!("{noun} not found: {}", missing.join(", "))));
    }
    Ok(())
}

/// Docker's lookup: full ID, then exact name, then unique ID prefix.
fn find<'a, T>(kind: &str, key: &str, all: &'a BTreeMap<String, T>, name: impl Fn(&T) -> &str) -> Result<&'a T, ApiError> {
    if let Some(x) = all.get(key) {
        return Ok(x);
    }
    let by_name: Vec<&T> = all.values().filter(|x| name(x) == key).collect();
    let matches: Vec<(&String, &T)> = if by_name.is_empty() {
        all.iter().filter(|(id, _)| !key.is_empty() && id.starts_with(key)).collect()
    } else {
        return match by_name.len() {
            1 => Ok(by_name[0]),
            n => Err(ApiError::bad_request(format!("{kind} {key} is ambiguous ({n} matches found)"))),
        };
    };
    match matches.len() {
        0 => Err(ApiError::not_found(format!("{kind} {key} not found"))),
        1 => Ok(matches[0].1),
        n => Err(ApiError::bad_request(format!("{kind} {key} is ambiguous ({n} matches found)"))),
    }
}

impl Store {
    pub fn find_secret(&self, key: &str) -> Result<&SecretRecord, ApiError> {
        find("secret", key, &self.secrets, |r| r.secret.spec.name.as_str())
    }

    pub fn find_config(&self, key: &str) -> Result<&Config, ApiError> {
        find("config", key, &self.configs, |c| c.spec.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{apply as apply_env, Envelope};
    use shoal_api::secret::{ConfigSpec, FileTarget, SecretReference, SecretSpec};
    use shoal_api::service::Service;
    use shoal_api::task::ContainerSpec;

    fn run(s: &mut Store, index: u64, command: Command) -> Result<serde_json::Value, ApiError> {
        apply_env(s, index, Envelope { proposal: 0, at: format!("2026-01-01T00:00:{index:02}Z"), command }).map_err(ApiError::from)
    }

    fn secret(id: &str, name: &str) -> Command {
        let secret = Secret { id: id.into(), spec: SecretSpec { name: name.into(), ..Default::default() }, ..Default::default() };
        Command::CreateSecret { secret: Box::new(SecretRecord { secret, sealed: format!("sealed-{id}") }) }
    }

    fn service_using(id: &str, secret_id: &str, secret_name: &str) -> Command {
        let mut spec = ServiceSpec { name: format!("svc-{id}"), ..Default::default() };
        spec.task_template.container_spec = Some(ContainerSpec {
            image: "busybox".into(),
            secrets: vec![SecretReference {
                file: Some(FileTarget { name: "pw".into(), uid: "0".into(), gid: "0".into(), mode: 0o444 }),
                secret_id: secret_id.into(),
                secret_name: secret_name.into(),
            }],
            ..Default::default()
        });
        Command::CreateService { service: Box::new(Service { id: id.into(), spec, ..Default::default() }), registry_auth: None }
    }

    #[test]
    fn secrets_are_unique_by_name_and_data_is_never_stored_in_clear() {
        let mut s = Store::default();
        let mut with_data = secret("s1", "db_pw");
        if let Command::CreateSecret { secret } = &mut with_data {
            secret.secret.spec.data = Some(b"s3cret".to_vec());
        }
        run(&mut s, 2, with_data).unwrap();
        assert!(s.secrets["s1"].secret.spec.data.is_none());
        assert!(!String::from_utf8_lossy(&s.to_bytes()).contains("s3cret"));
        let dup = run(&mut s, 3, secret("s2", "DB_PW")).unwrap_err();
        assert_eq!(dup.status, 409);
        assert_eq!(dup.message, "rpc error: code = AlreadyExists desc = secret DB_PW already exists");
        assert_eq!(s.secrets.len(), 1);
        assert_eq!(s.secrets["s1"].secret.version.index, 2);
    }

    #[test]
    fn updates_check_the_version_and_change_labels_only() {
        let mut s = Store::default();
        run(&mut s, 2, secret("s1", "db_pw")).unwrap();
        let labels: BTreeMap<String, String> = [("a".to_string(), "b".to_string())].into();
        let stale = Command::UpdateSecret { id: "s1".into(), version: 1, labels: labels.clone() };
        assert_eq!(run(&mut s, 3, stale).unwrap_err(), ApiError::out_of_sequence());
        run(&mut s, 4, Command::UpdateSecret { id: "s1".into(), version: 2, labels }).unwrap();
        let rec = &s.secrets["s1"];
        assert_eq!(rec.secret.spec.labels["a"], "b");
        assert_eq!((rec.secret.version.index, rec.sealed.as_str()), (4, "sealed-s1"));
        assert_eq!(rec.secret.updated_at, "2026-01-01T00:00:04Z");
    }

    #[test]
    fn a_secret_in_use_cannot_go_and_services_need_existing_secrets() {
        let mut s = Store::default();
        let missing = run(&mut s, 2, service_using("v1", "nope", "ghost")).unwrap_err();
        assert_eq!(missing.message, "rpc error: code = InvalidArgument desc = secret not found: ghost");
        assert!(s.services.is_empty());
        run(&mut s, 3, secret("s1", "db_pw")).unwrap();
        let wrong_name = run(&mut s, 4, service_using("v1", "s1", "other")).unwrap_err();
        assert!(wrong_name.message.ends_with("secret not found: other"));
        run(&mut s, 5, service_using("v1", "s1", "db_pw")).unwrap();
        let refused = run(&mut s, 6, Command::RemoveSecret { id: "s1".into() }).unwrap_err();
        assert_eq!(refused.status, 400);
        assert_eq!(refused.message, "rpc error: code = InvalidArgument desc = secret 'db_pw' is in use by the following service: svc-v1");
        run(&mut s, 7, Command::RemoveService { id: "v1".into() }).unwrap();
        run(&mut s, 8, Command::RemoveSecret { id: "s1".into() }).unwrap();
        assert!(s.secrets.is_empty());
        assert_eq!(run(&mut s, 9, Command::RemoveSecret { id: "s1".into() }).unwrap_err().status, 404);
    }

    #[test]
    fn configs_keep_their_data_and_lookup_is_by_id_name_or_prefix() {
        let mut s = Store::default();
        let config = |id: &str, name: &str| Config {
            id: id.into(),
            spec: ConfigSpec { name: name.into(), data: Some(b"listen 80;".to_vec()), ..Default::default() },
            ..Default::default()
        };
        run(&mut s, 2, Command::CreateConfig { config: Box::new(config("abc1", "site")) }).unwrap();
        run(&mut s, 3, Command::CreateConfig { config: Box::new(config("abc2", "other")) }).unwrap();
        assert_eq!(run(&mut s, 4, Command::CreateConfig { config: Box::new(config("x", "site")) }).unwrap_err().status, 409);
        assert_eq!(s.find_config("site").unwrap().spec.data.as_deref(), Some(&b"listen 80;"[..]));
        assert_eq!(s.find_config("abc2").unwrap().spec.name, "other");
        assert_eq!(s.find_config("abc").unwrap_err().message, "config abc is ambiguous (2 matches found)");
        assert_eq!(s.find_config("zzz").unwrap_err().message, "config zzz not found");
        assert_eq!(s.find_config("zzz").unwrap_err().status, 404);
        run(&mut s, 5, secret("q1", "pw")).unwrap();
        assert_eq!(s.find_secret("q").unwrap().secret.id, "q1");
        assert_eq!(s.find_secret("").unwrap_err().status, 404);
    }
}
