//! The `shoal` CLI needs no second CLI (issue 11, scope 7): on a worker's
//! own socket (1 manager + 1 worker, a lab registry), `shoal ps`, `logs`,
//! `exec`, `image pull|ls|inspect|rm|prune`, `volume
//! create|ls|inspect|rm|prune` and `system df` print what the stock docker
//! CLI prints for the same command against the same daemon, byte for byte
//! where the output is deterministic (tables that show ages are compared
//! until two runs agree, as the clock may tick between them).

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use shoal_e2e::registry::LabRegistry;
use shoal_e2e::{bin, build_busybox_image, run_in_pty, run_in_pty_steps, text, wait_for, Lab};

const LONG: Duration = Duration::from_secs(90);
const REG_IP: &str = "192.168.77.11";
const W: &str = "node-2";

/// Both CLIs with the same arguments: (shoal's output, docker's output).
fn both(lab: &Lab, args: &[&str]) -> (Output, Output) {
    (lab.shoal(W, args), lab.docker(W, args))
}

/// The same stdout, stderr and exit status from both CLIs.
fn same(lab: &Lab, args: &[&str]) -> String {
    let (s, d) = both(lab, args);
    assert_eq!(text(&s.stdout), text(&d.stdout), "stdout of {args:?}\nshoal stderr: {}", text(&s.stderr));
    assert_eq!(text(&s.stderr), text(&d.stderr), "stderr of {args:?}");
    assert_eq!(s.status.code(), d.status.code(), "exit status of {args:?}");
    text(&s.stdout)
}

/// [`same`] for outputs with ages in them ("5 seconds ago"): retried until
/// a pair of runs falls within the same second.
fn same_eventually(lab: &Lab, args: &[&str]) -> String {
    let mut last = (String::new(), String::new());
    let got = wait_for_quiet(|| {
        let (s, d) = both(lab, args);
        assert!(s.status.success() && d.status.success(), "{args:?}: {}{}", text(&s.stderr), text(&d.stderr));
        last = (text(&s.stdout), text(&d.stdout));
        (last.0 == last.1).then(|| last.0.clone())
    });
    got.unwrap_or_else(|| panic!("{args:?} never agreed:\nshoal:\n{}\ndocker:\n{}", last.0, last.1))
}

/// Up to ten tries, for comparisons that only a clock tick can spoil.
fn wait_for_quiet<T>(mut f: impl FnMut() -> Option<T>) -> Option<T> {
    for _ in 0..10 {
        if let Some(v) = f() {
            return Some(v);
        }
    }
    None
}

