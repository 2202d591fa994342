//! Swarm networks as the Engine API shows them (`Network` in a task's
//! `NetworksAttachments`). Only the shape for now: overlay networks and
//! their allocation come later; a task's leg on the node's gateway bridge
//! is node-local and, as in Docker, never listed here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::task::{is_false, Driver};
use crate::Version;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Network {
    #[serde(default, rename = "ID")]
    pub id: String,
    #[serde(default)]
    pub version: Version,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_at: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub updated_at: String,
    #[serde(default)]
    pub spec: NetworkSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_state: Option<Driver>,
    #[serde(default, rename = "IPAMOptions", skip_serializing_if = "Option::is_none")]
    pub ipam_options: Option<IpamOptions>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSpec {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_configuration: Option<Driver>,
    #[serde(default, rename = "IPv6Enabled", skip_serializing_if = "is_false")]
    pub ipv6_enabled: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub internal: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub attachable: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub ingress: bool,
    #[serde(default, rename = "IPAMOptions", skip_serializing_if = "Option::is_none")]
    pub ipam_options: Option<IpamOptions>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamOptions {
    #[serde(default)]
    pub driver: Driver,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<IpamConfig>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subnet: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub range: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gateway: String,
}

/// One network a task is attached to, with the task's addresses on it
/// (CIDR, e.g. `10.0.1.5/24`): Docker's `NetworkAttachment`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkAttachment {
    #[serde(default)]
    pub network: Network,
    #[serde(default)]
    pub addresses: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn attachment_in_dockers_shape() {
        let a = NetworkAttachment {
            network: Network {
                id: "n1".into(),
                spec: NetworkSpec {
                    name: "backend".into(),
                    driver_configuration: Some(Driver { name: "overlay".into(), ..Default::default() }),
                    scope: "swarm".into(),
                    ..Default::default()
                },
                ipam_options: Some(IpamOptions {
                    driver: Driver { name: "default".into(), ..Default::default() },
                    configs: vec![IpamConfig { subnet: "10.0.1.0/24".into(), gateway: "10.0.1.1".into(), ..Default::default() }],
                }),
                ..Default::default()
            },
            addresses: vec!["10.0.1.5/24".into()],
        };
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["Network"]["ID"], "n1");
        assert_eq!(v["Network"]["Spec"]["Name"], "backend");
        assert_eq!(v["Network"]["Spec"]["DriverConfiguration"]["Name"], "overlay");
        assert_eq!(v["Network"]["IPAMOptions"]["Configs"][0], json!({"Subnet": "10.0.1.0/24", "Gateway": "10.0.1.1"}));
        assert_eq!(v["Addresses"], json!(["10.0.1.5/24"]));
        assert!(v["Network"]["Spec"].get("Ingress").is_none());
        let back: NetworkAttachment = serde_json::from_value(v).unwrap();
        assert_eq!(back, a);
    }
}
