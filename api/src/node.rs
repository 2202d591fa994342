//! The Node object (`GET /nodes`), in Docker's JSON shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Version;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Node {
    #[serde(rename = "ID")]
    pub id: String,
    pub version: Version,
    pub created_at: String,
    pub updated_at: String,
    pub spec: NodeSpec,
    pub description: NodeDescription,
    pub status: NodeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_status: Option<ManagerStatus>,
    /// The node's own address on the ingress network (SwarmKit's
    /// `Node.Attachments`), given by the managers' allocator: where the
    /// routing mesh enters this node. Not part of the node's spec: writing
    /// it does not change `Version`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<crate::network::NetworkAttachment>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub role: Role,
    #[serde(default)]
    pub availability: Availability,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    Worker,
    Manager,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Worker => "worker",
            Role::Manager => "manager",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "worker" => Some(Role::Worker),
            "manager" => Some(Role::Manager),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Availability {
    #[default]
    Active,
    Pause,
    Drain,
}

impl Availability {
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Active => "active",
            Availability::Pause => "pause",
            Availability::Drain => "drain",
        }
    }
    pub fn parse(s: &str) -> Option<Availability> {
        match s {
            "active" => Some(Availability::Active),
            "pause" => Some(Availability::Pause),
            "drain" => Some(Availability::Drain),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeDescription {
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub platform: Platform,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub engine: EngineDescription,
    #[serde(default, rename = "TLSInfo")]
    pub tls_info: TlsInfo,
    /// The node's WireGuard public key (base64) for encrypted overlays
    /// (Shoal's own field; Docker's clients ignore it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub data_path_key: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default, rename = "OS")]
    pub os: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Resources {
    #[serde(default, rename = "NanoCPUs")]
    pub nano_cpus: i64,
    #[serde(default)]
    pub memory_bytes: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EngineDescription {
    #[serde(default)]
    pub engine_version: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub plugins: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TlsInfo {
    #[serde(default)]
    pub trust_root: String,
    #[serde(default)]
    pub cert_issuer_subject: String,
    #[serde(default)]
    pub cert_issuer_public_key: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeStatus {
    pub state: NodeState,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default)]
    pub addr: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    #[default]
    Unknown,
    Down,
    Ready,
    Disconnected,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Unknown => "unknown",
            NodeState::Down => "down",
            NodeState::Ready => "ready",
            NodeState::Disconnected => "disconnected",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ManagerStatus {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub leader: bool,
    pub reachability: Reachability,
    pub addr: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reachability {
    #[default]
    Unknown,
    Unreachable,
    Reachable,
}

impl Reachability {
    pub fn as_str(self) -> &'static str {
        match self {
            Reachability::Unknown => "unknown",
            Reachability::Unreachable => "unreachable",
            Reachability::Reachable => "reachable",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_json_uses_dockers_field_names() {
        let mut n = Node { id: "abc".into(), ..Default::default() };
        n.spec.role = Role::Manager;
        n.manager_status = Some(ManagerStatus { leader: true, reachability: Reachability::Reachable, addr: "10.0.0.1:2377".into() });
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(v["ID"], "abc");
        assert_eq!(v["Spec"]["Role"], "manager");
        assert_eq!(v["Spec"]["Availability"], "active");
        assert_eq!(v["Status"]["State"], "unknown");
        assert_eq!(v["ManagerStatus"]["Leader"], true);
        assert_eq!(v["Description"]["Resources"]["NanoCPUs"], 0);
        assert_eq!(v["Description"]["Platform"]["OS"], "");
        let back: Node = serde_json::from_value(v).unwrap();
        assert_eq!(back, n);
    }

    #[test]
    fn spec_with_unknown_role_is_refused() {
        let r: Result<NodeSpec, _> = serde_json::from_str(r#"{"Role":"boss"}"#);
        assert!(r.is_err());
    }
}
