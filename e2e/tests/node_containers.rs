//! A node's task containers through the stock docker CLI pointed at that
//! node's shoald (1 manager + 1 worker): `docker ps` names and labels,
//! `docker inspect`, `docker logs --tail`, `docker exec` output and exit
//! codes, `docker top`, as on a Docker Swarm node.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use shoal_e2e::{run_in_pty, text, wait_for, Lab};

const LONG: Duration = Duration::from_secs(90);

#[test]
fn docker_cli_sees_and_enters_task_containers() {
    let lab = Lab::up("e2e-ctr", 1, 1);
    lab.load_test_image(&["node-2"]);

    // Five numbered lines, then wait.
    let script = "for i in 1 2 3 4 5; do echo line-$i; done; echo oops >&2; exec sleep 1000";
    lab.docker_ok("node-1", &["network", "create", "-d", "overlay", "backnet"]);
    lab.docker_ok(
        "node-1",
        &[
            "service",
            "create",
            "--network",
            "backnet",
            "-d",
            "--no-resolve-image",
            "--name",
            "web",
            "--constraint",
            "node.role==worker",
            "--container-label",
            "tier=front",
            "--env",
            "GREETING=hi",
            "shoal-test/busy:1",
            "sh",
            "-c",
            script,
        ],
    );
    let task = wait_for(LONG, "web's task to run on node-2", || lab.tasks("web").into_iter().find(|t| t["Status"]["State"] == "running"));
    let task_id = task["ID"].as_str().unwrap().to_string();
    let node_id = task["NodeID"].as_str().unwrap().to_string();
    let name = format!("web.1.{task_id}");

    // docker ps: Docker's name, the swarm labels, the service's label.
    let fmt = "{{.Names}}|{{.Label \"com.docker.swarm.service.name\"}}|{{.Label \"com.docker.swarm.task.id\"}}|{{.Label \"com.docker.swarm.node.id\"}}|{{.Label \"tier\"}}|{{.Status}}";
    let row = wait_for(LONG, "docker ps to show the task container", || {
        let out = lab.docker_ok("node-2", &["ps", "--format", fmt]);
        out.lines().find(|l| l.starts_with(&name)).map(String::from)
    });
    let cols: Vec<&str> = row.split('|').collect();
    assert_eq!(&cols[..5], [name.as_str(), "web", task_id.as_str(), node_id.as_str(), "front"], "{row}");
    assert!(cols[5].starts_with("Up "), "{row}");
    let plain = lab.docker_ok("node-2", &["ps"]);
    assert!(plain.contains(&name) && plain.contains("shoal-test/busy:1"), "{plain}");
    // Filters as Docker's; the manager runs nothing of web.
    let filtered = lab.docker_ok("node-2", &["ps", "-q", "--no-trunc", "-f", "label=com.docker.swarm.service.name=web"]);
    assert_eq!(filtered.trim(), task_id);
    assert!(lab.docker_ok("node-2", &["ps", "-q", "-f", "name=nothing-like-this"]).trim().is_empty());
    assert!(lab.docker_ok("node-1", &["ps", "-q"]).trim().is_empty());
    let counts = lab.docker_ok("node-2", &["info", "--format", "{{.Containers}} {{.ContainersRunning}}"]);
    assert_eq!(counts.trim(), "1 1");

    // docker inspect by name and by ID prefix.
    let inspect: Value = serde_json::from_str(&lab.docker_ok("node-2", &["inspect", &name])).unwrap();
    let c = &inspect[0];
    assert_eq!(c["Id"], task_id.as_str());
    assert_eq!(c["Name"], format!("/{name}"));
    assert_eq!(c["State"]["Status"], "running");
    assert_eq!(c["State"]["Running"], true);
    assert!(c["State"]["Pid"].as_i64().unwrap() > 0, "{c}");
    assert_eq!(c["Config"]["Image"], "shoal-test/busy:1");
    assert_eq!(c["Config"]["Labels"]["com.docker.swarm.task.name"], name.as_str());
    assert!(c["Config"]["Env"].as_array().unwrap().iter().any(|e| e == "GREETING=hi"), "{c}");
    let backnet = &c["NetworkSettings"]["Networks"]["backnet"];
    assert!(backnet["IPAddress"].as_str().is_some_and(|a| a.starts_with("10.")), "{c}");
    assert!(backnet["IPPrefixLen"].as_u64().unwrap() > 0, "{c}");
    let by_prefix = lab.docker_ok("node-2", &["container", "inspect", "-f", "{{.Name}} {{.State.Status}}", &task_id[..6]]);
    assert_eq!(by_prefix.trim(), format!("/{name} running"));
    let missing = lab.docker("node-2", &["container", "inspect", "nope-nope"]);
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("No such container: nope-nope"), "{}", text(&missing.stderr));

    // docker logs --tail: the last lines, stdout and stderr kept apart.
    let logs = wait_for(LONG, "the container's output in its log", || {
        let out = lab.docker("node-2", &["logs", "--tail", "3", &name]);
        (text(&out.stderr).contains("oops")).then_some(out)
    });
    assert_eq!(text(&logs.stdout), "line-4\nline-5\n");
    assert_eq!(text(&logs.stderr), "oops\n");
    let stamped = lab.docker_ok("node-2", &["logs", "-t", "--tail", "2", &task_id]);
    assert!(stamped.ends_with(" line-5\n") && stamped.contains('T'), "{stamped}");

    // docker exec without a TTY: output and exit codes.
    let hostname = lab.docker("node-2", &["exec", &name, "cat", "/etc/hostname"]);
    assert_eq!(hostname.status.code(), Some(0), "{}", text(&hostname.stderr));
    assert_eq!(text(&hostname.stdout).trim(), &task_id[..12]);
    let three = lab.docker("node-2", &["exec", &name, "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(three.status.code(), Some(3));
    assert_eq!(text(&three.stdout), "out\n");
    assert_eq!(text(&three.stderr), "err\n");
    let missing = lab.docker("node-2", &["exec", &name, "no-such-command"]);
    assert_eq!(missing.status.code(), Some(127), "{}", text(&missing.stderr));
    assert!(text(&missing.stderr).contains("OCI runtime exec failed") && text(&missing.stderr).contains("executable file not found"));
    let env = lab.docker_ok("node-2", &["exec", "-e", "X=42", "-w", "/tmp", &name, "sh", "-c", "echo $GREETING $X $(pwd)"]);
    assert_eq!(env, "hi 42 /tmp\n");
    // Standard input with -i.
    let mut child = Command::new("docker")
        .args(["exec", "-i", &name, "cat"])
        .env("DOCKER_HOST", format!("unix://{}", lab.socket("node-2")))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"from stdin\n").unwrap();
    }
    let echoed = child.wait_with_output().unwrap();
    assert_eq!(text(&echoed.stdout), "from stdin\n");

    // docker exec -it, driven through a pseudo-terminal (util-linux
    // `script`): the shell sees a terminal of the client's size, runs what
    // is typed, and its exit code comes back.
    let (code, shown) =
        run_in_pty(&lab.socket("node-2"), &format!("docker exec -it {name} sh"), b"echo tty-$((6*7)); tty; stty size; exit 5\n", LONG);
    assert_eq!(code, Some(5), "{shown}");
    assert!(shown.contains("tty-42") && shown.contains("/dev/pts/") && shown.contains("30 100"), "{shown}");

    // A detached exec runs on, listed in the container's ExecIDs.
    lab.docker_ok("node-2", &["exec", "-d", &name, "sleep", "300"]);
    assert_eq!(lab.docker_ok("node-2", &["inspect", "-f", "{{len .ExecIDs}}", &name]).trim(), "1");

    // docker top: the container's processes.
    let top = lab.docker_ok("node-2", &["top", &name]);
    assert!(top.lines().next().unwrap_or("").contains("PID") && top.contains("sleep 1000") && top.contains("sleep 300"), "{top}");

    // docker stats --no-stream: one row per running container, from its
    // cgroup (memory in use, its limit, the processes) and its namespace's
    // interfaces.
    let stats = lab.docker_ok("node-2", &["stats", "--no-stream", "--format", "{{.Name}}|{{.MemUsage}}|{{.PIDs}}|{{.NetIO}}|{{.CPUPerc}}"]);
    let row: Vec<&str> = stats.trim().split('|').collect();
    assert_eq!(row.len(), 5, "{stats}");
    assert_eq!(row[0], name, "{stats}");
    assert!(!row[1].starts_with("0B /") && row[1].contains(" / "), "memory in use: {stats}");
    assert!(row[2].parse::<u32>().is_ok_and(|n| n >= 2), "the two sleeps at least: {stats}");
    assert!(row[3].contains(" / "), "{stats}");
    assert!(row[4].ends_with('%'), "{stats}");
    let (status, one) = lab.api("node-2", "GET", &format!("/v1.44/containers/{name}/stats?stream=false"), None);
    assert_eq!(status, 200, "{one}");
    assert!(one["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().unwrap_or(0) > 0, "{one}");
    assert!(one["precpu_stats"]["system_cpu_usage"].as_u64().unwrap_or(0) > 0, "a sample a second earlier: {one}");

    // docker logs -f follows until the container ends. Once the service
    // is gone, so is the container (from the running list).
    let follow = Command::new("docker")
        .args(["logs", "-f", "--tail", "1", &name])
        .env("DOCKER_HOST", format!("unix://{}", lab.socket("node-2")))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    lab.docker_ok("node-1", &["service", "rm", "web"]);
    wait_for(LONG, "the container to stop", || lab.docker_ok("node-2", &["ps", "-q"]).trim().is_empty().then_some(()));
    let mut follow = follow;
    wait_for(LONG, "docker logs -f to end with the container", || follow.try_wait().unwrap());
    let followed = follow.wait_with_output().unwrap();
    assert_eq!((text(&followed.stdout).as_str(), text(&followed.stderr).as_str()), ("", "oops\n"));
    let gone = lab.docker("node-2", &["exec", &name, "true"]);
    assert!(!gone.status.success());
}
