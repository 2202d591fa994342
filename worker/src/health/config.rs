//! The effective health check of a container: the task's settings over the
//! image's, field by field (what moby's `merge` does when it creates the
//! container), then Docker's defaults.

use std::time::Duration;

use crate::image::manifest::HealthConfig as ImageHealth;
use shoal_api::task::HealthConfig as SpecHealth;

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_RETRIES: u32 = 3;

/// A check that will run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HealthSettings {
    /// The probe's argv inside the container (`CMD-SHELL` already wrapped in
    /// the shell).
    pub command: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: u32,
}

fn nanos_or(n: i64, default: Duration) -> Duration {
    if n > 0 {
        Duration::from_nanos(n as u64)
    } else {
        default
    }
}

/// The check to run, or `None` when there is none: no test anywhere,
/// `["NONE"]` (`--no-healthcheck`), or a test type Docker does not know
/// (Docker logs that and runs no check). `shell` is the image's `Shell`
/// (empty for `/bin/sh -c`).
pub fn resolve(image: Option<&ImageHealth>, spec: Option<&SpecHealth>, shell: &[String]) -> Option<HealthSettings> {
    let pick = |s: i64, i: Option<i64>| if s != 0 { s } else { i.unwrap_or(0) };
    let (test, interval, timeout, start_period, start_interval, retries) = match (spec, image) {
        (None, None) => return None,
        (None, Some(i)) => (i.test.clone(), i.interval, i.timeout, i.start_period, i.start_interval, i.retries),
        (Some(s), i) => (
            if s.test.is_empty() { i.map(|i| i.test.clone()).unwrap_or_default() } else { s.test.clone() },
            pick(s.interval, i.map(|i| i.interval)),
            pick(s.timeout, i.map(|i| i.timeout)),
            pick(s.start_period, i.map(|i| i.start_period)),
            pick(s.start_interval, i.map(|i| i.start_interval)),
            pick(s.retries, i.map(|i| i.retries)),
        ),
    };
    let command = match test.first().map(String::as_str) {
        Some("CMD") if test.len() > 1 => test[1..].to_vec(),
        Some("CMD-SHELL") if test.len() > 1 => {
            let mut c: Vec<String> = if shell.is_empty() { vec!["/bin/sh".into(), "-c".into()] } else { shell.to_vec() };
            c.push(test[1..].join(" "));
            c
        }
        Some("NONE") | None => return None,
        Some(other) => {
            tracing::warn!("unknown healthcheck type '{other}' (expected 'CMD'): no health check runs");
            return None;
        }
    };
    Some(HealthSettings {
        command,
        interval: nanos_or(interval, DEFAULT_INTERVAL),
        timeout: nanos_or(timeout, DEFAULT_TIMEOUT),
        start_period: nanos_or(start_period, Duration::ZERO),
        start_interval: nanos_or(start_interval, DEFAULT_START_INTERVAL),
        retries: if retries > 0 { retries.min(u32::MAX as i64) as u32 } else { DEFAULT_RETRIES },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(test: &[&str]) -> SpecHealth {
        SpecHealth { test: test.iter().map(|s| s.to_string()).collect(), ..Default::default() }
    }

    #[test]
    fn defaults_are_dockers() {
        let h = resolve(None, Some(&spec(&["CMD", "true"])), &[]).unwrap();
        assert_eq!(h.command, ["true"]);
        assert_eq!(h.interval, Duration::from_secs(30));
        assert_eq!(h.timeout, Duration::from_secs(30));
        assert_eq!(h.start_period, Duration::ZERO);
        assert_eq!(h.start_interval, Duration::from_secs(5));
        assert_eq!(h.retries, 3);
    }

    #[test]
    fn shell_form_runs_in_the_shell() {
        let h = resolve(None, Some(&spec(&["CMD-SHELL", "test -f /tmp/ok"])), &[]).unwrap();
        assert_eq!(h.command, ["/bin/sh", "-c", "test -f /tmp/ok"]);
        let h = resolve(None, Some(&spec(&["CMD-SHELL", "x"])), &["/bin/ash".into(), "-ec".into()]).unwrap();
        assert_eq!(h.command, ["/bin/ash", "-ec", "x"]);
    }

    #[test]
    fn none_and_unknown_and_empty_disable() {
        let image = ImageHealth { test: vec!["CMD".into(), "true".into()], ..Default::default() };
        assert!(resolve(Some(&image), Some(&spec(&["NONE"])), &[]).is_none());
        assert!(resolve(None, Some(&spec(&["BOGUS", "x"])), &[]).is_none());
        assert!(resolve(None, Some(&spec(&[])), &[]).is_none());
        assert!(resolve(None, None, &[]).is_none());
    }

    #[test]
    fn task_settings_override_the_image_field_by_field() {
        let image = ImageHealth {
            test: vec!["CMD".into(), "img".into()],
            interval: 7_000_000_000,
            timeout: 2_000_000_000,
            retries: 9,
            ..Default::default()
        };
        let h = resolve(Some(&image), None, &[]).unwrap();
        assert_eq!((h.command.as_slice(), h.interval, h.retries), (&["img".to_string()][..], Duration::from_secs(7), 9));
        // Only an interval on the command line: the image's test and the
        // rest stay.
        let s = SpecHealth { interval: 1_000_000_000, ..Default::default() };
        let h = resolve(Some(&image), Some(&s), &[]).unwrap();
        assert_eq!(h.command, ["img"]);
        assert_eq!(h.interval, Duration::from_secs(1));
        assert_eq!(h.timeout, Duration::from_secs(2));
        assert_eq!(h.retries, 9);
    }
}
