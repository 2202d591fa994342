//! Property tests ("fuzzing" with proptest, see docs/fuzzing.md) of the
//! Engine API's request bodies and query parameters: any JSON decodes as
//! each spec the API accepts, or is refused, without panicking; what
//! decodes encodes and decodes again to the same value; Docker's `filters`
//! parameter and the base64 of secret data take any text.

use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::filters::Filters;
use crate::node::NodeSpec;
use crate::secret::{ConfigSpec, SecretSpec};
use crate::service::ServiceSpec;
use crate::swarm::{InitRequest, JoinRequest, SwarmSpec};

/// `PROPTEST_CASES` overrides the default count (for longer runs); no
/// failure files are written (CI must stay deterministic).
fn config(default_cases: u32) -> ProptestConfig {
    let base = ProptestConfig::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() { base.cases } else { default_cases };
    ProptestConfig { cases, failure_persistence: None, ..base }
}

/// Field names of the API's objects (PascalCase, and the seccomp profile's
/// camelCase), so that generated objects reach past the top level.
const FIELDS: &[&str] = &[
    "Accepted",
    "Action",
    "Active",
    "Addr",
    "Addresses",
    "AdvertiseAddr",
    "Aliases",
    "Any",
    "AppArmor",
    "ArchMap",
    "Architecture",
    "Architectures",
    "Args",
    "AutoLockManagers",
    "Availability",
    "BindOptions",
    "CAConfig",
    "CapabilityAdd",
    "CapabilityDrop",
    "Command",
    "Condition",
    "Config",
    "ConfigID",
    "ConfigName",
    "Configs",
    "Consistency",
    "Constraints",
    "ContainerSpec",
    "CredentialSpec",
    "DNSConfig",
    "Data",
    "DataPathAddr",
    "DataPathPort",
    "DefaultAddrPool",
    "Delay",
    "Dir",
    "Disable",
    "Discrete",
    "DiscreteResourceSpec",
    "Dispatcher",
    "Driver",
    "DriverConfig",
    "ElectionTick",
    "EncryptionConfig",
    "EndpointSpec",
    "Env",
    "ExternalCAs",
    "FailureAction",
    "File",
    "ForceNewCluster",
    "ForceRotate",
    "ForceUpdate",
    "GID",
    "GenericResources",
    "Global",
    "GlobalJob",
    "Groups",
    "Hard",
    "Healthcheck",
    "HeartbeatPeriod",
    "HeartbeatTick",
    "Hostname",
    "Hosts",
    "Image",
    "Init",
    "Interval",
    "JoinToken",
    "Kind",
    "Labels",
    "Limits",
    "ListenAddr",
    "LogDriver",
    "LogEntriesForSlowFollowers",
    "MaxAttempts",
    "MaxConcurrent",
    "MaxFailureRatio",
    "MaxReplicas",
    "MemoryBytes",
    "Mode",
    "Monitor",
    "Mounts",
    "Name",
    "NamedResourceSpec",
    "Nameservers",
    "NanoCPUs",
    "Networks",
    "NoCopy",
    "NoNewPrivileges",
    "NodeCertExpiry",
    "OpenStdin",
    "Options",
    "Orchestration",
    "Order",
    "Parallelism",
    "Pids",
    "Placement",
    "Platforms",
    "Ports",
    "Preferences",
    "Privileges",
    "Profile",
    "Propagation",
    "Protocol",
    "PublishMode",
    "PublishedPort",
    "Raft",
    "ReadOnly",
    "RemoteAddrs",
    "Replicas",
    "Replicated",
    "ReplicatedJob",
    "Reservations",
    "Resources",
    "RestartPolicy",
    "Retries",
    "Role",
    "RollbackConfig",
    "Runtime",
    "SELinuxContext",
    "Seccomp",
    "SecretID",
    "SecretName",
    "Secrets",
    "Search",
    "SigningCACert",
    "SigningCAKey",
    "SnapshotInterval",
    "Soft",
    "Source",
    "Spec",
    "Spread",
    "SpreadDescriptor",
    "StartInterval",
    "StartPeriod",
    "StopGracePeriod",
    "StopSignal",
    "SubnetSize",
    "Subpath",
    "Sysctls",
    "Target",
    "TargetPort",
    "TaskHistoryRetentionLimit",
    "TaskTemplate",
    "Templating",
    "Test",
    "Timeout",
    "TmpfsOptions",
    "TotalCompletions",
    "TTY",
    "Type",
    "UID",
    "Ulimits",
    "UpdateConfig",
    "User",
    "Value",
    "VolumeOptions",
    "Window",
    "defaultAction",
    "defaultErrnoRet",
    "architectures",
    "archMap",
    "syscalls",
    "names",
    "action",
    "args",
    "index",
    "value",
    "valueTwo",
    "op",
    "includes",
    "excludes",
    "caps",
    "minKernel",
    "flags",
    "listenerPath",
    "errnoRet",
];

