//! Request bodies as Docker's clients send them, decoded the way every
//! handler decodes its body (`Call::json`) and checked field by field.
//!
//! The docker-py bodies are written down from docker-py 7.2's source
//! (`docker/api/*.py` builds them from the `docker/types` dicts; its
//! `_post_json` drops `None` only at the top level, so nested `None`s go
//! out as `null`, and some types spell keys in lower case). The docker CLI
//! bodies are as Docker's Go client marshals them (`omitempty` fields left
//! out, zero values of the others written). The `go_client_*` bodies are
//! what Docker's Go client (moby v24.0.9-v27.5.1, `client/request.go`'s
//! `json.NewEncoder`) writes for the calls named, worked out from the
//! `api/types/swarm` and `api/types/network` struct tags: a field without
//! `omitempty` is always written (`"Labels":null` from `Annotations`, `0`,
//! `""`, `false`), a struct value is never left out (`"Mode":{}`), and
//! each body ends with a newline.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use hyper::Method;
use serde::de::DeserializeOwned;
use shoal_api::network::NetworkCreateRequest;
use shoal_api::secret::{ConfigSpec, SecretSpec};
use shoal_api::service::{PortProtocol, PublishMode, ServiceMode, ServiceSpec};
use shoal_api::task::{GenericResource, RestartCondition};
use shoal_api::{Availability, InitRequest, NodeSpec, Role, SwarmSpec};

use super::Call;

fn call(body: &str) -> Call {
    Call {
        method: Method::POST,
        segs: Vec::new(),
        query: HashMap::new(),
        body: Bytes::from(body.to_string()),
        registry_auth: None,
        api: Default::default(),
    }
}

