//! RFC 6455 WebSocket, server side and sans-IO: the HTTP/1.1 upgrade handshake with QMux
//! subprotocol negotiation (PROTOCOL.md §1.2) and the frame codec that carries QMux records.

pub mod frame;
pub mod handshake;

pub use frame::{encode, encode_masked, Decoder, Message, WsError};
pub use handshake::{accept, accept_key, Accepted, HandshakeError, QmuxVersion, Request};
