//! The version-agnostic relay model: tracks, groups and frames, the announced set, and the
//! per-broadcast state the owning shard keeps. Every wire version translates into this model
//! and out of it; nothing here knows about streams, sockets or encodings.

mod announced;
mod cache_drops;
mod demand;
mod group;
mod track;

pub use announced::{AnnounceEvent, AnnounceWatch, AnnouncedSet};
pub use cache_drops::{CacheCounters, CacheDrops};
pub use demand::Demand;
pub use group::{FrameHead, Group, GroupState};
pub use track::{CacheLimits, Track, TrackEnd, TrackEvent, TrackInfo};
