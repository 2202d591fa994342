//! `shoal volume create | ls | inspect | rm | prune`: the local volumes of
//! the node this CLI talks to, with the docker CLI's flags and output.

use std::io::BufRead;

use clap::{Args, Subcommand};

use super::inspect::InspectFormat;
use super::{CliError, CliResult, Env};
use crate::client::{path_segment, query};
use crate::filters::Filters;
use crate::format::{header_obj, human_size, natural_cmp, write_rows};
use serde_json::{Map, Value};

use crate::json::{self, JsonExt};
use crate::template::METHOD_PREFIX;

#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// Create a volume
    Create(CreateArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm(RmArgs),
}

#[derive(Args, Debug, Default)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short, long, value_name = "string", default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long, value_name = "list")]
    pub label: Vec<String>,
    /// Specify volume name
    #[arg(long = "name", value_name = "string", hide = true)]
    pub name_flag: Option<String>,
    /// Set driver specific options
    #[arg(short, long = "opt", value_name = "map")]
    pub opt: Vec<String>,
    #[arg(value_name = "VOLUME")]
    pub name: Option<String>,
}

#[derive(Args, Debug, Default)]
pub struct InspectArgs {
    /// Format output using a custom template: 'json', 'TEMPLATE'
    #[arg(short, long, value_name = "string", default_value = "")]
    pub format: String,
    #[arg(value_name = "VOLUME", required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct LsArgs {
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short, long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Only display volume names
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug, Default)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    pub all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args, Debug, Default)]
pub struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short, long)]
    pub force: bool,
    #[arg(value_name = "VOLUME", required = true)]
    pub names: Vec<String>,
}

pub fn run(env: &mut Env, cmd: VolumeCommand) -> CliResult {
    match cmd {
        VolumeCommand::Create(a) => create(env, a),
        VolumeCommand::Inspect(a) => inspect(env, a),
        VolumeCommand::Ls(a) => ls(env, a),
        VolumeCommand::Prune(a) => prune(env, a, &mut std::io::stdin().lock()),
        VolumeCommand::Rm(a) => rm(env, a),
    }
}

/// docker's `ValidateLabel`.
fn validate_label(v: &str) -> CliResult<()> {
    let k = v.split_once('=').map(|(k, _)| k).unwrap_or(v).trim();
    if k.is_empty() {
        return Err(CliError::new(format!("invalid argument \"{v}\" for \"--label\" flag: invalid label '{v}': empty name")));
    }
    if k.contains(char::is_whitespace) {
        return Err(CliError::new(format!("invalid argument \"{v}\" for \"--label\" flag: label '{k}' contains whitespaces")));
    }
    Ok(())
}

fn kv_map(values: &[String]) -> Value {
    let mut m = Map::new();
    for v in values {
        let (k, val) = v.split_once('=').unwrap_or((v, ""));
        m.insert(k.to_string(), Value::from(val));
    }
    m.sort_keys();
    Value::Object(m)
}

/// The `/volumes/create` body docker's CLI sends.
pub fn create_body(a: &CreateArgs, name: &str) -> Value {
    json::object([
        ("Driver", Value::from(a.driver.as_str())),
        ("DriverOpts", kv_map(&a.opt)),
        ("Labels", kv_map(&a.label)),
        ("Name", Value::from(name)),
    ])
}

fn create(env: &mut Env, a: CreateArgs) -> CliResult {
    let name = match (&a.name, &a.name_flag) {
        (Some(_), Some(f)) if !f.is_empty() => {
            return Err(CliError::new("conflicting options: cannot specify a volume-name through both --name and as a positional arg"))
        }
        (Some(n), _) => n.clone(),
        (None, Some(f)) => f.clone(),
        (None, None) => String::new(),
    };
    for l in &a.label {
        validate_label(l)?;
    }
    let vol = env.client.post("/volumes/create", Some(&create_body(&a, &name)))?;
    env.println(vol["Name"].str())
}

/// Sorted map keys, as Go marshals a map.
fn sorted_map(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut m = m.clone();
            m.sort_keys();
            Value::Object(m)
        }
        other => other.clone(),
    }
}

