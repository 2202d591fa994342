//! Property tests ("fuzzing" with proptest, see docs/fuzzing.md):
//! constraint expressions of any text parse or are refused without
//! panicking, and parsed constraints evaluate against any node.

use proptest::prelude::*;
use shoal_api::{Platform, Role};

use crate::constraint::{node_matches, parse_constraints, Key, Op};
use crate::nodeinfo::NodeInfo;

/// `PROPTEST_CASES` overrides the default count (for longer runs); no
/// failure files are written (CI must stay deterministic).
fn config(default_cases: u32) -> ProptestConfig {
    let base = ProptestConfig::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() { base.cases } else { default_cases };
    ProptestConfig { cases, failure_persistence: None, ..base }
}

const KEYS: &[&str] = &[
    "node.id",
    "node.hostname",
    "node.ip",
    "node.role",
    "node.platform.os",
    "node.platform.arch",
    "NODE.Labels.zone",
    "node.labels.zone",
    "node.labels.Zone",
    "engine.labels.disk",
    "node.labels.",
    "engine.labels",
    "node.unknown",
    "_x",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(KEYS).prop_map(str::to_string),
        2 => "[a-zA-Z_][a-zA-Z0-9._-]{0,20}",
        1 => ".{0,12}",
    ]
}

fn ip_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| std::net::Ipv4Addr::from(o).to_string()),
        any::<[u8; 16]>().prop_map(|o| std::net::Ipv6Addr::from(o).to_string()),
        (any::<[u8; 4]>(), 0u8..=40).prop_map(|(o, b)| format!("{}/{b}", std::net::Ipv4Addr::from(o))),
        (any::<[u8; 16]>(), 0u16..=140).prop_map(|(o, b)| format!("{}/{b}", std::net::Ipv6Addr::from(o))),
        Just("::ffff:10.0.0.1/120".to_string()),
        Just("10.0.0.0/".to_string()),
        Just("10.0.0.0/0008".to_string()),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9:_ .*()?+\\[\\]\\\\^$|/-]{1,16}",
        3 => ip_text(),
        3 => prop::sample::select(vec!["manager", "worker", "linux", "x86_64", "east", "West"]).prop_map(str::to_string),
        1 => ".{0,12}",
    ]
}

fn expression() -> impl Strategy<Value = String> {
    prop_oneof![
        // Arbitrary text, and text made of the grammar's own characters.
        1 => ".{0,40}",
        1 => "[a-z. =!<>~\t]{0,30}",
        8 => (key(), prop_oneof![
            6 => prop::sample::select(vec!["==", "!="]),
            1 => prop::sample::select(vec!["=", "!==", "===", "<", "", "= ="]),
        ], value(), "[ \t]{0,2}")
            .prop_map(|(k, op, v, sp)| format!("{sp}{k}{sp}{op}{sp}{v}")),
    ]
}

fn node() -> impl Strategy<Value = NodeInfo> {
    let labels = || prop::collection::btree_map(prop_oneof![Just("zone".to_string()), Just("Zone".to_string()), ".{0,6}"], value(), 0..4);
    (
        ".{0,10}",
        prop::sample::select(vec!["manager-1", "Node-A", ""]),
        prop_oneof![ip_text(), Just("10.1.2.3:2377".to_string()), Just("[::1]:2377".to_string()), ".{0,10}"],
        any::<bool>(),
        prop::sample::select(vec!["linux", "Linux", "windows", ""]),
        prop::sample::select(vec!["x86_64", "aarch64", ""]),
        labels(),
        labels(),
    )
        .prop_map(|(id, hostname, addr, manager, os, arch, labels, engine_labels)| NodeInfo {
            hostname: hostname.to_string(),
            addr,
            role: if manager { Role::Manager } else { Role::Worker },
            platform: Platform { architecture: arch.to_string(), os: os.to_string() },
            labels,
            engine_labels,
            ..NodeInfo::new(&id)
        })
}

proptest! {
    #![proptest_config(config(512))]

    /// Any list of expressions parses or is refused with a message; what
    /// parses evaluates on any node. For keys with a value to compare, `!=`
    /// is the exact negation of `==` (unknown keys and malformed `node.ip`
    /// values match nothing either way, as in SwarmKit).
    #[test]
    fn constraints_parse_and_evaluate(exprs in prop::collection::vec(expression(), 0..3), nodes in prop::collection::vec(node(), 1..4)) {
        let parsed = match parse_constraints(&exprs) {
            Ok(p) => p,
            Err(e) => {
                prop_assert!(!e.is_empty());
                return Ok(());
            }
        };
        prop_assert_eq!(parsed.len(), exprs.len());
        for n in &nodes {
            let all = node_matches(&parsed, n);
            prop_assert_eq!(all, parsed.iter().all(|c| c.matches(n)));
            for c in &parsed {
                let flipped_expr = format!("{}{}{}", c.raw_key, if c.op == Op::Eq { "!=" } else { "==" }, c.value);
                let flipped = parse_constraints(&[flipped_expr]).expect("the negation of a valid constraint parses");
                let (a, b) = (c.matches(n), flipped[0].matches(n));
                match &c.key {
                    Key::Unknown => prop_assert!(!a && !b),
                    Key::Ip if a == b => prop_assert!(!a, "node.ip {} matches both ways", c.value),
                    _ => prop_assert_ne!(a, b, "{:?} on {:?}", c, n),
                }
            }
        }
    }
}
