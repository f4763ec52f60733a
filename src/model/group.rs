//! One group of a track: its frames in order, each a header (timestamp and declared size)
//! and the payload chunks that have arrived so far.
//!
//! Payload is held as `Bytes` chunks exactly as the publisher's stream delivered them, so a
//! group cached once serves every subscriber on the shard (and every shard) without copying
//! media bytes, and a frame reaches viewers before its last byte has arrived (cut-through).
//! Chunks of all frames sit in one list in stream order; each frame remembers where its
//! chunks start, which is all a writer needs to interleave frame headers with payload.
//!
//! A group only completes with every frame whole: a clean end inside a frame becomes a
//! reset (WrongSize), and a reset group drops its payload at once, since no viewer may
//! deliver any more of it.

use crate::wire::error_code::stream::WRONG_SIZE;
use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::time::Instant;

/// A frame's header: its presentation timestamp in the track's timescale and the payload
/// size its publisher declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHead {
    pub timestamp: u64,
    pub size: usize,
}

/// Whether the publisher is still writing a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    /// More frames or payload may follow.
    Open,
    /// The publisher finished the group; every frame is here, whole.
    Complete,
    /// The group was reset with this stream error code; its payload is gone.
    Aborted(u64),
}

/// A frame's header and the index of its first chunk in the group's chunk list.
#[derive(Clone, Copy, Debug)]
struct FrameEntry {
    head: FrameHead,
    first_chunk: usize,
}

/// A cached group.
#[derive(Debug)]
pub struct Group {
    pub sequence: u64,
    frames: RefCell<Vec<FrameEntry>>,
    chunks: RefCell<Vec<Bytes>>,
    /// Payload bytes of the newest frame still to arrive (0 between frames).
    missing: Cell<usize>,
    state: Cell<GroupState>,
    bytes: Cell<usize>,
    last_write: Cell<Instant>,
}

impl Group {
    pub(crate) fn new(sequence: u64, now: Instant) -> Self {
        Self {
            sequence,
            frames: RefCell::new(Vec::new()),
            chunks: RefCell::new(Vec::new()),
            missing: Cell::new(0),
            state: Cell::new(GroupState::Open),
            bytes: Cell::new(0),
            last_write: Cell::new(now),
        }
    }

    /// The header of frame `index` and the index of its first chunk, once the frame began.
    pub fn frame_start(&self, index: usize) -> Option<(FrameHead, usize)> {
        self.frames
            .borrow()
            .get(index)
            .map(|f| (f.head, f.first_chunk))
    }

    /// How many frames have begun so far.
    pub fn frame_count(&self) -> usize {
        self.frames.borrow().len()
    }

    /// Payload chunk `index` (counted across the whole group), if it has arrived.
    pub fn chunk(&self, index: usize) -> Option<Bytes> {
        self.chunks.borrow().get(index).cloned()
    }

    /// How many payload chunks have arrived so far.
    pub fn chunk_count(&self) -> usize {
        self.chunks.borrow().len()
    }

    /// Frame `index`'s header and the chunks of it that have arrived (for snapshots and
    /// tests; writers walk [`Self::frame_start`] and [`Self::chunk`] instead).
    pub fn frame_chunks(&self, index: usize) -> Option<(FrameHead, Vec<Bytes>)> {
        let frames = self.frames.borrow();
        let entry = frames.get(index)?;
        let chunks = self.chunks.borrow();
        let end = frames
            .get(index + 1)
            .map_or(chunks.len(), |f| f.first_chunk);
        Some((entry.head, chunks[entry.first_chunk..end].to_vec()))
    }

    pub fn state(&self) -> GroupState {
        self.state.get()
    }

    /// Payload bytes cached in this group.
    pub fn bytes(&self) -> usize {
        self.bytes.get()
    }

    /// Whether the newest frame still waits for payload.
    pub fn frame_in_progress(&self) -> bool {
        self.missing.get() > 0
    }

    /// Timestamp of the first frame, if any.
    pub fn first_timestamp(&self) -> Option<u64> {
        self.frames.borrow().first().map(|f| f.head.timestamp)
    }

    /// Timestamp of the newest frame, if any.
    pub fn last_timestamp(&self) -> Option<u64> {
        self.frames.borrow().last().map(|f| f.head.timestamp)
    }

    /// When a frame, a chunk or the end was last written.
    pub fn last_write(&self) -> Instant {
        self.last_write.get()
    }

