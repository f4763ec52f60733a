//! The relay state of one shard and the dispatch of mesh messages into it.

use super::data_outbox::{DataDrops, DataOutbox};
use super::messages::{Control, Data, SessionRef};
use super::outbox::Outbox;
use super::owner::OwnedBroadcast;
use super::tracks::TrackEntry;
use crate::model::{AnnouncedSet, CacheLimits, Demand};
use crate::notify::Notify;
use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::time::Duration;

/// Relay behaviour settings every shard shares.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// How long a broadcast whose publisher vanished stays announced.
    pub linger: Duration,
    /// Cache bounds per track.
    pub cache: CacheLimits,
    /// Largest frame accepted from a publisher; a bigger one resets its group.
    pub max_frame_bytes: usize,
    /// Our hop id (cluster id), below 2^53.
    pub hop: u64,
    /// Media messages queued for a peer shard beyond its full data lane before media is
    /// shed (see `data_outbox.rs`); whole groups are skipped from four times this.
    pub data_backlog: usize,
    /// Control messages queued for a peer shard beyond its full control lane before new
    /// requests from sessions are refused (control itself is never dropped).
    pub control_backlog: usize,
}

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

/// Sends on the mesh without waiting; the concrete channels live in the runtime glue.
pub trait MeshPort {
    fn try_send_control(&self, to: usize, msg: Control) -> Result<(), Control>;
    fn try_send_data(&self, to: usize, msg: Data) -> Result<(), Data>;
}

/// What the mesh shed on one shard.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MeshDrops {
    pub data: DataDrops,
    /// Session requests refused because the control backlog was at its limit.
    pub requests_refused: u64,
}

type PacketSink = Box<dyn Fn(SocketAddr, SocketAddr, Bytes)>;

/// Everything one shard knows about broadcasts, tracks and sessions.
pub struct RelayShard {
    pub id: usize,
    pub count: usize,
    pub config: RelayConfig,
    mesh: Box<dyn MeshPort>,
    control_out: Outbox<Control>,
    data_out: DataOutbox,
    local_control: RefCell<VecDeque<Control>>,
    local_wake: Rc<Notify>,
    pub announced: RefCell<AnnouncedSet>,
    pub(super) tracks: RefCell<HashMap<(String, String), Rc<TrackEntry>>>,
    pub(super) track_ids: RefCell<HashMap<u64, Weak<TrackEntry>>>,
    pub(super) owned: RefCell<HashMap<String, OwnedBroadcast>>,
    sessions: RefCell<HashMap<u64, Rc<UpstreamInbox>>>,
    next_id: Cell<u64>,
    requests_refused: Cell<u64>,
    packet_sink: RefCell<Option<PacketSink>>,
}

