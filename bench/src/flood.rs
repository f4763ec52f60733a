//! Floods of client Initials, what an attacker sends to make a server start (or refuse, or
//! answer with a Retry) a handshake for each, at the cost of one `sendto` per datagram:
//! - forged: 1200-byte datagrams that pass every check a QUIC server can make without the
//!   Initial keys (long header, version 1, a fresh random destination id, the minimum size)
//!   but carry random bytes where the encrypted ClientHello would be;
//! - encrypted: real first Initials of quiche clients (a few hundred, sent in turn), which
//!   open with their keys like any client's.
//!
//! Used by `moq-bench --flood-ports` and by the relay's hostile tests.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// Which Initials a flood sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FloodKind {
    /// Random bytes behind a valid header ([`FakeInitials`]).
    Forged,
    /// Real client Initials ([`EncryptedInitials`]).
    Encrypted,
}

/// Real first Initials of quiche clients, each with its own connection ids, sent in turn.
pub struct EncryptedInitials {
    packets: Vec<Vec<u8>>,
    next: usize,
}

impl EncryptedInitials {
    /// `count` Initials addressed to `target` (at least one).
    pub fn new(target: SocketAddr, count: usize) -> Result<Self, quiche::Error> {
        let mut config = quiche::Config::new(quiche::PROTOCOL_VERSION)?;
        config.set_application_protos(&[b"moq-lite-05"])?;
        config.verify_peer(false);
        let local = SocketAddr::from(([127, 0, 0, 1], 9));
        let mut packets = Vec::with_capacity(count.max(1));
        for _ in 0..count.max(1) {
            let scid: [u8; 16] = rand::random();
            let mut conn = quiche::connect(
                Some("localhost"),
                &quiche::ConnectionId::from_ref(&scid),
                local,
                target,
                &mut config,
            )?;
            let mut out = vec![0u8; 1500];
            let (len, _) = conn.send(&mut out)?;
            out.truncate(len);
            packets.push(out);
        }
        Ok(Self { packets, next: 0 })
    }

    /// The next Initial, in turn.
    pub fn next_datagram(&mut self) -> &[u8] {
        let at = self.next;
        self.next = (at + 1) % self.packets.len();
        &self.packets[at]
    }
}

/// Fake client Initials, each with new connection ids.
pub struct FakeInitials {
    packet: [u8; 1200],
    state: u64,
}

impl Default for FakeInitials {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeInitials {
    pub fn new() -> Self {
        let mut packet = [0u8; 1200];
        // Long header, Initial, 4-byte packet number; version 1.
        packet[..5].copy_from_slice(&[0xc3, 0, 0, 0, 1]);
        packet[5] = 16; // DCID length, DCID at 6..22
        packet[22] = 8; // SCID length, SCID at 23..31
        packet[31] = 0; // token length
        let rest = 1200 - 34;
        packet[32] = 0x40 | (rest >> 8) as u8;
        packet[33] = rest as u8;
        for byte in packet[34..].iter_mut() {
            *byte = rand::random();
        }
        Self {
            packet,
            state: rand::random::<u64>() | 1,
        }
    }

    /// The next datagram, with a new destination and source id.
    pub fn next_datagram(&mut self) -> &[u8] {
        // xorshift64: cheap enough that the sender, not this, limits the rate.
        for at in [6usize, 14, 23] {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            self.packet[at..at + 8].copy_from_slice(&self.state.to_le_bytes());
        }
        &self.packet
    }
}

/// When a flood runs.
#[derive(Clone)]
pub enum Until {
    /// Until the flag is set.
    Stopped(Arc<AtomicBool>),
    /// From the first instant to the second.
    Window(Instant, Instant),
}

/// Distinct Initials an encrypted flood cycles through.
const ENCRYPTED_INITIALS: usize = 512;

/// The address flood socket `i` sends from: on IPv4 loopback an address of its own in
/// 127.2.0.0/16, standing for the many (spoofed) sources of a real flood, and never the
/// 127.0.0.1 of the viewers it disturbs; elsewhere whatever the kernel picks.
fn source(i: usize, target: SocketAddr) -> SocketAddr {
    match target.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => {
            let [hi, lo] = u16::try_from(i % 60_000 + 1).unwrap_or(1).to_be_bytes();
            SocketAddr::from(([127, 2, hi, lo], 0))
        }
        IpAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        IpAddr::V6(ip) if ip.is_loopback() => SocketAddr::from((ip, 0)),
        IpAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)),
    }
}

/// Floods `target` with `kind` Initials from `ports` sockets (several, so that SO_REUSEPORT
/// spreads them over every shard, each from its own address on loopback) as fast as one
/// thread can send, while `until` says so. The thread returns the datagrams the kernel took.
pub fn flood(
    target: SocketAddr,
    ports: usize,
    kind: FloodKind,
    until: Until,
) -> std::io::Result<JoinHandle<u64>> {
    let mut encrypted = match kind {
        FloodKind::Forged => None,
        FloodKind::Encrypted => Some(
            EncryptedInitials::new(target, ENCRYPTED_INITIALS)
                .map_err(|e| std::io::Error::other(format!("making Initials: {e}")))?,
        ),
    };
    let sockets = (0..ports.max(1))
        .map(|i| {
            let socket = UdpSocket::bind(source(i, target))?;
            socket.set_nonblocking(true)?;
            Ok(socket)
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    std::thread::Builder::new()
        .name("flood".into())
        .spawn(move || {
            if let Until::Window(start, _) = &until {
                std::thread::sleep(start.saturating_duration_since(Instant::now()));
            }
            let running = || match &until {
                Until::Stopped(stop) => !stop.load(Ordering::Relaxed),
                Until::Window(_, end) => Instant::now() < *end,
            };
            let mut forged = FakeInitials::new();
            let mut sent = 0u64;
            while running() {
                for socket in &sockets {
                    let datagram = match encrypted.as_mut() {
                        Some(initials) => initials.next_datagram(),
                        None => forged.next_datagram(),
                    };
                    if socket.send_to(datagram, target).is_ok() {
                        sent += 1;
                    }
                }
            }
            sent
        })
}
