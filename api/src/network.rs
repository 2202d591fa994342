//! Swarm networks in the Engine API's shapes.
//!
//! - `Network` is the swarm object the store keeps (SwarmKit's shape, as a
//!   task's `NetworksAttachments` shows it): the user's `Spec`, plus what the
//!   allocator gave it: `IPAMOptions` (subnet, gateway) and `DriverState`
//!   (the overlay driver with its VXLAN ID in
//!   `com.docker.network.driver.overlay.vxlanid_list`).
//! - `NetworkCreateRequest` is the body of `POST /networks/create`;
//!   `NetworkCreateRequest::to_spec` turns it into a `NetworkSpec`, refusing
//!   by name what Shoal does not do.
//! - `NetworkResource` is what `GET /networks` and `/networks/{id}` answer,
//!   made from a `Network` by `NetworkResource::from_swarm`.
//! - `NetworkAttachment` is one entry of a task's `NetworksAttachments`.
//!
//! A task's leg on the node's gateway bridge is node-local and, as in
//! Docker, never listed here. JSON `null` is taken as absent everywhere.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::task::{is_false, Driver};
use crate::Version;

/// The driver option that carries an overlay network's VXLAN ID (Docker
/// writes a comma-separated list; Shoal gives one ID per network).
pub const VXLAN_ID_OPTION: &str = "com.docker.network.driver.overlay.vxlanid_list";
/// The driver option that asks for an encrypted overlay (`--opt encrypted`).
pub const ENCRYPTED_OPTION: &str = "encrypted";
/// The only network driver of swarm networks.
pub const OVERLAY_DRIVER: &str = "overlay";
/// The only IPAM driver.
pub const DEFAULT_IPAM_DRIVER: &str = "default";
/// The ingress network `swarm init` makes, as Docker makes it.
pub const INGRESS_NAME: &str = "ingress";
pub const INGRESS_SUBNET: &str = "10.0.0.0/24";
pub const INGRESS_GATEWAY: &str = "10.0.0.1";

/// JSON `null` read as the field's default (Go's nil slice, map or pointer).
pub(crate) fn null_as_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The swarm network object the store keeps. `IPAMOptions` and
/// `DriverState` are the allocator's: empty until the network is allocated.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Network {
    #[serde(default, rename = "ID", deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub version: Version,
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "null_as_default")]
    pub created_at: String,
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "null_as_default")]
    pub updated_at: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub spec: NetworkSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_state: Option<Driver>,
    #[serde(default, rename = "IPAMOptions", skip_serializing_if = "Option::is_none")]
    pub ipam_options: Option<IpamOptions>,
}

impl Network {
    /// The VXLAN ID the allocator gave, if any.
    pub fn vxlan_id(&self) -> Option<u32> {
        self.driver_state.as_ref()?.options.get(VXLAN_ID_OPTION)?.split(',').next()?.trim().parse().ok()
    }

    /// The allocated IPv4 configuration (subnet, gateway, range, reserved
    /// addresses), if the network is allocated.
    pub fn allocated_ipam(&self) -> Option<&IpamConfig> {
        self.ipam_options.as_ref()?.configs.first()
    }

    pub fn is_encrypted(&self) -> bool {
        self.spec.driver_configuration.as_ref().is_some_and(|d| d.options.contains_key(ENCRYPTED_OPTION))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSpec {
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    /// The driver (`overlay`) and its options (`encrypted`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_configuration: Option<Driver>,
    #[serde(default, rename = "IPv6Enabled", skip_serializing_if = "is_false", deserialize_with = "null_as_default")]
    pub ipv6_enabled: bool,
    #[serde(default, skip_serializing_if = "is_false", deserialize_with = "null_as_default")]
    pub internal: bool,
    #[serde(default, skip_serializing_if = "is_false", deserialize_with = "null_as_default")]
    pub attachable: bool,
    #[serde(default, skip_serializing_if = "is_false", deserialize_with = "null_as_default")]
    pub ingress: bool,
    /// What the user asked for (`--subnet`, `--gateway`, `--ip-range`,
    /// `--aux-address`); the allocation itself is `Network::ipam_options`.
    #[serde(default, rename = "IPAMOptions", skip_serializing_if = "Option::is_none")]
    pub ipam_options: Option<IpamOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_from: Option<ConfigReference>,
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "null_as_default")]
    pub scope: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamOptions {
    #[serde(default, deserialize_with = "null_as_default")]
    pub driver: Driver,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_default")]
    pub configs: Vec<IpamConfig>,
}

/// One IPv4 pool of a swarm network. Docker's swarm `IPAMConfig` has no
/// reserved addresses; Shoal keeps `--aux-address` here, under the name the
/// create request uses, and leaves it out when empty.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfig {
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "null_as_default")]
    pub subnet: String,
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "null_as_default")]
    pub range: String,
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "null_as_default")]
    pub gateway: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "null_as_default")]
    pub auxiliary_addresses: BTreeMap<String, String>,
}

