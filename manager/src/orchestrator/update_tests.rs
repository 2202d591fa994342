//! The rolling updater and the restart supervisor driven through a small
//! simulated cluster: each step runs the orchestrators, commits their
//! changes through the real store `apply`, then plays scheduler and worker
//! (places pending tasks, starts them, stops those told to stop).

use std::time::{Duration, UNIX_EPOCH};

use shoal_api::service::{Service, ServiceMode, ServiceSpec, UpdateConfig};
use shoal_api::task::{ContainerSpec, RestartCondition, RestartPolicy, Task, TaskState};
use shoal_api::{Node, NodeState};

use super::reconcile;
use crate::store::{apply, Command, Envelope, Store};

struct Sim {
    st: Store,
    secs: u64,
    index: u64,
    /// Tasks told to stop take one step to stop (so stop-first shows).
    slow_stop: bool,
}

fn at(secs: u64) -> String {
    shoal_api::time::rfc3339(UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs))
}

fn spec(image: &str, replicas: u64, update: Option<UpdateConfig>) -> ServiceSpec {
    let mut s = ServiceSpec { name: "web".into(), mode: ServiceMode::Replicated { replicas }, update_config: update, ..Default::default() };
    s.task_template.container_spec = Some(ContainerSpec { image: image.into(), ..Default::default() });
    s
}

impl Sim {
    fn new(spec: ServiceSpec) -> Sim {
        let mut sim = Sim { st: Store::default(), secs: 0, index: 10, slow_stop: false };
        for n in ["n1", "n2", "n3"] {
            let mut node = Node { id: n.into(), ..Default::default() };
            node.status.state = NodeState::Ready;
            sim.st.nodes.insert(n.into(), node);
        }
        let service = Service { id: "s".into(), spec, ..Default::default() };
        sim.commit(Command::CreateService { service: Box::new(service), registry_auth: None }).unwrap();
        sim
    }

    fn commit(&mut self, command: Command) -> Result<(), shoal_api::ApiError> {
        self.index += 1;
        apply(&mut self.st, self.index, Envelope { proposal: 0, at: at(self.secs), command }).map(|_| ()).map_err(Into::into)
    }

    fn svc(&self) -> &Service {
        &self.st.services["s"]
    }

    fn update(&mut self, spec: ServiceSpec) {
        let version = self.svc().version.index;
        self.commit(Command::UpdateService { id: "s".into(), version, spec: Box::new(spec), rollback: false, registry_auth: None })
            .unwrap();
    }

    /// One second of the cluster: orchestrate, commit, then the workers act.
    fn step(&mut self) {
        self.secs += 1;
        let now = at(self.secs);
        let c = reconcile(&self.st, &now);
        for cmd in c.into_commands() {
            self.commit(cmd).unwrap();
        }
        let mut n = 0;
        for t in self.st.tasks.values_mut() {
            n += 1;
            let image = t.spec.container_spec.as_ref().map(|c| c.image.clone()).unwrap_or_default();
            if t.desired_state >= TaskState::Shutdown {
                // A task told to stop stops at once, or (slow_stop) is seen
                // stopping for one step first.
                if t.status.state == TaskState::Running && (!self.slow_stop || t.status.message == "stopping") {
                    t.status.state = TaskState::Shutdown;
                    t.status.timestamp = now.clone();
                } else if t.status.state == TaskState::Running {
                    t.status.message = "stopping".into();
                }
                continue;
            }
            match t.status.state {
                TaskState::Pending => {
                    if t.node_id.is_empty() {
                        t.node_id = format!("n{}", n % 3 + 1);
                    }
                    t.status.state = TaskState::Assigned;
                    t.status.timestamp = now.clone();
                }
                TaskState::Assigned if image == "bad" => {
                    t.status.state = TaskState::Failed;
                    t.status.timestamp = now.clone();
                }
                TaskState::Assigned => {
                    t.status.state = TaskState::Running;
                    t.status.timestamp = now.clone();
                }
                // "job" runs for one step, "badjob" fails after one step.
                TaskState::Running if image == "job" || image == "badjob" => {
                    t.status.state = if image == "job" { TaskState::Complete } else { TaskState::Failed };
                    t.status.timestamp = now.clone();
                }
                _ => {}
            }
        }
    }

