//! Test clients for the harness, speaking moq-lite-05 over a [`LinkEnd`]: a [`Publisher`]
//! that announces broadcasts and writes groups for whatever the relay subscribes to, and a
//! [`Viewer`] that subscribes, watches announcements, and records every group it receives.
//! Both are sans-IO: the harness polls them between the relay's steps.

use super::link::LinkEnd;
use crate::transport::{StreamError, StreamId, Streams};
use crate::wire::{
    Announce, AnnounceOk, AnnounceRequest, AnnounceStatus, BidiType, DecodeError, FrameHeader,
    GroupHeader, Message, Setup, Subscribe, SubscribeResponse, SubscribeUpdate, TrackInfo,
    TrackRequest, UniType, Version,
};
use bytes::Bytes;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

const VERSION: Version = Version::Lite05;

/// What arrived on one stream and has not been parsed yet.
#[derive(Default)]
struct Inbound {
    buf: Vec<u8>,
    fin: bool,
    reset: Option<u64>,
}

impl Inbound {
    /// Parses one item off the front with `decode`, if it is complete.
    fn take<T>(
        &mut self,
        decode: impl FnOnce(&[u8]) -> Result<(T, usize), DecodeError>,
    ) -> Option<T> {
        match decode(&self.buf) {
            Ok((item, used)) => {
                self.buf.drain(..used);
                Some(item)
            }
            Err(DecodeError::Incomplete) => None,
            Err(e) => panic!("the relay sent a malformed message: {e}"),
        }
    }
}

/// Bytes waiting for window on one stream.
#[derive(Default)]
struct Outbound {
    buf: Vec<u8>,
    fin: bool,
    fin_sent: bool,
}

/// The stream plumbing both clients share.
struct Endpoint {
    end: LinkEnd,
    inbound: BTreeMap<StreamId, Inbound>,
    outbound: BTreeMap<StreamId, Outbound>,
    setup_sent: bool,
}

impl Endpoint {
    fn new(end: LinkEnd) -> Self {
        Self {
            end,
            inbound: BTreeMap::new(),
            outbound: BTreeMap::new(),
            setup_sent: false,
        }
    }

    fn write(&mut self, id: StreamId, bytes: &[u8], fin: bool) {
        let out = self.outbound.entry(id).or_default();
        out.buf.extend_from_slice(bytes);
        out.fin |= fin;
    }

    fn flush(&mut self) {
        let end = &mut self.end;
        self.outbound.retain(|&id, out| {
            if !out.buf.is_empty() || (out.fin && !out.fin_sent) {
                match end.send(id, &out.buf, out.fin) {
                    Ok(n) => {
                        out.buf.drain(..n);
                        out.fin_sent = out.fin && out.buf.is_empty();
                    }
                    Err(StreamError::Blocked) => {}
                    Err(_) => return false,
                }
            }
            !(out.fin_sent && out.buf.is_empty())
        });
    }

    /// Sends our SETUP once, then reads every readable stream; returns the ones with news.
    fn read(&mut self) -> Vec<StreamId> {
        if !self.setup_sent {
            self.setup_sent = true;
            let id = self.end.open_uni().expect("uni stream");
            let mut buf = Vec::new();
            UniType::Setup.encode(VERSION, &mut buf).unwrap();
            let setup = Setup {
                path: Some("/".into()),
                ..Setup::default()
            };
            setup.encode(VERSION, &mut buf).unwrap();
            self.write(id, &buf, true);
        }
        let mut news = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Some(id) = self.end.next_readable() {
            let inbound = self.inbound.entry(id).or_default();
            loop {
                match self.end.recv(id, &mut chunk) {
                    Ok((n, fin)) => {
                        inbound.buf.extend_from_slice(&chunk[..n]);
                        inbound.fin |= fin;
                        if n == 0 {
                            break;
                        }
                    }
                    Err(StreamError::Reset(code)) => {
                        inbound.reset = Some(code);
                        break;
                    }
                    Err(_) => break,
                }
            }
            news.push(id);
        }
        news
    }
}

/// What the relay asked of a publisher for one track.
struct Upstream {
    subscribe_id: u64,
    broadcast: String,
    track: String,
}

