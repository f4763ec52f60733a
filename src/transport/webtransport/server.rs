//! The server role: waits for the client's extended CONNECT on its first bidi stream, reports
//! it, and answers as the driver decides (200 with the chosen protocol, or a refusal status
//! and FIN), releasing the WebTransport streams that arrived before the answer.

use super::connect::{self, ConnectRequest, Rejection};
use super::frame;
use super::qpack;
use super::state::{Event, Role, State, WebTransportSession};
use crate::transport::quic::QuicConnection;

impl Default for WebTransportSession {
    fn default() -> Self {
        Self::new()
    }
}

impl WebTransportSession {
    /// The server side: waits for the client's CONNECT.
    pub fn new() -> Self {
        Self::with_role(Role::Server, 1, 3)
    }

    /// The CONNECT request's HEADERS: reported as [`Event::Connect`], or rejected at once if
    /// malformed (`None`: the stream is done).
    pub(super) fn on_request(
        &mut self,
        conn: &mut QuicConnection,
        id: u64,
        payload: &[u8],
    ) -> Option<()> {
        let request = qpack::decode(payload)
            .map_err(|_| Rejection {
                status: 400,
                reason: "bad QPACK field section",
            })
            .and_then(|h| ConnectRequest::from_headers(&h));
        match request {
            Ok(req) => {
                self.state = State::Requested;
                self.events.push(Event::Connect(req));
                Some(())
            }
            Err(rejection) => {
                self.reject_with(conn, id, rejection.status);
                self.events.push(Event::Rejected(rejection));
                None
            }
        }
    }

    /// Answers the CONNECT on stream `id` with `status` and FINs it; the session is over.
    pub(super) fn reject_with(&mut self, conn: &mut QuicConnection, id: u64, status: u16) {
        let mut out = Vec::new();
        frame::encode_frame(
            frame::HEADERS,
            &connect::encode_response(status, None),
            &mut out,
        );
        self.outbox.queue(id, out, true);
        self.outbox.flush(conn);
        self.state = State::Closed;
    }

    /// Accepts the pending CONNECT with the chosen protocol: answers 200 and releases the
    /// WebTransport streams that arrived early.
    pub fn accept(&mut self, conn: &mut QuicConnection, protocol: Option<&str>) {
        let Some(id) = self.session_id else { return };
        if self.state != State::Requested || !self.is_server() {
            return;
        }
        let mut out = Vec::new();
        frame::encode_frame(
            frame::HEADERS,
            &connect::encode_response(200, protocol),
            &mut out,
        );
        self.outbox.queue(id, out, false);
        self.state = State::Established;
        self.release_early(conn, id);
        self.outbox.flush(conn);
    }

    /// Rejects the pending CONNECT with `status` (401/403 for auth) and FINs its stream.
    pub fn reject(&mut self, conn: &mut QuicConnection, status: u16) {
        if let (Some(id), State::Requested, true) = (self.session_id, &self.state, self.is_server())
        {
            self.reject_with(conn, id, status);
        }
    }
}
