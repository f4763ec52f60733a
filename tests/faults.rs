//! Faults between the relay and its clients: datagrams lost and delayed on the way (through
//! `common::udp_proxy`, since the kernel here has no netem), a publisher process killed
//! outright, and the relay itself killed and restarted. The real relay binary with two
//! shards on loopback with real TLS, our own moq-lite client, and moq-clock (`MOQ_REF_BIN`)
//! where the publisher must be a process of its own.
//!
//! The proxy's own tests come first: it must do what it says before the others rely on it.

mod common;

use common::udp_proxy::{Counts, Faults, UdpProxy};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Calls `cond` until it holds or `timeout` passes; whether it held.
fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(ms(1));
    }
    cond()
}

// ---------------------------------------------------------------------------------------
// The proxy itself.

/// A loopback socket standing for one end of a flow.
fn endpoint() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(ms(100))).unwrap();
    socket
}

/// Receives up to `n` datagrams numbered by their first four bytes, for at most `timeout`.
fn receive(socket: &UdpSocket, n: usize, timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while got.len() < n && Instant::now() < deadline {
        if let Ok((len, _)) = socket.recv_from(&mut buf) {
            assert!(len >= 4, "a numbered datagram");
            got.push(u32::from_be_bytes(buf[..4].try_into().unwrap()));
        }
    }
    got
}

/// A target that sends every datagram back to its sender, until dropped.
struct Echo {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Echo {
    fn start() -> Self {
        let socket = endpoint();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stopped.load(Ordering::Relaxed) {
                if let Ok((len, from)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(&buf[..len], from);
                }
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sends datagrams `0..n` from a fresh socket through `proxy` (whose target is `sink`), in
/// batches of 50 that `sink` has received before the next batch goes (so no socket buffer
/// overflows), and returns the numbers `sink` received, in arrival order, and what the proxy
/// counted. For links without delay.
fn through(proxy: &UdpProxy, sink: &UdpSocket, n: u32) -> (Vec<u32>, Counts) {
    let client = endpoint();
    let mut arrived = Vec::new();
    for i in 0..n {
        client.send_to(&i.to_be_bytes(), proxy.addr()).unwrap();
        if i % 50 == 49 || i + 1 == n {
            let decided = || proxy.to_target().received == u64::from(i + 1);
            assert!(wait_until(WAIT, decided), "{:?}", proxy.to_target());
            let c = proxy.to_target();
            let owed = c.received - c.dropped + c.duplicated;
            assert!(wait_until(WAIT, || proxy.to_target().sent == owed));
            arrived.extend(receive(sink, owed as usize - arrived.len(), WAIT));
        }
    }
    (arrived, proxy.to_target())
}

#[test]
fn proxy_without_faults_forwards_every_datagram_both_ways_in_order() {
    let echo = Echo::start();
    let proxy = UdpProxy::start(echo.addr, Faults::default(), Faults::default(), 1).unwrap();
    let client = endpoint();
    let mut back = Vec::new();
    for i in 0..200u32 {
        client.send_to(&i.to_be_bytes(), proxy.addr()).unwrap();
        if i % 20 == 19 {
            back.extend(receive(&client, 20, WAIT));
        }
    }
    assert_eq!(back, (0..200).collect::<Vec<_>>());
    let clean = Counts {
        received: 200,
        sent: 200,
        ..Counts::default()
    };
    assert_eq!(proxy.to_target(), clean);
    assert_eq!(proxy.to_client(), clean);
}

#[test]
fn proxy_loss_drops_about_its_share_and_the_same_datagrams_for_the_same_seed() {
    let run = |seed| {
        let sink = endpoint();
        let faults = Faults::lossy(20.0, Duration::ZERO);
        let proxy =
            UdpProxy::start(sink.local_addr().unwrap(), faults, Faults::default(), seed).unwrap();
        through(&proxy, &sink, 500)
    };
    let (arrived, counts) = run(7);
    assert_eq!(counts.dropped + counts.sent, 500, "{counts:?}");
    assert_eq!(arrived.len() as u64, counts.sent);
    // 20 % of 500 is 100; the binomial's standard deviation is 9.
    assert!((60..=140).contains(&counts.dropped), "{counts:?}");
    assert!(
        arrived.windows(2).all(|w| w[0] < w[1]),
        "in order, once each"
    );
    let (again, _) = run(7);
    assert_eq!(again, arrived, "the same seed drops the same datagrams");
    let (other, _) = run(8);
    assert_ne!(other, arrived, "another seed drops others");
}

#[test]
fn proxy_delay_holds_each_direction_for_at_least_its_delay() {
    let echo = Echo::start();
    let there = Faults {
        delay: ms(30),
        jitter: ms(20),
        ..Faults::default()
    };
    let back = Faults {
        delay: ms(50),
        ..Faults::default()
    };
    let proxy = UdpProxy::start(echo.addr, there, back, 3).unwrap();
    let client = endpoint();
    let mut slowest = Duration::ZERO;
    for i in 0..10u32 {
        let sent = Instant::now();
        client.send_to(&i.to_be_bytes(), proxy.addr()).unwrap();
        assert_eq!(receive(&client, 1, WAIT), [i]);
        let rtt = sent.elapsed();
        assert!(rtt >= ms(80), "round trip {rtt:?} under the 80 ms of delay");
        slowest = slowest.max(rtt);
    }
    assert!(slowest < Duration::from_secs(1), "round trip {slowest:?}");
}

#[test]
fn proxy_duplication_delivers_each_picked_datagram_twice() {
    let sink = endpoint();
    let faults = Faults {
        duplicate_percent: 100.0,
        ..Faults::default()
    };
    let proxy = UdpProxy::start(sink.local_addr().unwrap(), faults, Faults::default(), 4).unwrap();
    let (mut arrived, counts) = through(&proxy, &sink, 100);
    assert_eq!(counts.duplicated, 100, "{counts:?}");
    assert_eq!(counts.sent, 200, "{counts:?}");
    arrived.sort_unstable();
    let twice: Vec<u32> = (0..100).flat_map(|i| [i, i]).collect();
    assert_eq!(arrived, twice);
}

#[test]
fn proxy_reordering_lets_later_datagrams_overtake_held_ones() {
    let sink = endpoint();
    let faults = Faults {
        reorder_percent: 30.0,
        ..Faults::default()
    };
    let proxy = UdpProxy::start(sink.local_addr().unwrap(), faults, Faults::default(), 5).unwrap();
    // One burst, sent well within REORDER_HOLD, so datagrams after a held one overtake it.
    let client = endpoint();
    for i in 0..100u32 {
        client.send_to(&i.to_be_bytes(), proxy.addr()).unwrap();
    }
    let arrived = receive(&sink, 100, WAIT);
    let counts = proxy.to_target();
    assert!(counts.reordered > 0, "{counts:?}");
    let mut sorted = arrived.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..100).collect::<Vec<_>>(), "nothing lost");
    let overtaken = arrived.windows(2).filter(|w| w[0] > w[1]).count();
    assert!(overtaken > 0, "held datagrams overtaken: {arrived:?}");
}
