//! `shoal service inspect`: the raw service objects (indented with four
//! spaces), a template, or `--pretty`, docker's human view.

use clap::Args;

use crate::client::{parse_body, path_segment, Client};
use crate::commands::inspect::{inspect, InspectFormat};
use crate::commands::Env;
use crate::duration::{ago, format_go_duration};
use crate::error::{CliError, CliResult};
use crate::format::bytes_size;
use serde_json::Value;

use crate::json::JsonExt;
use crate::timestamp::{now_unix_nanos, Timestamp};

use super::opts::format_f32;

#[derive(Args, Debug, Default, Clone)]
pub struct InspectArgs {
    /// Format output using a custom template: 'json', 'TEMPLATE'
    #[arg(short, long, value_name = "string")]
    pub format: Option<String>,
    /// Print the information in a human friendly format
    #[arg(long)]
    pub pretty: bool,
    #[arg(value_name = "SERVICE", required = true)]
    pub services: Vec<String>,
}

/// `GET /services/{ref}?insertDefaults=true` as raw text; a missing service
/// is "Error: no such service: …".
fn get_raw(client: &Client, r: &str) -> CliResult<String> {
    client.raw("GET", &format!("/services/{}?insertDefaults=true", path_segment(r)), None).map_err(|e| {
        if e.http_status == Some(404) {
            CliError::new(format!("Error: no such service: {r}"))
        } else {
            e
        }
    })
}

pub fn run(env: &mut Env, a: InspectArgs) -> CliResult {
    let user_format = a.format.clone().unwrap_or_default();
    if a.pretty && !user_format.is_empty() {
        return Err(CliError::new("--format is incompatible with human friendly format"));
    }
    let f = if a.pretty {
        "pretty".to_string()
    } else if user_format.is_empty() {
        "raw".to_string()
    } else {
        user_format
    };
    if f.starts_with("pretty") && f != "pretty" {
        return Err(CliError::new("Cannot supply extra formatting options to the pretty template"));
    }
    if f == "pretty" {
        // docker renders all or nothing: the first failure ends the command
        let mut text = String::new();
        let now = now_unix_nanos();
        for r in &a.services {
            let svc = get_raw(env.client, r).and_then(|raw| parse_body(&raw))?;
            text.push_str(&pretty_service(&svc, now));
            text.push('\n');
        }
        return env.print(&text);
    }
    let format = f.strip_prefix("raw").unwrap_or(&f).to_string();
    let client = env.client.clone();
    let get = |r: &str| get_raw(&client, r);
    inspect(env, &a.services, &InspectFormat::from_flag(&format), get)
}

/// Go's `%v` of a float64 (`strconv.FormatFloat(v, 'g', -1, 64)`).
fn go_float(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let sci = format!("{v:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        format!("{v}")
    }
}

/// Go's `%v` of a `[]string`: `[a b c]`.
fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

fn strings(v: &Value) -> Vec<String> {
    v.items().iter().map(|s| s.str().to_string()).collect()
}

fn sorted_pairs(v: &Value) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = v.members().iter().map(|(k, v)| (k.clone(), v.str().to_string())).collect();
    p.sort();
    p
}

fn since(ts: &Value, now: i128) -> String {
    let t = Timestamp::parse(ts.str()).map(|t| t.unix_nanos()).unwrap_or(now);
    ago((now - t).clamp(0, i64::MAX as i128) as i64)
}

fn push_update_config(s: &mut String, title: &str, order_label: &str, c: &Value) {
    let n = |k: &str| c[k].as_i64().unwrap_or(0);
    s.push_str(&format!("\n{title}:\n Parallelism:\t{}", c["Parallelism"].as_u64().unwrap_or(0)));
    if n("Delay") > 0 {
        s.push_str(&format!("\n Delay:\t\t{}", format_go_duration(n("Delay"))));
    }
    s.push_str(&format!("\n On failure:\t{}", c["FailureAction"].str()));
    if n("Monitor") > 0 {
        s.push_str(&format!("\n Monitoring Period: {}", format_go_duration(n("Monitor"))));
    }
    s.push_str(&format!("\n Max failure ratio: {}", format_f32(c["MaxFailureRatio"].as_f64().unwrap_or(0.0) as f32)));
    s.push_str(&format!("\n {order_label}{}", c["Order"].str()));
}

