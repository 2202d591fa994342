//! `docker run` on a Shoal node with the stock docker CLI (issue 11,
//! scope 3): a first run pulls the image from the lab registry as the CLI
//! does against Docker; `--rm` streams stdout and stderr apart, returns
//! the exit code and leaves nothing; `-d --name -e -v` runs on, is listed,
//! entered, stopped, started again with what it wrote, removed; names
//! conflict as in Docker; `-i` feeds stdin, `-it` gives a terminal; `-p`
//! publishes on the node; what Shoal does not do yet is refused by name.

use std::time::Duration;

use shoal_e2e::registry::LabRegistry;
use shoal_e2e::{build_busybox_image, run_in_pty, text, wait_for, Lab};

const LONG: Duration = Duration::from_secs(60);
const REG_IP: &str = "192.168.77.11";

#[test]
fn docker_run_on_a_node() {
    let lab = Lab::up_with("e2e-run", 1, 0, &[], &["--insecure-registry", &format!("{REG_IP}:5000")]);
    let dir = std::env::temp_dir().join(format!("shoal-e2e-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let registry = LabRegistry::start(&lab, "node-1", REG_IP);
    registry.push(&build_busybox_image(&dir), "busy", "1");
    let _ = std::fs::remove_dir_all(&dir);
    let image = format!("{REG_IP}:5000/busy:1");
    let n = "node-1";

    // --rm, attached: the image is pulled first (not on the node yet), the
    // two streams arrive apart, the exit code is the container's.
    let out = lab.docker(n, &["run", "--rm", "-e", "WHO=shoal", &image, "sh", "-c", "echo hello $WHO; echo to-stderr >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello shoal\n");
    let err = text(&out.stderr);
    assert!(err.contains(&format!("Unable to find image '{image}' locally")) && err.ends_with("to-stderr\n"), "{err}");
    assert_eq!(lab.docker_ok(n, &["ps", "-a", "-q", "--filter", "is-task=false"]), "", "--rm leaves nothing");

    // The gateway bridge: an address, a default route.
    let route = lab.docker_ok(n, &["run", "--rm", &image, "ip", "route"]);
    assert!(route.contains("default via"), "{route}");

    // -d with a name, an environment and a named volume.
    let id = lab.docker_ok(
        n,
        &[
            "run",
            "-d",
            "--name",
            "keeper",
            "-e",
            "A=1",
            "-v",
            "keepdata:/data",
            &image,
            "sh",
            "-c",
            "echo $A >> /data/a; echo up; exec sleep 1000",
        ],
    );
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    let row = wait_for(LONG, "keeper in docker ps", || {
        let out = lab.docker_ok(n, &["ps", "--format", "{{.Names}}|{{.Image}}|{{.Status}}"]);
        out.lines().find(|l| l.starts_with("keeper|")).map(String::from)
    });
    assert!(row.starts_with(&format!("keeper|{image}|Up ")), "{row}");
    wait_for(LONG, "keeper's output in docker logs", || (lab.docker_ok(n, &["logs", "keeper"]) == "up\n").then_some(()));
    assert_eq!(lab.docker_ok(n, &["exec", "keeper", "cat", "/data/a"]), "1\n");
    assert_eq!(lab.docker_ok(n, &["exec", "keeper", "sh", "-c", "echo x > /scratch"]), "");
    assert_eq!(
        lab.docker_ok(n, &["inspect", "-f", "{{.Name}} {{.State.Status}} {{.HostConfig.AutoRemove}}", "keeper"]).trim(),
        "/keeper running false"
    );
    assert!(lab.docker_ok(n, &["volume", "ls", "-q"]).lines().any(|v| v == "keepdata"));

    // One name, one container.
    let clash = lab.docker(n, &["run", "-d", "--name", "keeper", &image, "true"]);
    assert!(!clash.status.success());
    assert!(
        text(&clash.stderr).contains(&format!("Conflict. The container name \"/keeper\" is already in use by container \"{id}\"")),
        "{}",
        text(&clash.stderr)
    );

    // stop, then start again: the root filesystem and the volume kept.
    lab.docker_ok(n, &["stop", "-t", "1", "keeper"]);
    assert_eq!(lab.docker_ok(n, &["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "keeper"]).trim(), "exited 137");
    lab.docker_ok(n, &["start", "keeper"]);
    wait_for(LONG, "keeper to run again", || {
        (lab.docker_ok(n, &["inspect", "-f", "{{.State.Status}}", "keeper"]).trim() == "running").then_some(())
    });
    wait_for(LONG, "keeper's second run to write", || (lab.docker_ok(n, &["exec", "keeper", "cat", "/data/a"]) == "1\n1\n").then_some(()));
    assert_eq!(lab.docker_ok(n, &["exec", "keeper", "cat", "/scratch"]), "x\n");
    lab.docker_ok(n, &["restart", "-t", "1", "keeper"]);
    assert_eq!(lab.docker_ok(n, &["inspect", "-f", "{{.State.Status}}", "keeper"]).trim(), "running");

    // rm needs -f while it runs; then it is gone, the named volume stays.
    let busy = lab.docker(n, &["rm", "keeper"]);
    assert!(text(&busy.stderr).contains("container is running"), "{}", text(&busy.stderr));
    lab.docker_ok(n, &["rm", "-f", "keeper"]);
    assert_eq!(lab.docker_ok(n, &["ps", "-a", "-q", "--filter", "name=keeper"]), "");
    assert!(lab.docker_ok(n, &["volume", "ls", "-q"]).lines().any(|v| v == "keepdata"));

    // A created container waits for its start; an ended one stays listed
    // until removed.
    let created = lab.docker_ok(n, &["create", "--name", "later", &image, "sh", "-c", "exit 7"]);
    assert_eq!(lab.docker_ok(n, &["ps", "-a", "--filter", "name=later", "--format", "{{.Status}}"]).trim(), "Created");
    let started = lab.docker(n, &["start", "-a", "later"]);
    assert_eq!(started.status.code(), Some(7), "{}", text(&started.stderr));
    assert!(lab.docker_ok(n, &["ps", "-a", "--filter", "name=later", "--format", "{{.Status}}"]).starts_with("Exited (7)"));
    lab.docker_ok(n, &["rm", created.trim()]);

    // -i: the client's input is the container's stdin, closed at its end.
    let mut cat = std::process::Command::new("docker")
        .args(["run", "--rm", "-i", &image, "sh", "-c", "cat; echo done"])
        .env("DOCKER_HOST", format!("unix://{}", lab.socket(n)))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut input = cat.stdin.take().unwrap();
        input.write_all(b"from stdin\n").unwrap();
    }
    let status = wait_for(LONG, "docker run -i to end", || cat.try_wait().unwrap());
    let mut shown = String::new();
    std::io::Read::read_to_string(&mut cat.stdout.take().unwrap(), &mut shown).unwrap();
    assert!(status.success(), "{shown}");
    assert_eq!(shown, "from stdin\ndone\n");

    // -it, driven through a pseudo-terminal (util-linux `script`): the
    // shell has a terminal of the client's size, runs what is typed, and
    // its exit code comes back.
    let (code, shown) =
        run_in_pty(&lab.socket(n), &format!("docker run --rm -it {image} sh"), b"echo tty-$((6*7)) $TERM; tty; stty size; exit 5\n", LONG);
    assert_eq!(code, Some(5), "{shown}");
    assert!(shown.contains("tty-42 xterm") && shown.contains("/dev/pts/") && shown.contains("30 100"), "{shown}");

    // -p: the node's address answers on the published port; the port is
    // the container's until it goes.
    lab.docker_ok(n, &["run", "-d", "--name", "webp", "-p", "8089:80", &image, "httpd", "-f", "-p", "80", "-h", "/etc"]);
    let url = format!("http://{}:8089/hostname", lab.addr(1));
    let answer = wait_for(LONG, "webp to answer on the node's port 8089", || {
        let out = lab.lab(&["exec", n, "--", "curl", "-s", "-m", "3", &url]);
        out.status.success().then(|| text(&out.stdout))
    });
    let webp_id = lab.docker_ok(n, &["inspect", "-f", "{{.Id}}", "webp"]);
    assert_eq!(answer.trim(), &webp_id.trim()[..12]);
    assert_eq!(lab.docker_ok(n, &["ps", "--filter", "name=webp", "--format", "{{.Ports}}"]).trim(), "0.0.0.0:8089->80/tcp");
    let taken = lab.docker(n, &["run", "--rm", "-p", "8089:80", &image, "true"]);
    assert!(text(&taken.stderr).contains("Bind for 0.0.0.0:8089 failed: port is already allocated"), "{}", text(&taken.stderr));
    lab.docker_ok(n, &["rm", "-f", "webp"]);
    wait_for(LONG, "port 8089 to be released", || {
        let out = lab.lab(&["exec", n, "--", "curl", "-s", "-m", "3", &url]);
        (!out.status.success()).then_some(())
    });

    // Refused by name, nothing created.
    for (args, want) in [
        (vec!["run", "--rm", "-P", image.as_str(), "true"], "HostConfig.PublishAllPorts"),
        (vec!["run", "--rm", "--privileged", image.as_str(), "true"], "HostConfig.Privileged"),
        (vec!["run", "--rm", "--network", "host", image.as_str(), "true"], "network host"),
    ] {
        let out = lab.docker(n, &args);
        assert!(!out.status.success() && text(&out.stderr).contains(want), "{args:?}: {}", text(&out.stderr));
    }
    assert_eq!(lab.docker_ok(n, &["ps", "-a", "-q", "--filter", "is-task=false"]), "");
}
