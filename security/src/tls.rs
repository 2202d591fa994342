//! rustls configurations for the cluster port (2377).
//!
//! Everything uses the ring provider explicitly: other crates in the process
//! may or may not install a process-wide default, and we must not depend on
//! (or fight over) it.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore, ServerConfig, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::identity::{identity_from_der, NodeIdentity};
use crate::Error;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A root store holding every certificate in every PEM string (several roots
/// are trusted at once during CA rotation).
fn root_store(trusted_roots_pem: &[String]) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for pem in trusted_roots_pem {
        for cert in crate::pem::certs(pem)? {
            roots.add(cert).map_err(|e| format!("invalid trusted root certificate: {e}"))?;
        }
    }
    if roots.is_empty() {
        return Err("no trusted root certificates given".to_string());
    }
    Ok(roots)
}

fn private_key(key_pem: &str) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| format!("invalid private key PEM: {e}"))
}

/// Server config for a manager. Client certificates are optional (a joining
/// node has none yet; the RPC layer decides what an anonymous peer may do)
/// but when presented must chain to one of `trusted_roots_pem`.
/// The chain sent is the node certificate followed by the current root, so
/// bootstrapping clients can pin the root by digest.
pub fn server_config(trusted_roots_pem: &[String], cert_pem: &str, key_pem: &str, root_pem: &str) -> Result<Arc<ServerConfig>, Error> {
    let provider = provider();
    let roots = Arc::new(root_store(trusted_roots_pem)?);
    let client_verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| format!("building client verifier: {e}"))?;
    let mut chain = crate::pem::certs(cert_pem)?;
    chain.extend(crate::pem::certs(root_pem)?);
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS protocol setup: {e}"))?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(chain, private_key(key_pem)?)
        .map_err(|e| format!("server certificate: {e}"))?;
    Ok(Arc::new(config))
}

/// Server config for the Engine API on TCP (Docker's `--tlsverify`): a
/// client certificate chaining to `client_ca_pem` is required, since whoever
/// reaches an open API controls the node.
pub fn api_server_config(client_ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<Arc<ServerConfig>, Error> {
    let provider = provider();
    let roots = Arc::new(root_store(&[client_ca_pem.to_string()])?);
    let client_verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| format!("building client verifier: {e}"))?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS protocol setup: {e}"))?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(crate::pem::certs(cert_pem)?, private_key(key_pem)?)
        .map_err(|e| format!("server certificate: {e}"))?;
    Ok(Arc::new(config))
}

/// Client config: verifies the server (expected server name "swarm-manager")
/// against the trusted roots and presents the node certificate if given.
pub fn client_config(trusted_roots_pem: &[String], client: Option<(&str, &str)>) -> Result<Arc<ClientConfig>, Error> {
    let roots = root_store(trusted_roots_pem)?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS protocol setup: {e}"))?
        .with_root_certificates(roots);
    let config = match client {
        Some((cert_pem, key_pem)) => builder
            .with_client_auth_cert(crate::pem::certs(cert_pem)?, private_key(key_pem)?)
            .map_err(|e| format!("client certificate: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The root certificate a bootstrap handshake pinned, filled in once the
/// server's chain has verified against it.
#[derive(Clone, Default)]
pub struct PinnedRoot(Arc<Mutex<Option<Vec<u8>>>>);

impl PinnedRoot {
    /// The matched root as PEM, or None if no handshake has succeeded yet.
    pub fn root_pem(&self) -> Option<String> {
        let guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().map(|der| crate::pem::encode("CERTIFICATE", der))
    }
}

/// Verifier for a node that only knows the root CA's digest (from its join
/// token). The server sends [leaf, root]; we find the certificate with the
/// pinned digest and then run ordinary webpki verification with it as the
/// only trust anchor, so a server cannot pass by merely echoing a root.
#[derive(Debug)]
struct DigestPinnedVerifier {
    ca_digest: [u8; 32],
    provider: Arc<CryptoProvider>,
    pinned: Arc<Mutex<Option<Vec<u8>>>>,
}

/// Error text matching what Go (and so Docker) prints for this case.
struct UnknownAuthority;

impl std::fmt::Display for UnknownAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("certificate signed by unknown authority: the server's root CA does not match the join token's CA digest")
    }
}

// rustls formats `CertificateError::Other` with Debug, so Debug must carry
// the readable message too.
impl std::fmt::Debug for UnknownAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for UnknownAuthority {}

impl ServerCertVerifier for DigestPinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let root = std::iter::once(end_entity)
            .chain(intermediates)
            .find(|c| <[u8; 32]>::from(Sha256::digest(c.as_ref())) == self.ca_digest)
            .ok_or_else(|| rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(UnknownAuthority)))))?;
        let mut roots = RootCertStore::empty();
        roots.add(root.clone().into_owned())?;
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
            .build()
            .map_err(|e| rustls::Error::General(format!("building verifier: {e}")))?;
        let verified = verifier.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        // Only remember the root once the chain is proven to hang off it.
        *self.pinned.lock().unwrap_or_else(|e| e.into_inner()) = Some(root.to_vec());
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Client config for a node joining with a token: it has no CA yet, only the
/// digest. The server is accepted only if its chain contains a certificate
/// with that sha256 and the leaf verifies against it (server name checked as
/// usual). Use a fresh config per join attempt; the returned `PinnedRoot`
/// yields the matched root afterwards.
pub fn bootstrap_client_config(ca_digest: [u8; 32]) -> Result<(Arc<ClientConfig>, PinnedRoot), Error> {
    let provider = provider();
    let pinned = PinnedRoot::default();
    let verifier = DigestPinnedVerifier { ca_digest, provider: provider.clone(), pinned: pinned.0.clone() };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS protocol setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok((Arc::new(config), pinned))
}

