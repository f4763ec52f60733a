//! A track as one shard sees it: publisher properties, the group cache and the end state.
//!
//! The same type serves as the owning shard's authoritative copy and as every other shard's
//! replica: both are driven by the same [`TrackEvent`]s, which is also what travels on the
//! mesh, so a replica is exactly the owner's state delayed by one channel hop.
//!
//! Frames arrive as a header with their first payload bytes and then further chunks
//! (cut-through), and the cache is bounded on every one of them: a group whose declared
//! payload would pass `max_group_bytes` is reset (GroupTooLarge), and whenever the payload
//! cached for the track passes its byte budget the oldest groups go, open ones reset for
//! their viewers (Evicted). Payload for a group no longer cached is discarded. Each of these
//! is counted in the shard's [`CacheCounters`].

use super::cache_drops::CacheCounters;
use super::group::{FrameHead, Group, GroupState};
use crate::notify::Notify;
use crate::wire::error_code::stream::{CANCEL, EVICTED, GROUP_TOO_LARGE, OLD};
use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

/// Publisher properties of a track (TRACK_INFO, or synthesized for pre-05 sources).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackInfo {
    pub priority: u8,
    /// How long non-latest groups stay useful, in milliseconds.
    pub max_age_ms: u64,
    /// Timestamp units per second; never zero.
    pub timescale: u64,
}

impl Default for TrackInfo {
    /// What a lite-04 source gets: priority 127, max age 5 s, milliseconds.
    fn default() -> Self {
        Self {
            priority: 127,
            max_age_ms: 5000,
            timescale: 1000,
        }
    }
}

/// How a track ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackEnd {
    /// The publisher ended it cleanly; `next` is the first sequence never delivered.
    Finished { next: u64 },
    /// It failed with this stream error code.
    Failed(u64),
}

/// One change to a track, in the order the owner saw it.
#[derive(Clone, Debug)]
pub enum TrackEvent {
    Info(TrackInfo),
    GroupStart(u64),
    /// A frame of `group` begins: its header and its first payload bytes (the whole payload
    /// when the frame arrived at once, which is the common case).
    Frame {
        group: u64,
        head: FrameHead,
        first: Bytes,
    },
    /// More payload of the newest frame of `group`.
    Chunk {
        group: u64,
        bytes: Bytes,
    },
    GroupEnd {
        group: u64,
        code: Option<u64>,
    },
    End(TrackEnd),
}

/// Bounds on what one track may cache.
#[derive(Clone, Copy, Debug)]
pub struct CacheLimits {
    /// Upper bound on the publisher's max age for keeping non-latest groups.
    pub max_age: Duration,
    /// A group above this many payload bytes is aborted (GroupTooLarge).
    pub max_group_bytes: usize,
    /// At most this many groups are cached (the latest always among them).
    pub max_groups: usize,
    /// Payload bytes a track may cache; the oldest non-latest groups go first. Never below
    /// `max_group_bytes`, so the latest group alone always fits.
    pub max_track_bytes: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(30),
            max_group_bytes: 32 << 20,
            max_groups: 256,
            max_track_bytes: 64 << 20,
        }
    }
}

/// A track's cache and state on one shard.
pub struct Track {
    pub broadcast: String,
    pub name: String,
    info: Cell<Option<TrackInfo>>,
    groups: RefCell<BTreeMap<u64, Rc<Group>>>,
    /// Payload bytes of every group in `groups`, kept as chunks arrive and groups go.
    cached_bytes: Cell<usize>,
    end: Cell<Option<TrackEnd>>,
    /// Groups that started below the latest one (overtaken on the way in), ever.
    late_starts: Cell<u64>,
    limits: CacheLimits,
    counters: Rc<CacheCounters>,
    watchers: RefCell<Vec<Weak<Notify>>>,
}

