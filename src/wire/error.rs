//! The codec's error values: [`DecodeError`] for bytes from a peer, [`EncodeError`] for values
//! that have no encoding in the negotiated version.
//!
//! Decoding never panics. [`DecodeError::Incomplete`] alone means "wait for more bytes and
//! retry"; every other decode error is final for that stream (the session decides whether it
//! is a stream reset or a session close, PROTOCOL.md §5). A failed encode leaves the output
//! buffer as it was.

use std::fmt;

use super::Version;
use crate::path::PathError;

/// Why bytes from a peer could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The buffer ends before the message does; retry once more bytes have arrived.
    Incomplete,
    /// A length-prefixed body (or a datagram) ends before its last field.
    ShortBody,
    /// A length-prefixed body is longer than its fields.
    TrailingBytes,
    /// A declared length exceeds its cap (e.g. [`MAX_MESSAGE_SIZE`](super::MAX_MESSAGE_SIZE)).
    TooLong(&'static str),
    /// A frame declares more than [`MAX_FRAME_SIZE`](super::MAX_FRAME_SIZE) bytes.
    FrameTooLarge(u64),
    /// A string is not valid UTF-8.
    InvalidUtf8,
    /// A field holds a value its definition forbids.
    InvalidValue(&'static str),
    /// A stream or message type that the negotiated version does not define.
    UnknownType(u64),
    /// A message that the negotiated version does not define.
    Unsupported {
        message: &'static str,
        version: Version,
    },
    /// A SETUP names the same parameter id twice.
    DuplicateParameter(u64),
    /// A SETUP has more than [`MAX_PARAMETERS`](super::MAX_PARAMETERS) parameters.
    TooManyParameters,
    /// A hop list is longer than [`MAX_HOPS`](super::MAX_HOPS).
    TooManyHops,
    /// A broadcast path or prefix is not acceptable.
    Path(PathError),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Incomplete => write!(f, "incomplete message"),
            Self::ShortBody => write!(f, "message body ends before its fields"),
            Self::TrailingBytes => write!(f, "trailing bytes after the message fields"),
            Self::TooLong(what) => write!(f, "{what} exceeds its size limit"),
            Self::FrameTooLarge(size) => write!(f, "frame of {size} bytes is too large"),
            Self::InvalidUtf8 => write!(f, "string is not valid UTF-8"),
            Self::InvalidValue(what) => write!(f, "invalid {what}"),
            Self::UnknownType(code) => write!(f, "unknown type {code:#x}"),
            Self::Unsupported { message, version } => {
                write!(f, "{message} is not defined in {version}")
            }
            Self::DuplicateParameter(id) => write!(f, "duplicate parameter {id:#x}"),
            Self::TooManyParameters => write!(f, "too many parameters"),
            Self::TooManyHops => write!(f, "too many hops"),
            Self::Path(err) => write!(f, "bad path: {err}"),
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Path(err) => Some(err),
            _ => None,
        }
    }
}

impl From<PathError> for DecodeError {
    fn from(err: PathError) -> Self {
        Self::Path(err)
    }
}

/// Why a value could not be encoded; a bug or a bridging gap on our side, never the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// A varint above 2^62 − 1 (after any "+1" or zigzag mapping).
    ValueTooLarge(u64),
    /// A message, list or string exceeds its cap.
    TooLong(&'static str),
    /// A field holds a value its definition forbids.
    InvalidValue(&'static str),
    /// The message (or this variant of it) does not exist in the negotiated version.
    Unsupported {
        message: &'static str,
        version: Version,
    },
    /// A broadcast path or prefix is not acceptable.
    Path(PathError),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ValueTooLarge(value) => write!(f, "{value} does not fit a varint"),
            Self::TooLong(what) => write!(f, "{what} exceeds its size limit"),
            Self::InvalidValue(what) => write!(f, "invalid {what}"),
            Self::Unsupported { message, version } => {
                write!(f, "{message} is not defined in {version}")
            }
            Self::Path(err) => write!(f, "bad path: {err}"),
        }
    }
}

impl std::error::Error for EncodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Path(err) => Some(err),
            _ => None,
        }
    }
}

impl From<PathError> for EncodeError {
    fn from(err: PathError) -> Self {
        Self::Path(err)
    }
}
