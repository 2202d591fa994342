//! The rolling updater, as a function of the store like the rest of the
//! orchestrators: SwarmKit keeps an updater goroutine per service with its
//! progress in memory; here the progress is read back from the tasks and
//! the service's `UpdateStatus` on every pass, so a new leader carries on
//! an update where the old one was.
//!
//! A slot (or, for global services, a node) is *dirty* when its running
//! task has an older spec. Each pass:
//! - lanes: at most `Parallelism` slots are mid-update at once (0: all).
//!   A lane is busy while its new task is not yet running, and for
//!   `Delay` after it started running;
//! - `stop-first` tells the old task to stop and creates the replacement
//!   only once the old one has stopped; `start-first` creates the
//!   replacement first and stops the old task once the new one runs;
//! - failures: new-spec tasks that ended since the update started, over
//!   the slot count, above `MaxFailureRatio` trigger `FailureAction`
//!   (pause, continue, or roll back to the previous spec);
//! - done: nothing dirty or in flight and `Monitor` has passed since the
//!   last new task started: `UpdateStatus` becomes `completed`.

use std::time::{Duration, SystemTime};

use shoal_api::service::{Service, UpdateConfig, UpdateStatus};
use shoal_api::task::{Task, TaskState};

use super::{outdated, Changes};

/// A write of a service's `UpdateStatus`, based on the service version the
/// orchestrator saw (a stale one is dropped by the store). `rollback`
/// swaps the spec back to `PreviousSpec` (automatic rollback).
pub use crate::store::ServiceProgress as StatusChange;

pub const UPDATING: &str = "updating";
pub const PAUSED: &str = "paused";
pub const COMPLETED: &str = "completed";
pub const ROLLBACK_STARTED: &str = "rollback_started";
pub const ROLLBACK_PAUSED: &str = "rollback_paused";
pub const ROLLBACK_COMPLETED: &str = "rollback_completed";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// No update running (none yet, or the last one completed).
    Idle,
    Updating,
    RollingBack,
    Paused,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum FailureAction {
    Pause,
    Continue,
    Rollback,
}

/// The update settings in force, with SwarmKit's defaults.
#[derive(Clone, Debug)]
struct Pacing {
    /// 0: every dirty slot at once.
    parallelism: usize,
    delay: Duration,
    action: FailureAction,
    monitor: Duration,
    max_failure_ratio: f32,
    start_first: bool,
}

/// Docker's update monitor when none is given.
const DEFAULT_MONITOR: Duration = Duration::from_secs(5);

impl Pacing {
    fn from_config(c: Option<&UpdateConfig>) -> Pacing {
        let Some(c) = c else {
            return Pacing {
                parallelism: 1,
                delay: Duration::ZERO,
                action: FailureAction::Pause,
                monitor: DEFAULT_MONITOR,
                max_failure_ratio: 0.0,
                start_first: false,
            };
        };
        let nanos = |n: i64| Duration::from_nanos(n.max(0) as u64);
        Pacing {
            parallelism: c.parallelism as usize,
            delay: nanos(c.delay),
            action: match c.failure_action.as_str() {
                "continue" => FailureAction::Continue,
                "rollback" => FailureAction::Rollback,
                _ => FailureAction::Pause,
            },
            monitor: if c.monitor > 0 { nanos(c.monitor) } else { DEFAULT_MONITOR },
            max_failure_ratio: c.max_failure_ratio,
            start_first: c.order == "start-first",
        }
    }
}

/// One pass of the updater over one service.
pub struct Rollout<'a> {
    svc: &'a Service,
    now: Option<SystemTime>,
    now_str: String,
    phase: Phase,
    pacing: Pacing,
    started: Option<SystemTime>,
    /// Slots whose update is under way (new task not running yet, old task
    /// still stopping, or both tasks alive in start-first).
    busy: usize,
    /// New tasks that started running less than `Delay` ago.
    cooling: usize,
    last_running: Option<SystemTime>,
    /// The newest new-spec task that ended since the update started, and
    /// how many did.
    failed: Option<&'a Task>,
    failures: usize,
    slots: usize,
    /// Old running tasks of slots that hold no new-spec task yet.
    dirty: Vec<&'a Task>,
}

fn ts(s: &str) -> Option<SystemTime> {
    shoal_api::time::parse_rfc3339(s)
}

