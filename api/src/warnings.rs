//! What a service create or update answers in `Warnings`: the fields of
//! the request that Shoal keeps (they read back on inspect) or cannot keep,
//! but does not act on. Nothing a client sends is dropped without a word.
//!
//! Two kinds: fields of Shoal's own spec types whose value changes nothing
//! on a node (the log driver, a mount's consistency, ...), read from the
//! decoded spec; and fields Docker's API knows that Shoal's types do not
//! have (the lenient decoder skips unknown keys, as Go's does), found in
//! the request's JSON by their path, keys compared ignoring case as Go
//! matches them.

use serde_json::Value;

use crate::service::ServiceSpec;

/// Docker's fields that Shoal's service spec has no place for, by path
/// from the spec's root (`[]` steps into every element of an array). A
/// zero value is unset; so is `Isolation: "default"`, which the docker CLI
/// always sends.
const NOT_KEPT: &[(&[&str], &str)] = &[
    (&["TaskTemplate", "ContainerSpec", "Isolation"], "isolation modes are for Windows containers"),
    (&["TaskTemplate", "ContainerSpec", "OomScoreAdj"], "the kernel's default OOM score is used"),
    (&["TaskTemplate", "ContainerSpec", "Mounts", "[]", "BindOptions", "CreateMountpoint"], "a missing bind source fails the task"),
    (&["TaskTemplate", "ContainerSpec", "Mounts", "[]", "BindOptions", "ReadOnlyNonRecursive"], "read-only binds are recursive"),
    (&["TaskTemplate", "ContainerSpec", "Mounts", "[]", "BindOptions", "ReadOnlyForceRecursive"], "read-only binds are recursive"),
    (&["TaskTemplate", "ContainerSpec", "Mounts", "[]", "TmpfsOptions", "Options"], "only SizeBytes and Mode are applied"),
    (&["TaskTemplate", "ContainerSpec", "Mounts", "[]", "ImageOptions"], "image mounts are not supported"),
    (&["TaskTemplate", "ContainerSpec", "Mounts", "[]", "ClusterOptions"], "cluster volumes are not supported"),
    (&["TaskTemplate", "Resources", "SwapBytes"], "swap is not limited"),
    (&["TaskTemplate", "Resources", "MemorySwappiness"], "swappiness is the kernel's"),
    (&["TaskTemplate", "PluginSpec"], "plugin tasks are not supported"),
    (&["TaskTemplate", "NetworkAttachmentSpec"], "attachment tasks are made by the swarm itself"),
    (&["Networks"], "put networks in TaskTemplate.Networks"),
];

/// Go's zero value: what a client sends for a field it did not set (also
/// how the container create body's unsupported fields are told apart).
pub fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_zero),
    }
}

