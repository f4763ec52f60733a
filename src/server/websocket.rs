//! The WebSocket upgrade the HTTP listener hands over, and the task that then drives one
//! moq-lite session over QMux: bytes from the socket into the sans-IO WebSocket/QMux state
//! machine, the session on its streams, bytes back out, and QMux's timers.
//!
//! A connection whose QMux transport parameters have not arrived within the setup timeout
//! is closed (QMux closes with the moq-lite TIMEOUT code), and so is one that sends more
//! than the pre-authorization byte limit before its session is authorized; the moq-lite
//! session enforces its own SETUP deadline.

use crate::auth::ConnectPath;
use crate::notify::Notify;
use crate::session::{Session, SessionCounters, SessionEnv};
use crate::transport::qmux::{Config, QmuxConnection, Role, WsQmux};
use crate::transport::websocket;
use crate::transport::Streams;
use crate::web::{error_response, Request, UpgradeHandler, UpgradeTask};
use crate::wire::{error_code, Version};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use std::rc::Rc;
use std::time::Instant;

/// Runs moq-lite sessions on the WebSocket upgrades of one shard.
pub struct WebSocketHandler {
    pub env: Rc<SessionEnv>,
}

impl UpgradeHandler for WebSocketHandler {
    fn upgrade(&self, stream: TcpStream, request: Request, leftover: Vec<u8>) -> UpgradeTask {
        let env = self.env.clone();
        Box::pin(async move { run(&env, stream, request, leftover).await })
    }
}

/// Largest WebSocket message a client may send (a QMux record is far smaller).
const MAX_MESSAGE: usize = 1 << 20;

/// Answers the upgrade and runs the session until either side ends it. `leftover` holds
/// bytes the client sent after its request head.
async fn run(env: &Rc<SessionEnv>, mut stream: TcpStream, request: Request, leftover: Vec<u8>) {
    let headers: Vec<(&str, &str)> = request
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let handshake = websocket::Request {
        method: &request.method,
        path: request.path(),
        headers: &headers,
    };
    let accepted = match websocket::accept(&handshake) {
        Ok(accepted) => accepted,
        Err(e) => {
            tracing::debug!(error = ?e, "WebSocket upgrade refused");
            let _ = stream.write_all(e.response().as_bytes()).await;
            let _ = stream.close().await;
            return;
        }
    };
    let Some(version) = Version::from_alpn(accepted.moq_lite.as_bytes()) else {
        let _ = stream.write_all(&error_response(400, false)).await;
        return;
    };
    // Refuse a bad token or a private path before upgrading, as an HTTP status.
    if let Err(e) = env.auth.authorize(&ConnectPath::parse(&request.target)) {
        tracing::info!(error = %e, "WebSocket upgrade refused");
        let _ = stream
            .write_all(&error_response(e.http_status(), false))
            .await;
        return;
    }
    if stream
        .write_all(accepted.response().as_bytes())
        .await
        .is_err()
    {
        return;
    }
    tracing::info!(subprotocol = accepted.subprotocol, shard = env.shard.id, %version, "session started (WebSocket)");
    let now = Instant::now();
    let config = Config {
        version: accepted.qmux,
        ..Config::default()
    };
    let mut ws = WsQmux::new(QmuxConnection::new(Role::Server, config, now), MAX_MESSAGE);
    let notify = Notify::new();
    let mut session = Session::new(
        env.clone(),
        version,
        notify.clone(),
        Some(request.target.clone()),
    );
    if !leftover.is_empty() && ws.on_bytes(&leftover, now).is_err() {
        return;
    }
    let mut probation = Probation {
        env,
        received: leftover.len() as u64,
        open: true,
        deadline: Some(now + env.limits.setup_timeout),
    };
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        probation.check(&mut ws.conn, &session, Instant::now());
        session.poll(&mut ws.conn, Instant::now());
        while let Some(bytes) = ws.poll_bytes() {
            if stream.write_all(&bytes).await.is_err() {
                return;
            }
        }
        if ws.is_finished() || ws.conn.is_closed() && ws.end().is_some() {
            break;
        }
        let deadline = [
            ws.conn.next_timeout(),
            session.deadline(),
            probation.deadline,
        ]
        .into_iter()
        .flatten()
        .min();
        let event = {
            let read = async { Wake::Read(stream.read(&mut chunk).await) };
            let woken = async {
                notify.notified().await;
                Wake::Session
            };
            let timer = async {
                match deadline {
                    Some(at) => {
                        glommio::timer::sleep(at.saturating_duration_since(Instant::now())).await
                    }
                    None => std::future::pending::<()>().await,
                }
                Wake::Timer
            };
            futures_lite::future::or(read, futures_lite::future::or(woken, timer)).await
        };
        let now = Instant::now();
        match event {
            Wake::Read(Ok(0)) | Wake::Read(Err(_)) => break,
            Wake::Read(Ok(n)) => {
                probation.received = probation.received.saturating_add(n as u64);
                if ws.on_bytes(&chunk[..n], now).is_err() {
                    // Flush the close the codec queued, then end.
                    while let Some(bytes) = ws.poll_bytes() {
                        let _ = stream.write_all(&bytes).await;
                    }
                    break;
                }
            }
            Wake::Session => {}
            Wake::Timer => ws.on_timeout(now),
        }
    }
    if let Some(reason) = ws.conn.close_reason() {
        tracing::info!(?reason, "WebSocket session ended");
    }
    drop(session);
    let _ = stream.close().await;
}

/// The limits on a connection whose session is not authorized yet.
struct Probation<'a> {
    env: &'a SessionEnv,
    /// Bytes read from the socket so far.
    received: u64,
    /// Held to the byte limit: until the session is authorized or the connection closed.
    open: bool,
    /// When the QMux parameters must have arrived; `None` once they did.
    deadline: Option<Instant>,
}

impl Probation<'_> {
    /// Closes the connection if it broke a limit of its probation.
    fn check(&mut self, conn: &mut QmuxConnection, session: &Session, now: Instant) {
        if conn.is_closed() {
            self.open = false;
            self.deadline = None;
        }
        if conn.is_established() {
            self.deadline = None;
        }
        if session.is_authorized() {
            self.open = false;
        }
        let counters = &self.env.counters;
        if self.open && self.received > self.env.limits.pre_auth_bytes {
            SessionCounters::bump(&counters.pre_auth_overflows);
            tracing::info!(
                limit = self.env.limits.pre_auth_bytes,
                "WebSocket session closed: too much data before it was authorized"
            );
            conn.close(
                error_code::session::PROTOCOL_VIOLATION,
                "too much data before authorization",
            );
            self.open = false;
            self.deadline = None;
        } else if !conn.is_established() && self.deadline.is_some_and(|at| now >= at) {
            SessionCounters::bump(&counters.connect_timeouts);
            tracing::info!("WebSocket session closed: no QMux parameters before the setup timeout");
            conn.close(error_code::session::TIMEOUT, "no QMux parameters in time");
            self.open = false;
            self.deadline = None;
        }
    }
}

/// What woke the session task.
enum Wake {
    Read(std::io::Result<usize>),
    Session,
    Timer,
}
