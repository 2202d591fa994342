//! Go durations (`time.ParseDuration`): the docker CLI's flags and
//! dockerd's options take them (`5s`, `1h30m`, `1.5h`, `300ms`).

pub const NS: u64 = 1;
pub const US: u64 = 1_000;
pub const MS: u64 = 1_000_000;
pub const S: u64 = 1_000_000_000;
pub const M: u64 = 60 * S;
pub const H: u64 = 60 * M;

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
}