impl Track {
    /// A track that counts what its cache drops in `counters` (the shard's).
    pub fn new(
        broadcast: String,
        name: String,
        mut limits: CacheLimits,
        counters: Rc<CacheCounters>,
    ) -> Self {
        limits.max_track_bytes = limits.max_track_bytes.max(limits.max_group_bytes);
        Self {
            broadcast,
            name,
            info: Cell::new(None),
            groups: RefCell::new(BTreeMap::new()),
            cached_bytes: Cell::new(0),
            end: Cell::new(None),
            late_starts: Cell::new(0),
            limits,
            counters,
            watchers: RefCell::new(Vec::new()),
        }
    }

    /// Publisher properties, once known, with max age clamped by the cache limit.
    pub fn info(&self) -> Option<TrackInfo> {
        self.info.get()
    }

    /// How the track ended, if it has.
    pub fn end(&self) -> Option<TrackEnd> {
        self.end.get()
    }

    /// Payload bytes cached for this track now.
    pub fn cached_bytes(&self) -> usize {
        self.cached_bytes.get()
    }

    /// The group with the highest sequence.
    pub fn latest(&self) -> Option<Rc<Group>> {
        self.groups.borrow().values().next_back().cloned()
    }

    /// The first cached group with a sequence at or above `sequence`.
    pub fn group_at_or_after(&self, sequence: u64) -> Option<Rc<Group>> {
        self.groups
            .borrow()
            .range(sequence..)
            .next()
            .map(|(_, g)| g.clone())
    }

    /// The cached group right after `sequence`, if any.
    pub fn successor(&self, sequence: u64) -> Option<Rc<Group>> {
        self.group_at_or_after(sequence.checked_add(1)?)
    }

    /// How many groups so far started below the latest one: a subscriber already past
    /// them looks for them only when this changes.
    pub fn late_starts(&self) -> u64 {
        self.late_starts.get()
    }

    /// The group with exactly this sequence.
    pub fn group(&self, sequence: u64) -> Option<Rc<Group>> {
        self.groups.borrow().get(&sequence).cloned()
    }

    /// Registers a task to wake on every change. Dropped notifies are forgotten lazily.
    pub fn watch(&self, notify: &Rc<Notify>) {
        self.watchers.borrow_mut().push(Rc::downgrade(notify));
    }

    /// The events that rebuild this track's current state on another shard.
    pub fn snapshot(&self) -> Vec<TrackEvent> {
        let mut events = Vec::new();
        if let Some(info) = self.info.get() {
            events.push(TrackEvent::Info(info));
        }
        for group in self.groups.borrow().values() {
            let sequence = group.sequence;
            events.push(TrackEvent::GroupStart(sequence));
            for index in 0..group.frame_count() {
                let Some((head, chunks)) = group.frame_chunks(index) else {
                    break;
                };
                let mut chunks = chunks.into_iter();
                let first = chunks.next().unwrap_or_default();
                events.push(TrackEvent::Frame {
                    group: sequence,
                    head,
                    first,
                });
                events.extend(chunks.map(|bytes| TrackEvent::Chunk {
                    group: sequence,
                    bytes,
                }));
            }
            match group.state() {
                GroupState::Open => {}
                GroupState::Complete => events.push(TrackEvent::GroupEnd {
                    group: sequence,
                    code: None,
                }),
                GroupState::Aborted(code) => events.push(TrackEvent::GroupEnd {
                    group: sequence,
                    code: Some(code),
                }),
            }
        }
        if let Some(end) = self.end.get() {
            events.push(TrackEvent::End(end));
        }
        events
    }

