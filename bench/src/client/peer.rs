//! The moq-lite half of the client: publish broadcasts (answer the relay's ANNOUNCE, TRACK
//! and SUBSCRIBE) and subscribe to them, reporting everything that happens as [`Event`]s.

use super::conn::QuicClient;
use bytes::Bytes;
use moq_relay::session::io::{Inbound, ReadOutcome};
use moq_relay::transport::quic::QuicSettings;
use moq_relay::transport::{StreamError, StreamId, StreamMap, Streams};
use moq_relay::wire::{
    self, Announce, AnnounceOk, AnnounceRequest, AnnounceStatus, BidiType, FrameHeader,
    GroupHeader, Message, Setup, Subscribe, SubscribeResponse, SubscribeUpdate, TrackInfo,
    TrackRequest, UniType, Version,
};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Something the relay did, as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The relay asked for our announcements under `prefix`.
    AnnounceRequested { prefix: String },
    /// The relay subscribed to one of our tracks, with these terms.
    Subscribed {
        broadcast: String,
        track: String,
        id: u64,
        priority: u8,
        max_latency_ms: u64,
    },
    /// The relay changed the terms of subscription `id` (SUBSCRIBE_UPDATE).
    Updated {
        id: u64,
        priority: u8,
        max_latency_ms: u64,
    },
    /// The relay asked for TRACK_INFO.
    TrackRequested { broadcast: String, track: String },
    /// The relay ended a subscription to us (FIN).
    Unsubscribed { id: u64 },
    /// An announcement under one of our announce requests.
    Announced {
        suffix: String,
        active: bool,
        hops: Vec<u64>,
    },
    /// SUBSCRIBE_START (05) or SUBSCRIBE_OK (04) for our subscription.
    Started { id: u64 },
    /// SUBSCRIBE_END (05).
    Ended { id: u64, group: u64 },
    /// The relay finished our subscription's stream (FIN).
    Finished { id: u64 },
    /// The relay reset our subscription with `code`.
    Refused { id: u64, code: u64 },
    /// A frame of a group of our subscription.
    Frame {
        id: u64,
        group: u64,
        index: usize,
        timestamp: u64,
        payload: Bytes,
    },
    /// A group stream ended cleanly.
    GroupDone { id: u64, group: u64, frames: usize },
    /// A group stream was reset with `code`.
    GroupReset { id: u64, group: u64, code: u64 },
    /// TRACK_INFO for one of our TRACK requests.
    Info {
        priority: u8,
        max_age_ms: u64,
        timescale: u64,
    },
}

enum Role {
    /// A peer stream whose type is not known yet.
    Untyped,
    ServeAnnounce,
    ServeSubscribe {
        id: u64,
    },
    ServeTrack,
    PeerSetup,
    /// A relay group stream for our subscription.
    Group {
        id: u64,
        group: u64,
        index: usize,
        last: u64,
        pending: Option<FrameHeader>,
    },
    OurAnnounce {
        ok: bool,
    },
    OurSubscribe {
        id: u64,
    },
    OurTrack,
    Done,
}

/// A subscription the relay made to us, for publishing groups into.
#[derive(Clone, Debug)]
pub struct Downstream {
    pub id: u64,
    pub stream: StreamId,
    pub broadcast: String,
    pub track: String,
    started: bool,
}

/// A moq-lite client session.
pub struct MoqClient {
    pub quic: QuicClient,
    pub version: Version,
    pub hop: u64,
    streams: StreamMap<(Inbound, Role)>,
    /// Broadcasts we publish (relative to our root).
    published: Vec<String>,
    announce_streams: Vec<StreamId>,
    /// Subscriptions the relay holds on our tracks.
    pub downstreams: Vec<Downstream>,
    our_subs: HashMap<u64, StreamId>,
    next_sub: u64,
    pub events: Vec<Event>,
    /// Frame timestamps we publish advance by this much per frame.
    pub frame_interval: u64,
    clock: u64,
    /// Bytes written but not yet taken by QUIC, oldest stream first.
    unsent: Vec<Unsent>,
}

