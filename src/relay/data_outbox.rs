//! What happens to media when a peer shard falls behind: the data lane's drop policy.
//!
//! Media for another shard goes through an [`Outbox`] that never drops by itself. When the
//! backlog for a peer reaches `limit` messages, or [`MAX_QUEUED_MEDIA_BYTES`] of payload
//! (frames of any size cross as chunks, so a message count alone does not bound the bytes;
//! then only the replicas holding a large share of those bytes are shed, so one flooding
//! track does not take the media of the others on the lane with it), this policy sheds load
//! in ways a viewer can see, never by leaving a hole that looks whole:
//!
//! - a frame (or a later chunk of a frame's payload) that does not fit is dropped and its
//!   group is **reset** for that replica (`GroupEnd` with [`TOO_FAR_BEHIND`], queued past the
//!   limit); the group's later frames and chunks and its own end are not sent, so the
//!   replica's viewers see a reset stream, never a group that completes with a frame missing
//!   or cut short;
//! - a group that starts while the backlog is at `hard_limit` (several times `limit`) is
//!   **skipped** for that replica: none of its events are sent, and viewers never see it
//!   (moq-lite subscribers already accept gaps in group sequences);
//! - a forwarded QUIC packet is dropped (QUIC recovers it as a loss);
//! - track info, group ends and track ends are always sent: they are small and bounded by
//!   the groups that were admitted, and losing one would leave a replica waiting forever.
//!
//! Every drop is counted in [`DataDrops`].

use super::messages::Data;
use super::outbox::Outbox;
use crate::model::TrackEvent;
use crate::notify::Notify;
use crate::wire::error_code::stream::TOO_FAR_BEHIND;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// Payload bytes queued for one peer behind its full lane before media is shed, however few
/// the messages.
pub const MAX_QUEUED_MEDIA_BYTES: usize = 16 << 20;

/// Groups cut for some replica at once, at most; past this, new cuts are not made and the
/// backlog grows instead (each entry is forgotten when its group or track ends).
const MAX_CUT_GROUPS: usize = 1 << 16;

/// How much media the policy shed, for logs and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DataDrops {
    /// Frames and payload chunks not sent to a replica (each belongs to a reset group).
    pub frames: u64,
    /// Groups reset for a replica because a frame did not fit.
    pub groups_reset: u64,
    /// Groups never started on a replica because the backlog was at the hard limit.
    pub groups_skipped: u64,
    /// Forwarded QUIC packets dropped.
    pub packets: u64,
}

/// A group whose remaining events are not sent: (peer shard, replica id, group sequence).
type Cut = (usize, u64, u64);

/// The data outbox with its drop policy.
pub struct DataOutbox {
    queue: Outbox<Data>,
    limit: usize,
    hard_limit: usize,
    cut: RefCell<HashSet<Cut>>,
    drops: Cell<DataDrops>,
    /// Payload bytes of the media messages queued for each peer.
    queued_bytes: Vec<Cell<usize>>,
    /// The same, for each (peer, replica) with any queued.
    replica_bytes: RefCell<HashMap<(usize, u64), usize>>,
    byte_limit: usize,
}

impl DataOutbox {
    /// Shedding starts at `limit` queued messages per peer; groups are skipped from
    /// `hard_limit` (at least `limit`).
    pub fn new(peers: usize, limit: usize, hard_limit: usize) -> Self {
        Self {
            queue: Outbox::new(peers),
            limit,
            hard_limit: hard_limit.max(limit),
            cut: RefCell::new(HashSet::new()),
            queued_bytes: (0..peers).map(|_| Cell::new(0)).collect(),
            replica_bytes: RefCell::new(HashMap::new()),
            byte_limit: MAX_QUEUED_MEDIA_BYTES,
            drops: Cell::new(DataDrops::default()),
        }
    }

