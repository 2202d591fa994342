//! `shoal service create`: flags → `ServiceSpec` (docker's `ToService`),
//! `POST /services/create`, the new ID, then the convergence progress.

use clap::Args;

use super::flags::ServiceFlags;
use super::opts::{self, PortList};
use super::progress;
use crate::commands::Env;
use crate::error::{CliError, CliResult};
use serde_json::{Map, Value};

use crate::json::{self, JsonExt};

#[derive(Args, Debug, Default, Clone, PartialEq)]
pub struct CreateArgs {
    /// Service mode ("replicated", "global", "replicated-job", "global-job")
    #[arg(long, value_name = "string", default_value = "replicated")]
    pub mode: String,
    /// Service name
    #[arg(long, value_name = "string")]
    pub name: Option<String>,
    #[command(flatten)]
    pub flags: ServiceFlags,
    /// Service labels
    #[arg(short = 'l', long = "label", value_name = "list", value_parser = opts::label)]
    pub label: Vec<String>,
    /// Container labels
    #[arg(long = "container-label", value_name = "list", value_parser = opts::label)]
    pub container_label: Vec<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list", value_parser = opts::env_var)]
    pub env: Vec<String>,
    /// Attach a filesystem mount to the service
    #[arg(long = "mount", value_name = "mount", value_parser = opts::mount)]
    pub mount: Vec<Value>,
    /// Placement constraints
    #[arg(long = "constraint", value_name = "list")]
    pub constraint: Vec<String>,
    /// Add a placement preference
    #[arg(long = "placement-pref", value_name = "pref", value_parser = opts::placement_pref)]
    pub placement_pref: Vec<String>,
    /// Network attachments
    #[arg(long = "network", value_name = "network", value_parser = opts::network)]
    pub network: Vec<Value>,
    /// Specify secrets to expose to the service
    #[arg(long = "secret", value_name = "secret", value_parser = opts::secret)]
    pub secret: Vec<Value>,
    /// Specify configurations to expose to the service
    #[arg(long = "config", value_name = "config", value_parser = opts::config)]
    pub config: Vec<Value>,
    /// Publish a port as a node port
    #[arg(short = 'p', long = "publish", value_name = "port", value_parser = opts::publish)]
    pub publish: Vec<PortList>,
    /// Use an init inside each service container to forward signals and reap processes
    #[arg(long)]
    pub init: bool,
    /// Set one or more supplementary user groups for the container
    #[arg(long = "group", value_name = "list")]
    pub group: Vec<String>,
    /// Sysctl options
    #[arg(long = "sysctl", value_name = "list")]
    pub sysctl: Vec<String>,
    /// Ulimit options
    #[arg(long = "ulimit", value_name = "ulimit", value_parser = opts::ulimit)]
    pub ulimit: Vec<Value>,
    /// Set one or more custom host-to-IP mappings (host:ip)
    #[arg(long = "host", value_name = "list", value_parser = opts::extra_host)]
    pub host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long = "dns", value_name = "list", value_parser = opts::ip_address)]
    pub dns: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", value_name = "list")]
    pub dns_option: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", value_name = "list", value_parser = opts::dns_search)]
    pub dns_search: Vec<String>,
    /// Security options (seccomp=unconfined|<profile.json>, apparmor=unconfined, no-new-privileges[=true|false])
    #[arg(long = "security-opt", value_name = "list", value_parser = opts::security_opt)]
    pub security_opt: Vec<opts::SecurityOpt>,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(value_name = "IMAGE", required = true, trailing_var_arg = true, allow_hyphen_values = true, num_args = 1..)]
    pub image_and_args: Vec<String>,
}

/// docker's `makeEnv`: later values of a variable replace earlier ones.
fn make_env(list: &[String]) -> Vec<String> {
    let mut cur: Vec<String> = Vec::new();
    for env in list {
        let k = env.split_once('=').map(|(k, _)| k).unwrap_or(env);
        let prefix = format!("{k}=");
        cur.retain(|c| c == env || !c.starts_with(&prefix));
        cur.push(env.clone());
    }
    cur
}