#[derive(Default)]
struct PublisherState {
    announced: BTreeSet<String>,
    /// Announce streams the relay opened, to tell about later changes.
    announce_streams: Vec<StreamId>,
    /// Open subscriptions by their stream.
    upstreams: HashMap<StreamId, Upstream>,
    /// Every SUBSCRIBE seen, as (broadcast, track).
    subscribes: Vec<(String, String)>,
    updates: Vec<SubscribeUpdate>,
    /// Streams classified as Announce, Track or Subscribe.
    kinds: HashMap<StreamId, BidiType>,
    /// Group streams still open, by (broadcast, track, sequence).
    open_groups: HashMap<(String, String, u64), Vec<(StreamId, u64)>>,
}

/// A publishing client.
#[derive(Clone)]
pub struct Publisher(Rc<RefCell<(Endpoint, PublisherState)>>);

impl Publisher {
    pub fn new(end: LinkEnd) -> Self {
        Self(Rc::new(RefCell::new((
            Endpoint::new(end),
            PublisherState::default(),
        ))))
    }

    /// Announces `path` (to the relay's current and future announce requests).
    pub fn announce(&self, path: &str) {
        let (ep, st) = &mut *self.0.borrow_mut();
        st.announced.insert(path.to_string());
        for &id in &st.announce_streams {
            let mut buf = Vec::new();
            announce(AnnounceStatus::Active, path, &mut buf);
            ep.write(id, &buf, false);
        }
    }

    /// How many SUBSCRIBEs the relay sent for `broadcast`/`track`.
    pub fn subscribes(&self, broadcast: &str, track: &str) -> usize {
        let st = &self.0.borrow().1;
        st.subscribes
            .iter()
            .filter(|(b, t)| b == broadcast && t == track)
            .count()
    }

    /// Subscriptions the relay holds open now.
    pub fn open_subscriptions(&self) -> usize {
        self.0.borrow().1.upstreams.len()
    }

    /// Writes group `sequence` of a track to every subscription of it: one frame per
    /// `(timestamp, payload)`, then FIN when `finish`.
    pub fn group(
        &self,
        broadcast: &str,
        track: &str,
        sequence: u64,
        frames: &[(u64, &[u8])],
        finish: bool,
    ) {
        let (ep, st) = &mut *self.0.borrow_mut();
        let subscriptions: Vec<u64> = st
            .upstreams
            .values()
            .filter(|u| u.broadcast == broadcast && u.track == track)
            .map(|u| u.subscribe_id)
            .collect();
        for subscribe_id in subscriptions {
            let id = ep.end.open_uni().expect("uni stream");
            let mut buf = Vec::new();
            UniType::Group.encode(VERSION, &mut buf).unwrap();
            GroupHeader {
                subscribe_id,
                sequence,
            }
            .encode(VERSION, &mut buf)
            .unwrap();
            let mut last = 0;
            for &(timestamp, payload) in frames {
                put_frame(&mut buf, timestamp, last, payload);
                last = timestamp;
            }
            ep.write(id, &buf, finish);
            if !finish {
                let key = (broadcast.to_string(), track.to_string(), sequence);
                st.open_groups.entry(key).or_default().push((id, last));
            }
        }
    }

    /// Appends a frame to an unfinished group, finishing it when `finish`.
    pub fn frame(
        &self,
        broadcast: &str,
        track: &str,
        sequence: u64,
        frame: (u64, &[u8]),
        finish: bool,
    ) {
        let (ep, st) = &mut *self.0.borrow_mut();
        let key = (broadcast.to_string(), track.to_string(), sequence);
        let streams = st.open_groups.get_mut(&key).expect("an open group");
        for (id, last) in streams.iter_mut() {
            let mut buf = Vec::new();
            put_frame(&mut buf, frame.0, *last, frame.1);
            *last = frame.0;
            ep.write(*id, &buf, finish);
        }
        if finish {
            st.open_groups.remove(&key);
        }
    }

    /// Appends to an unfinished group a frame header declaring `size` payload bytes, and
    /// only `part` of that payload: the rest follows with [`Self::payload`].
    pub fn frame_part(
        &self,
        broadcast: &str,
        track: &str,
        sequence: u64,
        (timestamp, size): (u64, usize),
        part: &[u8],
    ) {
        let (ep, st) = &mut *self.0.borrow_mut();
        let key = (broadcast.to_string(), track.to_string(), sequence);
        for (id, last) in st.open_groups.get_mut(&key).expect("an open group") {
            let mut buf = Vec::new();
            let header = FrameHeader {
                timestamp_delta: timestamp as i64 - *last as i64,
                size: size as u64,
            };
            header.encode(VERSION, &mut buf).unwrap();
            buf.extend_from_slice(part);
            *last = timestamp;
            ep.write(*id, &buf, false);
        }
    }

