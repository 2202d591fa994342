//! Conversion to Docker Engine API requests, as `docker stack deploy` makes
//! them (docker/cli `cli/compose/convert`): service specs named
//! `<stack>_<service>` with the stack's labels, network create requests,
//! and secret and config create requests with the files' content.
//!
//! The output is `serde_json::Value` in Docker's JSON shape, so this crate
//! needs nothing else from Shoal and the CLI can send it as it is (or read it
//! into `shoal-api` types). Empty fields are left out, as Go's `omitempty`
//! does. Where Shoal does more than docker it says so: `tmpfs:` becomes tmpfs
//! mounts, `dns_opt` goes into `DNSConfig.Options`, and `depends_on` orders
//! creation.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use crate::error::{join, Error};
use crate::load::{node_at, Loaded};
use crate::model::{
    Condition, EndpointMode, FailureAction, FileObject, FileReference, Mode, Project, RestartCondition, Service, UpdateConfig, UpdateOrder,
};
use crate::mounts::ServiceVolume;
use crate::order::creation_order;
use crate::units;

/// The label docker puts on everything a stack owns.
pub const LABEL_NAMESPACE: &str = "com.docker.stack.namespace";
/// The label holding the image as the compose file names it.
pub const LABEL_IMAGE: &str = "com.docker.stack.image";

/// Everything `stack deploy` creates or checks, in the order to do it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// `POST /networks/create` bodies for the stack's networks that some
    /// service uses, by name.
    pub networks: Vec<Resource>,
    /// Networks declared `external`: they must exist already.
    pub external_networks: Vec<String>,
    /// `POST /secrets/create` bodies (data from the files).
    pub secrets: Vec<Resource>,
    pub external_secrets: Vec<String>,
    /// `POST /configs/create` bodies.
    pub configs: Vec<Resource>,
    pub external_configs: Vec<String>,
    /// Service specs, each after the services it depends on.
    pub services: Vec<PlannedService>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    pub name: String,
    pub spec: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PlannedService {
    /// The name in the compose file (`web`); the spec's `Name` is `<stack>_web`.
    pub name: String,
    /// A `ServiceSpec` for `POST /services/create`. Secret and config
    /// references carry `SecretName`/`ConfigName`; the caller fills in
    /// `SecretID`/`ConfigID` once the objects exist, as docker's CLI does.
    pub spec: Value,
    /// What must be started, healthy or completed before this service is
    /// created (compose names).
    pub depends_on: Vec<(String, Condition)>,
}

/// Converts a loaded project into what a stack named `stack` creates.
pub fn plan(loaded: &Loaded, stack: &str) -> Result<Plan, Error> {
    if stack.is_empty() || !stack.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
        return Err(Error::plain(format!("invalid stack name {stack:?}: use letters, digits, '_', '.' and '-'")));
    }
    let p = &loaded.project;
    let ns = Namespace(stack);
    let mut plan = Plan::default();

    let used: BTreeSet<&str> = p
        .services
        .values()
        .flat_map(|s| if s.networks.0.is_empty() { vec!["default"] } else { s.networks.0.keys().map(String::as_str).collect() })
        .collect();
    for name in used {
        let net = p.networks.get(name).cloned().unwrap_or_default();
        if net.external.external {
            plan.external_networks.push(network_name(p, &ns, name));
            continue;
        }
        plan.networks.push(Resource { name: network_name(p, &ns, name), spec: network_create(&ns, name, p) });
    }

    for (kind, objects) in [("secrets", &p.secrets), ("configs", &p.configs)] {
        for (name, o) in objects {
            let full = o.name.clone().unwrap_or_else(|| ns.scope(name));
            if o.external.external {
                let external = o.external.name.clone().unwrap_or(full);
                if kind == "secrets" { &mut plan.external_secrets } else { &mut plan.external_configs }.push(external);
                continue;
            }
            let spec = file_object_create(loaded, &ns, kind, name, &full, o)?;
            if kind == "secrets" { &mut plan.secrets } else { &mut plan.configs }.push(Resource { name: full, spec });
        }
    }

    for name in creation_order(p) {
        let service = &p.services[&name];
        let spec = service_spec(&ns, &name, service, p);
        let depends_on = service.depends_on.0.iter().map(|(d, dep)| (d.clone(), dep.condition)).collect();
        plan.services.push(PlannedService { name, spec, depends_on });
    }
    Ok(plan)
}

struct Namespace<'a>(&'a str);

