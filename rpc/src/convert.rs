//! Between the protocol's messages (`wire`) and the types the manager and
//! the agent work with. Reading a message never panics: a field that does
//! not hold what it should is an error naming it.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::logs::{LogEvent, LogLine, LogMessage, LogOptions, LogSelector, LogStream, SubscriptionMessage};
use crate::{wire, Assignments, HeartbeatRequest, HeartbeatResponse, JoinRequest, JoinResponse, RaftMember, TaskStatusUpdate};

/// Why a message could not be read.
pub type BadMessage = String;

pub fn to_json<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("the object model serialises")
}

pub fn from_json<T: DeserializeOwned>(field: &str, bytes: &[u8]) -> Result<T, BadMessage> {
    serde_json::from_slice(bytes).map_err(|e| format!("{field}: {e}"))
}

fn from_json_list<T: DeserializeOwned>(field: &str, items: &[Vec<u8>]) -> Result<Vec<T>, BadMessage> {
    items.iter().map(|b| from_json(field, b)).collect()
}

fn to_json_list<T: Serialize>(items: &[T]) -> Vec<Vec<u8>> {
    items.iter().map(|v| to_json(v)).collect()
}

pub fn role_to_wire(r: shoal_api::Role) -> i32 {
    match r {
        shoal_api::Role::Worker => wire::Role::Worker as i32,
        shoal_api::Role::Manager => wire::Role::Manager as i32,
    }
}

pub fn role_from_wire(r: i32) -> Result<shoal_api::Role, BadMessage> {
    match wire::Role::try_from(r) {
        Ok(wire::Role::Worker) => Ok(shoal_api::Role::Worker),
        Ok(wire::Role::Manager) => Ok(shoal_api::Role::Manager),
        Err(_) => Err(format!("role: unknown value {r}")),
    }
}

impl From<&RaftMember> for wire::Member {
    fn from(m: &RaftMember) -> Self {
        wire::Member { raft_id: m.raft_id, node_id: m.node_id.clone(), addr: m.addr.clone() }
    }
}

impl From<wire::Member> for RaftMember {
    fn from(m: wire::Member) -> Self {
        RaftMember { raft_id: m.raft_id, node_id: m.node_id, addr: m.addr }
    }
}

pub fn members_to_wire(ms: &[RaftMember]) -> Vec<wire::Member> {
    ms.iter().map(wire::Member::from).collect()
}

pub fn members_from_wire(ms: Vec<wire::Member>) -> Vec<RaftMember> {
    ms.into_iter().map(RaftMember::from).collect()
}

impl From<&JoinRequest> for wire::JoinRequest {
    fn from(j: &JoinRequest) -> Self {
        wire::JoinRequest {
            token: j.token.clone(),
            csr_pem: j.csr_pem.clone(),
            advertise_addr: j.advertise_addr.clone(),
            raft_addr: j.raft_addr.clone(),
            raft_id: j.raft_id,
            description: to_json(&j.description),
        }
    }
}

impl TryFrom<wire::JoinRequest> for JoinRequest {
    type Error = BadMessage;
    fn try_from(j: wire::JoinRequest) -> Result<Self, BadMessage> {
        Ok(JoinRequest {
            token: j.token,
            csr_pem: j.csr_pem,
            advertise_addr: j.advertise_addr,
            raft_addr: j.raft_addr,
            raft_id: j.raft_id,
            description: from_json("description", &j.description)?,
        })
    }
}

impl From<&JoinResponse> for wire::JoinResponse {
    fn from(j: &JoinResponse) -> Self {
        wire::JoinResponse {
            node_id: j.node_id.clone(),
            cluster_id: j.cluster_id.clone(),
            role: role_to_wire(j.role),
            cert_pem: j.cert_pem.clone(),
            root_pem: j.root_pem.clone(),
            managers: members_to_wire(&j.managers),
        }
    }
}

impl TryFrom<wire::JoinResponse> for JoinResponse {
    type Error = BadMessage;
    fn try_from(j: wire::JoinResponse) -> Result<Self, BadMessage> {
        Ok(JoinResponse {
            node_id: j.node_id,
            cluster_id: j.cluster_id,
            role: role_from_wire(j.role)?,
            cert_pem: j.cert_pem,
            root_pem: j.root_pem,
            managers: members_from_wire(j.managers),
        })
    }
}

