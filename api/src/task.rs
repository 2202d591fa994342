//! The Task object (`GET /tasks`) and the task template every service carries
//! (`TaskSpec`), in Docker's JSON shape.
//!
//! A task is one scheduled unit of a service: the scheduler gives it a
//! `NodeID`, the worker reports its observed `Status`. Optional parts use
//! `#[serde(default)]` so the partial JSON that clients send parses, and are
//! left out when empty so our answers look like Docker's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::node::Platform;
use crate::Version;

/// A task's life cycle. Observed states only move forward, so the order of
/// the variants is meaningful: a later state compares greater
/// (`TaskState::Running > TaskState::Assigned`), as in SwarmKit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    #[default]
    New,
    Allocated,
    Pending,
    Assigned,
    Accepted,
    Preparing,
    Ready,
    Starting,
    Running,
    Complete,
    Shutdown,
    Failed,
    Rejected,
    Remove,
    Orphaned,
}

impl TaskState {
    pub const ALL: [TaskState; 15] = [
        TaskState::New,
        TaskState::Allocated,
        TaskState::Pending,
        TaskState::Assigned,
        TaskState::Accepted,
        TaskState::Preparing,
        TaskState::Ready,
        TaskState::Starting,
        TaskState::Running,
        TaskState::Complete,
        TaskState::Shutdown,
        TaskState::Failed,
        TaskState::Rejected,
        TaskState::Remove,
        TaskState::Orphaned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::New => "new",
            TaskState::Allocated => "allocated",
            TaskState::Pending => "pending",
            TaskState::Assigned => "assigned",
            TaskState::Accepted => "accepted",
            TaskState::Preparing => "preparing",
            TaskState::Ready => "ready",
            TaskState::Starting => "starting",
            TaskState::Running => "running",
            TaskState::Complete => "complete",
            TaskState::Shutdown => "shutdown",
            TaskState::Failed => "failed",
            TaskState::Rejected => "rejected",
            TaskState::Remove => "remove",
            TaskState::Orphaned => "orphaned",
        }
    }

    pub fn parse(s: &str) -> Option<TaskState> {
        TaskState::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Past running: the task will not run (again) where it is.
    pub fn is_terminal(self) -> bool {
        self > TaskState::Running
    }
}

/// `GET /tasks/{id}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Task {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(default)]
    pub version: Version,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_at: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Docker always prints `Labels`, even empty.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub spec: TaskSpec,
    #[serde(default, rename = "ServiceID", skip_serializing_if = "String::is_empty")]
    pub service_id: String,
    /// Replicated tasks are named by slot (`web.3`); global tasks have none.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub slot: u64,
    #[serde(default, rename = "NodeID", skip_serializing_if = "String::is_empty")]
    pub node_id: String,
    #[serde(default)]
    pub status: TaskStatus,
    #[serde(default)]
    pub desired_state: TaskState,
    /// Generic resources the scheduler assigned to this task (for example
    /// which GPUs), out of the node's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generic_resources: Vec<GenericResource>,
    /// For jobs: which run of the job this task belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_iteration: Option<Version>,
    /// The swarm networks (overlays) the task is attached to, with its
    /// addresses on each. The node-local gateway bridge leg is not listed,
    /// as in Docker.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks_attachments: Vec<crate::network::NetworkAttachment>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskStatus {
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub timestamp: String,
    #[serde(default)]
    pub state: TaskState,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Why the task is stuck or failed, e.g. the scheduler's
    /// `no suitable node (...)`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub err: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_status: Option<ContainerStatus>,
    #[serde(default, skip_serializing_if = "PortStatus::is_empty")]
    pub port_status: PortStatus,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerStatus {
    #[serde(default, rename = "ContainerID")]
    pub container_id: String,
    #[serde(default, rename = "PID")]
    pub pid: i64,
    #[serde(default)]
    pub exit_code: i64,
}

/// Host-mode ports a running task actually published.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<crate::service::PortConfig>,
}

impl PortStatus {
    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
    }
}

/// The task template of a service (`ServiceSpec.TaskTemplate`) and the spec
/// each of its tasks runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_spec: Option<ContainerSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<NetworkAttachmentConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_driver: Option<Driver>,
    /// A counter: changing it redeploys the service's tasks unchanged.
    #[serde(default)]
    pub force_update: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub runtime: String,
    /// A network attachment task's container (`Runtime` "attachment"):
    /// a standalone container's place on an attachable overlay, which
    /// the allocator gives an address like any task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_attachment_spec: Option<NetworkAttachmentSpec>,
}

