//! Base-36 encoding of big-endian unsigned integers, as Docker join tokens
//! use it (Go's `big.Int.Text(36)`, lowercase, zero-padded to a fixed width).
//!
//! The numbers involved are small (at most 32 bytes), so simple schoolbook
//! division of a byte vector is plenty fast and avoids a bignum dependency.

const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// Encodes `bytes` (a big-endian unsigned integer) in lowercase base 36,
/// left-padded with '0' to `width`. A value needing more than `width` digits
/// is returned in full rather than truncated, so information is never lost.
pub fn encode_fixed(bytes: &[u8], width: usize) -> String {
    // Work on a copy with leading zero bytes stripped; each pass divides the
    // whole number by 36 and yields the remainder as the next (least
    // significant) digit.
    let mut num: Vec<u8> = bytes.iter().copied().skip_while(|&b| b == 0).collect();
    let mut digits = Vec::new();
    while !num.is_empty() {
        let mut rem: u32 = 0;
        let mut quotient = Vec::with_capacity(num.len());
        for &b in &num {
            let acc = (rem << 8) | u32::from(b);
            let q = acc / 36;
            rem = acc % 36;
            // Skip leading zeros of the quotient so the loop terminates.
            if !(quotient.is_empty() && q == 0) {
                quotient.push(q as u8);
            }
        }
        digits.push(DIGITS[rem as usize]);
        num = quotient;
    }
    while digits.len() < width {
        digits.push(b'0');
    }
    digits.reverse();
    // Only ASCII digits were pushed.
    String::from_utf8(digits).expect("base36 digits are ASCII")
}

/// Decodes lowercase base-36 text into minimal big-endian bytes (zero decodes
/// to an empty vector; callers left-pad to the size they expect). Returns
/// `None` for an empty string or any character outside `0-9a-z`; uppercase is
/// rejected so every value has exactly one textual form.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() {
        return None;
    }
    // Little-endian accumulator: num = num * 36 + digit for each digit.
    let mut num: Vec<u8> = Vec::new();
    for c in s.bytes() {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'z' => c - b'a' + 10,
            _ => return None,
        };
        let mut carry = u32::from(d);
        for limb in num.iter_mut() {
            let acc = u32::from(*limb) * 36 + carry;
            *limb = (acc & 0xff) as u8;
            carry = acc >> 8;
        }
        while carry > 0 {
            num.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    // Trailing zero limbs are leading zeros in big-endian form.
    while num.last() == Some(&0) {
        num.pop();
    }
    num.reverse();
    Some(num)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_small_values() {
        assert_eq!(encode_fixed(&[], 0), "");
        assert_eq!(encode_fixed(&[0], 1), "0");
        assert_eq!(encode_fixed(&[35], 0), "z");
        assert_eq!(encode_fixed(&[36], 0), "10");
        assert_eq!(encode_fixed(&[0x01, 0x00], 0), "74"); // 256 = 7*36 + 4
        assert_eq!(encode_fixed(&[0xff, 0xff], 0), "1ekf"); // 65535
        assert_eq!(encode_fixed(&[0, 0, 36], 0), "10");
    }

    #[test]
    fn widths_pad_but_never_truncate() {
        assert_eq!(encode_fixed(&[35], 4), "000z");
        assert_eq!(encode_fixed(&[], 3), "000");
        assert_eq!(encode_fixed(&[0xff, 0xff], 2), "1ekf");
        // Full-size values fit their Docker widths exactly.
        assert_eq!(encode_fixed(&[0xff; 32], 50).len(), 50);
        assert_eq!(encode_fixed(&[0xff; 16], 25).len(), 25);
        assert_eq!(encode_fixed(&[0x00; 16], 25), "0".repeat(25));
    }

    #[test]
    fn decode_known_values() {
        assert_eq!(decode("0"), Some(vec![]));
        assert_eq!(decode("000"), Some(vec![]));
        assert_eq!(decode("z"), Some(vec![35]));
        assert_eq!(decode("74"), Some(vec![1, 0]));
        assert_eq!(decode("001ekf"), Some(vec![0xff, 0xff]));
        assert_eq!(decode(""), None);
        assert_eq!(decode("Z"), None);
        assert_eq!(decode("a-b"), None);
        assert_eq!(decode("é"), None);
    }

    #[test]
    fn round_trip() {
        use rand::RngCore;
        let mut rng = rand::thread_rng();
        for len in [1usize, 2, 7, 16, 31, 32] {
            for _ in 0..50 {
                let mut bytes = vec![0u8; len];
                rng.fill_bytes(&mut bytes);
                let text = encode_fixed(&bytes, 50);
                let back = decode(&text).unwrap();
                let minimal: Vec<u8> = bytes.iter().copied().skip_while(|&b| b == 0).collect();
                assert_eq!(back, minimal, "{text}");
            }
        }
    }
}