/// `ConfigFrom`: the config-only network another network takes its
/// configuration from (refused by Shoal, which has no config-only networks).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigReference {
    #[serde(default, deserialize_with = "null_as_default")]
    pub network: String,
}

/// One network a task is attached to, with the task's addresses on it
/// (CIDR, e.g. `10.0.1.5/24`): Docker's `NetworkAttachment`. `Network` is a
/// copy of the network object as it was when the task was allocated.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkAttachment {
    #[serde(default, deserialize_with = "null_as_default")]
    pub network: Network,
    #[serde(default, deserialize_with = "null_as_default")]
    pub addresses: Vec<String>,
}

/// `POST /networks/create` (Docker's `NetworkCreateRequest`, API 1.44).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkCreateRequest {
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// Deprecated in 1.44 (names are always checked); accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_duplicate: Option<bool>,
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "null_as_default")]
    pub driver: String,
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "null_as_default")]
    pub scope: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub internal: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub attachable: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub ingress: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub config_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_from: Option<ConfigReference>,
    #[serde(default, rename = "IPAM", skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Ipam>,
    #[serde(default, rename = "EnableIPv6", deserialize_with = "null_as_default")]
    pub enable_ipv6: bool,
    /// Driver options (`encrypted`, ...).
    #[serde(default, deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
}

/// `IPAM` of the create request and of `NetworkResource`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ipam {
    #[serde(default, deserialize_with = "null_as_default")]
    pub driver: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub config: Vec<IpamPoolConfig>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
}

/// Docker's `IPAMConfig` of the networks API: `--subnet`, `--ip-range`,
/// `--gateway`, `--aux-address name=ip`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamPoolConfig {
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "null_as_default")]
    pub subnet: String,
    #[serde(default, rename = "IPRange", skip_serializing_if = "String::is_empty", deserialize_with = "null_as_default")]
    pub ip_range: String,
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "null_as_default")]
    pub gateway: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "null_as_default")]
    pub auxiliary_addresses: BTreeMap<String, String>,
}

impl NetworkCreateRequest {
    /// The swarm spec for this request, or why Shoal refuses it (what it
    /// does not do is refused by name, never silently dropped). Only the
    /// shape is checked here; subnets against other networks are the
    /// allocator's (`shoal_manager::allocator::check_network`).
    pub fn to_spec(&self) -> Result<NetworkSpec, String> {
        if self.name.is_empty() {
            return Err("network name must not be empty".into());
        }
        if self.config_only {
            return Err("ConfigOnly networks are not supported: Shoal has swarm-scoped overlay networks only".into());
        }
        if let Some(from) = self.config_from.as_ref().filter(|f| !f.network.is_empty()) {
            return Err(format!(
                "ConfigFrom is not supported (network {:?}): Shoal has no config-only networks; give --subnet/--gateway directly",
                from.network
            ));
        }
        let driver = if self.driver.is_empty() { OVERLAY_DRIVER } else { self.driver.as_str() };
        if driver != OVERLAY_DRIVER {
            return Err(format!(
                "network driver {driver:?} is not supported: Shoal has swarm-scoped overlay networks only (use -d overlay)"
            ));
        }
        if !self.scope.is_empty() && self.scope != "swarm" {
            return Err(format!("network scope {:?} is not supported: overlay networks are swarm-scoped", self.scope));
        }
        if self.enable_ipv6 {
            return Err("IPv6 is not supported on Shoal's overlay networks yet".into());
        }
        if self.ingress && self.attachable {
            return Err("ingress network cannot be attachable".into());
        }
        let ipam = match &self.ipam {
            None => None,
            Some(ipam) => {
                if !ipam.driver.is_empty() && ipam.driver != DEFAULT_IPAM_DRIVER {
                    return Err(format!("IPAM driver {:?} is not supported: only the default IPAM driver is", ipam.driver));
                }
                if ipam.config.len() > 1 {
                    return Err("only one IPAM configuration (one --subnet) per network is supported".into());
                }
                Some(IpamOptions {
                    driver: Driver { name: DEFAULT_IPAM_DRIVER.into(), options: ipam.options.clone() },
                    configs: ipam
                        .config
                        .iter()
                        .map(|c| IpamConfig {
                            subnet: c.subnet.clone(),
                            range: c.ip_range.clone(),
                            gateway: c.gateway.clone(),
                            auxiliary_addresses: c.auxiliary_addresses.clone(),
                        })
                        .collect(),
                })
            }
        };
        Ok(NetworkSpec {
            name: self.name.clone(),
            labels: self.labels.clone(),
            driver_configuration: Some(Driver { name: OVERLAY_DRIVER.into(), options: self.options.clone() }),
            ipv6_enabled: false,
            internal: self.internal,
            attachable: self.attachable,
            ingress: self.ingress,
            ipam_options: ipam,
            config_from: None,
            scope: "swarm".into(),
        })
    }
}

