//! Which daemon the CLI talks to, and how: `-H`/`SHOAL_HOST` (a unix
//! socket, or `tcp://`), and for TCP Docker's TLS flags (`--tls`,
//! `--tlsverify`, `--tlscacert`, `--tlscert`, `--tlskey`, with
//! `SHOAL_TLS_VERIFY` and `SHOAL_CERT_PATH` in place of Docker's
//! `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`).

use std::path::{Path, PathBuf};

use shoal_http_client::tls::ClientFiles;

use crate::error::{CliError, CliResult};

pub const DEFAULT_HOST: &str = "unix:///run/shoal/shoal.sock";
pub const HOST_ENV: &str = "SHOAL_HOST";
pub const TLS_VERIFY_ENV: &str = "SHOAL_TLS_VERIFY";
pub const CERT_PATH_ENV: &str = "SHOAL_CERT_PATH";
/// Docker's port for `tcp://host` written without one.
const DEFAULT_TCP_PORT: u16 = 2375;

/// Where the daemon listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    Unix(PathBuf),
    /// `host` without IPv6 brackets.
    Tcp {
        host: String,
        port: u16,
    },
}

impl Host {
    /// `-H` flag, else `SHOAL_HOST`, else the default socket.
    pub fn select(flag: Option<&str>) -> CliResult<Host> {
        let env = std::env::var(HOST_ENV).ok().filter(|s| !s.is_empty());
        let spec = flag.map(str::to_string).or(env).unwrap_or_else(|| DEFAULT_HOST.to_string());
        Host::parse(&spec)
    }

    /// Docker's forms: `unix:///path`, `/path`, `tcp://host:port`,
    /// `tcp://[v6]:port`, `host:port` (TCP); a missing host is
    /// `localhost`, a missing port 2375 (Docker's defaults).
    pub fn parse(spec: &str) -> CliResult<Host> {
        let spec = spec.trim();
        if let Some(path) = spec.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(CliError::new(format!("invalid host \"{spec}\": missing socket path")));
            }
            return Ok(Host::Unix(PathBuf::from(path)));
        }
        if spec.starts_with('/') {
            return Ok(Host::Unix(PathBuf::from(spec)));
        }
        let addr = match spec.split_once("://") {
            Some(("tcp", addr)) => addr,
            Some((proto, _)) => return Err(CliError::new(format!("invalid bind address ({spec}): unsupported proto '{proto}'"))),
            None => spec,
        };
        let bad = |why: &str| CliError::new(format!("invalid bind address ({spec}): {why}"));
        if addr.contains('/') {
            return Err(bad("should not contain a path element"));
        }
        let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
            let (h, after) = rest.split_once(']').ok_or_else(|| bad("missing ']' in address"))?;
            match after.strip_prefix(':') {
                Some(p) => (h, p),
                None if after.is_empty() => (h, ""),
                None => return Err(bad("unexpected characters after ']'")),
            }
        } else {
            match addr.rsplit_once(':') {
                Some((h, _)) if h.contains(':') => return Err(bad("IPv6 addresses are written in brackets")),
                Some((h, p)) => (h, p),
                None => (addr, ""),
            }
        };
        let port = match port {
            "" => DEFAULT_TCP_PORT,
            p => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| bad(&format!("invalid port \"{p}\"")))?,
        };
        let host = if host.is_empty() { "localhost" } else { host };
        Ok(Host::Tcp { host: host.to_string(), port })
    }

    /// The host as the user would write it (`unix:///run/shoal/shoal.sock`).
    pub fn url(&self) -> String {
        match self {
            Host::Unix(p) => format!("unix://{}", p.display()),
            Host::Tcp { .. } => format!("tcp://{}", self.authority()),
        }
    }

    /// `host:port` (`[v6]:port`) of a TCP host; the socket path escaped as
    /// Go escapes it in a URL (`%2Frun%2Fshoal%2Fshoal.sock`) for a unix one.
    pub fn authority(&self) -> String {
        match self {
            Host::Unix(p) => shoal_http_client::escape(&p.display().to_string()),
            Host::Tcp { host, port } if host.contains(':') => format!("[{host}]:{port}"),
            Host::Tcp { host, port } => format!("{host}:{port}"),
        }
    }
}

