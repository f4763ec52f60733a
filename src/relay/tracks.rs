//! Track entries on a shard: the owner's authoritative copy or a replica, who uses them,
//! and how events reach them.
//!
//! Interest flows towards the owner (local users, then one `Interest` per replica shard,
//! then one upstream subscription), each step folding its users' [`Demand`]s into one;
//! events flow back (upstream session, owner, replicas).

use super::messages::{Control, Data, SessionRef};
use super::shard::RelayShard;
use crate::model::{Demand, Track, TrackEnd, TrackEvent};
use crate::wire::error_code::stream as stream_code;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// A replica shard's interest in an owner's track.
pub(super) struct Remote {
    pub shard: usize,
    pub replica: u64,
    pub demand: Option<Demand>,
}

/// Owner-only state of a track entry.
#[derive(Default)]
pub(super) struct OwnerState {
    /// Replica shards, their entry ids and their aggregated demand.
    pub remotes: RefCell<Vec<Remote>>,
    /// The publisher session currently subscribed upstream.
    pub upstream: Cell<Option<SessionRef>>,
}

/// Whether an entry is authoritative here or fed by the owner.
pub(super) enum EntryKind {
    Owner(OwnerState),
    Replica { owner: usize },
}

/// One track on this shard and its users.
pub struct TrackEntry {
    pub(super) id: u64,
    pub(super) key: (String, String),
    pub(super) track: Rc<Track>,
    pub(super) users: Cell<usize>,
    /// What each local user (by handle id) wants; TRACK-only users want nothing.
    demands: RefCell<Vec<(u64, Demand)>>,
    /// The aggregate last told to the owner (replicas) or upstream (owners).
    announced_demand: Cell<Option<Demand>>,
    pub(super) kind: EntryKind,
}

impl TrackEntry {
    /// Everything wanted of this track here: local users, and for owners every replica.
    fn demand(&self) -> Option<Demand> {
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
}

/// A session's use of a track; dropping it releases the interest.
pub struct TrackHandle {
    shard: Rc<RelayShard>,
    entry: Rc<TrackEntry>,
    id: u64,
}

impl TrackHandle {
    pub fn track(&self) -> &Rc<Track> {
        &self.entry.track
    }

    /// Changes what this user wants (a SUBSCRIBE_UPDATE).
    pub fn set_demand(&self, demand: Demand) {
        {
            let mut demands = self.entry.demands.borrow_mut();
            match demands.iter_mut().find(|(id, _)| *id == self.id) {
                Some(slot) => slot.1 = demand,
                None => demands.push((self.id, demand)),
            }
        }
        self.shard.demand_changed(&self.entry);
    }
}

/// How long an unused track stays subscribed upstream, so a TRACK followed by a SUBSCRIBE,
/// or a viewer that reconnects, reuses it instead of subscribing twice.
const IDLE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

impl Drop for TrackHandle {
    fn drop(&mut self) {
        self.entry
            .demands
            .borrow_mut()
            .retain(|(id, _)| *id != self.id);
        let users = self.entry.users.get() - 1;
        self.entry.users.set(users);
        self.shard.demand_changed(&self.entry);
        if users == 0 {
            let (shard, entry) = (self.shard.clone(), self.entry.clone());
            glommio::spawn_local(async move {
                glommio::timer::sleep(IDLE_GRACE).await;
                shard.release(&entry);
            })
            .detach();
        }
    }
}

impl RelayShard {
    /// Uses track `name` of `broadcast` (absolute path), creating the local entry and
    /// registering interest with the owner when this is its first user here. `demand` is
    /// what a subscriber wants; `None` for users that only need the track's info.
    pub fn open_track(
        self: &Rc<Self>,
        broadcast: &str,
        name: &str,
        demand: Option<Demand>,
    ) -> TrackHandle {
        let key = (broadcast.to_string(), name.to_string());
        let id = self.next_id();
        let existing = self.tracks.borrow().get(&key).cloned();
        let entry = match existing {
            Some(entry) => entry,
            None => self.create_entry(key),
        };
        entry.users.set(entry.users.get() + 1);
        let handle = TrackHandle {
            shard: self.clone(),
            entry,
            id,
        };
        if let Some(demand) = demand {
            handle.set_demand(demand);
        }
        handle
    }

