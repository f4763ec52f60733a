//! The relay as one shard runs it: the shard-local state (announced set, track entries,
//! owned broadcasts, sessions) and the mesh traffic that keeps shards in step.
//!
//! A broadcast path hashes to an owning shard. The owner keeps the routes, the one upstream
//! subscription per track and the authoritative cache; every other shard with subscribers
//! keeps a replica fed over the data lane, so a group crosses each core boundary once.

mod data_outbox;
mod messages;
mod outbox;
mod owner;
mod shard;
mod tracks;

pub use data_outbox::{DataDrops, DataOutbox};
pub use messages::{Control, Data, SessionRef};
pub use shard::{MeshDrops, MeshPort, RelayConfig, RelayShard, UpstreamInbox, UpstreamRequest};
pub use tracks::TrackHandle;
