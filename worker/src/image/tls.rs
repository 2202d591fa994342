//! TLS for registries, with rustls (already the cluster's TLS stack).
//!
//! Trust: the system CA bundle, plus Docker's per-registry directory
//! layout — `<certs_dir>/<host[:port]>/*.crt` are extra CAs, and a
//! `client.cert`/`client.key` pair (any `X.cert` with `X.key`) is a client
//! certificate — so a registry set up for Docker works unchanged.
//! Insecure registries are contacted over TLS without any certificate
//! check, as Docker does, before falling back to plain HTTP.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use shoal_http_client::tls::NoVerification;

use super::http::{TlsConnector, Url};

/// Where distributions keep the CA bundle (Debian, RHEL, Alpine/others).
const SYSTEM_BUNDLES: &[&str] = &["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

pub struct Connector {
    certs_dir: Option<PathBuf>,
    /// One verified config per registry authority (extra CAs and client
    /// certificates differ per registry); built on first use.
    verified: Mutex<HashMap<String, Arc<ClientConfig>>>,
}

impl Connector {
    pub fn new(certs_dir: Option<PathBuf>) -> Connector {
        Connector { certs_dir, verified: Mutex::new(HashMap::new()) }
    }

    fn config_for(&self, authority: &str, verify: bool) -> io::Result<Arc<ClientConfig>> {
        let key = format!("{verify}/{authority}");
        if let Some(c) = self.verified.lock().unwrap().get(&key) {
            return Ok(c.clone());
        }
        let dir = self.certs_dir.as_ref().map(|d| d.join(authority.replace(['[', ']'], "")));
        let builder = ClientConfig::builder_with_provider(shoal_http_client::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?;
        let builder = if verify {
            let mut roots = system_roots().clone();
            if let Some(dir) = &dir {
                for ca in files_with_ext(dir, "crt") {
                    for cert in CertificateDer::pem_file_iter(&ca).map_err(pem_err(&ca))? {
                        roots.add(cert.map_err(pem_err(&ca))?).map_err(io::Error::other)?;
                    }
                }
            }
            builder.with_root_certificates(roots)
        } else {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerification::new()))
        };
        let client_cert = dir.as_ref().and_then(|d| {
            files_with_ext(d, "cert").into_iter().find_map(|cert| {
                let key = cert.with_extension("key");
                key.exists().then_some((cert, key))
            })
        });
        let config = match client_cert {
            Some((cert, key)) => {
                let chain: Vec<CertificateDer<'static>> =
                    CertificateDer::pem_file_iter(&cert).map_err(pem_err(&cert))?.collect::<Result<_, _>>().map_err(pem_err(&cert))?;
                let key = PrivateKeyDer::from_pem_file(&key).map_err(pem_err(&key))?;
                builder.with_client_auth_cert(chain, key).map_err(io::Error::other)?
            }
            None => builder.with_no_client_auth(),
        };
        let config = Arc::new(config);
        self.verified.lock().unwrap().insert(key, config.clone());
        Ok(config)
    }
}

fn pem_err(path: &Path) -> impl Fn(rustls::pki_types::pem::Error) -> io::Error + '_ {
    move |e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

/// The system's CAs, parsed once per process.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        if let Some(bundle) = SYSTEM_BUNDLES.iter().map(Path::new).find(|p| p.exists()) {
            if let Ok(iter) = CertificateDer::pem_file_iter(bundle) {
                let certs: Vec<_> = iter.flatten().collect();
                let (added, ignored) = roots.add_parsable_certificates(certs);
                tracing::debug!(added, ignored, bundle = %bundle.display(), "loaded system CA certificates");
            }
        }
        roots
    })
}

impl TlsConnector for Connector {
    fn config(&self, url: &Url, verify: bool) -> io::Result<Arc<ClientConfig>> {
        self.config_for(&url.authority(), verify)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::StreamOwned;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A one-shot HTTPS server on loopback with a certificate for
    /// 127.0.0.1 signed by a throwaway CA; returns its port and the CA PEM.
    fn https_server(requests: usize) -> (u16, String) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let ca_issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        let cert = params.signed_by(&key, &ca_issuer).unwrap();
        let server = rustls::ServerConfig::builder_with_provider(shoal_http_client::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], PrivateKeyDer::try_from(key.serialize_der()).unwrap())
            .unwrap();
        let server = Arc::new(server);
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in l.incoming().take(requests) {
                let conn = rustls::ServerConnection::new(server.clone()).unwrap();
                let mut tls = StreamOwned::new(conn, s.unwrap());
                let mut buf = [0u8; 4096];
                if tls.read(&mut buf).is_ok() {
                    let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                    let _ = tls.flush();
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                }
            }
        });
        (port, ca.pem())
    }

    #[test]
    fn verifies_with_certs_d_and_skips_only_when_insecure() {
        let (port, ca_pem) = https_server(3);
        let certs = std::env::temp_dir().join(format!("shoal-certs-{}-{port}", std::process::id()));
        let url = Url::parse(&format!("https://127.0.0.1:{port}/v2/")).unwrap();
        let get = |c: &Connector, verify: bool| {
            let client = super::super::http::Client::new(Some(Arc::new(Connector::new(c.certs_dir.clone()))));
            let mut req = super::super::http::Request::new("GET", url.clone());
            req.verify_tls = verify;
            client.send(req).map(|r| r.read_body(10).unwrap())
        };
        // Unknown CA: refused when verifying...
        let plain = Connector::new(None);
        let e = get(&plain, true).err().unwrap().to_string();
        assert!(e.contains("tls:") && e.to_lowercase().contains("unknown"), "{e}");
        // ...accepted without verification (insecure registry)...
        assert_eq!(get(&plain, false).unwrap(), b"ok");
        // ...and accepted with the CA in Docker's certs.d layout.
        std::fs::create_dir_all(certs.join(format!("127.0.0.1:{port}"))).unwrap();
        std::fs::write(certs.join(format!("127.0.0.1:{port}/ca.crt")), ca_pem).unwrap();
        let with_ca = Connector::new(Some(certs.clone()));
        assert_eq!(get(&with_ca, true).unwrap(), b"ok");
        std::fs::remove_dir_all(&certs).unwrap();
    }
}
