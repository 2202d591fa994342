//! Services in the store, placed by the scheduler: driven by the stock
//! docker CLI. The image is loaded onto every node first (tests never pull
//! from a public registry); these checks cover what the managers decide.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use shoal_e2e::{text, wait_for, Lab};

const LONG: Duration = Duration::from_secs(60);

fn tasks(lab: &Lab, service: &str) -> Vec<Value> {
    let filters = format!("%7B%22service%22%3A%7B%22{service}%22%3Atrue%7D%2C%22desired-state%22%3A%7B%22running%22%3Atrue%7D%7D");
    let (status, v) = lab.api("node-1", "GET", &format!("/v1.44/tasks?filters={filters}"), None);
    assert_eq!(status, 200, "{v}");
    v.as_array().cloned().unwrap_or_default()
}

/// Placed on a node and not ended.
fn placed(t: &Value) -> bool {
    matches!(t["Status"]["State"].as_str(), Some("assigned" | "accepted" | "preparing" | "ready" | "starting" | "running"))
}

/// Hostname -> number of placed tasks of the service, once all are placed.
fn placement(lab: &Lab, service: &str, want: usize) -> BTreeMap<String, usize> {
    let hosts: BTreeMap<String, String> = lab
        .nodes("node-1")
        .iter()
        .map(|n| (n["ID"].as_str().unwrap().to_string(), n["Description"]["Hostname"].as_str().unwrap().to_string()))
        .collect();
    wait_for(LONG, &format!("{want} assigned tasks of {service}"), || {
        let ts = tasks(lab, service);
        let assigned: Vec<&Value> = ts.iter().filter(|t| placed(t)).collect();
        if ts.len() != want || assigned.len() != want {
            return None;
        }
        let mut per = BTreeMap::new();
        for t in assigned {
            *per.entry(hosts[t["NodeID"].as_str().unwrap()].clone()).or_insert(0) += 1;
        }
        Some(per)
    })
}

