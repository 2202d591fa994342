//! SwarmKit's templates, with the stock docker CLI (1 manager + 1 worker):
//! a service's `--hostname`, `--env` and mount source are expanded per task
//! on its node, and a config created with `--template-driver golang` is
//! expanded for each task, reading the task's environment and one of its
//! secrets; a template that cannot be parsed rejects the task.

use std::time::Duration;

use shoal_e2e::{build_busybox_image, text, wait_for, Lab};

const LONG: Duration = Duration::from_secs(90);

#[test]
fn templates_are_expanded_per_task_as_swarmkit_does() {
    let lab = Lab::up("e2e-tpl", 1, 1);
    let dir = std::env::temp_dir().join(format!("shoal-e2e-tpl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let archive = build_busybox_image(&dir);
    lab.shoal_ok("node-2", &["image", "load", "-q", "-i", archive.to_str().unwrap()]);

    let pw = dir.join("pw");
    std::fs::write(&pw, "s3cret").unwrap();
    lab.docker_ok("node-1", &["secret", "create", "db_pw", pw.to_str().unwrap()]);
    let tpl = dir.join("app.conf.tmpl");
    std::fs::write(
        &tpl,
        "service={{.Service.Name}} slot={{.Task.Slot}} node={{.Node.Hostname}} os={{.Node.Platform.OS}}\n\
         user={{env \"DB_USER\"}} pass={{secret \"db_pw\"}} tier={{index .Service.Labels \"tier\"}}\n",
    )
    .unwrap();
    lab.docker_ok("node-1", &["config", "create", "--template-driver", "golang", "app_conf", tpl.to_str().unwrap()]);
    let inspect = lab.docker_ok("node-1", &["config", "inspect", "app_conf", "--format", "{{.Spec.Templating.Name}}"]);
    assert_eq!(inspect.trim(), "golang");
    let bad = lab.docker("node-1", &["config", "create", "--template-driver", "jinja", "other", tpl.to_str().unwrap()]);
    assert!(!bad.status.success() && text(&bad.stderr).contains("templating driver \"jinja\" is not supported"), "{}", text(&bad.stderr));

    lab.docker_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "app",
            "--replicas",
            "2",
            "--label",
            "tier=back",
            "--constraint",
            "node.role==worker",
            "--no-resolve-image",
            "--hostname",
            "{{.Node.Hostname}}-{{.Task.Slot}}",
            "--env",
            "DB_USER=app",
            "--env",
            "SLOT={{.Task.Slot}}",
            "--mount",
            "type=volume,source=data-{{.Task.Slot}},target=/data",
            "--secret",
            "db_pw",
            "--config",
            "source=app_conf,target=/app.conf",
            "shoal-test/busy:1",
            "sleep",
            "1000",
        ],
    );
    let tasks = wait_for(LONG, "both app tasks running", || {
        let ts: Vec<_> = lab.tasks("app").into_iter().filter(|t| t["Status"]["State"] == "running").collect();
        (ts.len() == 2).then_some(ts)
    });
    for t in &tasks {
        let slot = t["Slot"].as_u64().unwrap();
        let name = format!("app.{slot}.{}", t["ID"].as_str().unwrap());
        let out = lab.docker_ok("node-2", &["exec", &name, "sh", "-c", "hostname; echo $SLOT; cat /app.conf"]);
        assert_eq!(
            out,
            format!("node-2-{slot}\n{slot}\nservice=app slot={slot} node=node-2 os=linux\nuser=app pass=s3cret tier=back\n"),
            "task {name}"
        );
    }
    let vols = lab.docker_ok("node-2", &["volume", "ls", "-q"]);
    assert_eq!(vols.lines().collect::<Vec<_>>(), ["data-1", "data-2"], "{vols}");

    // A template that does not parse rejects the task, naming the field.
    lab.docker_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "broken",
            "--no-resolve-image",
            "--hostname",
            "{{.Node.Hostname",
            "shoal-test/busy:1",
            "sleep",
            "1",
        ],
    );
    let err = wait_for(LONG, "the broken task to be rejected", || {
        lab.tasks("broken")
            .into_iter()
            .find(|t| t["Status"]["State"] == "rejected")
            .map(|t| t["Status"]["Err"].as_str().unwrap_or("").to_string())
    });
    assert!(err.starts_with("expanding hostname failed"), "{err}");

    lab.lab_ok(&["down"]);
    let _ = std::fs::remove_dir_all(&dir);
}