    /// Writes raw payload bytes on an unfinished group's streams (the rest of a frame begun
    /// with [`Self::frame_part`]), finishing them when `finish`.
    pub fn payload(&self, broadcast: &str, track: &str, sequence: u64, bytes: &[u8], finish: bool) {
        let (ep, st) = &mut *self.0.borrow_mut();
        let key = (broadcast.to_string(), track.to_string(), sequence);
        for (id, _) in st.open_groups.get(&key).expect("an open group") {
            ep.write(*id, bytes, finish);
        }
        if finish {
            st.open_groups.remove(&key);
        }
    }

    /// Resets an unfinished group's streams with `code`.
    pub fn reset_group(&self, broadcast: &str, track: &str, sequence: u64, code: u64) {
        let (ep, st) = &mut *self.0.borrow_mut();
        let key = (broadcast.to_string(), track.to_string(), sequence);
        for (id, _) in st.open_groups.remove(&key).expect("an open group") {
            ep.outbound.remove(&id);
            ep.end.reset(id, code);
        }
    }

    /// The STOP_SENDING codes the relay sent on an unfinished group's streams.
    pub fn group_stops(&self, broadcast: &str, track: &str, sequence: u64) -> Vec<u64> {
        let (ep, st) = &*self.0.borrow();
        let key = (broadcast.to_string(), track.to_string(), sequence);
        st.open_groups
            .get(&key)
            .into_iter()
            .flatten()
            .filter_map(|(id, _)| ep.end.stopped(*id))
            .collect()
    }

    /// Reads and answers the relay.
    pub fn poll(&self) {
        let (ep, st) = &mut *self.0.borrow_mut();
        let mut writes: Vec<(StreamId, Vec<u8>, bool)> = Vec::new();
        for id in ep.read() {
            if !ep.end.is_peer_initiated(id) || !ep.end.is_bidi(id) {
                // The relay's SETUP, or replies on streams we opened: nothing to answer.
                if let Some(inbound) = ep.inbound.get_mut(&id) {
                    inbound.buf.clear();
                }
                continue;
            }
            let Some(inbound) = ep.inbound.get_mut(&id) else {
                continue;
            };
            if inbound.reset.is_some() || (inbound.fin && inbound.buf.is_empty()) {
                st.upstreams.remove(&id);
                continue;
            }
            let kind = match st.kinds.get(&id) {
                Some(&kind) => kind,
                None => match inbound.take(|b| BidiType::decode(VERSION, b)) {
                    Some(kind) => {
                        st.kinds.insert(id, kind);
                        kind
                    }
                    None => continue,
                },
            };
            match kind {
                BidiType::Announce => {
                    if let Some(request) = inbound.take(|b| AnnounceRequest::decode(VERSION, b)) {
                        let mut buf = Vec::new();
                        let ok = AnnounceOk {
                            hop: 0,
                            active_count: st.announced.len() as u64,
                        };
                        ok.encode(VERSION, &mut buf).unwrap();
                        for path in st
                            .announced
                            .iter()
                            .filter(|p| p.starts_with(&request.prefix))
                        {
                            announce(AnnounceStatus::Active, path, &mut buf);
                        }
                        writes.push((id, buf, false));
                        st.announce_streams.push(id);
                    }
                }
                BidiType::Track => {
                    if inbound.take(|b| TrackRequest::decode(VERSION, b)).is_some() {
                        let info = TrackInfo {
                            priority: 0,
                            max_latency_ms: 10_000,
                            timescale: 1000,
                        };
                        let mut buf = Vec::new();
                        info.encode(VERSION, &mut buf).unwrap();
                        writes.push((id, buf, true));
                    }
                }
                BidiType::Subscribe => {
                    if !st.upstreams.contains_key(&id) {
                        if let Some(request) = inbound.take(|b| Subscribe::decode(VERSION, b)) {
                            st.subscribes
                                .push((request.broadcast.clone(), request.track.clone()));
                            let mut buf = Vec::new();
                            SubscribeResponse::Start { group: 0 }
                                .encode(VERSION, &mut buf)
                                .unwrap();
                            writes.push((id, buf, false));
                            st.upstreams.insert(
                                id,
                                Upstream {
                                    subscribe_id: request.id,
                                    broadcast: request.broadcast,
                                    track: request.track,
                                },
                            );
                        }
                    }
                    while let Some(update) = inbound.take(|b| SubscribeUpdate::decode(VERSION, b)) {
                        st.updates.push(update);
                    }
                }
                other => panic!("unexpected {other:?} stream from the relay"),
            }
        }
        for (id, buf, fin) in writes {
            ep.write(id, &buf, fin);
        }
        ep.flush();
    }
}

