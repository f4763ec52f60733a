//! What to send next: connection-level frames first, then stream frames by urgency (lower
//! first), round-robin among equal urgency (PROTOCOL.md §6.9), packed into records.
//!
//! Each urgency level keeps its streams in turn in a queue, and a bitmap says which levels
//! have any, so picking the next frame costs the same however many streams have data
//! queued. A stream's place in a queue carries a ticket; re-ranking or dropping a stream
//! makes its old place stale, skipped when reached (each place is visited once).

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::frame::Frame;
use crate::transport::StreamId;

/// The frames one stream has queued, its urgency, and the ticket of its place in turn.
#[derive(Debug)]
struct Queued {
    urgency: u8,
    ticket: u64,
    frames: VecDeque<Vec<u8>>,
}

/// Encoded frames waiting to be sent.
#[derive(Debug, Default)]
pub(super) struct Outgoing {
    /// Connection-level frames, sent before any stream data.
    control: VecDeque<Vec<u8>>,
    /// Encoded STREAM/RESET_STREAM frames per stream that has any.
    streams: HashMap<StreamId, Queued>,
    /// Per urgency, the streams to serve in turn, with the ticket of each place. Emptied
    /// levels are kept, so their queues are not allocated again.
    turns: BTreeMap<u8, VecDeque<(StreamId, u64)>>,
    /// Bit `u` set: level `u` of `turns` has places (maybe stale ones).
    levels: [u64; 4],
    next_ticket: u64,
    /// Places looked at so far: the scheduler's work.
    visited: u64,
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
        if let Some(queued) = self.streams.get_mut(&id) {
            queued.frames.push_back(bytes);
            return;
        }
        let ticket = self.take_turn(id, urgency);
        self.streams.insert(
            id,
            Queued {
                urgency,
                ticket,
                frames: VecDeque::from([bytes]),
            },
        );
    }

    /// Places stream `id` last in turn at `urgency`; returns the place's ticket.
    fn take_turn(&mut self, id: StreamId, urgency: u8) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.turns
            .entry(urgency)
            .or_default()
            .push_back((id, ticket));
        self.levels[usize::from(urgency >> 6)] |= 1 << (urgency & 63);
        ticket
    }

    /// Drops what stream `id` had queued.
    pub(super) fn drop_stream(&mut self, id: StreamId) {
        self.streams.remove(&id);
    }

    /// Drops all queued stream frames.
    pub(super) fn clear_streams(&mut self) {
        self.streams.clear();
        for queue in self.turns.values_mut() {
            queue.clear();
        }
        self.levels = [0; 4];
    }

    /// Drops everything queued.
    pub(super) fn clear(&mut self) {
        self.control.clear();
        self.clear_streams();
    }

    /// Re-ranks stream `id`'s queued frames: it takes the last turn at its new urgency.
    pub(super) fn set_urgency(&mut self, id: StreamId, urgency: u8) {
        match self.streams.get(&id) {
            Some(queued) if queued.urgency != urgency => {}
            _ => return,
        }
        let ticket = self.take_turn(id, urgency);
        if let Some(queued) = self.streams.get_mut(&id) {
            queued.urgency = urgency;
            queued.ticket = ticket;
        }
    }

    /// The lowest urgency level with places, from the bitmap.
    fn first_level(&self) -> Option<u8> {
        let (word, bits) = self
            .levels
            .iter()
            .enumerate()
            .find(|(_, bits)| **bits != 0)?;
        Some((word * 64) as u8 + bits.trailing_zeros() as u8)
    }

    /// Removes the next frame to send: control first, then stream data, if it fits `limit`.
    fn pop_frame(&mut self, limit: usize) -> Option<Vec<u8>> {
        if let Some(front) = self.control.front() {
            if front.len() > limit {
                return None;
            }
            return self.control.pop_front();
        }
        loop {
            let level = self.first_level()?;
            let queue = self.turns.get_mut(&level)?;
            let Some(&(id, ticket)) = queue.front() else {
                self.levels[usize::from(level >> 6)] &= !(1 << (level & 63));
                continue;
            };
            self.visited += 1;
            let Some(queued) = self.streams.get_mut(&id).filter(|q| q.ticket == ticket) else {
                // A stale place: the stream was dropped or re-ranked since.
                queue.pop_front();
                continue;
            };
            if queued.frames.front().is_some_and(|f| f.len() > limit) {
                return None;
            }
            let frame = queued.frames.pop_front();
            queue.pop_front();
            if queued.frames.is_empty() {
                self.streams.remove(&id);
            } else {
                // Round-robin: the stream's next frame waits for the others' turns.
                let ticket = self.next_ticket;
                self.next_ticket += 1;
                queued.ticket = ticket;
                queue.push_back((id, ticket));
            }
            return frame;
        }
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

    /// Places in turn looked at so far (stale ones included): the work of choosing frames.
    #[cfg(test)]
    pub(super) fn visited(&self) -> u64 {
        self.visited
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_frame(id: StreamId) -> Frame {
        Frame::Stream {
            id,
            offset: Some(0),
            data: vec![1; 8],
            fin: false,
        }
    }

    fn id_of(bytes: &[u8]) -> StreamId {
        match Frame::decode(bytes) {
            Ok((Frame::Stream { id, .. }, _)) => id,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn choosing_a_frame_costs_the_same_with_ten_thousand_streams_queued() {
        let mut out = Outgoing::default();
        let streams: Vec<StreamId> = (0..10_000u64).map(|i| i << 2 | 3).collect();
        for _ in 0..2 {
            for &id in &streams {
                out.push_stream(id, 127, stream_frame(id));
            }
        }
        // Some streams change rank, some are dropped: their old places go stale.
        for &id in &streams[..100] {
            out.set_urgency(id, 10);
        }
        for &id in &streams[100..200] {
            out.drop_stream(id);
        }
        let mut sent = Vec::new();
        while let Some(record) = out.next_record(None) {
            sent.push(id_of(&record));
        }
        assert_eq!(sent.len(), 2 * 10_000 - 2 * 100);
        // The re-ranked streams first, each twice in turn, then the rest round-robin.
        assert_eq!(
            &sent[..4],
            &[streams[0], streams[1], streams[2], streams[3]]
        );
        assert_eq!(sent[100], streams[0]);
        assert_eq!(sent[200], streams[200]);
        // One look per frame sent, plus one per stale place: linear, where a scan over the
        // queued streams per frame would have looked about 10⁸ times.
        assert!(out.visited() <= 2 * 10_000 + 200, "{}", out.visited());
    }

    #[test]
    fn records_never_exceed_the_limit_and_control_goes_first() {
        let mut out = Outgoing::default();
        out.push_stream(3, 127, stream_frame(3));
        out.push(Frame::MaxData(1 << 20));
        let first = out.next_record(Some(1 << 10)).unwrap();
        assert!(matches!(Frame::decode(&first), Ok((Frame::MaxData(_), _))));
        // The stream frame rode along in the same record.
        assert!(out.next_record(Some(1 << 10)).is_none());
    }
}
