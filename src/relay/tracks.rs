//! Track entries on a shard: the owner's authoritative copy or a replica, who uses them,
//! and how events reach them.
//!
//! Interest flows towards the owner (local users, then one `Interest` per replica shard,
//! then one upstream subscription); events flow back (upstream session, owner, replicas).

use super::messages::{Control, Data, SessionRef};
use super::shard::RelayShard;
use crate::model::{Track, TrackEnd, TrackEvent};
use crate::wire::error_code::stream as stream_code;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Owner-only state of a track entry.
#[derive(Default)]
pub(super) struct OwnerState {
    /// Replica shards and their entry ids.
    pub remotes: RefCell<Vec<(usize, u64)>>,
    /// The publisher session currently subscribed upstream.
    pub upstream: Cell<Option<SessionRef>>,
    /// Highest subscriber priority seen (the aggregate sent upstream).
    pub priority: Cell<u8>,
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
    pub(super) kind: EntryKind,
}

/// A session's use of a track; dropping it releases the interest.
pub struct TrackHandle {
    shard: Rc<RelayShard>,
    entry: Rc<TrackEntry>,
}

impl TrackHandle {
    pub fn track(&self) -> &Rc<Track> {
        &self.entry.track
    }
}

/// How long an unused track stays subscribed upstream, so a TRACK followed by a SUBSCRIBE,
/// or a viewer that reconnects, reuses it instead of subscribing twice.
const IDLE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

impl Drop for TrackHandle {
    fn drop(&mut self) {
        let users = self.entry.users.get() - 1;
        self.entry.users.set(users);
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
    /// registering interest with the owner when this is its first user here.
    pub fn open_track(self: &Rc<Self>, broadcast: &str, name: &str, priority: u8) -> TrackHandle {
        let key = (broadcast.to_string(), name.to_string());
        let existing = self.tracks.borrow().get(&key).cloned();
        let entry = match existing {
            Some(entry) => entry,
            None => self.create_entry(key, priority),
        };
        entry.users.set(entry.users.get() + 1);
        if let EntryKind::Owner(state) = &entry.kind {
            if priority > state.priority.get() {
                state.priority.set(priority);
            }
        }
        TrackHandle {
            shard: self.clone(),
            entry,
        }
    }

    fn create_entry(self: &Rc<Self>, key: (String, String), priority: u8) -> Rc<TrackEntry> {
        let owner = self.owner_of(&key.0);
        let id = self.next_id();
        let track = Rc::new(Track::new(key.0.clone(), key.1.clone(), self.config.cache));
        let kind = if owner == self.id {
            EntryKind::Owner(OwnerState {
                priority: Cell::new(priority),
                ..OwnerState::default()
            })
        } else {
            EntryKind::Replica { owner }
        };
        let entry = Rc::new(TrackEntry {
            id,
            key: key.clone(),
            track,
            users: Cell::new(0),
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
                    priority,
                },
            ),
        }
        entry
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
        priority: u8,
    ) {
        if !self.owned.borrow().contains_key(&broadcast) {
            let event = TrackEvent::End(TrackEnd::Failed(stream_code::UNROUTABLE));
            self.send_data(from, Data::Track { to: replica, event });
            return;
        }
        let key = (broadcast, name);
        let existing = self.tracks.borrow().get(&key).cloned();
        let entry = existing.unwrap_or_else(|| self.create_entry(key, priority));
        let EntryKind::Owner(state) = &entry.kind else {
            return;
        };
        if priority > state.priority.get() {
            state.priority.set(priority);
        }
        state.remotes.borrow_mut().push((from, replica));
        for event in entry.track.snapshot() {
            self.send_data(from, Data::Track { to: replica, event });
        }
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
                .retain(|&(shard, id)| (shard, id) != (from, replica));
        }
        self.release(&entry);
    }

    /// An event for entry `id`: applied here, and by an owner forwarded to every replica.
    pub(super) fn on_track_event(&self, id: u64, event: TrackEvent) {
        let entry = self.track_ids.borrow().get(&id).and_then(|w| w.upgrade());
        let Some(entry) = entry else {
            return;
        };
        if let EntryKind::Owner(state) = &entry.kind {
            for &(shard, replica) in state.remotes.borrow().iter() {
                self.send_data(
                    shard,
                    Data::Track {
                        to: replica,
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
                self.send_control(
                    route.shard,
                    Control::UpstreamSubscribe {
                        session: route.id,
                        owner: self.id,
                        track_id: entry.id,
                        broadcast: entry.key.0.clone(),
                        track: entry.key.1.clone(),
                        priority: state.priority.get(),
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