/// The field `key` of an object, as Go's decoder finds it: an exact
/// match, else one that differs in case only.
fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let o = v.as_object()?;
    o.get(key).or_else(|| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// Every value at `path` under `v` that is set, with its printed path.
fn set_at(v: &Value, path: &[&str], shown: String, out: &mut Vec<String>) {
    let Some((step, rest)) = path.split_first() else {
        let unset = is_zero(v) || (shown.ends_with("Isolation") && v == "default");
        if !unset {
            out.push(shown);
        }
        return;
    };
    if *step == "[]" {
        for (i, e) in v.as_array().into_iter().flatten().enumerate() {
            set_at(e, rest, format!("{shown}[{i}]"), out);
        }
    } else if let Some(next) = field(v, step) {
        let shown = if shown.is_empty() { step.to_string() } else { format!("{shown}.{step}") };
        set_at(next, rest, shown, out);
    }
}

/// The warnings for a service create or update: `spec` as decoded, `raw`
/// the request body as sent.
pub fn service(spec: &ServiceSpec, raw: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let t = &spec.task_template;
    if let Some(d) = &t.log_driver {
        if !matches!(d.name.as_str(), "" | "json-file") {
            out.push(format!(
                "TaskTemplate.LogDriver.Name {:?} is kept but not used: task logs are written by the json-file driver",
                d.name
            ));
        } else if !d.options.is_empty() {
            let keys: Vec<&str> = d.options.keys().map(String::as_str).collect();
            out.push(format!("TaskTemplate.LogDriver.Options {} are kept but not used: task log files are not rotated", keys.join(", ")));
        }
    }
    if !matches!(t.runtime.as_str(), "" | "container") {
        out.push(format!("TaskTemplate.Runtime {:?} is kept but not used: tasks run as containers", t.runtime));
    }
    if let Some(c) = &t.container_spec {
        for (i, m) in c.mounts.iter().enumerate() {
            if !matches!(m.consistency.as_str(), "" | "default" | "consistent") {
                out.push(format!(
                    "TaskTemplate.ContainerSpec.Mounts[{i}].Consistency {:?} is kept but not used: it applies only on Docker Desktop",
                    m.consistency
                ));
            }
        }
    }
    // SwarmKit spreads over node and engine labels only; another
    // descriptor changes nothing (the scheduler spreads by node anyway).
    for (i, p) in t.placement.iter().flat_map(|p| p.preferences.iter()).enumerate() {
        let Some(d) = p.spread.as_ref().map(|s| s.spread_descriptor.as_str()) else { continue };
        let lower = d.to_ascii_lowercase();
        if !(lower.starts_with("node.labels.") || lower.starts_with("engine.labels.")) {
            out.push(format!(
                "TaskTemplate.Placement.Preferences[{i}].Spread.SpreadDescriptor {d:?} is kept but not used: spread is over node.labels.* or engine.labels.*"
            ));
        }
    }
    for n in &t.networks {
        if !n.driver_opts.is_empty() {
            let keys: Vec<&str> = n.driver_opts.keys().map(String::as_str).collect();
            out.push(format!("TaskTemplate.Networks ({}).DriverOpts {} are kept but not used", n.target, keys.join(", ")));
        }
    }
    for (path, why) in NOT_KEPT {
        let mut found = Vec::new();
        set_at(raw, path, String::new(), &mut found);
        out.extend(found.into_iter().map(|p| format!("{p} is ignored: {why}")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warn(body: &str) -> Vec<String> {
        let spec: ServiceSpec = crate::lenient::from_str(body).unwrap();
        service(&spec, &serde_json::from_str(body).unwrap())
    }

    #[test]
    fn a_plain_spec_and_the_sdks_nulls_warn_of_nothing() {
        assert!(warn(r#"{"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"busybox","Isolation":"","OomScoreAdj":0},"Runtime":"container","LogDriver":{"Name":"json-file"}},"Networks":null}"#).is_empty());
        assert!(
            warn(r#"{"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"busybox","Isolation":"default"}}}"#).is_empty(),
            "the CLI's"
        );
        assert_eq!(warn(r#"{"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"busybox","Isolation":"hyperv"}}}"#).len(), 1);
    }

    #[test]
    fn kept_fields_without_effect_are_named() {
        let w = warn(
            r#"{"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"busybox","Mounts":[{"Type":"bind","Source":"/a","Target":"/b","Consistency":"cached"}]},
                "LogDriver":{"Name":"syslog","Options":{"tag":"x"}},"Networks":[{"Target":"back","DriverOpts":{"com.example":"1"}}]}}"#,
        );
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].starts_with("TaskTemplate.LogDriver.Name \"syslog\" is kept but not used"), "{w:?}");
        assert!(w[1].starts_with("TaskTemplate.ContainerSpec.Mounts[0].Consistency \"cached\""), "{w:?}");
        assert!(w[2].starts_with("TaskTemplate.Networks (back).DriverOpts com.example"), "{w:?}");
        let w = warn(
            r#"{"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"busybox"},"LogDriver":{"Name":"json-file","Options":{"max-size":"10m"}}}}"#,
        );
        assert_eq!(w, ["TaskTemplate.LogDriver.Options max-size are kept but not used: task log files are not rotated"]);
    }

    #[test]
    fn a_spread_over_what_swarmkit_does_not_spread_over_is_named() {
        let w = warn(
            r#"{"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"busybox"},"Placement":{"Preferences":[{"Spread":{"SpreadDescriptor":"node.labels.zone"}},{"Spread":{"SpreadDescriptor":"node.id"}}]}}}"#,
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("TaskTemplate.Placement.Preferences[1].Spread.SpreadDescriptor \"node.id\" is kept but not used"),
            "{w:?}"
        );
    }

    #[test]
    fn dockers_fields_that_shoal_has_no_place_for_are_named_with_their_path() {
        let w = warn(
            r#"{"Name":"web","networks":[{"Target":"x"}],"TaskTemplate":{"containerspec":{"Image":"busybox","OomScoreAdj":500,
                "Mounts":[{"Type":"tmpfs","Target":"/t"},{"Type":"bind","Source":"/a","Target":"/b","BindOptions":{"CreateMountpoint":true}}]},
                "Resources":{"SwapBytes":1048576}}}"#,
        );
        assert_eq!(
            w,
            [
                "TaskTemplate.ContainerSpec.OomScoreAdj is ignored: the kernel's default OOM score is used",
                "TaskTemplate.ContainerSpec.Mounts[1].BindOptions.CreateMountpoint is ignored: a missing bind source fails the task",
                "TaskTemplate.Resources.SwapBytes is ignored: swap is not limited",
                "Networks is ignored: put networks in TaskTemplate.Networks",
            ]
        );
    }
}