fn decode<T: DeserializeOwned>(body: &str) -> T {
    call(body).json().unwrap_or_else(|e| panic!("refused: {}\nbody: {body}", e.message))
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// `client.services.create("busybox", command="sleep 1", name="x1")`: no
/// `Args` given, so `ContainerSpec.Args` is `null`.
#[test]
fn docker_py_minimal_service_create() {
    let s: ServiceSpec =
        decode(r#"{"Name": "x1", "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Command": ["sleep", "1"], "Args": null}}}"#);
    assert_eq!(s.name, "x1");
    let cs = s.task_template.container_spec.as_ref().unwrap();
    assert_eq!(cs.image, "busybox");
    assert_eq!(cs.command, ["sleep", "1"]);
    assert!(cs.args.is_empty());
    assert_eq!(s.mode, ServiceMode::Replicated { replicas: 1 });
    assert!(s.labels.is_empty());
    assert!(s.endpoint_spec.is_none());
}

/// The same with every top-level argument sent as `null` (docker-py before
/// `_post_json` dropped them, and other SDKs today).
#[test]
fn sdk_service_create_with_null_arguments() {
    let s: ServiceSpec = decode(
        r#"{"Name": "x1", "Labels": null, "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Command": ["sleep","1"], "Args": null}},
            "Mode": null, "Networks": null, "EndpointSpec": null, "UpdateConfig": null, "RollbackConfig": null}"#,
    );
    assert_eq!(s.name, "x1");
    assert!(s.labels.is_empty());
    assert_eq!(s.mode, ServiceMode::Replicated { replicas: 1 });
    assert!(s.endpoint_spec.is_none() && s.update_config.is_none() && s.rollback_config.is_none());
    assert_eq!(s.task_template.container_spec.unwrap().command, ["sleep", "1"]);
}

/// `client.services.create(...)` with most of docker-py's service types.
#[test]
fn docker_py_full_service_create() {
    let body = r#"{
      "Name": "web",
      "Labels": {"Team": "a", "team": "b"},
      "TaskTemplate": {
        "ContainerSpec": {
          "Image": "nginx:1.25", "Command": ["nginx"], "Args": ["-g", "daemon off;"],
          "Hostname": "web", "Env": ["A=1"], "Dir": "/srv", "User": "101", "Groups": ["www"],
          "StopSignal": "SIGQUIT", "StopGracePeriod": 10000000000,
          "Labels": {"com.example.role": "front"},
          "Hosts": ["10.0.0.1 db"],
          "Mounts": [
            {"Target": "/data", "Source": "/srv", "Type": "bind", "ReadOnly": true},
            {"Target": "/cache", "Source": "cache", "Type": "volume", "ReadOnly": false},
            {"Target": "/scratch", "Source": null, "Type": "volume", "ReadOnly": false},
            {"Target": "/tmp", "Source": null, "Type": "tmpfs", "ReadOnly": false, "TmpfsOptions": {"SizeBytes": 1048576}}
          ],
          "Secrets": [{"SecretName": "pw", "SecretID": "sid1", "File": {"Name": "pw", "UID": "0", "GID": "0", "Mode": 292}}],
          "Configs": [{"ConfigName": "conf", "ConfigID": "cid1", "File": {"Name": "/etc/app.conf", "UID": "0", "GID": "0", "Mode": 292}}],
          "DNSConfig": {"Nameservers": ["8.8.8.8"], "Search": null, "Options": null},
          "Privileges": {"SELinuxContext": {"Disable": true, "User": null, "Role": null, "Type": null, "Level": null}},
          "Healthcheck": {"Test": ["CMD-SHELL", "curl -f localhost"], "Interval": 1000000000, "Timeout": null, "Retries": 3, "StartPeriod": null},
          "TTY": false, "OpenStdin": false, "ReadOnly": true, "Init": true,
          "CapabilityAdd": ["CAP_NET_ADMIN"], "CapabilityDrop": ["CAP_MKNOD"], "Sysctls": {"net.core.somaxconn": "1024"}
        },
        "Resources": {"Limits": {"MemoryBytes": 67108864},
                      "Reservations": {"GenericResources": [{"DiscreteResourceSpec": {"Kind": "gpu", "Value": 2}},
                                                            {"NamedResourceSpec": {"Kind": "ssd", "Value": "fast"}}]}},
        "RestartPolicy": {"Condition": "on-failure", "Delay": 0, "MaxAttempts": 3, "Window": 0},
        "Placement": {"Constraints": ["node.role==worker"], "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}], "MaxReplicas": 2},
        "LogDriver": {"Name": "json-file", "Options": {"max-size": "1m"}},
        "Networks": [{"Target": "backend", "Aliases": null, "DriverOpts": null}]
      },
      "Mode": {"replicated": {"Replicas": 5}},
      "EndpointSpec": {"Ports": [{"Protocol": "tcp", "PublishedPort": 8080, "TargetPort": 80},
                                 {"Protocol": "udp", "PublishedPort": 5353, "TargetPort": 53, "PublishMode": "host"}]},
      "UpdateConfig": {"Parallelism": 2, "Delay": 1000000000, "FailureAction": "continue", "Order": "start-first"},
      "RollbackConfig": {"Parallelism": 0, "FailureAction": "pause", "Monitor": 5000000000, "MaxFailureRatio": 0.25}
    }"#;
    let s: ServiceSpec = decode(body);
    assert_eq!(s.name, "web");
    assert_eq!(s.labels, map(&[("Team", "a"), ("team", "b")]));
    assert_eq!(s.mode, ServiceMode::Replicated { replicas: 5 });

    let cs = s.task_template.container_spec.as_ref().unwrap();
    assert_eq!(cs.image, "nginx:1.25");
    assert_eq!(cs.command, ["nginx"]);
    assert_eq!(cs.args, ["-g", "daemon off;"]);
    assert_eq!((cs.hostname.as_str(), cs.dir.as_str(), cs.user.as_str()), ("web", "/srv", "101"));
    assert_eq!(cs.env, ["A=1"]);
    assert_eq!(cs.groups, ["www"]);
    assert_eq!(cs.stop_signal, "SIGQUIT");
    assert_eq!(cs.stop_grace_period, Some(10_000_000_000));
    assert_eq!(cs.labels, map(&[("com.example.role", "front")]));
    assert_eq!(cs.hosts, ["10.0.0.1 db"]);
    assert_eq!(cs.mounts.len(), 4);
    assert_eq!((cs.mounts[0].r#type.as_str(), cs.mounts[0].source.as_str(), cs.mounts[0].target.as_str()), ("bind", "/srv", "/data"));
    assert!(cs.mounts[0].read_only);
    assert_eq!((cs.mounts[1].r#type.as_str(), cs.mounts[1].source.as_str()), ("volume", "cache"));
    // An anonymous volume: `Source: null` is no source.
    assert_eq!((cs.mounts[2].source.as_str(), cs.mounts[2].target.as_str()), ("", "/scratch"));
    assert_eq!(cs.mounts[3].tmpfs_options.as_ref().unwrap().size_bytes, 1_048_576);
    assert_eq!(cs.secrets.len(), 1);
    assert_eq!((cs.secrets[0].secret_id.as_str(), cs.secrets[0].secret_name.as_str()), ("sid1", "pw"));
    let file = cs.secrets[0].file.as_ref().unwrap();
    assert_eq!((file.name.as_str(), file.uid.as_str(), file.gid.as_str(), file.mode), ("pw", "0", "0", 0o444));
    assert_eq!(cs.configs[0].config_id, "cid1");
    assert_eq!(cs.configs[0].file.as_ref().unwrap().name, "/etc/app.conf");
    let dns = cs.dns_config.as_ref().unwrap();
    assert_eq!(dns.nameservers, ["8.8.8.8"]);
    assert!(dns.search.is_empty() && dns.options.is_empty());
    let selinux = cs.privileges.as_ref().unwrap().selinux_context.as_ref().unwrap();
    assert!(selinux.disable);
    assert_eq!(selinux.user, "");
    let hc = cs.healthcheck.as_ref().unwrap();
    assert_eq!(hc.test, ["CMD-SHELL", "curl -f localhost"]);
    assert_eq!((hc.interval, hc.timeout, hc.retries, hc.start_period), (1_000_000_000, 0, 3, 0));
    assert!(!cs.tty && !cs.open_stdin && cs.read_only);
    assert_eq!(cs.init, Some(true));
    assert_eq!(cs.capability_add, ["CAP_NET_ADMIN"]);
    assert_eq!(cs.capability_drop, ["CAP_MKNOD"]);
    assert_eq!(cs.sysctls, map(&[("net.core.somaxconn", "1024")]));

    let tt = &s.task_template;
    let res = tt.resources.as_ref().unwrap();
    assert_eq!(res.limits.as_ref().unwrap().memory_bytes, 67_108_864);
    assert_eq!(
        res.reservations.as_ref().unwrap().generic_resources,
        [GenericResource::discrete("gpu", 2), GenericResource::named("ssd", "fast")]
    );
    let rp = tt.restart_policy.as_ref().unwrap();
    assert_eq!(rp.condition, Some(RestartCondition::OnFailure));
    assert_eq!((rp.delay, rp.max_attempts, rp.window), (Some(0), Some(3), Some(0)));
    let placement = tt.placement.as_ref().unwrap();
    assert_eq!(placement.constraints, ["node.role==worker"]);
    assert_eq!(placement.preferences[0].spread.as_ref().unwrap().spread_descriptor, "node.labels.zone");
    assert_eq!(placement.max_replicas, 2);
    let log = tt.log_driver.as_ref().unwrap();
    assert_eq!((log.name.as_str(), &log.options), ("json-file", &map(&[("max-size", "1m")])));
    assert_eq!(tt.networks.len(), 1);
    assert_eq!(tt.networks[0].target, "backend");
    assert!(tt.networks[0].aliases.is_empty() && tt.networks[0].driver_opts.is_empty());

    let ports = &s.endpoint_spec.as_ref().unwrap().ports;
    assert_eq!((ports[0].protocol, ports[0].published_port, ports[0].target_port), (PortProtocol::Tcp, 8080, 80));
    assert_eq!(ports[0].publish_mode, PublishMode::Ingress);
    assert_eq!((ports[1].protocol, ports[1].published_port, ports[1].target_port), (PortProtocol::Udp, 5353, 53));
    assert_eq!(ports[1].publish_mode, PublishMode::Host);
    let uc = s.update_config.as_ref().unwrap();
    assert_eq!((uc.parallelism, uc.delay, uc.failure_action.as_str(), uc.order.as_str()), (2, 1_000_000_000, "continue", "start-first"));
    let rc = s.rollback_config.as_ref().unwrap();
    assert_eq!((rc.parallelism, rc.failure_action.as_str(), rc.monitor, rc.max_failure_ratio), (0, "pause", 5_000_000_000, 0.25));
}

/// docker-py's `ServiceMode`: `replicated` and `global` in lower case (Go
/// matches them to `Replicated` and `Global`), the job modes capitalised.
#[test]
fn docker_py_service_modes() {
    let mode = |m: &str| decode::<ServiceSpec>(&format!(r#"{{"Name": "m", "Mode": {m}}}"#)).mode;
    assert_eq!(mode(r#"{"replicated": {"Replicas": 5}}"#), ServiceMode::Replicated { replicas: 5 });
    assert_eq!(mode(r#"{"replicated": {}}"#), ServiceMode::Replicated { replicas: 1 });
    assert_eq!(mode(r#"{"global": {}}"#), ServiceMode::Global);
    assert_eq!(
        mode(r#"{"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 4}}"#),
        ServiceMode::ReplicatedJob { max_concurrent: Some(2), total_completions: Some(4) }
    );
    assert_eq!(mode(r#"{"GlobalJob": {}}"#), ServiceMode::GlobalJob);
}

/// `service.scale(3)`: docker-py reads the service back
/// (`?insertDefaults=true`), merges, and posts the whole spec with the new
/// mode in its own spelling.
#[test]
fn docker_py_service_scale() {
    let s: ServiceSpec = decode(
        r#"{"Name": "x1", "Labels": {}, "Mode": {"replicated": {"Replicas": 3}},
            "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Command": ["sleep", "1"], "Init": false, "StopGracePeriod": 10000000000,
                                               "DNSConfig": {}, "Isolation": "default"},
                             "Resources": {"Limits": {}, "Reservations": {}}, "RestartPolicy": {"Condition": "any", "Delay": 5000000000, "MaxAttempts": 0},
                             "Placement": {}, "ForceUpdate": 0, "Runtime": "container"},
            "EndpointSpec": {"Mode": "vip"}}"#,
    );
    assert_eq!(s.mode, ServiceMode::Replicated { replicas: 3 });
    assert_eq!(s.task_template.container_spec.unwrap().command, ["sleep", "1"]);
    assert_eq!(s.task_template.restart_policy.unwrap().condition, Some(RestartCondition::Any));
}

/// `docker service create --name web --replicas 2 -p 8080:80 nginx`, as the
/// Go client marshals it.
#[test]
fn docker_cli_service_create() {
    let s: ServiceSpec = decode(
        r#"{"Name":"web","Labels":{},"TaskTemplate":{"ContainerSpec":{"Image":"nginx","Init":false,"StopGracePeriod":10000000000,
            "DNSConfig":{},"Isolation":"default"},"Resources":{"Limits":{},"Reservations":{}},"RestartPolicy":{"Condition":"any",
            "Delay":5000000000,"MaxAttempts":0},"Placement":{},"ForceUpdate":0,"Runtime":"container"},"Mode":{"Replicated":{"Replicas":2}},
            "UpdateConfig":{"Parallelism":1,"FailureAction":"pause","Monitor":5000000000,"MaxFailureRatio":0,"Order":"stop-first"},
            "RollbackConfig":{"Parallelism":1,"FailureAction":"pause","Monitor":5000000000,"MaxFailureRatio":0,"Order":"stop-first"},
            "EndpointSpec":{"Mode":"vip","Ports":[{"Protocol":"tcp","TargetPort":80,"PublishedPort":8080,"PublishMode":"ingress"}]}}"#,
    );
    assert_eq!(s.mode, ServiceMode::Replicated { replicas: 2 });
    assert_eq!(s.endpoint_spec.unwrap().ports[0].published_port, 8080);
    assert_eq!(s.update_config.unwrap().order, "stop-first");
}

/// `client.secrets.create(name="pw", data="s3cret")` (no labels: dropped at
/// the top level), and with labels.
#[test]
fn docker_py_secret_create() {
    let s: SecretSpec = decode(r#"{"Data": "czNjcmV0", "Name": "pw"}"#);
    assert_eq!((s.name.as_str(), s.data.as_deref()), ("pw", Some(&b"s3cret"[..])));
    assert!(s.labels.is_empty() && s.driver.is_none());
    let s: SecretSpec =
        decode(r#"{"Data": "czNjcmV0", "Name": "pw", "Labels": {"Env": "prod"}, "Driver": {"Name": "vault", "Options": null}}"#);
    assert_eq!(s.labels, map(&[("Env", "prod")]));
    let driver = s.driver.unwrap();
    assert_eq!(driver.name, "vault");
    assert!(driver.options.is_empty());
}

/// `client.configs.create(name="conf", data="x=1", templating={"name": "golang"})`:
/// docker-py documents the templating driver in lower case.
#[test]
fn docker_py_config_create() {
    let c: ConfigSpec = decode(r#"{"Data": "eD0x", "Name": "conf", "Labels": {"a": "b"}, "Templating": {"name": "golang"}}"#);
    assert_eq!((c.name.as_str(), c.data.as_deref()), ("conf", Some(&b"x=1"[..])));
    assert_eq!(c.labels, map(&[("a", "b")]));
    assert_eq!(c.templating.unwrap().name, "golang");
    let c: ConfigSpec = decode(r#"{"Data": "eD0x", "Name": "conf", "Labels": null, "Templating": null}"#);
    assert!(c.labels.is_empty() && c.templating.is_none());
}

/// `client.networks.create("backend", driver="overlay", attachable=True,
/// labels={"x": "y"}, ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=...)]))`:
/// the pool's unset fields are `null`.
#[test]
fn docker_py_network_create() {
    let n: NetworkCreateRequest = decode(
        r#"{"Name": "backend", "Driver": "overlay",
            "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.9.0.0/24", "IPRange": null, "Gateway": null, "AuxiliaryAddresses": null}]},
            "Attachable": true, "Labels": {"x": "y"}}"#,
    );
    assert_eq!((n.name.as_str(), n.driver.as_str()), ("backend", "overlay"));
    assert!(n.attachable && !n.internal);
    assert_eq!(n.labels, map(&[("x", "y")]));
    let ipam = n.ipam.as_ref().unwrap();
    assert_eq!(ipam.driver, "default");
    assert_eq!(ipam.config[0].subnet, "10.9.0.0/24");
    assert_eq!(ipam.config[0].gateway, "");
    n.to_spec().unwrap();
    // `Options` as DriverOpts: keys are the driver's, left as sent.
    let n: NetworkCreateRequest = decode(r#"{"name": "n", "driver": "overlay", "options": {"com.docker.network.driver.mtu": "1400"}}"#);
    assert_eq!(n.name, "n");
    assert_eq!(n.options, map(&[("com.docker.network.driver.mtu", "1400")]));
}

/// `node.update({"Availability": "drain", ...})` (docker-py passes the
/// caller's dict as it is; lower-case keys are what Go also reads).
#[test]
fn docker_py_node_update() {
    let n: NodeSpec = decode(r#"{"Availability": "drain", "Name": "n1", "Role": "manager", "Labels": {"Zone": "a"}}"#);
    assert_eq!((n.name.as_str(), n.role, n.availability), ("n1", Role::Manager, Availability::Drain));
    assert_eq!(n.labels, map(&[("Zone", "a")]));
    let n: NodeSpec = decode(r#"{"availability": "pause", "role": "worker", "labels": null}"#);
    assert_eq!((n.role, n.availability), (Role::Worker, Availability::Pause));
    assert!(n.labels.is_empty());
}

/// `client.swarm.init(advertise_addr="10.0.0.1", snapshot_interval=5000,
/// log_entries_for_slow_followers=1200)`: the `Raft` settings not given are
/// `null`.
#[test]
fn docker_py_swarm_init() {
    let r: InitRequest = decode(
        r#"{"AdvertiseAddr": "10.0.0.1", "ListenAddr": "0.0.0.0:2377", "ForceNewCluster": false,
            "Spec": {"Raft": {"SnapshotInterval": 5000, "KeepOldSnapshots": null, "LogEntriesForSlowFollowers": 1200,
                              "HeartbeatTick": null, "ElectionTick": null}}}"#,
    );
    assert_eq!((r.advertise_addr.as_str(), r.listen_addr.as_str()), ("10.0.0.1", "0.0.0.0:2377"));
    assert!(!r.force_new_cluster);
    assert!(r.default_addr_pool.is_empty());
    let spec = SwarmSpec::from_request(r.spec);
    assert_eq!((spec.raft.snapshot_interval, spec.raft.log_entries_for_slow_followers), (5000, 1200));
    assert_eq!((spec.raft.election_tick, spec.raft.heartbeat_tick, spec.raft.keep_old_snapshots), (10, 1, 0));
    assert_eq!(spec.name, "default");
    // `client.swarm.init()`: an empty spec.
    let r: InitRequest = decode(r#"{"AdvertiseAddr": null, "ListenAddr": "0.0.0.0:2377", "ForceNewCluster": false, "Spec": {}}"#);
    assert_eq!(SwarmSpec::from_request(r.spec), SwarmSpec::default());
}

/// `client.swarm.update(rotate_worker_token=True, task_history_retention_limit=2)`:
/// docker-py sends only what was given (and `NodeCertExpiry`, which it
/// always sets); the rest takes Docker's defaults.
#[test]
fn docker_py_swarm_update() {
    let s: SwarmSpec = decode(r#"{"Orchestration": {"TaskHistoryRetentionLimit": 2}, "CAConfig": {"NodeCertExpiry": 7776000000000000}}"#);
    let s = SwarmSpec::from_request(Some(s));
    assert_eq!(s.orchestration.task_history_retention_limit, 2);
    assert_eq!(s.ca_config.node_cert_expiry, 7_776_000_000_000_000);
    assert_eq!(s.dispatcher, SwarmSpec::default().dispatcher);
    assert_eq!(s.task_defaults, serde_json::json!({}));
    // Field names in another case, a `null` sub-object, and an external CA
    // whose unset fields are `null` (`SwarmExternalCA`).
    let s: SwarmSpec = decode(
        r#"{"name": "default", "labels": {"Owner": "ops"}, "dispatcher": null, "caconfig": {"externalcas": [{"URL": "https://ca", "Protocol": "cfssl", "Options": null, "CACert": null}]},
            "EncryptionConfig": {"AutoLockManagers": false}}"#,
    );
    let s = SwarmSpec::from_request(Some(s));
    assert_eq!(s.labels, map(&[("Owner", "ops")]));
    assert_eq!(s.dispatcher, SwarmSpec::default().dispatcher);
    assert_eq!(s.ca_config.external_cas.len(), 1);
    assert_eq!(s.ca_config.external_cas[0]["URL"], "https://ca");
}

/// What is refused still says what and where.
/// `ServiceCreate(ctx, swarm.ServiceSpec{Annotations: {Name: "web"},
/// TaskTemplate: {ContainerSpec: &{Image: "nginx:alpine"}}}, opts)`:
/// `"Mode":{}` is one replica, as Docker reads it.
#[test]
fn go_client_minimal_service_create() {
    let s: ServiceSpec = decode(
        "{\"Name\":\"web\",\"Labels\":null,\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"nginx:alpine\"},\"ForceUpdate\":0},\"Mode\":{}}\n",
    );
    assert_eq!(s.name, "web");
    assert!(s.labels.is_empty());
    assert_eq!(s.task_template.container_spec.as_ref().unwrap().image, "nginx:alpine");
    assert_eq!(s.mode, ServiceMode::Replicated { replicas: 1 });
    assert!(s.endpoint_spec.is_none());
}

/// The same with `Mode.Replicated.Replicas` 3, a published port and a network.
#[test]
fn go_client_service_create_with_mode_ports_and_network() {
    let s: ServiceSpec = decode(
        r#"{"Name":"web","Labels":null,"TaskTemplate":{"ContainerSpec":{"Image":"nginx:alpine"},"Networks":[{"Target":"appnet"}],"ForceUpdate":0},"Mode":{"Replicated":{"Replicas":3}},"EndpointSpec":{"Ports":[{"Protocol":"tcp","TargetPort":80,"PublishedPort":8080}]}}
"#,
    );
    assert_eq!(s.mode, ServiceMode::Replicated { replicas: 3 });
    assert_eq!(s.task_template.networks[0].target, "appnet");
    let p = &s.endpoint_spec.as_ref().unwrap().ports[0];
    assert_eq!((p.protocol, p.target_port, p.published_port, p.publish_mode), (PortProtocol::Tcp, 80, 8080, PublishMode::Ingress));
}

/// `SecretCreate` and `ConfigCreate` with a name and data.
#[test]
fn go_client_secret_and_config_create() {
    let s: SecretSpec = decode("{\"Name\":\"db_pw\",\"Labels\":null,\"Data\":\"czNjcmV0\"}\n");
    assert_eq!((s.name.as_str(), s.data.as_deref()), ("db_pw", Some(&b"s3cret"[..])));
    assert!(s.labels.is_empty());
    let c: ConfigSpec = decode("{\"Name\":\"site\",\"Labels\":null,\"Data\":\"bGlzdGVuIDgwOw==\"}\n");
    assert_eq!((c.name.as_str(), c.data.as_deref()), ("site", Some(&b"listen 80;"[..])));
}

/// `NodeUpdate(ctx, id, version, swarm.NodeSpec{Role: worker, Availability: drain})`.
#[test]
fn go_client_node_update() {
    let n: NodeSpec = decode("{\"Labels\":null,\"Role\":\"worker\",\"Availability\":\"drain\"}\n");
    assert_eq!((n.role, n.availability), (Role::Worker, Availability::Drain));
    assert!(n.labels.is_empty());
}

/// `NetworkCreate(ctx, "appnet", {Driver: "overlay", Attachable: true})`, as
/// each client version writes it: v27 at API 1.44 (no `CheckDuplicate`),
/// v27 below 1.44, v25/v26 (`EnableIPv6`), v24 (`CheckDuplicate` false).
#[test]
fn go_client_network_create_of_each_version() {
    let bodies = [
        r#"{"Driver":"overlay","Scope":"","IPAM":null,"Internal":false,"Attachable":true,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":null,"Labels":null,"Name":"appnet"}"#,
        r#"{"Driver":"overlay","Scope":"","IPAM":null,"Internal":false,"Attachable":true,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":null,"Labels":null,"Name":"appnet","CheckDuplicate":true}"#,
        r#"{"Driver":"overlay","Scope":"","EnableIPv6":false,"IPAM":null,"Internal":false,"Attachable":true,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":null,"Labels":null,"Name":"appnet"}"#,
        r#"{"CheckDuplicate":true,"Driver":"overlay","Scope":"","EnableIPv6":false,"IPAM":null,"Internal":false,"Attachable":true,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":null,"Labels":null,"Name":"appnet"}"#,
        r#"{"CheckDuplicate":false,"Driver":"overlay","Scope":"","EnableIPv6":false,"IPAM":null,"Internal":false,"Attachable":true,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":null,"Labels":null,"Name":"appnet"}"#,
    ];
    for body in bodies {
        let n: NetworkCreateRequest = decode(&format!("{body}\n"));
        assert_eq!((n.name.as_str(), n.driver.as_str()), ("appnet", "overlay"), "{body}");
        assert!(n.attachable && !n.internal && !n.ingress, "{body}");
        let spec = n.to_spec().unwrap_or_else(|e| panic!("refused: {e:?}\nbody: {body}"));
        assert!(spec.attachable, "{body}");
    }
}

/// `SwarmInit(ctx, swarm.InitRequest{ListenAddr: "0.0.0.0:2377",
/// AdvertiseAddr: "192.168.1.10"})`: `Spec` is a struct value, written in
/// full with zero ticks, which mean Docker's defaults.
#[test]
fn go_client_swarm_init() {
    let r: InitRequest = decode(
        r#"{"ListenAddr":"0.0.0.0:2377","AdvertiseAddr":"192.168.1.10","DataPathAddr":"","DataPathPort":0,"ForceNewCluster":false,"Spec":{"Labels":null,"Orchestration":{},"Raft":{"ElectionTick":0,"HeartbeatTick":0},"Dispatcher":{},"CAConfig":{},"TaskDefaults":{},"EncryptionConfig":{"AutoLockManagers":false}},"AutoLockManagers":false,"Availability":"","DefaultAddrPool":null,"SubnetSize":0}
"#,
    );
    assert_eq!((r.listen_addr.as_str(), r.advertise_addr.as_str()), ("0.0.0.0:2377", "192.168.1.10"));
    assert!(r.default_addr_pool.is_empty() && !r.auto_lock_managers && !r.force_new_cluster);
    let spec = SwarmSpec::from_request(r.spec);
    shoal_manager::control::validate_spec(&spec).unwrap_or_else(|e| panic!("refused: {}", e.message));
    assert_eq!((spec.raft.election_tick, spec.raft.heartbeat_tick), (10, 1));
    assert_eq!(spec.name, "default");
}

#[test]
fn refusals_name_the_field() {
    let e = call(r#"{"Name": "x", "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Command": "sleep 1"}}}"#)
        .json::<ServiceSpec>()
        .unwrap_err();
    assert_eq!(e.status, 400);
    assert_eq!(
        e.message,
        r#"invalid JSON in request body: TaskTemplate.ContainerSpec.Command: invalid type: string "sleep 1", expected a sequence"#
    );
    let e = call(r#"{"Name": "x""#).json::<ServiceSpec>().unwrap_err();
    assert!(e.message.starts_with("invalid JSON in request body: EOF while parsing"), "{}", e.message);
    // An empty body is an empty object.
    assert_eq!(call("").json::<NodeSpec>().unwrap(), NodeSpec::default());
}
