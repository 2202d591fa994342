//! The worker's task manager: reconciles the tasks the dispatcher assigned
//! to this node with what runs here. Each task goes through Docker's
//! states on its own thread (image, rootfs, container, wait, clean up) and
//! every change is queued for the agent to report in a batch.
//!
//! A container with a health check stays STARTING until its first healthy
//! probe, then is RUNNING; once unhealthy it is stopped and the task FAILED
//! with Docker's `dockerexec: unhealthy container` cause (the swarm
//! executor's controller does the same).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shoal_api::task::{ContainerStatus, Task, TaskState, TaskStatus};
use shoal_rpc::TaskStatusUpdate;

use crate::executor::{Container, ContainerInput, Executor};
use crate::health::{HealthMonitor, HealthStatus};
use crate::image::ImageService;
use crate::network::{NodeNetwork, TaskNetwork};
use crate::secrets::TaskFiles;

/// Docker's default stop grace period.
const DEFAULT_GRACE: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Entry {
    container: Option<Container>,
    /// The task's stop signal and grace period (for a stop after the task
    /// left the assignments).
    stop: (String, Duration),
    /// How long a stop waits before signalling (see `ENDPOINT_DRAIN`).
    drain: Duration,
    /// The leader's applied index in the answer that first listed it.
    listed_at: u64,
    stop_requested: bool,
    /// RUNNING has been reported (at start, or at the first healthy probe).
    reported_running: bool,
    /// Stopped because its health check failed.
    unhealthy: bool,
}

pub struct TaskManager {
    images: Arc<ImageService>,
    exec: Arc<Executor>,
    /// Secrets and configs: payloads in memory, per-task tmpfs mounts.
    files: Arc<TaskFiles>,
    entries: Mutex<HashMap<String, Entry>>,
    updates: Mutex<Vec<TaskStatusUpdate>>,
    health: HealthMonitor,
    /// Tasks that ended here, until the assignments show them ended too:
    /// the managers may still list such a task as running for a round, and
    /// it must not then look lost (or new).
    ended: Mutex<HashSet<String>>,
    /// Woken when an update is queued, so the agent reports it at once.
    pub updated: tokio::sync::Notify,
    /// `X-Registry-Auth` by service ID, from the latest assignments.
    registry_auth: Mutex<std::collections::BTreeMap<String, String>>,
    /// Task networking (gateway bridge, namespaces); without it containers
    /// get a namespace with loopback only.
    net: Option<Arc<NodeNetwork>>,
    /// What the Engine API shows of the node's containers.
    containers: Arc<crate::containers::Containers>,
    /// Service names by ID and host-mode ports by task, from the latest
    /// assignments (for the containers' names, labels and ports).
    service_names: Mutex<std::collections::BTreeMap<String, String>>,
    /// Service labels by ID, and this node's hostname, for templates.
    service_labels: Mutex<std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>>,
    hostname: std::sync::OnceLock<String>,
    host_ports: Mutex<std::collections::BTreeMap<String, Vec<shoal_api::service::PortConfig>>>,
    /// Containers with network attachment tasks here (see `sync`).
    attachments: Mutex<Vec<String>>,
}

impl TaskManager {
    pub fn new(images: Arc<ImageService>, exec: Arc<Executor>, files: Arc<TaskFiles>) -> Arc<TaskManager> {
        Self::build(images, exec, files, None)
    }

    /// As [`TaskManager::new`], with each task attached to the node's gateway bridge.
    pub fn with_network(images: Arc<ImageService>, exec: Arc<Executor>, files: Arc<TaskFiles>, net: Arc<NodeNetwork>) -> Arc<TaskManager> {
        Self::build(images, exec, files, Some(net))
    }

    fn build(images: Arc<ImageService>, exec: Arc<Executor>, files: Arc<TaskFiles>, net: Option<Arc<NodeNetwork>>) -> Arc<TaskManager> {
        let health = HealthMonitor::new(exec.runc().clone());
        let containers = Arc::new(crate::containers::Containers::new(exec.runc().clone()));
        Arc::new(TaskManager {
            containers,
            service_names: Mutex::default(),
            service_labels: Mutex::default(),
            hostname: std::sync::OnceLock::new(),
            host_ports: Mutex::default(),
            attachments: Mutex::default(),
            images,
            exec,
            files,
            entries: Mutex::new(HashMap::new()),
            updates: Mutex::new(Vec::new()),
            health,
            ended: Mutex::new(HashSet::new()),
            updated: tokio::sync::Notify::new(),
            registry_auth: Mutex::default(),
            net,
        })
    }

