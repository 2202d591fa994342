//! Merging several compose files in order (`-c a.yml -c b.yml`), with the
//! compose specification's rules, on the positioned trees (so a merged value
//! still names the file it came from):
//!
//! - mappings merge recursively, the later file winning on scalars;
//! - `command`, `entrypoint` and `healthcheck.test` are replaced;
//! - a service's `ports` merge by (target, published, protocol, mode),
//!   `volumes` by target, `secrets` and `configs` by source (as docker/cli's
//!   loader keys them);
//! - `environment`, `labels`, `extra_hosts`, `sysctls`, `driver_opts`,
//!   `options`, `args`, and a service's `networks` and `depends_on` merge by
//!   key, whether each file wrote a list or a mapping;
//! - other sequences are appended, without repeating a scalar already there.

use crate::ports;
use crate::yaml::{Key, Node, Value};

/// Merges `over` into `base`; `path` holds the keys from the top.
pub fn merge(base: &mut Node, over: Node, path: &mut Vec<String>) {
    let last = path.last().map(String::as_str).unwrap_or("");
    let service_attr = path.len() == 3 && path[0] == "services";
    if matches!(over.value, Value::Null) && matches!(base.value, Value::Map(_) | Value::Seq(_)) {
        return;
    }
    if service_attr && matches!(last, "command" | "entrypoint")
        || path.len() == 4 && path[0] == "services" && path[2] == "healthcheck" && last == "test"
    {
        *base = over;
        return;
    }
    if let Some(sep) = kv_separator(last, service_attr) {
        normalise_kv(base, sep);
        let mut over = over;
        normalise_kv(&mut over, sep);
        merge_maps(base, over, path);
        return;
    }
    if service_attr && matches!(last, "networks" | "depends_on") {
        normalise_names(base);
        let mut over = over;
        normalise_names(&mut over);
        merge_maps(base, over, path);
        return;
    }
    if service_attr && matches!(last, "ports" | "volumes" | "secrets" | "configs") {
        merge_by_key(base, over, last);
        return;
    }
    match (&mut base.value, over.value) {
        (Value::Map(_), over_value @ Value::Map(_)) => merge_maps(base, Node::new(over_value, over.pos), path),
        (Value::Seq(items), Value::Seq(more)) => {
            for item in more {
                let repeated = is_scalar(&item) && items.iter().any(|i| i.value == item.value);
                if !repeated {
                    items.push(item);
                }
            }
        }
        (_, over_value) => *base = Node::new(over_value, over.pos),
    }
}

fn merge_maps(base: &mut Node, over: Node, path: &mut Vec<String>) {
    let Value::Map(more) = over.value else {
        *base = over;
        return;
    };
    if !matches!(base.value, Value::Map(_)) {
        *base = Node::new(Value::Map(more), over.pos);
        return;
    }
    let Value::Map(entries) = &mut base.value else { unreachable!() };
    for (key, value) in more {
        match entries.iter_mut().find(|(k, _)| k.name == key.name) {
            Some((_, existing)) => {
                path.push(key.name.clone());
                merge(existing, value, path);
                path.pop();
            }
            None => entries.push((key, value)),
        }
    }
}

fn is_scalar(n: &Node) -> bool {
    !matches!(n.value, Value::Map(_) | Value::Seq(_))
}

/// The keys whose list form is `k=v` (or `host:ip`) items.
fn kv_separator(key: &str, service_attr: bool) -> Option<&'static [char]> {
    match key {
        "environment" | "labels" | "sysctls" | "driver_opts" | "options" | "args" => Some(&['=']),
        "extra_hosts" if service_attr => Some(&['=', ':']),
        _ => None,
    }
}

/// A list of `k=v` becomes a mapping (a bare `k` maps to null).
fn normalise_kv(node: &mut Node, sep: &[char]) {
    let Value::Seq(items) = &node.value else { return };
    let mut entries: Vec<(Key, Node)> = Vec::new();
    for item in items {
        let Some(text) = item.scalar_text() else { continue };
        let (k, v) = match text.split_once(sep) {
            Some((k, v)) => (k.to_owned(), Value::Str(v.to_owned())),
            None => (text, Value::Null),
        };
        let value = Node::new(v, item.pos);
        match entries.iter_mut().find(|(key, _)| key.name == k) {
            Some((_, existing)) => *existing = value,
            None => entries.push((Key { name: k, pos: item.pos }, value)),
        }
    }
    node.value = Value::Map(entries);
}

