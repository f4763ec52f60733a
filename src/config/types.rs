//! The resolved configuration: [`Config`] and its sections as the relay uses them, every key's
//! built-in default (the `DEFAULT_*` constants and the sections' `Default`), and the bounds the
//! builder checks values against. Nothing here reads a file or a flag; `build.rs` does.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::parse::{HostPort, MAX_HOP_ID, MAX_SHARDS};
use super::peer::PeerUrl;
use crate::auth::Jwk;
pub use crate::transport::quic::RetryMode;

/// `server.listen`: UDP `[::]:4443`.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 4443);
/// `log.level`.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// `relay.linger`.
pub const DEFAULT_LINGER: Duration = Duration::from_secs(5);
/// `relay.cache_duration`.
pub const DEFAULT_CACHE_DURATION: Duration = Duration::from_secs(30);
/// `relay.max_group_bytes`: 32 MiB.
pub const DEFAULT_MAX_GROUP_BYTES: usize = 32 << 20;
/// `relay.max_frame_bytes`: 32 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 32 << 20;
/// `quic.idle_timeout`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// `quic.keep_alive`.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(5);
/// `quic.max_streams`: moq-relay's `DEFAULT_MAX_STREAMS` (PROTOCOL.md §7.1).
pub const DEFAULT_MAX_STREAMS: u64 = 10_000;
/// `quic.handshake_timeout`: a connection not established by then is closed.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// `quic.retry`.
pub const DEFAULT_RETRY: RetryMode = RetryMode::Auto;
/// `limits.unvalidated_handshakes`: per shard.
pub const DEFAULT_UNVALIDATED_HANDSHAKES: usize = 64;
/// `limits.handshakes_per_ip`: per shard.
pub const DEFAULT_HANDSHAKES_PER_IP: usize = 32;
/// `limits.proven_handshakes_per_ip`: per shard.
pub const DEFAULT_PROVEN_HANDSHAKES_PER_IP: usize = 256;
/// Largest handshake limit accepted (the per-shard connection limit).
pub const MAX_HANDSHAKE_LIMIT: u64 = 100_000;
/// `limits.mesh_control_lane`.
pub const DEFAULT_MESH_CONTROL_LANE: usize = 1024;
/// `limits.mesh_data_lane`.
pub const DEFAULT_MESH_DATA_LANE: usize = 4096;
/// `limits.mesh_control_backlog`.
pub const DEFAULT_MESH_CONTROL_BACKLOG: usize = 1 << 16;
/// `limits.mesh_data_backlog`.
pub const DEFAULT_MESH_DATA_BACKLOG: usize = 1 << 14;
/// `limits.setup_timeout`: how long a connection may take to start its session.
pub const DEFAULT_SETUP_TIMEOUT: Duration = crate::session::DEFAULT_SETUP_TIMEOUT;
/// Largest mesh backlog accepted (2^24 messages).
pub const MAX_MESH_BACKLOG: u64 = 1 << 24;
/// Largest `quic.max_streams` QUIC can express (2^60).
pub const MAX_STREAMS_LIMIT: u64 = 1 << 60;

/// The whole, validated configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// The file it was read from, if any.
    pub file: Option<PathBuf>,
    pub log: LogConfig,
    pub server: ServerConfig,
    pub web: WebConfig,
    pub auth: AuthConfig,
    pub relay: RelayConfig,
    pub quic: QuicConfig,
    pub cluster: ClusterConfig,
    pub limits: LimitsConfig,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// A level or an `EnvFilter` directive list; `RUST_LOG` overrides it (see [`init_logging`](super::init_logging)).
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: DEFAULT_LOG_LEVEL.to_string(),
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// UDP address for QUIC (raw moq-lite and WebTransport).
    pub listen: SocketAddr,
    /// Number of shards (executors), 1 to [`MAX_SHARDS`].
    pub shards: usize,
    /// Pin each shard to a core (`--no-pin` / `server.pin = false` turn it off).
    pub pin: bool,
    pub tls: TlsConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: DEFAULT_LISTEN,
            shards: default_shards(),
            pin: true,
            tls: TlsConfig::default(),
        }
    }
}

/// The available cores (as the scheduler lets this process use them), at most [`MAX_SHARDS`].
pub fn default_shards() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_SHARDS)
}

/// `[server.tls]`: where the certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsConfig {
    /// PEM files: the chain (leaf first) and its private key (PKCS#8, SEC1 or RSA).
    Files { cert: PathBuf, key: PathBuf },
    /// A self-signed ECDSA P-256 certificate for these names, valid 14 days.
    Generate { names: Vec<String> },
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig::Generate {
            names: vec!["localhost".to_string()],
        }
    }
}

