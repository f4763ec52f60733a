//! One downstream subscription: a cursor over a shared track that turns cached and live
//! groups into group streams for one subscriber, skipping ahead when it falls behind.
//!
//! A group is written as its frames arrive, chunk by chunk (cut-through): a frame's header
//! goes out as soon as the frame begins, its payload as each chunk lands in the cache. A
//! group the cache resets mid-frame resets the subscriber's stream, so a frame cut short
//! never arrives as if it were whole.

use super::io::Outbound;
use crate::model::{Group, GroupState, Track, TrackEnd};
use crate::relay::TrackHandle;
use crate::transport::{StreamId, Streams};
use crate::wire::{
    self, error_code::stream as code, FrameHeader, GroupHeader, Message, SubscribeResponse,
    UniType, Version,
};
use std::rc::Rc;

/// Urgency of group streams (control streams keep quiche's more urgent default).
const GROUP_URGENCY: u8 = 200;
/// Most group streams one subscription keeps open at once.
const MAX_GROUPS_IN_FLIGHT: usize = 8;
/// How far below the cursor a group that arrives after a newer one is still sent: the bits
/// of [`Downstream::behind`].
const LATE_WINDOW: u64 = u64::BITS as u64;

/// A group being written to the subscriber.
struct GroupOut {
    group: Rc<Group>,
    stream: StreamId,
    /// Frames whose header was written.
    next_frame: usize,
    /// Payload chunks (counted across the group) written.
    next_chunk: usize,
    last_timestamp: u64,
    out: Outbound,
}

impl GroupOut {
    /// Whether the cache holds frames or payload this subscriber has not been given yet.
    fn has_unwritten(&self) -> bool {
        self.next_frame < self.group.frame_count() || self.next_chunk < self.group.chunk_count()
    }
}

/// A subscriber's view of one track.
pub struct Downstream {
    /// The subscriber's id for this subscription.
    pub id: u64,
    pub handle: TrackHandle,
    pub priority: u8,
    pub max_age_ms: u64,
    /// The next sequence to consider; `None` = start at the latest group.
    next: Option<u64>,
    /// Bit `i` set: sequence `next - 1 - i` was opened, or is not owed (it precedes the
    /// start). A clear bit is a sequence passed over because it had not arrived yet; if it
    /// arrives later (overtaken on the way in), it is still sent.
    behind: u64,
    /// The track's [`late_starts`](Track::late_starts) when we last looked
    /// for late groups.
    late_seen: u64,
    /// Exclusive cap: groups at or past it are held.
    end_cap: Option<u64>,
    started: bool,
    ended: bool,
    groups: Vec<GroupOut>,
    /// The transport refused the last group stream we tried to open.
    open_blocked: bool,
    /// Groups dropped for this subscriber because it was behind.
    pub skipped: u64,
}

/// What the subscribe stream should do after a step.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Continue,
    /// The track is over for this subscriber: END/FIN were queued.
    Finished,
    /// Refuse or fail the subscription with this stream code.
    Fail(u64),
}

impl Downstream {
    pub fn new(request: &wire::Subscribe, handle: TrackHandle) -> Self {
        Self {
            id: request.id,
            handle,
            priority: request.priority,
            max_age_ms: request.max_latency_ms,
            next: request.start_group,
            behind: u64::MAX,
            late_seen: 0,
            end_cap: request.end_group,
            started: false,
            ended: false,
            groups: Vec::new(),
            open_blocked: false,
            skipped: 0,
        }
    }

    /// Applies a SUBSCRIBE_UPDATE (and tells the track, which may update upstream).
    pub fn update(&mut self, update: &wire::SubscribeUpdate) {
        self.handle.set_demand(crate::model::Demand {
            priority: update.priority,
            max_age_ms: update.max_latency_ms,
            start: update.start_group,
            end: update.end_group,
        });
        self.priority = update.priority;
        self.max_age_ms = update.max_latency_ms;
        self.end_cap = update.end_group;
        if let (Some(start), Some(next)) = (update.start_group, self.next) {
            if start > next {
                self.next = Some(start);
                self.behind = u64::MAX;
            }
        }
    }