impl Namespace<'_> {
    fn scope(&self, name: &str) -> String {
        format!("{}_{name}", self.0)
    }

    fn labels(&self, labels: &BTreeMap<String, String>) -> Value {
        let mut m: Map<String, Value> = labels.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect();
        m.insert(LABEL_NAMESPACE.into(), self.0.into());
        Value::Object(m)
    }
}

/// The cluster name of the stack's network `name`: its `name:`, its
/// external name, or `<stack>_<name>`.
fn network_name(p: &Project, ns: &Namespace, name: &str) -> String {
    match p.networks.get(name) {
        Some(n) if n.name.is_some() => n.name.clone().unwrap_or_default(),
        Some(n) if n.external.external => n.external.name.clone().unwrap_or_else(|| name.to_owned()),
        _ => ns.scope(name),
    }
}

fn network_create(ns: &Namespace, name: &str, p: &Project) -> Value {
    let net = p.networks.get(name).cloned().unwrap_or_default();
    let mut m = Map::new();
    m.insert("Name".into(), network_name(p, ns, name).into());
    m.insert("Driver".into(), net.driver.clone().unwrap_or_else(|| "overlay".into()).into());
    m.insert("Scope".into(), "swarm".into());
    put_map(&mut m, "Options", &net.driver_opts.0);
    m.insert("Labels".into(), ns.labels(&net.labels.0));
    put_bool(&mut m, "Internal", net.internal);
    put_bool(&mut m, "Attachable", net.attachable);
    put_bool(&mut m, "EnableIPv6", net.enable_ipv6);
    if let Some(ipam) = net.ipam.as_ref().filter(|i| i.driver.is_some() || !i.config.is_empty()) {
        let mut i = Map::new();
        put_str(&mut i, "Driver", ipam.driver.as_deref());
        let pools: Vec<Value> = ipam
            .config
            .iter()
            .map(|c| {
                let mut pool = Map::new();
                put_str(&mut pool, "Subnet", c.subnet.as_deref());
                put_str(&mut pool, "IPRange", c.ip_range.as_deref());
                put_str(&mut pool, "Gateway", c.gateway.as_deref());
                put_map(&mut pool, "AuxiliaryAddresses", &c.aux_addresses.0);
                Value::Object(pool)
            })
            .collect();
        if !pools.is_empty() {
            i.insert("Config".into(), pools.into());
        }
        put_map(&mut i, "Options", &ipam.options.0);
        m.insert("IPAM".into(), Value::Object(i));
    }
    Value::Object(m)
}

fn file_object_create(loaded: &Loaded, ns: &Namespace, kind: &str, name: &str, full: &str, o: &FileObject) -> Result<Value, Error> {
    let mut m = Map::new();
    m.insert("Name".into(), full.into());
    m.insert("Labels".into(), ns.labels(&o.labels.0));
    if kind == "secrets" && o.driver.is_some() {
        // A secret driver plugin supplies the value.
        m.insert("Data".into(), "".into());
        let mut d = Map::new();
        put_str(&mut d, "Name", o.driver.as_deref());
        put_map(&mut d, "Options", &o.driver_opts.0);
        m.insert("Driver".into(), Value::Object(d));
    } else {
        let file = o.file.as_deref().unwrap_or_default();
        let path = loaded.working_dir.join(file);
        let data = std::fs::read(&path).map_err(|e| {
            let pos = node_at(&loaded.tree, &[kind, name, "file"]).map(|n| n.pos).unwrap_or_default();
            loaded.files.error(pos, join(&join(kind, name), "file"), format!("cannot read {}: {e}", path.display()))
        })?;
        m.insert("Data".into(), base64(&data).into());
    }
    if let Some(t) = &o.template_driver {
        m.insert("Templating".into(), json!({ "Name": t }));
    }
    Ok(Value::Object(m))
}