/// The peer's node identity from a finished connection's peer certificates
/// (the first one is the peer's own). None if it sent none or it is not a
/// node certificate.
pub fn peer_identity(certs: Option<&[CertificateDer<'_>]>) -> Option<NodeIdentity> {
    certs?.first().and_then(|c| identity_from_der(c).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NodeKey, Role, RootCa};
    use rustls::{ClientConnection, Connection, ServerConnection};
    use std::time::Duration;

    const DAY: Duration = Duration::from_secs(86400);

    struct Node {
        cert: String,
        key: String,
    }

    fn node(ca: &RootCa, id: &str, role: Role) -> Node {
        let k = NodeKey::generate().unwrap();
        Node { cert: ca.issue(&k.csr_pem, id, role, "cluster1", 90 * DAY).unwrap(), key: k.key_pem }
    }

    fn manager_server(ca: &RootCa, trusted: &[String]) -> Arc<ServerConfig> {
        let m = node(ca, "mgr1", Role::Manager);
        server_config(trusted, &m.cert, &m.key, ca.cert_pem()).unwrap()
    }

    /// Moves pending TLS records from one side to the other; returns whether
    /// anything moved.
    fn transfer(from: &mut Connection, to: &mut Connection) -> Result<bool, rustls::Error> {
        let mut buf = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut buf).unwrap();
        }
        let moved = !buf.is_empty();
        let mut rd = &buf[..];
        while !rd.is_empty() {
            to.read_tls(&mut rd).unwrap();
            to.process_new_packets()?;
        }
        Ok(moved)
    }

    #[derive(Debug)]
    enum Failed {
        Client(rustls::Error),
        Server(rustls::Error),
    }

    /// Runs a full in-memory handshake, then a round trip of application data
    /// (in TLS 1.3 the server judges the client certificate after the client
    /// already considers the handshake done, so data must flow to see it).
    fn handshake(client: Arc<ClientConfig>, server: Arc<ServerConfig>, name: &str) -> Result<(ClientConnection, ServerConnection), Failed> {
        let name = ServerName::try_from(name.to_string()).unwrap();
        let mut c = Connection::Client(ClientConnection::new(client, name).unwrap());
        let mut s = Connection::Server(ServerConnection::new(server).unwrap());
        if let Connection::Client(cc) = &mut c {
            use std::io::Write;
            cc.writer().write_all(b"ping").unwrap();
        }
        for _ in 0..20 {
            let a = transfer(&mut c, &mut s).map_err(Failed::Server)?;
            let b = transfer(&mut s, &mut c).map_err(Failed::Client)?;
            if !a && !b {
                break;
            }
        }
        let (Connection::Client(cc), Connection::Server(mut ss)) = (c, s) else { unreachable!() };
        assert!(!cc.is_handshaking() && !ss.is_handshaking());
        let mut got = [0u8; 4];
        std::io::Read::read_exact(&mut ss.reader(), &mut got).unwrap();
        assert_eq!(&got, b"ping");
        Ok((cc, ss))
    }

    #[test]
    fn mutual_tls_server_sees_client_identity() {
        let ca = RootCa::generate().unwrap();
        let trusted = vec![ca.cert_pem().to_string()];
        let w = node(&ca, "worker7", Role::Worker);
        let client = client_config(&trusted, Some((&w.cert, &w.key))).unwrap();
        let (cc, ss) = handshake(client, manager_server(&ca, &trusted), "swarm-manager").unwrap();

        let peer = peer_identity(ss.peer_certificates()).expect("client identity");
        assert_eq!(peer.node_id, "worker7");
        assert_eq!(peer.role, Role::Worker);
        assert_eq!(peer.cluster_id, "cluster1");
        // And the client sees the manager, with the root sent after the leaf.
        let server_certs = cc.peer_certificates().unwrap();
        assert_eq!(peer_identity(Some(server_certs)).unwrap().role, Role::Manager);
        assert_eq!(server_certs.len(), 2);
        assert_eq!(server_certs[1].as_ref(), &ca.cert_der()[..]);
    }

    #[test]
    fn anonymous_client_allowed_without_identity() {
        let ca = RootCa::generate().unwrap();
        let trusted = vec![ca.cert_pem().to_string()];
        let client = client_config(&trusted, None).unwrap();
        let (_, ss) = handshake(client, manager_server(&ca, &trusted), "swarm-manager").unwrap();
        assert!(peer_identity(ss.peer_certificates()).is_none());
    }

    #[test]
    fn client_cert_from_other_ca_refused() {
        let ca = RootCa::generate().unwrap();
        let other = RootCa::generate().unwrap();
        let trusted = vec![ca.cert_pem().to_string()];
        let rogue = node(&other, "rogue", Role::Manager);
        let client = client_config(&trusted, Some((&rogue.cert, &rogue.key))).unwrap();
        let err = handshake(client, manager_server(&ca, &trusted), "swarm-manager").unwrap_err();
        // Every cluster root is named "swarm-ca", so webpki finds the
        // trusted root by name and then rejects the signature.
        assert!(
            matches!(
                err,
                Failed::Server(rustls::Error::InvalidCertificate(CertificateError::BadSignature | CertificateError::UnknownIssuer))
            ),
            "{err:?}"
        );
    }

    #[test]
    fn rotation_trusts_several_roots() {
        let old = RootCa::generate().unwrap();
        let new = RootCa::generate().unwrap();
        let trusted = vec![old.cert_pem().to_string(), new.cert_pem().to_string()];
        let w = node(&old, "w-old", Role::Worker);
        let client = client_config(&trusted, Some((&w.cert, &w.key))).unwrap();
        let (_, ss) = handshake(client, manager_server(&new, &trusted), "swarm-manager").unwrap();
        assert_eq!(peer_identity(ss.peer_certificates()).unwrap().node_id, "w-old");
    }

    #[test]
    fn worker_cert_cannot_serve_as_manager() {
        let ca = RootCa::generate().unwrap();
        let trusted = vec![ca.cert_pem().to_string()];
        let w = node(&ca, "w1", Role::Worker);
        let server = server_config(&trusted, &w.cert, &w.key, ca.cert_pem()).unwrap();
        let client = client_config(&trusted, None).unwrap();
        let err = handshake(client, server, "swarm-manager").unwrap_err();
        assert!(matches!(err, Failed::Client(rustls::Error::InvalidCertificate(_))), "{err:?}");
    }

    #[test]
    fn bootstrap_with_right_digest_pins_root() {
        let ca = RootCa::generate().unwrap();
        let trusted = vec![ca.cert_pem().to_string()];
        let (client, pinned) = bootstrap_client_config(ca.digest()).unwrap();
        assert!(pinned.root_pem().is_none());
        handshake(client, manager_server(&ca, &trusted), "swarm-manager").unwrap();
        let pem = pinned.root_pem().expect("pinned root");
        assert_eq!(crate::ca::cert_digest_pem(&pem).unwrap(), ca.digest());
    }

    #[test]
    fn bootstrap_with_wrong_digest_fails() {
        let ca = RootCa::generate().unwrap();
        let other = RootCa::generate().unwrap();
        let trusted = vec![ca.cert_pem().to_string()];
        let (client, pinned) = bootstrap_client_config(other.digest()).unwrap();
        let err = handshake(client, manager_server(&ca, &trusted), "swarm-manager").unwrap_err();
        let Failed::Client(e) = err else { panic!("{err:?}") };
        assert!(e.to_string().contains("certificate signed by unknown authority"), "{e}");
        assert!(pinned.root_pem().is_none());
    }

    #[test]
    fn bootstrap_still_checks_chain_and_name() {
        // A server that sends the right root but a leaf from another CA must
        // fail: the digest match alone is not enough.
        let ca = RootCa::generate().unwrap();
        let other = RootCa::generate().unwrap();
        let trusted = vec![ca.cert_pem().to_string()];
        let m = node(&other, "imposter", Role::Manager);
        let server = server_config(&trusted, &m.cert, &m.key, ca.cert_pem()).unwrap();
        let (client, pinned) = bootstrap_client_config(ca.digest()).unwrap();
        assert!(handshake(client, server, "swarm-manager").is_err());
        assert!(pinned.root_pem().is_none());

        // Right chain, wrong name.
        let (client, pinned) = bootstrap_client_config(ca.digest()).unwrap();
        assert!(handshake(client, manager_server(&ca, &trusted), "swarm-worker").is_err());
        assert!(pinned.root_pem().is_none());
    }

    #[test]
    fn config_errors_are_reported() {
        assert!(client_config(&[], None).is_err());
        assert!(client_config(&["junk".to_string()], None).is_err());
        let ca = RootCa::generate().unwrap();
        let trusted = vec![ca.cert_pem().to_string()];
        assert!(server_config(&trusted, ca.cert_pem(), "no key", ca.cert_pem()).is_err());
    }

    #[test]
    fn peer_identity_none_cases() {
        assert!(peer_identity(None).is_none());
        assert!(peer_identity(Some(&[])).is_none());
    }
}
