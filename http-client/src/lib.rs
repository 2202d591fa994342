//! A small blocking HTTP/1.1 client on hyper, for callers that are not
//! async: the CLI (the Engine API on the daemon's unix socket, with the
//! upgrade that `exec` takes its stream over), the lab's probes, and the
//! worker's registry client (which runs on blocking threads because a pull
//! is file-system work as much as network work).
//!
//! The protocol is hyper's (request writing, response parsing, bodies by
//! length, chunked or until close, upgrades); this crate adds the blocking
//! bridge ([`block_on`]: the caller's thread polls hyper, a shared
//! one-thread runtime watches the sockets), bounded heads, optional
//! deadlines, and bodies read one frame at a time as the caller asks (a
//! blob is never buffered whole). Connecting is the caller's: a unix
//! socket, TCP, TLS over TCP, anything that is `AsyncRead + AsyncWrite`.
//!
//! One request per connection (`Connection: close`): every caller makes
//! few requests, and each opens a connection of its own.
//!
//! Beside it: `unix` (the Engine API's socket), `tcp` (with TLS), `tls` (rustls client
//! configurations as Docker's `--tls`/`--tlsverify` make them), and
//! `duplex` (an upgraded connection as blocking reader and writer halves).

mod blocking;
pub mod duplex;
mod exchange;
pub mod tcp;
pub mod tls;
pub mod unix;

pub use blocking::{block_on, drive_on_calling_threads, enter};
pub use exchange::{send, send_upgrade, Body, Io, Options, Request, Response, Upgrade};
pub use hyper::body::Bytes;
pub use rustls::ClientConfig;

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - _ . ~`).
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Percent-encodes a query component or a path segment (`%20` for a
/// space, so it reads the same in both).
pub fn escape(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, COMPONENT).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_all_but_unreserved_characters() {
        assert_eq!(super::escape("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
        assert_eq!(super::escape("x y~-_.é"), "x%20y~-_.%C3%A9");
        assert_eq!(super::escape(r#"{"role":{"manager":true}}"#), "%7B%22role%22%3A%7B%22manager%22%3Atrue%7D%7D");
    }
}
