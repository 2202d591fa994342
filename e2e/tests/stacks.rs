//! Stacks end to end on a 3-node lab: each `deploy-examples/` file deployed
//! with `shoal stack deploy` (images built from busybox-static and loaded on
//! every node), converged, checked by name and label; the web tier answers
//! by service name from another task over the overlay; a redeploy after an
//! edit updates only the edited service; `--prune` removes exactly what the
//! file dropped; the stock `docker stack deploy` makes the same specs;
//! `stack rm` leaves nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use shoal_e2e::{build_image, text, wait_for, Lab};

const LONG: Duration = Duration::from_secs(120);
const IMAGES: &[&str] = &["web", "cache", "worker", "agent", "job", "app"];

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy-examples")
}

/// A lab of its own per test (the tests of this file run side by side).
fn setup(name: &str) -> (Lab, PathBuf) {
    let lab = Lab::up(name, 1, 2);
    let dir = std::env::temp_dir().join(format!("shoal-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for tag in IMAGES {
        let archive = build_image(&dir, &format!("shoal-demo/{tag}:1"), &format!("{tag}.tar"));
        for node in ["node-1", "node-2", "node-3"] {
            lab.shoal_ok(node, &["image", "load", "-q", "-i", archive.to_str().unwrap()]);
        }
    }
    (lab, dir)
}

fn shoal(lab: &Lab, args: &[&str]) -> Output {
    Command::new(shoal_e2e::bin("shoal"))
        .arg("-H")
        .arg(format!("unix://{}", lab.socket("node-1")))
        .args(args)
        .env("SHOAL_PROGRESS_TIMEOUT", "60s")
        .output()
        .expect("run shoal")
}

fn ok(lab: &Lab, args: &[&str]) -> String {
    let out = shoal(lab, args);
    assert!(out.status.success(), "shoal {args:?} failed:\n{}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

fn deploy(lab: &Lab, file: &Path, stack: &str, extra: &[&str]) -> String {
    let mut args = vec!["stack", "deploy", "-c", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(stack);
    ok(lab, &args)
}

fn get(lab: &Lab, path: &str) -> Value {
    let (status, v) = lab.api("node-1", "GET", &format!("/v1.44{path}"), None);
    assert_eq!(status, 200, "GET {path}: {v}");
    v
}

fn label_filter(stack: &str) -> String {
    format!("?filters=%7B%22label%22%3A%7B%22com.docker.stack.namespace%3D{stack}%22%3Atrue%7D%7D")
}

/// The stack's objects of one kind by name (services, networks, secrets, configs).
fn names(lab: &Lab, kind: &str, stack: &str) -> Vec<String> {
    let list = get(lab, &format!("/{kind}{}", label_filter(stack)));
    let mut out: Vec<String> =
        list.as_array().unwrap().iter().map(|o| o["Spec"]["Name"].as_str().or(o["Name"].as_str()).unwrap_or("").to_string()).collect();
    out.sort();
    out
}

fn service(lab: &Lab, name: &str) -> Value {
    get(lab, &format!("/services/{name}"))
}

fn running(lab: &Lab, service_name: &str) -> Vec<Value> {
    let id = service(lab, service_name)["ID"].as_str().unwrap().to_string();
    lab.tasks(&id).into_iter().filter(|t| t["DesiredState"] == "running" && t["Status"]["State"] == "running").collect()
}

fn task_ids(lab: &Lab, service_name: &str) -> Vec<String> {
    let mut ids: Vec<String> = running(lab, service_name).iter().map(|t| t["ID"].as_str().unwrap().to_string()).collect();
    ids.sort();
    ids
}

fn logs(lab: &Lab, service_name: &str) -> String {
    let out = shoal(lab, &["service", "logs", service_name]);
    text(&out.stdout) + &text(&out.stderr)
}

fn nothing_left(lab: &Lab, stack: &str) {
    wait_for(LONG, &format!("nothing of stack {stack} left"), || {
        let empty = ["services", "networks", "secrets", "configs"].iter().all(|k| names(lab, k, stack).is_empty());
        let tasks = get(lab, "/tasks");
        let prefix = format!("{stack}_");
        let any_task = tasks.as_array().unwrap().iter().any(|t| {
            let svc = t["ServiceID"].as_str().unwrap_or("");
            // tasks of removed services: their service is gone from the store
            let (status, s) = lab.api("node-1", "GET", &format!("/v1.44/services/{svc}"), None);
            status == 404 || s["Spec"]["Name"].as_str().unwrap_or("").starts_with(&prefix)
        });
        (empty && !any_task).then_some(())
    });
}

/// Deploying the same file again changes nothing: every service unchanged.
fn redeploy_unchanged(lab: &Lab, file: &Path, stack: &str) {
    let out = deploy(lab, file, stack, &[]);
    assert!(out.contains("Unchanged service") && !out.contains("Updating") && !out.contains("Creating"), "{out}");
}

fn docker(lab: &Lab, args: &[&str]) -> Output {
    docker_env(lab, args, &[])
}

fn docker_env(lab: &Lab, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", lab.socket("node-1")))
        .envs(env.iter().copied())
        .output()
        .expect("run the docker CLI (install docker.io)")
}

#[test]
fn stacks_from_deploy_examples() {
    let (lab, dir) = setup("e2e-stacks");
    let ex = examples();

    // --- web tier: deploy, converge, names and labels.
    let web = ex.join("web-tier/docker-compose.yml");
    let dry = ok(&lab, &["stack", "deploy", "--dry-run", "-c", web.to_str().unwrap(), "app"]);
    assert_eq!(
        dry,
        "Would create network app_back\nWould create network app_front\nWould create service app_cache\nWould create service app_web\nWould create service app_worker\n"
    );
    assert!(names(&lab, "services", "app").is_empty(), "--dry-run changes nothing");
    let out = deploy(&lab, &web, "app", &[]);
    for line in ["Creating network app_back", "Creating network app_front", "Creating service app_cache", "Creating service app_web"] {
        assert!(out.contains(line), "{out}");
    }
    assert_eq!(names(&lab, "services", "app"), ["app_cache", "app_web", "app_worker"]);
    assert_eq!(names(&lab, "networks", "app"), ["app_back", "app_front"]);
    let web_svc = service(&lab, "app_web");
    assert_eq!(web_svc["Spec"]["Labels"]["com.docker.stack.namespace"], "app");
    assert_eq!(web_svc["Spec"]["Labels"]["com.docker.stack.image"], "shoal-demo/web:1");
    assert_eq!(web_svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Labels"]["com.docker.stack.namespace"], "app");
    assert_eq!(running(&lab, "app_web").len(), 2, "converged when deploy returns");
    assert_eq!(ok(&lab, &["stack", "ls"]), "NAME      SERVICES\napp       3\n");
    assert_eq!(ok(&lab, &["stack", "services", "-q", "-f", "name=app_web", "app"]).lines().count(), 1);
    assert!(ok(&lab, &["stack", "ps", "--format", "{{.Name}}", "app"]).contains("app_web.2"));

    // The worker reaches the web tier by name over `front`; web reaches the cache over `back`.
    wait_for(LONG, "the worker to fetch the web tier by name", || {
        logs(&lab, "app_worker").contains("fetched: hello from shoal").then_some(())
    });
    wait_for(LONG, "the web tier to reach the cache", || logs(&lab, "app_web").contains("cache ok").then_some(()));
    // Published through the routing mesh: node-1 answers, and the task saw
    // the caller's own lab address.
    let url = format!("http://{}:8080/cgi-bin/whoami", lab.addr(1));
    let seen = wait_for(LONG, "the web tier on port 8080 of node-1", || {
        let out = lab.lab(&["exec", "node-2", "--", "curl", "-s", "-m", "3", &url]);
        out.status.success().then(|| text(&out.stdout))
    });
    assert!(seen.trim().ends_with(&format!("saw the client as [::ffff:{}]", lab.addr(2))), "{seen}");

    // --- redeploy unchanged: nothing updated; after an edit of the worker, only the worker.
    let before: Vec<Vec<String>> = ["app_cache", "app_web", "app_worker"].iter().map(|s| task_ids(&lab, s)).collect();
    let versions = |lab: &Lab| -> Vec<u64> {
        ["app_cache", "app_web", "app_worker"].iter().map(|s| service(lab, s)["Version"]["Index"].as_u64().unwrap()).collect()
    };
    let v0 = versions(&lab);
    let out = deploy(&lab, &web, "app", &[]);
    assert!(out.contains("Unchanged service app_web (id: ") && !out.contains("Updating"), "{out}");
    assert_eq!(versions(&lab), v0, "an unchanged redeploy touches no service");
    let edited_dir = dir.join("web-edit");
    std::fs::create_dir_all(&edited_dir).unwrap();
    let edited = edited_dir.join("docker-compose.yml");
    std::fs::write(&edited, std::fs::read_to_string(&web).unwrap().replace("INTERVAL: \"2\"", "INTERVAL: \"3\"")).unwrap();
    let out = deploy(&lab, &edited, "app", &[]);
    assert!(out.contains("Updating service app_worker (id: "), "{out}");
    assert!(!out.contains("Updating service app_web") && !out.contains("Updating service app_cache"), "{out}");
    let v1 = versions(&lab);
    assert_eq!((v1[0], v1[1]), (v0[0], v0[1]));
    assert!(v1[2] > v0[2]);
    assert_eq!(task_ids(&lab, "app_cache"), before[0], "cache tasks kept");
    assert_eq!(task_ids(&lab, "app_web"), before[1], "web tasks kept");
    let after_worker = task_ids(&lab, "app_worker");
    assert_eq!(after_worker.len(), 1);
    assert_ne!(after_worker, before[2], "the worker's task was replaced");

    // --- the same file through the stock docker CLI: the same specs.
    // (on another port: app_web holds 8080)
    let d = docker_env(&lab, &["stack", "deploy", "--detach=false", "-c", web.to_str().unwrap(), "dock"], &[("WEB_PORT", "8081")]);
    assert!(d.status.success(), "docker stack deploy: {}{}", text(&d.stdout), text(&d.stderr));
    assert_eq!(names(&lab, "services", "dock"), ["dock_cache", "dock_web", "dock_worker"]);
    assert_eq!(names(&lab, "networks", "dock"), ["dock_back", "dock_front"]);
    let net_name = |id: &str| get(&lab, &format!("/networks/{id}"))["Name"].as_str().unwrap().to_string();
    for s in ["cache", "web", "worker"] {
        let (a, b) = (service(&lab, &format!("app_{s}"))["Spec"].clone(), service(&lab, &format!("dock_{s}"))["Spec"].clone());
        let nets = |spec: &Value, stack: &str| -> Vec<String> {
            let mut v: Vec<String> = spec["TaskTemplate"]["Networks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| net_name(n["Target"].as_str().unwrap()).replacen(&format!("{stack}_"), "X_", 1))
                .collect();
            v.sort();
            v
        };
        assert_eq!(nets(&a, "app"), nets(&b, "dock"), "{s}: networks");
        assert_eq!(a["Mode"], b["Mode"], "{s}: mode");
        assert_eq!(a["Labels"]["com.docker.stack.image"], b["Labels"]["com.docker.stack.image"], "{s}");
        assert_eq!(b["Labels"]["com.docker.stack.namespace"], "dock");
        assert_eq!(a["TaskTemplate"]["ContainerSpec"]["Image"], b["TaskTemplate"]["ContainerSpec"]["Image"], "{s}: image");
        if s != "worker" {
            // (the worker's spec was edited above)
            assert_eq!(a["TaskTemplate"]["ContainerSpec"]["Args"], b["TaskTemplate"]["ContainerSpec"]["Args"], "{s}: args");
        }
        assert_eq!(a["TaskTemplate"]["RestartPolicy"], b["TaskTemplate"]["RestartPolicy"], "{s}: restart policy");
        assert_eq!(a["UpdateConfig"], b["UpdateConfig"], "{s}: update config");
        if s != "worker" {
            // The whole spec, field by field, once what differs by design
            // is made the same: the stack's name in names and labels, the
            // networks' IDs, and web's published port (8080 and 8081).
            let norm = |spec: &Value, stack: &str| -> Value {
                let mut v = spec.clone();
                if let Some(ns) = v["TaskTemplate"]["Networks"].as_array_mut() {
                    for n in ns.iter_mut() {
                        n["Target"] = Value::String(net_name(n["Target"].as_str().unwrap()));
                    }
                    ns.sort_by_key(|n| n["Target"].as_str().unwrap_or("").to_string());
                }
                if let Some(ports) = v["EndpointSpec"]["Ports"].as_array_mut() {
                    for p in ports.iter_mut() {
                        p["PublishedPort"] = Value::from(0);
                    }
                }
                let text = serde_json::to_string(&v).unwrap().replace(&format!("{stack}_"), "X_").replace(&format!("\"{stack}\""), "\"X\"");
                serde_json::from_str(&text).unwrap()
            };
            assert_eq!(norm(&a, "app"), norm(&b, "dock"), "{s}: the whole spec");
        }
    }
    let d = docker(&lab, &["stack", "rm", "dock"]);
    assert!(d.status.success(), "docker stack rm: {}", text(&d.stderr));
    nothing_left(&lab, "dock");

    // --- --prune after dropping a service (cache) and a network (back) from the file.
    let pruned_dir = dir.join("web-pruned");
    std::fs::create_dir_all(&pruned_dir).unwrap();
    let pruned = pruned_dir.join("docker-compose.yml");
    let text_web = std::fs::read_to_string(&edited).unwrap();
    let cache_start = text_web.find("  cache:\n").unwrap();
    let worker_start = text_web.find("  worker:\n").unwrap();
    let mut p = format!("{}{}", &text_web[..cache_start], &text_web[worker_start..]);
    p = p.replace("networks: [front, back]", "networks: [front]").replace("  back:\n", "");
    std::fs::write(&pruned, p).unwrap();
    let out = deploy(&lab, &pruned, "app", &["--prune"]);
    assert!(out.contains("Removing service app_cache\n") && out.contains("Removing network app_back\n"), "{out}");
    assert!(out.contains("Updating service app_web"), "{out}");
    assert!(!out.contains("Removing service app_worker") && !out.contains("Removing network app_front"), "{out}");
    assert_eq!(names(&lab, "services", "app"), ["app_web", "app_worker"]);
    assert_eq!(names(&lab, "networks", "app"), ["app_front"]);

    // --- stack rm leaves nothing.
    let out = ok(&lab, &["stack", "rm", "app"]);
    assert_eq!(out, "Removing service app_web\nRemoving service app_worker\nRemoving network app_front\n");
    nothing_left(&lab, "app");

    // --- global agent: one task per node.
    deploy(&lab, &ex.join("global-agent/docker-compose.yml"), "mon", &[]);
    wait_for(LONG, "an agent on each of the 3 nodes", || (running(&lab, "mon_agent").len() == 3).then_some(()));
    let mut nodes: Vec<String> = running(&lab, "mon_agent").iter().map(|t| t["NodeID"].as_str().unwrap().to_string()).collect();
    nodes.dedup();
    assert_eq!(nodes.len(), 3);
    assert_eq!(service(&lab, "mon_agent")["Spec"]["Labels"]["com.example.role"], "agent");
    redeploy_unchanged(&lab, &ex.join("global-agent/docker-compose.yml"), "mon");
    ok(&lab, &["stack", "rm", "mon"]);
    nothing_left(&lab, "mon");

    // --- placement: labels on the two workers, 2 frontend tasks on each, backend on workers.
    for (node, zone) in [("node-2", "a"), ("node-3", "b")] {
        wait_for(LONG, "node labels", || {
            (lab.label("node-1", node, "tier", "frontend").is_ok() && lab.label("node-1", node, "zone", zone).is_ok()).then_some(())
        });
    }
    deploy(&lab, &ex.join("placement/docker-compose.yml"), "shop", &[]);
    let by_host = shoal_e2e::by_host(&lab.nodes("node-1"));
    let id_of = |h: &str| by_host[h]["ID"].as_str().unwrap().to_string();
    let on = |svc: &str, node: &str| running(&lab, svc).iter().filter(|t| t["NodeID"].as_str() == Some(&id_of(node))).count();
    assert_eq!((on("shop_frontend", "node-2"), on("shop_frontend", "node-3"), on("shop_frontend", "node-1")), (2, 2, 0));
    assert_eq!(on("shop_backend", "node-1"), 0);
    assert_eq!(running(&lab, "shop_backend").len(), 2);
    redeploy_unchanged(&lab, &ex.join("placement/docker-compose.yml"), "shop");
    ok(&lab, &["stack", "rm", "shop"]);
    nothing_left(&lab, "shop");

    // --- secrets and configs from files.
    deploy(&lab, &ex.join("secrets-configs/docker-compose.yml"), "site", &[]);
    assert_eq!(names(&lab, "secrets", "site"), ["site_db_password"]);
    assert_eq!(names(&lab, "configs", "site"), ["site_index"]);
    let sec = get(&lab, "/secrets/site_db_password");
    assert_eq!(sec["Spec"]["Labels"]["com.docker.stack.namespace"], "site");
    wait_for(LONG, "the site to see its secret and config", || {
        let l = logs(&lab, "site_site");
        (l.contains("secret db_password mounted") && l.contains("serving: hello from a stack config")).then_some(())
    });
    redeploy_unchanged(&lab, &ex.join("secrets-configs/docker-compose.yml"), "site");
    // --prune after dropping the secret from the file: exactly the secret
    // goes (the service that used it is updated, the config stays).
    let no_secret_dir = dir.join("site-no-secret");
    std::fs::create_dir_all(&no_secret_dir).unwrap();
    std::fs::copy(ex.join("secrets-configs/index.html"), no_secret_dir.join("index.html")).unwrap();
    let original = std::fs::read_to_string(ex.join("secrets-configs/docker-compose.yml")).unwrap();
    let edited = original
        .replace("    secrets:\n      - db_password\n", "")
        .replace("secrets:\n  db_password:\n    file: ./db_password.txt\n\n", "");
    assert!(!edited.contains("db_password:"), "the edit removed the secret:\n{edited}");
    let no_secret = no_secret_dir.join("docker-compose.yml");
    std::fs::write(&no_secret, edited).unwrap();
    let out = deploy(&lab, &no_secret, "site", &["--prune"]);
    assert!(out.contains("Removing secret site_db_password") && out.contains("Updating service site_site"), "{out}");
    assert!(!out.contains("Removing config"), "{out}");
    assert!(names(&lab, "secrets", "site").is_empty());
    assert_eq!(names(&lab, "configs", "site"), ["site_index"]);
    ok(&lab, &["stack", "rm", "site"]);
    nothing_left(&lab, "site");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Jobs and `depends_on`: a replicated job on the stack's overlay runs to
/// completion, and a service waits for another to be healthy (and for a job
/// to complete) before it is created.
#[test]
fn stacks_job_and_depends_on() {
    let (lab, dir) = setup("e2e-jobs");
    let ex = examples();
    let out = deploy(&lab, &ex.join("job/docker-compose.yml"), "once", &[]);
    assert!(out.contains("Creating service once_migrate"), "{out}");
    let id = service(&lab, "once_migrate")["ID"].as_str().unwrap().to_string();
    let complete = lab.tasks(&id).iter().filter(|t| t["Status"]["State"] == "complete").count();
    assert_eq!(complete, 3, "deploy returns once the job completed");
    ok(&lab, &["stack", "rm", "once"]);
    nothing_left(&lab, "once");

    let out = deploy(&lab, &ex.join("depends-on/docker-compose.yml"), "dep", &[]);
    assert!(out.contains("Waiting for service dep_db to be healthy (service_healthy) before creating dep_migrate"), "{out}");
    // The dependent's first task is created after the dependency's task is running (healthy).
    let first = |svc: &str, key: &str| -> String {
        let id = service(&lab, svc)["ID"].as_str().unwrap().to_string();
        let mut ts: Vec<String> = lab
            .tasks(&id)
            .iter()
            .filter(|t| key != "Status" || t["Status"]["State"] == "running")
            .map(|t| if key == "Status" { t["Status"]["Timestamp"].clone() } else { t["CreatedAt"].clone() })
            .map(|v| v.as_str().unwrap_or("").to_string())
            .collect();
        ts.sort();
        ts.first().cloned().unwrap_or_default()
    };
    let db_healthy = first("dep_db", "Status");
    let migrate_created = first("dep_migrate", "CreatedAt");
    assert!(!db_healthy.is_empty() && migrate_created > db_healthy, "migrate created {migrate_created}, db healthy {db_healthy}");
    redeploy_unchanged(&lab, &ex.join("depends-on/docker-compose.yml"), "dep");
    ok(&lab, &["stack", "rm", "dep"]);
    nothing_left(&lab, "dep");
    let _ = std::fs::remove_dir_all(&dir);
}
