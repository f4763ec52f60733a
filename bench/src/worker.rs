//! One worker thread: a single-threaded event loop (epoll over the sockets of the connections
//! it owns, a timer heap fed by quiche's `timeout_instant()` and the sessions' own deadlines)
//! that starts its connections on the ramp schedule, runs them, and closes them at the end.

use crate::args::{ClientKind, TransportKind};
use crate::carrier::{Carrier, Progress};
use crate::conn::Transport;
use crate::session::{Ctx, Session};
use crate::stats::Stats;
use crate::watched::Watched;
use crate::workload::{ConnSpec, Plan, Timeline};
use moq_relay::transport::quic::{client_config, QuicSettings};
use shards::udp::{RecvBatch, MAX_RECV_LEN};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A connection with nothing to say sends a PING this often (moq-tokio uses 3 s).
const KEEP_ALIVE: Duration = Duration::from_secs(3);
/// Readiness events taken per epoll_wait.
const EVENTS: usize = 512;

/// What a worker needs to run its share.
pub struct WorkerInput {
    pub plan: Arc<Plan>,
    /// Indices into `plan.conns`, in start order.
    pub conns: Vec<usize>,
    pub timeline: Timeline,
    pub relay: SocketAddr,
    pub server_name: String,
    pub path: String,
    pub transport: TransportKind,
    pub client: ClientKind,
    pub connect_timeout: Duration,
    pub verify: bool,
}

/// What a worker hands back.
pub struct WorkerOutput {
    pub stats: Stats,
    /// The first reason a connection failed, for the error message.
    pub first_error: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    Handshaking(Instant),
    Up,
    Gone,
}

struct Slot {
    spec: ConnSpec,
    transport: Option<Transport>,
    carrier: Option<Carrier>,
    session: Session,
    phase: Phase,
    keepalive_at: Instant,
    armed: Option<Instant>,
}

struct Worker {
    input: WorkerInput,
    config: quiche::Config,
    epfd: libc::c_int,
    slots: Vec<Slot>,
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    stats: Stats,
    scratch: Vec<u8>,
    /// Receive buffers shared by every socket of the worker (one `recvmmsg` at a time).
    datagrams: RecvBatch,
    packet: Vec<u8>,
    closing: bool,
    first_error: Option<String>,
}

/// The credit a moq-native client (quinn underneath) grants a relay: 1024 streams each way
/// (moq-native's setting), quinn's default 1.25 MB per stream, and a connection window that
/// never runs out (quinn's default is 2^62). quiche may still grow a stream's window when
/// the reader keeps up; quinn keeps it fixed.
fn published_client_settings() -> QuicSettings {
    QuicSettings {
        max_streams: 1024,
        max_stream_data: 1_250_000,
        max_data: 1 << 40,
        ..QuicSettings::default()
    }
}

/// Runs one worker to the end of the timeline.
pub fn run(input: WorkerInput) -> Result<WorkerOutput, String> {
    let settings = match input.client {
        ClientKind::Quinn => published_client_settings(),
        ClientKind::Eager => QuicSettings::default(),
    };
    let config = client_config(&settings, &[input.transport.alpn()], input.verify)
        .map_err(|e| format!("quiche config: {e}"))?;
    // SAFETY: plain syscall; the result is checked.
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if epfd < 0 {
        return Err(format!(
            "epoll_create1: {}",
            std::io::Error::last_os_error()
        ));
    }
    // On raw QUIC the path goes in SETUP; WebTransport sends it in the CONNECT instead.
    let setup_path = (input.transport == TransportKind::Quic).then(|| input.path.clone());
    let slots = input
        .conns
        .iter()
        .map(|&i| {
            let spec = input.plan.conns[i];
            Slot {
                spec,
                transport: None,
                carrier: None,
                session: Session::new(&spec, &input.plan, setup_path.clone(), &input.timeline),
                phase: Phase::Waiting,
                keepalive_at: input.timeline.deadline,
                armed: None,
            }
        })
        .collect();
    let mut worker = Worker {
        input,
        config,
        epfd,
        slots,
        heap: BinaryHeap::new(),
        stats: Stats::new(),
        scratch: vec![0; 65536],
        datagrams: RecvBatch::new(8, MAX_RECV_LEN),
        packet: vec![0; 65536],
        closing: false,
        first_error: None,
    };
    worker.run();
    // SAFETY: our own epoll descriptor, closed once.
    unsafe { libc::close(epfd) };
    Ok(WorkerOutput {
        stats: worker.stats,
        first_error: worker.first_error,
    })
}

