//! Docker's events (`GET /events`, `docker events`): the message shape
//! (moby's `events.Message`), the filters as moby's `daemon/events` matches
//! them, and the `since`/`until` timestamps the API takes.
//!
//! Who makes events: the manager derives cluster events (scope `swarm`)
//! from the store as entries apply (`shoal_manager::store::events`); the
//! worker reports its containers and images (scope `local`). Both hand
//! them to an [`EventSink`]; the daemon's hub keeps the recent ones and
//! streams them to subscribers.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::filters::Filters;
use crate::ApiError;

/// The object an event is about: its ID and attributes (`name`, labels,
/// `exitCode`, `updatestate.new`, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// One event, in moby's JSON shape. `status`, `id` and `from` are the
/// deprecated fields Docker still fills for container (and image) events.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    /// `local` (this engine) or `swarm` (the cluster).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub time: i64,
    #[serde(default, rename = "timeNano", skip_serializing_if = "is_zero")]
    pub time_nano: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// Nanoseconds since the epoch.
pub fn unix_nanos(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

impl Message {
    /// An engine event (moby's `Events.Log`): scope `local`, now, and for
    /// containers and images the deprecated `status`/`id`/`from`.
    pub fn local(kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) -> Message {
        Self::local_at(kind, action, id, attributes, unix_nanos(SystemTime::now()))
    }

    pub fn local_at(kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>, nanos: i64) -> Message {
        let mut m = Message {
            kind: kind.into(),
            action: action.into(),
            actor: Actor { id: id.into(), attributes },
            scope: "local".into(),
            time: nanos.div_euclid(1_000_000_000),
            time_nano: nanos,
            ..Default::default()
        };
        if kind == "container" || kind == "image" {
            m.id = id.into();
            m.status = action.into();
        }
        if kind == "container" {
            m.from = m.actor.attributes.get("image").cloned().unwrap_or_default();
        }
        m
    }

    /// A cluster event (moby's `logClusterEvent`): scope `swarm`, at the
    /// time the change carries (an RFC 3339 string; unreadable is 0).
    pub fn cluster(kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>, at: &str) -> Message {
        let nanos = crate::time::parse_rfc3339(at).map(unix_nanos).unwrap_or(0);
        Message {
            kind: kind.into(),
            action: action.into(),
            actor: Actor { id: id.into(), attributes },
            scope: "swarm".into(),
            time: nanos.div_euclid(1_000_000_000),
            time_nano: nanos,
            ..Default::default()
        }
    }
}

/// Where producers hand their events (the daemon's hub). Never blocks.
pub trait EventSink: Send + Sync {
    fn publish(&self, m: Message);
}

/// The filter keys `/events` takes (moby's `daemon/events/filter.go`).
pub const FILTER_KEYS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];

/// An `/events` filter, matched as moby matches it: every key given must
/// match; `type`, `event`, `scope` and `image` exactly; containers,
/// services, nodes, networks, secrets, configs, volumes, plugins and
/// daemons by ID or `name` attribute, or a prefix of either; `label=k` or
/// `label=k=v` against the attributes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    filters: Filters,
}

impl EventFilter {
    pub fn parse(raw: Option<&str>) -> Result<EventFilter, ApiError> {
        Ok(EventFilter { filters: Filters::parse(raw, FILTER_KEYS)? })
    }

    pub fn from_filters(filters: Filters) -> EventFilter {
        EventFilter { filters }
    }

    fn exact(&self, key: &str, value: &str) -> bool {
        let want = self.filters.get(key);
        want.is_empty() || want.iter().any(|w| w == value)
    }

    fn fuzzy(&self, key: &str, value: &str) -> bool {
        let want = self.filters.get(key);
        want.is_empty() || want.iter().any(|w| value.starts_with(w.as_str()))
    }

