//! What every session on a shard shares: the shard's relay state, who may do what, the
//! limits a peer's session is held to, and the counters of what those limits refused.

use crate::auth::Auth;
use crate::relay::RelayShard;
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

/// What every session on a shard shares.
pub struct SessionEnv {
    pub shard: Rc<RelayShard>,
    pub auth: Auth,
    pub limits: SessionLimits,
    pub counters: SessionCounters,
}

impl SessionEnv {
    /// The environment of a shard's sessions, with fresh counters.
    pub fn new(shard: Rc<RelayShard>, auth: Auth, limits: SessionLimits) -> Self {
        Self {
            shard,
            auth,
            limits,
            counters: SessionCounters::default(),
        }
    }
}

/// `limits.setup_timeout` unless configured: how long a connection may take to start its
/// session (moq-lite SETUP, WebTransport CONNECT, QMux parameters).
pub const DEFAULT_SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Bounds on what one peer may make a session hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// A connection whose session is not authorized this long after it started is closed.
    pub setup_timeout: Duration,
    /// Bytes a connection may receive before its session is authorized (handshake, SETUP,
    /// CONNECT and early requests included); more closes it.
    pub pre_auth_bytes: u64,
    /// Bytes of partial control messages (announce, subscribe, track requests) one session
    /// may hold across all its streams; more closes the session.
    pub control_bytes: usize,
    /// Bytes one session may hold in receive buffers of every kind (control and media);
    /// more closes the session.
    pub session_bytes: usize,
    /// ANNOUNCE requests one session may have open at once; more are refused.
    pub announce_requests: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            setup_timeout: DEFAULT_SETUP_TIMEOUT,
            pre_auth_bytes: 64 * 1024,
            control_bytes: 2 << 20,
            session_bytes: 64 << 20,
            announce_requests: 16,
        }
    }
}

/// What a shard's session limits refused or dropped, printed when the shard stops.
#[derive(Default, Debug)]
pub struct SessionCounters {
    /// Sessions closed for not authorizing (SETUP) within the setup timeout.
    pub setup_timeouts: Cell<u64>,
    /// HTTP/3 connections closed for sending no CONNECT within the setup timeout, and
    /// WebSocket connections closed for sending no QMux parameters within it.
    pub connect_timeouts: Cell<u64>,
    /// Connections closed for sending more than the pre-authorization byte limit.
    pub pre_auth_overflows: Cell<u64>,
    /// Sessions closed for holding more than their control or session buffer budget.
    pub budget_closes: Cell<u64>,
    /// Peer streams refused before authorization (beyond the early-stream limit).
    pub early_streams_refused: Cell<u64>,
    /// ANNOUNCE requests refused beyond the per-session limit.
    pub announce_requests_refused: Cell<u64>,
    /// QUIC datagrams received and dropped (moq-lite has no use for them yet).
    pub datagrams_dropped: Cell<u64>,
}

impl SessionCounters {
    /// Adds one to `counter`.
    pub fn bump(counter: &Cell<u64>) {
        counter.set(counter.get() + 1);
    }
}