    /// Applies one event that happened at `now`; returns false when it was refused (a
    /// duplicate group, payload for an unknown or ended group), which a publisher-facing
    /// caller answers with a reset.
    pub fn apply(&self, event: TrackEvent, now: Instant) -> bool {
        let applied = match event {
            TrackEvent::Info(mut info) => {
                info.max_age_ms = info.max_age_ms.min(self.limits.max_age.as_millis() as u64);
                if info.timescale == 0 {
                    info.timescale = 1000;
                }
                self.info.set(Some(info));
                true
            }
            TrackEvent::GroupStart(sequence) => self.start_group(sequence, now),
            TrackEvent::Frame { group, head, first } => self.push_frame(group, head, first, now),
            TrackEvent::Chunk { group, bytes } => self.push_chunk(group, bytes, now),
            TrackEvent::GroupEnd { group, code } => match self.group(group) {
                Some(g) => {
                    self.end_group(&g, code, now);
                    true
                }
                None => false,
            },
            TrackEvent::End(end) => {
                if self.end.get().is_none() {
                    self.end.set(Some(end));
                    if let TrackEnd::Failed(code) = end {
                        for group in self.groups.borrow().values() {
                            self.end_group(group, Some(code), now);
                        }
                    }
                }
                true
            }
        };
        if applied {
            self.changed();
        }
        applied
    }

    /// Aborts every group still open (publisher loss) with `code`.
    pub fn abort_open_groups(&self, code: u64, now: Instant) {
        for group in self.groups.borrow().values() {
            self.end_group(group, Some(code), now);
        }
        self.changed();
    }

    /// The sequence after the newest cached group (what an END carries on clean ends).
    pub fn next_sequence(&self) -> u64 {
        self.groups
            .borrow()
            .keys()
            .next_back()
            .map_or(0, |s| s.saturating_add(1))
    }

    fn start_group(&self, sequence: u64, now: Instant) -> bool {
        if self.end.get().is_some() {
            return false;
        }
        let mut groups = self.groups.borrow_mut();
        if groups.contains_key(&sequence) {
            return false;
        }
        if groups
            .keys()
            .next_back()
            .is_some_and(|&latest| sequence < latest)
        {
            self.late_starts.set(self.late_starts.get() + 1);
        }
        groups.insert(sequence, Rc::new(Group::new(sequence, now)));
        self.expire_idle(&mut groups, now);
        self.evict_over_limits(&mut groups, now);
        true
    }

    fn push_frame(&self, sequence: u64, head: FrameHead, first: Bytes, now: Instant) -> bool {
        let Some(group) = self
            .group(sequence)
            .filter(|g| g.state() == GroupState::Open)
        else {
            self.counters.discarded(first.len());
            return false;
        };
        if group.bytes().saturating_add(head.size) > self.limits.max_group_bytes {
            self.counters.group_too_large();
            self.counters.discarded(first.len());
            self.end_group(&group, Some(GROUP_TOO_LARGE), now);
            return true;
        }
        let len = first.len();
        if !group.push_frame(head, first, now) {
            self.counters.discarded(len);
            return false;
        }
        self.cached(len, now);
        true
    }

    fn push_chunk(&self, sequence: u64, bytes: Bytes, now: Instant) -> bool {
        let len = bytes.len();
        let pushed = self
            .group(sequence)
            .is_some_and(|group| group.push_chunk(bytes, now));
        if pushed {
            self.cached(len, now);
        } else {
            self.counters.discarded(len);
        }
        pushed
    }

    /// Accounts `len` new payload bytes, evicting old groups if the budget is passed.
    fn cached(&self, len: usize, now: Instant) {
        self.cached_bytes.set(self.cached_bytes.get() + len);
        if self.cached_bytes.get() > self.limits.max_track_bytes {
            self.evict_over_limits(&mut self.groups.borrow_mut(), now);
        }
    }

    /// Ends a cached group, giving back the payload a reset drops.
    fn end_group(&self, group: &Group, code: Option<u64>, now: Instant) {
        let freed = group.end(code, now);
        self.cached_bytes
            .set(self.cached_bytes.get().saturating_sub(freed));
    }

    /// Takes `group` out of the cache; an open one can never complete any more, so it is
    /// reset with `code` for the viewers still writing it, and counted.
    fn remove(&self, group: &Group, code: u64, now: Instant) {
        self.cached_bytes
            .set(self.cached_bytes.get().saturating_sub(group.bytes()));
        if group.state() == GroupState::Open {
            group.end(Some(code), now);
            self.counters.group_evicted();
        }
    }

