//! An in-memory connection: two [`Streams`] ends over shared buffers, with QUIC's stream
//! numbering, a per-stream window (a sender is `Blocked` while the reader leaves that many
//! bytes unread), resets, STOP_SENDING and close. Side 0 is the client, side 1 the relay.

use crate::transport::{StreamError, StreamId, Streams};
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

/// One direction of a stream: what its sender wrote and the reader has not taken.
#[derive(Default)]
struct Direction {
    unread: VecDeque<u8>,
    fin: bool,
    reset: Option<u64>,
    stopped: Option<u64>,
}

#[derive(Default)]
struct State {
    /// Per stream, the direction written by side 0 and by side 1.
    streams: BTreeMap<StreamId, [Direction; 2]>,
    /// Streams each side has something to read on, in the order they became readable.
    readable: [VecDeque<StreamId>; 2],
    next_bidi: [u64; 2],
    next_uni: [u64; 2],
    closed: Option<(u64, String)>,
    /// Bumped by every change, so a driver can tell when nothing moves any more.
    activity: u64,
}

/// The shared state of one connection.
pub struct Link {
    state: RefCell<State>,
    window: usize,
}

impl Link {
    /// A connection whose streams hold at most `window` unread bytes per direction.
    pub fn new(window: usize) -> Rc<Self> {
        let state = State {
            next_bidi: [0, 1],
            next_uni: [2, 3],
            ..State::default()
        };
        Rc::new(Self {
            state: RefCell::new(state),
            window,
        })
    }

    /// The end for `side` (0 client, 1 relay).
    pub fn end(self: &Rc<Self>, side: usize) -> LinkEnd {
        LinkEnd {
            link: self.clone(),
            side,
        }
    }

    /// A counter that changes whenever anything happens on the connection.
    pub fn activity(&self) -> u64 {
        self.state.borrow().activity
    }

    /// Closes the connection from outside (a lost peer).
    pub fn sever(&self) {
        let mut state = self.state.borrow_mut();
        state.closed.get_or_insert((0, "severed".into()));
        state.activity += 1;
    }
}

/// One side's view of a [`Link`].
pub struct LinkEnd {
    link: Rc<Link>,
    side: usize,
}

impl LinkEnd {
    fn peer(&self) -> usize {
        1 - self.side
    }

    /// The STOP_SENDING code the other side sent for our half of stream `id`, if it did.
    pub fn stopped(&self, id: StreamId) -> Option<u64> {
        let state = self.link.state.borrow();
        state.streams.get(&id)?[self.side].stopped
    }

    fn mark_readable(state: &mut State, side: usize, id: StreamId) {
        if !state.readable[side].contains(&id) {
            state.readable[side].push_back(id);
        }
    }
}

impl Streams for LinkEnd {
    fn open_uni(&mut self) -> Result<StreamId, StreamError> {
        let mut state = self.link.state.borrow_mut();
        let id = state.next_uni[self.side];
        state.next_uni[self.side] += 4;
        state.streams.entry(id).or_default();
        Ok(id)
    }

    fn open_bidi(&mut self) -> Result<StreamId, StreamError> {
        let mut state = self.link.state.borrow_mut();
        let id = state.next_bidi[self.side];
        state.next_bidi[self.side] += 4;
        state.streams.entry(id).or_default();
        Ok(id)
    }

    fn send(&mut self, id: StreamId, data: &[u8], fin: bool) -> Result<usize, StreamError> {
        let (side, peer, window) = (self.side, self.peer(), self.link.window);
        let mut state = self.link.state.borrow_mut();
        if state.closed.is_some() {
            return Err(StreamError::Gone);
        }
        let dir = &mut state.streams.entry(id).or_default()[side];
        if let Some(code) = dir.stopped {
            return Err(StreamError::Stopped(code));
        }
        if dir.fin || dir.reset.is_some() {
            return Err(StreamError::Gone);
        }
        let n = window.saturating_sub(dir.unread.len()).min(data.len());
        if n == 0 && !data.is_empty() {
            return Err(StreamError::Blocked);
        }
        dir.unread.extend(&data[..n]);
        dir.fin = fin && n == data.len();
        state.activity += 1;
        Self::mark_readable(&mut state, peer, id);
        Ok(n)
    }

