//! WebTransport over HTTP/3 (ALPN `h3`), sans-IO: the small subset of HTTP/3, QPACK and
//! WebTransport a moq relay needs to accept one WebTransport session per QUIC connection.
//!
//! quiche's own `h3` module knows nothing of WebTransport stream types, so the relay drives raw
//! quiche streams and does the framing here (PROTOCOL.md §7.2). Every piece is a pure function
//! over byte buffers, so each is unit tested and fuzzed on its own:
//!
//! - [`frame`]: HTTP/3 frame headers; [`settings`]: our control stream and the peer's SETTINGS;
//!   [`stream_type`]: unidirectional stream types.
//! - [`huffman`], [`static_table`], [`qpack`]: static-table-only QPACK field sections.
//! - [`sfv`], [`connect`]: the extended CONNECT request, protocol choice, the response.
//! - [`header`]: the `0x41`/`0x54` WebTransport stream headers; [`capsule`]: session capsules;
//!   [`error_code`]: application codes in the HTTP/3 error space.
//! - [`datagram`]: the quarter-stream-id prefix of HTTP/3 datagrams.
//! - [`session`]: [`WebTransportSession`] drives all of the above on a quiche connection and
//!   presents the session to moq-lite as [`crate::transport::Streams`].
//!
//! The session does not send or receive datagrams itself (the driver uses [`datagram`] with
//! quiche's `dgram_send`/`dgram_recv`); the 3·RTT wait before CONNECTION_CLOSE is left to the
//! driver (see [`session`]).
//!
//! Numbers follow RFC 9114 (HTTP/3), RFC 9204 (QPACK), RFC 7541 Appendix B (Huffman), RFC 9220
//! (extended CONNECT), RFC 9297 (capsules), RFC 8941 (structured fields) and
//! draft-ietf-webtrans-http3; web-transport-proto 0.6.3 was read to cross-check them.

pub mod capsule;
mod client;
pub mod connect;
mod connect_stream;
mod control;
pub mod datagram;
mod demux;
mod error;
pub mod error_code;
pub mod frame;
pub mod header;
pub mod huffman;
mod outbox;
mod peers;
pub mod qpack;
mod read;
mod server;
pub mod session;
pub mod settings;
pub mod sfv;
mod state;
pub mod static_table;
pub mod stream_type;
mod streams;
mod varint;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

pub use error::H3Error;
pub use session::{Event, WebTransportSession};
pub use streams::WebTransportStreams;
