//! Per-peer send queues in front of the bounded mesh channels.
//!
//! A shard never blocks its event loop on a full channel: a message that does not fit is
//! queued here and a flusher task waits for room. The queue itself is bounded; a message
//! refused beyond the bound is counted and dropped (its sender sees `false`).

use crate::notify::Notify;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

/// Queues of messages for each peer shard, drained by one flusher task per peer.
pub struct Outbox<T> {
    queues: Vec<RefCell<VecDeque<T>>>,
    wake: Vec<Rc<Notify>>,
    /// Set while the flusher holds a message it took: later ones must queue behind it.
    in_flight: Vec<Cell<bool>>,
    limit: usize,
    dropped: Cell<u64>,
}

impl<T> Outbox<T> {
    pub fn new(peers: usize, limit: usize) -> Self {
        Self {
            queues: (0..peers).map(|_| RefCell::new(VecDeque::new())).collect(),
            wake: (0..peers).map(|_| Notify::new()).collect(),
            in_flight: (0..peers).map(|_| Cell::new(false)).collect(),
            limit,
            dropped: Cell::new(0),
        }
    }

    /// Sends `msg` to `to` through `try_send` if nothing is queued ahead of it, else queues
    /// it. Returns false when the queue is full and the message was dropped.
    pub fn push(&self, to: usize, msg: T, try_send: impl FnOnce(T) -> Result<(), T>) -> bool {
        let mut queue = self.queues[to].borrow_mut();
        let msg = if queue.is_empty() && !self.in_flight[to].get() {
            match try_send(msg) {
                Ok(()) => return true,
                Err(msg) => msg,
            }
        } else {
            msg
        };
        if queue.len() >= self.limit {
            self.dropped.set(self.dropped.get() + 1);
            return false;
        }
        queue.push_back(msg);
        self.wake[to].notify();
        true
    }

    /// Takes the oldest queued message for `to`, for the flusher to send; until
    /// [`Self::sent`], newer messages queue behind it.
    pub fn take(&self, to: usize) -> Option<T> {
        let msg = self.queues[to].borrow_mut().pop_front();
        self.in_flight[to].set(msg.is_some());
        msg
    }

    /// The flusher finished sending what it took.
    pub fn sent(&self, to: usize) {
        self.in_flight[to].set(false);
    }

    /// The flusher for `to` waits on this.
    pub fn wake(&self, to: usize) -> Rc<Notify> {
        self.wake[to].clone()
    }

    /// Messages dropped because a queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }
}