/// The spec of the `ingress` network `swarm init` creates: Docker's name,
/// subnet and gateway (the address pool then skips 10.0.0.0/24).
pub fn ingress_spec() -> NetworkSpec {
    NetworkSpec {
        name: INGRESS_NAME.into(),
        driver_configuration: Some(Driver { name: OVERLAY_DRIVER.into(), ..Default::default() }),
        ingress: true,
        ipam_options: Some(IpamOptions {
            driver: Driver { name: DEFAULT_IPAM_DRIVER.into(), ..Default::default() },
            configs: vec![IpamConfig { subnet: INGRESS_SUBNET.into(), gateway: INGRESS_GATEWAY.into(), ..Default::default() }],
        }),
        scope: "swarm".into(),
        ..Default::default()
    }
}

/// What `GET /networks/{id}` answers for a swarm network (Docker's
/// `NetworkResource`, as `docker network inspect` prints it on a manager).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkResource {
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default, rename = "Id", deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub created: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub scope: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub driver: String,
    #[serde(default, rename = "EnableIPv6", deserialize_with = "null_as_default")]
    pub enable_ipv6: bool,
    #[serde(default, rename = "IPAM", deserialize_with = "null_as_default")]
    pub ipam: Ipam,
    #[serde(default, deserialize_with = "null_as_default")]
    pub internal: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub attachable: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub ingress: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub config_from: ConfigReference,
    #[serde(default, deserialize_with = "null_as_default")]
    pub config_only: bool,
    /// Endpoints on this node, by container ID (filled by the caller where
    /// Docker shows them; empty on a manager without tasks on the network).
    #[serde(default, deserialize_with = "null_as_default")]
    pub containers: BTreeMap<String, EndpointResource>,
    /// Driver options, with the VXLAN ID once allocated.
    #[serde(default, deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    /// The nodes that have the network (left out when none, as Docker does).
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_default")]
    pub peers: Vec<PeerInfo>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointResource {
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default, rename = "EndpointID", deserialize_with = "null_as_default")]
    pub endpoint_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub mac_address: String,
    #[serde(default, rename = "IPv4Address", deserialize_with = "null_as_default")]
    pub ipv4_address: String,
    #[serde(default, rename = "IPv6Address", deserialize_with = "null_as_default")]
    pub ipv6_address: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PeerInfo {
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default, rename = "IP", deserialize_with = "null_as_default")]
    pub ip: String,
}