impl From<&HeartbeatRequest> for wire::HeartbeatRequest {
    fn from(h: &HeartbeatRequest) -> Self {
        wire::HeartbeatRequest { addr: h.addr.clone(), description: h.description.as_ref().map(to_json).unwrap_or_default() }
    }
}

impl TryFrom<wire::HeartbeatRequest> for HeartbeatRequest {
    type Error = BadMessage;
    fn try_from(h: wire::HeartbeatRequest) -> Result<Self, BadMessage> {
        let description = match h.description.is_empty() {
            true => None,
            false => Some(from_json("description", &h.description)?),
        };
        Ok(HeartbeatRequest { addr: h.addr, description })
    }
}

impl From<&HeartbeatResponse> for wire::HeartbeatResponse {
    fn from(h: &HeartbeatResponse) -> Self {
        wire::HeartbeatResponse {
            period_ns: h.period_ns,
            desired_role: role_to_wire(h.desired_role),
            managers: members_to_wire(&h.managers),
            root_pem: h.root_pem.clone(),
            registered: h.registered,
        }
    }
}

impl TryFrom<wire::HeartbeatResponse> for HeartbeatResponse {
    type Error = BadMessage;
    fn try_from(h: wire::HeartbeatResponse) -> Result<Self, BadMessage> {
        Ok(HeartbeatResponse {
            period_ns: h.period_ns,
            desired_role: role_from_wire(h.desired_role)?,
            managers: members_from_wire(h.managers),
            root_pem: h.root_pem,
            registered: h.registered,
        })
    }
}

pub fn task_status_to_wire(updates: &[TaskStatusUpdate]) -> wire::TaskStatusRequest {
    let updates = updates.iter().map(|u| wire::TaskStatusUpdate { task_id: u.task_id.clone(), status: to_json(&u.status) }).collect();
    wire::TaskStatusRequest { updates }
}

pub fn task_status_from_wire(r: wire::TaskStatusRequest) -> Result<Vec<TaskStatusUpdate>, BadMessage> {
    r.updates.into_iter().map(|u| Ok(TaskStatusUpdate { status: from_json("status", &u.status)?, task_id: u.task_id })).collect()
}

impl From<&Assignments> for wire::Assignments {
    fn from(a: &Assignments) -> Self {
        wire::Assignments {
            tasks: to_json_list(&a.tasks),
            secrets: to_json_list(&a.secrets),
            configs: to_json_list(&a.configs),
            digest: a.digest,
            incremental: a.incremental,
            applied: a.applied,
            registry_auth: a.registry_auth.clone(),
            networks: to_json_list(&a.networks),
            host_ports: a.host_ports.iter().map(|(k, ps)| (k.clone(), wire::Ports { ports: to_json_list(ps) })).collect(),
            mesh: a.mesh.as_deref().map(to_json).unwrap_or_default(),
            service_names: a.service_names.clone(),
            service_labels: a.service_labels.iter().map(|(k, l)| (k.clone(), wire::Labels { labels: l.clone() })).collect(),
        }
    }
}

impl TryFrom<wire::Assignments> for Assignments {
    type Error = BadMessage;
    fn try_from(a: wire::Assignments) -> Result<Self, BadMessage> {
        let host_ports =
            a.host_ports.into_iter().map(|(k, p)| Ok((k, from_json_list("host_ports", &p.ports)?))).collect::<Result<_, BadMessage>>()?;
        let mesh = match a.mesh.is_empty() {
            true => None,
            false => Some(Box::new(from_json("mesh", &a.mesh)?)),
        };
        Ok(Assignments {
            tasks: from_json_list("tasks", &a.tasks)?,
            secrets: from_json_list("secrets", &a.secrets)?,
            configs: from_json_list("configs", &a.configs)?,
            digest: a.digest,
            incremental: a.incremental,
            applied: a.applied,
            registry_auth: a.registry_auth,
            networks: from_json_list("networks", &a.networks)?,
            host_ports,
            mesh,
            service_names: a.service_names,
            service_labels: a.service_labels.into_iter().map(|(k, l)| (k, l.labels)).collect(),
        })
    }
}

