//! A Docker SDK as users install it: docker-py from PyPI, in a venv of its
//! own, drives a lab manager through create, inspect, update, scale and
//! remove (`sdk/docker_py_services.py`). Its bodies are what Shoal must read
//! as Docker's Go decoder does: `null` for unset fields,
//! `{"replicated": {"Replicas": 5}}`. Needs python3 with venv and PyPI.

use std::path::PathBuf;
use std::process::Command;

use shoal_e2e::{text, Lab};

/// The docker-py release the bodies in `daemon/src/http/corpus_tests.rs`
/// were written down from.
const DOCKER_PY: &str = "docker==7.2.0";
const SCRIPT: &str = include_str!("sdk/docker_py_services.py");

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn docker_py_drives_services_secrets_configs_nodes_networks_and_the_swarm() {
    let lab = Lab::up("e2e-docker-py", 1, 1);
    let tmp = TempDir(std::env::temp_dir().join(format!("shoal-e2e-docker-py-{}", std::process::id())));
    std::fs::create_dir_all(&tmp.0).unwrap();
    let venv = tmp.0.join("venv");

    let out = Command::new("python3").arg("-m").arg("venv").arg(&venv).output().expect("python3 is part of this test");
    assert!(out.status.success(), "python3 -m venv: {}", text(&out.stderr));
    let out = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", DOCKER_PY])
        .output()
        .expect("run pip");
    assert!(out.status.success(), "pip install {DOCKER_PY} (PyPI must be reachable): {}", text(&out.stderr));

    let script = tmp.0.join("docker_py_services.py");
    std::fs::write(&script, SCRIPT).unwrap();
    let out = Command::new(venv.join("bin/python")).arg(&script).arg(lab.socket("node-1")).output().expect("run python");
    let report = text(&out.stdout);
    println!("{report}");
    assert!(out.status.success(), "docker-py checks failed:\n{report}{}", text(&out.stderr));
    assert!(report.lines().filter(|l| l.starts_with("ok")).count() >= 16, "{report}");
}
