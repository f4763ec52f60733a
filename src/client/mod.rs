//! Our own moq-lite client: one QUIC connection on a blocking std UDP socket, pumped by the
//! caller. It exists for the integration tests and the bench harness, to reach the cases
//! published clients cannot (counting upstream SUBSCRIBEs, malformed bytes, address
//! migration, exact version pairs). The relay itself never uses it.

mod conn;
mod peer;

pub use conn::QuicClient;
pub use peer::{Event, MoqClient};
