//! The relay as publisher towards a viewer: answering its ANNOUNCE, TRACK and SUBSCRIBE
//! streams from the shard's announced set and tracks.
//!
//! An ANNOUNCE answer is written as the viewer takes it: the announced set is read in path
//! order a chunk at a time, only when the stream's queue has drained, and changes wait in
//! the request's watch meanwhile (a watch that overflows resets the stream), so a request
//! costs a cursor, never a copy of the set. A session has at most
//! [`SessionLimits::announce_requests`](super::SessionLimits) requests open at once.
//! Subscriptions are stepped when the shard signals track events, otherwise only those a
//! request touched or whose writes the transport pushed back on.

use super::close::Close;
use super::egress::{Downstream, Step};
use super::env::{SessionCounters, SessionEnv};
use super::io::{Inbound, Outbox};
use crate::auth::Scope;
use crate::model::{AnnounceEvent, AnnounceWatch, Demand, TrackEnd};
use crate::notify::Notify;
use crate::path;
use crate::relay::TrackHandle;
use crate::transport::{StreamId, StreamMap, Streams};
use crate::wire::{
    self, error_code::stream as code, Announce, AnnounceOk, AnnounceRequest, AnnounceStatus,
    Message, Subscribe, SubscribeUpdate, TrackRequest, Version,
};
use std::rc::Rc;

/// Most announcements written from the announced set per step of one request.
pub(super) const SNAPSHOT_CHUNK: usize = 256;

/// What serving a stream needs from its session.
pub struct Ctx<'a> {
    pub env: &'a Rc<SessionEnv>,
    pub version: Version,
    pub scope: &'a Scope,
    pub notify: &'a Rc<Notify>,
    /// The peer's hop id from its SETUP (0 if unknown).
    pub peer_hop: u64,
}

/// An ANNOUNCE request we answer.
struct AnnounceServe {
    /// The request prefix, absolute.
    prefix: String,
    exclude: u64,
    /// One per prefix the requester may see within its request.
    views: Vec<AnnounceView>,
}

/// One watched prefix of a request, and how far its answer from the announced set got.
struct AnnounceView {
    watch: Rc<AnnounceWatch>,
    /// The last path written from the set; changes after it are not the peer's yet.
    cursor: Option<String>,
    /// The whole set under the prefix was written; every change is the peer's.
    caught_up: bool,
}

/// A TRACK request waiting for the track's info.
struct TrackServe {
    handle: TrackHandle,
}

/// The serving half of a session.
#[derive(Default)]
pub struct Server {
    announces: StreamMap<AnnounceServe>,
    tracks: StreamMap<TrackServe>,
    subscriptions: StreamMap<Downstream>,
    /// Subscriptions to step next time even without shard events: new or updated ones, and
    /// those whose writes the transport pushed back on.
    ready: Vec<StreamId>,
    /// The list being stepped, kept between steps for its capacity (no allocation per step).
    stepping: Vec<StreamId>,
    /// Peer streams we are done with (answered or refused), for the session to retire.
    done: Vec<StreamId>,
}

impl Server {
    /// Reads an ANNOUNCE stream. Returns whether to keep reading it.
    pub fn on_announce_stream(
        &mut self,
        ctx: &Ctx<'_>,
        streams: &mut dyn Streams,
        id: StreamId,
        inbound: &mut Inbound,
        outbound: &mut Outbox,
    ) -> Result<bool, Close> {
        if !self.announces.contains_key(&id) {
            let request = match inbound.message::<AnnounceRequest>(ctx.version) {
                Ok(Some(request)) => request,
                Ok(None) => return Ok(true),
                Err(e) => {
                    tracing::debug!(bytes = ?&inbound.buf[..inbound.buf.len().min(64)], "bad ANNOUNCE_REQUEST");
                    return Err(Close::protocol("ANNOUNCE_REQUEST", e));
                }
            };
            if self.announces.len() >= ctx.env.limits.announce_requests {
                SessionCounters::bump(&ctx.env.counters.announce_requests_refused);
                tracing::debug!(
                    limit = ctx.env.limits.announce_requests,
                    "announce request refused: too many open"
                );
                refuse(streams, id, code::INTERNAL);
                outbound.remove(id);
                return Ok(false);
            }
            self.start_announce(ctx, id, request, outbound);
        }
        // The requester sends nothing more; its FIN ends the stream.
        inbound.buf.clear();
        if inbound.finished {
            self.announces.remove(&id);
            outbound.entry(id).finish();
            return Ok(false);
        }
        Ok(true)
    }

