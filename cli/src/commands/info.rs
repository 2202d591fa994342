//! `shoal info`: docker's `system info` layout (Client and Server
//! sections), or `--format` over the info object.

use clap::Args;

use super::{go_arch, Env, CLIENT_VERSION};
use crate::client::API_VERSION;
use crate::duration::human_duration;
use crate::error::{CliError, CliResult};
use crate::format::{bytes_size, parse_template, JSON_FORMAT, JSON_FORMAT_KEY};
use serde_json::Value;

use crate::json::{self, JsonExt};

#[derive(Args, Debug, Default)]
pub struct InfoArgs {
    /// Format output using a custom template: 'json', 'TEMPLATE'
    #[arg(short, long)]
    pub format: Option<String>,
}

/// The client half of `info` (docker's `clientInfo`).
pub fn client_info() -> Value {
    json::object([
        ("Debug", Value::Bool(false)),
        ("Version", Value::from(CLIENT_VERSION)),
        ("ApiVersion", Value::from(API_VERSION)),
        ("DefaultAPIVersion", Value::from(API_VERSION)),
        ("Os", Value::from(std::env::consts::OS)),
        ("Arch", Value::from(go_arch())),
        ("Context", Value::from("default")),
        ("Plugins", Value::Array(Vec::new())),
        ("Warnings", Value::Null),
    ])
}

pub fn run(env: &mut Env, args: InfoArgs) -> CliResult {
    let format = args.format.unwrap_or_default();
    if format.is_empty() {
        return pretty(env);
    }
    let format = if format == JSON_FORMAT_KEY { JSON_FORMAT.to_string() } else { format };
    let tmpl = parse_template(&format).map_err(|e| e.with_status(64))?;
    let mut data = match env.client.get("/info") {
        Ok(info) => info,
        Err(e) if e.http_status.is_some() => {
            env.eprintln(&e.message);
            json::object([("ServerErrors", Value::from(vec![e.message]))])
        }
        Err(e) => return Err(e),
    };
    data.set("ClientInfo", client_info());
    let out = tmpl.execute(&data).map_err(|e| CliError::new(format!("template: {e}")))?;
    env.println(&out)
}

fn pretty(env: &mut Env) -> CliResult {
    let mut s = String::new();
    s.push_str("Client:\n");
    s.push_str(&format!(" Version:    {CLIENT_VERSION}\n"));
    s.push_str(" Context:    default\n");
    s.push_str(" Debug Mode: false\n");
    s.push_str("\nServer:\n");
    let info = env.client.get("/info");
    match info {
        Ok(info) => {
            s.push_str(&server_info(&info));
            env.print(&s)?;
            for w in info["Warnings"].items() {
                env.eprintln(w.str());
            }
            Ok(())
        }
        Err(e) => {
            env.print(&s)?;
            if e.http_status.is_some() {
                env.eprintln(&format!("ERROR: {}", e.message));
                Err(CliError::new("errors pretty printing info"))
            } else {
                Err(e)
            }
        }
    }
}

/// `fmt.Println(label, value)`.
fn line(s: &mut String, label: &str, value: &str) {
    s.push_str(label);
    s.push(' ');
    s.push_str(value);
    s.push('\n');
}

fn line_non_empty(s: &mut String, label: &str, value: &str) {
    if !value.is_empty() {
        line(s, label, value);
    }
}

/// A Go-typed number: absent means 0.
fn num(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        _ => "0".into(),
    }
}

fn boolean(v: &Value) -> &'static str {
    if v.bool() {
        "true"
    } else {
        "false"
    }
}

fn strings(v: &Value) -> Vec<&str> {
    v.items().iter().map(|x| x.str()).collect()
}

