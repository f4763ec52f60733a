//! The relay's behaviour settings every shard shares, and the fixed delays of its timers.

use crate::model::CacheLimits;
use std::time::Duration;

/// Relay behaviour settings every shard shares.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// How long a broadcast whose publisher vanished stays announced.
    pub linger: Duration,
    /// Cache bounds per track.
    pub cache: CacheLimits,
    /// Largest frame accepted from a publisher; a bigger one resets its group.
    pub max_frame_bytes: usize,
    /// Our hop id (cluster id), below 2^53.
    pub hop: u64,
    /// Media messages queued for a peer shard beyond its full data lane before media is
    /// shed (see `data_outbox.rs`); whole groups are skipped from four times this.
    pub data_backlog: usize,
    /// Control messages queued for a peer shard beyond its full control lane before new
    /// requests from sessions are refused (control itself is never dropped).
    pub control_backlog: usize,
}

/// How long an unused track stays subscribed upstream, so a TRACK followed by a SUBSCRIBE,
/// or a viewer that reconnects, reuses it instead of subscribing twice.
pub const IDLE_GRACE: Duration = Duration::from_secs(2);

/// Gap between a broadcast's `ended` and the end of its subscriptions, so viewers read the
/// unannounce before their subscriptions close.
pub const TEARDOWN_DELAY: Duration = Duration::from_millis(100);
