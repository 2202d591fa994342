//! `shoal swarm …`: init, join, join-token, leave, update, unlock,
//! unlock-key (and `ca`, in `swarm_ca.rs`).

use std::io::{BufRead, IsTerminal};

use clap::{Args, Subcommand};

use super::{get_node, Env};
use crate::client::query;
use crate::commands::swarm_ca::{self, CaArgs};
use crate::duration::parse_go_duration;
use crate::error::{CliError, CliResult};
use serde_json::Value;

use crate::json::{self, JsonExt};

#[derive(Subcommand, Debug)]
pub enum SwarmCommand {
    /// Display and rotate the root CA
    Ca(CaArgs),
    /// Initialize a swarm
    Init(InitArgs),
    /// Join a swarm as a node and/or manager
    Join(JoinArgs),
    /// Manage join tokens
    #[command(name = "join-token")]
    JoinToken(JoinTokenArgs),
    /// Leave the swarm
    Leave(LeaveArgs),
    /// Unlock swarm
    Unlock,
    /// Manage the unlock key
    #[command(name = "unlock-key")]
    UnlockKey(UnlockKeyArgs),
    /// Update the swarm
    Update(UpdateArgs),
}

/// A Go duration flag value, in nanoseconds.
pub fn duration_arg(s: &str) -> Result<i64, String> {
    parse_go_duration(s)
}

/// Flags shared by `init` and `update` (docker's `swarmOptions`).
#[derive(Args, Debug, Default, Clone)]
pub struct SwarmSpecArgs {
    /// Task history retention limit
    #[arg(long = "task-history-limit", value_name = "int")]
    pub task_history_limit: Option<i64>,
    /// Dispatcher heartbeat period (ns|us|ms|s|m|h)
    #[arg(long = "dispatcher-heartbeat", value_name = "duration", value_parser = duration_arg)]
    pub dispatcher_heartbeat: Option<i64>,
    /// Number of additional Raft snapshots to retain
    #[arg(long = "max-snapshots", value_name = "uint")]
    pub max_snapshots: Option<u64>,
    /// Number of log entries between Raft snapshots
    #[arg(long = "snapshot-interval", value_name = "uint")]
    pub snapshot_interval: Option<u64>,
    #[command(flatten)]
    pub ca: CaSpecArgs,
}

/// `--cert-expiry` and `--external-ca` (docker's `swarmCAOptions`).
#[derive(Args, Debug, Default, Clone)]
pub struct CaSpecArgs {
    /// Validity period for node certificates (ns|us|ms|s|m|h)
    #[arg(long = "cert-expiry", value_name = "duration", value_parser = duration_arg)]
    pub cert_expiry: Option<i64>,
    /// Specifications of one or more certificate signing endpoints
    #[arg(long = "external-ca", value_name = "external-ca")]
    pub external_ca: Vec<String>,
}

impl SwarmSpecArgs {
    pub fn is_empty(&self) -> bool {
        self.task_history_limit.is_none()
            && self.dispatcher_heartbeat.is_none()
            && self.max_snapshots.is_none()
            && self.snapshot_interval.is_none()
            && self.ca.cert_expiry.is_none()
            && self.ca.external_ca.is_empty()
    }

    /// Applies the given flags to a swarm spec (docker's `mergeSwarmSpec`).
    pub fn merge(&self, spec: &mut Value, trust_root: Option<&str>) -> CliResult {
        if let Some(n) = self.task_history_limit {
            spec.entry(&["Orchestration"]).set("TaskHistoryRetentionLimit", n.into());
        }
        if let Some(d) = self.dispatcher_heartbeat {
            spec.entry(&["Dispatcher"]).set("HeartbeatPeriod", d.into());
        }
        if let Some(n) = self.max_snapshots {
            spec.entry(&["Raft"]).set("KeepOldSnapshots", n.into());
        }
        if let Some(n) = self.snapshot_interval {
            spec.entry(&["Raft"]).set("SnapshotInterval", n.into());
        }
        self.ca.merge(spec, trust_root)
    }
}

