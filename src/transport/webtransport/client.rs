//! The client role: opens the client's control stream, waits for the server's SETTINGS to
//! allow WebTransport, sends the extended CONNECT on bidi stream 0 and reports the server's
//! answer as [`Event::Accepted`] or [`Event::Refused`]. The load generator in `bench/` drives
//! sessions this way.

use super::connect::{self, ConnectResponse};
use super::error_code;
use super::frame;
use super::peers::Peer;
use super::qpack;
use super::state::{Event, Role, State, WebTransportSession};
use crate::transport::quic::QuicConnection;

impl WebTransportSession {
    /// The client side: will ask `authority` for a session at `path` (path and query),
    /// offering `protocols` in order of preference.
    pub fn client(authority: &str, path: &str, protocols: &[&str]) -> Self {
        let mut request = Vec::new();
        frame::encode_frame(
            frame::HEADERS,
            &connect::encode_request(authority, path, protocols),
            &mut request,
        );
        let role = Role::Client {
            request: Some(request),
        };
        // Bidi stream 0 is the CONNECT and uni stream 2 our control stream.
        Self::with_role(role, 4, 2)
    }

    /// Client side: sends the CONNECT once the server's SETTINGS allow WebTransport
    /// (draft-ietf-webtrans-http3 §3.1: not before).
    pub(super) fn send_connect(&mut self, conn: &mut QuicConnection) {
        let Role::Client { request } = &mut self.role else {
            return;
        };
        let Some(settings) = &self.peer_settings else {
            return;
        };
        if request.is_none() || self.state != State::AwaitingConnect {
            return;
        }
        if !settings.supports_webtransport() {
            self.fail(
                conn,
                error_code::H3_SETTINGS_ERROR,
                "the server's SETTINGS do not enable WebTransport",
            );
            return;
        }
        let Some(request) = request.take() else {
            return;
        };
        self.outbox.queue(0, request, false);
        self.session_id = Some(0);
        self.state = State::Requested;
        self.peers.insert(
            0,
            Peer::Connect {
                buf: Vec::new(),
                capsules: Vec::new(),
            },
        );
    }

    /// The HEADERS answering our CONNECT: 2xx establishes the session, another status ends
    /// it, a malformed answer fails the connection (`None`: the stream is done).
    pub(super) fn on_response(
        &mut self,
        conn: &mut QuicConnection,
        id: u64,
        payload: &[u8],
    ) -> Option<()> {
        let response = qpack::decode(payload)
            .map_err(|_| "bad QPACK field section")
            .and_then(|h| ConnectResponse::from_headers(&h));
        match response {
            Ok(r) if r.is_success() => {
                self.state = State::Established;
                self.release_early(conn, id);
                self.events.push(Event::Accepted {
                    protocol: r.protocol,
                });
                Some(())
            }
            Ok(r) => {
                self.events.push(Event::Refused { status: r.status });
                self.state = State::Closed;
                let _ = conn.stream_send(id, &[], true);
                None
            }
            Err(reason) => {
                self.fail(conn, error_code::H3_MESSAGE_ERROR, reason);
                None
            }
        }
    }
}
