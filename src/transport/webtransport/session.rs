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
//! The same state machine runs the client side ([`WebTransportSession::client`]): it opens
//! the client's control stream, waits for the server's SETTINGS to allow WebTransport, sends
//! the CONNECT on bidi stream 0 and reports the answer as [`Event::Accepted`] or
//! [`Event::Refused`]. The load generator in `bench/` drives sessions this way.
//!
//! Only one session per connection (the CONNECT on the client's first bidi stream). Closing
//! writes CLOSE_WEBTRANSPORT_SESSION in a DATA frame and FINs the CONNECT stream; a refusal
//! writes the status and FINs. The QUIC CONNECTION_CLOSE is the driver's, after a linger
//! (§7.2 step 8 asks for about 3·RTT): quiche drops unsent stream data once it closes, so
//! closing at once would lose the capsule or the refusal. See
//! [`WebTransportSession::connection_close`].

use super::capsule::Capsule;
use super::connect::{self, ConnectRequest, ConnectResponse, Rejection};
use super::error_code;
use super::frame::{self, is_grease, MAX_FRAME_PAYLOAD};
use super::header;
use super::settings::{self, Settings};
use super::stream_type::{classify, UniStream};
use super::streams::WebTransportStreams;
use super::{qpack, H3Error};
use crate::transport::quic::QuicConnection;
use std::collections::{HashMap, VecDeque};

/// The most peer streams whose headers we hold before the session is accepted.
pub const MAX_EARLY_STREAMS: usize = 64;
/// The most bytes we buffer on the peer's control or CONNECT stream.
const MAX_BUFFER: usize = MAX_FRAME_PAYLOAD as usize + 16;

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
enum Role {
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

/// Where we are in a peer stream's first bytes.
#[derive(Debug)]
pub(super) enum Peer {
    UniType(Vec<u8>),
    UniSession(Vec<u8>),
    /// The peer's control stream: unparsed bytes, whether SETTINGS came, and how many bytes
    /// of a large skipped frame are still to drop.
    Control {
        buf: Vec<u8>,
        settings: bool,
        skip: u64,
    },
    Discard,
    BidiType(Vec<u8>),
    BidiSession(Vec<u8>),
    Connect {
        buf: Vec<u8>,
        capsules: Vec<u8>,
    },
    /// A WebTransport stream (of this session id) that arrived before the session was
    /// accepted.
    Early(u64),
    /// A WebTransport stream moq-lite owns.
    Ready,
}

/// The HTTP/3 and WebTransport state of one connection.
#[derive(Debug)]
pub struct WebTransportSession {
    role: Role,
    pub(super) state: State,
    pub(super) session_id: Option<u64>,
    control_opened: bool,
    peer_settings: Option<Settings>,
    pub(super) peers: HashMap<u64, Peer>,
    /// Bytes still to write on our own streams (control, CONNECT, opened headers), with FIN.
    pub(super) pending: HashMap<u64, (Vec<u8>, bool)>,
    /// Streams moq-lite should read, in order.
    pub(super) readable: VecDeque<u64>,
    events: Vec<Event>,
    pub(super) next_bidi: u64,
    pub(super) next_uni: u64,
}

impl Default for WebTransportSession {
    fn default() -> Self {
        Self::new()
    }
}

enum Varint {
    Done(u64),
    Pending,
    Ended,
}

/// Reads one varint byte by byte into `part`, so no byte past it is consumed.
fn read_varint(conn: &mut QuicConnection, id: u64, part: &mut Vec<u8>) -> Varint {
    loop {
        let want = match part.first() {
            None => 1,
            Some(first) => 1usize << (first >> 6),
        };
        if part.len() == want && !part.is_empty() {
            let mut pos = 0;
            return match super::varint::read(part, &mut pos) {
                Ok(v) => Varint::Done(v),
                Err(_) => Varint::Ended,
            };
        }
        let mut byte = [0u8; 1];
        match conn.stream_recv(id, &mut byte) {
            Ok((1, _)) => part.push(byte[0]),
            Ok((_, true)) => return Varint::Ended,
            Ok(_) | Err(quiche::Error::Done) => {
                return if conn.stream_finished(id) {
                    Varint::Ended
                } else {
                    Varint::Pending
                }
            }
            Err(_) => return Varint::Ended,
        }
    }
}

/// Reads whatever is available into `buf`, up to `MAX_BUFFER`; returns whether the stream
/// ended (FIN or reset), or an error if the bound is hit.
fn read_into(conn: &mut QuicConnection, id: u64, buf: &mut Vec<u8>) -> Result<bool, H3Error> {
    let mut chunk = [0u8; 4096];
    loop {
        let room = MAX_BUFFER.saturating_sub(buf.len()).min(chunk.len());
        if room == 0 {
            return Err(H3Error::TooLarge("stream buffer"));
        }
        match conn.stream_recv(id, &mut chunk[..room]) {
            Ok((n, fin)) => {
                buf.extend_from_slice(&chunk[..n]);
                if fin {
                    return Ok(true);
                }
            }
            Err(quiche::Error::Done) => return Ok(conn.stream_finished(id)),
            Err(_) => return Ok(true),
        }
    }
}

impl WebTransportSession {
    /// The server side: waits for the client's CONNECT.
    pub fn new() -> Self {
        Self {
            role: Role::Server,
            state: State::AwaitingConnect,
            session_id: None,
            control_opened: false,
            peer_settings: None,
            peers: HashMap::new(),
            pending: HashMap::new(),
            readable: VecDeque::new(),
            events: Vec::new(),
            next_bidi: 1,
            next_uni: 3,
        }
    }

