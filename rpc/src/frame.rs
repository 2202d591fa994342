//! Frames: `[u32 big-endian length][u8 kind][payload]`, length counting kind
//! and payload. A cap on the length keeps a bad peer from making us allocate
//! without bound.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const MAX_FRAME: usize = 64 << 20;

/// What a caller may send in one frame, by who it is. The cap is checked on
/// the length prefix, before a byte of the body is read or allocated.
pub mod caps {
    /// Before the caller is known only `Join` is read: a token, a CSR and a
    /// node description fit in a few KiB.
    pub const PRE_AUTH: usize = 64 << 10;
    /// A node's calls: heartbeats (with its description), task states, log
    /// batches (256 KiB each).
    pub const NODE: usize = 4 << 20;
    /// A manager's: forwarded proposals and Raft messages.
    pub const MANAGER: usize = super::MAX_FRAME;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A JSON `Request` or `Response`.
    Json = 1,
    /// A protobuf-encoded Raft message (only on a Raft stream), or the last
    /// piece of one sent in pieces.
    Raft = 2,
    /// A piece of a Raft message larger than one frame (a snapshot of a big
    /// store); more pieces follow, the last one as `Raft`.
    RaftPart = 3,
}

/// Raft messages longer than this go in pieces of this size.
pub const RAFT_PIECE: usize = 16 << 20;
/// The largest Raft message a stream reassembles (a snapshot is the store
/// as JSON; only managers may open Raft streams).
pub const MAX_RAFT_MESSAGE: usize = 4 << 30;

/// Writes one Raft message, in pieces when it does not fit one frame.
pub async fn write_raft_message<W: AsyncWrite + Unpin>(w: &mut W, msg: &[u8]) -> io::Result<()> {
    if msg.len() > MAX_RAFT_MESSAGE {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "raft message too large"));
    }
    let mut rest = msg;
    while rest.len() > RAFT_PIECE {
        let (piece, tail) = rest.split_at(RAFT_PIECE);
        write_frame(w, Kind::RaftPart, piece).await?;
        rest = tail;
    }
    write_frame(w, Kind::Raft, rest).await
}

/// Gathers the pieces of Raft messages read frame by frame.
#[derive(Default)]
pub struct RaftAssembler {
    buf: Vec<u8>,
}

impl RaftAssembler {
    /// Takes one `Raft` or `RaftPart` frame; returns the message once whole.
    pub fn push(&mut self, kind: Kind, body: Vec<u8>) -> io::Result<Option<Vec<u8>>> {
        if self.buf.len() + body.len() > MAX_RAFT_MESSAGE {
            self.buf = Vec::new();
            return Err(io::Error::new(io::ErrorKind::InvalidData, "raft message too large"));
        }
        match kind {
            Kind::RaftPart => {
                self.buf.extend_from_slice(&body);
                Ok(None)
            }
            Kind::Raft if self.buf.is_empty() => Ok(Some(body)),
            Kind::Raft => {
                self.buf.extend_from_slice(&body);
                Ok(Some(std::mem::take(&mut self.buf)))
            }
            Kind::Json => Err(io::Error::new(io::ErrorKind::InvalidData, "a request inside a raft message")),
        }
    }
}

pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, kind: Kind, payload: &[u8]) -> io::Result<()> {
    if payload.len() + 1 > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "frame too large"));
    }
    let mut buf = Vec::with_capacity(payload.len() + 5);
    buf.extend_from_slice(&((payload.len() + 1) as u32).to_be_bytes());
    buf.push(kind as u8);
    buf.extend_from_slice(payload);
    w.write_all(&buf).await?;
    w.flush().await
}

/// Reads one frame; `Ok(None)` on a clean end of stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<(Kind, Vec<u8>)>> {
    read_frame_capped(r, MAX_FRAME).await
}

/// Reads one frame of at most `cap` bytes; a longer one is refused from its
/// length prefix alone.
pub async fn read_frame_capped<R: AsyncRead + Unpin>(r: &mut R, cap: usize) -> io::Result<Option<(Kind, Vec<u8>)>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > cap.min(MAX_FRAME) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("bad frame length {len} (at most {cap} here)")));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    let kind = match body[0] {
        1 => Kind::Json,
        2 => Kind::Raft,
        3 => Kind::RaftPart,
        k => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("bad frame kind {k}"))),
    };
    body.remove(0);
    Ok(Some((kind, body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_clean_eof() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        write_frame(&mut a, Kind::Json, b"{}").await.unwrap();
        write_frame(&mut a, Kind::Raft, &[1, 2, 3]).await.unwrap();
        drop(a);
        assert_eq!(read_frame(&mut b).await.unwrap(), Some((Kind::Json, b"{}".to_vec())));
        assert_eq!(read_frame(&mut b).await.unwrap(), Some((Kind::Raft, vec![1, 2, 3])));
        assert_eq!(read_frame(&mut b).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_frame_over_the_cap_is_refused_before_its_body_is_read() {
        let (mut a, mut b) = tokio::io::duplex(64);
        // Only the length prefix is written: reading the body would block.
        a.write_all(&(1u32 << 20).to_be_bytes()).await.unwrap();
        let e = read_frame_capped(&mut b, caps::PRE_AUTH).await.unwrap_err();
        assert!(e.to_string().contains("at most 65536"), "{e}");
    }

    #[tokio::test]
    async fn a_raft_message_larger_than_a_frame_travels_in_pieces() {
        let msg: Vec<u8> = (0..MAX_FRAME + 3 * RAFT_PIECE / 2).map(|i| (i % 251) as u8).collect();
        let (mut a, mut b) = tokio::io::duplex(1 << 20);
        let sent = msg.clone();
        let writer = tokio::spawn(async move {
            write_raft_message(&mut a, b"small").await.unwrap();
            write_raft_message(&mut a, &sent).await.unwrap();
        });
        let mut asm = RaftAssembler::default();
        let mut got = Vec::new();
        let mut frames = 0;
        while got.len() < 2 {
            let (kind, body) = read_frame(&mut b).await.unwrap().unwrap();
            assert!(body.len() <= RAFT_PIECE);
            frames += 1;
            if let Some(m) = asm.push(kind, body).unwrap() {
                got.push(m);
            }
        }
        writer.await.unwrap();
        assert_eq!(got[0], b"small");
        assert!(got[1] == msg, "reassembled message differs");
        assert_eq!(frames, 1 + msg.len().div_ceil(RAFT_PIECE));
    }

    #[tokio::test]
    async fn oversized_length_is_refused() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        assert!(read_frame(&mut b).await.is_err());
    }
}
