//! The control API behind `/services` and `/tasks`: validation with
//! SwarmKit's wording, reads from this manager's store, writes through Raft.

use shoal_api::filters::Filters;
use shoal_api::service::{Service, ServiceMode, ServiceSpec, ServiceStatus};
use shoal_api::task::{Task, TaskState};
use shoal_api::ApiError;

use super::ControlApi;
use crate::store::Command;

pub const SERVICE_FILTERS: &[&str] = &["id", "label", "mode", "name"];
pub const TASK_FILTERS: &[&str] = &["_up-to-date", "desired-state", "id", "label", "name", "node", "service"];

fn invalid(msg: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("rpc error: code = InvalidArgument desc = {msg}"))
}

/// SwarmKit's checks on a service spec; a refused spec changes nothing.
pub fn validate_service_spec(spec: &ServiceSpec) -> Result<(), ApiError> {
    if !valid_dns_label(&spec.name) {
        return Err(invalid("name must be valid as a DNS name component"));
    }
    if spec.task_template.is_attachment() || spec.task_template.network_attachment_spec.is_some() {
        return Err(invalid("TaskTemplate: network attachment tasks are made by docker run --network, not by services"));
    }
    let image = spec.task_template.container_spec.as_ref().map(|c| c.image.as_str()).unwrap_or("");
    if image.is_empty() {
        return Err(invalid("ContainerSpec: image reference must be provided"));
    }
    let mut targets = std::collections::HashSet::new();
    for m in spec.task_template.container_spec.iter().flat_map(|c| c.mounts.iter()) {
        // Docker's API converter refuses a type it does not know; the
        // others (npipe, cluster) are not for Linux nodes.
        if !matches!(m.r#type.as_str(), "bind" | "volume" | "tmpfs") {
            return Err(invalid(format!("ContainerSpec: invalid MountType: {:?}: want bind, volume or tmpfs", m.r#type)));
        }
        if !targets.insert(m.target.as_str()) {
            return Err(invalid(format!("ContainerSpec: duplicate mount point: {}", m.target)));
        }
    }
    if let Some(p) = spec.task_template.placement() {
        shoal_scheduler::parse_constraints(&p.constraints).map_err(invalid)?;
    }
    // Nothing accepted may be silently dropped: ingress-mode ports go
    // through the routing mesh (the allocator picks a port when none is
    // given); host mode publishes on the task's node and needs the port.
    for port in spec.endpoint_spec.iter().flat_map(|e| e.ports.iter()) {
        let proto = port.protocol.as_str();
        if port.publish_mode == shoal_api::service::PublishMode::Host && port.published_port == 0 {
            return Err(invalid(format!(
                "EndpointSpec: a host-mode port needs its published port (port {}/{proto}): this version of shoald does not pick one",
                port.target_port
            )));
        }
        if port.protocol == shoal_api::service::PortProtocol::Sctp {
            return Err(invalid("EndpointSpec: SCTP ports are not supported by this version of shoald"));
        }
    }
    // Values the updater would otherwise read as its default.
    for (part, u) in [("UpdateConfig", &spec.update_config), ("RollbackConfig", &spec.rollback_config)] {
        let Some(u) = u else { continue };
        if !matches!(u.failure_action.as_str(), "" | "pause" | "continue" | "rollback") {
            return Err(invalid(format!("{part}: unrecognized failure action {:?}: want pause, continue or rollback", u.failure_action)));
        }
        if !matches!(u.order.as_str(), "" | "stop-first" | "start-first") {
            return Err(invalid(format!("{part}: unrecognized order {:?}: want stop-first or start-first", u.order)));
        }
    }
    // File owners are numbers in a swarm (the CLI sends "0"); a name would
    // silently become root.
    if let Some(c) = &spec.task_template.container_spec {
        let files = c.secrets.iter().map(|r| (&r.secret_name, &r.file)).chain(c.configs.iter().map(|r| (&r.config_name, &r.file)));
        for (name, file) in files {
            let Some(f) = file else { continue };
            for (what, v) in [("UID", &f.uid), ("GID", &f.gid)] {
                if !v.is_empty() && v.parse::<u32>().is_err() {
                    return Err(invalid(format!("ContainerSpec: {name}: File.{what} {v:?} is not a number")));
                }
            }
        }
    }
    // Seccomp, AppArmor, no-new-privileges: what workers cannot honour
    // (CredentialSpec, SELinuxContext) and bad custom seccomp profiles are
    // refused here, before any task exists.
    if let Some(p) = spec.task_template.container_spec.as_ref().and_then(|c| c.privileges.as_ref()) {
        p.validate().map_err(|e| invalid(format!("ContainerSpec: {e}")))?;
    }
    Ok(())
}

/// `^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$`, at most 63 characters.
fn valid_dns_label(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
}

impl ControlApi {
    /// `registry_auth`: the request's `X-Registry-Auth`, if any.
    pub async fn create_service(&self, mut spec: ServiceSpec, registry_auth: Option<&str>) -> Result<String, ApiError> {
        let id = shoal_api::id::new_id();
        if spec.name.is_empty() {
            // Docker makes up a name; ours is derived from the ID.
            spec.name = format!("service-{}", &id[..12]);
        }
        validate_service_spec(&spec)?;
        // Kept as Docker keeps it, so it reads back as Docker reads it back.
        let mut spec = spec.as_docker_stores();
        super::secrets::resolve_references(&self.cluster.store(), &mut spec)?;
        self.check_service_networking(None, &mut spec)?;
        let now = shoal_api::time::now_rfc3339();
        let registry_auth = self.seal_registry_auth(&id, registry_auth)?;
        let service = Service { id: id.clone(), created_at: now.clone(), updated_at: now, spec, ..Default::default() };
        self.cluster.propose(Command::CreateService { service: Box::new(service), registry_auth }).await?;
        Ok(id)
    }

    /// `registry_auth`: new credentials (`X-Registry-Auth`); without them
    /// the service keeps its own (`registryAuthFrom=spec`).
    pub async fn update_service(
        &self,
        key: &str,
        version: u64,
        mut spec: ServiceSpec,
        rollback: bool,
        registry_auth: Option<&str>,
    ) -> Result<(), ApiError> {
        let id = self.cluster.store().find_service(key)?.id.clone();
        let registry_auth = self.seal_registry_auth(&id, registry_auth)?;
        if !rollback {
            validate_service_spec(&spec)?;
            spec = spec.as_docker_stores();
            super::secrets::resolve_references(&self.cluster.store(), &mut spec)?;
            self.check_service_networking(Some(&id), &mut spec)?;
        }
        self.cluster
            .propose(Command::UpdateService { id, version, spec: Box::new(spec), rollback, registry_auth })
            .await
            .map(|_| ())
            .map_err(ApiError::from)
    }

    /// Seals a service's registry credentials with the data key (like
    /// secrets, they never sit in the Raft log in the clear). An empty
    /// header means none.
    fn seal_registry_auth(&self, service_id: &str, header: Option<&str>) -> Result<Option<String>, ApiError> {
        let Some(header) = header.map(str::trim).filter(|h| !h.is_empty()) else { return Ok(None) };
        let key = self.keys.data_key().ok_or_else(|| ApiError::unavailable("this manager does not hold the secrets key yet"))?;
        Ok(Some(key.seal(&crate::delivery::registry_auth_context(service_id), header.as_bytes())))
    }

    pub async fn remove_service(&self, key: &str) -> Result<(), ApiError> {
        let id = self.cluster.store().find_service(key)?.id.clone();
        self.cluster.propose(Command::RemoveService { id }).await.map(|_| ()).map_err(ApiError::from)
    }

    pub fn service(&self, key: &str) -> Result<Service, ApiError> {
        self.cluster.store().find_service(key).cloned()
    }

    pub fn services(&self, filters: &Filters, with_status: bool) -> Vec<Service> {
        let st = self.cluster.store();
        // The tasks by service, once: `service ls` with 1,000 services
        // and 10,000 tasks would otherwise walk every task per service.
        let mut by_service: std::collections::HashMap<&str, Vec<&Task>> = std::collections::HashMap::new();
        if with_status {
            for t in st.tasks.values() {
                by_service.entry(t.service_id.as_str()).or_default().push(t);
            }
        }
        st.services
            .values()
            .filter(|s| filters.any("id", |v| s.id.starts_with(v)))
            .filter(|s| filters.any("name", |v| s.spec.name.starts_with(v)))
            .filter(|s| filters.any("mode", |v| v == if s.spec.mode.is_global() { "global" } else { "replicated" }))
            .filter(|s| filters.labels_match("label", &s.spec.labels))
            .map(|s| {
                let mut s = s.clone();
                if with_status {
                    s.service_status = Some(status_of(&s, by_service.get(s.id.as_str()).into_iter().flatten().copied()));
                }
                s
            })
            .collect()
    }

    pub fn tasks(&self, filters: &Filters) -> Vec<Task> {
        let st = self.cluster.store();
        let service_ids: Vec<String> =
            filters.get("service").iter().filter_map(|k| st.find_service(k).ok().map(|s| s.id.clone())).collect();
        let node_ids: Vec<String> = filters
            .get("node")
            .iter()
            .filter_map(|k| if k == "self" { Some(self.node_id.clone()) } else { st.find_node(k).ok().map(|n| n.id.clone()) })
            .collect();
        st.tasks
            .values()
            .filter(|t| filters.get("service").is_empty() || service_ids.contains(&t.service_id))
            .filter(|t| filters.get("node").is_empty() || node_ids.contains(&t.node_id))
            .filter(|t| filters.any("id", |v| t.id.starts_with(v)))
            .filter(|t| filters.any("desired-state", |v| desired_matches(v, t.desired_state)))
            // As SwarmKit: a task carries its service's labels for filtering
            // (`docker stack ps` asks for the stack's namespace label).
            .filter(|t| {
                filters.labels_match("label", &t.labels)
                    || st.services.get(&t.service_id).is_some_and(|s| filters.labels_match("label", &s.spec.labels))
            })
            // The docker CLI's progress display asks for tasks of the current spec.
            .filter(|t| {
                filters.any("_up-to-date", |v| {
                    let current = st.services.get(&t.service_id).map(|s| s.spec.task_template == t.spec).unwrap_or(false);
                    v != "true" || current
                })
            })
            .filter(|t| {
                let name = task_name(&st, t);
                filters.any("name", |v| name.starts_with(v))
            })
            .cloned()
            .collect()
    }

    pub fn task(&self, key: &str) -> Result<Task, ApiError> {
        let st = self.cluster.store();
        if let Some(t) = st.tasks.get(key) {
            return Ok(t.clone());
        }
        let matches: Vec<&Task> = st.tasks.values().filter(|t| t.id.starts_with(key)).collect();
        match matches.as_slice() {
            [t] if !key.is_empty() => Ok((*t).clone()),
            [] | [_] => Err(ApiError::not_found(format!("task {key} not found"))),
            _ => Err(ApiError::bad_request(format!("task {key} is ambiguous"))),
        }
    }
}

/// `desired-state=running|shutdown|accepted`, as the docker CLI sends it.
fn desired_matches(filter: &str, state: TaskState) -> bool {
    match filter {
        "running" => state <= TaskState::Running,
        "shutdown" => state >= TaskState::Shutdown,
        "accepted" => state == TaskState::Accepted,
        other => TaskState::parse(other) == Some(state),
    }
}

fn task_name(st: &crate::store::Store, t: &Task) -> String {
    let svc = st.services.get(&t.service_id).map(|s| s.spec.name.as_str()).unwrap_or("");
    if t.slot > 0 {
        format!("{svc}.{}", t.slot)
    } else {
        format!("{svc}.{}", t.node_id)
    }
}

/// `REPLICAS` for `service ls`: running tasks out of desired ones (for
/// jobs, of the current run, with the completed ones counted apart).
pub(crate) fn status_of<'a>(s: &Service, tasks: impl Iterator<Item = &'a Task>) -> ServiceStatus {
    let iteration = s.job_status.as_ref().map(|j| j.job_iteration.index);
    let mut running = 0;
    let mut completed = 0;
    let mut live = 0;
    for t in tasks.filter(|t| t.service_id == s.id) {
        if iteration.is_some() && t.job_iteration.as_ref().map(|v| v.index) != iteration {
            continue;
        }
        if t.status.state == TaskState::Complete {
            completed += 1;
        } else if t.desired_state <= TaskState::Complete {
            live += 1;
            if t.status.state == TaskState::Running {
                running += 1;
            }
        }
    }
    let desired = match s.spec.mode {
        ServiceMode::Replicated { replicas } => replicas,
        ServiceMode::ReplicatedJob { max_concurrent, total_completions } => {
            let max_concurrent = max_concurrent.unwrap_or(1).max(1);
            let total = total_completions.unwrap_or(max_concurrent);
            max_concurrent.min(total.saturating_sub(completed))
        }
        // Global: one task per eligible node, which is what is live.
        _ => live,
    };
    ServiceStatus { running_tasks: running, desired_tasks: desired, completed_tasks: completed }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_api::task::{ContainerSpec, Placement};

    fn spec(name: &str, image: &str) -> ServiceSpec {
        let mut s = ServiceSpec { name: name.into(), ..Default::default() };
        s.task_template.container_spec = Some(ContainerSpec { image: image.into(), ..Default::default() });
        s
    }

    #[test]
    fn values_the_updater_would_misread_are_refused() {
        let mut s = spec("web", "busybox");
        s.update_config =
            Some(shoal_api::service::UpdateConfig { failure_action: "rollback".into(), order: "start-first".into(), ..Default::default() });
        assert!(validate_service_spec(&s).is_ok());
        s.update_config.as_mut().unwrap().failure_action = "retry".into();
        assert!(validate_service_spec(&s)
            .unwrap_err()
            .message
            .ends_with("UpdateConfig: unrecognized failure action \"retry\": want pause, continue or rollback"));
        let mut s = spec("web", "busybox");
        s.rollback_config = Some(shoal_api::service::UpdateConfig { order: "first".into(), ..Default::default() });
        assert!(validate_service_spec(&s).unwrap_err().message.contains("RollbackConfig: unrecognized order \"first\""));
        let mut s = spec("web", "busybox");
        let file = shoal_api::secret::FileTarget { name: "db".into(), uid: "0".into(), gid: "staff".into(), mode: 0o444 };
        s.task_template.container_spec.as_mut().unwrap().secrets =
            vec![shoal_api::secret::SecretReference { file: Some(file), secret_id: "x".into(), secret_name: "db".into() }];
        assert!(validate_service_spec(&s).unwrap_err().message.ends_with("ContainerSpec: db: File.GID \"staff\" is not a number"));
    }

    #[test]
    fn validation_uses_swarmkits_words() {
        assert!(validate_service_spec(&spec("web", "busybox")).is_ok());
        let e = validate_service_spec(&spec("bad name", "busybox")).unwrap_err();
        assert!(e.message.ends_with("name must be valid as a DNS name component"), "{e}");
        let e = validate_service_spec(&spec("web", "")).unwrap_err();
        assert!(e.message.ends_with("ContainerSpec: image reference must be provided"));
        let mut s = spec("web", "busybox");
        s.task_template.placement = Some(Placement { constraints: vec!["node.labels.zone=a".into()], ..Default::default() });
        let e = validate_service_spec(&s).unwrap_err();
        assert!(e.message.contains("constraint expected one operator from ==, !="), "{e}");
        assert_eq!(e.status, 400);
        let mut s = spec("web", "busybox");
        let m = |t: &str| shoal_api::task::Mount { r#type: "tmpfs".into(), target: t.into(), ..Default::default() };
        s.task_template.container_spec.as_mut().unwrap().mounts = vec![m("/a"), m("/b"), m("/a")];
        let e = validate_service_spec(&s).unwrap_err();
        assert_eq!(e.message, "rpc error: code = InvalidArgument desc = ContainerSpec: duplicate mount point: /a");
        s.task_template.container_spec.as_mut().unwrap().mounts =
            vec![shoal_api::task::Mount { r#type: "npipe".into(), target: "/p".into(), ..Default::default() }];
        assert!(validate_service_spec(&s)
            .unwrap_err()
            .message
            .ends_with("ContainerSpec: invalid MountType: \"npipe\": want bind, volume or tmpfs"));
        let mut s = spec("web", "busybox");
        s.endpoint_spec = Some(shoal_api::service::EndpointSpec {
            ports: vec![shoal_api::service::PortConfig { target_port: 80, published_port: 8080, ..Default::default() }],
            ..Default::default()
        });
        assert!(validate_service_spec(&s).is_ok(), "ingress mode goes through the routing mesh");
        s.endpoint_spec.as_mut().unwrap().ports[0].published_port = 0;
        assert!(validate_service_spec(&s).is_ok(), "the allocator picks an ingress port");
        s.endpoint_spec.as_mut().unwrap().ports[0].published_port = 8080;
        s.endpoint_spec.as_mut().unwrap().ports[0].publish_mode = shoal_api::service::PublishMode::Host;
        assert!(validate_service_spec(&s).is_ok(), "host mode with a port is published on the task's node");
        s.endpoint_spec.as_mut().unwrap().ports[0].published_port = 0;
        assert!(validate_service_spec(&s).unwrap_err().message.contains("needs its published port"));
    }

    #[test]
    fn privileges_are_checked_at_create() {
        let with = |json: &str| {
            let mut s = spec("web", "busybox");
            s.task_template.container_spec.as_mut().unwrap().privileges = Some(serde_json::from_str(json).unwrap());
            validate_service_spec(&s)
        };
        assert!(with(r#"{"Seccomp": {"Mode": "unconfined"}, "AppArmor": {"Mode": "disabled"}, "NoNewPrivileges": true}"#).is_ok());
        let e = with(r#"{"CredentialSpec": {"Registry": "x"}}"#).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("ContainerSpec: Privileges.CredentialSpec is not supported"), "{e}");
        let profile = shoal_api::base64::encode(br#"{"defaultAction": "SCMP_ACT_NOPE"}"#);
        let e = with(&format!(r#"{{"Seccomp": {{"Mode": "custom", "Profile": "{profile}"}}}}"#)).unwrap_err();
        assert!(e.message.contains("Privileges.Seccomp.Profile: invalid seccomp profile: unknown defaultAction"), "{e}");
    }

    #[test]
    fn desired_state_filter() {
        assert!(desired_matches("running", TaskState::Running));
        assert!(!desired_matches("running", TaskState::Shutdown));
        assert!(desired_matches("shutdown", TaskState::Remove));
    }
}
