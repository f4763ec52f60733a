//! QUIC on quiche: the shard's endpoint (accepting and dialing), its connections,
//! connection-id routing and the quiche configuration. What runs on a connection is the
//! business of a [`ConnectionHandler`] above it (`server/`).

mod alarm;
mod buffers;
pub mod cid;
mod config;
mod connection;
mod endpoint;
mod handler;
mod streams;

pub use buffers::{QuicConnection, SharedBufs};
pub use config::{alpn_list, client_config, dial_config, server_config, QuicSettings};
pub use connection::Connection;
pub use endpoint::{Endpoint, Forward, PacketOut, ShardPlace};
pub use handler::{ConnectionApp, ConnectionHandler, DialedApp};
pub use streams::{QuicStreams, StreamIds};