#[test]
fn services_are_created_scaled_and_placed() {
    let lab = Lab::up("e2e-svc", 1, 2);
    lab.load_test_image(&["node-1", "node-2", "node-3"]);
    let create = |args: &[&str]| {
        let mut full = vec!["service", "create", "-d", "--no-resolve-image"];
        full.extend_from_slice(args);
        lab.docker("node-1", &full)
    };
    let out = create(&["--name", "web", "--replicas", "6", "shoal-test/busy:1", "sleep", "1000"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let per = placement(&lab, "web", 6);
    assert_eq!(per.values().copied().collect::<Vec<_>>(), vec![2, 2, 2], "{per:?}");
    lab.docker_ok("node-1", &["service", "scale", "-d", "web=9"]);
    let per = placement(&lab, "web", 9);
    assert_eq!(per.values().copied().collect::<Vec<_>>(), vec![3, 3, 3], "{per:?}");
    wait_for(LONG, "docker service ls to show 9/9", || lab.docker_ok("node-1", &["service", "ls"]).contains("9/9").then_some(()));
    // The shoal CLI reads the same.
    let ls = lab.shoal_ok("node-1", &["service", "ls"]);
    assert!(ls.contains("web") && ls.contains("9/9"), "{ls}");
    let ps = lab.shoal_ok("node-1", &["service", "ps", "-q", "-f", "desired-state=running", "web"]);
    assert_eq!(ps.lines().count(), 9, "{ps}");
    lab.shoal_ok("node-1", &["service", "scale", "-d", "web=9"]);

    // Bad input is refused and changes nothing.
    let dup = create(&["--name", "web", "shoal-test/busy:1"]);
    assert!(text(&dup.stderr).contains("name conflicts with an existing object"), "{}", text(&dup.stderr));
    let bad = create(&["--name", "bad", "--constraint", "node.labels.zone=a", "shoal-test/busy:1"]);
    assert!(text(&bad.stderr).contains("constraint expected one operator from ==, !="), "{}", text(&bad.stderr));
    let (_, svc) = lab.api("node-1", "GET", "/v1.44/services/web", None);
    let stale = svc["Version"]["Index"].as_u64().unwrap() - 1;
    let (status, body) = lab.api("node-1", "POST", &format!("/v1.44/services/web/update?version={stale}"), Some(&svc["Spec"]));
    assert!(status >= 400 && body["message"].as_str().unwrap().contains("update out of sequence"), "{status} {body}");
    let names: Vec<String> = lab.docker_ok("node-1", &["service", "ls", "--format", "{{.Name}}"]).lines().map(String::from).collect();
    assert_eq!(names, vec!["web"]);

    // Constraints pin tasks; an impossible one leaves them pending with the reason.
    lab.shoal_ok("node-1", &["node", "update", "--label-add", "zone=a", "node-2"]);
    create(&["--name", "pinned", "--replicas", "3", "--constraint", "node.labels.zone==a", "shoal-test/busy:1", "sleep", "1000"]);
    assert_eq!(placement(&lab, "pinned", 3).into_iter().collect::<Vec<_>>(), vec![("node-2".to_string(), 3)]);
    // Removing the label moves the tasks: nowhere left to go, so they wait.
    lab.shoal_ok("node-1", &["node", "update", "--label-rm", "zone", "node-2"]);
    wait_for(LONG, "pinned's tasks to leave node-2", || {
        let ts = tasks(&lab, "pinned");
        (ts.len() == 3 && ts.iter().all(|t| t["Status"]["State"] == "pending" && t["NodeID"].as_str().unwrap_or("").is_empty()))
            .then_some(())
    });
    create(&["--name", "nowhere", "--replicas", "2", "--constraint", "node.labels.zone==b", "shoal-test/busy:1"]);
    wait_for(LONG, "unplaceable tasks to explain themselves", || {
        let ts = tasks(&lab, "nowhere");
        (ts.len() == 2
            && ts.iter().all(|t| {
                t["Status"]["State"] == "pending"
                    && t["Status"]["Err"] == "no suitable node (scheduling constraints not satisfied on 3 nodes)"
            }))
        .then_some(())
    });

    // Global: one task per node; draining a node moves replicated tasks off it.
    create(&["--name", "agent", "--mode", "global", "shoal-test/busy:1", "sleep", "1000"]);
    assert_eq!(placement(&lab, "agent", 3).values().copied().collect::<Vec<_>>(), vec![1, 1, 1]);
    lab.shoal_ok("node-1", &["node", "update", "--availability", "drain", "node-3"]);
    for (svc, n) in [("web", 9), ("agent", 2)] {
        wait_for(LONG, &format!("{svc}'s tasks to leave the drained node"), || {
            let per = placement(&lab, svc, n);
            (!per.contains_key("node-3")).then_some(())
        });
    }

    // An update replaces tasks with the new spec (all at once: sleep ignores
    // SIGTERM, so each stop takes the 10 s grace period); rollback restores the old one.
    lab.docker_ok(
        "node-1",
        &[
            "service",
            "update",
            "-d",
            "--no-resolve-image",
            "--image",
            "shoal-test/busy:1",
            "--args",
            "sleep 2000",
            "--update-parallelism",
            "0",
            "web",
        ],
    );
    wait_for(LONG, "web's tasks to run the new spec", || {
        let ts = tasks(&lab, "web");
        (ts.len() == 9 && ts.iter().all(|t| t["Spec"]["ContainerSpec"]["Args"][1] == "2000")).then_some(())
    });
    lab.docker_ok("node-1", &["service", "rollback", "-d", "web"]);
    let (_, svc) = lab.api("node-1", "GET", "/v1.44/services/web", None);
    assert_eq!(svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Args"][1], "1000");

    // `node ps` lists a node's tasks.
    let ps = lab.shoal_ok("node-1", &["node", "ps", "node-2"]);
    assert!(ps.contains("web."), "{ps}");

    lab.docker_ok("node-1", &["service", "rm", "web", "pinned", "nowhere", "agent"]);
    assert_eq!(lab.docker_ok("node-1", &["service", "ls", "-q"]).trim(), "");
}

/// Fields Shoal keeps but does not act on are named in the answer's
/// `Warnings`, which the stock CLI prints; a value the updater would
/// misread is refused and creates nothing.
#[test]
fn kept_but_unused_fields_are_warned_of() {
    let lab = Lab::up("e2e-svcwarn", 1, 0);
    let out = lab.docker(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--no-resolve-image",
            "--name",
            "warned",
            "--log-driver",
            "syslog",
            "--log-opt",
            "tag=x",
            "shoal-test/none:1",
        ],
    );
    assert!(out.status.success(), "{}", shoal_e2e::text(&out.stderr));
    let err = shoal_e2e::text(&out.stderr);
    assert!(err.contains("TaskTemplate.LogDriver.Name \"syslog\" is kept but not used"), "{err}");
    let quiet = lab.docker("node-1", &["service", "create", "-d", "--no-resolve-image", "--name", "plain", "shoal-test/none:1"]);
    assert_eq!(shoal_e2e::text(&quiet.stderr), "", "no warning for a plain spec");
    let body = serde_json::json!({"Name": "bad", "TaskTemplate": {"ContainerSpec": {"Image": "shoal-test/none:1"}}, "UpdateConfig": {"FailureAction": "retry"}});
    let (status, answer) = lab.api("node-1", "POST", "/v1.44/services/create", Some(&body));
    assert_eq!(status, 400, "{answer}");
    assert!(answer["message"].as_str().unwrap_or("").contains("unrecognized failure action \"retry\""), "{answer}");
    let listed = lab.docker_ok("node-1", &["service", "ls", "--format", "{{.Name}}"]);
    assert!(!listed.lines().any(|l| l == "bad"), "{listed}");
}

/// Clients of older API versions get what dockerd gives them: the service
/// fields their version did not have are dropped from what they send,
/// `?status` is read from 1.41, and a version past 1.44 is refused with
/// Docker's message.
#[test]
fn older_api_versions_are_answered_as_dockerd_answers_them() {
    let lab = Lab::up("e2e-apiver", 1, 0);
    let body = serde_json::json!({"Name": "old", "TaskTemplate": {"ContainerSpec": {"Image": "shoal-test/none:1",
        "CapabilityAdd": ["CAP_NET_ADMIN"], "Privileges": {"NoNewPrivileges": true, "Seccomp": {"Mode": "unconfined"}}}}});
    for (v, name) in [("1.40", "v140"), ("1.43", "v143"), ("1.44", "v144")] {
        let mut b = body.clone();
        b["Name"] = name.into();
        let (status, answer) = lab.api("node-1", "POST", &format!("/v{v}/services/create"), Some(&b));
        assert_eq!(status, 201, "{v}: {answer}");
    }
    let spec = |name: &str| {
        let (_, s) = lab.api("node-1", "GET", &format!("/v1.44/services/{name}"), None);
        s["Spec"]["TaskTemplate"]["ContainerSpec"].clone()
    };
    let (v140, v143, v144) = (spec("v140"), spec("v143"), spec("v144"));
    assert!(v140["CapabilityAdd"].is_null() && v140["Privileges"]["Seccomp"].is_null(), "{v140}");
    assert_eq!(v143["CapabilityAdd"], serde_json::json!(["CAP_NET_ADMIN"]), "{v143}");
    assert!(v143["Privileges"]["Seccomp"].is_null() && v143["Privileges"]["NoNewPrivileges"].is_null(), "{v143}");
    assert_eq!(v144["Privileges"]["Seccomp"]["Mode"], "unconfined", "{v144}");
    assert_eq!(v144["Privileges"]["NoNewPrivileges"], true, "{v144}");

    let (_, listed) = lab.api("node-1", "GET", "/v1.40/services?status=true", None);
    assert!(listed.as_array().unwrap().iter().all(|s| s.get("ServiceStatus").is_none()), "{listed}");
    let (_, listed) = lab.api("node-1", "GET", "/v1.41/services?status=true", None);
    assert!(listed.as_array().unwrap().iter().all(|s| s["ServiceStatus"].is_object()), "{listed}");
    let (status, bad) = lab.api("node-1", "GET", "/v1.41/services?status=maybe", None);
    assert_eq!((status, bad["message"].as_str()), (400, Some("invalid value for status: maybe")));
    let (status, new) = lab.api("node-1", "GET", "/v1.45/services", None);
    assert_eq!((status, new["message"].as_str()), (400, Some("client version 1.45 is too new. Maximum supported API version is 1.44")));
    // The stock CLI pinned to an older version still works.
    let out = std::process::Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", lab.socket("node-1")))
        .env("DOCKER_API_VERSION", "1.41")
        .args(["service", "ls", "--format", "{{.Name}}"])
        .output()
        .unwrap();
    assert!(out.status.success() && text(&out.stdout).contains("v143"), "{}{}", text(&out.stdout), text(&out.stderr));
}
