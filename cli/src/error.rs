//! The error a command ends with: the text printed on stderr and the exit
//! status (1 like docker, unless a command says otherwise).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub message: String,
    pub status: i32,
    /// The HTTP status when the daemon answered with an error.
    pub http_status: Option<u16>,
}

impl CliError {
    pub fn new(message: impl Into<String>) -> CliError {
        CliError { message: message.into(), status: 1, http_status: None }
    }

    /// An error response from the daemon: "Error response from daemon: <message>".
    pub fn daemon(http_status: u16, message: &str) -> CliError {
        CliError { message: format!("Error response from daemon: {message}"), status: 1, http_status: Some(http_status) }
    }

    /// A question answered "no": nothing printed, exit status 0 (docker's
    /// cancelled errors).
    pub fn cancelled(_what: &str) -> CliError {
        CliError { message: String::new(), status: 0, http_status: None }
    }

    pub fn with_status(mut self, status: i32) -> CliError {
        self.status = status;
        self
    }

    /// Several errors joined by newlines (Go's `errors.Join`).
    pub fn join(errors: Vec<CliError>) -> Result<(), CliError> {
        if errors.is_empty() {
            return Ok(());
        }
        let message = errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("\n");
        Err(CliError { message, status: 1, http_status: None })
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

impl From<String> for CliError {
    fn from(s: String) -> CliError {
        CliError::new(s)
    }
}

impl From<&str> for CliError {
    fn from(s: &str) -> CliError {
        CliError::new(s)
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> CliError {
        CliError::new(e.to_string())
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;
