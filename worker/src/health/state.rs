//! The health status machine, free of I/O and clocks: probe results and the
//! time since the container started go in, the new status and the delay to
//! the next probe come out (moby's `handleProbeResult` and `getInterval`).

use std::collections::VecDeque;
use std::time::Duration;

use super::config::HealthSettings;

/// Probe results kept for `inspect` (Docker keeps 5).
pub const MAX_LOG_ENTRIES: usize = 5;
/// Probe output kept per result (Docker's 4096 bytes, then "...").
pub const MAX_OUTPUT: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthStatus {
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    /// Docker's word (`State.Health.Status`).
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// One probe run (`State.Health.Log[]`): times as RFC 3339 for `inspect`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeResult {
    pub start: String,
    pub end: String,
    /// 0 healthy; anything else is a failure (-1: timed out or not run).
    pub exit_code: i64,
    pub output: String,
}

/// What `inspect` shows of a container's health.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthSnapshot {
    pub status: HealthStatus,
    pub failing_streak: u32,
    pub log: Vec<ProbeResult>,
}

#[derive(Clone, Debug)]
pub struct HealthState {
    status: HealthStatus,
    failing_streak: u32,
    log: VecDeque<ProbeResult>,
}

impl Default for HealthState {
    fn default() -> Self {
        HealthState { status: HealthStatus::Starting, failing_streak: 0, log: VecDeque::new() }
    }
}

impl HealthState {
    pub fn status(&self) -> HealthStatus {
        self.status
    }

    pub fn snapshot(&self) -> HealthSnapshot {
        HealthSnapshot { status: self.status, failing_streak: self.failing_streak, log: self.log.iter().cloned().collect() }
    }

    /// Records a result of a probe that began `probe_began` after the
    /// container started. Returns the new status if it changed.
    ///
    /// Success makes the container healthy and clears the streak. A failure
    /// while still starting and within the start period does not count;
    /// otherwise it adds to the streak, and `retries` consecutive failures
    /// make the container unhealthy.
    pub fn record(&mut self, s: &HealthSettings, result: ProbeResult, probe_began: Duration) -> Option<HealthStatus> {
        let before = self.status;
        let ok = result.exit_code == 0;
        if self.log.len() >= MAX_LOG_ENTRIES {
            self.log.pop_front();
        }
        self.log.push_back(result);
        if ok {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
        } else {
            let grace = self.status == HealthStatus::Starting && probe_began < s.start_period;
            if !grace {
                self.failing_streak += 1;
                if self.failing_streak >= s.retries {
                    self.status = HealthStatus::Unhealthy;
                }
            }
        }
        (self.status != before).then_some(self.status)
    }

    /// How long to wait before the next probe, `elapsed` after the
    /// container started: the start interval while starting inside the
    /// start period, never past the end of that period, else the interval.
    pub fn next_delay(&self, s: &HealthSettings, elapsed: Duration) -> Duration {
        if elapsed >= s.start_period {
            return s.interval;
        }
        let remaining = s.start_period - elapsed;
        if remaining < s.interval {
            return remaining;
        }
        if self.status == HealthStatus::Starting {
            s.start_interval
        } else {
            s.interval
        }
    }
}

/// Keeps at most [`MAX_OUTPUT`] bytes (on a char boundary), marking a cut
/// with "..." as Docker does.
pub fn limit_output(mut s: String) -> String {
    if s.len() > MAX_OUTPUT {
        let mut cut = MAX_OUTPUT;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// A duration as Go prints it (`30s`, `1.5s`, `500ms`, `1m30s`): Docker's
/// timeout message quotes the configured timeout this way.
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", trim_frac(ns as f64 / 1e3));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", trim_frac(ns as f64 / 1e6));
    }
    let total = d.as_secs();
    let (h, m) = (total / 3600, (total % 3600) / 60);
    let secs = (total % 60) as f64 + d.subsec_nanos() as f64 / 1e9;
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{}s", trim_frac(secs)));
    out
}