fn service_mode(a: &CreateArgs) -> CliResult<Value> {
    let f = &a.flags;
    let replicas = |r: Option<u64>| match r {
        Some(n) => json::object([("Replicas", Value::from(n))]),
        None => Value::Object(Map::new()),
    };
    let err = |m: &str| Err(CliError::new(m));
    Ok(match a.mode.as_str() {
        "global" => {
            if f.replicas.is_some() {
                return err("replicas can only be used with replicated or replicated-job mode");
            }
            if f.replicas_max_per_node.unwrap_or(0) > 0 {
                return err("replicas-max-per-node can only be used with replicated or replicated-job mode");
            }
            if f.max_concurrent.is_some() {
                return err("max-concurrent can only be used with replicated-job mode");
            }
            json::object([("Global", Value::Object(Map::new()))])
        }
        "replicated" => {
            if f.max_concurrent.is_some() {
                return err("max-concurrent can only be used with replicated-job mode");
            }
            json::object([("Replicated", replicas(f.replicas))])
        }
        "replicated-job" => {
            let mut job = Vec::new();
            if let Some(c) = f.max_concurrent.or(f.replicas) {
                job.push(("MaxConcurrent", Value::from(c)));
            }
            if let Some(n) = f.replicas {
                job.push(("TotalCompletions", Value::from(n)));
            }
            json::object([("ReplicatedJob", json::object(job))])
        }
        "global-job" => {
            if f.replicas_max_per_node.unwrap_or(0) > 0 {
                return err("replicas-max-per-node can only be used with replicated or replicated-job mode");
            }
            if f.max_concurrent.is_some() {
                return err("max-concurrent can only be used with replicated-job mode");
            }
            if f.replicas.is_some() {
                return err("replicas can only be used with replicated or replicated-job mode");
            }
            json::object([("GlobalJob", Value::Object(Map::new()))])
        }
        m => return Err(CliError::new(format!("Unknown mode: {m}, only replicated and global supported"))),
    })
}

