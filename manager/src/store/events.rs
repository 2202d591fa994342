//! Cluster events (`docker events`, scope `swarm`) derived from the store
//! as each entry applies: what the entry's command may touch is read
//! before (`Touched::before`), compared with the store after
//! (`Touched::events`), and every object that appeared, changed or went
//! is one `create`, `update` or `remove` event, with the attributes moby's
//! `daemon/events.go` gives them (from SwarmKit's store watch, which this
//! mirrors). A pure function of the store and the command, so every
//! manager derives the same events, timed by the entry's own clock.

use std::collections::BTreeMap;

use shoal_api::event::Message;
use shoal_api::network::Network;
use shoal_api::secret::Config;
use shoal_api::service::{Service, ServiceMode};
use shoal_api::Node;

use super::{Command, SecretRecord, Store};

/// The objects an entry may change, as they were before it applied
/// (`None`: not there).
#[derive(Default)]
pub struct Touched {
    nodes: Vec<(String, Option<Node>)>,
    services: Vec<(String, Option<Service>)>,
    networks: Vec<(String, Option<Network>)>,
    secrets: Vec<(String, Option<SecretRecord>)>,
    configs: Vec<(String, Option<Config>)>,
}

impl Touched {
    /// Reads what `cmd` may change from `store` (before it applies).
    pub fn before(store: &Store, cmd: &Command) -> Touched {
        let mut t = Touched::default();
        let node = |t: &mut Touched, id: &str| t.nodes.push((id.to_string(), store.nodes.get(id).cloned()));
        let service = |t: &mut Touched, id: &str| t.services.push((id.to_string(), store.services.get(id).cloned()));
        let network = |t: &mut Touched, id: &str| t.networks.push((id.to_string(), store.networks.get(id).cloned()));
        match cmd {
            Command::CreateCluster { node: n, .. } | Command::CreateNode { node: n } => node(&mut t, &n.id),
            Command::UpdateNodeSpec { id, .. } | Command::UpdateNodeStatus { id, .. } | Command::RemoveNode { id } => node(&mut t, id),
            Command::CreateService { service: s, .. } => service(&mut t, &s.id),
            Command::UpdateService { id, .. } | Command::RemoveService { id } | Command::SetUpdateStatus { id, .. } => service(&mut t, id),
            Command::TaskIntents { services, .. } => services.iter().for_each(|p| service(&mut t, &p.service_id)),
            Command::CreateNetwork { network: n } => network(&mut t, &n.id),
            Command::RemoveNetwork { id } => network(&mut t, id),
            Command::Allocate { networks, services, nodes, .. } => {
                networks.iter().for_each(|n| network(&mut t, &n.id));
                services.iter().for_each(|s| service(&mut t, &s.id));
                nodes.iter().for_each(|n| node(&mut t, &n.node_id));
            }
            Command::CreateSecret { secret } => t.secrets.push((secret.secret.id.clone(), store.secrets.get(&secret.secret.id).cloned())),
            Command::UpdateSecret { id, .. } | Command::RemoveSecret { id } => t.secrets.push((id.clone(), store.secrets.get(id).cloned())),
            Command::CreateConfig { config } => t.configs.push((config.id.clone(), store.configs.get(&config.id).cloned())),
            Command::UpdateConfig { id, .. } | Command::RemoveConfig { id } => t.configs.push((id.clone(), store.configs.get(id).cloned())),
            Command::UpdateCluster { .. } | Command::PutTasks { .. } | Command::DeleteTasks { .. } | Command::UpdateTaskStatus { .. } => {}
        }
        t
    }

    /// The events of the entry, comparing the objects read before with
    /// `store` as it is now; `at` is the entry's time.
    pub fn events(self, store: &Store, at: &str) -> Vec<Message> {
        let mut out = Vec::new();
        for (id, old) in dedup(self.nodes) {
            if let Some((action, n, old)) = change(old.as_ref(), store.nodes.get(&id)) {
                out.push(Message::cluster("node", action, &id, node_attributes(action, n, old), at));
            }
        }
        for (id, old) in dedup(self.services) {
            if let Some((action, s, old)) = change(old.as_ref(), store.services.get(&id)) {
                out.push(Message::cluster("service", action, &id, service_attributes(action, s, old), at));
            }
        }
        for (id, old) in dedup(self.networks) {
            if let Some((action, n, _)) = change(old.as_ref(), store.networks.get(&id)) {
                out.push(Message::cluster("network", action, &id, name(&n.spec.name), at));
            }
        }
        for (id, old) in dedup(self.secrets) {
            let (old, new) = (old.map(|r| r.secret), store.secrets.get(&id).map(|r| r.secret.clone()));
            if let Some((action, s, _)) = change(old.as_ref(), new.as_ref()) {
                out.push(Message::cluster("secret", action, &id, name(&s.spec.name), at));
            }
        }
        for (id, old) in dedup(self.configs) {
            if let Some((action, c, _)) = change(old.as_ref(), store.configs.get(&id)) {
                out.push(Message::cluster("config", action, &id, name(&c.spec.name), at));
            }
        }
        out
    }
}

