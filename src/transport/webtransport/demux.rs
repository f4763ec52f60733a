//! Stream demultiplexing: every readable quiche stream is read just far enough to learn
//! whose it is (a uni stream's type, a bidi stream's first varint, a WebTransport stream's
//! session id) and handed on: to the control stream, to the CONNECT stream, to moq-lite once
//! the session is established (held as early until then), or discarded or refused.

use super::error_code;
use super::header;
use super::peers::{Peer, MAX_EARLY_BYTES, MAX_EARLY_STREAMS, MAX_PENDING_HEADERS};
use super::read::{read_varint, Varint};
use super::refusals::count;
use super::state::{State, WebTransportSession};
use super::stream_type::{classify, UniStream};
use crate::transport::quic::QuicConnection;

impl WebTransportSession {
    /// Stream `id` has data (or ended): runs it forward, or queues it for moq-lite.
    pub(super) fn on_readable(&mut self, conn: &mut QuicConnection, id: u64) {
        let peer_initiated = self.is_peer_initiated(id);
        let bidi = id & 2 == 0;
        let state = match self.peers.take(id) {
            Some(state) => state,
            None if !peer_initiated => {
                self.peers.mark_readable(id);
                return;
            }
            None if !bidi => Peer::UniType(Vec::new()),
            None => Peer::BidiType(Vec::new()),
        };
        let Some(next) = self.advance(conn, id, state) else {
            return;
        };
        if next.is_pending_header() && self.peers.pending_headers() >= MAX_PENDING_HEADERS {
            count(|r| &mut r.pending_headers);
            self.refuse(conn, id, error_code::H3_REQUEST_REJECTED);
            return;
        }
        self.peers.insert(id, next);
    }

    /// Runs a peer stream's state machine as far as its data goes; `None` drops the stream.
    fn advance(&mut self, conn: &mut QuicConnection, id: u64, state: Peer) -> Option<Peer> {
        let mut state = state;
        loop {
            state = match state {
                Peer::UniType(mut part) => match read_varint(conn, id, &mut part) {
                    Varint::Pending => return Some(Peer::UniType(part)),
                    Varint::Ended => return None,
                    Varint::Done(ty) => match classify(ty) {
                        UniStream::Control => {
                            if self.peers.has_control() {
                                self.fail(
                                    conn,
                                    error_code::H3_STREAM_CREATION_ERROR,
                                    "second control stream",
                                );
                                return None;
                            }
                            self.peers.control_opened();
                            Peer::Control {
                                buf: Vec::new(),
                                settings: false,
                                skip: 0,
                            }
                        }
                        UniStream::Qpack => {
                            if self.peers.qpack_opened(ty) {
                                count(|r| &mut r.qpack_streams);
                                self.fail(
                                    conn,
                                    error_code::H3_STREAM_CREATION_ERROR,
                                    "second QPACK stream of a type",
                                );
                                return None;
                            }
                            Peer::Discard
                        }
                        UniStream::WebTransport => Peer::UniSession(Vec::new()),
                        UniStream::Push => {
                            self.fail(conn, error_code::H3_ID_ERROR, "push stream");
                            return None;
                        }
                        UniStream::Ignore => {
                            let _ = conn.stream_shutdown(
                                id,
                                quiche::Shutdown::Read,
                                error_code::H3_STREAM_CREATION_ERROR,
                            );
                            return None;
                        }
                    },
                },
                Peer::BidiType(mut part) => match read_varint(conn, id, &mut part) {
                    Varint::Pending => return Some(Peer::BidiType(part)),
                    Varint::Ended => return None,
                    Varint::Done(header::BIDI) => Peer::BidiSession(Vec::new()),
                    // The first request is the CONNECT; its first frame type is in `part`.
                    Varint::Done(_)
                        if self.is_server()
                            && self.session_id.is_none()
                            && self.state == State::AwaitingConnect =>
                    {
                        Peer::Connect {
                            buf: part,
                            capsules: Vec::new(),
                        }
                    }
                    Varint::Done(_) => {
                        self.refuse(conn, id, error_code::H3_REQUEST_REJECTED);
                        return None;
                    }
                },
                Peer::UniSession(mut part) | Peer::BidiSession(mut part) => {
                    let bidi = id & 2 == 0;
                    match read_varint(conn, id, &mut part) {
                        Varint::Pending if bidi => return Some(Peer::BidiSession(part)),
                        Varint::Pending => return Some(Peer::UniSession(part)),
                        Varint::Ended => return None,
                        Varint::Done(session) => match self.on_header(conn, id, session) {
                            // Read what it sent so far, within the early bounds.
                            Some(early @ Peer::Early { .. }) => early,
                            other => return other,
                        },
                    }
                }
                Peer::Control {
                    buf,
                    settings,
                    skip,
                } => return self.control_stream(conn, id, buf, settings, skip),
                Peer::Discard => {
                    let mut sink = [0u8; 1024];
                    loop {
                        match conn.stream_recv(id, &mut sink) {
                            Ok((_, false)) => continue,
                            Ok((_, true)) => return None,
                            Err(quiche::Error::Done) => return Some(Peer::Discard),
                            Err(_) => return None,
                        }
                    }
                }
                Peer::Connect { buf, capsules } => {
                    return self.connect_stream(conn, id, buf, capsules)
                }
                Peer::Early { session, held, fin } => {
                    return self.hold_early(conn, id, session, held, fin)
                }
                Peer::Ready => {
                    self.peers.mark_readable(id);
                    return Some(Peer::Ready);
                }
            };
        }
    }

