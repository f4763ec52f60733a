//! What carries one connection's moq-lite session: the QUIC connection itself (ALPN
//! `moq-lite-05`), or one WebTransport session on it (ALPN `h3`, the relay's own sans-IO
//! HTTP/3 code in its client role). Both are seen through the relay's [`Streams`] interface,
//! so the session code above is the same for each.

use crate::args::TransportKind;
use moq_relay::transport::quic::{QuicConnection, QuicStreams, StreamIds};
use moq_relay::transport::webtransport::{Event, WebTransportSession};
use moq_relay::transport::Streams;
use moq_relay::wire::Version;

/// The protocol we offer in the CONNECT's `wt-available-protocols`.
const PROTOCOL: &str = "moq-lite-05";

/// Where the carrier stands.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// Still handshaking (QUIC, or the CONNECT exchange).
    Pending,
    /// The moq-lite session can run.
    Ready,
    /// It will never run, for this reason.
    Failed(String),
}

/// The carrier of one connection.
pub enum Carrier {
    Quic(StreamIds),
    WebTransport(Box<WebTransportSession>),
}

impl TransportKind {
    /// The ALPN our QUIC handshake offers.
    pub fn alpn(self) -> &'static [u8] {
        match self {
            TransportKind::Quic => Version::Lite05.alpn(),
            TransportKind::Webtransport => b"h3",
        }
    }
}

impl Carrier {
    /// A carrier of `kind`; WebTransport asks `authority` for a session at `path`.
    pub fn new(kind: TransportKind, authority: &str, path: &str) -> Self {
        match kind {
            TransportKind::Quic => Carrier::Quic(StreamIds::new(false)),
            TransportKind::Webtransport => Carrier::WebTransport(Box::new(
                WebTransportSession::client(authority, path, &[PROTOCOL]),
            )),
        }
    }

    /// Moves the carrier forward after packets or a timer. A failed WebTransport session
    /// also closes the QUIC connection.
    pub fn drive(&mut self, conn: &mut QuicConnection) -> Progress {
        let wt = match self {
            Carrier::Quic(_) if conn.is_established() => return Progress::Ready,
            Carrier::Quic(_) => return Progress::Pending,
            Carrier::WebTransport(wt) => wt,
        };
        let mut progress = if wt.is_established() {
            Progress::Ready
        } else {
            Progress::Pending
        };
        for event in wt.drive(conn) {
            let failure = match event {
                Event::Accepted { protocol } if protocol.as_deref() == Some(PROTOCOL) => {
                    progress = Progress::Ready;
                    continue;
                }
                Event::Accepted { protocol } => format!(
                    "the relay accepted the WebTransport CONNECT with protocol {protocol:?}, \
                     not {PROTOCOL}"
                ),
                Event::Refused { status } => {
                    format!("the relay refused the WebTransport CONNECT with status {status}")
                }
                Event::Closed { code, reason } => {
                    format!("the relay closed the WebTransport session: code {code} {reason:?}")
                }
                Event::Connect(_) | Event::Rejected(_) | Event::Drain => continue,
            };
            if !conn.is_closed() {
                let _ = conn.close(true, 0, b"");
            }
            progress = Progress::Failed(failure);
        }
        if wt.is_closed() && progress == Progress::Ready {
            progress = Progress::Failed("the WebTransport session ended".into());
        }
        progress
    }

    /// Runs `f` on the session's streams.
    pub fn with_streams<R>(
        &mut self,
        conn: &mut QuicConnection,
        f: impl FnOnce(&mut dyn Streams) -> R,
    ) -> R {
        match self {
            Carrier::Quic(ids) => f(&mut QuicStreams { conn, ids }),
            Carrier::WebTransport(wt) => f(&mut wt.streams(conn)),
        }
    }
}
