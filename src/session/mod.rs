//! One moq-lite session over any transport: the relay as subscriber towards publishing
//! peers ([`consume`]) and as publisher towards viewers ([`serve`], [`egress`]), on one
//! connection at once.
//!
//! The session is a state machine driven by its transport's task: [`Session::poll`] reads
//! whatever streams have data (at most [`POLL_READ_BUDGET`] bytes a poll, so one busy peer
//! cannot hold its shard), reacts to shard events (announcements, track data, upstream
//! requests) and writes what it can. It never blocks and never owns a socket.
//!
//! What a peer can make it hold is bounded ([`SessionLimits`]): until the session is
//! authorized only a few streams are looked at, each only as far as its first bytes, and a
//! session that is not authorized within the setup timeout is closed; afterwards partial
//! control messages and receive buffers count against per-session budgets, and exceeding
//! one closes the session. The work of one peer event is proportional to what it touched,
//! not to the number of open streams.

mod close;
mod consume;
mod egress;
mod env;
/// Public only for the blocking test client in `moq-bench` (`moq_bench::client`), which
/// frames its streams with the same [`io::Inbound`]; not an API the relay offers.
pub mod io;
mod serve;
#[cfg(test)]
mod tests;

use crate::auth::{AuthError, ConnectPath, Scope};
use crate::notify::Notify;
use crate::relay::{SessionRef, UpstreamInbox};
use crate::transport::{StreamId, StreamMap, Streams};
use crate::wire::{self, error_code, BidiType, Message, Setup, UniType, Version};
pub use close::Close;
use consume::Consumer;
pub use env::{SessionCounters, SessionEnv, SessionLimits, DEFAULT_SETUP_TIMEOUT};
use io::{Inbound, Outbox, ReadOutcome};
use serve::Server;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;

/// Most peer streams held while waiting for the peer's SETUP.
const MAX_EARLY_STREAMS: usize = 64;
/// Most bytes read from a peer stream other than SETUP's before the session is authorized
/// (enough for its type and a first request; the rest waits in the transport).
const EARLY_BUFFER: usize = 4 * 1024;
/// Most peer streams tracked at once (QUIC's stream limit bounds it too).
const MAX_PEER_STREAMS: usize = 20_000;
/// Most bytes buffered for one control stream.
const CONTROL_BUFFER: usize = wire::MAX_MESSAGE_SIZE + 16;
/// Most bytes one poll reads from the peer's streams. A publisher with megabytes waiting in
/// its connection would otherwise have them all read, cached and fanned out in one poll
/// while every other connection of the shard waits (seconds, in a debug build, for the
/// 64 MiB a QUIC connection window holds). Past it the session stops reading, remembers
/// the stream it cut short, and asks to be polled again at once: its task yields to the
/// shard's other tasks when the executor says they are waiting.
const POLL_READ_BUDGET: usize = 256 * 1024;

