//! The track entries of one shard: the owner's authoritative copy or a replica, what each
//! entry's users want together, and the lookups by name and by id.
//!
//! Interest flows towards the owner (local users, then one `Interest` per replica shard,
//! then one upstream subscription), each step folding its users' [`Demand`]s into one;
//! events flow back (upstream session, owner, replicas). This file keeps the state; the
//! shard (`shard.rs`) sends the messages.

use super::messages::SessionRef;
use crate::model::{Demand, Track, TrackEnd, TrackEvent};
use crate::wire::error_code::stream as stream_code;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::time::Instant;

/// A track's key: (broadcast path, track name).
pub type TrackKey = (String, String);

/// A replica shard's interest in an owner's track.
pub struct Remote {
    pub shard: usize,
    pub replica: u64,
    pub demand: Option<Demand>,
}

/// Owner-only state of a track entry.
#[derive(Default)]
pub struct OwnerState {
    /// Replica shards, their entry ids and their aggregated demand.
    pub remotes: RefCell<Vec<Remote>>,
    /// The publisher session currently subscribed upstream.
    pub upstream: Cell<Option<SessionRef>>,
}

/// Whether an entry is authoritative here or fed by the owner.
pub enum EntryKind {
    Owner(OwnerState),
    Replica { owner: usize },
}

/// One track on this shard and its users.
pub struct TrackEntry {
    pub id: u64,
    pub key: TrackKey,
    pub track: Rc<Track>,
    /// Open handles on this shard.
    pub users: Cell<usize>,
    /// What each local user (by handle id) wants; TRACK-only users want nothing.
    demands: RefCell<Vec<(u64, Demand)>>,
    /// The aggregate last told to the owner (replicas) or upstream (owners).
    pub announced_demand: Cell<Option<Demand>>,
    pub kind: EntryKind,
}

impl TrackEntry {
    pub fn new(id: u64, key: TrackKey, track: Rc<Track>, kind: EntryKind) -> Self {
        Self {
            id,
            key,
            track,
            users: Cell::new(0),
            demands: RefCell::new(Vec::new()),
            announced_demand: Cell::new(None),
            kind,
        }
    }

    /// Everything wanted of this track here: local users, and for owners every replica.
    pub fn demand(&self) -> Option<Demand> {
        let local = self
            .demands
            .borrow()
            .iter()
            .map(|(_, d)| *d)
            .collect::<Vec<_>>();
        let remote = match &self.kind {
            EntryKind::Owner(state) => state
                .remotes
                .borrow()
                .iter()
                .filter_map(|r| r.demand)
                .collect(),
            EntryKind::Replica { .. } => Vec::new(),
        };
        Demand::union_all(local.into_iter().chain(remote))
    }

    /// Records what local user `user` wants.
    pub fn set_user_demand(&self, user: u64, demand: Demand) {
        let mut demands = self.demands.borrow_mut();
        match demands.iter_mut().find(|(id, _)| *id == user) {
            Some(slot) => slot.1 = demand,
            None => demands.push((user, demand)),
        }
    }

    /// Local user `user` is gone; returns how many users are left.
    pub fn remove_user(&self, user: u64) -> usize {
        self.demands.borrow_mut().retain(|(id, _)| *id != user);
        let users = self.users.get().saturating_sub(1);
        self.users.set(users);
        users
    }

    /// Ends the track the way a vanished publisher's tracks end: unfinished groups are
    /// reset with Cancel, then the track finishes after its last group.
    pub fn end_cleanly(&self, now: Instant) {
        self.track.abort_open_groups(stream_code::CANCEL, now);
        let next = self.track.next_sequence();
        self.track
            .apply(TrackEvent::End(TrackEnd::Finished { next }), now);
    }
}

/// Every track entry of a shard, by key and by id.
#[derive(Default)]
pub struct TrackTable {
    by_key: HashMap<TrackKey, Rc<TrackEntry>>,
    by_id: HashMap<u64, Weak<TrackEntry>>,
}

impl TrackTable {
    pub fn get(&self, key: &TrackKey) -> Option<Rc<TrackEntry>> {
        self.by_key.get(key).cloned()
    }

    /// The entry with id `id`, while anyone (the table or a pending event) still holds it.
    pub fn by_id(&self, id: u64) -> Option<Rc<TrackEntry>> {
        self.by_id.get(&id).and_then(Weak::upgrade)
    }

    pub fn insert(&mut self, entry: Rc<TrackEntry>) {
        self.by_id.insert(entry.id, Rc::downgrade(&entry));
        self.by_key.insert(entry.key.clone(), entry);
    }

    /// Removes `entry` (and not a newer entry under the same key).
    pub fn forget(&mut self, entry: &Rc<TrackEntry>) {
        if self
            .by_key
            .get(&entry.key)
            .is_some_and(|e| Rc::ptr_eq(e, entry))
        {
            self.by_key.remove(&entry.key);
        }
        self.by_id.remove(&entry.id);
    }

    /// Every entry of `broadcast`; `owned_only` keeps the authoritative ones.
    pub fn of_broadcast(&self, broadcast: &str, owned_only: bool) -> Vec<Rc<TrackEntry>> {
        self.by_key
            .values()
            .filter(|e| e.key.0 == broadcast)
            .filter(|e| !owned_only || matches!(e.kind, EntryKind::Owner(_)))
            .cloned()
            .collect()
    }

    /// How many entries the shard holds.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }
}