impl Worker {
    fn run(&mut self) {
        let timeline = self.input.timeline;
        let mut next_start = 0;
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS];
        loop {
            let now = Instant::now();
            if now >= timeline.deadline {
                break;
            }
            if !self.closing && now >= timeline.drain_end {
                self.close_all();
            }
            if self.closing && self.slots.iter().all(|s| s.transport.is_none()) {
                break;
            }
            if next_start == self.slots.len() && self.slots.iter().all(|s| s.phase == Phase::Gone) {
                // Every connection failed or ended: nothing left to run.
                break;
            }
            while !self.closing
                && next_start < self.slots.len()
                && timeline.start + self.slots[next_start].spec.start <= now
            {
                self.start(next_start, now);
                next_start += 1;
            }

            let mut wake = timeline.deadline;
            if !self.closing {
                wake = wake.min(timeline.drain_end);
                if let Some(slot) = self.slots.get(next_start) {
                    wake = wake.min(timeline.start + slot.spec.start);
                }
            }
            while let Some(&Reverse((t, i))) = self.heap.peek() {
                if self.slots[i].armed != Some(t) {
                    self.heap.pop();
                    continue;
                }
                wake = wake.min(t);
                break;
            }
            let wait = wake.saturating_duration_since(now);
            // Round up so a timer is never polled for before it is due.
            let ms = wait.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;

            // SAFETY: `events` has EVENTS writable entries.
            let n = unsafe {
                libc::epoll_wait(self.epfd, events.as_mut_ptr(), EVENTS as libc::c_int, ms)
            };
            let now = Instant::now();
            for e in events.iter().take(n.max(0) as usize) {
                let i = e.u64 as usize;
                if let Some(t) = self.slots[i].transport.as_mut() {
                    let (datagrams, bytes) = t.recv_all(&mut self.datagrams, now);
                    self.stats.datagrams_received += datagrams;
                    self.stats.bytes_received += bytes;
                    self.service(i, now);
                }
            }
            while let Some(&Reverse((t, i))) = self.heap.peek() {
                if t > now {
                    break;
                }
                self.heap.pop();
                if self.slots[i].armed == Some(t) {
                    self.slots[i].armed = None;
                    self.service(i, now);
                }
            }
        }
        for i in 0..self.slots.len() {
            self.drop_transport(i);
        }
    }

    /// Begins connection `i`'s handshake.
    fn start(&mut self, i: usize, now: Instant) {
        let input = &self.input;
        match Transport::connect(input.relay, &input.server_name, &mut self.config) {
            Ok(t) => {
                let mut ev = libc::epoll_event {
                    events: libc::EPOLLIN as u32,
                    u64: i as u64,
                };
                // SAFETY: valid epoll and socket descriptors, `ev` outlives the call.
                unsafe { libc::epoll_ctl(self.epfd, libc::EPOLL_CTL_ADD, t.fd(), &mut ev) };
                let authority = format!("{}:{}", input.server_name, input.relay.port());
                let slot = &mut self.slots[i];
                slot.carrier = Some(Carrier::new(input.transport, &authority, &input.path));
                slot.transport = Some(t);
                slot.phase = Phase::Handshaking(now + input.connect_timeout);
                self.service(i, now);
            }
            Err(e) => {
                self.stats.connect_failed += 1;
                self.first_error.get_or_insert(format!("socket: {e}"));
                self.slots[i].phase = Phase::Gone;
            }
        }
    }

    /// Runs connection `i`: timers, handshake progress, session work, sends, re-arming.
    fn service(&mut self, i: usize, now: Instant) {
        let timeline = self.input.timeline;
        let slot = &mut self.slots[i];
        let (Some(t), Some(carrier)) = (slot.transport.as_mut(), slot.carrier.as_mut()) else {
            return;
        };
        // Something of our own to send: quiche's timer (loss recovery, PTO), the handshake,
        // the session's writes, a PING, a close. Otherwise only a due ACK goes out.
        let mut own = t.on_timeout_if_due(now)
            || slot.phase != Phase::Up
            || self.closing
            || self.input.client == ClientKind::Eager;
        let progress = carrier.drive(&mut t.conn);
        if let Phase::Handshaking(deadline) = slot.phase {
            if progress == Progress::Ready {
                self.stats.connected += 1;
                slot.phase = Phase::Up;
                slot.keepalive_at = now + KEEP_ALIVE;
                let session = &mut slot.session;
                carrier.with_streams(&mut t.conn, |s| session.on_established(s));
                own = true;
            } else if now >= deadline || t.conn.is_closed() || progress != Progress::Pending {
                self.stats.connect_failed += 1;
                let reason = match (&progress, t.conn.peer_error(), t.conn.local_error()) {
                    (Progress::Failed(why), _, _) => why.clone(),
                    (_, Some(e), _) => format!(
                        "the relay closed the handshake: code {:#x} {:?}",
                        e.error_code,
                        String::from_utf8_lossy(&e.reason)
                    ),
                    (_, None, Some(e)) => format!(
                        "the handshake failed here: code {:#x} {:?}",
                        e.error_code,
                        String::from_utf8_lossy(&e.reason)
                    ),
                    _ if t.conn.is_timed_out() => "the handshake idled out".to_string(),
                    _ => format!(
                        "handshake did not complete within {:?}",
                        self.input.connect_timeout
                    ),
                };
                self.first_error.get_or_insert(reason);
                slot.phase = Phase::Gone;
                self.drop_transport(i);
                return;
            }
        }
        if slot.phase == Phase::Up && !self.closing {
            let mut ctx = Ctx {
                stats: &mut self.stats,
                timeline: &timeline,
                now,
            };
            let (session, scratch) = (&mut slot.session, &mut self.scratch);
            own |= carrier.with_streams(&mut t.conn, |s| {
                let mut s = Watched::new(s);
                session.on_readable(&mut s, scratch, &mut ctx);
                session.on_timer(&mut s, &mut ctx);
                s.wrote
            });
            if let Progress::Failed(why) = &progress {
                self.first_error.get_or_insert_with(|| why.clone());
            }
            if now >= slot.keepalive_at {
                let _ = t.conn.send_ack_eliciting();
                slot.keepalive_at = now + KEEP_ALIVE;
                own = true;
            }
        }
        if t.wants_send(own, now) {
            let (sent, drops) = t.flush(&mut self.packet);
            self.stats.datagrams_sent += sent;
            self.stats.send_drops += drops;
        }
        if t.conn.is_closed() {
            if slot.phase == Phase::Up && !self.closing {
                self.stats.closed_early += 1;
                if let Some(e) = t.conn.peer_error().or(t.conn.local_error()) {
                    self.first_error.get_or_insert(format!(
                        "relay closed a connection: code {:#x} {:?}",
                        e.error_code,
                        String::from_utf8_lossy(&e.reason)
                    ));
                } else if t.conn.is_timed_out() {
                    self.first_error
                        .get_or_insert("a connection idled out".to_string());
                }
            }
            slot.phase = Phase::Gone;
            self.drop_transport(i);
            return;
        }
        let mut next = t.timeout();
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                next = Some(next.map_or(x, |n| n.min(x)));
            }
        };
        match slot.phase {
            Phase::Handshaking(deadline) => consider(Some(deadline)),
            Phase::Up if !self.closing => {
                consider(slot.session.next_deadline());
                consider(Some(slot.keepalive_at));
                consider(t.ack_deadline());
            }
            _ => {}
        }
        if next != slot.armed {
            slot.armed = next;
            if let Some(at) = next {
                self.heap.push(Reverse((at, i)));
            }
            if self.heap.len() > 4 * self.slots.len() + 1024 {
                self.compact_timers();
            }
        }
    }

    /// Rebuilds the timer heap from the armed deadlines, dropping superseded entries (so the
    /// heap stays proportional to the connections, however often timers move).
    fn compact_timers(&mut self) {
        let live: Vec<_> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.armed.map(|at| Reverse((at, i))))
            .collect();
        self.heap = BinaryHeap::from(live);
    }

    /// The drain is over: count who is still alive, then close everyone.
    fn close_all(&mut self) {
        self.closing = true;
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            let Some(t) = slot.transport.as_mut() else {
                continue;
            };
            if let Phase::Handshaking(_) = slot.phase {
                self.stats.connect_failed += 1;
                self.first_error.get_or_insert(format!(
                    "handshakes still incomplete when the run ended (timeout {:?})",
                    self.input.connect_timeout
                ));
                slot.phase = Phase::Gone;
                self.drop_transport(i);
                continue;
            }
            if slot.phase == Phase::Up && !t.conn.is_closed() {
                self.stats.alive_at_end += 1;
            }
            let _ = t.conn.close(true, 0, b"bench done");
            self.service(i, Instant::now());
        }
    }

    fn drop_transport(&mut self, i: usize) {
        self.slots[i].carrier = None;
        if let Some(t) = self.slots[i].transport.take() {
            // SAFETY: valid descriptors; removing an fd that is registered.
            unsafe {
                libc::epoll_ctl(self.epfd, libc::EPOLL_CTL_DEL, t.fd(), std::ptr::null_mut())
            };
        }
        self.slots[i].armed = None;
    }
}
