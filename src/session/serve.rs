//! The relay as publisher towards a viewer: answering its ANNOUNCE, TRACK and SUBSCRIBE
//! streams from the shard's announced set and tracks.

use super::close::Close;
use super::egress::{Downstream, Step};
use super::env::SessionEnv;
use super::io::{Inbound, Outbound};
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
use std::collections::HashSet;
use std::rc::Rc;

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
    watches: Vec<Rc<AnnounceWatch>>,
    /// Absolute paths the peer currently sees as active.
    active: HashSet<String>,
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
        outbound: &mut StreamMap<Outbound>,
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
            self.start_announce(ctx, id, request, outbound);
        }
        // The requester sends nothing more; its FIN ends the stream.
        inbound.buf.clear();
        if inbound.finished {
            self.announces.remove(&id);
            outbound.entry(id).or_default().finish();
            let _ = streams;
            return Ok(false);
        }
        Ok(true)
    }

    fn start_announce(
        &mut self,
        ctx: &Ctx<'_>,
        id: StreamId,
        request: AnnounceRequest,
        outbound: &mut StreamMap<Outbound>,
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
            watches: Vec::new(),
            active: HashSet::new(),
        };
        let mut initial: Vec<(String, Vec<u64>)> = Vec::new();
        {
            let mut announced = ctx.env.shard.announced.borrow_mut();
            for visible in ctx.scope.visible_within(&request.prefix) {
                let absolute = ctx.scope.absolute(&visible);
                serve
                    .watches
                    .push(announced.watch(absolute.clone(), ctx.notify.clone()));
                for (path, hops) in announced.under(&absolute) {
                    initial.push((path.to_string(), hops.to_vec()));
                }
            }
        }
        initial.retain(|(_, hops)| visible_to(hops, exclude, ctx.env.shard.config.hop));
        let out = outbound.entry(id).or_default();
        let mut buf = Vec::new();
        if ctx.version == Version::Lite05 {
            let ok = AnnounceOk {
                hop: ctx.env.shard.config.hop,
                active_count: initial.len() as u64,
            };
            let _ = ok.encode(ctx.version, &mut buf);
        }
        for (path, hops) in initial {
            encode_active(ctx, &serve.prefix, &path, &hops, &mut buf);
            serve.active.insert(path);
        }
        out.push(buf);
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
        outbound: &mut StreamMap<Outbound>,
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
                outbound.remove(&id);
                Ok(false)
            }
            Some(broadcast) => {
                let handle = ctx.env.shard.open_track(&broadcast, &request.track, None);
                handle.track().watch(ctx.notify);
                self.tracks.insert(id, TrackServe { handle });
                self.answer_tracks(ctx.version, streams, outbound);
                Ok(self.tracks.contains_key(&id))
            }
            None => {
                refuse(streams, id, code::UNROUTABLE);
                outbound.remove(&id);
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
        outbound: &mut StreamMap<Outbound>,
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
            downstream.accept(ctx.version, outbound.entry(id).or_default());
            tracing::debug!(broadcast = %broadcast, track = %request.track, id = request.id, "subscribed");
            slot.insert(downstream);
        }
        loop {
            match inbound.message::<SubscribeUpdate>(ctx.version) {
                Ok(Some(update)) => {
                    if let Some(sub) = self.subscriptions.get_mut(&id) {
                        sub.update(&update);
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
            outbound.entry(id).or_default().finish();
            return Ok(false);
        }
        Ok(true)
    }

    /// The peer reset one of its bidi streams.
    pub fn on_stream_gone(
        &mut self,
        streams: &mut dyn Streams,
        id: StreamId,
        outbound: &mut StreamMap<Outbound>,
    ) {
        if let Some(mut sub) = self.subscriptions.remove(&id) {
            sub.cancel(streams, code::CANCEL);
        }
        self.announces.remove(&id);
        self.tracks.remove(&id);
        if outbound.remove(&id).is_some() {
            streams.reset(id, code::CANCEL);
        }
    }

    /// Writes announcement changes, TRACK_INFO replies and group data.
    /// Whether a subscription has writes the transport did not take yet.
    pub fn has_backlog(&self) -> bool {
        self.subscriptions.values().any(Downstream::has_backlog)
    }

    pub fn react(
        &mut self,
        ctx: &Ctx<'_>,
        streams: &mut dyn Streams,
        outbound: &mut StreamMap<Outbound>,
    ) {
        self.announce_changes(ctx, streams, outbound);
        self.answer_tracks(ctx.version, streams, outbound);
        let mut done = Vec::new();
        for (&id, sub) in self.subscriptions.iter_mut() {
            let control = outbound.entry(id).or_default();
            match sub.step(ctx.version, streams, control) {
                // A finished subscription waits for the subscriber's FIN.
                Step::Continue | Step::Finished => {}
                Step::Fail(c) => {
                    refuse(streams, id, c);
                    outbound.remove(&id);
                    done.push(id);
                }
            }
        }
        for id in done {
            self.subscriptions.remove(&id);
            self.done.push(id);
        }
    }

    fn announce_changes(
        &mut self,
        ctx: &Ctx<'_>,
        streams: &mut dyn Streams,
        outbound: &mut StreamMap<Outbound>,
    ) {
        let our_hop = ctx.env.shard.config.hop;
        let mut overflowed = Vec::new();
        for (&id, serve) in self.announces.iter_mut() {
            let mut buf = Vec::new();
            for watch in &serve.watches {
                if watch.overflowed() {
                    overflowed.push(id);
                    break;
                }
                while let Some(event) = watch.pop() {
                    match event {
                        AnnounceEvent::Active { path, hops } => {
                            if !visible_to(&hops, serve.exclude, our_hop) {
                                continue;
                            }
                            let replay = serve.active.contains(&path);
                            // lite-04 peers treat a repeat as a duplicate: keep the old chain.
                            if replay && ctx.version == Version::Lite04 {
                                continue;
                            }
                            encode_active(ctx, &serve.prefix, &path, &hops, &mut buf);
                            serve.active.insert(path);
                        }
                        AnnounceEvent::Ended { path } => {
                            if serve.active.remove(&path) {
                                let suffix =
                                    path::strip_prefix(&path, &serve.prefix).unwrap_or_default();
                                let ended = Announce {
                                    status: AnnounceStatus::Ended,
                                    suffix: suffix.to_string(),
                                    hops: Vec::new(),
                                };
                                let _ = ended.encode(ctx.version, &mut buf);
                            }
                        }
                    }
                }
            }
            if !buf.is_empty() {
                outbound.entry(id).or_default().push(buf);
            }
        }
        for id in overflowed {
            tracing::warn!("announce stream fell too far behind; reset");
            self.announces.remove(&id);
            refuse(streams, id, code::TOO_FAR_BEHIND);
            outbound.remove(&id);
            self.done.push(id);
        }
    }

    fn answer_tracks(
        &mut self,
        version: Version,
        streams: &mut dyn Streams,
        outbound: &mut StreamMap<Outbound>,
    ) {
        let done = &mut self.done;
        self.tracks.retain(|&id, serve| {
            let track = serve.handle.track();
            if let Some(TrackEnd::Failed(c)) = track.end() {
                refuse(streams, id, c);
                outbound.remove(&id);
                done.push(id);
                return false;
            }
            let Some(info) = track.info() else {
                return true;
            };
            let reply = wire::TrackInfo {
                priority: info.priority,
                max_latency_ms: info.max_age_ms,
                timescale: info.timescale,
            };
            let mut buf = Vec::new();
            if reply.encode(version, &mut buf).is_ok() {
                let out = outbound.entry(id).or_default();
                out.push(buf);
                out.finish();
            }
            done.push(id);
            false
        });
    }
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