/// The runtime of a network attachment task (Docker's).
pub const ATTACHMENT_RUNTIME: &str = "attachment";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAttachmentSpec {
    #[serde(rename = "ContainerID", default)]
    pub container_id: String,
}

impl TaskSpec {
    /// A network attachment task: it runs nothing; its node's standalone
    /// container uses its addresses.
    pub fn is_attachment(&self) -> bool {
        self.runtime == ATTACHMENT_RUNTIME
    }

    /// The reservations, if any (what the scheduler must find free on a node).
    pub fn reservations(&self) -> Option<&Reservations> {
        self.resources.as_ref()?.reservations.as_ref()
    }
    pub fn placement(&self) -> Option<&Placement> {
        self.placement.as_ref()
    }
}

/// The subset of Docker's ContainerSpec Shoal runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dir: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    /// Nanoseconds (Docker's default is 10 s when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<i64>,
    #[serde(default, rename = "TTY", skip_serializing_if = "is_false")]
    pub tty: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub open_stdin: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capability_add: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capability_drop: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<crate::secret::SecretReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<crate::secret::ConfigReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<Ulimit>,
    #[serde(default, rename = "DNSConfig", skip_serializing_if = "Option::is_none")]
    pub dns_config: Option<DnsConfig>,
    /// Seccomp, AppArmor and no-new-privileges per service (Docker's
    /// `--security-opt`); absent means Docker's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileges: Option<Privileges>,
}

/// Docker's `ContainerSpec.Privileges`. Every part may be absent or JSON
/// null. Shoal acts on `Seccomp`, `AppArmor` and `NoNewPrivileges`;
/// `CredentialSpec` (Windows) and `SELinuxContext` (SELinux labels) are
/// parsed only so that [`Privileges::validate`] can refuse them by name
/// rather than drop them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Privileges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_spec: Option<CredentialSpec>,
    #[serde(default, rename = "SELinuxContext", skip_serializing_if = "Option::is_none")]
    pub selinux_context: Option<SELinuxContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<SeccompOpts>,
    #[serde(default, rename = "AppArmor", skip_serializing_if = "Option::is_none")]
    pub app_armor: Option<AppArmorOpts>,
    #[serde(default, skip_serializing_if = "is_false", deserialize_with = "null_as_default")]
    pub no_new_privileges: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CredentialSpec {
    #[serde(default, deserialize_with = "null_as_default")]
    pub config: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub file: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub registry: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SELinuxContext {
    #[serde(default, deserialize_with = "null_as_default")]
    pub disable: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub user: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub role: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub r#type: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub level: String,
}

/// `Mode`: `default` (or empty), `unconfined`, `custom`. `Profile` is the
/// custom profile's JSON; Docker's Go type is `[]byte`, so on the wire it
/// is base64, as Go writes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SeccompOpts {
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "null_as_default")]
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::base64::opt")]
    pub profile: Option<Vec<u8>>,
}

/// `Mode`: `default` (or empty) or `disabled`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AppArmorOpts {
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "null_as_default")]
    pub mode: String,
}

fn null_as_default<'de, D: serde::Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// What a container's seccomp filter is, once the mode is checked.
#[derive(Clone, Debug, PartialEq)]
pub enum SeccompChoice {
    Default,
    Unconfined,
    Custom(crate::seccomp::Profile),
}

impl Privileges {
    /// Refuses what Shoal cannot honour, naming the field, and checks a
    /// custom seccomp profile. Managers call it when a service is created
    /// or updated; workers again before a container starts.
    pub fn validate(&self) -> Result<(), String> {
        if self.credential_spec.as_ref().is_some_and(|c| *c != CredentialSpec::default()) {
            return Err("Privileges.CredentialSpec is not supported: credential specs are for Windows containers".into());
        }
        if self.selinux_context.as_ref().is_some_and(|c| *c != SELinuxContext::default()) {
            return Err("Privileges.SELinuxContext is not supported: Shoal does not apply SELinux labels".into());
        }
        self.seccomp_choice()?;
        match self.app_armor.as_ref().map(|a| a.mode.as_str()).unwrap_or("") {
            "" | "default" | "disabled" => Ok(()),
            other => Err(format!("Privileges.AppArmor.Mode {other:?} is invalid: want \"default\" or \"disabled\"")),
        }
    }

