//! One QUIC connection, accepted or dialed, and what its driver task shares with the endpoint.
//!
//! The endpoint feeds packets in and wakes the task; the task runs the moq-lite session on
//! the connection's streams, flushes packets, and sleeps until the next packet, session
//! event or quiche timer.

use super::amplification::AntiAmplification;
use super::buffers::QuicConnection;
use super::streams::{QuicStreams, StreamIds};
use crate::notify::Notify;
use std::cell::RefCell;
use std::rc::Rc;

/// A QUIC connection shared between the endpoint (packets in) and its driver task.
pub struct Connection {
    pub quiche: RefCell<QuicConnection>,
    pub notify: Rc<Notify>,
    pub ids: RefCell<StreamIds>,
    /// Every connection id of ours that routes to this connection.
    pub cids: RefCell<Vec<Vec<u8>>>,
    /// Notified once the driver task has ended (the connection is closed and forgotten).
    pub ended: Rc<Notify>,
    /// What it may send before the peer's address is validated (server side).
    pub amplification: AntiAmplification,
}

impl Connection {
    pub fn new(quiche: QuicConnection, server: bool) -> Rc<Self> {
        Rc::new(Self {
            quiche: RefCell::new(quiche),
            notify: Notify::new(),
            ids: RefCell::new(StreamIds::new(server)),
            cids: RefCell::new(Vec::new()),
            ended: Notify::new(),
            amplification: AntiAmplification::new(!server),
        })
    }

    /// Runs `f` with the connection's streams.
    pub fn with_streams<R>(&self, f: impl FnOnce(&mut QuicStreams<'_>) -> R) -> R {
        let mut conn = self.quiche.borrow_mut();
        let mut ids = self.ids.borrow_mut();
        let mut streams = QuicStreams {
            conn: &mut conn,
            ids: &mut ids,
        };
        f(&mut streams)
    }

    /// Takes quiche's path events (new paths, validations, migrations, PMTU updates), which
    /// otherwise queue up for the connection's lifetime, and logs the ones an operator cares
    /// about: a client that moved to a new address, and a path that failed validation.
    pub fn drain_path_events(&self) {
        let mut conn = self.quiche.borrow_mut();
        while let Some(event) = conn.path_event_next() {
            match event {
                quiche::PathEvent::PeerMigrated(_, peer) => {
                    tracing::debug!(peer = %peer, "client moved to a new address")
                }
                quiche::PathEvent::FailedValidation(_, peer) => {
                    tracing::debug!(peer = %peer, "new client address failed validation")
                }
                _ => {}
            }
        }
    }

    /// The negotiated application protocol.
    pub fn alpn(&self) -> Vec<u8> {
        self.quiche.borrow().application_proto().to_vec()
    }
}