    /// A WebTransport stream of `session`: moq-lite's if the session is established, held
    /// (up to [`MAX_EARLY_STREAMS`]) until it is, refused if it is another session's.
    fn on_header(&mut self, conn: &mut QuicConnection, id: u64, session: u64) -> Option<Peer> {
        if Some(session) != self.session_id && self.session_id.is_some() {
            self.refuse(conn, id, error_code::H3_ID_ERROR);
            return None;
        }
        match self.state {
            State::Established if Some(session) == self.session_id => {
                self.peers.mark_readable(id);
                Some(Peer::Ready)
            }
            State::AwaitingConnect | State::Requested => {
                if self.peers.early_count() >= MAX_EARLY_STREAMS {
                    count(|r| &mut r.early_streams);
                    self.refuse(conn, id, error_code::H3_REQUEST_REJECTED);
                    return None;
                }
                // The session id is checked again on acceptance.
                Some(Peer::Early {
                    session,
                    held: Vec::new(),
                    fin: false,
                })
            }
            _ => {
                self.refuse(conn, id, error_code::H3_REQUEST_REJECTED);
                None
            }
        }
    }

    /// Reads what an early stream sent into `held`, so QUIC does not keep it for us: the
    /// session's early streams hold at most [`MAX_EARLY_BYTES`] between them, and a stream
    /// that would take more is refused.
    fn hold_early(
        &mut self,
        conn: &mut QuicConnection,
        id: u64,
        session: u64,
        mut held: Vec<u8>,
        mut fin: bool,
    ) -> Option<Peer> {
        let mut chunk = [0u8; 4096];
        while !fin {
            match conn.stream_recv(id, &mut chunk) {
                Ok((n, end)) => {
                    held.extend_from_slice(&chunk[..n]);
                    fin = end;
                }
                Err(quiche::Error::Done) => break,
                // Reset by the peer: nothing to hand over.
                Err(_) => return None,
            }
            if self.peers.early_bytes() + held.len() > MAX_EARLY_BYTES {
                count(|r| &mut r.early_bytes);
                self.refuse(conn, id, error_code::H3_REQUEST_REJECTED);
                return None;
            }
        }
        Some(Peer::Early { session, held, fin })
    }
}
