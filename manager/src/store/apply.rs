//! Applying committed commands to the store.

use shoal_api::task::TaskState;
use shoal_api::Version;

use super::error::{Code, StoreError};
use super::{Command, Envelope, Store};

/// A job runs again each time it is created or updated: the run is named
/// by the service version (`JobStatus.JobIteration`), as in SwarmKit.
fn stamp_job_iteration(svc: &mut shoal_api::service::Service, at: &str) {
    svc.job_status =
        svc.spec.mode.is_job().then(|| shoal_api::service::JobStatus { job_iteration: svc.version, last_execution: at.to_string() });
}

/// Counts a task entering `new` (from `old`, or as a new task) for
/// `swarm_manager_task_state_transitions_total`.
fn transition(old: Option<TaskState>, new: TaskState) {
    if old != Some(new) {
        shoal_metrics::get().task_transition(new.as_str());
    }
}

/// Applies one committed proposal at log index `index`, once: a proposal
/// ID seen among the recent ones is not applied again, and its first result
/// is answered. An error leaves the store unchanged and is returned to the
/// proposer. (Proposal 0 is never remembered: entries from before IDs.)
pub fn apply(store: &mut Store, index: u64, env: Envelope) -> Result<serde_json::Value, StoreError> {
    let proposal = env.proposal;
    if proposal != 0 {
        if let Some(first) = store.recent.get(proposal) {
            return first.clone();
        }
    }
    let result = apply_command(store, index, env);
    if proposal != 0 {
        store.recent.insert(proposal, result.clone());
    }
    result
}

