//! The table of peer streams the HTTP/3 layer is still reading the first bytes of, or has
//! handed to moq-lite, the queue of streams moq-lite should read next, and the bytes early
//! streams sent before the session existed. What a peer can make it hold before then is
//! bounded: [`MAX_EARLY_STREAMS`] streams with [`MAX_EARLY_BYTES`] between them, and
//! [`MAX_PENDING_HEADERS`] streams whose first bytes are incomplete.

use std::collections::{HashMap, HashSet, VecDeque};

/// The most peer streams whose headers we hold before the session is accepted.
pub const MAX_EARLY_STREAMS: usize = 64;
/// The most bytes the early streams of a session hold between them until it is accepted.
pub const MAX_EARLY_BYTES: usize = 64 * 1024;
/// The most peer streams whose type or session id is incomplete at once.
pub const MAX_PENDING_HEADERS: usize = 64;

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
    /// accepted, with the bytes it sent so far (read out of QUIC, so they count against
    /// [`MAX_EARLY_BYTES`]) and whether it ended.
    Early {
        session: u64,
        held: Vec<u8>,
        fin: bool,
    },
    /// A WebTransport stream moq-lite owns.
    Ready,
}

impl Peer {
    /// Whether the stream's type or session id is still incomplete.
    pub(super) fn is_pending_header(&self) -> bool {
        matches!(
            self,
            Peer::UniType(_) | Peer::UniSession(_) | Peer::BidiType(_) | Peer::BidiSession(_)
        )
    }

    /// Bytes of an early stream held for moq-lite.
    fn early_bytes(&self) -> usize {
        match self {
            Peer::Early { held, .. } => held.len(),
            _ => 0,
        }
    }
}

/// Bytes an early stream sent before the session was accepted, handed to moq-lite first.
#[derive(Debug)]
struct Held {
    bytes: Vec<u8>,
    read: usize,
    fin: bool,
}

/// Peer streams by id, and the streams moq-lite should read, in order. The counts the demux
/// asks about (early streams and their bytes, incomplete headers, whether a control stream
/// came) are kept as the table changes, so no question costs a scan of the streams.
#[derive(Debug, Default)]
pub(super) struct Peers {
    streams: HashMap<u64, Peer>,
    /// Entries of `streams` that are [`Peer::Early`], and the bytes they hold.
    early: usize,
    early_bytes: usize,
    /// Entries of `streams` whose header is incomplete.
    pending: usize,
    /// Whether the peer opened its control stream (RFC 9114 allows one per connection).
    control_seen: bool,
    /// Whether the peer opened its QPACK encoder and decoder streams (one each, RFC 9204).
    qpack_seen: [bool; 2],
    /// Early bytes of released streams that moq-lite has not read yet.
    held: HashMap<u64, Held>,
    readable: VecDeque<u64>,
    /// The ids in `readable`, so a stream is queued once without searching the queue.
    queued: HashSet<u64>,
}

impl Peers {
    /// Removes and returns stream `id`'s state, to run it forward.
    pub(super) fn take(&mut self, id: u64) -> Option<Peer> {
        let peer = self.streams.remove(&id)?;
        self.uncount(&peer);
        Some(peer)
    }

    /// Stores stream `id`'s state.
    pub(super) fn insert(&mut self, id: u64, peer: Peer) {
        if matches!(peer, Peer::Early { .. }) {
            self.early += 1;
        }
        self.early_bytes += peer.early_bytes();
        self.pending += usize::from(peer.is_pending_header());
        if matches!(peer, Peer::Control { .. }) {
            self.control_seen = true;
        }
        if let Some(old) = self.streams.insert(id, peer) {
            self.uncount(&old);
        }
    }

    fn uncount(&mut self, peer: &Peer) {
        if matches!(peer, Peer::Early { .. }) {
            self.early -= 1;
        }
        self.early_bytes -= peer.early_bytes();
        self.pending -= usize::from(peer.is_pending_header());
    }

    /// Forgets stream `id` (it ended, or moq-lite is done reading it).
    pub(super) fn forget(&mut self, id: u64) {
        self.take(id);
        self.held.remove(&id);
    }

    /// Bytes the early streams in the table hold between them.
    pub(super) fn early_bytes(&self) -> usize {
        self.early_bytes
    }

    /// Streams in the table whose header is incomplete.
    pub(super) fn pending_headers(&self) -> usize {
        self.pending
    }

    /// Records a QPACK stream of type `ty` (0x02 encoder, 0x03 decoder); whether one of
    /// that type was already open.
    pub(super) fn qpack_opened(&mut self, ty: u64) -> bool {
        let seen = &mut self.qpack_seen[usize::from(ty == super::stream_type::QPACK_DECODER)];
        std::mem::replace(seen, true)
    }

