//! PEM helpers: decoding with rustls-pki-types, encoding with the `pem`
//! crate (the bootstrap verifier only ever sees DER from the wire).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::Error;

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Encodes DER as a PEM block with 64-column lines and LF line ends
/// (RFC 7468).
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let block = pem::Pem::new(label, der);
    pem::encode_config(&block, pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF))
}

/// All certificates in a PEM string, in order. Errors if there are none, since
/// every caller needs at least one.
pub(crate) fn certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid certificate PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate found in PEM".to_string());
    }
    Ok(certs)
}

/// The first certificate in a PEM string.
pub(crate) fn first_cert(pem: &str) -> Result<CertificateDer<'static>, Error> {
    Ok(certs(pem)?.swap_remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_rfc4648_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn encode_round_trips_through_parser() {
        let der: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let text = encode("CERTIFICATE", &der);
        assert!(text.lines().all(|l| l.len() <= 64));
        let back = first_cert(&text).unwrap();
        assert_eq!(back.as_ref(), &der[..]);
    }
}
