//! Credit accounting: the connection's data credit both ways (MAX_DATA) and the stream
//! credit (MAX_STREAMS) per direction. Each window is widened once half of it is used.
//! Per-stream data credit lives with the stream (`stream.rs`).

use std::ops::Range;

use super::error::{code, Error};

/// Connection-level data credit: what we may send, and what the peer may send us.
#[derive(Debug)]
pub(super) struct DataCredit {
    /// Our receive window (bytes buffered across all streams).
    window: u64,
    send_total: u64,
    peer_max_data: u64,
    recv_total: u64,
    recv_consumed: u64,
    local_max_data: u64,
}

impl DataCredit {
    pub(super) fn new(window: u64) -> Self {
        DataCredit {
            window,
            send_total: 0,
            peer_max_data: 0,
            recv_total: 0,
            recv_consumed: 0,
            local_max_data: window,
        }
    }

    /// The peer's initial credit, from its transport parameters.
    pub(super) fn set_peer_max(&mut self, max: u64) {
        self.peer_max_data = max;
    }

    /// MAX_DATA from the peer: credit only grows.
    pub(super) fn raise_peer_max(&mut self, max: u64) {
        self.peer_max_data = self.peer_max_data.max(max);
    }

    /// The peer's limit on what we send, as DATA_BLOCKED reports it.
    pub(super) fn peer_max(&self) -> u64 {
        self.peer_max_data
    }

    /// How many more bytes we may send.
    pub(super) fn send_room(&self) -> u64 {
        self.peer_max_data - self.send_total
    }

    /// We framed `n` more bytes of stream data.
    pub(super) fn sent(&mut self, n: u64) {
        self.send_total += n;
    }

    /// How many more bytes the peer may send.
    pub(super) fn recv_room(&self) -> u64 {
        self.local_max_data - self.recv_total
    }

    /// The peer's highest offsets grew by `n` bytes in all.
    pub(super) fn received(&mut self, n: u64) {
        self.recv_total += n;
    }

    /// Bytes left the receive buffers; returns the new MAX_DATA to advertise when half the
    /// window is used.
    pub(super) fn consume(&mut self, n: u64) -> Option<u64> {
        self.recv_consumed += n;
        if self.local_max_data - self.recv_consumed < self.window / 2 {
            self.local_max_data = self.recv_consumed + self.window;
            return Some(self.local_max_data);
        }
        None
    }
}

/// Stream credit per direction (index 0 bidi, 1 uni): streams we may open and streams the
/// peer may open.
#[derive(Debug)]
pub(super) struct StreamCredit {
    /// The counts we allow the peer at once, from our config.
    initial: [u64; 2],
    next_local: [u64; 2],
    peer_max_streams: [u64; 2],
    next_peer: [u64; 2],
    local_max_streams: [u64; 2],
    peer_retired: [u64; 2],
}

impl StreamCredit {
    pub(super) fn new(initial: [u64; 2]) -> Self {
        StreamCredit {
            initial,
            next_local: [0; 2],
            peer_max_streams: [0; 2],
            next_peer: [0; 2],
            local_max_streams: initial,
            peer_retired: [0; 2],
        }
    }

    /// The peer's initial stream credit, from its transport parameters.
    pub(super) fn set_peer_max(&mut self, max: [u64; 2]) {
        self.peer_max_streams = max;
    }

    /// MAX_STREAMS from the peer: credit only grows.
    pub(super) fn raise_peer_max(&mut self, d: usize, max: u64) {
        self.peer_max_streams[d] = self.peer_max_streams[d].max(max);
    }

    /// Takes the index of our next stream in direction `d`, or returns the peer's limit
    /// (for STREAMS_BLOCKED) if none is left.
    pub(super) fn open_local(&mut self, d: usize) -> Result<u64, u64> {
        let index = self.next_local[d];
        if index >= self.peer_max_streams[d] {
            return Err(self.peer_max_streams[d]);
        }
        self.next_local[d] += 1;
        Ok(index)
    }

    /// Whether we opened our stream `index` in direction `d`.
    pub(super) fn opened_local(&self, d: usize, index: u64) -> bool {
        index < self.next_local[d]
    }

    /// The peer names its stream `index` in direction `d`: the indices this opens (it and
    /// any lower ones not yet seen), or an error past the credit we gave.
    pub(super) fn open_peer(&mut self, d: usize, index: u64) -> Result<Range<u64>, Error> {
        if index < self.next_peer[d] {
            return Ok(0..0);
        }
        if index >= self.local_max_streams[d] {
            return Err(Error::new(
                code::STREAM_LIMIT_ERROR,
                "stream limit exceeded",
            ));
        }
        let opened = self.next_peer[d]..index + 1;
        self.next_peer[d] = index + 1;
        Ok(opened)
    }

    /// A peer stream in direction `d` is over; returns the new MAX_STREAMS to advertise
    /// once half the initial credit came back.
    pub(super) fn retire_peer(&mut self, d: usize) -> Option<u64> {
        self.peer_retired[d] += 1;
        let initial = self.initial[d];
        let target = self.peer_retired[d] + initial;
        if target - self.local_max_streams[d] >= (initial / 2).max(1) {
            self.local_max_streams[d] = target;
            return Some(target);
        }
        None
    }
}
