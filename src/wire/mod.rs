//! The moq-lite wire codec, sans-IO: pure functions over byte buffers (PROTOCOL.md §2–§5).
//!
//! Supported versions are lite-04 and lite-05 ([`Version`]). Each stream starts with a
//! [`BidiType`] or [`UniType`]; control messages implement [`Message`] (len-prefixed,
//! version-aware `encode`/`decode`); [`SubscribeResponse`], [`FrameHeader`] and [`Datagram`]
//! have their own framing. Decoders never panic and allocate only for bytes already in the
//! buffer; [`DecodeError::Incomplete`] asks the caller to retry with more bytes.
//!
//! Limits: [`MAX_MESSAGE_SIZE`] (1 MiB per control message, SETUP included),
//! [`MAX_FRAME_SIZE`] (32 MiB), [`MAX_PARAMETERS`] (64), [`MAX_HOPS`] (32),
//! [`MAX_GOAWAY_URI`] (8192 bytes), and [`path::MAX_PARTS`](crate::path::MAX_PARTS) (32).

mod announce;
mod codec;
mod datagram;
mod error;
pub mod error_code;
mod fetch;
mod goaway;
mod group;
mod message;
mod probe;
mod setup;
mod stream_type;
mod subscribe;
mod track;
pub mod varint;
mod version;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod testing;

pub use announce::{Announce, AnnounceOk, AnnounceRequest, AnnounceStatus, MAX_HOPS};
pub use codec::{Reader, MAX_MESSAGE_SIZE};
pub use datagram::Datagram;
pub use error::{DecodeError, EncodeError};
pub use fetch::Fetch;
pub use goaway::{Goaway, MAX_GOAWAY_URI};
pub use group::{FrameHeader, GroupHeader, MAX_FRAME_SIZE};
pub use message::Message;
pub use probe::Probe;
pub use setup::{ProbeLevel, Role, Setup, MAX_PARAMETERS};
pub use stream_type::{BidiType, UniType};
pub use subscribe::{Subscribe, SubscribeResponse, SubscribeUpdate};
pub use track::{TrackInfo, TrackRequest};
pub use version::Version;
