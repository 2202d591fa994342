//! `shoal secret …` and `shoal config …`: create, ls, inspect, rm, with the
//! docker CLI's flags, tables, pretty views and messages. The two differ in
//! a few words, a column (secrets have DRIVER) and in that a config's data
//! comes back from the daemon and a secret's never does.

use std::io::Read;

use clap::{Args, Subcommand};

use super::Env;
use crate::client::{path_segment, url_encode};
use crate::commands::inspect::{inspect, InspectFormat};
use crate::duration::ago;
use crate::error::{CliError, CliResult};
use crate::filters::Filters;
use crate::format::{self, natural_cmp};
use serde_json::{Map, Value};

use crate::json::{self, JsonExt};
use crate::timestamp::{now_unix_nanos, Timestamp};

#[derive(Subcommand, Debug)]
pub enum SecretCommand {
    /// Create a secret from a file or STDIN as content
    Create(SecretCreateArgs),
    /// Display detailed information on one or more secrets
    Inspect(InspectArgs),
    /// List secrets
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Remove one or more secrets
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Create a config from a file or STDIN
    Create(ConfigCreateArgs),
    /// Display detailed information on one or more configs
    Inspect(InspectArgs),
    /// List configs
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Remove one or more configs
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
}

#[derive(Args, Debug, Default)]
pub struct SecretCreateArgs {
    /// Secret labels
    #[arg(short, long = "label", value_name = "list", value_parser = validate_label)]
    pub label: Vec<String>,
    /// Secret driver
    #[arg(short, long, value_name = "string")]
    pub driver: Option<String>,
    /// Template driver
    #[arg(long = "template-driver", value_name = "string")]
    pub template_driver: Option<String>,
    /// SECRET
    #[arg(value_name = "SECRET")]
    pub name: String,
    /// file|-
    #[arg(value_name = "file|-")]
    pub file: Option<String>,
}

#[derive(Args, Debug, Default)]
pub struct ConfigCreateArgs {
    /// Config labels
    #[arg(short, long = "label", value_name = "list", value_parser = validate_label)]
    pub label: Vec<String>,
    /// Template driver
    #[arg(long = "template-driver", value_name = "string")]
    pub template_driver: Option<String>,
    #[arg(value_name = "CONFIG")]
    pub name: String,
    #[arg(value_name = "file|-")]
    pub file: String,
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
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct RmArgs {
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

/// docker's `opts.ValidateLabel`.
fn validate_label(value: &str) -> Result<String, String> {
    let key = value.split('=').next().unwrap_or("").trim_start();
    if key.is_empty() {
        return Err(format!("invalid label '{value}': empty name"));
    }
    if key.chars().any(char::is_whitespace) {
        return Err(format!("label '{key}' contains whitespaces"));
    }
    Ok(value.to_string())
}

/// `k=v` or `k` (empty value), as docker's `ConvertKVStringsToMap`.
fn labels_json(labels: &[String]) -> Value {
    let mut pairs = Map::new();
    for l in labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        // A label given again moves to the end.
        pairs.shift_remove(k);
        pairs.insert(k.to_string(), Value::from(v));
    }
    Value::Object(pairs)
}

/// Go's wording for an OS error ("no such file or directory").
fn os_error_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            // SAFETY: strerror returns a valid NUL-terminated string.
            let s = unsafe { std::ffi::CStr::from_ptr(libc::strerror(code)) }.to_string_lossy().into_owned();
            let mut c = s.chars();
            c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or_default()
        }
        None => e.to_string(),
    }
}