fn push_file_refs(s: &mut String, title: &str, refs: &Value, name_key: &str) {
    if refs.items().is_empty() {
        return;
    }
    s.push_str(&format!("\n{title}:"));
    for r in refs.items() {
        s.push_str(&format!("\n Target:\t{}\n  Source:\t{}", r.at(&["File", "Name"]).str(), r[name_key].str()));
    }
}

/// docker's `service inspect --pretty` template, rendered.
pub fn pretty_service(svc: &Value, now: i128) -> String {
    let spec = &svc["Spec"];
    let task = &spec["TaskTemplate"];
    let cs = &task["ContainerSpec"];
    let mut s = String::new();
    s.push_str(&format!("\nID:\t\t{}\nName:\t\t{}", svc["ID"].str(), spec["Name"].str()));
    let labels = sorted_pairs(&spec["Labels"]);
    if !labels.is_empty() {
        s.push_str("\nLabels:");
        for (k, v) in labels {
            s.push_str(&format!("\n {k}"));
            if !v.is_empty() {
                s.push_str(&format!("={v}"));
            }
        }
    }
    s.push_str("\nService Mode:");
    let mode = &spec["Mode"];
    if mode.has("Global") {
        s.push_str("\tGlobal");
    } else if mode.has("Replicated") {
        s.push_str("\tReplicated");
        let r = mode.at(&["Replicated", "Replicas"]);
        if !r.is_null() {
            s.push_str(&format!("\n Replicas:\t{}", r.as_u64().unwrap_or(0)));
        }
    }
    let us = &svc["UpdateStatus"];
    if !us.is_null() && !us["State"].str().is_empty() {
        s.push_str(&format!("\nUpdateStatus:\n State:\t\t{}", us["State"].str()));
        if !us["StartedAt"].is_null() {
            s.push_str(&format!("\n Started:\t{}", since(&us["StartedAt"], now)));
        }
        if us["State"].str() == "completed" && !us["CompletedAt"].is_null() {
            s.push_str(&format!("\n Completed:\t{}", since(&us["CompletedAt"], now)));
        }
        s.push_str(&format!("\n Message:\t{}", us["Message"].str()));
    }
    s.push_str("\nPlacement:");
    let placement = &task["Placement"];
    let constraints = strings(&placement["Constraints"]);
    if !constraints.is_empty() {
        s.push_str(&format!("\n Constraints:\t{}", go_list(&constraints)));
    }
    let prefs: Vec<String> = placement["Preferences"]
        .items()
        .iter()
        .filter(|p| !p["Spread"].is_null())
        .map(|p| format!("spread={}", p.at(&["Spread", "SpreadDescriptor"]).str()))
        .collect();
    if !prefs.is_empty() {
        s.push_str(&format!("\n Preferences:   {}", go_list(&prefs)));
    }
    let max = placement["MaxReplicas"].as_u64().unwrap_or(0);
    if max > 0 {
        s.push_str(&format!("\n Max Replicas Per Node:   {max}"));
    }
    if !spec["UpdateConfig"].is_null() {
        push_update_config(&mut s, "UpdateConfig", "Update order:      ", &spec["UpdateConfig"]);
    }
    if !spec["RollbackConfig"].is_null() {
        push_update_config(&mut s, "RollbackConfig", "Rollback order:    ", &spec["RollbackConfig"]);
    }
    s.push_str(&format!("\nContainerSpec:\n Image:\t\t{}", cs["Image"].str()));
    let args = strings(&cs["Args"]);
    if !args.is_empty() {
        s.push_str("\n Args:\t\t");
        for a in args {
            s.push_str(&a);
            s.push(' ');
        }
    }
    let env = strings(&cs["Env"]);
    if !env.is_empty() {
        s.push_str("\n Env:\t\t");
        for e in env {
            s.push_str(&e);
            s.push(' ');
        }
    }
    if !cs["Dir"].str().is_empty() {
        s.push_str(&format!("\n Dir:\t\t{}", cs["Dir"].str()));
    }
    if !cs["Init"].is_null() {
        s.push_str(&format!("\n Init:\t\t{}", cs["Init"].bool()));
    }
    if !cs["User"].str().is_empty() {
        s.push_str(&format!("\n User: {}", cs["User"].str()));
    }
    let (cap_add, cap_drop) = (strings(&cs["CapabilityAdd"]), strings(&cs["CapabilityDrop"]));
    if !cap_add.is_empty() || !cap_drop.is_empty() {
        s.push_str("\nCapabilities:");
        if !cap_add.is_empty() {
            s.push_str(&format!("\n Add: {}", cap_add.join(", ")));
        }
        if !cap_drop.is_empty() {
            s.push_str(&format!("\n Drop: {}", cap_drop.join(", ")));
        }
    }
    let sysctls = sorted_pairs(&cs["Sysctls"]);
    if !sysctls.is_empty() {
        s.push_str("\nSysCtls:");
        for (k, v) in sysctls {
            s.push_str(&format!("\n {k}"));
            if !v.is_empty() {
                s.push_str(&format!(": {v}"));
            }
        }
    }
    let mut ulimits: Vec<(String, String)> = cs["Ulimits"]
        .items()
        .iter()
        .map(|u| (u["Name"].str().to_string(), format!("{}:{}", u["Soft"].as_i64().unwrap_or(0), u["Hard"].as_i64().unwrap_or(0))))
        .collect();
    if !ulimits.is_empty() {
        ulimits.sort();
        s.push_str("\nUlimits:");
        for (k, v) in ulimits {
            s.push_str(&format!("\n {k}: {v}"));
        }
    }
    let mounts = cs["Mounts"].items();
    if !mounts.is_empty() {
        s.push_str("\nMounts:");
    }
    for m in mounts {
        s.push_str(&format!(
            "\n Target:\t{}\n  Source:\t{}\n  ReadOnly:\t{}\n  Type:\t\t{}",
            m["Target"].str(),
            m["Source"].str(),
            m["ReadOnly"].bool(),
            m["Type"].str()
        ));
    }
    push_file_refs(&mut s, "Configs", &cs["Configs"], "ConfigName");
    push_file_refs(&mut s, "Secrets", &cs["Secrets"], "SecretName");
    let log = &task["LogDriver"];
    if !log.is_null() {
        s.push_str("\nLog Driver:");
        if !log["Name"].str().is_empty() {
            s.push_str(&format!("\n Name:\t\t{}", log["Name"].str()));
        }
        let opts = sorted_pairs(&log["Options"]);
        if !opts.is_empty() {
            s.push_str("\n LogOpts:");
            for (k, v) in opts {
                s.push_str(&format!("\n  {k}"));
                if !v.is_empty() {
                    s.push_str(&format!(":       {v}"));
                }
            }
        }
        s.push('\n');
    }
    let res = &task["Resources"];
    if !res.is_null() {
        s.push_str("\nResources:");
        let r = &res["Reservations"];
        let (rcpu, rmem) = (r["NanoCPUs"].as_i64().unwrap_or(0), r["MemoryBytes"].as_i64().unwrap_or(0));
        if rcpu > 0 || rmem > 0 {
            s.push_str("\n Reservations:");
            if rcpu > 0 {
                s.push_str(&format!("\n  CPU:\t\t{}", go_float(rcpu as f64 / 1e9)));
            }
            if rmem != 0 {
                s.push_str(&format!("\n  Memory:\t{}", bytes_size(rmem as f64)));
            }
        }
        let l = &res["Limits"];
        let (lcpu, lmem, lpids) =
            (l["NanoCPUs"].as_i64().unwrap_or(0), l["MemoryBytes"].as_i64().unwrap_or(0), l["Pids"].as_i64().unwrap_or(0));
        if lcpu > 0 || lmem > 0 || lpids > 0 {
            s.push_str("\n Limits:");
            if lcpu > 0 {
                s.push_str(&format!("\n  CPU:\t\t{}", go_float(lcpu as f64 / 1e9)));
            }
            if lmem != 0 {
                s.push_str(&format!("\n  Memory:\t{}", bytes_size(lmem as f64)));
            }
        }
    }
    let pids = res.at(&["Limits", "Pids"]).as_i64().unwrap_or(0);
    if pids > 0 {
        s.push_str(&format!("\n  PIDs:\t\t{pids}"));
    }
    let networks = task["Networks"].items();
    if !networks.is_empty() {
        s.push_str("\nNetworks:");
        for n in networks {
            s.push_str(&format!(" {}", n["Target"].str()));
        }
        s.push(' ');
    }
    s.push_str(&format!("\nEndpoint Mode:\t{}", spec.at(&["EndpointSpec", "Mode"]).str()));
    let ports = svc.at(&["Endpoint", "Ports"]).items();
    if !ports.is_empty() {
        s.push_str("\nPorts:");
        for p in ports {
            s.push_str(&format!(
                "\n PublishedPort = {}\n  Protocol = {}\n  TargetPort = {}\n  PublishMode = {}",
                p["PublishedPort"].as_u64().unwrap_or(0),
                p["Protocol"].str(),
                p["TargetPort"].as_u64().unwrap_or(0),
                p["PublishMode"].str()
            ));
        }
        s.push(' ');
    }
    let h = &cs["Healthcheck"];
    if !h.is_null() {
        let d = |k: &str| format_go_duration(h[k].as_i64().unwrap_or(0));
        s.push_str(&format!(
            "\n Healthcheck:\n  Interval = {}\n  Retries = {}\n  StartPeriod =\t{}\n  Timeout =\t{}",
            d("Interval"),
            h["Retries"].as_i64().unwrap_or(0),
            d("StartPeriod"),
            d("Timeout")
        ));
        let tests = strings(&h["Test"]);
        if !tests.is_empty() {
            s.push_str("\n  Tests:");
            for t in tests {
                s.push_str(&format!("\n\t Test = {t}"));
            }
            s.push(' ');
        }
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::FakeDaemon;
    use crate::json;

    /// docker/cli's `service-inspect-pretty.golden` service.
    #[test]
    fn pretty_matches_dockers_golden_file() {
        let svc = json::parse(
            r#"{"ID":"de179gar9d0o7ltdybungplod","Spec":{"Name":"my_service","Labels":{"com.label":"foo"},
            "TaskTemplate":{"ContainerSpec":{"Image":"foo/bar@sha256:this_is_a_test",
              "Configs":[{"File":{"Name":"/configtest.conf"},"ConfigName":"configtest.conf"}],
              "Secrets":[{"File":{"Name":"/secrettest.conf"},"SecretName":"secrettest.conf"}],
              "Healthcheck":{"Test":["CMD-SHELL","curl"],"Interval":4,"Retries":3,"StartPeriod":2,"Timeout":1}},
              "Resources":{"Limits":{"NanoCPUs":100000000000,"MemoryBytes":10490000,"Pids":20}},
              "Networks":[{"Target":"mynetwork"}],"LogDriver":{"Name":"driver","Options":{"max-file":"5"}}},
            "Mode":{"Replicated":{"Replicas":2}},"EndpointSpec":{"Mode":"vip"}},
            "Endpoint":{"Ports":[{"Protocol":"tcp","TargetPort":5000,"PublishedPort":30000}]}}"#,
        )
        .unwrap();
        let want = "\nID:\t\tde179gar9d0o7ltdybungplod\nName:\t\tmy_service\nLabels:\n com.label=foo\nService Mode:\tReplicated\n Replicas:\t2\nPlacement:\nContainerSpec:\n Image:\t\tfoo/bar@sha256:this_is_a_test\nConfigs:\n Target:\t/configtest.conf\n  Source:\tconfigtest.conf\nSecrets:\n Target:\t/secrettest.conf\n  Source:\tsecrettest.conf\nLog Driver:\n Name:\t\tdriver\n LogOpts:\n  max-file:       5\n\nResources:\n Limits:\n  CPU:\t\t100\n  Memory:\t10MiB\n  PIDs:\t\t20\nNetworks: mynetwork \nEndpoint Mode:\tvip\nPorts:\n PublishedPort = 30000\n  Protocol = tcp\n  TargetPort = 5000\n  PublishMode =  \n Healthcheck:\n  Interval = 4ns\n  Retries = 3\n  StartPeriod =\t2ns\n  Timeout =\t1ns\n  Tests:\n\t Test = CMD-SHELL\n\t Test = curl \n";
        assert_eq!(pretty_service(&svc, 0), want);
    }

    /// `docker service create busybox` (the CLI sends an endpoint spec),
    /// inspected as the CLI asks (`?insertDefaults=true`): the daemon fills
    /// SwarmKit's defaults, and docker's template then shows update and
    /// rollback configs and an empty `Resources:` section.
    #[test]
    fn pretty_of_a_minimal_service_with_defaults_inserted() {
        let spec: shoal_api::service::ServiceSpec =
            serde_json::from_str(r#"{"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"busybox"}},"EndpointSpec":{"Mode":"vip"}}"#)
                .unwrap();
        let svc = shoal_api::service::Service { id: "x".into(), spec, ..Default::default() }.with_defaults();
        let svc = serde_json::to_value(&svc).unwrap();
        let want = "\nID:\t\tx\nName:\t\tweb\nService Mode:\tReplicated\n Replicas:\t1\nPlacement:\nUpdateConfig:\n Parallelism:\t1\n On failure:\tpause\n Monitoring Period: 5s\n Max failure ratio: 0\n Update order:      stop-first\nRollbackConfig:\n Parallelism:\t1\n On failure:\tpause\n Monitoring Period: 5s\n Max failure ratio: 0\n Rollback order:    stop-first\nContainerSpec:\n Image:\t\tbusybox\nResources:\nEndpoint Mode:\tvip\n";
        assert_eq!(pretty_service(&svc, 0), want);
    }

    #[test]
    fn pretty_with_update_config_and_status() {
        let now = Timestamp::parse("2024-01-01T00:01:00Z").unwrap().unix_nanos();
        let svc = json::parse(
            r#"{"ID":"x","Spec":{"Name":"web","Labels":{},"TaskTemplate":{"ContainerSpec":{"Image":"busybox:1.36","Args":["sleep","1000"],"Env":["A=1"],"Init":false,
              "CapabilityAdd":["CAP_NET_ADMIN"]},"Resources":{"Limits":{},"Reservations":{"NanoCPUs":250000000,"MemoryBytes":67108864}},
              "Placement":{"Constraints":["node.role == manager","node.labels.x == y"],"Preferences":[{"Spread":{"SpreadDescriptor":"node.labels.zone"}}],"MaxReplicas":2}},
            "Mode":{"Global":{}},"UpdateConfig":{"Parallelism":2,"Delay":10000000000,"FailureAction":"pause","Monitor":5000000000,"MaxFailureRatio":0.1,"Order":"stop-first"},
            "EndpointSpec":{"Mode":"dnsrr"}},
            "UpdateStatus":{"State":"completed","StartedAt":"2024-01-01T00:00:00Z","CompletedAt":"2024-01-01T00:00:50Z","Message":"update completed"}}"#,
        )
        .unwrap();
        let want = "\nID:\t\tx\nName:\t\tweb\nService Mode:\tGlobal\nUpdateStatus:\n State:\t\tcompleted\n Started:\tAbout a minute ago\n Completed:\t10 seconds ago\n Message:\tupdate completed\nPlacement:\n Constraints:\t[node.role == manager node.labels.x == y]\n Preferences:   [spread=node.labels.zone]\n Max Replicas Per Node:   2\nUpdateConfig:\n Parallelism:\t2\n Delay:\t\t10s\n On failure:\tpause\n Monitoring Period: 5s\n Max failure ratio: 0.1\n Update order:      stop-first\nContainerSpec:\n Image:\t\tbusybox:1.36\n Args:\t\tsleep 1000 \n Env:\t\tA=1 \n Init:\t\tfalse\nCapabilities:\n Add: CAP_NET_ADMIN\nResources:\n Reservations:\n  CPU:\t\t0.25\n  Memory:\t64MiB\nEndpoint Mode:\tdnsrr\n";
        assert_eq!(pretty_service(&svc, now), want);
        assert_eq!(go_float(1e8), "1e+08");
        assert_eq!(go_float(0.5), "0.5");
    }

    #[test]
    fn raw_pretty_and_errors() {
        let body = r#"{"ID":"s1","Version":{"Index":3},"Spec":{"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"busybox"}},"Mode":{"Replicated":{"Replicas":1}}}}"#;
        let d = FakeDaemon::start(move |req| match (req.method.as_str(), req.target.as_str()) {
            ("GET", "/v1.44/services/web?insertDefaults=true") => (200, body.into()),
            _ => (404, r#"{"message":"service nope not found"}"#.into()),
        });
        let client = d.client();
        let run_args = |a: InspectArgs| {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let r = {
                let mut env = Env { client: &client, out: &mut out, err: &mut err, prog: "shoal".into() };
                run(&mut env, a)
            };
            (r, String::from_utf8(out).unwrap())
        };
        let (r, out) = run_args(InspectArgs { services: vec!["web".into(), "nope".into()], ..Default::default() });
        assert_eq!(r.unwrap_err().message, "Error: no such service: nope");
        assert!(
            out.starts_with("[\n    {\n        \"ID\": \"s1\",\n        \"Version\": {\n            \"Index\": 3\n        },"),
            "{out}"
        );
        let (r, out) = run_args(InspectArgs { services: vec!["web".into()], format: Some("{{.Spec.Name}}".into()), ..Default::default() });
        r.unwrap();
        assert_eq!(out, "web\n");
        let (r, out) = run_args(InspectArgs { services: vec!["web".into()], pretty: true, ..Default::default() });
        r.unwrap();
        assert!(out.starts_with("\nID:\t\ts1\nName:\t\tweb\nService Mode:\tReplicated\n Replicas:\t1\n"), "{out:?}");
        assert!(out.ends_with("Endpoint Mode:\t\n\n"), "{out:?}");
        let (r, out) = run_args(InspectArgs { services: vec!["web".into(), "nope".into()], pretty: true, ..Default::default() });
        assert_eq!((r.unwrap_err().message.as_str(), out.as_str()), ("Error: no such service: nope", ""));
        let (r, _) = run_args(InspectArgs { services: vec!["web".into()], pretty: true, format: Some("json".into()) });
        assert_eq!(r.unwrap_err().message, "--format is incompatible with human friendly format");
        let (r, _) = run_args(InspectArgs { services: vec!["web".into()], format: Some("pretty {{.ID}}".into()), ..Default::default() });
        assert_eq!(r.unwrap_err().message, "Cannot supply extra formatting options to the pretty template");
    }
}
