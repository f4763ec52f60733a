//! The relay's HTTP/1.1 endpoints on each shard's TCP listener: `/certificate.sha256`,
//! `/announced/*prefix`, `/fetch/*path`, `/health`, and the WebSocket upgrade that carries
//! moq-lite sessions over QMux. Bounded request heads, timeouts for slow or idle clients, and
//! a connection limit per shard.

mod fetch;
mod request;
mod response;
mod routes;
mod server;
mod upgrade;

pub use request::{parse, HeadError, Request};
pub use server::{serve, WebEnv};