/// docker's `readSecretData`/`readConfigData`: a file, or `-` for stdin;
/// empty data is refused. `kind` names what is missing ("secret file").
pub fn read_data(file: Option<&str>, kind: &str, stdin: &mut dyn Read) -> Result<Vec<u8>, String> {
    match file {
        Some("-") => {
            let mut data = Vec::new();
            stdin.read_to_end(&mut data).map_err(|e| format!("error reading from STDIN: {}", os_error_text(&e)))?;
            if data.is_empty() {
                return Err("error reading from STDIN: data is empty".into());
            }
            Ok(data)
        }
        None | Some("") => Err(format!("{kind} file is required")),
        Some(f) => {
            let data = std::fs::read(f).map_err(|e| {
                let op = if e.kind() == std::io::ErrorKind::NotFound || e.kind() == std::io::ErrorKind::PermissionDenied {
                    "open"
                } else {
                    "read"
                };
                format!("error reading from {f}: {op} {f}: {}", os_error_text(&e))
            })?;
            if data.is_empty() {
                return Err(format!("error reading from {f}: data is empty"));
            }
            Ok(data)
        }
    }
}

pub fn run_secret(env: &mut Env, cmd: SecretCommand) -> CliResult {
    match cmd {
        SecretCommand::Create(a) => create_secret(env, a, &mut std::io::stdin()),
        SecretCommand::Ls(a) => ls(env, &SECRETS, a),
        SecretCommand::Inspect(a) => inspect_objects(env, &SECRETS, a),
        SecretCommand::Rm(a) => rm(env, &SECRETS, a),
    }
}

pub fn run_config(env: &mut Env, cmd: ConfigCommand) -> CliResult {
    match cmd {
        ConfigCommand::Create(a) => create_config(env, a, &mut std::io::stdin()),
        ConfigCommand::Ls(a) => ls(env, &CONFIGS, a),
        ConfigCommand::Inspect(a) => inspect_objects(env, &CONFIGS, a),
        ConfigCommand::Rm(a) => rm(env, &CONFIGS, a),
    }
}

fn create_secret(env: &mut Env, a: SecretCreateArgs, stdin: &mut dyn Read) -> CliResult {
    let mut spec = vec![("Name", Value::from(a.name.as_str())), ("Labels", labels_json(&a.label))];
    match &a.driver {
        Some(d) if !d.is_empty() => {
            if a.file.is_some() {
                return Err(CliError::new("when using secret driver secret data must be empty"));
            }
            spec.push(("Driver", json::object([("Name", Value::from(d.as_str()))])));
        }
        _ => {
            let data = read_data(a.file.as_deref(), "secret", stdin).map_err(CliError::new)?;
            spec.push(("Data", Value::from(shoal_api::base64::encode(&data))));
        }
    }
    if let Some(t) = a.template_driver.filter(|t| !t.is_empty()) {
        spec.push(("Templating", json::object([("Name", Value::from(t))])));
    }
    let resp = env.client.post("/secrets/create", Some(&json::object(spec)))?;
    env.println(resp["ID"].str())
}

fn create_config(env: &mut Env, a: ConfigCreateArgs, stdin: &mut dyn Read) -> CliResult {
    let data =
        read_data(Some(&a.file), "config", stdin).map_err(|e| CliError::new(format!("error reading content from {:?}: {e}", a.file)))?;
    let mut spec = vec![
        ("Name", Value::from(a.name.as_str())),
        ("Labels", labels_json(&a.label)),
        ("Data", Value::from(shoal_api::base64::encode(&data))),
    ];
    if let Some(t) = a.template_driver.filter(|t| !t.is_empty()) {
        spec.push(("Templating", json::object([("Name", Value::from(t))])));
    }
    let resp = env.client.post("/configs/create", Some(&json::object(spec)))?;
    env.println(resp["ID"].str())
}

/// What differs between secrets and configs.
pub struct Kind {
    path: &'static str,
    table: &'static str,
    header: &'static [(&'static str, &'static str)],
    pretty: fn(&Value) -> String,
}

