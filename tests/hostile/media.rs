//! Attacks through media: a publisher that keeps many groups of one track open and growing,
//! to make the relay cache more than the track's byte budget, and one that starts large
//! frames and never finishes them, to make the relay hold them whole.
//!
//! Each runs against the real relay (`--shards 2`) while a well-behaved publisher sends a
//! broadcast owned by the same shard as the attacker's (so its cache lives beside the
//! attacked one) to viewers on whichever shards they land. The bound is on the relay's RSS
//! growth (VmRSS of `/proc/<pid>/status`, sampled throughout): the track budget (64 MiB)
//! once per shard that caches the attacked track, plus a fixed allowance for everything
//! else. Which shards those are only the relay's log says (the shard of the attacker's
//! viewer), read once it has stopped, with the counters of what the caches dropped.

use crate::common::Relay;
use moq_bench::client::{Event, MoqClient};
use moq_relay::transport::quic::QuicSettings;
use moq_relay::transport::{StreamError, StreamId, Streams};
use moq_relay::wire::error_code::stream::OLD;
use moq_relay::wire::{FrameHeader, GroupHeader, Message, UniType, Version};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;
const V5: Version = Version::Lite05;
const TRACK: &str = "video";
/// The attacker's broadcast (at `/anon`).
const EVIL: &str = "evil";
/// What a track may cache on one shard (`CacheLimits::max_track_bytes`).
const TRACK_BUDGET_MIB: u64 = 64;
/// RSS growth allowed beyond the caches: what the attacker's connection may have in flight
/// before the session reads it (QUIC's connection window, 64 MiB, which a shard busy with the
/// attack lets fill) and 64 MiB for read buffers, chunks crossing the mesh and allocator
/// slack. Measured at 54-111 MiB here (debug build, glibc malloc, load average 15-18).
const ALLOWANCE_MIB: u64 = 128;
/// Well-behaved viewers.
const BYSTANDERS: usize = 4;
/// The bystanders' bound while an attacker streams 160–320 MiB of media through their shard.
/// A session reads at most `POLL_READ_BUDGET` per poll and then lets the shard's other
/// connections run; before that budget one poll read all the attacker's streams held and a
/// bystander's gap reached 2.2–3.7 s in a debug build.
const BULK_ATTACK_MAX_GAP: Duration = Duration::from_secs(2);

/// The relay's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("relay status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

/// Samples a process's RSS every 20 ms on a thread; [`RssProbe::peak`] stops it.
struct RssProbe {
    stop: Arc<AtomicBool>,
    sampler: JoinHandle<u64>,
}

impl RssProbe {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let sampler = thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid));
                thread::sleep(Duration::from_millis(20));
            }
            peak.max(rss_kib(pid))
        });
        Self { stop, sampler }
    }

    /// The highest RSS seen, in KiB.
    fn peak(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.sampler.join().expect("sampler")
    }
}

/// A broadcast name at `/anon` whose absolute path hashes to the same owning shard (of two)
/// as the attacker's.
fn neighbour_of_evil() -> String {
    let owner = |name: &str| shards::owner_of(format!("anon/{name}").as_bytes(), 2);
    (0..)
        .map(|i| format!("good{i}"))
        .find(|name| owner(name) == owner(EVIL))
        .expect("some name hashes to either shard")
}

/// What a well-behaved viewer saw (every field shows in a failure message).
#[derive(Debug)]
#[allow(dead_code)]
struct ViewerReport {
    port: u16,
    frames: usize,
    longest_gap: Duration,
    /// Codes of the groups reset for it.
    resets: Vec<u64>,
    closed: bool,
}

/// A well-behaved publisher (a one-frame group every 50 ms) and its viewers.
struct Bystanders {
    stop: Arc<AtomicBool>,
    publisher: JoinHandle<bool>,
    viewers: Vec<JoinHandle<ViewerReport>>,
    /// Frames each viewer received so far.
    received: Vec<Arc<AtomicUsize>>,
}

