//! SwarmKit's templates, expanded on the node for each task as SwarmKit's
//! agent does: in a container spec's environment values, hostname and
//! mount sources, targets, volume labels and driver options
//! (`--hostname "{{.Node.Hostname}}"`, `-e SLOT={{.Task.Slot}}`), and in
//! the payload of a secret or config created with `--template-driver
//! golang`, where `env`, `secret` and `config` also read the task's own
//! environment and the secrets and configs it references (by target name).
//!
//! The context is SwarmKit's: `.Service.ID/Name/Labels`,
//! `.Node.ID/Hostname/Platform.Architecture/Platform.OS`,
//! `.Task.ID/Name/Slot` (the node ID for a global task's slot).

use std::collections::BTreeMap;

use serde_json::Value;
use shoal_api::task::ContainerSpec;
use shoal_gotemplate::json::object;
use shoal_gotemplate::template;

/// What a template may read of a task and its node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskContext {
    pub service_id: String,
    pub service_name: String,
    pub service_labels: BTreeMap<String, String>,
    pub node_id: String,
    pub node_hostname: String,
    pub architecture: String,
    pub os: String,
    pub task_id: String,
    pub task_name: String,
    pub task_slot: String,
}

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

impl TaskContext {
    /// As Go sees the context struct (field order as SwarmKit declares it).
    fn data(&self) -> Value {
        let labels = Value::Object(self.service_labels.iter().map(|(k, v)| (k.clone(), s(v))).collect());
        object([
            ("Service", object([("ID", s(&self.service_id)), ("Name", s(&self.service_name)), ("Labels", labels)])),
            (
                "Node",
                object([
                    ("ID", s(&self.node_id)),
                    ("Hostname", s(&self.node_hostname)),
                    ("Platform", object([("Architecture", s(&self.architecture)), ("OS", s(&self.os))])),
                ]),
            ),
            ("Task", object([("ID", s(&self.task_id)), ("Name", s(&self.task_name)), ("Slot", s(&self.task_slot))])),
        ])
    }

    /// Expands one string (text without `{{` is returned as it is).
    pub fn expand(&self, text: &str) -> Result<String, String> {
        if !text.contains("{{") {
            return Ok(text.to_string());
        }
        template::parse(text)?.execute_with(&self.data(), &|_, _| None)
    }

    fn expand_map(&self, m: &BTreeMap<String, String>, what: &str) -> Result<BTreeMap<String, String>, String> {
        m.iter().map(|(k, v)| Ok((k.clone(), self.expand(v).map_err(|e| format!("expanding {what} {k:?}={v:?}: {e}"))?))).collect()
    }

    /// The container spec with its templates expanded (SwarmKit's
    /// `ExpandContainerSpec`: env values, hostname, mounts).
    pub fn expand_container_spec(&self, spec: &ContainerSpec) -> Result<ContainerSpec, String> {
        let mut out = spec.clone();
        for e in &mut out.env {
            if let Some((k, v)) = e.split_once('=') {
                let v = self.expand(v).map_err(|err| format!("expanding env {e:?}: {err}"))?;
                *e = format!("{k}={v}");
            }
        }
        out.hostname = self.expand(&spec.hostname).map_err(|e| format!("expanding hostname failed: {e}"))?;
        for m in &mut out.mounts {
            m.source = self.expand(&m.source).map_err(|e| format!("expanding mount source {:?}: {e}", m.source))?;
            m.target = self.expand(&m.target).map_err(|e| format!("expanding mount target {:?}: {e}", m.target))?;
            if let Some(v) = &mut m.volume_options {
                v.labels = self.expand_map(&v.labels, "volume label")?;
                if let Some(d) = &mut v.driver_config {
                    d.options = self.expand_map(&d.options, "volume driver option")?;
                }
            }
        }
        Ok(out)
    }

