//! Attacks on sessions: no SETUP or CONNECT, partial messages, stream and datagram floods,
//! announce floods. Each runs against a relay with a 2 s setup timeout while a bystander
//! (a publisher and a viewer on the attacker's shard) streams groups, and asserts the bound
//! on what the attacker made the relay hold, the attacker's outcome (only its session
//! closed), the bystander's longest gap, and the counter the refusal added.

use crate::common::Relay;
use moq_bench::client::{Event, MoqClient, QuicClient};
use moq_relay::transport::quic::{cid, QuicSettings};
use moq_relay::transport::Streams;
use moq_relay::wire::{error_code, BidiType, Version};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The relay's extra configuration in these tests.
const LIMITS: &str = "[limits]\nsetup_timeout = \"2s\"\n";
/// The setup timeout [`LIMITS`] sets.
const SETUP_TIMEOUT: Duration = Duration::from_secs(2);
/// The bystander's longest gap between frames must stay under this (it sends every 50 ms).
const MAX_GAP: Duration = Duration::from_secs(2);
/// 1 MiB: the size the partial messages of these attacks declare.
const MIB: usize = 1 << 20;

/// The shard (of the relay's two) that owns a client's connection, from the connection id
/// the relay chose.
fn shard_of(quic: &QuicClient) -> usize {
    cid::owner(quic.conn.destination_id().as_ref(), 2).expect("the relay's ids name a shard")
}

/// Resident and peak resident memory of a process, in bytes.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kib| kib * 1024)
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Stops the relay cleanly and returns its log.
fn stop(relay: Relay) -> String {
    let (status, log) = relay.terminate(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "a clean stop: {log}");
    log
}

/// A publisher and a viewer on a given shard, streaming a group of one frame every 50 ms
/// on a thread of their own.
struct Bystander {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(usize, Duration)>,
}

impl Bystander {
    /// Starts streaming and returns once the viewer (on `shard`) receives.
    fn start(relay: &Relay, shard: usize) -> Bystander {
        let addr = relay.addr;
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut publisher = MoqClient::connect(addr, Version::Lite05, "anon").unwrap();
            publisher.publish("bystander");
            let mut viewer = loop {
                let mut viewer = MoqClient::connect(addr, Version::Lite05, "anon").unwrap();
                if shard_of(&viewer.quic) != shard {
                    continue;
                }
                viewer.request_announces("");
                let announced = |events: &[Event]| {
                    events.iter().any(|e| {
                        matches!(e, Event::Announced { suffix, active: true, .. } if suffix == "bystander")
                    })
                };
                let deadline = Instant::now() + Duration::from_secs(10);
                while !announced(&viewer.events) && Instant::now() < deadline {
                    let _ = publisher.poll(Duration::from_millis(1));
                    let _ = viewer.poll(Duration::from_millis(5));
                }
                assert!(announced(&viewer.events), "bystander announced");
                break viewer;
            };
            viewer.subscribe("bystander", "t");
            let (mut frames, mut max_gap) = (0usize, Duration::ZERO);
            let mut last_frame: Option<Instant> = None;
            let mut next_send = Instant::now();
            let mut sequence = 0;
            let mut ready = Some(ready_tx);
            while !flag.load(Ordering::Relaxed) {
                if Instant::now() >= next_send {
                    publisher.send_group("bystander", "t", sequence, &[b"tick"]);
                    sequence += 1;
                    next_send += Duration::from_millis(50);
                }
                let _ = publisher.poll(Duration::from_millis(1));
                let _ = viewer.poll(Duration::from_millis(5));
                let arrived = viewer
                    .events
                    .drain(..)
                    .filter(|e| matches!(e, Event::Frame { .. }))
                    .count();
                if arrived > 0 {
                    let now = Instant::now();
                    if let Some(last) = last_frame {
                        max_gap = max_gap.max(now - last);
                    }
                    last_frame = Some(now);
                    frames += arrived;
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                }
            }
            (frames, max_gap)
        });
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the bystander's viewer receives");
        Bystander { stop, thread }
    }

    /// Lets the viewer receive for another second after the attack, stops streaming, and
    /// asserts the viewer kept receiving throughout: returns its longest gap.
    fn finish(self) -> Duration {
        std::thread::sleep(Duration::from_secs(1));
        self.stop.store(true, Ordering::Relaxed);
        let (frames, max_gap) = self.thread.join().expect("bystander thread");
        assert!(
            frames >= 10,
            "the bystander's viewer received {frames} frames"
        );
        assert!(
            max_gap < MAX_GAP,
            "the bystander's longest gap: {max_gap:?}"
        );
        eprintln!("bystander: {frames} frames, longest gap {max_gap:?}");
        max_gap
    }
}