impl NetworkResource {
    /// The inspect shape of a swarm network, as Docker's daemon converts
    /// it: IPAM and options from the allocation (the spec's until then),
    /// driver `overlay`, scope `swarm`. `Containers` and `Peers` are left
    /// for the caller, which knows the node.
    pub fn from_swarm(n: &Network) -> NetworkResource {
        let ipam_source = n.ipam_options.as_ref().or(n.spec.ipam_options.as_ref());
        let ipam = match ipam_source {
            Some(o) => Ipam {
                driver: if o.driver.name.is_empty() { DEFAULT_IPAM_DRIVER.into() } else { o.driver.name.clone() },
                options: o.driver.options.clone(),
                config: o
                    .configs
                    .iter()
                    .map(|c| IpamPoolConfig {
                        subnet: c.subnet.clone(),
                        ip_range: c.range.clone(),
                        gateway: c.gateway.clone(),
                        auxiliary_addresses: c.auxiliary_addresses.clone(),
                    })
                    .collect(),
            },
            None => Ipam { driver: DEFAULT_IPAM_DRIVER.into(), ..Default::default() },
        };
        let (driver, options) = match (&n.driver_state, &n.spec.driver_configuration) {
            (Some(d), _) => (d.name.clone(), d.options.clone()),
            (None, Some(d)) => (d.name.clone(), d.options.clone()),
            (None, None) => (OVERLAY_DRIVER.to_string(), BTreeMap::new()),
        };
        NetworkResource {
            name: n.spec.name.clone(),
            id: n.id.clone(),
            created: n.created_at.clone(),
            scope: "swarm".into(),
            driver: if driver.is_empty() { OVERLAY_DRIVER.into() } else { driver },
            enable_ipv6: n.spec.ipv6_enabled,
            ipam,
            internal: n.spec.internal,
            attachable: n.spec.attachable,
            ingress: n.spec.ingress,
            config_from: n.spec.config_from.clone().unwrap_or_default(),
            config_only: false,
            containers: BTreeMap::new(),
            options,
            labels: n.spec.labels.clone(),
            peers: Vec::new(),
        }
    }
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

    #[test]
    fn create_request_with_nulls_becomes_a_swarm_spec() {
        let req: NetworkCreateRequest = serde_json::from_value(json!({
            "Name": "appnet", "CheckDuplicate": null, "Driver": "overlay", "Scope": null,
            "Internal": false, "Attachable": true, "Ingress": null, "ConfigOnly": null, "ConfigFrom": null,
            "IPAM": {"Driver": "default", "Options": null, "Config": [
                {"Subnet": "10.9.0.0/24", "IPRange": "10.9.0.128/25", "Gateway": "10.9.0.254", "AuxiliaryAddresses": {"router": "10.9.0.2"}}
            ]},
            "EnableIPv6": null, "Options": {"encrypted": ""}, "Labels": null
        }))
        .unwrap();
        let spec = req.to_spec().unwrap();
        assert_eq!(spec.name, "appnet");
        assert_eq!(spec.scope, "swarm");
        assert!(spec.attachable && !spec.ingress);
        let d = spec.driver_configuration.as_ref().unwrap();
        assert_eq!(d.name, "overlay");
        assert!(d.options.contains_key("encrypted"));
        let c = &spec.ipam_options.as_ref().unwrap().configs[0];
        assert_eq!((c.subnet.as_str(), c.range.as_str(), c.gateway.as_str()), ("10.9.0.0/24", "10.9.0.128/25", "10.9.0.254"));
        assert_eq!(c.auxiliary_addresses["router"], "10.9.0.2");
        // Everything absent: an overlay from the pool.
        let bare: NetworkCreateRequest = serde_json::from_value(json!({"Name": "n", "IPAM": null, "Options": null})).unwrap();
        let spec = bare.to_spec().unwrap();
        assert!(spec.ipam_options.is_none());
        assert_eq!(spec.driver_configuration.unwrap().name, "overlay");
    }

    #[test]
    fn what_shoal_does_not_do_is_refused_by_name() {
        let refuse = |v: serde_json::Value| serde_json::from_value::<NetworkCreateRequest>(v).unwrap().to_spec().unwrap_err();
        assert!(refuse(json!({"Name": "n", "ConfigOnly": true})).starts_with("ConfigOnly networks are not supported"));
        assert!(refuse(json!({"Name": "n", "ConfigFrom": {"Network": "base"}})).starts_with("ConfigFrom is not supported"));
        assert!(refuse(json!({"Name": "n", "Driver": "bridge"})).contains("\"bridge\" is not supported"));
        assert!(refuse(json!({"Name": "n", "Scope": "local"})).contains("scope"));
        assert!(refuse(json!({"Name": "n", "EnableIPv6": true})).contains("IPv6"));
        assert_eq!(refuse(json!({"Name": "n", "Ingress": true, "Attachable": true})), "ingress network cannot be attachable");
        assert!(refuse(json!({"Name": "n", "IPAM": {"Driver": "dhcp"}})).contains("IPAM driver"));
        assert!(
            refuse(json!({"Name": "n", "IPAM": {"Config": [{"Subnet": "10.1.0.0/24"}, {"Subnet": "10.2.0.0/24"}]}})).contains("one IPAM")
        );
        assert!(refuse(json!({"Name": ""})).contains("name"));
    }