impl RelayShard {
    pub fn new(id: usize, count: usize, config: RelayConfig, mesh: Box<dyn MeshPort>) -> Rc<Self> {
        let data_backlog = config.data_backlog;
        Rc::new(Self {
            id,
            count,
            config,
            mesh,
            control_out: Outbox::new(count),
            data_out: DataOutbox::new(count, data_backlog, data_backlog.saturating_mul(4)),
            local_control: RefCell::new(VecDeque::new()),
            local_wake: Notify::new(),
            announced: RefCell::new(AnnouncedSet::default()),
            tracks: RefCell::new(HashMap::new()),
            track_ids: RefCell::new(HashMap::new()),
            owned: RefCell::new(HashMap::new()),
            sessions: RefCell::new(HashMap::new()),
            next_id: Cell::new(1),
            requests_refused: Cell::new(0),
            packet_sink: RefCell::new(None),
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

    /// Sends a control message; to ourselves it is queued for the local dispatcher. Control
    /// is never dropped: what does not fit in the lane waits in the outbox, and sessions
    /// stop adding to a long wait through [`Self::admits_requests`].
    pub fn send_control(&self, to: usize, msg: Control) {
        if to == self.id {
            self.local_control.borrow_mut().push_back(msg);
            self.local_wake.notify();
        } else {
            self.control_out
                .push(to, msg, |m| self.mesh.try_send_control(to, m));
        }
    }

    /// Whether a session may start new work that sends control to other shards (a
    /// subscription, an announcement): false while the control backlog to some peer is at
    /// `control_backlog`. Work already started always completes, so a refusal here is the
    /// one bounded, visible outcome of a congested mesh; each one is counted.
    pub fn admits_requests(&self) -> bool {
        let congested = (0..self.count)
            .any(|to| to != self.id && self.control_out.backlog(to) >= self.config.control_backlog);
        if congested {
            self.requests_refused.set(self.requests_refused.get() + 1);
        }
        !congested
    }

    /// What the mesh shed on this shard so far: media by the data policy, requests refused
    /// for a congested control lane.
    pub fn mesh_drops(&self) -> MeshDrops {
        MeshDrops {
            data: self.data_out.drops(),
            requests_refused: self.requests_refused.get(),
        }
    }

    /// Sends a control message to every shard, ourselves included.
    pub fn broadcast_control(&self, make: impl Fn() -> Control) {
        for to in 0..self.count {
            self.send_control(to, make());
        }
    }

    /// Sends a data message to another shard, or sheds it by the data lane's policy.
    pub(super) fn send_data(&self, to: usize, msg: Data) {
        debug_assert_ne!(to, self.id);
        self.data_out
            .push(to, msg, |m| self.mesh.try_send_data(to, m));
    }

    /// The task draining messages we sent ourselves waits on this.
    pub fn local_wake(&self) -> Rc<Notify> {
        self.local_wake.clone()
    }

    /// Handles every control message we sent ourselves.
    pub fn drain_local_control(self: &Rc<Self>) {
        loop {
            let next = self.local_control.borrow_mut().pop_front();
            match next {
                Some(msg) => self.handle_control(msg),
                None => break,
            }
        }
    }

    /// Queued control messages for `to` that the mesh had no room for.
    pub fn control_outbox(&self) -> &Outbox<Control> {
        &self.control_out
    }

    /// Queued data messages for `to` that the mesh had no room for.
    pub fn data_outbox(&self) -> &DataOutbox {
        &self.data_out
    }

    /// Where packets forwarded from other shards go (the QUIC endpoint).
    pub fn set_packet_sink(&self, sink: impl Fn(SocketAddr, SocketAddr, Bytes) + 'static) {
        *self.packet_sink.borrow_mut() = Some(Box::new(sink));
    }

    /// Forwards a datagram to the shard owning its connection.
    pub fn forward_packet(&self, to: usize, from: SocketAddr, local: SocketAddr, payload: Bytes) {
        self.send_data(
            to,
            Data::Packet {
                from,
                to: local,
                payload,
            },
        );
    }

    /// Registers a session that may carry publishers, returning its reference and inbox.
    pub fn register_session(&self, notify: Rc<Notify>) -> (SessionRef, Rc<UpstreamInbox>) {
        let id = self.next_id();
        let inbox = Rc::new(UpstreamInbox {
            requests: RefCell::new(VecDeque::new()),
            notify,
        });
        self.sessions.borrow_mut().insert(id, inbox.clone());
        (SessionRef { shard: self.id, id }, inbox)
    }

    /// Forgets a session (its routes are withdrawn by the session itself).
    pub fn unregister_session(&self, id: u64) {
        self.sessions.borrow_mut().remove(&id);
    }

    /// Announces `path` (absolute) on behalf of a local session.
    pub fn announce(&self, path: String, route: SessionRef, hops: Vec<u64>) {
        let owner = self.owner_of(&path);
        self.send_control(owner, Control::Announce { path, route, hops });
    }

    /// Withdraws a local session's route for `path`.
    pub fn unannounce(&self, path: String, route: SessionRef, abrupt: bool) {
        let owner = self.owner_of(&path);
        self.send_control(
            owner,
            Control::Unannounce {
                path,
                route,
                abrupt,
            },
        );
    }

    /// Handles one control message.
    pub fn handle_control(self: &Rc<Self>, msg: Control) {
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
                self.on_interest(broadcast.clone(), track.clone(), from, replica);
                self.on_demand(&broadcast, &track, from, replica, demand);
            }
            Control::Demand {
                broadcast,
                track,
                from,
                replica,
                demand,
            } => self.on_demand(&broadcast, &track, from, replica, demand),
            Control::Disinterest {
                broadcast,
                track,
                from,
                replica,
            } => self.on_disinterest(&broadcast, &track, from, replica),
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

    /// Handles one data message.
    pub fn handle_data(self: &Rc<Self>, msg: Data) {
        match msg {
            Data::Track { to, event } => self.on_track_event(to, event),
            Data::Packet { from, to, payload } => {
                if let Some(sink) = self.packet_sink.borrow().as_ref() {
                    sink(from, to, payload);
                }
            }
        }
    }

    fn to_session(&self, session: u64, request: UpstreamRequest) {
        let inbox = self.sessions.borrow().get(&session).cloned();
        match inbox {
            Some(inbox) => inbox.push(request),
            None => {
                // The session is gone: its routes are being withdrawn; tell the owner the
                // track has no publisher so subscribers are not left waiting.
                if let UpstreamRequest::Subscribe {
                    owner, track_id, ..
                } = request
                {
                    self.deliver(
                        owner,
                        track_id,
                        crate::model::TrackEvent::End(crate::model::TrackEnd::Failed(
                            crate::wire::error_code::stream::SESSION_CLOSED,
                        )),
                    );
                }
            }
        }
    }
}
