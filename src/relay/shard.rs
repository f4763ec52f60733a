//! The relay state of one shard as a sans-IO state machine, and the dispatch of mesh
//! messages into it.
//!
//! A driver (the glommio glue in `runtime.rs`, or the test harness) moves three things in:
//! mesh messages ([`RelayShard::handle_control`], [`RelayShard::handle_data`], and the
//! shard's messages to itself, [`RelayShard::drain_local_control`]), calls from the sessions
//! on this shard, and time ([`RelayShard::on_timeout`] at [`RelayShard::poll_timeout`]).
//! The shard never spawns a task, sleeps or reads the clock: every `now` it uses is one the
//! driver gave it (the latest is kept, for work that starts from a session's call).

use super::config::{RelayConfig, IDLE_GRACE, TEARDOWN_DELAY};
use super::mesh::{Mesh, MeshDrops, MeshPort};
use super::messages::{Control, Data, SessionRef};
use super::routes::{RouteChange, Routes};
use super::timers::Timers;
use super::track_table::{EntryKind, OwnerState, Remote, TrackEntry, TrackKey, TrackTable};
use super::upstream::{SessionInboxes, UpstreamInbox, UpstreamRequest};
use crate::model::{AnnouncedSet, CacheCounters, CacheDrops, Demand, Track, TrackEnd, TrackEvent};
use crate::notify::Notify;
use crate::wire::error_code::stream as stream_code;
use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Work the shard scheduled for later.
enum Timer {
    /// A track entry lost its last user: release it if it is still unused.
    Release(Rc<TrackEntry>),
    /// A broadcast lost its last route: end it if it still has none in this linger.
    Linger { path: String, epoch: u64 },
    /// A broadcast ended: end these tracks (already out of the table).
    Teardown(Vec<Rc<TrackEntry>>),
}

type PacketSink = Box<dyn Fn(SocketAddr, SocketAddr, Bytes)>;

/// Everything one shard knows about broadcasts, tracks and sessions.
pub struct RelayShard {
    pub id: usize,
    pub count: usize,
    pub config: RelayConfig,
    mesh: Mesh,
    /// Broadcasts announced anywhere in the process, as every shard sees them.
    pub announced: RefCell<AnnouncedSet>,
    tracks: RefCell<TrackTable>,
    routes: RefCell<Routes>,
    sessions: RefCell<SessionInboxes>,
    timers: RefCell<Timers<Timer>>,
    timer_wake: Rc<Notify>,
    now: Cell<Instant>,
    next_id: Cell<u64>,
    packet_sink: RefCell<Option<PacketSink>>,
    /// What the track caches of this shard dropped, shared by every track.
    cache_counters: Rc<CacheCounters>,
}

impl RelayShard {
    /// Shard `id` of `count`, sending through `mesh`, starting at time `now`.
    pub fn new(
        id: usize,
        count: usize,
        config: RelayConfig,
        mesh: Box<dyn MeshPort>,
        now: Instant,
    ) -> Rc<Self> {
        let mesh = Mesh::new(id, count, mesh, config.data_backlog, config.control_backlog);
        Rc::new(Self {
            id,
            count,
            config,
            mesh,
            announced: RefCell::new(AnnouncedSet::default()),
            tracks: RefCell::new(TrackTable::default()),
            routes: RefCell::new(Routes::default()),
            sessions: RefCell::new(SessionInboxes::default()),
            timers: RefCell::new(Timers::default()),
            timer_wake: Notify::new(),
            now: Cell::new(now),
            next_id: Cell::new(1),
            packet_sink: RefCell::new(None),
            cache_counters: Rc::default(),
        })
    }

    /// The shard owning broadcast `path`.
    pub fn owner_of(&self, path: &str) -> usize {
        shards::owner_of(path.as_bytes(), self.count)
    }

    /// A fresh id, unique on this shard.
    pub(super) fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    // ---- time ----

    /// Moves the shard's clock to `now` (never backwards). Drivers call this before handing
    /// in work; sessions do at the start of every step.
    pub fn advance(&self, now: Instant) {
        if now > self.now.get() {
            self.now.set(now);
        }
    }