    /// The client side: will ask `authority` for a session at `path` (path and query),
    /// offering `protocols` in order of preference.
    pub fn client(authority: &str, path: &str, protocols: &[&str]) -> Self {
        let mut request = Vec::new();
        frame::encode_frame(
            frame::HEADERS,
            &connect::encode_request(authority, path, protocols),
            &mut request,
        );
        Self {
            role: Role::Client {
                request: Some(request),
            },
            // Bidi stream 0 is the CONNECT and uni stream 2 our control stream.
            next_bidi: 4,
            next_uni: 2,
            ..Self::new()
        }
    }

    fn is_server(&self) -> bool {
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

    /// Streams view for moq-lite.
    pub fn streams<'a>(&'a mut self, conn: &'a mut QuicConnection) -> WebTransportStreams<'a> {
        WebTransportStreams { conn, wt: self }
    }

    pub(super) fn queue(&mut self, id: u64, data: Vec<u8>, fin: bool) {
        let entry = self.pending.entry(id).or_default();
        entry.0.extend_from_slice(&data);
        entry.1 |= fin;
    }

    pub(super) fn flush(&mut self, conn: &mut QuicConnection) {
        // An entry stays until all its bytes, and its FIN, went into quiche.
        self.pending
            .retain(|&id, (data, fin)| match conn.stream_send(id, data, *fin) {
                Ok(n) => {
                    let all = n == data.len();
                    data.drain(..n);
                    !all
                }
                Err(quiche::Error::Done) => true,
                Err(_) => false,
            });
    }

    fn fail(&mut self, conn: &mut QuicConnection, code: u64, reason: &str) {
        let _ = conn.close(true, code, reason.as_bytes());
        self.state = State::Closed;
    }

    /// Moves the HTTP/3 side forward; returns what happened since the last call.
    pub fn drive(&mut self, conn: &mut QuicConnection) -> Vec<Event> {
        if !conn.is_established() && !conn.is_in_early_data() {
            return Vec::new();
        }
        if !self.control_opened {
            self.control_opened = true;
            let id = self.next_uni;
            self.next_uni += 4;
            let control = if self.is_server() {
                settings::server_control_stream()
            } else {
                settings::client_control_stream()
            };
            self.queue(id, control, false);
        }
        while let Some(id) = conn.stream_readable_next() {
            self.on_readable(conn, id);
        }
        self.send_connect(conn);
        self.flush(conn);
        std::mem::take(&mut self.events)
    }

    /// Client side: sends the CONNECT once the server's SETTINGS allow WebTransport
    /// (draft-ietf-webtrans-http3 §3.1: not before).
    fn send_connect(&mut self, conn: &mut QuicConnection) {
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
        self.queue(0, request, false);
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

    pub(super) fn on_readable(&mut self, conn: &mut QuicConnection, id: u64) {
        let peer_initiated = self.is_peer_initiated(id);
        let bidi = id & 2 == 0;
        let state = match self.peers.remove(&id) {
            Some(state) => state,
            None if !peer_initiated => {
                self.mark_readable(id);
                return;
            }
            None if !bidi => Peer::UniType(Vec::new()),
            None => Peer::BidiType(Vec::new()),
        };
        if let Some(next) = self.advance(conn, id, state) {
            self.peers.insert(id, next);
        }
    }

    fn mark_readable(&mut self, id: u64) {
        if !self.readable.contains(&id) {
            self.readable.push_back(id);
        }
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
                            if self
                                .peers
                                .values()
                                .any(|p| matches!(p, Peer::Control { .. }))
                            {
                                self.fail(
                                    conn,
                                    error_code::H3_STREAM_CREATION_ERROR,
                                    "second control stream",
                                );
                                return None;
                            }
                            Peer::Control {
                                buf: Vec::new(),
                                settings: false,
                                skip: 0,
                            }
                        }
                        UniStream::Qpack => Peer::Discard,
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
                        Varint::Done(session) => return self.on_header(conn, id, session),
                    }
                }
                Peer::Control {
                    mut buf,
                    mut settings,
                    mut skip,
                } => {
                    // Read and parse in turns, so skipped frames never fill the buffer.
                    let ended = loop {
                        let read = read_into(conn, id, &mut buf);
                        settings = self.control_frames(conn, &mut buf, settings, &mut skip)?;
                        match read {
                            Ok(ended) => break ended,
                            Err(_) if buf.len() < MAX_BUFFER => continue,
                            Err(_) => {
                                self.fail(
                                    conn,
                                    error_code::H3_FRAME_UNEXPECTED,
                                    "control frame too large",
                                );
                                return None;
                            }
                        }
                    };
                    if ended {
                        self.fail(
                            conn,
                            error_code::H3_CLOSED_CRITICAL_STREAM,
                            "control stream closed",
                        );
                        return None;
                    }
                    return Some(Peer::Control {
                        buf,
                        settings,
                        skip,
                    });
                }
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
                Peer::Early(session) => return Some(Peer::Early(session)),
                Peer::Ready => {
                    self.mark_readable(id);
                    return Some(Peer::Ready);
                }
            };
        }
    }

    fn refuse(&mut self, conn: &mut QuicConnection, id: u64, code: u64) {
        let _ = conn.stream_shutdown(id, quiche::Shutdown::Read, code);
        if id & 2 == 0 {
            let _ = conn.stream_shutdown(id, quiche::Shutdown::Write, code);
        }
    }

    fn on_header(&mut self, conn: &mut QuicConnection, id: u64, session: u64) -> Option<Peer> {
        if Some(session) != self.session_id && self.session_id.is_some() {
            self.refuse(conn, id, error_code::H3_ID_ERROR);
            return None;
        }
        match self.state {
            State::Established if Some(session) == self.session_id => {
                self.mark_readable(id);
                Some(Peer::Ready)
            }
            State::AwaitingConnect | State::Requested => {
                let early = self
                    .peers
                    .values()
                    .filter(|p| matches!(p, Peer::Early(_)))
                    .count();
                if early >= MAX_EARLY_STREAMS {
                    self.refuse(conn, id, error_code::H3_REQUEST_REJECTED);
                    return None;
                }
                // The session id is checked again on acceptance.
                Some(Peer::Early(session))
            }
            _ => {
                self.refuse(conn, id, error_code::H3_REQUEST_REJECTED);
                None
            }
        }
    }

    /// Parses buffered control frames; `None` means the connection failed.
    fn control_frames(
        &mut self,
        conn: &mut QuicConnection,
        buf: &mut Vec<u8>,
        mut settings: bool,
        skip: &mut u64,
    ) -> Option<bool> {
        loop {
            if *skip > 0 {
                let n = (*skip).min(buf.len() as u64);
                buf.drain(..n as usize);
                *skip -= n;
                if *skip > 0 {
                    return Some(settings);
                }
            }
            // Frames we ignore may be of any size: drop them without buffering.
            if let Ok((h, used)) = frame::FrameHeader::decode(buf, u64::MAX) {
                let known = matches!(
                    h.ty,
                    frame::DATA | frame::HEADERS | frame::SETTINGS | frame::GOAWAY
                );
                if settings && !known && h.len > MAX_FRAME_PAYLOAD {
                    buf.drain(..used);
                    *skip = h.len;
                    continue;
                }
            }
            let (ty, payload, used) = match frame::decode_frame(buf, MAX_FRAME_PAYLOAD) {
                Ok(f) => f,
                Err(H3Error::Short) => return Some(settings),
                Err(_) => {
                    self.fail(conn, error_code::H3_FRAME_UNEXPECTED, "bad control frame");
                    return None;
                }
            };
            match (ty, settings) {
                (frame::SETTINGS, false) => match Settings::decode(payload) {
                    Ok(s) => {
                        settings = true;
                        self.peer_settings = Some(s);
                    }
                    Err(_) => {
                        self.fail(conn, error_code::H3_SETTINGS_ERROR, "bad SETTINGS");
                        return None;
                    }
                },
                (_, false) => {
                    self.fail(conn, error_code::H3_MISSING_SETTINGS, "SETTINGS not first");
                    return None;
                }
                (frame::SETTINGS | frame::DATA | frame::HEADERS, true) => {
                    self.fail(
                        conn,
                        error_code::H3_FRAME_UNEXPECTED,
                        "unexpected control frame",
                    );
                    return None;
                }
                // GOAWAY, MAX_PUSH_ID, CANCEL_PUSH, GREASE and unknown frames: skipped.
                _ => {}
            }
            buf.drain(..used);
        }
    }

    fn connect_stream(
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
                        }
                        Ok(r) => {
                            self.events.push(Event::Refused { status: r.status });
                            self.state = State::Closed;
                            let _ = conn.stream_send(id, &[], true);
                            return None;
                        }
                        Err(reason) => {
                            self.fail(conn, error_code::H3_MESSAGE_ERROR, reason);
                            return None;
                        }
                    }
                }
                (frame::HEADERS, State::AwaitingConnect) if self.is_server() => {
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
                        }
                        Err(rejection) => {
                            self.reject_with(conn, id, rejection.status);
                            self.events.push(Event::Rejected(rejection));
                            return None;
                        }
                    }
                }
                // Capsules may follow the CONNECT before we answer it (Chrome sends some at once).
                (frame::DATA, State::Requested | State::Established | State::Closing { .. }) => {
                    capsules.extend_from_slice(payload);
                    if capsules.len() > MAX_BUFFER {
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

    fn reject_with(&mut self, conn: &mut QuicConnection, id: u64, status: u16) {
        let mut out = Vec::new();
        frame::encode_frame(
            frame::HEADERS,
            &connect::encode_response(status, None),
            &mut out,
        );
        self.queue(id, out, true);
        self.flush(conn);
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
        self.queue(id, out, false);
        self.state = State::Established;
        self.release_early(conn, id);
        self.flush(conn);
    }

    /// The session `id` is established: the WebTransport streams that arrived early become
    /// readable (those of another session are refused).
    fn release_early(&mut self, conn: &mut QuicConnection, id: u64) {
        let mut early: Vec<(u64, u64)> = self
            .peers
            .iter()
            .filter_map(|(&sid, p)| match p {
                Peer::Early(session) => Some((sid, *session)),
                _ => None,
            })
            .collect();
        early.sort_unstable();
        for (sid, session) in early {
            if session == id {
                self.peers.insert(sid, Peer::Ready);
                self.mark_readable(sid);
            } else {
                self.peers.remove(&sid);
                self.refuse(conn, sid, error_code::H3_ID_ERROR);
            }
        }
    }

    /// Rejects the pending CONNECT with `status` (401/403 for auth) and FINs its stream.
    pub fn reject(&mut self, conn: &mut QuicConnection, status: u16) {
        if let (Some(id), State::Requested, true) = (self.session_id, &self.state, self.is_server())
        {
            self.reject_with(conn, id, status);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::tls;
    use crate::transport::{StreamError, Streams};
    use std::net::SocketAddr;

    fn config(server: Option<&tls::Certificate>) -> quiche::Config {
        let mut c = match server {
            Some(cert) => {
                let mut ctx =
                    boring::ssl::SslContextBuilder::new(boring::ssl::SslMethod::tls()).unwrap();
                cert.configure(&mut ctx).unwrap();
                quiche::Config::with_boring_ssl_ctx_builder(quiche::PROTOCOL_VERSION, ctx).unwrap()
            }
            None => quiche::Config::new(quiche::PROTOCOL_VERSION).unwrap(),
        };
        c.verify_peer(false);
        c.set_application_protos(&[b"h3"]).unwrap();
        c.set_max_idle_timeout(5000);
        c.set_initial_max_data(1 << 20);
        c.set_initial_max_stream_data_bidi_local(1 << 18);
        c.set_initial_max_stream_data_bidi_remote(1 << 18);
        c.set_initial_max_stream_data_uni(1 << 18);
        c.set_initial_max_streams_bidi(100);
        c.set_initial_max_streams_uni(100);
        c
    }

    struct Pair {
        client: QuicConnection,
        server: QuicConnection,
    }

    fn pair() -> Pair {
        let cert = tls::generate(&["localhost".into()]).unwrap();
        let mut sc = config(Some(&cert));
        let mut cc = config(None);
        let caddr: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let saddr: SocketAddr = "127.0.0.1:2000".parse().unwrap();
        let ccid = quiche::ConnectionId::from_ref(&[1; 16]);
        let scid = quiche::ConnectionId::from_ref(&[2; 16]);
        let client =
            quiche::connect_with_buffer_factory(Some("localhost"), &ccid, caddr, saddr, &mut cc)
                .unwrap();
        let server = quiche::accept_with_buf_factory(&scid, None, saddr, caddr, &mut sc).unwrap();
        let mut p = Pair { client, server };
        p.shuttle();
        assert!(p.client.is_established() && p.server.is_established());
        p
    }

    impl Pair {
        fn shuttle(&mut self) {
            let mut buf = [0u8; 1500];
            for _ in 0..100 {
                let mut moved = false;
                for flip in [false, true] {
                    let (from, to) = if flip {
                        (&mut self.server, &mut self.client)
                    } else {
                        (&mut self.client, &mut self.server)
                    };
                    while let Ok((n, info)) = from.send(&mut buf) {
                        let recv = quiche::RecvInfo {
                            from: info.from,
                            to: info.to,
                        };
                        let _ = to.recv(&mut buf[..n], recv);
                        moved = true;
                    }
                }
                if !moved {
                    return;
                }
            }
        }
    }

    fn read_all(conn: &mut QuicConnection, id: u64) -> Result<(Vec<u8>, bool), quiche::Error> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match conn.stream_recv(id, &mut buf) {
                Ok((n, fin)) => {
                    out.extend_from_slice(&buf[..n]);
                    if fin {
                        return Ok((out, true));
                    }
                }
                Err(quiche::Error::Done) => return Ok((out, false)),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads every stream moq-lite would be handed: (id, bytes, fin), sorted by id.
    fn read_readable(s: &mut WebTransportStreams<'_>) -> Vec<(u64, Vec<u8>, bool)> {
        let mut got = Vec::new();
        while let Some(id) = s.next_readable() {
            let mut buf = [0u8; 64];
            let (n, fin) = s.recv(id, &mut buf).unwrap();
            got.push((id, buf[..n].to_vec(), fin));
        }
        got.sort();
        got
    }

    fn connect_request(protocols: &str) -> Vec<u8> {
        let section = qpack::encode(&[
            (":method", "CONNECT"),
            (":protocol", "webtransport"),
            (":scheme", "https"),
            (":authority", "localhost"),
            (":path", "/anon/room?jwt=x"),
            ("wt-available-protocols", protocols),
        ]);
        let mut out = Vec::new();
        // A GREASE frame first, which must be skipped.
        frame::encode_frame(0x21, b"x", &mut out);
        frame::encode_frame(frame::HEADERS, &section, &mut out);
        out
    }

    fn client_control(p: &mut Pair) {
        p.client
            .stream_send(2, &settings::server_control_stream(), false)
            .unwrap();
        // A QPACK encoder stream and a GREASE stream type.
        p.client.stream_send(6, &[0x02], false).unwrap();
        p.client.stream_send(10, &[0x21, 1, 2, 3], false).unwrap();
    }

    /// Sets up an accepted session; returns the decoded response headers.
    fn established(p: &mut Pair, wt: &mut WebTransportSession) -> qpack::Headers {
        client_control(p);
        p.client
            .stream_send(
                0,
                &connect_request("\"moq-lite-05\", \"moq-lite-04\""),
                false,
            )
            .unwrap();
        // A WebTransport uni stream that arrives before the session is accepted.
        p.client
            .stream_send(14, &[0x40, 0x54, 0x00, b'e'], false)
            .unwrap();
        p.shuttle();
        let events = wt.drive(&mut p.server);
        let Some(Event::Connect(req)) = events.first() else {
            panic!("{events:?}");
        };
        assert_eq!(req.path_only(), "/anon/room");
        assert_eq!(req.protocol, "moq-lite-05");
        wt.accept(&mut p.server, Some(req.protocol));
        p.shuttle();
        assert!(wt.peer_settings().unwrap().supports_webtransport());
        let (bytes, fin) = read_all(&mut p.client, 0).unwrap();
        assert!(!fin);
        let (ty, payload, _) = frame::decode_frame(&bytes, 4096).unwrap();
        assert_eq!(ty, frame::HEADERS);
        qpack::decode(payload).unwrap()
    }

    #[test]
    fn control_stream_sent_at_once() {
        let mut p = pair();
        let mut wt = WebTransportSession::new();
        assert!(wt.drive(&mut p.server).is_empty());
        p.shuttle();
        let (bytes, fin) = read_all(&mut p.client, 3).unwrap();
        assert_eq!(bytes, settings::server_control_stream());
        assert!(!fin);
    }

    #[test]
    fn full_session() {
        let mut p = pair();
        let mut wt = WebTransportSession::new();
        let response = established(&mut p, &mut wt);
        assert_eq!(response.get(":status"), Some("200"));
        assert_eq!(response.get("wt-protocol"), Some("\"moq-lite-05\""));
        assert_eq!(
            response.get("sec-webtransport-http3-draft"),
            Some("draft02")
        );
        assert!(wt.is_established());

        // Client streams: a uni, a bidi, and a bidi that is a plain HTTP request.
        p.client
            .stream_send(18, &[0x40, 0x54, 0x00, b'u', b'n', b'i'], true)
            .unwrap();
        p.client
            .stream_send(4, &[0x40, 0x41, 0x00, b'b', b'i'], false)
            .unwrap();
        p.client.stream_send(8, &[0x01, 0x00], false).unwrap();
        p.shuttle();
        wt.drive(&mut p.server);
        let got = read_readable(&mut wt.streams(&mut p.server));
        assert!(got.iter().all(|&(id, ..)| wt.is_peer_initiated(id)));
        assert_eq!(
            got,
            [
                (4, b"bi".to_vec(), false),
                (14, b"e".to_vec(), false),
                (18, b"uni".to_vec(), true)
            ]
        );
        p.shuttle();
        let mut buf = [0u8; 16];
        assert_eq!(
            p.client.stream_recv(8, &mut buf),
            Err(quiche::Error::StreamReset(error_code::H3_REQUEST_REJECTED))
        );

        // Server streams get their headers; codes are mapped.
        let (uni, bidi) = {
            let mut s = wt.streams(&mut p.server);
            let uni = s.open_uni().unwrap();
            let bidi = s.open_bidi().unwrap();
            assert!(!s.is_peer_initiated(uni) && !s.is_bidi(uni) && s.is_bidi(bidi));
            assert_eq!(s.send(uni, b"group", false).unwrap(), 5);
            assert_eq!(s.send(bidi, b"req", false).unwrap(), 3);
            s.reset(uni, 0x34);
            s.stop(4, 0x36);
            (uni, bidi)
        };
        assert_eq!((uni, bidi), (7, 1));
        p.shuttle();
        let (bytes, _) = read_all(&mut p.client, bidi).unwrap();
        assert_eq!(bytes, [0x40, 0x41, 0x00, b'r', b'e', b'q']);
        assert_eq!(
            read_all(&mut p.client, uni),
            Err(quiche::Error::StreamReset(0x52e4a40fa910))
        );
        assert_eq!(
            p.client.stream_send(4, b"more", false),
            Err(quiche::Error::StreamStopped(0x52e4a40fa912))
        );

        // A peer reset arrives with the WebTransport code.
        p.client.stream_send(bidi, b"", false).ok();
        p.client
            .stream_shutdown(bidi, quiche::Shutdown::Write, error_code::to_http3(1))
            .unwrap();
        p.shuttle();
        {
            let mut s = wt.streams(&mut p.server);
            let mut buf = [0u8; 16];
            assert_eq!(s.next_readable(), Some(bidi));
            assert_eq!(s.recv(bidi, &mut buf), Err(StreamError::Reset(1)));
        }

        // Closing: capsule in a DATA frame and FIN; the driver's CONNECTION_CLOSE follows.
        wt.streams(&mut p.server).close(2, "unauthorized");
        p.shuttle();
        let (bytes, fin) = read_all(&mut p.client, 0).unwrap();
        assert!(fin);
        let (ty, payload, _) = frame::decode_frame(&bytes, 4096).unwrap();
        assert_eq!(ty, frame::DATA);
        assert_eq!(
            payload,
            [
                0x68, 0x43, 0x10, 0, 0, 0, 2, b'u', b'n', b'a', b'u', b't', b'h', b'o', b'r', b'i',
                b'z', b'e', b'd'
            ]
        );
        wt.drive(&mut p.server);
        assert!(wt.is_closed() && !p.server.is_closed());
        let (code, reason) = wt.connection_close().unwrap();
        assert_eq!(reason, "unauthorized");
        p.server.close(true, code, reason.as_bytes()).unwrap();
        p.shuttle();
        assert!(p.server.is_closed() || p.server.is_draining());
        assert_eq!(
            p.client.peer_error().map(|e| e.error_code),
            Some(error_code::to_http3(2))
        );
    }

    #[test]
    fn streams_before_connect_wait_for_acceptance() {
        let mut p = pair();
        let mut wt = WebTransportSession::new();
        client_control(&mut p);
        // A WebTransport bidi (id 4) and one for another session (id 8) before the CONNECT.
        p.client
            .stream_send(4, &[0x40, 0x41, 0x00, b'a'], false)
            .unwrap();
        p.client
            .stream_send(8, &[0x40, 0x41, 0x09, b'b'], false)
            .unwrap();
        p.shuttle();
        assert!(wt.drive(&mut p.server).is_empty());
        assert_eq!(wt.streams(&mut p.server).next_readable(), None);
        p.client
            .stream_send(0, &connect_request("\"moq-lite-04\""), false)
            .unwrap();
        p.shuttle();
        let events = wt.drive(&mut p.server);
        assert!(matches!(events[..], [Event::Connect(_)]));
        assert_eq!(wt.session_id(), Some(0));
        wt.accept(&mut p.server, Some("moq-lite-04"));
        let mut s = wt.streams(&mut p.server);
        assert_eq!(s.next_readable(), Some(4));
        let mut buf = [0u8; 8];
        assert_eq!(s.recv(4, &mut buf).unwrap(), (1, false));
        assert_eq!(buf[0], b'a');
        assert_eq!(s.next_readable(), None);
        p.shuttle();
        assert_eq!(
            p.client.stream_recv(8, &mut buf),
            Err(quiche::Error::StreamReset(error_code::H3_ID_ERROR))
        );
    }

    #[test]
    fn random_bytes_on_every_stream_never_panic() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let seeds = [
            settings::server_control_stream(),
            connect_request("\"moq-lite-05\""),
            vec![0x40, 0x41, 0x00, 1, 2],
            vec![0x40, 0x54, 0x00, 0, 2],
        ];
        for round in 0..24 {
            let mut p = pair();
            let mut wt = WebTransportSession::new();
            for (i, id) in [2u64, 0, 4, 6].into_iter().enumerate() {
                let mut data = seeds[i].clone();
                if round % 3 != 0 {
                    for _ in 0..1 + next() % 4 {
                        let at = (next() as usize) % data.len().max(1);
                        if at < data.len() {
                            data[at] = next() as u8;
                        }
                    }
                } else {
                    data = (0..next() % 40).map(|_| next() as u8).collect();
                }
                let _ = p.client.stream_send(id, &data, next() % 2 == 0);
            }
            p.shuttle();
            for event in wt.drive(&mut p.server) {
                if let Event::Connect(req) = event {
                    wt.accept(&mut p.server, Some(req.protocol));
                }
            }
            let mut s = wt.streams(&mut p.server);
            let mut buf = [0u8; 64];
            for _ in 0..16 {
                match s.next_readable() {
                    Some(id) => {
                        let _ = s.recv(id, &mut buf);
                    }
                    None => break,
                }
            }
            p.shuttle();
        }
    }

    #[test]
    fn peer_close_capsule() {
        let mut p = pair();
        let mut wt = WebTransportSession::new();
        established(&mut p, &mut wt);
        let mut capsule = Vec::new();
        Capsule::Close {
            code: 7,
            reason: "bye".into(),
        }
        .encode(&mut capsule);
        let mut out = Vec::new();
        frame::encode_frame(frame::DATA, &capsule, &mut out);
        p.client.stream_send(0, &out, true).unwrap();
        p.shuttle();
        assert_eq!(
            wt.drive(&mut p.server),
            [Event::Closed {
                code: 7,
                reason: "bye".into()
            }]
        );
        assert!(wt.is_closed());
    }

    #[test]
    fn rejects_without_protocol() {
        let mut p = pair();
        let mut wt = WebTransportSession::new();
        client_control(&mut p);
        p.client
            .stream_send(0, &connect_request("\"moql\""), false)
            .unwrap();
        p.shuttle();
        let events = wt.drive(&mut p.server);
        assert!(matches!(
            events[..],
            [Event::Rejected(Rejection { status: 400, .. })]
        ));
        p.shuttle();
        let (bytes, fin) = read_all(&mut p.client, 0).unwrap();
        assert!(fin);
        let (_, payload, _) = frame::decode_frame(&bytes, 4096).unwrap();
        assert_eq!(qpack::decode(payload).unwrap().get(":status"), Some("400"));
    }

    #[test]
    fn auth_rejection_and_bad_qpack() {
        let mut p = pair();
        let mut wt = WebTransportSession::new();
        client_control(&mut p);
        p.client
            .stream_send(0, &connect_request("\"moq-lite-04\""), false)
            .unwrap();
        p.shuttle();
        assert!(matches!(wt.drive(&mut p.server)[..], [Event::Connect(_)]));
        wt.reject(&mut p.server, 403);
        p.shuttle();
        let (bytes, fin) = read_all(&mut p.client, 0).unwrap();
        assert!(fin);
        let (_, payload, _) = frame::decode_frame(&bytes, 4096).unwrap();
        assert_eq!(qpack::decode(payload).unwrap().get(":status"), Some("403"));

        let mut p = pair();
        let mut wt = WebTransportSession::new();
        let mut out = Vec::new();
        frame::encode_frame(frame::HEADERS, &[0x01, 0x00, 0x80], &mut out);
        p.client.stream_send(0, &out, false).unwrap();
        p.shuttle();
        assert!(matches!(wt.drive(&mut p.server)[..], [Event::Rejected(_)]));
    }

    #[test]
    fn large_unknown_control_frame_is_skipped() {
        let mut p = pair();
        let mut wt = WebTransportSession::new();
        let mut control = settings::server_control_stream();
        let big = vec![0xaa; 100_000];
        frame::encode_frame(0x21 + 0x1f * 3, &big, &mut control);
        frame::encode_frame(frame::GOAWAY, &[0x00], &mut control);
        p.client.stream_send(2, &control, false).unwrap();
        for _ in 0..20 {
            p.shuttle();
            wt.drive(&mut p.server);
        }
        p.shuttle();
        assert!(!p.server.is_closed() && p.client.peer_error().is_none());
        assert!(wt.peer_settings().is_some());
    }

    #[test]
    fn bad_control_stream_closes_connection() {
        let mut p = pair();
        let mut wt = WebTransportSession::new();
        // A control stream whose first frame is not SETTINGS.
        p.client
            .stream_send(2, &[0x00, 0x07, 0x01, 0x00], false)
            .unwrap();
        p.shuttle();
        wt.drive(&mut p.server);
        p.shuttle();
        assert_eq!(
            p.client.peer_error().map(|e| e.error_code),
            Some(error_code::H3_MISSING_SETTINGS)
        );
    }

    /// Drives both sides until neither has anything left to say; returns the client's events.
    fn converse(
        p: &mut Pair,
        client: &mut WebTransportSession,
        server: &mut WebTransportSession,
        mut on_server: impl FnMut(&mut WebTransportSession, &mut QuicConnection, Event),
    ) -> Vec<Event> {
        let mut client_events = Vec::new();
        for _ in 0..10 {
            client_events.extend(client.drive(&mut p.client));
            p.shuttle();
            for event in server.drive(&mut p.server) {
                on_server(server, &mut p.server, event);
            }
            p.shuttle();
        }
        client_events
    }

    #[test]
    fn client_session_end_to_end() {
        let mut p = pair();
        let mut client = WebTransportSession::client("localhost:4443", "/anon", &["moq-lite-05"]);
        let mut server = WebTransportSession::new();
        let mut requests = Vec::new();
        let events = converse(&mut p, &mut client, &mut server, |s, conn, event| {
            if let Event::Connect(req) = event {
                s.accept(conn, Some(req.protocol));
                requests.push(req);
            }
        });
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].path, "/anon");
        assert_eq!(requests[0].authority, "localhost:4443");
        assert_eq!(
            events,
            [Event::Accepted {
                protocol: Some("moq-lite-05".into())
            }]
        );
        assert!(client.is_established() && server.is_established());
        assert_eq!(client.session_id(), Some(0));
        assert!(server.peer_settings().unwrap().supports_webtransport());

        // Streams in both directions, headers added and stripped on each side.
        let (uni, bidi) = {
            let mut s = client.streams(&mut p.client);
            let uni = s.open_uni().unwrap();
            let bidi = s.open_bidi().unwrap();
            assert_eq!((uni, bidi), (6, 4));
            assert_eq!(s.send(uni, b"hello", true), Ok(5));
            assert_eq!(s.send(bidi, b"ask", false), Ok(3));
            (uni, bidi)
        };
        p.shuttle();
        server.drive(&mut p.server);
        let got = {
            let mut s = server.streams(&mut p.server);
            let got = read_readable(&mut s);
            assert_eq!(s.send(bidi, b"answer", true), Ok(6));
            let back = s.open_uni().unwrap();
            assert_eq!(s.send(back, b"group", true), Ok(5));
            got
        };
        assert_eq!(
            got,
            [
                (bidi, b"ask".to_vec(), false),
                (uni, b"hello".to_vec(), true)
            ]
        );
        p.shuttle();
        client.drive(&mut p.client);
        let got: Vec<_> = read_readable(&mut client.streams(&mut p.client))
            .into_iter()
            .map(|(id, bytes, fin)| (id, client.is_peer_initiated(id), bytes, fin))
            .collect();
        assert_eq!(
            got,
            [
                (bidi, false, b"answer".to_vec(), true),
                (7, true, b"group".to_vec(), true)
            ]
        );

        // The client closes: the server sees the capsule's code and reason.
        client.streams(&mut p.client).close(2, "unauthorized");
        p.shuttle();
        let closed = server.drive(&mut p.server);
        assert_eq!(
            closed,
            [Event::Closed {
                code: 2,
                reason: "unauthorized".into()
            }]
        );
    }

    #[test]
    fn client_waits_for_server_settings_and_reports_refusal() {
        let mut p = pair();
        let mut client = WebTransportSession::client("localhost", "/private", &["moq-lite-05"]);
        // No server SETTINGS yet: only our control stream goes out, no CONNECT.
        assert!(client.drive(&mut p.client).is_empty());
        p.shuttle();
        assert!(matches!(
            read_all(&mut p.server, 0),
            Err(_) | Ok((_, false))
        ));
        assert_eq!(
            read_all(&mut p.server, 2).unwrap().0,
            settings::client_control_stream()
        );
        let mut server = WebTransportSession::new();
        let events = converse(&mut p, &mut client, &mut server, |s, conn, event| {
            if let Event::Connect(_) = event {
                s.reject(conn, 403);
            }
        });
        assert_eq!(events, [Event::Refused { status: 403 }]);
        assert!(client.is_closed());
        assert_eq!(
            client.streams(&mut p.client).open_uni(),
            Err(StreamError::Gone)
        );
    }

    #[test]
    fn client_refuses_a_server_without_webtransport() {
        let mut p = pair();
        let mut client = WebTransportSession::client("localhost", "/anon", &["moq-lite-05"]);
        client.drive(&mut p.client);
        // A plain HTTP/3 server: SETTINGS without H3_DATAGRAM or WebTransport.
        let mut control = vec![settings::CONTROL_STREAM_TYPE as u8];
        settings::encode_settings(&[(settings::MAX_FIELD_SECTION_SIZE, 4096)], &mut control);
        p.server.stream_send(3, &control, false).unwrap();
        p.shuttle();
        assert!(client.drive(&mut p.client).is_empty());
        p.shuttle();
        assert_eq!(
            p.server.peer_error().map(|e| e.error_code),
            Some(error_code::H3_SETTINGS_ERROR)
        );
    }

    #[test]
    fn client_rejects_a_malformed_response_and_ignores_server_requests() {
        let mut p = pair();
        let mut client = WebTransportSession::client("localhost", "/anon", &["moq-lite-05"]);
        client.drive(&mut p.client);
        p.server
            .stream_send(3, &settings::server_control_stream(), false)
            .unwrap();
        // A server-initiated bidi stream that is not a WebTransport stream.
        p.server.stream_send(1, &[0x01, 0x00], false).unwrap();
        p.shuttle();
        client.drive(&mut p.client);
        p.shuttle();
        assert!(read_all(&mut p.server, 0).unwrap().0.len() > 2);
        assert_eq!(
            p.server.stream_send(1, b"x", false),
            Err(quiche::Error::StreamStopped(
                error_code::H3_REQUEST_REJECTED
            ))
        );
        let mut response = Vec::new();
        frame::encode_frame(
            frame::HEADERS,
            &qpack::encode(&[(":status", "2x0")]),
            &mut response,
        );
        p.server.stream_send(0, &response, false).unwrap();
        p.shuttle();
        assert!(client.drive(&mut p.client).is_empty());
        p.shuttle();
        assert_eq!(
            p.server.peer_error().map(|e| e.error_code),
            Some(error_code::H3_MESSAGE_ERROR)
        );
    }
}