/// Docker's TLS flags as given.
#[derive(Clone, Debug, Default)]
pub struct TlsFlags {
    pub tls: bool,
    /// `--tlsverify` (or `--tlsverify=false`); `None` when not given.
    pub tlsverify: Option<bool>,
    pub tlscacert: Option<PathBuf>,
    pub tlscert: Option<PathBuf>,
    pub tlskey: Option<PathBuf>,
}

impl TlsFlags {
    /// What a TCP connection uses, Docker's way: `--tlsverify` (or
    /// `SHOAL_TLS_VERIFY` set to anything) turns TLS on and checks the
    /// server against the CA; `--tls` alone checks nothing. Files default
    /// to `ca.pem`, `cert.pem` and `key.pem` in `SHOAL_CERT_PATH`, else
    /// `~/.shoal`; a default client certificate that does not exist is
    /// simply not sent. `None`: plain TCP.
    pub fn resolve(&self, env: &dyn Fn(&str) -> Option<String>) -> CliResult<Option<ClientFiles>> {
        let verify_env = env(TLS_VERIFY_ENV).is_some_and(|v| !v.is_empty());
        let verify = self.tlsverify.unwrap_or(verify_env);
        if !(self.tls || self.tlsverify.is_some() || verify_env) {
            if self.tlscacert.is_some() || self.tlscert.is_some() || self.tlskey.is_some() {
                return Err(CliError::new("--tlscacert, --tlscert and --tlskey are used with --tls or --tlsverify only"));
            }
            return Ok(None);
        }
        let dir = match env(CERT_PATH_ENV).filter(|d| !d.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => home(env)?.join(".shoal"),
        };
        let default_if_present = |name: &str| Some(dir.join(name)).filter(|p: &PathBuf| Path::exists(p));
        Ok(Some(ClientFiles {
            verify,
            ca: Some(self.tlscacert.clone().unwrap_or_else(|| dir.join("ca.pem"))),
            cert: self.tlscert.clone().or_else(|| default_if_present("cert.pem")),
            key: self.tlskey.clone().or_else(|| default_if_present("key.pem")),
        }))
    }
}

