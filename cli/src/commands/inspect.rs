//! docker's generic `inspect`: the raw objects as an indented JSON array,
//! `--format json` as a compact array, or a template per object.

use super::Env;
use crate::client::parse_body;
use crate::error::{CliError, CliResult};
use crate::format::parse_template;
use crate::json;

pub enum InspectFormat {
    Indented,
    Value,
    Template(String),
}

impl InspectFormat {
    pub fn from_flag(f: &str) -> InspectFormat {
        match f {
            "" => InspectFormat::Indented,
            "json" => InspectFormat::Value,
            t => InspectFormat::Template(t.to_string()),
        }
    }
}

/// Fetches each reference with `get` (raw JSON text) and prints them.
/// Failed references are reported after the others, joined, exit status 1.
pub fn inspect(env: &mut Env, refs: &[String], format: &InspectFormat, get: impl Fn(&str) -> CliResult<String>) -> CliResult {
    let tmpl = match format {
        InspectFormat::Template(t) => Some(parse_template(t).map_err(|e| e.with_status(64))?),
        _ => None,
    };
    let mut errors = Vec::new();
    let mut raws = Vec::new();
    let mut buf = String::new();
    for r in refs {
        let raw = match get(r) {
            Ok(raw) => raw,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        match &tmpl {
            None => raws.push(raw.trim().to_string()),
            Some(t) => {
                match parse_body(&raw).and_then(|v| t.execute(&v).map_err(|e| CliError::new(format!("template parsing error: {e}")))) {
                    Ok(s) => {
                        buf.push_str(&s);
                        buf.push('\n');
                    }
                    Err(e) => errors.push(e),
                }
            }
        }
    }
    let text = match format {
        InspectFormat::Template(_) => {
            if buf.is_empty() {
                "\n".to_string()
            } else {
                buf
            }
        }
        _ if raws.is_empty() => "[]\n".to_string(),
        InspectFormat::Indented => format!("{}\n", json::indent(&format!("[{}]", raws.join(",")), "    ")),
        InspectFormat::Value => format!("{}\n", json::compact(&format!("[{}]", raws.join(",")))),
    };
    env.print(&text)?;
    CliError::join(errors)
}