/// A volume as the docker CLI marshals its `volume.Volume`: Go's field
/// order, maps sorted, empty optional fields left out.
pub fn docker_volume(v: &Value) -> Value {
    let mut out = Vec::new();
    let opt = |k: &str| {
        let x = &v[k];
        let empty = match x {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Object(m) => m.is_empty() && k == "Status",
            _ => false,
        };
        (!empty).then(|| (k.to_string(), sorted_map(x)))
    };
    out.extend(opt("ClusterVolume"));
    out.extend(opt("CreatedAt"));
    out.push(("Driver".to_string(), Value::from(v["Driver"].str())));
    out.push(("Labels".to_string(), sorted_map(&v["Labels"])));
    out.push(("Mountpoint".to_string(), Value::from(v["Mountpoint"].str())));
    out.push(("Name".to_string(), Value::from(v["Name"].str())));
    out.push(("Options".to_string(), sorted_map(&v["Options"])));
    out.push(("Scope".to_string(), Value::from(v["Scope"].str())));
    let opt2 = |k: &str| {
        let x = &v[k];
        let empty = matches!(x, Value::Null) || matches!(x, Value::Object(m) if m.is_empty() && k == "Status");
        (!empty).then(|| (k.to_string(), sorted_map(x)))
    };
    out.extend(opt2("Status"));
    out.extend(opt2("UsageData"));
    Value::Object(out.into_iter().collect())
}

fn inspect(env: &mut Env, a: InspectArgs) -> CliResult {
    let client = env.client.clone();
    let get = |n: &str| -> CliResult<String> {
        let v = client.get(&format!("/volumes/{}", path_segment(n)))?;
        Ok(docker_volume(&v).to_compact())
    };
    super::inspect::inspect(env, &a.names, &InspectFormat::from_flag(&a.format), get)
}

pub fn volume_header() -> Value {
    header_obj(&[
        ("Availability", "AVAILABILITY"),
        ("Driver", "DRIVER"),
        ("Group", "GROUP"),
        ("ID", "ID"),
        ("Labels", "LABELS"),
        ("Links", "LINKS"),
        ("Mountpoint", "MOUNTPOINT"),
        ("Name", "VOLUME NAME"),
        ("Scope", "SCOPE"),
        ("Size", "SIZE"),
        ("Status", "STATUS"),
    ])
}

/// docker's `volumeContext` for one volume.
pub fn volume_row(v: &Value) -> Value {
    let mut joined: Vec<String> = v["Labels"].members().iter().map(|(k, x)| format!("{k}={}", x.str())).collect();
    joined.sort();
    let usage = &v["UsageData"];
    let (links, size) = if usage.is_null() {
        ("N/A".to_string(), "N/A".to_string())
    } else {
        (usage["RefCount"].as_i64().unwrap_or(0).to_string(), human_size(usage["Size"].as_i64().unwrap_or(0) as f64))
    };
    let cluster = &v["ClusterVolume"];
    let (group, availability, status) = if cluster.is_null() {
        ("N/A".to_string(), "N/A".to_string(), "N/A".to_string())
    } else {
        let n = cluster["PublishStatus"].items().len();
        let status = if cluster.at(&["Info", "VolumeID"]).str().is_empty() {
            "pending creation".to_string()
        } else {
            match n {
                0 => "created".to_string(),
                1 => "in use (1 node)".to_string(),
                n => format!("in use ({n} nodes)"),
            }
        };
        (cluster.at(&["Spec", "Group"]).str().to_string(), cluster.at(&["Spec", "Availability"]).str().to_string(), status)
    };
    crate::template::context(json::object([
        ("Availability", Value::from(availability.as_str())),
        ("Driver", Value::from(v["Driver"].str())),
        ("Group", Value::from(group.as_str())),
        ("Labels", Value::from(joined.join(",").as_str())),
        ("Links", Value::from(links.as_str())),
        ("Mountpoint", Value::from(v["Mountpoint"].str())),
        ("Name", Value::from(v["Name"].str())),
        ("Scope", Value::from(v["Scope"].str())),
        ("Size", Value::from(size.as_str())),
        ("Status", Value::from(status.as_str())),
        (&format!("{METHOD_PREFIX}Label"), Value::Object(v["Labels"].members().clone())),
    ]))
}

