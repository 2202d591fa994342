//! The node's health-check scheduler: one thread keeps every watched
//! container's next probe time and starts each probe, when due, on a
//! short-lived thread. The result updates the container's state and the
//! next probe is due one delay after this one ended (Docker counts the
//! interval from the end of a probe). Status changes go to the watcher's
//! callback, outside the lock.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use super::config::HealthSettings;
use super::probe;
use super::state::{HealthSnapshot, HealthState, HealthStatus};
use crate::executor::runc::Runc;

type OnChange = Arc<dyn Fn(HealthStatus) + Send + Sync>;

struct Watched {
    /// Tells a late probe result of an earlier watch of the same ID apart.
    generation: u64,
    bundle: PathBuf,
    settings: HealthSettings,
    started: Instant,
    state: HealthState,
    due: Instant,
    probing: bool,
    on_change: OnChange,
}

#[derive(Default)]
struct Schedule {
    watched: HashMap<String, Watched>,
    generation: u64,
    closed: bool,
}

struct Inner {
    runc: Runc,
    schedule: Mutex<Schedule>,
    wake: Condvar,
}

pub struct HealthMonitor {
    inner: Arc<Inner>,
}

impl HealthMonitor {
    /// Starts the scheduler thread; it ends when the monitor is dropped.
    pub fn new(runc: Runc) -> HealthMonitor {
        let inner = Arc::new(Inner { runc, schedule: Mutex::new(Schedule::default()), wake: Condvar::new() });
        let me = inner.clone();
        std::thread::Builder::new().name("health".into()).spawn(move || me.schedule_loop()).expect("spawn health scheduler");
        HealthMonitor { inner }
    }

    /// Starts checking container `id` (just started, bundle `bundle`). Its
    /// status starts as `starting`; `on_change` hears every change.
    pub fn watch(&self, id: &str, bundle: PathBuf, settings: HealthSettings, on_change: impl Fn(HealthStatus) + Send + Sync + 'static) {
        let now = Instant::now();
        let state = HealthState::default();
        let due = now + state.next_delay(&settings, std::time::Duration::ZERO);
        let mut s = self.inner.schedule.lock().unwrap();
        s.generation += 1;
        let generation = s.generation;
        s.watched.insert(
            id.to_string(),
            Watched { generation, bundle, settings, started: now, state, due, probing: false, on_change: Arc::new(on_change) },
        );
        drop(s);
        self.inner.wake.notify_all();
    }

    /// Stops checking `id` (its container ended). A probe under way is left
    /// to end with its container; its result is dropped.
    pub fn unwatch(&self, id: &str) {
        self.inner.schedule.lock().unwrap().watched.remove(id);
        self.inner.wake.notify_all();
    }

    /// The current status, streak and last results, for `inspect`.
    pub fn snapshot(&self, id: &str) -> Option<HealthSnapshot> {
        self.inner.schedule.lock().unwrap().watched.get(id).map(|w| w.state.snapshot())
    }
}

impl Drop for HealthMonitor {
    fn drop(&mut self) {
        self.inner.schedule.lock().unwrap().closed = true;
        self.inner.wake.notify_all();
    }
}

impl Inner {
    fn schedule_loop(self: Arc<Self>) {
        let mut s = self.schedule.lock().unwrap();
        loop {
            if s.closed {
                return;
            }
            let now = Instant::now();
            let mut next: Option<Instant> = None;
            for (id, w) in s.watched.iter_mut() {
                if w.probing {
                    continue;
                }
                if w.due <= now {
                    w.probing = true;
                    self.clone().start_probe(id.clone(), w);
                } else {
                    next = Some(next.map_or(w.due, |n| n.min(w.due)));
                }
            }
            s = match next {
                Some(t) => self.wake.wait_timeout(s, t.saturating_duration_since(now)).unwrap().0,
                None => self.wake.wait(s).unwrap(),
            };
        }
    }

    fn start_probe(self: Arc<Self>, id: String, w: &Watched) {
        let (generation, bundle, settings, started) = (w.generation, w.bundle.clone(), w.settings.clone(), w.started);
        let spawned =
            std::thread::Builder::new().name(format!("probe-{}", &id[..id.len().min(10)])).stack_size(256 * 1024).spawn(move || {
                let began = started.elapsed();
                let result = probe::run(&self.runc, &id, &bundle, &settings.command, settings.timeout);
                self.finish_probe(&id, generation, result, began);
            });
        if let Err(e) = spawned {
            tracing::warn!("starting a health probe: {e}");
        }
    }

    fn finish_probe(&self, id: &str, generation: u64, result: super::ProbeResult, began: std::time::Duration) {
        let mut s = self.schedule.lock().unwrap();
        let Some(w) = s.watched.get_mut(id).filter(|w| w.generation == generation) else { return };
        let change = w.state.record(&w.settings, result, began);
        w.due = Instant::now() + w.state.next_delay(&w.settings, w.started.elapsed());
        w.probing = false;
        let notify = change.map(|c| (w.on_change.clone(), c));
        drop(s);
        self.wake.notify_all();
        if let Some((f, status)) = notify {
            f(status);
        }
    }
}
