//! moq-relay: a thread-per-core Media-over-QUIC relay speaking moq-lite.
//!
//! The crate is layered as DESIGN.md describes: [`wire`] is the sans-IO codec, [`model`]
//! the version-agnostic relay state, [`relay`] the per-shard state and mesh traffic,
//! [`session`] the moq-lite role logic, [`transport`] the thin glommio drivers that move
//! bytes, [`web`] the HTTP endpoints, [`auth`] who may do what, and [`config`] the TOML +
//! CLI.

pub mod auth;
pub mod cluster;
pub mod config;
#[cfg(test)]
mod harness;
pub mod log;
pub mod model;
pub mod notify;
pub mod path;
pub mod relay;
pub mod runtime;
pub mod server;
pub mod session;
pub mod transport;
pub mod web;
pub mod wire;