/// The `ServiceSpec` the flags describe, in Go's field order with
/// `omitempty` applied, as docker sends it.
pub fn build_spec(a: &CreateArgs) -> CliResult<Value> {
    let f = &a.flags;
    let env = make_env(&a.env);
    let health = f.health_config().map_err(CliError::new)?;
    let mode = service_mode(a)?;
    let is_job = mode.has("ReplicatedJob") || mode.has("GlobalJob");
    let update_flags = f.update_flags();
    let rollback_flags = f.rollback_flags();
    if is_job && (update_flags.any() || rollback_flags.any()) {
        return Err(CliError::new("update and rollback configuration is not supported for jobs"));
    }
    let (image, args) = a.image_and_args.split_first().map(|(i, r)| (i.clone(), r.to_vec())).unwrap_or_default();

    // ContainerSpec
    let mut cs: Vec<(&str, Value)> = vec![("Image", Value::from(image))];
    let labels = opts::kv_map(&a.container_label);
    if !labels.members().is_empty() {
        cs.push(("Labels", labels));
    }
    if let Some(ep) = &f.entrypoint {
        if !ep.0.is_empty() {
            cs.push(("Command", Value::from(ep.0.clone())));
        }
    }
    if !args.is_empty() {
        cs.push(("Args", Value::from(args)));
    }
    let nonempty = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(Value::from);
    if let Some(h) = nonempty(&f.hostname) {
        cs.push(("Hostname", h));
    }
    if !env.is_empty() {
        cs.push(("Env", Value::from(env)));
    }
    if let Some(d) = nonempty(&f.workdir) {
        cs.push(("Dir", d));
    }
    if let Some(u) = nonempty(&f.user) {
        cs.push(("User", u));
    }
    if !a.group.is_empty() {
        cs.push(("Groups", Value::from(a.group.clone())));
    }
    if let Some(p) = opts::privileges(&a.security_opt) {
        cs.push(("Privileges", p));
    }
    cs.push(("Init", Value::Bool(a.init)));
    if let Some(s) = nonempty(&f.stop_signal) {
        cs.push(("StopSignal", s));
    }
    if f.tty == Some(true) {
        cs.push(("TTY", Value::Bool(true)));
    }
    if f.read_only == Some(true) {
        cs.push(("ReadOnly", Value::Bool(true)));
    }
    if !a.mount.is_empty() {
        cs.push(("Mounts", Value::Array(a.mount.clone())));
    }
    if let Some(g) = f.stop_grace_period {
        cs.push(("StopGracePeriod", g.into()));
    }
    if let Some(h) = health {
        cs.push(("Healthcheck", h));
    }
    if !a.host.is_empty() {
        cs.push(("Hosts", Value::from(a.host.clone())));
    }
    let mut dns = Vec::new();
    for (k, v) in [("Nameservers", &a.dns), ("Search", &a.dns_search), ("Options", &a.dns_option)] {
        if !v.is_empty() {
            dns.push((k, Value::from(v.clone())));
        }
    }
    cs.push(("DNSConfig", json::object(dns)));
    if !a.secret.is_empty() {
        cs.push(("Secrets", Value::Array(a.secret.clone())));
    }
    if !a.config.is_empty() {
        cs.push(("Configs", Value::Array(a.config.clone())));
    }
    if !a.sysctl.is_empty() {
        cs.push(("Sysctls", opts::kv_map(&a.sysctl)));
    }
    let (cap_add, cap_drop) = opts::effective_caps(&f.cap_add, &f.cap_drop);
    if !cap_add.is_empty() {
        cs.push(("CapabilityAdd", Value::from(cap_add)));
    }
    if !cap_drop.is_empty() {
        cs.push(("CapabilityDrop", Value::from(cap_drop)));
    }
    if !a.ulimit.is_empty() {
        cs.push(("Ulimits", Value::Array(opts::sorted_ulimits(&a.ulimit))));
    }

    // Resources
    let mut limits = Vec::new();
    if let Some(n) = f.limit_cpu.filter(|n| *n != 0) {
        limits.push(("NanoCPUs", Value::from(n)));
    }
    if let Some(n) = f.limit_memory.filter(|n| *n != 0) {
        limits.push(("MemoryBytes", Value::from(n)));
    }
    if let Some(n) = f.limit_pids.filter(|n| *n != 0) {
        limits.push(("Pids", Value::from(n)));
    }
    let mut reservations = Vec::new();
    if let Some(n) = f.reserve_cpu.filter(|n| *n != 0) {
        reservations.push(("NanoCPUs", Value::from(n)));
    }
    if let Some(n) = f.reserve_memory.filter(|n| *n != 0) {
        reservations.push(("MemoryBytes", Value::from(n)));
    }

    let mut task: Vec<(&str, Value)> = vec![
        ("ContainerSpec", json::object(cs)),
        ("Resources", json::object([("Limits", json::object(limits)), ("Reservations", json::object(reservations))])),
    ];
    if f.restart_changed() {
        let mut rp = Value::Null;
        f.apply_restart(&mut rp);
        task.push(("RestartPolicy", rp));
    }
    let mut placement = Vec::new();
    if !a.constraint.is_empty() {
        placement.push(("Constraints", Value::from(a.constraint.clone())));
    }
    if !a.placement_pref.is_empty() {
        placement.push(("Preferences", Value::Array(a.placement_pref.iter().map(|d| opts::spread_pref(d)).collect())));
    }
    if let Some(n) = f.replicas_max_per_node.filter(|n| *n > 0) {
        placement.push(("MaxReplicas", Value::from(n)));
    }
    task.push(("Placement", json::object(placement)));
    if !a.network.is_empty() {
        let mut nets = a.network.clone();
        nets.sort_by(|x, y| x["Target"].str().cmp(y["Target"].str()));
        task.push(("Networks", Value::Array(nets)));
    }
    if let Some(d) = f.log_driver.as_deref().filter(|d| !d.is_empty()) {
        let mut drv = vec![("Name", Value::from(d))];
        if !f.log_opt.is_empty() {
            drv.push(("Options", opts::kv_map(&f.log_opt)));
        }
        task.push(("LogDriver", json::object(drv)));
    }
    task.push(("ForceUpdate", Value::from(0u64)));

    let mut spec: Vec<(&str, Value)> = Vec::new();
    if let Some(n) = a.name.as_deref().filter(|n| !n.is_empty()) {
        spec.push(("Name", Value::from(n)));
    }
    spec.push(("Labels", opts::kv_map(&a.label)));
    spec.push(("TaskTemplate", json::object(task)));
    spec.push(("Mode", mode));
    if update_flags.any() {
        let mut c = Value::Null;
        update_flags.apply(&mut c);
        spec.push(("UpdateConfig", c));
    }
    if rollback_flags.any() {
        let mut c = Value::Null;
        rollback_flags.apply(&mut c);
        spec.push(("RollbackConfig", c));
    }
    let mut endpoint = vec![("Mode", Value::from(f.endpoint_mode.as_deref().unwrap_or("vip").to_lowercase()))];
    let ports: Vec<Value> = a.publish.iter().flat_map(|l| l.0.iter().map(|p| p.to_json())).collect();
    if !ports.is_empty() {
        endpoint.push(("Ports", Value::Array(ports)));
    }
    spec.push(("EndpointSpec", json::object(endpoint)));
    let mut spec = json::object(spec);
    opts::tag_spec_image(&mut spec);
    Ok(spec)
}

