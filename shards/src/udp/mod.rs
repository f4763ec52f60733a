//! The UDP fast path: batched receive with GRO, batched send with GSO, source/destination
//! addresses, and the fallbacks when the kernel lacks a feature (the role quinn-udp plays for
//! quinn). The QUIC layer above only sees "receive a batch" and "send these datagrams".
//!
//! [`UdpSocket`] wraps a glommio `UdpSocket` (which owns the file descriptor and provides the
//! io_uring waits) and does the real work with direct nonblocking syscalls on its descriptor:
//!
//! * **Receive**: `recvmmsg(MSG_DONTWAIT)` into a caller-owned, reused [`RecvBatch`]. With
//!   `UDP_GRO` enabled (when the kernel accepts it) the kernel may coalesce consecutive
//!   datagrams of one flow into one buffer and reports the segment size in a `UDP_GRO` control
//!   message; the batch splits such buffers back into datagrams. When nothing is queued
//!   (`EAGAIN`), the task waits through glommio for a datagram to arrive (a 1-byte
//!   `peek_from`, which io_uring completes when the socket becomes readable) and retries.
//! * **Send**: `sendmsg(MSG_DONTWAIT)` with a `UDP_SEGMENT` control message (GSO) carrying up
//!   to [`UdpSocket::max_gso_segments`] datagrams per call. GSO support is probed once per
//!   process; if the kernel later rejects GSO on this socket's path (`EIO`: no checksum
//!   offload; `EINVAL` when the same datagram alone is accepted) the socket remembers and sends
//!   one datagram per call from then on. When the socket buffer is full (`EAGAIN`) the next
//!   datagram is sent through glommio's `send_to`, which waits in io_uring for room (or, when a
//!   source address must be set, a short timer is awaited) and the rest is retried directly.
//!
//! Neither path allocates per packet: receive buffers live in the [`RecvBatch`], send-side
//! headers and control messages on the stack. Peer input cannot make it panic: lengths and
//! control messages from the kernel are bounds-checked, and malformed or truncated datagrams are
//! dropped and counted ([`UdpSocket::stats`]).
//!
//! Every method takes `&self`, so one socket can be shared (e.g. in an `Rc`) by a receiving
//! task and any number of sending tasks of the same shard.

mod batch;
mod cmsg;
mod transmit;

pub use batch::{RecvBatch, RecvMeta, MAX_RECV_BATCH, MAX_RECV_LEN};
pub use transmit::{Transmit, MAX_GSO_SEGMENTS, MAX_SEND_BYTES};

use cmsg::{CmsgBuf, Encoder};
use socket2::SockAddr;
use std::cell::Cell;
use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a send waits before retrying when the socket buffer is full and the datagram
/// cannot go through glommio's `send_to` (because it carries a source address).
const FULL_BUFFER_RETRY: Duration = Duration::from_millis(1);

/// Continuous receiving (batch after full batch, the socket never running dry) after which
/// `recv_batch` lets the shard's other tasks run: timers, the mesh, sends. Only a flood keeps
/// a socket from running dry that long; a backlog of ACKs from a round of sends empties
/// sooner. The budget is time, not a count of batches, so it holds whatever a datagram costs:
/// 512 full batches (the count used before) took seconds when each datagram started a
/// handshake, and viewers on the shard saw nothing for 3.5 s. It must stay well above what a
/// backlog takes: 64 full batches (4096 datagrams, a few milliseconds of ACKs) was too few
/// at 3000 viewers of 1 Mbps on one core, where the yield dropped 10 000 datagrams a second.
const RECV_TIME_BUDGET: Duration = Duration::from_millis(20);