/// A group as a viewer received it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ReceivedGroup {
    pub subscription: u64,
    pub sequence: u64,
    /// (timestamp, payload) of every whole frame, in order.
    pub frames: Vec<(u64, Bytes)>,
    /// Payload bytes of the frame being received, before its last byte (0 between frames).
    pub partial: usize,
    /// `Some(Ok)` once finished, `Some(Err(code))` when reset.
    pub end: Option<Result<(), u64>>,
}

impl std::fmt::Debug for ReceivedGroup {
    /// Frame sizes, not payloads: a failed assertion stays readable.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let frames: Vec<_> = self.frames.iter().map(|(t, p)| (*t, p.len())).collect();
        f.debug_struct("Group")
            .field("sequence", &self.sequence)
            .field("frames(ts,len)", &frames)
            .field("partial", &self.partial)
            .field("end", &self.end)
            .finish()
    }
}

/// A group stream being read: its type, then its header, then frames.
#[derive(Default)]
struct GroupStream {
    typed: bool,
    group: Option<ReceivedGroup>,
    /// The timestamp of the last frame, which the next delta is against.
    last: u64,
}

#[derive(Default)]
struct ViewerState {
    /// Codes of group streams reset before their header could be read.
    headless_resets: Vec<u64>,
    next_subscription: u64,
    /// Our subscribe streams and the responses on each.
    subscriptions: BTreeMap<u64, (StreamId, Vec<SubscribeResponse>, Option<u64>)>,
    /// Group streams by stream id.
    groups: BTreeMap<StreamId, GroupStream>,
    announce_stream: Option<StreamId>,
    announce_ok: bool,
    active: BTreeSet<String>,
    /// While set, nothing is read: the viewer plays one whose network stalled.
    paused: bool,
}

/// A viewing client.
#[derive(Clone)]
pub struct Viewer(Rc<RefCell<(Endpoint, ViewerState)>>);

impl Viewer {
    pub fn new(end: LinkEnd) -> Self {
        Self(Rc::new(RefCell::new((
            Endpoint::new(end),
            ViewerState::default(),
        ))))
    }

    /// Subscribes to a track from its latest group; returns the subscription id.
    pub fn subscribe(&self, broadcast: &str, track: &str, max_latency_ms: u64) -> u64 {
        let (ep, st) = &mut *self.0.borrow_mut();
        let subscription = st.next_subscription;
        st.next_subscription += 1;
        let id = ep.end.open_bidi().expect("bidi stream");
        let mut buf = Vec::new();
        BidiType::Subscribe.encode(VERSION, &mut buf).unwrap();
        let request = Subscribe {
            id: subscription,
            broadcast: broadcast.into(),
            track: track.into(),
            priority: 0,
            max_latency_ms,
            start_group: None,
            end_group: None,
        };
        request.encode(VERSION, &mut buf).unwrap();
        ep.write(id, &buf, false);
        st.subscriptions
            .insert(subscription, (id, Vec::new(), None));
        subscription
    }

    /// Ends a subscription (FIN on its stream).
    pub fn unsubscribe(&self, subscription: u64) {
        let (ep, st) = &mut *self.0.borrow_mut();
        let (id, _, _) = st.subscriptions[&subscription];
        ep.write(id, &[], true);
    }

    /// Watches every announcement.
    pub fn watch_announcements(&self) {
        let (ep, st) = &mut *self.0.borrow_mut();
        let id = ep.end.open_bidi().expect("bidi stream");
        let mut buf = Vec::new();
        BidiType::Announce.encode(VERSION, &mut buf).unwrap();
        AnnounceRequest::default()
            .encode(VERSION, &mut buf)
            .unwrap();
        ep.write(id, &buf, false);
        st.announce_stream = Some(id);
    }

    /// Broadcasts announced as active right now.
    pub fn active(&self) -> BTreeSet<String> {
        self.0.borrow().1.active.clone()
    }

    /// Stops or resumes reading.
    pub fn pause(&self, paused: bool) {
        self.0.borrow_mut().1.paused = paused;
    }