// ---- logs ----

impl From<&LogOptions> for wire::LogOptions {
    fn from(o: &LogOptions) -> Self {
        // i64 nanoseconds reach the year 2262.
        let since = o.since_unix_nanos.map(|n| n.clamp(i64::MIN as i128, i64::MAX as i128) as i64);
        wire::LogOptions { follow: o.follow, tail: o.tail, since_unix_nanos: since, stdout: o.stdout, stderr: o.stderr }
    }
}

impl From<wire::LogOptions> for LogOptions {
    fn from(o: wire::LogOptions) -> Self {
        LogOptions {
            follow: o.follow,
            tail: o.tail,
            since_unix_nanos: o.since_unix_nanos.map(i128::from),
            stdout: o.stdout,
            stderr: o.stderr,
        }
    }
}

impl From<&SubscriptionMessage> for wire::LogSubscription {
    fn from(m: &SubscriptionMessage) -> Self {
        wire::LogSubscription { id: m.id.clone(), task_ids: m.task_ids.clone(), options: Some((&m.options).into()), close: m.close }
    }
}

impl From<wire::LogSubscription> for SubscriptionMessage {
    fn from(m: wire::LogSubscription) -> Self {
        SubscriptionMessage { id: m.id, task_ids: m.task_ids, options: m.options.map(Into::into).unwrap_or_default(), close: m.close }
    }
}

impl From<&LogLine> for wire::LogLine {
    fn from(l: &LogLine) -> Self {
        let stream = match l.stream {
            LogStream::Stdout => wire::LogStream::Stdout,
            LogStream::Stderr => wire::LogStream::Stderr,
        };
        wire::LogLine { task_id: l.task_id.clone(), stream: stream as i32, time: l.time.clone(), data: l.data.clone() }
    }
}

impl TryFrom<wire::LogLine> for LogLine {
    type Error = BadMessage;
    fn try_from(l: wire::LogLine) -> Result<Self, BadMessage> {
        let stream = match wire::LogStream::try_from(l.stream) {
            Ok(wire::LogStream::Stdout) => LogStream::Stdout,
            Ok(wire::LogStream::Stderr) => LogStream::Stderr,
            Err(_) => return Err(format!("stream: unknown value {}", l.stream)),
        };
        Ok(LogLine { task_id: l.task_id, stream, time: l.time, data: l.data })
    }
}

pub fn log_lines_from_wire(lines: Vec<wire::LogLine>) -> Result<Vec<LogLine>, BadMessage> {
    lines.into_iter().map(LogLine::try_from).collect()
}

pub fn log_subscribe_to_wire(selector: &LogSelector, options: &LogOptions) -> wire::LogSubscribeRequest {
    wire::LogSubscribeRequest {
        service_ids: selector.service_ids.clone(),
        task_ids: selector.task_ids.clone(),
        options: Some(options.into()),
    }
}

pub fn log_subscribe_from_wire(r: wire::LogSubscribeRequest) -> (LogSelector, LogOptions) {
    let selector = LogSelector { service_ids: r.service_ids, task_ids: r.task_ids };
    (selector, r.options.map(Into::into).unwrap_or_default())
}

impl From<&LogEvent> for wire::LogEvent {
    fn from(e: &LogEvent) -> Self {
        let kind = match e {
            LogEvent::Messages(ms) => wire::log_event::Kind::Messages(wire::LogMessages {
                messages: ms
                    .iter()
                    .map(|m| wire::LogMessage {
                        node_id: m.node_id.clone(),
                        service_id: m.service_id.clone(),
                        line: Some((&m.line).into()),
                    })
                    .collect(),
            }),
            LogEvent::End { warning } => wire::log_event::Kind::End(wire::LogEnd { warning: warning.clone() }),
        };
        wire::LogEvent { kind: Some(kind) }
    }
}

