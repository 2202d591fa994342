//! Docker's formatter: `--format` selection (`table …`, `json`, Go
//! templates), table headers, tab-aligned columns (minwidth 10, padding 3),
//! and the small value helpers the tables use (capitalisation, sizes, IDs).

use crate::error::{CliError, CliResult};
use serde_json::Value;

use crate::json;
use crate::tabwriter::tabwrite;
use crate::template;

pub const TABLE_FORMAT_KEY: &str = "table";
pub const RAW_FORMAT_KEY: &str = "raw";
pub const PRETTY_FORMAT_KEY: &str = "pretty";
pub const JSON_FORMAT_KEY: &str = "json";
pub const JSON_FORMAT: &str = "{{json .}}";
pub const DEFAULT_QUIET_FORMAT: &str = "{{.ID}}";

pub fn is_table(format: &str) -> bool {
    format.starts_with(TABLE_FORMAT_KEY)
}

/// The template text of a `--format` value (docker's `Format.templateString`):
/// `json` means `{{json .}}`, a `table` prefix is dropped, surrounding spaces
/// trimmed and the escapes `\t` and `\n` turned into tabs and newlines.
pub fn template_string(format: &str) -> String {
    match format {
        TABLE_FORMAT_KEY => return String::new(),
        JSON_FORMAT_KEY => return JSON_FORMAT.to_string(),
        _ => {}
    }
    let out = format.strip_prefix(TABLE_FORMAT_KEY).unwrap_or(format);
    out.trim_matches(' ').replace("\\t", "\t").replace("\\n", "\n")
}

/// Parses a template, with docker's error wording.
pub fn parse_template(src: &str) -> CliResult<template::Template> {
    template::parse(src).map_err(|e| CliError::new(format!("template parsing error: {e}")))
}

/// Renders rows with a `--format` value: each row is the template's output
/// and a newline; a `table` format also gets a header line (the template run
/// over `header`) and column alignment.
pub fn write_rows(format: &str, header: &Value, rows: &[Value]) -> CliResult<String> {
    let tmpl = parse_template(&template_string(format))?;
    let mut buf = String::new();
    for row in rows {
        let line = tmpl.execute(row).map_err(|e| CliError::new(format!("template parsing error: {e}")))?;
        buf.push_str(&line);
        buf.push('\n');
    }
    if !is_table(format) {
        return Ok(buf);
    }
    let mut text = tmpl.execute_header(header).map_err(|e| CliError::new(format!("template parsing error: {e}")))?;
    text.push('\n');
    text.push_str(&buf);
    Ok(tabwrite(&text, 10, 3))
}

/// docker's `formatter.PrettyPrint` for strings: first letter upper-case,
/// the rest lower-case ("ready" → "Ready", "drain" → "Drain").
pub fn pretty_print(s: &str) -> String {
    let mut chars = s.chars();
    match (chars.next(), s.chars().count()) {
        (None, _) => String::new(),
        (Some(c), 1) => c.to_lowercase().collect(),
        (Some(c), _) => {
            let mut out: String = c.to_uppercase().collect();
            out.push_str(&chars.as_str().to_lowercase());
            out
        }
    }
}

/// The first 12 characters of an ID (docker's `stringid.TruncateID`).
pub fn truncate_id(id: &str) -> String {
    let id = id.split_once(':').map(|(_, r)| r).unwrap_or(id);
    id.chars().take(12).collect()
}

/// Shortens `s` to `max` characters with a trailing "…".
pub fn ellipsis(s: &str, max: usize) -> String {
    if max == 0 {
        return String::new();
    }
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    if max == 1 {
        return s.chars().take(1).collect();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// docker's `units.BytesSize`: binary units with `%.4g` ("1.953GiB", "20MiB").
pub fn bytes_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut size = size;
    let mut i = 0;
    while size >= 1024.0 && i < UNITS.len() - 1 {
        size /= 1024.0;
        i += 1;
    }
    format!("{}{}", format_g(size, 4), UNITS[i])
}

/// go-units' `HumanSizeWithPrecision`: decimal units with `%.{prec}g`
/// ("4.4MB", "1.23kB"); `HumanSize` is precision 4.
pub fn human_size_prec(size: f64, prec: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = size;
    let mut i = 0;
    while size >= 1000.0 && i < UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", format_g(size, prec), UNITS[i])
}

/// go-units' `HumanSize`.
pub fn human_size(size: f64) -> String {
    human_size_prec(size, 4)
}

/// The local time at `secs` (Go's `time.Local`: `TZ`, else
/// /etc/localtime). libc's localtime_r: neither nix nor rustix has one,
/// and the `time` crate refuses the local offset once threads run.
fn local_tm(secs: i64) -> Option<libc::tm> {
    let t = secs as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    (!unsafe { libc::localtime_r(&t, &mut tm) }.is_null()).then_some(tm)
}

/// The local zone's offset from UTC at `secs`, in seconds (0 if unknown).
pub fn local_offset(secs: i64) -> i64 {
    local_tm(secs).map(|tm| tm.tm_gmtoff).unwrap_or(0)
}

/// Go's `time.Unix(secs, 0).String()` in the local zone:
/// "2026-01-02 03:04:05 +0000 UTC".
pub fn go_local_time(secs: i64) -> String {
    let Some(tm) = local_tm(secs) else { return String::new() };
    let off = tm.tm_gmtoff;
    let zone = if tm.tm_zone.is_null() {
        String::new()
    } else {
        // SAFETY: tm_zone points at a NUL-terminated static string.
        unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }.to_string_lossy().into_owned()
    };
    let sign = if off < 0 { '-' } else { '+' };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} {sign}{:02}{:02} {zone}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        off.abs() / 3600,
        (off.abs() % 3600) / 60
    )
}

