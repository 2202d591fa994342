//! Waiting for a service to converge, with docker's progress display
//! (`cli/command/service/progress`): "overall progress: 2 out of 3 tasks",
//! one line per slot (or node) with the task's state and a bar, then
//! "verify: Waiting 5 seconds to verify that tasks are stable..." and
//! "verify: Service <id> converged".
//!
//! On a terminal the lines are redrawn in place as docker's jsonmessage
//! renderer does (cursor up, erase line, cursor down). Otherwise only the
//! final state of each line is printed, once, when the wait ends.
//!
//! Unlike docker, the wait gives up after a deadline (30 s, or
//! `SHOAL_PROGRESS_TIMEOUT`: a Go duration or whole seconds) with docker's
//! Ctrl-C message ("Operation continuing in background."), so a service whose
//! tasks cannot run yet never hangs the command.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::client::path_segment;
use crate::commands::Env;
use crate::duration::parse_go_duration;
use crate::error::{CliError, CliResult};
use crate::filters::Filters;
use crate::format::truncate_id;
use serde_json::Value;

use crate::json::JsonExt;

pub const TIMEOUT_ENV: &str = "SHOAL_PROGRESS_TIMEOUT";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(200);
const DEFAULT_MONITOR: Duration = Duration::from_secs(5);

const MAX_PROGRESS: i64 = 9;
const MAX_PROGRESS_BARS: u64 = 20;
const MAX_JOB_PROGRESS: i64 = 10;
/// The longest state name shown ("allocated", "preparing").
const LONGEST_STATE: usize = 9;

fn state_num(s: &str) -> i64 {
    match s {
        "new" => 1,
        "allocated" => 2,
        "pending" => 3,
        "assigned" => 4,
        "accepted" => 5,
        "preparing" => 6,
        "ready" => 7,
        "starting" => 8,
        "running" => 9,
        "complete" => 10,
        "shutdown" => 11,
        "failed" => 12,
        "rejected" => 13,
        _ => 0,
    }
}

fn terminal_state(s: &str) -> bool {
    state_num(s) > state_num("running")
}

fn state(t: &Value) -> &str {
    t.at(&["Status", "State"]).str()
}

fn desired(t: &Value) -> &str {
    t["DesiredState"].str()
}

/// Newlines out, at most 75 characters (docker's `truncError`).
fn trunc_error(msg: &str) -> String {
    let msg = msg.replace('\n', " ");
    if msg.len() <= 75 {
        return msg;
    }
    let mut end = 74;
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &msg[..end])
}

// ------------------------------------------------------------- rendering

/// How the progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Redrawn in place; the terminal's width decides whether bars show.
    Tty { width: usize },
    /// The final state of each line, printed at the end.
    Final,
    /// Nothing (`--quiet`).
    Quiet,
}

/// docker's jsonmessage renderer fed by a progress output.
pub struct Display {
    mode: Mode,
    /// Bytes for the terminal not yet written.
    pending: String,
    /// Terminal: the line of each ID in the current block.
    ids: HashMap<String, usize>,
    /// Final mode: the screen as it would look at the end.
    lines: Vec<String>,
}

impl Display {
    pub fn new(mode: Mode) -> Display {
        Display { mode, pending: String::new(), ids: HashMap::new(), lines: Vec::new() }
    }

