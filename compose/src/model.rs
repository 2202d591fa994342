//! The typed compose model: what `docker stack deploy` reads from a file.
//!
//! Every struct refuses keys it does not know (docker validates against its
//! schema); `x-` keys are skipped by the deserializer. Keys a cluster cannot
//! honour are read and dropped here, and reported by name by the loader
//! (`Ignoring unsupported options: build, restart`).

use std::collections::BTreeMap;

use serde::de::{Deserializer, IgnoredAny};
use serde::Deserialize;

use crate::forms::{Bytes, Duration, Environment, External, HostsList, Mapping, NumberText, ShellCommand, StringList};
use crate::mounts::{ServiceVolume, VolumeItem};
use crate::ports::Ports;

/// A whole compose file (or several merged), interpolated and checked.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    #[serde(default)]
    pub version: Option<String>,
    /// The compose specification's project name; a stack is named on the
    /// command line, so this is read and not used.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub services: BTreeMap<String, Service>,
    #[serde(default)]
    pub networks: BTreeMap<String, Network>,
    #[serde(default)]
    pub volumes: BTreeMap<String, Volume>,
    #[serde(default)]
    pub secrets: BTreeMap<String, FileObject>,
    #[serde(default)]
    pub configs: BTreeMap<String, FileObject>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub image: Option<String>,
    pub command: Option<ShellCommand>,
    pub entrypoint: Option<ShellCommand>,
    #[serde(default)]
    pub environment: Environment,
    #[serde(default)]
    pub env_file: StringList,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub hostname: Option<String>,
    #[serde(default)]
    pub labels: Mapping,
    #[serde(default)]
    pub ports: Ports,
    #[serde(default, deserialize_with = "volume_list")]
    pub volumes: Vec<ServiceVolume>,
    pub healthcheck: Option<Healthcheck>,
    pub stop_grace_period: Option<Duration>,
    pub stop_signal: Option<String>,
    #[serde(default)]
    pub tmpfs: StringList,
    #[serde(default)]
    pub ulimits: BTreeMap<String, Ulimit>,
    #[serde(default)]
    pub sysctls: Mapping,
    #[serde(default)]
    pub cap_add: Vec<String>,
    #[serde(default)]
    pub cap_drop: Vec<String>,
    pub init: Option<bool>,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub extra_hosts: HostsList,
    #[serde(default)]
    pub dns: StringList,
    #[serde(default)]
    pub dns_search: StringList,
    #[serde(default)]
    pub dns_opt: StringList,
    pub logging: Option<Logging>,
    #[serde(default)]
    pub networks: ServiceNetworks,
    #[serde(default)]
    pub secrets: Vec<FileReference>,
    #[serde(default)]
    pub configs: Vec<FileReference>,
    #[serde(default)]
    pub depends_on: DependsOn,
    #[serde(default)]
    pub deploy: Deploy,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub stdin_open: bool,
    pub oom_score_adj: Option<i64>,
    /// Legacy restart policy, used when `deploy.restart_policy` is absent (as
    /// docker does) and also reported as unsupported (as docker does).
    pub restart: Option<String>,

    // Read and dropped: docker's unsupported and deprecated options, and a few
    // more from the compose specification that a cluster cannot honour. The
    // loader reports each by name.
    #[serde(default)]
    #[allow(dead_code)]
    build: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    cgroupns_mode: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    cgroup_parent: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    devices: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    domainname: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    external_links: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    ipc: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    links: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    mac_address: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    network_mode: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    pid: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    privileged: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    security_opt: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    shm_size: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    userns_mode: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    container_name: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    expose: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    isolation: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    credential_spec: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    platform: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    profiles: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    pull_policy: Option<IgnoredAny>,
}

fn volume_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ServiceVolume>, D::Error> {
    Ok(Vec::<VolumeItem>::deserialize(d)?.into_iter().map(|v| v.0).collect())
}

/// Options docker's `stack deploy` reads and ignores, printed as
/// `Ignoring unsupported options: ...` (docker/cli `UnsupportedProperties`),
/// plus compose-spec keys Shoal reads and cannot honour.
pub const UNSUPPORTED: &[&str] = &[
    "build",
    "cgroup_parent",
    "cgroupns_mode",
    "credential_spec",
    "devices",
    "domainname",
    "external_links",
    "ipc",
    "isolation",
    "links",
    "mac_address",
    "network_mode",
    "pid",
    "platform",
    "privileged",
    "profiles",
    "pull_policy",
    "restart",
    "security_opt",
    "shm_size",
    "userns_mode",
];

