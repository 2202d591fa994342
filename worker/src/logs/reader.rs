//! Reading a task's log file for a subscription: where the wanted lines
//! start (`tail`, `since`), then a cursor that returns the records appended
//! since its last call (for `follow`). Memory stays bounded: the tail scan
//! keeps only the offsets of the last N lines, and a cursor reads at most
//! `max` bytes per call.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use shoal_rpc::logs::{LogLine, LogOptions, LogStream};

use super::format::{decode, Record};

/// Offset of the first record to send: the first at or after `since`, and
/// of those only the last `tail` ones.
pub fn start_offset<R: Read>(r: R, opts: &LogOptions) -> io::Result<u64> {
    let mut reader = BufReader::new(r);
    let mut line = Vec::new();
    let mut offset = 0u64;
    let keep = opts.tail.map(|t| t as usize);
    let mut wanted: VecDeque<u64> = VecDeque::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)? as u64;
        if n == 0 || line.last() != Some(&b'\n') {
            break; // end, or a record still being written
        }
        let at = offset;
        offset += n;
        if let Some(since) = opts.since_unix_nanos {
            if decode(&line).and_then(|r| r.unix_nanos()).is_none_or(|t| t < since) {
                continue;
            }
        }
        if keep == Some(0) {
            continue;
        }
        wanted.push_back(at);
        if keep.is_some_and(|k| wanted.len() > k) {
            wanted.pop_front();
        }
        if keep.is_none() {
            return Ok(at); // no tail: the first match is the start
        }
    }
    Ok(wanted.front().copied().unwrap_or(offset))
}

/// Reads records appended to one task's log file, from an offset on. The
/// file stays open, so a log removed while being followed still reads out.
pub struct Cursor {
    task_id: String,
    file: File,
    offset: u64,
    /// Non-follow reads stop here: the file's length when asked.
    end: Option<u64>,
    /// Whether the last read moved forward.
    progressed: bool,
    opts: LogOptions,
}

impl Cursor {
    /// Opens `path` positioned by `start_offset` (or at 0 with `from_start`,
    /// for a task that appeared while following).
    pub fn open(task_id: &str, path: &Path, opts: &LogOptions, from_start: bool) -> io::Result<Cursor> {
        let mut file = File::open(path)?;
        let offset = if from_start {
            0
        } else {
            let o = start_offset(&mut file, opts)?;
            file.seek(SeekFrom::Start(0))?;
            o
        };
        Ok(Cursor { task_id: task_id.to_string(), file, offset, end: None, progressed: true, opts: opts.clone() })
    }

    /// Reads go no further than the file's current length.
    pub fn stop_at_current_end(&mut self) {
        self.end = self.file.metadata().ok().map(|m| m.len());
    }

    /// Nothing more to read now: the last read found nothing new, or the
    /// end set by `stop_at_current_end` is reached.
    pub fn exhausted(&self) -> bool {
        !self.progressed || self.end.is_some_and(|e| self.offset >= e)
    }

    /// Complete records since the last call, up to about `max` bytes,
    /// filtered by stream and `since`.
    pub fn read_new(&mut self, max: usize) -> io::Result<Vec<LogLine>> {
        let before = self.offset;
        self.file.seek(SeekFrom::Start(self.offset))?;
        let mut limit = max as u64 + 64 * 1024;
        if let Some(end) = self.end {
            limit = limit.min(end.saturating_sub(self.offset));
        }
        let mut reader = BufReader::new((&mut self.file).take(limit));
        let mut out = Vec::new();
        let mut line = Vec::new();
        let mut read = 0usize;
        while read < max {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 || line.last() != Some(&b'\n') {
                break; // a half-written record: read it next time
            }
            read += n;
            self.offset += n as u64;
            let Some(rec) = decode(&line) else { continue };
            if let Some(l) = wanted(&self.task_id, &self.opts, rec) {
                out.push(l);
            }
        }
        self.progressed = self.offset > before;
        Ok(out)
    }
}

