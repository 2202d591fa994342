//! A node's identity as carried in its certificate. Like SwarmKit, the subject
//! is the source of truth: CN = node ID, OU = role, O = cluster ID. Once the
//! TLS layer has verified the chain, these fields can be trusted.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::AttributeTypeAndValue;

use crate::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Manager,
    Worker,
}

impl Role {
    /// The certificate OU (and DNS SAN) for this role, as in SwarmKit.
    pub fn ou(&self) -> &'static str {
        match self {
            Role::Manager => "swarm-manager",
            Role::Worker => "swarm-worker",
        }
    }

    pub fn from_ou(s: &str) -> Option<Role> {
        match s {
            "swarm-manager" => Some(Role::Manager),
            "swarm-worker" => Some(Role::Worker),
            _ => None,
        }
    }

    /// The user-facing name ("manager" / "worker").
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Manager => "manager",
            Role::Worker => "worker",
        }
    }
}

#[derive(Clone, Debug)]
pub struct NodeIdentity {
    pub node_id: String,
    pub role: Role,
    pub cluster_id: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

/// First attribute value as a string, or an error naming the missing field.
fn first_attr<'a, 'b>(mut it: impl Iterator<Item = &'b AttributeTypeAndValue<'a>>, what: &str) -> Result<String, Error>
where
    'a: 'b,
{
    let attr = it.next().ok_or_else(|| format!("certificate subject has no {what}"))?;
    attr.as_str().map(str::to_string).map_err(|e| format!("certificate subject {what} is not a string: {e}"))
}

fn to_system_time(unix: i64) -> SystemTime {
    if unix >= 0 {
        UNIX_EPOCH + Duration::from_secs(unix as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(unix.unsigned_abs())
    }
}

/// Parses the identity out of a DER node certificate. Does not verify the
/// certificate; that is the TLS layer's (or the caller's) job.
pub fn identity_from_der(der: &[u8]) -> Result<NodeIdentity, Error> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| format!("cannot parse certificate: {e}"))?;
    let subject = cert.subject();
    let node_id = first_attr(subject.iter_common_name(), "common name")?;
    let ou = first_attr(subject.iter_organizational_unit(), "organizational unit")?;
    let cluster_id = first_attr(subject.iter_organization(), "organization")?;
    let role = Role::from_ou(&ou).ok_or_else(|| format!("unknown node role {ou:?}"))?;
    let validity = cert.validity();
    Ok(NodeIdentity {
        node_id,
        role,
        cluster_id,
        not_before: to_system_time(validity.not_before.timestamp()),
        not_after: to_system_time(validity.not_after.timestamp()),
    })
}

/// Parses the identity out of the first certificate of a PEM string.
pub fn identity_from_pem(pem: &str) -> Result<NodeIdentity, Error> {
    identity_from_der(&crate::pem::first_cert(pem)?)
}

/// What Docker shows as a node's `TLSInfo`: the root it trusts, and that
/// root's subject and public key (DER, base64) — how `swarm ca --rotate`
/// progress is judged.
pub fn tls_info(root_pem: &str) -> Result<(String, String), Error> {
    let der = crate::pem::first_cert(root_pem)?;
    let (_, cert) = X509Certificate::from_der(&der).map_err(|e| format!("invalid root certificate: {e}"))?;
    let subject = crate::pem::base64(cert.tbs_certificate.subject.as_raw());
    let key = crate::pem::base64(cert.tbs_certificate.subject_pki.raw);
    Ok((subject, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names() {
        for role in [Role::Manager, Role::Worker] {
            assert_eq!(Role::from_ou(role.ou()), Some(role));
        }
        assert_eq!(Role::Manager.ou(), "swarm-manager");
        assert_eq!(Role::Worker.as_str(), "worker");
        assert_eq!(Role::from_ou("manager"), None);
    }

    #[test]
    fn rejects_garbage() {
        assert!(identity_from_der(b"not a cert").is_err());
        assert!(identity_from_pem("").is_err());
    }

    #[test]
    fn root_cert_is_not_a_node_identity() {
        // The root has CN but no OU/O, so it must not parse as a node.
        let ca = crate::RootCa::generate().unwrap();
        let err = identity_from_pem(ca.cert_pem()).unwrap_err();
        assert!(err.contains("organizational unit"), "{err}");
    }
}
