//! The values of `service create` / `service update` flags, parsed as the
//! docker CLI's `opts` package parses them: memory sizes (`units.RAMInBytes`),
//! CPUs as exact decimals, `--publish` in short and long syntax, `--mount`,
//! `--secret`/`--config`, `--network`, shell-word lists, environment and
//! label validation, capability normalisation.

use std::collections::BTreeMap;

use crate::duration::parse_go_duration;
use serde_json::Value;

use crate::json::{self, JsonExt};

// ------------------------------------------------------------ image names

/// What the docker client library does to a service's image before every
/// create and update (`imageWithTagString`): the familiar form of the
/// normalised reference, with `:latest` when it has neither tag nor digest
/// ("busybox" → "busybox:latest", "docker.io/library/nginx" →
/// "nginx:latest"). `None` when the reference does not parse; the image is
/// then sent as given.
pub fn image_with_default_tag(image: &str) -> Option<String> {
    if image.len() == 64 && image.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        return None;
    }
    let (name_tag, digest) = match image.split_once('@') {
        Some((n, d)) => {
            let (algo, hex) = d.split_once(':')?;
            let algo_ok = !algo.is_empty() && algo.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+.-_".contains(&b));
            if !algo_ok || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            (n, Some(d))
        }
        None => (image, None),
    };
    // docker's splitDockerDomain
    let (domain, remainder) = match name_tag.find('/') {
        Some(i) => {
            let first = &name_tag[..i];
            if first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first {
                (first, &name_tag[i + 1..])
            } else {
                ("docker.io", name_tag)
            }
        }
        None => ("docker.io", name_tag),
    };
    let domain = if domain == "index.docker.io" { "docker.io" } else { domain };
    let (path, tag) = match remainder.rfind(':') {
        Some(i) => (&remainder[..i], Some(&remainder[i + 1..])),
        None => (remainder, None),
    };
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
            return false;
        }
        let mut prev_sep = false;
        let mut i = 0;
        while i < b.len() {
            let ch = b[i];
            if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
                prev_sep = false;
            } else if ch == b'.' || ch == b'_' || ch == b'-' {
                if prev_sep && !(ch == b'_' && b[i - 1] == b'_' && (i < 2 || b[i - 2] != b'_')) && !(ch == b'-' && b[i - 1] == b'-') {
                    return false;
                }
                prev_sep = true;
            } else {
                return false;
            }
            i += 1;
        }
        true
    };
    if path.is_empty() || path.len() > 255 || !path.split('/').all(component_ok) {
        return None;
    }
    if let Some(t) = tag {
        let tb = t.as_bytes();
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        if tb.is_empty() || tb.len() > 128 || !word(tb[0]) || !tb.iter().all(|&b| word(b) || b == b'.' || b == b'-') {
            return None;
        }
    }
    let host_ok = domain
        .split(':')
        .next()
        .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'[' || b == b']'));
    if !host_ok {
        return None;
    }
    let familiar_path = if domain == "docker.io" {
        match path.strip_prefix("library/") {
            Some(r) if !r.contains('/') => r.to_string(),
            _ => path.to_string(),
        }
    } else {
        format!("{domain}/{path}")
    };
    let tag = match (tag, digest) {
        (Some(t), _) => format!(":{t}"),
        (None, None) => ":latest".to_string(),
        (None, Some(_)) => String::new(),
    };
    let digest = digest.map(|d| format!("@{d}")).unwrap_or_default();
    Some(format!("{familiar_path}{tag}{digest}"))
}

/// Applies [`image_with_default_tag`] to a spec's container image.
pub fn tag_spec_image(spec: &mut Value) {
    let cs = spec.at(&["TaskTemplate", "ContainerSpec"]);
    if cs.is_null() {
        return;
    }
    if let Some(tagged) = image_with_default_tag(cs["Image"].str()) {
        spec.entry(&["TaskTemplate", "ContainerSpec"]).set("Image", tagged.into());
    }
}

// ---------------------------------------------------------------- scalars

/// `units.RAMInBytes`: "64M", "1.5g", "512KiB", "100" (bytes), binary units.
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let Some(sep) = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(format!("invalid size: '{s}'"));
    };
    let (num, sfx) = if s.as_bytes()[sep] == b' ' { (&s[..sep], &s[sep + 1..]) } else { (&s[..=sep], &s[sep + 1..]) };
    let size = go_parse_float(num)?;
    if size < 0.0 {
        return Err(format!("invalid size: '{s}'"));
    }
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    let bad = || Err(format!("invalid suffix: '{}'", sfx.to_lowercase()));
    if sfx.len() > 3 {
        return Err(format!("invalid suffix: '{sfx}'"));
    }
    let sfx = sfx.to_lowercase();
    let b = sfx.as_bytes();
    if b[0] == b'b' {
        return if b.len() > 1 { bad() } else { Ok(size as i64) };
    }
    let mul: i64 = match b[0] {
        b'k' => 1 << 10,
        b'm' => 1 << 20,
        b'g' => 1 << 30,
        b't' => 1 << 40,
        b'p' => 1 << 50,
        _ => return bad(),
    };
    if (b.len() == 2 && b[1] != b'b') || (b.len() == 3 && &sfx[1..] != "ib") {
        return bad();
    }
    Ok((size * mul as f64) as i64)
}

/// `strconv.ParseFloat(s, 64)` with Go's error text.
fn go_parse_float(s: &str) -> Result<f64, String> {
    let ok = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
        && s.chars().any(|c| c.is_ascii_digit());
    match s.parse::<f64>() {
        Ok(v) if ok => Ok(v),
        _ => Err(format!("strconv.ParseFloat: parsing \"{s}\": invalid syntax")),
    }
}

