//! Faults between the relay and its clients: datagrams lost and delayed on the way (through
//! `common::udp_proxy`, since the kernel here has no netem), a publisher process killed
//! outright, and the relay itself killed and restarted. The real relay binary with two
//! shards on loopback with real TLS, our own moq-lite client, and moq-clock (`MOQ_REF_BIN`)
//! where the publisher must be a process of its own.
//!
//! The proxy's own tests come first: it must do what it says before the others rely on it.

mod common;

use common::udp_proxy::{Counts, Faults, UdpProxy};
use common::{groups_done, shard_counter, Relay};
use moq_bench::client::{Event, MoqClient};
use moq_relay::transport::quic::QuicSettings;
use moq_relay::wire::Version;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
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
    // The proxy counts a datagram as sent once `send_to` returned, which can be after its echo
    // came back through the other direction: wait for the counters to settle.
    wait_until(WAIT, || {
        proxy.to_target() == clean && proxy.to_client() == clean
    });
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

// ---------------------------------------------------------------------------------------
// Loss and delay between publisher, relay and viewers.

/// Groups published after the warm-up group 0, one every [`GROUP_EVERY`].
const GROUPS: u64 = 40;
const GROUP_EVERY: Duration = Duration::from_millis(100);
const FRAMES: usize = 4;
/// Two datagrams per frame, so each leg carries a few hundred.
const FRAME_BYTES: usize = 2000;
/// What the viewers ask for, and what our test publisher's TRACK_INFO offers.
const MAX_LATENCY_MS: u64 = 2000;

/// Frame `index` of group `group`: numbered, so any mix-up shows.
fn payload(group: u64, index: usize) -> Vec<u8> {
    let mut bytes = vec![(group as u8).wrapping_mul(31) ^ index as u8; FRAME_BYTES];
    bytes[..8].copy_from_slice(&group.to_be_bytes());
    bytes[8..16].copy_from_slice(&(index as u64).to_be_bytes());
    bytes
}

fn send_group(publisher: &mut MoqClient, group: u64) {
    let frames: Vec<Vec<u8>> = (0..FRAMES).map(|i| payload(group, i)).collect();
    let frames: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    publisher.send_group("lossy", "t", group, &frames);
}

/// A lite-05 session at `/anon` through `proxy`. A handshake whose packets are lost a few
/// times over can outlast the client's 5 s handshake timeout; like a real client, try again.
fn connect_through(proxy: &UdpProxy) -> MoqClient {
    let mut last = None;
    for _ in 0..3 {
        match MoqClient::connect(proxy.addr(), Version::Lite05, "/anon") {
            Ok(client) => return client,
            Err(e) => last = Some(e),
        }
    }
    panic!("no session through the proxy: {last:?}");
}

/// Polls every client once, briefly.
fn poll_all(publisher: &mut MoqClient, viewers: &mut [MoqClient]) {
    let _ = publisher.poll(ms(1));
    for viewer in viewers.iter_mut() {
        let _ = viewer.poll(ms(1));
    }
}

/// Polls everyone until `done` holds for every viewer; stops early once `failed` holds for
/// one. Whether every viewer got there.
fn wait_viewers(
    publisher: &mut MoqClient,
    viewers: &mut [MoqClient],
    timeout: Duration,
    done: impl Fn(&[Event]) -> bool,
    failed: impl Fn(&[Event]) -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if viewers.iter().all(|v| done(&v.events)) {
            return true;
        }
        if viewers
            .iter()
            .any(|v| failed(&v.events) || v.closed().is_some())
        {
            return false;
        }
        poll_all(publisher, viewers);
    }
    false
}

/// A group reset or the subscription refused: something the lossy links must not cause.
fn lost_something(events: &[Event]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::GroupReset { .. } | Event::Refused { .. }))
}

