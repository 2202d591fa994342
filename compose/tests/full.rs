//! A file that uses nearly every key, loaded from disk (with its `.env`,
//! `env_file`, secret and config files), merged with an override, and
//! converted as `docker stack deploy` would.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::json;
use shoal_compose::{load, plan, Condition, Plan};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/full").join(name)
}

fn env() -> BTreeMap<String, String> {
    // TAG comes from .env unless the environment sets it.
    [("FROM_SHELL", "sh")].into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

fn full_plan() -> Plan {
    let loaded = load(&[fixture("docker-compose.yml")], &env()).unwrap();
    assert_eq!(loaded.unsupported, vec!["build", "restart"]);
    assert_eq!(loaded.deprecated[0].0, "container_name");
    plan(&loaded, "st").unwrap()
}

fn service<'a>(plan: &'a Plan, name: &str) -> &'a serde_json::Value {
    &plan.services.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no service {name}")).spec
}

#[test]
fn services_are_created_after_what_they_depend_on() {
    let plan = full_plan();
    let order: Vec<&str> = plan.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(order, vec!["agent", "db", "migrate", "once", "api", "web"]);
    let web = plan.services.iter().find(|s| s.name == "web").unwrap();
    assert_eq!(web.depends_on, vec![("api".to_owned(), Condition::ServiceHealthy)]);
}

#[test]
fn names_and_labels_are_stack_scoped() {
    let plan = full_plan();
    let web = service(&plan, "web");
    assert_eq!(web["Name"], "st_web");
    assert_eq!(
        web["Labels"],
        json!({"com.docker.stack.namespace": "st", "com.docker.stack.image": "registry.local/web:1.2.3", "com.example.description": "web tier"})
    );
    let c = &web["TaskTemplate"]["ContainerSpec"];
    assert_eq!(c["Labels"], json!({"com.docker.stack.namespace": "st", "team": "web", "tier": "front"}));
    // A merge key brings in the anchored block; a service's own key wins.
    assert_eq!(service(&plan, "api")["TaskTemplate"]["ContainerSpec"]["Labels"]["team"], "core");
}

#[test]
fn container_spec_fields() {
    let plan = full_plan();
    let c = &service(&plan, "web")["TaskTemplate"]["ContainerSpec"];
    assert_eq!(c["Image"], "registry.local/web:1.2.3");
    assert_eq!(c["Command"], json!(["/bin/entry", "--verbose", "two words"]));
    assert_eq!(c["Args"], json!(["serve", "--port", "80"]));
    assert_eq!(c["Env"], json!(["FROM_FILE=file", "FROM_SHELL=sh", "MODE=production", "PORT=80"]));
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(c["Dir"], "/srv");
    assert_eq!(c["Hostname"], "web-host");
    assert_eq!(c["StopGracePeriod"], 60_000_000_000i64);
    assert_eq!(c["StopSignal"], "SIGUSR1");
    assert_eq!(c["Init"], true);
    assert_eq!(c["ReadOnly"], true);
    assert_eq!(c["CapabilityAdd"], json!(["NET_ADMIN"]));
    assert_eq!(c["CapabilityDrop"], json!(["ALL"]));
    assert_eq!(c["Sysctls"], json!({"net.core.somaxconn": "1024"}));
    assert_eq!(c["Hosts"], json!(["162.242.195.82 somehost", "50.31.209.229 otherhost"]));
    assert_eq!(c["DNSConfig"], json!({"Nameservers": ["8.8.8.8"], "Search": ["example.com"], "Options": ["use-vc"]}));
    assert_eq!(c["Ulimits"], json!([{"Name": "nofile", "Soft": 20000, "Hard": 40000}, {"Name": "nproc", "Soft": 65535, "Hard": 65535}]));
    assert_eq!(
        c["Healthcheck"],
        json!({
            "Test": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
            "Interval": 90_000_000_000i64, "Timeout": 10_000_000_000i64,
            "StartPeriod": 40_000_000_000i64, "StartInterval": 5_000_000_000i64, "Retries": 3
        })
    );
    assert_eq!(service(&plan, "db")["TaskTemplate"]["ContainerSpec"]["Healthcheck"], json!({"Test": ["NONE"]}));
    assert_eq!(service(&plan, "api")["TaskTemplate"]["ContainerSpec"]["Healthcheck"], json!({"Test": ["CMD", "api", "health"]}));
}