/// `$HOME`, else the user's home in the password database: never a
/// relative path (a CA and a key must not come from wherever the CLI
/// happens to run).
fn home(env: &dyn Fn(&str) -> Option<String>) -> CliResult<PathBuf> {
    if let Some(h) = env("HOME").filter(|h| h.starts_with('/')) {
        return Ok(PathBuf::from(h));
    }
    match nix::unistd::User::from_uid(nix::unistd::geteuid()) {
        Ok(Some(user)) if user.dir.is_absolute() => Ok(user.dir),
        _ => Err(CliError::new("cannot find the home directory for the default TLS files: set $HOME or $SHOAL_CERT_PATH")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Host {
        Host::Tcp { host: host.into(), port }
    }

    #[test]
    fn hosts() {
        assert_eq!(Host::parse("unix:///tmp/x.sock").unwrap(), Host::Unix("/tmp/x.sock".into()));
        assert_eq!(Host::parse("/tmp/x.sock").unwrap().url(), "unix:///tmp/x.sock");
        assert_eq!(Host::parse("tcp://10.0.0.1:2376").unwrap(), tcp("10.0.0.1", 2376));
        assert_eq!(Host::parse("tcp://10.0.0.1").unwrap(), tcp("10.0.0.1", 2375));
        assert_eq!(Host::parse("tcp://:2376").unwrap(), tcp("localhost", 2376));
        assert_eq!(Host::parse("manager-1:2376").unwrap(), tcp("manager-1", 2376));
        assert_eq!(Host::parse("tcp://[::1]:2376").unwrap(), tcp("::1", 2376));
        assert_eq!(Host::parse("tcp://[::1]:2376").unwrap().url(), "tcp://[::1]:2376");
        assert_eq!(Host::parse("unix:///run/shoal/shoal.sock").unwrap().authority(), "%2Frun%2Fshoal%2Fshoal.sock");
        for (bad, why) in [
            ("ssh://x", "invalid bind address (ssh://x): unsupported proto 'ssh'"),
            ("tcp://h:2376/v1", "invalid bind address (tcp://h:2376/v1): should not contain a path element"),
            ("tcp://h:99999", "invalid bind address (tcp://h:99999): invalid port \"99999\""),
            ("tcp://::1:2376", "invalid bind address (tcp://::1:2376): IPv6 addresses are written in brackets"),
            ("unix://", "invalid host \"unix://\": missing socket path"),
        ] {
            assert_eq!(Host::parse(bad).unwrap_err().message, why);
        }
    }

    #[test]
    fn tls_flags_resolve_as_docker_does() {
        let dir = std::env::temp_dir().join(format!("shoal-cli-certs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display().to_string();
        let none = |_: &str| None;
        let with_path = move |k: &str| (k == CERT_PATH_ENV).then(|| d.clone());
        // No TLS at all: plain TCP; cert flags alone are refused.
        assert_eq!(TlsFlags::default().resolve(&none).unwrap(), None);
        let e = TlsFlags { tlscacert: Some("/ca.pem".into()), ..TlsFlags::default() }.resolve(&none).unwrap_err();
        assert_eq!(e.message, "--tlscacert, --tlscert and --tlskey are used with --tls or --tlsverify only");
        // --tlsverify: the CA from the cert path; a missing client pair is not sent.
        let files = TlsFlags { tlsverify: Some(true), ..TlsFlags::default() }.resolve(&with_path).unwrap().unwrap();
        assert_eq!(files, ClientFiles { verify: true, ca: Some(dir.join("ca.pem")), cert: None, key: None });
        // Present defaults are used; flags win over them.
        std::fs::write(dir.join("cert.pem"), "x").unwrap();
        std::fs::write(dir.join("key.pem"), "x").unwrap();
        let flags = TlsFlags { tls: true, tlskey: Some("/k.pem".into()), ..TlsFlags::default() };
        let files = flags.resolve(&with_path).unwrap().unwrap();
        assert_eq!((files.verify, files.cert, files.key), (false, Some(dir.join("cert.pem")), Some(PathBuf::from("/k.pem"))));
        // SHOAL_TLS_VERIFY turns verification on; --tlsverify=false turns it off again.
        let env = |k: &str| (k == TLS_VERIFY_ENV).then(|| "1".to_string());
        assert!(TlsFlags::default().resolve(&env).unwrap().unwrap().verify);
        let off = TlsFlags { tlsverify: Some(false), ..TlsFlags::default() }.resolve(&env).unwrap().unwrap();
        assert!(!off.verify, "TLS stays on, unverified");
        // ~/.shoal without SHOAL_CERT_PATH.
        let home = |k: &str| (k == "HOME").then(|| "/home/u".to_string());
        let files = TlsFlags { tlsverify: Some(true), ..TlsFlags::default() }.resolve(&home).unwrap().unwrap();
        assert_eq!(files.ca, Some(PathBuf::from("/home/u/.shoal/ca.pem")));
        // Without $HOME (or with a relative one): the user's entry, never ".shoal/".
        let relative = |k: &str| (k == "HOME").then(|| "somewhere".to_string());
        for env in [&none as &dyn Fn(&str) -> Option<String>, &relative] {
            let files = TlsFlags { tlsverify: Some(true), ..TlsFlags::default() }.resolve(env).unwrap().unwrap();
            assert!(files.ca.unwrap().is_absolute());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
