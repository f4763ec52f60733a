//! What runs on an established QUIC connection, by ALPN: a moq-lite session directly (a moq
//! ALPN makes the connection the session), or WebTransport over HTTP/3 (`h3`) carrying one,
//! after its CONNECT passed authorization.
//!
//! Until its session is authorized a connection is on probation: an HTTP/3 connection with
//! no accepted CONNECT within the setup timeout is closed (H3_REQUEST_REJECTED), and one
//! that sends more than the pre-authorization byte limit before its session is authorized
//! is closed (PROTOCOL_VIOLATION); the moq-lite session enforces its own SETUP deadline.
//! QUIC datagrams are read and dropped, counted: moq-lite has no use for them yet, and
//! unread they would queue in quiche.

use crate::auth::ConnectPath;
use crate::session::{Session, SessionCounters, SessionEnv};
use crate::transport::quic::{Connection, ConnectionApp, ConnectionHandler, QuicConnection};
use crate::transport::webtransport::error_code::H3_REQUEST_REJECTED;
use crate::transport::webtransport::{Event, WebTransportSession};
use crate::wire::{error_code, Version};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Chooses the application of every connection a shard's endpoint accepts.
pub struct QuicHandler {
    pub env: Rc<SessionEnv>,
}

impl ConnectionHandler for QuicHandler {
    fn accepted(&self, conn: &Rc<Connection>) -> Option<Box<dyn ConnectionApp>> {
        let app = App::start(&self.env, conn)?;
        let peer = conn
            .quiche
            .borrow()
            .path_stats()
            .next()
            .map(|p| p.peer_addr);
        let shard = self.env.shard.id;
        match &app.kind {
            Kind::Moq(_) => {
                let alpn = String::from_utf8_lossy(&conn.alpn()).into_owned();
                tracing::info!(peer = ?peer, shard, version = %alpn, "session started (raw QUIC)")
            }
            Kind::WebTransport { .. } => {
                tracing::debug!(peer = ?peer, shard, "HTTP/3 connection established")
            }
        }
        Some(Box::new(app))
    }
}

/// The ALPN that selects WebTransport.
pub const H3: &[u8] = b"h3";

/// The shortest wait between a WebTransport session's end (capsule or refusal written) and
/// the QUIC CONNECTION_CLOSE; it is 3·RTT when that is longer (PROTOCOL.md §7.2 step 8).
const LINGER_MIN: Duration = Duration::from_millis(100);
/// The longest such wait, whatever the RTT estimate says.
const LINGER_MAX: Duration = Duration::from_secs(2);

/// The application on one connection.
pub struct App {
    env: Rc<SessionEnv>,
    kind: Kind,
    /// Until its session is authorized, the connection is held to the pre-authorization
    /// byte limit.
    probation: bool,
    /// An HTTP/3 connection is closed unless a CONNECT is accepted by then.
    connect_deadline: Option<Instant>,
}

enum Kind {
    Moq(Session),
    WebTransport {
        h3: Box<WebTransportSession>,
        /// The moq-lite session, once the CONNECT was accepted.
        session: Option<Session>,
        /// When the QUIC connection closes, once the WebTransport session is over.
        close_at: Option<Instant>,
    },
}

impl App {
    /// Picks the application for the negotiated ALPN; `None` for one we do not serve.
    pub fn start(env: &Rc<SessionEnv>, conn: &Connection) -> Option<App> {
        let alpn = conn.alpn();
        let connect_deadline = (alpn == H3).then(|| Instant::now() + env.limits.setup_timeout);
        let kind = if alpn == H3 {
            Kind::WebTransport {
                h3: Box::new(WebTransportSession::new()),
                session: None,
                close_at: None,
            }
        } else {
            let version = Version::from_alpn(&alpn)?;
            Kind::Moq(Session::new(
                env.clone(),
                version,
                conn.notify.clone(),
                None,
            ))
        };
        Some(App {
            env: env.clone(),
            kind,
            probation: true,
            connect_deadline,
        })
    }

    /// Whether the connection's moq-lite session exists and is authorized.
    fn authorized(&self) -> bool {
        match &self.kind {
            Kind::Moq(session) => session.is_authorized(),
            Kind::WebTransport { session, .. } => {
                session.as_ref().is_some_and(Session::is_authorized)
            }
        }
    }