/// A QUIC connection offering only `alpn`, which then does whatever the test makes it do.
fn attacker(relay: &Relay, alpn: &[u8]) -> QuicClient {
    QuicClient::connect(
        relay.addr,
        &[alpn],
        &QuicSettings::default(),
        Duration::from_secs(5),
    )
    .expect("handshake")
}

/// Pumps until the relay closes the connection or `timeout` passes; returns when it closed
/// (since `since`) and the relay's close code.
fn await_close(quic: &mut QuicClient, since: Instant, timeout: Duration) -> (Duration, u64) {
    let deadline = Instant::now() + timeout;
    while !quic.conn.is_closed() && Instant::now() < deadline {
        let _ = quic.pump(Duration::from_millis(20));
    }
    assert!(
        quic.conn.is_closed(),
        "the relay did not close the attacker"
    );
    let code = quic
        .conn
        .peer_error()
        .map(|e| e.error_code)
        .expect("the relay closed it, with a code");
    (since.elapsed(), code)
}

/// Opens `count` bidi streams and writes, on each, `kind`'s type and a message declaring
/// 1 MiB of which all but the last byte follow: partial messages the relay must hold or
/// refuse. Stops early once the connection is closed. Returns the bytes the transport took.
fn flood_partial_messages(
    quic: &mut QuicClient,
    version: Version,
    kind: BidiType,
    count: usize,
) -> usize {
    let mut head = Vec::new();
    kind.encode(version, &mut head).unwrap();
    head.extend_from_slice(&[0x80, 0x10, 0x00, 0x00]); // varint 1 MiB
    let body = vec![0x61u8; MIB - 1];
    let mut ids = Vec::new();
    for _ in 0..count {
        match quic.streams().open_bidi() {
            Ok(id) => ids.push((id, 0usize)),
            Err(_) => break,
        }
    }
    let total = head.len() + body.len();
    let mut taken = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !quic.conn.is_closed() && Instant::now() < deadline {
        let mut progress = false;
        for (id, sent) in ids.iter_mut().filter(|(_, sent)| *sent < total) {
            let mut streams = quic.streams();
            while *sent < total {
                let chunk = if *sent < head.len() {
                    &head[*sent..]
                } else {
                    let at = *sent - head.len();
                    &body[at..body.len().min(at + 64 * 1024)]
                };
                match streams.send(*id, chunk, false) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        *sent += n;
                        taken += n;
                        progress = true;
                    }
                }
            }
        }
        if ids.iter().all(|(_, sent)| *sent == total) {
            break;
        }
        let _ = quic.pump(Duration::from_millis(if progress { 1 } else { 10 }));
    }
    taken
}

#[test]
fn a_raw_quic_session_that_never_sends_setup_is_closed_with_timeout() {
    let _alone = crate::one_attack_at_a_time();
    let relay = Relay::start(LIMITS);
    // The deadline runs from the end of the handshake, so never before this.
    let since = Instant::now();
    let mut quic = attacker(&relay, Version::Lite05.alpn());
    let bystander = Bystander::start(&relay, shard_of(&quic));
    let (after, code) = await_close(&mut quic, since, Duration::from_secs(15));
    assert_eq!(code, error_code::session::TIMEOUT);
    assert!(
        after >= SETUP_TIMEOUT && after < SETUP_TIMEOUT * 4,
        "closed after {after:?}"
    );
    eprintln!("no SETUP: closed after {after:?} with {code:#x}");
    bystander.finish();
    let log = stop(relay);
    assert_eq!(
        crate::common::shard_counter(&log, "setup_timeouts"),
        1,
        "{log}"
    );
}

