//! QUIC on quiche: the shard's endpoint (accepting and dialing), its connections,
//! connection-id routing, address validation (Initials checked before any reply, Retry
//! tokens, handshake limits, a budget of stateless replies, anti-amplification) and the
//! quiche configuration. What runs on a connection is the
//! business of a [`ConnectionHandler`] above it (`server/`).

mod alarm;
mod amplification;
mod buffers;
pub mod cid;
mod config;
mod connection;
mod counters;
mod endpoint;
mod handler;
mod handshakes;
mod initial;
mod reply_budget;
mod streams;
mod throttle;
mod token;

pub use buffers::{QuicConnection, SharedBufs};
pub use config::{alpn_list, client_config, dial_config, server_config, QuicSettings};
pub use connection::Connection;
pub use counters::EndpointStats;
pub use endpoint::{Endpoint, Forward, PacketOut, ShardPlace};
pub use handler::{ConnectionApp, ConnectionHandler, DialedApp};
pub use handshakes::{HandshakeLimits, RetryMode};
pub use initial::{check as check_initial, InitialCheck};
pub use streams::{QuicStreams, StreamIds};
pub use token::RetryKey;
