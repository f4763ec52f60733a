//! `shards`: the thread-per-core runtime of the relay. It knows nothing of MoQ.
//!
//! * [`run`] / [`Runtime`] start one glommio executor per shard (one thread each, pinned to a
//!   CPU when configured), each with its own `SO_REUSEPORT` UDP sockets and TCP listeners,
//!   build a full mesh of bounded lock-free lanes between them, and call the caller's `shard_main`
//!   on every shard with a [`Shard`].
//! * [`Shard`] is a shard's view: its id, its sockets, `send_control`/`send_data` to any other
//!   shard (two lanes so control never waits behind media), and `stopped()`.
//! * [`owner_of`] maps a key (a broadcast path) to its owning shard, stably.
//! * [`udp::UdpSocket`] is the UDP fast path: batched receive with GRO, batched send with GSO,
//!   and their fallbacks.
//! * SIGINT/SIGTERM, [`RuntimeHandle::stop`] and failures stop every shard cleanly.
//!
//! Non-executor threads talk to shards only through non-blocking primitives (crossbeam channels
//! for start-up reports, socketpairs for stop); nothing blocks inside an executor.

#![warn(missing_docs)]

pub mod bind;
mod config;
mod error;
pub mod mesh;
mod owner;
mod placement;
mod runtime;
mod shard;
mod signals;
mod stop;
pub mod udp;

pub use config::{RuntimeConfig, MAX_CHANNEL_CAPACITY, MAX_SHARDS};
pub use error::{RuntimeError, SocketKind};
pub use mesh::{MeshReceiver, MeshSendError};
pub use owner::{fnv1a64, owner_of, stable_hash};
pub use placement::{allowed_cpus, ShardPlacement};
pub use runtime::{run, ReadyInfo, Runtime, ABANDON_AFTER};
pub use shard::Shard;
pub use stop::RuntimeHandle;
