//! What the endpoint asks of the layer above it: an application to run on each connection
//! once its handshake is done. The endpoint knows nothing of moq-lite, WebTransport or auth;
//! `server/` decides by ALPN what runs, and dialers bring their own application.

use super::connection::Connection;
use std::rc::Rc;
use std::time::Instant;

/// What runs on an established connection; the endpoint's driver task polls it.
pub trait ConnectionApp {
    /// Runs after packets arrived, a timer fired, or something woke the connection.
    fn poll(&mut self, conn: &Rc<Connection>);
    /// The next time it wants to run without being woken.
    fn deadline(&self) -> Option<Instant>;
}

/// Picks the application for connections the endpoint accepted.
pub trait ConnectionHandler {
    /// A connection we accepted finished its handshake. `None` closes it as an
    /// unsupported protocol.
    fn accepted(&self, conn: &Rc<Connection>) -> Option<Box<dyn ConnectionApp>>;
}

/// Builds the application of a connection we dialed, once its handshake is done.
pub type DialedApp = Box<dyn FnOnce(&Rc<Connection>) -> Option<Box<dyn ConnectionApp>>>;
