//! Durations as the docker CLI handles them: flags take Go durations
//! (`5s`, `1h30m`, `1.5h`, `300ms`), the API carries integer nanoseconds,
//! and people read `units.HumanDuration` ("About a minute", "3 months").

const NS: u64 = 1;
const US: u64 = 1_000;
const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;
const M: u64 = 60 * S;
const H: u64 = 60 * M;

/// Parses a Go duration string (`time.ParseDuration`) into nanoseconds.
/// Negative durations are allowed by Go; flags here reject them later if
/// they make no sense.
pub fn parse_go_duration(s: &str) -> Result<i64, String> {
    let orig = s;
    let invalid = || format!("time: invalid duration \"{orig}\"");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    let mut exact: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(invalid());
        }
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration \"{orig}\""));
        }
        let mult = match unit {
            "ns" => NS,
            "us" | "µs" | "μs" => US,
            "ms" => MS,
            "s" => S,
            "m" => M,
            "h" => H,
            _ => return Err(format!("time: unknown unit \"{unit}\" in duration \"{orig}\"")),
        };
        match num.split_once('.') {
            None => {
                let n: u128 = num.parse().map_err(|_| invalid())?;
                exact += n * mult as u128;
            }
            Some((int, frac)) => {
                let n: u128 = if int.is_empty() { 0 } else { int.parse().map_err(|_| invalid())? };
                exact += n * mult as u128;
                if !frac.is_empty() {
                    let f: f64 = format!("0.{frac}").parse().map_err(|_| invalid())?;
                    total += f * mult as f64;
                }
            }
        }
        if exact > i64::MAX as u128 {
            return Err(invalid());
        }
    }
    let ns = exact as i128 + total.round() as i128;
    if ns > i64::MAX as i128 {
        return Err(invalid());
    }
    Ok(if neg { -(ns as i64) } else { ns as i64 })
}

#[allow(dead_code)] // for `service inspect --pretty` and friends
/// Formats nanoseconds as Go's `time.Duration.String()` ("5s", "2160h0m0s",
/// "1.5s", "300ms").
pub fn format_go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let sign = if neg { "-" } else { "" };
    if u < S {
        let (unit, div) = if u < US {
            ("ns", 1)
        } else if u < MS {
            ("µs", US)
        } else {
            ("ms", MS)
        };
        return format!("{sign}{}{unit}", frac(u, div));
    }
    let h = u / H;
    let m = (u % H) / M;
    let s_ns = u % M;
    let secs = frac(s_ns, S);
    if h > 0 {
        format!("{sign}{h}h{m}m{secs}s")
    } else if m > 0 {
        format!("{sign}{m}m{secs}s")
    } else {
        format!("{sign}{secs}s")
    }
}

#[allow(dead_code)]
fn frac(v: u64, div: u64) -> String {
    let whole = v / div;
    let rem = v % div;
    if rem == 0 {
        return whole.to_string();
    }
    let width = (div as f64).log10().round() as usize;
    let digits = format!("{rem:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// docker's `units.HumanDuration`.
pub fn human_duration(ns: i64) -> String {
    let secs_f = ns as f64 / S as f64;
    let seconds = secs_f as i64;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = (secs_f / 60.0) as i64;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours_f = secs_f / 3600.0;
    let hours = (hours_f + 0.5) as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", hours_f as i64 / 24 / 365)
}

/// "3 seconds ago", "About a minute ago" (docker's `units.HumanDuration(…) + " ago"`).
pub fn ago(ns: i64) -> String {
    format!("{} ago", human_duration(ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_go_duration("5s"), Ok(5 * S as i64));
        assert_eq!(parse_go_duration("1h30m"), Ok((H + 30 * M) as i64));
        assert_eq!(parse_go_duration("1.5h"), Ok((H + 30 * M) as i64));
        assert_eq!(parse_go_duration("300ms"), Ok(300 * MS as i64));
        assert_eq!(parse_go_duration("2160h"), Ok(2160 * H as i64));
        assert_eq!(parse_go_duration("1us"), Ok(1000));
        assert_eq!(parse_go_duration("1µs"), Ok(1000));
        assert_eq!(parse_go_duration("-2s"), Ok(-2 * S as i64));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration(".5s"), Ok(500 * MS as i64));
        assert_eq!(parse_go_duration("90d"), Err("time: unknown unit \"d\" in duration \"90d\"".into()));
        assert_eq!(parse_go_duration("5"), Err("time: missing unit in duration \"5\"".into()));
        assert_eq!(parse_go_duration(""), Err("time: invalid duration \"\"".into()));
        assert_eq!(parse_go_duration("s"), Err("time: invalid duration \"s\"".into()));
    }

    #[test]
    fn formats_go_durations() {
        assert_eq!(format_go_duration(5 * S as i64), "5s");
        assert_eq!(format_go_duration(2160 * H as i64), "2160h0m0s");
        assert_eq!(format_go_duration((M + 500 * MS) as i64), "1m0.5s");
        assert_eq!(format_go_duration(300 * MS as i64), "300ms");
        assert_eq!(format_go_duration(1500), "1.5µs");
        assert_eq!(format_go_duration(0), "0s");
    }

    #[test]
    fn humanises_like_docker() {
        let s = S as i64;
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(s), "1 second");
        assert_eq!(human_duration(3 * s), "3 seconds");
        assert_eq!(human_duration(90 * s), "About a minute");
        assert_eq!(human_duration(5 * 60 * s), "5 minutes");
        assert_eq!(human_duration(3600 * s), "About an hour");
        assert_eq!(human_duration(5 * 3600 * s), "5 hours");
        assert_eq!(human_duration(3 * 86400 * s), "3 days");
        assert_eq!(human_duration(21 * 86400 * s), "3 weeks");
        // 90 days, the default node certificate expiry
        assert_eq!(human_duration(2160 * 3600 * s), "3 months");
        assert_eq!(human_duration(800 * 86400 * s), "2 years");
        assert_eq!(ago(8 * s), "8 seconds ago");
    }
}