    fn running(&self, image: &str) -> usize {
        self.st
            .tasks
            .values()
            .filter(|t| t.status.state == TaskState::Running)
            .filter(|t| t.spec.container_spec.as_ref().map(|c| c.image == image).unwrap_or(false))
            .count()
    }

    fn state(&self) -> String {
        self.svc().update_status.as_ref().map(|s| s.state.clone()).unwrap_or_default()
    }

    fn run_until(&mut self, limit: u64, done: impl Fn(&Sim) -> bool) {
        for _ in 0..limit {
            if done(self) {
                return;
            }
            self.step();
        }
        panic!("not done after {limit} steps: update status {:?}", self.svc().update_status);
    }
}

fn config(parallelism: u64, delay_secs: i64, action: &str, order: &str) -> Option<UpdateConfig> {
    Some(UpdateConfig {
        parallelism,
        delay: delay_secs * 1_000_000_000,
        failure_action: action.into(),
        monitor: 2_000_000_000,
        order: order.into(),
        ..Default::default()
    })
}

#[test]
fn a_rolling_update_replaces_tasks_by_parallelism_then_completes() {
    let cfg = config(2, 0, "pause", "");
    let mut sim = Sim::new(spec("v1", 6, cfg.clone()));
    sim.run_until(10, |s| s.running("v1") == 6);
    sim.update(spec("v2", 6, cfg));
    let (mut seen_new, mut batches) = (0, Vec::new());
    while sim.state() != "completed" {
        assert!(sim.secs < 60, "not completed: {:?}", sim.svc().update_status);
        sim.step();
        let created = sim.st.tasks.values().filter(|t| t.spec.container_spec.as_ref().unwrap().image == "v2").count();
        if created > seen_new {
            batches.push(created - seen_new);
            seen_new = created;
        }
        assert!(sim.running("v1") + sim.running("v2") >= 4, "never more than 2 slots down at once");
    }
    assert_eq!(batches, vec![2, 2, 2], "two at a time");
    assert_eq!(sim.running("v2"), 6);
    assert_eq!(sim.running("v1"), 0);
    let status = sim.svc().update_status.clone().unwrap();
    assert_eq!(status.message, "update completed");
    assert!(status.completed_at.is_some() && status.started_at.is_some());
}

#[test]
fn the_delay_spaces_the_batches() {
    let cfg = config(1, 5, "pause", "");
    let mut sim = Sim::new(spec("v1", 3, cfg.clone()));
    sim.run_until(10, |s| s.running("v1") == 3);
    sim.update(spec("v2", 3, cfg));
    let start = sim.secs;
    sim.run_until(60, |s| s.running("v2") == 3);
    // Three slots one by one, 5 s apart after each started running.
    assert!(sim.secs - start >= 10, "took {} s", sim.secs - start);
}

#[test]
fn a_failing_update_pauses_by_default() {
    let cfg = config(1, 0, "pause", "");
    let mut sim = Sim::new(spec("v1", 4, cfg.clone()));
    sim.run_until(10, |s| s.running("v1") == 4);
    sim.update(spec("bad", 4, cfg));
    sim.run_until(20, |s| s.state() == "paused");
    let status = sim.svc().update_status.clone().unwrap();
    assert!(status.message.starts_with("update paused due to failure or early termination of task "), "{}", status.message);
    for _ in 0..10 {
        sim.step();
    }
    assert_eq!(sim.running("v1"), 3, "the other slots keep the old spec while paused");
}

