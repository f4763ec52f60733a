//! [`RuntimeError`]: everything that can stop the runtime from starting or make it end badly,
//! each with the context needed to act on it (which shard, which address, what the OS said).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// Which kind of socket a bind error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketKind {
    /// A UDP socket.
    Udp,
    /// A TCP listener.
    Tcp,
}

impl fmt::Display for SocketKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketKind::Udp => f.write_str("UDP"),
            SocketKind::Tcp => f.write_str("TCP"),
        }
    }
}

/// Why [`crate::run`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum RuntimeError {
    /// A configuration value is out of range.
    InvalidConfig(String),
    /// More shards were requested than the runtime can run.
    TooManyShards {
        /// Shards requested.
        requested: usize,
        /// The limit that was exceeded.
        limit: usize,
        /// What the limit is (for example "CPUs available for pinning").
        reason: &'static str,
    },
    /// A socket could not be created, configured or bound.
    Bind {
        /// UDP or TCP.
        kind: SocketKind,
        /// The address as configured.
        addr: SocketAddr,
        /// The shard whose socket failed (the first shard binds port 0, later ones reuse it).
        shard: usize,
        /// The operation that failed (`bind`, `listen`, `set SO_REUSEPORT`, ...).
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// A shard's executor (thread, io_uring rings, CPU pinning) could not be created.
    Executor {
        /// The shard.
        shard: usize,
        /// The CPU it was to be pinned to, if any.
        cpu: Option<usize>,
        /// What went wrong.
        message: String,
    },
    /// A shard failed during start-up after its executor was running.
    ShardStart {
        /// The shard.
        shard: usize,
        /// What went wrong.
        message: String,
    },
    /// Not every shard became ready within [`crate::RuntimeConfig::startup_timeout`].
    StartupTimeout {
        /// The timeout that expired.
        timeout: Duration,
        /// The shards that had not reported ready.
        pending: Vec<usize>,
    },
    /// A shard panicked. The other shards were asked to stop.
    ShardPanicked {
        /// The shard.
        shard: usize,
        /// The panic message, when it was a string.
        message: String,
    },
    /// Signal handling could not be set up.
    Signals(io::Error),
    /// Some other OS-level set-up step failed.
    Io {
        /// The step.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuntimeError::InvalidConfig(msg) => write!(f, "invalid runtime configuration: {msg}"),
            RuntimeError::TooManyShards {
                requested,
                limit,
                reason,
            } => write!(
                f,
                "{requested} shards requested, but at most {limit} are possible ({reason})"
            ),
            RuntimeError::Bind {
                kind,
                addr,
                shard,
                op,
                source,
            } => write!(
                f,
                "cannot bind {kind} socket on {addr} (shard {shard}, {op}): {source}"
            ),
            RuntimeError::Executor {
                shard,
                cpu: Some(cpu),
                message,
            } => write!(
                f,
                "cannot start the executor of shard {shard} on CPU {cpu}: {message}"
            ),
            RuntimeError::Executor {
                shard,
                cpu: None,
                message,
            } => write!(f, "cannot start the executor of shard {shard}: {message}"),
            RuntimeError::ShardStart { shard, message } => {
                write!(f, "shard {shard} failed to start: {message}")
            }
            RuntimeError::StartupTimeout { timeout, pending } => write!(
                f,
                "shards {pending:?} did not become ready within {:.1}s",
                timeout.as_secs_f64()
            ),
            RuntimeError::ShardPanicked { shard, message } => {
                write!(f, "shard {shard} panicked: {message}")
            }
            RuntimeError::Signals(e) => write!(f, "cannot set up signal handling: {e}"),
            RuntimeError::Io { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for RuntimeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RuntimeError::Bind { source, .. } | RuntimeError::Io { source, .. } => Some(source),
            RuntimeError::Signals(e) => Some(e),
            _ => None,
        }
    }
}
