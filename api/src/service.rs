//! The Service object (`GET /services`, `POST /services/create`) in Docker's
//! JSON shape. Clients send partial specs, so nearly everything has a default.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::network::null_as_default;
use crate::task::TaskSpec;
use crate::Version;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Service {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(default)]
    pub version: Version,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_at: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub updated_at: String,
    #[serde(default)]
    pub spec: ServiceSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_spec: Option<ServiceSpec>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub endpoint: Endpoint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_status: Option<UpdateStatus>,
    /// Only with `?status=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_status: Option<ServiceStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_status: Option<JobStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceSpec {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub task_template: TaskSpec,
    #[serde(default)]
    pub mode: ServiceMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_config: Option<UpdateConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_config: Option<UpdateConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_spec: Option<EndpointSpec>,
}

/// SwarmKit's defaults that `GET /services/{id}?insertDefaults=true` fills
/// in (its `api/defaults`): a 10 s stop grace period, a restart delay of
/// 5 s, and an update/rollback monitor of 5 s.
pub const DEFAULT_STOP_GRACE_PERIOD: i64 = 10_000_000_000;
pub const DEFAULT_RESTART_DELAY: i64 = 5_000_000_000;
pub const DEFAULT_UPDATE_MONITOR: i64 = 5_000_000_000;

impl ServiceSpec {
    /// The spec as Docker keeps it and reads it back: what its API
    /// converter writes for fields a client left empty in a part it sent.
    /// A restart policy has a condition (`any`) and `MaxAttempts` (0), an
    /// update or rollback config a failure action (`pause`) and an order
    /// (`stop-first`), an endpoint spec a mode (`vip`), a replicated job
    /// `MaxConcurrent` (1) and `TotalCompletions` (= `MaxConcurrent`), and
    /// a container task template the runtime `container`. Parts the client
    /// left out stay out (those are `?insertDefaults`' business, see
    /// [`ServiceSpec::with_defaults`]). Idempotent.
    pub fn as_docker_stores(mut self) -> ServiceSpec {
        let t = &mut self.task_template;
        if t.container_spec.is_some() && t.runtime.is_empty() {
            t.runtime = "container".into();
        }
        if let Some(r) = &mut t.restart_policy {
            r.condition.get_or_insert(crate::task::RestartCondition::Any);
            r.max_attempts.get_or_insert(0);
        }
        for u in [&mut self.update_config, &mut self.rollback_config].into_iter().flatten() {
            if u.failure_action.is_empty() {
                u.failure_action = "pause".into();
            }
            if u.order.is_empty() {
                u.order = "stop-first".into();
            }
        }
        if let Some(e) = &mut self.endpoint_spec {
            e.mode.get_or_insert(ResolutionMode::Vip);
        }
        if let ServiceMode::ReplicatedJob { max_concurrent, total_completions } = &mut self.mode {
            let max = *max_concurrent.get_or_insert(1);
            total_completions.get_or_insert(max);
        }
        self
    }

    /// `GET /services/{id}?insertDefaults=true`, as SwarmKit's
    /// `InterpolateService` fills a spec and Docker converts it: a missing
    /// stop grace period (10 s) and DNS config (empty) in the container
    /// spec, missing resources and placement (empty), a missing restart
    /// policy (condition `any`, delay 5 s, no attempt limit) or a missing
    /// delay in one, missing update and rollback configs (parallelism 1,
    /// `pause`, monitor 5 s, ratio 0, `stop-first`) or a missing monitor in
    /// one. Mode and endpoint spec are not touched (Docker fills those when
    /// the service is created).
    pub fn with_defaults(&self) -> ServiceSpec {
        let mut spec = self.clone().as_docker_stores();
        let t = &mut spec.task_template;
        if let Some(c) = &mut t.container_spec {
            c.stop_grace_period.get_or_insert(DEFAULT_STOP_GRACE_PERIOD);
            c.dns_config.get_or_insert_with(Default::default);
        }
        t.resources.get_or_insert_with(Default::default);
        t.placement.get_or_insert_with(Default::default);
        let restart = t.restart_policy.get_or_insert_with(|| crate::task::RestartPolicy {
            condition: Some(crate::task::RestartCondition::Any),
            max_attempts: Some(0),
            ..Default::default()
        });
        restart.delay.get_or_insert(DEFAULT_RESTART_DELAY);
        for u in [&mut spec.update_config, &mut spec.rollback_config] {
            let u = u.get_or_insert_with(UpdateConfig::swarmkit_default);
            if u.monitor == 0 {
                u.monitor = DEFAULT_UPDATE_MONITOR;
            }
        }
        spec
    }
}

