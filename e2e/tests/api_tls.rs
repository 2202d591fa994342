//! The Engine API on TCP is served only with mutual TLS: the stock docker
//! CLI with a client certificate from the configured CA gets answers, a
//! client without one (or with one from another CA) is refused, and
//! `shoald` will not start a TCP listener without `--tlsverify`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use shoal_e2e::{api_call, bin, require_root, text, wait_for};

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: signalling the child we spawned, by its PID.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl is needed for this test");
    assert!(out.status.success(), "openssl {args:?}: {}", text(&out.stderr));
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate.
fn make_pki(dir: &Path, prefix: &str) {
    let ca_key = format!("{prefix}ca-key.pem");
    let ca = format!("{prefix}ca.pem");
    openssl(dir, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", &ca_key]);
    openssl(dir, &["req", "-x509", "-new", "-key", &ca_key, "-subj", "/CN=test-ca", "-days", "2", "-out", &ca]);
    for (name, ext) in
        [("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"), ("client", "extendedKeyUsage=clientAuth\n")]
    {
        let key = format!("{prefix}{name}-key.pem");
        let csr = format!("{prefix}{name}.csr");
        let crt = format!("{prefix}{name}.pem");
        let extfile = format!("{prefix}{name}.ext");
        std::fs::write(dir.join(&extfile), ext).unwrap();
        openssl(dir, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", &key]);
        openssl(dir, &["req", "-new", "-key", &key, "-subj", &format!("/CN={name}"), "-out", &csr]);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &extfile,
                "-out",
                &crt,
            ],
        );
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn tcp_api_requires_client_certificates() {
    require_root();
    let tmp = TempDir(std::env::temp_dir().join(format!("shoal-e2e-tls-{}", std::process::id())));
    let dir = &tmp.0;
    std::fs::create_dir_all(dir).unwrap();
    make_pki(dir, "");
    make_pki(dir, "other-");
    let port = free_port();
    let sock = dir.join("shoald.sock");
    let p = |f: &str| dir.join(f).display().to_string();

    // Without --tlsverify a TCP listener is refused outright.
    let out = Command::new(bin("shoald"))
        .args(["--data-root", &p("d0"), "-H", &format!("tcp://127.0.0.1:{port}"), "--config-file", &p("none.json")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("without client certificates"), "{}", text(&out.stderr));

    let child = Command::new(bin("shoald"))
        .args(["--data-root", &p("d"), "--config-file", &p("none.json"), "--hostname", "tls-node"])
        .args(["-H", &format!("unix://{}", sock.display()), "-H", &format!("tcp://127.0.0.1:{port}")])
        .args(["--tlsverify", "--tlscacert", &p("ca.pem"), "--tlscert", &p("server.pem"), "--tlskey", &p("server-key.pem")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _daemon = Daemon(child);
    let sock_s = sock.display().to_string();
    wait_for(Duration::from_secs(20), "shoald to answer on its socket", || {
        (api_call(&sock_s, "GET", "/_ping", None).0 == 200).then_some(())
    });

    let docker = |args: &[&str]| {
        Command::new("docker")
            .args(["-H", &format!("tcp://127.0.0.1:{port}")])
            .args(args)
            .env_remove("DOCKER_HOST")
            .env("DOCKER_CONFIG", dir)
            .output()
            .expect("the docker CLI is part of this test")
    };
    let ok = docker(&[
        "--tlsverify",
        "--tlscacert",
        &p("ca.pem"),
        "--tlscert",
        &p("client.pem"),
        "--tlskey",
        &p("client-key.pem"),
        "info",
        "--format",
        "{{.Name}} {{.Swarm.LocalNodeState}}",
    ]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert_eq!(text(&ok.stdout).trim(), "tls-node inactive");

    let no_cert = docker(&["--tls", "--tlscacert", &p("ca.pem"), "info", "--format", "{{.Name}}"]);
    assert!(!no_cert.status.success(), "a client without a certificate must be refused");
    let other_ca = docker(&[
        "--tlsverify",
        "--tlscacert",
        &p("ca.pem"),
        "--tlscert",
        &p("other-client.pem"),
        "--tlskey",
        &p("other-client-key.pem"),
        "info",
        "--format",
        "{{.Name}}",
    ]);
    assert!(!other_ca.status.success(), "a certificate from another CA must be refused");
}