    #[test]
    fn inspect_shape_of_an_allocated_overlay() {
        let mut spec = NetworkCreateRequest { name: "appnet".into(), ..Default::default() }.to_spec().unwrap();
        spec.labels.insert("team".into(), "a".into());
        let n = Network {
            id: "abc".into(),
            created_at: "2026-01-02T03:04:05.000000006Z".into(),
            spec,
            driver_state: Some(Driver { name: "overlay".into(), options: [(VXLAN_ID_OPTION.to_string(), "4097".to_string())].into() }),
            ipam_options: Some(IpamOptions {
                driver: Driver { name: "default".into(), ..Default::default() },
                configs: vec![IpamConfig { subnet: "10.0.1.0/24".into(), gateway: "10.0.1.1".into(), ..Default::default() }],
            }),
            ..Default::default()
        };
        assert_eq!(n.vxlan_id(), Some(4097));
        let v = serde_json::to_value(NetworkResource::from_swarm(&n)).unwrap();
        assert_eq!(v["Name"], "appnet");
        assert_eq!(v["Id"], "abc");
        assert_eq!(v["Created"], "2026-01-02T03:04:05.000000006Z");
        assert_eq!(v["Scope"], "swarm");
        assert_eq!(v["Driver"], "overlay");
        assert_eq!(v["EnableIPv6"], false);
        assert_eq!(v["IPAM"], json!({"Driver": "default", "Options": {}, "Config": [{"Subnet": "10.0.1.0/24", "Gateway": "10.0.1.1"}]}));
        assert_eq!(v["ConfigFrom"], json!({"Network": ""}));
        assert_eq!(v["ConfigOnly"], false);
        assert_eq!(v["Containers"], json!({}));
        assert_eq!(v["Options"], json!({"com.docker.network.driver.overlay.vxlanid_list": "4097"}));
        assert_eq!(v["Labels"], json!({"team": "a"}));
        assert!(v.get("Peers").is_none());
        let back: NetworkResource = serde_json::from_value(v).unwrap();
        assert_eq!(back.ipam.config[0].subnet, "10.0.1.0/24");
        // Docker's own answer, with its nulls, parses.
        let docker: NetworkResource = serde_json::from_value(json!({
            "Name": "ingress", "Id": "x", "Created": "t", "Scope": "swarm", "Driver": "overlay", "EnableIPv6": false,
            "IPAM": {"Driver": "default", "Options": null, "Config": [{"Subnet": "10.0.0.0/24", "Gateway": "10.0.0.1"}]},
            "Internal": false, "Attachable": false, "Ingress": true, "ConfigFrom": {"Network": ""}, "ConfigOnly": false,
            "Containers": null, "Options": {"com.docker.network.driver.overlay.vxlanid_list": "4096"}, "Labels": null,
            "Peers": [{"Name": "node1", "IP": "192.168.1.2"}]
        }))
        .unwrap();
        assert!(docker.ingress);
        assert_eq!(docker.peers[0].ip, "192.168.1.2");
    }

    #[test]
    fn ingress_spec_is_dockers() {
        let s = ingress_spec();
        assert!(s.ingress);
        assert_eq!(s.name, "ingress");
        assert_eq!(s.ipam_options.unwrap().configs[0].subnet, "10.0.0.0/24");
    }

    #[test]
    fn service_endpoint_and_task_attachments_tolerate_nulls() {
        let svc: crate::service::Service = serde_json::from_value(json!({
            "ID": "s1",
            "Endpoint": {"Spec": {"Mode": "vip", "Ports": null}, "Ports": [
                {"Name": null, "Protocol": "udp", "TargetPort": 53, "PublishedPort": 30000, "PublishMode": "ingress"}
            ], "VirtualIPs": [{"NetworkID": "n1", "Addr": "10.0.1.2/24"}]}
        }))
        .unwrap();
        assert_eq!(svc.endpoint.ports[0].protocol, crate::service::PortProtocol::Udp);
        assert_eq!(svc.endpoint.virtual_ips[0].addr, "10.0.1.2/24");
        let svc: crate::service::Service = serde_json::from_value(json!({"ID": "s1", "Endpoint": null})).unwrap();
        assert!(svc.endpoint.ports.is_empty());
        let a: NetworkAttachment =
            serde_json::from_value(json!({"Network": {"ID": "n", "Spec": null, "DriverState": null}, "Addresses": null})).unwrap();
        assert!(a.addresses.is_empty());
    }
}
