//! Standard base64 (RFC 4648, with padding), as Go's `encoding/json` writes
//! `[]byte` fields such as a secret's or config's `Data`.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD, URL_SAFE};
use base64::engine::DecodePaddingMode;
use base64::{DecodeError, Engine};

/// The decoder: padding optional (more lenient than Go's `StdEncoding`,
/// which wants it), unused trailing bits ignored (Go's encodings are not
/// `Strict()` by default).
const DECODER: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent).with_decode_allow_trailing_bits(true),
);

pub fn encode(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// URL-safe base64, with padding (Go's `base64.URLEncoding`).
pub fn encode_url(data: &[u8]) -> String {
    URL_SAFE.encode(data)
}

/// Decodes standard base64; padding may be left out. The error names the
/// offending input byte, as Go's decoder does.
pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    DECODER.decode(text).map_err(|e| go_error(&e, text.len()))
}

/// Decodes either alphabet, with or without padding, line breaks skipped
/// (what older clients sent as `X-Registry-Auth`, and `auths` entries).
pub fn decode_any(text: &str) -> Result<Vec<u8>, String> {
    let standard: String = text
        .trim()
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n'))
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    DECODER.decode(&standard).map_err(|e| go_error(&e, standard.len()))
}

/// Go's text: `illegal base64 data at input byte N`.
fn go_error(e: &DecodeError, len: usize) -> String {
    let at = match e {
        DecodeError::InvalidByte(at, _) | DecodeError::InvalidLastSymbol(at, _) => *at,
        DecodeError::InvalidLength(_) | DecodeError::InvalidPadding => len,
    };
    format!("illegal base64 data at input byte {at}")
}

/// Serde for `Option<Vec<u8>>` written as a base64 string (absent when None).
pub mod opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&super::encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| super::decode(&t).map_err(serde::de::Error::custom)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_matches_known_values() {
        assert_eq!(encode(b""), "");
        assert_eq!(encode(b"f"), "Zg==");
        assert_eq!(encode(b"fo"), "Zm8=");
        assert_eq!(encode(b"foo"), "Zm9v");
        assert_eq!(encode(b"s3cret\n"), "czNjcmV0Cg==");
        for n in 0..300usize {
            let data: Vec<u8> = (0..n).map(|i| (i * 7 + n) as u8).collect();
            assert_eq!(decode(&encode(&data)).unwrap(), data);
        }
        assert_eq!(decode("Zm8").unwrap(), b"fo");
        assert_eq!(encode(b"\xfb\xff"), "+/8=");
        assert_eq!(encode_url(b"\xfb\xff"), "-_8=");
        assert_eq!(decode_any("-_8").unwrap(), b"\xfb\xff");
        assert_eq!(decode_any("Zm9v\nYg==\n").unwrap(), b"foob");
        assert!(decode("-_8=").is_err(), "the strict decoder wants the standard alphabet");
        // Padding in full, in part or not at all; unused low bits ignored (Go's non-strict decoding).
        for text in ["Zg==", "Zg=", "Zg", "Zh=="] {
            assert_eq!(decode(text).unwrap(), b"f", "{text}");
        }
        assert_eq!(decode_any(" Zm9v\r\nYg== ").unwrap(), b"foob");
        // Padding beyond what the length calls for is refused, as Go does
        // (the hand-written decoder before this accepted "Zm9v=").
        for (text, at) in [("Zm9v=", 4), ("Zm9v==", 4), ("Zg===", 2)] {
            assert_eq!(decode(text).unwrap_err(), format!("illegal base64 data at input byte {at}"), "{text}");
            assert!(decode_any(text).is_err(), "{text}");
        }
    }

    #[test]
    fn bad_input_names_the_byte() {
        assert_eq!(decode("Zm!v").unwrap_err(), "illegal base64 data at input byte 2");
        assert!(decode("Z").is_err());
        assert!(decode("Zg===").is_err());
    }
}
