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
mod memory;
mod quic;
mod session;

use std::sync::{Mutex, MutexGuard};

/// Runs attacks one after another. Each one loads the machine on purpose (floods, hundreds of
/// streams, memory), and the bounds it asserts (a bystander's longest gap, RSS growth) are about
/// what its own attack costs, not what another attack running beside it on the same two cores
/// costs. A test that failed leaves the lock poisoned; the next one takes it anyway.
pub fn one_attack_at_a_time() -> MutexGuard<'static, ()> {
    static ATTACK: Mutex<()> = Mutex::new(());
    ATTACK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