/// What a peer-initiated stream turned out to be.
#[derive(Debug)]
enum Incoming {
    /// Its type varint has not arrived yet.
    Untyped,
    /// The peer's SETUP (lite-05).
    Setup,
    /// Held until the session is authorized.
    Early(StreamKind),
    /// Being served or consumed.
    Active(StreamKind),
    /// Refused or done on our side; drained until the peer finishes or resets it.
    Ignored,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StreamKind {
    Bidi(BidiType),
    Group,
}

/// One moq-lite session.
pub struct Session {
    env: Rc<SessionEnv>,
    version: Version,
    /// The connect path from the URL (WebTransport/WebSocket), or `None` on raw QUIC.
    url_path: Option<String>,
    /// For a session we dialed (a peer relay): the path and query our SETUP carries. Such a
    /// session trusts its peer with everything once the peer's SETUP arrives.
    dialed: Option<String>,
    setup_sent: bool,
    /// Shared so each poll can lend it out while `self` is borrowed mutably.
    scope: Option<Rc<Scope>>,
    streams: StreamMap<(Inbound, Incoming)>,
    outbound: Outbox,
    server: Server,
    consumer: Consumer,
    me: SessionRef,
    inbox: Rc<UpstreamInbox>,
    /// When the session's token expires; the session is closed then.
    expires_at: Option<Instant>,
    /// The time of the current step, as the driver gave it.
    now: Instant,
    /// Peer streams that became active on authorization and still need a first look.
    activated: Vec<StreamId>,
    /// Bytes this poll may still read from peer streams ([`POLL_READ_BUDGET`]).
    read_budget: usize,
    /// Peer streams whose read the budget cut short, in turn: read first on the next poll
    /// (the transport reports a stream readable again only when more arrives), each cut
    /// short again going to the back.
    unfinished: VecDeque<StreamId>,
    closed: bool,
    /// Set by shard events (track data, announcements, upstream requests); the task's own
    /// notification also fires for packets, which alone rarely give the server work.
    events: Rc<Notify>,
    /// The server must look at all its subscriptions on the next step.
    react_due: bool,
    /// When the session is closed unless authorized by then (set at the first poll, which
    /// brings the time).
    setup_deadline: Option<Instant>,
    /// Whether the first poll set `setup_deadline`.
    setup_armed: bool,
    /// Peer streams in [`Incoming::Early`].
    early: usize,
    /// Bytes held in receive buffers of control streams (all but group streams).
    control_buffered: usize,
    /// Bytes held in receive buffers of every peer stream.
    buffered: usize,
    /// Per-stream visits of the last steps (readable streams handled, queues flushed,
    /// subscriptions stepped), for the tests that check a step's cost.
    #[cfg(test)]
    visits: u64,
}

impl Session {
    /// Starts a session. `url_path` is the path and query of the URL the peer connected
    /// to, when the transport has one.
    pub fn new(
        env: Rc<SessionEnv>,
        version: Version,
        notify: Rc<Notify>,
        url_path: Option<String>,
    ) -> Self {
        let events = Notify::forwarding_to(notify.clone());
        let (me, inbox) = env.shard.register_session(events.clone());
        let now = env.shard.now();
        Self {
            version,
            url_path,
            dialed: None,
            setup_sent: false,
            scope: None,
            streams: StreamMap::default(),
            outbound: Outbox::default(),
            server: Server::default(),
            consumer: Consumer::default(),
            me,
            inbox,
            expires_at: None,
            now,
            activated: Vec::new(),
            read_budget: POLL_READ_BUDGET,
            unfinished: VecDeque::new(),
            closed: false,
            setup_deadline: None,
            setup_armed: false,
            env,
            events,
            react_due: true,
            early: 0,
            control_buffered: 0,
            buffered: 0,
            #[cfg(test)]
            visits: 0,
        }
    }

    /// Starts a session on a connection we dialed to a peer relay (lite-05): our SETUP
    /// carries `setup_path` (the peer authorizes us by it), and the peer may publish and
    /// subscribe everything once its SETUP arrives.
    pub fn dialed(
        env: Rc<SessionEnv>,
        version: Version,
        notify: Rc<Notify>,
        setup_path: String,
    ) -> Self {
        let mut session = Self::new(env, version, notify, None);
        session.dialed = Some(setup_path);
        session
    }