/// Values the API gives meaning to (enums, durations as text, paths).
const WORDS: &[&str] = &[
    "",
    "replicated",
    "global",
    "manager",
    "worker",
    "active",
    "pause",
    "drain",
    "none",
    "on-failure",
    "any",
    "continue",
    "rollback",
    "start-first",
    "stop-first",
    "tcp",
    "udp",
    "sctp",
    "ingress",
    "host",
    "vip",
    "dnsrr",
    "bind",
    "volume",
    "tmpfs",
    "npipe",
    "cluster",
    "/",
    "/etc",
    "../..",
    "busybox:latest",
    "node.role==manager",
    "node.labels.zone",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_ALLOW",
    "SCMP_ARCH_X86_64",
    "SCMP_CMP_EQ",
    "CAP_SYS_ADMIN",
    "4.8",
    "x.y",
    "unconfined",
    "default",
    "c3VwZXI=",
    "not base64!",
    "SWMTKN-1-abc-def",
    "10.0.0.1:2377",
    "10.0.0.0/8",
    "NONE",
    "CMD-SHELL",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![Just(0i64), Just(-1), Just(1), Just(u32::MAX as i64 + 1), Just(i64::MIN)].prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        prop::sample::select(WORDS).prop_map(Value::from),
        ".{0,10}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![4 => prop::sample::select(FIELDS).prop_map(str::to_string), 1 => ".{0,6}"],
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A request body: an object with the API's field names (the usual case),
/// any JSON value, or any bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => mutated(),
        3 => prop::collection::btree_map(prop::sample::select(FIELDS).prop_map(str::to_string), json_value(), 0..8)
            .prop_map(|m| serde_json::to_vec(&Value::Object(m.into_iter().collect())).unwrap()),
        1 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => prop::collection::vec(any::<u8>(), 0..48),
    ]
}