/// `[web]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebConfig {
    /// `[web.http]`: the TCP listener for HTTP and WebSocket; `None` = off.
    pub http: Option<HttpConfig>,
}

/// `[web.http]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// TCP address; defaults to `server.listen`'s.
    pub listen: SocketAddr,
}

/// `[auth]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthConfig {
    /// Normalized prefixes anyone may use without a token; `""` means everything.
    pub public: Vec<String>,
    /// JWK file with the token-verification key.
    pub key: Option<PathBuf>,
    /// That key, read and checked at start-up.
    pub jwk: Option<Jwk>,
    /// Refuse tokens without `exp` (by default `exp` is checked only when present).
    pub require_exp: bool,
}

/// `[relay]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// How long a broadcast stays announced after its publisher vanished (may be zero).
    pub linger: Duration,
    /// Cap on how long non-latest groups are kept.
    pub cache_duration: Duration,
    /// Per-group cache cap in bytes.
    pub max_group_bytes: usize,
    /// Largest frame accepted, in bytes (at most `max_group_bytes`).
    pub max_frame_bytes: usize,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            linger: DEFAULT_LINGER,
            cache_duration: DEFAULT_CACHE_DURATION,
            max_group_bytes: DEFAULT_MAX_GROUP_BYTES,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
        }
    }
}

/// `[limits]`: bounds an operator may tune.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Messages one control lane of the mesh holds (per ordered pair of shards).
    pub mesh_control_lane: usize,
    /// Messages one data lane of the mesh holds.
    pub mesh_data_lane: usize,
    /// Control messages queued behind a full lane before sessions' new requests are refused.
    pub mesh_control_backlog: usize,
    /// Media messages queued behind a full lane before groups are reset for that shard.
    pub mesh_data_backlog: usize,
    /// A connection whose session (SETUP, CONNECT, QMux parameters) has not started this
    /// long after the handshake is closed.
    pub setup_timeout: Duration,
    /// Unproven handshakes in flight (or begun within a second) on a shard before new
    /// clients must answer a Retry (or are refused with `quic.retry = "never"`).
    pub unvalidated_handshakes: usize,
    /// Unproven handshakes in flight from one IP on a shard.
    pub handshakes_per_ip: usize,
    /// Proven handshakes (the client answered a Retry) in flight from one IP on a shard.
    pub proven_handshakes_per_ip: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            mesh_control_lane: DEFAULT_MESH_CONTROL_LANE,
            mesh_data_lane: DEFAULT_MESH_DATA_LANE,
            mesh_control_backlog: DEFAULT_MESH_CONTROL_BACKLOG,
            mesh_data_backlog: DEFAULT_MESH_DATA_BACKLOG,
            setup_timeout: DEFAULT_SETUP_TIMEOUT,
            unvalidated_handshakes: DEFAULT_UNVALIDATED_HANDSHAKES,
            handshakes_per_ip: DEFAULT_HANDSHAKES_PER_IP,
            proven_handshakes_per_ip: DEFAULT_PROVEN_HANDSHAKES_PER_IP,
        }
    }
}

/// `[quic]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuicConfig {
    pub idle_timeout: Duration,
    /// PING interval for quiet connections, shorter than `idle_timeout`.
    pub keep_alive: Duration,
    /// Initial bidi and uni stream credit.
    pub max_streams: u64,
    /// A connection whose handshake has not completed by then is closed.
    pub handshake_timeout: Duration,
    /// When clients must answer a stateless Retry first.
    pub retry: RetryMode,
}

impl Default for QuicConfig {
    fn default() -> Self {
        QuicConfig {
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            keep_alive: DEFAULT_KEEP_ALIVE,
            max_streams: DEFAULT_MAX_STREAMS,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            retry: DEFAULT_RETRY,
        }
    }
}

/// `[cluster]` (PROTOCOL.md §10.1): accepted and validated; used by the cluster module.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterConfig {
    /// The root's address; `None` (or equal to `node`) makes this relay the root.
    pub root: Option<HostPort>,
    /// This relay's address as other relays dial it.
    pub node: Option<HostPort>,
    /// The stable hop id, if configured (1 to [`MAX_HOP_ID`]).
    pub id: Option<u64>,
    /// Relays this one dials and peers with.
    pub peers: Vec<PeerUrl>,
}

impl ClusterConfig {
    /// Whether this relay is the cluster root.
    pub fn is_root(&self) -> bool {
        match (&self.root, &self.node) {
            (None, _) => true,
            (Some(root), node) => Some(root) == node.as_ref(),
        }
    }

    /// A random hop id in 1..=[`MAX_HOP_ID`], for when `id` is unset.
    pub fn random_id() -> u64 {
        rand::random_range(1..=MAX_HOP_ID)
    }
}
