//! Standard base64 (RFC 4648, with padding), as Go's `encoding/json` writes
//! `[]byte` fields such as a secret's or config's `Data`.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// RFC 4648's URL-safe alphabet (Docker's `X-Registry-Auth`).
const URL_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

pub fn encode(data: &[u8]) -> String {
    encode_with(data, ALPHABET)
}

/// URL-safe base64, with padding (Go's `base64.URLEncoding`).
pub fn encode_url(data: &[u8]) -> String {
    encode_with(data, URL_ALPHABET)
}

fn encode_with(data: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64; padding may be left out. The error names the
/// offending input byte, as Go's decoder does.
pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let trimmed = text.trim_end_matches('=');
    if bytes.len() - trimmed.len() > 2 || trimmed.len() % 4 == 1 {
        return Err(format!("illegal base64 data at input byte {}", trimmed.len()));
    }
    decode_sextets(trimmed, false)
}

/// Decodes either alphabet, with or without padding, line breaks skipped
/// (what older clients sent as `X-Registry-Auth`, and `auths` entries).
pub fn decode_any(text: &str) -> Result<Vec<u8>, String> {
    decode_sextets(text.trim().trim_end_matches('='), true)
}

fn decode_sextets(text: &str, lenient: bool) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for (i, c) in text.bytes().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'-' if lenient => 62,
            b'_' if lenient => 63,
            b'\n' | b'\r' if lenient => continue,
            _ => return Err(format!("illegal base64 data at input byte {i}")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // A lone trailing sextet cannot encode a byte.
    if bits >= 6 {
        return Err(format!("illegal base64 data at input byte {}", text.len()));
    }
    Ok(out)
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
    }

    #[test]
    fn bad_input_names_the_byte() {
        assert_eq!(decode("Zm!v").unwrap_err(), "illegal base64 data at input byte 2");
        assert!(decode("Z").is_err());
        assert!(decode("Zg===").is_err());
    }
}