/// Go's `%.{prec}g`.
pub fn format_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let prec = prec.max(1);
    let sci = format!("{:.*e}", prec - 1, v);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let m = strip_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{v:.decimals$}"))
    }
}

fn strip_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// A header context: field name → column title.
pub fn header_obj(pairs: &[(&str, &str)]) -> Value {
    json::object(pairs.iter().map(|(k, v)| (k.to_string(), Value::from(*v))))
}

/// Natural ordering (fvbommel/sortorder's `NaturalLess`): digit runs compare
/// numerically ("node-2" < "node-10"), with fewer leading zeros first on ties.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (da, db) = (a[i].is_ascii_digit(), b[j].is_ascii_digit());
        if da && db {
            let si = i;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let (ra, rb) = (&a[si..i], &b[sj..j]);
            let ta = &ra[ra.iter().position(|&c| c != b'0').unwrap_or(ra.len())..];
            let tb = &rb[rb.iter().position(|&c| c != b'0').unwrap_or(rb.len())..];
            let ord = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb)).then_with(|| ra.len().cmp(&rb.len()));
            if ord != Ordering::Equal {
                return ord;
            }
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        use std::cmp::Ordering::*;
        assert_eq!(natural_cmp("node-2", "node-10"), Less);
        assert_eq!(natural_cmp("node-10", "node-2"), Greater);
        assert_eq!(natural_cmp("2", "02"), Less);
        assert_eq!(natural_cmp("abc", "abc"), Equal);
        assert_eq!(natural_cmp("abc", "abcd"), Less);
        assert_eq!(natural_cmp("a1b", "a1a"), Greater);
        let mut v = vec!["node-10", "node-1", "node-9", "manager"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, vec!["manager", "node-1", "node-9", "node-10"]);
    }

    #[test]
    fn capitalisation() {
        assert_eq!(pretty_print("ready"), "Ready");
        assert_eq!(pretty_print("down"), "Down");
        assert_eq!(pretty_print("disconnected"), "Disconnected");
        assert_eq!(pretty_print("UNKNOWN"), "Unknown");
        assert_eq!(pretty_print("drain"), "Drain");
        assert_eq!(pretty_print("reachable"), "Reachable");
        assert_eq!(pretty_print("A"), "a");
        assert_eq!(pretty_print(""), "");
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes_size(0.0), "0B");
        assert_eq!(bytes_size(20.0 * 1024.0 * 1024.0), "20MiB");
        assert_eq!(bytes_size(2097012736.0), "1.953GiB");
        assert_eq!(bytes_size(1023.0), "1023B");
        assert_eq!(bytes_size(1536.0), "1.5KiB");
        assert_eq!(bytes_size(8_200_000_000.0), "7.637GiB");
        assert_eq!(format_g(123456.0, 4), "1.235e+05");
        assert_eq!(format_g(0.0001234, 4), "0.0001234");
        assert_eq!(format_g(0.00001234, 4), "1.234e-05");
    }

    #[test]
    fn decimal_sizes() {
        assert_eq!(human_size_prec(0.0, 3), "0B");
        assert_eq!(human_size_prec(1_996_800.0, 3), "2MB");
        assert_eq!(human_size_prec(4_400_000.0, 3), "4.4MB");
        assert_eq!(human_size(1_996_800.0), "1.997MB");
        assert_eq!(human_size(6.0), "6B");
        assert_eq!(human_size(999_950.0), "1000kB");
        assert_eq!(human_size_prec(999_950.0, 3), "1e+03kB");
    }

    #[test]
    fn template_strings() {
        assert_eq!(template_string("table {{.ID}}\\t{{.Name}}"), "{{.ID}}\t{{.Name}}");
        assert_eq!(template_string("json"), "{{json .}}");
        assert_eq!(template_string("{{.ID}}"), "{{.ID}}");
        assert_eq!(template_string("table"), "");
    }

    #[test]
    fn rows_and_tables() {
        let header = header_obj(&[("ID", "ID"), ("Name", "NAME")]);
        let rows =
            vec![json::object([("ID", "1".into()), ("Name", "alpha".into())]), json::object([("ID", "22".into()), ("Name", "b".into())])];
        assert_eq!(write_rows("{{.ID}}:{{.Name}}", &header, &rows).unwrap(), "1:alpha\n22:b\n");
        assert_eq!(write_rows("table {{.ID}}\t{{.Name}}", &header, &rows).unwrap(), "ID        NAME\n1         alpha\n22        b\n");
        assert_eq!(write_rows("table {{.ID}}\t{{.Name}}", &header, &[]).unwrap(), "ID        NAME\n");
        assert!(write_rows("{{.ID", &header, &rows).unwrap_err().message.starts_with("template parsing error:"));
    }

    #[test]
    fn ids_and_ellipsis() {
        assert_eq!(truncate_id("463j2s3y4b5o1234567890abc"), "463j2s3y4b5o");
        assert_eq!(truncate_id("sha256:abcdef0123456789"), "abcdef012345");
        assert_eq!(ellipsis("No such image: nginx:1.11.2-alpine", 30), "No such image: nginx:1.11.2-a…");
        assert_eq!(ellipsis("short", 30), "short");
    }
}
