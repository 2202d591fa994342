//! Cluster PKI for Shoal, modelled on SwarmKit's `ca` package:
//! a self-signed root CA, node certificates whose subject encodes the node's
//! identity, Docker-compatible join tokens, and rustls configurations for the
//! mutual-TLS cluster port (2377).

pub mod base36;
pub mod ca;
pub mod identity;
pub mod pem;
pub mod tls;
pub mod token;

pub use ca::{NodeKey, RootCa};
pub use identity::{NodeIdentity, Role};
pub use token::JoinToken;

/// Errors are human-readable messages; callers mostly log them or forward
/// them to the CLI verbatim (e.g. "invalid join token").
pub type Error = String;