    /// A progress update (`progress.Progress` with an action).
    pub fn progress(&mut self, id: &str, action: &str, current: i64, total: i64) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Tty { width } => {
                let bar = progress_bar(current, total, width);
                if id.is_empty() {
                    self.ids.clear();
                    self.pending.push_str(&format!("\x1b[2K\r{action} {bar}\r"));
                    return;
                }
                let n = self.ids.len();
                let line = *self.ids.entry(id.to_string()).or_insert(n);
                if line == n {
                    self.pending.push('\n');
                }
                let diff = self.ids.len() - line;
                self.pending.push_str(&format!("\x1b[{diff}A\x1b[2K\r{id}: {action} {bar}\r\x1b[{diff}B"));
            }
            Mode::Final => {
                let text = if id.is_empty() { action.to_string() } else { format!("{id}: {action}") };
                let text = text.trim_end().to_string();
                if id.is_empty() {
                    self.ids.clear();
                    self.lines.push(text);
                    return;
                }
                match self.ids.get(id) {
                    Some(&i) => self.lines[i] = text,
                    None => {
                        self.ids.insert(id.to_string(), self.lines.len());
                        self.lines.push(text);
                    }
                }
            }
        }
    }

    /// A message line (`progress.Message`): never redrawn.
    pub fn message(&mut self, id: &str, msg: &str) {
        self.ids.clear();
        let text = if id.is_empty() { msg.to_string() } else { format!("{id}: {msg}") };
        match self.mode {
            Mode::Quiet => {}
            Mode::Tty { .. } => {
                self.pending.push_str(&text);
                self.pending.push('\n');
            }
            Mode::Final => self.lines.push(text),
        }
    }

    /// What to write now: terminal updates as they come, final lines at the end.
    pub fn take(&mut self, finished: bool) -> String {
        let mut out = std::mem::take(&mut self.pending);
        if finished && self.mode == Mode::Final {
            for l in self.lines.drain(..) {
                out.push_str(&l);
                out.push('\n');
            }
        }
        out
    }
}

/// docker's `JSONProgress.String()` for the counts-hidden bars the service
/// progress uses: a 50-wide bar when the terminal is wider than 110 columns.
fn progress_bar(current: i64, total: i64, width: usize) -> String {
    if current <= 0 && total <= 0 {
        return String::new();
    }
    if total <= 0 {
        return format!("{current:>8}");
    }
    let pct = (((current as f64 / total as f64) * 100.0) as i64 / 2).clamp(0, 50) as usize;
    if width > 110 {
        format!("[{}>{}] ", "=".repeat(pct), " ".repeat(50 - pct))
    } else {
        String::new()
    }
}

// -------------------------------------------------------------- updaters

fn write_overall(d: &mut Display, n: u64, of: u64, rollback: bool) {
    let action = if rollback { format!("rolling back update: {n} out of {of} tasks") } else { format!("{n} out of {of} tasks") };
    d.progress("overall progress", &action, 0, 0);
}

/// Progress of one task on its line: the error if any, else its state
/// while neither it nor its desired state is terminal.
fn write_task(d: &mut Display, id: &str, task: &Value, max: i64, always: bool) {
    let err = task.at(&["Status", "Err"]).str();
    if !err.is_empty() {
        d.progress(id, &trunc_error(err), 0, 0);
        return;
    }
    if always || (!terminal_state(desired(task)) && !terminal_state(state(task))) {
        d.progress(id, &format!("{:<LONGEST_STATE$}", state(task)), state_num(state(task)), max);
    }
}

/// Of two tasks for one slot (or node), the one to show: the lower desired
/// state, then the lower observed state.
fn prefer_existing(existing: &Value, task: &Value) -> bool {
    let (ed, td) = (state_num(desired(existing)), state_num(desired(task)));
    ed < td || (ed == td && state_num(state(existing)) <= state_num(state(task)))
}

enum Updater {
    Replicated { slot_map: HashMap<u64, u64>, initialized: bool, done: bool },
    Global { initialized: bool, done: bool },
    ReplicatedJob { job_iteration: u64, concurrent: u64, total: u64, initialized: bool },
    GlobalJob { initialized: bool, total: u64, task_nodes: BTreeSet<String> },
}

fn job_iteration(service: &Value) -> u64 {
    service.at(&["JobStatus", "JobIteration", "Index"]).as_u64().unwrap_or(0)
}

fn task_iteration(task: &Value) -> Option<u64> {
    let it = &task["JobIteration"];
    if it.is_null() {
        None
    } else {
        Some(it["Index"].as_u64().unwrap_or(0))
    }
}