/// The server section, following docker's `prettyPrintServerInfo`.
pub fn server_info(info: &Value) -> String {
    let mut s = String::new();
    line(&mut s, " Containers:", &num(&info["Containers"]));
    line(&mut s, "  Running:", &num(&info["ContainersRunning"]));
    line(&mut s, "  Paused:", &num(&info["ContainersPaused"]));
    line(&mut s, "  Stopped:", &num(&info["ContainersStopped"]));
    line(&mut s, " Images:", &num(&info["Images"]));
    line_non_empty(&mut s, " Server Version:", info["ServerVersion"].str());
    line_non_empty(&mut s, " Storage Driver:", info["Driver"].str());
    for pair in info["DriverStatus"].items() {
        let p = strings(pair);
        if p.len() >= 2 {
            s.push_str(&format!("  {}: {}\n", p[0], p[1]));
        }
    }
    for pair in info["SystemStatus"].items() {
        let p = strings(pair);
        if p.len() >= 2 {
            s.push_str(&format!(" {}: {}\n", p[0], p[1]));
        }
    }
    line_non_empty(&mut s, " Logging Driver:", info["LoggingDriver"].str());
    line_non_empty(&mut s, " Cgroup Driver:", info["CgroupDriver"].str());
    line_non_empty(&mut s, " Cgroup Version:", info["CgroupVersion"].str());
    let plugins = &info["Plugins"];
    s.push_str(" Plugins:\n");
    line(&mut s, "  Volume:", &strings(&plugins["Volume"]).join(" "));
    line(&mut s, "  Network:", &strings(&plugins["Network"]).join(" "));
    let authz = strings(&plugins["Authorization"]);
    if !authz.is_empty() {
        line(&mut s, "  Authorization:", &authz.join(" "));
    }
    line(&mut s, "  Log:", &strings(&plugins["Log"]).join(" "));
    let cdi = strings(&info["CDISpecDirs"]);
    if !cdi.is_empty() {
        s.push_str(" CDI spec directories:\n");
        for d in cdi {
            s.push_str(&format!("  {d}\n"));
        }
    }
    let devices = info["DiscoveredDevices"].items();
    if !devices.is_empty() {
        s.push_str(" Discovered Devices:\n");
        for d in devices {
            s.push_str(&format!("  {}: {}\n", d["Source"].str(), d["ID"].str()));
        }
    }
    let swarm = &info["Swarm"];
    line(&mut s, " Swarm:", swarm["LocalNodeState"].str());
    swarm_info(&mut s, swarm);

    let runtimes = info["Runtimes"].members();
    if !runtimes.is_empty() {
        let mut names: Vec<&str> = runtimes.iter().map(|(k, _)| k.as_str()).collect();
        names.sort();
        line(&mut s, " Runtimes:", &names.join(" "));
        line(&mut s, " Default Runtime:", info["DefaultRuntime"].str());
    }
    let os_type = info["OSType"].str();
    if os_type == "linux" {
        line(&mut s, " Init Binary:", info["InitBinary"].str());
        line(&mut s, " containerd version:", info.at(&["ContainerdCommit", "ID"]).str());
        line(&mut s, " runc version:", info.at(&["RuncCommit", "ID"]).str());
        line(&mut s, " init version:", info.at(&["InitCommit", "ID"]).str());
        let secopts = strings(&info["SecurityOptions"]);
        if !secopts.is_empty() {
            s.push_str(" Security Options:\n");
            for so in secopts {
                let mut name = "";
                let mut profile = None;
                for kv in so.split(',') {
                    match kv.split_once('=') {
                        Some(("name", v)) => name = v,
                        Some(("profile", v)) => profile = Some(v),
                        _ => {}
                    }
                }
                s.push_str(&format!("  {name}\n"));
                if let Some(p) = profile {
                    line(&mut s, "   Profile:", p);
                }
            }
        }
    }
    if os_type == "windows" {
        line(&mut s, " Default Isolation:", info["Isolation"].str());
    }
    line_non_empty(&mut s, " Kernel Version:", info["KernelVersion"].str());
    line_non_empty(&mut s, " Operating System:", info["OperatingSystem"].str());
    line_non_empty(&mut s, " OSType:", os_type);
    line_non_empty(&mut s, " Architecture:", info["Architecture"].str());
    line(&mut s, " CPUs:", &num(&info["NCPU"]));
    line(&mut s, " Total Memory:", &bytes_size(info["MemTotal"].as_f64().unwrap_or(0.0)));
    line_non_empty(&mut s, " Name:", info["Name"].str());
    line_non_empty(&mut s, " ID:", info["ID"].str());
    line(&mut s, " Docker Root Dir:", info["DockerRootDir"].str());
    line(&mut s, " Debug Mode:", boolean(&info["Debug"]));
    if info["Debug"].bool() {
        line(&mut s, "  File Descriptors:", &num(&info["NFd"]));
        line(&mut s, "  Goroutines:", &num(&info["NGoroutines"]));
        line(&mut s, "  System Time:", info["SystemTime"].str());
        line(&mut s, "  EventsListeners:", &num(&info["NEventsListener"]));
    }
    line_non_empty(&mut s, " HTTP Proxy:", info["HttpProxy"].str());
    line_non_empty(&mut s, " HTTPS Proxy:", info["HttpsProxy"].str());
    line_non_empty(&mut s, " No Proxy:", info["NoProxy"].str());
    let labels = strings(&info["Labels"]);
    if !labels.is_empty() {
        s.push_str(" Labels:\n");
        for l in labels {
            s.push_str(&format!("  {l}\n"));
        }
    }
    line(&mut s, " Experimental:", boolean(&info["ExperimentalBuild"]));
    let reg = &info["RegistryConfig"];
    let cidrs = strings(&reg["InsecureRegistryCIDRs"]);
    let index_configs = reg["IndexConfigs"].members();
    if !reg.is_null() && (!cidrs.is_empty() || !index_configs.is_empty()) {
        s.push_str(" Insecure Registries:\n");
        for (_, c) in index_configs {
            if !c["Secure"].bool() {
                s.push_str(&format!("  {}\n", c["Name"].str()));
            }
        }
        for c in cidrs {
            s.push_str(&format!("  {c}\n"));
        }
    }
    let mirrors = strings(&reg["Mirrors"]);
    if !mirrors.is_empty() {
        s.push_str(" Registry Mirrors:\n");
        for m in mirrors {
            s.push_str(&format!("  {m}\n"));
        }
    }
    line(&mut s, " Live Restore Enabled:", boolean(&info["LiveRestoreEnabled"]));
    line_non_empty(&mut s, " Product License:", info["ProductLicense"].str());
    let pools = info["DefaultAddressPools"].items();
    if !pools.is_empty() {
        s.push_str(" Default Address Pools:\n");
        for p in pools {
            s.push_str(&format!("   Base: {}, Size: {}\n", p["Base"].str(), num(&p["Size"])));
        }
    }
    let fw = &info["FirewallBackend"];
    if !fw.is_null() {
        line(&mut s, " Firewall Backend:", fw["Driver"].str());
        for pair in fw["Info"].items() {
            let p = strings(pair);
            if p.len() >= 2 {
                s.push_str(&format!("  {}: {}\n", p[0], p[1]));
            }
        }
    }
    let nri = &info["NRI"];
    if !nri.is_null() {
        s.push_str(" NRI:\n");
        for pair in nri["Info"].items() {
            let p = strings(pair);
            if p.len() >= 2 {
                s.push_str(&format!("  {}: {}\n", p[0], p[1]));
            }
        }
    }
    s.push('\n');
    s
}