/// `opts.ParseCPUs`: an exact rational ("0.25", "1.5", "1/4", "2e-1") times
/// 10⁹, which must be a whole number of nano-CPUs.
pub fn parse_cpus(s: &str) -> Result<i64, String> {
    let bad = || format!("failed to parse {s} as a rational number");
    // numerator/denominator as exact big-ish integers (i128 is plenty here)
    let (num, den) = if let Some((a, b)) = s.split_once('/') {
        let a: i128 = a.parse().map_err(|_| bad())?;
        let b: i128 = b.parse().map_err(|_| bad())?;
        if b == 0 {
            return Err(bad());
        }
        (a, b)
    } else {
        parse_decimal(s).ok_or_else(bad)?
    };
    let scaled = num.checked_mul(1_000_000_000).ok_or_else(bad)?;
    if scaled % den != 0 {
        return Err("value is too precise".into());
    }
    Ok((scaled / den) as i64)
}

/// A decimal with optional fraction and exponent as `num / den`.
fn parse_decimal(s: &str) -> Option<(i128, i128)> {
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (neg, mant) = match mant.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mant.strip_prefix('+').unwrap_or(mant)),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if (int.is_empty() && frac.is_empty()) || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{int}{frac}");
    let mut num: i128 = digits.trim_start_matches('0').parse().unwrap_or(0);
    if digits.len() > 30 {
        return None;
    }
    let mut den: i128 = 1;
    let scale = exp - frac.len() as i32;
    if scale.unsigned_abs() > 30 {
        return None;
    }
    if scale >= 0 {
        num = num.checked_mul(10i128.pow(scale as u32))?;
    } else {
        den = 10i128.pow((-scale) as u32);
    }
    Some((if neg { -num } else { num }, den))
}

/// `strconv.ParseUint(s, 0, 64)`: decimal, or `0x`, `0o`, `0b`, `0` prefixes.
pub fn parse_uint(s: &str) -> Result<u64, String> {
    let bad = || format!("strconv.ParseUint: parsing \"{s}\": invalid syntax");
    let t = s.replace('_', "");
    let (digits, radix) = if let Some(r) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (r.to_string(), 16)
    } else if let Some(r) = t.strip_prefix("0o").or_else(|| t.strip_prefix("0O")) {
        (r.to_string(), 8)
    } else if let Some(r) = t.strip_prefix("0b").or_else(|| t.strip_prefix("0B")) {
        (r.to_string(), 2)
    } else if t.len() > 1 && t.starts_with('0') {
        (t[1..].to_string(), 8)
    } else {
        (t.clone(), 10)
    };
    if digits.is_empty() || digits.starts_with('+') || digits.starts_with('-') {
        return Err(bad());
    }
    u64::from_str_radix(&digits, radix).map_err(|e| {
        if matches!(e.kind(), std::num::IntErrorKind::PosOverflow) {
            format!("strconv.ParseUint: parsing \"{s}\": value out of range")
        } else {
            bad()
        }
    })
}

/// A Go duration flag (`time.ParseDuration`), in nanoseconds.
pub fn duration(s: &str) -> Result<i64, String> {
    parse_go_duration(s)
}

/// `opts.PositiveDurationOpt`.
pub fn positive_duration(s: &str) -> Result<i64, String> {
    let d = parse_go_duration(s)?;
    if d < 0 {
        return Err("duration cannot be negative".into());
    }
    Ok(d)
}

/// A float32 flag (`--update-max-failure-ratio`).
pub fn float32(s: &str) -> Result<f32, String> {
    go_parse_float(s).map(|v| v as f32)
}

/// Go's formatting of a float32 (`strconv.FormatFloat(f, 'g', -1, 32)`) as
/// JSON and templates print it: "0", "0.1", "0.25".
pub fn format_f32(v: f32) -> String {
    if v == v.trunc() && v.abs() < 1e21 {
        format!("{}", v as f64 as i64)
    } else {
        format!("{v}")
    }
}

/// A bool flag that also takes `=true` / `=false`.
pub fn boolean(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing \"{s}\": invalid syntax")),
    }
}

// --------------------------------------------------------- validated lists

/// One `--security-opt`, checked when parsed (a profile file is read and
/// checked then, so a bad one never reaches the managers).
#[derive(Clone, Debug, PartialEq)]
pub enum SecurityOpt {
    SeccompUnconfined,
    /// The profile file's bytes, as read.
    SeccompProfile(Vec<u8>),
    AppArmorUnconfined,
    NoNewPrivileges(bool),
}

/// `--security-opt`: `seccomp=unconfined`, `seccomp=<profile.json>`,
/// `apparmor=unconfined`, `no-new-privileges[=true|false]`. Everything
/// else Docker's `run` knows (`label=...` for SELinux, `apparmor=<name>`,
/// `systempaths=unconfined`...) a service cannot carry, so it is refused.
pub fn security_opt(s: &str) -> Result<SecurityOpt, String> {
    let accepted = "accepted: seccomp=unconfined, seccomp=<profile.json>, apparmor=unconfined, no-new-privileges[=true|false]";
    let (key, value) = match s.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (s, None),
    };
    match (key, value) {
        ("no-new-privileges", None) => Ok(SecurityOpt::NoNewPrivileges(true)),
        ("no-new-privileges", Some(v)) => boolean(v)
            .map(SecurityOpt::NoNewPrivileges)
            .map_err(|_| format!("invalid --security-opt: {s:?}: no-new-privileges takes true or false")),
        ("seccomp", Some("unconfined")) => Ok(SecurityOpt::SeccompUnconfined),
        ("seccomp", Some(path)) if !path.is_empty() => {
            let data = std::fs::read(path).map_err(|e| format!("opening seccomp profile ({path}) failed: {e}"))?;
            shoal_api::seccomp::Profile::parse(&data).map_err(|e| format!("seccomp profile ({path}): {e}"))?;
            Ok(SecurityOpt::SeccompProfile(data))
        }
        ("apparmor", Some("unconfined")) => Ok(SecurityOpt::AppArmorUnconfined),
        ("apparmor", Some(_)) => Err(format!("invalid --security-opt: {s:?}: a service can only turn AppArmor off (apparmor=unconfined)")),
        ("label", _) => Err(format!("invalid --security-opt: {s:?}: SELinux labels are not supported")),
        _ => Err(format!("invalid --security-opt: {s:?} ({accepted})")),
    }
}

