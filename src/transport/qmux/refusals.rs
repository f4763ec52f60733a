//! Counts of the WebSocket messages refused for being larger than the QMux connection could
//! take (close 1009), split by whether the peer had sent its transport parameters. The peer
//! sees the close; these counts are for the shard's log. One shard runs on one thread, so
//! the counts are the thread's.

use std::cell::Cell;

/// What was refused, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refusals {
    /// Messages over a record's size before the peer's transport parameters.
    pub oversized_before_session: u64,
    /// Messages over the cap once the peer had started.
    pub oversized: u64,
}

thread_local! {
    static REFUSALS: Cell<Refusals> = const { Cell::new(Refusals {
        oversized_before_session: 0,
        oversized: 0,
    }) };
}

/// The counts of this thread (this shard).
pub fn refusals() -> Refusals {
    REFUSALS.with(Cell::get)
}

/// Counts a message refused for its size.
pub(super) fn count_oversized(established: bool) {
    REFUSALS.with(|cell| {
        let mut refusals = cell.get();
        if established {
            refusals.oversized += 1;
        } else {
            refusals.oversized_before_session += 1;
        }
        cell.set(refusals);
    });
}