impl Service {
    /// The service as `?insertDefaults=true` shows it: its spec filled
    /// (SwarmKit leaves `PreviousSpec` as it is).
    pub fn with_defaults(&self) -> Service {
        let mut s = self.clone();
        s.spec = s.spec.with_defaults();
        s
    }
}

impl UpdateConfig {
    /// SwarmKit's update and rollback config when a service has none.
    pub fn swarmkit_default() -> UpdateConfig {
        UpdateConfig {
            parallelism: 1,
            delay: 0,
            failure_action: "pause".into(),
            monitor: DEFAULT_UPDATE_MONITOR,
            max_failure_ratio: 0.0,
            order: "stop-first".into(),
        }
    }
}

/// `{"Replicated":{"Replicas":3}}`, `{"Global":{}}`, `{"ReplicatedJob":{...}}`
/// or `{"GlobalJob":{}}`. A spec without a mode (or with `{}`) is replicated
/// with one replica, as Docker makes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ModeRepr", into = "ModeRepr")]
pub enum ServiceMode {
    Replicated {
        replicas: u64,
    },
    Global,
    /// Docker's defaults: `MaxConcurrent` 1, `TotalCompletions` = `MaxConcurrent`.
    ReplicatedJob {
        max_concurrent: Option<u64>,
        total_completions: Option<u64>,
    },
    GlobalJob,
}

impl Default for ServiceMode {
    fn default() -> Self {
        ServiceMode::Replicated { replicas: 1 }
    }
}

impl ServiceMode {
    pub fn is_job(&self) -> bool {
        matches!(self, ServiceMode::ReplicatedJob { .. } | ServiceMode::GlobalJob)
    }
    pub fn is_global(&self) -> bool {
        matches!(self, ServiceMode::Global | ServiceMode::GlobalJob)
    }
}

/// The wire shape of `ServiceMode`: one object with at most one key set.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ModeRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replicated: Option<ReplicatedRepr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    global: Option<Empty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replicated_job: Option<ReplicatedJobRepr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    global_job: Option<Empty>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReplicatedRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replicas: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReplicatedJobRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_concurrent: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    total_completions: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Empty {}

impl From<ModeRepr> for ServiceMode {
    fn from(r: ModeRepr) -> Self {
        if r.global.is_some() {
            ServiceMode::Global
        } else if let Some(j) = r.replicated_job {
            ServiceMode::ReplicatedJob { max_concurrent: j.max_concurrent, total_completions: j.total_completions }
        } else if r.global_job.is_some() {
            ServiceMode::GlobalJob
        } else {
            ServiceMode::Replicated { replicas: r.replicated.and_then(|r| r.replicas).unwrap_or(1) }
        }
    }
}

impl From<ServiceMode> for ModeRepr {
    fn from(m: ServiceMode) -> Self {
        let mut r = ModeRepr::default();
        match m {
            ServiceMode::Replicated { replicas } => r.replicated = Some(ReplicatedRepr { replicas: Some(replicas) }),
            ServiceMode::Global => r.global = Some(Empty {}),
            ServiceMode::ReplicatedJob { max_concurrent, total_completions } => {
                r.replicated_job = Some(ReplicatedJobRepr { max_concurrent, total_completions })
            }
            ServiceMode::GlobalJob => r.global_job = Some(Empty {}),
        }
        r
    }
}

/// `--update-*` / `--rollback-*` (durations in nanoseconds).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateConfig {
    #[serde(default)]
    pub parallelism: u64,
    #[serde(default, skip_serializing_if = "crate::task::is_zero_i64")]
    pub delay: i64,
    /// `pause` (Docker's default), `continue` or `rollback`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub failure_action: String,
    #[serde(default, skip_serializing_if = "crate::task::is_zero_i64")]
    pub monitor: i64,
    #[serde(default)]
    pub max_failure_ratio: f32,
    /// `stop-first` (default) or `start-first`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub order: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateStatus {
    /// `updating`, `paused`, `completed`, `rollback_started`, ...
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceStatus {
    pub running_tasks: u64,
    pub desired_tasks: u64,
    pub completed_tasks: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobStatus {
    #[serde(default)]
    pub job_iteration: Version,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_execution: String,
}

/// `--endpoint-mode` and `--publish`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ResolutionMode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_default")]
    pub ports: Vec<PortConfig>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResolutionMode {
    #[default]
    Vip,
    Dnsrr,
}

/// One `--publish`: `published:target/protocol`, in ingress or host mode.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortConfig {
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub protocol: PortProtocol,
    #[serde(default, deserialize_with = "null_as_default")]
    pub target_port: u32,
    /// 0: none asked for (ingress picks one from 30000-32767; host mode
    /// publishes none).
    #[serde(default, skip_serializing_if = "is_zero_u32", deserialize_with = "null_as_default")]
    pub published_port: u32,
    #[serde(default, deserialize_with = "null_as_default")]
    pub publish_mode: PublishMode,
}

