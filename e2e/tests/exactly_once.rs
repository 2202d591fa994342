//! Issue 8: writes are applied exactly once. Unique-name service creates go
//! through rotating managers while the leader is SIGKILLed again and again:
//! every acknowledged create exists exactly once, and no create reports a
//! conflict with itself (the 409 a retried create used to get for the
//! service its own first attempt had made).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use shoal_e2e::{api_call, leader_host, wait_for, Lab};

const LONG: Duration = Duration::from_secs(90);
const MANAGERS: [&str; 3] = ["node-1", "node-2", "node-3"];

fn leader(lab: &Lab) -> String {
    wait_for(LONG, "a leader", || MANAGERS.iter().find_map(|m| leader_host(&lab.try_nodes(m)?)))
}

#[test]
fn creates_through_leader_kills_land_exactly_once() {
    let lab = Lab::up("e2e-once", 3, 0);
    let mut acked = Vec::new();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut n = 0;
    for round in 0..4 {
        let victim = leader(&lab);
        lab.lab_ok(&["kill", &victim]);
        // Creates through every manager while the cluster elects a new
        // leader and the victim is down, then while it comes back.
        for phase in 0..2 {
            for _ in 0..6 {
                let via = MANAGERS[n % 3];
                n += 1;
                let name = format!("once-{round}-{phase}-{n}");
                let body = json!({
                    "Name": name,
                    "TaskTemplate": {"ContainerSpec": {"Image": "shoal-test/busy:1"}},
                    "Mode": {"Replicated": {"Replicas": 0}},
                });
                let (status, answer) = api_call(&lab.socket(via), "POST", "/v1.44/services/create", Some(&body));
                let msg = answer["message"].as_str().unwrap_or("").to_string();
                assert_ne!(status, 409, "create of {name} via {via} conflicted with itself: {msg}");
                assert!(!msg.contains("already exists"), "create of {name} via {via}: {msg}");
                *outcomes.entry(format!("{status}")).or_default() += 1;
                if status == 201 {
                    acked.push(name);
                }
            }
            if phase == 0 {
                lab.lab_ok(&["start", &victim]);
            }
        }
    }
    eprintln!("FIGURE exactly-once creates: {} attempts, answers by status {outcomes:?}", n);
    assert!(acked.len() >= n / 2, "too few creates acknowledged: {outcomes:?}");

    // Every acknowledged create is there once, seen from every manager.
    for m in MANAGERS {
        wait_for(LONG, &format!("{m} to list every acknowledged service once"), || {
            let (status, list) = api_call(&lab.socket(m), "GET", "/v1.44/services", None);
            if status != 200 {
                return None;
            }
            let mut count: BTreeMap<String, usize> = BTreeMap::new();
            for s in list.as_array()? {
                *count.entry(s["Spec"]["Name"].as_str()?.to_string()).or_default() += 1;
            }
            assert!(count.values().all(|c| *c == 1), "a name listed twice on {m}: {count:?}");
            acked.iter().all(|a| count.contains_key(a)).then_some(())
        });
    }
    lab.lab_ok(&["down"]);
}