/// The part of one stream's writes QUIC has not taken yet.
struct Unsent {
    stream: StreamId,
    bytes: Vec<u8>,
    /// How much of `bytes` QUIC took.
    sent: usize,
    fin: bool,
}

impl MoqClient {
    /// Connects at `path` (sent in SETUP on lite-05; lite-04 raw QUIC has no path).
    pub fn connect(relay: SocketAddr, version: Version, path: &str) -> io::Result<Self> {
        Self::connect_with(relay, version, path, &QuicSettings::default())
    }

    /// Like [`Self::connect`], with our own QUIC receive windows (a small window makes a
    /// client that stops reading look slow to the relay).
    pub fn connect_with(
        relay: SocketAddr,
        version: Version,
        path: &str,
        settings: &QuicSettings,
    ) -> io::Result<Self> {
        Self::connect_as(relay, version, path, settings, wire::Role::Both)
    }

    /// Like [`Self::connect_with`], declaring `role` in SETUP (lite-05).
    pub fn connect_as(
        relay: SocketAddr,
        version: Version,
        path: &str,
        settings: &QuicSettings,
        role: wire::Role,
    ) -> io::Result<Self> {
        let quic = QuicClient::connect(relay, &[version.alpn()], settings, Duration::from_secs(5))?;
        let mut client = Self {
            quic,
            version,
            hop: rand::random_range(1..1u64 << 53),
            streams: StreamMap::default(),
            published: Vec::new(),
            announce_streams: Vec::new(),
            downstreams: Vec::new(),
            our_subs: HashMap::new(),
            next_sub: 0,
            events: Vec::new(),
            frame_interval: 33,
            clock: 1_000,
            unsent: Vec::new(),
        };
        if version == Version::Lite05 {
            let mut buf = Vec::new();
            UniType::Setup
                .encode(version, &mut buf)
                .map_err(io::Error::other)?;
            let setup = Setup {
                path: Some(path.to_string()),
                role,
                hop: client.hop,
                ..Setup::default()
            };
            setup.encode(version, &mut buf).map_err(io::Error::other)?;
            let mut s = client.quic.streams();
            let id = s
                .open_uni()
                .map_err(|e| io::Error::other(format!("{e:?}")))?;
            s.send(id, &buf, true)
                .map_err(|e| io::Error::other(format!("{e:?}")))?;
        }
        client.quic.flush()?;
        Ok(client)
    }

    /// Starts publishing `broadcast` (relative to the root): announced to every current and
    /// future announce request of the relay.
    pub fn publish(&mut self, broadcast: &str) {
        self.published.push(broadcast.to_string());
        for id in self.announce_streams.clone() {
            let buf = self.encode_announce(broadcast, true);
            self.write(id, &buf, false);
        }
    }

    /// Withdraws `broadcast` with an `ended` announcement.
    pub fn unpublish(&mut self, broadcast: &str) {
        self.published.retain(|b| b != broadcast);
        for id in self.announce_streams.clone() {
            let buf = self.encode_announce(broadcast, false);
            self.write(id, &buf, false);
        }
    }

    fn encode_announce(&self, broadcast: &str, active: bool) -> Vec<u8> {
        let mut hops = Vec::new();
        if active && self.version == Version::Lite04 {
            hops.push(self.hop);
        }
        let announce = Announce {
            status: if active {
                AnnounceStatus::Active
            } else {
                AnnounceStatus::Ended
            },
            suffix: broadcast.to_string(),
            hops,
        };
        let mut buf = Vec::new();
        announce
            .encode(self.version, &mut buf)
            .expect("valid announce");
        buf
    }

