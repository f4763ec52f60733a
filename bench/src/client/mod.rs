//! Our own blocking moq-lite client: one QUIC connection on a blocking std UDP socket, pumped
//! by the caller. It exists for the relay's integration tests (`tests/`, through a
//! dev-dependency on this crate), to reach the cases published clients cannot (counting
//! upstream SUBSCRIBEs, malformed bytes, address migration, exact version pairs). It is not
//! the load generator's client (that is the non-blocking workers of `worker.rs`), and the
//! relay itself never uses it: it lives here so it does not ship in the `moq_relay` library.

mod conn;
mod peer;

pub use conn::QuicClient;
pub use peer::{Event, MoqClient};
