//! A strict reader of the Prometheus text format (version 0.0.4), for tests:
//! it refuses what Prometheus's own parser refuses (bad names, label
//! syntax or escapes, values that are not numbers, a second HELP or TYPE,
//! metadata after samples, a family split in two, a repeated series) and
//! checks what `promtool check metrics` checks of histograms (an `+Inf`
//! bucket equal to `_count`, cumulative buckets).

use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: LabelPairs,
    pub value: f64,
}

#[derive(Debug, Default)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    /// Family name → its TYPE.
    pub types: HashMap<String, String>,
    pub help: HashMap<String, String>,
}

impl Exposition {
    /// The value of the series `name` with exactly these labels (any order).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut want: Vec<(&str, &str)> = labels.to_vec();
        want.sort_unstable();
        self.samples
            .iter()
            .find(|s| {
                let mut have: Vec<(&str, &str)> = s.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                have.sort_unstable();
                s.name == name && have == want
            })
            .map(|s| s.value)
    }

    /// Every series of `name`, with their labels.
    pub fn series(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }

    /// The sum of every series of `name`.
    pub fn sum(&self, name: &str) -> f64 {
        self.series(name).iter().map(|s| s.value).sum()
    }

    /// The TYPE of family `name`.
    pub fn kind(&self, name: &str) -> Option<&str> {
        self.types.get(name).map(String::as_str)
    }
}

fn valid_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || ch == ':')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
}

fn valid_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_') && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ if s.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')) => s.parse().ok(),
        _ => None,
    }
}

/// Label pairs in their order.
pub type LabelPairs = Vec<(String, String)>;

/// `{a="x",b="y"}` at the start of `s`: the labels and the rest.
fn parse_labels(s: &str) -> Result<(LabelPairs, &str), String> {
    let mut labels = Vec::new();
    let mut rest = s.strip_prefix('{').ok_or("expected {")?;
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !valid_label_name(name) {
            return Err(format!("invalid label name {name:?}"));
        }
        rest = rest[eq + 1..].strip_prefix('"').ok_or_else(|| format!("label {name}: value not quoted"))?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("label {name}: unterminated value")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("label {name}: invalid escape {other:?}")),
                },
                Some((_, '\n')) => return Err(format!("label {name}: newline in value")),
                Some((_, c)) => value.push(c),
            }
        };
        if labels.iter().any(|(k, _)| k == name) {
            return Err(format!("label {name} repeated"));
        }
        labels.push((name.to_string(), value));
        rest = &rest[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err("expected , or } after a label".into());
        }
    }
}

/// The family a sample belongs to, given the TYPEs declared so far.
fn family_of<'a>(name: &'a str, types: &HashMap<String, String>) -> &'a str {
    for (suffix, kinds) in [("_bucket", &["histogram"][..]), ("_sum", &["histogram", "summary"]), ("_count", &["histogram", "summary"])] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types.get(base).is_some_and(|t| kinds.contains(&t.as_str())) {
                return base;
            }
        }
    }
    name
}

