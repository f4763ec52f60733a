//! [`WebEnv`], what the endpoints of one shard share: the shard's relay state and access rules,
//! the certificate fingerprint, the fetch deadline, the handler WebSocket upgrades go to, and
//! the shard's connection slots. Every other file of `web/` but `request.rs` and `slots.rs`
//! depends on this one; it depends on those two alone.

use super::request::Request;
use super::slots::Slots;
use crate::auth::Auth;
use crate::relay::RelayShard;
use crate::session::SessionEnv;
use glommio::net::TcpStream;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

/// The task that takes over an upgraded connection.
pub type UpgradeTask = Pin<Box<dyn Future<Output = ()>>>;

/// Takes over connections whose request asks for a WebSocket: the composition layer
/// (`server/`) answers the upgrade and runs a session on it.
pub trait UpgradeHandler {
    /// `leftover` holds the bytes the client sent after its request head.
    fn upgrade(&self, stream: TcpStream, request: Request, leftover: Vec<u8>) -> UpgradeTask;
}

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
    /// Who takes over WebSocket upgrades.
    pub upgrade: Rc<dyn UpgradeHandler>,
    /// The shard's HTTP connection slots (shared by its listeners).
    pub slots: Rc<Slots>,
}

impl WebEnv {
    pub fn new(
        session: Rc<SessionEnv>,
        fingerprint: String,
        upgrade: Rc<dyn UpgradeHandler>,
        slots: Rc<Slots>,
    ) -> Rc<Self> {
        Rc::new(Self {
            session,
            fingerprint,
            fetch_wait: FETCH_WAIT,
            upgrade,
            slots,
        })
    }

    pub fn shard(&self) -> &Rc<RelayShard> {
        &self.session.shard
    }

    pub fn auth(&self) -> &Auth {
        &self.session.auth
    }
}
