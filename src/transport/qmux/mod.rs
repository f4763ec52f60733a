//! QMux (draft qmux-00/01) over WebSocket messages, sans-IO: the frame codec, transport
//! parameters, a connection state machine that implements [`crate::transport::Streams`],
//! and the counts of what it refused ([`refusals`]).

mod config;
mod connection;
mod error;
mod flow;
pub mod frame;
pub mod params;
pub mod refusals;
mod schedule;
mod stream;
mod varint;
pub mod ws;

#[cfg(test)]
mod tests;

pub use crate::transport::websocket::QmuxVersion;
pub use config::Config;
pub use connection::{QmuxConnection, Role};
pub use error::{code, CloseReason, Error};
pub use frame::Frame;
pub use params::Params;
pub use ws::{WsEnd, WsQmux};

/// Why bytes did not decode as a QMux frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The input ended inside a varint or a length-delimited field.
    Truncated,
    /// A frame type we do not know.
    UnknownType(u64),
    /// A frame whose fields are inconsistent (e.g. a stream end past 2^62).
    Malformed(u64),
    /// A transport parameter duplicated or with a malformed value.
    BadParameter(u64),
    /// A qmux-00 message with bytes after its frame.
    TrailingBytes,
    /// A record-only frame (DATAGRAM, QX_PING) in qmux-00.
    NotInVersion,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Truncated => write!(f, "truncated frame"),
            FrameError::UnknownType(t) => write!(f, "unknown frame type {t:#x}"),
            FrameError::Malformed(t) => write!(f, "malformed frame of type {t:#x}"),
            FrameError::BadParameter(id) => write!(f, "bad transport parameter {id:#x}"),
            FrameError::TrailingBytes => write!(f, "bytes after the frame of a qmux-00 message"),
            FrameError::NotInVersion => write!(f, "frame not allowed in qmux-00"),
        }
    }
}

impl std::error::Error for FrameError {}
