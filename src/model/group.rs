//! One group of a track: an ordered list of frames sharing one payload buffer each.
//!
//! Frames hold their payload as `Bytes`, so a group cached once serves every subscriber on
//! the shard (and every shard) without copying media bytes.

use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::time::Instant;

/// One frame: a presentation timestamp in the track's timescale and an opaque payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub timestamp: u64,
    pub payload: Bytes,
}

/// Whether the publisher is still writing a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    /// More frames may follow.
    Open,
    /// The publisher finished the group; every frame is here.
    Complete,
    /// The group was reset with this stream error code.
    Aborted(u64),
}

/// A cached group.
#[derive(Debug)]
pub struct Group {
    pub sequence: u64,
    frames: RefCell<Vec<Frame>>,
    state: Cell<GroupState>,
    bytes: Cell<usize>,
    last_write: Cell<Instant>,
}

impl Group {
    pub(crate) fn new(sequence: u64, now: Instant) -> Self {
        Self {
            sequence,
            frames: RefCell::new(Vec::new()),
            state: Cell::new(GroupState::Open),
            bytes: Cell::new(0),
            last_write: Cell::new(now),
        }
    }

    /// The frame at `index`, if it has arrived.
    pub fn frame(&self, index: usize) -> Option<Frame> {
        self.frames.borrow().get(index).cloned()
    }

    /// How many frames have arrived so far.
    pub fn frame_count(&self) -> usize {
        self.frames.borrow().len()
    }

    pub fn state(&self) -> GroupState {
        self.state.get()
    }

    /// Payload bytes cached in this group.
    pub fn bytes(&self) -> usize {
        self.bytes.get()
    }

    /// Timestamp of the first frame, if any.
    pub fn first_timestamp(&self) -> Option<u64> {
        self.frames.borrow().first().map(|f| f.timestamp)
    }

    /// Timestamp of the newest frame, if any.
    pub fn last_timestamp(&self) -> Option<u64> {
        self.frames.borrow().last().map(|f| f.timestamp)
    }

    /// When a frame or the end was last written.
    pub fn last_write(&self) -> Instant {
        self.last_write.get()
    }

    /// Appends a frame at `now`; returns false (and changes nothing) once the group has ended.
    pub(crate) fn push(&self, frame: Frame, now: Instant) -> bool {
        if self.state.get() != GroupState::Open {
            return false;
        }
        self.bytes.set(self.bytes.get() + frame.payload.len());
        self.frames.borrow_mut().push(frame);
        self.last_write.set(now);
        true
    }

    /// Ends the group at `now`: `None` is a clean finish, `Some(code)` a reset.
    pub(crate) fn end(&self, code: Option<u64>, now: Instant) {
        if self.state.get() == GroupState::Open {
            self.state.set(match code {
                None => GroupState::Complete,
                Some(code) => GroupState::Aborted(code),
            });
            self.last_write.set(now);
        }
    }
}
