//! One WebTransport session on a quiche connection with ALPN `h3`, presented to moq-lite as
//! [`crate::transport::Streams`] (PROTOCOL.md §7.2) through [`WebTransportStreams`].
//!
//! [`WebTransportSession`] holds the HTTP/3 state; [`WebTransportStreams`] borrows it with the
//! connection, like `QuicStreams` does for raw QUIC. The driver calls
//! [`WebTransportSession::drive`] after every batch of received packets: it opens our control
//! stream, reads the peer's control and QPACK streams, the CONNECT request and the headers of
//! new WebTransport streams, and reports the CONNECT as an [`Event`]; the driver answers with
//! [`WebTransportSession::accept`] or [`WebTransportSession::reject`] (it owns auth). Streams
//! moq-lite owns are handed out by `next_readable` only once their header has been read.
//!
//! The same state machine runs the client side ([`WebTransportSession::client`]).
//!
//! Only one session per connection (the CONNECT on the client's first bidi stream). Closing
//! writes CLOSE_WEBTRANSPORT_SESSION in a DATA frame and FINs the CONNECT stream; a refusal
//! writes the status and FINs. The QUIC CONNECTION_CLOSE is the driver's, after a linger
//! (§7.2 step 8 asks for about 3·RTT): quiche drops unsent stream data once it closes, so
//! closing at once would lose the capsule or the refusal. See
//! [`WebTransportSession::connection_close`].
//!
//! This file drives the parts and gives [`WebTransportStreams`] the narrow set of methods it
//! needs; the parts are the session's state (`state.rs`), the roles (`server.rs`,
//! `client.rs`), demultiplexing (`demux.rs`, over the table in `peers.rs`), the control
//! streams (`control.rs`), the CONNECT stream (`connect_stream.rs`) and our pending writes
//! (`outbox.rs`).
//!
//! [`WebTransportStreams`]: super::WebTransportStreams

use super::capsule::Capsule;
use super::error_code;
use super::frame;
use super::header;
use super::state::State;
use crate::transport::quic::QuicConnection;
use crate::transport::streams::{StreamError, StreamId};

pub use super::peers::MAX_EARLY_STREAMS;
pub use super::state::{Event, WebTransportSession};

impl WebTransportSession {
    /// Moves the HTTP/3 side forward; returns what happened since the last call.
    pub fn drive(&mut self, conn: &mut QuicConnection) -> Vec<Event> {
        if !conn.is_established() && !conn.is_in_early_data() {
            return Vec::new();
        }
        self.open_control();
        while let Some(id) = conn.stream_readable_next() {
            self.on_readable(conn, id);
        }
        self.send_connect(conn);
        self.outbox.flush(conn);
        std::mem::take(&mut self.events)
    }

    /// Opens a WebTransport stream of the established session, its header queued first.
    pub(super) fn open_stream(
        &mut self,
        conn: &mut QuicConnection,
        bidi: bool,
    ) -> Result<StreamId, StreamError> {
        let Some(session) = self.session_id.filter(|_| self.is_established()) else {
            return Err(StreamError::Gone);
        };
        let left = if bidi {
            conn.peer_streams_left_bidi()
        } else {
            conn.peer_streams_left_uni()
        };
        if left == 0 {
            return Err(StreamError::Blocked);
        }
        let mut out = Vec::new();
        let id = if bidi {
            header::encode_bidi(session, &mut out);
            let id = self.next_bidi;
            self.next_bidi += 4;
            id
        } else {
            header::encode_uni(session, &mut out);
            let id = self.next_uni;
            self.next_uni += 4;
            id
        };
        self.outbox.queue(id, out, false);
        self.outbox.flush(conn);
        Ok(id)
    }

    /// Whether the header of a stream we opened is all written (flushing it if not), so
    /// payload may follow.
    pub(super) fn header_written(&mut self, conn: &mut QuicConnection, id: StreamId) -> bool {
        if self.outbox.is_pending(id) {
            self.outbox.flush(conn);
            return !self.outbox.is_pending(id);
        }
        true
    }

    /// Whether moq-lite may read stream `id`: ours, or the peer's once its header was read.
    pub(super) fn is_handed_out(&self, id: StreamId) -> bool {
        !self.is_peer_initiated(id) || self.peers.is_ready(id)
    }

    /// moq-lite is done reading stream `id` (it ended, failed or was stopped).
    pub(super) fn forget(&mut self, id: StreamId) {
        self.peers.forget(id);
    }

    /// Copies bytes stream `id` sent before the session was accepted: `None` once none are
    /// left, else the count and whether they end the stream.
    pub(super) fn read_held(&mut self, id: StreamId, buf: &mut [u8]) -> Option<(usize, bool)> {
        self.peers.read_held(id, buf)
    }

    /// moq-lite reset stream `id`: its header need not be written any more.
    pub(super) fn abandon(&mut self, id: StreamId) {
        self.outbox.discard(id);
    }

    /// The next stream moq-lite should read, demultiplexing readable streams as it goes.
    pub(super) fn next_readable(&mut self, conn: &mut QuicConnection) -> Option<StreamId> {
        loop {
            if let Some(id) = self.peers.pop_readable() {
                return Some(id);
            }
            let id = conn.stream_readable_next()?;
            self.on_readable(conn, id);
        }
    }

    /// Closes the session with a WebTransport `code`: CLOSE_WEBTRANSPORT_SESSION and FIN on
    /// the CONNECT stream, or at once the connection if no session was ever asked for.
    pub(super) fn close(&mut self, conn: &mut QuicConnection, code: u64, reason: &str) {
        let Some(id) = self.session_id else {
            let _ = conn.close(true, code, reason.as_bytes());
            self.state = State::Closed;
            return;
        };
        if self.is_closed() {
            return;
        }
        let mut capsule = Vec::new();
        Capsule::Close {
            code: u32::try_from(code).unwrap_or(u32::MAX),
            reason: reason.to_string(),
        }
        .encode(&mut capsule);
        let mut out = Vec::new();
        frame::encode_frame(frame::DATA, &capsule, &mut out);
        self.outbox.queue(id, out, true);
        self.outbox.flush(conn);
        self.state = State::Closing {
            code: error_code::stream_code_to_http3(code),
            reason: reason.to_string(),
        };
    }
}