#[test]
fn an_http3_connection_that_never_sends_connect_is_closed_with_request_rejected() {
    let _alone = crate::one_attack_at_a_time();
    let relay = Relay::start(LIMITS);
    let since = Instant::now();
    let mut quic = attacker(&relay, b"h3");
    let (after, code) = await_close(&mut quic, since, Duration::from_secs(15));
    assert_eq!(code, 0x10b, "H3_REQUEST_REJECTED");
    assert!(
        after >= SETUP_TIMEOUT && after < SETUP_TIMEOUT * 4,
        "closed after {after:?}"
    );
    let log = stop(relay);
    assert_eq!(
        crate::common::shard_counter(&log, "connect_timeouts"),
        1,
        "{log}"
    );
}

#[test]
fn a_websocket_that_never_sends_qmux_parameters_is_closed_at_the_setup_timeout() {
    let _alone = crate::one_attack_at_a_time();
    let relay = Relay::start(LIMITS);
    let since = Instant::now();
    let mut tcp = std::net::TcpStream::connect(relay.http).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    write!(
        tcp,
        "GET /anon HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: qmux-01.moq-lite-04\r\n\r\n"
    )
    .unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) => panic!("the relay kept the connection open: {e}"),
        }
    }
    let after = since.elapsed();
    assert!(
        received.starts_with(b"HTTP/1.1 101"),
        "{:?}",
        String::from_utf8_lossy(&received)
    );
    assert!(
        after >= SETUP_TIMEOUT && after < SETUP_TIMEOUT * 4,
        "closed after {after:?}"
    );
    let log = stop(relay);
    assert_eq!(
        crate::common::shard_counter(&log, "connect_timeouts"),
        1,
        "{log}"
    );
}

#[test]
fn partial_messages_before_setup_close_the_connection_and_hold_little_memory() {
    let _alone = crate::one_attack_at_a_time();
    let relay = Relay::start(LIMITS);
    let mut quic = attacker(&relay, Version::Lite05.alpn());
    let bystander = Bystander::start(&relay, shard_of(&quic));
    let (rss, _) = memory(relay.pid());
    let since = Instant::now();
    // 64 streams with a 1 MiB partial message each, and no SETUP.
    let taken = flood_partial_messages(&mut quic, Version::Lite05, BidiType::Subscribe, 64);
    let (after, code) = await_close(&mut quic, since, Duration::from_secs(15));
    let (_, peak) = memory(relay.pid());
    let growth = peak.saturating_sub(rss);
    eprintln!(
        "before SETUP: {taken} bytes taken, closed after {after:?} with {code:#x}, peak RSS +{} KiB",
        growth / 1024
    );
    assert_eq!(code, error_code::session::PROTOCOL_VIOLATION);
    assert!(
        after < SETUP_TIMEOUT,
        "closed for its bytes, not its time: {after:?}"
    );
    assert!(growth < 16 * MIB as u64, "peak RSS grew by {growth} bytes");
    bystander.finish();
    let log = stop(relay);
    assert_eq!(
        crate::common::shard_counter(&log, "pre_auth_overflows"),
        1,
        "{log}"
    );
}

#[test]
fn partial_control_messages_beyond_the_budget_close_only_the_attackers_session() {
    let _alone = crate::one_attack_at_a_time();
    let relay = Relay::start(LIMITS);
    // An anonymous lite-04 session is authorized at once.
    let mut quic = attacker(&relay, Version::Lite04.alpn());
    let bystander = Bystander::start(&relay, shard_of(&quic));
    let (rss, _) = memory(relay.pid());
    let since = Instant::now();
    let taken = flood_partial_messages(&mut quic, Version::Lite04, BidiType::Subscribe, 150);
    let (after, code) = await_close(&mut quic, since, Duration::from_secs(15));
    let (_, peak) = memory(relay.pid());
    let growth = peak.saturating_sub(rss);
    eprintln!(
        "150 partial messages: {taken} bytes taken, closed after {after:?} with {code:#x}, peak RSS +{} KiB",
        growth / 1024
    );
    assert_eq!(code, error_code::session::PROTOCOL_VIOLATION);
    assert!(growth < 24 * MIB as u64, "peak RSS grew by {growth} bytes");
    bystander.finish();
    let log = stop(relay);
    assert_eq!(
        crate::common::shard_counter(&log, "budget_closes"),
        1,
        "{log}"
    );
}

