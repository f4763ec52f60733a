//! Sessions driven through in-memory streams with a fake clock: what a step costs as the
//! number of open streams grows, how an announce answer is paced by its reader, and the
//! limits a peer is held to before and after authorization.

use super::*;
use crate::auth::Auth;
use crate::relay::{Control, Data, MeshPort, RelayShard};
use crate::transport::StreamError;
use crate::wire::{Announce, AnnounceRequest, Subscribe, SubscribeUpdate};
use std::collections::VecDeque;
use std::time::Duration;

/// A relay of one shard: its mesh never carries anything.
struct NoMesh;

impl MeshPort for NoMesh {
    fn try_send_control(&self, _: usize, msg: Control) -> Result<(), Control> {
        Err(msg)
    }

    fn try_send_data(&self, _: usize, msg: Data) -> Result<(), Data> {
        Err(msg)
    }
}

fn env(limits: SessionLimits, now: Instant) -> Rc<SessionEnv> {
    let shard = RelayShard::new(0, 1, crate::harness::relay_config(), Box::new(NoMesh), now);
    let auth = Auth {
        public: vec![String::new()],
        verifier: None,
    };
    Rc::new(SessionEnv::new(shard, auth, limits))
}

/// Announces `path` on the shard, routed to a session that never answers.
fn announce(env: &SessionEnv, path: &str, now: Instant) {
    let (route, _inbox) = env.shard.register_session(Notify::new());
    env.shard.announce(path.to_string(), route, vec![]);
    env.shard.drain_local_control(now);
}

/// One stream as the fake transport holds it.
#[derive(Default)]
struct FakeStream {
    /// Peer to session, not read yet.
    incoming: VecDeque<u8>,
    fin: bool,
    /// Session to peer.
    sent: Vec<u8>,
    /// Bytes the session may still write before the peer reads (`None`: no limit).
    room: Option<usize>,
    reset: Option<u64>,
}

/// In-memory streams of a server-side session, counting every call the session makes.
#[derive(Default)]
struct FakeStreams {
    streams: StreamMap<FakeStream>,
    readable: VecDeque<StreamId>,
    calls: u64,
    closed: Option<(u64, String)>,
    next_uni: u64,
    /// Send window of every stream the session writes on.
    window: Option<usize>,
}

impl FakeStreams {
    /// The peer writes `bytes` on its stream `id` (client-initiated: 0, 4, 8 … bidi).
    fn peer_writes(&mut self, id: StreamId, bytes: &[u8], fin: bool) {
        let window = self.window;
        let stream = self.streams.entry(id).or_insert_with(|| FakeStream {
            room: window,
            ..FakeStream::default()
        });
        stream.incoming.extend(bytes);
        stream.fin |= fin;
        if !self.readable.contains(&id) {
            self.readable.push_back(id);
        }
    }

    /// The peer reads everything sent on `id`, which gives the session room again.
    fn peer_reads(&mut self, id: StreamId) -> Vec<u8> {
        let window = self.window;
        let stream = self.streams.get_mut(&id).expect("stream");
        stream.room = window;
        std::mem::take(&mut stream.sent)
    }
}

impl Streams for FakeStreams {
    fn open_uni(&mut self) -> Result<StreamId, StreamError> {
        self.calls += 1;
        let id = self.next_uni * 4 + 3;
        self.next_uni += 1;
        Ok(id)
    }

    fn open_bidi(&mut self) -> Result<StreamId, StreamError> {
        self.calls += 1;
        Err(StreamError::Blocked)
    }