/// `--with-registry-auth`: the client's credentials for the spec's image.
pub(super) fn registry_auth(wanted: bool, spec: &Value) -> CliResult<Option<String>> {
    if !wanted {
        return Ok(None);
    }
    crate::registry_auth::header_for(spec.at(&["TaskTemplate", "ContainerSpec", "Image"]).str())
}

pub fn run(env: &mut Env, a: CreateArgs) -> CliResult {
    let mut spec = build_spec(&a)?;
    crate::commands::secret::resolve_references(env.client, spec.entry(&["TaskTemplate", "ContainerSpec"]))?;
    let auth = registry_auth(a.flags.with_registry_auth, &spec)?;
    let resp = env.client.post_auth("/services/create", Some(&spec), auth.as_deref())?;
    for w in resp["Warnings"].items() {
        env.eprintln(w.str());
    }
    let id = resp["ID"].str().to_string();
    env.println(&id)?;
    if a.flags.detach {
        return Ok(());
    }
    progress::wait_on_service(env, &id, a.flags.quiet)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::service::ServiceCommand;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        cmd: ServiceCommand,
    }

    pub fn parse(args: &[&str]) -> CreateArgs {
        let mut v = vec!["service", "create"];
        v.extend_from_slice(args);
        match T::try_parse_from(v).map_err(|e| e.to_string()).unwrap().cmd {
            ServiceCommand::Create(a) => *a,
            _ => panic!(),
        }
    }

    fn spec(args: &[&str]) -> Value {
        build_spec(&parse(args)).unwrap()
    }

    #[test]
    fn minimal_spec_is_what_docker_sends() {
        assert_eq!(
            spec(&["--name", "web", "--replicas", "6", "busybox", "sleep", "1000"]).to_compact(),
            r#"{"Name":"web","Labels":{},"TaskTemplate":{"ContainerSpec":{"Image":"busybox:latest","Args":["sleep","1000"],"Init":false,"DNSConfig":{}},"Resources":{"Limits":{},"Reservations":{}},"Placement":{},"ForceUpdate":0},"Mode":{"Replicated":{"Replicas":6}},"EndpointSpec":{"Mode":"vip"}}"#
        );
        // no --replicas: the daemon's default (1)
        assert_eq!(spec(&["nginx"])["Mode"].to_compact(), r#"{"Replicated":{}}"#);
    }

    #[test]
    fn flags_after_the_image_belong_to_the_command() {
        let a = parse(&["--name", "web", "busybox", "-d", "--name", "x"]);
        assert_eq!(a.image_and_args, ["busybox", "-d", "--name", "x"]);
        assert_eq!(a.name.as_deref(), Some("web"));
        assert!(!a.flags.detach);
        let a = parse(&["-d", "-q", "busybox"]);
        assert!(a.flags.detach && a.flags.quiet);
    }

    #[test]
    fn resources_restart_update_and_placement() {
        let s = spec(&[
            "--limit-cpu",
            "0.25",
            "--reserve-cpu",
            "0.1",
            "--limit-memory",
            "64M",
            "--reserve-memory",
            "32MiB",
            "--restart-condition",
            "on-failure",
            "--restart-max-attempts",
            "3",
            "--update-parallelism",
            "2",
            "--update-delay",
            "10s",
            "--rollback-order",
            "start-first",
            "--constraint",
            "node.role == manager",
            "--constraint",
            "node.labels.type == frontend",
            "--placement-pref",
            "spread=node.labels.zone",
            "--replicas-max-per-node",
            "2",
            "--stop-grace-period",
            "30s",
            "--endpoint-mode",
            "DNSRR",
            "nginx",
        ]);
        let t = &s["TaskTemplate"];
        assert_eq!(
            t["Resources"].to_compact(),
            r#"{"Limits":{"NanoCPUs":250000000,"MemoryBytes":67108864},"Reservations":{"NanoCPUs":100000000,"MemoryBytes":33554432}}"#
        );
        assert_eq!(t["RestartPolicy"].to_compact(), r#"{"Condition":"on-failure","Delay":5000000000,"MaxAttempts":3}"#);
        assert_eq!(
            t["Placement"].to_compact(),
            r#"{"Constraints":["node.role == manager","node.labels.type == frontend"],"Preferences":[{"Spread":{"SpreadDescriptor":"node.labels.zone"}}],"MaxReplicas":2}"#
        );
        assert_eq!(t.at(&["ContainerSpec", "StopGracePeriod"]).as_i64(), Some(30_000_000_000));
        assert_eq!(
            s["UpdateConfig"].to_compact(),
            r#"{"Parallelism":2,"Delay":10000000000,"FailureAction":"pause","Monitor":5000000000,"MaxFailureRatio":0,"Order":"stop-first"}"#
        );
        assert_eq!(
            s["RollbackConfig"].to_compact(),
            r#"{"Parallelism":1,"FailureAction":"pause","Monitor":5000000000,"MaxFailureRatio":0,"Order":"start-first"}"#
        );
        assert_eq!(s["EndpointSpec"].to_compact(), r#"{"Mode":"dnsrr"}"#);
    }

    #[test]
    fn env_labels_ports_mounts_health() {
        let s = spec(&[
            "-e",
            "A=1",
            "--env",
            "B=2",
            "-e",
            "A=3",
            "-l",
            "com.example=x",
            "--label",
            "flag",
            "--container-label",
            "c=d",
            "-p",
            "80:80",
            "--publish",
            "published=9090,target=9090,protocol=udp,mode=host",
            "--mount",
            "type=bind,source=/srv,target=/srv,readonly",
            "--health-cmd",
            "curl -f localhost",
            "--health-interval",
            "5s",
            "--health-retries",
            "3",
            "-u",
            "nobody",
            "-w",
            "/tmp",
            "--hostname",
            "h",
            "--entrypoint",
            "sh -c",
            "--init",
            "--read-only",
            "--cap-add",
            "net_admin",
            "--secret",
            "db_pw",
            "--network",
            "appnet",
            "nginx",
        ]);
        let cs = s.at(&["TaskTemplate", "ContainerSpec"]);
        assert_eq!(cs["Env"].to_compact(), r#"["B=2","A=3"]"#);
        assert_eq!(s["Labels"].to_compact(), r#"{"com.example":"x","flag":""}"#);
        assert_eq!(cs["Labels"].to_compact(), r#"{"c":"d"}"#);
        assert_eq!(
            s.at(&["EndpointSpec", "Ports"]).to_compact(),
            r#"[{"Protocol":"tcp","TargetPort":80,"PublishedPort":80,"PublishMode":"ingress"},{"Protocol":"udp","TargetPort":9090,"PublishedPort":9090,"PublishMode":"host"}]"#
        );
        assert_eq!(cs["Mounts"].to_compact(), r#"[{"Type":"bind","Source":"/srv","Target":"/srv","ReadOnly":true}]"#);
        assert_eq!(cs["Healthcheck"].to_compact(), r#"{"Test":["CMD-SHELL","curl -f localhost"],"Interval":5000000000,"Retries":3}"#);
        assert_eq!(cs["Command"].to_compact(), r#"["sh","-c"]"#);
        assert_eq!((cs["User"].str(), cs["Dir"].str(), cs["Hostname"].str()), ("nobody", "/tmp", "h"));
        assert_eq!((cs["Init"].bool(), cs["ReadOnly"].bool()), (true, true));
        assert_eq!(cs["CapabilityAdd"].to_compact(), r#"["CAP_NET_ADMIN"]"#);
        assert_eq!(cs.at(&["Secrets"]).items()[0]["SecretName"].str(), "db_pw");
        assert_eq!(s.at(&["TaskTemplate", "Networks"]).to_compact(), r#"[{"Target":"appnet"}]"#);
        assert_eq!(
            spec(&["--no-healthcheck", "x"]).at(&["TaskTemplate", "ContainerSpec", "Healthcheck"]).to_compact(),
            r#"{"Test":["NONE"]}"#
        );
    }

    #[test]
    fn modes_and_their_errors() {
        assert_eq!(spec(&["--mode", "global", "x"])["Mode"].to_compact(), r#"{"Global":{}}"#);
        assert_eq!(
            spec(&["--mode", "replicated-job", "--replicas", "4", "x"])["Mode"].to_compact(),
            r#"{"ReplicatedJob":{"MaxConcurrent":4,"TotalCompletions":4}}"#
        );
        assert_eq!(spec(&["--mode", "global-job", "x"])["Mode"].to_compact(), r#"{"GlobalJob":{}}"#);
        let err = |args: &[&str]| build_spec(&parse(args)).unwrap_err().message;
        assert_eq!(err(&["--mode", "global", "--replicas", "2", "x"]), "replicas can only be used with replicated or replicated-job mode");
        assert_eq!(err(&["--mode", "bogus", "x"]), "Unknown mode: bogus, only replicated and global supported");
        assert_eq!(
            err(&["--mode", "global-job", "--update-delay", "1s", "x"]),
            "update and rollback configuration is not supported for jobs"
        );
        assert_eq!(err(&["--no-healthcheck", "--health-cmd", "true", "x"]), "--no-healthcheck conflicts with --health-* options");
    }

    #[test]
    fn runtime_options() {
        let s = spec(&[
            "--sysctl",
            "net.core.somaxconn=1024",
            "--ulimit",
            "nproc=64",
            "--ulimit",
            "nofile=1024:2048",
            "--host",
            "db:10.0.0.5",
            "--dns",
            "10.0.0.2",
            "--dns-search",
            "example.test",
            "--dns-option",
            "ndots:2",
            "x",
        ]);
        let cs = s.at(&["TaskTemplate", "ContainerSpec"]);
        assert_eq!(cs["Hosts"].to_compact(), r#"["10.0.0.5 db"]"#);
        assert_eq!(cs["DNSConfig"].to_compact(), r#"{"Nameservers":["10.0.0.2"],"Search":["example.test"],"Options":["ndots:2"]}"#);
        assert_eq!(cs["Sysctls"].to_compact(), r#"{"net.core.somaxconn":"1024"}"#);
        assert_eq!(cs["Ulimits"].to_compact(), r#"[{"Name":"nofile","Hard":2048,"Soft":1024},{"Name":"nproc","Hard":64,"Soft":64}]"#);
    }

    #[test]
    fn bad_values_are_refused_at_parse_time() {
        let bad = |args: &[&str]| {
            let mut v = vec!["service", "create"];
            v.extend_from_slice(args);
            T::try_parse_from(v).err().map(|e| e.to_string()).unwrap_or_default()
        };
        assert!(bad(&["--limit-memory", "64Q", "x"]).contains("invalid suffix: 'q'"));
        assert!(bad(&["--limit-cpu", "abc", "x"]).contains("failed to parse abc as a rational number"));
        assert!(bad(&["-p", "80:80/xyz", "x"]).contains("invalid proto: xyz"));
        assert!(bad(&["--mount", "type=bind", "x"]).contains("target is required"));
        assert!(bad(&["--replicas=-1", "x"]).contains("strconv.ParseUint: parsing \"-1\": invalid syntax"));
        assert!(bad(&["--name", "web"]).contains("IMAGE"));
        assert!(bad(&["--ulimit", "bogus=1", "x"]).contains("invalid ulimit type: bogus"));
        assert!(bad(&["--ulimit", "nofile", "x"]).contains("invalid ulimit argument: nofile"));
        assert!(bad(&["--ulimit", "nofile=10:5", "x"]).contains("ulimit soft limit must be less than or equal to hard limit: 10 > 5"));
        assert!(bad(&["--host", "db", "x"]).contains("bad format for add-host: \"db\""));
        assert!(bad(&["--host", "db:1.2.3", "x"]).contains("invalid IP address in add-host: \"1.2.3\""));
        assert!(bad(&["--dns", "nope", "x"]).contains("IP address is not correctly formatted: nope"));
        assert!(bad(&["--dns-search", "-bad", "x"]).contains("-bad is not a valid domain"));
        assert!(bad(&["--security-opt", "label=type:svirt_t", "x"]).contains("SELinux labels are not supported"));
        assert!(bad(&["--security-opt", "apparmor=my-profile", "x"]).contains("only turn AppArmor off"));
        assert!(bad(&["--security-opt", "systempaths=unconfined", "x"]).contains("invalid --security-opt: \"systempaths=unconfined\""));
        assert!(bad(&["--security-opt", "no-new-privileges=maybe", "x"]).contains("no-new-privileges takes true or false"));
        assert!(bad(&["--security-opt", "seccomp=/nonexistent/profile.json", "x"])
            .contains("opening seccomp profile (/nonexistent/profile.json) failed"));
    }

    #[test]
    fn security_opts_become_privileges() {
        let cs = |args: &[&str]| spec(args).at(&["TaskTemplate", "ContainerSpec"]).clone();
        assert!(!cs(&["x"]).has("Privileges"));
        assert_eq!(
            cs(&[
                "--security-opt",
                "seccomp=unconfined",
                "--security-opt",
                "apparmor=unconfined",
                "--security-opt",
                "no-new-privileges",
                "x"
            ])["Privileges"]
                .to_compact(),
            r#"{"CredentialSpec":null,"SELinuxContext":null,"Seccomp":{"Mode":"unconfined"},"AppArmor":{"Mode":"disabled"},"NoNewPrivileges":true}"#
        );
        let dir = std::env::temp_dir().join(format!("shoal-cli-seccomp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.json");
        let profile = br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO"}]}"#;
        std::fs::write(&good, profile).unwrap();
        let p = cs(&["--security-opt", &format!("seccomp={}", good.display()), "--security-opt", "no-new-privileges=false", "x"]);
        let p = &p["Privileges"];
        assert_eq!(p.at(&["Seccomp", "Mode"]).str(), "custom");
        assert_eq!(shoal_api::base64::decode(p.at(&["Seccomp", "Profile"]).str()).unwrap(), profile);
        assert!(p.has("NoNewPrivileges") && !p["NoNewPrivileges"].bool());
        // What the CLI sends is what the API reads.
        let typed: shoal_api::task::Privileges = serde_json::from_str(&p.to_compact()).unwrap();
        typed.validate().unwrap();
        let bad = dir.join("bad.json");
        std::fs::write(&bad, br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscals": []}"#).unwrap();
        let e = opts::security_opt(&format!("seccomp={}", bad.display())).unwrap_err();
        assert!(e.contains("unknown field `syscals`"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
