//! What a deploy changes, worked out before anything is sent: the stack's
//! objects the cluster has (by the `com.docker.stack.namespace` label) set
//! against the plan from the compose file. Pure, so the choices (create,
//! update, keep, remove) and the lines printed for them are unit-tested.
//!
//! A service that exists is updated only when the spec it would get differs
//! from the one it has (docker's CLI updates every service on each deploy;
//! an update that changes nothing would still bump its version). The spec is
//! compared as the daemon keeps it: secret, config and network references
//! by ID, the image tagged, `ForceUpdate` kept, and both sides read into
//! `shoal_api`'s `ServiceSpec`, so fields the daemon fills with defaults
//! compare equal to their absence.

use std::collections::BTreeMap;

use shoal_api::service::ServiceSpec;

use crate::commands::service::opts::tag_spec_image;
use serde_json::Value;

use crate::json::JsonExt;

/// The label docker puts on everything a stack owns.
pub const LABEL_NAMESPACE: &str = shoal_compose::LABEL_NAMESPACE;
pub const LABEL_IMAGE: &str = shoal_compose::LABEL_IMAGE;

/// `--resolve-image`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ResolveImage {
    #[default]
    Always,
    Changed,
    Never,
}

/// Names to IDs of what the cluster has, for references in specs.
#[derive(Clone, Debug, Default)]
pub struct Ids {
    pub networks: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
    pub configs: BTreeMap<String, String>,
}

impl Ids {
    /// From `GET /networks`, `/secrets` and `/configs` answers.
    pub fn from_lists(networks: &Value, secrets: &Value, configs: &Value) -> Ids {
        let spec_names = |l: &Value| -> BTreeMap<String, String> {
            l.items().iter().map(|o| (o.at(&["Spec", "Name"]).str().to_string(), o["ID"].str().to_string())).collect()
        };
        Ids {
            networks: networks.items().iter().map(|n| (n["Name"].str().to_string(), n["Id"].str().to_string())).collect(),
            secrets: spec_names(secrets),
            configs: spec_names(configs),
        }
    }
}