/// Reads and checks an exposition.
pub fn validate(text: &str) -> Result<Exposition, String> {
    let mut out = Exposition::default();
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the last line does not end with a newline".into());
    }
    let mut done: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut seen_series: HashSet<(String, Vec<(String, String)>)> = HashSet::new();
    let mut with_samples: HashSet<String> = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.is_empty() {
            return Err(at("empty line".into()));
        }
        // A family ends when another one's line comes.
        let mut enter = |family: &str, current: &mut Option<String>| -> Result<(), String> {
            if current.as_deref() != Some(family) {
                if done.contains(family) {
                    return Err(format!("family {family} appears in two places"));
                }
                if let Some(c) = current.take() {
                    done.insert(c);
                }
                *current = Some(family.to_string());
            }
            Ok(())
        };
        if let Some(meta) = line.strip_prefix("# ") {
            let mut parts = meta.splitn(3, ' ');
            let (keyword, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            if keyword != "HELP" && keyword != "TYPE" {
                continue; // a comment
            }
            if !valid_metric_name(name) {
                return Err(at(format!("invalid metric name {name:?}")));
            }
            enter(name, &mut current).map_err(at)?;
            if with_samples.contains(name) {
                return Err(at(format!("{keyword} after samples of {name}")));
            }
            let rest = parts.next().unwrap_or("");
            if keyword == "HELP" {
                if out.help.insert(name.to_string(), rest.to_string()).is_some() {
                    return Err(at(format!("second HELP for {name}")));
                }
            } else {
                if !matches!(rest, "counter" | "gauge" | "histogram" | "summary" | "untyped") {
                    return Err(at(format!("unknown type {rest:?}")));
                }
                if out.types.insert(name.to_string(), rest.to_string()).is_some() {
                    return Err(at(format!("second TYPE for {name}")));
                }
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        if !valid_metric_name(name) {
            return Err(at(format!("invalid metric name {name:?}")));
        }
        let (labels, rest) =
            if line[name_end..].starts_with('{') { parse_labels(&line[name_end..]).map_err(at)? } else { (Vec::new(), &line[name_end..]) };
        let rest = rest.strip_prefix(' ').ok_or_else(|| at("expected a space before the value".into()))?;
        let mut fields = rest.split(' ');
        let value = fields.next().and_then(parse_value).ok_or_else(|| at("invalid value".into()))?;
        if let Some(ts) = fields.next() {
            ts.parse::<i64>().map_err(|_| at("invalid timestamp".into()))?;
        }
        if fields.next().is_some() {
            return Err(at("trailing fields".into()));
        }
        let family = family_of(name, &out.types).to_string();
        enter(&family, &mut current).map_err(at)?;
        with_samples.insert(family.clone());
        let kind = out.types.get(&family).map(String::as_str).unwrap_or("untyped");
        if kind == "counter" && value < 0.0 {
            return Err(at("negative counter".into()));
        }
        if kind == "histogram" && name.ends_with("_bucket") && !labels.iter().any(|(k, _)| k == "le") {
            return Err(at("bucket without le".into()));
        }
        let mut key = labels.clone();
        key.sort();
        if !seen_series.insert((name.to_string(), key)) {
            return Err(at("repeated series".into()));
        }
        out.samples.push(Sample { name: name.to_string(), labels, value });
    }
    check_histograms(&out)?;
    Ok(out)
}

fn check_histograms(out: &Exposition) -> Result<(), String> {
    for (family, _) in out.types.iter().filter(|(_, t)| *t == "histogram") {
        // Per series (labels without `le`): its buckets, and its count.
        type Key = Vec<(String, String)>;
        let mut buckets: BTreeMap<Key, Vec<(f64, f64)>> = BTreeMap::new();
        let mut counts: BTreeMap<Key, f64> = BTreeMap::new();
        for s in &out.samples {
            let mut key: Key = s.labels.iter().filter(|(k, _)| k != "le").cloned().collect();
            key.sort();
            if s.name == format!("{family}_bucket") {
                let le = s.labels.iter().find(|(k, _)| k == "le").map(|(_, v)| v.as_str()).unwrap_or("");
                let le = parse_value(le).ok_or_else(|| format!("{family}: invalid le {le:?}"))?;
                buckets.entry(key).or_default().push((le, s.value));
            } else if s.name == format!("{family}_count") {
                counts.insert(key, s.value);
            }
        }
        for (key, mut bs) in buckets {
            bs.sort_by(|a, b| a.0.total_cmp(&b.0));
            if bs.windows(2).any(|w| w[1].1 < w[0].1) {
                return Err(format!("{family} {key:?}: buckets are not cumulative"));
            }
            let inf = bs.last().filter(|b| b.0 == f64::INFINITY).ok_or_else(|| format!("{family} {key:?}: no +Inf bucket"))?;
            let count = counts.get(&key).ok_or_else(|| format!("{family} {key:?}: no _count"))?;
            if inf.1 != *count {
                return Err(format!("{family} {key:?}: +Inf bucket {} differs from _count {count}", inf.1));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "# HELP a_total A counter.\n# TYPE a_total counter\na_total{x=\"1\"} 3\na_total{x=\"q\\\"\\\\\\n\"} 0\n\
# HELP h Latency.\n# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1.5\nh_count 2\n\
# TYPE g gauge\ng -1.5e3 1700000000000\nuntyped_thing NaN\n";

    #[test]
    fn reads_a_good_exposition() {
        let e = validate(GOOD).unwrap();
        assert_eq!(e.value("a_total", &[("x", "1")]), Some(3.0));
        assert_eq!(e.value("a_total", &[("x", "q\"\\\n")]), Some(0.0));
        assert_eq!(e.value("h_count", &[]), Some(2.0));
        assert_eq!(e.value("g", &[]), Some(-1500.0));
        assert_eq!(e.kind("h"), Some("histogram"));
        assert_eq!(e.sum("a_total"), 3.0);
    }

    #[test]
    fn refuses_what_prometheus_refuses() {
        let bad = [
            ("no newline", "a 1"),
            ("bad name", "1a 1\n"),
            ("bad label name", "a{1x=\"v\"} 1\n"),
            ("unquoted", "a{x=v} 1\n"),
            ("bad escape", "a{x=\"\\t\"} 1\n"),
            ("bad value", "a one\n"),
            ("double type", "# TYPE a gauge\n# TYPE a gauge\na 1\n"),
            ("type after samples", "a 1\n# TYPE a gauge\n"),
            ("unknown type", "# TYPE a thing\na 1\n"),
            ("split family", "a 1\nb 1\na{x=\"1\"} 1\n"),
            ("repeated series", "a{x=\"1\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 1\n"),
            ("negative counter", "# TYPE c_total counter\nc_total -1\n"),
            ("no +Inf", "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n"),
            ("inf != count", "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 1\n"),
            ("not cumulative", "# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\nh_count 2\n"),
            ("empty line", "a 1\n\nb 1\n"),
        ];
        for (what, text) in bad {
            assert!(validate(text).is_err(), "{what}: accepted {text:?}");
        }
    }
}
