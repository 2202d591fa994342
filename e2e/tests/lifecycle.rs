//! Lifecycle answers as Docker's: `swarm init` and `swarm join` return once
//! the node is registered and Ready with its description recorded, so a
//! client can read the node and write it back with that version at once.

use std::time::Duration;

use serde_json::{json, Value};
use shoal_e2e::registry::LabRegistry;
use shoal_e2e::{build_busybox_image, text, wait_for, Lab};

const LONG: Duration = Duration::from_secs(60);

/// Rounds of init and of join; each must succeed every time.
const ROUNDS: usize = 8;

/// The node ID the daemon on `node` reports in `/info`.
fn own_id(lab: &Lab, node: &str) -> String {
    let (status, info) = lab.api(node, "GET", "/v1.44/info", None);
    assert_eq!(status, 200, "{info}");
    info["Swarm"]["NodeID"].as_str().unwrap_or_default().to_string()
}

/// Reads node `id` through `via` and writes it back at once with a new
/// label and the version it read: what a client does right after
/// init/join. Returns the node as read.
fn read_then_update(lab: &Lab, via: &str, id: &str, round: usize) -> Value {
    let (status, node) = lab.api(via, "GET", &format!("/v1.44/nodes/{id}"), None);
    assert_eq!(status, 200, "GET /nodes/{id} via {via}: {node}");
    assert_eq!(node["Status"]["State"], "ready", "registered and Ready when init/join answers: {node}");
    assert!(!node["Description"]["Hostname"].as_str().unwrap_or_default().is_empty(), "description recorded: {node}");
    assert!(
        !node["Description"]["TLSInfo"]["TrustRoot"].as_str().unwrap_or_default().is_empty(),
        "the agent's description (with its TLS info) recorded: {node}"
    );
    let version = node["Version"]["Index"].as_u64().expect("a version");
    let mut spec = node["Spec"].clone();
    spec["Labels"] = json!({ "round": round.to_string() });
    let (status, body) = lab.api(via, "POST", &format!("/v1.44/nodes/{id}/update?version={version}"), Some(&spec));
    assert_eq!(status, 200, "round {round}: update of {id} at version {version} via {via}: {body}");
    let (_, after) = lab.api(via, "GET", &format!("/v1.44/nodes/{id}"), None);
    assert_eq!(after["Spec"]["Labels"]["round"], round.to_string(), "{after}");
    node
}