    /// Sends `msg` to `to` (through `try_send` when nothing is queued), queues it, or sheds
    /// it by the policy above.
    pub fn push(&self, to: usize, msg: Data, try_send: impl Fn(Data) -> Result<(), Data>) {
        let backlog = self.queue.backlog(to);
        match &msg {
            Data::Packet { .. } if backlog >= self.limit => {
                self.count(|d| d.packets += 1);
                return;
            }
            Data::Packet { .. } => {}
            Data::Track { to: replica, event } => {
                let replica = *replica;
                match event {
                    TrackEvent::GroupStart(group) if backlog >= self.hard_limit => {
                        if self.cut_group((to, replica, *group)) {
                            self.count(|d| d.groups_skipped += 1);
                            return;
                        }
                    }
                    TrackEvent::Frame { group, .. } | TrackEvent::Chunk { group, .. } => {
                        let key = (to, replica, *group);
                        // The common case (nothing cut) costs no hashing.
                        let cut = self.cut.borrow();
                        let is_cut = !cut.is_empty() && cut.contains(&key);
                        drop(cut);
                        if is_cut {
                            self.count(|d| d.frames += 1);
                            return;
                        }
                        if self.over_limits(to, replica, backlog) && self.cut_group(key) {
                            self.count(|d| {
                                d.frames += 1;
                                d.groups_reset += 1;
                            });
                            let reset = Data::Track {
                                to: replica,
                                event: TrackEvent::GroupEnd {
                                    group: *group,
                                    code: Some(TOO_FAR_BEHIND),
                                },
                            };
                            self.queue.push(to, reset, &try_send);
                            return;
                        }
                    }
                    TrackEvent::GroupEnd { group, .. } => {
                        if self.cut.borrow_mut().remove(&(to, replica, *group)) {
                            return;
                        }
                    }
                    TrackEvent::End(_) => {
                        let mut cut = self.cut.borrow_mut();
                        if !cut.is_empty() {
                            cut.retain(|&(peer, r, _)| (peer, r) != (to, replica));
                        }
                    }
                    TrackEvent::GroupStart(_) | TrackEvent::Info(_) => {}
                }
            }
        }
        let (replica, len) = media_of(&msg);
        self.queue.push(to, msg, try_send);
        if len > 0 && self.queue.backlog(to) > backlog {
            self.account(to, replica, len, true);
        }
    }

    /// Whether media for `replica` on peer `to` is over the limits: too many messages
    /// queued, or too many bytes with this replica holding a large share of them.
    fn over_limits(&self, to: usize, replica: u64, backlog: usize) -> bool {
        if backlog >= self.limit {
            return true;
        }
        if self.queued_bytes[to].get() < self.byte_limit {
            return false;
        }
        let share = self.replica_bytes.borrow().get(&(to, replica)).copied();
        share.unwrap_or(0) >= self.byte_limit / 8
    }

    /// Adds (or, once taken, removes) `len` queued payload bytes of `replica` for `to`.
    fn account(&self, to: usize, replica: u64, len: usize, queued: bool) {
        let total = &self.queued_bytes[to];
        let mut replicas = self.replica_bytes.borrow_mut();
        if queued {
            total.set(total.get() + len);
            *replicas.entry((to, replica)).or_default() += len;
            return;
        }
        total.set(total.get().saturating_sub(len));
        if let Some(bytes) = replicas.get_mut(&(to, replica)) {
            *bytes = bytes.saturating_sub(len);
            if *bytes == 0 {
                replicas.remove(&(to, replica));
            }
        }
    }

    /// Records that `key`'s remaining events are not sent; false when too many groups are
    /// cut already (the caller then queues instead of shedding).
    fn cut_group(&self, key: Cut) -> bool {
        let mut cut = self.cut.borrow_mut();
        cut.len() < MAX_CUT_GROUPS && cut.insert(key)
    }

    fn count(&self, f: impl FnOnce(&mut DataDrops)) {
        let mut drops = self.drops.get();
        f(&mut drops);
        self.drops.set(drops);
    }

    /// What was shed so far.
    pub fn drops(&self) -> DataDrops {
        self.drops.get()
    }

    /// Messages waiting for room in the lane to `to`.
    pub fn backlog(&self, to: usize) -> usize {
        self.queue.backlog(to)
    }

    /// See [`Outbox::take`].
    pub fn take(&self, to: usize) -> Option<Data> {
        let msg = self.queue.take(to)?;
        let (replica, len) = media_of(&msg);
        if len > 0 {
            self.account(to, replica, len, false);
        }
        Some(msg)
    }

    /// See [`Outbox::sent`].
    pub fn sent(&self, to: usize) {
        self.queue.sent(to)
    }

    /// See [`Outbox::wake`].
    pub fn wake(&self, to: usize) -> Rc<Notify> {
        self.queue.wake(to)
    }
}