/// The `Privileges` that `--security-opt` values ask for (a later value
/// for the same thing wins), in Go's field order; `None` without any.
pub fn privileges(list: &[SecurityOpt]) -> Option<Value> {
    if list.is_empty() {
        return None;
    }
    let (mut seccomp, mut apparmor, mut nnp) = (None, None, false);
    for o in list {
        match o {
            SecurityOpt::SeccompUnconfined => seccomp = Some(json::object([("Mode", Value::from("unconfined"))])),
            SecurityOpt::SeccompProfile(data) => {
                seccomp = Some(json::object([("Mode", Value::from("custom")), ("Profile", Value::from(shoal_api::base64::encode(data)))]))
            }
            SecurityOpt::AppArmorUnconfined => apparmor = Some(json::object([("Mode", Value::from("disabled"))])),
            SecurityOpt::NoNewPrivileges(b) => nnp = *b,
        }
    }
    let mut p = vec![("CredentialSpec", Value::Null), ("SELinuxContext", Value::Null)];
    if let Some(s) = seccomp {
        p.push(("Seccomp", s));
    }
    if let Some(a) = apparmor {
        p.push(("AppArmor", a));
    }
    p.push(("NoNewPrivileges", Value::Bool(nnp)));
    Some(json::object(p))
}

/// `opts.ValidateEnv`: `KEY=value` as is; a bare `KEY` takes its value from
/// this process's environment when set there.
pub fn env_var(s: &str) -> Result<String, String> {
    let (k, has_value) = match s.split_once('=') {
        Some((k, _)) => (k, true),
        None => (s, false),
    };
    if k.is_empty() {
        return Err(format!("invalid environment variable: {s}"));
    }
    if has_value {
        return Ok(s.to_string());
    }
    match std::env::var(k) {
        Ok(v) => Ok(format!("{k}={v}")),
        Err(_) => Ok(s.to_string()),
    }
}

/// `opts.ValidateLabel`.
pub fn label(s: &str) -> Result<String, String> {
    let key = s.split_once('=').map(|(k, _)| k).unwrap_or(s);
    let key = key.trim_start_matches([' ', '\t']);
    if key.is_empty() {
        return Err(format!("invalid label '{s}': empty name"));
    }
    if key.contains([' ', '\t']) {
        return Err(format!("label '{key}' contains whitespaces"));
    }
    Ok(s.to_string())
}

// ------------------------------------------------- runtime options

const ULIMIT_NAMES: &[&str] = &[
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// `--ulimit name=soft[:hard]` (go-units' `ParseUlimit`) as a swarm
/// `Ulimit`; a missing hard limit equals the soft one.
pub fn ulimit(s: &str) -> Result<Value, String> {
    let Some((name, limits)) = s.split_once('=') else { return Err(format!("invalid ulimit argument: {s}")) };
    if !ULIMIT_NAMES.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
    let soft: i64 = soft.parse().map_err(|_| format!("invalid ulimit soft value: {soft}"))?;
    let hard: i64 = hard.parse().map_err(|_| format!("invalid ulimit hard value: {hard}"))?;
    if soft > hard {
        return Err(format!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"));
    }
    Ok(json::object([("Name", Value::from(name.to_string())), ("Hard", Value::from(hard)), ("Soft", Value::from(soft))]))
}

/// The ulimits by name (the CLI keeps them in a map), one per name.
pub fn sorted_ulimits(list: &[Value]) -> Vec<Value> {
    let mut by_name: BTreeMap<String, Value> = BTreeMap::new();
    for u in list {
        by_name.insert(u["Name"].as_str().unwrap_or("").to_string(), u.clone());
    }
    by_name.into_values().collect()
}

/// `--host host:ip` (or `host=ip`): `opts.ValidateExtraHost`, turned into
/// SwarmKit's "IP host" form.
pub fn extra_host(s: &str) -> Result<String, String> {
    let (name, ip) = s.split_once('=').or_else(|| s.split_once(':')).ok_or_else(|| format!("bad format for add-host: {s:?}"))?;
    if name.is_empty() {
        return Err(format!("bad format for add-host: {s:?}"));
    }
    let bare = ip.trim_start_matches('[').trim_end_matches(']');
    if ip != "host-gateway" && bare.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid IP address in add-host: {ip:?}"));
    }
    Ok(format!("{bare} {name}"))
}

/// `--dns`: `opts.ValidateIPAddress`.
pub fn ip_address(s: &str) -> Result<String, String> {
    s.trim().parse::<std::net::IpAddr>().map(|ip| ip.to_string()).map_err(|_| format!("IP address is not correctly formatted: {s}"))
}

/// `--dns-search`: `opts.ValidateDNSSearch` ("." clears the list).
pub fn dns_search(s: &str) -> Result<String, String> {
    let d = s.trim_end_matches('.');
    if s == "." {
        return Ok(s.to_string());
    }
    let ok = !d.is_empty()
        && d.len() <= 255
        && d.split('.')
            .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-') && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("{s} is not a valid domain"))
    }
}