    /// Writes one group to every relay subscription of `broadcast`/`track`.
    pub fn send_group(
        &mut self,
        broadcast: &str,
        track: &str,
        sequence: u64,
        frames: &[&[u8]],
    ) -> usize {
        let targets: Vec<usize> = (0..self.downstreams.len())
            .filter(|&i| {
                self.downstreams[i].broadcast == broadcast && self.downstreams[i].track == track
            })
            .collect();
        for &i in &targets {
            let sub = self.downstreams[i].clone();
            if !sub.started && self.version == Version::Lite05 {
                let mut buf = Vec::new();
                SubscribeResponse::Start { group: sequence }
                    .encode(self.version, &mut buf)
                    .unwrap();
                self.write(sub.stream, &buf, false);
                self.downstreams[i].started = true;
            }
            let mut buf = Vec::new();
            UniType::Group.encode(self.version, &mut buf).unwrap();
            GroupHeader {
                subscribe_id: sub.id,
                sequence,
            }
            .encode(self.version, &mut buf)
            .unwrap();
            let mut last = 0;
            for frame in frames {
                self.clock += self.frame_interval;
                let header = FrameHeader {
                    timestamp_delta: self.clock as i64 - last as i64,
                    size: frame.len() as u64,
                };
                last = self.clock;
                header.encode(self.version, &mut buf).unwrap();
                buf.extend_from_slice(frame);
            }
            let id = self.quic.streams().open_uni().expect("stream credit");
            self.write(id, &buf, true);
        }
        targets.len()
    }

    /// Ends every relay subscription of `broadcast`/`track` cleanly (END + FIN on 05).
    pub fn end_track(&mut self, broadcast: &str, track: &str, next: u64) {
        for sub in self.downstreams.clone() {
            if sub.broadcast == broadcast && sub.track == track {
                let mut buf = Vec::new();
                if self.version == Version::Lite05 {
                    SubscribeResponse::End { group: next }
                        .encode(self.version, &mut buf)
                        .unwrap();
                }
                self.write(sub.stream, &buf, true);
            }
        }
        self.downstreams
            .retain(|d| !(d.broadcast == broadcast && d.track == track));
    }

    /// Asks the relay for announcements under `prefix`.
    pub fn request_announces(&mut self, prefix: &str) {
        let mut buf = Vec::new();
        BidiType::Announce.encode(self.version, &mut buf).unwrap();
        AnnounceRequest {
            prefix: prefix.to_string(),
            exclude_hop: self.hop,
        }
        .encode(self.version, &mut buf)
        .unwrap();
        let id = self.quic.streams().open_bidi().expect("stream credit");
        self.write(id, &buf, false);
        self.streams
            .insert(id, (Inbound::default(), Role::OurAnnounce { ok: false }));
    }

    /// Subscribes to `broadcast`/`track` from the latest group; returns the subscription id.
    pub fn subscribe(&mut self, broadcast: &str, track: &str) -> u64 {
        self.subscribe_with(broadcast, track, 0, 0)
    }

    /// Subscribes with a priority and a max latency (ms).
    pub fn subscribe_with(
        &mut self,
        broadcast: &str,
        track: &str,
        priority: u8,
        max_latency_ms: u64,
    ) -> u64 {
        let id = self.next_sub;
        self.next_sub += 1;
        if self.version == Version::Lite05 {
            let mut buf = Vec::new();
            BidiType::Track.encode(self.version, &mut buf).unwrap();
            TrackRequest {
                broadcast: broadcast.to_string(),
                track: track.to_string(),
            }
            .encode(self.version, &mut buf)
            .unwrap();
            let stream = self.quic.streams().open_bidi().expect("stream credit");
            self.write(stream, &buf, false);
            self.streams
                .insert(stream, (Inbound::default(), Role::OurTrack));
        }
        let mut buf = Vec::new();
        BidiType::Subscribe.encode(self.version, &mut buf).unwrap();
        let request = Subscribe {
            id,
            broadcast: broadcast.to_string(),
            track: track.to_string(),
            priority,
            max_latency_ms,
            start_group: None,
            end_group: None,
        };
        request.encode(self.version, &mut buf).unwrap();
        let stream = self.quic.streams().open_bidi().expect("stream credit");
        self.write(stream, &buf, false);
        self.streams
            .insert(stream, (Inbound::default(), Role::OurSubscribe { id }));
        self.our_subs.insert(id, stream);
        id
    }

    /// Ends our subscription `id` (FIN).
    pub fn unsubscribe(&mut self, id: u64) {
        if let Some(stream) = self.our_subs.remove(&id) {
            self.write(stream, &[], true);
        }
    }

    /// Writes raw bytes on a new stream (for malformed-input tests).
    pub fn send_raw(&mut self, bidi: bool, bytes: &[u8], fin: bool) -> StreamId {
        let id = if bidi {
            self.quic.streams().open_bidi()
        } else {
            self.quic.streams().open_uni()
        }
        .expect("credit");
        self.write(id, bytes, fin);
        id
    }

