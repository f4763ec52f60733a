//! [`ConfigError`]: what went wrong while loading the configuration, and where: the file, the
//! dotted key (`server.listen`), the command-line flag when the value came from one, and the
//! line and column in the file when known.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What kind of problem a [`ConfigError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The configuration file is missing or unreadable.
    Io,
    /// The file is not valid TOML.
    Syntax,
    /// A key the relay does not know (`deny_unknown_fields`).
    UnknownKey,
    /// A known key with a bad value, or an invalid combination of keys.
    Invalid,
}

/// A 1-based line and column (in characters) inside the configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `text`.
    pub fn of(text: &str, offset: usize) -> Position {
        let offset = offset.min(text.len());
        let mut start = offset;
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let before = &text[..start];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Position { line, column }
    }
}

/// A configuration error. Its `Display` names the file, the key and the reason, e.g.
/// `relay.toml: server.listen: invalid socket address "foo" (...) at line 3, column 10` or
/// ``relay.toml: unknown key `server.lisen` (expected one of ...) at line 3, column 1``.
#[derive(Debug)]
pub struct ConfigError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    file: Option<PathBuf>,
    key: Option<String>,
    flag: Option<&'static str>,
    position: Option<Position>,
    reason: String,
    source: Option<io::Error>,
}

impl ConfigError {
    pub(crate) fn new(kind: ErrorKind, reason: impl Into<String>) -> ConfigError {
        ConfigError(Box::new(Inner {
            kind,
            file: None,
            key: None,
            flag: None,
            position: None,
            reason: reason.into(),
            source: None,
        }))
    }

    /// The configuration file could not be read.
    pub(crate) fn io(file: &Path, err: io::Error) -> ConfigError {
        let mut e = ConfigError::new(ErrorKind::Io, err.to_string()).in_file(Some(file));
        e.0.source = Some(err);
        e
    }

    pub(crate) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError::new(ErrorKind::Invalid, reason).with_key(key)
    }

    pub(crate) fn in_file(mut self, file: Option<&Path>) -> ConfigError {
        self.0.file = file.map(Path::to_path_buf);
        self
    }

    pub(crate) fn with_key(mut self, key: impl Into<String>) -> ConfigError {
        self.0.key = Some(key.into());
        self
    }

    pub(crate) fn with_flag(mut self, flag: &'static str) -> ConfigError {
        self.0.flag = Some(flag);
        self
    }

    pub(crate) fn at(mut self, position: Option<Position>) -> ConfigError {
        self.0.position = position;
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The configuration file, when the problem is in (or about) one.
    pub fn file(&self) -> Option<&Path> {
        self.0.file.as_deref()
    }

    /// The dotted key, e.g. `server.listen` or `server.tls.generate[1]`.
    pub fn key(&self) -> Option<&str> {
        self.0.key.as_deref()
    }

    /// The command-line flag the bad value came from, e.g. `--listen`.
    pub fn flag(&self) -> Option<&'static str> {
        self.0.flag
    }

    /// Line and column in the file, when known.
    pub fn position(&self) -> Option<Position> {
        self.0.position
    }

    /// The reason alone, without file, key or position.
    pub fn reason(&self) -> &str {
        &self.0.reason
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let this = &self.0;
        if let Some(file) = &this.file {
            write!(f, "{}: ", file.display())?;
        }
        match (this.kind, &this.key) {
            (ErrorKind::Io, _) => write!(f, "cannot read the configuration file: {}", this.reason)?,
            (ErrorKind::Syntax, _) => write!(f, "TOML syntax error: {}", this.reason)?,
            (ErrorKind::UnknownKey, Some(key)) => {
                write!(f, "unknown key `{key}` ({})", this.reason)?
            }
            (_, Some(key)) => {
                write!(f, "{key}")?;
                if let Some(flag) = this.flag {
                    write!(f, " ({flag})")?;
                }
                write!(f, ": {}", this.reason)?;
            }
            (_, None) => write!(f, "{}", this.reason)?,
        }
        if let Some(Position { line, column }) = this.position {
            write!(f, " at line {line}, column {column}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(Position::of(text, 0), Position { line: 1, column: 1 });
        assert_eq!(Position::of(text, 6), Position { line: 2, column: 1 });
        // 'é' is two bytes but one column.
        assert_eq!(Position::of(text, 9), Position { line: 2, column: 3 });
        assert_eq!(Position::of(text, 99).line, 3);
    }

    #[test]
    fn display() {
        let e = ConfigError::invalid("server.listen", r#"invalid socket address "foo""#)
            .in_file(Some(Path::new("relay.toml")))
            .at(Some(Position {
                line: 3,
                column: 10,
            }));
        assert_eq!(
            e.to_string(),
            r#"relay.toml: server.listen: invalid socket address "foo" at line 3, column 10"#
        );
        let e = ConfigError::invalid("server.tls.cert", "missing").with_flag("--tls-cert");
        assert_eq!(e.to_string(), "server.tls.cert (--tls-cert): missing");
    }
}
