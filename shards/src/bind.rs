//! Creating the shards' listening sockets: one `SO_REUSEPORT` UDP socket and one
//! `SO_REUSEPORT` TCP listener per shard per configured address.
//!
//! All sockets are created and bound by the thread that calls [`crate::run`], before any
//! executor starts, shard 0 first. This makes port 0 deterministic (shard 0 binds an ephemeral
//! port, shards 1.. bind the port it got) and reports a bind failure, with the address and the
//! OS reason, before there is anything to unwind. Each shard then adopts its own sockets into
//! its executor; the kernel's reuseport hash spreads flows over them.
//!
//! The file descriptors stay in blocking mode: io_uring, which glommio uses to wait on them,
//! honours `O_NONBLOCK` by failing with `EAGAIN` instead of waiting. The fast path in
//! [`crate::udp`] never blocks anyway: every direct `recvmmsg`/`sendmsg` passes `MSG_DONTWAIT`.

use crate::config::RuntimeConfig;
use crate::error::{RuntimeError, SocketKind};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

/// A failed socket operation: which step, and the OS error.
#[derive(Debug)]
pub struct SocketFailure {
    /// The step (`socket`, `bind`, `listen`, `set SO_REUSEPORT`, ...).
    pub op: &'static str,
    /// The OS error.
    pub source: io::Error,
}

fn step<T>(op: &'static str, r: io::Result<T>) -> Result<T, SocketFailure> {
    r.map_err(|source| SocketFailure { op, source })
}

/// Fails if another socket (of any process) holds `addr`. `SO_REUSEPORT` lets every socket
/// of the same user join a port, so without this check a second relay would silently share
/// the first one's traffic. A socket bound without the option is refused while any other
/// holds the port; it is closed at once. Port 0 needs no check.
fn ensure_free(addr: SocketAddr, ty: Type, proto: Protocol) -> Result<(), SocketFailure> {
    if addr.port() == 0 {
        return Ok(());
    }
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let probe = step("socket", Socket::new(domain, ty, Some(proto)))?;
    if let SocketAddr::V6(v6) = addr {
        if v6.ip().is_unspecified() {
            step("set IPV6_V6ONLY=0", probe.set_only_v6(false))?;
        }
    }
    if ty == Type::STREAM {
        // Let a listener in TIME_WAIT from our own previous run not count as "in use".
        step("set SO_REUSEADDR", probe.set_reuse_address(true))?;
    }
    step("bind (checking the port is free)", probe.bind(&addr.into()))
}

fn new_socket(addr: SocketAddr, ty: Type, proto: Protocol) -> Result<Socket, SocketFailure> {
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let socket = step("socket", Socket::new(domain, ty, Some(proto)))?;
    if let SocketAddr::V6(v6) = addr {
        if v6.ip().is_unspecified() {
            // `[::]` serves IPv4 too (as v4-mapped addresses).
            step("set IPV6_V6ONLY=0", socket.set_only_v6(false))?;
        }
    }
    step("set SO_REUSEPORT", socket.set_reuse_port(true))?;
    Ok(socket)
}

/// Sets a socket buffer size, best effort: first the privileged `*BUFFORCE` option (which may
/// exceed `net.core.[rw]mem_max`), then the ordinary one. Failures are ignored; the effective
/// size can be read back from the socket.
fn set_buffer(socket: &Socket, size: usize, receive: bool) {
    if size == 0 {
        return;
    }
    // The kernel doubles the value it is given (for its bookkeeping), hence `size / 2`.
    // SO_RCVBUFFORCE / SO_SNDBUFFORCE on the architectures with the generic socket.h values.
    #[cfg(any(
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "arm",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "loongarch64"
    ))]
    {
        const SO_SNDBUFFORCE: libc::c_int = 32;
        const SO_RCVBUFFORCE: libc::c_int = 33;
        let value = libc::c_int::try_from(size / 2).unwrap_or(libc::c_int::MAX / 2);
        let opt = if receive {
            SO_RCVBUFFORCE
        } else {
            SO_SNDBUFFORCE
        };
        // SAFETY: valid fd and a c_int option value.
        let r = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            return;
        }
    }
    let _ = if receive {
        socket.set_recv_buffer_size(size / 2)
    } else {
        socket.set_send_buffer_size(size / 2)
    };
}

