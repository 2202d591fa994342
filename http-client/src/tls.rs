//! TLS for clients, with rustls (the cluster's TLS stack already): the
//! Engine API on `tcp://` as Docker's `--tls`/`--tlsverify` set it up, and
//! the certificate check that insecure registries skip.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// What Docker's client takes from `--tlsverify`, `--tlscacert`,
/// `--tlscert` and `--tlskey`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientFiles {
    /// Check the server's certificate against `ca` (and only it, as
    /// Docker's client does); `false` is `--tls` alone, which checks
    /// nothing.
    pub verify: bool,
    pub ca: Option<PathBuf>,
    /// The client certificate and its key: both or neither.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// rustls's ring provider (the cluster's choice too).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// Go's text for a failed file read (`open /x: no such file or directory`).
fn open_error(path: &Path, e: &io::Error) -> String {
    format!("open {}: {}", path.display(), crate::os_error_text(e))
}

/// A client configuration from those files, with Docker's error texts.
pub fn client_config(files: &ClientFiles) -> Result<Arc<ClientConfig>, String> {
    let builder = ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().map_err(|e| e.to_string())?;
    let builder = if files.verify {
        let mut roots = RootCertStore::empty();
        // Only the given CA is trusted (Docker's client trusts no other), so
        // checking without one could only ever refuse.
        let Some(ca) = &files.ca else { return Err("--tlsverify needs a CA certificate (--tlscacert)".into()) };
        let bad = |e: String| format!("could not read CA certificate {:?}: {e}", ca.display().to_string());
        let pem = std::fs::read(ca).map_err(|e| bad(open_error(ca, &e)))?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.map_err(|e| bad(e.to_string()))?).map_err(|e| bad(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(format!("failed to append certificates from PEM file: {:?}", ca.display().to_string()));
        }
        builder.with_root_certificates(roots)
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerification::new()))
    };
    match (&files.cert, &files.key) {
        (None, None) => Ok(Arc::new(builder.with_no_client_auth())),
        (Some(cert), Some(key)) => {
            let bad = |e: String| format!("could not load X509 key pair: {e}");
            let cert_pem = std::fs::read(cert).map_err(|e| bad(open_error(cert, &e)))?;
            let key_pem = std::fs::read(key).map_err(|e| bad(open_error(key, &e)))?;
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(&cert_pem).collect::<Result<_, _>>().map_err(|e| bad(format!("{}: {e}", cert.display())))?;
            if chain.is_empty() {
                return Err(bad("tls: failed to find any PEM data in certificate input".into()));
            }
            let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| bad("tls: failed to find any PEM data in key input".into()))?;
            Ok(Arc::new(builder.with_client_auth_cert(chain, key).map_err(|e| bad(e.to_string()))?))
        }
        (Some(_), None) | (None, Some(_)) => {
            Err("could not load X509 key pair: a client certificate needs both --tlscert and --tlskey".into())
        }
    }
}

/// The TLS handshake on a connected TCP stream, `host` being the name (or
/// address) the server's certificate must carry when it is checked.
pub async fn handshake(tcp: TcpStream, config: Arc<ClientConfig>, host: &str) -> io::Result<TlsStream<TcpStream>> {
    let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host}: {e}")))?;
    tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.map_err(|e| io::Error::new(e.kind(), format!("tls: {e}")))
}

/// Accepts any certificate, but still checks that the handshake was
/// signed by the key in it (what Go's InsecureSkipVerify also keeps).
#[derive(Debug)]
pub struct NoVerification(Arc<CryptoProvider>);

impl NoVerification {
    pub fn new() -> Self {
        NoVerification(provider())
    }
}

impl Default for NoVerification {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{block_on, duplex, send_upgrade, Bytes, Io, Options, Request, Upgrade};
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    struct Pki {
        dir: PathBuf,
        ca: rcgen::Issuer<'static, rcgen::KeyPair>,
    }

