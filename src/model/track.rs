//! A track as one shard sees it: publisher properties, the group cache and the end state.
//!
//! The same type serves as the owning shard's authoritative copy and as every other shard's
//! replica: both are driven by the same [`TrackEvent`]s, which is also what travels on the
//! mesh, so a replica is exactly the owner's state delayed by one channel hop.

use super::group::{Frame, Group, GroupState};
use crate::notify::Notify;
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
    Frame { group: u64, frame: Frame },
    GroupEnd { group: u64, code: Option<u64> },
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
    /// Payload bytes a track may cache; the oldest non-latest groups go first.
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

/// Stream code for a group over the per-group cap.
const GROUP_TOO_LARGE: u64 = 0x32;
/// Stream code for a duplicate group stream.
const CANCEL: u64 = 0x1;

/// A track's cache and state on one shard.
pub struct Track {
    pub broadcast: String,
    pub name: String,
    info: Cell<Option<TrackInfo>>,
    groups: RefCell<BTreeMap<u64, Rc<Group>>>,
    /// Payload bytes of every group in `groups`, kept as frames arrive and groups go.
    cached_bytes: Cell<usize>,
    end: Cell<Option<TrackEnd>>,
    /// Groups that started below the latest one (overtaken on the way in), ever.
    late_starts: Cell<u64>,
    limits: CacheLimits,
    watchers: RefCell<Vec<Weak<Notify>>>,
}