    /// Starts answering an ANNOUNCE request: ANNOUNCE_OK (lite-05) counting the first chunk
    /// of the announced set, which follows at once; the rest of the set follows as the
    /// requester takes it (see [`Self::announce_changes`]), as plain announcements.
    fn start_announce(
        &mut self,
        ctx: &Ctx<'_>,
        id: StreamId,
        request: AnnounceRequest,
        outbound: &mut Outbox,
    ) {
        let prefix = ctx.scope.absolute(&request.prefix);
        let exclude = if request.exclude_hop != 0 {
            request.exclude_hop
        } else {
            ctx.peer_hop
        };
        let mut serve = AnnounceServe {
            prefix,
            exclude,
            views: Vec::new(),
        };
        {
            let mut announced = ctx.env.shard.announced.borrow_mut();
            for visible in ctx.scope.visible_within(&request.prefix) {
                let absolute = ctx.scope.absolute(&visible);
                serve.views.push(AnnounceView {
                    watch: announced.watch(absolute, ctx.notify.clone()),
                    cursor: None,
                    caught_up: false,
                });
            }
        }
        let mut first = Vec::new();
        let count = serve.write_snapshot(ctx, &mut first);
        let mut buf = Vec::new();
        if ctx.version == Version::Lite05 {
            let ok = AnnounceOk {
                hop: ctx.env.shard.config.hop,
                active_count: count as u64,
            };
            let _ = ok.encode(ctx.version, &mut buf);
        }
        buf.extend_from_slice(&first);
        outbound.entry(id).push(buf);
        tracing::debug!(prefix = %serve.prefix, "serving announcements");
        self.announces.insert(id, serve);
    }

    /// Peer streams answered or refused since the last call.
    pub fn take_done(&mut self) -> Vec<StreamId> {
        std::mem::take(&mut self.done)
    }

    /// Reads a TRACK stream (lite-05). Returns whether to keep reading it.
    pub fn on_track_stream(
        &mut self,
        ctx: &Ctx<'_>,
        streams: &mut dyn Streams,
        id: StreamId,
        inbound: &mut Inbound,
        outbound: &mut Outbox,
    ) -> Result<bool, Close> {
        if self.tracks.contains_key(&id) {
            if inbound.finished && inbound.buf.is_empty() {
                // Abandoned before the reply.
                self.tracks.remove(&id);
                streams.reset(id, code::CANCEL);
                return Ok(false);
            }
            return Ok(true);
        }
        let request = match inbound.message::<TrackRequest>(ctx.version) {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(true),
            Err(e) => return Err(Close::protocol("TRACK", e)),
        };
        match resolve(ctx, &request.broadcast) {
            Some(_) if !ctx.env.shard.admits_requests() => {
                tracing::warn!(broadcast = %request.broadcast, "track request refused: the relay's mesh is congested");
                refuse(streams, id, code::INTERNAL);
                outbound.remove(id);
                Ok(false)
            }
            Some(broadcast) => {
                let handle = ctx.env.shard.open_track(&broadcast, &request.track, None);
                handle.track().watch(ctx.notify);
                let serve = TrackServe { handle };
                if answer_track(ctx.version, streams, outbound, id, &serve, &mut self.done) {
                    return Ok(false);
                }
                self.tracks.insert(id, serve);
                Ok(true)
            }
            None => {
                refuse(streams, id, code::UNROUTABLE);
                outbound.remove(id);
                Ok(false)
            }
        }
    }

