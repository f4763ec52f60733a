//! How bytes reach sessions: raw QUIC on quiche today (WebTransport and QMux follow), all
//! presenting the same [`Streams`] interface, plus TLS certificate handling.

pub mod qmux;
pub mod quic;
mod stream_map;
mod streams;
pub mod tls;
pub mod websocket;
pub mod webtransport;

pub use stream_map::StreamMap;
pub use streams::{StreamError, StreamId, Streams};
