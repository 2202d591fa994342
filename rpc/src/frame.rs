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
    /// A protobuf-encoded Raft message (only on a Raft stream).
    Raft = 2,
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
    async fn oversized_length_is_refused() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        assert!(read_frame(&mut b).await.is_err());
    }
}
