//! Loader errors: `docker-compose.yml:14: services.web.deploy.replicas: invalid
//! type: string "two", expected an integer`. Every error names the file and
//! the line (when there is one) and the key path, so the user can go straight
//! to it.

use std::fmt;

/// Where a node was written: an index into the loader's file names, and the
/// 1-based line (0 when unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    pub file: u16,
    pub line: u32,
}

/// The names of the files being loaded, as the caller gave them; `Pos::file`
/// indexes this.
#[derive(Clone, Debug, Default)]
pub struct Files {
    names: Vec<String>,
}

impl Files {
    pub fn add(&mut self, name: String) -> u16 {
        self.names.push(name);
        (self.names.len() - 1) as u16
    }

    pub fn name(&self, file: u16) -> &str {
        self.names.get(file as usize).map(String::as_str).unwrap_or("")
    }

    pub fn error(&self, pos: Pos, path: impl Into<String>, message: impl Into<String>) -> Error {
        Error::at_name(self.name(pos.file), pos.line, path, message)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// The file as the caller named it (`-c` argument), or `.env`'s path.
    pub file: String,
    /// 1-based; 0 when the error is about the file as a whole.
    pub line: u32,
    /// Dotted key path (`services.web.ports[1]`); empty at the top.
    pub path: String,
    pub message: String,
}

impl Error {
    pub fn at_name(file: &str, line: u32, path: impl Into<String>, message: impl Into<String>) -> Error {
        Error { file: file.to_owned(), line, path: path.into(), message: message.into() }
    }

    /// An error about no place in particular (a missing file, say).
    pub fn plain(message: impl Into<String>) -> Error {
        Error { file: String::new(), line: 0, path: String::new(), message: message.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if !self.file.is_empty() {
            write!(f, "{}", self.file)?;
            if self.line > 0 {
                write!(f, ":{}", self.line)?;
            }
            f.write_str(": ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Appends a key to a dotted path.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Appends a sequence index to a path.
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_dockers_shape() {
        let e =
            Error::at_name("docker-compose.yml", 14, "services.web.deploy.replicas", "invalid type: string \"two\", expected an integer");
        assert_eq!(e.to_string(), "docker-compose.yml:14: services.web.deploy.replicas: invalid type: string \"two\", expected an integer");
        assert_eq!(Error::plain("no files").to_string(), "no files");
        assert_eq!(Error::at_name("a.yml", 0, "", "empty").to_string(), "a.yml: empty");
    }
}
