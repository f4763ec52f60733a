//! Counts of what the HTTP/3 layer of this thread's shard refused to hold for a peer before
//! its WebTransport session existed: streams beyond the early limits, a second QPACK stream
//! of a kind, CONNECT heads and capsules over the buffer bound. Each refusal is also visible
//! to the peer (a refused stream, or a closed connection); these counts are for the shard's
//! log. One shard runs on one thread, so the counts are the thread's.

use std::cell::Cell;

/// What was refused, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refusals {
    /// WebTransport streams refused because [`MAX_EARLY_STREAMS`] were already waiting.
    ///
    /// [`MAX_EARLY_STREAMS`]: super::session::MAX_EARLY_STREAMS
    pub early_streams: u64,
    /// Early WebTransport streams refused because the session's early bytes were used up.
    pub early_bytes: u64,
    /// Streams refused because too many stream headers were incomplete at once.
    pub pending_headers: u64,
    /// Connections closed for a second QPACK encoder or decoder stream.
    pub qpack_streams: u64,
    /// CONNECT heads (400) and capsule sequences (connection closed) over the buffer bound.
    pub oversized: u64,
}

thread_local! {
    static REFUSALS: Cell<Refusals> = const { Cell::new(Refusals {
        early_streams: 0,
        early_bytes: 0,
        pending_headers: 0,
        qpack_streams: 0,
        oversized: 0,
    }) };
}

/// The counts of this thread (this shard).
pub fn refusals() -> Refusals {
    REFUSALS.with(Cell::get)
}

/// Counts one refusal.
pub(super) fn count(kind: impl FnOnce(&mut Refusals) -> &mut u64) {
    REFUSALS.with(|cell| {
        let mut refusals = cell.get();
        *kind(&mut refusals) += 1;
        cell.set(refusals);
    });
}
