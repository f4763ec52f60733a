//! The moq-lite-05 client state machine of one connection: our SETUP, the relay's streams
//! (its SETUP, ANNOUNCE requests, TRACK and SUBSCRIBE towards our publisher, group streams
//! towards our subscriber) and our own requests (ANNOUNCE_REQUEST for the broadcast we want,
//! then TRACK and SUBSCRIBE once it is active, retried if the relay refuses).

use crate::clock::now_ns;
use crate::group::{GroupReader, Item};
use crate::publish::Publisher;
use crate::stats::Stats;
use crate::workload::{ConnSpec, Plan, Timeline};
use moq_relay::transport::{StreamError, Streams};
use moq_relay::wire::{
    varint, Announce, AnnounceOk, AnnounceRequest, AnnounceStatus, DecodeError, Message, Role,
    Setup, Subscribe, SubscribeResponse, TrackInfo, TrackRequest, UniType, Version,
};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const V: Version = Version::Lite05;
/// Delay before re-subscribing after the relay refused.
const RETRY: Duration = Duration::from_millis(500);
/// NotFound: a TRACK or SUBSCRIBE for something we do not publish.
const NOT_FOUND: u64 = 0x33;
/// Control messages larger than this are not ours to parse.
const MAX_CONTROL: usize = 1 << 20;

/// What the worker passes in on every call.
pub struct Ctx<'a> {
    pub stats: &'a mut Stats,
    pub timeline: &'a Timeline,
    pub now: Instant,
}

impl Ctx<'_> {
    /// Whether counters of loss and resets apply now (from the window's start to the drain's end).
    fn measuring(&self) -> bool {
        self.now >= self.timeline.measure_start && self.now < self.timeline.drain_end
    }
}

/// What one stream is to us.
enum Stream {
    /// A relay stream whose type has not arrived yet.
    Untyped(Vec<u8>),
    PeerSetup(Vec<u8>),
    ServeAnnounce(Vec<u8>),
    ServeTrack(Vec<u8>),
    /// A relay SUBSCRIBE; `true` once the request has been read.
    ServeSubscribe(Vec<u8>, bool),
    Group(GroupReader),
    OurAnnounce(Vec<u8>, bool),
    OurTrack(Vec<u8>),
    OurSubscribe(Vec<u8>),
    /// Read and ignore the rest (a Probe stream, say).
    Drain,
}

/// Our subscription to one track.
struct Subscriber {
    broadcast: String,
    track: String,
    announced: bool,
    /// The open Subscribe stream, if any.
    control: Option<u64>,
    started: bool,
    next_id: u64,
    retry_at: Option<Instant>,
    highest_group: Option<u64>,
    highest_frame: Option<u64>,
    /// When this subscriber last received a frame in the measured window (ns).
    last_frame_ns: Option<u64>,
}

/// One connection's moq-lite session.
pub struct Session {
    hop: u64,
    role: Role,
    /// SETUP Path: the session root on raw QUIC (WebTransport carries it in the CONNECT).
    setup_path: Option<String>,
    /// The relay's SETUP has arrived.
    pub peer_setup: bool,
    streams: HashMap<u64, Stream>,
    publisher: Option<Publisher>,
    subscriber: Option<Subscriber>,
    out: Vec<u8>,
}

impl Session {
    pub fn new(
        spec: &ConnSpec,
        plan: &Plan,
        setup_path: Option<String>,
        timeline: &Timeline,
    ) -> Self {
        let now = Instant::now();
        let role = match (spec.publish, spec.subscribe) {
            (Some(_), None) => Role::Publisher,
            (None, Some(_)) => Role::Subscriber,
            _ => Role::Both,
        };
        Self {
            hop: rand::random_range(1..1u64 << 53),
            role,
            setup_path,
            peer_setup: false,
            streams: HashMap::new(),
            publisher: spec.publish.map(|t| Publisher::new(plan, t, timeline, now)),
            subscriber: spec.subscribe.map(|t| Subscriber {
                broadcast: plan.tracks[t].broadcast.clone(),
                track: plan.tracks[t].track.clone(),
                announced: false,
                control: None,
                started: false,
                next_id: 0,
                retry_at: None,
                highest_group: None,
                highest_frame: None,
                last_frame_ns: None,
            }),
            out: Vec::with_capacity(256),
        }
    }

