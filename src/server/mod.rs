//! The composition layer: the only room that knows every other. It decides which transport
//! and ALPN becomes which session ([`quic`] for raw QUIC and WebTransport, [`websocket`] for
//! QMux over WebSocket), authorizes WebTransport CONNECTs and WebSocket upgrades before a
//! session exists, and wires each shard's endpoint, sessions, relay state and mesh together
//! ([`shard`]).
//!
//! Below it, `transport/` moves bytes and knows nothing of sessions or auth; `session/` runs
//! one moq-lite session over any [`Streams`](crate::transport::Streams); `relay/` keeps the
//! shard's state.

pub mod quic;
pub mod shard;
pub mod websocket;