impl CaSpecArgs {
    pub fn merge(&self, spec: &mut Value, ca_cert: Option<&str>) -> CliResult {
        if let Some(d) = self.cert_expiry {
            spec.entry(&["CAConfig"]).set("NodeCertExpiry", d.into());
        }
        if !self.external_ca.is_empty() {
            let mut cas = Vec::new();
            for v in &self.external_ca {
                let mut ca = parse_external_ca(v)?;
                if ca["CACert"].str().is_empty() {
                    if let Some(c) = ca_cert {
                        ca.set("CACert", c.into());
                    }
                }
                cas.push(ca);
            }
            spec.entry(&["CAConfig"]).set("ExternalCAs", Value::Array(cas));
        }
        Ok(())
    }
}

/// `protocol=cfssl,url=https://…[,cacert=FILE][,k=v…]`.
pub fn parse_external_ca(spec: &str) -> CliResult<Value> {
    let mut protocol = None;
    let mut url = None;
    let mut cacert = String::new();
    let mut options = Vec::new();
    for field in spec.split(',') {
        let Some((key, value)) = field.split_once('=') else {
            return Err(CliError::new(format!("invalid field '{field}' must be a key=value pair")));
        };
        match key.to_lowercase().as_str() {
            "protocol" => {
                if value.to_lowercase() == "cfssl" {
                    protocol = Some("cfssl");
                } else {
                    return Err(CliError::new(format!("unrecognized external CA protocol {value}")));
                }
            }
            "url" => url = Some(value.to_string()),
            "cacert" => {
                let contents =
                    std::fs::read_to_string(value).map_err(|e| CliError::new(format!("unable to read CA cert for external CA: {e}")))?;
                if !contents.contains("-----BEGIN") {
                    return Err(CliError::new("CA cert for external CA must be in PEM format"));
                }
                cacert = contents;
            }
            _ => options.push((key.to_string(), Value::from(value))),
        }
    }
    let protocol = protocol.ok_or_else(|| CliError::new("the external-ca option needs a protocol= parameter"))?;
    let url = url.ok_or_else(|| CliError::new("the external-ca option needs a url= parameter"))?;
    let mut ca = json::object([("Protocol", Value::from(protocol)), ("URL", Value::from(url))]);
    if !options.is_empty() {
        ca.set("Options", Value::Object(options.into_iter().collect()));
    }
    ca.set("CACert", cacert.into());
    Ok(ca)
}

/// A Go zero-valued swarm `Spec`, as the docker CLI sends it to `/swarm/init`.
fn zero_spec() -> Value {
    json::parse(
        r#"{"Labels":null,"Orchestration":{},"Raft":{"ElectionTick":0,"HeartbeatTick":0},"Dispatcher":{},"CAConfig":{},"TaskDefaults":{},"EncryptionConfig":{"AutoLockManagers":false}}"#,
    )
    .expect("static JSON")
}

/// A listen address with docker's defaults filled in: "eth0" → "eth0:2377",
/// ":4000" → "0.0.0.0:4000" (docker's `NodeAddrOption`).
pub fn parse_node_addr(value: &str) -> Result<String, String> {
    const DEFAULT_HOST: &str = "0.0.0.0";
    const DEFAULT_PORT: &str = "2377";
    if value.is_empty() || value == "tcp://" {
        return Ok(format!("{DEFAULT_HOST}:{DEFAULT_PORT}"));
    }
    let addr = value.strip_prefix("tcp://").unwrap_or(value);
    if addr.contains("://") {
        return Err(format!("Invalid proto, expected tcp: {value}"));
    }
    let addr = addr.split('/').next().unwrap_or("");
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        // [ipv6]:port or [ipv6]
        let (h, after) = rest.split_once(']').ok_or_else(|| format!("invalid bind address format: {value}"))?;
        let port = after.strip_prefix(':').unwrap_or("");
        (format!("[{h}]"), port.to_string())
    } else if addr.matches(':').count() > 1 {
        // bare IPv6 without brackets: no port
        (format!("[{addr}]"), String::new())
    } else {
        match addr.split_once(':') {
            Some((h, p)) => (h.to_string(), p.to_string()),
            None => (addr.to_string(), String::new()),
        }
    };
    let host = if host.is_empty() { DEFAULT_HOST.to_string() } else { host };
    let port = if port.is_empty() { DEFAULT_PORT.to_string() } else { port };
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok(format!("{host}:{p}")),
        _ => Err(format!("invalid bind address format: {value}")),
    }
}

