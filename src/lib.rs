//! moq-relay: a thread-per-core Media-over-QUIC relay speaking moq-lite.
//!
//! The crate is layered as `../DESIGN.md` describes: [`wire`] is the sans-IO codec,
//! [`model`] the version-agnostic relay state, [`session`] the moq-lite role logic,
//! [`transport`] the thin glommio drivers that move bytes, and [`config`] the TOML + CLI.

pub mod path;
pub mod wire;