/// One entry per ID (the first read is the state before the entry).
fn dedup<T>(v: Vec<(String, Option<T>)>) -> Vec<(String, Option<T>)> {
    let mut seen = std::collections::BTreeSet::new();
    v.into_iter().filter(|(id, _)| seen.insert(id.clone())).collect()
}

/// What happened to one object: the action, the object as the event shows
/// it (the old one for a removal) and, for an update, the old one.
fn change<'a, T: PartialEq>(old: Option<&'a T>, new: Option<&'a T>) -> Option<(&'static str, &'a T, Option<&'a T>)> {
    match (old, new) {
        (None, Some(n)) => Some(("create", n, None)),
        (Some(o), Some(n)) if o != n => Some(("update", n, Some(o))),
        (Some(o), None) => Some(("remove", o, None)),
        _ => None,
    }
}

fn name(n: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("name".to_string(), n.to_string())])
}

fn lower<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_lowercase)).unwrap_or_default()
}

/// moby's `logNodeEvent`: the name (the spec's, else the hostname) and,
/// for an update, what changed of availability, role and state.
fn node_attributes(action: &str, n: &Node, old: Option<&Node>) -> BTreeMap<String, String> {
    let mut a = name(if n.spec.name.is_empty() { &n.description.hostname } else { &n.spec.name });
    if let (Some(old), "update") = (old, action) {
        let mut pair = |key: &str, o: String, n: String| {
            if o != n {
                a.insert(format!("{key}.old"), o);
                a.insert(format!("{key}.new"), n);
            }
        };
        pair("availability", old.spec.availability.as_str().into(), n.spec.availability.as_str().into());
        pair("role", old.spec.role.as_str().into(), n.spec.role.as_str().into());
        pair("state", lower(&old.status.state), lower(&n.status.state));
    }
    a
}