fn ls(env: &mut Env, a: LsArgs) -> CliResult {
    let filters = Filters::from_flags(&a.filter).map_err(CliError::new)?;
    let resp = env.client.get(&format!("/volumes{}", filters.query()))?;
    let mut vols: Vec<Value> = resp["Volumes"].items().to_vec();
    vols.sort_by(|x, y| natural_cmp(x["Name"].str(), y["Name"].str()));
    let source = a.format.clone().filter(|f| !f.is_empty()).unwrap_or_else(|| "table".into());
    let format = match source.as_str() {
        "table" if a.quiet => "{{.Name}}".to_string(),
        "table" => "table {{.Driver}}\t{{.Name}}".to_string(),
        f => f.to_string(),
    };
    let rows: Vec<Value> = vols.iter().map(volume_row).collect();
    env.print(&write_rows(&format, &volume_header(), &rows)?)
}

fn rm(env: &mut Env, a: RmArgs) -> CliResult {
    let mut errors = Vec::new();
    for name in &a.names {
        let q = if a.force { query(&[("force", "1".to_string())]) } else { String::new() };
        match env.client.delete(&format!("/volumes/{}{q}", path_segment(name))) {
            Ok(_) => env.println(name)?,
            Err(e) => errors.push(e),
        }
    }
    CliError::join(errors)
}

const ANONYMOUS_WARNING: &str =
    "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?";
const ALL_WARNING: &str =
    "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?";