/// Options docker reports as deprecated, with its explanation.
pub const DEPRECATED: &[(&str, &str)] = &[
    ("container_name", "Setting the container name is not supported."),
    ("expose", "Exposing ports is unnecessary - services on the same network can access each other's containers on any port."),
];

/// Options docker refuses outright (`Compose file contains unsupported options`).
pub const FORBIDDEN: &[(&str, &str)] = &[
    ("extends", "Support for `extends` is not implemented yet."),
    (
        "volume_driver",
        "Instead of setting the volume driver on the service, define a volume using the top-level `volumes` option and specify the driver there.",
    ),
    (
        "volumes_from",
        "To share a volume between services, define it using the top-level `volumes` option and reference it from each service that shares it using the service-level `volumes` option.",
    ),
    ("cpu_quota", "Set resource limits using deploy.resources"),
    ("cpu_shares", "Set resource limits using deploy.resources"),
    ("cpuset", "Set resource limits using deploy.resources"),
    ("mem_limit", "Set resource limits using deploy.resources"),
    ("memswap_limit", "Set resource limits using deploy.resources"),
];

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    pub test: Option<HealthTest>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u64>,
    #[serde(default)]
    pub disable: bool,
}

/// `test: curl -f http://x` is `["CMD-SHELL", "curl -f http://x"]`; a list is
/// kept as written (`["CMD", ...]`, `["NONE"]`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HealthTest(pub Vec<String>);