fn availability_arg(s: &str) -> Result<String, String> {
    match s.to_lowercase().as_str() {
        a @ ("active" | "pause" | "drain") => Ok(a.to_string()),
        _ => Err(format!("invalid availability \"{s}\", only active, pause and drain are supported")),
    }
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Listen address (format: "<ip|interface>[:port]")
    #[arg(long = "listen-addr", value_name = "node-addr", default_value = "0.0.0.0:2377", value_parser = parse_node_addr)]
    pub listen_addr: String,
    /// Advertised address (format: "<ip|interface>[:port]")
    #[arg(long = "advertise-addr", value_name = "string", default_value = "")]
    pub advertise_addr: String,
    /// Address or interface to use for data path traffic (format: "<ip|interface>")
    #[arg(long = "data-path-addr", value_name = "string", default_value = "")]
    pub data_path_addr: String,
    /// Port number to use for data path traffic (1024 - 49151). If no value is set or is set to 0, the default port (4789) is used.
    #[arg(long = "data-path-port", value_name = "uint32", default_value_t = 0)]
    pub data_path_port: u32,
    /// Force create a new cluster from current state
    #[arg(long = "force-new-cluster")]
    pub force_new_cluster: bool,
    /// Enable manager autolocking (requiring an unlock key to start a stopped manager)
    #[arg(long)]
    pub autolock: bool,
    /// Availability of the node ("active", "pause", "drain")
    #[arg(long, value_name = "string", value_parser = availability_arg)]
    pub availability: Option<String>,
    /// default address pool in CIDR format
    #[arg(long = "default-addr-pool", value_name = "ipNetSlice", value_delimiter = ',', value_parser = cidr_arg)]
    pub default_addr_pool: Vec<String>,
    /// default address pool subnet mask length
    #[arg(long = "default-addr-pool-mask-length", value_name = "uint32", default_value_t = 24)]
    pub default_addr_pool_mask_length: u32,
    #[command(flatten)]
    pub spec: SwarmSpecArgs,
}

/// Validates an IPv4/IPv6 CIDR and returns it in canonical form.
pub fn cidr_arg(s: &str) -> Result<String, String> {
    let s = s.trim();
    let bad = || format!("invalid CIDR address: {s}");
    let (ip, bits) = s.split_once('/').ok_or_else(bad)?;
    let bits: u8 = bits.parse().map_err(|_| bad())?;
    match ip.parse::<std::net::IpAddr>().map_err(|_| bad())? {
        std::net::IpAddr::V4(a) if bits <= 32 => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            Ok(format!("{}/{bits}", std::net::Ipv4Addr::from(u32::from(a) & mask)))
        }
        std::net::IpAddr::V6(a) if bits <= 128 => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            Ok(format!("{}/{bits}", std::net::Ipv6Addr::from(u128::from(a) & mask)))
        }
        _ => Err(bad()),
    }
}

#[derive(Args, Debug)]
pub struct JoinArgs {
    /// Listen address (format: "<ip|interface>[:port]")
    #[arg(long = "listen-addr", value_name = "node-addr", default_value = "0.0.0.0:2377", value_parser = parse_node_addr)]
    pub listen_addr: String,
    /// Advertised address (format: "<ip|interface>[:port]")
    #[arg(long = "advertise-addr", value_name = "string", default_value = "")]
    pub advertise_addr: String,
    /// Address or interface to use for data path traffic (format: "<ip|interface>")
    #[arg(long = "data-path-addr", value_name = "string", default_value = "")]
    pub data_path_addr: String,
    /// Token for entry into the swarm
    #[arg(long, value_name = "string", default_value = "")]
    pub token: String,
    /// Availability of the node ("active", "pause", "drain")
    #[arg(long, value_name = "string", value_parser = availability_arg)]
    pub availability: Option<String>,
    #[arg(value_name = "HOST:PORT")]
    pub remote: String,
}

