//! `shoal swarm ca [--rotate]`: print the cluster's root CA certificate, or
//! rotate it and follow the rotation until every node has a certificate
//! from the new root and trusts it.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use clap::Args;

use super::swarm::{swarm_update, swarm_version, CaSpecArgs};
use super::Env;
use crate::error::{CliError, CliResult};
use serde_json::Value;

use crate::json::JsonExt;
use crate::sha256;

/// How long to follow a rotation before leaving it to run in the background.
const ROTATION_DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(200);

#[derive(Args, Debug, Default)]
pub struct CaArgs {
    #[command(flatten)]
    pub ca: CaSpecArgs,
    /// Rotate the swarm CA - if no certificate or key are provided, new ones will be generated
    #[arg(long)]
    pub rotate: bool,
    /// Path to the PEM-formatted root CA certificate to use for the new cluster
    #[arg(long = "ca-cert", value_name = "pem-file", value_parser = pem_file)]
    pub ca_cert: Option<String>,
    /// Path to the PEM-formatted root CA key to use for the new cluster
    #[arg(long = "ca-key", value_name = "pem-file", value_parser = pem_file)]
    pub ca_key: Option<String>,
    /// Exit immediately instead of waiting for the root rotation to converge
    #[arg(short, long)]
    pub detach: bool,
    /// Suppress progress output
    #[arg(short, long)]
    pub quiet: bool,
}

/// Reads a PEM file given on the command line (its contents are the value).
fn pem_file(path: &str) -> Result<String, String> {
    let contents = std::fs::read_to_string(path).map_err(|e| format!("open {path}: {e}"))?;
    if !contents.contains("-----BEGIN ") {
        return Err("file contents must be in PEM format".into());
    }
    Ok(contents)
}

pub fn run(env: &mut Env, a: CaArgs) -> CliResult {
    let sw = env.client.get("/swarm")?;
    if !a.rotate {
        let given = [
            ("ca-cert", a.ca_cert.is_some()),
            ("ca-key", a.ca_key.is_some()),
            ("cert-expiry", a.ca.cert_expiry.is_some()),
            ("external-ca", !a.ca.external_ca.is_empty()),
        ];
        if let Some((flag, _)) = given.iter().find(|(_, set)| *set) {
            return Err(CliError::new(format!("`--{flag}` flag requires the `--rotate` flag to update the CA")));
        }
        return display_trust_root(env, &sw);
    }
    if !a.ca.external_ca.is_empty() && a.ca_cert.is_none() {
        return Err(CliError::new(
            "rotating to an external CA requires the `--ca-cert` flag to specify the external CA's cert - \
             to add an external CA with the current root CA certificate, use the `update` command instead",
        ));
    }
    if a.ca_cert.is_some() && a.ca.external_ca.is_empty() && a.ca_key.is_none() {
        return Err(CliError::new("the --ca-cert flag requires that a --ca-key flag and/or --external-ca flag be provided as well"));
    }
    let old_root = sw.at(&["TLSInfo", "TrustRoot"]).str().to_string();
    let mut spec = sw["Spec"].clone();
    rotation_spec(&mut spec, &a)?;
    swarm_update(env, swarm_version(&sw), &spec, false, false, false)?;
    if a.detach {
        return Ok(());
    }
    if follow_rotation(env, &old_root, a.quiet)? {
        let sw = env.client.get("/swarm")?;
        display_trust_root(env, &sw)
    } else {
        Ok(())
    }
}

/// The spec change that asks for a rotation (docker's `updateSwarmSpec`).
pub fn rotation_spec(spec: &mut Value, a: &CaArgs) -> CliResult {
    let cert = a.ca_cert.clone().unwrap_or_default();
    let key = a.ca_key.clone().unwrap_or_default();
    a.ca.merge(spec, Some(&cert))?;
    let ca = spec.entry(&["CAConfig"]);
    for (field, value) in [("SigningCACert", &cert), ("SigningCAKey", &key)] {
        if value.is_empty() {
            ca.remove(field);
        } else {
            ca.set(field, value.as_str().into());
        }
    }
    if cert.is_empty() && key.is_empty() {
        let n = ca["ForceRotate"].as_u64().unwrap_or(0);
        ca.set("ForceRotate", (n + 1).into());
    }
    Ok(())
}