    /// Begins a frame with its first payload bytes (all of them for a frame that arrived
    /// whole) at `now`. Refused (nothing changes) once the group ended, while the previous
    /// frame is still missing payload, or when `first` is longer than the declared size.
    pub(crate) fn push_frame(&self, head: FrameHead, first: Bytes, now: Instant) -> bool {
        if self.state.get() != GroupState::Open || self.missing.get() > 0 || first.len() > head.size
        {
            return false;
        }
        let mut chunks = self.chunks.borrow_mut();
        self.frames.borrow_mut().push(FrameEntry {
            head,
            first_chunk: chunks.len(),
        });
        self.missing.set(head.size - first.len());
        self.bytes.set(self.bytes.get() + first.len());
        if !first.is_empty() {
            chunks.push(first);
        }
        self.last_write.set(now);
        true
    }

    /// Appends payload of the newest frame at `now`. Refused (nothing changes) once the
    /// group ended, or when it is more than the frame still misses.
    pub(crate) fn push_chunk(&self, chunk: Bytes, now: Instant) -> bool {
        let missing = self.missing.get();
        if self.state.get() != GroupState::Open || chunk.len() > missing {
            return false;
        }
        self.missing.set(missing - chunk.len());
        self.bytes.set(self.bytes.get() + chunk.len());
        if !chunk.is_empty() {
            self.chunks.borrow_mut().push(chunk);
        }
        self.last_write.set(now);
        true
    }

    /// Ends the group at `now`: `None` is a clean finish (a reset with WrongSize if a frame
    /// is still missing payload), `Some(code)` a reset. A reset drops the payload; returns
    /// the bytes it gave back.
    pub(crate) fn end(&self, code: Option<u64>, now: Instant) -> usize {
        if self.state.get() != GroupState::Open {
            return 0;
        }
        let code = match code {
            None if self.missing.get() > 0 => Some(WRONG_SIZE),
            code => code,
        };
        self.last_write.set(now);
        match code {
            None => {
                self.state.set(GroupState::Complete);
                0
            }
            Some(code) => {
                self.state.set(GroupState::Aborted(code));
                self.frames.replace(Vec::new());
                self.chunks.replace(Vec::new());
                self.missing.set(0);
                self.bytes.replace(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(timestamp: u64, size: usize) -> FrameHead {
        FrameHead { timestamp, size }
    }

    #[test]
    fn a_frame_arrives_in_chunks_and_the_next_waits_for_its_last_byte() {
        let now = Instant::now();
        let group = Group::new(0, now);
        assert!(group.push_frame(head(1, 5), Bytes::from_static(b"he"), now));
        assert!(group.frame_in_progress());
        assert!(
            !group.push_frame(head(2, 1), Bytes::from_static(b"x"), now),
            "a frame cannot begin inside another"
        );
        assert!(
            !group.push_chunk(Bytes::from_static(b"llo!"), now),
            "too long"
        );
        assert!(group.push_chunk(Bytes::from_static(b"llo"), now));
        assert!(group.push_frame(head(2, 0), Bytes::new(), now));
        assert!(group.push_frame(head(3, 1), Bytes::from_static(b"x"), now));
        assert_eq!(group.chunk_count(), 3, "empty payloads take no chunk");
        assert_eq!(group.frame_start(1), Some((head(2, 0), 2)));
        assert_eq!(group.frame_start(2), Some((head(3, 1), 2)));
        let (first, chunks) = group.frame_chunks(0).unwrap();
        assert_eq!((first, chunks.concat()), (head(1, 5), b"hello".to_vec()));
        assert_eq!(group.bytes(), 6);
        group.end(None, now);
        assert_eq!(group.state(), GroupState::Complete);
    }

    #[test]
    fn a_clean_end_inside_a_frame_is_a_reset_and_a_reset_drops_the_payload() {
        let now = Instant::now();
        let group = Group::new(0, now);
        assert!(group.push_frame(head(1, 10), Bytes::from_static(b"part"), now));
        assert_eq!(group.end(None, now), 4, "the partial payload is given back");
        assert_eq!(group.state(), GroupState::Aborted(WRONG_SIZE));
        assert_eq!((group.bytes(), group.chunk_count()), (0, 0));
        assert!(!group.push_chunk(Bytes::from_static(b"more"), now));
        assert_eq!(group.end(Some(1), now), 0, "the first end stands");
        assert_eq!(group.state(), GroupState::Aborted(WRONG_SIZE));
    }
}