impl Bystanders {
    fn start(relay: &Relay, broadcast: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let publisher = {
            let (stop, addr, broadcast) = (stop.clone(), relay.addr, broadcast.to_string());
            thread::spawn(move || {
                let mut publisher = MoqClient::connect(addr, V5, "/anon").expect("publisher");
                publisher.publish(&broadcast);
                let frame = vec![0x5a; 1000];
                let mut sequence = 0;
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    if Instant::now() >= next {
                        publisher.send_group(&broadcast, TRACK, sequence, &[&frame]);
                        sequence += 1;
                        next += Duration::from_millis(50);
                    }
                    publisher.events.clear();
                    if publisher.poll(Duration::from_millis(5)).is_err() {
                        break;
                    }
                }
                publisher.closed().is_none()
            })
        };
        let mut viewers = Vec::new();
        let mut received = Vec::new();
        for _ in 0..BYSTANDERS {
            let mut viewer = crate::common::await_announced(
                relay,
                V5,
                "/anon",
                broadcast,
                Duration::from_secs(20),
            )
            .expect("the well-behaved broadcast is announced");
            let port = viewer.quic.local_addr().port();
            let (stop, broadcast) = (stop.clone(), broadcast.to_string());
            let count = Arc::new(AtomicUsize::new(0));
            received.push(count.clone());
            viewers.push(thread::spawn(move || {
                viewer.subscribe(&broadcast, TRACK);
                let mut report = ViewerReport {
                    port,
                    frames: 0,
                    longest_gap: Duration::ZERO,
                    resets: Vec::new(),
                    closed: false,
                };
                let mut last: Option<Instant> = None;
                while !stop.load(Ordering::Relaxed) {
                    if viewer.poll(Duration::from_millis(5)).is_err() {
                        break;
                    }
                    let now = Instant::now();
                    for event in viewer.events.drain(..) {
                        match event {
                            Event::Frame { .. } => {
                                if let Some(last) = last {
                                    report.longest_gap = report.longest_gap.max(now - last);
                                }
                                last = Some(now);
                                report.frames += 1;
                                count.fetch_add(1, Ordering::Relaxed);
                            }
                            Event::GroupReset { code, .. } => report.resets.push(code),
                            _ => {}
                        }
                    }
                }
                if let Some(last) = last {
                    report.longest_gap = report.longest_gap.max(Instant::now() - last);
                }
                report.closed = viewer.closed().is_some();
                report
            }));
        }
        Self {
            stop,
            publisher,
            viewers,
            received,
        }
    }

    /// Waits until every viewer has received a few frames.
    fn wait_flowing(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.received.iter().any(|c| c.load(Ordering::Relaxed) < 5) {
            assert!(Instant::now() < deadline, "the bystanders never got going");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops everyone; asserts the publisher was never closed. Returns the viewers' reports
    /// (see [`assert_kept_receiving`]).
    fn finish(self) -> Vec<ViewerReport> {
        self.stop.store(true, Ordering::Relaxed);
        assert!(
            self.publisher.join().expect("publisher"),
            "the well-behaved publisher was closed"
        );
        self.viewers
            .into_iter()
            .map(|v| v.join().expect("viewer"))
            .collect()
    }
}

/// Every well-behaved viewer stayed connected and kept receiving.
fn assert_kept_receiving(reports: &[ViewerReport], max_gap: Duration) {
    {
        for report in reports {
            assert!(
                !report.closed,
                "a well-behaved viewer was closed: {report:?}"
            );
            // A viewer that falls behind on a loaded machine skips ahead (its stalled groups
            // reset as Old, by design); nothing else may reset its groups.
            assert!(
                report.resets.iter().all(|&c| c == OLD),
                "only skip-ahead resets: {report:?}"
            );
            assert!(
                report.longest_gap < max_gap,
                "a well-behaved viewer waited too long: {report:?}"
            );
        }
    }
}

/// The attacker: a publisher of `/anon/evil`, and a viewer of its track that reads nothing
/// (small windows) so the relay keeps pulling the track.
struct Attacker {
    publisher: MoqClient,
    publisher_port: u16,
    viewer: JoinHandle<()>,
    viewer_port: u16,
    stop: Arc<AtomicBool>,
    /// The relay's subscription id at the publisher.
    subscription: u64,
}

impl Attacker {
    fn start(relay: &Relay) -> Self {
        let mut publisher = MoqClient::connect(relay.addr, V5, "/anon").expect("attacker");
        publisher.publish(EVIL);
        let quiet = QuicSettings {
            max_data: MIB as u64,
            max_stream_data: 256 << 10,
            ..QuicSettings::default()
        };
        let mut viewer = MoqClient::connect_with(relay.addr, V5, "/anon", &quiet).expect("viewer");
        viewer.request_announces("");
        let announced = |events: &[Event]| {
            events.iter().any(
                |e| matches!(e, Event::Announced { suffix, active: true, .. } if suffix == EVIL),
            )
        };
        // The publisher must answer the relay's announce request meanwhile.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !announced(&viewer.events) {
            assert!(
                Instant::now() < deadline,
                "the attack broadcast was announced"
            );
            publisher.poll(Duration::from_millis(5)).expect("attacker");
            viewer.poll(Duration::from_millis(5)).expect("viewer");
        }
        viewer.subscribe(EVIL, TRACK);
        let subscribed = |p: &MoqClient| {
            p.downstreams
                .iter()
                .find(|d| d.broadcast == EVIL)
                .map(|d| d.id)
        };
        while subscribed(&publisher).is_none() {
            assert!(Instant::now() < deadline, "the relay subscribed upstream");
            publisher.poll(Duration::from_millis(5)).expect("attacker");
            viewer.poll(Duration::from_millis(5)).expect("viewer");
        }
        let subscription = subscribed(&publisher).expect("subscribed");
        let viewer_port = viewer.quic.local_addr().port();
        let publisher_port = publisher.quic.local_addr().port();
        let stop = Arc::new(AtomicBool::new(false));
        let viewer = {
            let stop = stop.clone();
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if viewer.pump_only(Duration::from_millis(10)).is_err() {
                        break;
                    }
                }
            })
        };
        Self {
            publisher,
            publisher_port,
            viewer,
            viewer_port,
            stop,
            subscription,
        }
    }

    /// Opens group `sequence` on a new stream (its type and header written).
    fn open_group(&mut self, sequence: u64) -> StreamId {
        let mut header = Vec::new();
        UniType::Group.encode(V5, &mut header).unwrap();
        GroupHeader {
            subscribe_id: self.subscription,
            sequence,
        }
        .encode(V5, &mut header)
        .unwrap();
        let id = self.publisher.quic.streams().open_uni().expect("credit");
        self.send(id, &header)
            .expect("a fresh stream takes its header");
        id
    }

    /// Writes all of `bytes` on `id` while QUIC's flow control lets it through. `Err` with
    /// the code when the relay stopped the stream.
    fn send(&mut self, id: StreamId, bytes: &[u8]) -> Result<(), u64> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut sent = 0;
        while sent < bytes.len() {
            match self
                .publisher
                .quic
                .streams()
                .send(id, &bytes[sent..], false)
            {
                Ok(n) => sent += n,
                Err(StreamError::Blocked) => {}
                Err(StreamError::Stopped(code)) | Err(StreamError::Reset(code)) => {
                    return Err(code)
                }
                Err(e) => panic!("the attacker's stream failed: {e:?}"),
            }
            if sent < bytes.len() {
                assert!(Instant::now() < deadline, "the relay stopped reading");
                self.publisher
                    .poll(Duration::from_millis(1))
                    .expect("attacker connection");
            }
        }
        Ok(())
    }

    /// Keeps the attacker's connection turning for `time` (its data in flight lands).
    fn linger(&mut self, time: Duration) {
        let end = Instant::now() + time;
        while Instant::now() < end {
            self.publisher.events.clear();
            let _ = self.publisher.poll(Duration::from_millis(5));
        }
    }

    /// Stops the viewer's thread; returns the publisher's close state (None: still open).
    fn finish(self) -> Option<Option<u64>> {
        self.stop.store(true, Ordering::Relaxed);
        self.viewer.join().expect("attacker's viewer");
        self.publisher.closed()
    }
}

