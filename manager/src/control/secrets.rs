//! The control API behind `/secrets`, and the secret and config references
//! of service specs: SwarmKit's validation and wording. A secret's data is
//! sealed here, on the manager that takes the request, before it is
//! proposed; the API never returns it.

use shoal_api::filters::Filters;
use shoal_api::secret::{Secret, SecretSpec, MAX_SECRET_SIZE};
use shoal_api::service::ServiceSpec;
use shoal_api::ApiError;

use super::ControlApi;
use crate::store::{Command, SecretRecord, Store};

pub const SECRET_FILTERS: &[&str] = &["id", "label", "name", "names"];

pub(super) fn invalid(msg: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("rpc error: code = InvalidArgument desc = {msg}"))
}

/// `^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$`, at most 64 characters.
pub fn validate_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(invalid("name must be provided"));
    }
    let b = name.as_bytes();
    let ok = b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if !ok {
        return Err(invalid(
            "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]",
        ));
    }
    Ok(())
}

pub fn validate_secret_spec(spec: &SecretSpec) -> Result<(), ApiError> {
    validate_name(&spec.name)?;
    if let Some(d) = &spec.driver {
        if d.name.is_empty() {
            return Err(invalid("secret driver must have a name"));
        }
        return Err(invalid(format!("secret driver {:?} is not supported: shoald keeps secrets in its own store", d.name)));
    }
    check_templating(spec.templating.as_ref())?;
    let len = spec.data.as_ref().map(Vec::len).unwrap_or(0);
    if len == 0 || len >= MAX_SECRET_SIZE {
        return Err(invalid(format!("secret data must be larger than 0 and less than {MAX_SECRET_SIZE} bytes")));
    }
    Ok(())
}

/// `id` and `name` are prefixes, `names` exact; those three are
/// alternatives (any may match), labels must all match.
pub(super) fn matches(filters: &Filters, id: &str, name: &str, labels: &std::collections::BTreeMap<String, String>) -> bool {
    let keyed = ["id", "name", "names"].iter().any(|k| !filters.get(k).is_empty());
    let by_key = !keyed
        || filters.get("id").iter().any(|v| id.starts_with(v.as_str()))
        || filters.get("name").iter().any(|v| name.starts_with(v.as_str()))
        || filters.get("names").iter().any(|v| v == name);
    by_key && filters.labels_match("label", labels)
}

/// Fills in the IDs of secret and config references given by name only
/// (the docker CLI resolves them itself; `shoal` and API clients may send
/// names), then checks them as SwarmKit does. Unknown ones are refused
/// with SwarmKit's "secret not found: x"; `apply` checks again at commit.
pub fn resolve_references(st: &Store, spec: &mut ServiceSpec) -> Result<(), ApiError> {
    let Some(c) = spec.task_template.container_spec.as_mut() else { return Ok(()) };
    for r in c.secrets.iter_mut() {
        if r.secret_id.is_empty() {
            if let Some(rec) = st.secrets.values().find(|s| s.secret.spec.name == r.secret_name) {
                r.secret_id = rec.secret.id.clone();
            }
        } else if r.secret_name.is_empty() {
            if let Some(rec) = st.secrets.get(&r.secret_id) {
                r.secret_name = rec.secret.spec.name.clone();
            }
        }
    }
    for r in c.configs.iter_mut() {
        if r.config_id.is_empty() {
            if let Some(cfg) = st.configs.values().find(|x| x.spec.name == r.config_name) {
                r.config_id = cfg.id.clone();
            }
        } else if r.config_name.is_empty() {
            if let Some(cfg) = st.configs.get(&r.config_id) {
                r.config_name = cfg.spec.name.clone();
            }
        }
    }
    let mut targets: Vec<(String, String)> = Vec::new();
    for r in &c.secrets {
        if r.secret_id.is_empty() && r.secret_name.is_empty() {
            return Err(invalid("malformed secret reference"));
        }
        let file = r.file.as_ref().ok_or_else(|| invalid("malformed secret reference, no target provided"))?;
        if file.name.is_empty() {
            return Err(invalid("malformed file secret reference, invalid target file name provided"));
        }
        if let Some((_, prev)) = targets.iter().find(|(t, _)| *t == file.name) {
            return Err(invalid(format!("secret references '{prev}' and '{}' have a conflicting target: '{}'", r.secret_name, file.name)));
        }
        targets.push((file.name.clone(), r.secret_name.clone()));
    }
    targets.clear();
    for r in &c.configs {
        if r.config_id.is_empty() && r.config_name.is_empty() {
            return Err(invalid("malformed config reference"));
        }
        if r.runtime.is_some() {
            return Err(invalid("runtime config references are not supported by shoald (only file targets)"));
        }
        let file = r.file.as_ref().ok_or_else(|| invalid("malformed config reference, no target provided"))?;
        if file.name.is_empty() {
            return Err(invalid("malformed file config reference, invalid target file name provided"));
        }
        if let Some((_, prev)) = targets.iter().find(|(t, _)| *t == file.name) {
            return Err(invalid(format!("config references '{prev}' and '{}' have a conflicting target: '{}'", r.config_name, file.name)));
        }
        targets.push((file.name.clone(), r.config_name.clone()));
    }
    crate::store::check_references(st, spec).map_err(ApiError::from)
}

