//! The relay as one shard runs it: the shard-local state (announced set, track entries,
//! owned broadcasts, sessions) and the mesh traffic that keeps shards in step, as a sans-IO
//! state machine a driver feeds with messages and time.
//!
//! A broadcast path hashes to an owning shard. The owner keeps the routes, the one upstream
//! subscription per track and the authoritative cache; every other shard with subscribers
//! keeps a replica fed over the data lane, so a group crosses each core boundary once.
//!
//! Files, with arrows pointing one way: `messages` (what crosses the mesh), `outbox` and
//! `data_outbox` (queues and the media drop policy) under `mesh` (the sending side);
//! `routes` (who can serve a path), `track_table` (entries and their demand), `upstream`
//! (session inboxes), `timers` (deadlines) and `config`, all composed by `shard`; `handle` (a
//! session's use of a track) on top. The crate's test `harness` drives several shards, with
//! sessions on them, through in-memory lanes and connections and a fake clock.

mod config;
mod data_outbox;
mod handle;
mod mesh;
mod messages;
mod outbox;
mod routes;
mod shard;
mod timers;
mod track_table;
mod upstream;

pub use config::{RelayConfig, IDLE_GRACE, TEARDOWN_DELAY};
pub use data_outbox::{DataDrops, DataOutbox};
pub use handle::TrackHandle;
pub use mesh::{Mesh, MeshDrops, MeshPort};
pub use messages::{Control, Data, SessionRef};
pub use outbox::Outbox;
pub use shard::{RelayShard, ShardStats};
pub use upstream::{UpstreamInbox, UpstreamRequest};