#[test]
fn mounts_from_short_and_long_forms() {
    let plan = full_plan();
    let mounts = service(&plan, "web")["TaskTemplate"]["ContainerSpec"]["Mounts"].as_array().unwrap().clone();
    let conf = fixture("conf").display().to_string();
    assert_eq!(
        mounts[0],
        json!({"Type": "volume", "Source": "st_data", "Target": "/var/lib/web", "ReadOnly": true, "VolumeOptions": {"Labels": {"com.docker.stack.namespace": "st"}}})
    );
    assert_eq!(mounts[1], json!({"Type": "bind", "Source": conf, "Target": "/etc/web"}));
    assert_eq!(mounts[2], json!({"Type": "volume", "Target": "/cache"}));
    assert_eq!(
        mounts[3],
        json!({"Type": "volume", "Source": "st_logs", "Target": "/logs", "VolumeOptions": {
            "NoCopy": true,
            "Labels": {"com.docker.stack.namespace": "st", "com.example.kind": "logs"},
            "DriverConfig": {"Name": "local", "Options": {"type": "tmpfs"}}
        }})
    );
    assert_eq!(mounts[4], json!({"Type": "tmpfs", "Target": "/scratch", "TmpfsOptions": {"SizeBytes": 64 << 20}}));
    assert_eq!(
        mounts[5],
        json!({"Type": "bind", "Source": "/var/run/x.sock", "Target": "/x.sock", "ReadOnly": true, "BindOptions": {"Propagation": "rslave"}})
    );
    // Service-level tmpfs entries become tmpfs mounts.
    assert_eq!(mounts[6], json!({"Type": "tmpfs", "Target": "/run"}));
    assert_eq!(mounts[7], json!({"Type": "tmpfs", "Target": "/tmp", "TmpfsOptions": {"SizeBytes": 16 << 20, "Mode": 0o1777}}));
    // An external volume keeps its own name and gets no labels.
    let db = &service(&plan, "db")["TaskTemplate"]["ContainerSpec"]["Mounts"][0];
    assert_eq!(db, &json!({"Type": "volume", "Source": "shared-pg", "Target": "/var/lib/postgresql/data", "VolumeOptions": {}}));
}

#[test]
fn secrets_and_configs_references() {
    let plan = full_plan();
    let c = &service(&plan, "web")["TaskTemplate"]["ContainerSpec"];
    assert_eq!(
        c["Secrets"],
        json!([
            {"SecretName": "st_db_password", "File": {"Name": "/run/secrets/pw", "UID": "103", "GID": "103", "Mode": 0o440}},
            {"SecretName": "st_site_key", "File": {"Name": "site_key", "UID": "0", "GID": "0", "Mode": 0o444}}
        ])
    );
    assert_eq!(
        c["Configs"],
        json!([{"ConfigName": "st_nginx_conf", "File": {"Name": "/etc/nginx/nginx.conf", "UID": "0", "GID": "0", "Mode": 0o444}}])
    );
}