#[test]
fn init_and_join_answer_once_the_node_is_ready() {
    let lab = Lab::up("e2e-life", 1, 2);
    wait_for(LONG, "3 ready nodes", || lab.try_nodes("node-1").filter(|n| n.len() == 3));
    let remote = format!("{}:2377", lab.addr(1));
    let (status, swarm) = lab.api("node-1", "GET", "/v1.44/swarm", None);
    assert_eq!(status, 200, "{swarm}");
    let worker_token = swarm["JoinTokens"]["Worker"].as_str().unwrap().to_string();
    let manager_token = swarm["JoinTokens"]["Manager"].as_str().unwrap().to_string();
    for node in ["node-2", "node-3"] {
        let (status, body) = lab.api(node, "POST", "/v1.44/swarm/leave", None);
        assert_eq!(status, 200, "{node} leaves: {body}");
    }

    for round in 0..ROUNDS {
        // node-2 founds a swarm of its own, and is read and updated at once.
        let init = json!({ "ListenAddr": "0.0.0.0:2377", "AdvertiseAddr": lab.addr(2) });
        let (status, id) = lab.api("node-2", "POST", "/v1.44/swarm/init", Some(&init));
        assert_eq!(status, 200, "round {round}: init: {id}");
        let id = id.as_str().expect("init answers the node ID").to_string();
        let node = read_then_update(&lab, "node-2", &id, round);
        assert_eq!(node["ManagerStatus"]["Leader"], true, "{node}");
        let (status, body) = lab.api("node-2", "POST", "/v1.44/swarm/leave?force=1", None);
        assert_eq!(status, 200, "round {round}: leave: {body}");

        // node-3 joins node-1's swarm as a worker; node-1 reads and updates it.
        let join = json!({
            "ListenAddr": "0.0.0.0:2377",
            "AdvertiseAddr": lab.addr(3),
            "RemoteAddrs": [remote],
            "JoinToken": worker_token,
        });
        let (status, body) = lab.api("node-3", "POST", "/v1.44/swarm/join", Some(&join));
        assert_eq!(status, 200, "round {round}: join: {body}");
        let id = own_id(&lab, "node-3");
        read_then_update(&lab, "node-1", &id, round);
        let (status, body) = lab.api("node-3", "POST", "/v1.44/swarm/leave", None);
        assert_eq!(status, 200, "round {round}: worker leaves: {body}");
        let (status, body) = lab.api("node-1", "DELETE", &format!("/v1.44/nodes/{id}?force=1"), None);
        assert_eq!(status, 200, "round {round}: node rm: {body}");
    }

    // A manager that joins reads and updates itself through its own API
    // (its own store has the record when join answers), and through the
    // leader's.
    let join = json!({
        "ListenAddr": "0.0.0.0:2377",
        "AdvertiseAddr": lab.addr(2),
        "RemoteAddrs": [remote],
        "JoinToken": manager_token,
    });
    let (status, body) = lab.api("node-2", "POST", "/v1.44/swarm/join", Some(&join));
    assert_eq!(status, 200, "manager join: {body}");
    let id = own_id(&lab, "node-2");
    read_then_update(&lab, "node-2", &id, ROUNDS);
    read_then_update(&lab, "node-1", &id, ROUNDS + 1);
}

fn service_image(lab: &Lab, name: &str) -> String {
    let (status, svc) = lab.api("node-1", "GET", &format!("/v1.44/services/{name}"), None);
    assert_eq!(status, 200, "{svc}");
    svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].as_str().unwrap_or_default().to_string()
}

