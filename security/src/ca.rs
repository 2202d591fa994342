//! The cluster root CA and node key/CSR generation.
//!
//! Mirrors SwarmKit: an ECDSA P-256 self-signed root named "swarm-ca" valid
//! for 20 years, and short-lived node certificates whose subject (not the
//! CSR's) carries the node's identity. The CA ignores everything in a CSR
//! except the public key, so a node can never choose its own ID or role.

use std::time::Duration;

use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::identity::Role;
use crate::Error;

/// SwarmKit's default root validity.
const ROOT_VALIDITY: time::Duration = time::Duration::days(20 * 365);
/// Backdating of not_before so that peers with slightly slow clocks accept
/// a certificate that was just issued.
const BACKDATE: time::Duration = time::Duration::hours(1);

#[derive(Clone)]
pub struct RootCa {
    cert_pem: String,
    key_pem: String,
    cert_der: Vec<u8>,
}

// Hand-written so the private key never ends up in logs.
impl std::fmt::Debug for RootCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootCa").field("digest", &crate::base36::encode_fixed(&self.digest(), 50)).finish_non_exhaustive()
    }
}

/// A random positive serial. rcgen's default derives the serial from the
/// public key, which would repeat when a node renews with the same key.
fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    // Positive (top bit clear) and no leading zero byte, so DER encodes all 16.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

fn rcgen_err(what: &str) -> impl Fn(rcgen::Error) -> Error + '_ {
    move |e| format!("{what}: {e}")
}

impl RootCa {
    /// Creates a fresh self-signed root CA.
    pub fn generate() -> Result<RootCa, Error> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rcgen_err("generating CA key"))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "swarm-ca");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + ROOT_VALIDITY;
        params.serial_number = Some(random_serial());
        let cert = params.self_signed(&key).map_err(rcgen_err("self-signing CA certificate"))?;
        Ok(RootCa { cert_pem: cert.pem(), key_pem: key.serialize_pem(), cert_der: cert.der().to_vec() })
    }

    /// Loads a root CA from PEM, checking that the key belongs to the
    /// certificate and that the certificate is a CA.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<RootCa, Error> {
        let der = crate::pem::first_cert(cert_pem)?;
        let (_, cert) = X509Certificate::from_der(&der).map_err(|e| format!("cannot parse CA certificate: {e}"))?;
        if !cert.is_ca() {
            return Err("certificate is not a CA certificate".to_string());
        }
        let key = KeyPair::from_pem(key_pem).map_err(rcgen_err("invalid CA key"))?;
        if key.public_key_raw() != &cert.public_key().subject_public_key.data[..] {
            return Err("CA key does not match CA certificate".to_string());
        }
        Ok(RootCa { cert_pem: cert_pem.to_string(), key_pem: key_pem.to_string(), cert_der: der.to_vec() })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    pub fn cert_der(&self) -> Vec<u8> {
        self.cert_der.clone()
    }

    /// sha256 of the DER root certificate: what join tokens pin.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(&self.cert_der).into()
    }

    /// Signs a node certificate for the public key in `csr_pem`. The subject
    /// and SANs come from the arguments, never from the CSR. The validity is
    /// capped at the root's own expiry, since a leaf outliving its issuer is
    /// useless.
    pub fn issue(&self, csr_pem: &str, node_id: &str, role: Role, cluster_id: &str, validity: Duration) -> Result<String, Error> {
        if node_id.is_empty() || cluster_id.is_empty() {
            return Err("node ID and cluster ID must not be empty".to_string());
        }
        // from_pem also checks the CSR's self-signature (proof of key possession).
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(rcgen_err("invalid certificate signing request"))?;

        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, node_id);
        dn.push(DnType::OrganizationalUnitName, role.ou());
        dn.push(DnType::OrganizationName, cluster_id);
        params.distinguished_name = dn;
        // DNS SANs let TLS clients verify "swarm-manager" (or a specific node).
        params.subject_alt_names = [node_id, role.ou()]
            .iter()
            .map(|name| {
                let ia5 = (*name).try_into().map_err(|e| format!("invalid name {name:?} for certificate: {e}"))?;
                Ok(SanType::DnsName(ia5))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        // Every node is both a TLS server (managers) and a client.
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());

        let now = OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = (now + validity).min(self.not_after()?);
        csr.params = params;

        let key = KeyPair::from_pem(&self.key_pem).map_err(rcgen_err("invalid CA key"))?;
        let issuer =
            Issuer::from_ca_cert_der(&CertificateDer::from(&self.cert_der[..]), &key).map_err(rcgen_err("invalid CA certificate"))?;
        let cert = csr.signed_by(&issuer).map_err(rcgen_err("signing node certificate"))?;
        Ok(cert.pem())
    }

    /// `new`'s root certificate issued by this (the old) root: an
    /// intermediate that lets a node still trusting only this root verify
    /// certificates `new` issues (SwarmKit's cross-signed root during a
    /// rotation, so a node that was down for all of it comes back).
    pub fn cross_sign(&self, new: &RootCa) -> Result<String, Error> {
        // The new root's subject and key, as a CA, issued by this root.
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "swarm-ca");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = new.not_after()?.min(self.not_after()?);
        params.serial_number = Some(random_serial());
        let new_key = KeyPair::from_pem(&new.key_pem).map_err(rcgen_err("invalid new CA key"))?;
        let key = KeyPair::from_pem(&self.key_pem).map_err(rcgen_err("invalid CA key"))?;
        let issuer =
            Issuer::from_ca_cert_der(&CertificateDer::from(&self.cert_der[..]), &key).map_err(rcgen_err("invalid CA certificate"))?;
        let cert = params.signed_by(&new_key, &issuer).map_err(rcgen_err("cross-signing the new root"))?;
        Ok(cert.pem())
    }

    fn not_after(&self) -> Result<OffsetDateTime, Error> {
        let (_, cert) = X509Certificate::from_der(&self.cert_der).map_err(|e| format!("cannot parse CA certificate: {e}"))?;
        Ok(cert.validity().not_after.to_datetime())
    }
}

