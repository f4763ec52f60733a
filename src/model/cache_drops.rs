//! What the track caches of one shard refused or threw away, counted as it happens.
//!
//! Every such drop is also visible in the protocol (a group stream reset towards viewers, a
//! publisher's group stream stopped); these counters say how often, for the shard's stop
//! line and for tests.

use std::cell::Cell;

/// A snapshot of [`CacheCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheDrops {
    /// Open groups reset (`Evicted`) because their track went over its byte budget.
    pub groups_evicted: u64,
    /// Groups reset (`GroupTooLarge`) because they would pass the per-group cap; from a
    /// publisher, its group stream is stopped too.
    pub groups_too_large: u64,
    /// Payload bytes that arrived for a group no longer cached (evicted, reset or unknown)
    /// and were discarded.
    pub bytes_discarded: u64,
}

/// Live counters, shared by every track of a shard.
#[derive(Debug, Default)]
pub struct CacheCounters {
    drops: Cell<CacheDrops>,
}

impl CacheCounters {
    /// Counts one open group evicted for the track's byte budget.
    pub fn group_evicted(&self) {
        self.update(|d| d.groups_evicted += 1);
    }

    /// Counts one group reset for passing the per-group cap.
    pub fn group_too_large(&self) {
        self.update(|d| d.groups_too_large += 1);
    }

    /// Counts `bytes` of payload thrown away.
    pub fn discarded(&self, bytes: usize) {
        self.update(|d| d.bytes_discarded = d.bytes_discarded.saturating_add(bytes as u64));
    }

    /// The counts so far.
    pub fn get(&self) -> CacheDrops {
        self.drops.get()
    }

    fn update(&self, f: impl FnOnce(&mut CacheDrops)) {
        let mut drops = self.drops.get();
        f(&mut drops);
        self.drops.set(drops);
    }
}