    /// The seccomp filter asked for (the profile parsed and checked).
    pub fn seccomp_choice(&self) -> Result<SeccompChoice, String> {
        let Some(s) = self.seccomp.as_ref() else { return Ok(SeccompChoice::Default) };
        let profile = s.profile.as_deref().filter(|p| !p.is_empty());
        match (s.mode.as_str(), profile) {
            ("" | "default", None) => Ok(SeccompChoice::Default),
            ("unconfined", None) => Ok(SeccompChoice::Unconfined),
            ("custom", Some(p)) => {
                crate::seccomp::Profile::parse(p).map(SeccompChoice::Custom).map_err(|e| format!("Privileges.Seccomp.Profile: {e}"))
            }
            ("custom", None) => Err("Privileges.Seccomp.Mode is \"custom\" but no Profile is given".into()),
            ("" | "default" | "unconfined", Some(_)) => {
                Err(format!("Privileges.Seccomp.Profile is only used with Mode \"custom\", not {:?}", s.mode))
            }
            (other, _) => Err(format!("Privileges.Seccomp.Mode {other:?} is invalid: want \"default\", \"unconfined\" or \"custom\"")),
        }
    }
}

/// `--ulimit nofile=1024:2048`: a resource limit of the container's processes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ulimit {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub hard: i64,
    #[serde(default)]
    pub soft: i64,
}

/// `--dns`, `--dns-search`, `--dns-option`: the container's resolv.conf.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DnsConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Mount {
    /// `bind`, `volume`, `tmpfs`, ...
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub r#type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub consistency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<BindOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<VolumeOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<TmpfsOptions>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BindOptions {
    /// `private`, `rprivate` (the default), `shared`, `rshared`, `slave`, `rslave`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub propagation: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub non_recursive: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeOptions {
    /// Do not fill a new volume with the image's content at the target.
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_copy: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subpath: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_config: Option<Driver>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TmpfsOptions {
    /// Bytes; 0 is the kernel's default (half of RAM).
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub size_bytes: i64,
    /// Permission bits (e.g. 0o1777, Docker's default).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub mode: u32,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// Durations in nanoseconds, as in Docker.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub interval: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub timeout: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub start_period: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub start_interval: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub retries: i64,
}

/// `--limit-*` and `--reserve-*`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceRequirements {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservations: Option<Reservations>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Limit {
    #[serde(default, rename = "NanoCPUs", skip_serializing_if = "is_zero_i64")]
    pub nano_cpus: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub memory_bytes: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub pids: i64,
}

/// What a task reserves on its node (Docker's `Resources` type; named so it
/// does not clash with the node's `Resources`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Reservations {
    #[serde(default, rename = "NanoCPUs", skip_serializing_if = "is_zero_i64")]
    pub nano_cpus: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub memory_bytes: i64,
    /// `--generic-resource gpu=2`: tasks reserve discrete amounts only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generic_resources: Vec<GenericResource>,
}

impl Reservations {
    pub fn is_empty(&self) -> bool {
        self.nano_cpus == 0 && self.memory_bytes == 0 && self.generic_resources.is_empty()
    }
}

/// A user-defined resource a node advertises (`--node-generic-resource`):
/// either a set of named items (`gpu=UUID1`, `gpu=UUID2`) or a count (`ssd=3`).
/// Docker's JSON has exactly one of the two keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GenericResource {
    #[serde(rename = "NamedResourceSpec")]
    Named(NamedGenericResource),
    #[serde(rename = "DiscreteResourceSpec")]
    Discrete(DiscreteGenericResource),
}

