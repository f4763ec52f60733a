//! Per-peer send queues in front of the bounded mesh lanes.
//!
//! A shard never blocks its event loop on a full lane: a message that does not fit is queued
//! here, in order, and a flusher task per peer waits for room and sends it. Messages that find
//! their queue empty go straight to the lane. This queue never drops anything; what may be
//! dropped, and how a drop stays visible, is the caller's policy (`data_outbox.rs` for media,
//! admission of new requests for control: see `RelayShard::admit`).

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
}

impl<T> Outbox<T> {
    pub fn new(peers: usize) -> Self {
        Self {
            queues: (0..peers).map(|_| RefCell::new(VecDeque::new())).collect(),
            wake: (0..peers).map(|_| Notify::new()).collect(),
            in_flight: (0..peers).map(|_| Cell::new(false)).collect(),
        }
    }

    /// Sends `msg` to `to` through `try_send` if nothing is queued ahead of it, else queues
    /// it behind the others.
    pub fn push(&self, to: usize, msg: T, try_send: impl FnOnce(T) -> Result<(), T>) {
        let mut queue = self.queues[to].borrow_mut();
        let msg = if queue.is_empty() && !self.in_flight[to].get() {
            match try_send(msg) {
                Ok(()) => return,
                Err(msg) => msg,
            }
        } else {
            msg
        };
        queue.push_back(msg);
        self.wake[to].notify();
    }

    /// Messages for `to` waiting for room in the lane (the one the flusher holds included).
    pub fn backlog(&self, to: usize) -> usize {
        self.queues[to].borrow().len() + usize::from(self.in_flight[to].get())
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_queue_in_order_behind_a_full_lane_and_the_one_in_flight() {
        let outbox = Outbox::new(2);
        let mut lane = Vec::new();
        outbox.push(1, 1, |m| {
            lane.push(m);
            Ok(())
        });
        outbox.push(1, 2, Err);
        assert_eq!(outbox.backlog(1), 1);
        outbox.push(1, 3, |_| unreachable!("must queue behind 2"));
        assert_eq!(outbox.take(1), Some(2));
        outbox.push(1, 4, |_| unreachable!("2 is still in flight"));
        assert_eq!(outbox.backlog(1), 3);
        outbox.sent(1);
        assert_eq!(outbox.take(1), Some(3));
        outbox.sent(1);
        assert_eq!(outbox.take(1), Some(4));
        outbox.sent(1);
        assert_eq!(outbox.take(1), None);
        assert_eq!(lane, [1]);
        assert_eq!(outbox.backlog(0), 0);
    }
}
