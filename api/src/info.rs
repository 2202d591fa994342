//! The `Swarm` section of `GET /info`.

use serde::{Deserialize, Serialize};

use crate::Swarm;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalNodeState {
    #[default]
    Inactive,
    Pending,
    Active,
    Error,
    Locked,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Peer {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub addr: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmInfo {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub node_addr: String,
    pub local_node_state: LocalNodeState,
    pub control_available: bool,
    pub error: String,
    pub remote_managers: Option<Vec<Peer>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managers: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<Swarm>,
}