fn service_spec(ns: &Namespace, name: &str, s: &Service, p: &Project) -> Value {
    let image = s.image.clone().unwrap_or_default();
    let mut labels = s.deploy.labels.0.clone();
    labels.insert(LABEL_IMAGE.into(), image.clone());

    let mut c = Map::new();
    c.insert("Image".into(), image.into());
    c.insert("Labels".into(), ns.labels(&s.labels.0));
    put_list(&mut c, "Command", s.entrypoint.as_ref().map(|e| e.0.as_slice()).unwrap_or_default());
    put_list(&mut c, "Args", s.command.as_ref().map(|e| e.0.as_slice()).unwrap_or_default());
    put_str(&mut c, "Hostname", s.hostname.as_deref());
    let mut env: Vec<String> = s
        .environment
        .0
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect();
    env.sort();
    put_list(&mut c, "Env", &env);
    put_str(&mut c, "Dir", s.working_dir.as_deref());
    put_str(&mut c, "User", s.user.as_deref());
    if let Some(init) = s.init {
        c.insert("Init".into(), init.into());
    }
    put_str(&mut c, "StopSignal", s.stop_signal.as_deref());
    if let Some(d) = s.stop_grace_period {
        c.insert("StopGracePeriod".into(), d.0.into());
    }
    put_bool(&mut c, "TTY", s.tty);
    put_bool(&mut c, "OpenStdin", s.stdin_open);
    put_bool(&mut c, "ReadOnly", s.read_only);
    // As `docker stack deploy` sends it: a Privileges object, empty here.
    c.insert("Privileges".into(), Value::Object(Map::new()));
    let mounts: Vec<Value> = s.volumes.iter().map(|v| mount(ns, v, p)).chain(s.tmpfs.0.iter().map(|t| tmpfs_mount(t))).collect();
    if !mounts.is_empty() {
        c.insert("Mounts".into(), mounts.into());
    }
    if let Some(h) = &s.healthcheck {
        c.insert("Healthcheck".into(), healthcheck(h));
    }
    let hosts: Vec<String> = s.extra_hosts.0.iter().filter_map(|h| h.split_once(':').map(|(host, ip)| format!("{ip} {host}"))).collect();
    put_list(&mut c, "Hosts", &hosts);
    if !s.dns.0.is_empty() || !s.dns_search.0.is_empty() || !s.dns_opt.0.is_empty() {
        let mut d = Map::new();
        put_list(&mut d, "Nameservers", &s.dns.0);
        put_list(&mut d, "Search", &s.dns_search.0);
        put_list(&mut d, "Options", &s.dns_opt.0);
        c.insert("DNSConfig".into(), Value::Object(d));
    }
    let secrets = references(ns, &s.secrets, &p.secrets, "SecretName", |r| r.source.clone());
    if !secrets.is_empty() {
        c.insert("Secrets".into(), secrets.into());
    }
    let configs = references(ns, &s.configs, &p.configs, "ConfigName", |r| r.source.clone());
    if !configs.is_empty() {
        c.insert("Configs".into(), configs.into());
    }
    put_map(&mut c, "Sysctls", &s.sysctls.0);
    put_list(&mut c, "CapabilityAdd", &s.cap_add);
    put_list(&mut c, "CapabilityDrop", &s.cap_drop);
    let ulimits: Vec<Value> = s.ulimits.iter().map(|(n, u)| json!({"Name": n, "Soft": u.soft, "Hard": u.hard})).collect();
    if !ulimits.is_empty() {
        c.insert("Ulimits".into(), ulimits.into());
    }
    if let Some(adj) = s.oom_score_adj {
        c.insert("OomScoreAdj".into(), adj.into());
    }

    let mut task = Map::new();
    task.insert("ContainerSpec".into(), Value::Object(c));
    task.insert("Resources".into(), resources(s));
    if let Some(r) = restart_policy(s) {
        task.insert("RestartPolicy".into(), r);
    }
    task.insert("Placement".into(), placement(s));
    task.insert("Networks".into(), networks(ns, name, s, p).into());
    if let Some(l) = &s.logging {
        let mut d = Map::new();
        put_str(&mut d, "Name", l.driver.as_deref());
        put_map(&mut d, "Options", &l.options.0);
        task.insert("LogDriver".into(), Value::Object(d));
    }

    let mut spec = Map::new();
    spec.insert("Name".into(), ns.scope(name).into());
    spec.insert("Labels".into(), ns.labels(&labels));
    spec.insert("TaskTemplate".into(), Value::Object(task));
    spec.insert("Mode".into(), mode(s));
    if let Some(u) = &s.deploy.update_config {
        spec.insert("UpdateConfig".into(), update_config(u));
    }
    if let Some(u) = &s.deploy.rollback_config {
        spec.insert("RollbackConfig".into(), update_config(u));
    }
    spec.insert("EndpointSpec".into(), endpoint_spec(s));
    Value::Object(spec)
}