    /// A templated secret's or config's payload, expanded for this task:
    /// `env "X"` reads the container spec's environment, `secret "t"` and
    /// `config "t"` the payload of the task's secret or config with file
    /// target `t` (`lookup(is_secret, target)`). Returns whether a secret
    /// was read (the result is then as sensitive as a secret).
    pub fn expand_payload(&self, payload: &[u8], spec: &ContainerSpec, lookup: PayloadLookup<'_>) -> Result<(Vec<u8>, bool), String> {
        let text = std::str::from_utf8(payload).map_err(|_| "a templated payload must be UTF-8 text".to_string())?;
        let read_secret = std::cell::Cell::new(false);
        let funcs = |name: &str, args: &[Value]| -> Option<Result<Value, String>> {
            let arg = || match args {
                [Value::String(a)] => Ok(a.clone()),
                _ => Err(format!("wrong arguments for {name}: want one string")),
            };
            Some(match name {
                "env" => arg().map(|v| {
                    let found = spec.env.iter().find_map(|e| e.split_once('=').filter(|(k, _)| *k == v).map(|(_, x)| x.to_string()));
                    Value::String(found.unwrap_or_default())
                }),
                "secret" => arg().and_then(|t| {
                    read_secret.set(true);
                    lookup(true, &t).map(|b| Value::String(String::from_utf8_lossy(&b).into_owned()))
                }),
                "config" => arg().and_then(|t| lookup(false, &t).map(|b| Value::String(String::from_utf8_lossy(&b).into_owned()))),
                _ => return None,
            })
        };
        let out = template::parse(text)?.execute_with(&self.data(), &funcs)?;
        Ok((out.into_bytes(), read_secret.get()))
    }
}

/// Reads the raw payload of the task's secret (`true`) or config with a
/// file target name.
pub type PayloadLookup<'a> = &'a dyn Fn(bool, &str) -> Result<Vec<u8>, String>;

/// The one templating driver (`--template-driver golang`).
pub const GOLANG: &str = "golang";

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_api::task::{Mount, VolumeOptions};

    fn ctx() -> TaskContext {
        TaskContext {
            service_id: "svc1".into(),
            service_name: "web".into(),
            service_labels: BTreeMap::from([("tier".to_string(), "front".to_string())]),
            node_id: "node9".into(),
            node_hostname: "host-a".into(),
            architecture: "amd64".into(),
            os: "linux".into(),
            task_id: "t1".into(),
            task_name: "web.2.t1".into(),
            task_slot: "2".into(),
        }
    }

    #[test]
    fn a_container_spec_is_expanded_where_swarmkit_expands_it() {
        let spec = ContainerSpec {
            hostname: "{{.Node.Hostname}}-{{.Service.Name}}-{{.Task.Slot}}".into(),
            env: vec!["SLOT={{.Task.Slot}}".into(), "PLAIN=x".into(), "BARE".into(), "ARCH={{.Node.Platform.Architecture}}".into()],
            mounts: vec![Mount {
                r#type: "volume".into(),
                source: "data-{{.Task.Slot}}".into(),
                target: "/d/{{.Service.Labels.tier}}".into(),
                volume_options: Some(VolumeOptions { labels: BTreeMap::from([("t".into(), "{{.Task.ID}}".into())]), ..Default::default() }),
                ..Default::default()
            }],
            args: vec!["{{.Task.Slot}}".into()],
            ..Default::default()
        };
        let out = ctx().expand_container_spec(&spec).unwrap();
        assert_eq!(out.hostname, "host-a-web-2");
        assert_eq!(out.env, ["SLOT=2", "PLAIN=x", "BARE", "ARCH=amd64"]);
        assert_eq!((out.mounts[0].source.as_str(), out.mounts[0].target.as_str()), ("data-2", "/d/front"));
        assert_eq!(out.mounts[0].volume_options.as_ref().unwrap().labels["t"], "t1");
        assert_eq!(out.args, ["{{.Task.Slot}}"], "arguments are not templates in SwarmKit");
        let bad = ContainerSpec { hostname: "{{.Node.Hostname".into(), ..Default::default() };
        assert!(ctx().expand_container_spec(&bad).unwrap_err().starts_with("expanding hostname failed"));
    }

    #[test]
    fn a_payload_reads_env_secrets_and_configs_of_the_task() {
        let spec = ContainerSpec { env: vec!["DB_USER=app".into()], ..Default::default() };
        let lookup = |secret: bool, target: &str| match (secret, target) {
            (true, "db_pass") => Ok(b"s3cret".to_vec()),
            (false, "base.conf") => Ok(b"port=5432".to_vec()),
            _ => Err(format!("{} target {target} not found", if secret { "secret" } else { "config" })),
        };
        let tpl = b"user={{env \"DB_USER\"}} host={{.Node.Hostname}} {{config \"base.conf\"}} missing={{env \"NOPE\"}}";
        let (out, sensitive) = ctx().expand_payload(tpl, &spec, &lookup).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "user=app host=host-a port=5432 missing=");
        assert!(!sensitive);
        let (out, sensitive) = ctx().expand_payload(b"pass={{secret \"db_pass\"}}", &spec, &lookup).unwrap();
        assert_eq!((out.as_slice(), sensitive), (&b"pass=s3cret"[..], true));
        let err = ctx().expand_payload(b"{{secret \"other\"}}", &spec, &lookup).unwrap_err();
        assert!(err.contains("secret target other not found"), "{err}");
    }
}