    /// moby's `fuzzyMatchName`: the actor's ID or its `name` attribute.
    fn name(&self, key: &str, m: &Message) -> bool {
        let name = m.actor.attributes.get("name").map(String::as_str).unwrap_or("");
        self.fuzzy(key, &m.actor.id) || self.fuzzy(key, name)
    }

    fn event(&self, m: &Message) -> bool {
        // moby #25798: `health_status`, `exec_create` and `exec_start` also
        // match their longer forms (`health_status: healthy`).
        let fuzzy = self.filters.get("event").iter().any(|e| matches!(e.as_str(), "health_status" | "exec_create" | "exec_start"));
        if fuzzy {
            self.fuzzy("event", &m.action)
        } else {
            self.exact("event", &m.action)
        }
    }

    fn image(&self, m: &Message) -> bool {
        let attr = if m.kind == "image" { "name" } else { "image" };
        let name = m.actor.attributes.get(attr).map(String::as_str).unwrap_or("");
        self.exact("image", &m.actor.id)
            || self.exact("image", name)
            || self.exact("image", strip_tag(&m.actor.id))
            || self.exact("image", strip_tag(name))
    }

    pub fn matches(&self, m: &Message) -> bool {
        self.event(m)
            && self.exact("type", &m.kind)
            && self.exact("scope", &m.scope)
            && ["daemon", "container", "plugin", "volume", "network", "node", "service", "secret", "config"].iter().all(|k| self.name(k, m))
            && self.image(m)
            && self.filters.labels_match("label", &m.actor.attributes)
    }
}

/// moby's `stripTag`: `name:tag` → `name` (a digest is kept; a registry
/// port is not a tag).
fn strip_tag(image: &str) -> &str {
    if image.contains('@') {
        return image;
    }
    match image.rfind(':') {
        Some(i) if !image[i + 1..].contains('/') => &image[..i],
        _ => image,
    }
}