    /// Writes all of `bytes` (pumping while flow control pushes back, up to 5 s).
    /// Queues `bytes` (and `fin`) on stream `id` behind anything already unsent there, then
    /// sends for up to a few seconds while the relay takes it (congestion and flow control
    /// allow a few kilobytes at a time). What is still unsent then goes out on later polls:
    /// bytes are never dropped, so a group always reaches its end.
    fn write(&mut self, id: StreamId, bytes: &[u8], fin: bool) {
        match self.unsent.iter_mut().find(|w| w.stream == id) {
            Some(w) => {
                w.bytes.extend_from_slice(bytes);
                w.fin |= fin;
            }
            None => self.unsent.push(Unsent {
                stream: id,
                bytes: bytes.to_vec(),
                sent: 0,
                fin,
            }),
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            self.send_unsent();
            if !self.unsent.iter().any(|w| w.stream == id) || Instant::now() > deadline {
                break;
            }
            let _ = self.quic.pump(Duration::from_millis(5));
        }
        let _ = self.quic.flush();
    }

    /// Hands queued bytes to QUIC as far as it takes them; a stream the relay stopped or
    /// reset forgets its queue.
    fn send_unsent(&mut self) {
        let mut streams = self.quic.streams();
        self.unsent.retain_mut(|w| loop {
            let rest = &w.bytes[w.sent..];
            match streams.send(w.stream, rest, w.fin) {
                Ok(n) => {
                    w.sent += n;
                    if w.sent == w.bytes.len() {
                        return false;
                    }
                    if n == 0 {
                        return true;
                    }
                }
                Err(StreamError::Blocked) => return true,
                Err(_) => return false,
            }
        });
    }

    /// Whether the connection is gone, and the peer's close code if it sent one.
    pub fn closed(&self) -> Option<Option<u64>> {
        self.quic
            .conn
            .is_closed()
            .then(|| self.quic.conn.peer_error().map(|e| e.error_code))
    }

    /// Pumps for up to `wait` and handles everything readable.
    pub fn poll(&mut self, wait: Duration) -> io::Result<()> {
        self.quic.pump(wait)?;
        while let Some(id) = self.quic.conn.stream_readable_next() {
            self.read(id);
        }
        self.send_unsent();
        self.quic.flush()
    }

    /// Moves packets (so the connection stays alive and acknowledges) without reading any
    /// stream: what a viewer that cannot keep up looks like once its windows fill.
    pub fn pump_only(&mut self, wait: Duration) -> io::Result<()> {
        self.quic.pump(wait)
    }

    /// Polls until `pred` holds on the events seen so far, or `timeout` passes.
    pub fn wait_for(&mut self, timeout: Duration, mut pred: impl FnMut(&[Event]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if pred(&self.events) {
                return true;
            }
            if self.poll(Duration::from_millis(10)).is_err() || self.quic.conn.is_closed() {
                return pred(&self.events);
            }
        }
        pred(&self.events)
    }

    fn read(&mut self, id: StreamId) {
        let version = self.version;
        let peer = {
            let s = self.quic.streams();
            s.is_peer_initiated(id)
        };
        let (mut inbound, mut role) = match self.streams.remove(&id) {
            Some(entry) => entry,
            None if peer => (Inbound::default(), Role::Untyped),
            None => return,
        };
        let outcome = {
            let mut s = self.quic.streams();
            inbound.fill(&mut s, id, usize::MAX)
        };
        if let Role::Untyped = role {
            let bidi = id & 2 == 0;
            role = if bidi {
                match inbound.decode(|b| BidiType::decode(version, b)) {
                    Ok(Some(BidiType::Announce)) => Role::ServeAnnounce,
                    Ok(Some(BidiType::Subscribe)) => Role::ServeSubscribe { id: u64::MAX },
                    Ok(Some(BidiType::Track)) => Role::ServeTrack,
                    Ok(None) => Role::Untyped,
                    _ => Role::Done,
                }
            } else {
                match inbound.decode(|b| UniType::decode(version, b)) {
                    Ok(Some(UniType::Group)) => Role::Group {
                        id: u64::MAX,
                        group: 0,
                        index: 0,
                        last: 0,
                        pending: None,
                    },
                    Ok(Some(UniType::Setup)) => Role::PeerSetup,
                    Ok(None) => Role::Untyped,
                    _ => Role::Done,
                }
            };
        }
        if let (Role::Untyped, ReadOutcome::Reset(code)) = (&role, &outcome) {
            // Reset before its header arrived: a group we never saw the start of.
            self.events.push(Event::GroupReset {
                id: u64::MAX,
                group: u64::MAX,
                code: *code,
            });
            return;
        }
        let role = self.advance(id, &mut inbound, role, &outcome);
        if !matches!(role, Role::Done) {
            self.streams.insert(id, (inbound, role));
        }
    }

