//! `shoal version`: Client and Server sections aligned as docker's
//! (tabwriter minwidth 20, padding 1), or `--format` over
//! `{Client: …, Server: …}`.

use clap::Args;

use super::{go_arch, Env, CLIENT_VERSION};
use crate::client::API_VERSION;
use crate::error::{CliError, CliResult};
use crate::format::{parse_template, JSON_FORMAT, JSON_FORMAT_KEY};
use serde_json::Value;

use crate::json::{self, JsonExt};
use crate::tabwriter::tabwrite;
use crate::timestamp::Timestamp;

#[derive(Args, Debug, Default)]
pub struct VersionArgs {
    /// Format output using a custom template: 'json', 'TEMPLATE'
    #[arg(short, long)]
    pub format: Option<String>,
}

pub fn client_version() -> Value {
    json::object([
        ("Version", Value::from(CLIENT_VERSION)),
        ("ApiVersion", Value::from(API_VERSION)),
        ("DefaultAPIVersion", Value::from(API_VERSION)),
        ("Os", Value::from(std::env::consts::OS)),
        ("Arch", Value::from(go_arch())),
        ("Context", Value::from("default")),
    ])
}

fn reformat_date(s: &str) -> String {
    Timestamp::parse(s).map(|t| t.ansic()).unwrap_or_else(|| s.to_string())
}

/// docker's `newServerVersion`: the `/version` answer with an "Engine"
/// component guaranteed and build times made readable.
pub fn server_version(v: &Value) -> Value {
    let mut components = Vec::new();
    let mut found_engine = false;
    let mut out = json::object([
        ("Platform", json::object([("Name", Value::from(v.at(&["Platform", "Name"]).str()))])),
        ("Version", v["Version"].clone()),
        ("ApiVersion", v["ApiVersion"].clone()),
        ("MinAPIVersion", v["MinAPIVersion"].clone()),
        ("Os", v["Os"].clone()),
        ("Arch", v["Arch"].clone()),
    ]);
    for c in v["Components"].items() {
        let mut c = c.clone();
        if c["Name"].str() == "Engine" {
            found_engine = true;
            let details = c["Details"].clone();
            let bt = details["BuildTime"].str().to_string();
            if !bt.is_empty() {
                c.entry(&["Details"]).set("BuildTime", reformat_date(&bt).into());
            }
            for k in ["GitCommit", "GoVersion", "KernelVersion"] {
                out.set(k, Value::from(details[k].str()));
            }
            out.set("Experimental", Value::Bool(details["Experimental"].str() == "true"));
            out.set("BuildTime", Value::from(bt));
        }
        components.push(c);
    }
    if !found_engine {
        components.push(json::object([
            ("Name", Value::from("Engine")),
            ("Version", v["Version"].clone()),
            (
                "Details",
                json::object([
                    ("ApiVersion", v["ApiVersion"].clone()),
                    ("MinAPIVersion", v["MinAPIVersion"].clone()),
                    ("Os", v["Os"].clone()),
                    ("Arch", v["Arch"].clone()),
                ]),
            ),
        ]));
    }
    out.set("Components", Value::Array(components));
    out
}