impl Updater {
    fn new(service: &Value) -> CliResult<Updater> {
        let mode = service.at(&["Spec", "Mode"]);
        if !mode.at(&["Replicated", "Replicas"]).is_null() {
            return Ok(Updater::Replicated { slot_map: HashMap::new(), initialized: false, done: false });
        }
        if mode.has("Global") {
            return Ok(Updater::Global { initialized: false, done: false });
        }
        if mode.has("ReplicatedJob") {
            let j = &mode["ReplicatedJob"];
            return Ok(Updater::ReplicatedJob {
                job_iteration: job_iteration(service),
                concurrent: j["MaxConcurrent"].as_u64().unwrap_or(0),
                total: j["TotalCompletions"].as_u64().unwrap_or(0),
                initialized: false,
            });
        }
        if mode.has("GlobalJob") {
            return Ok(Updater::GlobalJob { initialized: false, total: 0, task_nodes: BTreeSet::new() });
        }
        Err(CliError::new("unrecognized service mode"))
    }

    fn update(&mut self, d: &mut Display, service: &Value, tasks: &[Value], active: &BTreeSet<String>, rollback: bool) -> CliResult<bool> {
        match self {
            Updater::Replicated { slot_map, initialized, done } => {
                let Some(replicas) = service.at(&["Spec", "Mode", "Replicated", "Replicas"]).as_u64() else {
                    return Err(CliError::new("no replica count"));
                };
                if !*initialized {
                    write_overall(d, 0, replicas, rollback);
                    if replicas <= MAX_PROGRESS_BARS {
                        for i in 1..=replicas {
                            d.progress(&format!("{i}/{replicas}"), " ", 0, 0);
                        }
                    }
                    *initialized = true;
                }
                let mut by_slot: BTreeMap<u64, &Value> = BTreeMap::new();
                for t in tasks {
                    if state_num(desired(t)) == 0 || state_num(state(t)) == 0 {
                        continue;
                    }
                    let slot = t["Slot"].as_u64().unwrap_or(0);
                    if let Some(existing) = by_slot.get(&slot) {
                        if prefer_existing(existing, t) {
                            continue;
                        }
                    }
                    let node = t["NodeID"].str();
                    if !node.is_empty() && !active.contains(node) {
                        continue;
                    }
                    by_slot.insert(slot, t);
                }
                if *done && by_slot.values().any(|t| state(t) != "running") {
                    *done = false;
                }
                let mut running = 0;
                for (slot, t) in &by_slot {
                    let next = slot_map.len() as u64 + 1;
                    let mapped = *slot_map.entry(*slot).or_insert(next);
                    if !terminal_state(desired(t)) && state(t) == "running" {
                        running += 1;
                    }
                    if !*done && replicas <= MAX_PROGRESS_BARS && mapped <= replicas {
                        write_task(d, &format!("{mapped}/{replicas}"), t, MAX_PROGRESS, false);
                    }
                }
                if !*done {
                    write_overall(d, running, replicas, rollback);
                    if running == replicas {
                        *done = true;
                    }
                }
                Ok(running == replicas)
            }
            Updater::Global { initialized, done } => {
                let mut by_node: BTreeMap<&str, &Value> = BTreeMap::new();
                for t in tasks {
                    if state_num(desired(t)) == 0 || state_num(state(t)) == 0 {
                        continue;
                    }
                    let node = t["NodeID"].str();
                    if let Some(existing) = by_node.get(node) {
                        if prefer_existing(existing, t) {
                            continue;
                        }
                    }
                    by_node.insert(node, t);
                }
                let node_count = by_node.len() as u64;
                if !*initialized {
                    if node_count == 0 {
                        d.progress("overall progress", "waiting for new tasks", 0, 0);
                        return Ok(false);
                    }
                    write_overall(d, 0, node_count, rollback);
                    *initialized = true;
                }
                if *done && by_node.values().any(|t| state(t) != "running") {
                    *done = false;
                }
                let mut running = 0;
                for (node, t) in &by_node {
                    if active.contains(*node) {
                        if !terminal_state(desired(t)) && state(t) == "running" {
                            running += 1;
                        }
                        if !*done && node_count <= MAX_PROGRESS_BARS {
                            write_task(d, &truncate_id(node), t, MAX_PROGRESS, false);
                        }
                    }
                }
                if !*done {
                    write_overall(d, running, node_count, rollback);
                    if running == node_count {
                        *done = true;
                    }
                }
                Ok(running == node_count)
            }
            Updater::ReplicatedJob { job_iteration, concurrent, total, initialized } => {
                let (total, concurrent) = (*total, *concurrent);
                if !*initialized {
                    write_job_overall(d, total, concurrent, 0, 0);
                    if total <= MAX_PROGRESS_BARS {
                        for i in 1..=total {
                            d.progress(&format!("{i}/{total}"), " ", 0, 0);
                        }
                    }
                    *initialized = true;
                }
                let mut by_slot: BTreeMap<u64, &Value> = BTreeMap::new();
                for t in tasks {
                    if task_iteration(t) != Some(*job_iteration) {
                        continue;
                    }
                    if state_num(desired(t)) == 0 || state_num(state(t)) == 0 {
                        continue;
                    }
                    let slot = t["Slot"].as_u64().unwrap_or(0);
                    match by_slot.get(&slot) {
                        Some(existing) if state_num(state(existing)) <= state_num(state(t)) => {}
                        _ => {
                            by_slot.insert(slot, t);
                        }
                    }
                }
                let (mut active_tasks, mut complete) = (0, 0);
                let empty = Value::Null;
                for i in 0..by_slot.len() as u64 {
                    let t = by_slot.get(&i).copied().unwrap_or(&empty);
                    if total <= MAX_PROGRESS_BARS {
                        let slot = t["Slot"].as_u64().unwrap_or(0);
                        write_task(d, &format!("{}/{total}", slot + 1), t, MAX_JOB_PROGRESS, true);
                    }
                    if state_num(state(t)) < state_num("complete") {
                        active_tasks += 1;
                    }
                    if state(t) == "complete" {
                        complete += 1;
                    }
                }
                write_job_overall(d, total, concurrent, active_tasks, complete);
                Ok(complete == total)
            }
            Updater::GlobalJob { initialized, total, task_nodes } => {
                let iteration = job_iteration(service);
                if !*initialized {
                    if tasks.is_empty() && !active.is_empty() {
                        d.progress("job progress", "waiting for tasks", 0, 0);
                        return Ok(false);
                    }
                    for t in tasks {
                        if task_iteration(t) == Some(iteration) {
                            task_nodes.insert(t["NodeID"].str().to_string());
                        }
                    }
                    *total = task_nodes.len() as u64;
                    write_global_job_overall(d, *total, 0);
                    *initialized = true;
                }
                let mut by_node: BTreeMap<&str, &Value> = BTreeMap::new();
                for t in tasks {
                    let node = t["NodeID"].str();
                    if task_iteration(t) != Some(iteration) || !task_nodes.contains(node) {
                        continue;
                    }
                    match by_node.get(node) {
                        Some(old) if state_num(state(old)) <= state_num(state(t)) => {}
                        _ => {
                            by_node.insert(node, t);
                        }
                    }
                }
                let mut complete = 0;
                for (node, t) in &by_node {
                    if *total <= MAX_PROGRESS_BARS {
                        write_task(d, node, t, MAX_JOB_PROGRESS, true);
                    }
                    if state(t) == "complete" {
                        complete += 1;
                    }
                }
                write_global_job_overall(d, *total, complete);
                Ok(complete == *total)
            }
        }
    }
}

