//! The relay against hostile peers on the open internet: each attack of issue 17 at a scale
//! that runs in seconds, against a real relay process on loopback, asserting a bound on what
//! the attacker can make it hold and that a well-behaved viewer keeps receiving.
//!
//! One file per surface the attacker reaches.

#[path = "../common/mod.rs"]
mod common;

mod http;
mod logging;
mod media;
mod quic;
mod session;
