//! RFC 3339 timestamps as the Engine API writes them (UTC, nanoseconds),
//! through the `time` crate.

use std::sync::LazyLock;
use std::time::SystemTime;

use time::format_description::well_known::Rfc3339;
use time::format_description::OwnedFormatItem;
use time::OffsetDateTime;

/// `2016-08-18T10:44:24.496525531Z`: always nine digits of fraction (what
/// Shoal has always written; Docker's parsers take any number).
static FIXED_NANOS: LazyLock<OwnedFormatItem> = LazyLock::new(|| {
    time::format_description::parse_owned::<2>("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z")
        .expect("a valid format description")
});

/// Formats a time as Docker does: `2016-08-18T10:44:24.496525531Z`.
pub fn rfc3339(t: SystemTime) -> String {
    OffsetDateTime::from(t).format(&*FIXED_NANOS).unwrap_or_default()
}

pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// Parses an RFC 3339 timestamp (any fraction, any offset); a time before
/// the Unix epoch (Go's zero time, `0001-01-01T00:00:00Z`) is the epoch.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    Some(if t.unix_timestamp() < 0 { SystemTime::UNIX_EPOCH } else { t.into() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn formats_known_instant() {
        let t = UNIX_EPOCH + Duration::new(1_471_517_064, 496_525_531);
        assert_eq!(rfc3339(t), "2016-08-18T10:44:24.496525531Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
    }

    #[test]
    fn round_trips() {
        let t = UNIX_EPOCH + Duration::new(4_102_444_799, 7);
        assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(UNIX_EPOCH + Duration::from_secs(951_782_400)));
        assert_eq!(parse_rfc3339("2000-02-29T02:00:00.5+02:00"), Some(UNIX_EPOCH + Duration::new(951_782_400, 500_000_000)));
        assert_eq!(parse_rfc3339("garbage"), None);
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), Some(UNIX_EPOCH));
    }
}
