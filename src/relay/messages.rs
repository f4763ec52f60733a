//! What shards tell each other over the mesh.
//!
//! Control (announce, interest, upstream requests) and data (track events, misrouted
//! packets) travel on separate lanes, so control never waits behind a media backlog. Every
//! event of one track travels on the data lane, keeping a replica's view in order. Media
//! crosses as the publisher's stream delivered it: a frame's header with its first payload
//! bytes, then further chunks, each a refcounted `Bytes` (never copied).

use crate::model::{Demand, TrackEvent};
use bytes::Bytes;
use std::net::SocketAddr;

/// A session anywhere in the process: its shard and its id there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionRef {
    pub shard: usize,
    pub id: u64,
}

/// Control-lane messages.
#[derive(Debug)]
pub enum Control {
    /// Publisher shard to owner: `route` announced `path` with this hop chain.
    Announce {
        path: String,
        route: SessionRef,
        hops: Vec<u64>,
    },
    /// Publisher shard to owner: `route` no longer carries `path`. `abrupt` when the
    /// session died rather than announcing `ended` (starts the linger).
    Unannounce {
        path: String,
        route: SessionRef,
        abrupt: bool,
    },
    /// Owner to every shard: `path` is announced with this chain.
    BroadcastActive { path: String, hops: Vec<u64> },
    /// Owner to every shard: `path` ended.
    BroadcastEnded { path: String },
    /// Replica shard to owner: deliver `broadcast`/`track` events to replica `replica`.
    Interest {
        broadcast: String,
        track: String,
        from: usize,
        replica: u64,
        demand: Option<Demand>,
    },
    /// Replica shard to owner: the replica's users now want `demand` together (`None`:
    /// nothing right now).
    Demand {
        broadcast: String,
        track: String,
        from: usize,
        replica: u64,
        demand: Option<Demand>,
    },
    /// Replica shard to owner: replica `replica` is gone.
    Disinterest {
        broadcast: String,
        track: String,
        from: usize,
        replica: u64,
    },
    /// Owner to publisher shard: subscribe upstream and deliver to owner track `track_id`.
    UpstreamSubscribe {
        session: u64,
        owner: usize,
        track_id: u64,
        broadcast: String,
        track: String,
        /// `None` while only TRACK_INFO is wanted.
        demand: Option<Demand>,
    },
    /// Owner to publisher shard: the aggregate for owner track `track_id` changed.
    UpstreamUpdate {
        session: u64,
        owner: usize,
        track_id: u64,
        demand: Demand,
    },
    /// Owner to publisher shard: stop the upstream subscription of owner track `track_id`.
    UpstreamUnsubscribe {
        session: u64,
        owner: usize,
        track_id: u64,
    },
}

/// Data-lane messages.
#[derive(Debug)]
pub enum Data {
    /// One event for track entry `to` on the receiving shard.
    Track { to: u64, event: TrackEvent },
    /// A QUIC datagram that arrived on the wrong shard, for the connection's owner.
    Packet {
        from: SocketAddr,
        to: SocketAddr,
        payload: Bytes,
    },
}