fn write_job_overall(d: &mut Display, total: u64, concurrent: u64, active: u64, completed: u64) {
    let pw = total.to_string().len();
    let aw = concurrent.to_string().len();
    d.progress("job progress", &format!("{completed:>pw$} out of {total} complete"), completed as i64, total as i64);
    let actual = (total - completed.min(total)).min(concurrent);
    d.progress("active tasks", &format!("{active:>aw$} out of {actual:>aw$} tasks"), 0, 0);
}

fn write_global_job_overall(d: &mut Display, total: u64, complete: u64) {
    let pw = total.to_string().len();
    d.progress("job progress", &format!("{complete:>pw$} out of {total} complete"), complete as i64, total as i64);
}

// ------------------------------------------------------------------ wait

use nix::sys::signal::{signal, SigHandler, Signal};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Catches Ctrl-C while waiting, as docker does, and restores the previous
/// disposition when dropped.
struct SigintGuard {
    previous: Option<SigHandler>,
}

impl SigintGuard {
    fn install() -> SigintGuard {
        INTERRUPTED.store(false, Ordering::SeqCst);
        // SAFETY: the handler only stores to an atomic.
        let previous = unsafe { signal(Signal::SIGINT, SigHandler::Handler(on_sigint)) }.ok();
        SigintGuard { previous }
    }
}