/// A frame header of `size` payload bytes (lite-05, timestamp delta 33).
fn frame_header(size: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    FrameHeader {
        timestamp_delta: 33,
        size: size as u64,
    }
    .encode(V5, &mut buf)
    .unwrap();
    buf
}

/// The shard the session from `port` landed on, from its "session started" line.
fn shard_of(log: &str, port: u16) -> Option<usize> {
    let peer = format!("127.0.0.1:{port}");
    log.lines()
        .filter(|l| l.contains("session started") && l.contains(&peer))
        .find_map(|l| {
            l.split("shard=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
}

/// What one attack measured, for the bound and the failure message (and the test's output).
#[derive(Debug)]
#[allow(dead_code)]
struct Measured {
    /// Where the attacked track's owner and the attacker's sessions were.
    shards: String,
    baseline_mib: u64,
    growth_mib: u64,
    caching_shards: usize,
    bound_mib: u64,
    seconds: f64,
    bystanders: Vec<ViewerReport>,
    evicted: u64,
    too_large: u64,
    discarded_mib: u64,
    /// Datagrams the kernel dropped on the relay's port during the attack (its receive
    /// buffers overflowed), and what the mesh shed between the shards.
    udp_kernel_drops: Option<u64>,
    mesh_groups_reset: u64,
    mesh_groups_skipped: u64,
}

/// Runs `attack` against a fresh relay with bystanders watching, and measures it.
fn measure(attack: impl FnOnce(&mut Attacker)) -> Measured {
    let relay = Relay::start("");
    let bystanders = Bystanders::start(&relay, &neighbour_of_evil());
    bystanders.wait_flowing();
    let mut attacker = Attacker::start(&relay);
    let baseline = rss_kib(relay.pid());
    let probe = RssProbe::start(relay.pid());
    let drops_before = moq_bench::relay_process::udp_drops(relay.addr.port());
    let started = Instant::now();
    attack(&mut attacker);
    // The last writes land, and whatever the relay does with them shows in its RSS.
    attacker.linger(Duration::from_secs(2));
    let seconds = started.elapsed().as_secs_f64();
    let peak = probe.peak();
    let udp_kernel_drops = drops_before
        .zip(moq_bench::relay_process::udp_drops(relay.addr.port()))
        .map(|(before, after)| after.saturating_sub(before));
    let bystander_reports = bystanders.finish();
    let (viewer_port, publisher_port) = (attacker.viewer_port, attacker.publisher_port);
    let attacker_state = attacker.finish();
    let (status, log) = relay.terminate(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "a clean stop: {log}");
    assert_eq!(
        attacker_state, None,
        "the attack is answered per group, not per session"
    );
    let owner = shards::owner_of(format!("anon/{EVIL}").as_bytes(), 2);
    let viewer_shard = shard_of(&log, viewer_port).expect("the attacker's viewer in the log");
    let caching: BTreeSet<usize> = [owner, viewer_shard].into();
    let bound_mib = caching.len() as u64 * TRACK_BUDGET_MIB + ALLOWANCE_MIB;
    Measured {
        shards: format!(
            "owner {owner}, attacker's publisher {:?}, its viewer {viewer_shard}",
            shard_of(&log, publisher_port)
        ),
        baseline_mib: baseline >> 10,
        growth_mib: peak.saturating_sub(baseline) >> 10,
        caching_shards: caching.len(),
        bound_mib,
        seconds,
        bystanders: bystander_reports,
        evicted: crate::common::shard_counter(&log, "cache_groups_evicted"),
        too_large: crate::common::shard_counter(&log, "cache_groups_too_large"),
        discarded_mib: crate::common::shard_counter(&log, "cache_bytes_discarded") >> 20,
        udp_kernel_drops,
        mesh_groups_reset: crate::common::shard_counter(&log, "mesh_groups_reset"),
        mesh_groups_skipped: crate::common::shard_counter(&log, "mesh_groups_skipped"),
    }
}

#[test]
fn forty_open_groups_of_four_mib_on_one_track_stay_within_the_track_budget() {
    let _alone = crate::one_attack_at_a_time();
    const GROUPS: u64 = 40;
    const FRAME: usize = 64 << 10;
    const FRAMES_PER_GROUP: usize = 4 * MIB / FRAME;
    let measured = measure(|attacker| {
        let streams: Vec<_> = (0..GROUPS).map(|seq| attacker.open_group(seq)).collect();
        let mut frame = frame_header(FRAME);
        frame.extend(std::iter::repeat_n(0xee, FRAME));
        // The groups grow side by side, whole frames at a time, and none ever ends.
        let mut open: Vec<_> = streams;
        for _ in 0..FRAMES_PER_GROUP {
            open.retain(|&id| attacker.send(id, &frame).is_ok());
        }
    });
    eprintln!("40 open groups of 4 MiB: {measured:#?}");
    assert_kept_receiving(&measured.bystanders, BULK_ATTACK_MAX_GAP);
    assert!(
        measured.growth_mib <= measured.bound_mib,
        "the relay held more than the track budget allows: {measured:#?}"
    );
    // 160 MiB against 64 MiB: at least 24 groups had to go on the owning shard alone.
    assert!(measured.evicted >= 24, "{measured:#?}");
}

/// The 32 frames, made 40 so that the bound separates the relay before cut-through
/// (which held every frame whole: +271 MiB for 32) from after in every placement.
#[test]
fn forty_unfinished_frames_of_eight_mib_cost_their_bytes_in_flight_not_their_size() {
    let _alone = crate::one_attack_at_a_time();
    const FRAMES: u64 = 40;
    const SIZE: usize = 8 * MIB;
    const PIECE: usize = 256 << 10;
    let measured = measure(|attacker| {
        // One group per frame (a stream each), all on one track; each frame declares 8 MiB
        // and gets all of it but its last byte.
        let mut open: Vec<_> = (0..FRAMES)
            .map(|seq| {
                let id = attacker.open_group(seq);
                attacker.send(id, &frame_header(SIZE)).expect("header");
                id
            })
            .collect();
        let piece = vec![0xdd; PIECE];
        for written in (0..SIZE - 1).step_by(PIECE) {
            let len = PIECE.min(SIZE - 1 - written);
            open.retain(|&id| attacker.send(id, &piece[..len]).is_ok());
        }
    });
    eprintln!("40 unfinished 8 MiB frames: {measured:#?}");
    assert_kept_receiving(&measured.bystanders, BULK_ATTACK_MAX_GAP);
    assert!(
        measured.growth_mib <= measured.bound_mib,
        "the relay held more than the frames' bytes in flight: {measured:#?}"
    );
    // 320 MiB written: at least 32 of the 40 groups had to go on the owning shard.
    assert!(measured.evicted >= 32, "{measured:#?}");
}