impl ControlApi {
    pub async fn create_secret(&self, mut spec: SecretSpec) -> Result<String, ApiError> {
        validate_secret_spec(&spec)?;
        let key = self
            .keys
            .data_key()
            .ok_or_else(|| ApiError::unavailable("this manager does not hold the secrets key yet; retry shortly or use another manager"))?;
        let id = shoal_api::id::new_id();
        let data = spec.data.take().unwrap_or_default();
        let sealed = key.seal(&id, &data);
        let now = shoal_api::time::now_rfc3339();
        let secret = Secret { id: id.clone(), created_at: now.clone(), updated_at: now, spec, ..Default::default() };
        self.cluster.propose(Command::CreateSecret { secret: Box::new(SecretRecord { secret, sealed }) }).await?;
        Ok(id)
    }

    pub fn secrets(&self, filters: &Filters) -> Vec<Secret> {
        let st = self.cluster.store();
        st.secrets.values().map(|r| &r.secret).filter(|s| matches(filters, &s.id, &s.spec.name, &s.spec.labels)).cloned().collect()
    }

    pub fn secret(&self, key: &str) -> Result<Secret, ApiError> {
        Ok(self.cluster.store().find_secret(key)?.secret.clone())
    }

    /// Labels only: a different name, or data that differs from what is
    /// stored, is refused (SwarmKit compares the data in constant time).
    pub async fn update_secret(&self, key: &str, version: u64, spec: SecretSpec) -> Result<(), ApiError> {
        let (id, name, sealed) = {
            let st = self.cluster.store();
            let r = st.find_secret(key)?;
            (r.secret.id.clone(), r.secret.spec.name.clone(), r.sealed.clone())
        };
        let only_labels = || invalid("only updates to Labels are allowed");
        if spec.name != name {
            return Err(only_labels());
        }
        if let Some(new) = &spec.data {
            let key = self.keys.data_key().ok_or_else(|| ApiError::unavailable("this manager does not hold the secrets key yet"))?;
            let old = key.open(&id, &sealed).map_err(ApiError::internal)?;
            if !constant_time_eq(&old, new) {
                return Err(only_labels());
            }
        }
        self.cluster.propose(Command::UpdateSecret { id, version, labels: spec.labels }).await.map(|_| ()).map_err(ApiError::from)
    }