impl GenericResource {
    pub fn named(kind: &str, value: &str) -> Self {
        GenericResource::Named(NamedGenericResource { kind: kind.into(), value: value.into() })
    }
    pub fn discrete(kind: &str, value: i64) -> Self {
        GenericResource::Discrete(DiscreteGenericResource { kind: kind.into(), value })
    }
    pub fn kind(&self) -> &str {
        match self {
            GenericResource::Named(n) => &n.kind,
            GenericResource::Discrete(d) => &d.kind,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NamedGenericResource {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiscreteGenericResource {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub value: i64,
}

/// `--restart-condition`, `--restart-delay`, ... (durations in nanoseconds).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<RestartCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<i64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartCondition {
    #[serde(rename = "none")]
    None,
    #[serde(rename = "on-failure")]
    OnFailure,
    #[default]
    #[serde(rename = "any")]
    Any,
}

/// `--constraint`, `--placement-pref`, `--replicas-max-per-node`, and the
/// platforms the image supports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Placement {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferences: Vec<PlacementPreference>,
    /// 0 means no limit.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub max_replicas: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<Platform>,
}

/// `{"Spread": {"SpreadDescriptor": "node.labels.zone"}}`; spread is the only
/// kind Docker has.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PlacementPreference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<SpreadOver>,
}

impl PlacementPreference {
    pub fn spread(descriptor: &str) -> Self {
        PlacementPreference { spread: Some(SpreadOver { spread_descriptor: descriptor.into() }) }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SpreadOver {
    #[serde(default)]
    pub spread_descriptor: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkAttachmentConfig {
    #[serde(default, deserialize_with = "null_as_default")]
    pub target: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_default")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "null_as_default")]
    pub driver_opts: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Driver {
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}
pub(crate) fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}
pub(crate) fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_ordered_and_lowercase() {
        assert!(TaskState::Pending < TaskState::Assigned);
        assert!(TaskState::Running < TaskState::Complete);
        assert!(TaskState::Shutdown < TaskState::Orphaned);
        assert_eq!(serde_json::to_value(TaskState::Running).unwrap(), "running");
        for s in TaskState::ALL {
            assert_eq!(TaskState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert!(TaskState::Failed.is_terminal());
        assert!(!TaskState::Running.is_terminal());
    }

    #[test]
    fn task_json_uses_dockers_field_names() {
        let mut t = Task { id: "t1".into(), service_id: "s1".into(), slot: 3, ..Default::default() };
        t.node_id = "n1".into();
        t.desired_state = TaskState::Running;
        t.status.state = TaskState::Pending;
        t.status.err = "no suitable node (1 node not available for new tasks)".into();
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["ID"], "t1");
        assert_eq!(v["ServiceID"], "s1");
        assert_eq!(v["NodeID"], "n1");
        assert_eq!(v["Slot"], 3);
        assert_eq!(v["DesiredState"], "running");
        assert_eq!(v["Status"]["State"], "pending");
        assert!(v["Status"]["Err"].as_str().unwrap().starts_with("no suitable node"));
        assert_eq!(v["Labels"], serde_json::json!({}));
        assert!(v["Status"].get("PortStatus").is_none());
        let back: Task = serde_json::from_value(v).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn partial_task_spec_parses() {
        let spec: TaskSpec = serde_json::from_str(
            r#"{"ContainerSpec":{"Image":"busybox","Args":["sleep","1d"]},
                "Resources":{"Reservations":{"NanoCPUs":500000000,
                  "GenericResources":[{"DiscreteResourceSpec":{"Kind":"gpu","Value":1}}]}},
                "Placement":{"Constraints":["node.role==worker"],
                  "Preferences":[{"Spread":{"SpreadDescriptor":"node.labels.zone"}}],
                  "MaxReplicas":2,"Platforms":[{"Architecture":"amd64","OS":"linux"}]},
                "RestartPolicy":{"Condition":"on-failure"}}"#,
        )
        .unwrap();
        assert_eq!(spec.container_spec.as_ref().unwrap().image, "busybox");
        let r = spec.reservations().unwrap();
        assert_eq!(r.nano_cpus, 500_000_000);
        assert_eq!(r.generic_resources, vec![GenericResource::discrete("gpu", 1)]);
        let p = spec.placement().unwrap();
        assert_eq!(p.max_replicas, 2);
        assert_eq!(p.preferences[0], PlacementPreference::spread("node.labels.zone"));
        assert_eq!(p.platforms[0].os, "linux");
        assert_eq!(spec.restart_policy.unwrap().condition, Some(RestartCondition::OnFailure));
        let empty: TaskSpec = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, TaskSpec::default());
        assert_eq!(serde_json::to_value(&empty).unwrap(), serde_json::json!({"ForceUpdate": 0}));
    }

    #[test]
    fn generic_resources_use_dockers_keys() {
        let v = serde_json::to_value(GenericResource::named("gpu", "UUID1")).unwrap();
        assert_eq!(v, serde_json::json!({"NamedResourceSpec": {"Kind": "gpu", "Value": "UUID1"}}));
        let v = serde_json::to_value(GenericResource::discrete("ssd", 2)).unwrap();
        assert_eq!(v, serde_json::json!({"DiscreteResourceSpec": {"Kind": "ssd", "Value": 2}}));
    }

    #[test]
    fn privileges_in_dockers_shape_with_nulls() {
        let cs: ContainerSpec = serde_json::from_str(
            r#"{"Image": "x", "Privileges": {"CredentialSpec": null, "SELinuxContext": null, "Seccomp": null, "AppArmor": null, "NoNewPrivileges": null}}"#,
        )
        .unwrap();
        let p = cs.privileges.unwrap();
        assert_eq!(p, Privileges::default());
        assert_eq!(p.seccomp_choice().unwrap(), SeccompChoice::Default);
        p.validate().unwrap();
        let cs: ContainerSpec = serde_json::from_str(r#"{"Image": "x", "Privileges": null}"#).unwrap();
        assert!(cs.privileges.is_none());

        // Profile is Go's []byte: base64 on the wire.
        let profile = br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO"}]}"#;
        let json = format!(
            r#"{{"Seccomp": {{"Mode": "custom", "Profile": "{}"}}, "AppArmor": {{"Mode": "disabled"}}, "NoNewPrivileges": true}}"#,
            crate::base64::encode(profile)
        );
        let p: Privileges = serde_json::from_str(&json).unwrap();
        p.validate().unwrap();
        assert!(p.no_new_privileges);
        let SeccompChoice::Custom(custom) = p.seccomp_choice().unwrap() else { panic!("custom") };
        assert_eq!(custom.syscalls[0].names, ["keyctl"]);
        let back = serde_json::to_value(&p).unwrap();
        assert_eq!(back["Seccomp"]["Profile"], crate::base64::encode(profile));
        assert_eq!(back["AppArmor"]["Mode"], "disabled");
        let unconfined: Privileges = serde_json::from_str(r#"{"Seccomp": {"Mode": "unconfined"}}"#).unwrap();
        assert_eq!(unconfined.seccomp_choice().unwrap(), SeccompChoice::Unconfined);
    }

    #[test]
    fn privileges_shoal_cannot_honour_are_refused_by_name() {
        let err = |j: &str| serde_json::from_str::<Privileges>(j).unwrap().validate().unwrap_err();
        assert!(err(r#"{"CredentialSpec": {"File": "spec.json"}}"#).starts_with("Privileges.CredentialSpec is not supported"));
        assert!(err(r#"{"SELinuxContext": {"Type": "svirt_lxc_net_t"}}"#).starts_with("Privileges.SELinuxContext is not supported"));
        assert!(err(r#"{"SELinuxContext": {"Disable": true}}"#).starts_with("Privileges.SELinuxContext"));
        assert!(err(r#"{"Seccomp": {"Mode": "strict"}}"#).contains("Privileges.Seccomp.Mode \"strict\" is invalid"));
        assert!(err(r#"{"Seccomp": {"Mode": "custom"}}"#).contains("no Profile"));
        let with_profile = format!(r#"{{"Seccomp": {{"Mode": "unconfined", "Profile": "{}"}}}}"#, crate::base64::encode(b"{}"));
        assert!(err(&with_profile).contains("only used with Mode \"custom\""));
        let broken = format!(r#"{{"Seccomp": {{"Mode": "custom", "Profile": "{}"}}}}"#, crate::base64::encode(b"{\"defaultAction\": 1}"));
        assert!(err(&broken).starts_with("Privileges.Seccomp.Profile: decoding seccomp profile failed"));
        assert!(err(r#"{"AppArmor": {"Mode": "enforce"}}"#).contains("Privileges.AppArmor.Mode \"enforce\" is invalid"));
        // Empty objects ask for nothing, so nothing is dropped by accepting them.
        serde_json::from_str::<Privileges>(r#"{"CredentialSpec": {}, "SELinuxContext": {}}"#).unwrap().validate().unwrap();
    }
}