    /// lite-04 answers a SUBSCRIBE at once with SUBSCRIBE_OK.
    pub fn accept(&mut self, version: Version, control: &mut Outbound) {
        if version == Version::Lite04 && !self.started {
            let ok = SubscribeResponse::Ok {
                priority: self.priority,
                max_latency_ms: 0,
                start_group: None,
                end_group: None,
            };
            let mut buf = Vec::new();
            if ok.encode(version, &mut buf).is_ok() {
                control.push(buf);
            }
            self.started = true;
        }
    }

    /// Writes what the subscriber can take; `control` is the subscribe stream's queue.
    pub fn step(
        &mut self,
        version: Version,
        streams: &mut dyn Streams,
        control: &mut Outbound,
    ) -> Step {
        if self.ended {
            return Step::Finished;
        }
        let track = self.handle.track().clone();
        if let Some(TrackEnd::Failed(code)) = track.end() {
            self.cancel(streams, code);
            return Step::Fail(code);
        }
        self.open_groups(version, streams, control);
        self.write_groups(version, streams);
        self.age_out(streams);
        if let Some(TrackEnd::Finished { next }) = track.end() {
            let pending = match self.next {
                None => track.latest().is_some() && !self.started,
                Some(n) => track
                    .group_at_or_after(n)
                    .is_some_and(|g| g.sequence < next),
            };
            if self.groups.is_empty() && !pending {
                if version == Version::Lite05 {
                    let mut buf = Vec::new();
                    if (SubscribeResponse::End { group: next })
                        .encode(version, &mut buf)
                        .is_ok()
                    {
                        control.push(buf);
                    }
                }
                control.finish();
                self.ended = true;
                return Step::Finished;
            }
        }
        Step::Continue
    }

    /// Whether writes are waiting for the transport: queued bytes or FINs, or a group
    /// stream it would not open. Everything else waits for a track change.
    pub fn has_backlog(&self) -> bool {
        self.open_blocked || self.groups.iter().any(|g| g.out.has_pending())
    }

    /// Opens streams for groups the subscriber has not seen yet.
    fn open_groups(&mut self, version: Version, streams: &mut dyn Streams, control: &mut Outbound) {
        self.open_blocked = false;
        let track = self.handle.track().clone();
        while self.groups.len() < MAX_GROUPS_IN_FLIGHT {
            let candidate = match self.next {
                None => track.latest(),
                Some(next) => self
                    .late_group(&track, next)
                    .or_else(|| track.group_at_or_after(next)),
            };
            let Some(group) = candidate else { return };
            if self.end_cap.is_some_and(|cap| group.sequence >= cap) {
                return;
            }
            if let GroupState::Aborted(_) = group.state() {
                self.pass(group.sequence);
                continue;
            }
            let stream = match streams.open_uni() {
                Ok(stream) => stream,
                Err(_) => {
                    self.open_blocked = true;
                    return;
                }
            };
            if !self.started {
                let mut buf = Vec::new();
                if (SubscribeResponse::Start {
                    group: group.sequence,
                })
                .encode(version, &mut buf)
                .is_ok()
                {
                    control.push(buf);
                }
                self.started = true;
            }
            let mut header = Vec::with_capacity(16);
            let header_ok = UniType::Group.encode(version, &mut header).is_ok()
                && GroupHeader {
                    subscribe_id: self.id,
                    sequence: group.sequence,
                }
                .encode(version, &mut header)
                .is_ok();
            if !header_ok {
                return;
            }
            streams.set_urgency(stream, GROUP_URGENCY);
            tracing::trace!(
                subscription = self.id,
                group = group.sequence,
                stream,
                "group to subscriber"
            );
            let mut out = Outbound::default();
            out.push(header);
            self.pass(group.sequence);
            self.groups.push(GroupOut {
                group,
                stream,
                next_frame: 0,
                next_chunk: 0,
                last_timestamp: 0,
                out,
            });
        }
    }

    /// A cached group below `next` that was passed over before it arrived, oldest first.
    /// Looked for only when a group started late on the track since the last look, so a
    /// track without reordering (or with sequences the publisher skipped) costs nothing.
    fn late_group(&mut self, track: &Track, next: u64) -> Option<Rc<Group>> {
        if self.behind == u64::MAX || track.late_starts() == self.late_seen {
            return None;
        }
        let missing = !self.behind;
        for i in (0..LATE_WINDOW).rev().filter(|&i| missing & (1 << i) != 0) {
            let Some(sequence) = next.checked_sub(i + 1) else {
                continue;
            };
            if let Some(group) = track.group(sequence) {
                return Some(group);
            }
        }
        self.late_seen = track.late_starts();
        None
    }