impl Track {
    pub fn new(broadcast: String, name: String, limits: CacheLimits) -> Self {
        Self {
            broadcast,
            name,
            info: Cell::new(None),
            groups: RefCell::new(BTreeMap::new()),
            cached_bytes: Cell::new(0),
            end: Cell::new(None),
            late_starts: Cell::new(0),
            limits,
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
            events.push(TrackEvent::GroupStart(group.sequence));
            for index in 0..group.frame_count() {
                if let Some(frame) = group.frame(index) {
                    events.push(TrackEvent::Frame {
                        group: group.sequence,
                        frame,
                    });
                }
            }
            match group.state() {
                GroupState::Open => {}
                GroupState::Complete => events.push(TrackEvent::GroupEnd {
                    group: group.sequence,
                    code: None,
                }),
                GroupState::Aborted(code) => events.push(TrackEvent::GroupEnd {
                    group: group.sequence,
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
    /// duplicate group, a frame for an unknown or ended group), which a publisher-facing
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
            TrackEvent::Frame { group, frame } => self.push_frame(group, frame, now),
            TrackEvent::GroupEnd { group, code } => match self.group(group) {
                Some(g) => {
                    g.end(code, now);
                    true
                }
                None => false,
            },
            TrackEvent::End(end) => {
                if self.end.get().is_none() {
                    self.end.set(Some(end));
                    if let TrackEnd::Failed(code) = end {
                        for group in self.groups.borrow().values() {
                            group.end(Some(code), now);
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
            group.end(Some(code), now);
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
        let bytes = Self::prune(
            &mut groups,
            self.cached_bytes.get(),
            self.window(),
            &self.limits,
            now,
        );
        self.cached_bytes.set(bytes);
        true
    }

    fn push_frame(&self, sequence: u64, frame: Frame, now: Instant) -> bool {
        let Some(group) = self.group(sequence) else {
            return false;
        };
        if group.bytes() + frame.payload.len() > self.limits.max_group_bytes {
            group.end(Some(GROUP_TOO_LARGE), now);
            return true;
        }
        let len = frame.payload.len();
        let pushed = group.push(frame, now);
        if pushed {
            self.cached_bytes.set(self.cached_bytes.get() + len);
        }
        pushed
    }

    /// How long non-latest groups are kept: the publisher's max age, capped by our limit.
    fn window(&self) -> Duration {
        let publisher = self.info.get().map_or(Duration::from_secs(5), |i| {
            Duration::from_millis(i.max_age_ms)
        });
        publisher.min(self.limits.max_age)
    }

    /// Drops non-latest groups idle for longer than `window`, then the oldest ones while
    /// the count or the bytes exceed the limits; returns the bytes left cached (`bytes` is
    /// the total before). Idle groups are found from the oldest on and the scan stops at the
    /// first one still in use: publishers write groups in sequence order, so that finds
    /// them all, and a group written out of order only delays the expiry of the older ones
    /// behind it (within the count and byte limits). Every group start prunes, so the cost
    /// is the groups dropped, not the groups cached: a chat track holds dozens.
    fn prune(
        groups: &mut BTreeMap<u64, Rc<Group>>,
        mut bytes: usize,
        window: Duration,
        limits: &CacheLimits,
        now: Instant,
    ) -> usize {
        let Some(&latest) = groups.keys().next_back() else {
            return bytes;
        };
        while let Some(oldest) = groups.first_entry() {
            if *oldest.key() == latest || now.duration_since(oldest.get().last_write()) <= window {
                break;
            }
            bytes = bytes.saturating_sub(oldest.remove().bytes());
        }
        while groups.len() > 1
            && (groups.len() > limits.max_groups || bytes > limits.max_track_bytes)
        {
            if let Some((_, oldest)) = groups.pop_first() {
                bytes = bytes.saturating_sub(oldest.bytes());
            }
        }
        bytes
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
    use bytes::Bytes;

    fn frame(ts: u64, body: &'static [u8]) -> Frame {
        Frame {
            timestamp: ts,
            payload: Bytes::from_static(body),
        }
    }

    #[test]
    fn replica_rebuilt_from_snapshot_matches_owner() {
        let now = Instant::now();
        let owner = Track::new("b".into(), "t".into(), CacheLimits::default());
        owner.apply(TrackEvent::Info(TrackInfo::default()), now);
        owner.apply(TrackEvent::GroupStart(4), now);
        owner.apply(
            TrackEvent::Frame {
                group: 4,
                frame: frame(1, b"a"),
            },
            now,
        );
        owner.apply(
            TrackEvent::GroupEnd {
                group: 4,
                code: None,
            },
            now,
        );
        owner.apply(TrackEvent::GroupStart(5), now);
        owner.apply(
            TrackEvent::Frame {
                group: 5,
                frame: frame(2, b"b"),
            },
            now,
        );

        let replica = Track::new("b".into(), "t".into(), CacheLimits::default());
        for event in owner.snapshot() {
            assert!(replica.apply(event, now));
        }
        assert_eq!(replica.info(), owner.info());
        assert_eq!(replica.latest().unwrap().sequence, 5);
        assert_eq!(replica.group(4).unwrap().state(), GroupState::Complete);
        assert_eq!(replica.group(5).unwrap().frame(0), Some(frame(2, b"b")));
    }

    #[test]
    fn duplicate_groups_and_orphan_frames_are_refused() {
        let now = Instant::now();
        let track = Track::new("b".into(), "t".into(), CacheLimits::default());
        assert!(track.apply(TrackEvent::GroupStart(1), now));
        assert!(!track.apply(TrackEvent::GroupStart(1), now));
        assert!(!track.apply(
            TrackEvent::Frame {
                group: 9,
                frame: frame(1, b"x")
            },
            now
        ));
    }

    #[test]
    fn oversized_group_is_aborted_and_cache_is_bounded() {
        let now = Instant::now();
        let limits = CacheLimits {
            max_group_bytes: 4,
            max_groups: 3,
            ..CacheLimits::default()
        };
        let track = Track::new("b".into(), "t".into(), limits);
        track.apply(TrackEvent::GroupStart(0), now);
        track.apply(
            TrackEvent::Frame {
                group: 0,
                frame: frame(1, b"12345"),
            },
            now,
        );
        assert_eq!(
            track.group(0).unwrap().state(),
            GroupState::Aborted(GROUP_TOO_LARGE)
        );
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
        let track = Track::new("b".into(), "t".into(), limits);
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
    use bytes::Bytes;

    /// Starts each group of `sequences` and writes one 4-byte frame into it.
    fn start_groups_of_four_bytes(track: &Track, sequences: std::ops::Range<u64>, now: Instant) {
        for seq in sequences {
            track.apply(TrackEvent::GroupStart(seq), now);
            let frame = Frame {
                timestamp: seq,
                payload: Bytes::from_static(b"abcd"),
            };
            track.apply(TrackEvent::Frame { group: seq, frame }, now);
        }
    }

    #[test]
    fn the_oldest_groups_go_when_a_track_exceeds_its_byte_budget() {
        let now = Instant::now();
        let limits = CacheLimits {
            max_track_bytes: 10,
            ..CacheLimits::default()
        };
        let track = Track::new("b".into(), "t".into(), limits);
        start_groups_of_four_bytes(&track, 0..4, now);
        track.apply(TrackEvent::GroupStart(4), now);
        // 4 bytes per group: groups 2 and 3 (8 bytes) and the empty latest fit; 0 and 1 went.
        assert!(track.group(1).is_none());
        assert!(track.group(2).is_some() && track.group(3).is_some() && track.group(4).is_some());
    }

    #[test]
    fn idle_groups_expire_and_give_their_bytes_back_to_the_budget() {
        let now = Instant::now();
        let limits = CacheLimits {
            max_age: Duration::from_millis(20),
            max_track_bytes: 12,
            ..CacheLimits::default()
        };
        let track = Track::new("b".into(), "t".into(), limits);
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
