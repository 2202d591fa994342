//! RFC 3339 timestamps as the Engine API sends them ("2024-05-01T10:00:00.123456789Z"),
//! turned into "N seconds ago" or printed the way Go prints a `time.Time`.

use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp {
    /// Local calendar fields, as written.
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
    /// Offset from UTC in minutes; `None` for "Z".
    pub offset_min: Option<i32>,
}

impl Timestamp {
    pub fn parse(s: &str) -> Option<Timestamp> {
        let b = s.as_bytes();
        if b.len() < 20
            || b[4] != b'-'
            || b[7] != b'-'
            || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ')
            || b[13] != b':'
            || b[16] != b':'
        {
            return None;
        }
        let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
        let year = num(0..4)? as i64;
        let (month, day, hour, minute, second) = (num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        let mut i = 19;
        let mut nanos = 0u32;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let digits = &s[start..i];
            if digits.is_empty() {
                return None;
            }
            let mut padded: String = digits.chars().take(9).collect();
            while padded.len() < 9 {
                padded.push('0');
            }
            nanos = padded.parse().ok()?;
        }
        let offset_min = match b.get(i)? {
            b'Z' | b'z' if i + 1 == b.len() => None,
            b'+' | b'-' if i + 6 == b.len() && b[i + 3] == b':' => {
                let h: i32 = s[i + 1..i + 3].parse().ok()?;
                let m: i32 = s[i + 4..i + 6].parse().ok()?;
                let off = h * 60 + m;
                Some(if b[i] == b'-' { -off } else { off })
            }
            _ => return None,
        };
        Some(Timestamp { year, month, day, hour, minute, second, nanos, offset_min })
    }

    /// Nanoseconds since the Unix epoch (UTC).
    pub fn unix_nanos(&self) -> i128 {
        let days = days_from_civil(self.year, self.month, self.day);
        let secs = days * 86400 + (self.hour * 3600 + self.minute * 60 + self.second) as i64 - self.offset_min.unwrap_or(0) as i64 * 60;
        secs as i128 * 1_000_000_000 + self.nanos as i128
    }

    /// Go's `time.Time.String()`: "2009-11-10 23:00:00.5 +0000 UTC".
    pub fn go_string(&self) -> String {
        let mut s = format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", self.year, self.month, self.day, self.hour, self.minute, self.second);
        if self.nanos != 0 {
            let f = format!("{:09}", self.nanos);
            s.push('.');
            s.push_str(f.trim_end_matches('0'));
        }
        match self.offset_min {
            None => s.push_str(" +0000 UTC"),
            Some(off) => {
                let sign = if off < 0 { '-' } else { '+' };
                let z = format!("{sign}{:02}{:02}", off.abs() / 60, off.abs() % 60);
                s.push(' ');
                s.push_str(&z);
                s.push(' ');
                s.push_str(&z);
            }
        }
        s
    }

    /// Go's `time.ANSIC` layout: "Mon Jul  9 23:38:38 2018".
    pub fn ansic(&self) -> String {
        const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        let days = days_from_civil(self.year, self.month, self.day);
        let weekday = (days + 4).rem_euclid(7) as usize;
        format!(
            "{} {} {:>2} {:02}:{:02}:{:02} {}",
            DAYS[weekday],
            MONTHS[(self.month - 1) as usize],
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.year
        )
    }

    /// Nanoseconds elapsed from this time until now (0 if in the future).
    #[allow(dead_code)]
    pub fn elapsed_nanos(&self) -> i64 {
        let d = now_unix_nanos() - self.unix_nanos();
        d.clamp(0, i64::MAX as i128) as i64
    }
}

pub fn now_unix_nanos() -> i128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let t = Timestamp::parse("2009-11-10T23:00:00Z").unwrap();
        assert_eq!(t.go_string(), "2009-11-10 23:00:00 +0000 UTC");
        assert_eq!(t.unix_nanos(), 1_257_894_000 * 1_000_000_000);
        let t = Timestamp::parse("2024-05-01T10:00:00.123456700Z").unwrap();
        assert_eq!(t.go_string(), "2024-05-01 10:00:00.1234567 +0000 UTC");
        let t = Timestamp::parse("2024-05-01T12:00:00+02:00").unwrap();
        assert_eq!(t.go_string(), "2024-05-01 12:00:00 +0200 +0200");
        assert_eq!(t.unix_nanos(), Timestamp::parse("2024-05-01T10:00:00Z").unwrap().unix_nanos());
        assert_eq!(Timestamp::parse("1970-01-01T00:00:00Z").unwrap().unix_nanos(), 0);
        assert!(Timestamp::parse("0001-01-01T00:00:00Z").is_some());
        assert_eq!(Timestamp::parse("2018-07-09T23:38:38.000000000+00:00").unwrap().ansic(), "Mon Jul  9 23:38:38 2018");
        assert_eq!(Timestamp::parse("2018-05-30T22:21:05Z").unwrap().ansic(), "Wed May 30 22:21:05 2018");
        assert!(Timestamp::parse("yesterday").is_none());
        assert!(Timestamp::parse("2024-13-01T00:00:00Z").is_none());
    }
}