    fn create_entry(self: &Rc<Self>, key: (String, String)) -> Rc<TrackEntry> {
        let owner = self.owner_of(&key.0);
        let id = self.next_id();
        let track = Rc::new(Track::new(key.0.clone(), key.1.clone(), self.config.cache));
        let kind = if owner == self.id {
            EntryKind::Owner(OwnerState::default())
        } else {
            EntryKind::Replica { owner }
        };
        let entry = Rc::new(TrackEntry {
            id,
            key: key.clone(),
            track,
            users: Cell::new(0),
            demands: RefCell::new(Vec::new()),
            announced_demand: Cell::new(None),
            kind,
        });
        self.tracks.borrow_mut().insert(key.clone(), entry.clone());
        self.track_ids
            .borrow_mut()
            .insert(id, Rc::downgrade(&entry));
        match &entry.kind {
            EntryKind::Owner(_) => self.ensure_upstream(&entry),
            EntryKind::Replica { owner } => self.send_control(
                *owner,
                Control::Interest {
                    broadcast: key.0,
                    track: key.1,
                    from: self.id,
                    replica: id,
                    demand: None,
                },
            ),
        }
        entry
    }

    /// Tells the owner (from a replica) or the publisher (from the owner) when what this
    /// entry's users want together has changed.
    pub(super) fn demand_changed(&self, entry: &Rc<TrackEntry>) {
        let demand = entry.demand();
        if demand == entry.announced_demand.get() {
            return;
        }
        match &entry.kind {
            EntryKind::Replica { owner } => {
                entry.announced_demand.set(demand);
                self.send_control(
                    *owner,
                    Control::Demand {
                        broadcast: entry.key.0.clone(),
                        track: entry.key.1.clone(),
                        from: self.id,
                        replica: entry.id,
                        demand,
                    },
                );
            }
            EntryKind::Owner(state) => {
                // With nobody left wanting groups the subscription stays as it is until the
                // entry is released.
                let (Some(session), Some(demand)) = (state.upstream.get(), demand) else {
                    return;
                };
                entry.announced_demand.set(Some(demand));
                self.send_control(
                    session.shard,
                    Control::UpstreamUpdate {
                        session: session.id,
                        owner: self.id,
                        track_id: entry.id,
                        demand,
                    },
                );
            }
        }
    }

    /// Drops an entry nobody uses any more (locally, and for owners, remotely).
    pub(super) fn release(&self, entry: &Rc<TrackEntry>) {
        if entry.users.get() > 0 {
            return;
        }
        match &entry.kind {
            EntryKind::Owner(state) => {
                if !state.remotes.borrow().is_empty() {
                    return;
                }
                if let Some(session) = state.upstream.take() {
                    self.send_control(
                        session.shard,
                        Control::UpstreamUnsubscribe {
                            session: session.id,
                            owner: self.id,
                            track_id: entry.id,
                        },
                    );
                }
            }
            EntryKind::Replica { owner } => self.send_control(
                *owner,
                Control::Disinterest {
                    broadcast: entry.key.0.clone(),
                    track: entry.key.1.clone(),
                    from: self.id,
                    replica: entry.id,
                },
            ),
        }
        self.forget(entry);
    }

    fn forget(&self, entry: &Rc<TrackEntry>) {
        let mut tracks = self.tracks.borrow_mut();
        if tracks.get(&entry.key).is_some_and(|e| Rc::ptr_eq(e, entry)) {
            tracks.remove(&entry.key);
        }
        self.track_ids.borrow_mut().remove(&entry.id);
    }

    /// Owner: a replica shard wants this track's events.
    pub(super) fn on_interest(
        self: &Rc<Self>,
        broadcast: String,
        name: String,
        from: usize,
        replica: u64,
    ) {
        if !self.owned.borrow().contains_key(&broadcast) {
            let event = TrackEvent::End(TrackEnd::Failed(stream_code::UNROUTABLE));
            self.send_data(from, Data::Track { to: replica, event });
            return;
        }
        let key = (broadcast, name);
        let existing = self.tracks.borrow().get(&key).cloned();
        let entry = existing.unwrap_or_else(|| self.create_entry(key));
        let EntryKind::Owner(state) = &entry.kind else {
            return;
        };
        state.remotes.borrow_mut().push(Remote {
            shard: from,
            replica,
            demand: None,
        });
        for event in entry.track.snapshot() {
            self.send_data(from, Data::Track { to: replica, event });
        }
    }

    /// Owner: a replica shard's users now want `demand` together.
    pub(super) fn on_demand(
        &self,
        broadcast: &str,
        name: &str,
        from: usize,
        replica: u64,
        demand: Option<Demand>,
    ) {
        let key = (broadcast.to_string(), name.to_string());
        let Some(entry) = self.tracks.borrow().get(&key).cloned() else {
            return;
        };
        if let EntryKind::Owner(state) = &entry.kind {
            for remote in state.remotes.borrow_mut().iter_mut() {
                if (remote.shard, remote.replica) == (from, replica) {
                    remote.demand = demand;
                }
            }
        }
        self.demand_changed(&entry);
    }

