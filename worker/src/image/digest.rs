//! Content digests (`sha256:<hex>`) and readers/writers that compute them
//! while data streams past.
//!
//! Every byte that enters the image store is checked against the digest that
//! named it: a registry (or an archive) can send anything, and the digest is
//! the only thing that ties the bytes to what the user asked for.

use std::fmt;
use std::io::{self, Read, Write};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256, Sha384, Sha512};

/// The hash functions OCI registers. Docker pulls with sha256; sha384/512 are
/// accepted because the image spec allows them and `sha2` has them anyway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha384 => 96,
            Algorithm::Sha512 => 128,
        }
    }

    fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha384" => Some(Algorithm::Sha384),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

/// A validated digest: a known algorithm and lowercase hex of the right
/// length. Validated on construction so a digest can safely become a file
/// name in the store (no `/`, no `..`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

/// Why a digest string was refused, in go-digest's words (Docker prints them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DigestError {
    InvalidFormat,
    Unsupported,
    InvalidLength,
}

impl fmt::Display for DigestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DigestError::InvalidFormat => "invalid checksum digest format",
            DigestError::Unsupported => "unsupported digest algorithm",
            DigestError::InvalidLength => "invalid checksum digest length",
        })
    }
}

impl std::error::Error for DigestError {}

impl Digest {
    /// Parses `algorithm:hex` with go-digest's rules: the algorithm must be
    /// one we can compute, the hex lowercase and of that algorithm's length.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let (alg, hex) = s.split_once(':').ok_or(DigestError::InvalidFormat)?;
        if alg.is_empty() || hex.is_empty() {
            return Err(DigestError::InvalidFormat);
        }
        let algorithm = Algorithm::from_name(alg).ok_or(DigestError::Unsupported)?;
        if hex.len() != algorithm.hex_len() {
            return Err(DigestError::InvalidLength);
        }
        if !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(DigestError::InvalidFormat);
        }
        Ok(Digest { algorithm, hex: hex.to_string() })
    }

    /// The sha256 digest of `data`.
    pub fn sha256_of(data: &[u8]) -> Digest {
        let mut h = Hasher::new(Algorithm::Sha256);
        h.update(data);
        h.finish()
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex part, used as a file name in the store.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex characters: Docker's short image ID.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }

    /// Checks `data` against this digest.
    pub fn verify(&self, data: &[u8]) -> Result<(), DigestMismatch> {
        let mut h = Hasher::new(self.algorithm);
        h.update(data);
        h.finish().expect(self)
    }

    /// Succeeds if `self` (what was computed) equals `expected`.
    pub fn expect(self, expected: &Digest) -> Result<(), DigestMismatch> {
        if &self == expected {
            Ok(())
        } else {
            Err(DigestMismatch { expected: expected.clone(), actual: self })
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(|e| serde::de::Error::custom(format!("{e}: {s:?}")))
    }
}

/// Content did not hash to the digest that named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestMismatch {
    pub expected: Digest,
    pub actual: Digest,
}

impl fmt::Display for DigestMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Docker: "filesystem layer verification failed for digest sha256:..."
        write!(f, "digest mismatch: expected {}, got {}", self.expected, self.actual)
    }
}

impl std::error::Error for DigestMismatch {}

/// An incremental hash of one of the supported algorithms.
#[derive(Clone)]
pub enum Hasher {
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha384 => Hasher::Sha384(Sha384::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Digest {
        let (algorithm, bytes) = match self {
            Hasher::Sha256(h) => (Algorithm::Sha256, h.finalize().to_vec()),
            Hasher::Sha384(h) => (Algorithm::Sha384, h.finalize().to_vec()),
            Hasher::Sha512(h) => (Algorithm::Sha512, h.finalize().to_vec()),
        };
        Digest { algorithm, hex: to_hex(&bytes) }
    }
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// A reader that hashes and counts everything read through it, so a layer
/// can be verified while it is being unpacked instead of after a second pass.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R, algorithm: Algorithm) -> Self {
        HashingReader { inner, hasher: Hasher::new(algorithm), count: 0 }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Reads whatever is left (so the digest covers the whole stream) and
    /// returns the digest and total size.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((self.hasher.finish(), self.count))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A writer that hashes everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W, algorithm: Algorithm) -> Self {
        HashingWriter { inner, hasher: Hasher::new(algorithm), count: 0 }
    }

    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, self.hasher.finish(), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn hashes_and_parses() {
        assert_eq!(Digest::sha256_of(b"").to_string(), EMPTY);
        let d = Digest::parse(EMPTY).unwrap();
        assert_eq!(d.hex().len(), 64);
        assert_eq!(d.short(), "e3b0c44298fc");
        assert!(d.verify(b"").is_ok());
        let err = d.verify(b"x").unwrap_err();
        assert_eq!(err.expected, d);
        assert!(err.to_string().starts_with("digest mismatch: expected sha256:e3b0"));
    }

    #[test]
    fn refuses_bad_digests_with_go_digest_wording() {
        assert_eq!(Digest::parse("sha256").unwrap_err().to_string(), "invalid checksum digest format");
        assert_eq!(Digest::parse("sha256:").unwrap_err(), DigestError::InvalidFormat);
        assert_eq!(Digest::parse("md5:abcd").unwrap_err().to_string(), "unsupported digest algorithm");
        assert_eq!(Digest::parse("sha256:abcd").unwrap_err().to_string(), "invalid checksum digest length");
        let upper = EMPTY.to_uppercase().replace("SHA256", "sha256");
        assert_eq!(Digest::parse(&upper).unwrap_err(), DigestError::InvalidFormat);
        let traversal = format!("sha256:../{}", &EMPTY[10..]);
        assert!(Digest::parse(&traversal).is_err());
    }

    #[test]
    fn hashing_reader_and_writer_agree() {
        let data = vec![7u8; 100_000];
        let mut r = HashingReader::new(&data[..], Algorithm::Sha256);
        let mut first = [0u8; 10];
        r.read_exact(&mut first).unwrap();
        assert_eq!(r.count(), 10);
        let (d, n) = r.finish().unwrap();
        assert_eq!(n, 100_000);
        assert_eq!(d, Digest::sha256_of(&data));
        let mut w = HashingWriter::new(Vec::new(), Algorithm::Sha256);
        w.write_all(&data).unwrap();
        let (out, d2, n2) = w.finish();
        assert_eq!((out.len() as u64, d2, n2), (100_000, d, 100_000));
    }

    #[test]
    fn serde_round_trip_validates() {
        let d = Digest::parse(EMPTY).unwrap();
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{EMPTY}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"sha256:../../etc\"").is_err());
    }
}