fn prune(env: &mut Env, a: PruneArgs, stdin: &mut dyn BufRead) -> CliResult {
    let mut filters = Filters::from_flags(&a.filter).map_err(CliError::new)?;
    let mut warning = ANONYMOUS_WARNING;
    if a.all {
        if !filters.get("all").is_empty() {
            return Err(CliError::new("conflicting options: cannot specify both --all and --filter all=1"));
        }
        filters.add("all", "true");
        warning = ALL_WARNING;
    }
    if !a.force && !super::confirm(env, stdin, warning)? {
        return Err(CliError::cancelled("volume prune has been cancelled"));
    }
    let report = env.client.post(&format!("/volumes/prune{}", filters.query()), None)?;
    let deleted = report["VolumesDeleted"].items();
    let mut reclaimed = 0;
    if !deleted.is_empty() {
        let mut out = String::from("Deleted Volumes:\n");
        for d in deleted {
            out.push_str(d.str());
            out.push('\n');
        }
        env.println(&out)?;
        reclaimed = report["SpaceReclaimed"].as_u64().unwrap_or(0);
    }
    env.println(&format!("Total reclaimed space: {}", human_size(reclaimed as f64)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::FakeDaemon;

    const V1: &str = r#"{"Name":"v10","Driver":"local","Mountpoint":"/var/lib/shoal/volumes/v10/_data","CreatedAt":"2026-01-02T03:04:05Z","Labels":{"tier":"db","a":"b"},"Scope":"local","Options":{}}"#;
    const V2: &str = r#"{"Name":"v2","Driver":"local","Mountpoint":"/m/v2/_data","Labels":null,"Scope":"local","Options":null,"UsageData":{"Size":6,"RefCount":1}}"#;

    #[test]
    fn ls_sorts_naturally_and_prints_docker_s_table() {
        let body = format!(r#"{{"Volumes":[{V1},{V2}],"Warnings":null}}"#);
        let d = FakeDaemon::start(move |_| (200, body.clone()));
        let (r, out) = d.run(|env| ls(env, LsArgs::default()));
        r.unwrap();
        assert_eq!(out, "DRIVER    VOLUME NAME\nlocal     v2\nlocal     v10\n");
        let (r, out) = d.run(|env| ls(env, LsArgs { quiet: true, filter: vec!["dangling=true".into()], ..Default::default() }));
        r.unwrap();
        assert_eq!(out, "v2\nv10\n");
        assert_eq!(d.requests()[1].target, "/v1.44/volumes?filters=%7B%22dangling%22%3A%7B%22true%22%3Atrue%7D%7D");
        let (r, out) = d.run(|env| {
            ls(env, LsArgs { format: Some("{{.Name}} {{.Labels}} {{.Label \"tier\"}} {{.Links}} {{.Size}}".into()), ..Default::default() })
        });
        r.unwrap();
        assert_eq!(out, "v2   1 6B\nv10 a=b,tier=db db N/A N/A\n");
        let (r, out) = d.run(|env| ls(env, LsArgs { format: Some("json".into()), ..Default::default() }));
        r.unwrap();
        assert_eq!(
            out.lines().next().unwrap(),
            r#"{"Availability":"N/A","Driver":"local","Group":"N/A","Labels":"","Links":"1","Mountpoint":"/m/v2/_data","Name":"v2","Scope":"local","Size":"6B","Status":"N/A"}"#
        );
    }

    #[test]
    fn inspect_marshals_as_docker_s_struct() {
        let v = docker_volume(&json::parse(V1).unwrap());
        assert_eq!(
            v.to_compact(),
            r#"{"CreatedAt":"2026-01-02T03:04:05Z","Driver":"local","Labels":{"a":"b","tier":"db"},"Mountpoint":"/var/lib/shoal/volumes/v10/_data","Name":"v10","Options":{},"Scope":"local"}"#
        );
        let v = docker_volume(&json::parse(V2).unwrap());
        assert_eq!(
            v.to_compact(),
            r#"{"Driver":"local","Labels":null,"Mountpoint":"/m/v2/_data","Name":"v2","Options":null,"Scope":"local","UsageData":{"RefCount":1,"Size":6}}"#
        );
    }

    #[test]
    fn create_rm_prune() {
        let d = FakeDaemon::start(|req| match (req.method.as_str(), req.target.as_str()) {
            ("POST", "/v1.44/volumes/create") => (201, r#"{"Name":"v1","Driver":"local"}"#.into()),
            ("DELETE", "/v1.44/volumes/v1") => (204, String::new()),
            ("DELETE", _) => (409, r#"{"message":"remove v2: volume is in use - [abc]"}"#.into()),
            ("POST", _) => (200, r#"{"VolumesDeleted":["v3"],"SpaceReclaimed":6}"#.into()),
            _ => (500, "{}".into()),
        });
        let a =
            CreateArgs { driver: "local".into(), label: vec!["tier=db".into(), "x".into()], name: Some("v1".into()), ..Default::default() };
        let (r, out) = d.run(|env| create(env, a));
        r.unwrap();
        assert_eq!(out, "v1\n");
        assert_eq!(d.requests()[0].body, r#"{"Driver":"local","DriverOpts":{},"Labels":{"tier":"db","x":""},"Name":"v1"}"#);
        let bad = CreateArgs { label: vec!["a b=c".into()], ..Default::default() };
        assert!(d.run(|env| create(env, bad)).0.unwrap_err().message.contains("label 'a b' contains whitespaces"));
        let (r, out) = d.run(|env| rm(env, RmArgs { names: vec!["v1".into(), "v2".into()], force: false }));
        assert_eq!(out, "v1\n");
        assert_eq!(r.unwrap_err().message, "Error response from daemon: remove v2: volume is in use - [abc]");
        let (r, out) = d.run(|env| prune(env, PruneArgs { all: true, force: true, ..Default::default() }, &mut &b""[..]));
        r.unwrap();
        assert_eq!(out, "Deleted Volumes:\nv3\n\nTotal reclaimed space: 6B\n");
        assert!(d.requests().last().unwrap().target.ends_with("?filters=%7B%22all%22%3A%7B%22true%22%3Atrue%7D%7D"));
        let conflict = PruneArgs { all: true, force: true, filter: vec!["all=1".into()] };
        assert!(d.run(|env| prune(env, conflict, &mut &b""[..])).0.unwrap_err().message.starts_with("conflicting options"));
    }
}
