//! `shoal events`: docker's `events` command. `--since`/`--until` as
//! `docker logs` takes them (durations, RFC 3339, Unix times), `--filter`,
//! and `--format` (`json` or a template over the message); without a
//! format each event is docker's line:
//! `<time> <type> <action> <id> (<k>=<v>, ...)`, time in the local zone.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};

use clap::Args;

use super::service::logs::api_timestamp;
use super::Env;
use crate::error::{CliError, CliResult};
use crate::filters::Filters;
use crate::format::JSON_FORMAT;
use serde_json::Value;

use crate::json::{self, JsonExt};

#[derive(Args, Debug, Default)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template: 'json', 'TEMPLATE'
    #[arg(long)]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long, default_value = "")]
    pub since: String,
    /// Stream events until this timestamp
    #[arg(long, default_value = "")]
    pub until: String,
}

pub fn run(env: &mut Env, a: EventsArgs) -> CliResult {
    let template = match a.format.as_deref().unwrap_or("") {
        "" => None,
        "json" => Some(JSON_FORMAT.to_string()),
        f => Some(f.to_string()),
    };
    let template = match &template {
        None => None,
        Some(src) => {
            let t = crate::template::parse(src).map_err(|e| CliError::new(format!("Error parsing format: {e}")).with_status(64))?;
            // docker runs it once on an empty message to catch bad fields.
            t.execute(&go_fields(&json::object::<&str>([])))
                .map_err(|e| CliError::new(format!("Error parsing format: {e}")).with_status(64))?;
            Some((src.trim() == JSON_FORMAT, t))
        }
    };
    let filters = Filters::from_flags(&a.filter).map_err(CliError::new)?;
    let now = crate::timestamp::now_unix_nanos();
    let mut params = Vec::new();
    if !a.since.is_empty() {
        params.push(("since", api_timestamp(&a.since, now)?));
    }
    if !a.until.is_empty() {
        params.push(("until", api_timestamp(&a.until, now)?));
    }
    if !filters.is_empty() {
        params.push(("filters", filters.to_json()));
    }
    let resp = env.client.send("GET", &format!("/events{}", crate::client::query(&params)), None)?;
    let reader = BufReader::new(resp.body);
    for line in reader.lines() {
        let line = line.map_err(|e| CliError::new(e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let ev = json::parse(&line).map_err(CliError::new)?;
        let text = match &template {
            None => event_line(&ev, crate::format::local_offset),
            Some((true, t)) => t.execute(&ev).map_err(CliError::new)?,
            Some((false, t)) => t.execute(&go_fields(&ev)).map_err(CliError::new)?,
        };
        env.println(&text)?;
        env.out.flush().map_err(CliError::from)?;
    }
    Ok(())
}

/// The message with the field names a Go template sees on moby's
/// `events.Message` (`.Status`, `.ID`, `.From`, `.Scope`, `.TimeNano`).
fn go_fields(ev: &Value) -> Value {
    json::object([
        ("Status", Value::from(ev["status"].str())),
        ("ID", Value::from(ev["id"].str())),
        ("From", Value::from(ev["from"].str())),
        ("Type", Value::from(ev["Type"].str())),
        ("Action", Value::from(ev["Action"].str())),
        (
            "Actor",
            json::object([
                ("ID", Value::from(ev.at(&["Actor", "ID"]).str())),
                (
                    "Attributes",
                    match ev.at(&["Actor", "Attributes"]) {
                        Value::Object(_) => ev.at(&["Actor", "Attributes"]).clone(),
                        _ => json::object::<&str>([]),
                    },
                ),
            ]),
        ),
        ("Scope", Value::from(ev["scope"].str())),
        ("Time", Value::from(ev["time"].as_i64().unwrap_or(0))),
        ("TimeNano", Value::from(ev["timeNano"].as_i64().unwrap_or(0))),
    ])
}

/// docker's `printOutput`: time (RFC 3339 with nanoseconds, fixed width,
/// local zone), type, action, actor ID, then the sorted attributes.
pub fn event_line(ev: &Value, offset_of: impl Fn(i64) -> i64) -> String {
    let mut out = String::new();
    let nanos = ev["timeNano"].as_i64().unwrap_or(0);
    let secs = ev["time"].as_i64().unwrap_or(0);
    if nanos != 0 {
        out.push_str(&format_time(nanos, offset_of(nanos.div_euclid(1_000_000_000))));
        out.push(' ');
    } else if secs != 0 {
        out.push_str(&format_time(secs * 1_000_000_000, offset_of(secs)));
        out.push(' ');
    }
    out.push_str(&format!("{} {} {}", ev["Type"].str(), ev["Action"].str(), ev.at(&["Actor", "ID"]).str()));
    let attrs: BTreeMap<String, String> = match ev.at(&["Actor", "Attributes"]) {
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v.str().to_string())).collect(),
        _ => BTreeMap::new(),
    };
    if !attrs.is_empty() {
        let parts: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!(" ({})", parts.join(", ")));
    }
    out
}

/// Go's `RFC3339NanoFixed` (`2006-01-02T15:04:05.000000000Z07:00`) at
/// `offset` seconds east of UTC.
pub fn format_time(unix_nanos: i64, offset: i64) -> String {
    let utc = time::OffsetDateTime::from_unix_timestamp_nanos(unix_nanos as i128).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let t = utc.to_offset(time::UtcOffset::from_whole_seconds(offset as i32).unwrap_or(time::UtcOffset::UTC));
    let zone = if offset == 0 {
        "Z".to_string()
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        format!("{sign}{:02}:{:02}", offset.abs() / 3600, (offset.abs() % 3600) / 60)
    };
    let (y, m, d) = (t.year(), t.month() as u8, t.day());
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}{zone}", t.hour(), t.minute(), t.second(), t.nanosecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_as_docker_prints_them() {
        let ev = json::parse(
            r#"{"Type":"service","Action":"update","Actor":{"ID":"abc","Attributes":{"name":"web","updatestate.new":"updating"}},"scope":"swarm","time":1704164645,"timeNano":1704164645000001000}"#,
        )
        .unwrap();
        assert_eq!(event_line(&ev, |_| 0), "2024-01-02T03:04:05.000001000Z service update abc (name=web, updatestate.new=updating)");
        assert_eq!(
            event_line(&ev, |_| 3600),
            "2024-01-02T04:04:05.000001000+01:00 service update abc (name=web, updatestate.new=updating)"
        );
        let bare = json::parse(r#"{"Type":"network","Action":"remove","Actor":{"ID":"n1","Attributes":{}},"time":1704164645}"#).unwrap();
        assert_eq!(event_line(&bare, |_| -5400), "2024-01-02T01:34:05.000000000-01:30 network remove n1");
    }

    #[test]
    fn templates_see_go_s_field_names() {
        let ev = json::parse(
            r#"{"status":"die","id":"c1","from":"busybox","Type":"container","Action":"die","Actor":{"ID":"c1","Attributes":{"exitCode":"3"}},"scope":"local","time":1,"timeNano":1000000000}"#,
        )
        .unwrap();
        let t =
            crate::template::parse("{{.Status}} {{.ID}} {{.From}} {{.Scope}} {{.Time}} {{index .Actor.Attributes \"exitCode\"}}").unwrap();
        assert_eq!(t.execute(&go_fields(&ev)).unwrap(), "die c1 busybox local 1 3");
    }
}