fn mount(ns: &Namespace, v: &ServiceVolume, p: &Project) -> Value {
    let mut m = Map::new();
    m.insert("Type".into(), v.kind.clone().into());
    m.insert("Target".into(), v.target.clone().into());
    put_bool(&mut m, "ReadOnly", v.read_only);
    put_str(&mut m, "Consistency", v.consistency.as_deref());
    match v.kind.as_str() {
        "volume" => {
            let Some(source) = &v.source else { return Value::Object(m) };
            let stack_volume = p.volumes.get(source).cloned().unwrap_or_default();
            let full = match (&stack_volume.name, stack_volume.external.external) {
                (Some(n), _) => n.clone(),
                (None, true) => stack_volume.external.name.clone().unwrap_or_else(|| source.clone()),
                (None, false) => ns.scope(source),
            };
            m.insert("Source".into(), full.into());
            let mut o = Map::new();
            let opts = v.volume.clone().unwrap_or_default();
            put_bool(&mut o, "NoCopy", opts.nocopy);
            put_str(&mut o, "Subpath", opts.subpath.as_deref());
            if !stack_volume.external.external {
                o.insert("Labels".into(), ns.labels(&stack_volume.labels.0));
                if stack_volume.driver.is_some() || !stack_volume.driver_opts.0.is_empty() {
                    let mut d = Map::new();
                    put_str(&mut d, "Name", stack_volume.driver.as_deref());
                    put_map(&mut d, "Options", &stack_volume.driver_opts.0);
                    o.insert("DriverConfig".into(), Value::Object(d));
                }
            }
            m.insert("VolumeOptions".into(), Value::Object(o));
        }
        "bind" => {
            put_str(&mut m, "Source", v.source.as_deref());
            if let Some(b) = &v.bind {
                let mut o = Map::new();
                put_str(&mut o, "Propagation", b.propagation.as_deref());
                if b.create_host_path == Some(true) {
                    o.insert("CreateMountpoint".into(), true.into());
                }
                m.insert("BindOptions".into(), Value::Object(o));
            }
        }
        "tmpfs" => {
            if let Some(t) = &v.tmpfs {
                let mut o = Map::new();
                if let Some(size) = t.size {
                    o.insert("SizeBytes".into(), size.0.into());
                }
                if let Some(mode) = t.mode {
                    o.insert("Mode".into(), mode.into());
                }
                m.insert("TmpfsOptions".into(), Value::Object(o));
            }
        }
        _ => put_str(&mut m, "Source", v.source.as_deref()),
    }
    Value::Object(m)
}

/// A service-level `tmpfs: /run` or `/run:size=64m,mode=1777` (docker's stack
/// deploy drops these; Shoal mounts them).
fn tmpfs_mount(spec: &str) -> Value {
    let (target, opts) = spec.split_once(':').unwrap_or((spec, ""));
    let mut o = Map::new();
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        match opt.split_once('=') {
            Some(("size", v)) => {
                if let Ok(n) = units::parse_bytes(v) {
                    o.insert("SizeBytes".into(), n.into());
                }
            }
            Some(("mode", v)) => {
                if let Ok(n) = u32::from_str_radix(v, 8) {
                    o.insert("Mode".into(), n.into());
                }
            }
            _ => {}
        }
    }
    let mut m = Map::new();
    m.insert("Type".into(), "tmpfs".into());
    m.insert("Target".into(), target.into());
    if !o.is_empty() {
        m.insert("TmpfsOptions".into(), Value::Object(o));
    }
    Value::Object(m)
}

fn healthcheck(h: &crate::model::Healthcheck) -> Value {
    if h.disable {
        return json!({ "Test": ["NONE"] });
    }
    let mut m = Map::new();
    put_list(&mut m, "Test", h.test.as_ref().map(|t| t.0.as_slice()).unwrap_or_default());
    for (key, d) in [("Interval", h.interval), ("Timeout", h.timeout), ("StartPeriod", h.start_period), ("StartInterval", h.start_interval)]
    {
        if let Some(d) = d.filter(|d| d.0 != 0) {
            m.insert(key.into(), d.0.into());
        }
    }
    if let Some(r) = h.retries.filter(|r| *r != 0) {
        m.insert("Retries".into(), r.into());
    }
    Value::Object(m)
}

