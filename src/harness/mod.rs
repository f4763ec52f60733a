//! A deterministic harness for the relay core, in the style of quinn-proto's test driver:
//! relays of N shards wired by in-memory mesh lanes ([`lanes`]), moq-lite sessions driven
//! through in-memory connections ([`link`]) by test clients ([`peer`]), and a fake clock.
//! No sockets, no threads, no executor, no sleeps: [`World::settle`] delivers messages and
//! polls sessions until nothing moves, [`World::advance`] moves time through every deadline
//! the shards ask for.
//!
//! A world holds several relays so the cluster can grow into it; today relays in one world
//! are independent (links between relays come with the cluster).

mod lanes;
mod link;
#[cfg(test)]
mod media_tests;
mod peer;
#[cfg(test)]
mod tests;

use crate::auth::Auth;
use crate::model::CacheLimits;
use crate::relay::{RelayConfig, RelayShard};
use crate::session::{Session, SessionEnv};
use crate::wire::Version;
use lanes::Lanes;
use link::Link;
use peer::{Publisher, Viewer};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Rounds of [`World::settle`] before it calls the system livelocked.
const MAX_ROUNDS: usize = 100_000;

/// Per-stream window of the in-memory connections, unless a test asks for less.
const DEFAULT_WINDOW: usize = 1 << 20;

/// A relay's settings in the harness: the production defaults where they matter.
pub fn relay_config() -> RelayConfig {
    RelayConfig {
        linger: Duration::from_secs(5),
        cache: CacheLimits::default(),
        max_frame_bytes: 1 << 20,
        hop: 1,
        data_backlog: 64,
        control_backlog: 64,
    }
}

/// A session the relay serves, and its connection.
struct Connection {
    session: Option<Session>,
    link: Rc<Link>,
}

/// One relay process: its shards, their lanes, and their sessions.
pub struct Relay {
    pub shards: Vec<Rc<RelayShard>>,
    pub lanes: Rc<Lanes>,
    envs: Vec<Rc<SessionEnv>>,
    connections: Vec<Connection>,
}

impl Relay {
    fn new(shards: usize, config: RelayConfig, lane_capacity: usize, now: Instant) -> Self {
        let lanes = Lanes::new(shards, lane_capacity, lane_capacity);
        let shards: Vec<_> = (0..shards)
            .map(|id| RelayShard::new(id, shards, config.clone(), lanes.port(id), now))
            .collect();
        let envs = shards
            .iter()
            .map(|shard| {
                let auth = Auth {
                    public: vec![String::new()],
                    verifier: None,
                };
                Rc::new(SessionEnv::new(shard.clone(), auth, Default::default()))
            })
            .collect();
        Self {
            shards,
            lanes,
            envs,
            connections: Vec::new(),
        }
    }

    /// Moves every message one step: local queues, lanes (unless held), outbox flushes,
    /// sessions. Returns how many things moved.
    fn pump(&mut self, now: Instant) -> usize {
        // A session's step may only push into a lane (a FIN read moves no link bytes): that
        // is movement too, delivered on the next round.
        let pushed = self.lanes.pushed();
        let mut moved = 0;
        let count = self.shards.len();
        for shard in &self.shards {
            if shard.local_wake().take() {
                shard.drain_local_control(now);
                moved += 1;
            }
        }
        for to in (0..count).filter(|&to| !self.lanes.is_held(to)) {
            for from in 0..count {
                while let Some(msg) = self.lanes.pop_control(from, to) {
                    self.shards[to].handle_control(msg, now);
                    moved += 1;
                }
                while let Some(msg) = self.lanes.pop_data(from, to) {
                    self.shards[to].handle_data(msg, now);
                    moved += 1;
                }
            }
        }
        for (from, shard) in self.shards.iter().enumerate() {
            let mesh = shard.mesh();
            for to in (0..count).filter(|&to| to != from) {
                while self.lanes.control_room(from, to) > 0 {
                    let Some(msg) = mesh.control_outbox().take(to) else {
                        break;
                    };
                    let pushed = self.lanes.push_control(from, to, msg);
                    assert!(pushed.is_ok(), "room was checked");
                    mesh.control_outbox().sent(to);
                    moved += 1;
                }
                while self.lanes.data_room(from, to) > 0 {
                    let Some(msg) = mesh.data_outbox().take(to) else {
                        break;
                    };
                    let pushed = self.lanes.push_data(from, to, msg);
                    assert!(pushed.is_ok(), "room was checked");
                    mesh.data_outbox().sent(to);
                    moved += 1;
                }
            }
        }
        for connection in &mut self.connections {
            let Some(session) = connection.session.as_mut() else {
                continue;
            };
            let before = connection.link.activity();
            session.poll(&mut connection.link.end(1), now);
            moved += (connection.link.activity() - before) as usize;
        }
        moved + (self.lanes.pushed() - pushed) as usize
    }
}