/// Realistic bodies in Docker's shape, which `mutated` then damages, so
/// that nested specs are reached with values both right and wrong.
const SEEDS: &[&str] = &[
    r#"{"Name":"web","Labels":{"a":"b"},"TaskTemplate":{"ContainerSpec":{"Image":"busybox:latest","Command":["sh"],
       "Args":["-c","sleep 1"],"Env":["A=1"],"Dir":"/","User":"1000:1000","Groups":["wheel"],"Init":true,
       "StopGracePeriod":10000000000,"TTY":false,"ReadOnly":true,"Hostname":"h",
       "Mounts":[{"Type":"volume","Source":"v","Target":"/data","ReadOnly":false,
         "VolumeOptions":{"NoCopy":true,"Labels":{"x":"y"},"Subpath":"sub","DriverConfig":{"Name":"local","Options":{"o":"p"}}}},
         {"Type":"bind","Source":"/srv","Target":"/srv","BindOptions":{"Propagation":"rprivate","NonRecursive":true}},
         {"Type":"tmpfs","Target":"/tmp","TmpfsOptions":{"SizeBytes":1048576,"Mode":1023}}],
       "Healthcheck":{"Test":["CMD-SHELL","true"],"Interval":1000000000,"Timeout":1000000000,"Retries":3,"StartPeriod":0},
       "Hosts":["10.0.0.1 db"],"Sysctls":{"net.core.somaxconn":"1024"},"CapabilityAdd":["CAP_NET_ADMIN"],"CapabilityDrop":["ALL"],
       "Secrets":[{"File":{"Name":"pw","UID":"0","GID":"0","Mode":292},"SecretID":"s1","SecretName":"pw"}],
       "Configs":[{"File":{"Name":"/etc/app.conf","UID":"0","GID":"0","Mode":292},"ConfigID":"c1","ConfigName":"conf"},{"Runtime":{},"ConfigName":"r"}],
       "Ulimits":[{"Name":"nofile","Hard":1024,"Soft":1024}],"DNSConfig":{"Nameservers":["8.8.8.8"],"Search":["x"],"Options":["ndots:1"]},
       "Privileges":{"NoNewPrivileges":true,"Seccomp":{"Mode":"custom","Profile":"e30="},"AppArmor":{"Mode":"default"},
         "SELinuxContext":{"Disable":false,"User":"u","Role":"r","Type":"t","Level":"l"}}},
     "Resources":{"Limits":{"NanoCPUs":1000000000,"MemoryBytes":104857600,"Pids":100},
       "Reservations":{"NanoCPUs":1,"MemoryBytes":1,"GenericResources":[{"DiscreteResourceSpec":{"Kind":"gpu","Value":1}},{"NamedResourceSpec":{"Kind":"ssd","Value":"a"}}]}},
     "RestartPolicy":{"Condition":"on-failure","Delay":5000000000,"MaxAttempts":3,"Window":0},
     "Placement":{"Constraints":["node.role==manager"],"Preferences":[{"Spread":{"SpreadDescriptor":"node.labels.zone"}}],"MaxReplicas":2,
       "Platforms":[{"Architecture":"amd64","OS":"linux"}]},
     "Networks":[{"Target":"net","Aliases":["a"]}],"LogDriver":{"Name":"json-file","Options":{}},"ForceUpdate":1,"Runtime":"container"},
   "Mode":{"Replicated":{"Replicas":3}},
   "UpdateConfig":{"Parallelism":2,"Delay":0,"FailureAction":"rollback","Monitor":5000000000,"MaxFailureRatio":0.5,"Order":"start-first"},
   "RollbackConfig":{"Parallelism":1,"FailureAction":"pause","Order":"stop-first"},
   "EndpointSpec":{"Mode":"vip","Ports":[{"Name":"http","Protocol":"tcp","TargetPort":80,"PublishedPort":8080,"PublishMode":"ingress"}]}}"#,
    r#"{"Mode":{"ReplicatedJob":{"MaxConcurrent":2,"TotalCompletions":4}},"TaskTemplate":{"ContainerSpec":{"Image":"x"}}}"#,
    r#"{"Mode":{"Global":{}},"TaskTemplate":{"ContainerSpec":{"Image":"x"}}}"#,
    r#"{"Mode":{"GlobalJob":{}}}"#,
    r#"{"Name":"n","Labels":{"zone":"a"},"Role":"manager","Availability":"drain"}"#,
    r#"{"Name":"pw","Labels":{},"Data":"c2VjcmV0","Driver":{"Name":"d"},"Templating":{"Name":"golang"}}"#,
    r#"{"Name":"default","Labels":{},"Orchestration":{"TaskHistoryRetentionLimit":5},
       "Raft":{"SnapshotInterval":10000,"KeepOldSnapshots":0,"LogEntriesForSlowFollowers":500,"ElectionTick":10,"HeartbeatTick":1},
       "Dispatcher":{"HeartbeatPeriod":5000000000},
       "CAConfig":{"NodeCertExpiry":7776000000000000,"ExternalCAs":[{"Protocol":"cfssl","URL":"https://ca"}],"SigningCACert":"","SigningCAKey":"","ForceRotate":1},
       "EncryptionConfig":{"AutoLockManagers":false},"TaskDefaults":{"LogDriver":{"Name":"json-file"}}}"#,
    r#"{"ListenAddr":"0.0.0.0:2377","AdvertiseAddr":"10.0.0.1","DataPathPort":4789,"DefaultAddrPool":["10.0.0.0/8"],"SubnetSize":24,
       "ForceNewCluster":false,"Spec":{"Orchestration":{}},"RemoteAddrs":["10.0.0.2:2377"],"JoinToken":"SWMTKN-1-a-b"}"#,
    r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"architectures":["SCMP_ARCH_X86_64"],
       "syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"valueTwo":0,"op":"SCMP_CMP_EQ"}],
       "includes":{"caps":["CAP_SYS_ADMIN"],"minKernel":"4.8"},"excludes":{}}]}"#,
];