    impl Pki {
        fn new(name: &str) -> Pki {
            let dir = std::env::temp_dir().join(format!("shoal-http-tls-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params.distinguished_name.push(rcgen::DnType::CommonName, format!("{name} CA"));
            let ca = params.self_signed(&key).unwrap();
            std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
            Pki { dir, ca: rcgen::Issuer::new(params, key) }
        }

        /// A certificate for `sans` signed by this CA, as files `<name>.pem`
        /// and `<name>-key.pem`; returns the DER of both.
        fn issue(&self, name: &str, sans: &[&str]) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
            let key = rcgen::KeyPair::generate().unwrap();
            let params = rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
            let cert = params.signed_by(&key, &self.ca).unwrap();
            std::fs::write(self.dir.join(format!("{name}.pem")), cert.pem()).unwrap();
            std::fs::write(self.dir.join(format!("{name}-key.pem")), key.serialize_pem()).unwrap();
            (cert.der().clone(), PrivateKeyDer::try_from(key.serialize_der()).unwrap())
        }

        fn path(&self, f: &str) -> Option<PathBuf> {
            Some(self.dir.join(f))
        }
    }

    impl Drop for Pki {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// A TLS server for 127.0.0.1 that wants a client certificate from
    /// `pki`'s CA, answers an upgrade with 101 and "first;", then echoes
    /// what it gets until the client's end of stream. Serves `n`
    /// connections; a failed handshake just ends one.
    fn echo_server(pki: &Pki, n: usize) -> (u16, std::thread::JoinHandle<()>) {
        let (cert, key) = pki.issue("server", &["127.0.0.1"]);
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from_pem_file(pki.dir.join("ca.pem")).unwrap()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider()).build().unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![cert], key)
            .unwrap();
        let config = Arc::new(config);
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            for s in l.incoming().take(n) {
                let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, s.unwrap());
                let mut head = String::new();
                let mut reader = BufReader::new(&mut tls);
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if line == "\r\n" => break,
                        Ok(_) => head.push_str(&line),
                    }
                }
                if head.is_empty() {
                    continue;
                }
                let mut rest = Vec::new();
                let _ = reader.read_to_end(&mut rest);
                let _ = tls.write_all(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nfirst;");
                let _ = tls.write_all(&rest);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        (port, h)
    }

    fn connect(port: u16, files: &ClientFiles) -> io::Result<Box<dyn Io>> {
        let config = client_config(files).map_err(io::Error::other)?;
        block_on(None, async move {
            let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
            Ok(Box::new(handshake(tcp, config, "127.0.0.1").await?) as Box<dyn Io>)
        })?
    }

    #[test]
    fn mutual_tls_carries_an_upgraded_stream_both_ways() {
        let pki = Pki::new("ok");
        pki.issue("client", &["client"]);
        let (port, server) = echo_server(&pki, 3);
        let files = ClientFiles { verify: true, ca: pki.path("ca.pem"), cert: pki.path("client.pem"), key: pki.path("client-key.pem") };
        // This server answers only after the client's end of stream, so the
        // exchange is written by hand on the duplex halves (hyper's upgrade
        // over TLS is `hyper_upgrades_over_tls`).
        let (mut r, mut w) = duplex::split(connect(port, &files).unwrap(), Bytes::new());
        w.write_all(b"POST /exec/x/start HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\ntyped").unwrap();
        w.close_write().unwrap();
        let mut got = String::new();
        r.read_to_string(&mut got).unwrap();
        assert!(got.starts_with("HTTP/1.1 101 UPGRADED\r\n") && got.ends_with("\r\n\r\nfirst;typed"), "{got:?}");
        // Without a client certificate, the server ends the handshake.
        let no_cert = ClientFiles { cert: None, key: None, ..files.clone() };
        let io = connect(port, &no_cert);
        let failed = match io {
            Err(_) => true,
            Ok(io) => send_upgrade(io, &Request::new("GET", "/"), &Options::default()).is_err(),
        };
        assert!(failed, "a client without a certificate must be refused");
        // `--tls` alone checks nothing on the server's side.
        let insecure = ClientFiles { verify: false, ca: None, ..files.clone() };
        let (mut r, mut w) = duplex::split(connect(port, &insecure).unwrap(), Bytes::new());
        w.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        w.close_write().unwrap();
        let mut got = String::new();
        r.read_to_string(&mut got).unwrap();
        assert!(got.ends_with("first;"), "{got:?}");
        server.join().unwrap();
    }

    #[test]
    fn a_server_from_another_ca_is_refused() {
        let pki = Pki::new("mine");
        let other = Pki::new("other");
        other.issue("client", &["client"]);
        let (port, server) = echo_server(&other, 1);
        let files = ClientFiles { verify: true, ca: pki.path("ca.pem"), cert: other.path("client.pem"), key: other.path("client-key.pem") };
        let e = connect(port, &files).err().unwrap().to_string();
        assert!(e.starts_with("tls: invalid peer certificate: UnknownIssuer"), "{e}");
        server.join().unwrap();
    }

    #[test]
    fn missing_or_broken_files_are_named() {
        let pki = Pki::new("files");
        pki.issue("client", &["client"]);
        let missing = pki.dir.join("nope.pem");
        let e = client_config(&ClientFiles { verify: true, ca: Some(missing.clone()), ..ClientFiles::default() }).unwrap_err();
        assert_eq!(e, format!("could not read CA certificate \"{0}\": open {0}: no such file or directory", missing.display()));
        std::fs::write(pki.dir.join("empty.pem"), "not a certificate\n").unwrap();
        let e = client_config(&ClientFiles { verify: true, ca: pki.path("empty.pem"), ..ClientFiles::default() }).unwrap_err();
        assert_eq!(e, format!("failed to append certificates from PEM file: \"{}\"", pki.dir.join("empty.pem").display()));
        let e =
            client_config(&ClientFiles { cert: pki.path("client.pem"), key: Some(missing.clone()), ..ClientFiles::default() }).unwrap_err();
        assert_eq!(e, format!("could not load X509 key pair: open {0}: no such file or directory", missing.display()));
        let e =
            client_config(&ClientFiles { cert: pki.path("client.pem"), key: pki.path("empty.pem"), ..ClientFiles::default() }).unwrap_err();
        assert_eq!(e, "could not load X509 key pair: tls: failed to find any PEM data in key input");
        let e = client_config(&ClientFiles { cert: pki.path("client.pem"), ..ClientFiles::default() }).unwrap_err();
        assert!(e.contains("needs both --tlscert and --tlskey"), "{e}");
        let e = client_config(&ClientFiles { verify: true, ..ClientFiles::default() }).unwrap_err();
        assert_eq!(e, "--tlsverify needs a CA certificate (--tlscacert)");
        // Without verification the CA file is not read at all (Docker's `--tls`).
        client_config(&ClientFiles { verify: false, ca: Some(missing), ..ClientFiles::default() }).unwrap();
    }

    #[test]
    fn hyper_upgrades_over_tls() {
        let pki = Pki::new("hyper");
        pki.issue("client", &["client"]);
        let (cert, key) = pki.issue("server", &["127.0.0.1"]);
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert], key)
                .unwrap(),
        );
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        // An ordinary server: reads the head and its 2-byte body, answers
        // 101, then echoes until the client's end of stream.
        let server = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut tls = rustls::StreamOwned::new(rustls::ServerConnection::new(config).unwrap(), s);
            let mut reader = BufReader::new(&mut tls);
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" {
                    break;
                }
            }
            reader.read_exact(&mut [0u8; 2]).unwrap();
            drop(reader);
            tls.write_all(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nfirst;").unwrap();
            tls.flush().unwrap();
            let mut buf = [0u8; 1024];
            loop {
                match tls.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        tls.write_all(&buf[..n]).unwrap();
                        tls.flush().unwrap();
                    }
                }
            }
            tls.conn.send_close_notify();
            let _ = tls.flush();
        });
        let files = ClientFiles { verify: true, ca: pki.path("ca.pem"), ..ClientFiles::default() };
        let io = connect(port, &files).unwrap();
        let req = Request::new("POST", "/exec/x/start").header("Connection", "Upgrade").header("Upgrade", "tcp").body(b"{}");
        let Upgrade::Switched { io, read_buf } = send_upgrade(io, &req, &Options::default()).unwrap() else { panic!("not upgraded") };
        let (mut r, mut w) = duplex::split(Box::new(io), read_buf);
        let reader = std::thread::spawn(move || {
            let mut got = String::new();
            r.read_to_string(&mut got).unwrap();
            got
        });
        w.write_all(b"typed").unwrap();
        w.close_write().unwrap();
        assert_eq!(reader.join().unwrap(), "first;typed");
        server.join().unwrap();
    }
}