impl Drop for SigintGuard {
    fn drop(&mut self) {
        if let Some(previous) = self.previous {
            // SAFETY: puts back the disposition `install` replaced.
            let _ = unsafe { signal(Signal::SIGINT, previous) };
        }
    }
}

/// The deadline from `SHOAL_PROGRESS_TIMEOUT` ("45s", "2m", or "45").
pub fn timeout_from(value: Option<&str>) -> Duration {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return DEFAULT_TIMEOUT;
    };
    if let Ok(secs) = v.parse::<u64>() {
        return Duration::from_secs(secs);
    }
    match parse_go_duration(v) {
        Ok(ns) if ns >= 0 => Duration::from_nanos(ns as u64),
        _ => DEFAULT_TIMEOUT,
    }
}

/// How this process's stdout shows progress.
pub fn stdout_mode(quiet: bool) -> Mode {
    use std::io::IsTerminal;
    if quiet {
        Mode::Quiet
    } else if !cfg!(test) && std::io::stdout().is_terminal() {
        Mode::Tty { width: crate::term::stdout_width() }
    } else {
        Mode::Final
    }
}

/// docker's `WaitOnService`: shows progress until the service converges,
/// the deadline passes or Ctrl-C is pressed.
pub fn wait_on_service(env: &mut Env, service_id: &str, quiet: bool) -> CliResult {
    let _guard = SigintGuard::install();
    let timeout = timeout_from(std::env::var(TIMEOUT_ENV).ok().as_deref());
    let mut display = Display::new(stdout_mode(quiet));
    let result = watch(env, service_id, &mut display, Instant::now() + timeout, POLL);
    let rest = display.take(true);
    env.print(&rest)?;
    let _ = env.out.flush();
    result
}

fn fetch_tasks(env: &Env, service: &Value) -> CliResult<Vec<Value>> {
    let mut f = Filters::new();
    f.add("service", service["ID"].str());
    let tasks = env.client.get(&format!("/tasks{}", f.query()))?;
    // docker asks for `_up-to-date`: tasks running the current spec.
    let template = service.at(&["Spec", "TaskTemplate"]);
    Ok(tasks.items().iter().filter(|t| t["Spec"] == *template).cloned().collect())
}

fn active_nodes(env: &Env) -> CliResult<BTreeSet<String>> {
    let nodes = env.client.get("/nodes")?;
    Ok(nodes.items().iter().filter(|n| n.at(&["Status", "State"]).str() != "down").map(|n| n["ID"].str().to_string()).collect())
}