pub const SECRETS: Kind = Kind {
    path: "secrets",
    table: "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.CreatedAt}}\t{{.UpdatedAt}}",
    header: &[
        ("ID", "ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("CreatedAt", "CREATED"),
        ("UpdatedAt", "UPDATED"),
        ("Labels", "LABELS"),
    ],
    pretty: pretty_secret,
};

pub const CONFIGS: Kind = Kind {
    path: "configs",
    table: "table {{.ID}}\t{{.Name}}\t{{.CreatedAt}}\t{{.UpdatedAt}}",
    header: &[("ID", "ID"), ("Name", "NAME"), ("CreatedAt", "CREATED"), ("UpdatedAt", "UPDATED"), ("Labels", "LABELS")],
    pretty: pretty_config,
};

fn labels_text(labels: &Value) -> String {
    let mut pairs: Vec<String> = labels.members().iter().map(|(k, v)| format!("{k}={}", v.str())).collect();
    pairs.sort();
    pairs.join(",")
}

/// The fields docker's list context offers to `--format`.
fn row(obj: &Value, now: i128) -> Value {
    let since = |key: &str| {
        let t = Timestamp::parse(obj[key].str()).map(|t| t.unix_nanos()).unwrap_or(now);
        ago((now - t).clamp(0, i64::MAX as i128) as i64)
    };
    let spec = &obj["Spec"];
    json::object([
        ("CreatedAt", Value::from(since("CreatedAt"))),
        ("Driver", Value::from(spec.at(&["Driver", "Name"]).str())),
        ("ID", Value::from(obj["ID"].str())),
        ("Labels", Value::from(labels_text(&spec["Labels"]))),
        ("Name", Value::from(spec["Name"].str())),
        ("UpdatedAt", Value::from(since("UpdatedAt"))),
    ])
}

pub fn render_list(kind: &Kind, objs: &[Value], format: &str, quiet: bool, now: i128) -> CliResult<String> {
    let mut objs: Vec<&Value> = objs.iter().collect();
    objs.sort_by(|a, b| natural_cmp(a.at(&["Spec", "Name"]).str(), b.at(&["Spec", "Name"]).str()));
    let rows: Vec<Value> = objs.iter().map(|o| row(o, now)).collect();
    let format = match format {
        format::TABLE_FORMAT_KEY if quiet => format::DEFAULT_QUIET_FORMAT,
        format::TABLE_FORMAT_KEY => kind.table,
        other => other,
    };
    format::write_rows(format, &format::header_obj(kind.header), &rows)
}

fn ls(env: &mut Env, kind: &Kind, a: LsArgs) -> CliResult {
    let filters = Filters::from_flags(&a.filter)?;
    let list = env.client.get(&format!("/{}{}", kind.path, filters.query()))?;
    let format = a.format.filter(|f| !f.is_empty()).unwrap_or_else(|| format::TABLE_FORMAT_KEY.into());
    let text = render_list(kind, list.items(), &format, a.quiet, now_unix_nanos())?;
    env.print(&text)
}

fn inspect_objects(env: &mut Env, kind: &Kind, a: InspectArgs) -> CliResult {
    let format = if a.pretty { format::PRETTY_FORMAT_KEY.to_string() } else { a.format.unwrap_or_default() };
    if format.starts_with(format::PRETTY_FORMAT_KEY) && format != format::PRETTY_FORMAT_KEY {
        return Err(CliError::new("cannot supply extra formatting options to the pretty template"));
    }
    let client = env.client.clone();
    let get = |r: &str| client.raw("GET", &format!("/{}/{}", kind.path, path_segment(r)), None);
    if format == format::PRETTY_FORMAT_KEY {
        let mut errors = Vec::new();
        for r in &a.names {
            match get(r).and_then(|raw| crate::client::parse_body(&raw)) {
                Ok(obj) => {
                    let text = (kind.pretty)(&obj);
                    env.print(&text)?;
                    env.print("\n")?;
                }
                Err(e) => errors.push(e),
            }
        }
        return CliError::join(errors);
    }
    inspect(env, &a.names, &InspectFormat::from_flag(&format), get)
}

fn rm(env: &mut Env, kind: &Kind, a: RmArgs) -> CliResult {
    let mut errors = Vec::new();
    for name in &a.names {
        match env.client.delete(&format!("/{}/{}", kind.path, path_segment(name))) {
            Ok(_) => env.println(name)?,
            Err(e) => errors.push(e),
        }
    }
    CliError::join(errors)
}

fn go_time(ts: &Value) -> String {
    Timestamp::parse(ts.str()).map(|t| t.go_string()).unwrap_or_else(|| ts.str().to_string())
}

fn push_labels(s: &mut String, labels: &Value) {
    let mut pairs: Vec<(String, String)> = labels.members().iter().map(|(k, v)| (k.clone(), v.str().to_string())).collect();
    if pairs.is_empty() {
        return;
    }
    pairs.sort();
    s.push_str("\nLabels:");
    for (k, v) in pairs {
        if v.is_empty() {
            s.push_str(&format!("\n - {k}"));
        } else {
            s.push_str(&format!("\n - {k}={v}"));
        }
    }
}

/// docker's `secret inspect --pretty` (its spacing, verbatim).
pub fn pretty_secret(obj: &Value) -> String {
    let spec = &obj["Spec"];
    let mut s = format!("ID:              {}\nName:              {}", obj["ID"].str(), spec["Name"].str());
    push_labels(&mut s, &spec["Labels"]);
    s.push_str(&format!("\nDriver:            {}", spec.at(&["Driver", "Name"]).str()));
    s.push_str(&format!("\nCreated at:        {}", go_time(&obj["CreatedAt"])));
    s.push_str(&format!("\nUpdated at:        {}", go_time(&obj["UpdatedAt"])));
    s
}

/// docker's `config inspect --pretty`, data included.
pub fn pretty_config(obj: &Value) -> String {
    let spec = &obj["Spec"];
    let mut s = format!("ID:\t\t\t{}\nName:\t\t\t{}", obj["ID"].str(), spec["Name"].str());
    push_labels(&mut s, &spec["Labels"]);
    s.push_str(&format!("\nCreated at:            \t{}", go_time(&obj["CreatedAt"])));
    s.push_str(&format!("\nUpdated at:            \t{}", go_time(&obj["UpdatedAt"])));
    let data = shoal_api::base64::decode(spec["Data"].str()).unwrap_or_default();
    s.push_str(&format!("\nData:\n{}", String::from_utf8_lossy(&data)));
    s
}

/// docker's `ParseSecrets`/`ParseConfigs` for `service create|update`: the
/// references the flags named get their IDs from the daemon; an unknown
/// name is refused before anything is sent ("secret not found: x").
pub fn resolve_references(client: &crate::client::Client, container_spec: &mut Value) -> CliResult {
    for (list_key, id_key, name_key, path, noun) in
        [("Secrets", "SecretID", "SecretName", "secrets", "secret"), ("Configs", "ConfigID", "ConfigName", "configs", "config")]
    {
        let Value::Array(refs) = container_spec[list_key].clone() else { continue };
        let wanted: Vec<String> = refs.iter().filter(|r| r[id_key].str().is_empty()).map(|r| r[name_key].str().to_string()).collect();
        if wanted.is_empty() {
            continue;
        }
        let mut targets: Vec<&str> = Vec::new();
        for r in &refs {
            let target = r.at(&["File", "Name"]).str();
            if noun == "secret" && !target.is_empty() && targets.contains(&target) {
                return Err(CliError::new(format!("duplicate secret target for {} not allowed", r[name_key].str())));
            }
            targets.push(target);
        }
        let filters = json::object([("name", Value::Object(wanted.iter().map(|n| (n.clone(), Value::Bool(true))).collect()))]);
        let found = client.get(&format!("/{path}?filters={}", url_encode(&filters.to_compact())))?;
        let mut resolved = Vec::new();
        for mut r in refs {
            if r[id_key].str().is_empty() {
                let name = r[name_key].str().to_string();
                let id = found
                    .items()
                    .iter()
                    .find(|o| o.at(&["Spec", "Name"]).str() == name)
                    .map(|o| o["ID"].str().to_string())
                    .ok_or_else(|| CliError::new(format!("{noun} not found: {name}")))?;
                r.set(id_key, Value::from(id));
            }
            resolved.push(r);
        }
        container_spec.set(list_key, Value::Array(resolved));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::FakeDaemon;

    const SECRET: &str = r#"{"ID":"ktnbjxoalbkvbvedmg1urrz8h","Version":{"Index":11},"CreatedAt":"2026-01-01T10:00:00.5Z","UpdatedAt":"2026-01-01T10:00:00.5Z","Spec":{"Name":"db_pw","Labels":{"env":"prod","tier":""}}}"#;
    const CONFIG: &str = r#"{"ID":"c0nfig1d00000000000000000","Version":{"Index":12},"CreatedAt":"2026-01-01T10:00:00Z","UpdatedAt":"2026-01-01T10:00:00Z","Spec":{"Name":"site","Labels":{},"Data":"bGlzdGVuIDgwOwo="}}"#;

    #[test]
    fn reads_files_and_stdin_with_dockers_errors() {
        let dir = std::env::temp_dir().join(format!("shoal-cli-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("pw");
        std::fs::write(&f, "s3cret").unwrap();
        let f = f.to_str().unwrap();
        let mut none: &[u8] = b"";
        assert_eq!(read_data(Some(f), "secret", &mut none).unwrap(), b"s3cret");
        let mut input: &[u8] = b"from stdin";
        assert_eq!(read_data(Some("-"), "secret", &mut input).unwrap(), b"from stdin");
        let mut empty: &[u8] = b"";
        assert_eq!(read_data(Some("-"), "secret", &mut empty).unwrap_err(), "error reading from STDIN: data is empty");
        assert_eq!(read_data(None, "secret", &mut empty).unwrap_err(), "secret file is required");
        assert_eq!(
            read_data(Some("/nonexistent/x"), "secret", &mut empty).unwrap_err(),
            "error reading from /nonexistent/x: open /nonexistent/x: no such file or directory"
        );
        std::fs::write(dir.join("empty"), "").unwrap();
        let e = dir.join("empty");
        assert!(read_data(Some(e.to_str().unwrap()), "config", &mut empty).unwrap_err().ends_with(": data is empty"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn create_sends_base64_data_and_labels_and_prints_the_id() {
        let d = FakeDaemon::start(|_| (201, r#"{"ID":"newid"}"#.into()));
        let a = SecretCreateArgs {
            name: "db_pw".into(),
            file: Some("-".into()),
            label: vec!["env=prod".into(), "tier".into()],
            ..Default::default()
        };
        let (r, out) = d.run(|env| create_secret(env, a, &mut &b"s3cret"[..]));
        r.unwrap();
        assert_eq!(out, "newid\n");
        let req = &d.requests()[0];
        assert_eq!((req.method.as_str(), req.target.as_str()), ("POST", "/v1.44/secrets/create"));
        assert_eq!(req.body, r#"{"Name":"db_pw","Labels":{"env":"prod","tier":""},"Data":"czNjcmV0"}"#);
        let driver = SecretCreateArgs { name: "x".into(), file: Some("f".into()), driver: Some("vault".into()), ..Default::default() };
        let (r, _) = d.run(|env| create_secret(env, driver, &mut &b""[..]));
        assert_eq!(r.unwrap_err().message, "when using secret driver secret data must be empty");
        let bad = ConfigCreateArgs { name: "c".into(), file: "-".into(), ..Default::default() };
        let (r, _) = d.run(|env| create_config(env, bad, &mut &b""[..]));
        assert_eq!(r.unwrap_err().message, "error reading content from \"-\": error reading from STDIN: data is empty");
        assert_eq!(validate_label("a b=c").unwrap_err(), "label 'a b' contains whitespaces");
        assert_eq!(validate_label("=x").unwrap_err(), "invalid label '=x': empty name");
    }

    #[test]
    fn tables_match_docker() {
        let secret = json::parse(SECRET).unwrap();
        let now = Timestamp::parse("2026-01-01T10:05:00Z").unwrap().unix_nanos();
        let text = render_list(&SECRETS, std::slice::from_ref(&secret), "table", false, now).unwrap();
        assert_eq!(
            text,
            "ID                          NAME      DRIVER    CREATED         UPDATED\n\
             ktnbjxoalbkvbvedmg1urrz8h   db_pw               4 minutes ago   4 minutes ago\n"
        );
        assert_eq!(render_list(&SECRETS, std::slice::from_ref(&secret), "table", true, now).unwrap(), "ktnbjxoalbkvbvedmg1urrz8h\n");
        assert_eq!(render_list(&SECRETS, &[secret], "{{.Name}} {{.Labels}}", false, now).unwrap(), "db_pw env=prod,tier=\n");
        let config = json::parse(CONFIG).unwrap();
        let text = render_list(&CONFIGS, &[config], "table", false, now).unwrap();
        assert_eq!(
            text,
            "ID                          NAME      CREATED         UPDATED\n\
             c0nfig1d00000000000000000   site      5 minutes ago   5 minutes ago\n"
        );
    }

    #[test]
    fn pretty_views_match_docker() {
        let s = pretty_secret(&json::parse(SECRET).unwrap());
        assert_eq!(
            s,
            "ID:              ktnbjxoalbkvbvedmg1urrz8h\nName:              db_pw\nLabels:\n - env=prod\n - tier\nDriver:            \n\
             Created at:        2026-01-01 10:00:00.5 +0000 UTC\nUpdated at:        2026-01-01 10:00:00.5 +0000 UTC"
        );
        let c = pretty_config(&json::parse(CONFIG).unwrap());
        assert!(
            c.starts_with("ID:\t\t\tc0nfig1d00000000000000000\nName:\t\t\tsite\nCreated at:            \t2026-01-01 10:00:00 +0000 UTC"),
            "{c}"
        );
        assert!(c.ends_with("\nData:\nlisten 80;\n"), "{c:?}");
    }

    #[test]
    fn rm_prints_names_and_joins_errors() {
        let d = FakeDaemon::start(|r| {
            if r.target.ends_with("/db_pw") {
                (204, String::new())
            } else {
                (404, r#"{"message":"secret nope not found"}"#.into())
            }
        });
        let (r, out) = d.run(|env| rm(env, &SECRETS, RmArgs { names: vec!["db_pw".into(), "nope".into()] }));
        assert_eq!(out, "db_pw\n");
        assert_eq!(r.unwrap_err().message, "Error response from daemon: secret nope not found");
    }

    #[test]
    fn service_references_resolve_by_name() {
        let d =
            FakeDaemon::start(|r| if r.target.starts_with("/v1.44/secrets") { (200, format!("[{SECRET}]")) } else { (200, "[]".into()) });
        let mut cs = json::parse(r#"{"Secrets":[{"File":{"Name":"db_pw","UID":"0","GID":"0","Mode":292},"SecretName":"db_pw"}]}"#).unwrap();
        resolve_references(&d.client(), &mut cs).unwrap();
        assert_eq!(cs.at(&["Secrets"]).items()[0]["SecretID"].str(), "ktnbjxoalbkvbvedmg1urrz8h");
        let mut missing = json::parse(r#"{"Configs":[{"File":{"Name":"/x"},"ConfigName":"site"}]}"#).unwrap();
        assert_eq!(resolve_references(&d.client(), &mut missing).unwrap_err().message, "config not found: site");
        let mut dup =
            json::parse(r#"{"Secrets":[{"File":{"Name":"t"},"SecretName":"a"},{"File":{"Name":"t"},"SecretName":"b"}]}"#).unwrap();
        assert_eq!(resolve_references(&d.client(), &mut dup).unwrap_err().message, "duplicate secret target for b not allowed");
    }
}