    /// The task's network namespace, address and files, if networking is on.
    fn attach_network(&self, id: &str, attachments: &[shoal_api::network::NetworkAttachment]) -> Result<Option<TaskNetwork>, String> {
        self.net.as_ref().map(|n| n.attach(id, attachments)).transpose()
    }

    /// The node's task networking, if on.
    pub fn network(&self) -> Option<&Arc<NodeNetwork>> {
        self.net.as_ref()
    }

    fn detach_network(&self, id: &str) {
        if let Some(n) = &self.net {
            n.detach(id);
        }
    }

    /// Takes the dispatcher's complete assignments: the payloads first, so
    /// a task started by `sync` finds its secrets and configs.
    pub fn assign(self: &Arc<Self>, a: shoal_rpc::Assignments) {
        self.service_names.lock().unwrap().extend(a.service_names.clone());
        *self.service_labels.lock().unwrap() = a.service_labels.clone();
        *self.host_ports.lock().unwrap() = a.host_ports.clone();
        if let Some(net) = &self.net {
            net.apply_views(a.networks);
            net.set_host_ports(a.host_ports);
            net.set_mesh(a.mesh.map(|m| *m));
        }
        self.files.update(a.secrets, a.configs);
        *self.registry_auth.lock().unwrap() = a.registry_auth;
        self.sync(a.tasks, a.applied);
    }

    /// This node's hostname, as templates read it (`{{.Node.Hostname}}`).
    pub fn set_hostname(&self, hostname: &str) {
        let _ = self.hostname.set(hostname.to_string());
    }

    /// What templates of task `t` may read (SwarmKit's context).
    fn template_context(&self, t: &Task) -> crate::templating::TaskContext {
        let service_name = self.service_names.lock().unwrap().get(&t.service_id).cloned().unwrap_or_default();
        let platform = self.images.platform();
        crate::templating::TaskContext {
            service_id: t.service_id.clone(),
            service_labels: self.service_labels.lock().unwrap().get(&t.service_id).cloned().unwrap_or_default(),
            node_id: t.node_id.clone(),
            node_hostname: self.hostname.get().cloned().unwrap_or_default(),
            architecture: platform.architecture.clone(),
            os: platform.os.clone(),
            task_id: t.id.clone(),
            task_name: crate::containers::container_name(&service_name, t.slot, &t.node_id, &t.id),
            task_slot: if t.slot != 0 { t.slot.to_string() } else { t.node_id.clone() },
            service_name,
        }
    }

    /// The standalone containers the managers hold network attachments
    /// for on this node (from the last assignments).
    pub fn attached_containers(&self) -> Vec<String> {
        self.attachments.lock().unwrap().clone()
    }

    /// The node's containers, as the Engine API lists and inspects them.
    pub fn containers(&self) -> &Arc<crate::containers::Containers> {
        &self.containers
    }

    /// The executor (log files live under its state dir).
    pub fn executor(&self) -> Arc<Executor> {
        self.exec.clone()
    }