    fn send(&mut self, id: StreamId, data: &[u8], _fin: bool) -> Result<usize, StreamError> {
        self.calls += 1;
        let window = self.window;
        let stream = self.streams.entry(id).or_insert_with(|| FakeStream {
            room: window,
            ..FakeStream::default()
        });
        let n = stream.room.map_or(data.len(), |room| room.min(data.len()));
        if n == 0 && !data.is_empty() {
            return Err(StreamError::Blocked);
        }
        if let Some(room) = stream.room.as_mut() {
            *room -= n;
        }
        stream.sent.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn recv(&mut self, id: StreamId, buf: &mut [u8]) -> Result<(usize, bool), StreamError> {
        self.calls += 1;
        let Some(stream) = self.streams.get_mut(&id) else {
            return Err(StreamError::Gone);
        };
        let n = buf.len().min(stream.incoming.len());
        for (slot, byte) in buf.iter_mut().zip(stream.incoming.drain(..n)) {
            *slot = byte;
        }
        Ok((n, stream.fin && stream.incoming.is_empty()))
    }

    fn reset(&mut self, id: StreamId, code: u64) {
        self.calls += 1;
        if let Some(stream) = self.streams.get_mut(&id) {
            stream.reset = Some(code);
        }
    }

    fn stop(&mut self, _: StreamId, _: u64) {
        self.calls += 1;
    }

    fn set_urgency(&mut self, _: StreamId, _: u8) {}

    fn next_readable(&mut self) -> Option<StreamId> {
        self.readable.pop_front()
    }

    fn close(&mut self, code: u64, reason: &str) {
        self.closed = Some((code, reason.to_string()));
    }

    fn is_peer_initiated(&self, id: StreamId) -> bool {
        id & 1 == 0
    }

    fn is_bidi(&self, id: StreamId) -> bool {
        id & 2 == 0
    }
}

fn subscribe_bytes(id: u64, track: &str) -> Vec<u8> {
    let mut buf = Vec::new();
    BidiType::Subscribe
        .encode(Version::Lite04, &mut buf)
        .unwrap();
    Subscribe {
        id,
        broadcast: "b".into(),
        track: track.into(),
        priority: 0,
        max_latency_ms: 0,
        start_group: None,
        end_group: None,
    }
    .encode(Version::Lite04, &mut buf)
    .unwrap();
    buf
}

/// Polls `session` until it no longer asks to run at once (a poll reads at most its
/// budget), returning the number of polls.
fn poll_until_settled(session: &mut Session, streams: &mut FakeStreams, now: Instant) -> usize {
    for polls in 1..=1000 {
        session.poll(streams, now);
        if session.deadline() != Some(now) {
            return polls;
        }
    }
    panic!("the session still wants to run after 1000 polls");
}

/// The work (stream visits in the session, calls into the transport) of one 1-byte peer
/// event on a lite-04 session with `open` subscriptions.
fn cost_of_one_event(open: u64) -> (u64, u64) {
    let now = Instant::now();
    let env = env(SessionLimits::default(), now);
    announce(&env, "b", now);
    let mut session = Session::new(env, Version::Lite04, Notify::new(), None);
    let mut streams = FakeStreams::default();
    for i in 0..open {
        streams.peer_writes(i * 4, &subscribe_bytes(i, &format!("t{i}")), false);
    }
    session.poll(&mut streams, now);
    assert!(streams.closed.is_none(), "{:?}", streams.closed);
    // Each subscription was accepted (SUBSCRIBE_OK) and is open.
    let accepted = (0..open)
        .filter(|i| {
            let stream = &streams.streams[&(i * 4)];
            !stream.sent.is_empty() && stream.reset.is_none()
        })
        .count();
    assert_eq!(accepted as u64, open);
    // Settle: whatever the first steps left to do.
    session.poll(&mut streams, now);
    // One byte of a SUBSCRIBE_UPDATE on the last subscription: nothing else changed.
    let mut update = Vec::new();
    SubscribeUpdate::default()
        .encode(Version::Lite04, &mut update)
        .unwrap();
    let (visits, calls) = (session.visits, streams.calls);
    streams.peer_writes((open - 1) * 4, &update[..1], false);
    session.poll(&mut streams, now);
    (session.visits - visits, streams.calls - calls)
}

#[test]
fn one_peer_event_costs_the_same_with_ten_or_two_thousand_streams_open() {
    let small = cost_of_one_event(10);
    let large = cost_of_one_event(2_000);
    assert_eq!(small, large, "(visits, transport calls) of one event");
    assert!(small.0 <= 4, "visits of one event: {}", small.0);
}

fn announce_request(prefix: &str) -> Vec<u8> {
    let mut buf = Vec::new();
    BidiType::Announce
        .encode(Version::Lite05, &mut buf)
        .unwrap();
    AnnounceRequest {
        prefix: prefix.into(),
        exclude_hop: 0,
    }
    .encode(Version::Lite05, &mut buf)
    .unwrap();
    buf
}

fn setup_bytes() -> Vec<u8> {
    let mut buf = Vec::new();
    UniType::Setup.encode(Version::Lite05, &mut buf).unwrap();
    Setup::default().encode(Version::Lite05, &mut buf).unwrap();
    buf
}

/// Decodes the ANNOUNCE_OK and announcements a lite-05 requester received.
fn decode_announces(bytes: &[u8]) -> (u64, Vec<(String, bool)>) {
    let mut inbound = Inbound::default();
    inbound.buf.extend_from_slice(bytes);
    let ok = inbound
        .message::<wire::AnnounceOk>(Version::Lite05)
        .unwrap()
        .expect("ANNOUNCE_OK first");
    let mut seen = Vec::new();
    while let Some(a) = inbound.message::<Announce>(Version::Lite05).unwrap() {
        seen.push((a.suffix, a.status != wire::AnnounceStatus::Ended));
    }
    assert!(inbound.buf.is_empty());
    (ok.active_count, seen)
}

#[test]
fn an_announce_answer_is_paced_by_its_reader_and_misses_no_change() {
    let now = Instant::now();
    let env = env(SessionLimits::default(), now);
    for i in 0..5_000 {
        announce(&env, &format!("anon/{i:04}"), now);
    }
    let mut session = Session::new(env.clone(), Version::Lite05, Notify::new(), None);
    let mut streams = FakeStreams {
        window: Some(4 * 1024),
        ..FakeStreams::default()
    };
    streams.peer_writes(2, &setup_bytes(), true);
    streams.peer_writes(0, &announce_request("anon"), false);
    session.poll(&mut streams, now);
    assert!(streams.closed.is_none(), "{:?}", streams.closed);
    let mut received = streams.peer_reads(0);
    let (count, _) = decode_announces(&received);
    assert_eq!(count, super::serve::SNAPSHOT_CHUNK as u64);
    // The reader stalls: what the transport holds plus what the session queued stays
    // within the window and one chunk (the whole answer is about 50 KiB).
    for _ in 0..10 {
        session.poll(&mut streams, now);
    }
    let held = streams.streams[&0].sent.len() + session.outbound.queued_bytes(0);
    assert!(held <= 8 * 1024, "{held} bytes held");
    // Changes on both sides of the answer's cursor while it is under way.
    env.shard
        .announced
        .borrow_mut()
        .insert("anon/0001".into(), vec![5]);
    env.shard.announced.borrow_mut().remove("anon/0002");
    env.shard.announced.borrow_mut().remove("anon/4999");
    env.shard
        .announced
        .borrow_mut()
        .insert("anon/5000".into(), vec![]);
    for _ in 0..1_000 {
        let before = received.len();
        received.extend(streams.peer_reads(0));
        session.poll(&mut streams, now);
        if received.len() == before && streams.streams[&0].sent.is_empty() {
            break;
        }
    }
    let (_, seen) = decode_announces(&received);
    let active: Vec<&str> = seen
        .iter()
        .filter(|(_, active)| *active)
        .map(|(s, _)| s.as_str())
        .collect();
    assert_eq!(
        active.len(),
        5_000 + 1,
        "4999 gone, 5000 new, 0001 replayed"
    );
    assert!(active.contains(&"5000") && !active.contains(&"4999"));
    let ended: Vec<&str> = seen
        .iter()
        .filter(|(_, active)| !*active)
        .map(|(s, _)| s.as_str())
        .collect();
    assert!(ended.contains(&"0002"), "{ended:?}");
    assert_eq!(ended, ["0002"], "4999 was never shown, so never ended");
}

#[test]
fn announce_requests_beyond_the_limit_are_refused_and_counted() {
    let now = Instant::now();
    let limits = SessionLimits {
        announce_requests: 2,
        ..SessionLimits::default()
    };
    let env = env(limits, now);
    let mut session = Session::new(env.clone(), Version::Lite05, Notify::new(), None);
    let mut streams = FakeStreams::default();
    streams.peer_writes(2, &setup_bytes(), true);
    for i in 0..4 {
        streams.peer_writes(i * 4, &announce_request(""), false);
    }
    session.poll(&mut streams, now);
    let refused: Vec<_> = (0..4)
        .filter(|i| streams.streams[&(i * 4)].reset.is_some())
        .collect();
    assert_eq!(refused, [2, 3]);
    assert_eq!(env.counters.announce_requests_refused.get(), 2);
    assert!(streams.closed.is_none());
}

#[test]
fn a_session_without_setup_closes_at_the_setup_timeout() {
    let now = Instant::now();
    let limits = SessionLimits {
        setup_timeout: Duration::from_secs(3),
        ..SessionLimits::default()
    };
    let env = env(limits, now);
    let mut session = Session::new(env.clone(), Version::Lite05, Notify::new(), None);
    let mut streams = FakeStreams::default();
    session.poll(&mut streams, now);
    assert_eq!(session.deadline(), Some(now + Duration::from_secs(3)));
    session.poll(&mut streams, now + Duration::from_millis(2_999));
    assert!(streams.closed.is_none());
    session.poll(&mut streams, now + Duration::from_secs(3));
    assert_eq!(
        streams.closed.as_ref().map(|c| c.0),
        Some(error_code::session::TIMEOUT)
    );
    assert_eq!(env.counters.setup_timeouts.get(), 1);
    assert_eq!(session.deadline(), None);
}

#[test]
fn before_setup_streams_are_read_only_as_far_as_their_first_bytes() {
    let now = Instant::now();
    let env = env(SessionLimits::default(), now);
    let mut session = Session::new(env.clone(), Version::Lite05, Notify::new(), None);
    let mut streams = FakeStreams::default();
    // A SUBSCRIBE type byte and the start of a 1 MiB message, on many streams.
    for i in 0..200 {
        streams.peer_writes(i * 4, &partial_subscribe(Version::Lite05), false);
    }
    poll_until_settled(&mut session, &mut streams, now);
    assert!(session.buffered <= MAX_EARLY_STREAMS * EARLY_BUFFER);
    assert_eq!(
        env.counters.early_streams_refused.get(),
        200 - MAX_EARLY_STREAMS as u64
    );
    assert!(streams.closed.is_none());
}

/// A SUBSCRIBE stream whose message declares 1 MiB and brings 64 KiB of it.
fn partial_subscribe(version: Version) -> Vec<u8> {
    let mut partial = Vec::new();
    BidiType::Subscribe.encode(version, &mut partial).unwrap();
    partial.extend_from_slice(&[0x80, 0x10, 0x00, 0x00]);
    partial.resize(64 * 1024, 7);
    partial
}

#[test]
fn partial_control_messages_beyond_the_budget_close_only_that_session() {
    let now = Instant::now();
    let env = env(SessionLimits::default(), now);
    let mut bystander = Session::new(env.clone(), Version::Lite04, Notify::new(), None);
    let mut calm = FakeStreams::default();
    calm.peer_writes(0, &partial_subscribe(Version::Lite04)[..1024], false);
    bystander.poll(&mut calm, now);
    let mut session = Session::new(env.clone(), Version::Lite04, Notify::new(), None);
    let mut streams = FakeStreams::default();
    for i in 0..150 {
        streams.peer_writes(i * 4, &partial_subscribe(Version::Lite04), false);
    }
    poll_until_settled(&mut session, &mut streams, now);
    assert!(session.control_buffered <= (2 << 20) + 64 * 1024);
    assert_eq!(
        streams.closed.as_ref().map(|c| c.0),
        Some(error_code::session::PROTOCOL_VIOLATION),
        "{:?}",
        streams.closed
    );
    assert_eq!(env.counters.budget_closes.get(), 1);
    bystander.poll(&mut calm, now);
    assert!(calm.closed.is_none());
}

/// Bytes the peer wrote that the session has not read yet.
fn unread(streams: &FakeStreams) -> usize {
    streams.streams.values().map(|s| s.incoming.len()).sum()
}

#[test]
fn one_poll_reads_at_most_its_budget_and_asks_to_run_again_for_the_rest() {
    let now = Instant::now();
    let env = env(SessionLimits::default(), now);
    let mut session = Session::new(env, Version::Lite04, Notify::new(), None);
    let mut streams = FakeStreams::default();
    // Four uni streams of an unknown type (drained, not served), 200 KiB each.
    let per_stream = 200 * 1024;
    for i in 0..4u64 {
        let mut bytes = vec![0x3f];
        bytes.resize(1 + per_stream, 0xaa);
        streams.peer_writes(i * 4 + 2, &bytes, true);
    }
    let total = unread(&streams);
    let mut polls = 0;
    while unread(&streams) > 0 {
        let before = unread(&streams);
        session.poll(&mut streams, now);
        polls += 1;
        let read = before - unread(&streams);
        assert!(read <= POLL_READ_BUDGET, "poll {polls} read {read} bytes");
        assert!(read > 0, "poll {polls} made no progress");
        if unread(&streams) > 0 {
            assert_eq!(session.deadline(), Some(now), "more to read: due at once");
        }
        assert!(polls <= 8, "{} bytes still unread", unread(&streams));
    }
    assert!(streams.closed.is_none(), "{:?}", streams.closed);
    assert_eq!(polls, total.div_ceil(POLL_READ_BUDGET));
    // The budget is whole again and nothing is left over: the session waits.
    session.poll(&mut streams, now);
    assert_ne!(session.deadline(), Some(now));
}
