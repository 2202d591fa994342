//! `shoal node …`: ls, inspect, update, promote, demote, rm, ps.

use clap::{Args, Subcommand};

use super::{get_node, node_reference, Env};
use crate::client::{path_segment, query};
use crate::commands::inspect::{inspect, InspectFormat};
use crate::commands::tasks::{self, TaskListOptions};
use crate::error::{CliError, CliResult};
use crate::filters::Filters;
use crate::format::{self, bytes_size, natural_cmp, pretty_print};
use serde_json::{Map, Value};

use crate::json::{self, JsonExt};
use crate::timestamp::Timestamp;

#[derive(Subcommand, Debug)]
pub enum NodeCommand {
    /// Demote one or more nodes from manager in the swarm
    Demote {
        #[arg(required = true, value_name = "NODE")]
        nodes: Vec<String>,
    },
    /// Display detailed information on one or more nodes
    Inspect(InspectArgs),
    /// List nodes in the swarm
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Promote one or more nodes to manager in the swarm
    Promote {
        #[arg(required = true, value_name = "NODE")]
        nodes: Vec<String>,
    },
    /// List tasks running on one or more nodes, defaults to current node
    Ps(PsArgs),
    /// Remove one or more nodes from the swarm
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Update a node
    Update(UpdateArgs),
}

#[derive(Args, Debug, Default)]
pub struct LsArgs {
    /// Only display IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'
    #[arg(long)]
    pub format: Option<String>,
    /// Filter output based on conditions provided
    #[arg(short, long, value_name = "filter")]
    pub filter: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct InspectArgs {
    /// Format output using a custom template: 'json', 'TEMPLATE'
    #[arg(short, long)]
    pub format: Option<String>,
    /// Print the information in a human friendly format
    #[arg(long)]
    pub pretty: bool,
    /// self|NODE [NODE...]
    #[arg(value_name = "NODE")]
    pub nodes: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct UpdateArgs {
    /// Role of the node ("worker", "manager")
    #[arg(long)]
    pub role: Option<String>,
    /// Availability of the node ("active", "pause", "drain")
    #[arg(long)]
    pub availability: Option<String>,
    /// Add or update a node label ("key=value")
    #[arg(long = "label-add", value_name = "list")]
    pub label_add: Vec<String>,
    /// Remove a node label if exists
    #[arg(long = "label-rm", value_name = "list")]
    pub label_rm: Vec<String>,
    #[arg(value_name = "NODE")]
    pub node: String,
}

#[derive(Args, Debug, Default)]
pub struct RmArgs {
    /// Force remove a node from the swarm
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true, value_name = "NODE")]
    pub nodes: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct PsArgs {
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Do not map IDs to Names
    #[arg(long = "no-resolve")]
    pub no_resolve: bool,
    /// Filter output based on conditions provided
    #[arg(short, long, value_name = "filter")]
    pub filter: Vec<String>,
    /// Pretty-print tasks using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Only display task IDs
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(value_name = "NODE")]
    pub nodes: Vec<String>,
}

pub fn run(env: &mut Env, cmd: NodeCommand) -> CliResult {
    match cmd {
        NodeCommand::Ls(a) => ls(env, a),
        NodeCommand::Inspect(a) => inspect_nodes(env, a),
        NodeCommand::Update(a) => update(env, a),
        NodeCommand::Promote { nodes } => promote(env, &nodes),
        NodeCommand::Demote { nodes } => demote(env, &nodes),
        NodeCommand::Rm(a) => rm(env, a),
        NodeCommand::Ps(a) => ps(env, a),
    }
}

// ------------------------------------------------------------------- ls

pub const DEFAULT_NODE_TABLE_FORMAT: &str =
    "table {{.ID}} {{if .Self}}*{{else}} {{ end }}\t{{.Hostname}}\t{{.Status}}\t{{.Availability}}\t{{.ManagerStatus}}\t{{.EngineVersion}}";

fn node_list_format(source: &str, quiet: bool) -> String {
    match source {
        format::TABLE_FORMAT_KEY if quiet => format::DEFAULT_QUIET_FORMAT.into(),
        format::TABLE_FORMAT_KEY => DEFAULT_NODE_TABLE_FORMAT.into(),
        format::RAW_FORMAT_KEY if quiet => "node_id: {{.ID}}".into(),
        format::RAW_FORMAT_KEY => "node_id: {{.ID}}\\nhostname: {{.Hostname}}\\nstatus: {{.Status}}\\navailability: {{.Availability}}\\nmanager_status: {{.ManagerStatus}}\\n".into(),
        other => other.into(),
    }
}

