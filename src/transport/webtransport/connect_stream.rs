//! The CONNECT stream, whose id is the session id: the request (server) or response (client)
//! HEADERS, then capsules in DATA frames (CLOSE_WEBTRANSPORT_SESSION, DRAIN), and its FIN,
//! which ends the session. The HEADERS themselves are the roles' business (`server.rs`,
//! `client.rs`); the codecs are in `connect.rs` and `capsule.rs`.

use super::capsule::Capsule;
use super::error_code;
use super::frame::{self, is_grease, MAX_FRAME_PAYLOAD};
use super::peers::Peer;
use super::read::{read_into, MAX_BUFFER};
use super::refusals::count;
use super::state::{Event, State, WebTransportSession};
use super::H3Error;
use crate::transport::quic::QuicConnection;

impl WebTransportSession {
    /// Reads the CONNECT stream `id` as far as it goes; `None` drops it.
    pub(super) fn connect_stream(
        &mut self,
        conn: &mut QuicConnection,
        id: u64,
        mut buf: Vec<u8>,
        mut capsules: Vec<u8>,
    ) -> Option<Peer> {
        self.session_id.get_or_insert(id);
        let ended = match read_into(conn, id, &mut buf) {
            Ok(ended) => ended,
            Err(_) => {
                count(|r| &mut r.oversized);
                self.reject_with(conn, id, 400);
                return None;
            }
        };
        loop {
            let (ty, payload, used) = match frame::decode_frame(&buf, MAX_FRAME_PAYLOAD) {
                Ok(f) => f,
                Err(H3Error::Short) => break,
                Err(_) => {
                    self.reject_with(conn, id, 400);
                    return None;
                }
            };
            match (ty, &self.state) {
                (frame::HEADERS, State::Requested) if !self.is_server() => {
                    self.on_response(conn, id, payload)?;
                }
                (frame::HEADERS, State::AwaitingConnect) if self.is_server() => {
                    self.on_request(conn, id, payload)?;
                }
                // Capsules may follow the CONNECT before we answer it (Chrome sends some at once).
                (frame::DATA, State::Requested | State::Established | State::Closing { .. }) => {
                    capsules.extend_from_slice(payload);
                    if capsules.len() > MAX_BUFFER {
                        count(|r| &mut r.oversized);
                        self.fail(conn, error_code::H3_MESSAGE_ERROR, "capsule too large");
                        return None;
                    }
                }
                (ty, _) if is_grease(ty) || !matches!(ty, frame::DATA | frame::HEADERS) => {}
                _ => {
                    self.fail(
                        conn,
                        error_code::H3_FRAME_UNEXPECTED,
                        "unexpected frame on CONNECT",
                    );
                    return None;
                }
            }
            buf.drain(..used);
        }
        loop {
            match Capsule::decode(&capsules) {
                Ok((capsule, used)) => {
                    capsules.drain(..used);
                    match capsule {
                        Capsule::Close { code, reason } => {
                            self.events.push(Event::Closed { code, reason });
                            self.state = State::Closed;
                            let _ = conn.stream_send(id, &[], true);
                            return None;
                        }
                        Capsule::Drain => self.events.push(Event::Drain),
                        Capsule::Unknown(_) => {}
                    }
                }
                Err(H3Error::Short) => break,
                Err(_) => {
                    self.fail(conn, error_code::H3_MESSAGE_ERROR, "bad capsule");
                    return None;
                }
            }
        }
        if ended {
            if self.state == State::Established {
                self.events.push(Event::Closed {
                    code: 0,
                    reason: String::new(),
                });
            }
            self.state = State::Closed;
            let _ = conn.stream_send(id, &[], true);
            return None;
        }
        Some(Peer::Connect { buf, capsules })
    }
}