    /// Copies early bytes of stream `id` into `buf`: `None` if it holds none, else the count
    /// and whether they end the stream.
    pub(super) fn read_held(&mut self, id: u64, buf: &mut [u8]) -> Option<(usize, bool)> {
        let held = self.held.get_mut(&id)?;
        let n = buf.len().min(held.bytes.len() - held.read);
        buf[..n].copy_from_slice(&held.bytes[held.read..held.read + n]);
        held.read += n;
        let done = held.read == held.bytes.len();
        let fin = done && held.fin;
        if done {
            self.held.remove(&id);
        }
        Some((n, fin))
    }

    /// Whether stream `id` is a WebTransport stream moq-lite owns.
    pub(super) fn is_ready(&self, id: u64) -> bool {
        matches!(self.streams.get(&id), Some(Peer::Ready))
    }

    /// Whether the peer's control stream was opened (it may be running forward right now,
    /// out of the table).
    pub(super) fn has_control(&self) -> bool {
        self.control_seen
    }

    /// Records that the peer opened its control stream.
    pub(super) fn control_opened(&mut self) {
        self.control_seen = true;
    }

    /// How many WebTransport streams wait for the session to be accepted.
    pub(super) fn early_count(&self) -> usize {
        self.early
    }

    /// The session `session` is established: its early streams become ready and readable,
    /// in id order; returns the early streams of other sessions (forgotten), to refuse.
    /// Runs once per session, over a table the early limit keeps small.
    pub(super) fn release_early(&mut self, session: u64) -> Vec<u64> {
        let mut early: Vec<(u64, u64)> = self
            .streams
            .iter()
            .filter_map(|(&sid, p)| match p {
                Peer::Early { session, .. } => Some((sid, *session)),
                _ => None,
            })
            .collect();
        early.sort_unstable();
        let mut refused = Vec::new();
        for (sid, of) in early {
            let Some(Peer::Early { held, fin, .. }) = self.take(sid) else {
                continue;
            };
            if of == session {
                if !held.is_empty() || fin {
                    let held = Held {
                        bytes: held,
                        read: 0,
                        fin,
                    };
                    self.held.insert(sid, held);
                }
                self.insert(sid, Peer::Ready);
                self.mark_readable(sid);
            } else {
                refused.push(sid);
            }
        }
        refused
    }

    /// Queues stream `id` for moq-lite to read, once.
    pub(super) fn mark_readable(&mut self, id: u64) {
        if self.queued.insert(id) {
            self.readable.push_back(id);
        }
    }

    /// The next stream moq-lite should read.
    pub(super) fn pop_readable(&mut self) -> Option<u64> {
        let id = self.readable.pop_front()?;
        self.queued.remove(&id);
        Some(id)
    }

    /// Streams queued for moq-lite to read.
    #[cfg(test)]
    pub(super) fn readable_len(&self) -> usize {
        self.readable.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_the_table_without_scanning_it() {
        let mut peers = Peers::default();
        // Ten thousand streams moq-lite owns, each marked readable three times over.
        for id in 0..10_000u64 {
            peers.insert(id * 4, Peer::Ready);
        }
        for _ in 0..3 {
            for id in 0..10_000u64 {
                peers.mark_readable(id * 4);
            }
        }
        assert_eq!(peers.readable_len(), 10_000);
        for id in 0..10_000u64 {
            assert_eq!(peers.pop_readable(), Some(id * 4));
        }
        assert_eq!(peers.pop_readable(), None);
        // Once popped, a stream may be queued again.
        peers.mark_readable(0);
        assert_eq!(peers.pop_readable(), Some(0));

        // Early streams are counted as they come and go, whatever else the table holds.
        let early = |n: usize| Peer::Early {
            session: 0,
            held: vec![7; n],
            fin: false,
        };
        for id in 0..5u64 {
            peers.insert(100_000 + id * 4 + 2, early(10));
        }
        assert_eq!((peers.early_count(), peers.early_bytes()), (5, 50));
        assert!(matches!(peers.take(100_002), Some(Peer::Early { .. })));
        peers.forget(100_006);
        peers.insert(100_010, Peer::Ready);
        assert_eq!((peers.early_count(), peers.early_bytes()), (2, 20));
        assert_eq!(peers.release_early(0), Vec::<u64>::new());
        assert_eq!((peers.early_count(), peers.early_bytes()), (0, 0));
        // The released stream's early bytes are read first, then it reads from QUIC.
        while peers.pop_readable().is_some() {}
        let mut buf = [0u8; 6];
        assert_eq!(peers.read_held(100_014, &mut buf), Some((6, false)));
        assert_eq!(peers.read_held(100_014, &mut buf), Some((4, false)));
        assert_eq!(peers.read_held(100_014, &mut buf), None);

        peers.insert(1, Peer::UniType(vec![0x40]));
        peers.insert(5, Peer::BidiSession(vec![]));
        assert_eq!(peers.pending_headers(), 2);
        peers.insert(1, Peer::Discard);
        assert_eq!(peers.pending_headers(), 1);

        assert!(!peers.qpack_opened(0x02));
        assert!(!peers.qpack_opened(0x03));
        assert!(peers.qpack_opened(0x02));

        assert!(!peers.has_control());
        peers.control_opened();
        assert!(peers.has_control());
    }
}