fn node_header() -> Value {
    format::header_obj(&[
        ("ID", "ID"),
        ("Self", ""),
        ("Hostname", "HOSTNAME"),
        ("Status", "STATUS"),
        ("Availability", "AVAILABILITY"),
        ("ManagerStatus", "MANAGER STATUS"),
        ("EngineVersion", "ENGINE VERSION"),
        ("TLSStatus", "TLS STATUS"),
    ])
}

fn tls_info_empty(t: &Value) -> bool {
    t["TrustRoot"].str().is_empty() && t["CertIssuerSubject"].str().is_empty() && t["CertIssuerPublicKey"].str().is_empty()
}

/// MANAGER STATUS: "Leader", else the reachability ("Reachable",
/// "Unreachable"), empty for workers.
pub fn manager_status(node: &Value) -> String {
    let ms = &node["ManagerStatus"];
    if ms.is_null() {
        return String::new();
    }
    if ms["Leader"].bool() {
        "Leader".into()
    } else {
        pretty_print(ms["Reachability"].str())
    }
}

/// The fields docker's node list context offers to `--format` (its
/// `{{json .}}` marshals them in name order).
pub fn node_row(node: &Value, swarm_info: &Value) -> Value {
    let id = node["ID"].str();
    let cluster_tls = swarm_info.at(&["Cluster", "TLSInfo"]);
    let node_tls = node.at(&["Description", "TLSInfo"]);
    let tls_status = if tls_info_empty(cluster_tls) || tls_info_empty(node_tls) {
        "Unknown"
    } else if cluster_tls["TrustRoot"] == node_tls["TrustRoot"]
        && cluster_tls["CertIssuerSubject"] == node_tls["CertIssuerSubject"]
        && cluster_tls["CertIssuerPublicKey"] == node_tls["CertIssuerPublicKey"]
    {
        "Ready"
    } else {
        "Needs Rotation"
    };
    json::object([
        ("Availability", Value::from(pretty_print(node.at(&["Spec", "Availability"]).str()))),
        ("EngineVersion", Value::from(node.at(&["Description", "Engine", "EngineVersion"]).str())),
        ("Hostname", Value::from(node.at(&["Description", "Hostname"]).str())),
        ("ID", Value::from(id)),
        ("ManagerStatus", Value::from(manager_status(node))),
        ("Self", Value::Bool(!id.is_empty() && id == swarm_info["NodeID"].str())),
        ("Status", Value::from(pretty_print(node.at(&["Status", "State"]).str()))),
        ("TLSStatus", Value::from(tls_status)),
    ])
}

/// Renders a node list: sorted by hostname (natural order), then ID.
pub fn render_node_list(nodes: &[Value], info: &Value, format: &str, quiet: bool) -> CliResult<String> {
    let mut nodes: Vec<&Value> = nodes.iter().collect();
    nodes.sort_by(|a, b| {
        natural_cmp(a.at(&["Description", "Hostname"]).str(), b.at(&["Description", "Hostname"]).str())
            .then_with(|| a["ID"].str().cmp(b["ID"].str()))
    });
    let swarm = &info["Swarm"];
    let rows: Vec<Value> = nodes.iter().map(|n| node_row(n, swarm)).collect();
    format::write_rows(&node_list_format(format, quiet), &node_header(), &rows)
}

fn ls(env: &mut Env, args: LsArgs) -> CliResult {
    let filters = Filters::from_flags(&args.filter)?;
    let nodes = env.client.get(&format!("/nodes{}", filters.query()))?;
    let nodes = nodes.items();
    let info = if !nodes.is_empty() && !args.quiet { env.client.get("/info")? } else { Value::Null };
    let format = args.format.filter(|f| !f.is_empty()).unwrap_or_else(|| format::TABLE_FORMAT_KEY.into());
    let text = render_node_list(nodes, &info, &format, args.quiet)?;
    env.print(&text)
}

// -------------------------------------------------------------- inspect