    fn advance(
        &mut self,
        id: StreamId,
        inbound: &mut Inbound,
        role: Role,
        outcome: &ReadOutcome,
    ) -> Role {
        let v = self.version;
        match role {
            Role::Untyped | Role::Done => role,
            Role::PeerSetup => {
                let _ = inbound.message::<Setup>(v);
                Role::Done
            }
            Role::ServeAnnounce => {
                let Ok(Some(request)) = inbound.message::<AnnounceRequest>(v) else {
                    return if inbound.finished {
                        Role::Done
                    } else {
                        Role::ServeAnnounce
                    };
                };
                self.events.push(Event::AnnounceRequested {
                    prefix: request.prefix.clone(),
                });
                let mut buf = Vec::new();
                let matching: Vec<String> = self
                    .published
                    .iter()
                    .filter_map(|b| {
                        moq_relay::path::strip_prefix(b, &request.prefix).map(str::to_string)
                    })
                    .collect();
                if v == Version::Lite05 {
                    AnnounceOk {
                        hop: self.hop,
                        active_count: matching.len() as u64,
                    }
                    .encode(v, &mut buf)
                    .unwrap();
                }
                for suffix in &matching {
                    buf.extend(self.encode_announce(suffix, true));
                }
                self.write(id, &buf, false);
                self.announce_streams.push(id);
                Role::Done
            }
            Role::ServeTrack => {
                let Ok(Some(request)) = inbound.message::<TrackRequest>(v) else {
                    return Role::ServeTrack;
                };
                self.events.push(Event::TrackRequested {
                    broadcast: request.broadcast,
                    track: request.track,
                });
                let mut buf = Vec::new();
                TrackInfo {
                    priority: 7,
                    max_latency_ms: 2000,
                    timescale: 1000,
                }
                .encode(v, &mut buf)
                .unwrap();
                self.write(id, &buf, true);
                Role::Done
            }
            Role::ServeSubscribe { id: sub } if sub == u64::MAX => {
                let Ok(Some(request)) = inbound.message::<Subscribe>(v) else {
                    return role;
                };
                self.events.push(Event::Subscribed {
                    broadcast: request.broadcast.clone(),
                    track: request.track.clone(),
                    id: request.id,
                    priority: request.priority,
                    max_latency_ms: request.max_latency_ms,
                });
                if v == Version::Lite04 {
                    let mut buf = Vec::new();
                    let ok = SubscribeResponse::Ok {
                        priority: request.priority,
                        max_latency_ms: 0,
                        start_group: None,
                        end_group: None,
                    };
                    ok.encode(v, &mut buf).unwrap();
                    self.write(id, &buf, false);
                }
                self.downstreams.push(Downstream {
                    id: request.id,
                    stream: id,
                    broadcast: request.broadcast,
                    track: request.track,
                    started: false,
                });
                self.advance(
                    id,
                    inbound,
                    Role::ServeSubscribe { id: request.id },
                    outcome,
                )
            }
            Role::ServeSubscribe { id: sub } => {
                while let Ok(Some(update)) = inbound.message::<SubscribeUpdate>(v) {
                    self.events.push(Event::Updated {
                        id: sub,
                        priority: update.priority,
                        max_latency_ms: update.max_latency_ms,
                    });
                }
                if *outcome != ReadOutcome::Open {
                    self.events.push(Event::Unsubscribed { id: sub });
                    self.downstreams.retain(|d| d.stream != id);
                    // Answer the unsubscribe as a publisher does: END (lite-05), then FIN.
                    let mut buf = Vec::new();
                    if v == Version::Lite05 {
                        SubscribeResponse::End { group: 0 }
                            .encode(v, &mut buf)
                            .unwrap();
                    }
                    self.write(id, &buf, true);
                    return Role::Done;
                }
                role
            }
            Role::OurAnnounce { mut ok } => {
                if v == Version::Lite05 && !ok {
                    if let Ok(Some(_)) = inbound.message::<AnnounceOk>(v) {
                        ok = true;
                    }
                }
                if v == Version::Lite04 || ok {
                    while let Ok(Some(a)) = inbound.message::<Announce>(v) {
                        self.events.push(Event::Announced {
                            suffix: a.suffix,
                            active: a.status != AnnounceStatus::Ended,
                            hops: a.hops,
                        });
                    }
                }
                Role::OurAnnounce { ok }
            }
            Role::OurTrack => match inbound.message::<TrackInfo>(v) {
                Ok(Some(info)) => {
                    self.events.push(Event::Info {
                        priority: info.priority,
                        max_age_ms: info.max_latency_ms,
                        timescale: info.timescale,
                    });
                    // Reply read: finish our side, as moq-net requesters do.
                    self.write(id, &[], true);
                    Role::Done
                }
                _ if *outcome != ReadOutcome::Open => Role::Done,
                _ => Role::OurTrack,
            },
            Role::OurSubscribe { id: sub } => {
                while let Ok(Some(response)) = inbound.decode(|b| SubscribeResponse::decode(v, b)) {
                    match response {
                        SubscribeResponse::Start { .. } | SubscribeResponse::Ok { .. } => {
                            self.events.push(Event::Started { id: sub })
                        }
                        SubscribeResponse::End { group } => {
                            self.events.push(Event::Ended { id: sub, group })
                        }
                        SubscribeResponse::Drop { .. } => {}
                    }
                }
                match outcome {
                    ReadOutcome::Open => Role::OurSubscribe { id: sub },
                    ReadOutcome::Finished => {
                        self.events.push(Event::Finished { id: sub });
                        Role::Done
                    }
                    ReadOutcome::Reset(code) => {
                        self.events.push(Event::Refused {
                            id: sub,
                            code: *code,
                        });
                        Role::Done
                    }
                }
            }
            Role::Group {
                id: sub,
                group,
                mut index,
                mut last,
                mut pending,
            } => {
                let (sub, group) = if sub == u64::MAX {
                    match inbound.message::<GroupHeader>(v) {
                        Ok(Some(h)) => (h.subscribe_id, h.sequence),
                        Ok(None) => {
                            return Role::Group {
                                id: sub,
                                group,
                                index,
                                last,
                                pending,
                            }
                        }
                        Err(_) => return Role::Done,
                    }
                } else {
                    (sub, group)
                };
                loop {
                    if pending.is_none() {
                        match inbound.decode(|b| FrameHeader::decode(v, b)) {
                            Ok(Some(h)) => pending = Some(h),
                            _ => break,
                        }
                    }
                    let h = pending.unwrap();
                    let Some(payload) = inbound.take(h.size as usize) else {
                        break;
                    };
                    pending = None;
                    last = last.wrapping_add_signed(h.timestamp_delta);
                    self.events.push(Event::Frame {
                        id: sub,
                        group,
                        index,
                        timestamp: last,
                        payload,
                    });
                    index += 1;
                }
                match outcome {
                    ReadOutcome::Reset(code) => {
                        self.events.push(Event::GroupReset {
                            id: sub,
                            group,
                            code: *code,
                        });
                        Role::Done
                    }
                    _ if inbound.finished && pending.is_none() && inbound.buf.is_empty() => {
                        self.events.push(Event::GroupDone {
                            id: sub,
                            group,
                            frames: index,
                        });
                        Role::Done
                    }
                    _ => Role::Group {
                        id: sub,
                        group,
                        index,
                        last,
                        pending,
                    },
                }
            }
        }
    }
}
