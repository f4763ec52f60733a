//! The QUIC half of the client: handshake, packet pump, timers, and address migration.

use moq_relay::transport::quic::{
    client_config, QuicConnection, QuicSettings, QuicStreams, StreamIds,
};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// A client QUIC connection on a blocking UDP socket.
pub struct QuicClient {
    pub conn: QuicConnection,
    pub ids: StreamIds,
    socket: UdpSocket,
    local: SocketAddr,
    peer: SocketAddr,
    buf: Vec<u8>,
}

impl QuicClient {
    /// Connects to `peer` offering `alpns` in that order, with our receive windows and limits from
    /// `settings`; does not verify the certificate.
    pub fn connect(
        peer: SocketAddr,
        alpns: &[&[u8]],
        settings: &QuicSettings,
        timeout: Duration,
    ) -> io::Result<Self> {
        let mut config = client_config(settings, alpns, false).map_err(other)?;
        let socket = bind_like(peer)?;
        let local = socket.local_addr()?;
        let scid: [u8; 16] = rand::random();
        let scid = quiche::ConnectionId::from_ref(&scid);
        let conn =
            quiche::connect_with_buffer_factory(Some("localhost"), &scid, local, peer, &mut config)
                .map_err(other)?;
        let mut client = Self {
            conn,
            ids: StreamIds::new(false),
            socket,
            local,
            peer,
            buf: vec![0; 65536],
        };
        let deadline = Instant::now() + timeout;
        while !client.conn.is_established() {
            if client.conn.is_closed() || Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "QUIC handshake did not complete",
                ));
            }
            client.pump(Duration::from_millis(20))?;
        }
        Ok(client)
    }

    /// Gives the relay spare connection ids of ours, so a migrated path can use a new one.
    fn issue_cids(&mut self) {
        while self.conn.scids_left() > 0 {
            let cid: [u8; 16] = rand::random();
            let cid = quiche::ConnectionId::from_ref(&cid);
            if self.conn.new_scid(&cid, rand::random(), false).is_err() {
                break;
            }
        }
    }

    /// The stream interface of the connection.
    pub fn streams(&mut self) -> QuicStreams<'_> {
        QuicStreams {
            conn: &mut self.conn,
            ids: &mut self.ids,
        }
    }

    /// Sends what is pending, then receives for up to `wait`, handling timers.
    pub fn pump(&mut self, wait: Duration) -> io::Result<()> {
        self.flush()?;
        let deadline = Instant::now() + wait;
        loop {
            let now = Instant::now();
            let mut until = deadline.saturating_duration_since(now);
            if let Some(t) = self.conn.timeout() {
                until = until.min(t);
            }
            self.socket
                .set_read_timeout(Some(until.max(Duration::from_millis(1))))?;
            match self.socket.recv_from(&mut self.buf) {
                Ok((len, from)) => {
                    let info = quiche::RecvInfo {
                        from,
                        to: self.local,
                    };
                    let _ = self.conn.recv(&mut self.buf[..len], info);
                    // Drain whatever else is queued without waiting.
                    self.socket.set_nonblocking(true)?;
                    while let Ok((len, from)) = self.socket.recv_from(&mut self.buf) {
                        let info = quiche::RecvInfo {
                            from,
                            to: self.local,
                        };
                        let _ = self.conn.recv(&mut self.buf[..len], info);
                    }
                    self.socket.set_nonblocking(false)?;
                    self.flush()?;
                    return Ok(());
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if self.conn.timeout().is_some_and(|t| t.is_zero())
                        || self
                            .conn
                            .timeout_instant()
                            .is_some_and(|t| t <= Instant::now())
                    {
                        self.conn.on_timeout();
                        self.flush()?;
                    }
                    if Instant::now() >= deadline {
                        return Ok(());
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends every packet quiche has ready.
    pub fn flush(&mut self) -> io::Result<()> {
        let mut out = [0u8; 1500];
        loop {
            match self.conn.send(&mut out) {
                Ok((len, info)) => {
                    let _ = self.socket.send_to(&out[..len], info.to);
                }
                Err(quiche::Error::Done) => return Ok(()),
                Err(e) => return Err(other(e)),
            }
        }
    }

    /// Moves the connection to a fresh local port, as a NAT rebinding would: the relay sees
    /// the same connection arrive from a new address (and maybe on another shard).
    pub fn rebind(&mut self) -> io::Result<()> {
        self.issue_cids();
        self.flush()?;
        let socket = bind_like(self.peer)?;
        let local = socket.local_addr()?;
        // Without a spare connection id on each side quiche refuses (OutOfIdentifiers); the
        // old socket and path then stay as they were, so the caller may retry later.
        self.conn.migrate_source(local).map_err(other)?;
        self.socket = socket;
        self.local = local;
        // Say something on the new path at once, as a client with data to send would.
        self.conn.send_ack_eliciting().map_err(other)?;
        self.flush()
    }

    /// Moves to a fresh local port behind quiche's back, as a NAT rebinding does: the
    /// connection keeps its connection ids and its own view of the path, and the relay sees
    /// the same connection id arrive from a new address (maybe on another shard). Unlike
    /// [`Self::rebind`] it needs no spare connection ids, so it can repeat without limit.
    pub fn nat_rebind(&mut self) -> io::Result<()> {
        self.flush()?;
        self.socket = bind_like(self.peer)?;
        // Say something from the new port at once, as a client with data to send would.
        self.conn.send_ack_eliciting().map_err(other)?;
        self.flush()
    }

    /// The local address packets currently leave from.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

/// A socket of the peer's family: on loopback for a loopback peer (so the path's local
/// address is concrete), else on the unspecified address.
fn bind_like(peer: SocketAddr) -> io::Result<UdpSocket> {
    let ip: std::net::IpAddr = match (peer.ip().is_loopback(), peer.is_ipv4()) {
        (true, true) => std::net::Ipv4Addr::LOCALHOST.into(),
        (true, false) => std::net::Ipv6Addr::LOCALHOST.into(),
        (false, true) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        (false, false) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    };
    UdpSocket::bind(SocketAddr::new(ip, 0))
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}