    /// Every group received on `subscription`, by sequence.
    pub fn groups(&self, subscription: u64) -> BTreeMap<u64, ReceivedGroup> {
        let st = &self.0.borrow().1;
        st.groups
            .values()
            .filter_map(|g| g.group.clone())
            .filter(|g| g.subscription == subscription)
            .map(|g| (g.sequence, g))
            .collect()
    }

    /// Codes of group streams reset before their header arrived (their sequence unknown).
    pub fn headless_resets(&self) -> Vec<u64> {
        self.0.borrow().1.headless_resets.clone()
    }

    /// The responses on a subscription, and the code it was reset with, if it was.
    pub fn responses(&self, subscription: u64) -> (Vec<SubscribeResponse>, Option<u64>) {
        let (_, responses, reset) = &self.0.borrow().1.subscriptions[&subscription];
        (responses.clone(), *reset)
    }

    /// Reads what the relay sent, unless paused.
    pub fn poll(&self) {
        let (ep, st) = &mut *self.0.borrow_mut();
        if st.paused {
            ep.flush();
            return;
        }
        for id in ep.read() {
            let Some(inbound) = ep.inbound.get_mut(&id) else {
                continue;
            };
            if ep.end.is_bidi(id) {
                if Some(id) == st.announce_stream {
                    if !st.announce_ok && inbound.take(|b| AnnounceOk::decode(VERSION, b)).is_some()
                    {
                        st.announce_ok = true;
                    }
                    while let Some(a) = inbound.take(|b| Announce::decode(VERSION, b)) {
                        match a.status {
                            AnnounceStatus::Ended => st.active.remove(&a.suffix),
                            _ => st.active.insert(a.suffix),
                        };
                    }
                    continue;
                }
                let Some((_, responses, reset)) =
                    st.subscriptions.values_mut().find(|(s, _, _)| *s == id)
                else {
                    continue;
                };
                while let Some(r) = inbound.take(|b| SubscribeResponse::decode(VERSION, b)) {
                    responses.push(r);
                }
                if let Some(code) = inbound.reset {
                    *reset = Some(code);
                }
                continue;
            }
            if !ep.end.is_peer_initiated(id) {
                continue;
            }
            let stream = st.groups.entry(id).or_default();
            if !stream.typed {
                match inbound.take(|b| UniType::decode(VERSION, b)) {
                    Some(UniType::Group) => stream.typed = true,
                    Some(_) => {
                        // The relay's SETUP: nothing a viewer needs.
                        inbound.buf.clear();
                        continue;
                    }
                    None => {}
                }
            }
            let GroupStream { typed, group, last } = stream;
            if *typed && group.is_none() {
                if let Some(header) = inbound.take(|b| GroupHeader::decode(VERSION, b)) {
                    *group = Some(ReceivedGroup {
                        subscription: header.subscribe_id,
                        sequence: header.sequence,
                        ..ReceivedGroup::default()
                    });
                }
            }
            if group.is_none() {
                if let Some(code) = inbound.reset {
                    st.headless_resets.push(code);
                    st.groups.remove(&id);
                }
                continue;
            }
            let Some(group) = group.as_mut() else {
                continue;
            };
            group.partial = 0;
            while let Ok((header, used)) = FrameHeader::decode(VERSION, &inbound.buf) {
                let size = header.size as usize;
                if inbound.buf.len() < used + size {
                    group.partial = inbound.buf.len() - used;
                    break;
                }
                let payload = Bytes::copy_from_slice(&inbound.buf[used..used + size]);
                inbound.buf.drain(..used + size);
                *last = last.wrapping_add_signed(header.timestamp_delta);
                group.frames.push((*last, payload));
            }
            if let Some(code) = inbound.reset {
                group.end.get_or_insert(Err(code));
            } else if inbound.fin && inbound.buf.is_empty() {
                group.end.get_or_insert(Ok(()));
            }
        }
        ep.flush();
    }
}

fn announce(status: AnnounceStatus, path: &str, buf: &mut Vec<u8>) {
    let message = Announce {
        status,
        suffix: path.to_string(),
        hops: Vec::new(),
    };
    message.encode(VERSION, buf).unwrap();
}

fn put_frame(buf: &mut Vec<u8>, timestamp: u64, last: u64, payload: &[u8]) {
    let header = FrameHeader {
        timestamp_delta: timestamp as i64 - last as i64,
        size: payload.len() as u64,
    };
    header.encode(VERSION, buf).unwrap();
    buf.extend_from_slice(payload);
}