    /// Owner: a replica shard no longer wants this track.
    pub(super) fn on_disinterest(&self, broadcast: &str, name: &str, from: usize, replica: u64) {
        let key = (broadcast.to_string(), name.to_string());
        let Some(entry) = self.tracks.borrow().get(&key).cloned() else {
            return;
        };
        if let EntryKind::Owner(state) = &entry.kind {
            state
                .remotes
                .borrow_mut()
                .retain(|r| (r.shard, r.replica) != (from, replica));
        }
        self.release(&entry);
        self.demand_changed(&entry);
    }

    /// An event for entry `id`: applied here, and by an owner forwarded to every replica.
    pub(super) fn on_track_event(&self, id: u64, event: TrackEvent) {
        let entry = self.track_ids.borrow().get(&id).and_then(|w| w.upgrade());
        let Some(entry) = entry else {
            return;
        };
        if let EntryKind::Owner(state) = &entry.kind {
            for remote in state.remotes.borrow().iter() {
                self.send_data(
                    remote.shard,
                    Data::Track {
                        to: remote.replica,
                        event: event.clone(),
                    },
                );
            }
        }
        entry.track.apply(event);
    }

    /// A publisher session delivers an upstream event to the owner's entry `track_id`.
    pub fn deliver(&self, owner: usize, track_id: u64, event: TrackEvent) {
        if owner == self.id {
            self.on_track_event(track_id, event);
        } else {
            self.send_data(
                owner,
                Data::Track {
                    to: track_id,
                    event,
                },
            );
        }
    }

    /// Owner: makes sure the entry has an upstream subscription on the broadcast's active
    /// route, or fails it as unroutable when there is none.
    pub(super) fn ensure_upstream(&self, entry: &Rc<TrackEntry>) {
        let EntryKind::Owner(state) = &entry.kind else {
            return;
        };
        let route = self
            .owned
            .borrow()
            .get(&entry.key.0)
            .map(|b| b.active_route());
        match route {
            Some(Some(route)) => {
                if state.upstream.get() == Some(route) {
                    return;
                }
                if let Some(old) = state.upstream.replace(Some(route)) {
                    self.send_control(
                        old.shard,
                        Control::UpstreamUnsubscribe {
                            session: old.id,
                            owner: self.id,
                            track_id: entry.id,
                        },
                    );
                }
                let demand = entry.demand();
                entry.announced_demand.set(demand);
                self.send_control(
                    route.shard,
                    Control::UpstreamSubscribe {
                        session: route.id,
                        owner: self.id,
                        track_id: entry.id,
                        broadcast: entry.key.0.clone(),
                        track: entry.key.1.clone(),
                        demand,
                    },
                );
            }
            // Lingering without a route: hold the subscription until one returns or the
            // linger ends the broadcast.
            Some(None) => {}
            None => self.on_track_event(
                entry.id,
                TrackEvent::End(TrackEnd::Failed(stream_code::UNROUTABLE)),
            ),
        }
    }

    /// Owner: every entry of `broadcast`.
    pub(super) fn owned_entries(&self, broadcast: &str) -> Vec<Rc<TrackEntry>> {
        self.tracks
            .borrow()
            .values()
            .filter(|e| e.key.0 == broadcast && matches!(e.kind, EntryKind::Owner(_)))
            .cloned()
            .collect()
    }

    /// Every shard: the broadcast ended. Its entries leave the maps now (a new broadcast at
    /// the same path starts afresh) and are returned for the caller to end.
    pub(super) fn detach_local_tracks(&self, broadcast: &str) -> Vec<Rc<TrackEntry>> {
        let entries: Vec<_> = self
            .tracks
            .borrow()
            .values()
            .filter(|e| e.key.0 == broadcast)
            .cloned()
            .collect();
        for entry in &entries {
            if let EntryKind::Owner(state) = &entry.kind {
                state.upstream.set(None);
                state.remotes.borrow_mut().clear();
            }
            self.forget(entry);
        }
        entries
    }
}

impl TrackEntry {
    /// Ends the track the way a vanished publisher's tracks end: unfinished groups are
    /// reset with Cancel, then the track finishes after its last group.
    pub(super) fn end_cleanly(&self) {
        self.track.abort_open_groups(stream_code::CANCEL);
        let next = self.track.next_sequence();
        self.track
            .apply(TrackEvent::End(TrackEnd::Finished { next }));
    }
}