    /// The next time the session wants to run without being woken: at once when its last
    /// poll stopped reading at the budget.
    pub fn deadline(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let more_to_read =
            (self.read_budget == 0 || !self.unfinished.is_empty()).then_some(self.now);
        [self.expires_at, self.setup_deadline, more_to_read]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether the peer's session is authorized (its SETUP, or the URL on lite-04, passed).
    pub fn is_authorized(&self) -> bool {
        self.scope.is_some()
    }

    /// Runs the session at `now`: reads, reacts, writes. Closes the transport on fatal
    /// errors.
    pub fn poll(&mut self, streams: &mut dyn Streams, now: Instant) {
        if self.closed {
            return;
        }
        self.now = now;
        if !self.setup_armed {
            self.setup_armed = true;
            if self.scope.is_none() {
                self.setup_deadline = Some(now + self.env.limits.setup_timeout);
            }
        }
        self.env.shard.advance(now);
        if let Err(close) = self.step(streams) {
            tracing::info!(code = close.code, reason = %close.reason, "closing session");
            streams.close(close.code, &close.reason);
            self.closed = true;
        }
    }

    fn step(&mut self, streams: &mut dyn Streams) -> Result<(), Close> {
        self.react_due |= self.events.take();
        if self.setup_deadline.is_some_and(|at| self.now >= at) {
            SessionCounters::bump(&self.env.counters.setup_timeouts);
            return Err(Close {
                code: error_code::session::TIMEOUT,
                reason: "no SETUP before the setup timeout".into(),
            });
        }
        if self.expires_at.is_some_and(|at| self.now >= at) {
            return Err(Close {
                code: error_code::session::UNAUTHORIZED,
                reason: "the token expired".into(),
            });
        }
        if !self.setup_sent {
            self.send_setup(streams);
        }
        // lite-04 has no SETUP: authorize at once (with the URL's path, if any). lite-05
        // waits for the peer's SETUP, which carries the Role (and, on raw QUIC, the path).
        if self.scope.is_none() && self.version == Version::Lite04 {
            let path = self.url_path.clone().unwrap_or_default();
            self.authorize(&path, wire::Role::Both)?;
        }
        self.read_budget = POLL_READ_BUDGET;
        for _ in 0..self.unfinished.len() {
            if self.read_budget == 0 {
                break;
            }
            let Some(id) = self.unfinished.pop_front() else {
                break;
            };
            if self.streams.contains_key(&id) {
                self.on_readable(streams, id)?;
            }
        }
        while self.read_budget > 0 {
            let Some(id) = streams.next_readable() else {
                break;
            };
            self.on_readable(streams, id)?;
        }
        // Streams held unread until authorization: what waits in the transport is read now.
        for id in std::mem::take(&mut self.activated) {
            self.on_readable(streams, id)?;
        }
        if self.scope.is_some() {
            self.react(streams)?;
        }
        #[cfg(test)]
        {
            self.visits += self.outbound.listed() as u64;
        }
        self.outbound.flush(streams);
        Ok(())
    }

    fn send_setup(&mut self, streams: &mut dyn Streams) {
        if self.version != Version::Lite05 {
            self.setup_sent = true;
            return;
        }
        let Ok(id) = streams.open_uni() else { return };
        let mut buf = Vec::new();
        let setup = Setup {
            hop: self.env.shard.config.hop,
            path: self.dialed.clone(),
            ..Setup::default()
        };
        let encoded = UniType::Setup
            .encode(self.version, &mut buf)
            .and_then(|_| setup.encode(self.version, &mut buf));
        if encoded.is_ok() {
            let out = self.outbound.entry(id);
            out.push(buf);
            out.finish();
            self.setup_sent = true;
        }
    }

    fn authorize(&mut self, raw_path: &str, role: wire::Role) -> Result<(), Close> {
        let connect = ConnectPath::parse(raw_path);
        let grant = self.env.auth.authorize(&connect).map_err(unauthorized)?;
        let mut scope = grant.scope;
        match role {
            wire::Role::Publisher => scope.subscribe.clear(),
            wire::Role::Subscriber => scope.publish.clear(),
            wire::Role::Both => {}
        }
        if scope.publish.is_empty() && scope.subscribe.is_empty() {
            let role = if role == wire::Role::Publisher {
                "publisher"
            } else {
                "subscriber"
            };
            return Err(unauthorized(AuthError::Role(role)));
        }
        tracing::info!(root = %scope.root, publish = ?scope.publish, subscribe = ?scope.subscribe, version = %self.version, expires = ?grant.expires, "session authorized");
        self.scope = Some(Rc::new(scope));
        self.expires_at = grant.expires.and_then(|exp| instant_of_unix(exp, self.now));
        self.on_authorized()
    }

    /// The peer's streams that arrived before authorization become active now (once per
    /// session, over at most [`MAX_EARLY_STREAMS`] streams).
    fn on_authorized(&mut self) -> Result<(), Close> {
        self.setup_deadline = None;
        for (&id, (_, incoming)) in self.streams.iter_mut() {
            match *incoming {
                Incoming::Early(kind) => {
                    *incoming = Incoming::Active(kind);
                    self.activated.push(id);
                }
                // Read only as far as the early limit: the rest is read with the right one.
                Incoming::Untyped => self.activated.push(id),
                _ => {}
            }
        }
        self.early = 0;
        Ok(())
    }

    fn on_readable(&mut self, streams: &mut dyn Streams, id: StreamId) -> Result<(), Close> {
        tracing::trace!(stream = id, "readable");
        #[cfg(test)]
        {
            self.visits += 1;
        }
        let ours = !streams.is_peer_initiated(id);
        if ours {
            return self.on_own_stream(streams, id);
        }
        if !self.streams.contains_key(&id) {
            let cap = if self.scope.is_some() {
                MAX_PEER_STREAMS
            } else {
                MAX_EARLY_STREAMS
            };
            if self.streams.len() >= cap {
                if self.scope.is_none() {
                    SessionCounters::bump(&self.env.counters.early_streams_refused);
                }
                streams.stop(id, error_code::stream::INTERNAL);
                return Ok(());
            }
            self.streams
                .insert(id, (Inbound::default(), Incoming::Untyped));
        }
        let held = self.held(id);
        let result = self.read_peer_stream(streams, id);
        self.account(id, held);
        result?;
        self.check_budgets()
    }

    /// Reads a peer stream as far as its kind's limit and the poll's budget allow, then
    /// handles what arrived.
    fn read_peer_stream(&mut self, streams: &mut dyn Streams, id: StreamId) -> Result<(), Close> {
        let bidi = streams.is_bidi(id);
        let mut limit = self.budgeted_read_limit(id);
        loop {
            let outcome = {
                let (inbound, _) = self.streams.get_mut(&id).expect("inserted above");
                let before = inbound.buf.len();
                let outcome = inbound.fill(streams, id, limit);
                let read = inbound.buf.len().saturating_sub(before);
                self.read_budget = self.read_budget.saturating_sub(read);
                outcome
            };
            if let ReadOutcome::Reset(code) = outcome {
                self.on_peer_reset(streams, id, code);
                return Ok(());
            }
            self.classify(streams, id, bidi)?;
            if outcome == ReadOutcome::Open && self.read_budget == 0 {
                // Cut short by the budget: read on at the next poll (at worst a read of
                // nothing, if the stream had no more).
                if !self.unfinished.contains(&id) {
                    self.unfinished.push_back(id);
                }
                break;
            }
            // A stream read only as far as its type, now known to allow more: read on, as
            // the transport reports a stream readable again only when more arrives.
            let wider = self.budgeted_read_limit(id);
            let full = self
                .streams
                .get(&id)
                .is_some_and(|(i, _)| i.buf.len() >= limit);
            if outcome != ReadOutcome::Open || wider <= limit || !full {
                break;
            }
            limit = wider;
        }
        self.process_incoming(streams, id)
    }

    /// [`Self::read_limit`] within what is left of this poll's read budget.
    fn budgeted_read_limit(&self, id: StreamId) -> usize {
        let held = self.streams.get(&id).map_or(0, |(i, _)| i.buf.len());
        self.read_limit(id)
            .min(held.saturating_add(self.read_budget))
    }

    /// How many bytes stream `id` may hold in its receive buffer: before authorization only
    /// the SETUP stream is read beyond its first bytes; group streams take whole frames,
    /// within what is left of the session's budget.
    fn read_limit(&self, id: StreamId) -> usize {
        let Some((inbound, incoming)) = self.streams.get(&id) else {
            return 0;
        };
        let kind_limit = match incoming {
            Incoming::Active(StreamKind::Group) => usize::MAX,
            Incoming::Setup | Incoming::Active(_) | Incoming::Ignored => CONTROL_BUFFER,
            Incoming::Untyped if self.scope.is_some() => CONTROL_BUFFER,
            Incoming::Untyped | Incoming::Early(_) => EARLY_BUFFER,
        };
        // One byte past the budget is enough to know it was exceeded.
        let room = self
            .env
            .limits
            .session_bytes
            .saturating_sub(self.buffered)
            .saturating_add(1);
        kind_limit.min(inbound.buf.len().saturating_add(room))
    }

    /// What stream `id` holds now: its buffered bytes and whether they count as control.
    fn held(&self, id: StreamId) -> (usize, bool) {
        match self.streams.get(&id) {
            Some((inbound, incoming)) => (
                inbound.buf.len(),
                !matches!(incoming, Incoming::Active(StreamKind::Group)),
            ),
            None => (0, true),
        }
    }

    /// Moves the session's buffer totals from what stream `id` held (`before`) to what it
    /// holds now.
    fn account(&mut self, id: StreamId, before: (usize, bool)) {
        let after = self.held(id);
        // Saturating: a miscount must never panic on a peer's input.
        self.buffered = self
            .buffered
            .saturating_sub(before.0)
            .saturating_add(after.0);
        if before.1 {
            self.control_buffered = self.control_buffered.saturating_sub(before.0);
        }
        if after.1 {
            self.control_buffered = self.control_buffered.saturating_add(after.0);
        }
    }

    /// Closes the session once its receive buffers exceed a budget.
    fn check_budgets(&self) -> Result<(), Close> {
        let limits = &self.env.limits;
        let over = if self.control_buffered > limits.control_bytes {
            Some(("partial control messages", limits.control_bytes))
        } else if self.buffered > limits.session_bytes {
            Some(("received data", limits.session_bytes))
        } else {
            None
        };
        let Some((what, limit)) = over else {
            return Ok(());
        };
        SessionCounters::bump(&self.env.counters.budget_closes);
        Err(Close {
            code: error_code::session::PROTOCOL_VIOLATION,
            reason: format!("more than {limit} bytes of {what} buffered"),
        })
    }

    /// Reads the type varint of a new peer stream.
    fn classify(
        &mut self,
        streams: &mut dyn Streams,
        id: StreamId,
        bidi: bool,
    ) -> Result<(), Close> {
        let version = self.version;
        let authorized = self.scope.is_some();
        let early = self.early;
        let Some((inbound, incoming)) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        if !matches!(incoming, Incoming::Untyped) {
            return Ok(());
        }
        let kind = if bidi {
            match inbound.decode(|b| BidiType::decode(version, b)) {
                Ok(Some(kind)) => StreamKind::Bidi(kind),
                Ok(None) => return Ok(()),
                Err(_) => {
                    self.reject_stream(streams, id);
                    return Ok(());
                }
            }
        } else {
            match inbound.decode(|b| UniType::decode(version, b)) {
                Ok(Some(UniType::Setup)) => {
                    *incoming = Incoming::Setup;
                    return Ok(());
                }
                Ok(Some(UniType::Group)) => StreamKind::Group,
                Ok(None) => return Ok(()),
                Err(_) => {
                    self.reject_stream(streams, id);
                    return Ok(());
                }
            }
        };
        if authorized {
            *incoming = Incoming::Active(kind);
        } else if early < MAX_EARLY_STREAMS {
            *incoming = Incoming::Early(kind);
            self.early += 1;
        } else {
            SessionCounters::bump(&self.env.counters.early_streams_refused);
            self.reject_stream(streams, id);
        }
        Ok(())
    }

    /// Resets an unknown, unsupported or unwanted peer stream; the session stays up.
    fn reject_stream(&mut self, streams: &mut dyn Streams, id: StreamId) {
        streams.stop(id, error_code::stream::INTERNAL);
        if streams.is_bidi(id) {
            streams.reset(id, error_code::stream::INTERNAL);
        }
        self.outbound.remove(id);
        self.retire(id);
    }

    /// Forgets a peer stream once the peer finished it, else drains it until then.
    fn retire(&mut self, id: StreamId) {
        match self.streams.get_mut(&id) {
            Some((inbound, _)) if inbound.finished => {
                self.streams.remove(&id);
            }
            Some((inbound, incoming)) => {
                inbound.buf.clear();
                *incoming = Incoming::Ignored;
            }
            None => {}
        }
    }

    fn process_incoming(&mut self, streams: &mut dyn Streams, id: StreamId) -> Result<(), Close> {
        let Some((_, incoming)) = self.streams.get(&id) else {
            return Ok(());
        };
        tracing::trace!(stream = id, kind = ?incoming, "process");
        match *incoming {
            Incoming::Untyped | Incoming::Early(_) => Ok(()),
            Incoming::Ignored => {
                self.retire(id);
                Ok(())
            }
            Incoming::Setup => self.read_setup(id),
            Incoming::Active(StreamKind::Group) => {
                let (inbound, _) = self.streams.get_mut(&id).unwrap();
                let done =
                    self.consumer
                        .on_group_data(&self.env, self.version, streams, id, inbound);
                if done {
                    self.retire(id);
                }
                Ok(())
            }
            Incoming::Active(StreamKind::Bidi(kind)) => self.serve_stream(streams, id, kind),
        }
    }

    fn read_setup(&mut self, id: StreamId) -> Result<(), Close> {
        let (inbound, _) = self.streams.get_mut(&id).unwrap();
        let setup = match inbound.message::<Setup>(self.version) {
            Ok(Some(setup)) => setup,
            Ok(None) => return Ok(()),
            Err(e) => return Err(Close::protocol("SETUP", e)),
        };
        self.streams.remove(&id);
        if self.scope.is_some() {
            return Err(Close {
                code: error_code::session::PROTOCOL_VIOLATION,
                reason: "second SETUP".into(),
            });
        }
        self.consumer.peer_hop = setup.hop;
        if self.dialed.is_some() {
            tracing::info!(peer_hop = setup.hop, version = %self.version, "peer session established");
            self.scope = Some(Rc::new(Scope {
                root: String::new(),
                publish: vec![String::new()],
                subscribe: vec![String::new()],
            }));
            return self.on_authorized();
        }
        let path = self.url_path.clone().or(setup.path).unwrap_or_default();
        self.authorize(&path, setup.role)
    }

    fn serve_stream(
        &mut self,
        streams: &mut dyn Streams,
        id: StreamId,
        kind: BidiType,
    ) -> Result<(), Close> {
        let scope = self
            .scope
            .clone()
            .expect("active streams exist only once authorized");
        let (inbound, _) = self.streams.get_mut(&id).unwrap();
        let ctx = serve::Ctx {
            env: &self.env,
            version: self.version,
            scope: &scope,
            notify: &self.events,
            peer_hop: self.consumer.peer_hop,
        };
        let keep = match kind {
            BidiType::Announce => {
                self.server
                    .on_announce_stream(&ctx, streams, id, inbound, &mut self.outbound)?
            }
            BidiType::Subscribe => {
                self.server
                    .on_subscribe_stream(&ctx, streams, id, inbound, &mut self.outbound)?
            }
            BidiType::Track => {
                self.server
                    .on_track_stream(&ctx, streams, id, inbound, &mut self.outbound)?
            }
            BidiType::Probe => {
                // Accepted and drained: we advertise no probing.
                inbound.buf.clear();
                !inbound.finished
            }
            BidiType::Fetch | BidiType::Goaway => {
                self.reject_stream(streams, id);
                false
            }
        };
        if !keep {
            self.retire(id);
        }
        Ok(())
    }

    fn on_peer_reset(&mut self, streams: &mut dyn Streams, id: StreamId, code: u64) {
        let removed = self.streams.remove(&id);
        if let Some((_, Incoming::Early(_))) = removed {
            self.early -= 1;
        }
        if let Some((_, Incoming::Active(kind))) = removed {
            match kind {
                StreamKind::Group => self.consumer.on_group_reset(&self.env, id, code),
                StreamKind::Bidi(_) => self.server.on_stream_gone(streams, id, &mut self.outbound),
            }
        }
    }

    fn on_own_stream(&mut self, streams: &mut dyn Streams, id: StreamId) -> Result<(), Close> {
        let Some(scope) = self.scope.clone() else {
            return Ok(());
        };
        self.consumer.on_own_stream(
            &self.env,
            self.version,
            &scope,
            self.me,
            streams,
            id,
            &mut self.outbound,
        )
    }

    /// Handles shard events: upstream requests, announcements, track data.
    fn react(&mut self, streams: &mut dyn Streams) -> Result<(), Close> {
        let scope = self.scope.clone().expect("authorized");
        self.consumer.react(
            &self.env,
            self.version,
            &scope,
            self.me,
            &self.inbox,
            streams,
            &mut self.outbound,
        )?;
        let ctx = serve::Ctx {
            env: &self.env,
            version: self.version,
            scope: &scope,
            notify: &self.events,
            peer_hop: self.consumer.peer_hop,
        };
        // Shard events may concern any subscription; packets (ACKs, mostly) and requests
        // only the subscriptions they touched or that have writes pending.
        let all = std::mem::take(&mut self.react_due);
        let _stepped = self.server.react(&ctx, streams, &mut self.outbound, all);
        #[cfg(test)]
        {
            self.visits += _stepped as u64;
        }
        for id in self.server.take_done() {
            let held = self.held(id);
            self.retire(id);
            self.account(id, held);
        }
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.consumer.withdraw(&self.env, self.me);
        self.env.shard.unregister_session(self.me.id);
    }
}

/// The instant a token's `exp` (unix seconds, peer-chosen) falls on; `None` when it lies beyond
/// what the monotonic clock can represent, i.e. never in practice.
fn instant_of_unix(unix: u64, now: Instant) -> Option<Instant> {
    let unix_now = crate::auth::unix_now();
    now.checked_add(std::time::Duration::from_secs(
        unix.saturating_sub(unix_now),
    ))
}

fn unauthorized(err: AuthError) -> Close {
    Close {
        code: error_code::session::UNAUTHORIZED,
        reason: err.to_string(),
    }
}