#[test]
fn deploy_section() {
    let plan = full_plan();
    let web = service(&plan, "web");
    assert_eq!(web["Mode"], json!({"Replicated": {"Replicas": 3}}));
    assert_eq!(service(&plan, "agent")["Mode"], json!({"Global": {}}));
    assert_eq!(service(&plan, "migrate")["Mode"], json!({"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 2}}));
    assert_eq!(service(&plan, "once")["Mode"], json!({"GlobalJob": {}}));
    let t = &web["TaskTemplate"];
    assert_eq!(
        t["Resources"],
        json!({
            "Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 512 << 20, "Pids": 100},
            "Reservations": {"NanoCPUs": 250_000_000, "MemoryBytes": 128 << 20,
                "GenericResources": [{"DiscreteResourceSpec": {"Kind": "gpu", "Value": 2}}]}
        })
    );
    assert_eq!(
        t["RestartPolicy"],
        json!({"Condition": "on-failure", "Delay": 5_000_000_000i64, "MaxAttempts": 3, "Window": 120_000_000_000i64})
    );
    assert_eq!(
        t["Placement"],
        json!({"Constraints": ["node.role == worker"], "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}], "MaxReplicas": 2})
    );
    assert_eq!(
        web["UpdateConfig"],
        json!({"Parallelism": 2, "Delay": 10_000_000_000i64, "FailureAction": "rollback", "Monitor": 30_000_000_000i64, "MaxFailureRatio": 0.25, "Order": "start-first"})
    );
    assert_eq!(web["RollbackConfig"], json!({"Parallelism": 0, "Order": "stop-first"}));
    assert_eq!(t["LogDriver"], json!({"Name": "json-file", "Options": {"max-size": "10m"}}));
    // The legacy `restart:` gives the restart policy when deploy has none.
    assert_eq!(service(&plan, "db")["TaskTemplate"]["RestartPolicy"], json!({"Condition": "on-failure", "MaxAttempts": 5}));
}

#[test]
fn endpoint_spec_from_ports() {
    let plan = full_plan();
    let e = &service(&plan, "web")["EndpointSpec"];
    assert_eq!(e["Mode"], "vip");
    let ports: Vec<(u64, u64, &str, &str)> = e["Ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["PublishedPort"].as_u64().unwrap_or(0),
                p["TargetPort"].as_u64().unwrap(),
                p["Protocol"].as_str().unwrap(),
                p["PublishMode"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        vec![
            (0, 9000, "tcp", "ingress"),
            (7000, 7000, "tcp", "ingress"),
            (7001, 7001, "tcp", "ingress"),
            (8080, 80, "tcp", "ingress"),
            (8081, 81, "tcp", "host"),
            (8443, 443, "udp", "ingress")
        ]
    );
    assert_eq!(service(&plan, "api")["EndpointSpec"], json!({"Mode": "dnsrr"}));
}

#[test]
fn networks_with_aliases_and_create_requests() {
    let plan = full_plan();
    assert_eq!(
        service(&plan, "web")["TaskTemplate"]["Networks"],
        json!([{"Target": "st_back", "Aliases": ["web"]}, {"Target": "st_front", "Aliases": ["www", "web"]}])
    );
    assert_eq!(service(&plan, "agent")["TaskTemplate"]["Networks"], json!([{"Target": "st_default", "Aliases": ["agent"]}]));
    let names: Vec<&str> = plan.networks.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, vec!["st_back", "st_default", "st_front"]);
    assert_eq!(
        plan.networks[0].spec,
        json!({"Name": "st_back", "Driver": "overlay", "Scope": "swarm", "Internal": true,
               "Labels": {"com.docker.stack.namespace": "st"}, "IPAM": {"Config": [{"Subnet": "10.20.0.0/24"}]}})
    );
    assert_eq!(
        plan.networks[2].spec,
        json!({"Name": "st_front", "Driver": "overlay", "Scope": "swarm", "Attachable": true, "Options": {"encrypted": ""},
               "Labels": {"com.docker.stack.namespace": "st", "com.example": "front"}})
    );
    // `outside` is external but no service uses it.
    assert!(plan.external_networks.is_empty());
}

#[test]
fn secret_and_config_create_requests_carry_the_files() {
    let plan = full_plan();
    let names: Vec<&str> = plan.secrets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["st_db_password", "st_site_key"]);
    assert_eq!(
        plan.secrets[0].spec,
        json!({"Name": "st_db_password", "Data": "czNjcmV0", "Labels": {"com.docker.stack.namespace": "st", "com.example": "pw"}})
    );
    assert_eq!(plan.external_secrets, vec!["st_ext"]);
    assert_eq!(
        plan.configs[0].spec,
        json!({"Name": "st_nginx_conf", "Data": "ZXZlbnRzIHt9Cg==", "Labels": {"com.docker.stack.namespace": "st"}, "Templating": {"Name": "golang"}})
    );
    assert_eq!(plan.external_configs, vec!["shared-config"]);
}

#[test]
fn environment_beats_dotenv() {
    let mut env = env();
    env.insert("TAG".into(), "from-shell".into());
    let loaded = load(&[fixture("docker-compose.yml")], &env).unwrap();
    assert_eq!(loaded.project.services["web"].image.as_deref(), Some("registry.local/web:from-shell"));
}

#[test]
fn an_override_file_merges_in_order() {
    let loaded = load(&[fixture("docker-compose.yml"), fixture("override.yml")], &env()).unwrap();
    let plan = plan(&loaded, "st").unwrap();
    let web = service(&plan, "web");
    assert_eq!(web["TaskTemplate"]["ContainerSpec"]["Image"], "registry.local/web:override");
    assert_eq!(web["Mode"], json!({"Replicated": {"Replicas": 5}}));
    let env = web["TaskTemplate"]["ContainerSpec"]["Env"].as_array().unwrap();
    assert!(env.contains(&json!("EXTRA=1")) && env.contains(&json!("MODE=production")));
    // 8080:80 was replaced by the same port in long form; 9443:443 was added.
    assert_eq!(web["EndpointSpec"]["Ports"].as_array().unwrap().len(), 7);
    // The volume at the same target was replaced.
    let db_mounts = &service(&plan, "db")["TaskTemplate"]["ContainerSpec"]["Mounts"];
    assert_eq!(db_mounts.as_array().unwrap().len(), 1);
    assert_eq!(db_mounts[0]["Source"], "st_other");
}

#[test]
fn a_missing_secret_file_names_where_it_was_declared() {
    let dir = std::env::temp_dir().join(format!("shoal-compose-missing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("docker-compose.yml");
    std::fs::write(&file, "services:\n  web:\n    image: x\n    secrets: [k]\nsecrets:\n  k:\n    file: ./nope.txt\n").unwrap();
    let loaded = load(&[&file], &BTreeMap::new()).unwrap();
    let e = plan(&loaded, "st").unwrap_err();
    assert!(
        e.to_string().starts_with(&format!("{}:7: secrets.k.file: cannot read {}", file.display(), dir.join("./nope.txt").display())),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