/// `opts.ConvertKVStringsToMap` as a JSON object (keys sorted, as Go
/// marshals maps).
pub fn kv_map(list: &[String]) -> Value {
    let mut m = BTreeMap::new();
    for kv in list {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        m.insert(k.to_string(), v.to_string());
    }
    Value::Object(m.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

/// `--placement-pref spread=node.labels.zone`: the spread descriptor.
pub fn placement_pref(s: &str) -> Result<String, String> {
    match s.split_once('=') {
        Some((strategy, arg)) if !strategy.is_empty() => {
            if strategy != "spread" {
                return Err(format!("unsupported placement preference {strategy} (only spread is supported)"));
            }
            Ok(arg.to_string())
        }
        _ => Err(r#"placement preference must be of the format "<strategy>=<arg>""#.into()),
    }
}

pub fn spread_pref(descriptor: &str) -> Value {
    json::object([("Spread", json::object([("SpreadDescriptor", Value::from(descriptor))]))])
}

/// Shell words (`--entrypoint`, `--args`), as google/shlex splits them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Words(pub Vec<String>);

pub fn words(s: &str) -> Result<Words, String> {
    shlex_split(s).map(Words)
}

pub fn shlex_split(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\\' => {
                let Some(n) = chars.next() else {
                    return Err("EOF found after escape character".into());
                };
                cur.push(n);
                in_word = true;
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(n) => cur.push(n),
                        None => return Err("EOF found when expecting closing quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(n @ ('"' | '\\')) => cur.push(n),
                            Some(n) => {
                                cur.push('\\');
                                cur.push(n);
                            }
                            None => return Err("EOF found when expecting closing quote".into()),
                        },
                        Some(n) => cur.push(n),
                        None => return Err("EOF found when expecting closing quote".into()),
                    }
                }
            }
            '#' if !in_word => {
                // a comment runs to the end of the line
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

// ------------------------------------------------------------------ ports

/// One published port (`swarm.PortConfig`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    pub protocol: String,
    pub target: u32,
    pub published: u32,
    pub mode: String,
}

impl Port {
    pub fn to_json(&self) -> Value {
        let mut fields = vec![("Protocol", Value::from(self.protocol.as_str())), ("TargetPort", Value::from(self.target))];
        if self.published != 0 {
            fields.push(("PublishedPort", Value::from(self.published)));
        }
        fields.push(("PublishMode", Value::from(self.mode.as_str())));
        json::object(fields)
    }

    pub fn from_json(v: &Value) -> Port {
        Port {
            protocol: v["Protocol"].str().to_string(),
            target: v["TargetPort"].as_u64().unwrap_or(0) as u32,
            published: v["PublishedPort"].as_u64().unwrap_or(0) as u32,
            mode: v["PublishMode"].str().to_string(),
        }
    }

    /// docker's `portConfigToString`: `published:target/protocol/mode`.
    pub fn key(&self) -> String {
        format!("{}:{}/{}/{}", self.published, self.target, self.protocol, self.mode)
    }
}

/// The ports one `--publish` value stands for (a range gives several).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PortList(pub Vec<Port>);

/// `-p 8080:80`, `-p 80`, `-p 8000-8001:80-81/udp`, or the long syntax
/// `published=8080,target=80,protocol=udp,mode=host`.
pub fn publish(s: &str) -> Result<PortList, String> {
    if is_long_syntax(s) {
        let mut p = Port { protocol: String::new(), target: 0, published: 0, mode: String::new() };
        for field in csv_fields(s)? {
            let lower = field.to_lowercase();
            let Some((key, val)) = lower.split_once('=').filter(|(k, _)| !k.is_empty()) else {
                return Err(format!("invalid field: {field}"));
            };
            match key {
                "protocol" => {
                    if !matches!(val, "tcp" | "udp" | "sctp") {
                        return Err(format!("invalid protocol value '{val}'"));
                    }
                    p.protocol = val.to_string();
                }
                "mode" => {
                    if !matches!(val, "ingress" | "host") {
                        return Err(format!("invalid publish mode value ({val}): must be either 'ingress' or 'host'"));
                    }
                    p.mode = val.to_string();
                }
                "target" => {
                    p.target = port_number(val).map_err(|e| format!("invalid target port ({val}): value must be an integer: {e}"))?
                }
                "published" => {
                    p.published = port_number(val).map_err(|e| format!("invalid published port ({val}): value must be an integer: {e}"))?
                }
                _ => return Err(format!("invalid field key: {key}")),
            }
        }
        if p.target == 0 {
            return Err("missing mandatory field 'target'".into());
        }
        if p.mode.is_empty() {
            p.mode = "ingress".into();
        }
        if p.protocol.is_empty() {
            p.protocol = "tcp".into();
        }
        return Ok(PortList(vec![p]));
    }
    short_port_spec(s).map(PortList)
}

/// docker's `\w+=\w+(,\w+=\w+)*` test (unanchored: any `word=word` inside).
fn is_long_syntax(s: &str) -> bool {
    let b = s.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    (1..b.len().saturating_sub(1)).any(|i| b[i] == b'=' && word(b[i - 1]) && word(b[i + 1]))
}

/// `strconv.ParseUint(v, 10, 16)`, with the error's reason only.
fn port_number(v: &str) -> Result<u32, String> {
    if v.is_empty() || !v.chars().all(|c| c.is_ascii_digit()) {
        return Err("invalid syntax".into());
    }
    v.parse::<u16>().map(u32::from).map_err(|_| "value out of range".to_string())
}

/// `nat.ParsePortRange`.
fn port_range(s: &str) -> Result<(u32, u32), String> {
    if s.is_empty() {
        return Err("empty string specified for ports".into());
    }
    let parse = |x: &str| x.parse::<u16>().map(u32::from).map_err(|_| format!("strconv.ParseUint: parsing \"{x}\": invalid syntax"));
    match s.split_once('-') {
        None => {
            let p = parse(s)?;
            Ok((p, p))
        }
        Some((a, b)) => {
            let b = b.split('-').next().unwrap_or("");
            let (start, end) = (parse(a)?, parse(b)?);
            if end < start {
                return Err(format!("invalid range specified for port: {s}"));
            }
            Ok((start, end))
        }
    }
}

/// `nat.ParsePortSpecs` + `ConvertPortToPortConfig` for one short value.
fn short_port_spec(raw: &str) -> Result<Vec<Port>, String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let (ip, host, container) = match n {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        3 => (parts[0].to_string(), parts[1], parts[2]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (proto, container) = match container.split_once('/') {
        _ if container.is_empty() => ("", ""),
        None => ("tcp", container),
        Some((p, "")) => ("tcp", p),
        Some((p, proto)) => (proto.split('/').next().unwrap_or(proto), p),
    };
    let ip = ip.trim_start_matches('[').trim_end_matches(']').to_string();
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container.is_empty() {
        return Err(format!("no port specified: {raw}<empty>"));
    }
    let (start, end) = port_range(container).map_err(|_| format!("invalid containerPort: {container}"))?;
    let (hstart, hend) = if host.is_empty() { (0, 0) } else { port_range(host).map_err(|_| format!("invalid hostPort: {host}"))? };
    if !host.is_empty() && (end - start) != (hend - hstart) && end != start {
        return Err(format!("invalid ranges specified for container and host Ports: {container} and {host}"));
    }
    let proto = proto.to_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    if !ip.is_empty() {
        return Err("hostip is not supported".into());
    }
    let mut out = Vec::new();
    for i in 0..=(end - start) {
        let target = start + i;
        let (pub_start, pub_end) = if host.is_empty() {
            (0, 0)
        } else if start == end {
            (hstart, hend)
        } else {
            (hstart + i, hstart + i)
        };
        for published in pub_start..=pub_end {
            out.push(Port { protocol: proto.clone(), target, published, mode: "ingress".into() });
        }
    }
    Ok(out)
}

/// Go's `encoding/csv` reading one record (quotes allowed).
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    quoted = false;
                }
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            ',' => {
                out.push(std::mem::take(&mut cur));
                at_start = true;
                continue;
            }
            '"' if at_start => quoted = true,
            '"' => return Err(format!("parse error on line 1, column {}: bare \" in non-quoted-field", out.len() + cur.len() + 2)),
            c => cur.push(c),
        }
        at_start = false;
    }
    if quoted {
        return Err("parse error on line 1, column 0: extraneous or missing \" in quoted-field".into());
    }
    out.push(cur);
    Ok(out)
}

