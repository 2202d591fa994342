//! `shoal network …`: create, ls, inspect, rm, prune for the cluster's
//! swarm-scoped overlay networks, with the docker CLI's flags, client-side
//! IPAM checks, request body, tables, prompts and messages.
//!
//! The one deliberate difference: `--driver` defaults to `overlay` (docker's
//! default is `bridge`, which a Shoal daemon refuses: it has overlay
//! networks only).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::IpAddr;

use clap::{Args, Subcommand};

use super::Env;
use crate::client::{path_segment, query};
use crate::commands::inspect::{inspect, InspectFormat};
use crate::error::{CliError, CliResult};
use crate::filters::Filters;
use crate::format::{self, natural_cmp, truncate_id};
use serde_json::Value;

use crate::json::{self, JsonExt};
use crate::timestamp::Timestamp;

#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Create a network
    Create(Box<CreateArgs>),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Driver to manage the Network
    #[arg(short, long, value_name = "string", default_value = "overlay")]
    pub driver: String,
    /// Set driver specific options
    #[arg(short, long = "opt", value_name = "map")]
    pub opt: Vec<String>,
    /// Set metadata on a network
    #[arg(long = "label", value_name = "list", value_parser = validate_label)]
    pub label: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Enable or disable IPv6 networking
    #[arg(long, value_name = "true|false", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub ipv6: Option<bool>,
    /// Enable manual container attachment
    #[arg(long)]
    pub attachable: bool,
    /// Create swarm routing-mesh network
    #[arg(long)]
    pub ingress: bool,
    /// Control the network's scope
    #[arg(long, value_name = "string", default_value = "", hide_default_value = true)]
    pub scope: String,
    /// Create a configuration only network
    #[arg(long = "config-only")]
    pub config_only: bool,
    /// The network from which to copy the configuration
    #[arg(long = "config-from", value_name = "string", default_value = "", hide_default_value = true)]
    pub config_from: String,
    /// IP Address Management Driver
    #[arg(long = "ipam-driver", value_name = "string", default_value = "default")]
    pub ipam_driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long, value_name = "strings", value_delimiter = ',')]
    pub subnet: Vec<String>,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range", value_name = "strings", value_delimiter = ',')]
    pub ip_range: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long, value_name = "strings", value_delimiter = ',')]
    pub gateway: Vec<String>,
    /// Auxiliary IPv4 or IPv6 addresses used by Network driver
    #[arg(long = "aux-address", value_name = "map")]
    pub aux_address: Vec<String>,
    /// Set IPAM driver specific options
    #[arg(long = "ipam-opt", value_name = "map")]
    pub ipam_opt: Vec<String>,
    #[arg(value_name = "NETWORK")]
    pub name: String,
}

impl Default for CreateArgs {
    fn default() -> Self {
        CreateArgs {
            driver: "overlay".into(),
            opt: Vec::new(),
            label: Vec::new(),
            internal: false,
            ipv6: None,
            attachable: false,
            ingress: false,
            scope: String::new(),
            config_only: false,
            config_from: String::new(),
            ipam_driver: "default".into(),
            subnet: Vec::new(),
            ip_range: Vec::new(),
            gateway: Vec::new(),
            aux_address: Vec::new(),
            ipam_opt: Vec::new(),
            name: String::new(),
        }
    }
}

#[derive(Args, Debug, Default)]
pub struct LsArgs {
    /// Only display network IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short, long, value_name = "filter")]
    pub filter: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct InspectArgs {
    /// Format output using a custom template: 'json', 'TEMPLATE'
    #[arg(short, long, value_name = "string")]
    pub format: Option<String>,
    /// Verbose output for diagnostics
    #[arg(short, long)]
    pub verbose: bool,
    #[arg(required = true, value_name = "NETWORK")]
    pub names: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true, value_name = "NETWORK")]
    pub names: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long, value_name = "filter")]
    pub filter: Vec<String>,
}

pub fn run(env: &mut Env, cmd: NetworkCommand) -> CliResult {
    match cmd {
        NetworkCommand::Create(a) => create(env, &a),
        NetworkCommand::Ls(a) => ls(env, a),
        NetworkCommand::Inspect(a) => inspect_networks(env, a),
        NetworkCommand::Rm(a) => rm(env, &a, &mut std::io::stdin().lock()),
        NetworkCommand::Prune(a) => prune(env, &a, &mut std::io::stdin().lock()),
    }
}

// --------------------------------------------------------------- create