    /// Takes the complete set of tasks assigned to this node.
    /// `applied`: the leader's applied index when it read the set.
    pub fn sync(self: &Arc<Self>, assigned: Vec<Task>, applied: u64) {
        // Network attachment tasks run nothing: they hold the addresses of
        // this node's standalone containers on swarm networks.
        let (attachments, assigned): (Vec<Task>, Vec<Task>) = assigned.into_iter().partition(|t| t.spec.is_attachment());
        *self.attachments.lock().unwrap() =
            attachments.iter().filter_map(|t| t.spec.network_attachment_spec.as_ref().map(|s| s.container_id.clone())).collect();
        // A task running here that the managers no longer list (deleted with
        // its service before its state reached them, or while this node was
        // cut off) has nobody to want it: stop it. Only a set read at or
        // after the index that first listed the task can say so (a new
        // leader may answer before it applied everything).
        let orphans: Vec<String> = {
            let listed: HashSet<&str> = assigned.iter().map(|t| t.id.as_str()).collect();
            let entries = self.entries.lock().unwrap();
            entries.iter().filter(|(id, e)| !listed.contains(id.as_str()) && applied >= e.listed_at).map(|(id, _)| id.clone()).collect()
        };
        for id in orphans {
            self.stop_by_id(&id);
        }
        {
            let listed: HashSet<&str> = assigned.iter().map(|t| t.id.as_str()).collect();
            let mut ended = self.ended.lock().unwrap();
            ended.retain(|id| listed.contains(id.as_str()));
            for t in &assigned {
                if t.status.state.is_terminal() {
                    ended.remove(&t.id);
                }
            }
        }
        for t in assigned {
            if self.ended.lock().unwrap().contains(&t.id) {
                continue;
            }
            let known = self.entries.lock().unwrap().contains_key(&t.id);
            // Job tasks want COMPLETE; both mean run it.
            let wanted = t.desired_state <= TaskState::Complete;
            if wanted && !known && t.status.state <= TaskState::Assigned {
                let drain = if t.networks_attachments.is_empty() { Duration::ZERO } else { ENDPOINT_DRAIN };
                let entry = Entry { stop: stop_params(&t), drain, listed_at: applied, ..Entry::default() };
                self.entries.lock().unwrap().insert(t.id.clone(), entry);
                let me = self.clone();
                std::thread::Builder::new()
                    .name(format!("task-{}", &t.id[..t.id.len().min(12)]))
                    .spawn(move || me.run(t))
                    .expect("spawn task thread");
            } else if wanted && !known && !t.status.state.is_terminal() {
                // Running according to the managers, unknown here: this
                // daemon restarted and lost it.
                self.report(&t.id, TaskState::Failed, "task lost when the node restarted", None);
            } else if !wanted && known {
                self.request_stop(&t);
            } else if !wanted && !known && !t.status.state.is_terminal() {
                self.report(&t.id, TaskState::Shutdown, "shutdown", None);
            }
        }
    }

    /// At start: takes back the tasks whose containers outlived the
    /// previous run of the daemon (their shims kept them running, their
    /// output and their exit codes), so they are neither restarted nor
    /// reported lost; removes every other container as `remove_leftovers`.
    /// Tasks on encrypted overlays are not taken back yet (the node's
    /// WireGuard tunnel lives in the daemon).
    /// `standalone`: running standalone containers on the gateway bridge
    /// whose networking stays too (`Standalone::restore` takes them back;
    /// their bundles are left to it).
    /// `take_tasks`: false for a node in no swarm (its task containers
    /// go as leftovers).
    pub fn restore(self: &Arc<Self>, standalone: &[String], take_tasks: bool) {
        let mut adopted = Vec::new();
        for id in self.bundle_ids() {
            if crate::standalone::is_standalone_id(&id) {
                continue;
            }
            if !take_tasks {
                self.remove_leftover(&id);
                continue;
            }
            match self.adopt(&id) {
                Ok(Some(a)) => adopted.push(a),
                Ok(None) => self.remove_leftover(&id),
                Err(e) => {
                    tracing::warn!(task = %id, "not taken back after the restart: {e}");
                    self.remove_leftover(&id);
                }
            }
        }
        let kept: Vec<String> = adopted.iter().map(|(t, _, _)| t.id.clone()).collect();
        self.files.release_all_but(&kept);
        if let Some(n) = &self.net {
            let mut keep: Vec<(String, Vec<shoal_api::network::NetworkAttachment>)> =
                adopted.iter().map(|(t, _, _)| (t.id.clone(), t.networks_attachments.clone())).collect();
            keep.extend(standalone.iter().map(|id| (id.clone(), Vec::new())));
            n.restore(&keep);
        }
        for (t, container, health) in adopted {
            tracing::info!(task = %t.id, pid = container.pid, "task taken back after the restart");
            let entry = Entry {
                stop: stop_params(&t),
                drain: if t.networks_attachments.is_empty() { Duration::ZERO } else { ENDPOINT_DRAIN },
                // Not yet RUNNING: its first healthy probe reports it.
                reported_running: health.is_none(),
                ..Entry::default()
            };
            self.entries.lock().unwrap().insert(t.id.clone(), entry);
            let me = self.clone();
            std::thread::Builder::new()
                .name(format!("task-{}", &t.id[..t.id.len().min(12)]))
                .spawn(move || me.supervise(t, container, health))
                .expect("spawn task thread");
        }
    }