    fn recv(&mut self, id: StreamId, buf: &mut [u8]) -> Result<(usize, bool), StreamError> {
        let peer = self.peer();
        let mut state = self.link.state.borrow_mut();
        let Some(dirs) = state.streams.get_mut(&id) else {
            return Err(StreamError::Gone);
        };
        let dir = &mut dirs[peer];
        if let Some(code) = dir.reset {
            return Err(StreamError::Reset(code));
        }
        let n = dir.unread.len().min(buf.len());
        for (slot, byte) in buf.iter_mut().zip(dir.unread.drain(..n)) {
            *slot = byte;
        }
        let fin = dir.fin && dir.unread.is_empty();
        if n > 0 {
            state.activity += 1;
        }
        Ok((n, fin))
    }

    fn reset(&mut self, id: StreamId, code: u64) {
        let (side, peer) = (self.side, self.peer());
        let mut state = self.link.state.borrow_mut();
        let dir = &mut state.streams.entry(id).or_default()[side];
        if dir.reset.is_some() || (dir.fin && dir.unread.is_empty()) {
            return;
        }
        dir.reset = Some(code);
        dir.unread.clear();
        state.activity += 1;
        Self::mark_readable(&mut state, peer, id);
    }

    fn stop(&mut self, id: StreamId, code: u64) {
        let peer = self.peer();
        let mut state = self.link.state.borrow_mut();
        // STOP_SENDING: the peer's transport answers with a reset of its sending side.
        let dir = &mut state.streams.entry(id).or_default()[peer];
        if dir.stopped.is_some() {
            return;
        }
        dir.stopped = Some(code);
        if dir.reset.is_none() && !dir.fin {
            dir.reset = Some(code);
            dir.unread.clear();
        }
        state.activity += 1;
    }

    fn set_urgency(&mut self, _: StreamId, _: u8) {}

    fn next_readable(&mut self) -> Option<StreamId> {
        self.link.state.borrow_mut().readable[self.side].pop_front()
    }

    fn close(&mut self, code: u64, reason: &str) {
        let mut state = self.link.state.borrow_mut();
        state.closed.get_or_insert((code, reason.to_string()));
        state.activity += 1;
    }

    fn is_peer_initiated(&self, id: StreamId) -> bool {
        (id & 1) as usize != self.side
    }

    fn is_bidi(&self, id: StreamId) -> bool {
        id & 2 == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_flow_within_the_window_and_resets_reach_the_reader() {
        let link = Link::new(4);
        let (mut client, mut relay) = (link.end(0), link.end(1));
        let id = client.open_uni().unwrap();
        assert_eq!(id, 2);
        assert_eq!(client.send(id, b"abcdef", false), Ok(4));
        assert_eq!(client.send(id, b"ef", true), Err(StreamError::Blocked));
        assert_eq!(relay.next_readable(), Some(id));
        assert!(relay.is_peer_initiated(id) && !relay.is_bidi(id));
        let mut buf = [0u8; 8];
        assert_eq!(relay.recv(id, &mut buf), Ok((4, false)));
        assert_eq!(client.send(id, b"ef", true), Ok(2));
        assert_eq!(relay.recv(id, &mut buf), Ok((2, true)));
        let other = relay.open_uni().unwrap();
        assert_eq!(other, 3);
        relay.send(other, b"x", false).unwrap();
        relay.reset(other, 7);
        assert_eq!(client.next_readable(), Some(other));
        assert_eq!(client.recv(other, &mut buf), Err(StreamError::Reset(7)));
        client.stop(other, 9);
        assert_eq!(relay.send(other, b"y", false), Err(StreamError::Stopped(9)));
    }
}