/// Counters of one socket since it was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdpStats {
    /// Datagrams received (GRO runs counted per segment).
    pub datagrams_received: u64,
    /// Datagrams dropped on receive because they did not fit the buffer or had an unusable
    /// source address.
    pub receive_dropped: u64,
    /// Datagrams handed to the kernel.
    pub datagrams_sent: u64,
    /// Transmits (or their remainders) dropped because the kernel refused them (unreachable,
    /// too large, ...) or, for `try_send`, because the buffer filled mid-transmit or the
    /// caller gave up on a full buffer ([`UdpSocket::give_up_send`]).
    pub send_dropped: u64,
    /// Times GSO was found not to work and this socket fell back to one datagram per call.
    pub gso_fallbacks: u64,
    /// Times receiving gave the shard's other tasks their turn after
    /// [`RECV_TIME_BUDGET`] of continuous receiving (a flood).
    pub receive_yields: u64,
}

#[derive(Debug, Default)]
struct Counters {
    datagrams_received: Cell<u64>,
    receive_dropped: Cell<u64>,
    datagrams_sent: Cell<u64>,
    send_dropped: Cell<u64>,
    gso_fallbacks: Cell<u64>,
    receive_yields: Cell<u64>,
}

fn bump(c: &Cell<u64>, n: u64) {
    c.set(c.get().wrapping_add(n));
}

/// Whether the kernel accepts `UDP_SEGMENT` (probed once per process on a scratch socket).
fn gso_supported() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        let Ok(socket) = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        ) else {
            return false;
        };
        set_int_option(socket.as_raw_fd(), libc::SOL_UDP, libc::UDP_SEGMENT, 1200).is_ok()
    })
}

fn set_int_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: valid fd, pointer to a live c_int of the advertised size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Converts a kernel socket address to a `SocketAddr`, reporting v4-mapped IPv6 as IPv4.
fn sockaddr_to_std(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says this is a sockaddr_in, and it is long enough.
            let a =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family says this is a sockaddr_in6, and it is long enough.
            let a = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            let port = u16::from_be(a.sin6_port);
            Some(match ip.to_ipv4_mapped() {
                Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, port)),
                None => SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    port,
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                )),
            })
        }
        _ => None,
    }
}

/// Enables UDP GRO on a socket; whether the kernel accepted it. A socket with GRO needs
/// receive buffers of [`MAX_RECV_LEN`] bytes.
pub fn enable_gro(fd: RawFd) -> bool {
    set_int_option(fd, libc::SOL_UDP, libc::UDP_GRO, 1).is_ok()
}