fn inspect_nodes(env: &mut Env, args: InspectArgs) -> CliResult {
    let format = if args.pretty { format::PRETTY_FORMAT_KEY.to_string() } else { args.format.unwrap_or_default() };
    if format.starts_with(format::PRETTY_FORMAT_KEY) && format != format::PRETTY_FORMAT_KEY {
        return Err(CliError::new("cannot supply extra formatting options to the pretty template"));
    }
    let refs = if args.nodes.is_empty() { vec!["self".to_string()] } else { args.nodes };
    let client = env.client.clone();
    let get = |r: &str| -> CliResult<String> {
        let id = node_reference(&client, r)?;
        client.raw("GET", &format!("/nodes/{}", path_segment(&id)), None)
    };
    if format == format::PRETTY_FORMAT_KEY {
        let mut errors = Vec::new();
        for r in &refs {
            match get(r).and_then(|raw| crate::client::parse_body(&raw)) {
                Ok(node) => {
                    let text = pretty_node(&node);
                    env.print(&text)?;
                    env.print("\n")?;
                }
                Err(e) => errors.push(e),
            }
        }
        return CliError::join(errors);
    }
    inspect(env, &refs, &InspectFormat::from_flag(&format), get)
}

/// docker's `node inspect --pretty` view (tabs as docker prints them).
pub fn pretty_node(node: &Value) -> String {
    let mut s = String::new();
    let spec = &node["Spec"];
    let desc = &node["Description"];
    let status = &node["Status"];
    s.push_str(&format!("ID:\t\t\t{}", node["ID"].str()));
    if !spec["Name"].str().is_empty() {
        s.push_str(&format!("\nName:\t\t\t{}", spec["Name"].str()));
    }
    push_labels(&mut s, "Labels", &spec["Labels"]);
    s.push_str(&format!("\nHostname:              \t{}", desc["Hostname"].str()));
    let created = node["CreatedAt"].str();
    let joined = Timestamp::parse(created).map(|t| t.go_string()).unwrap_or_else(|| created.to_string());
    s.push_str(&format!("\nJoined at:             \t{}", pretty_print(&joined)));
    s.push_str("\nStatus:");
    s.push_str(&format!("\n State:\t\t\t{}", pretty_print(status["State"].str())));
    if !status["Message"].str().is_empty() {
        s.push_str(&format!("\n Message:              \t{}", pretty_print(status["Message"].str())));
    }
    s.push_str(&format!("\n Availability:         \t{}", pretty_print(spec["Availability"].str())));
    if !status["Addr"].str().is_empty() {
        s.push_str(&format!("\n Address:\t\t{}", status["Addr"].str()));
    }
    let ms = &node["ManagerStatus"];
    if !ms.is_null() {
        s.push_str("\nManager Status:");
        s.push_str(&format!("\n Address:\t\t{}", ms["Addr"].str()));
        s.push_str(&format!("\n Raft Status:\t\t{}", pretty_print(ms["Reachability"].str())));
        s.push_str(if ms["Leader"].bool() { "\n Leader:\t\tYes" } else { "\n Leader:\t\tNo" });
    }
    s.push_str("\nPlatform:");
    s.push_str(&format!("\n Operating System:\t{}", desc.at(&["Platform", "OS"]).str()));
    s.push_str(&format!("\n Architecture:\t\t{}", desc.at(&["Platform", "Architecture"]).str()));
    s.push_str("\nResources:");
    let nano = desc.at(&["Resources", "NanoCPUs"]).as_i64().unwrap_or(0);
    s.push_str(&format!("\n CPUs:\t\t\t{}", nano / 1_000_000_000));
    let mem = desc.at(&["Resources", "MemoryBytes"]).as_f64().unwrap_or(0.0);
    s.push_str(&format!("\n Memory:\t\t{}", if mem == 0.0 { String::new() } else { bytes_size(mem) }));
    let plugins = desc.at(&["Engine", "Plugins"]).items();
    if !plugins.is_empty() {
        let mut by_type: Vec<(String, Vec<String>)> = Vec::new();
        for p in plugins {
            let t = p["Type"].str().to_string();
            let n = p["Name"].str().to_string();
            match by_type.iter_mut().find(|(k, _)| *k == t) {
                Some((_, names)) => names.push(n),
                None => by_type.push((t, vec![n])),
            }
        }
        by_type.sort_by(|a, b| a.0.cmp(&b.0));
        s.push_str("\nPlugins:");
        for (t, names) in by_type {
            let joined = names.join(", ");
            if joined.is_empty() {
                s.push_str(&format!("\n {t}:"));
            } else {
                s.push_str(&format!("\n {t}:\t\t{joined}"));
            }
        }
    }
    s.push_str(&format!("\nEngine Version:\t\t{}", desc.at(&["Engine", "EngineVersion"]).str()));
    push_labels(&mut s, "Engine Labels", desc.at(&["Engine", "Labels"]));
    let tls = &desc["TLSInfo"];
    if !tls_info_empty(tls) {
        s.push_str("\nTLS Info:\n TrustRoot:\n");
        s.push_str(tls["TrustRoot"].str());
        s.push_str(&format!("\n Issuer Subject:\t{}", tls["CertIssuerSubject"].str()));
        s.push_str(&format!("\n Issuer Public Key:\t{}", tls["CertIssuerPublicKey"].str()));
    }
    s
}

