//! Standalone containers on attachable overlays (issue 11, scope 3), with
//! the stock docker CLI on a lab of 1 manager and 1 worker: `docker run
//! --network appnet` on the worker reaches a service on the manager by its
//! name and VIP, and the service's task reaches it by its address, its
//! container name and its network alias;
//! gets its address from the managers (inside the network's subnet, listed
//! as a network attachment task), and gives it back when it ends; a
//! network that is not attachable, or unknown, is refused in Docker's
//! words.

use std::time::Duration;

use serde_json::Value;
use shoal_e2e::{text, wait_for, Lab};

const LONG: Duration = Duration::from_secs(90);
const LAB: &str = "e2e-attach";
const IMAGE: &str = "shoal-test/busy:1";

/// The network attachment tasks the managers hold (runtime `attachment`).
fn attachment_tasks(lab: &Lab) -> Vec<Value> {
    let (_, tasks) = lab.api("node-1", "GET", "/v1.44/tasks", None);
    tasks.as_array().unwrap().iter().filter(|t| t["Spec"]["Runtime"] == "attachment").cloned().collect()
}

#[test]
fn docker_run_joins_an_attachable_overlay() {
    let lab = Lab::up(LAB, 1, 1);
    lab.load_test_image(&["node-1", "node-2"]);

    lab.docker_ok("node-1", &["network", "create", "-d", "overlay", "--attachable", "--subnet", "10.77.5.0/24", "appnet"]);
    lab.docker_ok("node-1", &["network", "create", "-d", "overlay", "sealed"]);
    let serve = "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 80 -h /www";
    lab.docker_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "web",
            "--network",
            "appnet",
            "--constraint",
            "node.role==manager",
            IMAGE,
            "sh",
            "-c",
            serve,
        ],
    );
    let task = wait_for(LONG, "web's task running", || {
        lab.tasks("web").into_iter().find(|t| t["Status"]["State"] == "running").map(|t| t["ID"].as_str().unwrap().to_string())
    });

    // From the worker, by the service's name (its VIP), through the
    // container's own resolver; the container's address is on appnet.
    let probe = "busybox timeout 5 wget -qO- http://web/ && ip -4 -o addr show eth0 && cat /etc/resolv.conf";
    let out = wait_for(LONG, "a container on appnet to reach web", || {
        let out = lab.docker("node-2", &["run", "--rm", "--network", "appnet", IMAGE, "sh", "-c", probe]);
        out.status.success().then(|| text(&out.stdout))
    });
    assert!(out.starts_with("hello-from-web\n"), "{out}");
    assert!(out.contains("inet 10.77.5."), "{out}");
    assert!(out.contains("nameserver 127.0.0.11"), "{out}");
    // --rm: the container ended, and its attachment went back.
    wait_for(LONG, "the attachment to be given back", || attachment_tasks(&lab).is_empty().then_some(()));

    // A detached container with a network alias: listed as an attachment
    // task on the worker, with its address; the service's task reaches it
    // by the container's address.
    let id = lab.docker_ok(
        "node-2",
        &["run", "-d", "--name", "side", "--network", "appnet", "--network-alias", "sidecar", IMAGE, "sh", "-c", serve],
    );
    let id = id.trim().to_string();
    let attached = wait_for(LONG, "side's attachment task", || attachment_tasks(&lab).pop());
    assert_eq!(attached["Spec"]["NetworkAttachmentSpec"]["ContainerID"], id.as_str(), "{attached}");
    assert_eq!(attached["Status"]["State"], "assigned", "{attached}");
    assert_eq!(attached["Spec"]["Networks"][0]["Aliases"][0], "sidecar", "{attached}");
    let addr = attached["NetworksAttachments"][0]["Addresses"][0].as_str().unwrap().split('/').next().unwrap().to_string();
    assert!(addr.starts_with("10.77.5."), "{attached}");
    let worker_id = lab.nodes("node-1").iter().find(|n| n["Description"]["Hostname"] == "node-2").unwrap()["ID"].clone();
    assert_eq!(attached["NodeID"], worker_id);
    let root = format!("/var/lib/shoal/lab/{LAB}/node-1/runc");
    for url in [format!("http://{addr}/"), "http://side/".to_string(), "http://sidecar/".to_string()] {
        let seen = wait_for(LONG, &format!("web's task to reach the container at {url}"), || {
            let out =
                lab.lab(&["exec", "node-1", "--", "runc", "--root", &root, "exec", &task, "busybox", "timeout", "5", "wget", "-qO-", &url]);
            out.status.success().then(|| text(&out.stdout))
        });
        assert_eq!(seen, "hello-from-web\n", "{url}");
    }
    lab.docker_ok("node-2", &["rm", "-f", "side"]);
    wait_for(LONG, "side's attachment to be given back", || attachment_tasks(&lab).is_empty().then_some(()));

    // Refusals, in Docker's words.
    let out = lab.docker("node-1", &["run", "--rm", "--network", "sealed", IMAGE, "true"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "Could not attach to network sealed: rpc error: code = PermissionDenied desc = network sealed not manually attachable"
        ),
        "{err}"
    );
    let out = lab.docker("node-2", &["run", "--rm", "--network", "sealed", IMAGE, "true"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("network sealed not manually attachable"), "{}", text(&out.stderr));
    let out = lab.docker("node-2", &["run", "--rm", "--network", "nowhere", IMAGE, "true"]);
    assert!(text(&out.stderr).contains("network nowhere not found"), "{}", text(&out.stderr));
    assert!(attachment_tasks(&lab).is_empty());
}