    /// Reads a SUBSCRIBE stream. Returns whether to keep reading it.
    pub fn on_subscribe_stream(
        &mut self,
        ctx: &Ctx<'_>,
        streams: &mut dyn Streams,
        id: StreamId,
        inbound: &mut Inbound,
        outbound: &mut Outbox,
    ) -> Result<bool, Close> {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.subscriptions.entry(id) {
            let request = match inbound.message::<Subscribe>(ctx.version) {
                Ok(Some(request)) => request,
                Ok(None) => return Ok(true),
                Err(e) => return Err(Close::protocol("SUBSCRIBE", e)),
            };
            let Some(broadcast) = resolve(ctx, &request.broadcast) else {
                tracing::debug!(broadcast = %request.broadcast, "subscribe refused: unroutable");
                refuse(streams, id, code::UNROUTABLE);
                return Ok(false);
            };
            if !ctx.env.shard.admits_requests() {
                // Control to other shards is never dropped; a congested mesh refuses new work
                // instead, visibly, and the viewer may retry.
                tracing::warn!(broadcast = %broadcast, track = %request.track, "subscribe refused: the relay's mesh is congested");
                refuse(streams, id, code::INTERNAL);
                return Ok(false);
            }
            let handle =
                ctx.env
                    .shard
                    .open_track(&broadcast, &request.track, Some(demand_of(&request)));
            handle.track().watch(ctx.notify);
            let mut downstream = Downstream::new(&request, handle);
            downstream.accept(ctx.version, outbound.entry(id));
            tracing::debug!(broadcast = %broadcast, track = %request.track, id = request.id, "subscribed");
            slot.insert(downstream);
            self.ready.push(id);
        }
        loop {
            match inbound.message::<SubscribeUpdate>(ctx.version) {
                Ok(Some(update)) => {
                    if let Some(sub) = self.subscriptions.get_mut(&id) {
                        sub.update(&update);
                        self.ready.push(id);
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(Close::protocol("SUBSCRIBE_UPDATE", e)),
            }
        }
        if inbound.drained() {
            // Unsubscribe: cancel what is in flight and close our side.
            if let Some(mut sub) = self.subscriptions.remove(&id) {
                sub.cancel(streams, code::CANCEL);
            }
            outbound.entry(id).finish();
            return Ok(false);
        }
        Ok(true)
    }

    /// The peer reset one of its bidi streams.
    pub fn on_stream_gone(
        &mut self,
        streams: &mut dyn Streams,
        id: StreamId,
        outbound: &mut Outbox,
    ) {
        if let Some(mut sub) = self.subscriptions.remove(&id) {
            sub.cancel(streams, code::CANCEL);
        }
        self.announces.remove(&id);
        self.tracks.remove(&id);
        if outbound.remove(id) {
            streams.reset(id, code::CANCEL);
        }
    }

    /// Writes announcement changes, TRACK_INFO replies and group data: for every
    /// subscription when `all` (the shard signalled track events), else only for those
    /// listed as ready. Returns how many subscriptions it stepped.
    pub fn react(
        &mut self,
        ctx: &Ctx<'_>,
        streams: &mut dyn Streams,
        outbound: &mut Outbox,
        all: bool,
    ) -> usize {
        self.announce_changes(ctx, streams, outbound);
        if all {
            self.answer_tracks(ctx.version, streams, outbound);
        }
        let mut ready = std::mem::take(&mut self.stepping);
        std::mem::swap(&mut ready, &mut self.ready);
        if all {
            ready.clear();
            ready.extend(self.subscriptions.keys().copied());
        } else {
            ready.sort_unstable();
            ready.dedup();
        }
        let stepped = ready.len();
        for id in ready.drain(..) {
            let Some(sub) = self.subscriptions.get_mut(&id) else {
                continue;
            };
            match sub.step(ctx.version, streams, outbound.entry(id)) {
                // A finished subscription waits for the subscriber's FIN.
                Step::Continue | Step::Finished => {
                    if sub.has_backlog() {
                        self.ready.push(id);
                    }
                }
                Step::Fail(c) => {
                    refuse(streams, id, c);
                    outbound.remove(id);
                    self.subscriptions.remove(&id);
                    self.done.push(id);
                }
            }
        }
        self.stepping = ready;
        stepped
    }

    /// Writes, for each announce request whose stream has drained, the changes its watches
    /// queued and the next chunk of the announced set. A request whose watch overflowed
    /// (the requester fell too far behind) is reset.
    fn announce_changes(
        &mut self,
        ctx: &Ctx<'_>,
        streams: &mut dyn Streams,
        outbound: &mut Outbox,
    ) {
        let mut overflowed = Vec::new();
        for (&id, serve) in self.announces.iter_mut() {
            if serve.views.iter().any(|v| v.watch.overflowed()) {
                overflowed.push(id);
                continue;
            }
            if !outbound.is_drained(id) {
                continue;
            }
            let mut buf = Vec::new();
            serve.write_changes(ctx, &mut buf);
            serve.write_snapshot(ctx, &mut buf);
            if !buf.is_empty() {
                outbound.entry(id).push(buf);
            }
        }
        for id in overflowed {
            tracing::warn!("announce stream fell too far behind; reset");
            self.announces.remove(&id);
            refuse(streams, id, code::TOO_FAR_BEHIND);
            outbound.remove(id);
            self.done.push(id);
        }
    }

    /// Answers every TRACK request whose track has its info (or failed).
    fn answer_tracks(
        &mut self,
        version: Version,
        streams: &mut dyn Streams,
        outbound: &mut Outbox,
    ) {
        let done = &mut self.done;
        self.tracks
            .retain(|&id, serve| !answer_track(version, streams, outbound, id, serve, done));
    }
}

/// Answers one TRACK request if its track has its info (TRACK_INFO, FIN) or failed (reset);
/// returns whether it was answered.
fn answer_track(
    version: Version,
    streams: &mut dyn Streams,
    outbound: &mut Outbox,
    id: StreamId,
    serve: &TrackServe,
    done: &mut Vec<StreamId>,
) -> bool {
    let track = serve.handle.track();
    if let Some(TrackEnd::Failed(c)) = track.end() {
        refuse(streams, id, c);
        outbound.remove(id);
        done.push(id);
        return true;
    }
    let Some(info) = track.info() else {
        return false;
    };
    let reply = wire::TrackInfo {
        priority: info.priority,
        max_latency_ms: info.max_age_ms,
        timescale: info.timescale,
    };
    let mut buf = Vec::new();
    if reply.encode(version, &mut buf).is_ok() {
        let out = outbound.entry(id);
        out.push(buf);
        out.finish();
    }
    done.push(id);
    true
}

impl AnnounceServe {
    /// Writes the changes queued since the last call that concern what the requester has
    /// seen: those at or before a view's cursor, every one once it caught up (later paths
    /// are read from the set when the cursor gets there).
    fn write_changes(&mut self, ctx: &Ctx<'_>, buf: &mut Vec<u8>) {
        let our_hop = ctx.env.shard.config.hop;
        let shown = |hops: &[u64]| visible_to(hops, self.exclude, our_hop);
        for view in &self.views {
            while let Some(event) = view.watch.pop() {
                let path = match &event {
                    AnnounceEvent::Active { path, .. } | AnnounceEvent::Ended { path, .. } => path,
                };
                let seen = view.caught_up
                    || view
                        .cursor
                        .as_deref()
                        .is_some_and(|cursor| path.as_str() <= cursor);
                if !seen {
                    continue;
                }
                match &event {
                    AnnounceEvent::Active {
                        path,
                        hops,
                        previous,
                    } => {
                        let before = previous.as_deref().is_some_and(shown);
                        let now = shown(hops);
                        if now && !(before && ctx.version == Version::Lite04) {
                            // lite-04 peers treat a repeat as a duplicate: keep the old chain.
                            encode_active(ctx, &self.prefix, path, hops, buf);
                        } else if before && !now {
                            encode_ended(ctx, &self.prefix, path, buf);
                        }
                    }
                    AnnounceEvent::Ended { path, hops } => {
                        if shown(hops) {
                            encode_ended(ctx, &self.prefix, path, buf);
                        }
                    }
                }
            }
        }
    }

    /// Writes up to [`SNAPSHOT_CHUNK`] active broadcasts from the set after the views'
    /// cursors, moving them on; returns how many it wrote.
    fn write_snapshot(&mut self, ctx: &Ctx<'_>, buf: &mut Vec<u8>) -> usize {
        let our_hop = ctx.env.shard.config.hop;
        let announced = ctx.env.shard.announced.borrow();
        let mut written = 0;
        let mut read = 0;
        for view in self.views.iter_mut().filter(|v| !v.caught_up) {
            let mut last = None;
            let mut exhausted = true;
            for (path, hops) in announced.after(&view.watch.prefix, view.cursor.as_deref()) {
                // Invisible routes count too, so one step's work stays bounded.
                if written == SNAPSHOT_CHUNK || read == 4 * SNAPSHOT_CHUNK {
                    exhausted = false;
                    break;
                }
                read += 1;
                last = Some(path);
                if visible_to(hops, self.exclude, our_hop) {
                    encode_active(ctx, &self.prefix, path, hops, buf);
                    written += 1;
                }
            }
            if let Some(last) = last {
                view.cursor = Some(last.to_string());
            }
            if !exhausted {
                break;
            }
            view.caught_up = true;
        }
        written
    }
}

fn encode_ended(ctx: &Ctx<'_>, prefix: &str, path: &str, buf: &mut Vec<u8>) {
    let suffix = path::strip_prefix(path, prefix).unwrap_or_default();
    let ended = Announce {
        status: AnnounceStatus::Ended,
        suffix: suffix.to_string(),
        hops: Vec::new(),
    };
    let _ = ended.encode(ctx.version, buf);
}

/// What a SUBSCRIBE asks of its track.
fn demand_of(request: &Subscribe) -> Demand {
    Demand {
        priority: request.priority,
        max_age_ms: request.max_latency_ms,
        start: request.start_group,
        end: request.end_group,
    }
}

/// The absolute broadcast path of a viewer's request, if it may see it and it is announced.
fn resolve(ctx: &Ctx<'_>, relative: &str) -> Option<String> {
    let relative = path::normalize(relative).ok()?;
    if !ctx.scope.may_subscribe(&relative) {
        return None;
    }
    let absolute = ctx.scope.absolute(&relative);
    ctx.env
        .shard
        .announced
        .borrow()
        .get(&absolute)
        .is_some()
        .then_some(absolute)
}

/// Whether a route's chain may be shown to a peer with hop `exclude`.
fn visible_to(hops: &[u64], exclude: u64, our_hop: u64) -> bool {
    !hops
        .iter()
        .any(|&h| h != 0 && (h == exclude || h == our_hop))
}

fn encode_active(ctx: &Ctx<'_>, prefix: &str, path: &str, hops: &[u64], buf: &mut Vec<u8>) {
    let suffix = path::strip_prefix(path, prefix)
        .unwrap_or_default()
        .to_string();
    let mut hops = hops.to_vec();
    // On lite-04 the sender appends itself; on lite-05 the receiver appends our OK hop.
    if ctx.version == Version::Lite04 {
        hops.push(ctx.env.shard.config.hop);
    }
    hops.truncate(wire::MAX_HOPS);
    let active = Announce {
        status: AnnounceStatus::Active,
        suffix,
        hops,
    };
    let _ = active.encode(ctx.version, buf);
}

/// Refuses or fails a bidi stream in both directions.
fn refuse(streams: &mut dyn Streams, id: StreamId, c: u64) {
    streams.reset(id, c);
    streams.stop(id, c);
}