fn apply_command(store: &mut Store, index: u64, env: Envelope) -> Result<serde_json::Value, StoreError> {
    let at = env.at;
    let version = Version { index };
    match env.command {
        Command::CreateCluster { cluster, node } => {
            if store.cluster.is_some() {
                return Err(StoreError::Exists("the swarm already exists".into()));
            }
            let mut cluster = *cluster;
            cluster.swarm.version = version;
            store.cluster = Some(cluster);
            let mut node = *node;
            node.version = version;
            store.nodes.insert(node.id.clone(), node);
            Ok(serde_json::Value::Null)
        }
        Command::CreateNode { node } => {
            if store.nodes.contains_key(&node.id) {
                return Err(StoreError::Exists(format!("node {} already exists", node.id)));
            }
            let mut node = *node;
            node.version = version;
            store.nodes.insert(node.id.clone(), node);
            Ok(serde_json::Value::Null)
        }
        Command::UpdateNodeSpec { id, version: expected, spec } => {
            let node = store.nodes.get_mut(&id).ok_or_else(|| StoreError::not_found(format_args!("node {id}")))?;
            if node.version.index != expected {
                return Err(StoreError::OutOfSequence);
            }
            node.spec = spec;
            node.version = version;
            node.updated_at = at;
            Ok(serde_json::Value::Null)
        }
        Command::UpdateNodeStatus { id, status, description } => {
            // A status report for a node removed meanwhile is dropped quietly.
            let Some(node) = store.nodes.get_mut(&id) else { return Ok(serde_json::Value::Null) };
            node.status = status;
            if let Some(d) = description {
                node.description = *d;
            }
            node.version = version;
            node.updated_at = at;
            Ok(serde_json::Value::Null)
        }
        Command::RemoveNode { id } => {
            if store.nodes.remove(&id).is_none() {
                return Err(StoreError::not_found(format_args!("node {id}")));
            }
            store.removed.insert(id);
            Ok(serde_json::Value::Null)
        }
        Command::UpdateCluster { version: expected, spec, worker_secret, manager_secret, new_root, cross_signed, unlock_key } => {
            let cluster = store.cluster.as_mut().ok_or(StoreError::NotInSwarm)?;
            if cluster.swarm.version.index != expected {
                return Err(StoreError::OutOfSequence);
            }
            cluster.swarm.spec = *spec;
            if let Some(s) = worker_secret {
                cluster.worker_secret = s;
            }
            if let Some(s) = manager_secret {
                cluster.manager_secret = s;
            }
            if let Some(k) = unlock_key {
                cluster.unlock_key = k;
            }
            if let Some((cert, key)) = new_root {
                store.root_rotation = crate::store::RootRotation {
                    previous_root_pem: std::mem::take(&mut cluster.root_cert_pem),
                    cross_signed_pem: cross_signed.unwrap_or_default(),
                };
                cluster.swarm.tls_info.trust_root = cert.clone();
                cluster.root_cert_pem = cert;
                cluster.root_key_pem = key;
            }
            cluster.swarm.version = version;
            cluster.swarm.updated_at = at;
            Ok(serde_json::Value::Null)
        }
        Command::CreateService { service, registry_auth } => {
            super::secrets::check_references(store, &service.spec)?;
            let name = &service.spec.name;
            if store.services.values().any(|s| &s.spec.name == name) {
                return Err(StoreError::rpc(
                    Code::AlreadyExists,
                    format!("name conflicts with an existing object: service {name} already exists"),
                ));
            }
            let mut service = *service;
            service.version = version;
            stamp_job_iteration(&mut service, &at);
            if let Some(auth) = registry_auth {
                store.registry_auth.insert(service.id.clone(), auth);
            }
            store.services.insert(service.id.clone(), service);
            Ok(serde_json::Value::Null)
        }
        Command::UpdateService { id, version: expected, spec, rollback, registry_auth } => {
            let svc = store.services.get(&id).ok_or_else(|| StoreError::not_found(format_args!("service {id}")))?;
            if svc.version.index != expected {
                return Err(StoreError::OutOfSequence);
            }
            let spec = if rollback {
                svc.previous_spec
                    .clone()
                    .ok_or_else(|| StoreError::rpc(Code::FailedPrecondition, format!("service {id} does not have a previous spec")))?
            } else {
                *spec
            };
            super::secrets::check_references(store, &spec)?;
            let name = &spec.name;
            if store.services.values().any(|s| &s.spec.name == name && s.id != id) {
                return Err(StoreError::rpc(
                    Code::AlreadyExists,
                    format!("name conflicts with an existing object: service {name} already exists"),
                ));
            }
            let svc = store.services.get_mut(&id).expect("checked above");
            let old = std::mem::replace(&mut svc.spec, spec);
            svc.previous_spec = Some(old);
            // As SwarmKit: a new spec resets the update status (the updater
            // sets `updating` when it starts); a rollback says it started.
            svc.update_status = rollback.then(|| shoal_api::service::UpdateStatus {
                state: "rollback_started".into(),
                started_at: Some(at.clone()),
                completed_at: None,
                message: "manually requested rollback".into(),
            });
            svc.version = version;
            stamp_job_iteration(svc, &at);
            svc.updated_at = at;
            if let Some(auth) = registry_auth {
                store.registry_auth.insert(id, auth);
            }
            Ok(serde_json::Value::Null)
        }
        Command::SetUpdateStatus { id, version: expected, status, rollback } => {
            set_update_status(store, &id, expected, status, rollback, version, &at).map(|_| serde_json::Value::Null)
        }
        Command::TaskIntents { delete, put, services } => {
            let mut stale = 0u64;
            for id in delete {
                store.tasks.remove(&id);
            }
            for mut t in put {
                // A task of a service removed meanwhile is not revived, nor
                // one deleted meanwhile, nor one changed since it was read.
                let service_gone = !t.service_id.is_empty() && !store.services.contains_key(&t.service_id);
                let read = t.version.index;
                let current = store.tasks.get(&t.id).map(|c| c.version.index);
                if service_gone || current.unwrap_or(0) != read {
                    stale += 1;
                    continue;
                }
                t.version = version;
                if t.created_at.is_empty() {
                    t.created_at = at.clone();
                }
                t.updated_at = at.clone();
                transition(store.tasks.get(&t.id).map(|c| c.status.state), t.status.state);
                store.tasks.insert(t.id.clone(), t);
            }
            for p in services {
                if set_update_status(store, &p.service_id, p.version, p.status, p.rollback, version, &at).is_err() {
                    stale += 1;
                }
            }
            Ok(serde_json::json!({ "stale": stale }))
        }
        Command::RemoveService { id } => {
            if store.services.remove(&id).is_none() {
                return Err(StoreError::not_found(format_args!("service {id}")));
            }
            store.registry_auth.remove(&id);
            // Tasks no node has accepted go at once; the others are told to
            // go and are reaped once their node reports them stopped.
            store.tasks.retain(|_, t| t.service_id != id || t.status.state > TaskState::Assigned);
            for t in store.tasks.values_mut().filter(|t| t.service_id == id) {
                t.desired_state = TaskState::Remove;
                t.version = version;
            }
            Ok(serde_json::Value::Null)
        }
        Command::PutTasks { tasks } => {
            // A task written for a service removed meanwhile is dropped, so
            // a controller acting on an older view cannot revive it. (Tasks
            // of no service at all are SwarmKit's benchmark shape; only the
            // scheduler benchmark writes them.)
            for mut t in tasks.into_iter().filter(|t| t.service_id.is_empty() || store.services.contains_key(&t.service_id)) {
                t.version = version;
                if t.created_at.is_empty() {
                    t.created_at = at.clone();
                }
                t.updated_at = at.clone();
                transition(store.tasks.get(&t.id).map(|c| c.status.state), t.status.state);
                store.tasks.insert(t.id.clone(), t);
            }
            Ok(serde_json::Value::Null)
        }
        Command::UpdateTaskStatus { node_id, updates } => {
            for (id, status) in updates {
                if let Some(t) = store.tasks.get_mut(&id) {
                    // Only the task's node may report, and states only move forward.
                    if t.node_id == node_id && status.state >= t.status.state {
                        transition(Some(t.status.state), status.state);
                        t.status = status;
                        t.version = version;
                        t.updated_at = at.clone();
                    }
                }
            }
            Ok(serde_json::Value::Null)
        }
        c @ (Command::CreateSecret { .. }
        | Command::UpdateSecret { .. }
        | Command::RemoveSecret { .. }
        | Command::CreateConfig { .. }
        | Command::UpdateConfig { .. }
        | Command::RemoveConfig { .. }) => super::secrets::apply(store, version, at, c),
        Command::CreateNetwork { network } => {
            let pool = store.address_pool()?;
            let view = store.allocator_view(&pool);
            crate::allocator::check_network(&view, &network.spec)?;
            let mut network = *network;
            network.version = version;
            store.networks.insert(network.id.clone(), network);
            Ok(serde_json::Value::Null)
        }
        Command::RemoveNetwork { id } => {
            let pool = store.address_pool()?;
            let view = store.allocator_view(&pool);
            crate::allocator::check_network_removal(&view, &id)?;
            store.networks.remove(&id);
            Ok(serde_json::Value::Null)
        }
        Command::Allocate { networks, services, tasks, nodes } => {
            let unchanged = networks.iter().all(|n| store.networks.get(&n.id).map(|c| c.version.index) == Some(n.version.index))
                && services.iter().all(|s| store.services.get(&s.id).map(|c| c.version.index) == Some(s.version.index))
                && tasks.iter().all(|t| store.tasks.get(&t.id).map(|c| c.version.index) == Some(t.version.index));
            if !unchanged {
                return Ok(serde_json::json!({ "stale": true }));
            }
            let pool = store.address_pool()?;
            let view = store.allocator_view(&pool);
            let changes = crate::allocator::Changes { networks, services, tasks, nodes, errors: Vec::new() };
            let clashes = crate::allocator::conflicting_claims(&view, &changes);
            if !clashes.is_empty() {
                return Ok(serde_json::json!({ "stale": true, "clashes": clashes }));
            }
            for mut n in changes.networks {
                n.version = version;
                n.updated_at = at.clone();
                store.networks.insert(n.id.clone(), n);
            }
            for mut s in changes.services {
                s.version = version;
                s.updated_at = at.clone();
                store.services.insert(s.id.clone(), s);
            }
            for mut t in changes.tasks {
                t.version = version;
                t.updated_at = at.clone();
                transition(store.tasks.get(&t.id).map(|c| c.status.state), t.status.state);
                store.tasks.insert(t.id.clone(), t);
            }
            for n in changes.nodes {
                // A node removed meanwhile has nothing to hold.
                if let Some(node) = store.nodes.get_mut(&n.node_id) {
                    node.attachments = n.attachments;
                }
            }
            Ok(serde_json::json!({ "stale": false }))
        }
        Command::DeleteTasks { ids } => {
            for id in ids {
                store.tasks.remove(&id);
            }
            Ok(serde_json::Value::Null)
        }
    }
}

