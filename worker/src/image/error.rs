//! The one error type of the image code: a kind the Engine API can turn
//! into a status code, and a message worded as Docker words it.

use std::fmt;
use std::io;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input from the user: a malformed reference, a broken archive.
    InvalidArgument,
    /// No such image, tag, repository or blob.
    NotFound,
    /// The registry refused our credentials (or wanted some).
    Unauthorized,
    /// Content did not match its digest, or a registry broke the protocol.
    Corrupt,
    /// The registry could not be reached.
    Unavailable,
    /// The operation conflicts with the image's state (several names).
    Conflict,
    /// Local trouble: disk, mounts, permissions.
    Internal,
}

#[derive(Debug)]
pub struct ImageError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ImageError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ImageError {
        ImageError { kind, message: message.into() }
    }

    pub fn invalid(message: impl Into<String>) -> ImageError {
        ImageError::new(ErrorKind::InvalidArgument, message)
    }

    pub fn not_found(message: impl Into<String>) -> ImageError {
        ImageError::new(ErrorKind::NotFound, message)
    }

    pub fn corrupt(message: impl Into<String>) -> ImageError {
        ImageError::new(ErrorKind::Corrupt, message)
    }

    pub fn internal(message: impl Into<String>) -> ImageError {
        ImageError::new(ErrorKind::Internal, message)
    }

    /// A local I/O failure, with what we were doing.
    pub fn io(context: impl fmt::Display, e: io::Error) -> ImageError {
        ImageError::internal(format!("{context}: {e}"))
    }

    /// Prefixes the message with what was being done.
    pub fn context(mut self, context: impl fmt::Display) -> ImageError {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ImageError {}

impl From<super::reference::ReferenceError> for ImageError {
    fn from(e: super::reference::ReferenceError) -> Self {
        ImageError::invalid(e.0)
    }
}

impl From<super::digest::DigestMismatch> for ImageError {
    fn from(e: super::digest::DigestMismatch) -> Self {
        ImageError::corrupt(e.to_string())
    }
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;
