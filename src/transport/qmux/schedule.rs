//! What to send next: connection-level frames first, then stream frames by urgency (lower
//! first), round-robin among equal urgency (PROTOCOL.md §6.9), packed into records.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;

use super::frame::Frame;
use crate::transport::StreamId;

/// Encoded frames waiting to be sent.
#[derive(Debug, Default)]
pub(super) struct Outgoing {
    /// Connection-level frames, sent before any stream data.
    control: VecDeque<Vec<u8>>,
    /// Encoded STREAM/RESET_STREAM frames per stream, with the stream's urgency.
    streams: BTreeMap<StreamId, (u8, VecDeque<Vec<u8>>)>,
    /// The stream served last, for round-robin among equal urgency.
    last_served: Option<StreamId>,
}

impl Outgoing {
    /// Queues a connection-level frame.
    pub(super) fn push(&mut self, frame: Frame) {
        let mut bytes = Vec::new();
        frame.encode(&mut bytes);
        self.control.push_back(bytes);
    }

    /// Queues a STREAM or RESET_STREAM frame behind the stream's earlier frames; `urgency`
    /// ranks the stream if it has nothing queued yet.
    pub(super) fn push_stream(&mut self, id: StreamId, urgency: u8, frame: Frame) {
        let mut bytes = Vec::new();
        frame.encode(&mut bytes);
        self.streams
            .entry(id)
            .or_insert_with(|| (urgency, VecDeque::new()))
            .1
            .push_back(bytes);
    }

    /// Drops what stream `id` had queued.
    pub(super) fn drop_stream(&mut self, id: StreamId) {
        self.streams.remove(&id);
    }

    /// Drops all queued stream frames.
    pub(super) fn clear_streams(&mut self) {
        self.streams.clear();
    }

    /// Drops everything queued.
    pub(super) fn clear(&mut self) {
        self.control.clear();
        self.streams.clear();
    }

    /// Re-ranks stream `id`'s queued frames.
    pub(super) fn set_urgency(&mut self, id: StreamId, urgency: u8) {
        if let Some((u, _)) = self.streams.get_mut(&id) {
            *u = urgency;
        }
    }

    /// The stream to serve next: lowest urgency, round-robin after `last_served`.
    fn next_stream(&self) -> Option<StreamId> {
        let best = self.streams.values().map(|(u, _)| *u).min()?;
        let after = self.last_served.map_or(Bound::Unbounded, Bound::Excluded);
        self.streams
            .range((after, Bound::Unbounded))
            .chain(self.streams.iter())
            .find(|(_, (u, _))| *u == best)
            .map(|(id, _)| *id)
    }

    /// Removes the next frame to send: control first, then stream data.
    fn pop_frame(&mut self, limit: usize) -> Option<Vec<u8>> {
        if let Some(front) = self.control.front() {
            if front.len() > limit {
                return None;
            }
            return self.control.pop_front();
        }
        let id = self.next_stream()?;
        let (_, queue) = self.streams.get_mut(&id)?;
        if queue.front().is_some_and(|f| f.len() > limit) {
            return None;
        }
        let frame = queue.pop_front();
        if queue.is_empty() {
            self.streams.remove(&id);
        }
        self.last_served = Some(id);
        frame
    }

    /// The next record: one frame, then (with `pack` set to the peer's record size) as many
    /// following frames as fit.
    pub(super) fn next_record(&mut self, pack: Option<usize>) -> Option<Vec<u8>> {
        let mut record = self.pop_frame(usize::MAX)?;
        if let Some(limit) = pack {
            while record.len() < limit {
                match self.pop_frame(limit - record.len()) {
                    Some(frame) => record.extend_from_slice(&frame),
                    None => break,
                }
            }
        }
        Some(record)
    }
}