impl PortConfig {
    /// A port this task binds on its node itself: the scheduler must not put
    /// two such tasks on one node.
    pub fn is_host_published(&self) -> bool {
        self.publish_mode == PublishMode::Host && self.published_port != 0
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortProtocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

impl PortProtocol {
    /// Docker's (and nftables') name: `tcp`, `udp`, `sctp`.
    pub fn as_str(self) -> &'static str {
        match self {
            PortProtocol::Tcp => "tcp",
            PortProtocol::Udp => "udp",
            PortProtocol::Sctp => "sctp",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishMode {
    #[default]
    Ingress,
    Host,
}

/// `Service.Endpoint`: the spec in force plus the ports and virtual IPs the
/// allocator gave.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Endpoint {
    #[serde(default, deserialize_with = "null_as_default")]
    pub spec: EndpointSpec,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_default")]
    pub ports: Vec<PortConfig>,
    #[serde(default, rename = "VirtualIPs", skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_default")]
    pub virtual_ips: Vec<EndpointVirtualIp>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointVirtualIp {
    #[serde(default, rename = "NetworkID", deserialize_with = "null_as_default")]
    pub network_id: String,
    /// CIDR, e.g. `10.0.0.2/24`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub addr: String,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn modes_round_trip_in_dockers_shape() {
        for (m, v) in [
            (ServiceMode::Replicated { replicas: 3 }, json!({"Replicated": {"Replicas": 3}})),
            (ServiceMode::Global, json!({"Global": {}})),
            (ServiceMode::GlobalJob, json!({"GlobalJob": {}})),
            (
                ServiceMode::ReplicatedJob { max_concurrent: Some(2), total_completions: None },
                json!({"ReplicatedJob": {"MaxConcurrent": 2}}),
            ),
        ] {
            assert_eq!(serde_json::to_value(&m).unwrap(), v);
            assert_eq!(serde_json::from_value::<ServiceMode>(v).unwrap(), m);
        }
        // No mode, an empty mode, or Replicated without a count: one replica.
        let one = ServiceMode::Replicated { replicas: 1 };
        assert_eq!(serde_json::from_value::<ServiceMode>(json!({})).unwrap(), one);
        assert_eq!(serde_json::from_value::<ServiceMode>(json!({"Replicated": {}})).unwrap(), one);
        let spec: ServiceSpec = serde_json::from_value(json!({"Name": "web"})).unwrap();
        assert_eq!(spec.mode, one);
    }

    #[test]
    fn partial_service_spec_from_a_client_parses() {
        let spec: ServiceSpec = serde_json::from_value(json!({
            "Name": "web",
            "TaskTemplate": {"ContainerSpec": {"Image": "nginx", "Env": ["A=1"]}, "ForceUpdate": 0},
            "Mode": {"Replicated": {"Replicas": 2}},
            "EndpointSpec": {"Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "host"}]}
        }))
        .unwrap();
        assert_eq!(spec.task_template.container_spec.as_ref().unwrap().env, vec!["A=1"]);
        let ports = &spec.endpoint_spec.as_ref().unwrap().ports;
        assert!(ports[0].is_host_published());
        assert_eq!(ports[0].target_port, 80);
        let v = serde_json::to_value(&spec).unwrap();
        assert_eq!(v["EndpointSpec"]["Ports"][0]["PublishMode"], "host");
        assert_eq!(v["Labels"], json!({}));
        assert!(v.get("UpdateConfig").is_none());
        let back: ServiceSpec = serde_json::from_value(v).unwrap();
        assert_eq!(back, spec);
    }

    /// What moby answers for `GET /services/{id}?insertDefaults=true`:
    /// SwarmKit's `InterpolateService`, then moby's converter.
    #[test]
    fn insert_defaults_fills_what_swarmkit_fills() {
        let spec: ServiceSpec =
            serde_json::from_value(json!({"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}}})).unwrap();
        let update =
            json!({"Parallelism": 1, "FailureAction": "pause", "Monitor": 5_000_000_000i64, "MaxFailureRatio": 0.0, "Order": "stop-first"});
        assert_eq!(
            serde_json::to_value(spec.with_defaults()).unwrap(),
            json!({
                "Name": "web",
                "Labels": {},
                "TaskTemplate": {
                    "ContainerSpec": {"Image": "busybox", "StopGracePeriod": 10_000_000_000i64, "DNSConfig": {}},
                    "Resources": {},
                    "RestartPolicy": {"Condition": "any", "Delay": 5_000_000_000i64, "MaxAttempts": 0},
                    "Placement": {},
                    "ForceUpdate": 0,
                    "Runtime": "container",
                },
                "Mode": {"Replicated": {"Replicas": 1}},
                "UpdateConfig": update,
                "RollbackConfig": update,
            })
        );
        // Without insertDefaults the parts the client left out stay out.
        let plain = serde_json::to_value(spec.clone().as_docker_stores()).unwrap();
        assert!(plain.get("UpdateConfig").is_none() && plain["TaskTemplate"].get("RestartPolicy").is_none(), "{plain}");
        assert!(plain["TaskTemplate"]["ContainerSpec"].get("StopGracePeriod").is_none(), "{plain}");
    }

    #[test]
    fn insert_defaults_keeps_what_was_set_and_fills_holes_in_parts() {
        let spec: ServiceSpec = serde_json::from_value(json!({
            "Name": "web",
            "TaskTemplate": {
                "ContainerSpec": {"Image": "busybox", "StopGracePeriod": 3_000_000_000i64, "DNSConfig": {"Nameservers": ["10.0.0.2"]}},
                "RestartPolicy": {"Condition": "on-failure", "MaxAttempts": 3},
                "Placement": {"Constraints": ["node.role==worker"]},
                "Resources": {"Limits": {"MemoryBytes": 1024}},
            },
            "UpdateConfig": {"Parallelism": 2, "Delay": 1_000_000_000i64},
            "RollbackConfig": {"Parallelism": 0, "FailureAction": "continue", "Monitor": 7, "Order": "start-first"},
            "EndpointSpec": {},
            "Mode": {"ReplicatedJob": {"MaxConcurrent": 2}},
        }))
        .unwrap();
        let v = serde_json::to_value(spec.with_defaults()).unwrap();
        let t = &v["TaskTemplate"];
        assert_eq!(t["ContainerSpec"]["StopGracePeriod"], 3_000_000_000i64);
        assert_eq!(t["ContainerSpec"]["DNSConfig"], json!({"Nameservers": ["10.0.0.2"]}));
        // A policy without a delay gets SwarmKit's.
        assert_eq!(t["RestartPolicy"], json!({"Condition": "on-failure", "Delay": 5_000_000_000i64, "MaxAttempts": 3}));
        assert_eq!(t["Placement"], json!({"Constraints": ["node.role==worker"]}));
        assert_eq!(t["Resources"], json!({"Limits": {"MemoryBytes": 1024}}));
        // A config without a monitor gets 5 s; failure action and order
        // read back as moby's converter writes them.
        assert_eq!(
            v["UpdateConfig"],
            json!({"Parallelism": 2, "Delay": 1_000_000_000i64, "FailureAction": "pause", "Monitor": 5_000_000_000i64, "MaxFailureRatio": 0.0, "Order": "stop-first"})
        );
        assert_eq!(
            v["RollbackConfig"],
            json!({"Parallelism": 0, "FailureAction": "continue", "Monitor": 7, "MaxFailureRatio": 0.0, "Order": "start-first"})
        );
        assert_eq!(v["EndpointSpec"], json!({"Mode": "vip"}));
        assert_eq!(v["Mode"], json!({"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 2}}));
        // Filling is idempotent.
        assert_eq!(spec.with_defaults().with_defaults(), spec.with_defaults());
        assert_eq!(spec.clone().as_docker_stores().as_docker_stores(), spec.clone().as_docker_stores());
    }

    #[test]
    fn ingress_is_the_default_publish_mode() {
        let p: PortConfig = serde_json::from_value(json!({"TargetPort": 80, "PublishedPort": 8080})).unwrap();
        assert_eq!(p.publish_mode, PublishMode::Ingress);
        assert_eq!(p.protocol, PortProtocol::Tcp);
        assert!(!p.is_host_published());
    }
}