    pub async fn remove_secret(&self, key: &str) -> Result<(), ApiError> {
        let id = self.cluster.store().find_secret(key)?.secret.id.clone();
        self.cluster.propose(Command::RemoveSecret { id }).await.map(|_| ()).map_err(ApiError::from)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The one templating driver nodes expand (`--template-driver golang`);
/// an empty one means none, as in SwarmKit.
pub fn check_templating(t: Option<&shoal_api::task::Driver>) -> Result<(), ApiError> {
    match t {
        Some(d) if !d.name.is_empty() && d.name != "golang" => {
            Err(invalid(format!("templating driver {:?} is not supported: the only templating driver is \"golang\"", d.name)))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golang_is_the_one_templating_driver() {
        let d = |n: &str| shoal_api::task::Driver { name: n.into(), ..Default::default() };
        assert!(check_templating(None).is_ok() && check_templating(Some(&d("golang"))).is_ok() && check_templating(Some(&d(""))).is_ok());
        let e = check_templating(Some(&d("jinja"))).unwrap_err();
        assert!(e.message.contains("templating driver \"jinja\" is not supported"), "{}", e.message);
    }
    use shoal_api::secret::{FileTarget, SecretReference};
    use shoal_api::task::{ContainerSpec, Driver};

    #[test]
    fn names_and_sizes_follow_swarmkit() {
        for good in ["db_pw", "a", "a.b-c_d", "X9"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["-a", "a-", "a b", "ä", &"x".repeat(65)] {
            let e = validate_name(bad).unwrap_err();
            assert!(e.message.contains("invalid name, only 64 [a-zA-Z0-9-_.] characters allowed"), "{bad}: {e}");
        }
        assert!(validate_name("").unwrap_err().message.ends_with("name must be provided"));
        let spec = |n: usize| SecretSpec { name: "s".into(), data: Some(vec![b'x'; n]), ..Default::default() };
        assert!(validate_secret_spec(&spec(1)).is_ok());
        assert!(validate_secret_spec(&spec(MAX_SECRET_SIZE - 1)).is_ok());
        for n in [0, MAX_SECRET_SIZE] {
            let e = validate_secret_spec(&spec(n)).unwrap_err();
            assert_eq!(e.message, "rpc error: code = InvalidArgument desc = secret data must be larger than 0 and less than 512000 bytes");
            assert_eq!(e.status, 400);
        }
        let mut d = spec(3);
        d.driver = Some(Driver { name: "vault".into(), ..Default::default() });
        assert!(validate_secret_spec(&d).unwrap_err().message.contains("not supported"));
    }

    #[test]
    fn filters_are_alternatives_except_labels() {
        let f = Filters::parse(Some(r#"{"name":{"db":true},"id":{"zz":true}}"#), SECRET_FILTERS).unwrap();
        let labels = Default::default();
        assert!(matches(&f, "abc", "db_pw", &labels));
        assert!(matches(&f, "zz1", "web", &labels));
        assert!(!matches(&f, "abc", "web", &labels));
        let f = Filters::parse(Some(r#"{"names":{"db":true}}"#), SECRET_FILTERS).unwrap();
        assert!(!matches(&f, "abc", "db_pw", &labels), "names is exact");
        let f = Filters::parse(Some(r#"{"label":{"env=prod":true}}"#), SECRET_FILTERS).unwrap();
        assert!(!matches(&f, "abc", "db_pw", &labels));
        assert!(Filters::parse(Some(r#"{"driver":{"x":true}}"#), SECRET_FILTERS).is_err());
    }

    #[test]
    fn references_resolve_by_name_and_targets_must_differ() {
        let mut st = Store::default();
        let secret = Secret { id: "s1".into(), spec: SecretSpec { name: "db_pw".into(), ..Default::default() }, ..Default::default() };
        st.secrets.insert("s1".into(), SecretRecord { secret, sealed: String::new() });
        let r = |name: &str, target: &str| SecretReference {
            file: Some(FileTarget { name: target.into(), uid: "0".into(), gid: "0".into(), mode: 0o444 }),
            secret_id: String::new(),
            secret_name: name.into(),
        };
        let mut spec = ServiceSpec::default();
        spec.task_template.container_spec = Some(ContainerSpec { secrets: vec![r("db_pw", "db_pw")], ..Default::default() });
        resolve_references(&st, &mut spec).unwrap();
        assert_eq!(spec.task_template.container_spec.as_ref().unwrap().secrets[0].secret_id, "s1");
        spec.task_template.container_spec.as_mut().unwrap().secrets.push(r("xyz", "x"));
        let e = resolve_references(&st, &mut spec).unwrap_err();
        assert_eq!(e.message, "rpc error: code = InvalidArgument desc = secret not found: xyz");
        let c = spec.task_template.container_spec.as_mut().unwrap();
        c.secrets = vec![r("db_pw", "same"), r("db_pw", "same")];
        let e = resolve_references(&st, &mut spec).unwrap_err();
        assert!(e.message.ends_with("secret references 'db_pw' and 'db_pw' have a conflicting target: 'same'"), "{e}");
    }
}
