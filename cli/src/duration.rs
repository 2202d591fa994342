//! Durations as the docker CLI handles them: flags take Go durations
//! (`5s`, `1h30m`, `1.5h`, `300ms`), the API carries integer nanoseconds,
//! and people read `units.HumanDuration` ("About a minute", "3 months").

pub use shoal_api::duration::parse_go_duration;
use shoal_api::duration::{H, M, MS, S, US};

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