#[derive(Args, Debug)]
pub struct JoinTokenArgs {
    /// Rotate join token
    #[arg(long)]
    pub rotate: bool,
    /// Only display token
    #[arg(short, long)]
    pub quiet: bool,
    /// worker|manager
    #[arg(value_name = "worker|manager")]
    pub role: String,
}

#[derive(Args, Debug)]
pub struct LeaveArgs {
    /// Force this node to leave the swarm, ignoring warnings
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct UnlockKeyArgs {
    /// Rotate unlock key
    #[arg(long)]
    pub rotate: bool,
    /// Only display token
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug, Default)]
pub struct UpdateArgs {
    /// Change manager autolocking setting (true|false)
    #[arg(long, value_name = "true|false", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub autolock: Option<bool>,
    #[command(flatten)]
    pub spec: SwarmSpecArgs,
}

impl UpdateArgs {
    pub fn is_empty(&self) -> bool {
        self.autolock.is_none() && self.spec.is_empty()
    }
}

pub fn run(env: &mut Env, cmd: SwarmCommand) -> CliResult {
    match cmd {
        SwarmCommand::Init(a) => init(env, a),
        SwarmCommand::Join(a) => join(env, a),
        SwarmCommand::JoinToken(a) => join_token(env, a),
        SwarmCommand::Leave(a) => leave(env, a),
        SwarmCommand::Update(a) => update(env, a),
        SwarmCommand::Unlock => unlock(env),
        SwarmCommand::UnlockKey(a) => unlock_key(env, a),
        SwarmCommand::Ca(a) => swarm_ca::run(env, a),
    }
}

fn init(env: &mut Env, a: InitArgs) -> CliResult {
    let mut spec = zero_spec();
    a.spec.merge(&mut spec, None)?;
    if a.autolock {
        spec.entry(&["EncryptionConfig"]).set("AutoLockManagers", true.into());
    }
    let body = json::object([
        ("ListenAddr", Value::from(a.listen_addr)),
        ("AdvertiseAddr", Value::from(a.advertise_addr)),
        ("DataPathAddr", Value::from(a.data_path_addr)),
        ("DataPathPort", Value::from(a.data_path_port)),
        ("ForceNewCluster", Value::from(a.force_new_cluster)),
        ("Spec", spec),
        ("AutoLockManagers", Value::from(a.autolock)),
        ("Availability", Value::from(a.availability.unwrap_or_default())),
        ("DefaultAddrPool", Value::from(a.default_addr_pool)),
        ("SubnetSize", Value::from(a.default_addr_pool_mask_length)),
    ]);
    let node_id = match env.client.post("/swarm/init", Some(&body)) {
        Ok(v) => v.str().to_string(),
        Err(mut e) => {
            let m = &e.message;
            if (m.contains("could not choose an IP address to advertise") || m.contains("could not find the system's IP address"))
                && !m.contains("specify one with --advertise-addr")
            {
                e.message.push_str(" - specify one with --advertise-addr");
            }
            return Err(e);
        }
    };
    env.print(&format!("Swarm initialized: current node ({node_id}) is now a manager.\n\n"))?;
    print_join_command(env, &node_id, true, false)?;
    let prog = env.prog.clone();
    env.println(&format!("To add a manager to this swarm, run '{prog} swarm join-token manager' and follow the instructions."))?;
    if a.autolock {
        let key = env.client.get("/swarm/unlockkey").map_err(|e| CliError::new(format!("could not fetch unlock key: {e}")))?;
        print_unlock_command(env, key["UnlockKey"].str())?;
    }
    Ok(())
}

/// The manager address to print in join commands: the node's
/// `ManagerStatus.Addr` (as docker does), else this node's entry in
/// `/info` `Swarm.RemoteManagers`.
fn manager_addr(env: &mut Env, node_id: &str) -> CliResult<Option<String>> {
    let node = get_node(env.client, node_id);
    if let Ok(n) = &node {
        let addr = n.at(&["ManagerStatus", "Addr"]).str();
        if !addr.is_empty() {
            return Ok(Some(addr.to_string()));
        }
    }
    if let Ok(info) = env.client.get("/info") {
        for peer in info.at(&["Swarm", "RemoteManagers"]).items() {
            if peer["NodeID"].str() == node_id && !peer["Addr"].str().is_empty() {
                return Ok(Some(peer["Addr"].str().to_string()));
            }
        }
    }
    node.map(|_| None)
}