fn swarm_info(s: &mut String, swarm: &Value) {
    let state = swarm["LocalNodeState"].str();
    if state == "inactive" || state == "locked" || state.is_empty() {
        return;
    }
    line(s, "  NodeID:", swarm["NodeID"].str());
    let error = swarm["Error"].str();
    if !error.is_empty() {
        line(s, "  Error:", error);
    }
    let control = swarm["ControlAvailable"].bool();
    line(s, "  Is Manager:", if control { "true" } else { "false" });
    let cluster = &swarm["Cluster"];
    if !cluster.is_null() && control && error.is_empty() && state != "error" {
        line(s, "  ClusterID:", cluster["ID"].str());
        line(s, "  Managers:", &num(&swarm["Managers"]));
        line(s, "  Nodes:", &num(&swarm["Nodes"]));
        if !cluster["DefaultAddrPool"].is_null() {
            let pools: String = strings(&cluster["DefaultAddrPool"]).iter().map(|p| format!("{p}  ")).collect();
            line(s, "  Default Address Pool:", &pools);
            line(s, "  SubnetSize:", &num(&cluster["SubnetSize"]));
        }
        if cluster["DataPathPort"].as_u64().unwrap_or(0) > 0 {
            line(s, "  Data Path Port:", &num(&cluster["DataPathPort"]));
        }
        let spec = &cluster["Spec"];
        s.push_str("  Orchestration:\n");
        line(s, "   Task History Retention Limit:", &num(spec.at(&["Orchestration", "TaskHistoryRetentionLimit"])));
        s.push_str("  Raft:\n");
        let raft = &spec["Raft"];
        line(s, "   Snapshot Interval:", &num(&raft["SnapshotInterval"]));
        if raft.has("KeepOldSnapshots") && !raft["KeepOldSnapshots"].is_null() {
            s.push_str(&format!("   Number of Old Snapshots to Retain: {}\n", num(&raft["KeepOldSnapshots"])));
        }
        line(s, "   Heartbeat Tick:", &num(&raft["HeartbeatTick"]));
        line(s, "   Election Tick:", &num(&raft["ElectionTick"]));
        s.push_str("  Dispatcher:\n");
        line(s, "   Heartbeat Period:", &human_duration(spec.at(&["Dispatcher", "HeartbeatPeriod"]).as_i64().unwrap_or(0)));
        s.push_str("  CA Configuration:\n");
        let ca = &spec["CAConfig"];
        line(s, "   Expiry Duration:", &human_duration(ca["NodeCertExpiry"].as_i64().unwrap_or(0)));
        line(s, "   Force Rotate:", &num(&ca["ForceRotate"]));
        let signing = ca["SigningCACert"].str().trim();
        if !signing.is_empty() {
            s.push_str(&format!("   Signing CA Certificate: \n{signing}\n\n"));
        }
        let ext = ca["ExternalCAs"].items();
        if !ext.is_empty() {
            s.push_str("   External CAs:\n");
            for e in ext {
                s.push_str(&format!("     {}: {}\n", e["Protocol"].str(), e["URL"].str()));
            }
        }
        line(s, "  Autolock Managers:", boolean(spec.at(&["EncryptionConfig", "AutoLockManagers"])));
        line(s, "  Root Rotation In Progress:", boolean(&cluster["RootRotationInProgress"]));
    }
    line(s, "  Node Address:", swarm["NodeAddr"].str());
    let mut managers: Vec<&str> = swarm["RemoteManagers"].items().iter().map(|m| m["Addr"].str()).collect();
    if !managers.is_empty() {
        managers.sort();
        s.push_str("  Manager Addresses:\n");
        for m in managers {
            s.push_str(&format!("   {m}\n"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::FakeDaemon;

    const INFO: &str = r#"{"ID":"EKHL","Containers":0,"ContainersRunning":0,"ContainersPaused":0,"ContainersStopped":0,"Images":0,
      "Driver":"overlay2","DriverStatus":[["Backing Filesystem","extfs"]],"Plugins":{"Volume":["local"],"Network":["overlay"],"Log":["json-file"]},
      "MemTotal":2097012736,"NCPU":2,"Name":"system-sample","ServerVersion":"0.1.0","OSType":"linux","Architecture":"x86_64",
      "OperatingSystem":"Debian GNU/Linux 12","KernelVersion":"6.1.0","DockerRootDir":"/var/lib/shoal","Labels":["provider=lab"],
      "SecurityOptions":["name=seccomp,profile=default"],
      "Swarm":{"NodeID":"qo2dfdig9mmxqkawulggepdih","NodeAddr":"165.227.107.89","LocalNodeState":"active","ControlAvailable":true,"Error":"",
        "RemoteManagers":[{"NodeID":"qo2dfdig9mmxqkawulggepdih","Addr":"165.227.107.89:2377"}],"Nodes":1,"Managers":1,
        "Cluster":{"ID":"9vs5ygs0gguyyec4iqf2314c0","Spec":{"Orchestration":{"TaskHistoryRetentionLimit":5},
          "Raft":{"SnapshotInterval":10000,"KeepOldSnapshots":0,"LogEntriesForSlowFollowers":500,"ElectionTick":3,"HeartbeatTick":1},
          "Dispatcher":{"HeartbeatPeriod":5000000000},"CAConfig":{"NodeCertExpiry":7776000000000000},"EncryptionConfig":{"AutoLockManagers":true}},
          "RootRotationInProgress":false}}}"#;

    #[test]
    fn swarm_section_like_docker() {
        let info = json::parse(INFO).unwrap();
        let out = server_info(&info);
        let want_swarm = " Swarm: active
  NodeID: qo2dfdig9mmxqkawulggepdih
  Is Manager: true
  ClusterID: 9vs5ygs0gguyyec4iqf2314c0
  Managers: 1
  Nodes: 1
  Orchestration:
   Task History Retention Limit: 5
  Raft:
   Snapshot Interval: 10000
   Number of Old Snapshots to Retain: 0
   Heartbeat Tick: 1
   Election Tick: 3
  Dispatcher:
   Heartbeat Period: 5 seconds
  CA Configuration:
   Expiry Duration: 3 months
   Force Rotate: 0
  Autolock Managers: true
  Root Rotation In Progress: false
  Node Address: 165.227.107.89
  Manager Addresses:
   165.227.107.89:2377
";
        assert!(out.contains(want_swarm), "{out}");
        assert!(out.starts_with(" Containers: 0\n  Running: 0\n  Paused: 0\n  Stopped: 0\n Images: 0\n Server Version: 0.1.0\n Storage Driver: overlay2\n  Backing Filesystem: extfs\n"));
        assert!(out.contains(" Security Options:\n  seccomp\n   Profile: default\n"));
        assert!(out.contains(" CPUs: 2\n Total Memory: 1.953GiB\n Name: system-sample\n ID: EKHL\n"));
        assert!(out.contains(" Labels:\n  provider=lab\n Experimental: false\n"));
        assert!(out.ends_with(" Live Restore Enabled: false\n\n"));
    }

    #[test]
    fn inactive_swarm_is_one_line() {
        let info = json::parse(r#"{"Swarm":{"LocalNodeState":"inactive","NodeID":""}}"#).unwrap();
        let out = server_info(&info);
        assert!(out.contains(" Swarm: inactive\n Kernel") || out.contains(" Swarm: inactive\n CPUs"), "{out}");
    }

    #[test]
    fn format_flag() {
        let d = FakeDaemon::start(|_| (200, INFO.into()));
        let client = d.client();
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut env = Env { client: &client, out: &mut out, err: &mut err, prog: "shoal".into() };
        run(&mut env, InfoArgs { format: Some("{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.ClientInfo.Context}}".into()) })
            .unwrap();
        run(&mut env, InfoArgs { format: Some("json".into()) }).unwrap();
        drop(env);
        let out = String::from_utf8(out).unwrap();
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("active true default"));
        assert!(lines.next().unwrap().starts_with("{\"ID\":\"EKHL\",\"Containers\":0,"));
    }
}