    /// The latest time the driver gave the shard.
    pub fn now(&self) -> Instant {
        self.now.get()
    }

    /// When the shard next needs [`Self::on_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.borrow().next()
    }

    /// Notified when a deadline earlier than the last [`Self::poll_timeout`] appears.
    pub fn timer_wake(&self) -> Rc<Notify> {
        self.timer_wake.clone()
    }

    /// Runs everything due at `now`.
    pub fn on_timeout(&self, now: Instant) {
        self.advance(now);
        loop {
            let due = self.timers.borrow_mut().expire(now);
            match due {
                Some(Timer::Release(entry)) => self.release(&entry),
                Some(Timer::Linger { path, epoch }) => {
                    if self.routes.borrow().linger_expired(&path, epoch) {
                        self.end_broadcast(&path);
                    }
                }
                Some(Timer::Teardown(entries)) => {
                    for entry in entries {
                        entry.end_cleanly(now);
                    }
                }
                None => break,
            }
        }
    }

    fn schedule(&self, after: Duration, timer: Timer) {
        let at = self.now.get() + after;
        if self.timers.borrow_mut().schedule(at, timer) {
            self.timer_wake.notify();
        }
    }

    // ---- the mesh ----

    /// Sends a control message to shard `to` (ourselves included; never dropped).
    pub fn send_control(&self, to: usize, msg: Control) {
        self.mesh.send_control(to, msg);
    }

    /// Sends a control message to every shard, ourselves included.
    pub fn broadcast_control(&self, make: impl Fn() -> Control) {
        for to in 0..self.count {
            self.send_control(to, make());
        }
    }

    fn send_data(&self, to: usize, msg: Data) {
        self.mesh.send_data(to, msg);
    }

    /// Whether a session may start new work that sends control to other shards (a
    /// subscription, an announcement): false while the control backlog to some peer is at
    /// `control_backlog`. Work already started always completes, so a refusal here is the
    /// one bounded, visible outcome of a congested mesh; each one is counted.
    pub fn admits_requests(&self) -> bool {
        self.mesh.admits_requests()
    }

    /// What the track caches of this shard dropped so far.
    pub fn cache_drops(&self) -> CacheDrops {
        self.cache_counters.get()
    }

    /// The counters of this shard's track caches, for sessions that drop media themselves
    /// (a publisher's group over the per-group cap).
    pub fn cache_counters(&self) -> &CacheCounters {
        &self.cache_counters
    }

    /// What the mesh shed on this shard so far.
    pub fn mesh_drops(&self) -> MeshDrops {
        self.mesh.drops()
    }

    /// The shard's sending side of the mesh, for the driver to drain its queues.
    pub fn mesh(&self) -> &Mesh {
        &self.mesh
    }

    /// The task delivering messages we sent ourselves waits on this.
    pub fn local_wake(&self) -> Rc<Notify> {
        self.mesh.local_wake()
    }

    /// Handles every control message we sent ourselves, at `now`.
    pub fn drain_local_control(&self, now: Instant) {
        self.advance(now);
        while let Some(msg) = self.mesh.take_local() {
            self.dispatch_control(msg);
        }
    }

    /// Where packets forwarded from other shards go (the QUIC endpoint).
    pub fn set_packet_sink(&self, sink: impl Fn(SocketAddr, SocketAddr, Bytes) + 'static) {
        *self.packet_sink.borrow_mut() = Some(Box::new(sink));
    }

    /// Forwards a datagram to the shard owning its connection.
    pub fn forward_packet(&self, to: usize, from: SocketAddr, local: SocketAddr, payload: Bytes) {
        let packet = Data::Packet {
            from,
            to: local,
            payload,
        };
        self.send_data(to, packet);
    }

    // ---- sessions ----

    /// Registers a session that may carry publishers, returning its reference and inbox.
    pub fn register_session(&self, notify: Rc<Notify>) -> (SessionRef, Rc<UpstreamInbox>) {
        let id = self.next_id();
        self.sessions.borrow_mut().register(self.id, id, notify)
    }

    /// Forgets a session (its routes are withdrawn by the session itself).
    pub fn unregister_session(&self, id: u64) {
        self.sessions.borrow_mut().unregister(id);
    }

    /// Announces `path` (absolute) on behalf of a local session.
    pub fn announce(&self, path: String, route: SessionRef, hops: Vec<u64>) {
        let owner = self.owner_of(&path);
        self.send_control(owner, Control::Announce { path, route, hops });
    }

    /// Withdraws a local session's route for `path`.
    pub fn unannounce(&self, path: String, route: SessionRef, abrupt: bool) {
        let owner = self.owner_of(&path);
        let msg = Control::Unannounce {
            path,
            route,
            abrupt,
        };
        self.send_control(owner, msg);
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

    // ---- dispatch ----

    /// Handles one control message from another shard, at `now`.
    pub fn handle_control(&self, msg: Control, now: Instant) {
        self.advance(now);
        self.dispatch_control(msg);
    }

    /// Handles one data message from another shard, at `now`.
    pub fn handle_data(&self, msg: Data, now: Instant) {
        self.advance(now);
        match msg {
            Data::Track { to, event } => self.on_track_event(to, event),
            Data::Packet { from, to, payload } => {
                if let Some(sink) = self.packet_sink.borrow().as_ref() {
                    sink(from, to, payload);
                }
            }
        }
    }

    fn dispatch_control(&self, msg: Control) {
        match msg {
            Control::Announce { path, route, hops } => self.on_announce(path, route, hops),
            Control::Unannounce {
                path,
                route,
                abrupt,
            } => self.on_unannounce(path, route, abrupt),
            Control::BroadcastActive { path, hops } => {
                self.announced.borrow_mut().insert(path, hops);
            }
            Control::BroadcastEnded { path } => self.on_broadcast_ended(&path),
            Control::Interest {
                broadcast,
                track,
                from,
                replica,
                demand,
            } => {
                let key = (broadcast, track);
                self.on_interest(key.clone(), from, replica);
                self.on_demand(&key, from, replica, demand);
            }
            Control::Demand {
                broadcast,
                track,
                from,
                replica,
                demand,
            } => self.on_demand(&(broadcast, track), from, replica, demand),
            Control::Disinterest {
                broadcast,
                track,
                from,
                replica,
            } => self.on_disinterest(&(broadcast, track), from, replica),
            Control::UpstreamSubscribe {
                session,
                owner,
                track_id,
                broadcast,
                track,
                demand,
            } => self.to_session(
                session,
                UpstreamRequest::Subscribe {
                    owner,
                    track_id,
                    broadcast,
                    track,
                    demand,
                },
            ),
            Control::UpstreamUpdate {
                session,
                owner,
                track_id,
                demand,
            } => self.to_session(
                session,
                UpstreamRequest::Update {
                    owner,
                    track_id,
                    demand,
                },
            ),
            Control::UpstreamUnsubscribe {
                session,
                owner,
                track_id,
            } => self.to_session(session, UpstreamRequest::Unsubscribe { owner, track_id }),
        }
    }

    fn to_session(&self, session: u64, request: UpstreamRequest) {
        let refused = self.sessions.borrow().deliver(session, request);
        // The session is gone: its routes are being withdrawn; tell the owner the track has
        // no publisher so subscribers are not left waiting.
        if let Err(UpstreamRequest::Subscribe {
            owner, track_id, ..
        }) = refused
        {
            let failed = TrackEvent::End(TrackEnd::Failed(stream_code::SESSION_CLOSED));
            self.deliver(owner, track_id, failed);
        }
    }

    // ---- routes (owner) ----

    /// Owner: a session announced `path`.
    fn on_announce(&self, path: String, route: SessionRef, hops: Vec<u64>) {
        let order = self.next_id();
        let change = self.routes.borrow_mut().announce(&path, route, hops, order);
        self.apply_route_change(&path, change);
    }

    /// Owner: a session withdrew `path` (cleanly, or by dying when `abrupt`).
    fn on_unannounce(&self, path: String, route: SessionRef, abrupt: bool) {
        let change = self.routes.borrow_mut().withdraw(&path, route);
        let Some(epoch) = change.orphaned else {
            self.apply_route_change(&path, change);
            return;
        };
        // Upstream subscriptions on the dead route are gone.
        for entry in self.tracks.borrow().of_broadcast(&path, true) {
            if let EntryKind::Owner(state) = &entry.kind {
                state.upstream.set(None);
            }
        }
        let linger = self.config.linger;
        if !abrupt || linger.is_zero() {
            self.end_broadcast(&path);
            return;
        }
        tracing::info!(broadcast = %path, ?linger, "publisher lost; lingering");
        self.schedule(linger, Timer::Linger { path, epoch });
    }

    fn apply_route_change(&self, path: &str, change: RouteChange) {
        if let Some(hops) = change.chain {
            self.broadcast_control(|| Control::BroadcastActive {
                path: path.to_string(),
                hops: hops.clone(),
            });
        }
        if change.active_changed {
            let entries = self.tracks.borrow().of_broadcast(path, true);
            for entry in entries {
                self.ensure_upstream(&entry);
            }
        }
    }

    /// Owner: the broadcast is over; every shard hears it ended.
    fn end_broadcast(&self, path: &str) {
        self.routes.borrow_mut().remove(path);
        tracing::info!(broadcast = %path, "broadcast ended");
        self.broadcast_control(|| Control::BroadcastEnded {
            path: path.to_string(),
        });
    }

    /// Every shard: `path` ended. Announce watchers hear `ended` now; local tracks end
    /// [`TEARDOWN_DELAY`] later. Its entries leave the table now (a new broadcast at the same
    /// path starts afresh).
    fn on_broadcast_ended(&self, path: &str) {
        if !self.announced.borrow_mut().remove(path) {
            return;
        }
        let entries = self.tracks.borrow().of_broadcast(path, false);
        for entry in &entries {
            if let EntryKind::Owner(state) = &entry.kind {
                state.upstream.set(None);
                state.remotes.borrow_mut().clear();
            }
            self.tracks.borrow_mut().forget(entry);
        }
        self.schedule(TEARDOWN_DELAY, Timer::Teardown(entries));
    }

    // ---- tracks ----

    /// The entry for `key`, created (with interest sent to its owner, or an upstream
    /// subscription made) when this shard has none.
    pub(super) fn entry(&self, key: TrackKey) -> Rc<TrackEntry> {
        let existing = self.tracks.borrow().get(&key);
        existing.unwrap_or_else(|| self.create_entry(key))
    }

    fn create_entry(&self, key: TrackKey) -> Rc<TrackEntry> {
        let owner = self.owner_of(&key.0);
        let track = Rc::new(Track::new(
            key.0.clone(),
            key.1.clone(),
            self.config.cache,
            self.cache_counters.clone(),
        ));
        let kind = if owner == self.id {
            EntryKind::Owner(OwnerState::default())
        } else {
            EntryKind::Replica { owner }
        };
        let entry = Rc::new(TrackEntry::new(self.next_id(), key, track, kind));
        self.tracks.borrow_mut().insert(entry.clone());
        match &entry.kind {
            EntryKind::Owner(_) => self.ensure_upstream(&entry),
            EntryKind::Replica { owner } => self.send_control(
                *owner,
                Control::Interest {
                    broadcast: entry.key.0.clone(),
                    track: entry.key.1.clone(),
                    from: self.id,
                    replica: entry.id,
                    demand: None,
                },
            ),
        }
        entry
    }

    /// Tells the owner (from a replica) or the publisher (from the owner) when what this
    /// entry's users want together has changed.
    pub(super) fn demand_changed(&self, entry: &TrackEntry) {
        let demand = entry.demand();
        if demand == entry.announced_demand.get() {
            return;
        }
        match &entry.kind {
            EntryKind::Replica { owner } => {
                entry.announced_demand.set(demand);
                let msg = Control::Demand {
                    broadcast: entry.key.0.clone(),
                    track: entry.key.1.clone(),
                    from: self.id,
                    replica: entry.id,
                    demand,
                };
                self.send_control(*owner, msg);
            }
            EntryKind::Owner(state) => {
                // With nobody left wanting groups the subscription stays as it is until the
                // entry is released.
                let (Some(session), Some(demand)) = (state.upstream.get(), demand) else {
                    return;
                };
                entry.announced_demand.set(Some(demand));
                let msg = Control::UpstreamUpdate {
                    session: session.id,
                    owner: self.id,
                    track_id: entry.id,
                    demand,
                };
                self.send_control(session.shard, msg);
            }
        }
    }

    /// A local user left `entry`; with none left it is released after [`IDLE_GRACE`].
    pub(super) fn user_left(&self, entry: &Rc<TrackEntry>, users: usize) {
        self.demand_changed(entry);
        if users == 0 {
            self.schedule(IDLE_GRACE, Timer::Release(entry.clone()));
        }
    }

    /// Drops an entry nobody uses any more (locally, and for owners, remotely).
    fn release(&self, entry: &Rc<TrackEntry>) {
        if entry.users.get() > 0 {
            return;
        }
        match &entry.kind {
            EntryKind::Owner(state) => {
                if !state.remotes.borrow().is_empty() {
                    return;
                }
                if let Some(session) = state.upstream.take() {
                    let msg = Control::UpstreamUnsubscribe {
                        session: session.id,
                        owner: self.id,
                        track_id: entry.id,
                    };
                    self.send_control(session.shard, msg);
                }
            }
            EntryKind::Replica { owner } => {
                let msg = Control::Disinterest {
                    broadcast: entry.key.0.clone(),
                    track: entry.key.1.clone(),
                    from: self.id,
                    replica: entry.id,
                };
                self.send_control(*owner, msg);
            }
        }
        self.tracks.borrow_mut().forget(entry);
    }

    /// Owner: a replica shard wants this track's events.
    fn on_interest(&self, key: TrackKey, from: usize, replica: u64) {
        if !self.routes.borrow().contains(&key.0) {
            let event = TrackEvent::End(TrackEnd::Failed(stream_code::UNROUTABLE));
            self.send_data(from, Data::Track { to: replica, event });
            return;
        }
        let entry = self.entry(key);
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
    fn on_demand(&self, key: &TrackKey, from: usize, replica: u64, demand: Option<Demand>) {
        let Some(entry) = self.tracks.borrow().get(key) else {
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
    fn on_disinterest(&self, key: &TrackKey, from: usize, replica: u64) {
        let Some(entry) = self.tracks.borrow().get(key) else {
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
    fn on_track_event(&self, id: u64, event: TrackEvent) {
        let Some(entry) = self.tracks.borrow().by_id(id) else {
            return;
        };
        if let EntryKind::Owner(state) = &entry.kind {
            for remote in state.remotes.borrow().iter() {
                let msg = Data::Track {
                    to: remote.replica,
                    event: event.clone(),
                };
                self.send_data(remote.shard, msg);
            }
        }
        entry.track.apply(event, self.now.get());
    }

    /// Owner: makes sure the entry has an upstream subscription on the broadcast's active
    /// route, or fails it as unroutable when there is none.
    fn ensure_upstream(&self, entry: &Rc<TrackEntry>) {
        let EntryKind::Owner(state) = &entry.kind else {
            return;
        };
        let route = self.routes.borrow().active_route(&entry.key.0);
        match route {
            Some(Some(route)) => {
                if state.upstream.get() == Some(route) {
                    return;
                }
                if let Some(old) = state.upstream.replace(Some(route)) {
                    let msg = Control::UpstreamUnsubscribe {
                        session: old.id,
                        owner: self.id,
                        track_id: entry.id,
                    };
                    self.send_control(old.shard, msg);
                }
                let demand = entry.demand();
                entry.announced_demand.set(demand);
                let msg = Control::UpstreamSubscribe {
                    session: route.id,
                    owner: self.id,
                    track_id: entry.id,
                    broadcast: entry.key.0.clone(),
                    track: entry.key.1.clone(),
                    demand,
                };
                self.send_control(route.shard, msg);
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

    /// What this shard holds, for tests and reports.
    pub fn stats(&self) -> ShardStats {
        ShardStats {
            tracks: self.tracks.borrow().len(),
            owned_broadcasts: self.routes.borrow().len(),
            sessions: self.sessions.borrow().len(),
            timers: self.timers.borrow().len(),
        }
    }
}

/// Counts of what one shard holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardStats {
    pub tracks: usize,
    pub owned_broadcasts: usize,
    pub sessions: usize,
    pub timers: usize,
}