    /// One container left by the previous run, if it can be taken back.
    fn adopt(&self, id: &str) -> Result<Option<(Task, Container, Option<crate::health::HealthSettings>)>, String> {
        let bundle = self.exec.bundle_dir(id);
        let Some(saved) = Restorable::load(&bundle)? else { return Ok(None) };
        if saved.on_encrypted_network() {
            return Err("tasks on encrypted networks do not outlive a restart yet".into());
        }
        let Some(container) = self.exec.adopt(id)? else { return Ok(None) };
        let mut record = saved.record;
        record.pid = container.pid;
        self.containers.put_back(record);
        Ok(Some((saved.task, container, saved.health)))
    }

    fn bundle_ids(&self) -> Vec<String> {
        let dir = self.exec.bundle_dir("x");
        let Some(bundles) = dir.parent() else { return Vec::new() };
        let Ok(entries) = std::fs::read_dir(bundles) else { return Vec::new() };
        entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()
    }

    fn remove_leftover(&self, id: &str) {
        if let Err(err) = self.exec.remove_id(id) {
            tracing::warn!("removing leftover container {id}: {err}");
        }
        // A standalone container keeps its root filesystem until `rm`.
        if !crate::standalone::is_standalone_id(id) {
            let _ = self.images.remove_rootfs(id);
        }
    }

    /// Removes containers a previous run of the daemon left: their tasks
    /// are reported lost.
    pub fn remove_leftovers(&self) {
        for id in self.bundle_ids() {
            self.remove_leftover(&id);
        }
        self.files.release_all();
        if let Some(n) = &self.net {
            n.remove_leftovers();
        }
    }

    /// Stops every container (daemon shutdown), each with its grace period
    /// capped at `cap`, and waits for them. Then `release_node`, once the
    /// node's other containers (standalone ones) are stopped too.
    pub fn shutdown(&self, cap: Duration) {
        self.stop_containers(cap, |_| true);
    }

    /// After `shutdown` (of every container of the node): the task files,
    /// the node's parent cgroup and its networking go, nothing is left.
    pub fn release_node(&self) {
        self.files.release_all();
        self.exec.remove_cgroup_parent();
        if let Some(n) = &self.net {
            n.shutdown();
        }
    }