impl<'a> Rollout<'a> {
    /// `tasks`: every task of the service, live and retired.
    pub fn new(svc: &'a Service, tasks: &[&'a Task], slots: usize, now: &str) -> Rollout<'a> {
        let status = svc.update_status.as_ref();
        let phase = match status.map(|s| s.state.as_str()) {
            Some(UPDATING) => Phase::Updating,
            Some(ROLLBACK_STARTED) => Phase::RollingBack,
            Some(PAUSED) | Some(ROLLBACK_PAUSED) => Phase::Paused,
            _ => Phase::Idle,
        };
        let config = if phase == Phase::RollingBack { svc.spec.rollback_config.as_ref() } else { svc.spec.update_config.as_ref() };
        let mut r = Rollout {
            svc,
            now: ts(now),
            now_str: now.to_string(),
            phase,
            pacing: Pacing::from_config(config),
            started: status.and_then(|s| s.started_at.as_deref()).and_then(ts),
            busy: 0,
            cooling: 0,
            last_running: None,
            failed: None,
            failures: 0,
            slots,
            dirty: Vec::new(),
        };
        if matches!(phase, Phase::Updating | Phase::RollingBack) {
            r.read_progress(tasks);
        }
        r
    }

    /// Failures and start times of the new-spec tasks since the update began.
    fn read_progress(&mut self, tasks: &[&'a Task]) {
        let Some(started) = self.started else { return };
        for &t in tasks {
            if outdated(self.svc, t) {
                continue;
            }
            let Some(at) = ts(&t.status.timestamp) else { continue };
            if at < started {
                continue;
            }
            let state = t.status.state;
            let ended_early = matches!(state, TaskState::Failed | TaskState::Rejected)
                || (matches!(state, TaskState::Complete | TaskState::Shutdown) && t.desired_state <= TaskState::Running);
            if ended_early {
                self.failures += 1;
                if self.failed.map(|f| f.status.timestamp < t.status.timestamp).unwrap_or(true) {
                    self.failed = Some(t);
                }
            } else if state == TaskState::Running && t.desired_state <= TaskState::Running {
                self.last_running = Some(self.last_running.map_or(at, |l| l.max(at)));
                if let Some(now) = self.now {
                    if now.duration_since(at).map(|d| d < self.pacing.delay).unwrap_or(true) {
                        self.cooling += 1;
                    }
                }
            }
        }
    }

    /// With stop-first, a slot whose old task is still stopping waits.
    pub fn stop_first(&self) -> bool {
        !self.pacing.start_first
    }

    /// A slot mid-update: counts against the parallelism.
    pub fn in_flight(&mut self) {
        self.busy += 1;
    }

    /// A slot whose running task has an old spec.
    pub fn dirty(&mut self, old: &'a Task) {
        self.dirty.push(old);
    }

    fn set_status(&self, changes: &mut Changes, state: &str, message: String, rollback: bool) {
        let previous = self.svc.update_status.clone().unwrap_or_default();
        let completed = matches!(state, COMPLETED | ROLLBACK_COMPLETED);
        let started_at = if matches!(state, UPDATING | ROLLBACK_STARTED) { Some(self.now_str.clone()) } else { previous.started_at };
        changes.services.push(StatusChange {
            service_id: self.svc.id.clone(),
            version: self.svc.version.index,
            status: UpdateStatus { state: state.to_string(), started_at, completed_at: completed.then(|| self.now_str.clone()), message },
            rollback,
        });
    }

    /// Decides which dirty slots start now; `replacement` makes the new
    /// task for an old one.
    pub fn finish(mut self, changes: &mut Changes, replacement: impl Fn(&Task) -> Task) {
        match self.phase {
            Phase::Paused => return,
            Phase::Idle if self.dirty.is_empty() => return,
            Phase::Idle => {
                // A spec change: the update starts now.
                self.set_status(changes, UPDATING, "update in progress".into(), false);
                self.phase = Phase::Updating;
            }
            Phase::Updating | Phase::RollingBack => {}
        }
        if let Some(t) = self.failed {
            let ratio = self.failures as f32 / self.slots.max(1) as f32;
            if ratio > self.pacing.max_failure_ratio && self.pacing.action != FailureAction::Continue {
                let why = format!("due to failure or early termination of task {}", t.id);
                match (self.phase, self.pacing.action) {
                    (Phase::Updating, FailureAction::Rollback) if self.svc.previous_spec.is_some() => {
                        self.set_status(changes, ROLLBACK_STARTED, format!("update rolled back {why}"), true)
                    }
                    (Phase::Updating, _) => self.set_status(changes, PAUSED, format!("update paused {why}"), false),
                    _ => self.set_status(changes, ROLLBACK_PAUSED, format!("rollback paused {why}"), false),
                }
                return;
            }
        }
        let free = match self.pacing.parallelism {
            0 => usize::MAX,
            p => p.saturating_sub(self.busy + self.cooling),
        };
        let dirty = std::mem::take(&mut self.dirty);
        for &old in dirty.iter().take(free) {
            if self.pacing.start_first {
                changes.put.push(replacement(old));
            } else {
                changes.shut_down(old);
            }
        }
        if dirty.is_empty() && self.busy == 0 {
            let settled = match (self.last_running, self.now) {
                (Some(last), Some(now)) => now.duration_since(last).map(|d| d >= self.pacing.monitor).unwrap_or(false),
                _ => true,
            };
            if settled {
                let (state, message) = if self.phase == Phase::RollingBack {
                    (ROLLBACK_COMPLETED, "rollback completed")
                } else {
                    (COMPLETED, "update completed")
                };
                self.set_status(changes, state, message.into(), false);
            }
        }
    }
}