/// docker's `opts.ValidateLabel`.
fn validate_label(value: &str) -> Result<String, String> {
    let key = value.split('=').next().unwrap_or("").trim();
    if key.is_empty() {
        return Err(format!("invalid label '{value}': empty name"));
    }
    if key.chars().any(char::is_whitespace) {
        return Err(format!("label '{key}' contains whitespaces"));
    }
    Ok(value.to_string())
}

/// docker's `MapOpts` (`--opt`, `--aux-address`, `--ipam-opt`) and
/// `ConvertKVStringsToMap` (`--label`): `k=v`, or `k` with an empty value;
/// a later key wins. Go marshals maps with sorted keys.
fn kv_map(values: &[String]) -> BTreeMap<String, String> {
    values
        .iter()
        .map(|v| {
            let (k, v) = v.split_once('=').unwrap_or((v.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn map_json(m: &BTreeMap<String, String>) -> Value {
    Value::Object(m.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect())
}

/// An IPv4-mapped IPv6 address as IPv4 (Go's `IP.To4`).
fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Go's `net.ParseCIDR`: the address as written and the prefix length.
fn parse_cidr(s: &str) -> Result<(IpAddr, u32), String> {
    let err = || format!("invalid CIDR address: {s}");
    let (addr, bits) = s.split_once('/').ok_or_else(err)?;
    let ip: IpAddr = addr.parse().map_err(|_| err())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let n: u32 = bits.parse().map_err(|_| err())?;
    if n > max {
        return Err(err());
    }
    Ok((ip, n))
}

/// Go's `IPNet.Contains` for the network `(net, bits)`.
fn net_contains(net: IpAddr, bits: u32, ip: IpAddr) -> bool {
    let (net, ip) = (unmap(net), unmap(ip));
    // A mapped network keeps its 128-bit prefix length in Go's mask; count it in IPv4 bits.
    let bits = if net.is_ipv4() && bits > 32 { bits.saturating_sub(96) } else { bits };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// docker's `subnetMatches`: whether `data` (an address, or the address of
/// a CIDR) lies in `subnet`.
fn subnet_matches(subnet: &str, data: &str) -> Result<bool, String> {
    let (net, bits) = parse_cidr(subnet).map_err(|e| format!("invalid subnet: {e}"))?;
    let ip = if data.contains('/') { Some(parse_cidr(data)?.0) } else { data.parse::<IpAddr>().ok() };
    Ok(ip.is_some_and(|ip| net_contains(net, bits, ip)))
}

#[derive(Default)]
struct PoolConfig {
    subnet: String,
    ip_range: String,
    gateway: String,
    aux: BTreeMap<String, String>,
}

/// docker's `createIPAMConfig`: subnets, ranges, gateways and auxiliary
/// addresses grouped per subnet, with its checks and words.
fn ipam_configs(a: &CreateArgs) -> Result<Vec<PoolConfig>, String> {
    if a.subnet.len() < a.ip_range.len() || a.subnet.len() < a.gateway.len() {
        return Err("every ip-range or gateway must have a corresponding subnet".into());
    }
    let mut pools: Vec<PoolConfig> = Vec::new();
    for s in &a.subnet {
        for p in &pools {
            if subnet_matches(s, &p.subnet)? || subnet_matches(&p.subnet, s)? {
                return Err("multiple overlapping subnet configuration is not supported".into());
            }
        }
        pools.push(PoolConfig { subnet: s.clone(), ..Default::default() });
    }
    for r in &a.ip_range {
        let mut matched = false;
        for p in pools.iter_mut() {
            parse_cidr(r)?;
            if !subnet_matches(&p.subnet, r)? {
                continue;
            }
            if !p.ip_range.is_empty() {
                return Err(format!("cannot configure multiple ranges ({r}, {}) on the same subnet ({})", p.ip_range, p.subnet));
            }
            p.ip_range = r.clone();
            matched = true;
        }
        if !matched {
            return Err(format!("no matching subnet for range {r}"));
        }
    }
    for g in &a.gateway {
        let mut matched = false;
        for p in pools.iter_mut() {
            if !subnet_matches(&p.subnet, g)? {
                continue;
            }
            if !p.gateway.is_empty() {
                return Err(format!("cannot configure multiple gateways ({g}, {}) for the same subnet ({})", p.gateway, p.subnet));
            }
            p.gateway = g.clone();
            matched = true;
        }
        if !matched {
            return Err(format!("no matching subnet for gateway {g}"));
        }
    }
    for (key, addr) in kv_map(&a.aux_address) {
        let mut matched = false;
        for p in pools.iter_mut() {
            if !subnet_matches(&p.subnet, &addr)? {
                continue;
            }
            p.aux.insert(key.clone(), addr.clone());
            matched = true;
        }
        if !matched {
            return Err(format!("no matching subnet for aux-address {addr}"));
        }
    }
    Ok(pools)
}

/// The body of `POST /networks/create`, as the docker CLI sends it (its
/// `CreateRequest`: the options in Go field order, then `Name`).
pub fn create_request(a: &CreateArgs) -> Result<Value, String> {
    let pools = ipam_configs(a)?;
    let config: Vec<Value> = pools
        .into_iter()
        .map(|p| {
            let mut fields = vec![("Subnet", Value::from(p.subnet))];
            if !p.ip_range.is_empty() {
                fields.push(("IPRange", Value::from(p.ip_range)));
            }
            if !p.gateway.is_empty() {
                fields.push(("Gateway", Value::from(p.gateway)));
            }
            if !p.aux.is_empty() {
                fields.push(("AuxiliaryAddresses", map_json(&p.aux)));
            }
            json::object(fields)
        })
        .collect();
    let ipam = json::object([
        ("Driver", Value::from(a.ipam_driver.as_str())),
        ("Options", map_json(&kv_map(&a.ipam_opt))),
        ("Config", Value::Array(config)),
    ]);
    let mut body = vec![("Driver", Value::from(a.driver.as_str())), ("Scope", Value::from(a.scope.as_str()))];
    if let Some(v6) = a.ipv6 {
        body.push(("EnableIPv6", Value::Bool(v6)));
    }
    body.extend([
        ("IPAM", ipam),
        ("Internal", Value::Bool(a.internal)),
        ("Attachable", Value::Bool(a.attachable)),
        ("Ingress", Value::Bool(a.ingress)),
        ("ConfigOnly", Value::Bool(a.config_only)),
        (
            "ConfigFrom",
            if a.config_from.is_empty() { Value::Null } else { json::object([("Network", Value::from(a.config_from.as_str()))]) },
        ),
        ("Options", map_json(&kv_map(&a.opt))),
        ("Labels", map_json(&kv_map(&a.label))),
        ("Name", Value::from(a.name.as_str())),
    ]);
    Ok(json::object(body))
}

fn create(env: &mut Env, a: &CreateArgs) -> CliResult {
    let body = create_request(a).map_err(CliError::new)?;
    let resp = env.client.post("/networks/create", Some(&body))?;
    // What the daemon keeps but does not act on (the docker CLI drops it).
    let warning = resp["Warning"].str();
    if !warning.is_empty() {
        env.eprintln(warning);
    }
    env.println(resp["Id"].str())
}

// ------------------------------------------------------------------- ls

pub const DEFAULT_NETWORK_TABLE_FORMAT: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";

fn network_list_format(source: &str, quiet: bool) -> &str {
    match source {
        format::TABLE_FORMAT_KEY if quiet => format::DEFAULT_QUIET_FORMAT,
        format::TABLE_FORMAT_KEY => DEFAULT_NETWORK_TABLE_FORMAT,
        format::RAW_FORMAT_KEY if quiet => "network_id: {{.ID}}",
        format::RAW_FORMAT_KEY => "network_id: {{.ID}}\\nname: {{.Name}}\\ndriver: {{.Driver}}\\nscope: {{.Scope}}\\n",
        other => other,
    }
}

fn network_header() -> Value {
    format::header_obj(&[
        ("ID", "NETWORK ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("IPv4", "IPV4"),
        ("IPv6", "IPV6"),
        ("Internal", "INTERNAL"),
        ("Labels", "LABELS"),
        ("CreatedAt", "CREATED AT"),
    ])
}

/// The fields docker's network list context offers to `--format` (its
/// `{{json .}}` marshals them in name order). Labels are joined in key
/// order (docker's order is Go's map order, i.e. any).
pub fn network_row(n: &Value, trunc: bool) -> Value {
    let id = n["Id"].str();
    let mut labels: Vec<String> = n["Labels"].members().iter().map(|(k, v)| format!("{k}={}", v.str())).collect();
    labels.sort();
    let created = n["Created"].str();
    let created = Timestamp::parse(created).map(|t| t.go_string()).unwrap_or_else(|| created.to_string());
    // Shoal's overlays are IPv4 networks; the 1.44 API has no EnableIPv4.
    let ipv4 = n["EnableIPv4"].as_bool().unwrap_or(true);
    json::object([
        ("CreatedAt", Value::from(created)),
        ("Driver", Value::from(n["Driver"].str())),
        ("ID", Value::from(if trunc { truncate_id(id) } else { id.to_string() })),
        ("IPv4", Value::from(ipv4.to_string())),
        ("IPv6", Value::from(n["EnableIPv6"].bool().to_string())),
        ("Internal", Value::from(n["Internal"].bool().to_string())),
        ("Labels", Value::from(labels.join(","))),
        ("Name", Value::from(n["Name"].str())),
        ("Scope", Value::from(n["Scope"].str())),
    ])
}

/// Renders a network list: sorted by name (natural order).
pub fn render_network_list(networks: &[Value], format: &str, quiet: bool, no_trunc: bool) -> CliResult<String> {
    let mut networks: Vec<&Value> = networks.iter().collect();
    networks.sort_by(|a, b| natural_cmp(a["Name"].str(), b["Name"].str()));
    let rows: Vec<Value> = networks.iter().map(|n| network_row(n, !no_trunc)).collect();
    format::write_rows(network_list_format(format, quiet), &network_header(), &rows)
}

fn ls(env: &mut Env, a: LsArgs) -> CliResult {
    let filters = Filters::from_flags(&a.filter)?;
    let list = env.client.get(&format!("/networks{}", filters.query()))?;
    let format = a.format.filter(|f| !f.is_empty()).unwrap_or_else(|| format::TABLE_FORMAT_KEY.into());
    let text = render_network_list(list.items(), &format, a.quiet, a.no_trunc)?;
    env.print(&text)
}

// -------------------------------------------------------------- inspect

/// docker's client refuses an empty reference before asking the daemon.
fn no_such_network(name: &str) -> CliError {
    CliError::new(format!("Error: No such network: {name}"))
}

fn network_path(name: &str, verbose: bool) -> String {
    let q = if verbose { query(&[("verbose", "true".to_string())]) } else { String::new() };
    format!("/networks/{}{q}", path_segment(name))
}

fn inspect_networks(env: &mut Env, a: InspectArgs) -> CliResult {
    let format = a.format.unwrap_or_default();
    let client = env.client.clone();
    let verbose = a.verbose;
    let get = |r: &str| -> CliResult<String> {
        if r.is_empty() {
            return Err(no_such_network(r));
        }
        client.raw("GET", &network_path(r, verbose), None)
    };
    inspect(env, &a.names, &InspectFormat::from_flag(&format), get)
}

// ------------------------------------------------------------ rm, prune

/// docker's `prompt.Confirm`: the question with " [y/N] ", then one line;
/// only "y" or "Y" (spaces around allowed) means yes.
fn confirm(env: &mut Env, stdin: &mut dyn BufRead, message: &str) -> CliResult<bool> {
    env.print(&format!("{message} [y/N] "))?;
    env.out.flush()?;
    let mut line = String::new();
    if stdin.read_line(&mut line).unwrap_or(0) == 0 {
        return Ok(false);
    }
    Ok(line.trim().eq_ignore_ascii_case("y"))
}

pub const INGRESS_WARNING: &str = "WARNING! Before removing the routing-mesh network, make sure all the nodes in your swarm run the same docker engine version. Otherwise, removal may not be effective and functionality of newly create ingress networks will be impaired.\nAre you sure you want to continue?";

pub const PRUNE_WARNING: &str =
    "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?";

/// docker's `network rm`: the ingress network only after a confirmation;
/// each removed name printed, each failure reported, exit status 1 if any.
fn rm(env: &mut Env, a: &RmArgs, stdin: &mut dyn BufRead) -> CliResult {
    let mut errors = Vec::new();
    for name in &a.names {
        if name.is_empty() {
            if !a.force {
                errors.push(no_such_network(name));
            }
            continue;
        }
        if let Ok(n) = env.client.get(&network_path(name, false)) {
            if n["Ingress"].bool() && !confirm(env, stdin, INGRESS_WARNING)? {
                continue;
            }
        }
        match env.client.delete(&format!("/networks/{}", path_segment(name))) {
            Ok(_) => env.println(name)?,
            Err(e) if a.force && e.http_status == Some(404) => {}
            Err(e) => errors.push(e),
        }
    }
    CliError::join(errors)
}

/// What `network prune` prints for the daemon's answer (nothing when
/// nothing went).
pub fn prune_report(resp: &Value) -> String {
    let deleted = resp["NetworksDeleted"].items();
    if deleted.is_empty() {
        return String::new();
    }
    let mut out = String::from("Deleted Networks:\n");
    for n in deleted {
        out.push_str(n.str());
        out.push('\n');
    }
    out.push('\n');
    out
}

fn prune(env: &mut Env, a: &PruneArgs, stdin: &mut dyn BufRead) -> CliResult {
    let filters = Filters::from_flags(&a.filter)?;
    if !a.force && !confirm(env, stdin, PRUNE_WARNING)? {
        return Ok(());
    }
    let resp = env.client.post(&format!("/networks/prune{}", filters.query()), None)?;
    env.print(&prune_report(&resp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::FakeDaemon;

    const NET: &str = r#"{"Name":"appnet","Id":"kq2n3w9hxv0z8d7c6b5a4m3l2","Created":"2026-01-02T03:04:05.5Z","Scope":"swarm","Driver":"overlay","EnableIPv6":false,"IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"10.0.1.0/24","Gateway":"10.0.1.1"}]},"Internal":false,"Attachable":true,"Ingress":false,"ConfigFrom":{"Network":""},"ConfigOnly":false,"Containers":{},"Options":{"com.docker.network.driver.overlay.vxlanid_list":"4097"},"Labels":{"team":"a","env":"prod"}}"#;
    const INGRESS: &str = r#"{"Name":"ingress","Id":"1ngr3ss00000000000000000a","Created":"2026-01-02T03:00:00Z","Scope":"swarm","Driver":"overlay","EnableIPv6":false,"Internal":false,"Attachable":false,"Ingress":true,"Labels":{}}"#;

    fn args(name: &str) -> CreateArgs {
        CreateArgs { name: name.into(), ..Default::default() }
    }

    fn parse_create(argv: &[&str]) -> CreateArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            a: CreateArgs,
        }
        let mut full = vec!["create"];
        full.extend_from_slice(argv);
        T::try_parse_from(full).unwrap().a
    }

    #[test]
    fn create_body_is_the_docker_clis() {
        // `docker network create -d overlay appnet`, byte for byte.
        let body = create_request(&args("appnet")).unwrap().to_compact();
        assert_eq!(
            body,
            r#"{"Driver":"overlay","Scope":"","IPAM":{"Driver":"default","Options":{},"Config":[]},"Internal":false,"Attachable":false,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":{},"Labels":{},"Name":"appnet"}"#
        );
        let a = parse_create(&[
            "--subnet",
            "10.9.0.0/24",
            "--gateway",
            "10.9.0.254",
            "--ip-range",
            "10.9.0.128/25",
            "--aux-address",
            "router=10.9.0.2",
            "--aux-address",
            "dns=10.9.0.3",
            "--attachable",
            "--internal",
            "-o",
            "encrypted",
            "--opt",
            "mtu=1400",
            "--label",
            "team=a",
            "--label",
            "solo",
            "--ipam-opt",
            "x=y",
            "--scope",
            "swarm",
            "--ipv6=false",
            "--config-from",
            "base",
            "web",
        ]);
        assert_eq!(a.driver, "overlay", "Shoal's default driver");
        let body = create_request(&a).unwrap().to_compact();
        assert_eq!(
            body,
            r#"{"Driver":"overlay","Scope":"swarm","EnableIPv6":false,"IPAM":{"Driver":"default","Options":{"x":"y"},"Config":[{"Subnet":"10.9.0.0/24","IPRange":"10.9.0.128/25","Gateway":"10.9.0.254","AuxiliaryAddresses":{"dns":"10.9.0.3","router":"10.9.0.2"}}]},"Internal":true,"Attachable":true,"Ingress":false,"ConfigOnly":false,"ConfigFrom":{"Network":"base"},"Options":{"encrypted":"","mtu":"1400"},"Labels":{"solo":"","team":"a"},"Name":"web"}"#
        );
        let a = parse_create(&["--ipv6", "--ingress", "--config-only", "-d", "bridge", "--subnet", "10.1.0.0/24,10.2.0.0/24", "n"]);
        let v = create_request(&a).unwrap();
        assert_eq!(v["EnableIPv6"], Value::Bool(true));
        assert_eq!(v["Driver"].str(), "bridge");
        assert!(v["Ingress"].bool() && v["ConfigOnly"].bool());
        assert_eq!(v.at(&["IPAM", "Config"]).items().len(), 2, "--subnet takes a comma-separated list");
    }

    #[test]
    fn create_checks_ipam_flags_as_docker_does() {
        let err = |argv: &[&str]| {
            let mut full = argv.to_vec();
            full.push("n");
            create_request(&parse_create(&full)).unwrap_err()
        };
        assert_eq!(err(&["--gateway", "10.0.0.1"]), "every ip-range or gateway must have a corresponding subnet");
        assert_eq!(err(&["--ip-range", "10.0.0.0/25"]), "every ip-range or gateway must have a corresponding subnet");
        assert_eq!(
            err(&["--subnet", "10.0.0.0/16", "--subnet", "10.0.1.0/24"]),
            "multiple overlapping subnet configuration is not supported"
        );
        assert_eq!(err(&["--subnet", "10.0.0.0/24", "--gateway", "10.1.0.1"]), "no matching subnet for gateway 10.1.0.1");
        assert_eq!(err(&["--subnet", "10.0.0.0/24", "--gateway", "bogus"]), "no matching subnet for gateway bogus");
        assert_eq!(err(&["--subnet", "10.0.0.0/24", "--ip-range", "10.1.0.0/25"]), "no matching subnet for range 10.1.0.0/25");
        assert_eq!(err(&["--subnet", "10.0.0.0/24", "--ip-range", "10.0.0.300/25"]), "invalid CIDR address: 10.0.0.300/25");
        assert_eq!(err(&["--subnet", "10.0.0.0/24", "--aux-address", "a=10.5.0.1"]), "no matching subnet for aux-address 10.5.0.1");
        assert_eq!(err(&["--subnet", "nope", "--gateway", "10.0.0.1"]), "invalid subnet: invalid CIDR address: nope");
        assert_eq!(err(&["--subnet", "10.0.0.0/33", "--gateway", "10.0.0.1"]), "invalid subnet: invalid CIDR address: 10.0.0.0/33");
        assert_eq!(
            err(&["--subnet", "10.0.0.0/24,10.1.0.0/24", "--gateway", "10.0.0.1,10.0.0.2"]),
            "cannot configure multiple gateways (10.0.0.2, 10.0.0.1) for the same subnet (10.0.0.0/24)"
        );
        assert_eq!(
            err(&["--subnet", "10.0.0.0/24,10.1.0.0/24", "--ip-range", "10.0.0.0/25,10.0.0.128/25"]),
            "cannot configure multiple ranges (10.0.0.128/25, 10.0.0.0/25) on the same subnet (10.0.0.0/24)"
        );
        // IPv6 and a mapped address are matched as Go matches them.
        assert!(subnet_matches("fd00::/64", "fd00::1").unwrap());
        assert!(!subnet_matches("fd00::/64", "10.0.0.1").unwrap());
        assert!(subnet_matches("10.0.0.0/8", "::ffff:10.2.3.4").unwrap());
        assert_eq!(validate_label(" =x").unwrap_err(), "invalid label ' =x': empty name");
        assert_eq!(validate_label("a b=c").unwrap_err(), "label 'a b' contains whitespaces");
    }

    #[test]
    fn create_posts_and_prints_the_id_or_the_daemons_error() {
        let d = FakeDaemon::start(|r| {
            if r.body.contains("frobnicate") {
                (400, r#"{"message":"network driver option \"frobnicate\" is not supported by this version of shoald"}"#.into())
            } else {
                (201, r#"{"Id":"kq2n3w9hxv0z8d7c6b5a4m3l2","Warning":""}"#.into())
            }
        });
        let warned = FakeDaemon::start(|_| (201, r#"{"Id":"kq2n3w9hxv0z8d7c6b5a4m3l2","Warning":"--attachable is kept"}"#.into()));
        let (r, out) = warned.run(|env| create(env, &parse_create(&["--attachable", "x"])));
        r.unwrap();
        assert_eq!(out, "kq2n3w9hxv0z8d7c6b5a4m3l2\n", "the warning goes to stderr");
        let (r, out) = d.run(|env| create(env, &args("appnet")));
        r.unwrap();
        assert_eq!(out, "kq2n3w9hxv0z8d7c6b5a4m3l2\n");
        let req = &d.requests()[0];
        assert_eq!((req.method.as_str(), req.target.as_str()), ("POST", "/v1.44/networks/create"));
        let (r, out) = d.run(|env| create(env, &parse_create(&["--opt", "frobnicate=1", "sec"])));
        assert_eq!(out, "");
        assert_eq!(
            r.unwrap_err().message,
            "Error response from daemon: network driver option \"frobnicate\" is not supported by this version of shoald"
        );
        let before = d.requests().len();
        let (r, _) = d.run(|env| create(env, &parse_create(&["--gateway", "10.0.0.1", "x"])));
        assert_eq!(r.unwrap_err().message, "every ip-range or gateway must have a corresponding subnet");
        assert_eq!(d.requests().len(), before, "refused before anything is sent");
    }

    #[test]
    fn tables_match_docker() {
        let nets = [json::parse(NET).unwrap(), json::parse(INGRESS).unwrap()];
        assert_eq!(
            render_network_list(&nets, "table", false, false).unwrap(),
            "NETWORK ID     NAME      DRIVER    SCOPE\n\
             kq2n3w9hxv0z   appnet    overlay   swarm\n\
             1ngr3ss00000   ingress   overlay   swarm\n"
        );
        assert_eq!(
            render_network_list(&nets, "table", false, true).unwrap(),
            "NETWORK ID                  NAME      DRIVER    SCOPE\n\
             kq2n3w9hxv0z8d7c6b5a4m3l2   appnet    overlay   swarm\n\
             1ngr3ss00000000000000000a   ingress   overlay   swarm\n"
        );
        assert_eq!(render_network_list(&[], "table", false, false).unwrap(), "NETWORK ID   NAME      DRIVER    SCOPE\n");
        assert_eq!(render_network_list(&nets, "table", true, false).unwrap(), "kq2n3w9hxv0z\n1ngr3ss00000\n");
        assert_eq!(render_network_list(&nets, "table", true, true).unwrap(), "kq2n3w9hxv0z8d7c6b5a4m3l2\n1ngr3ss00000000000000000a\n");
        assert_eq!(
            render_network_list(&nets[..1], "{{.Name}} {{.Labels}} {{.Internal}} {{.IPv6}} {{.CreatedAt}}", false, false).unwrap(),
            "appnet env=prod,team=a false false 2026-01-02 03:04:05.5 +0000 UTC\n"
        );
        assert_eq!(
            render_network_list(&nets[..1], "json", false, false).unwrap(),
            "{\"CreatedAt\":\"2026-01-02 03:04:05.5 +0000 UTC\",\"Driver\":\"overlay\",\"ID\":\"kq2n3w9hxv0z\",\"IPv4\":\"true\",\"IPv6\":\"false\",\"Internal\":\"false\",\"Labels\":\"env=prod,team=a\",\"Name\":\"appnet\",\"Scope\":\"swarm\"}\n"
        );
        assert_eq!(
            render_network_list(&nets[..1], "table {{.Name}}\t{{.Internal}}\t{{.Labels}}", false, false).unwrap(),
            "NAME      INTERNAL   LABELS\nappnet    false      env=prod,team=a\n"
        );
        assert_eq!(
            render_network_list(&nets[..1], "raw", false, false).unwrap(),
            "network_id: kq2n3w9hxv0z\nname: appnet\ndriver: overlay\nscope: swarm\n\n"
        );
        // Natural order of names, as docker sorts.
        let named = |n: &str| json::object([("Name", Value::from(n)), ("Id", Value::from(n))]);
        let list = [named("net10"), named("net2"), named("a")];
        assert_eq!(render_network_list(&list, "{{.Name}}", false, false).unwrap(), "a\nnet2\nnet10\n");
    }

    #[test]
    fn ls_sends_filters_and_inspect_prints_arrays_or_templates() {
        let d = FakeDaemon::start(|r| {
            if r.target.starts_with("/v1.44/networks?") {
                (200, format!("[{NET}]"))
            } else if r.target.starts_with("/v1.44/networks/appnet") {
                (200, NET.to_string())
            } else {
                (404, r#"{"message":"network nope not found"}"#.into())
            }
        });
        let a = LsArgs { filter: vec!["driver=overlay".into()], quiet: true, ..Default::default() };
        let (r, out) = d.run(|env| ls(env, a));
        r.unwrap();
        assert_eq!(out, "kq2n3w9hxv0z\n");
        assert_eq!(d.requests()[0].target, "/v1.44/networks?filters=%7B%22driver%22%3A%7B%22overlay%22%3Atrue%7D%7D");
        let a = InspectArgs {
            format: Some("{{(index .IPAM.Config 0).Subnet}} {{.Attachable}}".into()),
            names: vec!["appnet".into()],
            verbose: false,
        };
        let (r, out) = d.run(|env| inspect_networks(env, a));
        r.unwrap();
        assert_eq!(out, "10.0.1.0/24 true\n");
        let a = InspectArgs { names: vec!["appnet".into(), "nope".into()], verbose: true, ..Default::default() };
        let (r, out) = d.run(|env| inspect_networks(env, a));
        assert_eq!(r.unwrap_err().message, "Error response from daemon: network nope not found");
        assert!(out.starts_with("[\n    {\n        \"Name\": \"appnet\",\n        \"Id\": \"kq2n3w9hxv0z8d7c6b5a4m3l2\","), "{out}");
        assert!(out.ends_with("}\n]\n"), "{out}");
        assert!(d.requests().iter().any(|r| r.target == "/v1.44/networks/appnet?verbose=true"));
    }

    #[test]
    fn rm_prints_names_reports_failures_and_asks_before_ingress() {
        let d = FakeDaemon::start(|r| match (r.method.as_str(), r.target.as_str()) {
            ("GET", "/v1.44/networks/ingress") => (200, INGRESS.to_string()),
            ("GET", "/v1.44/networks/appnet") => (200, NET.to_string()),
            ("DELETE", "/v1.44/networks/appnet") | ("DELETE", "/v1.44/networks/ingress") => (204, String::new()),
            ("DELETE", "/v1.44/networks/busy") => {
                (400, r#"{"message":"rpc error: code = FailedPrecondition desc = network b is in use by service s"}"#.into())
            }
            _ => (404, r#"{"message":"network nope not found"}"#.into()),
        });
        let a = RmArgs { names: vec!["appnet".into(), "busy".into(), "nope".into()], force: false };
        let (r, out) = d.run(|env| rm(env, &a, &mut &b""[..]));
        assert_eq!(out, "appnet\n");
        assert_eq!(
            r.unwrap_err().message,
            "Error response from daemon: rpc error: code = FailedPrecondition desc = network b is in use by service s\n\
             Error response from daemon: network nope not found"
        );
        let a = RmArgs { names: vec!["nope".into()], force: true };
        let (r, out) = d.run(|env| rm(env, &a, &mut &b""[..]));
        assert_eq!((r, out.as_str()), (Ok(()), ""));
        let a = RmArgs { names: vec!["ingress".into()], force: false };
        let (r, out) = d.run(|env| rm(env, &a, &mut &b"n\n"[..]));
        r.unwrap();
        assert_eq!(out, format!("{INGRESS_WARNING} [y/N] "));
        assert!(!d.requests().iter().any(|r| r.method == "DELETE" && r.target.ends_with("/ingress")));
        let a = RmArgs { names: vec!["ingress".into()], force: false };
        let (r, out) = d.run(|env| rm(env, &a, &mut &b" Y \n"[..]));
        r.unwrap();
        assert_eq!(out, format!("{INGRESS_WARNING} [y/N] ingress\n"));
    }

    #[test]
    fn prune_asks_then_prints_what_went() {
        let d = FakeDaemon::start(|_| (200, r#"{"NetworksDeleted":["old1","old2"]}"#.into()));
        let (r, out) = d.run(|env| prune(env, &PruneArgs::default(), &mut &b"\n"[..]));
        r.unwrap();
        assert_eq!(
            out,
            "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] "
        );
        assert!(d.requests().is_empty(), "nothing sent without a yes");
        let (r, out) = d.run(|env| prune(env, &PruneArgs::default(), &mut &b"y\n"[..]));
        r.unwrap();
        assert_eq!(out, format!("{PRUNE_WARNING} [y/N] Deleted Networks:\nold1\nold2\n\n"));
        let a = PruneArgs { force: true, filter: vec!["label=team=a".into()] };
        let (r, out) = d.run(|env| prune(env, &a, &mut &b""[..]));
        r.unwrap();
        assert_eq!(out, "Deleted Networks:\nold1\nold2\n\n");
        let last = d.requests().pop().unwrap();
        assert_eq!(
            (last.method.as_str(), last.target.as_str()),
            ("POST", "/v1.44/networks/prune?filters=%7B%22label%22%3A%7B%22team%3Da%22%3Atrue%7D%7D")
        );
        assert_eq!(prune_report(&json::parse(r#"{"NetworksDeleted":null}"#).unwrap()), "");
    }
}
