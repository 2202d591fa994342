//! Images and volumes on a node, through the stock docker CLI pointed at a
//! worker's own socket (issue 11, scope 4): `pull` from the lab registry
//! with Docker's progress, `image ls` and `info` agreeing, `image inspect`,
//! `history`, `rmi` refused while a task uses the image and done after,
//! `image prune -a`; `volume create|ls|inspect|rm|prune` with Docker's
//! filters and refusals; `system df`.

use std::time::Duration;

use shoal_e2e::registry::LabRegistry;
use shoal_e2e::{build_busybox_image, text, wait_for, Lab};

const LONG: Duration = Duration::from_secs(60);
const REG_IP: &str = "192.168.77.11";

#[test]
fn images_and_volumes_on_a_node_with_the_docker_cli() {
    let lab = Lab::up_with("e2e-imgvol", 1, 1, &[], &["--insecure-registry", &format!("{REG_IP}:5000")]);
    let dir = std::env::temp_dir().join(format!("shoal-e2e-imgvol-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let registry = LabRegistry::start(&lab, "node-1", REG_IP);
    registry.push(&build_busybox_image(&dir), "busy", "1");
    let image = format!("{REG_IP}:5000/busy:1");
    let w = "node-2";

    // pull: Docker's progress lines, then the reference; again: up to date.
    let out = lab.docker_ok(w, &["pull", &image]);
    assert!(out.contains("Pulling from busy") && out.contains("Digest: sha256:"), "{out}");
    assert!(out.contains(&format!("Status: Downloaded newer image for {image}")), "{out}");
    assert_eq!(out.lines().last(), Some(image.as_str()), "{out}");
    let again = lab.docker_ok(w, &["pull", &image]);
    assert!(again.contains(&format!("Status: Image is up to date for {image}")), "{again}");
    let missing = lab.docker(w, &["pull", &format!("{REG_IP}:5000/nothing:1")]);
    assert!(!missing.status.success(), "pulling what the registry lacks fails");

    // image ls and info agree; inspect and history read the image.
    let ls = lab.docker_ok(w, &["image", "ls", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert!(ls.lines().any(|l| l.starts_with(&format!("{image} "))), "{ls}");
    let ids: std::collections::BTreeSet<&str> = ls.lines().filter_map(|l| l.split(' ').nth(1)).collect();
    assert_eq!(lab.docker_ok(w, &["info", "--format", "{{.Images}}"]).trim(), ids.len().to_string());
    let inspect =
        lab.docker_ok(w, &["image", "inspect", &image, "--format", "{{.Id}} {{.Os}} {{len .RootFS.Layers}} {{index .RepoTags 0}}"]);
    let fields: Vec<&str> = inspect.split_whitespace().collect();
    assert!(fields[0].starts_with("sha256:") && fields[1] == "linux" && fields[2] != "0" && fields[3] == image, "{inspect}");
    let history = lab.docker_ok(w, &["history", "--format", "{{.ID}}|{{.Size}}", &image]);
    let first = history.lines().next().unwrap_or_default();
    assert!(fields[0].trim_start_matches("sha256:").starts_with(first.split('|').next().unwrap()), "{history}");

    // Volumes: create with a label, list with filters, inspect.
    assert_eq!(lab.docker_ok(w, &["volume", "create", "--label", "tier=db", "v1"]).trim(), "v1");
    let bad = lab.docker(w, &["volume", "create", "-o", "type=tmpfs", "v3"]);
    assert!(!bad.status.success() && text(&bad.stderr).contains("not supported"), "{}", text(&bad.stderr));
    let ls = lab.docker_ok(w, &["volume", "ls", "--format", "{{.Driver}} {{.Name}}", "--filter", "label=tier=db"]);
    assert_eq!(ls.trim(), "local v1");
    let v = lab.docker_ok(w, &["volume", "inspect", "v1", "--format", "{{.Labels.tier}} {{.Scope}} {{.Mountpoint}}"]);
    assert!(v.starts_with("db local /") && v.trim().ends_with("/v1/_data"), "{v}");

    // A task on the worker that uses the image and a volume.
    lab.docker_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "user",
            "--constraint",
            "node.hostname==node-2",
            "--mount",
            "type=volume,source=v2,target=/data",
            &image,
            "sh",
            "-c",
            "echo hello > /data/f && exec sleep 1000",
        ],
    );
    wait_for(LONG, "the task to run", || lab.tasks("user").iter().any(|t| t["Status"]["State"] == "running").then_some(()));
    let rm = lab.docker(w, &["volume", "rm", "v2"]);
    assert!(!rm.status.success() && text(&rm.stderr).contains("remove v2: volume is in use - ["), "{}", text(&rm.stderr));
    let rmi = lab.docker(w, &["rmi", &image]);
    assert!(!rmi.status.success() && text(&rmi.stderr).contains("image is being used by running container"), "{}", text(&rmi.stderr));
    let ls = lab.docker_ok(w, &["volume", "ls", "-q", "--filter", "dangling=true"]);
    assert_eq!(ls.trim(), "v1", "only v1 is unused");

    // system df: the CLI's table from Docker's shape.
    let df = lab.docker_ok(w, &["system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}"]);
    assert!(df.lines().any(|l| l == "Images 1 1"), "{df}");
    assert!(df.lines().any(|l| l == "Containers 1 1"), "{df}");
    assert!(df.lines().any(|l| l == "Local Volumes 2 1"), "{df}");
    let (status, raw) = lab.api(w, "GET", "/v1.44/system/df", None);
    assert_eq!(status, 200, "{raw}");
    let v2 = raw["Volumes"].as_array().unwrap().iter().find(|v| v["Name"] == "v2").cloned().unwrap_or_default();
    assert_eq!((v2["UsageData"]["Size"].as_u64(), v2["UsageData"]["RefCount"].as_u64()), (Some(6), Some(1)), "{v2}");

    // rm and prune: v1 goes; v2 once its task's container is gone.
    assert_eq!(lab.docker_ok(w, &["volume", "rm", "v1"]).trim(), "v1");
    let gone = lab.docker(w, &["volume", "inspect", "v1"]);
    assert!(text(&gone.stderr).contains("get v1: no such volume"), "{}", text(&gone.stderr));
    lab.docker_ok("node-1", &["service", "rm", "user"]);
    wait_for(LONG, "v2 to be pruned once unused", || {
        let out = lab.docker_ok(w, &["volume", "prune", "--all", "--force"]);
        out.contains("v2").then_some(())
    });
    assert_eq!(lab.docker_ok(w, &["volume", "ls", "-q"]).trim(), "");

    // The image can go now.
    let out = wait_for(LONG, "rmi once no container uses the image", || {
        let o = lab.docker(w, &["rmi", &image]);
        o.status.success().then(|| text(&o.stdout))
    });
    assert!(out.contains(&format!("Untagged: {image}")) && out.contains("Deleted: sha256:"), "{out}");
    let ls = lab.docker_ok(w, &["image", "ls", "-q"]);
    assert!(!ls.contains(&fields[0].trim_start_matches("sha256:")[..12]), "{ls}");
    assert_eq!(lab.docker_ok(w, &["info", "--format", "{{.Images}}"]).trim(), ls.lines().count().to_string());

    lab.lab_ok(&["down"]);
    let _ = std::fs::remove_dir_all(&dir);
}