    /// How long non-latest groups are kept: the publisher's max age, capped by our limit.
    fn window(&self) -> Duration {
        let publisher = self.info.get().map_or(Duration::from_secs(5), |i| {
            Duration::from_millis(i.max_age_ms)
        });
        publisher.min(self.limits.max_age)
    }

    /// Drops non-latest groups idle for longer than the window (open ones reset as Old).
    /// Idle groups are found from the oldest on and the scan stops at the first one still
    /// in use: publishers write groups in sequence order, so that finds them all, and a group
    /// written out of order only delays the expiry of the older ones behind it (within the
    /// count and byte limits). Every group start runs this, so the cost is the groups
    /// dropped, not the groups cached: a chat track holds dozens.
    fn expire_idle(&self, groups: &mut BTreeMap<u64, Rc<Group>>, now: Instant) {
        let Some(&latest) = groups.keys().next_back() else {
            return;
        };
        let window = self.window();
        while let Some(oldest) = groups.first_entry() {
            if *oldest.key() == latest || now.duration_since(oldest.get().last_write()) <= window {
                break;
            }
            self.remove(&oldest.remove(), OLD, now);
        }
    }

    /// Drops the oldest groups while the count or the bytes exceed the limits (open ones
    /// reset as Evicted); the latest group always stays.
    fn evict_over_limits(&self, groups: &mut BTreeMap<u64, Rc<Group>>, now: Instant) {
        while groups.len() > 1
            && (groups.len() > self.limits.max_groups
                || self.cached_bytes.get() > self.limits.max_track_bytes)
        {
            if let Some((_, oldest)) = groups.pop_first() {
                self.remove(&oldest, EVICTED, now);
            }
        }
    }

    fn changed(&self) {
        let mut watchers = self.watchers.borrow_mut();
        watchers.retain(|w| match w.upgrade() {
            Some(notify) => {
                notify.notify();
                true
            }
            None => false,
        });
    }

    /// Stream code to reset a duplicate group stream with.
    pub const DUPLICATE_GROUP_CODE: u64 = CANCEL;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(limits: CacheLimits) -> Track {
        Track::new("b".into(), "t".into(), limits, Rc::default())
    }

    fn frame(group: u64, ts: u64, body: &'static [u8]) -> TrackEvent {
        TrackEvent::Frame {
            group,
            head: FrameHead {
                timestamp: ts,
                size: body.len(),
            },
            first: Bytes::from_static(body),
        }
    }

    /// Frame `index` of `group` as one buffer, for comparisons.
    fn payload(group: &Group, index: usize) -> Vec<u8> {
        group.frame_chunks(index).unwrap().1.concat()
    }

    #[test]
    fn replica_rebuilt_from_snapshot_matches_owner() {
        let now = Instant::now();
        let owner = track(CacheLimits::default());
        owner.apply(TrackEvent::Info(TrackInfo::default()), now);
        owner.apply(TrackEvent::GroupStart(4), now);
        owner.apply(frame(4, 1, b"a"), now);
        owner.apply(
            TrackEvent::GroupEnd {
                group: 4,
                code: None,
            },
            now,
        );
        owner.apply(TrackEvent::GroupStart(5), now);
        owner.apply(frame(5, 2, b"b"), now);
        // A frame still arriving: its first chunk and one more, of 6 bytes.
        let head = FrameHead {
            timestamp: 3,
            size: 6,
        };
        let first = Bytes::from_static(b"cd");
        owner.apply(
            TrackEvent::Frame {
                group: 5,
                head,
                first,
            },
            now,
        );
        let bytes = Bytes::from_static(b"ef");
        owner.apply(TrackEvent::Chunk { group: 5, bytes }, now);

        let replica = track(CacheLimits::default());
        for event in owner.snapshot() {
            assert!(replica.apply(event, now));
        }
        assert_eq!(replica.info(), owner.info());
        assert_eq!(replica.latest().unwrap().sequence, 5);
        assert_eq!(replica.group(4).unwrap().state(), GroupState::Complete);
        let five = replica.group(5).unwrap();
        assert_eq!(payload(&five, 0), b"b");
        assert_eq!(payload(&five, 1), b"cdef");
        assert!(five.frame_in_progress(), "the partial frame stays partial");
        assert_eq!(replica.cached_bytes(), owner.cached_bytes());
        // The owner's next chunk completes the frame on the replica too.
        assert!(replica.apply(
            TrackEvent::Chunk {
                group: 5,
                bytes: Bytes::from_static(b"gh"),
            },
            now
        ));
        assert_eq!(payload(&five, 1), b"cdefgh");
    }