fn display_trust_root(env: &mut Env, sw: &Value) -> CliResult {
    let root = sw.at(&["TLSInfo", "TrustRoot"]).str();
    if root.is_empty() {
        return Err(CliError::new("no CA information available"));
    }
    env.println(root.trim())
}

/// Counts of nodes done with each half of a rotation.
#[derive(Debug, PartialEq, Eq)]
pub struct RotationProgress {
    pub certs: usize,
    pub roots: usize,
    pub total: usize,
    pub done: bool,
}

/// docker's `updateProgress`: a node is done with its certificate when its
/// issuer matches the cluster's, with its trust root when the roots match.
/// If no node reports TLS information at all, the rotation counts as done
/// once the cluster's root changed and no rotation is in progress.
pub fn rotation_progress(sw: &Value, nodes: &[Value], old_root: &str) -> RotationProgress {
    let desired = &sw["TLSInfo"];
    let in_progress = sw["RootRotationInProgress"].bool();
    let total = nodes.len();
    let mut certs = 0;
    let mut roots = 0;
    let mut any_reported = false;
    for n in nodes {
        let t = n.at(&["Description", "TLSInfo"]);
        if !t["TrustRoot"].str().is_empty() || !t["CertIssuerPublicKey"].str().is_empty() {
            any_reported = true;
        }
        if t["CertIssuerPublicKey"].str() == desired["CertIssuerPublicKey"].str()
            && t["CertIssuerSubject"].str() == desired["CertIssuerSubject"].str()
        {
            certs += 1;
        }
        if t["TrustRoot"].str() == desired["TrustRoot"].str() {
            roots += 1;
        }
    }
    if !any_reported {
        let changed = desired["TrustRoot"].str() != old_root;
        let done = changed && !in_progress;
        let n = if done { total } else { 0 };
        return RotationProgress { certs: n, roots: n, total, done };
    }
    if certs == total && !in_progress {
        return RotationProgress { certs, roots, total, done: roots == total };
    }
    RotationProgress { certs, roots: 0, total, done: false }
}

fn bar(current: usize, total: usize) -> String {
    const WIDTH: usize = 50;
    let filled = (current * WIDTH).checked_div(total).unwrap_or(WIDTH).min(WIDTH - 1);
    format!("[{}>{}] {current}/{total} nodes", "=".repeat(filled), " ".repeat(WIDTH - 1 - filled))
}

fn progress_lines(digest: &str, p: &RotationProgress, tty: bool) -> Vec<String> {
    let (certs, roots) = if tty {
        (bar(p.certs, p.total), bar(p.roots, p.total))
    } else {
        (format!("{}/{} nodes", p.certs, p.total), format!("{}/{} nodes", p.roots, p.total))
    };
    vec![
        format!("desired root digest: {digest}"),
        format!("  rotated TLS certificates:  {certs}"),
        format!("  rotated CA certificates:   {roots}"),
    ]
}

