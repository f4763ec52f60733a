//! What a shard's endpoint dropped, refused or answered statelessly, counted: every Initial
//! that does not become a connection ends up in exactly one of these (the shard prints them
//! on its "shard stopped" line).

use std::cell::Cell;

/// The endpoint's counters since start-up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Connections accepted (client Initials that got connection state).
    pub accepted: u64,
    /// Packets handed to another shard.
    pub forwarded: u64,
    /// Datagrams that would have started a connection but were under 1200 bytes.
    pub short_initials: u64,
    /// Datagrams without a QUIC header we could read.
    pub undecodable: u64,
    /// Non-Initial packets for no connection we know.
    pub unknown_connection: u64,
    /// Initials that do not open with their destination id's keys (random bytes behind a
    /// valid header), dropped before any reply.
    pub forged_initials: u64,
    /// Initials that would have been answered with a Retry or Version Negotiation but found
    /// the shard's (or their address slot's) budget of stateless replies spent.
    pub stateless_replies_shed: u64,
    /// Initials of a version we do not speak, answered with Version Negotiation.
    pub version_negotiations: u64,
    /// Retry packets sent instead of accepting.
    pub retries: u64,
    /// Initials whose token we did not issue (or not for that address and id), dropped.
    pub tokens_invalid: u64,
    /// Initials whose token was ours but too old, dropped.
    pub tokens_expired: u64,
    /// Initials refused because the shard held its connection limit.
    pub connection_limit: u64,
    /// Initials refused because their IP had too many handshakes in flight (or, with
    /// Retry off, the shard had too many unproven ones).
    pub handshakes_refused: u64,
    /// Initials quiche would not accept.
    pub accept_failed: u64,
    /// Handshakes closed for not completing within the handshake timeout.
    pub handshakes_timed_out: u64,
    /// Connections that held a send back at least once because the client's address was not
    /// validated and it would have taken what we sent past three times what it sent us.
    pub amplification_limited: u64,
}

/// The live counters (one shard, one thread).
#[derive(Default)]
pub struct Counters(Cell<EndpointStats>);

impl Counters {
    /// Adds one to the field `pick` chooses.
    pub fn bump(&self, pick: impl FnOnce(&mut EndpointStats) -> &mut u64) {
        let mut stats = self.0.get();
        let field = pick(&mut stats);
        *field = field.saturating_add(1);
        self.0.set(stats);
    }

    pub fn get(&self) -> EndpointStats {
        self.0.get()
    }
}
