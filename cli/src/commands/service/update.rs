//! `shoal service update`: a fresh `GET /services/{id}`, the flags merged
//! into its spec as docker's `updateService` does, then
//! `POST /services/{id}/update?version=N` with the whole spec.

use std::collections::{BTreeMap, BTreeSet};

use clap::Args;

use super::flags::ServiceFlags;
use super::opts::{self, Port, PortList, Words};
use super::progress;
use crate::client::{path_segment, query};
use crate::commands::Env;
use crate::error::{CliError, CliResult};
use serde_json::{Map, Value};

use crate::json::{self, JsonExt};

#[derive(Args, Debug, Default, Clone, PartialEq)]
pub struct UpdateArgs {
    /// Service image tag
    #[arg(long, value_name = "string")]
    pub image: Option<String>,
    /// Service command args
    #[arg(long, value_name = "command", allow_hyphen_values = true, value_parser = opts::words)]
    pub args: Option<Words>,
    /// Rollback to previous specification
    #[arg(long)]
    pub rollback: bool,
    /// Force update even if no changes require it
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub flags: ServiceFlags,
    /// Use an init inside each service container to forward signals and reap processes
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = opts::boolean)]
    pub init: Option<bool>,
    /// Add or update an environment variable
    #[arg(long = "env-add", value_name = "list", value_parser = opts::env_var)]
    pub env_add: Vec<String>,
    /// Remove an environment variable
    #[arg(long = "env-rm", value_name = "list")]
    pub env_rm: Vec<String>,
    /// Add or update a service label
    #[arg(long = "label-add", value_name = "list", value_parser = opts::label)]
    pub label_add: Vec<String>,
    /// Remove a label by its key
    #[arg(long = "label-rm", value_name = "list")]
    pub label_rm: Vec<String>,
    /// Add or update a container label
    #[arg(long = "container-label-add", value_name = "list", value_parser = opts::label)]
    pub container_label_add: Vec<String>,
    /// Remove a container label by its key
    #[arg(long = "container-label-rm", value_name = "list")]
    pub container_label_rm: Vec<String>,
    /// Add or update a placement constraint
    #[arg(long = "constraint-add", value_name = "list")]
    pub constraint_add: Vec<String>,
    /// Remove a constraint
    #[arg(long = "constraint-rm", value_name = "list")]
    pub constraint_rm: Vec<String>,
    /// Add a placement preference
    #[arg(long = "placement-pref-add", value_name = "pref", value_parser = opts::placement_pref)]
    pub placement_pref_add: Vec<String>,
    /// Remove a placement preference
    #[arg(long = "placement-pref-rm", value_name = "pref", value_parser = opts::placement_pref)]
    pub placement_pref_rm: Vec<String>,
    /// Add or update a published port
    #[arg(long = "publish-add", value_name = "port", value_parser = opts::publish)]
    pub publish_add: Vec<PortList>,
    /// Remove a published port by its target port
    #[arg(long = "publish-rm", value_name = "port", value_parser = opts::publish)]
    pub publish_rm: Vec<PortList>,
    /// Add or update a mount on a service
    #[arg(long = "mount-add", value_name = "mount", value_parser = opts::mount)]
    pub mount_add: Vec<Value>,
    /// Remove a mount by its target path
    #[arg(long = "mount-rm", value_name = "list")]
    pub mount_rm: Vec<String>,
    /// Add or update a secret on a service
    #[arg(long = "secret-add", value_name = "secret", value_parser = opts::secret)]
    pub secret_add: Vec<Value>,
    /// Remove a secret
    #[arg(long = "secret-rm", value_name = "list")]
    pub secret_rm: Vec<String>,
    /// Add or update a config file on a service
    #[arg(long = "config-add", value_name = "config", value_parser = opts::config)]
    pub config_add: Vec<Value>,
    /// Remove a configuration file
    #[arg(long = "config-rm", value_name = "list")]
    pub config_rm: Vec<String>,
    /// Add a network
    #[arg(long = "network-add", value_name = "network", value_parser = opts::network)]
    pub network_add: Vec<Value>,
    /// Remove a network
    #[arg(long = "network-rm", value_name = "list")]
    pub network_rm: Vec<String>,
    /// Add a custom host-to-IP mapping ("host:ip")
    #[arg(long = "host-add", value_name = "list", value_parser = opts::extra_host)]
    pub host_add: Vec<String>,
    /// Remove a custom host-to-IP mapping ("host:ip")
    #[arg(long = "host-rm", value_name = "list")]
    pub host_rm: Vec<String>,
    /// Add or update a custom DNS server
    #[arg(long = "dns-add", value_name = "list", value_parser = opts::ip_address)]
    pub dns_add: Vec<String>,
    /// Remove a custom DNS server
    #[arg(long = "dns-rm", value_name = "list", value_parser = opts::ip_address)]
    pub dns_rm: Vec<String>,
    /// Add or update a DNS option
    #[arg(long = "dns-option-add", value_name = "list")]
    pub dns_option_add: Vec<String>,
    /// Remove a DNS option
    #[arg(long = "dns-option-rm", value_name = "list")]
    pub dns_option_rm: Vec<String>,
    /// Add or update a custom DNS search domain
    #[arg(long = "dns-search-add", value_name = "list", value_parser = opts::dns_search)]
    pub dns_search_add: Vec<String>,
    /// Remove a DNS search domain
    #[arg(long = "dns-search-rm", value_name = "list")]
    pub dns_search_rm: Vec<String>,
    /// Add an additional supplementary user group to the container
    #[arg(long = "group-add", value_name = "list")]
    pub group_add: Vec<String>,
    /// Remove a previously added supplementary user group from the container
    #[arg(long = "group-rm", value_name = "list")]
    pub group_rm: Vec<String>,
    /// Add or update a Sysctl option
    #[arg(long = "sysctl-add", value_name = "list")]
    pub sysctl_add: Vec<String>,
    /// Remove a Sysctl option
    #[arg(long = "sysctl-rm", value_name = "list")]
    pub sysctl_rm: Vec<String>,
    /// Add or update a ulimit option
    #[arg(long = "ulimit-add", value_name = "ulimit", value_parser = opts::ulimit)]
    pub ulimit_add: Vec<Value>,
    /// Remove a ulimit option
    #[arg(long = "ulimit-rm", value_name = "list")]
    pub ulimit_rm: Vec<String>,
    #[arg(value_name = "SERVICE")]
    pub service: String,
}

