//! The relay as subscriber towards a publishing peer: it asks for the peer's announcements,
//! turns them into routes, and serves the owners' upstream requests with one TRACK and one
//! SUBSCRIBE per track, feeding received groups back to the owner.

use super::close::Close;
use super::env::SessionEnv;
use super::io::{Inbound, Outbox, ReadOutcome};
use crate::auth::Scope;
use crate::model::{Demand, FrameHead, TrackEnd, TrackEvent, TrackInfo};
use crate::path;
use crate::relay::{SessionRef, UpstreamInbox, UpstreamRequest};
use crate::transport::{StreamId, StreamMap, Streams};
use crate::wire::SubscribeUpdate;
use crate::wire::{
    self, error_code::stream as code, Announce, AnnounceOk, AnnounceRequest, AnnounceStatus,
    BidiType, FrameHeader, GroupHeader, Message, Subscribe, SubscribeResponse, TrackRequest,
    Version,
};
use std::collections::{HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

/// Most broadcasts one session may announce at once.
const MAX_ROUTES: usize = 10_000;
/// Most bytes buffered for one of our control streams.
const CONTROL_BUFFER: usize = wire::MAX_MESSAGE_SIZE + 16;
/// Fewest payload bytes of an unfinished frame forwarded at once (the rest of a frame goes
/// however small it is). Frames up to this size always travel whole.
const MIN_CHUNK: usize = 4096;
/// Most payload bytes forwarded in one event: a mesh lane holds a bounded number of
/// messages, and this bounds each. Frames up to this size arrive whole in one event.
const MAX_CHUNK: usize = 64 << 10;

/// One of our upstream tracks (and, once wanted, its subscription).
struct Upstream {
    owner: usize,
    track_id: u64,
    /// Broadcast path relative to the session root, and track name.
    broadcast: String,
    track: String,
    /// The SUBSCRIBE stream, once someone wants the groups.
    subscribe_stream: Option<StreamId>,
    /// The SUBSCRIBE_END sequence, once the publisher declared it.
    end: Option<u64>,
    /// The highest group sequence seen, for lite-04 ends.
    highest: Option<u64>,
    /// We asked to stop; late streams and resets are expected.
    closing: bool,
    /// Payload forwarded for this track's groups whose streams are still open: what this
    /// publisher has in flight towards the cache, kept within the track budget.
    open_bytes: usize,
}

/// What one of our bidi streams is for.
enum OwnStream {
    Announce {
        prefix: String,
        ok_hop: Option<u64>,
        paths: HashSet<String>,
    },
    Track {
        subscription: u64,
    },
    Subscribe {
        subscription: u64,
    },
}

/// A group stream from the publisher being read.
struct GroupIngest {
    subscription: u64,
    sequence: u64,
    last_timestamp: u64,
    /// Payload bytes the group's frame headers declared so far (at most `max_group_bytes`).
    bytes: usize,
    /// Payload bytes forwarded so far (counted in the upstream's `open_bytes`).
    forwarded: usize,
    frame: FrameIngest,
}

/// Where a group stream is inside its frames. A frame is forwarded as it arrives
/// (cut-through): its header with the first payload bytes, then the rest in chunks, so a
/// large frame costs the relay its bytes in flight, never its whole size in a buffer. A
/// frame that arrived whole goes in one event, as before (up to [`MAX_CHUNK`]); a partial one
/// waits for [`MIN_CHUNK`] bytes, so ordinary frames split across reads do not turn into many
/// small events.
#[derive(Clone, Copy, Debug)]
enum FrameIngest {
    /// The next bytes are a frame header.
    Between,
    /// A frame header was read; nothing of the frame was forwarded yet.
    Header(FrameHead),
    /// The frame was forwarded up to `missing` payload bytes.
    Payload { missing: usize },
    /// We stopped the stream (its track's open groups passed the budget); what still
    /// arrives is dropped.
    Stopped,
}

/// The consuming half of a session.
#[derive(Default)]
pub struct Consumer {
    /// The peer's hop id from its SETUP.
    pub peer_hop: u64,
    /// How many of the session's publish prefixes we asked the peer about.
    requested: usize,
    own: StreamMap<(Inbound, OwnStream)>,
    /// Absolute paths we announced on the peer's behalf.
    routes: HashSet<String>,
    upstreams: HashMap<u64, Upstream>,
    by_owner: HashMap<(usize, u64), u64>,
    groups: StreamMap<Option<GroupIngest>>,
    next_subscription: u64,
}

impl Consumer {
    /// Opens announce requests once authorized and serves upstream requests.
    #[allow(clippy::too_many_arguments)]
    pub fn react(
        &mut self,
        env: &SessionEnv,
        version: Version,
        scope: &Scope,
        _me: SessionRef,
        inbox: &UpstreamInbox,
        streams: &mut dyn Streams,
        outbound: &mut Outbox,
    ) -> Result<(), Close> {
        // One announce request per publish prefix; a transport that has no stream credit
        // yet (QMux before the peer's parameters) gets the rest on a later poll.
        while self.requested < scope.publish.len() {
            let prefix = &scope.publish[self.requested];
            let Ok(id) = streams.open_bidi() else {
                break;
            };
            self.requested += 1;
            {
                let mut buf = Vec::new();
                let request = AnnounceRequest {
                    prefix: prefix.clone(),
                    exclude_hop: env.shard.config.hop,
                };
                if BidiType::Announce.encode(version, &mut buf).is_ok()
                    && request.encode(version, &mut buf).is_ok()
                {
                    outbound.entry(id).push(buf);
                    let own = OwnStream::Announce {
                        prefix: prefix.clone(),
                        ok_hop: None,
                        paths: HashSet::new(),
                    };
                    self.own.insert(id, (Inbound::default(), own));
                }
            }
        }
        while let Some(request) = inbox.pop() {
            match request {
                UpstreamRequest::Subscribe {
                    owner,
                    track_id,
                    broadcast,
                    track,
                    demand,
                } => self.open_upstream(
                    env, version, scope, streams, outbound, owner, track_id, &broadcast, &track,
                    demand,
                ),
                UpstreamRequest::Update {
                    owner,
                    track_id,
                    demand,
                } => {
                    if let Some(&sub) = self.by_owner.get(&(owner, track_id)) {
                        self.apply_demand(version, streams, outbound, sub, demand);
                    }
                }
                UpstreamRequest::Unsubscribe { owner, track_id } => {
                    let Some(sub) = self.by_owner.remove(&(owner, track_id)) else {
                        continue;
                    };
                    let stream = self.upstreams.get_mut(&sub).and_then(|up| {
                        up.closing = true;
                        up.subscribe_stream
                    });
                    match stream {
                        Some(stream) => outbound.entry(stream).finish(),
                        None => {
                            self.upstreams.remove(&sub);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Opens the upstream side of owner track `track_id`: TRACK on lite-05 (synthesized
    /// info before), and SUBSCRIBE once someone wants its groups.
    #[allow(clippy::too_many_arguments)]
    fn open_upstream(
        &mut self,
        env: &SessionEnv,
        version: Version,
        scope: &Scope,
        streams: &mut dyn Streams,
        outbound: &mut Outbox,
        owner: usize,
        track_id: u64,
        broadcast: &str,
        track: &str,
        demand: Option<Demand>,
    ) {
        let fail = |code| {
            env.shard
                .deliver(owner, track_id, TrackEvent::End(TrackEnd::Failed(code)))
        };
        let Some(relative) = scope.relative(broadcast) else {
            return fail(code::UNROUTABLE);
        };
        let subscription = self.next_subscription;
        self.next_subscription += 1;
        if version == Version::Lite05 {
            let Ok(id) = streams.open_bidi() else {
                return fail(code::INTERNAL);
            };
            let mut buf = Vec::new();
            let request = TrackRequest {
                broadcast: relative.to_string(),
                track: track.to_string(),
            };
            if BidiType::Track.encode(version, &mut buf).is_ok()
                && request.encode(version, &mut buf).is_ok()
            {
                outbound.entry(id).push(buf);
                self.own
                    .insert(id, (Inbound::default(), OwnStream::Track { subscription }));
            }
        } else {
            // No TRACK before lite-05: the properties of moq-net's pre-05 sources.
            env.shard
                .deliver(owner, track_id, TrackEvent::Info(TrackInfo::default()));
        }
        self.upstreams.insert(
            subscription,
            Upstream {
                owner,
                track_id,
                broadcast: relative.to_string(),
                track: track.to_string(),
                subscribe_stream: None,
                end: None,
                highest: None,
                closing: false,
                open_bytes: 0,
            },
        );
        self.by_owner.insert((owner, track_id), subscription);
        if let Some(demand) = demand {
            self.apply_demand(version, streams, outbound, subscription, demand);
        }
    }

    /// Subscribes upstream with `demand`, or updates the subscription to it.
    fn apply_demand(
        &mut self,
        version: Version,
        streams: &mut dyn Streams,
        outbound: &mut Outbox,
        subscription: u64,
        demand: Demand,
    ) {
        let Some(up) = self.upstreams.get_mut(&subscription) else {
            return;
        };
        let mut buf = Vec::new();
        if let Some(stream) = up.subscribe_stream {
            if terms(demand).encode(version, &mut buf).is_ok() {
                outbound.entry(stream).push(buf);
            }
            return;
        }
        let request = Subscribe {
            id: subscription,
            broadcast: up.broadcast.clone(),
            track: up.track.clone(),
            priority: demand.priority,
            max_latency_ms: demand.max_age_ms,
            start_group: demand.start,
            end_group: demand.end,
        };
        let Ok(stream) = streams.open_bidi() else {
            tracing::warn!(subscription, "no stream credit for an upstream SUBSCRIBE");
            return;
        };
        if BidiType::Subscribe.encode(version, &mut buf).is_err()
            || request.encode(version, &mut buf).is_err()
        {
            return;
        }
        outbound.entry(stream).push(buf);
        self.own.insert(
            stream,
            (Inbound::default(), OwnStream::Subscribe { subscription }),
        );
        up.subscribe_stream = Some(stream);
        tracing::debug!(broadcast = %up.broadcast, track = %up.track, subscription, "subscribed upstream");
    }

    /// Reads one of our own bidi streams.
    #[allow(clippy::too_many_arguments)]
    pub fn on_own_stream(
        &mut self,
        env: &SessionEnv,
        version: Version,
        scope: &Scope,
        me: SessionRef,
        streams: &mut dyn Streams,
        id: StreamId,
        outbound: &mut Outbox,
    ) -> Result<(), Close> {
        let Some((inbound, _)) = self.own.get_mut(&id) else {
            // A stream we forgot: drain it.
            let mut scratch = Inbound::default();
            scratch.fill(streams, id, usize::MAX);
            return Ok(());
        };
        let outcome = inbound.fill(streams, id, CONTROL_BUFFER);
        let (mut inbound, kind) = self.own.remove(&id).expect("present");
        let keep = match kind {
            OwnStream::Announce {
                prefix,
                ok_hop,
                paths,
            } => self.read_announces(
                env,
                version,
                scope,
                me,
                &mut inbound,
                &outcome,
                prefix,
                ok_hop,
                paths,
                id,
            )?,
            OwnStream::Track { subscription } => {
                self.read_track_info(env, version, &mut inbound, &outcome, subscription, id)?
            }
            OwnStream::Subscribe { subscription } => self.read_responses(
                env,
                version,
                &mut inbound,
                &outcome,
                subscription,
                id,
                outbound,
            )?,
        };
        if let Some(kind) = keep {
            self.own.insert(id, (inbound, kind));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn read_announces(
        &mut self,
        env: &SessionEnv,
        version: Version,
        scope: &Scope,
        me: SessionRef,
        inbound: &mut Inbound,
        outcome: &ReadOutcome,
        prefix: String,
        mut ok_hop: Option<u64>,
        mut paths: HashSet<String>,
        id: StreamId,
    ) -> Result<Option<OwnStream>, Close> {
        let our_hop = env.shard.config.hop;
        if version == Version::Lite05 && ok_hop.is_none() {
            match inbound.message::<AnnounceOk>(version) {
                Ok(Some(ok)) => ok_hop = Some(ok.hop),
                Ok(None) => {}
                Err(e) => return Err(Close::protocol("ANNOUNCE_OK", e)),
            }
        }
        if version == Version::Lite04 || ok_hop.is_some() {
            loop {
                let announce = match inbound.message::<Announce>(version) {
                    Ok(Some(announce)) => announce,
                    Ok(None) => break,
                    Err(e) => return Err(Close::protocol("ANNOUNCE", e)),
                };
                let Ok(suffix) = path::normalize(&announce.suffix) else {
                    return Err(Close::protocol(
                        "ANNOUNCE",
                        wire::DecodeError::InvalidValue("path"),
                    ));
                };
                let absolute = scope.absolute(&path::join(&prefix, &suffix));
                match announce.status {
                    AnnounceStatus::Active | AnnounceStatus::Restart => {
                        let mut hops = announce.hops;
                        if let Some(hop) = ok_hop {
                            hops.push(hop);
                        }
                        if hops.iter().any(|&h| h != 0 && h == our_hop)
                            || hops.len() > wire::MAX_HOPS
                        {
                            continue;
                        }
                        if !self.routes.contains(&absolute) && self.routes.len() >= MAX_ROUTES {
                            tracing::warn!(broadcast = %absolute, limit = MAX_ROUTES, "too many broadcasts announced by one session; ignored");
                            continue;
                        }
                        if !self.routes.contains(&absolute) && !env.shard.admits_requests() {
                            return Err(Close {
                                code: wire::error_code::session::INTERNAL,
                                reason: format!(
                                    "announce of {absolute} refused: the relay's mesh is congested"
                                ),
                            });
                        }
                        tracing::info!(broadcast = %absolute, "publisher announced");
                        paths.insert(absolute.clone());
                        self.routes.insert(absolute.clone());
                        env.shard.announce(absolute, me, hops);
                    }
                    AnnounceStatus::Ended => {
                        if paths.remove(&absolute) {
                            tracing::info!(broadcast = %absolute, "publisher unannounced");
                            self.routes.remove(&absolute);
                            env.shard.unannounce(absolute, me, false);
                        }
                    }
                }
            }
        }
        if *outcome != ReadOutcome::Open || inbound.finished {
            // The peer has no more announcements under this prefix (a publish-less client
            // may end our request at once: that is not an error).
            for path in paths {
                self.routes.remove(&path);
                env.shard.unannounce(path, me, false);
            }
            let _ = id;
            return Ok(None);
        }
        Ok(Some(OwnStream::Announce {
            prefix,
            ok_hop,
            paths,
        }))
    }

    fn read_track_info(
        &mut self,
        env: &SessionEnv,
        version: Version,
        inbound: &mut Inbound,
        outcome: &ReadOutcome,
        subscription: u64,
        _id: StreamId,
    ) -> Result<Option<OwnStream>, Close> {
        let Some(up) = self.upstreams.get(&subscription) else {
            return Ok(None);
        };
        if let ReadOutcome::Reset(c) = outcome {
            if !up.closing {
                env.shard
                    .deliver(up.owner, up.track_id, TrackEvent::End(TrackEnd::Failed(*c)));
            }
            return Ok(None);
        }
        match inbound.message::<wire::TrackInfo>(version) {
            Ok(Some(info)) => {
                let info = TrackInfo {
                    priority: info.priority,
                    max_age_ms: info.max_latency_ms,
                    timescale: info.timescale,
                };
                env.shard
                    .deliver(up.owner, up.track_id, TrackEvent::Info(info));
                Ok(None)
            }
            Ok(None) => Ok(Some(OwnStream::Track { subscription })),
            Err(e) => Err(Close::protocol("TRACK_INFO", e)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn read_responses(
        &mut self,
        env: &SessionEnv,
        version: Version,
        inbound: &mut Inbound,
        outcome: &ReadOutcome,
        subscription: u64,
        id: StreamId,
        outbound: &mut Outbox,
    ) -> Result<Option<OwnStream>, Close> {
        let Some(up) = self.upstreams.get_mut(&subscription) else {
            return Ok(None);
        };
        loop {
            match inbound.decode(|b| SubscribeResponse::decode(version, b)) {
                Ok(Some(SubscribeResponse::End { group })) => up.end = Some(group),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => return Err(Close::protocol("SUBSCRIBE response", e)),
            }
        }
        let ended = match outcome {
            ReadOutcome::Reset(c) => Some(TrackEnd::Failed(*c)),
            ReadOutcome::Finished => {
                let next = up.end.or(up.highest.map(|h| h + 1)).unwrap_or(0);
                Some(TrackEnd::Finished { next })
            }
            ReadOutcome::Open => None,
        };
        let Some(end) = ended else {
            return Ok(Some(OwnStream::Subscribe { subscription }));
        };
        let up = self.upstreams.remove(&subscription).expect("present");
        self.by_owner.remove(&(up.owner, up.track_id));
        if !up.closing {
            tracing::debug!(subscription, ?end, "upstream subscription ended");
            env.shard
                .deliver(up.owner, up.track_id, TrackEvent::End(end));
            // Answer the publisher's FIN with ours.
            outbound.entry(id).finish();
        }
        Ok(None)
    }

    /// Reads a group stream from the publisher, forwarding each frame's payload as it
    /// arrives (see [`FrameIngest`]). Returns true when the stream is done.
    pub fn on_group_data(
        &mut self,
        env: &SessionEnv,
        version: Version,
        streams: &mut dyn Streams,
        id: StreamId,
        inbound: &mut Inbound,
    ) -> bool {
        let slot = self.groups.entry(id).or_insert(None);
        if slot.is_none() {
            let header = match inbound.message::<GroupHeader>(version) {
                Ok(Some(header)) => header,
                Ok(None) => return false,
                Err(e) => {
                    tracing::debug!(stream = id, error = %e, "malformed group header");
                    streams.stop(id, code::MALFORMED_TRACK);
                    self.groups.remove(&id);
                    return true;
                }
            };
            let Some(up) = self
                .upstreams
                .get_mut(&header.subscribe_id)
                .filter(|u| !u.closing)
            else {
                streams.stop(id, code::CANCEL);
                self.groups.remove(&id);
                return true;
            };
            up.highest = Some(
                up.highest
                    .map_or(header.sequence, |h| h.max(header.sequence)),
            );
            env.shard.deliver(
                up.owner,
                up.track_id,
                TrackEvent::GroupStart(header.sequence),
            );
            *slot = Some(GroupIngest {
                subscription: header.subscribe_id,
                sequence: header.sequence,
                last_timestamp: 0,
                bytes: 0,
                forwarded: 0,
                frame: FrameIngest::Between,
            });
        }
        let ingest = slot.as_mut().expect("set above");
        if matches!(ingest.frame, FrameIngest::Stopped) {
            self.groups.remove(&id);
            return true;
        }
        let Some(up) = self.upstreams.get_mut(&ingest.subscription) else {
            streams.stop(id, code::CANCEL);
            self.groups.remove(&id);
            return true;
        };
        let (owner, track_id) = (up.owner, up.track_id);
        let subscription = ingest.subscription;
        let deliver = |event| env.shard.deliver(owner, track_id, event);
        let config = &env.shard.config;
        let max_frame = (config.max_frame_bytes as u64).min(wire::MAX_FRAME_SIZE);
        let max_group = config.cache.max_group_bytes;
        let sequence = ingest.sequence;
        let refuse = |streams: &mut dyn Streams, code: u64| {
            streams.stop(id, code);
            deliver(TrackEvent::GroupEnd {
                group: sequence,
                code: Some(code),
            });
        };
        loop {
            match ingest.frame {
                FrameIngest::Between => {
                    let header = match inbound.decode(|b| FrameHeader::decode(version, b)) {
                        Ok(Some(header)) => header,
                        Ok(None) => break,
                        Err(_) => {
                            // A FIN inside a frame header, or garbage.
                            refuse(streams, code::WRONG_SIZE);
                            self.close_group(id);
                            return true;
                        }
                    };
                    if header.size > max_frame {
                        refuse(streams, code::FRAME_TOO_LARGE);
                        self.close_group(id);
                        return true;
                    }
                    // Bounded by `max_frame` above, so it fits a usize.
                    let size = header.size as usize;
                    match ingest.bytes.checked_add(size) {
                        Some(bytes) if bytes <= max_group => ingest.bytes = bytes,
                        _ => {
                            tracing::debug!(
                                stream = id,
                                group = sequence,
                                limit = max_group,
                                "group over the per-group cap; stopped"
                            );
                            env.shard.cache_counters().group_too_large();
                            refuse(streams, code::GROUP_TOO_LARGE);
                            self.close_group(id);
                            return true;
                        }
                    }
                    let timestamp = match version {
                        Version::Lite05 => ingest
                            .last_timestamp
                            .wrapping_add_signed(header.timestamp_delta),
                        Version::Lite04 => receive_time_ms().max(ingest.last_timestamp),
                    };
                    ingest.last_timestamp = timestamp;
                    ingest.frame = FrameIngest::Header(FrameHead { timestamp, size });
                }
                FrameIngest::Header(head) => {
                    let available = inbound.buf.len();
                    if available < head.size && available < MIN_CHUNK {
                        break;
                    }
                    let Some(first) = inbound.take(available.min(head.size).min(MAX_CHUNK)) else {
                        break;
                    };
                    ingest.frame = FrameIngest::Payload {
                        missing: head.size - first.len(),
                    };
                    ingest.forwarded += first.len();
                    up.open_bytes += first.len();
                    deliver(TrackEvent::Frame {
                        group: sequence,
                        head,
                        first,
                    });
                }
                FrameIngest::Payload { missing: 0 } => ingest.frame = FrameIngest::Between,
                FrameIngest::Stopped => break,
                FrameIngest::Payload { missing } => {
                    let available = inbound.buf.len();
                    if available < missing && available < MIN_CHUNK {
                        break;
                    }
                    let Some(bytes) = inbound.take(available.min(missing).min(MAX_CHUNK)) else {
                        break;
                    };
                    ingest.frame = FrameIngest::Payload {
                        missing: missing - bytes.len(),
                    };
                    ingest.forwarded += bytes.len();
                    up.open_bytes += bytes.len();
                    deliver(TrackEvent::Chunk {
                        group: sequence,
                        bytes,
                    });
                }
            }
        }
        if inbound.finished {
            // The loop leaves a frame cut short by the FIN unfinished: a reset, never a frame
            // that looks whole.
            let whole = matches!(ingest.frame, FrameIngest::Between) && inbound.buf.is_empty();
            deliver(TrackEvent::GroupEnd {
                group: sequence,
                code: (!whole).then_some(code::WRONG_SIZE),
            });
            self.close_group(id);
            return true;
        }
        self.shed_open_groups(env, streams, subscription);
        // The oldest open group may have been this one.
        matches!(
            self.groups.get(&id),
            Some(Some(GroupIngest {
                frame: FrameIngest::Stopped,
                ..
            }))
        ) && self.groups.remove(&id).is_some()
    }

    /// Forgets a group stream that ended, giving its forwarded bytes back to its track's
    /// open-group count (the cache accounts for them from here).
    fn close_group(&mut self, id: StreamId) {
        let Some(Some(ingest)) = self.groups.remove(&id) else {
            return;
        };
        if matches!(ingest.frame, FrameIngest::Stopped) {
            return;
        }
        if let Some(up) = self.upstreams.get_mut(&ingest.subscription) {
            up.open_bytes = up.open_bytes.saturating_sub(ingest.forwarded);
        }
    }

    /// While the payload forwarded for `subscription`'s open groups is over the track
    /// budget, stops the oldest open group's stream (Evicted) and resets the group for the
    /// owner: a publisher cannot have more of one track in flight towards the cache than
    /// the cache would keep, and the oldest groups are the ones the cache would let go.
    fn shed_open_groups(&mut self, env: &SessionEnv, streams: &mut dyn Streams, subscription: u64) {
        let limits = &env.shard.config.cache;
        let budget = limits.max_track_bytes.max(limits.max_group_bytes);
        loop {
            let Some(up) = self.upstreams.get_mut(&subscription) else {
                return;
            };
            if up.open_bytes <= budget {
                return;
            }
            let oldest = self
                .groups
                .iter_mut()
                .filter_map(|(&id, g)| Some((id, g.as_mut()?)))
                .filter(|(_, g)| {
                    g.subscription == subscription && !matches!(g.frame, FrameIngest::Stopped)
                })
                .min_by_key(|(_, g)| g.sequence);
            let Some((victim, ingest)) = oldest else {
                up.open_bytes = 0;
                return;
            };
            tracing::debug!(
                stream = victim,
                group = ingest.sequence,
                budget,
                "publisher's open groups over the track budget; oldest stopped"
            );
            up.open_bytes = up.open_bytes.saturating_sub(ingest.forwarded);
            ingest.frame = FrameIngest::Stopped;
            streams.stop(victim, code::EVICTED);
            env.shard.cache_counters().group_evicted();
            let end = TrackEvent::GroupEnd {
                group: ingest.sequence,
                code: Some(code::EVICTED),
            };
            env.shard.deliver(up.owner, up.track_id, end);
        }
    }

    /// The publisher reset a group stream.
    pub fn on_group_reset(&mut self, env: &SessionEnv, id: StreamId, c: u64) {
        if let Some(Some(ingest)) = self.groups.remove(&id) {
            if matches!(ingest.frame, FrameIngest::Stopped) {
                // Our own STOP_SENDING answered: the group was already reset.
                return;
            }
            if let Some(up) = self.upstreams.get_mut(&ingest.subscription) {
                up.open_bytes = up.open_bytes.saturating_sub(ingest.forwarded);
                env.shard.deliver(
                    up.owner,
                    up.track_id,
                    TrackEvent::GroupEnd {
                        group: ingest.sequence,
                        code: Some(c),
                    },
                );
            }
        }
    }

    /// The session is over: every route it carried is withdrawn (the owner lingers).
    pub fn withdraw(&mut self, env: &SessionEnv, me: SessionRef) {
        for path in self.routes.drain() {
            env.shard.unannounce(path, me, true);
        }
        // Open groups stay open: the owner's linger ends them after `ended` goes out.
        self.groups.clear();
    }
}

/// The SUBSCRIBE_UPDATE carrying an aggregate.
fn terms(demand: Demand) -> SubscribeUpdate {
    SubscribeUpdate {
        priority: demand.priority,
        max_latency_ms: demand.max_age_ms,
        start_group: demand.start,
        end_group: demand.end,
    }
}

/// Milliseconds since the Unix epoch, never zero: the timestamp of a pre-05 frame.
fn receive_time_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_millis() as u64)
        .max(1)
}