/// Every place in a JSON tree, as the path of keys and indexes to it.
fn places(v: &Value, here: &mut Vec<Result<String, usize>>, out: &mut Vec<Vec<Result<String, usize>>>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                here.push(Ok(k.clone()));
                places(c, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                here.push(Err(i));
                places(c, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn at<'a>(v: &'a mut Value, path: &[Result<String, usize>]) -> &'a mut Value {
    path.iter().fold(v, |v, step| match step {
        Ok(k) => &mut v[k.as_str()],
        Err(i) => &mut v[*i],
    })
}

/// A seed body with a few of its places replaced by other values, nulled,
/// removed, given a new field, or a key spelled in lower case.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(SEEDS),
        prop::collection::vec((any::<prop::sample::Index>(), 0u8..5, json_value(), prop::sample::select(FIELDS)), 0..4),
    )
        .prop_map(|(seed, edits)| {
            let mut doc: Value = serde_json::from_str(seed).unwrap();
            for (which, how, value, field) in edits {
                let mut all = Vec::new();
                places(&doc, &mut Vec::new(), &mut all);
                let path = which.get(&all).clone();
                match (how, path.split_last()) {
                    (0, Some((last, parent))) => match at(&mut doc, parent) {
                        Value::Object(m) => {
                            m.remove(last.as_ref().unwrap());
                        }
                        Value::Array(a) => {
                            a.remove(*last.as_ref().unwrap_err());
                        }
                        _ => {}
                    },
                    (1, _) => *at(&mut doc, &path) = Value::Null,
                    // Another spelling of a key, as Go's decoder matches
                    // field names ignoring case.
                    (4, Some((Ok(key), parent))) => {
                        if let Value::Object(m) = at(&mut doc, parent) {
                            if let Some(v) = m.remove(key) {
                                m.insert(key.to_lowercase(), v);
                            }
                        }
                    }
                    (2, _) => {
                        if let Value::Object(m) = at(&mut doc, &path) {
                            m.insert(field.to_string(), value);
                        }
                    }
                    _ => *at(&mut doc, &path) = value,
                }
            }
            serde_json::to_vec(&doc).unwrap()
        })
}

/// Decodes a body as the daemon does (`Call::json`), and checks that what
/// decodes encodes and decodes again to an equal value.
fn decode_round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(body: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(v) = crate::lenient::from_slice::<T>(body) {
        let text = serde_json::to_vec(&v).map_err(|e| TestCaseError::fail(format!("{v:?} does not encode: {e}")))?;
        let back: T = serde_json::from_slice(&text)
            .map_err(|e| TestCaseError::fail(format!("{} does not decode again: {e}", String::from_utf8_lossy(&text))))?;
        if back != v {
            // Free-form JSON inside a spec (e.g. TaskDefaults) may hold
            // floats, which serde_json (without `float_roundtrip`) can read
            // back an ulp off: equal but for that.
            let (a, b) = (serde_json::to_value(&back).unwrap(), serde_json::to_value(&v).unwrap());
            prop_assert!(same_json(&a, &b), "{:?} became {:?}", v, back);
        }
    }
    Ok(())
}

