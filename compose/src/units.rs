//! Go durations (`1m30s`) and docker's byte sizes (`512m`), as compose files
//! write them.

/// Go's `time.ParseDuration`, in nanoseconds (`shoal_api::duration`, the
/// parser the daemon's and the CLI's flags use), with compose's wording:
/// the field's position comes before it.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    shoal_api::duration::parse_go_duration(s.trim())
        .map_err(|go| format!("invalid duration {s:?}: expected a Go duration such as 10s, 1m30s or 500ms ({go})"))
}

/// Go's `time.Duration.String()`: `1m30s`, `500ms`, `0s`.
pub fn format_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let sign = if ns < 0 { "-" } else { "" };
    let u = ns.unsigned_abs();
    if u < 1_000 {
        return format!("{sign}{u}ns");
    }
    if u < 1_000_000 {
        return format!("{sign}{}µs", trim_fraction(u, 1_000));
    }
    if u < 1_000_000_000 {
        return format!("{sign}{}ms", trim_fraction(u, 1_000_000));
    }
    let h = u / 3_600_000_000_000;
    let m = (u / 60_000_000_000) % 60;
    let s = u % 60_000_000_000;
    let mut out = sign.to_owned();
    if h > 0 {
        out += &format!("{h}h");
    }
    if h > 0 || m > 0 {
        out += &format!("{m}m");
    }
    out += &format!("{}s", trim_fraction(s, 1_000_000_000));
    out
}

fn trim_fraction(v: u64, unit: u64) -> String {
    let whole = v / unit;
    let frac = v % unit;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = unit.ilog10() as usize;
    let f = format!("{frac:0digits$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

/// docker's `RAMInBytes` (go-units): a number with an optional binary unit
/// `b`, `k`, `m`, `g`, `t`, `p`, optionally followed by `b` or `ib`, any case.
pub fn parse_bytes(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid size {s:?}: expected a number of bytes or a size such as 512m or 1g");
    let t = s.trim();
    let num_len = t.bytes().take_while(|c| c.is_ascii_digit() || *c == b'.').count();
    if num_len == 0 {
        return Err(bad());
    }
    let n: f64 = t[..num_len].parse().map_err(|_| bad())?;
    let unit = t[num_len..].trim().to_ascii_lowercase();
    let unit = unit.strip_suffix("ib").or_else(|| unit.strip_suffix('b').filter(|u| !u.is_empty())).unwrap_or(&unit);
    let scale: f64 = match unit {
        "" | "b" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    Ok((n * scale) as i64)
}

/// docker's `ParseCPUs`: `0.5` CPUs in nano-CPUs.
pub fn parse_cpus(s: &str) -> Result<i64, String> {
    let f: f64 = s.trim().parse().map_err(|_| format!("invalid cpus value {s:?}: expected a number such as 0.5"))?;
    let nano = f * 1e9;
    if nano.fract() != 0.0 || nano < 0.0 {
        return Err(format!("invalid cpus value {s:?}: value is too precise"));
    }
    Ok(nano as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration("10s").unwrap(), 10_000_000_000);
        assert_eq!(parse_duration("1.5h").unwrap(), 5_400_000_000_000);
        assert_eq!(parse_duration("300ms").unwrap(), 300_000_000);
        assert_eq!(parse_duration("2us").unwrap(), 2_000);
        assert_eq!(parse_duration("1h2m3s4ms").unwrap(), 3_723_004_000_000);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert_eq!(parse_duration("-5s").unwrap(), -5_000_000_000);
        for bad in ["", "10", "1x", "s", "1m30", "abc"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_print_as_go_does() {
        assert_eq!(format_duration(90_000_000_000), "1m30s");
        assert_eq!(format_duration(3_723_000_000_000), "1h2m3s");
        assert_eq!(format_duration(300_000_000), "300ms");
        assert_eq!(format_duration(1_500_000_000), "1.5s");
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(3_600_000_000_000), "1h0m0s");
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("512").unwrap(), 512);
        assert_eq!(parse_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("1gb").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1.5k").unwrap(), 1536);
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5q").is_err());
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("0.5").unwrap(), 500_000_000);
        assert_eq!(parse_cpus("2").unwrap(), 2_000_000_000);
        assert!(parse_cpus("half").is_err());
    }
}