#[test]
fn failure_action_rollback_returns_to_the_previous_spec() {
    let cfg = config(2, 0, "rollback", "");
    let mut sim = Sim::new(spec("v1", 4, cfg.clone()));
    sim.run_until(10, |s| s.running("v1") == 4);
    sim.update(spec("bad", 4, cfg));
    sim.run_until(20, |s| s.state() == "rollback_started");
    let status = sim.svc().update_status.clone().unwrap();
    assert!(status.message.starts_with("update rolled back due to failure or early termination of task "), "{}", status.message);
    assert_eq!(sim.svc().spec.task_template.container_spec.as_ref().unwrap().image, "v1");
    sim.run_until(30, |s| s.state() == "rollback_completed");
    assert_eq!(sim.running("v1"), 4);
    assert_eq!(sim.svc().update_status.as_ref().unwrap().message, "rollback completed");
}

#[test]
fn a_manual_rollback_is_reported_and_completes() {
    let cfg = config(0, 0, "pause", "");
    let mut sim = Sim::new(spec("v1", 3, cfg.clone()));
    sim.run_until(10, |s| s.running("v1") == 3);
    sim.update(spec("v2", 3, cfg));
    sim.run_until(20, |s| s.state() == "completed");
    let version = sim.svc().version.index;
    sim.commit(Command::UpdateService { id: "s".into(), version, spec: Box::default(), rollback: true, registry_auth: None }).unwrap();
    assert_eq!(sim.state(), "rollback_started");
    assert_eq!(sim.svc().update_status.as_ref().unwrap().message, "manually requested rollback");
    sim.run_until(20, |s| s.state() == "rollback_completed");
    assert_eq!(sim.running("v1"), 3);
}

#[test]
fn start_first_keeps_every_slot_running() {
    let cfg = config(1, 0, "pause", "start-first");
    let mut sim = Sim::new(spec("v1", 3, cfg.clone()));
    sim.run_until(10, |s| s.running("v1") == 3);
    sim.update(spec("v2", 3, cfg));
    for _ in 0..20 {
        sim.step();
        assert!(sim.running("v1") + sim.running("v2") >= 3);
    }
    assert_eq!(sim.running("v2"), 3);
}

#[test]
fn stop_first_waits_for_the_old_task_to_stop() {
    let cfg = config(1, 0, "pause", "stop-first");
    let mut sim = Sim::new(spec("v1", 2, cfg.clone()));
    sim.slow_stop = true;
    sim.run_until(10, |s| s.running("v1") == 2);
    sim.update(spec("v2", 2, cfg));
    for _ in 0..20 {
        sim.step();
        let live_v2 = sim.st.tasks.values().filter(|t| t.spec.container_spec.as_ref().unwrap().image == "v2").count();
        let stopping = sim.st.tasks.values().filter(|t| t.status.message == "stopping" && t.status.state == TaskState::Running).count();
        assert!(!(stopping > 0 && live_v2 > sim.running("v2")), "a replacement was created while the old task was stopping");
    }
    assert_eq!(sim.running("v2"), 2);
}

#[test]
fn restart_max_attempts_stops_retrying() {
    let mut s = spec("bad", 1, None);
    s.task_template.restart_policy =
        Some(RestartPolicy { condition: Some(RestartCondition::OnFailure), delay: Some(0), max_attempts: Some(2), window: None });
    let mut sim = Sim::new(s);
    for _ in 0..30 {
        sim.step();
    }
    let tasks: Vec<&Task> = sim.st.tasks.values().collect();
    assert_eq!(tasks.len(), 3, "the first run and two restarts: {tasks:#?}");
    assert!(tasks.iter().all(|t| t.status.state == TaskState::Failed));
}

#[test]
fn restart_window_counts_only_recent_attempts() {
    let mut s = spec("bad", 1, None);
    s.task_template.restart_policy = Some(RestartPolicy {
        condition: Some(RestartCondition::Any),
        delay: Some(3_000_000_000),
        max_attempts: Some(1),
        window: Some(2_000_000_000),
    });
    let mut sim = Sim::new(s);
    for _ in 0..30 {
        sim.step();
    }
    // With a 3 s delay no earlier attempt is ever inside the 2 s window.
    assert!(sim.st.tasks.len() > 3, "{} tasks", sim.st.tasks.len());
}

