//! A lossy UDP link for the fault tests (the kernel here has no netem): one client's datagrams
//! to a target and the target's replies, each direction with its own loss, delay, jitter,
//! duplication and reordering, decided by a seeded RNG and counted.
//!
//! One proxy carries one flow, like a client's access link: it listens on a fresh loopback
//! port, forwards what it receives there to the target from a socket of its own, and sends
//! the target's replies back to the address the client last sent from. Give each client its
//! own proxy, so the relay sees a distinct address per client.
//!
//! Two threads (one per direction) receive, decide and hold datagrams until their release
//! time. The decisions depend only on the seed and the order datagrams arrive in, so a seed
//! drops the same datagrams of a flow every run.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a thread waits for a datagram before it looks at its queue and the stop flag.
const POLL: Duration = Duration::from_millis(5);
/// How much longer than the others a datagram picked for reordering is held, so the ones
/// sent after it overtake it.
pub const REORDER_HOLD: Duration = Duration::from_millis(20);

/// What one direction of the link does to the datagrams crossing it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Share of datagrams dropped, in percent.
    pub loss_percent: f64,
    /// Every datagram that is not dropped is held this long.
    pub delay: Duration,
    /// Plus a uniform random extra of up to this much (which can reorder, as in netem).
    pub jitter: Duration,
    /// Share of datagrams sent twice, in percent (the copy with its own delay).
    pub duplicate_percent: f64,
    /// Share of datagrams held [`REORDER_HOLD`] longer than the others, in percent.
    pub reorder_percent: f64,
}

impl Faults {
    /// `loss_percent` loss and a fixed `delay`, nothing else.
    pub fn lossy(loss_percent: f64, delay: Duration) -> Self {
        Self {
            loss_percent,
            delay,
            ..Self::default()
        }
    }
}

/// What one direction did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Datagrams that arrived at the proxy.
    pub received: u64,
    /// Datagrams dropped by the loss setting.
    pub dropped: u64,
    /// Extra copies scheduled by the duplication setting.
    pub duplicated: u64,
    /// Datagrams held back by the reordering setting.
    pub reordered: u64,
    /// Datagrams (copies included) handed to the kernel.
    pub sent: u64,
    /// Sends the kernel refused (the far side gone, say).
    pub send_failed: u64,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    dropped: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
    sent: AtomicU64,
    send_failed: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> Counts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counts {
            received: get(&self.received),
            dropped: get(&self.dropped),
            duplicated: get(&self.duplicated),
            reordered: get(&self.reordered),
            sent: get(&self.sent),
            send_failed: get(&self.send_failed),
        }
    }

    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// State both directions share.
struct Shared {
    stop: AtomicBool,
    /// Where the target's replies go: the address the client last sent from.
    client: Mutex<Option<SocketAddr>>,
    to_target: Counters,
    to_client: Counters,
}

/// A running proxy; its threads stop when it is dropped.
pub struct UdpProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl UdpProxy {
    /// Listens on a fresh loopback port and forwards to `target`, applying `to_target` to the
    /// client's datagrams and `to_client` to the replies; `seed` fixes every random decision.
    pub fn start(
        target: SocketAddr,
        to_target: Faults,
        to_client: Faults,
        seed: u64,
    ) -> io::Result<Self> {
        let loopback: IpAddr = if target.is_ipv4() {
            Ipv4Addr::LOCALHOST.into()
        } else {
            Ipv6Addr::LOCALHOST.into()
        };
        let listen = UdpSocket::bind(SocketAddr::new(loopback, 0))?;
        let upstream = UdpSocket::bind(SocketAddr::new(loopback, 0))?;
        upstream.connect(target)?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            client: Mutex::new(None),
            to_target: Counters::default(),
            to_client: Counters::default(),
        });
        let addr = listen.local_addr()?;
        let forward = Direction {
            from: listen.try_clone()?,
            to: upstream.try_clone()?,
            toward: Toward::Target,
            faults: to_target,
            rng: StdRng::seed_from_u64(seed),
            shared: shared.clone(),
        };
        let back = Direction {
            from: upstream,
            to: listen,
            toward: Toward::Client,
            faults: to_client,
            // Another stream of decisions than the forward direction's.
            rng: StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15),
            shared: shared.clone(),
        };
        let threads = vec![
            std::thread::Builder::new()
                .name("udp-proxy-fwd".into())
                .spawn(move || forward.run())?,
            std::thread::Builder::new()
                .name("udp-proxy-back".into())
                .spawn(move || back.run())?,
        ];
        Ok(Self {
            addr,
            shared,
            threads,
        })
    }

    /// The address clients send to instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the client-to-target direction did so far.
    pub fn to_target(&self) -> Counts {
        self.shared.to_target.snapshot()
    }

    /// What the target-to-client direction did so far.
    pub fn to_client(&self) -> Counts {
        self.shared.to_client.snapshot()
    }
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Toward {
    Target,
    Client,
}