fn with_stdin(lab: &Lab, program: &str, args: &[&str], input: &[u8]) -> Output {
    let mut cmd = if program == "shoal" {
        let mut c = Command::new(bin("shoal"));
        c.arg("-H").arg(format!("unix://{}", lab.socket(W)));
        c
    } else {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", format!("unix://{}", lab.socket(W)));
        c
    };
    let mut child = cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn shoal_cli_prints_what_the_docker_cli_prints() {
    let lab = Lab::up_with("cl-parity", 1, 1, &[], &["--insecure-registry", &format!("{REG_IP}:5000")]);
    let dir = std::env::temp_dir().join(format!("shoal-e2e-cl-parity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let registry = LabRegistry::start(&lab, "node-1", REG_IP);
    registry.push(&build_busybox_image(&dir), "busy", "1");
    let image = format!("{REG_IP}:5000/busy:1");

    // pull: the first shows Docker's status lines (no bars off a terminal)
    // and the reference; a second one is the same text from both CLIs.
    let first = lab.shoal_ok(W, &["pull", &image]);
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(lines[0], "1: Pulling from busy", "{first}");
    assert!(lines.iter().any(|l| l.ends_with(": Pull complete")) && !first.contains('['), "{first}");
    assert!(lines.iter().any(|l| l.starts_with("Digest: sha256:")), "{first}");
    assert_eq!(&lines[lines.len() - 2..], [format!("Status: Downloaded newer image for {image}").as_str(), image.as_str()]);
    same(&lab, &["pull", &image]);
    same(&lab, &["image", "pull", "-q", &image]);
    // On a terminal: the same cursor moves and lines as docker's.
    let on_tty = |cli: &str| {
        let out = Command::new("script").args(["-qec", &format!("stty cols 150; {cli} pull {image}"), "/dev/null"]).output().unwrap();
        text(&out.stdout)
    };
    let shoal_tty = on_tty(&format!("{} -H unix://{}", bin("shoal").display(), lab.socket(W)));
    assert_eq!(shoal_tty, on_tty(&format!("DOCKER_HOST=unix://{} docker", lab.socket(W))));
    assert!(shoal_tty.contains("\x1b[1A\x1b[2K\r1: Pulling from busy \r\x1b[1B"), "{shoal_tty:?}");
    same(&lab, &["pull", &format!("{REG_IP}:5000/nothing:1")]);

    // image ls and inspect.
    same_eventually(&lab, &["image", "ls"]);
    same_eventually(&lab, &["image", "ls", "--digests", "--no-trunc"]);
    same(&lab, &["image", "ls", "-q"]);
    same_eventually(&lab, &["images", "--format", "{{json .}}"]);
    same_eventually(&lab, &["image", "ls", "--format", "json"]);
    same(&lab, &["image", "ls", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}", "-f", "reference=*/busy:*"]);
    same(&lab, &["image", "inspect", &image]);
    same(&lab, &["image", "inspect", "-f", "{{.Id}} {{index .RepoTags 0}}", &image]);
    same(&lab, &["image", "inspect", "--format", "json", &image]);
    same(&lab, &["image", "inspect", &image, "nope:1"]);

    // Volumes.
    same(&lab, &["volume", "create", "--label", "tier=db", "v1"]);
    same(&lab, &["volume", "create", "-o", "type=tmpfs", "v3"]);
    lab.shoal_ok(W, &["volume", "create", "v10"]);
    same(&lab, &["volume", "ls"]);
    same(&lab, &["volume", "ls", "-q", "-f", "label=tier=db"]);
    same(&lab, &["volume", "ls", "--format", "json"]);
    same(&lab, &["volume", "ls", "--format", "table {{.Name}}\t{{.Label \"tier\"}}\t{{.Scope}}"]);
    same(&lab, &["volume", "inspect", "v1", "v10"]);
    same(&lab, &["volume", "inspect", "-f", "{{.Name}} {{.Labels}} {{.Mountpoint}}", "v1"]);
    same(&lab, &["volume", "inspect", "v1", "nope"]);
    // rm: each name printed once gone, the failures after (so each CLI
    // removes its own volume).
    lab.shoal_ok(W, &["volume", "create", "v11"]);
    let (s, d) = (lab.shoal(W, &["volume", "rm", "v10", "nope"]), lab.docker(W, &["volume", "rm", "v11", "nope"]));
    assert_eq!((text(&s.stdout), text(&d.stdout)), ("v10\n".to_string(), "v11\n".to_string()));
    assert_eq!((text(&s.stderr), s.status.code()), (text(&d.stderr), d.status.code()));

    // A task on the worker using the image and a volume.
    let script = "for i in 1 2 3 4 5; do echo line-$i; done; echo oops >&2; exec sleep 1000";
    lab.docker_ok(
        "node-1",
        &[
            "service",
            "create",
            "-d",
            "--name",
            "web",
            "--constraint",
            "node.hostname==node-2",
            "--mount",
            "type=volume,source=v2,target=/data",
            &image,
            "sh",
            "-c",
            script,
        ],
    );
    let name = lab.running_container("web", LONG);
    wait_for(LONG, "the container's output", || text(&lab.docker(W, &["logs", &name]).stderr).contains("oops").then_some(()));

    // ps in its forms.
    let table = same_eventually(&lab, &["ps"]);
    assert!(table.starts_with("CONTAINER ID   IMAGE") && table.contains(&name) && table.contains("busy:1"), "{table}");
    same_eventually(&lab, &["ps", "-a", "--no-trunc"]);
    same(&lab, &["ps", "-q"]);
    same(&lab, &["ps", "-q", "--no-trunc", "-f", "label=com.docker.swarm.service.name=web"]);
    same(
        &lab,
        &["ps", "-l", "--format", "{{.Names}}|{{.Label \"com.docker.swarm.service.name\"}}|{{.Mounts}}|{{.LocalVolumes}}|{{.State}}"],
    );
    same_eventually(&lab, &["ps", "--format", "json"]);
    same_eventually(&lab, &["ps", "--format", "table {{.ID}}\t{{.Label \"com.docker.swarm.task.id\"}}\t{{.Status}}"]);
    same(&lab, &["ps", "-f", "name=nothing-like-this"]);
    same(&lab, &["container", "ls", "-q", "--no-trunc"]);
    same(&lab, &["container", "inspect", &name]);
    same(&lab, &["container", "inspect", "-f", "{{.Name}} {{.State.Status}} {{.Config.Image}}", &name, "nope-nope"]);

    // logs: stdout and stderr apart; tails and timestamps.
    let all = same(&lab, &["logs", &name]);
    assert_eq!(all, "line-1\nline-2\nline-3\nline-4\nline-5\n");
    same(&lab, &["logs", "--tail", "2", &name]);
    same(&lab, &["logs", "-t", "-n", "1", &name]);
    same(&lab, &["logs", "--since", "2000-01-01", "--until", "1h", &name]);
    same(&lab, &["logs", "nope-nope"]);

    // exec without a TTY: output, errors and exit codes as docker's.
    same(&lab, &["exec", &name, "sh", "-c", "echo out; echo err >&2; exit 3"]);
    same(&lab, &["exec", "-e", "X=42", "-w", "/tmp", "-u", "1:1", &name, "sh", "-c", "echo $X $(pwd) $(id -u)"]);
    same(&lab, &["exec", &name, "no-such-command"]);
    same(&lab, &["exec", "nope-nope", "true"]);
    let (s, d) = (
        with_stdin(&lab, "shoal", &["exec", "-i", &name, "cat"], b"from stdin\n"),
        with_stdin(&lab, "docker", &["exec", "-i", &name, "cat"], b"from stdin\n"),
    );
    assert_eq!((text(&s.stdout), s.status.code()), (text(&d.stdout), d.status.code()));
    assert_eq!(text(&s.stdout), "from stdin\n");
    // -t with stdin not a terminal: the raw stream, as docker allows.
    same(&lab, &["exec", "-t", &name, "sh", "-c", "test -t 1 && echo on-a-tty; exit 4"]);
    // -it with stdin not a terminal: docker's refusal.
    let (s, d) =
        (with_stdin(&lab, "shoal", &["exec", "-it", &name, "sh"], b""), with_stdin(&lab, "docker", &["exec", "-it", &name, "sh"], b""));
    assert_eq!((text(&s.stderr), s.status.code()), (text(&d.stderr), d.status.code()));
    // -it through a pseudo-terminal: the shell sees this terminal's size,
    // runs what is typed, and its exit code comes back.
    let shoal_exec = format!("{} -H unix://{} exec -it {name} sh", bin("shoal").display(), lab.socket(W));
    let (code, shown) = run_in_pty(&lab.socket(W), &shoal_exec, b"echo tty-$((6*7)); tty; stty size; exit 5\n", LONG);
    assert_eq!(code, Some(5), "{shown}");
    assert!(shown.contains("tty-42") && shown.contains("/dev/pts/") && shown.contains("30 100"), "{shown}");
    // Detached: runs on, listed in the container's ExecIDs.
    lab.shoal_ok(W, &["exec", "-d", &name, "sleep", "300"]);
    assert_eq!(lab.docker_ok(W, &["inspect", "-f", "{{len .ExecIDs}}", &name]).trim(), "1");
    // ctrl-p ctrl-q detaches from an -it exec: the CLI ends as docker's
    // does (the writer closes the stream the reader waits on).
    let docker_exec = format!("docker exec -it {name} sh");
    // Typed once the shell shows its prompt: bytes typed before the CLI
    // puts the terminal in raw mode are the terminal's (^Q is flow control).
    let detach =
        |command: &str| run_in_pty_steps(&lab.socket(W), command, &[("# ", b"echo before-$((1+1))\n"), ("before-2", b"\x10\x11")], LONG);
    let ((code, shown), (dcode, dshown)) = (detach(&shoal_exec), detach(&docker_exec));
    assert_eq!(code, dcode, "shoal: {shown}\ndocker: {dshown}");
    assert!(shown.contains("read escape sequence") && dshown.contains("read escape sequence"), "shoal: {shown}\ndocker: {dshown}");

    // system df, and in-use refusals.
    same(&lab, &["system", "df"]);
    same_eventually(&lab, &["system", "df", "-v"]);
    same(&lab, &["system", "df", "--format", "json"]);
    same_eventually(&lab, &["system", "df", "-v", "--format", "{{json .}}"]);
    same(&lab, &["volume", "rm", "v2"]);
    same(&lab, &["image", "rm", &image]);

    // logs -f follows until the container ends, in both CLIs.
    let follow = |program: &str| {
        let mut c = if program == "shoal" {
            let mut c = Command::new(bin("shoal"));
            c.arg("-H").arg(format!("unix://{}", lab.socket(W)));
            c
        } else {
            let mut c = Command::new("docker");
            c.env("DOCKER_HOST", format!("unix://{}", lab.socket(W)));
            c
        };
        c.args(["logs", "-f", "--tail", "2", &name]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    };
    let (mut fs, mut fd) = (follow("shoal"), follow("docker"));

    // After the service: prune and remove, as docker prints them.
    lab.docker_ok("node-1", &["service", "rm", "web"]);
    wait_for(LONG, "the task container to stop", || lab.docker_ok(W, &["ps", "-q"]).trim().is_empty().then_some(()));
    wait_for(LONG, "both logs -f to end with the container", || {
        (fs.try_wait().unwrap().is_some() && fd.try_wait().unwrap().is_some()).then_some(())
    });
    let (fs, fd) = (fs.wait_with_output().unwrap(), fd.wait_with_output().unwrap());
    assert_eq!((text(&fs.stdout), text(&fs.stderr), fs.status.code()), (text(&fd.stdout), text(&fd.stderr), fd.status.code()));
    assert_eq!((text(&fs.stdout).as_str(), text(&fs.stderr).as_str()), ("line-5\n", "oops\n"));
    same_eventually(&lab, &["ps", "-a", "-s"]);
    let (s, d) = (with_stdin(&lab, "shoal", &["volume", "prune"], b"n\n"), with_stdin(&lab, "docker", &["volume", "prune"], b"n\n"));
    assert_eq!((text(&s.stdout), text(&s.stderr), s.status.code()), (text(&d.stdout), text(&d.stderr), d.status.code()));
    let pruned = wait_for(LONG, "v2 to be pruned once unused", || {
        let out = lab.shoal_ok(W, &["volume", "prune", "-a", "-f"]);
        out.contains("v2").then_some(out)
    });
    assert!(pruned.starts_with("Deleted Volumes:\n") && pruned.contains("\n\nTotal reclaimed space: "), "{pruned}");
    same(&lab, &["volume", "prune", "-a", "-f"]);
    same(&lab, &["volume", "ls"]);
    let removed = wait_for(LONG, "rmi once no container uses the image", || {
        let o = lab.shoal(W, &["image", "rm", &image]);
        o.status.success().then(|| text(&o.stdout))
    });
    assert!(removed.starts_with(&format!("Untagged: {image}\n")) && removed.contains("Deleted: sha256:"), "{removed}");
    same(&lab, &["image", "rm", &image]);
    same(&lab, &["image", "rm", "-f", &image]);
    same(&lab, &["image", "prune", "-a", "-f"]);
    same(&lab, &["image", "ls"]);

    drop(registry);
    lab.lab_ok(&["down"]);
    let _ = std::fs::remove_dir_all(&dir);
}