impl<'de> Deserialize<'de> for HealthTest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = HealthTest;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a command string or a list such as [\"CMD\", ...]")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HealthTest, E> {
                Ok(HealthTest(vec!["CMD-SHELL".into(), v.into()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<HealthTest, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(HealthTest(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `nofile: 1024` or `nofile: {soft: 1024, hard: 2048}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
}

impl<'de> Deserialize<'de> for Ulimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct SoftHard {
            soft: i64,
            hard: i64,
        }
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Ulimit;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an integer or a mapping with soft and hard")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Ulimit, E> {
                Ok(Ulimit { soft: v, hard: v })
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Ulimit, E> {
                self.visit_i64(v as i64)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Ulimit, E> {
                v.parse::<i64>().map(|n| Ulimit { soft: n, hard: n }).map_err(|_| E::invalid_type(serde::de::Unexpected::Str(v), &self))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Ulimit, A::Error> {
                let sh = SoftHard::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(Ulimit { soft: sh.soft, hard: sh.hard })
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logging {
    pub driver: Option<String>,
    #[serde(default)]
    pub options: Mapping,
}

/// A service's `networks:`, a list of names or a mapping name → options.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceNetworks(pub BTreeMap<String, ServiceNetwork>);

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceNetwork {
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub driver_opts: Mapping,
    pub ipv4_address: Option<String>,
    pub ipv6_address: Option<String>,
    pub priority: Option<i64>,
}

impl<'de> Deserialize<'de> for ServiceNetworks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ServiceNetworks;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of network names or a mapping of network names to options")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<ServiceNetworks, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(name) = seq.next_element::<String>()? {
                    out.insert(name, ServiceNetwork::default());
                }
                Ok(ServiceNetworks(out))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<ServiceNetworks, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((name, opts)) = map.next_entry::<String, Option<ServiceNetwork>>()? {
                    out.insert(name, opts.unwrap_or_default());
                }
                Ok(ServiceNetworks(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `secrets:`/`configs:` of a service: a name, or source/target/uid/gid/mode.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileReference {
    pub source: String,
    pub target: Option<String>,
    pub uid: Option<String>,
    pub gid: Option<String>,
    pub mode: Option<u32>,
}

impl<'de> Deserialize<'de> for FileReference {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Long {
            source: String,
            target: Option<String>,
            uid: Option<String>,
            gid: Option<String>,
            mode: Option<u32>,
        }
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FileReference;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a name or a mapping with source, target, uid, gid and mode")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<FileReference, E> {
                Ok(FileReference { source: v.into(), ..Default::default() })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<FileReference, A::Error> {
                let l = Long::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(FileReference { source: l.source, target: l.target, uid: l.uid, gid: l.gid, mode: l.mode })
            }
        }
        d.deserialize_any(V)
    }
}

/// `depends_on`: a list of names (condition `service_started`) or a mapping
/// name → `{condition}`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DependsOn(pub BTreeMap<String, Dependency>);

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    #[serde(default)]
    pub condition: Condition,
    #[serde(default)]
    pub restart: bool,
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

impl Default for Dependency {
    fn default() -> Self {
        Dependency { condition: Condition::ServiceStarted, restart: false, required: true }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The dependency's tasks are running.
    #[default]
    ServiceStarted,
    /// The dependency's tasks are running and healthy.
    ServiceHealthy,
    /// The dependency (a job) completed successfully.
    ServiceCompletedSuccessfully,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::ServiceStarted => "service_started",
            Condition::ServiceHealthy => "service_healthy",
            Condition::ServiceCompletedSuccessfully => "service_completed_successfully",
        }
    }
}

impl<'de> Deserialize<'de> for DependsOn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = DependsOn;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of service names or a mapping of service names to a condition")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<DependsOn, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(name) = seq.next_element::<String>()? {
                    out.insert(name, Dependency::default());
                }
                Ok(DependsOn(out))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<DependsOn, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((name, dep)) = map.next_entry::<String, Option<Dependency>>()? {
                    out.insert(name, dep.unwrap_or_default());
                }
                Ok(DependsOn(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    pub mode: Option<Mode>,
    pub replicas: Option<u64>,
    #[serde(default)]
    pub labels: Mapping,
    pub update_config: Option<UpdateConfig>,
    pub rollback_config: Option<UpdateConfig>,
    #[serde(default)]
    pub resources: Resources,
    pub restart_policy: Option<RestartPolicy>,
    #[serde(default)]
    pub placement: Placement,
    pub endpoint_mode: Option<EndpointMode>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Replicated,
    Global,
    ReplicatedJob,
    GlobalJob,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointMode {
    Vip,
    Dnsrr,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateConfig {
    pub parallelism: Option<u64>,
    pub delay: Option<Duration>,
    pub failure_action: Option<FailureAction>,
    pub monitor: Option<Duration>,
    pub max_failure_ratio: Option<f32>,
    pub order: Option<UpdateOrder>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureAction {
    Pause,
    Continue,
    Rollback,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    StopFirst,
    StartFirst,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub limits: Option<ResourceLimit>,
    pub reservations: Option<ResourceReservation>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceLimit {
    pub cpus: Option<NumberText>,
    pub memory: Option<Bytes>,
    pub pids: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceReservation {
    pub cpus: Option<NumberText>,
    pub memory: Option<Bytes>,
    #[serde(default)]
    pub generic_resources: Vec<GenericResource>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericResource {
    pub discrete_resource_spec: Option<DiscreteResource>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscreteResource {
    pub kind: String,
    pub value: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicy {
    pub condition: Option<RestartCondition>,
    pub delay: Option<Duration>,
    pub max_attempts: Option<u64>,
    pub window: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartCondition {
    None,
    OnFailure,
    Any,
}

impl RestartCondition {
    pub fn as_str(self) -> &'static str {
        match self {
            RestartCondition::None => "none",
            RestartCondition::OnFailure => "on-failure",
            RestartCondition::Any => "any",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    #[serde(default)]
    pub constraints: Vec<String>,
    #[serde(default)]
    pub preferences: Vec<PlacementPreference>,
    pub max_replicas_per_node: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementPreference {
    pub spread: String,
}

/// A top-level network.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub driver: Option<String>,
    #[serde(default)]
    pub driver_opts: Mapping,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub internal: bool,
    pub ipam: Option<Ipam>,
    #[serde(default)]
    pub labels: Mapping,
    #[serde(default)]
    pub external: External,
    pub name: Option<String>,
    #[serde(default)]
    pub enable_ipv6: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ipam {
    pub driver: Option<String>,
    #[serde(default)]
    pub config: Vec<IpamPool>,
    #[serde(default)]
    pub options: Mapping,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpamPool {
    pub subnet: Option<String>,
    pub ip_range: Option<String>,
    pub gateway: Option<String>,
    #[serde(default)]
    pub aux_addresses: Mapping,
}

/// A top-level volume.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    pub driver: Option<String>,
    #[serde(default)]
    pub driver_opts: Mapping,
    #[serde(default)]
    pub labels: Mapping,
    #[serde(default)]
    pub external: External,
    pub name: Option<String>,
}

/// A top-level secret or config.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileObject {
    pub file: Option<String>,
    #[serde(default)]
    pub external: External,
    pub name: Option<String>,
    #[serde(default)]
    pub labels: Mapping,
    pub template_driver: Option<String>,
    /// Secrets only: a secret driver plugin.
    pub driver: Option<String>,
    #[serde(default)]
    pub driver_opts: Mapping,
}