    /// The node left the swarm: every task is stopped with its own stop
    /// signal (its grace period capped at `cap`), and this waits, up to
    /// twice `cap`, until their containers are gone, as `docker swarm
    /// leave` does.
    pub fn stop_all(self: &Arc<Self>, cap: Duration) {
        let ids: Vec<String> = self.entries.lock().unwrap().keys().cloned().collect();
        for id in &ids {
            if let Some(e) = self.entries.lock().unwrap().get_mut(id) {
                e.stop.1 = e.stop.1.min(cap);
                e.drain = Duration::ZERO;
            }
            self.stop_by_id(id);
        }
        let deadline = std::time::Instant::now() + cap * 2;
        while !self.entries.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Daemon shutdown under `--live-restore`: the tasks that a daemon
    /// started again takes back (`restore`) keep running, with their
    /// files and networking; the others are stopped and removed, each
    /// with its grace period capped at `cap`.
    pub fn shutdown_keeping_restorable(&self, cap: Duration) {
        for id in self.stop_containers(cap, |c| !Restorable::can_take_back(c)) {
            self.files.release(&id);
            self.detach_network(&id);
        }
    }

    /// Stops (SIGTERM, SIGKILL after `cap`) and removes, all at once, the
    /// running containers `which` picks; their IDs once done. Those tasks,
    /// and every task still preparing (it will not start now), are marked
    /// as stopping.
    fn stop_containers(&self, cap: Duration, which: impl Fn(&Container) -> bool) -> Vec<String> {
        let stopping: Vec<Container> = {
            let mut entries = self.entries.lock().unwrap();
            entries
                .values_mut()
                .filter_map(|e| {
                    if e.container.as_ref().is_some_and(|c| !which(c)) {
                        return None;
                    }
                    e.stop_requested = true;
                    e.container.clone()
                })
                .collect()
        };
        let handles: Vec<_> = stopping
            .into_iter()
            .map(|c| {
                let exec = self.exec.clone();
                std::thread::spawn(move || {
                    let _ = exec.stop(&c, "SIGTERM", cap);
                    let _ = exec.remove(&c);
                    c.id
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    }

    /// The health of a task's container (status, failing streak, last
    /// probe results), while it runs with a health check.
    pub fn health(&self, task_id: &str) -> Option<crate::health::HealthSnapshot> {
        self.health.snapshot(task_id)
    }

    /// Status changes since the last call, oldest first.
    pub fn take_updates(&self) -> Vec<TaskStatusUpdate> {
        std::mem::take(&mut *self.updates.lock().unwrap())
    }

    /// Puts back updates that could not be delivered, ahead of newer ones.
    pub fn requeue(&self, mut updates: Vec<TaskStatusUpdate>) {
        let mut q = self.updates.lock().unwrap();
        updates.append(&mut q);
        *q = updates;
    }

    fn report(&self, id: &str, state: TaskState, message: &str, exit: Option<(ContainerStatus, String)>) {
        let (container_status, err) = match exit {
            Some((c, e)) => (Some(c), e),
            None => (None, String::new()),
        };
        let status = TaskStatus {
            timestamp: shoal_api::time::now_rfc3339(),
            state,
            message: message.to_string(),
            err,
            container_status,
            ..Default::default()
        };
        self.push_status(id, status);
    }

    /// Queues a state for the agent and wakes it.
    fn push_status(&self, id: &str, status: TaskStatus) {
        self.updates.lock().unwrap().push(TaskStatusUpdate { task_id: id.to_string(), status });
        self.updated.notify_one();
    }

    fn fail(&self, id: &str, state: TaskState, err: String) {
        self.push_status(id, TaskStatus { timestamp: shoal_api::time::now_rfc3339(), state, err, ..Default::default() });
        self.forget(id);
    }

    /// The task ended here: off the running list, onto the ended one (in
    /// that order under no gap, so a concurrent `sync` sees one of them).
    fn forget(&self, id: &str) {
        self.ended.lock().unwrap().insert(id.to_string());
        self.entries.lock().unwrap().remove(id);
    }

    fn request_stop(self: &Arc<Self>, t: &Task) {
        self.stop_by_id(&t.id);
    }

    /// Stops a task with the stop signal and grace period it started with.
    fn stop_by_id(self: &Arc<Self>, id: &str) {
        let (container, (signal, grace), drain) = {
            let mut entries = self.entries.lock().unwrap();
            let Some(e) = entries.get_mut(id) else { return };
            if e.stop_requested {
                return;
            }
            e.stop_requested = true;
            (e.container.clone(), e.stop.clone(), e.drain)
        };
        // Not started yet: the task thread sees the flag and stops itself.
        if let Some(c) = container {
            let me = self.clone();
            std::thread::spawn(move || {
                std::thread::sleep(drain);
                if let Err(e) = me.exec.stop(&c, &signal, grace) {
                    tracing::warn!("stopping container {}: {e}", c.id);
                }
            });
        }
    }

    fn stop_requested(&self, id: &str) -> bool {
        self.entries.lock().unwrap().get(id).map(|e| e.stop_requested).unwrap_or(true)
    }

    fn run(self: Arc<Self>, t: Task) {
        let id = t.id.clone();
        self.report(&id, TaskState::Accepted, "accepted", None);
        let template_context = self.template_context(&t);
        let spec = match template_context.expand_container_spec(&t.spec.container_spec.clone().unwrap_or_default()) {
            Ok(s) => s,
            Err(e) => return self.fail(&id, TaskState::Rejected, e),
        };
        self.report(&id, TaskState::Preparing, "preparing", None);
        // The service's registry credentials (`--with-registry-auth`).
        let header = self.registry_auth.lock().unwrap().get(&t.service_id).cloned();
        let auth = match header.as_deref().map(crate::image::auth::AuthConfig::from_header) {
            Some(Err(e)) => return self.fail(&id, TaskState::Rejected, e),
            Some(Ok(a)) => a,
            None => None,
        };
        let image = match self.images.ensure(&spec.image, auth.as_ref()) {
            Ok(i) => i,
            Err(e) => return self.fail(&id, TaskState::Rejected, e.message),
        };
        // Bad mounts reject the task, as a failed container create does.
        if let Err(e) = crate::executor::mounts::validate(&spec.mounts) {
            return self.fail(&id, TaskState::Rejected, e);
        }
        let rootfs = match self.images.prepare_rootfs(&image, &id) {
            Ok(r) => r,
            Err(e) => return self.fail(&id, TaskState::Rejected, e.message),
        };
        let extra_mounts = match self.files.prepare(&id, &spec, &template_context) {
            Ok(m) => m,
            Err(e) => {
                let _ = self.images.remove_rootfs(&id);
                return self.fail(&id, TaskState::Rejected, e);
            }
        };
        if self.stop_requested(&id) {
            self.files.release(&id);
            let _ = self.images.remove_rootfs(&id);
            self.report(&id, TaskState::Shutdown, "shutdown", None);
            self.forget(&id);
            return;
        }
        self.report(&id, TaskState::Ready, "prepared", None);
        self.report(&id, TaskState::Starting, "starting", None);
        let hostname = if spec.hostname.is_empty() { id[..id.len().min(12)].to_string() } else { spec.hostname.clone() };
        let net = match self.attach_network(&id, &t.networks_attachments) {
            Ok(n) => n,
            Err(e) => {
                self.files.release(&id);
                let _ = self.images.remove_rootfs(&id);
                return self.fail(&id, TaskState::Failed, format!("starting container failed: {e}"));
            }
        };
        let input = ContainerInput {
            id: id.clone(),
            netns_path: net.as_ref().map(|n| n.netns.clone()),
            address: net.as_ref().and_then(|n| n.legs.first()).map(|l| l.addr),
            embedded_dns: !t.networks_attachments.is_empty(),
            spec: spec.clone(),
            limits: t.spec.resources.as_ref().and_then(|r| r.limits.clone()),
            rootfs: rootfs.path.clone(),
            hostname,
            extra_mounts,
            ..Default::default()
        }
        .with_image_config(image.config.config.as_ref());
        let container = match self.exec.start(&input) {
            Ok(c) => c,
            Err(e) => {
                self.files.release(&id);
                let _ = self.images.remove_rootfs(&id);
                self.detach_network(&id);
                return self.fail(&id, TaskState::Failed, format!("starting container failed: {e}"));
            }
        };
        let image_cfg = image.config.config.as_ref();
        let health = crate::health::resolve(
            image_cfg.and_then(|c| c.healthcheck.as_ref()),
            spec.healthcheck.as_ref(),
            image_cfg.and_then(|c| c.shell.as_deref()).unwrap_or(&[]),
        );
        let record = self.record(&t, &input, &image, &container, net.as_ref());
        if container.outlives_daemon {
            let saved = Restorable { task: t.clone(), record: record.clone(), health: health.clone() };
            if let Err(e) = saved.save(&container.bundle) {
                tracing::warn!(task = %id, "{e}");
            }
        }
        self.containers.started(record);
        self.supervise(t, container, health);
    }

    /// From a started container to the task's final state: health checks,
    /// RUNNING, the wait, the clean-up and the exit as the task's status.
    fn supervise(self: &Arc<Self>, t: Task, container: Container, health: Option<crate::health::HealthSettings>) {
        let id = t.id.clone();
        if let Some(e) = self.entries.lock().unwrap().get_mut(&id) {
            e.container = Some(container.clone());
        }
        match health {
            None => self.report_running(&id),
            Some(settings) => {
                let me = self.clone();
                let task = t.clone();
                self.health.watch(&id, container.bundle.clone(), settings, move |status| me.on_health(&task, status));
            }
        }
        // A stop asked for while we were starting is carried out now.
        if self.stop_requested(&id) {
            self.request_stop_now(&t, &container);
        }
        let code = self.exec.wait(&container);
        self.containers.ended(&id, code);
        self.health.unwatch(&id);
        let stopped = self.stop_requested(&id);
        let unhealthy = self.entries.lock().unwrap().get(&id).is_some_and(|e| e.unhealthy);
        if let Err(e) = self.exec.remove(&container) {
            tracing::warn!("removing container {id}: {e}");
        }
        self.files.release(&id);
        let _ = self.images.remove_rootfs(&id);
        self.detach_network(&id);
        self.forget(&id);
        let status = ContainerStatus { container_id: id.clone(), pid: 0, exit_code: code as i64 };
        if stopped {
            self.report(&id, TaskState::Shutdown, "shutdown", Some((status, String::new())));
        } else if code == 0 {
            self.report(&id, TaskState::Complete, "finished", Some((status, String::new())));
        } else {
            let err = if unhealthy {
                format!("task: non-zero exit ({code}): {}", crate::health::UNHEALTHY)
            } else {
                format!("task: non-zero exit ({code})")
            };
            self.report(&id, TaskState::Failed, "started", Some((status, err)));
        }
    }

    /// The API's record of a container just started for `t`.
    fn record(
        &self,
        t: &Task,
        input: &ContainerInput,
        image: &crate::image::Image,
        c: &Container,
        net: Option<&TaskNetwork>,
    ) -> crate::containers::ContainerRecord {
        use crate::containers::{container_name, task_name, ContainerRecord};
        let service_name = self.service_names.lock().unwrap().get(&t.service_id).cloned().unwrap_or_else(|| t.service_id.clone());
        let name = container_name(&service_name, t.slot, &t.node_id, &t.id);
        let mut labels = input.spec.labels.clone();
        labels.extend(ContainerRecord::swarm_labels(
            &t.service_id,
            &service_name,
            &t.id,
            &format!("{}.{}", task_name(&service_name, t.slot, &t.node_id), t.id),
            &t.node_id,
        ));
        let now = shoal_api::time::now_rfc3339();
        ContainerRecord {
            id: c.id.clone(),
            name,
            task_id: t.id.clone(),
            service_id: t.service_id.clone(),
            service_name,
            node_id: t.node_id.clone(),
            slot: t.slot,
            labels,
            bridge: net
                .and_then(|n| n.legs.iter().find(|l| l.gateway.is_some()))
                .map(|l| (format!("{}/{}", l.addr, l.prefix), l.gateway.map(|g| g.to_string()).unwrap_or_default())),
            sandbox_key: net.map(|n| n.netns.to_string_lossy().into_owned()).unwrap_or_default(),
            networks: t
                .networks_attachments
                .iter()
                .map(|a| crate::containers::AttachedNetwork {
                    id: a.network.id.clone(),
                    name: a.network.spec.name.clone(),
                    address: a.addresses.first().cloned().unwrap_or_default(),
                })
                .collect(),
            ports: self.host_ports.lock().unwrap().get(&t.id).cloned().unwrap_or_default(),
            created: now.clone(),
            started_at: now,
            finished_at: String::new(),
            pid: c.pid,
            exit_code: None,
            bundle: c.bundle.clone(),
            rootfs: input.rootfs.clone(),
            log_path: c.log_path.clone(),
            ..ContainerRecord::from_input(input, image.id().to_string())
        }
    }

    /// Reports RUNNING once, while the task is still here. Done under the
    /// entries lock so it is always queued before the task's final state
    /// (the task thread removes the entry before reporting that).
    fn report_running(&self, id: &str) {
        let mut entries = self.entries.lock().unwrap();
        let Some(e) = entries.get_mut(id) else { return };
        if e.reported_running {
            return;
        }
        e.reported_running = true;
        let pid = e.container.as_ref().map(|c| c.pid as i64).unwrap_or(0);
        let running = ContainerStatus { container_id: id.to_string(), pid, exit_code: 0 };
        drop(entries);
        // The host-mode ports it publishes (`docker service ps` shows them).
        let ports = self.host_ports.lock().unwrap().get(id).cloned().unwrap_or_default();
        let status = TaskStatus {
            timestamp: shoal_api::time::now_rfc3339(),
            state: TaskState::Running,
            message: "started".into(),
            container_status: Some(running),
            port_status: shoal_api::task::PortStatus { ports },
            ..Default::default()
        };
        self.push_status(id, status);
    }

    /// A health status change: healthy makes a starting task RUNNING;
    /// unhealthy stops the container (with the task's stop signal and
    /// grace period) and marks why, for the final error.
    fn on_health(self: &Arc<Self>, t: &Task, status: HealthStatus) {
        match status {
            HealthStatus::Healthy => self.report_running(&t.id),
            HealthStatus::Starting => {}
            HealthStatus::Unhealthy => {
                let container = {
                    let mut entries = self.entries.lock().unwrap();
                    let Some(e) = entries.get_mut(&t.id) else { return };
                    // A container that already ended fails its probes too:
                    // that is not what ended it.
                    let ended = e.container.as_ref().is_none_or(|c| c.exit_code().is_some());
                    if e.unhealthy || e.stop_requested || ended {
                        return;
                    }
                    e.unhealthy = true;
                    e.container.clone()
                };
                tracing::info!(task = %t.id, "container is unhealthy: stopping it");
                if let Some(c) = container {
                    let me = self.clone();
                    let (signal, grace) = stop_params(t);
                    std::thread::spawn(move || {
                        if let Err(e) = me.exec.stop(&c, &signal, grace) {
                            tracing::warn!("stopping unhealthy container {}: {e}", c.id);
                        }
                    });
                }
            }
        }
    }

    fn request_stop_now(&self, t: &Task, c: &Container) {
        let (signal, grace) = stop_params(t);
        if let Err(e) = self.exec.stop(c, &signal, grace) {
            tracing::warn!("stopping container {}: {e}", c.id);
        }
    }
}

/// What a daemon started again needs to take a task's container back
/// (`TaskManager::restore`), saved in the container's bundle.
#[derive(serde::Serialize, serde::Deserialize)]
struct Restorable {
    task: Task,
    record: crate::containers::ContainerRecord,
    health: Option<crate::health::HealthSettings>,
}

impl Restorable {
    const FILE: &'static str = "task.json";

    fn save(&self, bundle: &std::path::Path) -> Result<(), String> {
        crate::executor::replace_file(&bundle.join(Self::FILE), &serde_json::to_vec(self).map_err(|e| e.to_string())?)
    }

    /// Whether a daemon started again can take `c` back (see `adopt`).
    fn can_take_back(c: &Container) -> bool {
        c.outlives_daemon && Self::load(&c.bundle).ok().flatten().is_some_and(|r| !r.on_encrypted_network())
    }

    /// On an encrypted overlay: not taken back yet (the node's WireGuard
    /// tunnel lives in the daemon).
    fn on_encrypted_network(&self) -> bool {
        self.task.networks_attachments.iter().any(|a| a.network.is_encrypted())
    }

    fn load(bundle: &std::path::Path) -> Result<Option<Restorable>, String> {
        let path = bundle.join(Self::FILE);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("reading {}: {e}", path.display())),
        }
    }
}

/// A task on an overlay network is signalled this long after it was told
/// to stop. The managers take it out of every node's VIP and routing-mesh
/// rules in the same write that tells it to stop, and each node applies
/// that within a long-poll round trip; the wait lets those rules change
/// before the process goes, so no new connection is sent to a task that is
/// exiting (Swarm's moby#33790). Connections already open are served until
/// the stop signal, as without it.
const ENDPOINT_DRAIN: Duration = Duration::from_secs(1);

/// The task's stop signal and grace period, with Docker's defaults.
fn stop_params(t: &Task) -> (String, Duration) {
    let spec = t.spec.container_spec.clone().unwrap_or_default();
    let grace = spec.stop_grace_period.map(|ns| Duration::from_nanos(ns.max(0) as u64)).unwrap_or(DEFAULT_GRACE);
    let signal = if spec.stop_signal.is_empty() { "SIGTERM".to_string() } else { spec.stop_signal };
    (signal, grace)
}
