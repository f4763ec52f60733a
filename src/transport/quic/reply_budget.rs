//! How many stateless replies (Retry, Version Negotiation) a shard sends. Each costs a
//! system call, and a flood of Initials that open correctly would have the shard answer
//! every one: at tens of thousands a second the sends alone fill the core, the socket
//! overflows, and viewers' packets are lost with the flood's. Past the budget an Initial is
//! dropped unanswered (its client, if real, retransmits it).
//!
//! Two token buckets: one for the shard, and one per source-address slot (addresses hashed
//! with a per-process key into a fixed table, so memory does not grow with the number of
//! addresses and an attacker cannot aim at a victim's slot). A flood from a few addresses
//! uses up its own slots, not the shard's budget, and clients elsewhere keep getting their
//! Retry; a flood from spoofed addresses everywhere meets the shard's bucket. Sans-IO: time
//! is passed in.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::Instant;

/// Stateless replies a shard sends per second, at most. A shard completes a few thousand
/// TLS handshakes a second, so this is well above what real clients can use.
pub const SHARD_REPLIES_PER_SEC: f64 = 10_000.0;
/// Replies the shard may send at once, after a quiet spell.
const SHARD_BURST: f64 = 1_000.0;
/// Stateless replies per second to one address slot.
pub const SLOT_REPLIES_PER_SEC: f64 = 500.0;
/// Replies one slot may get at once.
const SLOT_BURST: f64 = 100.0;
/// Address slots.
const SLOTS: usize = 4096;

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Option<Instant>,
}

impl Bucket {
    const fn full(burst: f64) -> Self {
        Self {
            tokens: burst,
            at: None,
        }
    }

    /// Refills for the time since the last look; whether a token is there.
    fn refill(&mut self, rate: f64, burst: f64, now: Instant) -> bool {
        if let Some(at) = self.at {
            let elapsed = now.saturating_duration_since(at).as_secs_f64();
            self.tokens = (self.tokens + elapsed * rate).min(burst);
        }
        self.at = Some(now);
        self.tokens >= 1.0
    }
}

/// One shard's budget of stateless replies.
pub struct ReplyBudget {
    shard: Bucket,
    slots: Vec<Bucket>,
    hasher: RandomState,
}

impl Default for ReplyBudget {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplyBudget {
    pub fn new() -> Self {
        Self {
            shard: Bucket::full(SHARD_BURST),
            slots: vec![Bucket::full(SLOT_BURST); SLOTS],
            hasher: RandomState::new(),
        }
    }

    /// Whether a stateless reply to `ip` may be sent at `now`; if so, it is counted.
    pub fn take(&mut self, ip: IpAddr, now: Instant) -> bool {
        let slot = (self.hasher.hash_one(ip) as usize) % SLOTS;
        let slot_ok = self.slots[slot].refill(SLOT_REPLIES_PER_SEC, SLOT_BURST, now);
        let shard_ok = self.shard.refill(SHARD_REPLIES_PER_SEC, SHARD_BURST, now);
        if !(slot_ok && shard_ok) {
            return false;
        }
        self.slots[slot].tokens -= 1.0;
        self.shard.tokens -= 1.0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(a: u8, b: u8) -> IpAddr {
        IpAddr::from([10, 0, a, b])
    }

    /// Replies granted to `from` out of `asked`, all at `now`.
    fn granted(budget: &mut ReplyBudget, from: IpAddr, asked: usize, now: Instant) -> usize {
        (0..asked).filter(|_| budget.take(from, now)).count()
    }

    #[test]
    fn one_address_gets_its_slot_burst_then_its_rate_and_others_are_unaffected() {
        let now = Instant::now();
        let mut budget = ReplyBudget::new();
        assert_eq!(
            granted(&mut budget, ip(0, 1), 1000, now),
            SLOT_BURST as usize
        );
        // Another address (another slot, unless the hash puts both in one: try a few).
        let others = (2..10).filter(|&b| budget.take(ip(0, b), now)).count();
        assert!(others >= 7, "{others} of 8 other addresses answered");
        // A second later the flooding address has one second's worth again, no more.
        let later = now + Duration::from_secs(1);
        let again = granted(&mut budget, ip(0, 1), 10_000, later);
        assert_eq!(again, SLOT_BURST as usize, "refilled up to the burst");
        let a_tenth = later + Duration::from_millis(100);
        let tenth = granted(&mut budget, ip(0, 1), 10_000, a_tenth);
        // A tenth of the rate (give or take the rounding of a tenth of a second).
        assert!((49..=50).contains(&tenth), "{tenth}");
    }

    #[test]
    fn spoofed_addresses_everywhere_meet_the_shard_budget() {
        let start = Instant::now();
        let mut budget = ReplyBudget::new();
        let mut answered = 0;
        // Two seconds of 100 000 Initials a second, each from a new address.
        for ms in 0..2000u64 {
            let now = start + Duration::from_millis(ms);
            for i in 0..100u64 {
                let n = ms * 100 + i;
                if budget.take(IpAddr::from((n as u32).to_be_bytes()), now) {
                    answered += 1;
                }
            }
        }
        let most = SHARD_BURST + 2.0 * SHARD_REPLIES_PER_SEC;
        assert!(answered as f64 <= most + 1.0, "{answered} answered");
        assert!(answered as f64 >= most * 0.95, "{answered} answered");
    }
}