#[test]
fn five_percent_loss_and_50ms_delay_on_every_link_still_deliver_every_group_whole() {
    let relay = Relay::start("");
    let link = Faults::lossy(5.0, ms(50));
    let publisher_link = UdpProxy::start(relay.addr, link, link, 1).unwrap();
    let viewer_links: Vec<UdpProxy> = (0..4)
        .map(|i| UdpProxy::start(relay.addr, link, link, 100 + i).unwrap())
        .collect();

    let mut publisher = connect_through(&publisher_link);
    // Presentation time advances as fast as the wall clock: 4 frames of 25 ms per 100 ms group.
    publisher.frame_interval = 25;
    publisher.publish("lossy");
    assert!(
        publisher.wait_for(WAIT, |e| e
            .iter()
            .any(|e| matches!(e, Event::AnnounceRequested { .. }))),
        "the relay asks the publisher for announcements"
    );
    let mut viewers = Vec::new();
    for link in &viewer_links {
        let mut viewer = connect_through(link);
        viewer.request_announces("");
        let announced = |e: &[Event]| {
            e.iter().any(
                |e| matches!(e, Event::Announced { suffix, active: true, .. } if suffix == "lossy"),
            )
        };
        let mut one = [viewer];
        assert!(
            wait_viewers(&mut publisher, &mut one, WAIT, announced, |_| false),
            "the broadcast is announced through a lossy link: {:?}",
            one[0].events
        );
        let [mut viewer] = one;
        // A group is abandoned for a viewer (reset Old) only once it stalls longer than the
        // viewer's max age (PROTOCOL.md §6.7). With max age 0, the default, that is as soon as
        // a newer group is ahead, and under this loss it happens; 2 s of media is far more
        // than retransmission takes here, so with it every group is owed.
        viewer.subscribe_with("lossy", "t", 0, MAX_LATENCY_MS);
        viewers.push(viewer);
    }
    // Warm-up: group 0 reaches every viewer (as the latest group to any that subscribed
    // after it), so from group 1 on every viewer is owed every group.
    assert!(wait_until(WAIT, || {
        poll_all(&mut publisher, &mut viewers);
        publisher
            .events
            .iter()
            .any(|e| matches!(e, Event::Subscribed { .. }))
    }));
    send_group(&mut publisher, 0);
    assert!(
        wait_viewers(
            &mut publisher,
            &mut viewers,
            WAIT,
            |e| groups_done(e).contains(&0),
            lost_something
        ),
        "group 0 reaches every viewer"
    );

    let started = Instant::now();
    for group in 1..=GROUPS {
        send_group(&mut publisher, group);
        let next = started + GROUP_EVERY * group as u32;
        while Instant::now() < next {
            poll_all(&mut publisher, &mut viewers);
        }
    }
    let all = |e: &[Event]| {
        let done = groups_done(e);
        (0..=GROUPS).all(|g| done.contains(&g))
    };
    let delivered = wait_viewers(
        &mut publisher,
        &mut viewers,
        Duration::from_secs(30),
        all,
        lost_something,
    );

    for (i, viewer) in viewers.iter().enumerate() {
        let resets: Vec<&Event> = viewer
            .events
            .iter()
            .filter(|e| matches!(e, Event::GroupReset { .. } | Event::Refused { .. }))
            .collect();
        assert!(resets.is_empty(), "viewer {i}: {resets:?}");
        let done = groups_done(&viewer.events);
        let mut sorted = done.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            (0..=GROUPS).collect::<Vec<_>>(),
            "viewer {i}: every group exactly once (delivered: {delivered})"
        );
        // Within a group (one QUIC stream) frames arrive in order and whole. Groups are
        // streams of their own, so under loss one may finish before an older one, and may
        // even reach the relay after a newer one: it is still owed.
        for group in 0..=GROUPS {
            let frames: Vec<(usize, &[u8])> = viewer
                .events
                .iter()
                .filter_map(|e| match e {
                    Event::Frame {
                        group: g,
                        index,
                        payload,
                        ..
                    } if *g == group => Some((*index, payload.as_ref())),
                    _ => None,
                })
                .collect();
            let expected: Vec<Vec<u8>> = (0..FRAMES).map(|f| payload(group, f)).collect();
            assert_eq!(frames.len(), FRAMES, "viewer {i}, group {group}");
            for (f, (index, bytes)) in frames.iter().enumerate() {
                assert_eq!(*index, f, "viewer {i}, group {group}: frame order");
                assert!(
                    *bytes == expected[f],
                    "viewer {i}, group {group}, frame {f}"
                );
            }
        }
        let overtaken = done.windows(2).filter(|w| w[0] > w[1]).count();
        eprintln!(
            "viewer {i}: {} groups, {overtaken} finished before an older one",
            done.len()
        );
    }

    // The links were lossy in both legs (a few hundred datagrams each at 5 %).
    let upstream = publisher_link.to_target();
    let downstream: u64 = viewer_links.iter().map(|l| l.to_client().dropped).sum();
    eprintln!(
        "publisher to relay: {upstream:?}; relay to viewers: {downstream} dropped of {}",
        viewer_links
            .iter()
            .map(|l| l.to_client().received)
            .sum::<u64>()
    );
    assert!(upstream.dropped > 0, "{upstream:?}");
    assert!(downstream > 0);

    // Nor did the relay drop anything between its shards.
    let (status, log) = relay.terminate(WAIT);
    assert!(status.is_some_and(|s| s.success()), "a clean stop: {log}");
    assert_eq!(shard_counter(&log, "mesh_groups_reset"), 0, "{log}");
    assert_eq!(shard_counter(&log, "mesh_groups_skipped"), 0, "{log}");
}