/// A list of names becomes a mapping of names to null.
fn normalise_names(node: &mut Node) {
    let Value::Seq(items) = &node.value else { return };
    let entries =
        items.iter().filter_map(|i| i.scalar_text().map(|name| (Key { name, pos: i.pos }, Node::new(Value::Null, i.pos)))).collect();
    node.value = Value::Map(entries);
}

/// Merges two lists whose items are unique by a key: an item of `over` with
/// the key of an item of `base` replaces it, others are appended.
fn merge_by_key(base: &mut Node, over: Node, attr: &str) {
    let mut base_items = match std::mem::replace(&mut base.value, Value::Null) {
        Value::Seq(items) => expand(items, attr),
        other => {
            base.value = other;
            *base = over;
            return;
        }
    };
    let over_items = match over.value {
        Value::Seq(items) => expand(items, attr),
        other => {
            *base = Node::new(other, over.pos);
            return;
        }
    };
    for item in over_items {
        let key = unique_key(&item, attr);
        match base_items.iter_mut().find(|i| key.is_some() && unique_key(i, attr) == key) {
            Some(existing) => *existing = item,
            None => base_items.push(item),
        }
    }
    base.value = Value::Seq(base_items);
}

/// Ports in the short form become long-form mappings (one per port of a
/// range), so they can be compared; other items stay as written.
fn expand(items: Vec<Node>, attr: &str) -> Vec<Node> {
    if attr != "ports" {
        return items;
    }
    let mut out = Vec::new();
    for item in items {
        let Some(text) = item.scalar_text().filter(|_| is_scalar(&item)) else {
            out.push(item);
            continue;
        };
        // A short form that does not parse stays as it is, for the typed
        // reading to report with its line.
        let Ok(parsed) = ports::parse_short(&text) else {
            out.push(item);
            continue;
        };
        for p in parsed {
            let pos = item.pos;
            let field = |name: &str, value: Value| (Key { name: name.into(), pos }, Node::new(value, pos));
            let mut entries = vec![field("target", Value::Int(p.target as i64))];
            if let Some(published) = p.published {
                entries.push(field("published", Value::Int(published as i64)));
            }
            entries.push(field("protocol", Value::Str(p.protocol)));
            entries.push(field("mode", Value::Str(p.mode)));
            if let Some(ip) = p.host_ip {
                entries.push(field("host_ip", Value::Str(ip)));
            }
            out.push(Node::new(Value::Map(entries), pos));
        }
    }
    out
}