    /// Enforces the probation of a connection whose session is not authorized yet: the
    /// pre-authorization byte limit, and the CONNECT deadline of HTTP/3 connections (a
    /// moq-lite session times out its own SETUP). Returns true once the connection closed.
    fn on_probation(&mut self, q: &mut QuicConnection) -> bool {
        if !self.probation {
            return false;
        }
        if matches!(
            &self.kind,
            Kind::WebTransport {
                session: Some(_),
                ..
            }
        ) {
            self.connect_deadline = None;
        }
        if self.authorized() || q.is_closed() || q.is_draining() {
            self.probation = false;
            self.connect_deadline = None;
            return false;
        }
        let counters = &self.env.counters;
        if q.stats().recv_bytes > self.env.limits.pre_auth_bytes {
            SessionCounters::bump(&counters.pre_auth_overflows);
            tracing::info!(
                limit = self.env.limits.pre_auth_bytes,
                "connection closed: too much data before its session was authorized"
            );
            let _ = q.close(
                true,
                error_code::session::PROTOCOL_VIOLATION,
                b"too much data before authorization",
            );
            self.probation = false;
            self.connect_deadline = None;
            return true;
        }
        if self.connect_deadline.is_some_and(|at| Instant::now() >= at) {
            SessionCounters::bump(&counters.connect_timeouts);
            tracing::info!("HTTP/3 connection closed: no CONNECT before the setup timeout");
            let _ = q.close(true, H3_REQUEST_REJECTED, b"no CONNECT in time");
            self.probation = false;
            self.connect_deadline = None;
            return true;
        }
        false
    }
}

/// Reads and drops every QUIC datagram quiche queued, counting them.
fn drop_datagrams(q: &mut QuicConnection, counters: &SessionCounters) {
    while q.dgram_recv_queue_len() > 0 {
        if q.dgram_recv_buf().is_err() {
            break;
        }
        SessionCounters::bump(&counters.datagrams_dropped);
    }
}

impl ConnectionApp for App {
    fn poll(&mut self, conn: &Rc<Connection>) {
        {
            let mut q = conn.quiche.borrow_mut();
            drop_datagrams(&mut q, &self.env.counters);
            if self.on_probation(&mut q) {
                return;
            }
        }
        let (env, notify) = (&self.env, &conn.notify);
        match &mut self.kind {
            Kind::Moq(session) => {
                conn.with_streams(|streams| session.poll(streams, Instant::now()))
            }
            Kind::WebTransport {
                h3,
                session,
                close_at,
            } => {
                let mut q = conn.quiche.borrow_mut();
                for event in h3.drive(&mut q) {
                    match event {
                        Event::Connect(request) if session.is_none() => {
                            // Refuse a bad token or a private path before the session exists,
                            // with the status clients understand as an auth failure.
                            let connect = ConnectPath::parse(&request.path);
                            if let Err(e) = env.auth.authorize(&connect) {
                                tracing::info!(error = %e, "WebTransport CONNECT refused");
                                h3.reject(&mut q, e.http_status());
                                continue;
                            }
                            let Some(version) = Version::from_alpn(request.protocol.as_bytes())
                            else {
                                h3.reject(&mut q, 400);
                                continue;
                            };
                            h3.accept(&mut q, Some(request.protocol));
                            tracing::info!(path = %connect.path, %version, shard = env.shard.id, "session started (WebTransport)");
                            *session = Some(Session::new(
                                env.clone(),
                                version,
                                notify.clone(),
                                Some(request.path),
                            ));
                        }
                        Event::Connect(_) => h3.reject(&mut q, 400),
                        Event::Rejected(rejection) => {
                            tracing::debug!(
                                status = rejection.status,
                                reason = rejection.reason,
                                "WebTransport CONNECT rejected"
                            );
                        }
                        // Accepted and Refused answer a CONNECT of ours: client side only.
                        Event::Drain | Event::Accepted { .. } | Event::Refused { .. } => {}
                        Event::Closed { code, reason } => {
                            tracing::info!(code, %reason, "WebTransport session closed by the peer");
                            let _ = q.close(true, u64::from(code), reason.as_bytes());
                        }
                    }
                }
                if let Some(session) = session.as_mut() {
                    let mut streams = h3.streams(&mut q);
                    session.poll(&mut streams, Instant::now());
                }
                if h3.is_closed() && !q.is_closed() && !q.is_draining() {
                    // Let the capsule or the refusal go out (and be acknowledged) first.
                    let now = Instant::now();
                    let at = *close_at.get_or_insert_with(|| now + linger(&q));
                    if now >= at {
                        let (code, reason) = h3
                            .connection_close()
                            .unwrap_or((error_code::session::CANCEL, ""));
                        let _ = q.close(true, code, reason.as_bytes());
                        // Done: a deadline left in the past would keep the driver from
                        // waiting until quiche's closing period is over.
                        *close_at = None;
                    }
                }
            }
        }
    }

    fn deadline(&self) -> Option<Instant> {
        let app = match &self.kind {
            Kind::Moq(session) => session.deadline(),
            Kind::WebTransport {
                session, close_at, ..
            } => {
                let session = session.as_ref().and_then(|s| s.deadline());
                [session, *close_at].into_iter().flatten().min()
            }
        };
        [app, self.connect_deadline].into_iter().flatten().min()
    }
}

/// How long to wait before closing: 3·RTT, bounded by [`LINGER_MIN`] and [`LINGER_MAX`].
fn linger(conn: &QuicConnection) -> Duration {
    let rtt = conn.path_stats().next().map_or(Duration::ZERO, |p| p.rtt);
    (3 * rtt).clamp(LINGER_MIN, LINGER_MAX)
}