/// The stack's objects in the cluster (all carry its namespace label).
#[derive(Clone, Debug, Default)]
pub struct Current {
    /// `GET /services` objects.
    pub services: Vec<Value>,
    /// `GET /networks` objects (`Name`, `Id`).
    pub networks: Vec<Value>,
    /// `GET /secrets` and `/configs` objects (`ID`, `Version`, `Spec`).
    pub secrets: Vec<Value>,
    pub configs: Vec<Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ServiceAction {
    Create,
    Update { id: String, version: u64 },
    Unchanged { id: String },
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServiceChange {
    /// The compose name (`web`).
    pub name: String,
    /// The cluster name (`app_web`).
    pub full_name: String,
    pub action: ServiceAction,
    /// The spec to send (create or update).
    pub spec: Value,
}

/// An object that exists: (name, ID, version).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Existing {
    pub name: String,
    pub id: String,
    pub version: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Changes {
    /// Network create bodies, for networks the stack does not have yet.
    pub create_networks: Vec<(String, Value)>,
    /// Secrets and configs: created when missing; those that exist get
    /// docker's update (labels may change; the daemon refuses new data).
    pub create_secrets: Vec<(String, Value)>,
    pub update_secrets: Vec<(Existing, Value)>,
    pub create_configs: Vec<(String, Value)>,
    pub update_configs: Vec<(Existing, Value)>,
    /// In the plan's order (dependencies first).
    pub services: Vec<ServiceChange>,
    /// `--prune`: the stack's objects the file no longer names.
    pub remove_services: Vec<Existing>,
    pub remove_networks: Vec<Existing>,
    pub remove_secrets: Vec<Existing>,
    pub remove_configs: Vec<Existing>,
}

/// The plan with its bodies as the CLI's JSON.
#[derive(Clone, Debug, Default)]
pub struct PlanJson {
    pub networks: Vec<(String, Value)>,
    pub secrets: Vec<(String, Value)>,
    pub configs: Vec<(String, Value)>,
    /// (compose name, spec).
    pub services: Vec<(String, Value)>,
}

impl PlanJson {
    pub fn from_plan(plan: &shoal_compose::Plan) -> PlanJson {
        let res = |l: &[shoal_compose::Resource]| l.iter().map(|r| (r.name.clone(), r.spec.clone())).collect();
        PlanJson {
            networks: res(&plan.networks),
            secrets: res(&plan.secrets),
            configs: res(&plan.configs),
            services: plan.services.iter().map(|s| (s.name.clone(), s.spec.clone())).collect(),
        }
    }
}

fn existing(o: &Value, name: &str) -> Existing {
    let id = if o.has("Id") { &o["Id"] } else { &o["ID"] };
    Existing { name: name.to_string(), id: id.str().to_string(), version: o.at(&["Version", "Index"]).as_u64().unwrap_or(0) }
}

fn spec_name(o: &Value) -> &str {
    o.at(&["Spec", "Name"]).str()
}

/// Fills `SecretID`/`ConfigID` for references by name that `ids` knows.
pub fn fill_reference_ids(spec: &mut Value, ids: &Ids) {
    let cs = spec.entry(&["TaskTemplate", "ContainerSpec"]);
    for (list, id_key, name_key, known) in
        [("Secrets", "SecretID", "SecretName", &ids.secrets), ("Configs", "ConfigID", "ConfigName", &ids.configs)]
    {
        let Value::Array(refs) = cs[list].clone() else { continue };
        let refs = refs
            .into_iter()
            .map(|mut r| {
                if r[id_key].str().is_empty() {
                    if let Some(id) = known.get(r[name_key].str()) {
                        r.set(id_key, Value::from(id.as_str()));
                    }
                }
                r
            })
            .collect();
        cs.set(list, Value::Array(refs));
    }
}

/// The spec to send for a planned service: IDs filled, image tagged, and
/// for an existing service docker's `--resolve-image` and `ForceUpdate`
/// rules applied.
pub fn prepare_spec(planned: &Value, existing: Option<&Value>, ids: &Ids, resolve: ResolveImage) -> Value {
    let mut spec = planned.clone();
    fill_reference_ids(&mut spec, ids);
    tag_spec_image(&mut spec);
    if let Some(svc) = existing {
        let file_image = planned.at(&["TaskTemplate", "ContainerSpec", "Image"]).str();
        let labelled = svc.at(&["Spec", "Labels", LABEL_IMAGE]).str();
        // With `changed` and `never`, an image the file did not change keeps
        // what the service has (a digest pinned at the first deploy).
        if resolve != ResolveImage::Always && file_image == labelled {
            let current = svc.at(&["Spec", "TaskTemplate", "ContainerSpec", "Image"]).clone();
            if !current.is_null() {
                spec.entry(&["TaskTemplate", "ContainerSpec"]).set("Image", current);
            }
        }
        // Stack deploy has no --force: keep the service's counter.
        let force = svc.at(&["Spec", "TaskTemplate", "ForceUpdate"]).clone();
        spec.entry(&["TaskTemplate"]).set("ForceUpdate", if force.is_null() { Value::from(0u64) } else { force });
    }
    spec
}

/// Reads a spec as the daemon does, with network targets by ID (a name the
/// cluster does not know stays a name, so it differs from any ID).
fn typed(spec: &Value, ids: &Ids) -> Option<ServiceSpec> {
    let mut spec = spec.clone();
    let nets = spec.at(&["TaskTemplate", "Networks"]).clone();
    if let Value::Array(list) = nets {
        let mut list: Vec<Value> = list
            .into_iter()
            .map(|mut n| {
                if let Some(id) = ids.networks.get(n["Target"].str()) {
                    n.set("Target", Value::from(id.as_str()));
                }
                n
            })
            .collect();
        list.sort_by(|a, b| a["Target"].str().cmp(b["Target"].str()));
        spec.entry(&["TaskTemplate"]).set("Networks", Value::Array(list));
    }
    serde_json::from_value(spec).ok()
}

/// Whether sending `prepared` to a service that has `current` (its `Spec`)
/// would change nothing.
pub fn same_spec(prepared: &Value, current: &Value, ids: &Ids) -> bool {
    match (typed(prepared, ids), typed(current, ids)) {
        // As the daemon keeps them: moby's defaults for parts sent.
        (Some(a), Some(b)) => a.as_docker_stores() == b.as_docker_stores(),
        _ => false,
    }
}

/// Everything a deploy of `plan` does to a stack that has `current`.
pub fn changes(plan: &PlanJson, current: &Current, ids: &Ids, resolve: ResolveImage, stack: &str, prune: bool) -> Changes {
    let mut c = Changes::default();
    let have_net: BTreeMap<&str, &Value> = current.networks.iter().map(|n| (n["Name"].str(), n)).collect();
    for (name, body) in &plan.networks {
        if !have_net.contains_key(name.as_str()) {
            c.create_networks.push((name.clone(), body.clone()));
        }
    }
    // Secrets and configs are looked up by name among all of them, as
    // docker inspects them by name.
    for (planned, known, all, create, update) in [
        (&plan.secrets, &ids.secrets, &current.secrets, &mut c.create_secrets, &mut c.update_secrets),
        (&plan.configs, &ids.configs, &current.configs, &mut c.create_configs, &mut c.update_configs),
    ] {
        for (name, body) in planned {
            match known.get(name) {
                None => create.push((name.clone(), body.clone())),
                Some(id) => {
                    let version = all.iter().find(|o| o["ID"].str() == id).and_then(|o| o.at(&["Version", "Index"]).as_u64()).unwrap_or(0);
                    update.push((Existing { name: name.clone(), id: id.clone(), version }, body.clone()));
                }
            }
        }
    }

    let have_svc: BTreeMap<&str, &Value> = current.services.iter().map(|s| (spec_name(s), s)).collect();
    for (name, planned) in &plan.services {
        let full_name = planned["Name"].str().to_string();
        let found = have_svc.get(full_name.as_str()).copied();
        let spec = prepare_spec(planned, found, ids, resolve);
        let action = match found {
            None => ServiceAction::Create,
            Some(svc) => {
                let id = svc["ID"].str().to_string();
                if same_spec(&spec, &svc["Spec"], ids) {
                    ServiceAction::Unchanged { id }
                } else {
                    ServiceAction::Update { id, version: svc.at(&["Version", "Index"]).as_u64().unwrap_or(0) }
                }
            }
        };
        c.services.push(ServiceChange { name: name.clone(), full_name, action, spec });
    }

    if prune {
        let label_ok = |o: &Value, labels: &[&str]| o.at(labels)[LABEL_NAMESPACE].str() == stack;
        let named = |list: &[(String, Value)], n: &str| list.iter().any(|(name, _)| name == n);
        for s in &current.services {
            let n = spec_name(s);
            if label_ok(s, &["Spec", "Labels"]) && !plan.services.iter().any(|(_, spec)| spec["Name"].str() == n) {
                c.remove_services.push(existing(s, n));
            }
        }
        for n in &current.networks {
            let name = n["Name"].str();
            if label_ok(n, &["Labels"]) && !named(&plan.networks, name) {
                c.remove_networks.push(existing(n, name));
            }
        }
        for (all, planned, out) in
            [(&current.secrets, &plan.secrets, &mut c.remove_secrets), (&current.configs, &plan.configs, &mut c.remove_configs)]
        {
            for o in all {
                let name = spec_name(o);
                if label_ok(o, &["Spec", "Labels"]) && !named(planned, name) {
                    out.push(existing(o, name));
                }
            }
        }
        for l in [&mut c.remove_services, &mut c.remove_networks, &mut c.remove_secrets, &mut c.remove_configs] {
            l.sort_by(|a, b| a.name.cmp(&b.name));
        }
    }
    c
}

// ------------------------------------------------------------------ lines

/// docker's lines, as `stack deploy` and `stack rm` print them.
pub fn creating(kind: &str, name: &str) -> String {
    format!("Creating {kind} {name}")
}

pub fn updating_service(name: &str, id: &str) -> String {
    format!("Updating service {name} (id: {id})")
}

pub fn removing(kind: &str, name: &str) -> String {
    format!("Removing {kind} {name}")
}

/// Shoal's line for a service a redeploy leaves alone (docker has none: it
/// updates every service).
pub fn unchanged_service(name: &str, id: &str) -> String {
    format!("Unchanged service {name} (id: {id})")
}

impl Changes {
    /// What `--dry-run` prints: the deploy's lines, said as what would happen.
    pub fn dry_run_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in &self.remove_services {
            out.push(format!("Would remove service {}", e.name));
        }
        for (n, _) in &self.create_networks {
            out.push(format!("Would create network {n}"));
        }
        for (n, _) in &self.create_secrets {
            out.push(format!("Would create secret {n}"));
        }
        for (e, _) in &self.update_secrets {
            out.push(format!("Would update secret {} (id: {})", e.name, e.id));
        }
        for (n, _) in &self.create_configs {
            out.push(format!("Would create config {n}"));
        }
        for (e, _) in &self.update_configs {
            out.push(format!("Would update config {} (id: {})", e.name, e.id));
        }
        for s in &self.services {
            out.push(match &s.action {
                ServiceAction::Create => format!("Would create service {}", s.full_name),
                ServiceAction::Update { id, .. } => format!("Would update service {} (id: {id})", s.full_name),
                ServiceAction::Unchanged { id } => unchanged_service(&s.full_name, id),
            });
        }
        for (kind, list) in [("network", &self.remove_networks), ("secret", &self.remove_secrets), ("config", &self.remove_configs)] {
            for e in list {
                out.push(format!("Would remove {kind} {}", e.name));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    fn j(s: &str) -> Value {
        json::parse(s).unwrap()
    }

    fn plan() -> PlanJson {
        let svc = |name: &str, image: &str, nets: &str| {
            j(&format!(
                r#"{{"Name":"app_{name}","Labels":{{"com.docker.stack.namespace":"app","com.docker.stack.image":"{image}"}},
                "TaskTemplate":{{"ContainerSpec":{{"Image":"{image}","Labels":{{"com.docker.stack.namespace":"app"}},
                "Secrets":[{{"File":{{"Name":"pw","UID":"0","GID":"0","Mode":292}},"SecretName":"app_pw"}}]}},
                "Resources":{{}},"Placement":{{}},"Networks":[{nets}]}},"Mode":{{"Replicated":{{"Replicas":2}}}},"EndpointSpec":{{}}}}"#
            ))
        };
        PlanJson {
            networks: vec![("app_front".into(), j(r#"{"Name":"app_front"}"#)), ("app_back".into(), j(r#"{"Name":"app_back"}"#))],
            secrets: vec![("app_pw".into(), j(r#"{"Name":"app_pw","Data":"eA=="}"#))],
            configs: vec![],
            services: vec![
                ("cache".into(), svc("cache", "shoal-demo/cache:1", r#"{"Target":"app_back","Aliases":["cache"]}"#)),
                (
                    "web".into(),
                    svc("web", "shoal-demo/web:1", r#"{"Target":"app_front","Aliases":["web"]},{"Target":"app_back","Aliases":["web"]}"#),
                ),
            ],
        }
    }

    /// The services as the daemon would hold them after a deploy of `plan`:
    /// references by ID, networks by ID, ForceUpdate 0, image tagged.
    fn deployed(plan: &PlanJson, ids: &Ids) -> Vec<Value> {
        plan.services
            .iter()
            .enumerate()
            .map(|(i, (_, spec))| {
                let mut spec = prepare_spec(spec, None, ids, ResolveImage::Always);
                let nets: Vec<Value> = spec
                    .at(&["TaskTemplate", "Networks"])
                    .items()
                    .iter()
                    .map(|n| {
                        let mut n = n.clone();
                        n.set("Target", Value::from(ids.networks[n["Target"].str()].as_str()));
                        n
                    })
                    .collect();
                spec.entry(&["TaskTemplate"]).set("Networks", Value::Array(nets));
                spec.entry(&["TaskTemplate"]).set("ForceUpdate", Value::from(0u64));
                spec.set("Mode", j(r#"{"Replicated":{"Replicas":2}}"#));
                json::object([("ID", Value::from(format!("svc{i}"))), ("Version", j(r#"{"Index":7}"#)), ("Spec", spec)])
            })
            .collect()
    }

    fn ids() -> Ids {
        Ids {
            networks: [("app_front", "nf"), ("app_back", "nb"), ("app_old", "no"), ("ingress", "ni")]
                .into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            secrets: [("app_pw".to_string(), "s1".to_string()), ("app_gone".to_string(), "s2".to_string())].into_iter().collect(),
            configs: BTreeMap::new(),
        }
    }

    fn labelled_net(name: &str, id: &str) -> Value {
        j(&format!(r#"{{"Name":"{name}","Id":"{id}","Labels":{{"com.docker.stack.namespace":"app"}}}}"#))
    }

    #[test]
    fn first_deploy_creates_everything_in_order() {
        let c = changes(&plan(), &Current::default(), &Ids::default(), ResolveImage::Always, "app", false);
        assert_eq!(c.create_networks.iter().map(|n| n.0.as_str()).collect::<Vec<_>>(), ["app_front", "app_back"]);
        assert_eq!(c.create_secrets.len(), 1);
        assert!(c.services.iter().all(|s| s.action == ServiceAction::Create));
        assert_eq!(c.services[0].spec.at(&["TaskTemplate", "ContainerSpec", "Image"]).str(), "shoal-demo/cache:1");
        assert_eq!(
            c.dry_run_lines(),
            [
                "Would create network app_front",
                "Would create network app_back",
                "Would create secret app_pw",
                "Would create service app_cache",
                "Would create service app_web"
            ]
        );
    }

    #[test]
    fn redeploy_of_the_same_file_touches_no_service() {
        let ids = ids();
        let current = Current {
            services: deployed(&plan(), &ids),
            networks: vec![labelled_net("app_front", "nf"), labelled_net("app_back", "nb")],
            secrets: vec![j(r#"{"ID":"s1","Version":{"Index":3},"Spec":{"Name":"app_pw","Labels":{"com.docker.stack.namespace":"app"}}}"#)],
            configs: vec![],
        };
        let c = changes(&plan(), &current, &ids, ResolveImage::Always, "app", true);
        assert!(c.create_networks.is_empty() && c.create_secrets.is_empty());
        assert_eq!(c.update_secrets[0].0, Existing { name: "app_pw".into(), id: "s1".into(), version: 3 });
        assert_eq!(
            c.services.iter().map(|s| s.action.clone()).collect::<Vec<_>>(),
            [ServiceAction::Unchanged { id: "svc0".into() }, ServiceAction::Unchanged { id: "svc1".into() }]
        );
        assert!(c.remove_services.is_empty() && c.remove_networks.is_empty() && c.remove_secrets.is_empty());
        // The secret reference got its ID, as the daemon keeps it.
        assert_eq!(c.services[1].spec.at(&["TaskTemplate", "ContainerSpec", "Secrets"]).items()[0]["SecretID"].str(), "s1");
    }

    #[test]
    fn an_edit_updates_only_that_service_and_prune_removes_what_is_gone() {
        let ids = ids();
        let mut current = Current {
            services: deployed(&plan(), &ids),
            networks: vec![labelled_net("app_front", "nf"), labelled_net("app_back", "nb"), labelled_net("app_old", "no")],
            secrets: vec![
                j(r#"{"ID":"s1","Version":{"Index":3},"Spec":{"Name":"app_pw","Labels":{"com.docker.stack.namespace":"app"}}}"#),
                j(r#"{"ID":"s2","Version":{"Index":4},"Spec":{"Name":"app_gone","Labels":{"com.docker.stack.namespace":"app"}}}"#),
            ],
            configs: vec![],
        };
        current
            .services
            .push(j(r#"{"ID":"svc9","Version":{"Index":2},"Spec":{"Name":"app_old","Labels":{"com.docker.stack.namespace":"app"}}}"#));
        // Not the stack's: never pruned.
        current.services.push(j(r#"{"ID":"svcx","Version":{"Index":2},"Spec":{"Name":"other","Labels":{}}}"#));
        let mut p = plan();
        p.services[1].1.entry(&["TaskTemplate", "ContainerSpec"]).set("Env", Value::from(vec!["MODE=fast".to_string()]));

        let c = changes(&p, &current, &ids, ResolveImage::Always, "app", false);
        assert_eq!(c.services[0].action, ServiceAction::Unchanged { id: "svc0".into() });
        assert_eq!(c.services[1].action, ServiceAction::Update { id: "svc1".into(), version: 7 });
        assert!(c.remove_services.is_empty(), "nothing is removed without --prune");

        let c = changes(&p, &current, &ids, ResolveImage::Always, "app", true);
        assert_eq!(c.remove_services, [Existing { name: "app_old".into(), id: "svc9".into(), version: 2 }]);
        assert_eq!(c.remove_networks, [Existing { name: "app_old".into(), id: "no".into(), version: 0 }]);
        assert_eq!(c.remove_secrets, [Existing { name: "app_gone".into(), id: "s2".into(), version: 4 }]);
        assert_eq!(
            c.dry_run_lines(),
            [
                "Would remove service app_old",
                "Would update secret app_pw (id: s1)",
                "Unchanged service app_cache (id: svc0)",
                "Would update service app_web (id: svc1)",
                "Would remove network app_old",
                "Would remove secret app_gone",
            ]
        );
    }

    #[test]
    fn a_new_network_or_secret_makes_the_service_differ() {
        let ids = ids();
        let current = Current { services: deployed(&plan(), &ids), ..Default::default() };
        let mut p = plan();
        p.services[0].1.entry(&["TaskTemplate"]).set("Networks", j(r#"[{"Target":"app_new","Aliases":["cache"]}]"#));
        let c = changes(&p, &current, &ids, ResolveImage::Always, "app", false);
        assert!(matches!(c.services[0].action, ServiceAction::Update { .. }));
        assert!(matches!(c.services[1].action, ServiceAction::Unchanged { .. }));
    }

    #[test]
    fn resolve_image_and_force_update_follow_docker() {
        let svc = j(
            r#"{"ID":"x","Spec":{"Labels":{"com.docker.stack.image":"web:1"},"TaskTemplate":{"ContainerSpec":{"Image":"web:1@sha256:aa"},"ForceUpdate":3}}}"#,
        );
        let planned = j(r#"{"Name":"app_web","TaskTemplate":{"ContainerSpec":{"Image":"web:1"}}}"#);
        let ids = Ids::default();
        let img = |r| prepare_spec(&planned, Some(&svc), &ids, r).at(&["TaskTemplate", "ContainerSpec", "Image"]).str().to_string();
        assert_eq!(img(ResolveImage::Always), "web:1");
        assert_eq!(img(ResolveImage::Changed), "web:1@sha256:aa");
        assert_eq!(img(ResolveImage::Never), "web:1@sha256:aa");
        assert_eq!(prepare_spec(&planned, Some(&svc), &ids, ResolveImage::Always).at(&["TaskTemplate", "ForceUpdate"]).as_u64(), Some(3));
        let untagged = j(r#"{"Name":"app_web","TaskTemplate":{"ContainerSpec":{"Image":"busybox"}}}"#);
        assert_eq!(
            prepare_spec(&untagged, None, &ids, ResolveImage::Always).at(&["TaskTemplate", "ContainerSpec", "Image"]).str(),
            "busybox:latest"
        );
    }

    #[test]
    fn docker_lines() {
        assert_eq!(creating("network", "app_default"), "Creating network app_default");
        assert_eq!(updating_service("app_web", "abc"), "Updating service app_web (id: abc)");
        assert_eq!(removing("config", "app_site"), "Removing config app_site");
    }
}
