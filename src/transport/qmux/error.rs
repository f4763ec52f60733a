//! How a QMux connection fails or ends: QUIC transport error codes, the [`Error`] we close
//! with, and the [`CloseReason`] a connection reports once over.

use super::FrameError;

/// QUIC transport error codes (RFC 9000 §20.1) used in CONNECTION_CLOSE.
pub mod code {
    pub const NO_ERROR: u64 = 0x0;
    pub const FLOW_CONTROL_ERROR: u64 = 0x3;
    pub const STREAM_LIMIT_ERROR: u64 = 0x4;
    pub const STREAM_STATE_ERROR: u64 = 0x5;
    pub const FINAL_SIZE_ERROR: u64 = 0x6;
    pub const FRAME_ENCODING_ERROR: u64 = 0x7;
    pub const TRANSPORT_PARAMETER_ERROR: u64 = 0x8;
    pub const PROTOCOL_VIOLATION: u64 = 0xa;
}

/// A transport error: the QUIC error code we close with and what went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: u64,
    pub reason: &'static str,
}

impl Error {
    pub(super) const fn new(code: u64, reason: &'static str) -> Self {
        Error { code, reason }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "qmux transport error {:#x}: {}", self.code, self.reason)
    }
}

impl std::error::Error for Error {}

impl From<FrameError> for Error {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::BadParameter(_) => {
                Error::new(code::TRANSPORT_PARAMETER_ERROR, "bad transport parameter")
            }
            FrameError::NotInVersion => {
                Error::new(code::PROTOCOL_VIOLATION, "frame not allowed in qmux-00")
            }
            _ => Error::new(code::FRAME_ENCODING_ERROR, "malformed frame"),
        }
    }
}

/// How the connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// We called [`Streams::close`](crate::transport::Streams::close).
    Local { code: u64, reason: String },
    /// The peer sent CONNECTION_CLOSE (`application == false`) or APPLICATION_CLOSE.
    Peer {
        application: bool,
        code: u64,
        reason: String,
    },
    /// The peer broke the protocol; we sent CONNECTION_CLOSE with this error.
    Error(Error),
    /// Nothing heard from the peer for the idle timeout.
    IdleTimeout,
}