/// One non-blocking `recvmmsg` on any UDP socket descriptor into `batch` (the shard sockets'
/// receive, also usable outside an executor, e.g. by a load generator). Returns the number
/// of filled buffers, or `WouldBlock`. A truncated or unaddressed datagram leaves an empty
/// buffer (`len == 0`) for the caller to count. `gro` says whether GRO is enabled on `fd`.
pub fn recv_batch_on(fd: RawFd, gro: bool, batch: &mut RecvBatch) -> io::Result<usize> {
    batch.filled = 0;
    if gro && batch.buf_len < MAX_RECV_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "GRO is enabled: receive buffers must be MAX_RECV_LEN bytes",
        ));
    }
    let n = batch.capacity();
    // SAFETY: plain-data arrays; every field used is initialised below.
    let mut iovs: [libc::iovec; MAX_RECV_BATCH] = unsafe { mem::zeroed() };
    let mut hdrs: [libc::mmsghdr; MAX_RECV_BATCH] = unsafe { mem::zeroed() };
    let storage = batch.storage.as_mut_ptr();
    for i in 0..n {
        iovs[i] = libc::iovec {
            // SAFETY: buffer i lies within storage (n * buf_len bytes).
            iov_base: unsafe { storage.add(i * batch.buf_len) }.cast(),
            iov_len: batch.buf_len,
        };
        let hdr = &mut hdrs[i].msg_hdr;
        hdr.msg_name = (&mut batch.names[i] as *mut libc::sockaddr_storage).cast();
        hdr.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        hdr.msg_iov = &mut iovs[i];
        hdr.msg_iovlen = 1;
        hdr.msg_control = batch.cmsgs[i].0.as_mut_ptr().cast();
        hdr.msg_controllen = cmsg::CMSG_CAPACITY as _;
    }
    let received = loop {
        // SAFETY: n valid mmsghdrs pointing at live buffers owned by `batch`.
        let r = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r >= 0 {
            break r as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    for (i, mmsg) in hdrs.iter().enumerate().take(received.min(n)) {
        let hdr = &mmsg.msg_hdr;
        let len = (mmsg.msg_len as usize).min(batch.buf_len);
        let src = sockaddr_to_std(&batch.names[i], hdr.msg_namelen);
        // SAFETY: the control buffer was written by recvmmsg, bounded by msg_controllen.
        let decoded = unsafe { cmsg::decode(hdr) };
        let meta = &mut batch.meta[i];
        *meta = match src {
            Some(src) if hdr.msg_flags & libc::MSG_TRUNC == 0 => {
                let stride = decoded.gro_segment.map_or(len, |s| s.min(len));
                RecvMeta {
                    src,
                    dst_ip: decoded.dst_ip,
                    len,
                    stride,
                }
            }
            // Truncated or unaddressed: an empty buffer the caller counts as dropped.
            _ => RecvMeta {
                src: src.unwrap_or(RecvMeta::default().src),
                ..RecvMeta::default()
            },
        };
    }
    batch.filled = received.min(n);
    Ok(batch.filled)
}

/// A shard's UDP socket with the batched GSO/GRO fast path.
///
/// Must be created and used inside a glommio executor (the shard that owns it).
#[derive(Debug)]
pub struct UdpSocket {
    io: glommio::net::UdpSocket,
    fd: RawFd,
    local_addr: SocketAddr,
    ipv6: bool,
    gro: bool,
    /// Segments per `sendmsg`: `MAX_GSO_SEGMENTS` with GSO, 1 without (or after a fallback).
    gso_segments: Cell<usize>,
    /// Since when every receive batch came back full (the socket had more queued), if the
    /// last one did.
    flood_since: Cell<Option<Instant>>,
    counters: Counters,
}

impl UdpSocket {
    /// Binds a new `SO_REUSEPORT` socket on `addr` (dual-stack for `[::]`) with the kernel's
    /// default buffer sizes and wraps it. Handy for tests and clients; the runtime gives each
    /// shard its sockets already wrapped ([`crate::Shard::take_udp_sockets`]).
    pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
        let socket = crate::bind::bind_udp(addr, 0, 0).map_err(|f| {
            io::Error::new(f.source.kind(), format!("{} {addr}: {}", f.op, f.source))
        })?;
        UdpSocket::from_socket2(socket)
    }

    /// Wraps a bound UDP socket: enables GRO and destination-address reporting where the
    /// kernel supports them and detects GSO. Must be called inside a glommio executor. The
    /// descriptor should stay in blocking mode (glommio's io_uring waits need that; the fast
    /// path passes `MSG_DONTWAIT` itself).
    pub fn from_socket2(socket: socket2::Socket) -> io::Result<UdpSocket> {
        let local_addr = socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an IP socket"))?;
        let ipv6 = local_addr.is_ipv6();
        let fd = socket.as_raw_fd();
        let gro = enable_gro(fd);
        // Destination addresses: best effort, only used for `RecvMeta::dst_ip`. On an IPv6
        // socket IP_PKTINFO covers its IPv4 (v4-mapped) traffic.
        if ipv6 {
            let _ = set_int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1);
        }
        let _ = set_int_option(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1);
        let gso_segments = if gso_supported() { MAX_GSO_SEGMENTS } else { 1 };
        Ok(UdpSocket {
            // glommio depends on socket2 0.4, so hand over the descriptor rather than the type.
            // SAFETY: we own the descriptor and transfer its ownership.
            io: unsafe { glommio::net::UdpSocket::from_raw_fd(socket.into_raw_fd()) },
            fd,
            local_addr,
            ipv6,
            gro,
            gso_segments: Cell::new(gso_segments),
            flood_since: Cell::new(None),
            counters: Counters::default(),
        })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether the kernel may coalesce received datagrams (`UDP_GRO` is on). Receive buffers
    /// must then be [`MAX_RECV_LEN`] bytes.
    pub fn gro_enabled(&self) -> bool {
        self.gro
    }

    /// How many datagrams one [`Transmit`] segment run should hold at most to go out in one
    /// `sendmsg`: [`MAX_GSO_SEGMENTS`] with GSO, 1 without. Larger runs are accepted and split.
    pub fn max_gso_segments(&self) -> usize {
        self.gso_segments.get()
    }

    /// Counters since the socket was created.
    pub fn stats(&self) -> UdpStats {
        let c = &self.counters;
        UdpStats {
            datagrams_received: c.datagrams_received.get(),
            receive_dropped: c.receive_dropped.get(),
            datagrams_sent: c.datagrams_sent.get(),
            send_dropped: c.send_dropped.get(),
            gso_fallbacks: c.gso_fallbacks.get(),
            receive_yields: c.receive_yields.get(),
        }
    }

    /// The underlying glommio socket (for anything the fast path does not cover).
    pub fn glommio(&self) -> &glommio::net::UdpSocket {
        &self.io
    }

    // ----- receive -----

    /// Receives at least one datagram into `batch`, waiting if none is queued, and returns the
    /// number of filled buffers (see [`RecvBatch::segments`] for the datagrams).
    ///
    /// Errors are the socket's (rare for an unconnected UDP socket); a caller can log them and
    /// call again. Cancel-safe: dropping the future loses no datagram.
    ///
    /// It does not yield while it drains an ordinary backlog. A yield puts the receiving task
    /// behind every task already queued in its task queue (run it in a queue of its own, as
    /// the relay does, so that is no one), and under load one frame wakes every viewer's
    /// connection: in a shared queue the socket would go unread for tens of milliseconds and
    /// overflow with ACKs (at 2500 viewers of 1 Mbps on one core, a yield per call lost
    /// 11 000 datagrams a second, and with them fairness between connections). Only a flood, which would always
    /// find datagrams queued and never wait, gives the shard's other tasks their turn: once it
    /// has received for [`RECV_TIME_BUDGET`] without the socket running dry, when the
    /// executor's preemption timer says others are waiting
    /// ([`crate::RuntimeConfig::preempt_timer`]). The clock is read once per run of full
    /// batches and once per call within one, never per datagram.
    pub async fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        if let Some(since) = self.flood_since.get() {
            if since.elapsed() >= RECV_TIME_BUDGET {
                self.flood_since.set(None);
                if glommio::executor().need_preempt() {
                    bump(&self.counters.receive_yields, 1);
                    glommio::yield_if_needed().await;
                }
            }
        }
        loop {
            match self.try_recv_batch(batch) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.flood_since.set(None),
                Ok(filled) => {
                    if filled < batch.capacity() {
                        self.flood_since.set(None);
                    } else if self.flood_since.get().is_none() {
                        self.flood_since.set(Some(Instant::now()));
                    }
                    return Ok(filled);
                }
                other => return other,
            }
            // Wait until a datagram is queued; peeking leaves it for the recvmmsg above.
            let mut probe = [0u8; 1];
            self.io
                .peek_from(&mut probe)
                .await
                .map_err(io::Error::from)?;
        }
    }

    /// Receives whatever is queued into `batch` without waiting: the number of filled buffers,
    /// or `WouldBlock` when nothing is queued.
    pub fn try_recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        let filled = recv_batch_on(self.fd, self.gro, batch)?;
        for meta in &batch.meta[..filled] {
            if meta.len == 0 {
                // Counted, not logged: a peer can send these as fast as it likes.
                bump(&self.counters.receive_dropped, 1);
            } else {
                bump(&self.counters.datagrams_received, meta.datagrams() as u64);
            }
        }
        Ok(filled)
    }

    // ----- send -----

    /// The destination as this socket's family expects it (IPv4 becomes v4-mapped on IPv6).
    fn wire_dst(&self, dst: SocketAddr) -> io::Result<SocketAddr> {
        match (self.ipv6, dst) {
            (true, SocketAddr::V4(v4)) => Ok(SocketAddr::V6(SocketAddrV6::new(
                v4.ip().to_ipv6_mapped(),
                v4.port(),
                0,
                0,
            ))),
            (false, SocketAddr::V6(v6)) => match v6.ip().to_ipv4_mapped() {
                Some(ip) => Ok(SocketAddr::V4(SocketAddrV4::new(ip, v6.port()))),
                None => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "cannot send to {dst} from the IPv4 socket {}",
                        self.local_addr
                    ),
                )),
            },
            _ => Ok(dst),
        }
    }

    /// One `sendmsg` of `bytes` to `dst`, with a GSO segment size and/or a source address.
    fn send_piece(
        &self,
        dst: &SockAddr,
        src_ip: Option<IpAddr>,
        bytes: &[u8],
        segment: Option<u16>,
    ) -> io::Result<()> {
        let mut iov = libc::iovec {
            iov_base: bytes.as_ptr() as *mut libc::c_void,
            iov_len: bytes.len(),
        };
        // SAFETY: plain data; every pointer set below outlives the call.
        let mut hdr: libc::msghdr = unsafe { mem::zeroed() };
        hdr.msg_name = dst.as_ptr() as *mut libc::c_void;
        hdr.msg_namelen = dst.len();
        hdr.msg_iov = &mut iov;
        hdr.msg_iovlen = 1;
        let mut control = CmsgBuf::new();
        let mut encoder = Encoder::new(&mut hdr, &mut control);
        if let Some(segment) = segment {
            encoder.push(libc::SOL_UDP, libc::UDP_SEGMENT, segment);
        }
        if let Some(src) = src_ip {
            cmsg::push_source(&mut encoder, src);
        }
        encoder.finish();
        loop {
            // SAFETY: hdr describes live memory (bytes, dst, control) for the call.
            let r = unsafe { libc::sendmsg(self.fd, &hdr, libc::MSG_DONTWAIT) };
            if r >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    fn disable_gso(&self, error: &io::Error) {
        if self.gso_segments.replace(1) > 1 {
            bump(&self.counters.gso_fallbacks, 1);
            tracing::warn!(
                local = %self.local_addr,
                %error,
                "UDP GSO rejected by the kernel; sending one datagram per call from now on"
            );
        }
    }

    /// Sends the next piece of `t` from `offset`; the bytes consumed, or the error (including
    /// `WouldBlock`). Handles the GSO fallback.
    fn send_step(&self, t: &Transmit<'_>, dst: &SockAddr, offset: usize) -> io::Result<usize> {
        let piece = transmit::next_piece(t, offset, self.gso_segments.get());
        let bytes = &t.contents[offset..offset + piece.len];
        match self.send_piece(dst, t.src_ip, bytes, piece.segment) {
            Ok(()) => {
                let datagrams = piece
                    .segment
                    .map_or(1, |s| piece.len.div_ceil(usize::from(s)));
                bump(&self.counters.datagrams_sent, datagrams as u64);
                Ok(piece.len)
            }
            Err(e) if piece.segment.is_some() && e.raw_os_error() == Some(libc::EIO) => {
                // No checksum offload on this path: GSO cannot work here.
                self.disable_gso(&e);
                Ok(0)
            }
            Err(e) if piece.segment.is_some() && e.raw_os_error() == Some(libc::EINVAL) => {
                // GSO unsupported, or a bad datagram? Try the first datagram alone.
                let first = usize::from(piece.segment.unwrap_or(1));
                self.send_piece(dst, t.src_ip, &bytes[..first], None)?;
                self.disable_gso(&e);
                bump(&self.counters.datagrams_sent, 1);
                Ok(first)
            }
            Err(e) => Err(e),
        }
    }

    /// Sends `t` without waiting. `Err(WouldBlock)` if the socket buffer was full before
    /// anything was sent. If it fills after part of a multi-call transmit went out, the rest
    /// is dropped (like any UDP loss; counted in [`UdpStats::send_dropped`]) and `Ok` returned.
    /// A transmit within [`UdpSocket::max_gso_segments`] datagrams is a single call, so this
    /// never happens to it.
    pub fn try_send(&self, t: &Transmit<'_>) -> io::Result<()> {
        self.try_send_inner(t)
    }

    /// Counts a transmit the caller drops after [`Self::try_send`] refused it with
    /// `WouldBlock` (a full socket buffer), so that no drop goes uncounted.
    pub fn give_up_send(&self) {
        bump(&self.counters.send_dropped, 1);
    }

    fn try_send_inner(&self, t: &Transmit<'_>) -> io::Result<()> {
        let dst = match self.wire_dst(t.dst) {
            Ok(dst) => SockAddr::from(dst),
            Err(e) => {
                bump(&self.counters.send_dropped, 1);
                return Err(e);
            }
        };
        let mut offset = 0;
        while offset < t.contents.len() {
            match self.send_step(t, &dst, offset) {
                Ok(n) => offset += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && offset > 0 => {
                    bump(&self.counters.send_dropped, 1);
                    return Ok(());
                }
                Err(e) => {
                    if e.kind() != io::ErrorKind::WouldBlock {
                        bump(&self.counters.send_dropped, 1);
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Sends every transmit of `batch`, in order, waiting for socket buffer space as needed.
    ///
    /// A transmit the kernel refuses (unreachable destination, datagram too large, ...) is
    /// dropped without affecting the others (UDP is lossy; QUIC recovers), counted in
    /// [`UdpStats::send_dropped`], and the last such error is returned once the whole batch was
    /// attempted, for the caller to log.
    pub async fn send(&self, batch: &[Transmit<'_>]) -> io::Result<()> {
        let mut last_error = None;
        for t in batch {
            if let Err(e) = self.send_one(t).await {
                tracing::debug!(local = %self.local_addr, dst = %t.dst, error = %e, "UDP send failed");
                bump(&self.counters.send_dropped, 1);
                last_error = Some(e);
            }
        }
        last_error.map_or(Ok(()), Err)
    }

    async fn send_one(&self, t: &Transmit<'_>) -> io::Result<()> {
        let wire_dst = self.wire_dst(t.dst)?;
        let dst = SockAddr::from(wire_dst);
        let mut offset = 0;
        while offset < t.contents.len() {
            match self.send_step(t, &dst, offset) {
                Ok(n) => offset += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    offset += self.wait_and_send_one(t, wire_dst, offset).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The socket buffer is full: waits for room by sending the next datagram through glommio
    /// (io_uring completes it when there is room), or, if a source address is needed (glommio's
    /// `send_to` cannot set one), sleeps briefly. Returns the bytes it sent.
    async fn wait_and_send_one(
        &self,
        t: &Transmit<'_>,
        wire_dst: SocketAddr,
        offset: usize,
    ) -> io::Result<usize> {
        if t.src_ip.is_some() {
            glommio::timer::sleep(FULL_BUFFER_RETRY).await;
            return Ok(0);
        }
        let len = t.stride(offset).unwrap_or(t.contents.len() - offset);
        let datagram = &t.contents[offset..offset + len];
        self.io
            .send_to(datagram, wire_dst)
            .await
            .map_err(io::Error::from)?;
        bump(&self.counters.datagrams_sent, 1);
        Ok(len)
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_conversion_unmaps_v4() {
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:4443".parse().unwrap();
        let sa = SockAddr::from(mapped);
        // SAFETY: SockAddr stores a sockaddr_storage-compatible value.
        let storage = unsafe { *(sa.as_ptr() as *const libc::sockaddr_storage) };
        assert_eq!(
            sockaddr_to_std(&storage, sa.len()),
            Some("10.0.0.1:4443".parse().unwrap())
        );
        let v6: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        let sa = SockAddr::from(v6);
        let storage = unsafe { *(sa.as_ptr() as *const libc::sockaddr_storage) };
        assert_eq!(sockaddr_to_std(&storage, sa.len()), Some(v6));
        assert_eq!(sockaddr_to_std(&storage, 3), None);
    }
}