fn print_join_command(env: &mut Env, node_id: &str, worker: bool, manager: bool) -> CliResult {
    let addr = manager_addr(env, node_id)?;
    let sw = env.client.get("/swarm")?;
    let Some(addr) = addr else { return Ok(()) };
    let prog = env.prog.clone();
    if worker {
        env.print(&format!(
            "To add a worker to this swarm, run the following command:\n\n    {prog} swarm join --token {} {addr}\n\n",
            sw.at(&["JoinTokens", "Worker"]).str()
        ))?;
    }
    if manager {
        env.print(&format!(
            "To add a manager to this swarm, run the following command:\n\n    {prog} swarm join --token {} {addr}\n\n",
            sw.at(&["JoinTokens", "Manager"]).str()
        ))?;
    }
    Ok(())
}

fn print_unlock_command(env: &mut Env, key: &str) -> CliResult {
    if key.is_empty() {
        return Ok(());
    }
    let prog = env.prog.clone();
    env.print(&format!(
        "To unlock a swarm manager after it restarts, run the `{prog} swarm unlock`\ncommand and provide the following key:\n\n    {key}\n\n\
Remember to store this key in a password manager, since without it you\nwill not be able to restart the manager.\n"
    ))
}

fn join(env: &mut Env, a: JoinArgs) -> CliResult {
    let body = json::object([
        ("ListenAddr", Value::from(a.listen_addr)),
        ("AdvertiseAddr", Value::from(a.advertise_addr)),
        ("DataPathAddr", Value::from(a.data_path_addr)),
        ("RemoteAddrs", Value::from(vec![a.remote])),
        ("JoinToken", Value::from(a.token)),
        ("Availability", Value::from(a.availability.unwrap_or_default())),
    ]);
    env.client.post("/swarm/join", Some(&body))?;
    let info = env.client.get("/info")?;
    if info.at(&["Swarm", "ControlAvailable"]).bool() {
        env.println("This node joined a swarm as a manager.")
    } else {
        env.println("This node joined a swarm as a worker.")
    }
}

/// `POST /swarm/update?version=…&rotate…` with the given spec.
pub fn swarm_update(
    env: &mut Env,
    version: u64,
    spec: &Value,
    rotate_worker: bool,
    rotate_manager: bool,
    rotate_unlock: bool,
) -> CliResult {
    let q = query(&[
        ("version", version.to_string()),
        ("rotateWorkerToken", rotate_worker.to_string()),
        ("rotateManagerToken", rotate_manager.to_string()),
        ("rotateManagerUnlockKey", rotate_unlock.to_string()),
    ]);
    env.client.post(&format!("/swarm/update{q}"), Some(spec))?;
    Ok(())
}

pub fn swarm_version(sw: &Value) -> u64 {
    sw.at(&["Version", "Index"]).as_u64().unwrap_or(0)
}

fn join_token(env: &mut Env, a: JoinTokenArgs) -> CliResult {
    let worker = a.role == "worker";
    let manager = a.role == "manager";
    if !worker && !manager {
        return Err(CliError::new(format!("unknown role {}", a.role)));
    }
    if a.rotate {
        let sw = env.client.get("/swarm")?;
        swarm_update(env, swarm_version(&sw), &sw["Spec"], worker, manager, false)?;
        if !a.quiet {
            env.print(&format!("Successfully rotated {} join token.\n\n", a.role))?;
        }
    }
    let sw = env.client.get("/swarm")?;
    if a.quiet {
        let token = if worker { sw.at(&["JoinTokens", "Worker"]) } else { sw.at(&["JoinTokens", "Manager"]) };
        return env.println(token.str());
    }
    let info = env.client.get("/info")?;
    let node_id = info.at(&["Swarm", "NodeID"]).str().to_string();
    print_join_command(env, &node_id, worker, manager)
}