/// The polling loop (docker's `ServiceProgress`).
pub fn watch(env: &mut Env, service_id: &str, d: &mut Display, deadline: Instant, poll: Duration) -> CliResult {
    let mut updater: Option<Updater> = None;
    let mut converged = false;
    let mut converged_at: Option<Instant> = None;
    let mut monitor = DEFAULT_MONITOR;
    let mut rollback = false;
    let mut message: Option<String> = None;
    loop {
        let service = env.client.get(&format!("/services/{}", path_segment(service_id)))?;
        let m = service.at(&["Spec", "UpdateConfig", "Monitor"]).as_i64().unwrap_or(0);
        if m > 0 {
            monitor = Duration::from_nanos(m as u64);
        }
        if updater.is_none() {
            updater = Some(Updater::new(&service)?);
        }
        let status = &service["UpdateStatus"];
        let status_msg = status["Message"].str();
        match status["State"].str() {
            "updating" => rollback = false,
            "completed" if !converged => return Ok(()),
            "paused" => return Err(CliError::new(format!("service update paused: {status_msg}"))),
            "rollback_started" => {
                if !rollback && !status_msg.is_empty() {
                    d.progress("rollback", status_msg, 0, 0);
                }
                rollback = true;
            }
            "rollback_paused" => return Err(CliError::new(format!("service rollback paused: {status_msg}"))),
            "rollback_completed" => {
                if !converged {
                    message = Some(status_msg.to_string());
                }
                rollback = true;
            }
            _ => {}
        }
        if let (true, Some(at)) = (converged, converged_at) {
            if at.elapsed() >= monitor {
                d.progress("verify", &format!("Service {service_id} converged"), 0, 0);
                if let Some(m) = &message {
                    d.message("rollback", m);
                }
                return Ok(());
            }
        }

        let tasks = fetch_tasks(env, &service)?;
        let active = active_nodes(env)?;
        converged = updater.as_mut().expect("set above").update(d, &service, &tasks, &active, rollback)?;
        if converged {
            if !service["JobStatus"].is_null() {
                d.message("", "job complete");
                return Ok(());
            }
            let at = *converged_at.get_or_insert_with(Instant::now);
            let elapsed = at.elapsed();
            if elapsed <= monitor {
                let wait = monitor - elapsed;
                d.progress("verify", &format!("Waiting {} seconds to verify that tasks are stable...", wait.as_secs() + 1), 0, 0);
            }
        } else {
            if converged_at.is_some() {
                d.progress("verify", "Detected task failure", 0, 0);
            }
            converged_at = None;
        }
        let now = d.take(false);
        if !now.is_empty() {
            env.print(&now)?;
            let _ = env.out.flush();
        }

        // Sleep until the next poll, unless interrupted or out of time.
        let wake = Instant::now() + poll;
        loop {
            let stop = INTERRUPTED.load(Ordering::SeqCst) || Instant::now() >= deadline;
            if stop {
                if !converged {
                    d.message("", "Operation continuing in background.");
                    d.message("", &format!("Use `{} service ps {service_id}` to check progress.", env.prog));
                }
                return Ok(());
            }
            let now = Instant::now();
            if now >= wake {
                break;
            }
            std::thread::sleep((wake - now).min(Duration::from_millis(20)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::FakeDaemon;

    fn task(slot: u64, node: &str, st: &str, desired: &str, err: &str) -> String {
        format!(
            r#"{{"ID":"t{slot}{st}","ServiceID":"svc","Slot":{slot},"NodeID":"{node}","DesiredState":"{desired}","Spec":{{"ContainerSpec":{{"Image":"busybox"}}}},"Status":{{"State":"{st}","Err":"{err}"}}}}"#
        )
    }

    const SERVICE: &str =
        r#"{"ID":"svc","Spec":{"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"busybox"}},"Mode":{"Replicated":{"Replicas":3}}}}"#;
    const NODES: &str = r#"[{"ID":"n1","Status":{"State":"ready"}},{"ID":"n2","Status":{"State":"down"}}]"#;

    fn run_watch(tasks: String, mode: Mode, timeout: Duration) -> (CliResult, String) {
        let d = FakeDaemon::start(move |req| match (req.method.as_str(), req.target.as_str()) {
            ("GET", "/v1.44/services/web") => (200, SERVICE.into()),
            ("GET", t) if t.starts_with("/v1.44/tasks?filters=") => (200, tasks.clone()),
            ("GET", "/v1.44/nodes") => (200, NODES.into()),
            _ => (404, r#"{"message":"nope"}"#.into()),
        });
        let client = d.client();
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut display = Display::new(mode);
        let r = {
            let mut env = Env { client: &client, out: &mut out, err: &mut err, prog: "shoal".into() };
            let r = watch(&mut env, "web", &mut display, Instant::now() + timeout, Duration::from_millis(10));
            let rest = display.take(true);
            env.print(&rest).unwrap();
            r
        };
        (r, String::from_utf8(out).unwrap())
    }

    #[test]
    fn gives_up_at_the_deadline_with_dockers_background_message() {
        let tasks = format!(
            "[{},{},{}]",
            task(1, "n1", "assigned", "running", ""),
            task(2, "n1", "pending", "running", "no suitable node (1 node not available for new tasks)"),
            // on a down node: not shown
            task(3, "n2", "running", "running", "")
        );
        let (r, out) = run_watch(tasks, Mode::Final, Duration::from_millis(50));
        r.unwrap();
        assert_eq!(
            out,
            "overall progress: 0 out of 3 tasks\n\
             1/3: assigned\n\
             2/3: no suitable node (1 node not available for new tasks)\n\
             3/3:\n\
             Operation continuing in background.\n\
             Use `shoal service ps web` to check progress.\n"
        );
    }

    #[test]
    fn converges_after_the_monitor_period() {
        let tasks = format!("[{}]", (1..=3).map(|i| task(i, "n1", "running", "running", "")).collect::<Vec<_>>().join(","));
        // with a short monitor so the test is quick
        let d = FakeDaemon::start(move |req| match (req.method.as_str(), req.target.as_str()) {
            ("GET", "/v1.44/services/web") => (200, SERVICE.replace(r#""Mode""#, r#""UpdateConfig":{"Monitor":50000000},"Mode""#)),
            ("GET", t) if t.starts_with("/v1.44/tasks?filters=") => (200, tasks.clone()),
            ("GET", "/v1.44/nodes") => (200, NODES.into()),
            _ => (404, r#"{"message":"nope"}"#.into()),
        });
        let client = d.client();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut display = Display::new(Mode::Final);
        {
            let mut env = Env { client: &client, out: &mut out, err: &mut err, prog: "shoal".into() };
            watch(&mut env, "web", &mut display, Instant::now() + Duration::from_secs(20), Duration::from_millis(10)).unwrap();
            let rest = display.take(true);
            env.print(&rest).unwrap();
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "overall progress: 3 out of 3 tasks\n1/3: running\n2/3: running\n3/3: running\nverify: Service web converged\n"
        );
    }

    #[test]
    fn terminal_rendering_redraws_lines_in_place() {
        let mut d = Display::new(Mode::Tty { width: 120 });
        d.progress("overall progress", "0 out of 2 tasks", 0, 0);
        d.progress("1/2", " ", 0, 0);
        d.progress("1/2", "assigned ", 4, 9);
        d.message("", "Operation continuing in background.");
        assert_eq!(
            d.take(false),
            "\n\x1b[1A\x1b[2K\roverall progress: 0 out of 2 tasks \r\x1b[1B\
             \n\x1b[1A\x1b[2K\r1/2:   \r\x1b[1B\
             \x1b[1A\x1b[2K\r1/2: assigned  [======================>                            ] \r\x1b[1B\
             Operation continuing in background.\n"
        );
        let mut narrow = Display::new(Mode::Tty { width: 80 });
        narrow.progress("1/2", "assigned ", 4, 9);
        assert_eq!(narrow.take(false), "\n\x1b[1A\x1b[2K\r1/2: assigned  \r\x1b[1B");
    }

    #[test]
    fn errors_are_truncated_and_timeouts_parsed() {
        let long = "x".repeat(80);
        assert_eq!(trunc_error(&long).chars().count(), 75);
        assert_eq!(trunc_error("a\nb"), "a b");
        assert_eq!(timeout_from(None), Duration::from_secs(30));
        assert_eq!(timeout_from(Some("5")), Duration::from_secs(5));
        assert_eq!(timeout_from(Some("1m30s")), Duration::from_secs(90));
        assert_eq!(timeout_from(Some("bogus")), Duration::from_secs(30));
    }
}