/// The replica a message is for and the media payload it carries (0: none).
fn media_of(msg: &Data) -> (u64, usize) {
    match msg {
        Data::Track {
            to,
            event: TrackEvent::Frame { first, .. },
        } => (*to, first.len()),
        Data::Track {
            to,
            event: TrackEvent::Chunk { bytes, .. },
        } => (*to, bytes.len()),
        _ => (0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FrameHead, TrackEnd};
    use bytes::Bytes;

    const PEER: usize = 1;
    const REPLICA: u64 = 7;

    fn track(event: TrackEvent) -> Data {
        Data::Track { to: REPLICA, event }
    }

    fn frame(group: u64, byte: u8) -> Data {
        track(TrackEvent::Frame {
            group,
            head: FrameHead {
                timestamp: 0,
                size: 1,
            },
            first: Bytes::from(vec![byte]),
        })
    }

    /// Pushes everything while the lane is full, then drains the queue: what the replica
    /// would receive, as a readable trace.
    fn through_full_lane(outbox: &DataOutbox, msgs: Vec<Data>) -> Vec<String> {
        for msg in msgs {
            outbox.push(PEER, msg, Err);
        }
        let mut got = Vec::new();
        while let Some(msg) = outbox.take(PEER) {
            outbox.sent(PEER);
            got.push(match msg {
                Data::Track { event, .. } => match event {
                    TrackEvent::GroupStart(g) => format!("start {g}"),
                    TrackEvent::Frame { group, first, .. } => {
                        format!("frame {group}:{}", first[0])
                    }
                    TrackEvent::Chunk { group, bytes } => format!("chunk {group}:{}", bytes[0]),
                    TrackEvent::GroupEnd { group, code } => format!("end {group} {code:?}"),
                    TrackEvent::End(_) => "track end".into(),
                    TrackEvent::Info(_) => "info".into(),
                },
                Data::Packet { .. } => "packet".into(),
            });
        }
        got
    }

    #[test]
    fn a_frame_that_does_not_fit_resets_its_group_and_nothing_else_of_it_is_sent() {
        let outbox = DataOutbox::new(2, 3, 100);
        let got = through_full_lane(
            &outbox,
            vec![
                track(TrackEvent::GroupStart(0)),
                frame(0, 1),
                frame(0, 2),
                frame(0, 3), // the fourth message: over the limit
                frame(0, 4),
                track(TrackEvent::GroupEnd {
                    group: 0,
                    code: None,
                }),
            ],
        );
        assert_eq!(
            got,
            [
                "start 0",
                "frame 0:1",
                "frame 0:2",
                &format!("end 0 Some({TOO_FAR_BEHIND})"),
            ]
        );
        let drops = outbox.drops();
        assert_eq!((drops.frames, drops.groups_reset), (2, 1));
        // The group was forgotten with its end: a later group gets through whole.
        let got = through_full_lane(
            &outbox,
            vec![
                track(TrackEvent::GroupStart(1)),
                frame(1, 1),
                track(TrackEvent::GroupEnd {
                    group: 1,
                    code: None,
                }),
            ],
        );
        assert_eq!(got, ["start 1", "frame 1:1", "end 1 None"]);
    }

    #[test]
    fn a_chunk_that_does_not_fit_resets_its_group_mid_frame() {
        let outbox = DataOutbox::new(2, 3, 100);
        let chunk = |byte| {
            track(TrackEvent::Chunk {
                group: 0,
                bytes: Bytes::from(vec![byte]),
            })
        };
        let head = FrameHead {
            timestamp: 0,
            size: 4,
        };
        let got = through_full_lane(
            &outbox,
            vec![
                track(TrackEvent::GroupStart(0)),
                track(TrackEvent::Frame {
                    group: 0,
                    head,
                    first: Bytes::from(vec![1]),
                }),
                chunk(2),
                chunk(3), // over the limit: the frame can no longer arrive whole
                chunk(4),
                track(TrackEvent::GroupEnd {
                    group: 0,
                    code: None,
                }),
            ],
        );
        assert_eq!(
            got,
            [
                "start 0",
                "frame 0:1",
                "chunk 0:2",
                &format!("end 0 Some({TOO_FAR_BEHIND})"),
            ]
        );
        assert_eq!(outbox.drops().frames, 2);
    }

    #[test]
    fn a_few_large_chunks_past_the_byte_limit_reset_their_group() {
        let mut outbox = DataOutbox::new(2, 100, 400);
        outbox.byte_limit = 10;
        let big = |byte| {
            track(TrackEvent::Chunk {
                group: 0,
                bytes: Bytes::from(vec![byte; 6]),
            })
        };
        let head = FrameHead {
            timestamp: 0,
            size: 24,
        };
        let got = through_full_lane(
            &outbox,
            vec![
                track(TrackEvent::GroupStart(0)),
                track(TrackEvent::Frame {
                    group: 0,
                    head,
                    first: Bytes::from(vec![1; 6]),
                }),
                big(2), // 12 bytes queued now: past the limit of 10
                big(3),
                big(4),
            ],
        );
        assert_eq!(
            got,
            [
                "start 0",
                "frame 0:1",
                "chunk 0:2",
                &format!("end 0 Some({TOO_FAR_BEHIND})"),
            ]
        );
        assert_eq!(outbox.drops().frames, 2);
        assert_eq!(outbox.queued_bytes[PEER].get(), 0, "given back as taken");
        assert!(outbox.replica_bytes.borrow().is_empty());
    }

    #[test]
    fn past_the_byte_limit_a_small_track_beside_a_flooding_one_still_passes() {
        let mut outbox = DataOutbox::new(2, 100, 400);
        outbox.byte_limit = 64;
        let flood = |byte| Data::Track {
            to: 1,
            event: TrackEvent::Chunk {
                group: 0,
                bytes: Bytes::from(vec![byte; 32]),
            },
        };
        let head = FrameHead {
            timestamp: 0,
            size: 1000,
        };
        let mut msgs = vec![
            Data::Track {
                to: 1,
                event: TrackEvent::GroupStart(0),
            },
            Data::Track {
                to: 1,
                event: TrackEvent::Frame {
                    group: 0,
                    head,
                    first: Bytes::from(vec![0; 32]),
                },
            },
            flood(1),
            flood(2), // 96 bytes queued, all of replica 1's: cut
        ];
        // Replica 7's one-byte frames pass although the peer is over its byte limit.
        msgs.extend([track(TrackEvent::GroupStart(5)), frame(5, 9), frame(5, 8)]);
        let got = through_full_lane(&outbox, msgs);
        assert_eq!(
            got,
            [
                "start 0",
                "frame 0:0",
                "chunk 0:1",
                &format!("end 0 Some({TOO_FAR_BEHIND})"),
                "start 5",
                "frame 5:9",
                "frame 5:8",
            ]
        );
    }

    #[test]
    fn past_the_hard_limit_whole_groups_are_skipped_but_ends_always_pass() {
        let outbox = DataOutbox::new(2, 1, 2);
        let mut msgs = vec![track(TrackEvent::GroupStart(0)), frame(0, 1)];
        // Group 1 starts with two messages queued: at the hard limit, so it is skipped.
        msgs.extend([
            track(TrackEvent::GroupStart(1)),
            frame(1, 1),
            track(TrackEvent::GroupEnd {
                group: 1,
                code: None,
            }),
            track(TrackEvent::GroupEnd {
                group: 0,
                code: None,
            }),
            track(TrackEvent::End(TrackEnd::Finished { next: 2 })),
        ]);
        let got = through_full_lane(&outbox, msgs);
        assert_eq!(
            got,
            [
                "start 0",
                &format!("end 0 Some({TOO_FAR_BEHIND})"),
                "track end"
            ]
        );
        let drops = outbox.drops();
        assert_eq!(
            (drops.frames, drops.groups_reset, drops.groups_skipped),
            (2, 1, 1)
        );
        assert!(outbox.cut.borrow().is_empty());
    }

    #[test]
    fn packets_are_dropped_and_counted_past_the_limit() {
        let outbox = DataOutbox::new(2, 1, 4);
        let packet = || Data::Packet {
            from: "127.0.0.1:1".parse().unwrap(),
            to: "127.0.0.1:2".parse().unwrap(),
            payload: Bytes::new(),
        };
        let got = through_full_lane(&outbox, vec![packet(), packet(), packet()]);
        assert_eq!(got, ["packet"]);
        assert_eq!(outbox.drops().packets, 2);
    }

    #[test]
    fn with_room_in_the_lane_nothing_is_queued_or_dropped() {
        let outbox = DataOutbox::new(2, 1, 1);
        let mut lane = Vec::new();
        let sent = RefCell::new(&mut lane);
        for msg in [track(TrackEvent::GroupStart(0)), frame(0, 1)] {
            outbox.push(PEER, msg, |m| {
                sent.borrow_mut().push(m);
                Ok(())
            });
        }
        assert_eq!(lane.len(), 2);
        assert_eq!(outbox.drops(), DataDrops::default());
    }
}
