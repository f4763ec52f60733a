//! The state of one connection's HTTP/3 and WebTransport session: the [`WebTransportSession`]
//! value every other part of the module reads and writes, the [`Event`]s it reports, and the
//! few helpers they all share (failing the connection, refusing a stream).

use super::connect::{ConnectRequest, Rejection};
use super::outbox::Outbox;
use super::peers::Peers;
use super::settings::Settings;
use crate::transport::quic::QuicConnection;

/// What `drive` reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A valid CONNECT: answer with `accept` or `reject`.
    Connect(ConnectRequest),
    /// A malformed CONNECT, already answered with this status.
    Rejected(Rejection),
    /// The peer asked us to finish up (DRAIN_WEBTRANSPORT_SESSION).
    Drain,
    /// The peer closed the session (a capsule, or a FIN on the CONNECT stream as code 0).
    Closed { code: u32, reason: String },
    /// Client side: the server accepted our CONNECT, naming this protocol (`wt-protocol`).
    Accepted { protocol: Option<String> },
    /// Client side: the server answered our CONNECT with this non-2xx status.
    Refused { status: u16 },
}

/// Which end of the connection we are.
#[derive(Debug)]
pub(super) enum Role {
    Server,
    /// The CONNECT's HEADERS frame, until it is sent.
    Client {
        request: Option<Vec<u8>>,
    },
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum State {
    AwaitingConnect,
    Requested,
    Established,
    Closing { code: u64, reason: String },
    Closed,
}

/// The HTTP/3 and WebTransport state of one connection.
#[derive(Debug)]
pub struct WebTransportSession {
    pub(super) role: Role,
    pub(super) state: State,
    pub(super) session_id: Option<u64>,
    pub(super) control_opened: bool,
    pub(super) peer_settings: Option<Settings>,
    pub(super) peers: Peers,
    /// Bytes still to write on our own streams (control, CONNECT, opened headers), with FIN.
    pub(super) outbox: Outbox,
    pub(super) events: Vec<Event>,
    pub(super) next_bidi: u64,
    pub(super) next_uni: u64,
}

impl WebTransportSession {
    /// A session of `role` that has not started, opening its own streams from these ids.
    pub(super) fn with_role(role: Role, next_bidi: u64, next_uni: u64) -> Self {
        Self {
            role,
            state: State::AwaitingConnect,
            session_id: None,
            control_opened: false,
            peer_settings: None,
            peers: Peers::default(),
            outbox: Outbox::default(),
            events: Vec::new(),
            next_bidi,
            next_uni,
        }
    }

    pub(super) fn is_server(&self) -> bool {
        matches!(self.role, Role::Server)
    }

    /// Whether the peer opened stream `id` (bit 0 is set on server-initiated streams).
    pub(super) fn is_peer_initiated(&self, id: u64) -> bool {
        (id & 1 == 0) == self.is_server()
    }

    /// The session id (the CONNECT stream id) once a CONNECT arrived.
    pub fn session_id(&self) -> Option<u64> {
        self.session_id
    }

    /// The peer's SETTINGS, once read.
    pub fn peer_settings(&self) -> Option<&Settings> {
        self.peer_settings.as_ref()
    }

    /// Whether the session is accepted and not closing.
    pub fn is_established(&self) -> bool {
        self.state == State::Established
    }

    /// Whether the session is over (closed by either side).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed | State::Closing { .. })
    }

    /// Once the session is over, the CONNECTION_CLOSE (code, reason) the driver should send
    /// after its linger: the mapped code of our own close, else `None` for the driver's default.
    pub fn connection_close(&self) -> Option<(u64, &str)> {
        match &self.state {
            State::Closing { code, reason } => Some((*code, reason.as_str())),
            _ => None,
        }
    }

    /// Closes the QUIC connection at once with an HTTP/3 error.
    pub(super) fn fail(&mut self, conn: &mut QuicConnection, code: u64, reason: &str) {
        let _ = conn.close(true, code, reason.as_bytes());
        self.state = State::Closed;
    }

    /// Refuses a peer stream: STOP_SENDING, and RESET_STREAM too on a bidi stream.
    pub(super) fn refuse(&mut self, conn: &mut QuicConnection, id: u64, code: u64) {
        let _ = conn.stream_shutdown(id, quiche::Shutdown::Read, code);
        if id & 2 == 0 {
            let _ = conn.stream_shutdown(id, quiche::Shutdown::Write, code);
        }
    }

    /// The session `id` is established: the WebTransport streams that arrived early become
    /// readable (those of another session are refused).
    pub(super) fn release_early(&mut self, conn: &mut QuicConnection, id: u64) {
        for sid in self.peers.release_early(id) {
            self.refuse(conn, sid, super::error_code::H3_ID_ERROR);
        }
    }
}