// ----------------------------------------------------------------- mounts

/// `--mount type=bind,source=/a,target=/b,readonly` as a `mount.Mount`.
pub fn mount(s: &str) -> Result<Value, String> {
    let mut typ = "volume".to_string();
    let mut source = String::new();
    let mut target = String::new();
    let mut read_only = false;
    let mut consistency = String::new();
    let mut bind: Vec<(&str, Value)> = Vec::new();
    let mut volume: Vec<(&str, Value)> = Vec::new();
    let mut volume_labels: BTreeMap<String, String> = BTreeMap::new();
    let mut driver_name = String::new();
    let mut driver_opts: Option<BTreeMap<String, String>> = None;
    let mut tmpfs: Vec<(&str, Value)> = Vec::new();
    let mut has_volume_opts = false;
    let mut has_bind_opts = false;
    let parse_bool = |key: &str, v: &str| boolean(v).map_err(|_| format!("invalid value for {key}: {v}"));
    for field in csv_fields(s)? {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), Some(v.to_string())),
            None => (field.to_lowercase(), None),
        };
        let Some(val) = val else {
            match key.as_str() {
                "readonly" | "ro" => read_only = true,
                "volume-nocopy" => {
                    has_volume_opts = true;
                    volume.retain(|(k, _)| *k != "NoCopy");
                    volume.push(("NoCopy", Value::Bool(true)));
                }
                "bind-nonrecursive" => {
                    has_bind_opts = true;
                    bind.retain(|(k, _)| *k != "NonRecursive");
                    bind.push(("NonRecursive", Value::Bool(true)));
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        };
        match key.as_str() {
            "type" => typ = val.to_lowercase(),
            "source" | "src" => {
                source = val.clone();
                if val.starts_with('.') {
                    if let Ok(cwd) = std::env::current_dir() {
                        source = clean_path(&cwd.join(&val).to_string_lossy());
                    }
                }
            }
            "target" | "dst" | "destination" => target = val,
            "readonly" | "ro" => read_only = parse_bool(&key, &val)?,
            "consistency" => consistency = val.to_lowercase(),
            "bind-propagation" => {
                has_bind_opts = true;
                bind.retain(|(k, _)| *k != "Propagation");
                bind.insert(0, ("Propagation", Value::from(val.to_lowercase())));
            }
            "bind-nonrecursive" => {
                has_bind_opts = true;
                let b = parse_bool(&key, &val)?;
                bind.retain(|(k, _)| *k != "NonRecursive");
                bind.push(("NonRecursive", Value::Bool(b)));
            }
            "volume-nocopy" => {
                has_volume_opts = true;
                let b = boolean(&val).map_err(|_| format!("invalid value for volume-nocopy: {val}"))?;
                volume.retain(|(k, _)| *k != "NoCopy");
                volume.push(("NoCopy", Value::Bool(b)));
            }
            "volume-label" => {
                has_volume_opts = true;
                let (k, v) = val.split_once('=').unwrap_or((val.as_str(), ""));
                if !k.is_empty() {
                    volume_labels.insert(k.to_string(), v.to_string());
                }
            }
            "volume-driver" => {
                has_volume_opts = true;
                driver_name = val;
            }
            "volume-opt" => {
                has_volume_opts = true;
                let (k, v) = val.split_once('=').unwrap_or((val.as_str(), ""));
                let m = driver_opts.get_or_insert_with(BTreeMap::new);
                if !k.is_empty() {
                    m.insert(k.to_string(), v.to_string());
                }
            }
            "volume-subpath" => {
                has_volume_opts = true;
                volume.push(("Subpath", Value::from(val)));
            }
            "tmpfs-size" => {
                let n = ram_in_bytes(&val).map_err(|_| format!("invalid value for {key}: {val}"))?;
                tmpfs.retain(|(k, _)| *k != "SizeBytes");
                tmpfs.insert(0, ("SizeBytes", Value::from(n)));
            }
            "tmpfs-mode" => {
                let n = u32::from_str_radix(&val, 8).map_err(|_| format!("invalid value for {key}: {val}"))?;
                tmpfs.retain(|(k, _)| *k != "Mode");
                tmpfs.push(("Mode", Value::from(n)));
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    if typ.is_empty() {
        return Err("type is required".into());
    }
    if target.is_empty() {
        return Err("target is required".into());
    }
    if has_volume_opts && typ != "volume" {
        return Err(format!("cannot mix 'volume-*' options with mount type '{typ}'"));
    }
    if has_bind_opts && typ != "bind" {
        return Err(format!("cannot mix 'bind-*' options with mount type '{typ}'"));
    }
    if !tmpfs.is_empty() && typ != "tmpfs" {
        return Err(format!("cannot mix 'tmpfs-*' options with mount type '{typ}'"));
    }
    let mut m = vec![("Type", Value::from(typ))];
    if !source.is_empty() {
        m.push(("Source", Value::from(source)));
    }
    m.push(("Target", Value::from(target)));
    if read_only {
        m.push(("ReadOnly", Value::Bool(true)));
    }
    if !consistency.is_empty() {
        m.push(("Consistency", Value::from(consistency)));
    }
    if has_bind_opts {
        m.push(("BindOptions", json::object(bind)));
    }
    if has_volume_opts {
        let mut v: Vec<(&str, Value)> = volume.iter().filter(|(k, b)| *k == "NoCopy" && b.bool()).cloned().collect();
        if !volume_labels.is_empty() {
            v.push(("Labels", Value::Object(volume_labels.into_iter().map(|(k, v)| (k, Value::String(v))).collect())));
        }
        v.extend(volume.iter().filter(|(k, _)| *k == "Subpath").cloned());
        let mut driver = Vec::new();
        if !driver_name.is_empty() {
            driver.push(("Name", Value::from(driver_name)));
        }
        if let Some(opts) = driver_opts {
            driver.push(("Options", Value::Object(opts.into_iter().map(|(k, v)| (k, Value::String(v))).collect())));
        }
        v.push(("DriverConfig", json::object(driver)));
        m.push(("VolumeOptions", json::object(v)));
    }
    if !tmpfs.is_empty() {
        m.push(("TmpfsOptions", json::object(tmpfs)));
    }
    Ok(json::object(m))
}

/// `filepath.Clean` of an absolute path.
fn clean_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            x => out.push(x),
        }
    }
    format!("/{}", out.join("/"))
}

