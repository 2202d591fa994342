//! A small blocking HTTP/1.1 client on hyper, for callers that are not
//! async: the CLI (the Engine API on the daemon's unix socket or on
//! `tcp://` with TLS, with the upgrade that `exec` takes its stream over),
//! the lab's probes, the e2e harness, and the worker's registry client
//! (which runs on blocking threads because a pull is file-system work as
//! much as network work).
//!
//! The protocol is hyper's (request writing, response parsing, bodies by
//! length, chunked or until close, upgrades); this crate adds the blocking
//! bridge ([`block_on`]: the caller's thread polls hyper; a shared runtime
//! thread, or the waiting thread itself, watches the sockets), bounded
//! heads, optional deadlines, and bodies read one frame at a time as the
//! caller asks (a blob is never buffered whole). Connecting is the
//! caller's: a unix socket, TCP, TLS over TCP, anything that is
//! `AsyncRead + AsyncWrite`.
//!
//! One request per connection: every caller makes few requests and sends
//! `Connection: close` (the crate adds no header of its own but
//! `Content-Length`).
//!
//! Beside it: `unix` (the Engine API's socket), `tcp` (with TLS), `tls`
//! (rustls client configurations as Docker's `--tls`/`--tlsverify` make
//! them), and `duplex` (an upgraded connection as blocking reader and
//! writer halves).

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

/// A request as Go's errors name it: `Get "http://127.0.0.1:5000/v2/"`.
pub fn request_name(method: &str, url: &str) -> String {
    let mut m = method.to_lowercase();
    if let Some(first) = m.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    format!("{m} \"{url}\"")
}

/// A system error as Go prints it: the C library's text in lower case,
/// without Rust's ` (os error N)` (`no such file or directory`).
pub fn os_error_text(e: &std::io::Error) -> String {
    let Some(code) = e.raw_os_error() else { return e.to_string() };
    let text = std::io::Error::from_raw_os_error(code).to_string();
    let text = text.split(" (os error").next().unwrap_or("");
    let mut chars = text.chars();
    chars.next().map(|first| first.to_lowercase().collect::<String>() + chars.as_str()).unwrap_or_default()
}

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
    fn system_errors_read_as_go_prints_them() {
        let e = std::io::Error::from_raw_os_error(113);
        assert_eq!(super::os_error_text(&e), "no route to host");
        assert_eq!(super::tcp::dial_error("10.0.0.1", 2376, &e), "dial tcp 10.0.0.1:2376: connect: no route to host");
        let refused = std::io::Error::from_raw_os_error(111);
        assert_eq!(super::tcp::dial_error("::1", 1, &refused), "dial tcp [::1]:1: connect: connection refused");
        let lookup = std::io::Error::other("failed to lookup address information: Name or service not known");
        assert_eq!(super::tcp::dial_error("nohost", 2376, &lookup), "dial tcp: lookup nohost: no such host");
        let late = std::io::Error::new(std::io::ErrorKind::TimedOut, "i/o timeout");
        assert_eq!(super::tcp::dial_error("h", 2, &late), "dial tcp h:2: i/o timeout");
    }

    #[test]
    fn escapes_all_but_unreserved_characters() {
        assert_eq!(super::escape("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
        assert_eq!(super::escape("x y~-_.é"), "x%20y~-_.%C3%A9");
        assert_eq!(super::escape(r#"{"role":{"manager":true}}"#), "%7B%22role%22%3A%7B%22manager%22%3Atrue%7D%7D");
    }
}
