//! What the relay's log may cost: lines go through a bounded queue to a writer thread, so a
//! shard never waits on stdout ([`queue`]), and a budget per call site (or per key) caps how
//! many lines peers can cause ([`limit`], applied to every event by [`callsite`]). Nothing here
//! knows about MoQ, QUIC or shards.

pub mod callsite;
pub mod limit;
pub mod queue;
pub mod thread;

pub use callsite::PerCallsiteLimit;
pub use limit::{suppressed_total, KeyedLogLimit, LogLimit};
pub use queue::{LineQueue, QueueDrain};