// -------------------------------------------------------- secrets/configs

/// `--secret name` or `--secret source=name,target=/path,uid=0,gid=0,mode=0400`
/// as a `SecretReference` (by name: the daemon has no secret store yet, so
/// no ID is looked up).
pub fn secret(s: &str) -> Result<Value, String> {
    file_reference(s, "SecretName", "invalid field in secret request: ")
}

/// `--config`, like `--secret` (`ConfigReference`).
pub fn config(s: &str) -> Result<Value, String> {
    file_reference(s, "ConfigName", "invalid field in config request: ")
}

fn file_reference(s: &str, name_key: &'static str, bad_key: &str) -> Result<Value, String> {
    let fields = csv_fields(s)?;
    let (mut name, mut target, mut uid, mut gid, mut mode) = (String::new(), String::new(), "0".to_string(), "0".to_string(), 0o444u32);
    if fields.len() == 1 && !fields[0].contains('=') {
        name = fields[0].clone();
        target = fields[0].clone();
    } else {
        for field in &fields {
            let Some((key, val)) = field.split_once('=').filter(|(k, _)| !k.is_empty()) else {
                return Err(format!("invalid field '{field}' must be a key=value pair"));
            };
            match key.to_lowercase().as_str() {
                "source" | "src" => name = val.to_string(),
                "target" => target = val.to_string(),
                "uid" => uid = val.to_string(),
                "gid" => gid = val.to_string(),
                "mode" => {
                    let m = parse_uint(val).map_err(|e| format!("invalid mode specified: {e}"))?;
                    mode = m as u32;
                }
                _ => return Err(format!("{bad_key}{key}")),
            }
        }
        if name.is_empty() {
            return Err("source is required".into());
        }
        if target.is_empty() {
            target = name.clone();
        }
    }
    Ok(json::object([
        (
            "File",
            json::object([
                ("Name", Value::from(target)),
                ("UID", Value::from(uid)),
                ("GID", Value::from(gid)),
                ("Mode", Value::from(mode)),
            ]),
        ),
        (name_key, Value::from(name)),
    ]))
}

// --------------------------------------------------------------- networks

/// `--network name` or `--network name=net,alias=web,driver-opt=k=v` as a
/// `NetworkAttachmentConfig` (by name: the daemon has no networks API yet).
pub fn network(s: &str) -> Result<Value, String> {
    if !is_long_syntax(s) {
        return Ok(json::object([("Target", Value::from(s))]));
    }
    let mut target = String::new();
    let mut aliases = Vec::new();
    let mut driver_opts: BTreeMap<String, String> = BTreeMap::new();
    for field in csv_fields(s)? {
        let lower = field.to_lowercase();
        let Some((key, val)) = lower.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(format!("invalid field {field}"));
        };
        let (key, val) = (key.trim(), val.trim());
        match key {
            "name" => target = val.to_string(),
            "alias" => aliases.push(val.to_string()),
            "driver-opt" => {
                let Some((k, v)) = val.split_once('=').filter(|(k, _)| !k.is_empty()) else {
                    return Err("invalid key value pair format in driver options".into());
                };
                driver_opts.insert(k.trim().to_string(), v.trim().to_string());
            }
            "ip" | "ip6" | "mac-address" | "link-local-ip" | "gw-priority" => {}
            _ => return Err(format!("invalid field key {key}")),
        }
    }
    if target.is_empty() {
        return Err("network name/id is not specified".into());
    }
    let mut fields = vec![("Target", Value::from(target))];
    if !aliases.is_empty() {
        fields.push(("Aliases", Value::from(aliases)));
    }
    if !driver_opts.is_empty() {
        fields.push(("DriverOpts", Value::Object(driver_opts.into_iter().map(|(k, v)| (k, Value::String(v))).collect())));
    }
    Ok(json::object(fields))
}

// ----------------------------------------------------------- capabilities

/// `opts.NormalizeCapability`: upper case with a `CAP_` prefix (but `ALL`
/// and `RESET` stay as they are).
pub fn normalize_capability(c: &str) -> String {
    let c = c.trim().to_uppercase();
    if c == "ALL" || c == "RESET" || c.starts_with("CAP_") {
        c
    } else {
        format!("CAP_{c}")
    }
}

pub fn capabilities_set(caps: &[String]) -> std::collections::BTreeSet<String> {
    caps.iter().map(|c| normalize_capability(c)).collect()
}

