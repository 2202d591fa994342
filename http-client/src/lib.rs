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

mod blocking;
mod exchange;
pub mod unix;

pub use blocking::{block_on, enter};
pub use exchange::{send, send_upgrade, Body, Io, Options, Request, Response, Upgrade};
pub use hyper::body::Bytes;