fn leave(env: &mut Env, a: LeaveArgs) -> CliResult {
    env.client.post(&format!("/swarm/leave{}", query(&[("force", a.force.to_string())])), None)?;
    env.println("Node left the swarm.")
}

fn update(env: &mut Env, a: UpdateArgs) -> CliResult {
    let mut sw = env.client.get("/swarm")?;
    let trust_root = sw.at(&["TLSInfo", "TrustRoot"]).str().to_string();
    let version = swarm_version(&sw);
    let spec = sw.entry(&["Spec"]);
    let prev_autolock = spec.at(&["EncryptionConfig", "AutoLockManagers"]).bool();
    a.spec.merge(spec, Some(&trust_root))?;
    if let Some(al) = a.autolock {
        spec.entry(&["EncryptionConfig"]).set("AutoLockManagers", al.into());
    }
    let cur_autolock = spec.at(&["EncryptionConfig", "AutoLockManagers"]).bool();
    let spec = spec.clone();
    swarm_update(env, version, &spec, false, false, false)?;
    env.println("Swarm updated.")?;
    if cur_autolock && !prev_autolock {
        let key = env.client.get("/swarm/unlockkey").map_err(|e| CliError::new(format!("could not fetch unlock key: {e}")))?;
        print_unlock_command(env, key["UnlockKey"].str())?;
    }
    Ok(())
}

fn unlock_key(env: &mut Env, a: UnlockKeyArgs) -> CliResult {
    if a.rotate {
        let sw = env.client.get("/swarm")?;
        if !sw.at(&["Spec", "EncryptionConfig", "AutoLockManagers"]).bool() {
            return Err(CliError::new("cannot rotate because autolock is not turned on"));
        }
        swarm_update(env, swarm_version(&sw), &sw["Spec"], false, false, true)?;
        if !a.quiet {
            env.println("Successfully rotated manager unlock key.")?;
        }
    }
    let key = env.client.get("/swarm/unlockkey").map_err(|e| CliError::new(format!("could not fetch unlock key: {e}")))?;
    let key = key["UnlockKey"].str().to_string();
    if key.is_empty() {
        return Err(CliError::new("no unlock key is set"));
    }
    if a.quiet {
        return env.println(&key);
    }
    print_unlock_command(env, &key)
}

fn unlock(env: &mut Env) -> CliResult {
    let info = env.client.get("/info")?;
    match info.at(&["Swarm", "LocalNodeState"]).str() {
        "inactive" | "" => return Err(CliError::new("error: this node is not part of a swarm")),
        "locked" => {}
        _ => return Err(CliError::new("error: swarm is not locked")),
    }
    let key = read_key("Enter unlock key: ")?;
    env.client.post("/swarm/unlock", Some(&json::object([("UnlockKey", Value::from(key))])))?;
    Ok(())
}

