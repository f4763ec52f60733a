//! Runtime configuration: how many shards, where they run, what they bind, and the bounds of
//! every queue the runtime owns.

use std::net::SocketAddr;
use std::time::Duration;

/// The largest number of shards a runtime accepts.
///
/// Shard ids must fit in one byte (the relay encodes the owning shard in its QUIC connection
/// IDs), and a full mesh of `n` shards has `2 * n * (n - 1)` channels, so the count is bounded.
pub const MAX_SHARDS: usize = 256;

/// The largest capacity accepted for one mesh lane (messages per direction per shard pair).
pub const MAX_CHANNEL_CAPACITY: usize = 1 << 20;

/// Configuration of [`crate::run`] / [`crate::Runtime`].
///
/// Start from [`RuntimeConfig::default`] and override what you need.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Number of shards (executor threads). `None` means one per available core: the CPUs this
    /// process may run on (its affinity mask), further limited by the cgroup CPU quota.
    pub shards: Option<usize>,
    /// Pin shard `i` to the `i`-th CPU of the process's affinity mask (glommio
    /// `Placement::Fixed`). With pinning, asking for more shards than there are allowed CPUs is
    /// an error.
    pub pin: bool,
    /// UDP addresses every shard binds (one `SO_REUSEPORT` socket per shard per address). An
    /// unspecified IPv6 address (`[::]`) also serves IPv4. Port 0 picks one ephemeral port that
    /// all shards share.
    pub udp_bind: Vec<SocketAddr>,
    /// TCP addresses every shard listens on (one `SO_REUSEPORT` listener per shard per address).
    pub tcp_bind: Vec<SocketAddr>,
    /// Capacity of each control lane of the mesh (per ordered pair of shards).
    pub control_capacity: usize,
    /// Capacity of each data lane of the mesh (per ordered pair of shards).
    pub data_capacity: usize,
    /// Requested `SO_RCVBUF` of each UDP socket, in bytes (best effort; the kernel may clamp it).
    pub udp_recv_buffer: usize,
    /// Requested `SO_SNDBUF` of each UDP socket, in bytes (best effort; the kernel may clamp it).
    pub udp_send_buffer: usize,
    /// Backlog of each TCP listener.
    pub tcp_backlog: u32,
    /// Memory glommio registers with io_uring per shard, in bytes. The runtime does no file
    /// I/O, so this stays small; it counts against `RLIMIT_MEMLOCK` for unprivileged users.
    pub io_memory: usize,
    /// Depth of each of glommio's io_uring rings.
    pub ring_depth: usize,
    /// How long a task may run before cooperative points (`glommio::yield_if_needed`, which
    /// [`crate::udp::UdpSocket::recv_batch`] calls under a flood) yield to the shard's other
    /// tasks and to I/O polling. glommio's default (100 ms) suits storage, not a media relay.
    pub preempt_timer: Duration,
    /// Install the SIGINT/SIGTERM handling thread: the first signal stops every shard, a
    /// second one exits the process. Turn off when the embedding program handles signals
    /// itself and calls [`crate::RuntimeHandle::stop`].
    pub handle_signals: bool,
    /// How long start-up may take (executors created, sockets adopted, mesh started) before
    /// [`crate::run`] gives up with [`crate::RuntimeError::StartupTimeout`].
    pub startup_timeout: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            shards: None,
            pin: true,
            udp_bind: Vec::new(),
            tcp_bind: Vec::new(),
            control_capacity: 1024,
            data_capacity: 4096,
            udp_recv_buffer: 4 << 20,
            udp_send_buffer: 4 << 20,
            tcp_backlog: 1024,
            io_memory: 128 << 10,
            ring_depth: 256,
            preempt_timer: Duration::from_millis(5),
            handle_signals: true,
            startup_timeout: Duration::from_secs(10),
        }
    }
}
