//! `shoal network` end to end on a two-node lab: create (plain, with an
//! IPAM configuration, internal, attachable), ls and inspect compared with
//! the stock docker CLI on the same daemon, refusals in the daemon's words
//! (an unknown driver option, a network a service uses), rm, prune with and
//! without its prompt. The lab is down at the end.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use shoal_e2e::{bin, build_busybox_image, text, wait_for, Lab};

const LONG: Duration = Duration::from_secs(90);
const LAB: &str = "e2e-netcli";
const VXLAN: &str = "com.docker.network.driver.overlay.vxlanid_list";

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| std::path::Path::new(d).join(name)).find(|p| p.exists())
}

/// The stock docker CLI against node-1's daemon.
fn docker(lab: &Lab, docker: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(docker).args(args).env("DOCKER_HOST", format!("unix://{}", lab.socket("node-1"))).output().expect("run docker");
    assert!(out.status.success(), "docker {args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// `shoal network …` on node-1 with `input` on stdin.
fn shoal_with_stdin(lab: &Lab, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(bin("shoal"))
        .args(["-H", &format!("unix://{}", lab.socket("node-1"))])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run shoal");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn failed_with(out: &Output, stderr: &str) {
    assert_eq!(out.status.code(), Some(1), "stdout: {} stderr: {}", text(&out.stdout), text(&out.stderr));
    assert_eq!(text(&out.stderr).trim_end(), stderr);
}

fn inspect_one(lab: &Lab, name: &str) -> Value {
    let out = lab.shoal_ok("node-1", &["network", "inspect", name]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("network inspect {name}: {e}: {out}"));
    v.as_array().and_then(|a| a.first()).cloned().unwrap_or_else(|| panic!("network inspect {name}: {out}"))
}

fn lines(s: &str) -> BTreeSet<String> {
    s.lines().filter(|l| !l.is_empty()).map(String::from).collect()
}

#[test]
fn network_commands_on_a_lab_match_docker() {
    let docker_bin = which("docker").expect("the stock docker CLI is part of this test: install docker.io (client only is enough)");
    let lab = Lab::up(LAB, 1, 1);
    let socket = lab.socket("node-1");
    wait_for(LONG, "the ingress network", || {
        let out = lab.shoal("node-1", &["network", "ls", "--format", "{{.Name}}"]);
        text(&out.stdout).lines().any(|l| l == "ingress").then_some(())
    });

    // Create: the ID is printed.
    let plain = lab.shoal_ok("node-1", &["network", "create", "-d", "overlay", "plain"]).trim().to_string();
    assert_eq!(plain.len(), 25, "{plain}");
    let sub = lab
        .shoal_ok(
            "node-1",
            &[
                "network",
                "create",
                "--driver",
                "overlay",
                "--subnet",
                "10.123.0.0/24",
                "--gateway",
                "10.123.0.254",
                "--ip-range",
                "10.123.0.128/25",
                "--aux-address",
                "router=10.123.0.2",
                "subnetted",
            ],
        )
        .trim()
        .to_string();
    let internal = lab.shoal_ok("node-1", &["network", "create", "--internal", "--label", "team=a", "internal"]).trim().to_string();
    let attachable = lab.shoal_ok("node-1", &["network", "create", "--attachable", "att"]).trim().to_string();

    // Refused on the client (nothing sent) and by the daemon, in their words.
    failed_with(
        &lab.shoal("node-1", &["network", "create", "--gateway", "10.9.0.1", "nosub"]),
        "every ip-range or gateway must have a corresponding subnet",
    );
    failed_with(
        &lab.shoal("node-1", &["network", "create", "-d", "overlay", "--opt", "frobnicate=1", "odd"]),
        "Error response from daemon: network driver option \"frobnicate\" is not supported by this version of shoald",
    );
    let dup = lab.shoal("node-1", &["network", "create", "plain"]);
    assert_eq!(dup.status.code(), Some(1));
    assert!(text(&dup.stderr).starts_with("Error response from daemon: "), "{}", text(&dup.stderr));

    // ls: Docker's table, the same as the stock docker CLI prints.
    let table = lab.shoal_ok("node-1", &["network", "ls"]);
    assert!(table.starts_with("NETWORK ID     NAME        DRIVER    SCOPE\n"), "{table}");
    let expected_row = format!("{}   subnetted   overlay   swarm", &sub[..12]);
    assert!(table.lines().any(|l| l == expected_row), "{table}");
    assert_eq!(docker(&lab, &docker_bin, &["network", "ls"]), table);
    let ids = lab.shoal_ok("node-1", &["network", "ls", "-q", "--no-trunc"]);
    let ingress = inspect_one(&lab, "ingress")["Id"].as_str().unwrap().to_string();
    assert_eq!(lines(&ids), lines(&[&plain, &sub, &internal, &attachable, &ingress].map(|s| format!("{s}\n")).concat()));
    let short = lab.shoal_ok("node-1", &["network", "ls", "-q"]);
    assert!(short.lines().all(|l| l.len() == 12) && short.lines().count() == 5, "{short}");
    let fmt = "{{.ID}} {{.Name}} {{.Driver}} {{.Scope}} {{.Internal}}";
    assert_eq!(
        lines(&lab.shoal_ok("node-1", &["network", "ls", "--no-trunc", "--format", fmt])),
        lines(&docker(&lab, &docker_bin, &["network", "ls", "--no-trunc", "--format", fmt]))
    );
    assert_eq!(lab.shoal_ok("node-1", &["network", "ls", "-f", "label=team=a", "--format", "{{.Name}}"]), "internal\n");
    assert_eq!(lab.shoal_ok("node-1", &["network", "ls", "-f", "name=subn", "-q", "--no-trunc"]), format!("{sub}\n"));
    let json = lab.shoal_ok("node-1", &["network", "ls", "-f", "name=att", "--format", "json"]);
    let row: Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!((row["Name"].as_str(), row["ID"].as_str(), row["Scope"].as_str()), (Some("att"), Some(&attachable[..12]), Some("swarm")));

    // inspect: the IPAM configuration asked for, a VXLAN ID once allocated.
    let n = wait_for(LONG, "subnetted to be allocated", || {
        let n = inspect_one(&lab, "subnetted");
        n["Options"].get(VXLAN).is_some().then_some(n)
    });
    assert_eq!(n["Id"], sub.as_str());
    assert_eq!((n["Driver"].as_str(), n["Scope"].as_str()), (Some("overlay"), Some("swarm")));
    let cfg = &n["IPAM"]["Config"][0];
    assert_eq!(cfg["Subnet"], "10.123.0.0/24", "{n}");
    assert_eq!(cfg["Gateway"], "10.123.0.254", "{n}");
    assert_eq!(cfg["IPRange"], "10.123.0.128/25", "{n}");
    assert_eq!(cfg["AuxiliaryAddresses"]["router"], "10.123.0.2", "{n}");
    assert!(n["Options"][VXLAN].as_str().unwrap().parse::<u32>().is_ok(), "{n}");
    let p = wait_for(LONG, "plain to get a subnet", || {
        let n = inspect_one(&lab, &plain[..6]);
        let allocated = n["IPAM"]["Config"][0]["Subnet"].as_str().is_some_and(|s| !s.is_empty());
        allocated.then_some(n)
    });
    assert_eq!(p["Name"], "plain", "a unique ID prefix finds the network");
    assert_eq!(lab.shoal_ok("node-1", &["network", "inspect", "-f", "{{.Internal}} {{.Labels.team}}", "internal"]), "true a\n");
    assert_eq!(lab.shoal_ok("node-1", &["network", "inspect", "--format", "{{.Attachable}}", "att", "internal"]), "true\nfalse\n");
    assert_eq!(
        lab.shoal_ok("node-1", &["network", "inspect", "subnetted", "internal"]),
        docker(&lab, &docker_bin, &["network", "inspect", "subnetted", "internal"]),
        "inspect prints what the docker CLI prints"
    );
    let missing = lab.shoal("node-1", &["network", "inspect", "nope"]);
    assert_eq!(text(&missing.stdout), "[]\n");
    failed_with(&missing, "Error response from daemon: network nope not found");

    // rm: refused while a service uses the network, per name.
    let dir = std::env::temp_dir().join(format!("shoal-e2e-netcli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let archive = build_busybox_image(&dir);
    for node in ["node-1", "node-2"] {
        lab.shoal_ok(node, &["image", "load", "-q", "-i", archive.to_str().unwrap()]);
    }
    let svc = lab
        .shoal_ok("node-1", &["service", "create", "-d", "--name", "web", "--network", "subnetted", "shoal-test/busy:1", "sleep", "1000"])
        .trim()
        .to_string();
    assert_eq!(svc.len(), 25, "{svc}");
    let out = lab.shoal("node-1", &["network", "rm", "plain", "subnetted"]);
    assert_eq!(text(&out.stdout), "plain\n", "the free one goes, the used one stays");
    failed_with(
        &out,
        &format!("Error response from daemon: rpc error: code = FailedPrecondition desc = network {sub} is in use by service {svc}"),
    );
    failed_with(&lab.shoal("node-1", &["network", "rm", "plain"]), "Error response from daemon: network plain not found");
    lab.shoal_ok("node-1", &["network", "rm", "-f", "plain"]);
    wait_for(LONG, "a task of web to run", || lab.tasks("web").iter().any(|t| t["Status"]["State"] == "running").then_some(()));
    lab.shoal_ok("node-1", &["service", "rm", "web"]);
    let out = wait_for(LONG, "subnetted to be removable once web's tasks are gone", || {
        let out = lab.shoal("node-1", &["network", "rm", "subnetted"]);
        out.status.success().then_some(out)
    });
    assert_eq!(text(&out.stdout), "subnetted\n");

    // prune: asks first; "n" keeps everything.
    let out = shoal_with_stdin(&lab, &["network", "prune"], b"n\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] "
    );
    assert_eq!(lab.shoal_ok("node-1", &["network", "ls", "-q"]).lines().count(), 3);
    let out = shoal_with_stdin(&lab, &["network", "prune", "--filter", "label=team=a"], b"y\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).ends_with("[y/N] Deleted Networks:\ninternal\n\n"), "{}", text(&out.stdout));
    assert_eq!(lab.shoal_ok("node-1", &["network", "prune", "-f"]), "Deleted Networks:\natt\n\n");
    assert_eq!(lab.shoal_ok("node-1", &["network", "prune", "-f"]), "", "nothing left to prune: nothing printed");
    assert_eq!(lab.shoal_ok("node-1", &["network", "ls", "--format", "{{.Name}}"]), "ingress\n", "ingress is never pruned");
    assert_eq!(docker(&lab, &docker_bin, &["network", "ls", "-q", "--no-trunc"]), format!("{ingress}\n"));

    let _ = std::fs::remove_dir_all(&dir);
    drop(lab);
    assert!(!std::path::Path::new(&socket).exists(), "the lab is down: {socket} is gone");
}
