//! [`WebEnv`], what the endpoints of one shard share: the shard's relay state and access rules,
//! the certificate fingerprint, the fetch deadline and the count of live connections. Every
//! other file of `web/` depends on this one; it depends on none of them.

use crate::auth::Auth;
use crate::relay::RelayShard;
use crate::session::SessionEnv;
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

/// How long a fetch waits for the broadcast, the track and the group.
pub const FETCH_WAIT: Duration = Duration::from_secs(30);

/// What the endpoints of one shard need.
pub struct WebEnv {
    /// The shard's relay state and access rules, shared with QUIC sessions.
    pub session: Rc<SessionEnv>,
    /// Lowercase hex SHA-256 of the leaf certificate's DER.
    pub fingerprint: String,
    /// How long a fetch waits for its broadcast, track and group.
    pub fetch_wait: Duration,
    /// HTTP connections open on this shard (the accept loop's limit).
    pub(super) live: Cell<usize>,
}

impl WebEnv {
    pub fn new(session: Rc<SessionEnv>, fingerprint: String) -> Rc<Self> {
        Rc::new(Self {
            session,
            fingerprint,
            fetch_wait: FETCH_WAIT,
            live: Cell::new(0),
        })
    }

    pub fn shard(&self) -> &Rc<RelayShard> {
        &self.session.shard
    }

    pub fn auth(&self) -> &Auth {
        &self.session.auth
    }
}