/// Equal JSON, but for floats an ulp apart.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x - y).abs() <= 1e-15 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w))),
        _ => a == b,
    }
}

/// What `/swarm/update` does with a body: decode it as `Call::json` does,
/// fill the zero values.
fn swarm_update(body: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(spec) = crate::lenient::from_slice::<SwarmSpec>(body) {
        let spec = SwarmSpec::from_request(Some(spec));
        decode_round_trip::<SwarmSpec>(&serde_json::to_vec(&spec).unwrap())?;
    }
    Ok(())
}

/// A `filters` query value: JSON in either of Docker's encodings, or text.
fn filters_text() -> impl Strategy<Value = String> {
    let key = prop_oneof![prop::sample::select(vec!["role", "name", "label", "node.label", "id"]).prop_map(str::to_string), ".{0,6}"];
    let entry = prop_oneof![
        prop::collection::btree_map(".{0,8}", prop_oneof![Just(Value::Bool(true)), json_value()], 0..3)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        prop::collection::vec(json_value(), 0..3).prop_map(Value::Array),
        json_value(),
    ];
    prop_oneof![
        prop::collection::btree_map(key, entry, 0..4).prop_map(|m| Value::Object(m.into_iter().collect()).to_string()),
        json_value().prop_map(|v| v.to_string()),
        ".{0,40}",
        "[{}\\[\\]\":,a-z=]{0,40}",
    ]
}

proptest! {
    #![proptest_config(config(384))]

    #[test]
    fn service_specs_decode_from_any_body(body in body()) {
        decode_round_trip::<ServiceSpec>(&body)?;
    }

    #[test]
    fn node_swarm_and_secret_specs_decode_from_any_body(body in body()) {
        decode_round_trip::<NodeSpec>(&body)?;
        decode_round_trip::<SecretSpec>(&body)?;
        decode_round_trip::<ConfigSpec>(&body)?;
        swarm_update(&body)?;
        let _ = crate::lenient::from_slice::<InitRequest>(&body);
        let _ = crate::lenient::from_slice::<JoinRequest>(&body);
        let _ = crate::seccomp::Profile::parse(&body);
    }

    /// Any `filters` text parses or is refused with Docker's 400; what
    /// parses holds only allowed keys.
    #[test]
    fn filters_parse_from_any_text(text in filters_text()) {
        let allowed = ["role", "name", "label", "node.label"];
        match Filters::parse(Some(&text), &allowed) {
            Ok(f) => {
                for k in ["id", ""] {
                    prop_assert!(f.get(k).is_empty());
                }
                let labels = [("zone".to_string(), "east".to_string())].into_iter().collect();
                let _ = f.labels_match("label", &labels);
            }
            Err(e) => prop_assert_eq!(e.status, 400),
        }
    }

    /// Secret and config data are base64 in request bodies: any text
    /// decodes or is refused, and encoding is the inverse of decoding.
    #[test]
    fn base64_takes_any_text(text in prop_oneof!["[A-Za-z0-9+/=_\\-\r\n]{0,24}", ".{0,24}"], data in prop::collection::vec(any::<u8>(), 0..48)) {
        let _ = crate::base64::decode(&text);
        let _ = crate::base64::decode_any(&text);
        prop_assert_eq!(crate::base64::decode(&crate::base64::encode(&data)).unwrap(), data.clone());
        prop_assert_eq!(crate::base64::decode_any(&crate::base64::encode_url(&data)).unwrap(), data);
    }
}