/// The default layout, with tabs between labels and values (aligned later).
pub fn render_default(client: &Value, server: Option<&Value>) -> String {
    let mut s = String::from("Client:\n");
    s.push_str(&format!(" Version:\t{}\n", client["Version"].str()));
    s.push_str(&format!(" API version:\t{}\n", client["ApiVersion"].str()));
    s.push_str(&format!(" OS/Arch:\t{}/{}\n", client["Os"].str(), client["Arch"].str()));
    s.push_str(&format!(" Context:\t{}", client["Context"].str()));
    if let Some(sv) = server {
        s.push_str("\n\nServer:");
        let name = sv.at(&["Platform", "Name"]).str();
        if !name.is_empty() {
            s.push(' ');
            s.push_str(name);
        }
        for c in sv["Components"].items() {
            let cname = c["Name"].str();
            let d = &c["Details"];
            s.push_str(&format!("\n {cname}:"));
            if cname == "Engine" {
                s.push_str(&format!("\n  Version:\t{}", c["Version"].str()));
                s.push_str(&format!("\n  API version:\t{} (minimum version {})", d["ApiVersion"].str(), d["MinAPIVersion"].str()));
                for (label, key) in [("Go version", "GoVersion"), ("Git commit", "GitCommit"), ("Built", "BuildTime")] {
                    let v = d[key].str();
                    if !v.is_empty() {
                        s.push_str(&format!("\n  {label}:\t{v}"));
                    }
                }
                s.push_str(&format!("\n  OS/Arch:\t{}/{}", d["Os"].str(), d["Arch"].str()));
                let exp = d["Experimental"].str();
                s.push_str(&format!("\n  Experimental:\t{}", if exp.is_empty() { "false" } else { exp }));
            } else {
                s.push_str(&format!("\n  Version:\t{}", c["Version"].str()));
                let mut keys: Vec<(&String, &Value)> = d.members().iter().collect();
                keys.sort_by(|a, b| a.0.cmp(b.0));
                for (k, v) in keys {
                    s.push_str(&format!("\n  {k}:\t{}", crate::template::go_print(v)));
                }
            }
        }
    }
    s
}

pub fn run(env: &mut Env, args: VersionArgs) -> CliResult {
    let format = args.format.unwrap_or_default();
    let tmpl = if format.is_empty() {
        None
    } else {
        let f = if format == JSON_FORMAT_KEY { JSON_FORMAT.to_string() } else { format };
        Some(parse_template(&f).map_err(|e| e.with_status(64))?)
    };
    let client = client_version();
    let server = env.client.get("/version").map(|v| server_version(&v));
    let text = match &tmpl {
        None => render_default(&client, server.as_ref().ok()),
        Some(t) => {
            let data = json::object([("Client", client.clone()), ("Server", server.as_ref().ok().cloned().unwrap_or(Value::Null))]);
            t.execute(&data).map_err(|e| CliError::new(format!("template: {e}")))?
        }
    };
    env.print(&tabwrite(&format!("{text}\n"), 20, 1))?;
    server.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_layout() {
        let v = json::parse(
            r#"{"Platform":{"Name":"Shoal"},"Version":"0.1.0","ApiVersion":"1.44","MinAPIVersion":"1.24","Os":"linux","Arch":"amd64",
                "Components":[{"Name":"Engine","Version":"0.1.0","Details":{"ApiVersion":"1.44","MinAPIVersion":"1.24","Os":"linux","Arch":"amd64",
                "BuildTime":"2018-07-09T23:38:38Z","Experimental":"false"}},{"Name":"runc","Version":"1.1.12","Details":{"GitCommit":"v1.1.12"}}]}"#,
        )
        .unwrap();
        let client = json::object([
            ("Version", Value::from("0.1.0")),
            ("ApiVersion", Value::from("1.44")),
            ("Os", Value::from("linux")),
            ("Arch", Value::from("amd64")),
            ("Context", Value::from("default")),
        ]);
        let out = tabwrite(&format!("{}\n", render_default(&client, Some(&server_version(&v)))), 20, 1);
        assert_eq!(
            out,
            "Client:
 Version:           0.1.0
 API version:       1.44
 OS/Arch:           linux/amd64
 Context:           default

Server: Shoal
 Engine:
  Version:          0.1.0
  API version:      1.44 (minimum version 1.24)
  Built:            Mon Jul  9 23:38:38 2018
  OS/Arch:          linux/amd64
  Experimental:     false
 runc:
  Version:          1.1.12
  GitCommit:        v1.1.12
"
        );
    }

    #[test]
    fn engine_component_is_added() {
        let v = json::parse(r#"{"Version":"0.1.0","ApiVersion":"1.44","MinAPIVersion":"1.24","Os":"linux","Arch":"arm64"}"#).unwrap();
        let sv = server_version(&v);
        assert_eq!(sv["Components"].items()[0].at(&["Details", "Arch"]).str(), "arm64");
    }
}