    #[test]
    fn duplicate_groups_and_orphan_payload_are_refused_and_counted() {
        let now = Instant::now();
        let track = track(CacheLimits::default());
        assert!(track.apply(TrackEvent::GroupStart(1), now));
        assert!(!track.apply(TrackEvent::GroupStart(1), now));
        assert!(!track.apply(frame(9, 1, b"x"), now));
        let bytes = Bytes::from_static(b"yz");
        assert!(!track.apply(TrackEvent::Chunk { group: 1, bytes }, now));
        assert_eq!(track.counters.get().bytes_discarded, 3);
    }

    #[test]
    fn oversized_group_is_aborted_and_cache_is_bounded() {
        let now = Instant::now();
        let limits = CacheLimits {
            max_group_bytes: 4,
            max_groups: 3,
            ..CacheLimits::default()
        };
        let track = track(limits);
        track.apply(TrackEvent::GroupStart(0), now);
        // The declared size is what counts: nothing of this frame is kept.
        let head = FrameHead {
            timestamp: 1,
            size: 5,
        };
        let first = Bytes::from_static(b"12");
        track.apply(
            TrackEvent::Frame {
                group: 0,
                head,
                first,
            },
            now,
        );
        assert_eq!(
            track.group(0).unwrap().state(),
            GroupState::Aborted(GROUP_TOO_LARGE)
        );
        assert_eq!(track.cached_bytes(), 0);
        assert_eq!(track.counters.get().groups_too_large, 1);
        for seq in 1..10 {
            track.apply(TrackEvent::GroupStart(seq), now);
        }
        assert_eq!(track.latest().unwrap().sequence, 9);
        assert!(track.group(6).is_none());
        assert!(track.group(7).is_some());
    }

    #[test]
    fn max_age_is_clamped_by_the_cache_limit() {
        let now = Instant::now();
        let limits = CacheLimits {
            max_age: Duration::from_secs(1),
            ..CacheLimits::default()
        };
        let track = track(limits);
        track.apply(
            TrackEvent::Info(TrackInfo {
                priority: 1,
                max_age_ms: 30_000,
                timescale: 0,
            }),
            now,
        );
        let info = track.info().unwrap();
        assert_eq!(info.max_age_ms, 1000);
        assert_eq!(info.timescale, 1000);
    }
}

#[cfg(test)]
mod byte_budget {
    use super::*;

    fn track(limits: CacheLimits) -> Track {
        Track::new("b".into(), "t".into(), limits, Rc::default())
    }

    fn four_bytes(seq: u64) -> TrackEvent {
        TrackEvent::Frame {
            group: seq,
            head: FrameHead {
                timestamp: seq,
                size: 4,
            },
            first: Bytes::from_static(b"abcd"),
        }
    }

    /// Starts each group of `sequences` and writes one 4-byte frame into it.
    fn start_groups_of_four_bytes(track: &Track, sequences: std::ops::Range<u64>, now: Instant) {
        for seq in sequences {
            track.apply(TrackEvent::GroupStart(seq), now);
            track.apply(four_bytes(seq), now);
        }
    }