/// Reads a secret from stdin: without echo on a terminal, else one line.
fn read_key(prompt: &str) -> CliResult<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        print!("{prompt}");
        let _ = std::io::Write::flush(&mut std::io::stdout());
        let quiet = crate::term::Mode::no_echo();
        let mut line = String::new();
        let r = stdin.lock().read_line(&mut line);
        if quiet.is_none() {
            println!();
        }
        drop(quiet);
        r?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(line.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::FakeDaemon;

    #[test]
    fn node_addrs() {
        assert_eq!(parse_node_addr("eth0"), Ok("eth0:2377".into()));
        assert_eq!(parse_node_addr(":4000"), Ok("0.0.0.0:4000".into()));
        assert_eq!(parse_node_addr("192.168.1.2"), Ok("192.168.1.2:2377".into()));
        assert_eq!(parse_node_addr("tcp://10.0.0.1:2400"), Ok("10.0.0.1:2400".into()));
        assert_eq!(parse_node_addr("[::1]:2377"), Ok("[::1]:2377".into()));
        assert!(parse_node_addr("udp://x").is_err());
        assert!(parse_node_addr("1.2.3.4:notaport").is_err());
    }

    #[test]
    fn cidrs() {
        assert_eq!(cidr_arg("10.20.0.0/16"), Ok("10.20.0.0/16".into()));
        assert_eq!(cidr_arg("10.20.1.5/16"), Ok("10.20.0.0/16".into()));
        assert!(cidr_arg("10.20.0.0").is_err());
        assert!(cidr_arg("10.20.0.0/33").is_err());
    }

    #[test]
    fn spec_merge() {
        let mut spec = zero_spec();
        let args = SwarmSpecArgs {
            task_history_limit: Some(10),
            dispatcher_heartbeat: Some(parse_go_duration("10s").unwrap()),
            ca: CaSpecArgs { cert_expiry: Some(parse_go_duration("48h").unwrap()), external_ca: vec![] },
            ..Default::default()
        };
        args.merge(&mut spec, None).unwrap();
        assert_eq!(
            spec.to_compact(),
            r#"{"Labels":null,"Orchestration":{"TaskHistoryRetentionLimit":10},"Raft":{"ElectionTick":0,"HeartbeatTick":0},"Dispatcher":{"HeartbeatPeriod":10000000000},"CAConfig":{"NodeCertExpiry":172800000000000},"TaskDefaults":{},"EncryptionConfig":{"AutoLockManagers":false}}"#
        );
        assert_eq!(
            parse_external_ca("protocol=cfssl,url=https://ca.example.com").unwrap().to_compact(),
            r#"{"Protocol":"cfssl","URL":"https://ca.example.com","CACert":""}"#
        );
        assert!(parse_external_ca("url=x").is_err());
    }

    fn daemon() -> FakeDaemon {
        FakeDaemon::start(|req| {
            match (req.method.as_str(), req.target.as_str()) {
            ("POST", "/v1.44/swarm/init") => (200, "\"tjjggogqpnpj2phbfbz8jd5oq\"".into()),
            ("GET", "/v1.44/nodes/tjjggogqpnpj2phbfbz8jd5oq") => {
                (200, r#"{"ID":"tjjggogqpnpj2phbfbz8jd5oq","ManagerStatus":{"Leader":true,"Reachability":"reachable","Addr":"192.168.77.11:2377"}}"#.into())
            }
            ("GET", "/v1.44/swarm") => (
                200,
                r#"{"ID":"c1","Version":{"Index":12},"Spec":{"Orchestration":{"TaskHistoryRetentionLimit":5}},"JoinTokens":{"Worker":"SWMTKN-1-abc-worker","Manager":"SWMTKN-1-abc-manager"}}"#.into(),
            ),
            ("GET", "/v1.44/info") => (200, r#"{"Swarm":{"NodeID":"tjjggogqpnpj2phbfbz8jd5oq","ControlAvailable":true}}"#.into()),
            ("POST", t) if t.starts_with("/v1.44/swarm/update?") => (200, String::new()),
            ("POST", "/v1.44/swarm/join") => (200, String::new()),
            ("POST", "/v1.44/swarm/leave?force=true") => (200, String::new()),
            _ => (500, r#"{"message":"unexpected"}"#.into()),
        }
        })
    }

    fn run_cmd(d: &FakeDaemon, cmd: SwarmCommand) -> (CliResult, String) {
        d.run(|env| run(env, cmd))
    }

    #[test]
    fn init_prints_join_command() {
        let d = daemon();
        let args = InitArgs {
            listen_addr: "0.0.0.0:2377".into(),
            advertise_addr: "192.168.77.11".into(),
            data_path_addr: String::new(),
            data_path_port: 0,
            force_new_cluster: false,
            autolock: false,
            availability: None,
            default_addr_pool: vec![],
            default_addr_pool_mask_length: 24,
            spec: SwarmSpecArgs::default(),
        };
        let (r, out) = run_cmd(&d, SwarmCommand::Init(args));
        r.unwrap();
        assert_eq!(
            out,
            "Swarm initialized: current node (tjjggogqpnpj2phbfbz8jd5oq) is now a manager.\n\n\
To add a worker to this swarm, run the following command:\n\n    shoal swarm join --token SWMTKN-1-abc-worker 192.168.77.11:2377\n\n\
To add a manager to this swarm, run 'shoal swarm join-token manager' and follow the instructions.\n"
        );
        let init = &d.requests()[0];
        assert!(init.body.starts_with(r#"{"ListenAddr":"0.0.0.0:2377","AdvertiseAddr":"192.168.77.11","#), "{}", init.body);
    }

    #[test]
    fn join_token_rotate_and_quiet() {
        let d = daemon();
        let (r, out) = run_cmd(&d, SwarmCommand::JoinToken(JoinTokenArgs { rotate: true, quiet: false, role: "manager".into() }));
        r.unwrap();
        assert_eq!(
            out,
            "Successfully rotated manager join token.\n\nTo add a manager to this swarm, run the following command:\n\n    shoal swarm join --token SWMTKN-1-abc-manager 192.168.77.11:2377\n\n"
        );
        let upd = d.requests().into_iter().find(|r| r.target.starts_with("/v1.44/swarm/update")).unwrap();
        assert_eq!(
            upd.target,
            "/v1.44/swarm/update?version=12&rotateWorkerToken=false&rotateManagerToken=true&rotateManagerUnlockKey=false"
        );
        assert_eq!(upd.body, r#"{"Orchestration":{"TaskHistoryRetentionLimit":5}}"#);
        let (r, out) = run_cmd(&d, SwarmCommand::JoinToken(JoinTokenArgs { rotate: false, quiet: true, role: "worker".into() }));
        r.unwrap();
        assert_eq!(out, "SWMTKN-1-abc-worker\n");
        let (r, _) = run_cmd(&d, SwarmCommand::JoinToken(JoinTokenArgs { rotate: false, quiet: true, role: "boss".into() }));
        assert_eq!(r.unwrap_err().message, "unknown role boss");
    }

    #[test]
    fn join_leave_update() {
        let d = daemon();
        let (r, out) = run_cmd(
            &d,
            SwarmCommand::Join(JoinArgs {
                listen_addr: "0.0.0.0:2377".into(),
                advertise_addr: String::new(),
                data_path_addr: String::new(),
                token: "SWMTKN-1-x".into(),
                availability: None,
                remote: "192.168.77.11:2377".into(),
            }),
        );
        r.unwrap();
        assert_eq!(out, "This node joined a swarm as a manager.\n");
        assert_eq!(
            d.requests()[0].body,
            r#"{"ListenAddr":"0.0.0.0:2377","AdvertiseAddr":"","DataPathAddr":"","RemoteAddrs":["192.168.77.11:2377"],"JoinToken":"SWMTKN-1-x","Availability":""}"#
        );
        let (r, out) = run_cmd(&d, SwarmCommand::Leave(LeaveArgs { force: true }));
        r.unwrap();
        assert_eq!(out, "Node left the swarm.\n");
        let args = UpdateArgs { spec: SwarmSpecArgs { task_history_limit: Some(2), ..Default::default() }, ..Default::default() };
        let (r, out) = run_cmd(&d, SwarmCommand::Update(args));
        r.unwrap();
        assert_eq!(out, "Swarm updated.\n");
        let upd = d.requests().into_iter().rev().find(|r| r.target.starts_with("/v1.44/swarm/update")).unwrap();
        assert_eq!(upd.body, r#"{"Orchestration":{"TaskHistoryRetentionLimit":2}}"#);
    }

    #[test]
    fn init_error_hint() {
        let d = FakeDaemon::start(|_| {
            (400, r#"{"message":"could not choose an IP address to advertise since this system has multiple addresses on different interfaces (10.0.2.15 on enp0s3 and 192.168.66.100 on enp0s8)"}"#.into())
        });
        let args = InitArgs {
            listen_addr: "0.0.0.0:2377".into(),
            advertise_addr: String::new(),
            data_path_addr: String::new(),
            data_path_port: 0,
            force_new_cluster: false,
            autolock: false,
            availability: None,
            default_addr_pool: vec![],
            default_addr_pool_mask_length: 24,
            spec: SwarmSpecArgs::default(),
        };
        let (r, _) = run_cmd(&d, SwarmCommand::Init(args));
        assert_eq!(
            r.unwrap_err().message,
            "Error response from daemon: could not choose an IP address to advertise since this system has multiple addresses on different interfaces (10.0.2.15 on enp0s3 and 192.168.66.100 on enp0s8) - specify one with --advertise-addr"
        );
    }
}