    /// The handshake completed: send SETUP, and ask for our subscription's broadcast.
    pub fn on_established(&mut self, streams: &mut dyn Streams) {
        self.out.clear();
        let _ = UniType::Setup.encode(V, &mut self.out);
        let _ = Setup {
            path: self.setup_path.clone(),
            role: self.role,
            hop: self.hop,
            ..Setup::default()
        }
        .encode(V, &mut self.out);
        // A fresh session has stream credit for its first streams (moq-lite needs a few).
        if let Ok(id) = streams.open_uni() {
            let _ = streams.send(id, &self.out, true);
        }
        if let Some(sub) = &self.subscriber {
            self.out.clear();
            let _ = varint::encode(1, &mut self.out);
            let _ = AnnounceRequest {
                prefix: sub.broadcast.clone(),
                exclude_hop: self.hop,
            }
            .encode(V, &mut self.out);
            if let Ok(id) = streams.open_bidi() {
                let _ = streams.send(id, &self.out, false);
                self.streams
                    .insert(id, Stream::OurAnnounce(Vec::new(), false));
            }
        }
    }

    /// The next instant the session itself needs to run.
    pub fn next_deadline(&self) -> Option<Instant> {
        let publish = self.publisher.as_ref().and_then(|p| p.next_deadline());
        let retry = self.subscriber.as_ref().and_then(|s| s.retry_at);
        match (publish, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Frames due, subscription retries due, backlogs.
    pub fn on_timer(&mut self, streams: &mut dyn Streams, ctx: &mut Ctx<'_>) {
        if let Some(p) = &mut self.publisher {
            p.tick(streams, ctx.timeline, ctx.stats, ctx.now);
        }
        let due = self
            .subscriber
            .as_ref()
            .is_some_and(|s| s.retry_at.is_some_and(|t| t <= ctx.now));
        if due {
            if let Some(s) = &mut self.subscriber {
                s.retry_at = None;
            }
            self.subscribe(streams);
        }
    }

    /// Sends TRACK, then SUBSCRIBE from the latest group; retries later when the relay's
    /// stream credit runs out.
    fn subscribe(&mut self, streams: &mut dyn Streams) {
        let Some(sub) = &mut self.subscriber else {
            return;
        };
        if sub.control.is_some() {
            return;
        }
        let Ok(track_stream) = streams.open_bidi() else {
            sub.retry_at = Some(Instant::now() + RETRY);
            return;
        };
        let (broadcast, track, id) = (sub.broadcast.clone(), sub.track.clone(), sub.next_id);
        self.out.clear();
        let _ = varint::encode(6, &mut self.out);
        let _ = TrackRequest {
            broadcast: broadcast.clone(),
            track: track.clone(),
        }
        .encode(V, &mut self.out);
        let _ = streams.send(track_stream, &self.out, false);
        self.streams
            .insert(track_stream, Stream::OurTrack(Vec::new()));

        let Ok(stream) = streams.open_bidi() else {
            // The TRACK exchange completes on its own; SUBSCRIBE waits for credit.
            if let Some(sub) = &mut self.subscriber {
                sub.retry_at = Some(Instant::now() + RETRY);
            }
            return;
        };
        self.out.clear();
        let _ = varint::encode(2, &mut self.out);
        let _ = Subscribe {
            id,
            broadcast,
            track,
            priority: 0,
            max_latency_ms: 0,
            start_group: None,
            end_group: None,
        }
        .encode(V, &mut self.out);
        let _ = streams.send(stream, &self.out, false);
        self.streams
            .insert(stream, Stream::OurSubscribe(Vec::new()));
        if let Some(sub) = &mut self.subscriber {
            sub.next_id += 1;
            sub.control = Some(stream);
            sub.started = false;
        }
    }

    /// Reads every readable stream into the state machine.
    pub fn on_readable(
        &mut self,
        streams: &mut dyn Streams,
        scratch: &mut [u8],
        ctx: &mut Ctx<'_>,
    ) {
        while let Some(id) = streams.next_readable() {
            self.read(streams, id, scratch, ctx);
        }
        if let Some(p) = &mut self.publisher {
            p.flush(streams);
        }
    }

    fn read(&mut self, streams: &mut dyn Streams, id: u64, scratch: &mut [u8], ctx: &mut Ctx<'_>) {
        let peer = streams.is_peer_initiated(id);
        let mut stream = match self.streams.remove(&id) {
            Some(s) => s,
            None if peer => Stream::Untyped(Vec::new()),
            None => Stream::Drain,
        };
        loop {
            match streams.recv(id, scratch) {
                Ok((0, false)) | Err(StreamError::Blocked) => break,
                Ok((n, fin)) => {
                    let now_ns = now_ns();
                    stream = self.feed(streams, id, stream, &scratch[..n], now_ns, ctx);
                    if fin {
                        self.finished(streams, id, stream, ctx);
                        return;
                    }
                }
                Err(StreamError::Reset(_)) => {
                    self.reset(streams, id, stream, ctx);
                    return;
                }
                Err(_) => return,
            }
        }
        self.streams.insert(id, stream);
    }

    /// Consumes one chunk on a stream in state `stream`; returns its new state.
    fn feed(
        &mut self,
        streams: &mut dyn Streams,
        id: u64,
        stream: Stream,
        data: &[u8],
        now_ns: u64,
        ctx: &mut Ctx<'_>,
    ) -> Stream {
        match stream {
            Stream::Untyped(mut buf) => {
                let joined: &[u8] = if buf.is_empty() {
                    data
                } else {
                    buf.extend_from_slice(data);
                    &buf
                };
                let Some((kind, used)) = varint::decode(joined) else {
                    if buf.is_empty() {
                        buf.extend_from_slice(data);
                    }
                    return Stream::Untyped(buf);
                };
                let bidi = streams.is_bidi(id);
                let next = match (bidi, kind) {
                    (true, 1) => Stream::ServeAnnounce(Vec::new()),
                    (true, 2) => Stream::ServeSubscribe(Vec::new(), false),
                    (true, 6) => Stream::ServeTrack(Vec::new()),
                    (false, 0) => Stream::Group(GroupReader::default()),
                    (false, 1) => Stream::PeerSetup(Vec::new()),
                    (false, _) => {
                        streams.stop(id, 0);
                        Stream::Drain
                    }
                    // Probe, Goaway, Fetch or unknown: read and ignore.
                    (true, _) => Stream::Drain,
                };
                self.feed(streams, id, next, &joined[used..], now_ns, ctx)
            }
            Stream::Group(mut reader) => {
                let stats = &mut *ctx.stats;
                let timeline = ctx.timeline;
                let measuring = ctx.now >= timeline.measure_start && ctx.now < timeline.drain_end;
                let mut sub = self.subscriber.as_mut();
                reader.feed(data, &mut |item| match item {
                    Item::Header { sequence, .. } => {
                        if let Some(s) = sub.as_deref_mut() {
                            if let Some(h) = s.highest_group {
                                if sequence > h + 1 && measuring {
                                    stats.groups_lost += sequence - h - 1;
                                } else if sequence < h && measuring {
                                    stats.groups_lost = stats.groups_lost.saturating_sub(1);
                                }
                            }
                            if s.highest_group.is_none_or(|h| sequence > h) {
                                s.highest_group = Some(sequence);
                            }
                        }
                    }
                    Item::Frame(stamp) => {
                        if let Some(s) = sub.as_deref_mut() {
                            if let Some(h) = s.highest_frame {
                                if stamp.seq > h + 1 && measuring {
                                    stats.frames_gap += stamp.seq - h - 1;
                                } else if stamp.seq < h && measuring {
                                    stats.frames_gap = stats.frames_gap.saturating_sub(1);
                                }
                            }
                            if s.highest_frame.is_none_or(|h| stamp.seq > h) {
                                s.highest_frame = Some(stamp.seq);
                            }
                            if measuring {
                                if let Some(last) = s.last_frame_ns {
                                    let gap = now_ns.saturating_sub(last);
                                    stats.longest_gap_ns = stats.longest_gap_ns.max(gap);
                                }
                                s.last_frame_ns = Some(now_ns);
                            }
                        }
                        if timeline.measured(stamp.send_ns) && ctx.now < timeline.drain_end {
                            stats.record(now_ns.saturating_sub(stamp.send_ns), stamp.size);
                        }
                    }
                });
                Stream::Group(reader)
            }
            Stream::Drain => Stream::Drain,
            Stream::PeerSetup(mut buf) => {
                if append(&mut buf, data) {
                    match Setup::decode(V, &buf) {
                        Ok(_) => {
                            if !self.peer_setup {
                                self.peer_setup = true;
                                ctx.stats.setup_done += 1;
                            }
                            return Stream::Drain;
                        }
                        Err(DecodeError::Incomplete) => {}
                        Err(_) => return Stream::Drain,
                    }
                }
                Stream::PeerSetup(buf)
            }
            Stream::ServeAnnounce(mut buf) => {
                if !append(&mut buf, data) {
                    return Stream::Drain;
                }
                match AnnounceRequest::decode(V, &buf) {
                    Ok((request, _)) => {
                        self.serve_announce(streams, id, &request.prefix);
                        Stream::Drain
                    }
                    Err(DecodeError::Incomplete) => Stream::ServeAnnounce(buf),
                    Err(_) => Stream::Drain,
                }
            }
            Stream::ServeTrack(mut buf) => {
                if !append(&mut buf, data) {
                    return Stream::Drain;
                }
                match TrackRequest::decode(V, &buf) {
                    Ok((request, _)) => {
                        let ours = self.publisher.as_ref().is_some_and(|p| {
                            p.broadcast == request.broadcast && p.track == request.track
                        });
                        if ours {
                            self.out.clear();
                            let _ = TrackInfo {
                                priority: 127,
                                max_latency_ms: 10_000,
                                timescale: 1000,
                            }
                            .encode(V, &mut self.out);
                            let _ = streams.send(id, &self.out, true);
                        } else {
                            streams.reset(id, NOT_FOUND);
                        }
                        Stream::Drain
                    }
                    Err(DecodeError::Incomplete) => Stream::ServeTrack(buf),
                    Err(_) => Stream::Drain,
                }
            }
            Stream::ServeSubscribe(mut buf, read) => {
                if read {
                    // SUBSCRIBE_UPDATEs: nothing we act on.
                    return Stream::ServeSubscribe(buf, true);
                }
                if !append(&mut buf, data) {
                    return Stream::Drain;
                }
                match Subscribe::decode(V, &buf) {
                    Ok((request, _)) => {
                        match &mut self.publisher {
                            Some(p)
                                if p.broadcast == request.broadcast && p.track == request.track =>
                            {
                                p.add_downstream(request.id, id);
                                // Open its group at once rather than at the next frame.
                                p.flush(streams);
                            }
                            _ => {
                                streams.reset(id, NOT_FOUND);
                            }
                        }
                        buf.clear();
                        Stream::ServeSubscribe(buf, true)
                    }
                    Err(DecodeError::Incomplete) => Stream::ServeSubscribe(buf, false),
                    Err(_) => Stream::Drain,
                }
            }
            Stream::OurAnnounce(mut buf, mut ok) => {
                if !append(&mut buf, data) {
                    return Stream::Drain;
                }
                let mut at = 0;
                loop {
                    if !ok {
                        match AnnounceOk::decode(V, &buf[at..]) {
                            Ok((_, used)) => {
                                ok = true;
                                at += used;
                            }
                            Err(DecodeError::Incomplete) => break,
                            Err(_) => return Stream::Drain,
                        }
                    }
                    match Announce::decode(V, &buf[at..]) {
                        Ok((a, used)) => {
                            at += used;
                            let active = a.status != AnnounceStatus::Ended;
                            self.on_announce(streams, &a.suffix, active);
                        }
                        Err(DecodeError::Incomplete) => break,
                        Err(_) => return Stream::Drain,
                    }
                }
                buf.drain(..at);
                Stream::OurAnnounce(buf, ok)
            }
            Stream::OurTrack(mut buf) => {
                if !append(&mut buf, data) {
                    return Stream::Drain;
                }
                match TrackInfo::decode(V, &buf) {
                    Ok(_) => {
                        // Reply read: finish our side, as moq-net requesters do.
                        let _ = streams.send(id, &[], true);
                        Stream::Drain
                    }
                    _ => Stream::OurTrack(buf),
                }
            }
            Stream::OurSubscribe(mut buf) => {
                if !append(&mut buf, data) {
                    return Stream::Drain;
                }
                let mut at = 0;
                loop {
                    match SubscribeResponse::decode(V, &buf[at..]) {
                        Ok((response, used)) => {
                            at += used;
                            if let (SubscribeResponse::Start { .. }, Some(s)) =
                                (response, self.subscriber.as_mut())
                            {
                                if !s.started && s.control == Some(id) {
                                    s.started = true;
                                    ctx.stats.subscribed += 1;
                                }
                            }
                        }
                        Err(DecodeError::Incomplete) => break,
                        Err(_) => return Stream::Drain,
                    }
                }
                buf.drain(..at);
                Stream::OurSubscribe(buf)
            }
        }
    }

    /// The relay wants our broadcasts under `prefix`.
    fn serve_announce(&mut self, streams: &mut dyn Streams, id: u64, prefix: &str) {
        let suffix = self
            .publisher
            .as_ref()
            .and_then(|p| moq_relay::path::strip_prefix(&p.broadcast, prefix))
            .map(str::to_string);
        self.out.clear();
        let _ = AnnounceOk {
            hop: self.hop,
            active_count: u64::from(suffix.is_some()),
        }
        .encode(V, &mut self.out);
        if let Some(suffix) = suffix {
            let _ = Announce {
                status: AnnounceStatus::Active,
                suffix,
                hops: Vec::new(),
            }
            .encode(V, &mut self.out);
        }
        // Never FIN: the announce stream lives as long as our broadcast.
        let _ = streams.send(id, &self.out, false);
    }

    /// An announcement on our request: subscribe when our broadcast is live.
    fn on_announce(&mut self, streams: &mut dyn Streams, suffix: &str, active: bool) {
        let Some(sub) = &mut self.subscriber else {
            return;
        };
        if !suffix.is_empty() {
            return;
        }
        sub.announced = active;
        if active && sub.control.is_none() {
            self.subscribe(streams);
        }
    }

    /// The relay finished its side of `id` cleanly.
    fn finished(&mut self, streams: &mut dyn Streams, id: u64, stream: Stream, ctx: &mut Ctx<'_>) {
        match stream {
            Stream::ServeSubscribe(_, true) => {
                if let Some(p) = &mut self.publisher {
                    p.remove_downstream(streams, id);
                }
            }
            Stream::OurSubscribe(_) => self.subscription_over(id, false, ctx),
            Stream::OurAnnounce(..) => {
                if let Some(s) = &mut self.subscriber {
                    s.announced = false;
                }
            }
            Stream::Group(reader) if !reader.clean_end() && ctx.measuring() => {
                ctx.stats.groups_reset += 1;
            }
            _ => {}
        }
    }

    /// The relay reset its side of `id`.
    fn reset(&mut self, streams: &mut dyn Streams, id: u64, stream: Stream, ctx: &mut Ctx<'_>) {
        match stream {
            Stream::Group(_) | Stream::Untyped(_) if ctx.measuring() && !streams.is_bidi(id) => {
                ctx.stats.groups_reset += 1;
            }
            Stream::OurSubscribe(_) => self.subscription_over(id, true, ctx),
            Stream::ServeSubscribe(_, true) => {
                if let Some(p) = &mut self.publisher {
                    p.remove_downstream_silently(streams, id);
                }
            }
            _ => {}
        }
    }

    /// Our subscription on `id` ended: refused (reset) or finished. Retry while the run lasts.
    fn subscription_over(&mut self, id: u64, refused: bool, ctx: &mut Ctx<'_>) {
        let Some(s) = &mut self.subscriber else {
            return;
        };
        if s.control != Some(id) {
            return;
        }
        if refused || !s.started {
            ctx.stats.subscribe_refused += 1;
        }
        s.control = None;
        s.started = false;
        if ctx.now < ctx.timeline.measure_end {
            s.retry_at = Some(ctx.now + RETRY);
        }
    }
}

/// Appends `data` to a control buffer; false if the buffer grew past any sane message.
fn append(buf: &mut Vec<u8>, data: &[u8]) -> bool {
    buf.extend_from_slice(data);
    buf.len() <= MAX_CONTROL
}