// ---------------------------------------------------------------- helpers

/// Sets a string field, dropping it when empty (Go's `omitempty`).
fn set_str(obj: &mut Value, key: &str, v: &str) {
    if v.is_empty() {
        obj.remove(key);
    } else {
        obj.set(key, v.into());
    }
}

fn set_num(obj: &mut Value, key: &str, v: i64) {
    if v == 0 {
        obj.remove(key);
    } else {
        obj.set(key, v.into());
    }
}

fn set_bool(obj: &mut Value, key: &str, v: bool) {
    if v {
        obj.set(key, Value::Bool(true));
    } else {
        obj.remove(key);
    }
}

fn set_list(obj: &mut Value, key: &str, v: Vec<Value>) {
    if v.is_empty() {
        obj.remove(key);
    } else {
        obj.set(key, Value::Array(v));
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.items().iter().map(|s| s.str().to_string()).collect()
}

/// docker's `updateLabels`: removals, then additions; keys sorted as a Go
/// map marshals them.
fn update_map(parent: &mut Value, key: &str, rm: &[String], add: &[String]) {
    let cur = &parent[key];
    if cur.is_null() && add.is_empty() {
        return;
    }
    if rm.is_empty() && add.is_empty() {
        return;
    }
    let mut m: BTreeMap<String, Value> = cur.members().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for k in rm {
        m.remove(k);
    }
    if let Value::Object(added) = opts::kv_map(add) {
        m.extend(added);
    }
    parent.set(key, Value::Object(m.into_iter().collect()));
}

fn env_key(v: &str) -> &str {
    v.split_once('=').map(|(k, _)| k).unwrap_or(v)
}

/// `--env-rm` by key, then `--env-add` replacing a variable in place or
/// appending it.
pub fn update_env(env: &[String], rm: &[String], add: &[String]) -> Vec<String> {
    let rm: BTreeSet<&str> = rm.iter().map(String::as_str).collect();
    let mut out: Vec<String> = env.iter().filter(|e| !rm.contains(env_key(e))).cloned().collect();
    for a in add {
        match out.iter_mut().find(|e| env_key(e) == env_key(a)) {
            Some(e) => *e = a.clone(),
            None => out.push(a.clone()),
        }
    }
    out
}

/// `--constraint-add` then `--constraint-rm`, sorted (docker's
/// `updatePlacementConstraints`).
pub fn update_constraints(cur: &[String], add: &[String], rm: &[String]) -> Vec<String> {
    let rm: BTreeSet<&String> = rm.iter().collect();
    let mut out: Vec<String> = cur.iter().chain(add).filter(|c| !rm.contains(c)).cloned().collect();
    out.sort();
    out
}

/// `--mount-add` (replacing by target) and `--mount-rm` (by target),
/// sorted by source then target (docker's `updateMounts`).
pub fn update_mounts(cur: &[Value], add: &[Value], rm: &[String]) -> CliResult<Vec<Value>> {
    let mut by_target: BTreeMap<String, Value> = BTreeMap::new();
    for m in add {
        let t = m["Target"].str().to_string();
        if by_target.insert(t, m.clone()).is_some() {
            return Err(CliError::new("duplicate mount target"));
        }
    }
    for m in cur {
        by_target.entry(m["Target"].str().to_string()).or_insert_with(|| m.clone());
    }
    let mut out: Vec<Value> = by_target.into_values().filter(|m| !rm.iter().any(|r| r == m["Target"].str())).collect();
    out.sort_by(|a, b| {
        let (sa, sb) = (a["Source"].str(), b["Source"].str());
        sa.cmp(sb).then_with(|| a["Target"].str().cmp(b["Target"].str()))
    });
    Ok(out)
}

/// `--publish-add` and `--publish-rm` (docker's `updatePorts`): removal
/// matches target port, protocol and mode; the result is sorted.
pub fn update_ports(cur: &[Value], add: &[Port], rm: &[Port]) -> Vec<Value> {
    let eq_or_default = |a: &str, b: &str, def: &str| a == b || (a.is_empty() && b == def) || (b.is_empty() && a == def);
    let mut set: BTreeMap<String, Port> = BTreeMap::new();
    for p in cur.iter().map(Port::from_json) {
        set.entry(p.key()).or_insert(p);
    }
    let mut out: Vec<Port> = set
        .values()
        .filter(|p| {
            !rm.iter().any(|r| {
                eq_or_default(&p.protocol, &r.protocol, "tcp") && p.target == r.target && eq_or_default(&p.mode, &r.mode, "ingress")
            })
        })
        .cloned()
        .collect();
    for p in add {
        if !set.contains_key(&p.key()) {
            out.push(p.clone());
        }
    }
    out.sort_by_key(Port::key);
    out.iter().map(Port::to_json).collect()
}

/// docker's `updateCapabilities`: adding wins over dropping; adding a
/// dropped capability un-drops it (and the reverse); `RESET` clears a list.
pub fn update_capabilities(cs: &mut Value, add: &[String], drop: &[String]) {
    let mut cap_add = opts::capabilities_set(&strings(&cs["CapabilityAdd"]));
    let mut cap_drop = opts::capabilities_set(&strings(&cs["CapabilityDrop"]));
    let mut to_add = opts::capabilities_set(add);
    let mut to_drop = opts::capabilities_set(drop);
    if to_add.remove("RESET") {
        cap_add.clear();
    }
    if to_drop.remove("RESET") {
        cap_drop.clear();
    }
    for c in &to_drop {
        if !to_add.contains(c) && !cap_add.remove(c) {
            cap_drop.insert(c.clone());
        }
    }
    for c in &to_add {
        if !cap_drop.remove(c) {
            cap_add.insert(c.clone());
        }
    }
    let list = |s: BTreeSet<String>| -> Vec<Value> {
        if s.contains("ALL") {
            vec![Value::from("ALL")]
        } else {
            s.into_iter().map(Value::String).collect()
        }
    };
    set_list(cs, "CapabilityDrop", list(cap_drop));
    set_list(cs, "CapabilityAdd", list(cap_add));
}

/// docker's `updateHealthcheck`.
fn update_healthcheck(f: &ServiceFlags, cs: &mut Value) -> CliResult {
    if f.no_healthcheck.is_none() && !f.health_settings() {
        return Ok(());
    }
    if f.no_healthcheck == Some(true) {
        if f.health_settings() {
            return Err(CliError::new("--no-healthcheck conflicts with --health-* options"));
        }
        cs.set("Healthcheck", json::object([("Test", Value::from(vec!["NONE".to_string()]))]));
        return Ok(());
    }
    let h = cs.entry(&["Healthcheck"]);
    if h.is_null() {
        *h = Value::Object(Map::new());
    }
    if h["Test"].items().first().map(|t| t.str()) == Some("NONE") {
        h.remove("Test");
    }
    f.apply_health_values(h);
    Ok(())
}

fn update_networks(task: &mut Value, add: &[Value], rm: &[String]) -> CliResult {
    let mut nets: Vec<Value> = task["Networks"].items().iter().filter(|n| !rm.iter().any(|r| r == n["Target"].str())).cloned().collect();
    for n in add {
        let target = n["Target"].str();
        if nets.iter().any(|x| x["Target"].str() == target) {
            return Err(CliError::new(format!("service is already attached to network {target}")));
        }
        nets.push(n.clone());
    }
    nets.sort_by(|a, b| a["Target"].str().cmp(b["Target"].str()));
    set_list(task, "Networks", nets);
    Ok(())
}

/// Secrets or configs: removal by name, then additions.
fn update_references(cs: &mut Value, key: &str, name_key: &str, add: &[Value], rm: &[String]) {
    let mut refs: Vec<Value> = cs[key].items().iter().filter(|r| !rm.iter().any(|x| x == r[name_key].str())).cloned().collect();
    refs.extend(add.iter().cloned());
    set_list(cs, key, refs);
}

// ------------------------------------------------------------------ merge

impl UpdateArgs {
    /// Whether any flag other than `--rollback`, `-d` and `-q` was given.
    fn other_than_rollback(&self) -> bool {
        let mut plain = self.clone();
        plain.rollback = false;
        plain.flags.detach = false;
        plain.flags.quiet = false;
        plain.service = String::new();
        plain != UpdateArgs::default()
    }
}

/// docker's `updateHosts`: `--host-rm` takes "host" (every entry naming
/// it) or "host:ip" (that mapping only); then the additions, deduplicated.
/// Entries are SwarmKit's "IP host" form.
pub fn update_hosts(cur: &[String], add: &[String], rm: &[String]) -> Vec<String> {
    let removed = |entry: &str| {
        let mut f = entry.split_whitespace();
        let ip = f.next().unwrap_or("");
        let names: Vec<&str> = f.collect();
        rm.iter().any(|r| match r.split_once(':').or_else(|| r.split_once('=')) {
            Some((host, rip)) => names.contains(&host) && rip.trim_matches(|c| c == '[' || c == ']') == ip,
            None => names.contains(&r.as_str()),
        })
    };
    let mut out: Vec<String> = cur.iter().filter(|e| !removed(e)).cloned().collect();
    for a in add {
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    out
}

/// Removals, then additions not already there (DNS servers, options,
/// search domains).
fn update_list(cur: &[String], add: &[String], rm: &[String]) -> Vec<String> {
    let mut out: Vec<String> = cur.iter().filter(|v| !rm.contains(v)).cloned().collect();
    for a in add {
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    out
}

/// Applies the flags to a service spec (docker's `updateService` plus the
/// secrets and configs of `runUpdate`).
pub fn merge(a: &UpdateArgs, spec: &mut Value) -> CliResult {
    let f = &a.flags;
    update_map(spec, "Labels", &a.label_rm, &a.label_add);
    let task = spec.entry(&["TaskTemplate"]);
    {
        let cs = task.entry(&["ContainerSpec"]);
        update_map(cs, "Labels", &a.container_label_rm, &a.container_label_add);
        if let Some(i) = &a.image {
            set_str(cs, "Image", i);
        }
        if let Some(w) = &a.args {
            set_list(cs, "Args", w.0.iter().map(|s| Value::from(s.as_str())).collect());
        }
        if let Some(w) = &f.entrypoint {
            set_list(cs, "Command", w.0.iter().map(|s| Value::from(s.as_str())).collect());
        }
        let env = update_env(&strings(&cs["Env"]), &a.env_rm, &a.env_add);
        set_list(cs, "Env", env.into_iter().map(Value::String).collect());
        for (key, v) in [("Dir", &f.workdir), ("User", &f.user), ("Hostname", &f.hostname)] {
            if let Some(v) = v {
                set_str(cs, key, v);
            }
        }
        if let Some(i) = a.init {
            cs.set("Init", Value::Bool(i));
        }
        let mounts = update_mounts(cs["Mounts"].items(), &a.mount_add, &a.mount_rm)?;
        set_list(cs, "Mounts", mounts);
        if let Some(g) = f.stop_grace_period {
            cs.set("StopGracePeriod", g.into());
        }
    }
    if f.limit_cpu.is_some() || f.limit_memory.is_some() || f.limit_pids.is_some() {
        let limits = task.entry(&["Resources", "Limits"]);
        if limits.is_null() {
            *limits = Value::Object(Map::new());
        }
        for (key, v) in [("NanoCPUs", f.limit_cpu), ("MemoryBytes", f.limit_memory), ("Pids", f.limit_pids)] {
            if let Some(v) = v {
                set_num(limits, key, v);
            }
        }
    }
    if f.reserve_cpu.is_some() || f.reserve_memory.is_some() {
        let res = task.entry(&["Resources", "Reservations"]);
        if res.is_null() {
            *res = Value::Object(Map::new());
        }
        for (key, v) in [("NanoCPUs", f.reserve_cpu), ("MemoryBytes", f.reserve_memory)] {
            if let Some(v) = v {
                set_num(res, key, v);
            }
        }
    }
    if f.restart_changed() {
        f.apply_restart(task.entry(&["RestartPolicy"]));
    }
    if !a.constraint_add.is_empty() || !a.constraint_rm.is_empty() {
        let placement = task.entry(&["Placement"]);
        let cons = update_constraints(&strings(&placement["Constraints"]), &a.constraint_add, &a.constraint_rm);
        set_list(placement, "Constraints", cons.into_iter().map(Value::String).collect());
    }
    if !a.placement_pref_add.is_empty() || !a.placement_pref_rm.is_empty() {
        let placement = task.entry(&["Placement"]);
        let mut prefs: Vec<Value> = placement["Preferences"]
            .items()
            .iter()
            .filter(|p| {
                let d = p.at(&["Spread", "SpreadDescriptor"]);
                d.is_null() || !a.placement_pref_rm.iter().any(|r| r == d.str())
            })
            .cloned()
            .collect();
        prefs.extend(a.placement_pref_add.iter().map(|d| opts::spread_pref(d)));
        set_list(placement, "Preferences", prefs);
    }
    if !a.network_add.is_empty() || !a.network_rm.is_empty() {
        update_networks(task, &a.network_add, &a.network_rm)?;
    }
    if let Some(n) = f.replicas_max_per_node {
        set_num(task.entry(&["Placement"]), "MaxReplicas", n as i64);
    }
    if let Some(d) = f.log_driver.as_deref().filter(|d| !d.is_empty()) {
        let mut drv = vec![("Name", Value::from(d))];
        if !f.log_opt.is_empty() {
            drv.push(("Options", opts::kv_map(&f.log_opt)));
        }
        task.set("LogDriver", json::object(drv));
    }
    if a.force {
        let n = task["ForceUpdate"].as_u64().unwrap_or(0);
        task.set("ForceUpdate", Value::from(n + 1));
    }
    {
        let cs = task.entry(&["ContainerSpec"]);
        update_healthcheck(f, cs)?;
        if let Some(t) = f.tty {
            set_bool(cs, "TTY", t);
        }
        if let Some(r) = f.read_only {
            set_bool(cs, "ReadOnly", r);
        }
        if let Some(s) = &f.stop_signal {
            set_str(cs, "StopSignal", s);
        }
        if !f.cap_add.is_empty() || !f.cap_drop.is_empty() {
            update_capabilities(cs, &f.cap_add, &f.cap_drop);
        }
        update_references(cs, "Secrets", "SecretName", &a.secret_add, &a.secret_rm);
        update_references(cs, "Configs", "ConfigName", &a.config_add, &a.config_rm);
        if !a.host_add.is_empty() || !a.host_rm.is_empty() {
            let hosts = update_hosts(&strings(&cs["Hosts"]), &a.host_add, &a.host_rm);
            set_list(cs, "Hosts", hosts.into_iter().map(Value::String).collect());
        }
        for (key, add, rm) in [
            ("Nameservers", &a.dns_add, &a.dns_rm),
            ("Options", &a.dns_option_add, &a.dns_option_rm),
            ("Search", &a.dns_search_add, &a.dns_search_rm),
        ] {
            if !add.is_empty() || !rm.is_empty() {
                let dns = cs.entry(&["DNSConfig"]);
                let list = update_list(&strings(&dns[key]), add, rm);
                set_list(dns, key, list.into_iter().map(Value::String).collect());
            }
        }
        if !a.group_add.is_empty() || !a.group_rm.is_empty() {
            let groups = update_list(&strings(&cs["Groups"]), &a.group_add, &a.group_rm);
            set_list(cs, "Groups", groups.into_iter().map(Value::String).collect());
        }
        if !a.sysctl_add.is_empty() || !a.sysctl_rm.is_empty() {
            update_map(cs, "Sysctls", &a.sysctl_rm, &a.sysctl_add);
        }
        if !a.ulimit_add.is_empty() || !a.ulimit_rm.is_empty() {
            let mut list: Vec<Value> =
                cs["Ulimits"].items().iter().filter(|u| !a.ulimit_rm.iter().any(|r| r == u["Name"].str())).cloned().collect();
            list.extend(a.ulimit_add.iter().cloned());
            set_list(cs, "Ulimits", opts::sorted_ulimits(&list));
        }
    }

    if let Some(n) = f.replicas {
        let mode = spec.entry(&["Mode"]);
        if !mode.has("Replicated") {
            return Err(CliError::new("replicas can only be used with replicated mode"));
        }
        mode.entry(&["Replicated"]).set("Replicas", n.into());
    }
    let uf = f.update_flags();
    if uf.any() {
        uf.apply(spec.entry(&["UpdateConfig"]));
    }
    let rf = f.rollback_flags();
    if rf.any() {
        rf.apply(spec.entry(&["RollbackConfig"]));
    }
    if let Some(m) = &f.endpoint_mode {
        spec.entry(&["EndpointSpec"]).set("Mode", m.as_str().into());
    }
    if !a.publish_add.is_empty() || !a.publish_rm.is_empty() {
        let ep = spec.entry(&["EndpointSpec"]);
        let add: Vec<Port> = a.publish_add.iter().flat_map(|l| l.0.clone()).collect();
        let rm: Vec<Port> = a.publish_rm.iter().flat_map(|l| l.0.clone()).collect();
        let ports = update_ports(ep["Ports"].items(), &add, &rm);
        set_list(ep, "Ports", ports);
    }
    Ok(())
}

pub fn run(env: &mut Env, a: UpdateArgs) -> CliResult {
    let service = env.client.get(&format!("/services/{}", path_segment(&a.service)))?;
    if a.rollback && a.other_than_rollback() {
        return Err(CliError::new("other flags may not be combined with --rollback"));
    }
    let mut spec = service["Spec"].clone();
    merge(&a, &mut spec)?;
    crate::commands::secret::resolve_references(env.client, spec.entry(&["TaskTemplate", "ContainerSpec"]))?;
    opts::tag_spec_image(&mut spec);
    let id = service["ID"].str();
    let version = service.at(&["Version", "Index"]).as_u64().unwrap_or(0);
    let mut params = vec![("registryAuthFrom", "spec".to_string())];
    if a.rollback {
        params.push(("rollback", "previous".to_string()));
    }
    params.push(("version", version.to_string()));
    let auth = super::create::registry_auth(a.flags.with_registry_auth, &spec)?;
    let path = format!("/services/{}/update{}", path_segment(id), query(&params));
    let resp = env.client.post_auth(&path, Some(&spec), auth.as_deref())?;
    for w in resp["Warnings"].items() {
        env.eprintln(w.str());
    }
    env.println(&a.service)?;
    if a.flags.detach {
        return Ok(());
    }
    progress::wait_on_service(env, &a.service, a.flags.quiet)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::FakeDaemon;
    use crate::commands::service::ServiceCommand;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        cmd: ServiceCommand,
    }

    fn parse(args: &[&str]) -> UpdateArgs {
        let mut v = vec!["service", "update"];
        v.extend_from_slice(args);
        match T::try_parse_from(v).map_err(|e| e.to_string()).unwrap().cmd {
            ServiceCommand::Update(a) => *a,
            _ => panic!(),
        }
    }

    const SPEC: &str = r#"{"Name":"web","Labels":{"a":"1","b":"2"},"TaskTemplate":{"ContainerSpec":{"Image":"nginx:1.11.2-alpine","Env":["K=V","X=1"],"Init":false,
        "Mounts":[{"Type":"volume","Source":"z","Target":"/z"},{"Type":"bind","Source":"/a","Target":"/a"}]},
        "Resources":{"Limits":{},"Reservations":{}},"Placement":{"Constraints":["node.role == worker"]},"ForceUpdate":0},
        "Mode":{"Replicated":{"Replicas":3}},"EndpointSpec":{"Mode":"vip","Ports":[{"Protocol":"tcp","TargetPort":80,"PublishedPort":8080,"PublishMode":"ingress"}]}}"#;

    fn merged(args: &[&str]) -> Value {
        let mut spec = json::parse(SPEC).unwrap();
        let mut v = args.to_vec();
        v.push("web");
        merge(&parse(&v), &mut spec).unwrap();
        spec
    }

    #[test]
    fn env_add_rm_merging() {
        let s = merged(&["--env-add", "K=W", "--env-rm", "X", "--env-add", "NEW=1"]);
        assert_eq!(s.at(&["TaskTemplate", "ContainerSpec", "Env"]).to_compact(), r#"["K=W","NEW=1"]"#);
        let s = merged(&["--env-rm", "K", "--env-rm", "X"]);
        assert!(!s.at(&["TaskTemplate", "ContainerSpec"]).has("Env"));
        assert_eq!(update_env(&["A=1".into()], &["A".into()], &["A=2".into()]), ["A=2"]);
    }

    #[test]
    fn label_and_constraint_add_rm() {
        let s = merged(&["--label-add", "c=3", "--label-rm", "a", "--label-add", "b=x"]);
        assert_eq!(s["Labels"].to_compact(), r#"{"b":"x","c":"3"}"#);
        let s = merged(&[
            "--constraint-add",
            "node.labels.zone == b",
            "--constraint-add",
            "engine.labels.ssd == true",
            "--constraint-rm",
            "node.role == worker",
        ]);
        assert_eq!(
            s.at(&["TaskTemplate", "Placement", "Constraints"]).to_compact(),
            r#"["engine.labels.ssd == true","node.labels.zone == b"]"#
        );
        let s = merged(&["--constraint-rm", "node.role == worker"]);
        assert!(!s.at(&["TaskTemplate", "Placement"]).has("Constraints"));
        let s = merged(&["--placement-pref-add", "spread=node.labels.zone"]);
        assert_eq!(
            s.at(&["TaskTemplate", "Placement", "Preferences"]).to_compact(),
            r#"[{"Spread":{"SpreadDescriptor":"node.labels.zone"}}]"#
        );
        let s = merged(&["--container-label-add", "x=y"]);
        assert_eq!(s.at(&["TaskTemplate", "ContainerSpec", "Labels"]).to_compact(), r#"{"x":"y"}"#);
    }

    #[test]
    fn image_resources_replicas_and_configs() {
        let s = merged(&[
            "--image",
            "nginx:1.11.3-alpine",
            "--limit-cpu",
            "0.5",
            "--limit-memory",
            "128M",
            "--reserve-cpu",
            "0.1",
            "--replicas",
            "5",
            "--update-parallelism",
            "2",
            "--update-delay",
            "10s",
            "--restart-condition",
            "on-failure",
            "--force",
            "--args",
            "-g 'daemon off;'",
            "--read-only",
            "--stop-grace-period",
            "1m",
        ]);
        let t = &s["TaskTemplate"];
        assert_eq!(t.at(&["ContainerSpec", "Image"]).str(), "nginx:1.11.3-alpine");
        assert_eq!(t.at(&["ContainerSpec", "Args"]).to_compact(), r#"["-g","daemon off;"]"#);
        assert_eq!(
            t["Resources"].to_compact(),
            r#"{"Limits":{"NanoCPUs":500000000,"MemoryBytes":134217728},"Reservations":{"NanoCPUs":100000000}}"#
        );
        assert_eq!(s.at(&["Mode", "Replicated", "Replicas"]).as_u64(), Some(5));
        assert_eq!(
            s["UpdateConfig"].to_compact(),
            r#"{"Parallelism":2,"Delay":10000000000,"FailureAction":"pause","Monitor":5000000000,"MaxFailureRatio":0,"Order":"stop-first"}"#
        );
        assert_eq!(t["RestartPolicy"].to_compact(), r#"{"Condition":"on-failure","Delay":5000000000,"MaxAttempts":0}"#);
        assert_eq!(t["ForceUpdate"].as_u64(), Some(1));
        assert!(t.at(&["ContainerSpec", "ReadOnly"]).bool());
        assert_eq!(t.at(&["ContainerSpec", "StopGracePeriod"]).as_i64(), Some(60_000_000_000));
        let s = merged(&["--read-only=false", "--limit-memory", "0"]);
        assert!(!s.at(&["TaskTemplate", "ContainerSpec"]).has("ReadOnly"));
        assert_eq!(s.at(&["TaskTemplate", "Resources", "Limits"]).to_compact(), "{}");
    }

    #[test]
    fn mounts_and_ports() {
        let s = merged(&["--mount-add", "type=tmpfs,target=/t", "--mount-add", "type=bind,source=/b,target=/a", "--mount-rm", "/z"]);
        assert_eq!(
            s.at(&["TaskTemplate", "ContainerSpec", "Mounts"]).to_compact(),
            r#"[{"Type":"tmpfs","Target":"/t"},{"Type":"bind","Source":"/b","Target":"/a"}]"#
        );
        let mut spec = json::parse(SPEC).unwrap();
        let a = parse(&["--mount-add", "target=/x", "--mount-add", "target=/x", "web"]);
        assert_eq!(merge(&a, &mut spec).unwrap_err().message, "duplicate mount target");

        let s = merged(&["--publish-add", "9090:90", "--publish-add", "8080:80", "--publish-rm", "80"]);
        assert_eq!(
            s.at(&["EndpointSpec", "Ports"]).to_compact(),
            r#"[{"Protocol":"tcp","TargetPort":90,"PublishedPort":9090,"PublishMode":"ingress"}]"#
        );
        let s = merged(&["--publish-rm", "target=80,protocol=udp"]);
        assert_eq!(s.at(&["EndpointSpec", "Ports"]).items().len(), 1, "udp removal leaves the tcp port");
        let s = merged(&["--publish-rm", "80"]);
        assert!(!s["EndpointSpec"].has("Ports"));
    }

    #[test]
    fn capabilities_healthcheck_and_errors() {
        let mut cs = json::parse(r#"{"CapabilityAdd":["CAP_NET_ADMIN"],"CapabilityDrop":["CAP_CHOWN"]}"#).unwrap();
        update_capabilities(&mut cs, &["chown".into(), "sys_time".into()], &["net_admin".into()]);
        assert_eq!(cs.to_compact(), r#"{"CapabilityAdd":["CAP_SYS_TIME"]}"#);
        let s = merged(&["--health-cmd", "true", "--health-retries", "2"]);
        assert_eq!(s.at(&["TaskTemplate", "ContainerSpec", "Healthcheck"]).to_compact(), r#"{"Test":["CMD-SHELL","true"],"Retries":2}"#);
        let s = merged(&["--no-healthcheck"]);
        assert_eq!(s.at(&["TaskTemplate", "ContainerSpec", "Healthcheck"]).to_compact(), r#"{"Test":["NONE"]}"#);

        let mut spec = json::parse(&SPEC.replace(r#"{"Replicated":{"Replicas":3}}"#, r#"{"Global":{}}"#)).unwrap();
        assert_eq!(
            merge(&parse(&["--replicas", "2", "web"]), &mut spec).unwrap_err().message,
            "replicas can only be used with replicated mode"
        );
        assert!(parse(&["--rollback", "-d", "web"]).rollback);
        assert!(!parse(&["--rollback", "-d", "-q", "web"]).other_than_rollback());
        assert!(parse(&["--rollback", "--image", "x", "web"]).other_than_rollback());
    }

    #[test]
    fn posts_the_full_spec_with_the_version() {
        let svc = format!(r#"{{"ID":"svc1","Version":{{"Index":12}},"Spec":{SPEC}}}"#);
        let d = FakeDaemon::start(move |req| match (req.method.as_str(), req.target.as_str()) {
            ("GET", "/v1.44/services/web") => (200, svc.clone()),
            ("POST", "/v1.44/services/svc1/update?registryAuthFrom=spec&version=12") => (200, r#"{"Warnings":null}"#.into()),
            ("POST", "/v1.44/services/svc1/update?registryAuthFrom=spec&rollback=previous&version=12") => (200, "{}".into()),
            _ => (404, r#"{"message":"service nope not found"}"#.into()),
        });
        let client = d.client();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        {
            let mut env = Env { client: &client, out: &mut out, err: &mut err, prog: "shoal".into() };
            run(&mut env, parse(&["--image", "busybox:1.36", "web", "-d"])).unwrap();
            run(&mut env, parse(&["--rollback", "-d", "web"])).unwrap();
            assert_eq!(
                run(&mut env, parse(&["--rollback", "--replicas", "2", "web"])).unwrap_err().message,
                "other flags may not be combined with --rollback"
            );
            assert_eq!(run(&mut env, parse(&["-d", "nope"])).unwrap_err().message, "Error response from daemon: service nope not found");
        }
        assert_eq!(String::from_utf8(out).unwrap(), "web\nweb\n");
        let reqs = d.requests();
        let body = json::parse(&reqs[1].body).unwrap();
        assert_eq!(body.at(&["TaskTemplate", "ContainerSpec", "Image"]).str(), "busybox:1.36");
        assert_eq!(body["Name"].str(), "web");
        assert_eq!(body.at(&["Mode", "Replicated", "Replicas"]).as_u64(), Some(3));
    }

    #[test]
    fn hosts_dns_sysctls_and_ulimits_are_added_and_removed() {
        let mut spec = json::parse(
            r#"{"TaskTemplate":{"ContainerSpec":{"Hosts":["10.0.0.5 db","10.0.0.6 cache"],"DNSConfig":{"Nameservers":["10.1.1.1"]},"Sysctls":{"a":"1"},"Ulimits":[{"Name":"nproc","Hard":64,"Soft":64}]}}}"#,
        )
        .unwrap();
        let a = parse(&[
            "--host-rm",
            "db",
            "--host-add",
            "web:10.0.0.7",
            "--dns-add",
            "10.2.2.2",
            "--dns-rm",
            "10.1.1.1",
            "--sysctl-add",
            "b=2",
            "--sysctl-rm",
            "a",
            "--group-add",
            "audio",
            "--ulimit-add",
            "nofile=10:20",
            "--ulimit-rm",
            "nproc",
            "web",
        ]);
        merge(&a, &mut spec).unwrap();
        let cs = spec.at(&["TaskTemplate", "ContainerSpec"]);
        assert_eq!(cs["Hosts"].to_compact(), r#"["10.0.0.6 cache","10.0.0.7 web"]"#);
        assert_eq!(cs["DNSConfig"].to_compact(), r#"{"Nameservers":["10.2.2.2"]}"#);
        assert_eq!(cs["Sysctls"].to_compact(), r#"{"b":"2"}"#);
        assert_eq!(cs["Groups"].to_compact(), r#"["audio"]"#);
        assert_eq!(cs["Ulimits"].to_compact(), r#"[{"Name":"nofile","Hard":20,"Soft":10}]"#);
        assert_eq!(update_hosts(&["10.0.0.5 db".into(), "10.0.0.9 db".into()], &[], &["db:10.0.0.9".into()]), vec!["10.0.0.5 db"]);
        // Without these flags the spec is left alone (no empty DNSConfig).
        let mut bare = json::parse(r#"{"TaskTemplate":{"ContainerSpec":{"Image":"x"}}}"#).unwrap();
        merge(&parse(&["--replicas", "2", "web"]), &mut bare).ok();
        assert!(bare.at(&["TaskTemplate", "ContainerSpec"])["DNSConfig"].is_null());
    }
}