impl TryFrom<wire::LogEvent> for LogEvent {
    type Error = BadMessage;
    fn try_from(e: wire::LogEvent) -> Result<Self, BadMessage> {
        match e.kind {
            Some(wire::log_event::Kind::Messages(ms)) => ms
                .messages
                .into_iter()
                .map(|m| {
                    let line = m.line.ok_or("log message: no line")?.try_into()?;
                    Ok(LogMessage { node_id: m.node_id, service_id: m.service_id, line })
                })
                .collect::<Result<_, BadMessage>>()
                .map(LogEvent::Messages),
            Some(wire::log_event::Kind::End(end)) => Ok(LogEvent::End { warning: end.warning }),
            None => Err("log event: neither messages nor an end".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn through_wire<W: Message + Default>(w: W) -> W {
        W::decode(w.encode_to_vec().as_slice()).unwrap()
    }

    #[test]
    fn assignments_cross_the_wire_whole() {
        let mut task = shoal_api::task::Task { id: "t1".into(), service_id: "s1".into(), ..Default::default() };
        task.status.message = "started".into();
        let a = Assignments {
            tasks: vec![task],
            digest: 42,
            incremental: true,
            applied: 7,
            registry_auth: [("s1".to_string(), "auth".to_string())].into(),
            host_ports: [("t1".to_string(), vec![shoal_api::service::PortConfig { published_port: 80, ..Default::default() }])].into(),
            mesh: Some(Box::default()),
            service_names: [("s1".to_string(), "web".to_string())].into(),
            service_labels: [("s1".to_string(), [("a".to_string(), "b".to_string())].into())].into(),
            ..Default::default()
        };
        let back = Assignments::try_from(through_wire(wire::Assignments::from(&a))).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), serde_json::to_value(&a).unwrap());
    }

    #[test]
    fn heartbeats_and_joins_cross_the_wire_whole() {
        let hb = HeartbeatResponse {
            period_ns: 5_000_000_000,
            desired_role: shoal_api::Role::Manager,
            managers: vec![RaftMember { raft_id: 9, node_id: "m".into(), addr: "10.0.0.1:2377".into() }],
            root_pem: "root".into(),
            registered: Some(0),
        };
        let back = HeartbeatResponse::try_from(through_wire(wire::HeartbeatResponse::from(&hb))).unwrap();
        assert_eq!(format!("{back:?}"), format!("{hb:?}"), "Some(0) stays Some(0)");
        let req = HeartbeatRequest { addr: "10.0.0.2".into(), description: None };
        assert!(HeartbeatRequest::try_from(through_wire(wire::HeartbeatRequest::from(&req))).unwrap().description.is_none());
    }

    #[test]
    fn a_field_that_holds_no_object_is_named() {
        let bad = wire::HeartbeatRequest { addr: String::new(), description: b"[1".to_vec() };
        assert!(HeartbeatRequest::try_from(bad).unwrap_err().starts_with("description: "));
        assert_eq!(role_from_wire(7).unwrap_err(), "role: unknown value 7");
    }

    #[test]
    fn keys_and_tokens_stay_out_of_debug_output() {
        let join = wire::JoinRequest { token: "SWMTKN-1-secret".into(), ..Default::default() };
        let key = wire::SecretsKeyResponse { key: "c2VjcmV0".into(), unlock_key: Some("SWMKEY-1-x".into()) };
        let domain = JoinRequest {
            token: "SWMTKN-1-secret".into(),
            csr_pem: String::new(),
            advertise_addr: String::new(),
            raft_addr: String::new(),
            raft_id: 0,
            description: Default::default(),
        };
        let shown = format!("{join:?} {key:?} {domain:?}");
        assert!(!shown.contains("secret") && !shown.contains("c2VjcmV0") && !shown.contains("SWMKEY"), "{shown}");
    }

    #[test]
    fn log_events_cross_the_wire_whole() {
        let line = LogLine { task_id: "t".into(), stream: LogStream::Stderr, time: "2024-01-01T00:00:00Z".into(), data: "x\n".into() };
        for ev in [
            LogEvent::Messages(vec![LogMessage { node_id: "n".into(), service_id: "s".into(), line }]),
            LogEvent::End { warning: Some("w".into()) },
            LogEvent::End { warning: None },
        ] {
            assert_eq!(LogEvent::try_from(through_wire(wire::LogEvent::from(&ev))).unwrap(), ev);
        }
        let opts = LogOptions { follow: true, tail: Some(0), since_unix_nanos: Some(-5), stdout: true, stderr: false };
        assert_eq!(LogOptions::from(through_wire(wire::LogOptions::from(&opts))), opts);
    }
}