    /// Records that `sequence` was opened or skipped: moves the cursor past it, or, for a
    /// late group below the cursor, marks it done.
    fn pass(&mut self, sequence: u64) {
        match self.next {
            Some(next) if sequence < next => {
                let i = next - 1 - sequence;
                if i < LATE_WINDOW {
                    self.behind |= 1 << i;
                }
            }
            Some(next) => {
                // Sequences from `next` up to `sequence` become bits `sequence - next` down
                // to 1, clear: passed over, not yet arrived.
                let shift = (sequence - next).saturating_add(1);
                self.behind = self.behind.checked_shl(shift.min(64) as u32).unwrap_or(0) | 1;
                self.next = Some(sequence.saturating_add(1));
            }
            None => {
                // The first group: nothing before it is owed.
                self.behind = u64::MAX;
                self.next = Some(sequence.saturating_add(1));
            }
        }
    }

    /// Moves frames of in-flight groups into their streams, as far as the transport takes:
    /// a frame's header once every chunk before it is written, then each chunk as it lands.
    fn write_groups(&mut self, version: Version, streams: &mut dyn Streams) {
        self.groups.retain_mut(|g| loop {
            // A reset group goes at once, with whatever is still queued for it: its payload
            // is no use to anyone (and is what an evicting cache wants released).
            if let GroupState::Aborted(c) = g.group.state() {
                streams.reset(g.stream, c);
                return false;
            }
            if g.out.flush(streams, g.stream).is_err() {
                return false;
            }
            if !g.out.is_empty() {
                return true;
            }
            if let Some((head, first_chunk)) = g.group.frame_start(g.next_frame) {
                if first_chunk == g.next_chunk {
                    let header = FrameHeader {
                        timestamp_delta: head.timestamp.wrapping_sub(g.last_timestamp) as i64,
                        size: head.size as u64,
                    };
                    let mut buf = Vec::with_capacity(16);
                    if header.encode(version, &mut buf).is_err() {
                        streams.reset(g.stream, code::INTERNAL);
                        return false;
                    }
                    g.out.push(buf);
                    g.last_timestamp = head.timestamp;
                    g.next_frame += 1;
                    continue;
                }
            }
            if let Some(chunk) = g.group.chunk(g.next_chunk) {
                g.out.push(chunk);
                g.next_chunk += 1;
                continue;
            }
            match g.group.state() {
                GroupState::Open => return true,
                GroupState::Complete => {
                    if g.out.fin_sent() {
                        return false;
                    }
                    g.out.finish();
                }
                // Reset at the top of the loop.
                GroupState::Aborted(_) => continue,
            }
        });
    }

    /// Abandons stalled groups older than the subscriber's max age (clamped to the
    /// publisher's), measured in presentation time against the latest group.
    fn age_out(&mut self, streams: &mut dyn Streams) {
        let track = self.handle.track().clone();
        let Some(latest) = track.latest() else { return };
        let info = track.info().unwrap_or_default();
        let max_age = if self.max_age_ms == 0 {
            0
        } else {
            self.max_age_ms.min(info.max_age_ms)
        };
        let timescale = info.timescale.max(1);
        let newest = latest.last_timestamp();
        let mut skipped = 0;
        self.groups.retain_mut(|g| {
            if g.group.sequence == latest.sequence || g.out.fin_sent() {
                return true;
            }
            let Some(successor) = track.successor(g.group.sequence) else {
                return true;
            };
            let (Some(reach), Some(newest)) = (successor.first_timestamp(), newest) else {
                return true;
            };
            let age_ms = newest.saturating_sub(reach).saturating_mul(1000) / timescale;
            let stalled =
                !g.out.is_empty() || g.group.state() == GroupState::Open || g.has_unwritten();
            if !stalled || age_ms <= max_age {
                return true;
            }
            skipped += 1;
            streams.reset(g.stream, code::OLD);
            false
        });
        self.skipped += skipped;
        if skipped > 0 {
            tracing::debug!(
                subscription = self.id,
                skipped,
                "subscriber behind; old groups dropped"
            );
        }
    }

    /// Resets every in-flight group stream with `code`.
    pub fn cancel(&mut self, streams: &mut dyn Streams, code: u64) {
        for g in self.groups.drain(..) {
            if !g.out.fin_sent() {
                streams.reset(g.stream, code);
            }
        }
        self.ended = true;
    }
}