fn references(
    ns: &Namespace,
    refs: &[FileReference],
    objects: &BTreeMap<String, FileObject>,
    name_key: &str,
    source: impl Fn(&FileReference) -> String,
) -> Vec<Value> {
    let mut out: Vec<(String, Value)> = refs
        .iter()
        .map(|r| {
            let src = source(r);
            let object = objects.get(&src).cloned().unwrap_or_default();
            let full = match (&object.name, object.external.external) {
                (Some(n), _) => n.clone(),
                (None, true) => object.external.name.clone().unwrap_or_else(|| ns.scope(&src)),
                (None, false) => ns.scope(&src),
            };
            let file = json!({
                "Name": r.target.clone().unwrap_or_else(|| src.clone()),
                "UID": r.uid.clone().unwrap_or_else(|| "0".into()),
                "GID": r.gid.clone().unwrap_or_else(|| "0".into()),
                "Mode": r.mode.unwrap_or(0o444),
            });
            (full.clone(), json!({ "File": file, name_key: full }))
        })
        .collect();
    // Sorted so a redeploy of the same file is the same spec (docker does this too).
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, v)| v).collect()
}

fn resources(s: &Service) -> Value {
    let r = &s.deploy.resources;
    let cpus = |c: &Option<crate::forms::NumberText>| c.as_ref().and_then(|c| units::parse_cpus(&c.0).ok()).filter(|n| *n != 0);
    let mut m = Map::new();
    if let Some(l) = &r.limits {
        let mut o = Map::new();
        if let Some(n) = cpus(&l.cpus) {
            o.insert("NanoCPUs".into(), n.into());
        }
        if let Some(b) = l.memory.filter(|b| b.0 != 0) {
            o.insert("MemoryBytes".into(), b.0.into());
        }
        if let Some(p) = l.pids.filter(|p| *p != 0) {
            o.insert("Pids".into(), p.into());
        }
        m.insert("Limits".into(), Value::Object(o));
    }
    if let Some(res) = &r.reservations {
        let mut o = Map::new();
        if let Some(n) = cpus(&res.cpus) {
            o.insert("NanoCPUs".into(), n.into());
        }
        if let Some(b) = res.memory.filter(|b| b.0 != 0) {
            o.insert("MemoryBytes".into(), b.0.into());
        }
        let generic: Vec<Value> = res
            .generic_resources
            .iter()
            .map(|g| match &g.discrete_resource_spec {
                Some(d) => json!({"DiscreteResourceSpec": {"Kind": d.kind, "Value": d.value}}),
                None => json!({}),
            })
            .collect();
        if !generic.is_empty() {
            o.insert("GenericResources".into(), generic.into());
        }
        m.insert("Reservations".into(), Value::Object(o));
    }
    Value::Object(m)
}

/// `deploy.restart_policy`, else the legacy `restart:` as docker reads it.
fn restart_policy(s: &Service) -> Option<Value> {
    if let Some(r) = &s.deploy.restart_policy {
        let mut m = Map::new();
        if let Some(c) = r.condition {
            m.insert("Condition".into(), c.as_str().into());
        }
        if let Some(d) = r.delay {
            m.insert("Delay".into(), d.0.into());
        }
        if let Some(n) = r.max_attempts {
            m.insert("MaxAttempts".into(), n.into());
        }
        if let Some(w) = r.window {
            m.insert("Window".into(), w.0.into());
        }
        return Some(Value::Object(m));
    }
    let restart = s.restart.as_deref()?;
    let (policy, count) = restart.split_once(':').unwrap_or((restart, ""));
    let attempts = count.parse::<u64>().ok().filter(|n| *n > 0);
    let condition = match policy {
        "always" | "unless-stopped" => RestartCondition::Any,
        "on-failure" => RestartCondition::OnFailure,
        _ => return None,
    };
    let mut m = Map::new();
    m.insert("Condition".into(), condition.as_str().into());
    if let Some(n) = attempts {
        m.insert("MaxAttempts".into(), n.into());
    }
    Some(Value::Object(m))
}

fn placement(s: &Service) -> Value {
    let pl = &s.deploy.placement;
    let mut m = Map::new();
    put_list(&mut m, "Constraints", &pl.constraints);
    let prefs: Vec<Value> = pl.preferences.iter().map(|p| json!({"Spread": {"SpreadDescriptor": p.spread}})).collect();
    if !prefs.is_empty() {
        m.insert("Preferences".into(), prefs.into());
    }
    if let Some(n) = pl.max_replicas_per_node.filter(|n| *n != 0) {
        m.insert("MaxReplicas".into(), n.into());
    }
    Value::Object(m)
}