#[test]
fn datagrams_are_read_dropped_and_counted() {
    let _alone = crate::one_attack_at_a_time();
    let relay = Relay::start(LIMITS);
    let mut client = MoqClient::connect(relay.addr, Version::Lite05, "anon").unwrap();
    let datagram = vec![0x5au8; 1_000];
    let mut queued = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while queued < 1_100 && Instant::now() < deadline {
        while queued < 1_100 && client.quic.conn.dgram_send(&datagram).is_ok() {
            queued += 1;
            if client.quic.conn.dgram_send_queue_len() >= 64 {
                break;
            }
        }
        let _ = client.poll(Duration::from_millis(2));
    }
    assert_eq!(queued, 1_100);
    // Let the queue drain and the relay take them; the session stays up throughout.
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        let _ = client.poll(Duration::from_millis(10));
    }
    assert_eq!(client.quic.conn.dgram_send_queue_len(), 0);
    assert!(client.closed().is_none(), "the session stays up");
    drop(client);
    let log = stop(relay);
    let dropped = crate::common::shard_counter(&log, "datagrams_dropped");
    eprintln!("datagrams: {queued} sent, {dropped} read and dropped by the relay");
    // Loopback may lose a few (datagrams are not retransmitted); every one that arrived
    // was read.
    assert!(
        dropped <= queued && dropped >= queued * 9 / 10,
        "{dropped} of {queued}: {log}"
    );
}

#[test]
fn announce_requests_stream_the_announced_set_and_are_limited_per_session() {
    let _alone = crate::one_attack_at_a_time();
    const BROADCASTS: usize = 10_000;
    const REQUESTS: usize = 500;
    let relay = Relay::start(LIMITS);
    let mut publisher = MoqClient::connect(relay.addr, Version::Lite05, "anon").unwrap();
    for i in 0..BROADCASTS {
        publisher.publish(&format!("b{i:05}"));
    }
    // The relay knows them all once a viewer has seen each of them.
    let mut viewer = MoqClient::connect(relay.addr, Version::Lite05, "anon").unwrap();
    viewer.request_announces("");
    let mut names = std::collections::HashSet::new();
    let mut answers = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while names.len() < BROADCASTS && Instant::now() < deadline {
        let _ = publisher.poll(Duration::from_millis(1));
        let _ = viewer.poll(Duration::from_millis(5));
        for event in viewer.events.drain(..) {
            if let Event::Announced {
                suffix,
                active: true,
                ..
            } = event
            {
                answers += 1;
                names.insert(suffix);
            }
        }
    }
    assert_eq!(names.len(), BROADCASTS, "all announced");
    assert_eq!(answers, BROADCASTS, "each announced once");
    drop(viewer);

    let mut attacker = MoqClient::connect(relay.addr, Version::Lite05, "anon").unwrap();
    let (rss, _) = memory(relay.pid());
    let since = Instant::now();
    for _ in 0..REQUESTS {
        attacker.request_announces("");
    }
    // The attacker reads nothing; it waits until the relay answered or refused every
    // request (its client-initiated bidi streams are 0, 4, 8 …: SETUP went on a uni one).
    let deadline = Instant::now() + Duration::from_secs(60);
    let answered = |attacker: &MoqClient| {
        (0..REQUESTS as u64)
            .filter(|i| attacker.quic.conn.stream_readable(i * 4))
            .count()
    };
    while answered(&attacker) < REQUESTS && Instant::now() < deadline {
        let _ = attacker.pump_only(Duration::from_millis(10));
        let _ = publisher.poll(Duration::from_millis(1));
    }
    let waited = since.elapsed();
    let (now, peak) = memory(relay.pid());
    let growth = peak.saturating_sub(rss);
    eprintln!(
        "{REQUESTS} announce requests over {BROADCASTS} broadcasts: {} answered or refused after {waited:?}, RSS +{} KiB (peak +{} KiB)",
        answered(&attacker),
        now.saturating_sub(rss) / 1024,
        growth / 1024
    );
    assert_eq!(
        answered(&attacker),
        REQUESTS,
        "every request answered or refused"
    );
    assert!(growth < 32 * MIB as u64, "peak RSS grew by {growth} bytes");
    assert!(
        attacker.closed().is_none(),
        "refused requests, not a closed session"
    );
    drop(attacker);
    drop(publisher);
    let log = stop(relay);
    assert_eq!(
        crate::common::shard_counter(&log, "announce_requests_refused"),
        (REQUESTS - 16) as u64,
        "{log}"
    );
}
