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

    // The same with `shoal` (Docker's flags, SHOAL_* in place of DOCKER_*).
    let shoal = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = Command::new(bin("shoal"));
        c.args(["-H", &format!("tcp://127.0.0.1:{port}")]).args(args);
        for k in ["SHOAL_HOST", "SHOAL_TLS_VERIFY", "SHOAL_CERT_PATH"] {
            c.env_remove(k);
        }
        c.env("HOME", dir).envs(env.iter().copied()).output().expect("run shoal")
    };
    let flags = ["--tlsverify", "--tlscacert", &p("ca.pem"), "--tlscert", &p("client.pem"), "--tlskey", &p("client-key.pem")];
    let ok = shoal(&[&flags[..], &["info", "--format", "{{.Name}} {{.Swarm.LocalNodeState}}"]].concat(), &[]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert_eq!(text(&ok.stdout).trim(), "tls-node inactive");
    // A body of a few MB each way over TLS: an image loaded, then listed.
    let image = shoal_e2e::build_busybox_image(dir);
    let load = shoal(&[&flags[..], &["image", "load", "-q", "-i", image.to_str().unwrap()]].concat(), &[]);
    assert!(load.status.success(), "{}", text(&load.stderr));
    let ls = shoal(&[&flags[..], &["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]].concat(), &[]);
    assert_eq!(text(&ls.stdout).trim(), "shoal-test/busy:1", "{}", text(&ls.stderr));
    // SHOAL_TLS_VERIFY and SHOAL_CERT_PATH with Docker's file names.
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    for (from, to) in [("ca.pem", "ca.pem"), ("client.pem", "cert.pem"), ("client-key.pem", "key.pem")] {
        std::fs::copy(dir.join(from), certs.join(to)).unwrap();
    }
    let certs_s = certs.display().to_string();
    let by_env = shoal(&["version", "--format", "{{.Server.Version}}"], &[("SHOAL_TLS_VERIFY", "1"), ("SHOAL_CERT_PATH", &certs_s)]);
    assert!(by_env.status.success(), "{}", text(&by_env.stderr));
    // Refusals, each with its reason.
    let no_cert = shoal(&["--tlsverify", "--tlscacert", &p("ca.pem"), "info"], &[]);
    assert!(!no_cert.status.success(), "a client without a certificate must be refused");
    assert!(
        text(&no_cert.stderr).starts_with(&format!("error during connect: Get \"https://127.0.0.1:{port}/v1.44/info\": ")),
        "{}",
        text(&no_cert.stderr)
    );
    let other = shoal(
        &["--tlsverify", "--tlscacert", &p("other-ca.pem"), "--tlscert", &p("client.pem"), "--tlskey", &p("client-key.pem"), "info"],
        &[],
    );
    // Both test CAs are named "test-ca": rustls finds the issuer by name, and the signature fails.
    assert!(text(&other.stderr).contains("tls: invalid peer certificate: BadSignature"), "{}", text(&other.stderr));
    let plain = shoal(&["info"], &[]);
    assert!(!plain.status.success(), "plain HTTP to a TLS listener gets no answer");
    let missing = shoal(&["--tlsverify", "--tlscacert", &p("nope.pem"), "info"], &[]);
    assert_eq!(
        text(&missing.stderr).trim(),
        format!("could not read CA certificate \"{0}\": open {0}: no such file or directory", p("nope.pem"))
    );
}
