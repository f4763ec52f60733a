//! One QUIC connection on its own non-blocking UDP socket (so a relay's SO_REUSEPORT group
//! spreads connections by source port): receive until the socket is empty (`recvmmsg`, with
//! GRO where the kernel has it, as QUIC stacks on real hosts do), send every packet quiche
//! has ready with `send_to`, and drive quiche's timer.

use moq_relay::transport::quic::QuicConnection;
use shards::udp::RecvBatch;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

/// Socket buffer size asked for in each direction.
const SOCKET_BUFFER: libc::c_int = 2 << 20;

/// A client connection and its socket.
pub struct Transport {
    pub conn: QuicConnection,
    socket: UdpSocket,
    local: SocketAddr,
    gro: bool,
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
        })
    }

    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Feeds every queued datagram to quiche; returns how many there were and their bytes.
    /// `batch` must have `MAX_RECV_LEN` buffers (GRO may coalesce).
    pub fn recv_all(&mut self, batch: &mut RecvBatch) -> (u64, u64) {
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
        (count, bytes)
    }

    /// Sends what quiche has ready; returns datagrams the socket refused.
    pub fn flush(&mut self, out: &mut [u8]) -> u64 {
        let mut drops = 0;
        loop {
            match self.conn.send(out) {
                Ok((len, info)) => loop {
                    match self.socket.send_to(&out[..len], info.to) {
                        Ok(_) => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => {
                            // Lost to us; QUIC loss recovery resends what mattered.
                            drops += 1;
                            break;
                        }
                    }
                },
                Err(_) => return drops,
            }
        }
    }

    /// Runs quiche's timer if it is due.
    pub fn on_timeout_if_due(&mut self, now: Instant) {
        if self.conn.timeout_instant().is_some_and(|t| t <= now) {
            self.conn.on_timeout();
        }
    }

    /// When quiche next needs [`quiche::Connection::on_timeout`].
    pub fn timeout(&self) -> Option<Instant> {
        self.conn.timeout_instant()
    }
}