/// moby's `logServiceEvent`: the name and, for an update, the image,
/// replicas and update state that changed.
fn service_attributes(action: &str, s: &Service, old: Option<&Service>) -> BTreeMap<String, String> {
    let mut a = name(&s.spec.name);
    let (Some(old), "update") = (old, action) else { return a };
    let image = |s: &Service| s.spec.task_template.container_spec.as_ref().map(|c| c.image.clone()).unwrap_or_default();
    if image(old) != image(s) {
        a.insert("image.old".into(), image(old));
        a.insert("image.new".into(), image(s));
    }
    if let (ServiceMode::Replicated { replicas: o }, ServiceMode::Replicated { replicas: n }) = (&old.spec.mode, &s.spec.mode) {
        if o != n {
            a.insert("replicas.old".into(), o.to_string());
            a.insert("replicas.new".into(), n.to_string());
        }
    }
    if let Some(new) = &s.update_status {
        match &old.update_status {
            None => {
                a.insert("updatestate.new".into(), new.state.to_lowercase());
            }
            Some(o) if o.state != new.state => {
                a.insert("updatestate.old".into(), o.state.to_lowercase());
                a.insert("updatestate.new".into(), new.state.to_lowercase());
            }
            Some(_) => {}
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{apply, Envelope};
    use shoal_api::service::{ServiceSpec, UpdateStatus};
    use shoal_api::task::{ContainerSpec, TaskSpec};

    const AT: &str = "2026-01-01T00:00:00Z";

    /// Applies `cmd` at `index` and answers the events it made.
    fn run(store: &mut Store, index: u64, cmd: Command) -> Vec<Message> {
        let touched = Touched::before(store, &cmd);
        apply(store, index, Envelope { proposal: 0, at: AT.into(), command: cmd }).map(|_| touched.events(store, AT)).unwrap_or_default()
    }

    fn summary(events: &[Message]) -> Vec<String> {
        events
            .iter()
            .map(|m| {
                let attrs: Vec<String> = m.actor.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{} {} {} ({})", m.kind, m.action, m.actor.id, attrs.join(", "))
            })
            .collect()
    }

    fn web(image: &str, replicas: u64) -> ServiceSpec {
        ServiceSpec {
            name: "web".into(),
            task_template: TaskSpec {
                container_spec: Some(ContainerSpec { image: image.into(), ..Default::default() }),
                ..Default::default()
            },
            mode: ServiceMode::Replicated { replicas },
            ..Default::default()
        }
    }

    #[test]
    fn a_service_s_life_as_docker_reports_it() {
        let mut s = Store::default();
        let svc = Service { id: "s1".into(), spec: web("busybox:1", 1), ..Default::default() };
        let ev = run(&mut s, 2, Command::CreateService { service: Box::new(svc), registry_auth: None });
        assert_eq!(summary(&ev), ["service create s1 (name=web)"]);
        assert_eq!((ev[0].scope.as_str(), ev[0].time), ("swarm", 1_767_225_600));

        let update = Command::UpdateService {
            id: "s1".into(),
            version: 2,
            spec: Box::new(web("busybox:2", 3)),
            rollback: false,
            registry_auth: None,
        };
        assert_eq!(
            summary(&run(&mut s, 3, update)),
            ["service update s1 (image.new=busybox:2, image.old=busybox:1, name=web, replicas.new=3, replicas.old=1)"]
        );

        let status = |state: &str| UpdateStatus { state: state.into(), ..Default::default() };
        let updating = Command::SetUpdateStatus { id: "s1".into(), version: 3, status: status("updating"), rollback: false };
        assert_eq!(summary(&run(&mut s, 4, updating)), ["service update s1 (name=web, updatestate.new=updating)"]);
        let done = Command::SetUpdateStatus { id: "s1".into(), version: 4, status: status("completed"), rollback: false };
        assert_eq!(summary(&run(&mut s, 5, done)), ["service update s1 (name=web, updatestate.new=completed, updatestate.old=updating)"]);

        // A refused write (stale version) changes nothing: no event.
        let stale = Command::SetUpdateStatus { id: "s1".into(), version: 4, status: status("paused"), rollback: false };
        assert!(run(&mut s, 6, stale).is_empty());
        // Task writes are no service events.
        assert!(run(&mut s, 7, Command::PutTasks { tasks: vec![] }).is_empty());

        assert_eq!(summary(&run(&mut s, 8, Command::RemoveService { id: "s1".into() })), ["service remove s1 (name=web)"]);
    }

    #[test]
    fn node_updates_name_what_changed() {
        use shoal_api::{Availability, NodeSpec, NodeState, NodeStatus, Role};
        let mut s = Store::default();
        let mut node = Node { id: "n1".into(), ..Default::default() };
        node.description.hostname = "node-1".into();
        assert_eq!(summary(&run(&mut s, 2, Command::CreateNode { node: Box::new(node) })), ["node create n1 (name=node-1)"]);
        let ready = NodeStatus { state: NodeState::Ready, ..Default::default() };
        assert_eq!(
            summary(&run(&mut s, 3, Command::UpdateNodeStatus { id: "n1".into(), status: ready, description: None })),
            ["node update n1 (name=node-1, state.new=ready, state.old=unknown)"]
        );
        let spec = NodeSpec { availability: Availability::Drain, role: Role::Manager, ..Default::default() };
        assert_eq!(
            summary(&run(&mut s, 4, Command::UpdateNodeSpec { id: "n1".into(), version: 3, spec })),
            ["node update n1 (availability.new=drain, availability.old=active, name=node-1, role.new=manager, role.old=worker)"]
        );
        let named = NodeSpec { name: "edge".into(), ..s.nodes["n1"].spec.clone() };
        assert_eq!(
            summary(&run(&mut s, 5, Command::UpdateNodeSpec { id: "n1".into(), version: 4, spec: named })),
            ["node update n1 (name=edge)"]
        );
        assert_eq!(summary(&run(&mut s, 6, Command::RemoveNode { id: "n1".into() })), ["node remove n1 (name=edge)"]);
    }

    #[test]
    fn secrets_configs_and_networks_have_their_name() {
        use shoal_api::secret::{ConfigSpec, Secret, SecretSpec};
        let mut s = Store::default();
        let secret = SecretRecord {
            secret: Secret { id: "x1".into(), spec: SecretSpec { name: "pw".into(), ..Default::default() }, ..Default::default() },
            sealed: String::new(),
        };
        assert_eq!(summary(&run(&mut s, 2, Command::CreateSecret { secret: Box::new(secret) })), ["secret create x1 (name=pw)"]);
        let labels = BTreeMap::from([("a".to_string(), "b".to_string())]);
        assert_eq!(
            summary(&run(&mut s, 3, Command::UpdateSecret { id: "x1".into(), version: 2, labels: labels.clone() })),
            ["secret update x1 (name=pw)"]
        );
        assert_eq!(summary(&run(&mut s, 4, Command::RemoveSecret { id: "x1".into() })), ["secret remove x1 (name=pw)"]);
        let config = Config { id: "c1".into(), spec: ConfigSpec { name: "conf".into(), ..Default::default() }, ..Default::default() };
        assert_eq!(summary(&run(&mut s, 5, Command::CreateConfig { config: Box::new(config) })), ["config create c1 (name=conf)"]);
        assert_eq!(summary(&run(&mut s, 6, Command::RemoveConfig { id: "c1".into() })), ["config remove c1 (name=conf)"]);
        // A network needs a swarm (its address pool) to be created.
        assert!(run(&mut s, 7, Command::RemoveNetwork { id: "nope".into() }).is_empty());
    }

    #[test]
    fn the_same_entry_gives_the_same_events_on_every_manager() {
        let mut a = Store::default();
        let svc = Service { id: "s1".into(), spec: web("busybox:1", 1), ..Default::default() };
        let create = Command::CreateService { service: Box::new(svc), registry_auth: None };
        let mut b = a.clone();
        assert_eq!(run(&mut a, 2, create.clone()), run(&mut b, 2, create));
    }
}