/// `docker service create` pins `image@digest` from the lab registry (via
/// `GET /distribution/{name}/json`), leaves it alone with
/// `--no-resolve-image`, and warns as against Docker for an image no
/// registry has; `docker service inspect` shows SwarmKit's defaults.
#[test]
fn docker_service_create_pins_the_registry_digest() {
    let reg_ip = "192.168.77.11";
    let lab = Lab::up_with("e2e-life-reg", 1, 1, &[], &["--insecure-registry", &format!("{reg_ip}:5000")]);
    let dir = std::env::temp_dir().join(format!("shoal-e2e-life-reg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let registry = LabRegistry::start(&lab, "node-1", reg_ip);
    registry.push(&build_busybox_image(&dir), "busy", "1");
    let image = format!("{reg_ip}:5000/busy:1");

    // The API answers in Docker's DistributionInspect shape (an OCI
    // manifest: no platforms, as moby answers for one).
    let (status, inspect) = lab.api("node-1", "GET", &format!("/v1.44/distribution/{image}/json"), None);
    assert_eq!(status, 200, "{inspect}");
    let digest = inspect["Descriptor"]["digest"].as_str().unwrap().to_string();
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{inspect}");
    assert_eq!(inspect["Descriptor"]["mediaType"], "application/vnd.oci.image.manifest.v1+json", "{inspect}");
    assert!(inspect["Descriptor"]["size"].as_u64().unwrap() > 0, "{inspect}");
    assert!(inspect["Platforms"].is_null(), "{inspect}");
    // A worker answers too, as any Docker engine does.
    let (status, on_worker) = lab.api("node-2", "GET", &format!("/v1.44/distribution/{image}/json"), None);
    assert_eq!((status, &on_worker["Descriptor"]["digest"]), (200, &inspect["Descriptor"]["digest"]), "{on_worker}");

    let out = lab.docker("node-1", &["service", "create", "--detach", "--name", "pinned", &image, "sleep", "1000"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("could not be accessed"), "{}", text(&out.stderr));
    assert_eq!(service_image(&lab, "pinned"), format!("{image}@{digest}"));
    // Its task pulls the image by that digest and runs.
    wait_for(LONG, "the pinned service's task running", || {
        lab.tasks("pinned").iter().any(|t| t["Status"]["State"] == "running").then_some(())
    });

    let out = lab.docker("node-1", &["service", "create", "--detach", "--no-resolve-image", "--name", "plain", &image, "sleep", "1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(service_image(&lab, "plain"), image);

    // No registry has it (the lab reaches no Docker Hub): moby's 500 with
    // Go's url.Error text, and the CLI's usual warning.
    let (status, body) = lab.api("node-1", "GET", "/v1.44/distribution/shoal-test/busy:1/json", None);
    assert_eq!(status, 500, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().starts_with("Get \"https://registry-1.docker.io/v2/\": "), "{body}");
    let out = lab.docker("node-1", &["service", "create", "--detach", "--name", "local", "shoal-test/busy:1", "sleep", "1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("image shoal-test/busy:1 could not be accessed on a registry to record\nits digest."),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(service_image(&lab, "local"), "shoal-test/busy:1");

    // Inspect fills SwarmKit's defaults, raw and --pretty.
    let (status, svc) = lab.api("node-1", "GET", "/v1.44/services/pinned?insertDefaults=1", None);
    assert_eq!(status, 200, "{svc}");
    let cs = &svc["Spec"]["TaskTemplate"]["ContainerSpec"];
    assert_eq!(cs["StopGracePeriod"], 10_000_000_000i64, "{svc}");
    assert!(cs["DNSConfig"].is_object(), "{svc}");
    assert_eq!(svc["Spec"]["TaskTemplate"]["RestartPolicy"]["Delay"], 5_000_000_000i64, "{svc}");
    assert_eq!(svc["Spec"]["RollbackConfig"]["Monitor"], 5_000_000_000i64, "{svc}");
    let (_, plain) = lab.api("node-1", "GET", "/v1.44/services/pinned", None);
    assert!(plain["Spec"]["TaskTemplate"]["ContainerSpec"].get("StopGracePeriod").is_none(), "{plain}");
    let out = lab.docker("node-1", &["service", "inspect", "--pretty", "pinned"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pretty = text(&out.stdout);
    for want in [
        "UpdateConfig:\n Parallelism:\t1\n On failure:\tpause\n Monitoring Period: 5s\n Max failure ratio: 0\n Update order:      stop-first\n",
        "RollbackConfig:\n Parallelism:\t1\n On failure:\tpause\n Monitoring Period: 5s\n Max failure ratio: 0\n Rollback order:    stop-first\n",
        &format!("ContainerSpec:\n Image:\t\t{image}@{digest}\n Args:\t\tsleep 1000 \n"),
        "Resources:\nEndpoint Mode:\tvip\n",
    ] {
        assert!(pretty.contains(want), "want {want:?} in:\n{pretty}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A worker knows no networks: an unknown one is Docker's 404, so the
/// stock CLI's `docker inspect <name>` there says "No such object" rather
/// than "This node is not a swarm manager".
#[test]
fn a_worker_answers_unknown_networks_with_dockers_404() {
    let lab = Lab::up("e2e-life-net", 1, 1);
    for node in ["node-2", "node-1"] {
        let (status, body) = lab.api(node, "GET", "/v1.44/networks/nosuchthing", None);
        assert_eq!((status, body["message"].as_str().unwrap_or_default()), (404, "network nosuchthing not found"), "on {node}");
    }
    // The manager's networks are still the cluster's; the worker's list is empty.
    let (status, _) = lab.api("node-1", "GET", "/v1.44/networks/ingress", None);
    assert_eq!(status, 200);
    let out = lab.docker("node-2", &["inspect", "nosuchthing"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.to_lowercase().contains("no such object: nosuchthing"), "{err}");
    assert!(!err.contains("not a swarm manager"), "{err}");
}