fn unique_key(item: &Node, attr: &str) -> Option<String> {
    let text = |key: &str| item.get(key).and_then(Node::scalar_text).unwrap_or_default();
    match attr {
        "ports" => Some(format!(
            "{}/{}/{}/{}",
            text("target"),
            text("published"),
            item.get("protocol").and_then(Node::scalar_text).unwrap_or_else(|| "tcp".into()),
            item.get("mode").and_then(Node::scalar_text).unwrap_or_else(|| "ingress".into()),
        )),
        "volumes" => match &item.value {
            Value::Map(_) => Some(text("target")),
            _ => item.scalar_text().and_then(|s| crate::mounts::parse_short(&s).ok()).map(|v| v.target),
        },
        _ => match &item.value {
            Value::Map(_) => Some(text("source")),
            _ => item.scalar_text(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Files;

    fn merged(a: &str, b: &str) -> Node {
        let mut files = Files::default();
        let fa = files.add("a.yml".into());
        let fb = files.add("b.yml".into());
        let mut base = crate::yaml::parse(a, fa, "a.yml").unwrap();
        let over = crate::yaml::parse(b, fb, "b.yml").unwrap();
        merge(&mut base, over, &mut Vec::new());
        base
    }

    fn svc(n: &Node) -> &Node {
        n.get("services").unwrap().get("web").unwrap()
    }

    fn strings(n: &Node) -> Vec<String> {
        match &n.value {
            Value::Seq(items) => items.iter().map(|i| i.scalar_text().unwrap_or_else(|| format!("{:?}", i.value))).collect(),
            _ => panic!("not a list: {n:?}"),
        }
    }

    #[test]
    fn mappings_merge_and_scalars_override() {
        let n = merged("services:\n  web:\n    image: a\n    user: root\n", "services:\n  web:\n    image: b\n  db:\n    image: c\n");
        assert_eq!(svc(&n).get("image").unwrap().as_str(), Some("b"));
        assert_eq!(svc(&n).get("image").unwrap().pos.file, 1);
        assert_eq!(svc(&n).get("user").unwrap().as_str(), Some("root"));
        assert!(n.get("services").unwrap().get("db").is_some());
    }

    #[test]
    fn commands_are_replaced_other_lists_appended() {
        let n = merged(
            "services:\n  web:\n    command: [a, b]\n    dns: [1.1.1.1]\n    cap_add: [NET_ADMIN]\n    healthcheck:\n      test: [CMD, a]\n",
            "services:\n  web:\n    command: c\n    dns: [8.8.8.8, 1.1.1.1]\n    cap_add: [SYS_TIME]\n    healthcheck:\n      test: [CMD, b]\n",
        );
        assert_eq!(svc(&n).get("command").unwrap().as_str(), Some("c"));
        assert_eq!(strings(svc(&n).get("dns").unwrap()), vec!["1.1.1.1", "8.8.8.8"]);
        assert_eq!(strings(svc(&n).get("cap_add").unwrap()), vec!["NET_ADMIN", "SYS_TIME"]);
        assert_eq!(strings(svc(&n).get("healthcheck").unwrap().get("test").unwrap()), vec!["CMD", "b"]);
    }

    #[test]
    fn environment_and_labels_merge_by_key_across_forms() {
        let n = merged(
            "services:\n  web:\n    environment: [A=1, B=2, C]\n    labels:\n      x: 1\n",
            "services:\n  web:\n    environment:\n      B: 3\n      D: 4\n    labels: [y=2, x=9]\n",
        );
        let env = svc(&n).get("environment").unwrap();
        assert_eq!(env.get("A").unwrap().as_str(), Some("1"));
        assert_eq!(env.get("B").unwrap().value, Value::Int(3));
        assert_eq!(env.get("C").unwrap().value, Value::Null);
        assert_eq!(env.get("D").unwrap().value, Value::Int(4));
        let labels = svc(&n).get("labels").unwrap();
        assert_eq!(labels.get("x").unwrap().as_str(), Some("9"));
        assert_eq!(labels.get("y").unwrap().as_str(), Some("2"));
    }

    #[test]
    fn ports_merge_by_target_published_protocol_mode() {
        let n = merged(
            "services:\n  web:\n    ports: [\"8080:80\", \"53:53/udp\"]\n",
            "services:\n  web:\n    ports:\n      - target: 80\n        published: 8080\n        mode: ingress\n      - \"8443:443\"\n      - \"53:53/tcp\"\n",
        );
        let ports = svc(&n).get("ports").unwrap();
        let Value::Seq(items) = &ports.value else { panic!() };
        assert_eq!(items.len(), 4, "{items:?}");
        // The 8080:80 entry now comes from b.yml.
        assert_eq!(items[0].pos.file, 1);
        assert_eq!(items[1].get("protocol").unwrap().as_str(), Some("udp"));
    }

    #[test]
    fn volumes_by_target_and_secrets_by_source() {
        let n = merged(
            "services:\n  web:\n    volumes: [\"foo:/work\", \"/cache\"]\n    secrets: [a, {source: b, target: x}]\n",
            "services:\n  web:\n    volumes: [\"bar:/work\"]\n    secrets: [{source: a, mode: 0400}, c]\n",
        );
        assert_eq!(strings(svc(&n).get("volumes").unwrap()), vec!["bar:/work", "/cache"]);
        let Value::Seq(secrets) = &svc(&n).get("secrets").unwrap().value else { panic!() };
        assert_eq!(secrets.len(), 3);
        assert_eq!(secrets[0].get("mode").unwrap().value, Value::Int(0o400));
    }

    #[test]
    fn networks_and_depends_on_merge_across_forms() {
        let n = merged(
            "services:\n  web:\n    networks: [front]\n    depends_on: [db]\n",
            "services:\n  web:\n    networks:\n      back:\n        aliases: [api]\n    depends_on:\n      cache:\n        condition: service_healthy\n",
        );
        let nets = svc(&n).get("networks").unwrap();
        assert!(nets.get("front").is_some());
        assert!(nets.get("back").unwrap().get("aliases").is_some());
        let deps = svc(&n).get("depends_on").unwrap();
        assert!(deps.get("db").is_some() && deps.get("cache").is_some());
    }

    #[test]
    fn empty_override_keeps_the_base() {
        let n = merged("services:\n  web:\n    image: a\n", "services:\n  web:\n");
        assert_eq!(svc(&n).get("image").unwrap().as_str(), Some("a"));
    }
}
