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
//!   presents the session to moq-lite as [`crate::transport::Streams`] through
//!   [`WebTransportStreams`] (`streams.rs`). Its parts, one file each: the session's state
//!   (`state.rs`), the server and client roles (`server.rs`, `client.rs`), stream
//!   demultiplexing (`demux.rs`, over the peer-stream table in `peers.rs`), the HTTP/3 control
//!   streams and SETTINGS exchange (`control.rs`), the CONNECT stream and its capsules
//!   (`connect_stream.rs`), our pending writes (`outbox.rs`) and raw stream reads (`read.rs`).
//! - [`refusals`]: the shard's counts of what was refused before a session existed.
//!
//! The session does not send or receive datagrams itself (the driver uses [`datagram`] with
//! quiche's `dgram_send`/`dgram_recv`); the 3·RTT wait before CONNECTION_CLOSE is left to the
//! driver (see [`session`]).
//!
//! Numbers follow RFC 9114 (HTTP/3), RFC 9204 (QPACK), RFC 7541 Appendix B (Huffman), RFC 9220
//! (extended CONNECT), RFC 9297 (capsules), RFC 8941 (structured fields) and
//! draft-ietf-webtrans-http3; web-transport-proto 0.6.3 was read to cross-check them.
//!
//! # Why not the `web-transport-proto` crate
//!
//! `web-transport-proto` (0.6.3, the framing crate behind `web-transport-quinn`) covers much
//! of the same ground: varints, frame and uni-stream types, SETTINGS, the CONNECT request and
//! response with a static-table QPACK and Huffman decoder, and capsules. We keep our own code
//! for now, for these reasons:
//!
//! - Dependencies: it pulls in `tokio` (its `read`/`write` helpers are async over
//!   `AsyncRead`/`AsyncWrite`), `http`, `url` (with its IDNA stack) and `sfv`. The relay runs
//!   on glommio with no tokio, `http` or `url` in its build; that weight would buy code we
//!   already have, tested and fuzzed.
//! - Shape: its `Settings::decode` reads the control stream's type and its first frame
//!   together from one buffer; we read the control stream incrementally, skip large unknown
//!   frames without buffering them, and must reject duplicate setting ids (RFC 9114 §7.2.4.1),
//!   which its map-based decode silently accepts.
//! - What it does not offer: QPACK and Huffman are private to it (only whole CONNECT
//!   requests/responses decode through them), so our response and error paths would keep a
//!   codec of their own; there is no DRAIN_WEBTRANSPORT_SESSION capsule and no helpers for
//!   the stream header's session id or the datagram quarter-stream-id (only the type
//!   constants); its CONNECT errors are one error enum, where we answer each malformed
//!   request with a chosen status and pick among offered protocols. (Its application
//!   error-code mapping matches our [`error_code`].)
//! - Sans-IO only in part: the `decode` functions are, but its reading model (`Buf` over one
//!   contiguous frame) still needs our per-stream state machines around it, which are most of
//!   this module's code.
//!
//! What it would replace is the small pure codecs (roughly `frame`, `settings`, `huffman`,
//! `static_table`, `qpack`, `sfv`, `capsule` and part of `connect`), not the session logic.
//! Worth looking again if it drops the tokio requirement (or puts it behind a feature) and
//! exposes its QPACK codec.

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
pub mod refusals;
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
