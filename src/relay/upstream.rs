//! The sessions of one shard that may carry publishers, and the requests an owner sends
//! them: subscribe to a track upstream, change what is wanted, unsubscribe.

use super::messages::SessionRef;
use crate::model::Demand;
use crate::notify::Notify;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// A request from the owner of a track to the publisher session that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamRequest {
    /// Open the track upstream; subscribe too once `demand` is known.
    Subscribe {
        owner: usize,
        track_id: u64,
        broadcast: String,
        track: String,
        demand: Option<Demand>,
    },
    Update {
        owner: usize,
        track_id: u64,
        demand: Demand,
    },
    Unsubscribe {
        owner: usize,
        track_id: u64,
    },
}

/// Where a publisher-facing session receives upstream requests.
pub struct UpstreamInbox {
    requests: RefCell<VecDeque<UpstreamRequest>>,
    notify: Rc<Notify>,
}

impl UpstreamInbox {
    /// Takes the next request.
    pub fn pop(&self) -> Option<UpstreamRequest> {
        self.requests.borrow_mut().pop_front()
    }

    fn push(&self, request: UpstreamRequest) {
        self.requests.borrow_mut().push_back(request);
        self.notify.notify();
    }
}

/// The inboxes of a shard's sessions, by session id.
#[derive(Default)]
pub struct SessionInboxes {
    inboxes: HashMap<u64, Rc<UpstreamInbox>>,
}

impl SessionInboxes {
    /// Registers session `id` on `shard`; `notify` wakes it when a request arrives.
    pub fn register(
        &mut self,
        shard: usize,
        id: u64,
        notify: Rc<Notify>,
    ) -> (SessionRef, Rc<UpstreamInbox>) {
        let inbox = Rc::new(UpstreamInbox {
            requests: RefCell::new(VecDeque::new()),
            notify,
        });
        self.inboxes.insert(id, inbox.clone());
        (SessionRef { shard, id }, inbox)
    }

    pub fn unregister(&mut self, id: u64) {
        self.inboxes.remove(&id);
    }

    /// Hands `request` to session `id`; gives it back when the session is gone.
    pub fn deliver(&self, id: u64, request: UpstreamRequest) -> Result<(), UpstreamRequest> {
        match self.inboxes.get(&id) {
            Some(inbox) => {
                inbox.push(request);
                Ok(())
            }
            None => Err(request),
        }
    }

    /// How many sessions are registered.
    pub fn len(&self) -> usize {
        self.inboxes.len()
    }
}