// ---------------------------------------------------------------------------------------
// A publisher killed outright.

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends SIGKILL to `child` and reaps it: no goodbye reaches anyone.
fn sigkill(child: &mut Child) {
    // SAFETY: kill(2) on our own child, which has not been reaped yet.
    let killed = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
    assert_eq!(killed, 0, "SIGKILL sent");
    let _ = child.wait();
}

/// A viewer at `/anon` on `relay` that has seen `broadcast` announced, polling nothing else.
fn announced_viewer(relay: &Relay, broadcast: &str, timeout: Duration) -> MoqClient {
    let mut viewer = MoqClient::connect(relay.addr, Version::Lite05, "/anon").unwrap();
    viewer.request_announces("");
    assert!(
        viewer.wait_for(timeout, |e| e.iter().any(
            |e| matches!(e, Event::Announced { suffix, active: true, .. } if suffix == broadcast)
        )),
        "{broadcast} announced: {:?}\nrelay log:\n{}",
        viewer.events,
        relay.log_text()
    );
    viewer
}

#[test]
fn a_publisher_killed_with_sigkill_ends_its_viewers_subscriptions_after_the_linger() {
    let Some(clock) = common::reference::installed("MOQ_REF_BIN", "moq-clock") else {
        return;
    };
    // The relay notices a silent peer after the idle timeout, then keeps the broadcast for
    // the linger; a linger longer than the idle timeout tells the two apart.
    let idle = Duration::from_secs(2);
    let linger = Duration::from_secs(3);
    let relay = Relay::start(
        "[relay]\nlinger = \"3s\"\n[quic]\nidle_timeout = \"2s\"\nkeep_alive = \"500ms\"\n",
    );
    let mut publisher = Proc(
        Command::new(clock)
            .args(["--url", &format!("moqt://127.0.0.1:{}", relay.addr.port())])
            .args([
                "--tls-disable-verify",
                "--broadcast",
                "anon/clock",
                "publish",
            ])
            .env("MOQ_CLIENT_WEBSOCKET_ENABLED", "false")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moq-clock starts"),
    );
    let mut viewer = announced_viewer(&relay, "clock", Duration::from_secs(20));
    let id = viewer.subscribe("clock", "seconds");
    assert!(
        viewer.wait_for(WAIT, |e| e
            .iter()
            .any(|e| matches!(e, Event::Frame { id: i, .. } if *i == id))),
        "the clock's seconds arrive: {:?}",
        viewer.events
    );

    let killed = Instant::now();
    sigkill(&mut publisher.0);
    let over = |e: &[Event]| {
        e.iter().any(
            |e| matches!(e, Event::Finished { id: i } | Event::Refused { id: i, .. } if *i == id),
        )
    };
    // Generous: the idle timeout and the linger, plus 5 s for a loaded machine.
    let ended = viewer.wait_for(idle + linger + Duration::from_secs(5), over);
    let after = killed.elapsed();
    assert!(
        ended,
        "the subscription still open {after:?} after the kill: {:?}",
        viewer.events
    );
    assert!(
        after >= linger,
        "the subscription ended {after:?} after the kill, within the {linger:?} linger"
    );
    eprintln!("subscription ended {after:?} after SIGKILL (idle {idle:?} + linger {linger:?})");
    // PROTOCOL.md §6.8: `ended` on the announce stream, then END, then FIN; the viewer's own
    // session carries on.
    let position = |pred: &dyn Fn(&Event) -> bool| viewer.events.iter().position(pred);
    let unannounced = position(
        &|e| matches!(e, Event::Announced { suffix, active: false, .. } if suffix == "clock"),
    );
    let end = position(&|e| matches!(e, Event::Ended { id: i, .. } if *i == id));
    let fin = position(&|e| matches!(e, Event::Finished { id: i } if *i == id));
    assert!(
        matches!((unannounced, end, fin), (Some(a), Some(b), Some(c)) if a < b && b < c),
        "ended, END, FIN in that order: {:?}",
        viewer.events
    );
    assert_eq!(viewer.closed(), None, "the viewer's session stays open");
}

