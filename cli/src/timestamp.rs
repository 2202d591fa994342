//! RFC 3339 timestamps as the Engine API sends them ("2024-05-01T10:00:00.123456789Z"),
//! turned into "N seconds ago" or printed the way Go prints a `time.Time`.
//! Parsing and the calendar are the `time` crate's.

use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp {
    /// The time as written, in its own offset.
    at: OffsetDateTime,
    /// Written with `Z` (Go prints the zone as "UTC"), not an offset.
    utc: bool,
}

impl Timestamp {
    /// Go's zero time, `0001-01-01T00:00:00Z`.
    pub fn zero() -> Timestamp {
        Timestamp::parse("0001-01-01T00:00:00Z").expect("a valid timestamp")
    }

    pub fn parse(s: &str) -> Option<Timestamp> {
        let at = OffsetDateTime::parse(s, &Rfc3339).ok()?;
        Some(Timestamp { at, utc: s.ends_with(['Z', 'z']) })
    }

    /// Nanoseconds since the Unix epoch (UTC).
    pub fn unix_nanos(&self) -> i128 {
        self.at.unix_timestamp_nanos()
    }

    /// Go's `time.Time.String()`: "2009-11-10 23:00:00.5 +0000 UTC".
    pub fn go_string(&self) -> String {
        let t = self.at;
        let mut s = format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", t.year(), t.month() as u8, t.day(), t.hour(), t.minute(), t.second());
        if t.nanosecond() != 0 {
            let f = format!("{:09}", t.nanosecond());
            s.push('.');
            s.push_str(f.trim_end_matches('0'));
        }
        if self.utc {
            s.push_str(" +0000 UTC");
        } else {
            let off = t.offset().whole_minutes();
            let sign = if off < 0 { '-' } else { '+' };
            let z = format!("{sign}{:02}{:02}", off.abs() / 60, off.abs() % 60);
            s.push_str(&format!(" {z} {z}"));
        }
        s
    }

    /// Go's `time.ANSIC` layout: "Mon Jul  9 23:38:38 2018".
    pub fn ansic(&self) -> String {
        let t = self.at;
        let weekday = t.weekday().to_string();
        let month = t.month().to_string();
        format!("{} {} {:>2} {:02}:{:02}:{:02} {}", &weekday[..3], &month[..3], t.day(), t.hour(), t.minute(), t.second(), t.year())
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
        assert_eq!(Timestamp::zero().unix_nanos(), -62_135_596_800 * 1_000_000_000);
        assert_eq!(Timestamp::parse("2018-07-09T23:38:38.000000000+00:00").unwrap().ansic(), "Mon Jul  9 23:38:38 2018");
        assert_eq!(Timestamp::parse("2018-05-30T22:21:05Z").unwrap().ansic(), "Wed May 30 22:21:05 2018");
        assert!(Timestamp::parse("yesterday").is_none());
        assert!(Timestamp::parse("2024-13-01T00:00:00Z").is_none());
    }
}