/// A client's handle on its connection to a relay.
pub struct ClientId {
    relay: usize,
    index: usize,
}

/// Relays, clients and the clock.
pub struct World {
    pub now: Instant,
    pub relays: Vec<Relay>,
    publishers: Vec<(Publisher, Rc<Link>)>,
    viewers: Vec<(Viewer, Rc<Link>)>,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    pub fn new() -> Self {
        Self {
            now: Instant::now(),
            relays: Vec::new(),
            publishers: Vec::new(),
            viewers: Vec::new(),
        }
    }

    /// Adds a relay of `shards` shards whose mesh lanes hold `lane_capacity` messages each.
    pub fn add_relay(&mut self, shards: usize, config: RelayConfig, lane_capacity: usize) -> usize {
        self.relays
            .push(Relay::new(shards, config, lane_capacity, self.now));
        self.relays.len() - 1
    }

    fn connect(&mut self, relay: usize, shard: usize, window: usize) -> (Rc<Link>, ClientId) {
        let link = Link::new(window);
        let relay_ref = &mut self.relays[relay];
        let env = relay_ref.envs[shard].clone();
        let session = Session::new(env, Version::Lite05, crate::notify::Notify::new(), None);
        relay_ref.connections.push(Connection {
            session: Some(session),
            link: link.clone(),
        });
        let id = ClientId {
            relay,
            index: relay_ref.connections.len() - 1,
        };
        (link, id)
    }

    /// A publisher connected to shard `shard` of `relay`.
    pub fn publisher(&mut self, relay: usize, shard: usize) -> (Publisher, ClientId) {
        let (link, id) = self.connect(relay, shard, DEFAULT_WINDOW);
        let publisher = Publisher::new(link.end(0));
        self.publishers.push((publisher.clone(), link));
        (publisher, id)
    }

    /// A viewer connected to shard `shard` of `relay`, with `window` bytes per stream.
    pub fn viewer(&mut self, relay: usize, shard: usize, window: usize) -> (Viewer, ClientId) {
        let (link, id) = self.connect(relay, shard, window);
        let viewer = Viewer::new(link.end(0));
        self.viewers.push((viewer.clone(), link));
        (viewer, id)
    }

    /// A viewer with the default window.
    pub fn viewer_on(&mut self, relay: usize, shard: usize) -> (Viewer, ClientId) {
        self.viewer(relay, shard, DEFAULT_WINDOW)
    }

    /// The client's connection is lost: the relay's session ends as if its transport died.
    pub fn disconnect(&mut self, client: &ClientId) {
        let connection = &mut self.relays[client.relay].connections[client.index];
        connection.link.sever();
        connection.session = None;
    }

    /// Runs everything until nothing moves at the current time.
    pub fn settle(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let mut moved = 0;
            for relay in &mut self.relays {
                moved += relay.pump(self.now);
            }
            for (client, link) in &self.publishers {
                let before = link.activity();
                client.poll();
                moved += (link.activity() - before) as usize;
            }
            for (client, link) in &self.viewers {
                let before = link.activity();
                client.poll();
                moved += (link.activity() - before) as usize;
            }
            if moved == 0 {
                return;
            }
        }
        panic!("the harness did not settle in {MAX_ROUNDS} rounds");
    }

    /// Moves the clock forward by `by`, firing every shard deadline on the way at its time.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        loop {
            self.settle();
            let next = self
                .relays
                .iter()
                .flat_map(|r| r.shards.iter())
                .filter_map(|s| s.poll_timeout())
                .filter(|&at| at <= target)
                .min();
            let Some(at) = next else { break };
            self.now = self.now.max(at);
            for shard in self.relays.iter().flat_map(|r| r.shards.iter()) {
                if shard.poll_timeout().is_some_and(|t| t <= self.now) {
                    shard.on_timeout(self.now);
                }
            }
        }
        self.now = target;
        self.settle();
    }
}
