//! The table of peer streams the HTTP/3 layer is still reading the first bytes of, or has
//! handed to moq-lite, and the queue of streams moq-lite should read next.

use std::collections::{HashMap, VecDeque};

/// The most peer streams whose headers we hold before the session is accepted.
pub const MAX_EARLY_STREAMS: usize = 64;

/// Where we are in a peer stream's first bytes.
#[derive(Debug)]
pub(super) enum Peer {
    UniType(Vec<u8>),
    UniSession(Vec<u8>),
    /// The peer's control stream: unparsed bytes, whether SETTINGS came, and how many bytes
    /// of a large skipped frame are still to drop.
    Control {
        buf: Vec<u8>,
        settings: bool,
        skip: u64,
    },
    Discard,
    BidiType(Vec<u8>),
    BidiSession(Vec<u8>),
    Connect {
        buf: Vec<u8>,
        capsules: Vec<u8>,
    },
    /// A WebTransport stream (of this session id) that arrived before the session was
    /// accepted.
    Early(u64),
    /// A WebTransport stream moq-lite owns.
    Ready,
}

/// Peer streams by id, and the streams moq-lite should read, in order.
#[derive(Debug, Default)]
pub(super) struct Peers {
    streams: HashMap<u64, Peer>,
    readable: VecDeque<u64>,
}

impl Peers {
    /// Removes and returns stream `id`'s state, to run it forward.
    pub(super) fn take(&mut self, id: u64) -> Option<Peer> {
        self.streams.remove(&id)
    }

    /// Stores stream `id`'s state.
    pub(super) fn insert(&mut self, id: u64, peer: Peer) {
        self.streams.insert(id, peer);
    }

    /// Forgets stream `id` (it ended, or moq-lite is done reading it).
    pub(super) fn forget(&mut self, id: u64) {
        self.streams.remove(&id);
    }

    /// Whether stream `id` is a WebTransport stream moq-lite owns.
    pub(super) fn is_ready(&self, id: u64) -> bool {
        matches!(self.streams.get(&id), Some(Peer::Ready))
    }

    /// Whether the peer's control stream is known.
    pub(super) fn has_control(&self) -> bool {
        self.streams
            .values()
            .any(|p| matches!(p, Peer::Control { .. }))
    }

    /// How many WebTransport streams wait for the session to be accepted.
    pub(super) fn early_count(&self) -> usize {
        self.streams
            .values()
            .filter(|p| matches!(p, Peer::Early(_)))
            .count()
    }

    /// The session `session` is established: its early streams become ready and readable,
    /// in id order; returns the early streams of other sessions (forgotten), to refuse.
    pub(super) fn release_early(&mut self, session: u64) -> Vec<u64> {
        let mut early: Vec<(u64, u64)> = self
            .streams
            .iter()
            .filter_map(|(&sid, p)| match p {
                Peer::Early(session) => Some((sid, *session)),
                _ => None,
            })
            .collect();
        early.sort_unstable();
        let mut refused = Vec::new();
        for (sid, of) in early {
            if of == session {
                self.streams.insert(sid, Peer::Ready);
                self.mark_readable(sid);
            } else {
                self.streams.remove(&sid);
                refused.push(sid);
            }
        }
        refused
    }

    /// Queues stream `id` for moq-lite to read, once.
    pub(super) fn mark_readable(&mut self, id: u64) {
        if !self.readable.contains(&id) {
            self.readable.push_back(id);
        }
    }

    /// The next stream moq-lite should read.
    pub(super) fn pop_readable(&mut self) -> Option<u64> {
        self.readable.pop_front()
    }
}