/// The updater's progress for service `id`, if it is still at `expected`.
fn set_update_status(
    store: &mut Store,
    id: &str,
    expected: u64,
    status: shoal_api::service::UpdateStatus,
    rollback: bool,
    version: Version,
    at: &str,
) -> Result<(), StoreError> {
    let svc = store.services.get_mut(id).ok_or_else(|| StoreError::not_found(format_args!("service {id}")))?;
    if svc.version.index != expected {
        return Err(StoreError::OutOfSequence);
    }
    if rollback {
        if svc.previous_spec.is_none() {
            return Err(StoreError::Invalid(format!("service {id} does not have a previous spec")));
        }
        // SwarmKit's automatic rollback forgets the failed spec.
        svc.spec = svc.previous_spec.take().expect("checked above");
    }
    svc.update_status = Some(status);
    svc.version = version;
    svc.updated_at = at.to_string();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_api::{Node, NodeSpec};

    fn env(command: Command) -> Envelope {
        Envelope { proposal: 0, at: "2026-01-01T00:00:00Z".into(), command }
    }

    fn store_with_node() -> Store {
        let mut s = Store::default();
        let node = Node { id: "n1".into(), ..Default::default() };
        apply(&mut s, 3, env(Command::CreateNode { node: Box::new(node) })).unwrap();
        s
    }

    #[test]
    fn node_update_checks_version() {
        let mut s = store_with_node();
        let mut spec = NodeSpec::default();
        spec.labels.insert("zone".into(), "east".into());
        let stale = apply(&mut s, 4, env(Command::UpdateNodeSpec { id: "n1".into(), version: 2, spec: spec.clone() }));
        assert_eq!(stale.unwrap_err(), StoreError::OutOfSequence);
        assert!(s.nodes["n1"].spec.labels.is_empty(), "a refused update changes nothing");
        apply(&mut s, 5, env(Command::UpdateNodeSpec { id: "n1".into(), version: 3, spec })).unwrap();
        assert_eq!(s.nodes["n1"].spec.labels["zone"], "east");
        assert_eq!(s.nodes["n1"].version.index, 5);
    }

    #[test]
    fn service_names_are_unique_and_updates_keep_the_previous_spec() {
        use shoal_api::service::{Service, ServiceSpec};
        let mut s = Store::default();
        let svc =
            |id: &str| Service { id: id.into(), spec: ServiceSpec { name: "web".into(), ..Default::default() }, ..Default::default() };
        apply(&mut s, 2, env(Command::CreateService { service: Box::new(svc("s1")), registry_auth: None })).unwrap();
        let dup = apply(&mut s, 3, env(Command::CreateService { service: Box::new(svc("s2")), registry_auth: None })).unwrap_err();
        assert_eq!(shoal_api::ApiError::from(dup).status, 409);
        assert_eq!(s.services.len(), 1);
        let mut spec = s.services["s1"].spec.clone();
        spec.labels.insert("v".into(), "2".into());
        let stale =
            Command::UpdateService { id: "s1".into(), version: 1, spec: Box::new(spec.clone()), rollback: false, registry_auth: None };
        assert_eq!(apply(&mut s, 4, env(stale)).unwrap_err(), StoreError::OutOfSequence);
        apply(
            &mut s,
            5,
            env(Command::UpdateService { id: "s1".into(), version: 2, spec: Box::new(spec), rollback: false, registry_auth: None }),
        )
        .unwrap();
        assert_eq!(s.services["s1"].spec.labels["v"], "2");
        let back = Command::UpdateService { id: "s1".into(), version: 5, spec: Box::default(), rollback: true, registry_auth: None };
        apply(&mut s, 6, env(back)).unwrap();
        assert!(s.services["s1"].spec.labels.is_empty(), "rollback restores the previous spec");
    }

    #[test]
    fn registry_credentials_follow_the_service() {
        let mut s = Store::default();
        let service = shoal_api::service::Service { id: "s1".into(), ..Default::default() };
        let create = Command::CreateService { service: Box::new(service), registry_auth: Some("sealed-1".into()) };
        apply(&mut s, 2, env(create)).unwrap();
        assert_eq!(s.registry_auth["s1"], "sealed-1");
        let spec = s.services["s1"].spec.clone();
        let keep =
            Command::UpdateService { id: "s1".into(), version: 2, spec: Box::new(spec.clone()), rollback: false, registry_auth: None };
        apply(&mut s, 3, env(keep)).unwrap();
        assert_eq!(s.registry_auth["s1"], "sealed-1", "an update without credentials keeps them");
        let set = Command::UpdateService {
            id: "s1".into(),
            version: 3,
            spec: Box::new(spec),
            rollback: false,
            registry_auth: Some("sealed-2".into()),
        };
        apply(&mut s, 4, env(set)).unwrap();
        assert_eq!(s.registry_auth["s1"], "sealed-2");
        apply(&mut s, 5, env(Command::RemoveService { id: "s1".into() })).unwrap();
        assert!(s.registry_auth.is_empty());
    }

    #[test]
    fn a_status_reported_between_a_controllers_read_and_its_write_survives() {
        use shoal_api::task::{Task, TaskState, TaskStatus};
        let mut s = Store::default();
        let service = shoal_api::service::Service { id: "s1".into(), ..Default::default() };
        apply(&mut s, 2, env(Command::CreateService { service: Box::new(service), registry_auth: None })).unwrap();
        let task = Task { id: "t1".into(), service_id: "s1".into(), node_id: "n1".into(), ..Default::default() };
        let intents = |put| Command::TaskIntents { delete: vec![], put, services: vec![] };
        assert_eq!(apply(&mut s, 3, env(intents(vec![task]))).unwrap()["stale"], 0, "a new task (read at 0) is created");

        // A controller reads the task at version 3 and decides to shut it down ...
        let mut read = s.tasks["t1"].clone();
        assert_eq!(read.version.index, 3);
        read.desired_state = TaskState::Shutdown;
        // ... while its node reports it running.
        let running = TaskStatus { state: TaskState::Running, message: "started".into(), ..Default::default() };
        apply(&mut s, 4, env(Command::UpdateTaskStatus { node_id: "n1".into(), updates: vec![("t1".into(), running)] })).unwrap();
        // The controller's write is stale: dropped, and counted.
        assert_eq!(apply(&mut s, 5, env(intents(vec![read]))).unwrap()["stale"], 1);
        assert_eq!(s.tasks["t1"].status.state, TaskState::Running, "the reported state survives");
        assert_eq!(s.tasks["t1"].desired_state, TaskState::default());
        // Reconciling again from the new state lands.
        let mut again = s.tasks["t1"].clone();
        again.desired_state = TaskState::Shutdown;
        assert_eq!(apply(&mut s, 6, env(intents(vec![again]))).unwrap()["stale"], 0);
        assert_eq!((s.tasks["t1"].desired_state, s.tasks["t1"].status.state), (TaskState::Shutdown, TaskState::Running));

        // A task deleted meanwhile is not revived by a write read before.
        let old = s.tasks["t1"].clone();
        apply(&mut s, 7, env(Command::TaskIntents { delete: vec!["t1".into()], put: vec![], services: vec![] })).unwrap();
        assert_eq!(apply(&mut s, 8, env(intents(vec![old]))).unwrap()["stale"], 1);
        assert!(s.tasks.is_empty());
    }

    #[test]
    fn task_state_changes_are_counted_once_each() {
        use shoal_api::task::{Task, TaskState, TaskStatus};
        // Other tests apply too: compare before and after (counters only grow).
        let count = |state: &'static str| shoal_metrics::get().task_transitions.get_or_create(&[("state", state)]).get();
        let mut s = Store::default();
        let service = shoal_api::service::Service { id: "s1".into(), ..Default::default() };
        apply(&mut s, 2, env(Command::CreateService { service: Box::new(service), registry_auth: None })).unwrap();
        let (new0, running0) = (count("new"), count("running"));
        let task = Task { id: "t1".into(), service_id: "s1".into(), node_id: "n1".into(), ..Default::default() };
        apply(&mut s, 3, env(Command::TaskIntents { delete: vec![], put: vec![task], services: vec![] })).unwrap();
        assert!(count("new") > new0, "a new task enters its state");
        let running = TaskStatus { state: TaskState::Running, ..Default::default() };
        let report = |status: &TaskStatus| Command::UpdateTaskStatus { node_id: "n1".into(), updates: vec![("t1".into(), status.clone())] };
        apply(&mut s, 4, env(report(&running))).unwrap();
        assert!(count("running") > running0);
    }

    #[test]
    fn a_proposal_that_reaches_the_log_twice_is_applied_once_and_answered_alike() {
        let mut s = Store::default();
        let svc = shoal_api::service::Service {
            id: "s1".into(),
            spec: shoal_api::service::ServiceSpec { name: "web".into(), ..Default::default() },
            ..Default::default()
        };
        let create =
            Envelope { proposal: 77, at: "t".into(), command: Command::CreateService { service: Box::new(svc), registry_auth: None } };
        assert!(apply(&mut s, 2, create.clone()).is_ok());
        // The same proposal again (its answer was lost; the caller retried):
        // not a conflict with itself, and nothing applied twice.
        assert!(apply(&mut s, 3, create.clone()).is_ok());
        assert_eq!(s.services.len(), 1);
        assert_eq!(s.services["s1"].version.index, 2);
        // A failed proposal repeats its failure.
        let bad = Envelope { proposal: 78, at: "t".into(), command: Command::RemoveService { id: "nope".into() } };
        let first = apply(&mut s, 4, bad.clone()).unwrap_err();
        assert_eq!(apply(&mut s, 5, bad).unwrap_err(), first);
        // Remembered across a snapshot.
        let mut restored: Store = serde_json::from_slice(&serde_json::to_vec(&s).unwrap()).unwrap();
        assert!(apply(&mut restored, 6, create).is_ok());
        assert_eq!(restored.services["s1"].version.index, 2);
    }

    #[test]
    fn recent_proposals_are_bounded_and_forget_the_oldest_first() {
        let mut r = crate::store::RecentProposals::default();
        for id in 1..=(crate::store::RECENT_PROPOSALS as u64 + 5) {
            r.insert(id, Ok(serde_json::Value::Null));
        }
        assert_eq!(r.len(), crate::store::RECENT_PROPOSALS);
        assert!(r.get(5).is_none() && r.get(6).is_some());
        let back: crate::store::RecentProposals = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back.len(), r.len());
        assert!(back.get(5).is_none() && back.get(6).is_some());
    }

    #[test]
    fn removed_nodes_are_remembered() {
        let mut s = store_with_node();
        apply(&mut s, 4, env(Command::RemoveNode { id: "n1".into() })).unwrap();
        assert!(s.nodes.is_empty());
        assert!(s.removed.contains("n1"));
        assert_eq!(
            apply(&mut s, 5, env(Command::RemoveNode { id: "n1".into() })).unwrap_err(),
            StoreError::NotFound("node n1 not found".into())
        );
    }

    #[test]
    fn find_node_by_name_and_prefix() {
        let mut s = store_with_node();
        s.nodes.get_mut("n1").unwrap().description.hostname = "node-1".into();
        assert_eq!(s.find_node("node-1").unwrap().id, "n1");
        assert_eq!(s.find_node("n").unwrap().id, "n1");
        assert_eq!(s.find_node("zz").unwrap_err().status, 404);
    }
}