fn push_labels(s: &mut String, title: &str, labels: &Value) {
    let mut pairs: Vec<(&String, &Value)> = labels.members().iter().collect();
    if pairs.is_empty() {
        return;
    }
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    s.push_str(&format!("\n{title}:"));
    for (k, v) in pairs {
        if v.str().is_empty() {
            s.push_str(&format!("\n - {k}"));
        } else {
            s.push_str(&format!("\n - {k}={}", v.str()));
        }
    }
}

// --------------------------------------------------------------- update

/// Fetches each node, lets `merge` change it, and posts the new spec with
/// the node's version. `merge` returning `Ok(false)` skips the node.
fn update_nodes(
    env: &mut Env,
    nodes: &[String],
    mut merge: impl FnMut(&mut Env, &mut Value) -> CliResult<bool>,
    mut success: impl FnMut(&mut Env, &str) -> CliResult,
) -> CliResult {
    for name in nodes {
        let mut node = get_node(env.client, name)?;
        if !merge(env, &mut node)? {
            continue;
        }
        let id = node["ID"].str().to_string();
        let version = node.at(&["Version", "Index"]).as_u64().unwrap_or(0);
        let spec = node["Spec"].clone();
        env.client.post(&format!("/nodes/{}/update{}", path_segment(&id), query(&[("version", version.to_string())])), Some(&spec))?;
        success(env, name)?;
    }
    Ok(())
}

/// Applies `node update` flags to a node's spec.
pub fn merge_node_update(args: &UpdateArgs, node: &mut Value) -> CliResult {
    let spec = node.entry(&["Spec"]);
    if let Some(role) = &args.role {
        spec.set("Role", role.as_str().into());
    }
    if let Some(a) = &args.availability {
        spec.set("Availability", a.as_str().into());
    }
    let labels = spec.entry(&["Labels"]);
    if labels.is_null() {
        *labels = Value::Object(Map::new());
    }
    for kv in &args.label_add {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        labels.set(k, v.into());
    }
    for k in &args.label_rm {
        if labels.remove(k).is_none() {
            return Err(CliError::new(format!("key {k} doesn't exist in node's labels")));
        }
    }
    Ok(())
}

fn update(env: &mut Env, args: UpdateArgs) -> CliResult {
    let nodes = vec![args.node.clone()];
    update_nodes(env, &nodes, |_, node| merge_node_update(&args, node).map(|_| true), |env, name| env.println(name))
}

fn set_role(env: &mut Env, nodes: &[String], role: &'static str) -> CliResult {
    update_nodes(
        env,
        nodes,
        |env, node| {
            if node.at(&["Spec", "Role"]).str() == role {
                let id = node["ID"].str().to_string();
                env.println(&format!("Node {id} is already a {role}."))?;
                return Ok(false);
            }
            node.entry(&["Spec"]).set("Role", role.into());
            Ok(true)
        },
        |env, name| {
            if role == "manager" {
                env.println(&format!("Node {name} promoted to a manager in the swarm."))
            } else {
                env.println(&format!("Manager {name} demoted in the swarm."))
            }
        },
    )
}

fn promote(env: &mut Env, nodes: &[String]) -> CliResult {
    set_role(env, nodes, "manager")
}

