//! The relay's HTTP/1.1 endpoints on each shard's TCP listener: `/certificate.sha256`,
//! `/announced/*prefix`, `/fetch/*path`, `/health`, and the WebSocket upgrade that carries
//! moq-lite sessions over QMux. Bounded request heads, timeouts for slow or idle clients, and
//! a connection limit per shard.
//!
//! The files depend one way: `env.rs` ([`WebEnv`]) and the leaves `request.rs` and
//! `response.rs` import nothing else from here; `routes.rs`, `fetch.rs` and `upgrade.rs`
//! import those; `server.rs` (the accept loop and the connection) imports all of them.

mod env;
mod fetch;
mod request;
mod response;
mod routes;
mod server;
mod upgrade;

pub use env::WebEnv;
pub use request::{parse, HeadError, Request};
pub use server::serve;
