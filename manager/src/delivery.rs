//! Which secrets and configs go to a node with its assignments: only those
//! referenced by its tasks that may still start or run, secrets unsealed
//! (they travel over the node's mutual-TLS session only).

use std::collections::BTreeSet;

use shoal_api::secret::{Config, Secret};
use shoal_api::task::{Task, TaskState};

use crate::datakey::DataKey;
use crate::store::Store;

/// The payloads `tasks` need. A secret this manager cannot unseal (no key
/// yet) is left out: the worker then rejects the task, which is retried.
pub fn payloads_for(st: &Store, key: Option<&DataKey>, tasks: &[Task]) -> (Vec<Secret>, Vec<Config>) {
    let mut secret_ids = BTreeSet::new();
    let mut config_ids = BTreeSet::new();
    let live = tasks.iter().filter(|t| t.desired_state <= TaskState::Running && !t.status.state.is_terminal());
    for c in live.filter_map(|t| t.spec.container_spec.as_ref()) {
        secret_ids.extend(c.secrets.iter().map(|r| r.secret_id.as_str()));
        config_ids.extend(c.configs.iter().map(|r| r.config_id.as_str()));
    }
    let secrets = secret_ids
        .into_iter()
        .filter_map(|id| {
            let rec = st.secrets.get(id)?;
            let data = match key.map(|k| k.open(id, &rec.sealed)) {
                Some(Ok(d)) => d,
                Some(Err(e)) => {
                    tracing::warn!("secret {id} does not unseal: {e}");
                    return None;
                }
                None => return None,
            };
            let mut s = rec.secret.clone();
            s.spec.data = Some(data.to_vec());
            Some(s)
        })
        .collect();
    let configs = config_ids.into_iter().filter_map(|id| st.configs.get(id).cloned()).collect();
    (secrets, configs)
}

/// The registry credentials (`X-Registry-Auth` values) of the services
/// whose tasks in `tasks` may still start, unsealed, by service ID.
pub fn registry_auth_for(st: &Store, key: Option<&DataKey>, tasks: &[Task]) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let Some(key) = key else { return out };
    for t in tasks.iter().filter(|t| t.desired_state <= TaskState::Complete && t.status.state < TaskState::Running) {
        if out.contains_key(&t.service_id) {
            continue;
        }
        let Some(sealed) = st.registry_auth.get(&t.service_id) else { continue };
        match key.open(&registry_auth_context(&t.service_id), sealed) {
            Ok(plain) => {
                out.insert(t.service_id.clone(), String::from_utf8_lossy(&plain).into_owned());
            }
            Err(e) => tracing::warn!("registry credentials of service {} do not unseal: {e}", t.service_id),
        }
    }
    out
}

/// What a service's sealed registry credentials are bound to.
pub(crate) fn registry_auth_context(service_id: &str) -> String {
    format!("registry-auth:{service_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SecretRecord;
    use shoal_api::secret::{SecretReference, SecretSpec};
    use shoal_api::task::ContainerSpec;

    fn task(id: &str, secret: &str, desired: TaskState, state: TaskState) -> Task {
        let mut t = Task { id: id.into(), desired_state: desired, ..Default::default() };
        t.status.state = state;
        t.spec.container_spec =
            Some(ContainerSpec { secrets: vec![SecretReference { secret_id: secret.into(), ..Default::default() }], ..Default::default() });
        t
    }

    #[test]
    fn only_secrets_of_live_tasks_go_out_unsealed() {
        let key = DataKey::generate();
        let mut st = Store::default();
        for (id, data) in [("a", "alpha"), ("b", "bravo"), ("c", "charlie")] {
            let secret = Secret { id: id.into(), spec: SecretSpec { name: id.into(), ..Default::default() }, ..Default::default() };
            st.secrets.insert(id.into(), SecretRecord { secret, sealed: key.seal(id, data.as_bytes()) });
        }
        let tasks = vec![
            task("t1", "a", TaskState::Running, TaskState::Assigned),
            task("t2", "b", TaskState::Shutdown, TaskState::Running),
            task("t3", "c", TaskState::Running, TaskState::Failed),
        ];
        let (secrets, _) = payloads_for(&st, Some(&key), &tasks);
        assert_eq!(secrets.len(), 1, "a task told to stop or already ended gets nothing");
        assert_eq!(secrets[0].spec.data.as_deref(), Some(&b"alpha"[..]));
        let (none, _) = payloads_for(&st, None, &tasks);
        assert!(none.is_empty(), "without the key nothing is sent");
    }

    #[test]
    fn registry_credentials_go_out_for_tasks_still_to_pull() {
        let key = DataKey::generate();
        let mut st = Store::default();
        let ctx = registry_auth_context("svc");
        st.registry_auth.insert("svc".into(), key.seal(&ctx, b"header-value"));
        let mut pending = task("t1", "a", TaskState::Running, TaskState::Assigned);
        pending.service_id = "svc".into();
        let mut running = pending.clone();
        running.status.state = TaskState::Running;
        assert_eq!(registry_auth_for(&st, Some(&key), &[pending])["svc"], "header-value");
        assert!(registry_auth_for(&st, Some(&key), &[running]).is_empty(), "a running task needs no pull");
        let mut other = task("t2", "a", TaskState::Running, TaskState::Assigned);
        other.service_id = "other".into();
        assert!(registry_auth_for(&st, Some(&key), &[other]).is_empty());
    }
}