fn demote(env: &mut Env, nodes: &[String]) -> CliResult {
    set_role(env, nodes, "worker")
}

// ------------------------------------------------------------------- rm

fn rm(env: &mut Env, args: RmArgs) -> CliResult {
    let mut errors = Vec::new();
    for id in &args.nodes {
        let path = format!("/nodes/{}{}", path_segment(id), query(&[("force", args.force.to_string())]));
        match env.client.delete(&path) {
            Ok(_) => env.println(id)?,
            Err(e) => errors.push(e),
        }
    }
    CliError::join(errors)
}

// ------------------------------------------------------------------- ps

fn ps(env: &mut Env, args: PsArgs) -> CliResult {
    let refs = if args.nodes.is_empty() { vec!["self".to_string()] } else { args.nodes.clone() };
    let base = Filters::from_flags(&args.filter)?;
    let mut errors = Vec::new();
    let mut all = Vec::new();
    for r in &refs {
        let result = node_reference(env.client, r).and_then(|id| get_node(env.client, &id)).and_then(|node| {
            let mut f = base.clone();
            f.add("node", node["ID"].str());
            env.client.get(&format!("/tasks{}", f.query()))
        });
        match result {
            Ok(tasks) => all.extend(tasks.items().iter().cloned()),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() || !all.is_empty() {
        let opts = TaskListOptions {
            trunc: !args.no_trunc,
            no_resolve: args.no_resolve,
            quiet: args.quiet,
            format: args.format.clone().filter(|f| !f.is_empty()).unwrap_or_else(|| format::TABLE_FORMAT_KEY.into()),
        };
        if let Err(e) = tasks::print(env, all, &opts) {
            errors.push(e);
        }
    }
    CliError::join(errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::FakeDaemon;

    fn node(id: &str, host: &str, state: &str, avail: &str, manager: Option<(bool, &str)>) -> Value {
        let ms = match manager {
            Some((leader, reach)) => format!(r#","ManagerStatus":{{"Leader":{leader},"Reachability":"{reach}","Addr":"10.0.0.1:2377"}}"#),
            None => String::new(),
        };
        json::parse(&format!(
            r#"{{"ID":"{id}","Version":{{"Index":7}},"CreatedAt":"2009-11-10T23:00:00Z","Spec":{{"Labels":{{}},"Role":"{}","Availability":"{avail}"}},
               "Description":{{"Hostname":"{host}","Platform":{{"Architecture":"x86_64","OS":"linux"}},
               "Resources":{{"NanoCPUs":2000000000,"MemoryBytes":20971520}},"Engine":{{"EngineVersion":"0.1.0"}}}},
               "Status":{{"State":"{state}","Addr":"127.0.0.1"}}{ms}}}"#,
            if manager.is_some() { "manager" } else { "worker" }
        ))
        .unwrap()
    }

    fn info(self_id: &str) -> Value {
        json::parse(&format!(r#"{{"Swarm":{{"NodeID":"{self_id}","LocalNodeState":"active"}}}}"#)).unwrap()
    }

    #[test]
    fn table_marks_self_and_sorts() {
        let nodes = vec![
            node("zzzzzzzzzzzzzzzzzzzzzzzz2", "node-10", "down", "drain", None),
            node("tjjggogqpnpj2phbfbz8jd5oq", "node-1", "ready", "active", Some((true, "reachable"))),
            node("aaaaaaaaaaaaaaaaaaaaaaaa3", "node-2", "ready", "pause", Some((false, "unreachable"))),
        ];
        let out = render_node_list(&nodes, &info("tjjggogqpnpj2phbfbz8jd5oq"), "table", false).unwrap();
        assert_eq!(
            out,
            "ID                            HOSTNAME   STATUS    AVAILABILITY   MANAGER STATUS   ENGINE VERSION\n\
             tjjggogqpnpj2phbfbz8jd5oq *   node-1     Ready     Active         Leader           0.1.0\n\
             aaaaaaaaaaaaaaaaaaaaaaaa3     node-2     Ready     Pause          Unreachable      0.1.0\n\
             zzzzzzzzzzzzzzzzzzzzzzzz2     node-10    Down      Drain                           0.1.0\n"
        );
        let q = render_node_list(&nodes, &Value::Null, "table", true).unwrap();
        assert_eq!(q, "tjjggogqpnpj2phbfbz8jd5oq\naaaaaaaaaaaaaaaaaaaaaaaa3\nzzzzzzzzzzzzzzzzzzzzzzzz2\n");
        let j = render_node_list(&nodes[1..2], &info("x"), "json", false).unwrap();
        assert_eq!(
            j,
            "{\"Availability\":\"Active\",\"EngineVersion\":\"0.1.0\",\"Hostname\":\"node-1\",\"ID\":\"tjjggogqpnpj2phbfbz8jd5oq\",\"ManagerStatus\":\"Leader\",\"Self\":false,\"Status\":\"Ready\",\"TLSStatus\":\"Unknown\"}\n"
        );
        let custom = render_node_list(&nodes[1..2], &info("x"), "{{.Hostname}}: {{.Status}}", false).unwrap();
        assert_eq!(custom, "node-1: Ready\n");
    }

    #[test]
    fn empty_list_prints_header() {
        let out = render_node_list(&[], &Value::Null, "table", false).unwrap();
        assert_eq!(out, "ID        HOSTNAME   STATUS    AVAILABILITY   MANAGER STATUS   ENGINE VERSION\n");
    }

    #[test]
    fn pretty_view() {
        let mut n = node("nodeID", "defaultNodeHostname", "ready", "active", Some((true, "reachable")));
        n.entry(&["Spec"]).set("Name", "defaultNodeName".into());
        n.entry(&["Description", "Engine"]).set(
            "Plugins",
            json::parse(r#"[{"Type":"Volume","Name":"local"},{"Type":"Network","Name":"bridge"},{"Type":"Network","Name":"overlay"}]"#)
                .unwrap(),
        );
        n.entry(&["Description", "Engine"]).set("Labels", json::parse(r#"{"engine":"label"}"#).unwrap());
        n.entry(&["Description", "Resources"]).set("NanoCPUs", Value::from(0i64));
        let want = [
            "ID:\t\t\tnodeID",
            "Name:\t\t\tdefaultNodeName",
            "Hostname:              \tdefaultNodeHostname",
            "Joined at:             \t2009-11-10 23:00:00 +0000 utc",
            "Status:",
            " State:\t\t\tReady",
            " Availability:         \tActive",
            " Address:\t\t127.0.0.1",
            "Manager Status:",
            " Address:\t\t10.0.0.1:2377",
            " Raft Status:\t\tReachable",
            " Leader:\t\tYes",
            "Platform:",
            " Operating System:\tlinux",
            " Architecture:\t\tx86_64",
            "Resources:",
            " CPUs:\t\t\t0",
            " Memory:\t\t20MiB",
            "Plugins:",
            " Network:\t\tbridge, overlay",
            " Volume:\t\tlocal",
            "Engine Version:\t\t0.1.0",
            "Engine Labels:",
            " - engine=label",
        ]
        .join("\n");
        assert_eq!(pretty_node(&n), want);
    }

    #[test]
    fn label_merging() {
        let mut n = node("x", "h", "ready", "active", None);
        let args = UpdateArgs {
            label_add: vec!["type=frontend".into(), "flag".into()],
            availability: Some("drain".into()),
            node: "x".into(),
            ..Default::default()
        };
        merge_node_update(&args, &mut n).unwrap();
        assert_eq!(n["Spec"].to_compact(), r#"{"Labels":{"type":"frontend","flag":""},"Role":"worker","Availability":"drain"}"#);
        let rm = UpdateArgs { label_rm: vec!["nope".into()], node: "x".into(), ..Default::default() };
        assert_eq!(merge_node_update(&rm, &mut n).unwrap_err().message, "key nope doesn't exist in node's labels");
    }

    fn run_cmd(d: &FakeDaemon, cmd: NodeCommand) -> (CliResult, String) {
        d.run(|env| run(env, cmd))
    }

    #[test]
    fn update_posts_spec_with_version() {
        let n = node("abc", "node-2", "ready", "active", None).to_compact();
        let d = FakeDaemon::start(move |req| match (req.method.as_str(), req.target.as_str()) {
            ("GET", "/v1.44/nodes/node-2") => (200, n.clone()),
            ("POST", "/v1.44/nodes/abc/update?version=7") => (200, String::new()),
            _ => (404, r#"{"message":"no such route"}"#.into()),
        });
        let args = UpdateArgs { label_add: vec!["type=frontend".into()], node: "node-2".into(), ..Default::default() };
        let (r, out) = run_cmd(&d, NodeCommand::Update(args));
        r.unwrap();
        assert_eq!(out, "node-2\n");
        let reqs = d.requests();
        assert_eq!(reqs[1].body, r#"{"Labels":{"type":"frontend"},"Role":"worker","Availability":"active"}"#);
    }

    #[test]
    fn promote_and_demote_messages() {
        let worker = node("w1", "node-2", "ready", "active", None).to_compact();
        let manager = node("m1", "node-1", "ready", "active", Some((true, "reachable"))).to_compact();
        let d = FakeDaemon::start(move |req| match (req.method.as_str(), req.target.as_str()) {
            ("GET", "/v1.44/nodes/node-2") => (200, worker.clone()),
            ("GET", "/v1.44/nodes/node-1") => (200, manager.clone()),
            ("POST", _) => (200, String::new()),
            _ => (404, r#"{"message":"node nope not found"}"#.into()),
        });
        let (r, out) = run_cmd(&d, NodeCommand::Promote { nodes: vec!["node-2".into(), "node-1".into()] });
        r.unwrap();
        assert_eq!(out, "Node node-2 promoted to a manager in the swarm.\nNode m1 is already a manager.\n");
        let (r, out) = run_cmd(&d, NodeCommand::Demote { nodes: vec!["node-1".into(), "node-2".into()] });
        r.unwrap();
        assert_eq!(out, "Manager node-1 demoted in the swarm.\nNode w1 is already a worker.\n");
        let (r, _) = run_cmd(&d, NodeCommand::Promote { nodes: vec!["nope".into()] });
        assert_eq!(r.unwrap_err().message, "Error response from daemon: node nope not found");
    }

    #[test]
    fn ls_against_fake_daemon_and_rm() {
        let list = format!("[{}]", node("tjjggogqpnpj2phbfbz8jd5oq", "node-1", "ready", "active", Some((true, "reachable"))).to_compact());
        let d = FakeDaemon::start(move |req| match (req.method.as_str(), req.target.as_str()) {
            ("GET", t) if t.starts_with("/v1.44/nodes?filters=") => (200, list.clone()),
            ("GET", "/v1.44/info") => (200, info("tjjggogqpnpj2phbfbz8jd5oq").to_compact()),
            ("DELETE", "/v1.44/nodes/n1?force=true") => (200, String::new()),
            _ => (404, r#"{"message":"node n2 not found"}"#.into()),
        });
        let (r, out) = run_cmd(&d, NodeCommand::Ls(LsArgs { filter: vec!["role=manager".into()], ..Default::default() }));
        r.unwrap();
        assert!(out.contains("tjjggogqpnpj2phbfbz8jd5oq *   node-1"), "{out}");
        assert_eq!(d.requests()[0].target, "/v1.44/nodes?filters=%7B%22role%22%3A%7B%22manager%22%3Atrue%7D%7D");
        let (r, out) = run_cmd(&d, NodeCommand::Rm(RmArgs { force: true, nodes: vec!["n1".into(), "n2".into()] }));
        assert_eq!(out, "n1\n");
        assert_eq!(r.unwrap_err().message, "Error response from daemon: node n2 not found");
    }

    #[test]
    fn ps_prints_header_for_no_tasks() {
        let n = node("abc", "node-1", "ready", "active", None).to_compact();
        let d = FakeDaemon::start(move |req| match (req.method.as_str(), req.target.as_str()) {
            ("GET", "/v1.44/info") => (200, info("abc").to_compact()),
            ("GET", "/v1.44/nodes/abc") => (200, n.clone()),
            ("GET", t) if t.starts_with("/v1.44/tasks?filters=") => (200, "[]".into()),
            _ => (404, r#"{"message":"nope"}"#.into()),
        });
        let (r, out) = run_cmd(&d, NodeCommand::Ps(PsArgs::default()));
        r.unwrap();
        assert_eq!(out, "ID        NAME      IMAGE     NODE      DESIRED STATE   CURRENT STATE   ERROR     PORTS\n");
        assert_eq!(d.requests()[2].target, "/v1.44/tasks?filters=%7B%22node%22%3A%7B%22abc%22%3Atrue%7D%7D");
    }
}