/// Creates a UDP socket bound to `addr` with `SO_REUSEPORT` (and, for `[::]`, dual-stack),
/// requesting the given buffer sizes (0 = leave the kernel default).
pub fn bind_udp(
    addr: SocketAddr,
    recv_buffer: usize,
    send_buffer: usize,
) -> Result<Socket, SocketFailure> {
    let socket = new_socket(addr, Type::DGRAM, Protocol::UDP)?;
    set_buffer(&socket, recv_buffer, true);
    set_buffer(&socket, send_buffer, false);
    step("bind", socket.bind(&addr.into()))?;
    Ok(socket)
}

/// Creates a TCP listener bound to `addr` with `SO_REUSEPORT` and `SO_REUSEADDR` (and, for
/// `[::]`, dual-stack), listening with `backlog`.
pub fn bind_tcp(addr: SocketAddr, backlog: u32) -> Result<Socket, SocketFailure> {
    let socket = new_socket(addr, Type::STREAM, Protocol::TCP)?;
    step("set SO_REUSEADDR", socket.set_reuse_address(true))?;
    step("bind", socket.bind(&addr.into()))?;
    let backlog = libc::c_int::try_from(backlog).unwrap_or(libc::c_int::MAX);
    step("listen", socket.listen(backlog))?;
    Ok(socket)
}

fn local_addr(socket: &Socket) -> Result<SocketAddr, SocketFailure> {
    let addr = step("getsockname", socket.local_addr())?;
    addr.as_socket().ok_or_else(|| SocketFailure {
        op: "getsockname",
        source: io::Error::new(io::ErrorKind::InvalidData, "not an IP socket address"),
    })
}

/// The sockets one shard adopts.
#[derive(Debug, Default)]
pub(crate) struct ShardSockets {
    /// One per `udp_bind` address, in order.
    pub udp: Vec<Socket>,
    /// One per `tcp_bind` address, in order.
    pub tcp: Vec<Socket>,
}

/// Every shard's sockets and the addresses they are bound to.
#[derive(Debug)]
pub(crate) struct BoundSockets {
    /// `per_shard[i]` belongs to shard `i`.
    pub per_shard: Vec<ShardSockets>,
    /// The bound address of each `udp_bind` entry (port 0 resolved).
    pub udp_addrs: Vec<SocketAddr>,
    /// The bound address of each `tcp_bind` entry (port 0 resolved).
    pub tcp_addrs: Vec<SocketAddr>,
}

/// Binds every configured address on every shard, shard 0 first.
pub(crate) fn bind_all(
    config: &RuntimeConfig,
    shards: usize,
) -> Result<BoundSockets, RuntimeError> {
    let mut per_shard: Vec<ShardSockets> = (0..shards).map(|_| ShardSockets::default()).collect();
    let mut udp_addrs = Vec::with_capacity(config.udp_bind.len());
    for &configured in &config.udp_bind {
        let fail = |shard, f: SocketFailure| RuntimeError::Bind {
            kind: SocketKind::Udp,
            addr: configured,
            shard,
            op: f.op,
            source: f.source,
        };
        ensure_free(configured, Type::DGRAM, Protocol::UDP).map_err(|f| fail(0, f))?;
        let mut addr = configured;
        for (shard, sockets) in per_shard.iter_mut().enumerate() {
            let socket = bind_udp(addr, config.udp_recv_buffer, config.udp_send_buffer)
                .map_err(|f| fail(shard, f))?;
            if shard == 0 {
                addr = local_addr(&socket).map_err(|f| fail(shard, f))?;
            }
            sockets.udp.push(socket);
        }
        udp_addrs.push(addr);
    }
    let mut tcp_addrs = Vec::with_capacity(config.tcp_bind.len());
    for &configured in &config.tcp_bind {
        let fail = |shard, f: SocketFailure| RuntimeError::Bind {
            kind: SocketKind::Tcp,
            addr: configured,
            shard,
            op: f.op,
            source: f.source,
        };
        ensure_free(configured, Type::STREAM, Protocol::TCP).map_err(|f| fail(0, f))?;
        let mut addr = configured;
        for (shard, sockets) in per_shard.iter_mut().enumerate() {
            let socket = bind_tcp(addr, config.tcp_backlog).map_err(|f| fail(shard, f))?;
            if shard == 0 {
                addr = local_addr(&socket).map_err(|f| fail(shard, f))?;
            }
            sockets.tcp.push(socket);
        }
        tcp_addrs.push(addr);
    }
    Ok(BoundSockets {
        per_shard,
        udp_addrs,
        tcp_addrs,
    })
}