/// Polls until the rotation converges (true) or the deadline passes (false).
fn follow_rotation(env: &mut Env, old_root: &str, quiet: bool) -> CliResult<bool> {
    let tty = std::io::stdout().is_terminal();
    let start = Instant::now();
    let mut drawn: Vec<String> = Vec::new();
    let mut done = false;
    loop {
        let sw = env.client.get("/swarm")?;
        if done {
            return Ok(true);
        }
        let nodes = env.client.get("/nodes")?;
        let p = rotation_progress(&sw, nodes.items(), old_root);
        done = p.done;
        if !quiet {
            let lines = progress_lines(&sha256::digest(sw.at(&["TLSInfo", "TrustRoot"]).str().as_bytes()), &p, tty);
            if tty {
                let mut s = String::new();
                if !drawn.is_empty() {
                    s.push_str(&format!("\x1b[{}A", drawn.len()));
                }
                for l in &lines {
                    s.push_str("\x1b[2K\r");
                    s.push_str(l);
                    s.push('\n');
                }
                env.print(&s)?;
            } else {
                for (i, l) in lines.iter().enumerate() {
                    if drawn.get(i) != Some(l) {
                        env.println(l)?;
                    }
                }
            }
            drawn = lines;
        }
        if !done && start.elapsed() > ROTATION_DEADLINE {
            let prog = env.prog.clone();
            env.eprintln("Operation continuing in background.");
            env.eprintln(&format!(
                "Use `{prog} swarm ca` or `{prog} node ls --format '{{{{.Hostname}}}}: {{{{.TLSStatus}}}}'` to check progress."
            ));
            return Ok(false);
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::FakeDaemon;
    use crate::json;

    fn sw(root: &str, in_progress: bool) -> Value {
        json::parse(&format!(
            r#"{{"Version":{{"Index":3}},"Spec":{{"CAConfig":{{"ForceRotate":1}}}},"RootRotationInProgress":{in_progress},
                "TLSInfo":{{"TrustRoot":"{root}","CertIssuerSubject":"subj-{root}","CertIssuerPublicKey":"key-{root}"}}}}"#
        ))
        .unwrap()
    }

    fn node_with(root: &str, issuer: &str) -> Value {
        json::parse(&format!(
            r#"{{"Description":{{"TLSInfo":{{"TrustRoot":"{root}","CertIssuerSubject":"subj-{issuer}","CertIssuerPublicKey":"key-{issuer}"}}}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn progress_counts() {
        let nodes = vec![node_with("new", "new"), node_with("old", "new"), node_with("old", "old")];
        let p = rotation_progress(&sw("new", true), &nodes, "old");
        assert_eq!(p, RotationProgress { certs: 2, roots: 0, total: 3, done: false });
        let nodes = vec![node_with("new", "new"), node_with("old", "new")];
        let p = rotation_progress(&sw("new", false), &nodes, "old");
        assert_eq!(p, RotationProgress { certs: 2, roots: 1, total: 2, done: false });
        let nodes = vec![node_with("new", "new"), node_with("new", "new")];
        assert!(rotation_progress(&sw("new", false), &nodes, "old").done);
        // nodes that report nothing: follow the cluster's root only
        let bare = vec![json::parse("{}").unwrap()];
        assert!(!rotation_progress(&sw("old", false), &bare, "old").done);
        assert!(rotation_progress(&sw("new", false), &bare, "old").done);
    }

    #[test]
    fn rotation_spec_bumps_force_rotate() {
        let mut spec = sw("x", false)["Spec"].clone();
        rotation_spec(&mut spec, &CaArgs::default()).unwrap();
        assert_eq!(spec.to_compact(), r#"{"CAConfig":{"ForceRotate":2}}"#);
    }

    #[test]
    fn bars() {
        assert_eq!(bar(0, 2), format!("[>{}] 0/2 nodes", " ".repeat(49)));
        assert_eq!(bar(2, 2), format!("[{}>] 2/2 nodes", "=".repeat(49)));
    }

    #[test]
    fn display_and_flag_checks() {
        let d = FakeDaemon::start(|_| {
            (200, r#"{"TLSInfo":{"TrustRoot":"-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n"}}"#.into())
        });
        let client = d.client();
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut env = Env { client: &client, out: &mut out, err: &mut err, prog: "shoal".into() };
        run(&mut env, CaArgs::default()).unwrap();
        let e = run(&mut env, CaArgs { ca: CaSpecArgs { cert_expiry: Some(1), external_ca: vec![] }, ..Default::default() }).unwrap_err();
        assert_eq!(e.message, "`--cert-expiry` flag requires the `--rotate` flag to update the CA");
        drop(env);
        assert_eq!(String::from_utf8(out).unwrap(), "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n");
    }
}