fn networks(ns: &Namespace, service: &str, s: &Service, p: &Project) -> Vec<Value> {
    let default = [("default".to_owned(), Default::default())].into_iter().collect();
    let nets = if s.networks.0.is_empty() { &default } else { &s.networks.0 };
    let mut out: Vec<(String, Value)> = nets
        .iter()
        .map(|(net, opts): (&String, &crate::model::ServiceNetwork)| {
            let target = network_name(p, ns, net);
            let mut aliases = opts.aliases.clone();
            // Only user-defined networks take aliases; the service's own
            // name is one, as docker adds it.
            if !matches!(target.as_str(), "bridge" | "host" | "none" | "default") {
                aliases.push(service.to_owned());
            }
            let mut m = Map::new();
            m.insert("Target".into(), target.clone().into());
            put_list(&mut m, "Aliases", &aliases);
            put_map(&mut m, "DriverOpts", &opts.driver_opts.0);
            (target, Value::Object(m))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, v)| v).collect()
}

fn mode(s: &Service) -> Value {
    let replicas = s.deploy.replicas;
    match s.deploy.mode {
        Some(Mode::Global) => json!({"Global": {}}),
        Some(Mode::GlobalJob) => json!({"GlobalJob": {}}),
        Some(Mode::ReplicatedJob) => match replicas {
            Some(n) => json!({"ReplicatedJob": {"MaxConcurrent": n, "TotalCompletions": n}}),
            None => json!({"ReplicatedJob": {}}),
        },
        Some(Mode::Replicated) | None => match replicas {
            Some(n) => json!({"Replicated": {"Replicas": n}}),
            None => json!({"Replicated": {}}),
        },
    }
}

fn update_config(u: &UpdateConfig) -> Value {
    let mut m = Map::new();
    m.insert("Parallelism".into(), u.parallelism.unwrap_or(1).into());
    if let Some(d) = u.delay.filter(|d| d.0 != 0) {
        m.insert("Delay".into(), d.0.into());
    }
    if let Some(a) = u.failure_action {
        let a = match a {
            FailureAction::Pause => "pause",
            FailureAction::Continue => "continue",
            FailureAction::Rollback => "rollback",
        };
        m.insert("FailureAction".into(), a.into());
    }
    if let Some(d) = u.monitor.filter(|d| d.0 != 0) {
        m.insert("Monitor".into(), d.0.into());
    }
    if let Some(r) = u.max_failure_ratio.filter(|r| *r != 0.0) {
        m.insert("MaxFailureRatio".into(), r.into());
    }
    if let Some(o) = u.order {
        let o = match o {
            UpdateOrder::StopFirst => "stop-first",
            UpdateOrder::StartFirst => "start-first",
        };
        m.insert("Order".into(), o.into());
    }
    Value::Object(m)
}

fn endpoint_spec(s: &Service) -> Value {
    let mut m = Map::new();
    if let Some(mode) = s.deploy.endpoint_mode {
        m.insert(
            "Mode".into(),
            match mode {
                EndpointMode::Vip => "vip",
                EndpointMode::Dnsrr => "dnsrr",
            }
            .into(),
        );
    }
    let mut ports = s.ports.0.clone();
    ports.sort_by(|a, b| (a.published, a.target, &a.protocol, &a.mode).cmp(&(b.published, b.target, &b.protocol, &b.mode)));
    let ports: Vec<Value> = ports
        .iter()
        .map(|p| {
            let mut o = Map::new();
            o.insert("Protocol".into(), p.protocol.clone().into());
            o.insert("TargetPort".into(), p.target.into());
            if let Some(pp) = p.published {
                o.insert("PublishedPort".into(), pp.into());
            }
            o.insert("PublishMode".into(), p.mode.clone().into());
            Value::Object(o)
        })
        .collect();
    if !ports.is_empty() {
        m.insert("Ports".into(), ports.into());
    }
    Value::Object(m)
}

fn put_str(m: &mut Map<String, Value>, key: &str, v: Option<&str>) {
    if let Some(v) = v.filter(|v| !v.is_empty()) {
        m.insert(key.into(), v.into());
    }
}

fn put_bool(m: &mut Map<String, Value>, key: &str, v: bool) {
    if v {
        m.insert(key.into(), true.into());
    }
}

fn put_list(m: &mut Map<String, Value>, key: &str, v: &[String]) {
    if !v.is_empty() {
        m.insert(key.into(), v.into());
    }
}

fn put_map(m: &mut Map<String, Value>, key: &str, v: &BTreeMap<String, String>) {
    if !v.is_empty() {
        m.insert(key.into(), v.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect::<Map<_, _>>().into());
    }
}

/// Standard base64 with padding (Go's `[]byte` in JSON).
fn base64(data: &[u8]) -> String {
    shoal_api::base64::encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"hello world\n"), "aGVsbG8gd29ybGQK");
    }
}