fn trim_frac(x: f64) -> String {
    let s = format!("{x:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(retries: u32, start_period: u64) -> HealthSettings {
        HealthSettings {
            command: vec!["true".into()],
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(3),
            start_period: Duration::from_secs(start_period),
            start_interval: Duration::from_secs(2),
            retries,
        }
    }

    fn result(code: i64) -> ProbeResult {
        ProbeResult { start: String::new(), end: String::new(), exit_code: code, output: format!("exit {code}") }
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn retries_consecutive_failures_make_it_unhealthy() {
        let s = settings(2, 0);
        let mut h = HealthState::default();
        assert_eq!(h.record(&s, result(1), S(10)), None);
        assert_eq!(h.status(), HealthStatus::Starting);
        assert_eq!(h.record(&s, result(1), S(20)), Some(HealthStatus::Unhealthy));
        // Still failing: no new change.
        assert_eq!(h.record(&s, result(1), S(30)), None);
        assert_eq!(h.snapshot().failing_streak, 3);
    }

    #[test]
    fn success_makes_it_healthy_and_clears_the_streak() {
        let s = settings(3, 0);
        let mut h = HealthState::default();
        h.record(&s, result(1), S(1));
        h.record(&s, result(1), S(2));
        assert_eq!(h.record(&s, result(0), S(3)), Some(HealthStatus::Healthy));
        assert_eq!(h.snapshot().failing_streak, 0);
        h.record(&s, result(1), S(4));
        h.record(&s, result(1), S(5));
        assert_eq!(h.status(), HealthStatus::Healthy);
        assert_eq!(h.record(&s, result(1), S(6)), Some(HealthStatus::Unhealthy));
        // An unhealthy container that passes again is healthy again.
        assert_eq!(h.record(&s, result(0), S(7)), Some(HealthStatus::Healthy));
    }

    #[test]
    fn failures_in_the_start_period_do_not_count() {
        let s = settings(1, 30);
        let mut h = HealthState::default();
        for t in [1, 10, 29] {
            assert_eq!(h.record(&s, result(1), S(t)), None, "at {t}s");
        }
        assert_eq!(h.snapshot().failing_streak, 0);
        // After the period, the first failure counts (retries 1).
        assert_eq!(h.record(&s, result(1), S(31)), Some(HealthStatus::Unhealthy));
    }

    #[test]
    fn after_turning_healthy_the_start_period_no_longer_shields() {
        let s = settings(1, 30);
        let mut h = HealthState::default();
        h.record(&s, result(0), S(1));
        assert_eq!(h.record(&s, result(1), S(2)), Some(HealthStatus::Unhealthy));
    }

    #[test]
    fn timed_out_probes_are_failures() {
        let s = settings(1, 0);
        let mut h = HealthState::default();
        assert_eq!(h.record(&s, result(-1), S(1)), Some(HealthStatus::Unhealthy));
    }

    #[test]
    fn log_keeps_the_last_five() {
        let s = settings(100, 0);
        let mut h = HealthState::default();
        for i in 0..8 {
            h.record(&s, result(i + 1), S(i as u64));
        }
        let codes: Vec<i64> = h.snapshot().log.iter().map(|r| r.exit_code).collect();
        assert_eq!(codes, [4, 5, 6, 7, 8]);
    }

    #[test]
    fn delays_follow_the_start_period() {
        let s = settings(3, 30);
        let mut h = HealthState::default();
        // Starting, well inside the period: the start interval.
        assert_eq!(h.next_delay(&s, S(0)), S(2));
        // Less than an interval of the period left: up to its end.
        assert_eq!(h.next_delay(&s, S(25)), S(5));
        // Past the period: the interval.
        assert_eq!(h.next_delay(&s, S(30)), S(10));
        // Healthy inside the period: the interval.
        h.record(&s, result(0), S(1));
        assert_eq!(h.next_delay(&s, S(1)), S(10));
        // No start period: always the interval.
        assert_eq!(HealthState::default().next_delay(&settings(3, 0), S(0)), S(10));
    }

    #[test]
    fn output_is_limited() {
        assert_eq!(limit_output("ok".into()), "ok");
        let long = "é".repeat(3000);
        let cut = limit_output(long);
        assert!(cut.ends_with("...") && cut.len() <= MAX_OUTPUT + 3);
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
    }
}
