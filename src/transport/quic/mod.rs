//! QUIC on quiche: the shard's endpoint, its connections, connection-id routing, the quiche
//! configuration, and what runs on a connection (raw moq-lite or WebTransport).

mod alarm;
mod app;
mod buffers;
pub mod cid;
mod config;
mod connection;
mod endpoint;
mod streams;

pub use buffers::{QuicConnection, SharedBufs};
pub use config::{alpn_list, client_config, server_config, QuicSettings};
pub use connection::Connection;
pub use endpoint::{Endpoint, PacketOut};
pub use streams::{QuicStreams, StreamIds};