#[test]
fn a_global_service_updates_node_by_node() {
    let mut s = spec("v1", 0, config(1, 0, "pause", ""));
    s.mode = ServiceMode::Global;
    let mut sim = Sim::new(s.clone());
    for _ in 0..4 {
        sim.step();
    }
    assert_eq!(sim.running("v1"), 3);
    s.task_template.container_spec.as_mut().unwrap().image = "v2".into();
    sim.update(s);
    while sim.state() != "completed" {
        assert!(sim.secs < 60, "not completed: {:?}", sim.svc().update_status);
        sim.step();
        assert!(sim.running("v1") + sim.running("v2") >= 2, "one node at a time");
    }
    assert_eq!(sim.running("v2"), 3);
    let nodes: std::collections::BTreeSet<_> =
        sim.st.tasks.values().filter(|t| t.status.state == TaskState::Running).map(|t| t.node_id.clone()).collect();
    assert_eq!(nodes.len(), 3);
}

fn job(image: &str, mode: ServiceMode) -> ServiceSpec {
    let mut s = spec(image, 0, None);
    s.mode = mode;
    s
}

#[test]
fn a_replicated_job_runs_its_completions_a_few_at_a_time() {
    let mut sim = Sim::new(job("job", ServiceMode::ReplicatedJob { max_concurrent: Some(2), total_completions: Some(5) }));
    let mut most = 0;
    for _ in 0..30 {
        sim.step();
        let active = sim.st.tasks.values().filter(|t| !t.status.state.is_terminal()).count();
        most = most.max(active);
    }
    assert_eq!(most, 2, "MaxConcurrent");
    let done = sim.st.tasks.values().filter(|t| t.status.state == TaskState::Complete).count();
    assert_eq!(done, 5, "TotalCompletions, and no more");
    let slots: std::collections::BTreeSet<u64> = sim.st.tasks.values().map(|t| t.slot).collect();
    assert_eq!(slots.len(), 5, "a slot per completion");
    let st = crate::control::services::status_of(sim.svc(), sim.st.tasks.values());
    assert_eq!((st.running_tasks, st.desired_tasks, st.completed_tasks), (0, 0, 5));

    // An update starts a new run.
    let mut again = job("job", ServiceMode::ReplicatedJob { max_concurrent: Some(2), total_completions: Some(5) });
    again.task_template.force_update = 1;
    sim.update(again);
    for _ in 0..30 {
        sim.step();
    }
    assert_eq!(sim.st.tasks.values().filter(|t| t.status.state == TaskState::Complete).count(), 10);
}

#[test]
fn a_failing_job_task_is_retried_within_its_restart_policy() {
    let mut s = job("badjob", ServiceMode::ReplicatedJob { max_concurrent: Some(1), total_completions: Some(1) });
    s.task_template.restart_policy =
        Some(RestartPolicy { condition: Some(RestartCondition::OnFailure), delay: Some(0), max_attempts: Some(2), window: None });
    let mut sim = Sim::new(s);
    for _ in 0..30 {
        sim.step();
    }
    assert_eq!(sim.st.tasks.len(), 3, "the run and two retries, all in slot 1");
    assert!(sim.st.tasks.values().all(|t| t.slot == 1 && t.status.state == TaskState::Failed));
}

#[test]
fn a_global_job_runs_once_per_node_and_on_nodes_that_join() {
    let mut sim = Sim::new(job("job", ServiceMode::GlobalJob));
    for _ in 0..10 {
        sim.step();
    }
    assert_eq!(sim.st.tasks.values().filter(|t| t.status.state == TaskState::Complete).count(), 3);
    let mut node = Node { id: "n4".into(), ..Default::default() };
    node.status.state = NodeState::Ready;
    sim.st.nodes.insert("n4".into(), node);
    for _ in 0..10 {
        sim.step();
    }
    assert_eq!(sim.st.tasks.len(), 4);
    assert!(sim.st.tasks.values().all(|t| t.status.state == TaskState::Complete));
}
