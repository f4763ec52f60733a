//! The relay's HTTP/1.1 endpoints on each shard's TCP listener: `/certificate.sha256`,
//! `/announced/*prefix`, `/fetch/*path` and `/health`; a WebSocket upgrade request is handed
//! to the [`UpgradeHandler`] the composition layer gave it. Bounded request heads, timeouts
//! for slow or idle clients (shorter under pressure), and connection slots per shard and per
//! source address ([`Slots`]).
//!
//! The files depend one way: the leaves `request.rs`, `response.rs` and `slots.rs` import
//! nothing else from here, `env.rs` ([`WebEnv`]) only `request.rs` and `slots.rs`;
//! `routes.rs` and `fetch.rs` import those; `server.rs` (the accept loop and the connection)
//! imports all of them.

mod env;
mod fetch;
mod request;
mod response;
mod routes;
mod server;
mod slots;

pub use env::{UpgradeHandler, UpgradeTask, WebEnv};
pub use request::{parse, HeadError, Request};
pub use response::error as error_response;
pub use server::serve;
pub use slots::{Refusal, SlotLimits, SlotStats, Slots, Source};