// ---------------------------------------------------------------------------------------
// The relay killed outright and restarted.

/// A publisher of `broadcast` and a viewer subscribed to it on `addr`, both with `settings`;
/// returned once group 0 reached the viewer.
fn publish_and_watch(
    addr: SocketAddr,
    broadcast: &str,
    settings: &QuicSettings,
) -> (MoqClient, MoqClient) {
    let mut publisher = MoqClient::connect_with(addr, Version::Lite05, "/anon", settings).unwrap();
    publisher.publish(broadcast);
    let mut viewer = MoqClient::connect_with(addr, Version::Lite05, "/anon", settings).unwrap();
    viewer.request_announces("");
    let mut viewers = [viewer];
    let announced = |e: &[Event]| {
        e.iter().any(
            |e| matches!(e, Event::Announced { suffix, active: true, .. } if suffix == broadcast),
        )
    };
    assert!(
        wait_viewers(&mut publisher, &mut viewers, WAIT, announced, |_| false),
        "{broadcast} announced"
    );
    let [mut viewer] = viewers;
    viewer.subscribe(broadcast, "t");
    assert!(wait_until(WAIT, || {
        let _ = viewer.poll(ms(1));
        let _ = publisher.poll(ms(1));
        publisher
            .events
            .iter()
            .any(|e| matches!(e, Event::Subscribed { .. }))
    }));
    publisher.send_group(broadcast, "t", 0, &[b"zero"]);
    let mut viewers = [viewer];
    assert!(
        wait_viewers(
            &mut publisher,
            &mut viewers,
            WAIT,
            |e| groups_done(e).contains(&0),
            lost_something
        ),
        "group 0 of {broadcast} reaches the viewer"
    );
    let [viewer] = viewers;
    (publisher, viewer)
}

#[test]
fn a_relay_killed_with_sigkill_and_restarted_on_its_port_serves_clients_that_reconnect() {
    let config = "[quic]\nidle_timeout = \"2s\"\nkeep_alive = \"500ms\"\n";
    // Our clients notice a dead relay after 2 s of silence, as the relay would notice them.
    let settings = QuicSettings {
        idle_timeout: Duration::from_secs(2),
        ..QuicSettings::default()
    };
    let first = Relay::start(config);
    let addr = first.addr;
    let (mut publisher, mut viewer) = publish_and_watch(addr, "phoenix", &settings);

    // `Child::kill` is SIGKILL: no CONNECTION_CLOSE reaches anyone.
    first.stop();
    let second = Relay::start_with(config, &["--listen", &addr.to_string()]);
    assert_eq!(second.addr, addr, "the same port");

    // The old connections' packets now reach a relay that never knew them; the clients find
    // out only by silence, then reconnect.
    let gone = wait_until(WAIT, || {
        for client in [&mut publisher, &mut viewer] {
            if client.closed().is_none() {
                let _ = client.quic.conn.send_ack_eliciting();
                let _ = client.poll(ms(5));
            }
        }
        publisher.closed().is_some() && viewer.closed().is_some()
    });
    assert!(gone, "the old sessions time out");

    let (mut publisher, viewer) = publish_and_watch(addr, "phoenix", &settings);
    for group in 1..=3u64 {
        publisher.send_group("phoenix", "t", group, &[b"again"]);
    }
    let mut viewers = [viewer];
    assert!(
        wait_viewers(
            &mut publisher,
            &mut viewers,
            WAIT,
            |e| (0..=3).all(|g| groups_done(e).contains(&g)),
            lost_something
        ),
        "the restarted relay serves the reconnected clients: {:?}",
        viewers[0].events
    );
    // The old sessions' packets were dropped and counted, not taken for new connections.
    let (status, log) = second.terminate(WAIT);
    assert!(status.is_some_and(|s| s.success()), "a clean stop: {log}");
    let strays = shard_counter(&log, "unknown_connection_dropped");
    eprintln!("the restarted relay dropped {strays} packets of the old sessions");
    assert!(strays > 0, "{log}");
}