/// sha256 of the DER of the first certificate in a PEM string.
pub fn cert_digest_pem(cert_pem: &str) -> Result<[u8; 32], Error> {
    let der = crate::pem::first_cert(cert_pem)?;
    Ok(Sha256::digest(&der).into())
}

/// A node's private key and a CSR for it, generated locally so the key
/// never leaves the node.
pub struct NodeKey {
    pub key_pem: String,
    pub csr_pem: String,
}

impl NodeKey {
    pub fn generate() -> Result<NodeKey, Error> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rcgen_err("generating node key"))?;
        // The subject is a placeholder: the CA overwrites it.
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "swarm-node");
        params.distinguished_name = dn;
        let csr = params.serialize_request(&key).map_err(rcgen_err("creating CSR"))?;
        let csr_pem = csr.pem().map_err(rcgen_err("encoding CSR"))?;
        Ok(NodeKey { key_pem: key.serialize_pem(), csr_pem })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::identity_from_pem;
    use std::time::SystemTime;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    #[test]
    fn a_cross_signed_root_lets_an_old_trust_verify_the_new_roots_certificates() {
        use rustls::client::danger::ServerCertVerifier;
        use rustls::pki_types::{ServerName, UnixTime};
        let old = RootCa::generate().unwrap();
        let new = RootCa::generate().unwrap();
        let cross = old.cross_sign(&new).unwrap();
        let key = NodeKey::generate().unwrap();
        let leaf = new.issue(&key.csr_pem, "n1", Role::Manager, "c1", DAY).unwrap();
        let verify = |trusted: &RootCa, chain_extra: &[&str]| {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(CertificateDer::from(trusted.cert_der())).unwrap();
            let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                std::sync::Arc::new(roots),
                std::sync::Arc::new(rustls::crypto::ring::default_provider()),
            )
            .build()
            .unwrap();
            let leaf_der = crate::pem::first_cert(&leaf).unwrap();
            let inter: Vec<CertificateDer<'static>> = chain_extra.iter().flat_map(|p| crate::pem::certs(p).unwrap()).collect();
            verifier
                .verify_server_cert(
                    &CertificateDer::from(leaf_der.to_vec()),
                    &inter,
                    &ServerName::try_from("swarm-manager").unwrap(),
                    &[],
                    UnixTime::now(),
                )
                .is_ok()
        };
        assert!(verify(&new, &[new.cert_pem()]), "nodes on the new root");
        assert!(!verify(&old, &[new.cert_pem()]), "without the cross-signed root an old node cannot");
        assert!(verify(&old, &[new.cert_pem(), &cross]), "with it, a node that missed the rotation can");
        assert!(verify(&new, &[new.cert_pem(), &cross]), "and the extra certificate does not bother new nodes");
    }

    #[test]
    fn root_is_a_ca_with_expected_subject_and_lifetime() {
        let ca = RootCa::generate().unwrap();
        let der = ca.cert_der();
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        assert!(cert.is_ca());
        let cn: Vec<_> = cert.subject().iter_common_name().collect();
        assert_eq!(cn[0].as_str().unwrap(), "swarm-ca");
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.crl_sign());
        let life = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
        assert!(life > 20 * 365 * 86400 - 10, "lifetime {life}");
    }

    #[test]
    fn issue_sets_identity_from_arguments() {
        let ca = RootCa::generate().unwrap();
        let node = NodeKey::generate().unwrap();
        let pem = ca.issue(&node.csr_pem, "abc123node", Role::Manager, "cluster9", 90 * DAY).unwrap();
        let id = identity_from_pem(&pem).unwrap();
        assert_eq!(id.node_id, "abc123node");
        assert_eq!(id.role, Role::Manager);
        assert_eq!(id.cluster_id, "cluster9");

        let now = SystemTime::now();
        assert!(id.not_before < now - Duration::from_secs(30 * 60), "backdated");
        let left = id.not_after.duration_since(now).unwrap();
        assert!(left > 89 * DAY && left <= 90 * DAY, "{left:?}");

        // SANs: node id and role OU; leaf must not be a CA.
        let der = crate::pem::first_cert(&pem).unwrap();
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        assert!(!cert.is_ca());
        let san = cert.subject_alternative_name().unwrap().unwrap().value;
        let names: Vec<String> = san.general_names.iter().map(|n| n.to_string()).collect();
        assert_eq!(names, ["DNSName(abc123node)", "DNSName(swarm-manager)"]);

        // The certificate is for the node's key, not the CA's.
        let key = KeyPair::from_pem(&node.key_pem).unwrap();
        assert_eq!(key.public_key_raw(), &cert.public_key().subject_public_key.data[..]);

        let worker = ca.issue(&node.csr_pem, "w1", Role::Worker, "cluster9", DAY).unwrap();
        assert_eq!(identity_from_pem(&worker).unwrap().role, Role::Worker);
    }

    #[test]
    fn validity_capped_at_root_expiry() {
        let ca = RootCa::generate().unwrap();
        let node = NodeKey::generate().unwrap();
        let pem = ca.issue(&node.csr_pem, "n", Role::Worker, "c", 100 * 365 * DAY).unwrap();
        let left = identity_from_pem(&pem).unwrap().not_after.duration_since(SystemTime::now()).unwrap();
        assert!(left <= 20 * 365 * DAY, "{left:?}");
    }

    #[test]
    fn issue_rejects_bad_input() {
        let ca = RootCa::generate().unwrap();
        let node = NodeKey::generate().unwrap();
        assert!(ca.issue("garbage", "n", Role::Worker, "c", DAY).is_err());
        assert!(ca.issue(&node.csr_pem, "", Role::Worker, "c", DAY).is_err());
        assert!(ca.issue(&node.csr_pem, "n", Role::Worker, "", DAY).is_err());
    }

    #[test]
    fn digest_stable_across_from_pem() {
        let ca = RootCa::generate().unwrap();
        let again = RootCa::from_pem(ca.cert_pem(), ca.key_pem()).unwrap();
        assert_eq!(ca.digest(), again.digest());
        assert_eq!(cert_digest_pem(ca.cert_pem()).unwrap(), ca.digest());
        assert_eq!(ca.digest(), <[u8; 32]>::from(Sha256::digest(ca.cert_der())));
        // A reloaded CA still issues certs that verify under the same root.
        let node = NodeKey::generate().unwrap();
        assert!(again.issue(&node.csr_pem, "n", Role::Worker, "c", DAY).is_ok());
        // Distinct CAs have distinct digests.
        assert_ne!(ca.digest(), RootCa::generate().unwrap().digest());
    }

    #[test]
    fn from_pem_rejects_mismatched_key_and_non_ca() {
        let a = RootCa::generate().unwrap();
        let b = RootCa::generate().unwrap();
        let err = RootCa::from_pem(a.cert_pem(), b.key_pem()).unwrap_err();
        assert!(err.contains("does not match"), "{err}");
        let node = NodeKey::generate().unwrap();
        let leaf = a.issue(&node.csr_pem, "n", Role::Manager, "c", DAY).unwrap();
        assert!(RootCa::from_pem(&leaf, &node.key_pem).is_err());
    }
}