/// A datagram waiting for its release time; ordered by that time, then by arrival.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Held {
    release: Instant,
    order: u64,
    bytes: Vec<u8>,
}

/// One direction's thread: receives on `from`, sends on `to`.
struct Direction {
    from: UdpSocket,
    to: UdpSocket,
    toward: Toward,
    faults: Faults,
    rng: StdRng,
    shared: Arc<Shared>,
}

impl Direction {
    fn counters(&self) -> &Counters {
        match self.toward {
            Toward::Target => &self.shared.to_target,
            Toward::Client => &self.shared.to_client,
        }
    }

    fn run(mut self) {
        let mut queue: BinaryHeap<Reverse<Held>> = BinaryHeap::new();
        let mut order = 0u64;
        let mut buf = vec![0u8; 65536];
        while !self.shared.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            while queue.peek().is_some_and(|Reverse(h)| h.release <= now) {
                let Reverse(held) = queue.pop().expect("peeked");
                self.send(&held.bytes);
            }
            let wait = queue
                .peek()
                .map_or(POLL, |Reverse(h)| h.release.saturating_duration_since(now))
                .clamp(Duration::from_micros(100), POLL);
            if self.from.set_read_timeout(Some(wait)).is_err() {
                return;
            }
            let (len, from) = match self.from.recv_from(&mut buf) {
                Ok(got) => got,
                // Timeouts, and the ICMP errors a connected socket reports when the target is
                // gone for a moment (a restarting relay): keep going.
                Err(_) => continue,
            };
            if self.toward == Toward::Target {
                *self.shared.client.lock().unwrap() = Some(from);
            }
            Counters::add(&self.counters().received);
            if self.rng.random_bool(percent(self.faults.loss_percent)) {
                Counters::add(&self.counters().dropped);
                continue;
            }
            let copies = if self.rng.random_bool(percent(self.faults.duplicate_percent)) {
                Counters::add(&self.counters().duplicated);
                2
            } else {
                1
            };
            for _ in 0..copies {
                let mut release = Instant::now() + self.faults.delay + self.jitter();
                if self.rng.random_bool(percent(self.faults.reorder_percent)) {
                    Counters::add(&self.counters().reordered);
                    release += REORDER_HOLD;
                }
                order += 1;
                queue.push(Reverse(Held {
                    release,
                    order,
                    bytes: buf[..len].to_vec(),
                }));
            }
        }
    }

    fn jitter(&mut self) -> Duration {
        if self.faults.jitter.is_zero() {
            return Duration::ZERO;
        }
        self.faults.jitter.mul_f64(self.rng.random_range(0.0..=1.0))
    }

    fn send(&self, bytes: &[u8]) {
        let sent = match self.toward {
            Toward::Target => self.to.send(bytes),
            Toward::Client => match *self.shared.client.lock().unwrap() {
                Some(client) => self.to.send_to(bytes, client),
                None => Err(io::ErrorKind::NotConnected.into()),
            },
        };
        match sent {
            Ok(_) => Counters::add(&self.counters().sent),
            Err(_) => Counters::add(&self.counters().send_failed),
        }
    }
}

/// A percentage as the probability [`Rng::random_bool`] takes, clamped to `0..=1`.
fn percent(value: f64) -> f64 {
    (value / 100.0).clamp(0.0, 1.0)
}
