//! The on-disk record of a container's output: Docker's json-file format,
//! one JSON object per line, `{"log":"…\n","stream":"stdout","time":"…"}`,
//! and the splitter that cuts a byte stream into such records the way
//! Docker's log copier does (lines, and pieces of 16 KiB for longer ones).
//! Pure functions, no I/O.

use serde::{Deserialize, Serialize};
use shoal_rpc::logs::LogStream;

/// Docker's copier buffer: a line longer than this is logged in pieces of
/// this size, each without a trailing newline.
pub const MAX_PIECE: usize = 16 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub log: String,
    pub stream: String,
    /// RFC 3339 with nanoseconds, UTC.
    pub time: String,
}

impl Record {
    pub fn stream(&self) -> Option<LogStream> {
        match self.stream.as_str() {
            "stdout" => Some(LogStream::Stdout),
            "stderr" => Some(LogStream::Stderr),
            _ => None,
        }
    }

    /// Nanoseconds since the epoch, for `since` filters.
    pub fn unix_nanos(&self) -> Option<i128> {
        let t = shoal_api::time::parse_rfc3339(&self.time)?;
        Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos() as i128)
    }
}

pub fn stream_name(s: LogStream) -> &'static str {
    match s {
        LogStream::Stdout => "stdout",
        LogStream::Stderr => "stderr",
    }
}

/// One record as a line of the log file (with its `\n`). Bytes that are
/// not UTF-8 become U+FFFD, as in Docker's json-file driver.
pub fn encode(stream: LogStream, time: &str, data: &[u8]) -> Vec<u8> {
    let rec = Record { log: String::from_utf8_lossy(data).into_owned(), stream: stream_name(stream).into(), time: time.into() };
    let mut out = serde_json::to_vec(&rec).expect("a record serialises");
    out.push(b'\n');
    out
}

/// One line of the log file (without or with its `\n`).
pub fn decode(line: &[u8]) -> Option<Record> {
    serde_json::from_slice(line).ok()
}

/// Cuts one stream's bytes into records: each complete line with its
/// `\n`; a line that reaches `MAX_PIECE` bytes without one is emitted in
/// pieces of `MAX_PIECE`; what is left at the end is emitted as is.
#[derive(Default)]
pub struct Splitter {
    buf: Vec<u8>,
}

impl Splitter {
    pub fn push(&mut self, mut data: &[u8], emit: &mut impl FnMut(&[u8])) {
        while !data.is_empty() {
            let room = MAX_PIECE - self.buf.len();
            let take = &data[..data.len().min(room)];
            match take.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.flush_with(&take[..=i], emit);
                    data = &data[i + 1..];
                }
                None => {
                    self.buf.extend_from_slice(take);
                    data = &data[take.len()..];
                    if self.buf.len() == MAX_PIECE {
                        emit(&self.buf);
                        self.buf.clear();
                    }
                }
            }
        }
    }

    /// End of stream: the unfinished line, if any.
    pub fn finish(&mut self, emit: &mut impl FnMut(&[u8])) {
        if !self.buf.is_empty() {
            emit(&self.buf);
            self.buf.clear();
        }
    }

    fn flush_with(&mut self, tail: &[u8], emit: &mut impl FnMut(&[u8])) {
        if self.buf.is_empty() {
            emit(tail);
        } else {
            self.buf.extend_from_slice(tail);
            emit(&self.buf);
            self.buf.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = Splitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut |p| out.push(p.to_vec()));
        }
        s.finish(&mut |p| out.push(p.to_vec()));
        out
    }

    #[test]
    fn lines_across_reads() {
        assert_eq!(split(&[b"he", b"llo\nwor", b"ld\n\n"]), vec![b"hello\n".to_vec(), b"world\n".to_vec(), b"\n".to_vec()]);
        assert_eq!(split(&[b"no newline"]), vec![b"no newline".to_vec()]);
    }

    #[test]
    fn long_lines_split_at_16k() {
        let long = vec![b'x'; MAX_PIECE * 2 + 10];
        let mut input = long.clone();
        input.extend_from_slice(b"\nnext\n");
        let out = split(&[&input[..5000], &input[5000..]]);
        assert_eq!(out.len(), 4);
        assert_eq!(out[0].len(), MAX_PIECE);
        assert_eq!(out[1].len(), MAX_PIECE);
        assert_eq!(out[2], b"xxxxxxxxxx\n".to_vec());
        assert_eq!(out[3], b"next\n".to_vec());
        // Exactly 16 KiB then a newline: a full piece, then the bare newline.
        let mut exact = vec![b'y'; MAX_PIECE];
        exact.push(b'\n');
        let out = split(&[&exact]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1], b"\n".to_vec());
    }

    #[test]
    fn records_round_trip_in_docker_shape() {
        let line = encode(LogStream::Stderr, "2024-05-01T10:00:00.123456789Z", b"a \"quoted\"\tline\n");
        assert_eq!(
            String::from_utf8(line.clone()).unwrap(),
            "{\"log\":\"a \\\"quoted\\\"\\tline\\n\",\"stream\":\"stderr\",\"time\":\"2024-05-01T10:00:00.123456789Z\"}\n"
        );
        let rec = decode(&line).unwrap();
        assert_eq!(rec.stream(), Some(LogStream::Stderr));
        assert_eq!(rec.log, "a \"quoted\"\tline\n");
        assert_eq!(rec.unix_nanos(), Some(1_714_557_600_123_456_789));
        // Invalid UTF-8 is replaced, not dropped.
        let rec = decode(&encode(LogStream::Stdout, "2024-05-01T10:00:00Z", b"\xffok")).unwrap();
        assert_eq!(rec.log, "\u{fffd}ok");
    }
}