/// A `since`/`until` value as the API takes it (moby's
/// `timetypes.ParseTimestamps`): `seconds[.fraction]`; empty is `None`.
/// Answers nanoseconds since the epoch.
pub fn parse_timestamp(value: &str) -> Result<Option<i64>, ApiError> {
    if value.is_empty() {
        return Ok(None);
    }
    let bad = || ApiError::bad_request(format!("failed to parse value as time or duration: \"{value}\""));
    let (s, frac) = match value.split_once('.') {
        Some((s, f)) => (s, Some(f)),
        None => (value, None),
    };
    let secs: i64 = s.parse().map_err(|_| bad())?;
    let nanos: i64 = match frac {
        None => 0,
        Some(f) if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) => return Err(bad()),
        Some(f) => {
            let digits: String = f.chars().chain(std::iter::repeat('0')).take(9).collect();
            digits.parse().map_err(|_| bad())?
        }
    };
    Ok(Some(secs.saturating_mul(1_000_000_000).saturating_add(nanos)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn filter(json: &str) -> EventFilter {
        EventFilter::parse(Some(json)).unwrap()
    }

    #[test]
    fn container_events_carry_docker_s_deprecated_fields() {
        let m =
            Message::local_at("container", "start", "abc", attrs(&[("image", "busybox"), ("name", "web.1.x")]), 1_700_000_000_123_456_789);
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["status"], "start");
        assert_eq!(v["id"], "abc");
        assert_eq!(v["from"], "busybox");
        assert_eq!(v["Type"], "container");
        assert_eq!(v["Action"], "start");
        assert_eq!(v["Actor"]["ID"], "abc");
        assert_eq!(v["Actor"]["Attributes"]["name"], "web.1.x");
        assert_eq!(v["scope"], "local");
        assert_eq!(v["time"], 1_700_000_000);
        assert_eq!(v["timeNano"], 1_700_000_000_123_456_789i64);
    }

    #[test]
    fn cluster_events_have_swarm_scope_and_no_deprecated_fields() {
        let m = Message::cluster("service", "create", "s1", attrs(&[("name", "web")]), "2024-01-02T03:04:05.5Z");
        let v = serde_json::to_value(&m).unwrap();
        assert!(v.get("status").is_none() && v.get("id").is_none() && v.get("from").is_none());
        assert_eq!(v["scope"], "swarm");
        assert_eq!(v["time"], 1_704_164_645);
        assert_eq!(v["timeNano"], 1_704_164_645_500_000_000i64);
    }

    #[test]
    fn filters_match_as_moby_does() {
        let svc = Message::cluster("service", "update", "abcdef", attrs(&[("name", "web")]), "2024-01-01T00:00:00Z");
        let ctr = Message::local("container", "die", "c1", attrs(&[("name", "web.1.t"), ("image", "busybox:1.36"), ("exitCode", "0")]));
        assert!(EventFilter::default().matches(&svc));
        assert!(filter(r#"{"type":{"service":true}}"#).matches(&svc));
        assert!(!filter(r#"{"type":{"service":true}}"#).matches(&ctr));
        assert!(filter(r#"{"service":{"web":true}}"#).matches(&svc));
        assert!(filter(r#"{"service":{"abc":true}}"#).matches(&svc), "an ID prefix");
        assert!(filter(r#"{"service":{"we":true}}"#).matches(&svc), "a name prefix, as moby's FuzzyMatch");
        assert!(!filter(r#"{"service":{"db":true}}"#).matches(&svc));
        // A service filter applies to every type: a container passes when
        // its ID or name starts with the value (its task's `web.1.…` does).
        assert!(filter(r#"{"service":{"web":true}}"#).matches(&ctr));
        assert!(!filter(r#"{"service":{"db":true}}"#).matches(&ctr));
        assert!(filter(r#"{"event":{"update":true,"create":true}}"#).matches(&svc));
        assert!(!filter(r#"{"event":{"create":true}}"#).matches(&svc));
        assert!(filter(r#"{"scope":{"swarm":true}}"#).matches(&svc));
        assert!(!filter(r#"{"scope":{"local":true}}"#).matches(&svc));
        assert!(filter(r#"{"image":{"busybox":true}}"#).matches(&ctr), "the tag is stripped");
        assert!(filter(r#"{"image":{"busybox:1.36":true}}"#).matches(&ctr));
        assert!(!filter(r#"{"image":{"alpine":true}}"#).matches(&ctr));
        assert!(filter(r#"{"label":{"exitCode=0":true}}"#).matches(&ctr));
        assert!(!filter(r#"{"label":{"exitCode=1":true}}"#).matches(&ctr));
        assert!(filter(r#"{"container":{"web.1":true}}"#).matches(&ctr));
        let health = Message::local("container", "health_status: healthy", "c1", BTreeMap::new());
        assert!(filter(r#"{"event":{"health_status":true}}"#).matches(&health));
        assert!(EventFilter::parse(Some(r#"{"colour":{"red":true}}"#)).is_err());
    }

    #[test]
    fn strip_tag_keeps_registry_ports_and_digests() {
        assert_eq!(strip_tag("busybox:latest"), "busybox");
        assert_eq!(strip_tag("host:5000/busybox"), "host:5000/busybox");
        assert_eq!(strip_tag("host:5000/busybox:1"), "host:5000/busybox");
        assert_eq!(strip_tag("busybox@sha256:ab"), "busybox@sha256:ab");
    }

    #[test]
    fn timestamps_as_moby_parses_them() {
        assert_eq!(parse_timestamp("").unwrap(), None);
        assert_eq!(parse_timestamp("12").unwrap(), Some(12_000_000_000));
        assert_eq!(parse_timestamp("12.5").unwrap(), Some(12_500_000_000));
        assert_eq!(parse_timestamp("12.000000001").unwrap(), Some(12_000_000_001));
        assert!(parse_timestamp("soon").is_err());
        assert!(parse_timestamp("1.x").is_err());
    }
}