/// `opts.EffectiveCapAddCapDrop` for `service create`.
pub fn effective_caps(add: &[String], drop: &[String]) -> (Vec<String>, Vec<String>) {
    let mut add_caps = capabilities_set(add);
    let mut drop_caps = capabilities_set(drop);
    if add_caps.contains("ALL") {
        add_caps = ["ALL".to_string()].into();
    }
    if drop_caps.contains("ALL") {
        drop_caps = ["ALL".to_string()].into();
    }
    let cap_drop: Vec<String> = drop_caps.iter().filter(|c| !add_caps.contains(*c) && *c != "RESET").cloned().collect();
    let cap_add: Vec<String> = add_caps.iter().filter(|c| *c != "RESET").cloned().collect();
    (cap_add, cap_drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_get_dockers_default_tag() {
        let t = |s: &str| image_with_default_tag(s);
        assert_eq!(t("busybox").as_deref(), Some("busybox:latest"));
        assert_eq!(t("busybox:1.36").as_deref(), Some("busybox:1.36"));
        assert_eq!(t("docker.io/library/nginx").as_deref(), Some("nginx:latest"));
        assert_eq!(t("index.docker.io/alice/app:2").as_deref(), Some("alice/app:2"));
        assert_eq!(t("localhost:5000/app").as_deref(), Some("localhost:5000/app:latest"));
        assert_eq!(t("registry.example.com/team/app:v1.2").as_deref(), Some("registry.example.com/team/app:v1.2"));
        let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(t(&format!("nginx@{digest}")), Some(format!("nginx@{digest}")));
        assert_eq!(t(&format!("nginx:1.25@{digest}")), Some(format!("nginx:1.25@{digest}")));
        assert_eq!(t("web_app__x-y.z"), Some("web_app__x-y.z:latest".into()));
        assert_eq!(t("Busybox"), None);
        assert_eq!(t("a/B"), None);
        assert_eq!(t("nginx:"), None);
        assert_eq!(t("a..b"), None);
        assert_eq!(t(""), None);
    }

    #[test]
    fn memory_sizes_like_rams_in_bytes() {
        assert_eq!(ram_in_bytes("64M"), Ok(64 << 20));
        assert_eq!(ram_in_bytes("64m"), Ok(64 << 20));
        assert_eq!(ram_in_bytes("64MB"), Ok(64 << 20));
        assert_eq!(ram_in_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(ram_in_bytes("1.5g"), Ok(3 << 29));
        assert_eq!(ram_in_bytes("512"), Ok(512));
        assert_eq!(ram_in_bytes("512b"), Ok(512));
        assert_eq!(ram_in_bytes("32 k"), Ok(32 << 10));
        assert_eq!(ram_in_bytes("1T"), Ok(1 << 40));
        assert_eq!(ram_in_bytes("64Q"), Err("invalid suffix: 'q'".into()));
        assert_eq!(ram_in_bytes("64MX"), Err("invalid suffix: 'mx'".into()));
        assert_eq!(ram_in_bytes("64Mbb"), Err("invalid suffix: 'mbb'".into()));
        assert_eq!(ram_in_bytes("abc"), Err("invalid size: 'abc'".into()));
        assert_eq!(ram_in_bytes("-1"), Err("invalid size: '-1'".into()));
        assert_eq!(ram_in_bytes("1..5M"), Err("strconv.ParseFloat: parsing \"1..5\": invalid syntax".into()));
    }

    #[test]
    fn cpus_are_exact_decimals() {
        assert_eq!(parse_cpus("0.25"), Ok(250_000_000));
        assert_eq!(parse_cpus("1"), Ok(1_000_000_000));
        assert_eq!(parse_cpus("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_cpus(".1"), Ok(100_000_000));
        assert_eq!(parse_cpus("1/4"), Ok(250_000_000));
        assert_eq!(parse_cpus("2e-1"), Ok(200_000_000));
        assert_eq!(parse_cpus("0.0000000001"), Err("value is too precise".into()));
        assert_eq!(parse_cpus("abc"), Err("failed to parse abc as a rational number".into()));
        assert_eq!(parse_cpus(""), Err("failed to parse  as a rational number".into()));
    }

    #[test]
    fn unsigned_and_floats() {
        assert_eq!(parse_uint("5"), Ok(5));
        assert_eq!(parse_uint("0x10"), Ok(16));
        assert_eq!(parse_uint("010"), Ok(8));
        assert_eq!(parse_uint("0"), Ok(0));
        assert_eq!(parse_uint("-1"), Err("strconv.ParseUint: parsing \"-1\": invalid syntax".into()));
        assert_eq!(parse_uint("x"), Err("strconv.ParseUint: parsing \"x\": invalid syntax".into()));
        assert_eq!(float32("0.1").map(format_f32), Ok("0.1".to_string()));
        assert_eq!(format_f32(0.0), "0");
        assert_eq!(format_f32(1.0), "1");
        assert_eq!(positive_duration("-1s"), Err("duration cannot be negative".into()));
        assert_eq!(positive_duration("30s"), Ok(30_000_000_000));
    }

    #[test]
    fn env_and_labels() {
        assert_eq!(env_var("A=1"), Ok("A=1".into()));
        assert_eq!(env_var("A="), Ok("A=".into()));
        assert_eq!(env_var("SHOAL_SURELY_UNSET_VAR"), Ok("SHOAL_SURELY_UNSET_VAR".into()));
        assert_eq!(env_var("=x"), Err("invalid environment variable: =x".into()));
        assert_eq!(label("a=b"), Ok("a=b".into()));
        assert_eq!(label("=b"), Err("invalid label '=b': empty name".into()));
        assert_eq!(label("a b=c"), Err("label 'a b' contains whitespaces".into()));
        assert_eq!(kv_map(&["b=2".into(), "a".into(), "c=x=y".into()]).to_compact(), r#"{"a":"","b":"2","c":"x=y"}"#);
    }

    fn ports(s: &str) -> Vec<String> {
        publish(s).unwrap().0.iter().map(Port::key).collect()
    }

    #[test]
    fn publish_short_syntax() {
        assert_eq!(ports("80:80"), ["80:80/tcp/ingress"]);
        assert_eq!(ports("8080:80/udp"), ["8080:80/udp/ingress"]);
        assert_eq!(ports("80"), ["0:80/tcp/ingress"]);
        assert_eq!(ports("8000-8001:80-81"), ["8000:80/tcp/ingress", "8001:81/tcp/ingress"]);
        assert_eq!(ports("8080-8081:80"), ["8080:80/tcp/ingress", "8081:80/tcp/ingress"]);
        assert_eq!(publish("127.0.0.1:80:80").unwrap_err(), "hostip is not supported");
        assert_eq!(publish("80:80/xyz").unwrap_err(), "invalid proto: xyz");
        assert_eq!(publish("8000-8002:80-81").unwrap_err(), "invalid ranges specified for container and host Ports: 80-81 and 8000-8002");
        assert_eq!(publish("80:").unwrap_err(), "no port specified: 80:<empty>");
        assert_eq!(publish("80:abc").unwrap_err(), "invalid containerPort: abc");
        assert_eq!(
            publish("8080:80").unwrap().0[0].to_json().to_compact(),
            r#"{"Protocol":"tcp","TargetPort":80,"PublishedPort":8080,"PublishMode":"ingress"}"#
        );
    }

    #[test]
    fn publish_long_syntax() {
        assert_eq!(ports("published=9090,target=9090,protocol=tcp"), ["9090:9090/tcp/ingress"]);
        assert_eq!(ports("target=53,published=53,protocol=UDP,mode=host"), ["53:53/udp/host"]);
        assert_eq!(ports("target=80"), ["0:80/tcp/ingress"]);
        assert_eq!(publish("published=80").unwrap_err(), "missing mandatory field 'target'");
        assert_eq!(
            publish("target=80,mode=bridge").unwrap_err(),
            "invalid publish mode value (bridge): must be either 'ingress' or 'host'"
        );
        assert_eq!(publish("target=80,protocol=icmp").unwrap_err(), "invalid protocol value 'icmp'");
        assert_eq!(publish("target=x1,published=80").unwrap_err(), "invalid target port (x1): value must be an integer: invalid syntax");
        assert_eq!(
            publish("target=80,published=99999").unwrap_err(),
            "invalid published port (99999): value must be an integer: value out of range"
        );
        assert_eq!(publish("target=80,colour=red").unwrap_err(), "invalid field key: colour");
    }

    #[test]
    fn mounts() {
        assert_eq!(
            mount("type=bind,source=/srv/data,target=/data,readonly").unwrap().to_compact(),
            r#"{"Type":"bind","Source":"/srv/data","Target":"/data","ReadOnly":true}"#
        );
        assert_eq!(mount("src=vol,dst=/v").unwrap().to_compact(), r#"{"Type":"volume","Source":"vol","Target":"/v"}"#);
        assert_eq!(mount("type=tmpfs,target=/t,ro=false").unwrap().to_compact(), r#"{"Type":"tmpfs","Target":"/t"}"#);
        assert_eq!(
            mount("type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1770").unwrap().to_compact(),
            r#"{"Type":"tmpfs","Target":"/t","TmpfsOptions":{"SizeBytes":67108864,"Mode":1016}}"#
        );
        assert_eq!(
            mount("source=v,target=/v,volume-driver=local,volume-opt=o=bind,volume-label=a=b").unwrap().to_compact(),
            r#"{"Type":"volume","Source":"v","Target":"/v","VolumeOptions":{"Labels":{"a":"b"},"DriverConfig":{"Name":"local","Options":{"o":"bind"}}}}"#
        );
        assert_eq!(mount("type=bind,source=/a").unwrap_err(), "target is required");
        assert_eq!(mount("type=bind,target=/a,readonly=maybe").unwrap_err(), "invalid value for readonly: maybe");
        assert_eq!(mount("target=/a,colour=red").unwrap_err(), "unexpected key 'colour' in 'colour=red'");
        assert_eq!(mount("target=/a,shiny").unwrap_err(), "invalid field 'shiny' must be a key=value pair");
        assert_eq!(mount("type=bind,target=/a,volume-driver=x").unwrap_err(), "cannot mix 'volume-*' options with mount type 'bind'");
        let rel = mount("type=bind,source=./x/../y,target=/a").unwrap();
        assert!(rel["Source"].str().starts_with('/') && rel["Source"].str().ends_with("/y"), "{rel:?}");
    }

    #[test]
    fn secrets_configs_networks() {
        assert_eq!(
            secret("db_pw").unwrap().to_compact(),
            r#"{"File":{"Name":"db_pw","UID":"0","GID":"0","Mode":292},"SecretName":"db_pw"}"#
        );
        assert_eq!(
            config("source=site,target=/etc/nginx.conf,mode=0400").unwrap().to_compact(),
            r#"{"File":{"Name":"/etc/nginx.conf","UID":"0","GID":"0","Mode":256},"ConfigName":"site"}"#
        );
        assert_eq!(secret("target=/x").unwrap_err(), "source is required");
        assert_eq!(secret("src=a,colour=b").unwrap_err(), "invalid field in secret request: colour");
        assert_eq!(network("appnet").unwrap().to_compact(), r#"{"Target":"appnet"}"#);
        assert_eq!(network("name=appnet,alias=web").unwrap().to_compact(), r#"{"Target":"appnet","Aliases":["web"]}"#);
        assert_eq!(network("alias=web").unwrap_err(), "network name/id is not specified");
    }

    #[test]
    fn shell_words_and_prefs() {
        assert_eq!(shlex_split(r#"sh -c "echo hi; sleep 1" 'a b' c\ d"#).unwrap(), ["sh", "-c", "echo hi; sleep 1", "a b", "c d"]);
        assert_eq!(shlex_split("  ").unwrap(), Vec::<String>::new());
        assert!(shlex_split("'open").is_err());
        assert_eq!(placement_pref("spread=node.labels.zone"), Ok("node.labels.zone".into()));
        assert_eq!(placement_pref("pack=x"), Err("unsupported placement preference pack (only spread is supported)".into()));
        assert_eq!(placement_pref("spread"), Err(r#"placement preference must be of the format "<strategy>=<arg>""#.into()));
    }

    #[test]
    fn capabilities() {
        let (add, drop) = effective_caps(&["net_admin".into(), "CAP_SYS_TIME".into()], &["net_admin".into(), "chown".into()]);
        assert_eq!(add, ["CAP_NET_ADMIN", "CAP_SYS_TIME"]);
        assert_eq!(drop, ["CAP_CHOWN"]);
        let (add, drop) = effective_caps(&["all".into(), "x".into()], &[]);
        assert_eq!((add, drop), (vec!["ALL".to_string()], vec![]));
    }
}
