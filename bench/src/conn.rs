//! One QUIC connection on its own non-blocking UDP socket (so a relay's SO_REUSEPORT group
//! spreads connections by source port): receive until the socket is empty (`recvmmsg`, with
//! GRO where the kernel has it, as QUIC stacks on real hosts do), send every packet quiche
//! has ready with `send_to`, and drive quiche's timer.
//!
//! **Acknowledgements on a published client's schedule.** quiche has no delayed ACK: every
//! `send()` after an ack-eliciting packet carries an ACK, so a generator that sends after
//! each wake-up acknowledges a relay that spreads its packets out once per packet. quinn
//! (inside moq-native, so every published Rust client and moq-relay as a peer) follows RFC
//! 9000 §13.2.2: an ACK once two ack-eliciting packets are unacknowledged, otherwise
//! within `max_ack_delay` (25 ms). A relay pays per ACK it processes, so the first schedule
//! charged it for up to twice the ACKs a real audience sends. [`Transport::wants_send`]
//! applies quinn's rule: the owner sends when it has something of its own to say, when
//! quiche's timer fired, when two datagrams are unacknowledged (quiche does not say which
//! packets were ack-eliciting; under media load from a relay nearly all are), or when the
//! oldest unacknowledged one is [`MAX_ACK_DELAY`] old.

use moq_relay::transport::quic::QuicConnection;
use shards::udp::RecvBatch;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// Socket buffer size asked for in each direction. Published clients keep the kernel's
/// default; a larger buffer keeps the generator's own receive drops (which the relay would
/// pay for in retransmissions) out of the measurement.
const SOCKET_BUFFER: libc::c_int = 2 << 20;

/// Longest an ACK waits (quinn's default `max_ack_delay`, which quiche also advertises).
pub const MAX_ACK_DELAY: Duration = Duration::from_millis(25);
/// Unacknowledged datagrams that make an ACK due at once (quinn: more than one).
const ACK_ELICITING_THRESHOLD: u32 = 2;

/// A client connection and its socket.
pub struct Transport {
    pub conn: QuicConnection,
    socket: UdpSocket,
    local: SocketAddr,
    gro: bool,
    /// Datagrams fed to quiche since its last `send()`.
    unacked: u32,
    /// When the oldest of them arrived.
    first_unacked: Option<Instant>,
}

impl Transport {
    /// Starts a handshake with `peer`; the first flight is sent by [`Self::flush`].
    pub fn connect(
        peer: SocketAddr,
        server_name: &str,
        config: &mut quiche::Config,
    ) -> io::Result<Self> {
        let ip: IpAddr = match (peer.ip().is_loopback(), peer.is_ipv4()) {
            (true, true) => Ipv4Addr::LOCALHOST.into(),
            (true, false) => Ipv6Addr::LOCALHOST.into(),
            (false, true) => Ipv4Addr::UNSPECIFIED.into(),
            (false, false) => Ipv6Addr::UNSPECIFIED.into(),
        };
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0))?;
        socket.set_nonblocking(true)?;
        for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
            // SAFETY: a valid socket and a c_int option value of the right size.
            unsafe {
                libc::setsockopt(
                    socket.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    (&SOCKET_BUFFER as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        let gro = shards::udp::enable_gro(socket.as_raw_fd());
        let local = socket.local_addr()?;
        let scid: [u8; 16] = rand::random();
        let scid = quiche::ConnectionId::from_ref(&scid);
        let conn =
            quiche::connect_with_buffer_factory(Some(server_name), &scid, local, peer, config)
                .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Self {
            conn,
            socket,
            local,
            gro,
            unacked: 0,
            first_unacked: None,
        })
    }

    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Feeds every queued datagram to quiche; returns how many there were and their bytes.
    /// `batch` must have `MAX_RECV_LEN` buffers (GRO may coalesce).
    pub fn recv_all(&mut self, batch: &mut RecvBatch, now: Instant) -> (u64, u64) {
        let (mut count, mut bytes) = (0, 0);
        while let Ok(filled) = shards::udp::recv_batch_on(self.fd(), self.gro, batch) {
            if filled == 0 {
                break;
            }
            for (meta, datagram) in batch.segments_mut() {
                count += 1;
                bytes += datagram.len() as u64;
                let info = quiche::RecvInfo {
                    from: meta.src,
                    to: self.local,
                };
                let _ = self.conn.recv(datagram, info);
            }
        }
        if count > 0 {
            self.unacked = self.unacked.saturating_add(count as u32);
            self.first_unacked.get_or_insert(now);
        }
        (count, bytes)
    }

    /// When the oldest unacknowledged datagram must be acknowledged by.
    pub fn ack_deadline(&self) -> Option<Instant> {
        self.first_unacked.map(|t| t + MAX_ACK_DELAY)
    }

    /// Whether to call [`Self::flush`] now: `own` says the owner has something of its own to
    /// send (stream writes, a PING, a close, the handshake, a timer quiche handled); without
    /// it, only an ACK that quinn's rule makes due.
    pub fn wants_send(&self, own: bool, now: Instant) -> bool {
        own || self.unacked >= ACK_ELICITING_THRESHOLD
            || self.ack_deadline().is_some_and(|t| t <= now)
    }

    /// Sends what quiche has ready (with it, the ACK of everything received); returns the
    /// datagrams sent and those the socket refused.
    pub fn flush(&mut self, out: &mut [u8]) -> (u64, u64) {
        self.unacked = 0;
        self.first_unacked = None;
        let (mut sent, mut drops) = (0, 0);
        loop {
            match self.conn.send(out) {
                Ok((len, info)) => loop {
                    match self.socket.send_to(&out[..len], info.to) {
                        Ok(_) => {
                            sent += 1;
                            break;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => {
                            // Lost to us; QUIC loss recovery resends what mattered.
                            drops += 1;
                            break;
                        }
                    }
                },
                Err(_) => return (sent, drops),
            }
        }
    }

    /// Runs quiche's timer if it is due; returns whether it ran.
    pub fn on_timeout_if_due(&mut self, now: Instant) -> bool {
        let due = self.conn.timeout_instant().is_some_and(|t| t <= now);
        if due {
            self.conn.on_timeout();
        }
        due
    }

    /// When quiche next needs [`quiche::Connection::on_timeout`].
    pub fn timeout(&self) -> Option<Instant> {
        self.conn.timeout_instant()
    }
}