    #[test]
    fn the_oldest_groups_go_when_a_track_exceeds_its_byte_budget() {
        let now = Instant::now();
        let limits = CacheLimits {
            max_track_bytes: 10,
            max_group_bytes: 8,
            ..CacheLimits::default()
        };
        let track = track(limits);
        start_groups_of_four_bytes(&track, 0..4, now);
        track.apply(TrackEvent::GroupStart(4), now);
        // 4 bytes per group: groups 2 and 3 (8 bytes) and the empty latest fit; 0 and 1 went.
        assert!(track.group(1).is_none());
        assert!(track.group(2).is_some() && track.group(3).is_some() && track.group(4).is_some());
        assert!(track.cached_bytes() <= 10);
    }

    #[test]
    fn open_groups_growing_past_the_budget_are_evicted_on_the_frame_that_passes_it() {
        let now = Instant::now();
        let limits = CacheLimits {
            max_track_bytes: 10,
            max_group_bytes: 8,
            ..CacheLimits::default()
        };
        let track = track(limits);
        // Five groups open at once, as a hostile publisher keeps them; none ever ends.
        for seq in 0..5 {
            track.apply(TrackEvent::GroupStart(seq), now);
        }
        let evicted: Vec<_> = (0..5).map(|seq| track.group(seq).unwrap()).collect();
        for seq in 0..5 {
            track.apply(four_bytes(seq), now);
            assert!(track.cached_bytes() <= 10, "bounded after every frame");
        }
        // 20 bytes written: groups 0..=2 went (reset for their viewers), 3 and 4 stay.
        for group in &evicted[..3] {
            assert_eq!(group.state(), GroupState::Aborted(EVICTED));
            assert_eq!(group.bytes(), 0, "its payload is released");
        }
        assert!(track.group(3).is_some() && track.group(4).is_some());
        assert_eq!(track.cached_bytes(), 8);
        assert_eq!(track.counters.get().groups_evicted, 3);
        // More payload for an evicted group is discarded, not cached again.
        let bytes = Bytes::from_static(b"zz");
        assert!(!track.apply(TrackEvent::Chunk { group: 0, bytes }, now));
        assert_eq!(track.cached_bytes(), 8);
    }

    #[test]
    fn chunks_of_one_large_frame_count_against_the_budget_as_they_arrive() {
        let now = Instant::now();
        let limits = CacheLimits {
            max_track_bytes: 8,
            max_group_bytes: 8,
            ..CacheLimits::default()
        };
        let track = track(limits);
        start_groups_of_four_bytes(&track, 0..1, now);
        track.apply(TrackEvent::GroupStart(1), now);
        let head = FrameHead {
            timestamp: 1,
            size: 8,
        };
        let first = Bytes::from_static(b"ab");
        track.apply(
            TrackEvent::Frame {
                group: 1,
                head,
                first,
            },
            now,
        );
        assert!(track.group(0).is_some(), "6 bytes fit");
        for _ in 0..3 {
            let bytes = Bytes::from_static(b"cd");
            track.apply(TrackEvent::Chunk { group: 1, bytes }, now);
        }
        assert!(track.group(0).is_none(), "the older group made room");
        assert_eq!(track.cached_bytes(), 8);
    }

    #[test]
    fn idle_groups_expire_and_give_their_bytes_back_to_the_budget() {
        let now = Instant::now();
        let limits = CacheLimits {
            max_age: Duration::from_millis(20),
            max_track_bytes: 12,
            max_group_bytes: 4,
            ..CacheLimits::default()
        };
        let track = track(limits);
        start_groups_of_four_bytes(&track, 0..3, now);
        let now = now + Duration::from_millis(40);
        // Group 2 was the latest, so it stayed; now it is idle too, and goes with 0 and 1.
        track.apply(TrackEvent::GroupStart(3), now);
        assert!((0..3).all(|seq| track.group(seq).is_none()));
        // With the expired bytes given back, three fresh 4-byte groups fit the 12-byte budget.
        start_groups_of_four_bytes(&track, 3..6, now);
        track.apply(TrackEvent::GroupStart(6), now);
        assert!((3..7).all(|seq| track.group(seq).is_some()));
    }
}
