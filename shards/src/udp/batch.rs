//! [`RecvBatch`]: the reusable receive buffers of one receiving task, and [`RecvMeta`], what
//! the kernel told us about each received buffer.
//!
//! A batch is allocated once and reused for every `recv_batch` call, so the receive path does
//! no heap allocation. Each buffer holds one datagram, or with GRO several coalesced datagrams
//! of `stride` bytes each (the last may be shorter); [`RecvBatch::segments`] and
//! [`RecvBatch::segments_mut`] yield them one by one.

use super::cmsg::CmsgBuf;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Most buffers one `recv_batch` call fills (one `recvmmsg`).
pub const MAX_RECV_BATCH: usize = 64;

/// Buffer size that holds anything the kernel can deliver in one message, including a GRO
/// coalesced run of datagrams. Sockets with GRO enabled require at least this.
pub const MAX_RECV_LEN: usize = 65_535;

/// What the kernel reported about one received buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvMeta {
    /// The sender. v4-mapped IPv6 addresses (from dual-stack sockets) are reported as IPv4.
    pub src: SocketAddr,
    /// The address the datagram was sent to (from `IP_PKTINFO`/`IPV6_PKTINFO`), when known.
    pub dst_ip: Option<IpAddr>,
    /// Bytes received in this buffer (all segments together). 0 for a datagram that was
    /// dropped because it did not fit the buffer (counted in the socket's stats).
    pub len: usize,
    /// Size of each segment: the GRO segment size, or `len` for a single datagram.
    pub stride: usize,
}

impl Default for RecvMeta {
    fn default() -> RecvMeta {
        RecvMeta {
            src: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            dst_ip: None,
            len: 0,
            stride: 0,
        }
    }
}

impl RecvMeta {
    /// Number of datagrams in this buffer.
    pub fn datagrams(&self) -> usize {
        if self.len == 0 {
            0
        } else {
            self.len.div_ceil(self.stride.max(1))
        }
    }
}

/// Reusable receive buffers for [`super::UdpSocket::recv_batch`].
pub struct RecvBatch {
    /// `capacity` buffers of `buf_len` bytes, back to back.
    pub(crate) storage: Box<[u8]>,
    pub(crate) buf_len: usize,
    pub(crate) names: Box<[libc::sockaddr_storage]>,
    pub(crate) cmsgs: Box<[CmsgBuf]>,
    pub(crate) meta: Box<[RecvMeta]>,
    pub(crate) filled: usize,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("capacity", &self.capacity())
            .field("buf_len", &self.buf_len)
            .field("filled", &self.filled)
            .finish()
    }
}

impl RecvBatch {
    /// `buffers` buffers (clamped to `1..=MAX_RECV_BATCH`) of `buf_len` bytes each (clamped to
    /// `1..=MAX_RECV_LEN`). For a socket with GRO enabled use `MAX_RECV_LEN`, or see
    /// [`RecvBatch::for_socket`].
    pub fn new(buffers: usize, buf_len: usize) -> RecvBatch {
        let n = buffers.clamp(1, MAX_RECV_BATCH);
        let buf_len = buf_len.clamp(1, MAX_RECV_LEN);
        RecvBatch {
            storage: vec![0u8; n * buf_len].into_boxed_slice(),
            buf_len,
            // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
            names: (0..n).map(|_| unsafe { std::mem::zeroed() }).collect(),
            cmsgs: (0..n).map(|_| CmsgBuf::new()).collect(),
            meta: vec![RecvMeta::default(); n].into_boxed_slice(),
            filled: 0,
        }
    }

    /// A batch suited to `socket`: 16 buffers of `MAX_RECV_LEN` bytes with GRO (up to 1024
    /// datagrams per call), 64 buffers of 2048 bytes without (larger datagrams are dropped and
    /// counted as truncated).
    pub fn for_socket(socket: &super::UdpSocket) -> RecvBatch {
        if socket.gro_enabled() {
            RecvBatch::new(16, MAX_RECV_LEN)
        } else {
            RecvBatch::new(MAX_RECV_BATCH, 2048)
        }
    }

    /// How many buffers one call can fill.
    pub fn capacity(&self) -> usize {
        self.meta.len()
    }

    /// Size of each buffer.
    pub fn buffer_len(&self) -> usize {
        self.buf_len
    }

    /// Buffers filled by the last receive.
    pub fn len(&self) -> usize {
        self.filled
    }

    /// Whether the last receive filled nothing.
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Metadata of every filled buffer.
    pub fn meta(&self) -> &[RecvMeta] {
        &self.meta[..self.filled]
    }

    /// Filled buffer `i` (all its segments) and its metadata.
    pub fn buffer(&self, i: usize) -> Option<(&RecvMeta, &[u8])> {
        let meta = self.meta().get(i)?;
        let start = i * self.buf_len;
        Some((meta, &self.storage[start..start + meta.len]))
    }

    /// Every received datagram, GRO runs split into their segments, in arrival order.
    pub fn segments(&self) -> impl Iterator<Item = (&RecvMeta, &[u8])> + '_ {
        self.storage
            .chunks(self.buf_len)
            .zip(self.meta.iter())
            .take(self.filled)
            .flat_map(|(buf, meta)| {
                buf[..meta.len]
                    .chunks(meta.stride.max(1))
                    .map(move |segment| (meta, segment))
            })
    }

    /// Like [`RecvBatch::segments`], with mutable segments (QUIC decrypts in place).
    pub fn segments_mut(&mut self) -> impl Iterator<Item = (&RecvMeta, &mut [u8])> + '_ {
        let filled = self.filled;
        self.storage
            .chunks_mut(self.buf_len)
            .zip(self.meta.iter())
            .take(filled)
            .flat_map(|(buf, meta)| {
                buf[..meta.len]
                    .chunks_mut(meta.stride.max(1))
                    .map(move |segment| (meta, segment))
            })
    }
}