/// The record as a line to send, if the options want it.
fn wanted(task_id: &str, opts: &LogOptions, rec: Record) -> Option<LogLine> {
    let stream = rec.stream()?;
    let shown = match stream {
        LogStream::Stdout => opts.stdout,
        LogStream::Stderr => opts.stderr,
    };
    if !shown {
        return None;
    }
    if let Some(since) = opts.since_unix_nanos {
        if rec.unix_nanos().is_none_or(|t| t < since) {
            return None;
        }
    }
    Some(LogLine { task_id: task_id.to_string(), stream, time: rec.time, data: rec.log })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::format::encode;
    use std::io::Write;

    fn opts() -> LogOptions {
        LogOptions { stdout: true, stderr: true, ..Default::default() }
    }

    fn file_with(lines: &[(LogStream, &str, &str)]) -> (tempdir::Dir, std::path::PathBuf) {
        let d = tempdir::Dir::new();
        let p = d.0.join("t.log");
        let mut f = File::create(&p).unwrap();
        for (s, t, l) in lines {
            f.write_all(&encode(*s, t, l.as_bytes())).unwrap();
        }
        (d, p)
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let p = std::env::temp_dir().join(format!("shoal-reader-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    const T1: &str = "2024-05-01T10:00:01.000000000Z";
    const T2: &str = "2024-05-01T10:00:02.000000000Z";
    const T3: &str = "2024-05-01T10:00:03.000000000Z";

    fn texts(lines: &[LogLine]) -> Vec<&str> {
        lines.iter().map(|l| l.data.as_str()).collect()
    }

    #[test]
    fn tail_since_and_streams() {
        use LogStream::*;
        let (_d, p) = file_with(&[(Stdout, T1, "a\n"), (Stderr, T2, "b\n"), (Stdout, T3, "c\n")]);
        let all = Cursor::open("t", &p, &opts(), false).unwrap().read_new(1 << 20).unwrap();
        assert_eq!(texts(&all), ["a\n", "b\n", "c\n"]);
        assert_eq!(all[1].stream, Stderr);
        assert_eq!(all[1].time, T2);

        let tail2 = LogOptions { tail: Some(2), ..opts() };
        assert_eq!(texts(&Cursor::open("t", &p, &tail2, false).unwrap().read_new(1 << 20).unwrap()), ["b\n", "c\n"]);
        let tail0 = LogOptions { tail: Some(0), ..opts() };
        assert!(Cursor::open("t", &p, &tail0, false).unwrap().read_new(1 << 20).unwrap().is_empty());
        let tail9 = LogOptions { tail: Some(9), ..opts() };
        assert_eq!(Cursor::open("t", &p, &tail9, false).unwrap().read_new(1 << 20).unwrap().len(), 3);

        let since = LogOptions { since_unix_nanos: Some(1_714_557_602_000_000_000), ..opts() };
        assert_eq!(texts(&Cursor::open("t", &p, &since, false).unwrap().read_new(1 << 20).unwrap()), ["b\n", "c\n"]);

        let only_out = LogOptions { stderr: false, ..opts() };
        assert_eq!(texts(&Cursor::open("t", &p, &only_out, false).unwrap().read_new(1 << 20).unwrap()), ["a\n", "c\n"]);
    }

    #[test]
    fn follow_sees_appended_records_but_not_half_written_ones() {
        let (_d, p) = file_with(&[(LogStream::Stdout, T1, "a\n")]);
        let mut c = Cursor::open("t", &p, &opts(), false).unwrap();
        assert_eq!(c.read_new(1 << 20).unwrap().len(), 1);
        assert!(c.read_new(1 << 20).unwrap().is_empty());
        let rec = encode(LogStream::Stdout, T2, b"b\n");
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(&rec[..10]).unwrap();
        assert!(c.read_new(1 << 20).unwrap().is_empty());
        f.write_all(&rec[10..]).unwrap();
        assert_eq!(texts(&c.read_new(1 << 20).unwrap()), ["b\n"]);
    }

    #[test]
    fn non_follow_reads_stop_at_the_length_when_asked() {
        let (_d, p) = file_with(&[(LogStream::Stdout, T1, "a\n")]);
        let mut c = Cursor::open("t", &p, &opts(), false).unwrap();
        c.stop_at_current_end();
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(&encode(LogStream::Stdout, T2, b"later\n")).unwrap();
        assert_eq!(texts(&c.read_new(1 << 20).unwrap()), ["a\n"]);
        assert!(c.exhausted());
        assert!(c.read_new(1 << 20).unwrap().is_empty());
    }

    #[test]
    fn reads_are_bounded() {
        let many: Vec<(LogStream, &str, &str)> = (0..100).map(|_| (LogStream::Stdout, T1, "0123456789\n")).collect();
        let (_d, p) = file_with(&many);
        let mut c = Cursor::open("t", &p, &opts(), false).unwrap();
        let first = c.read_new(1000).unwrap();
        assert!(first.len() < 100 && !first.is_empty());
        let mut total = first.len();
        loop {
            let more = c.read_new(1000).unwrap();
            if more.is_empty() {
                break;
            }
            total += more.len();
        }
        assert_eq!(total, 100);
    }
}
