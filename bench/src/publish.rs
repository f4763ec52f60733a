//! The publishing half of a session: serves the relay's subscriptions to our one track, and
//! writes frames at the fps pace into one open group stream per relay subscription, starting
//! a new group every `--group-secs` (chat: every frame). Buffers are reused; a stream whose
//! backlog grows past a cap is reset instead of buffering without bound.

use crate::clock::now_ns;
use crate::group::put_stamp;
use crate::stats::Stats;
use crate::workload::{Plan, Timeline};
use moq_relay::transport::{StreamError, Streams};
use moq_relay::wire::{FrameHeader, GroupHeader, Message, SubscribeResponse, UniType, Version};
use std::time::{Duration, Instant};

const V: Version = Version::Lite05;
/// Unsent bytes one group stream may hold before we give up on it.
const MAX_BACKLOG: usize = 8 << 20;
/// Reset code for an abandoned group (moq-lite Cancel).
const CANCEL: u64 = 0x1;

/// A group stream of ours with what QUIC has not taken yet.
struct OutStream {
    id: u64,
    pending: Vec<u8>,
    fin: bool,
    dead: bool,
}

impl OutStream {
    fn write(&mut self, streams: &mut dyn Streams, data: &[u8]) {
        if self.dead {
            return;
        }
        if !self.pending.is_empty() {
            self.pending.extend_from_slice(data);
        } else {
            match streams.send(self.id, data, false) {
                Ok(n) if n == data.len() => {}
                Ok(n) => self.pending.extend_from_slice(&data[n..]),
                Err(StreamError::Blocked) => self.pending.extend_from_slice(data),
                Err(_) => self.dead = true,
            }
        }
        if self.pending.len() > MAX_BACKLOG {
            streams.reset(self.id, CANCEL);
            self.dead = true;
            self.pending = Vec::new();
        }
    }

    /// Pushes the backlog (and the FIN if due); true once nothing is left to send.
    fn flush(&mut self, streams: &mut dyn Streams) -> bool {
        if self.dead {
            return true;
        }
        if !self.pending.is_empty() {
            match streams.send(self.id, &self.pending, self.fin) {
                Ok(n) => {
                    self.pending.drain(..n);
                    return self.pending.is_empty() && self.fin;
                }
                Err(StreamError::Blocked) => return false,
                Err(_) => {
                    self.dead = true;
                    return true;
                }
            }
        }
        if self.fin {
            return match streams.send(self.id, &[], true) {
                Ok(_) => true,
                Err(StreamError::Blocked) => false,
                Err(_) => true,
            };
        }
        false
    }
}

/// One subscription the relay holds on our track.
struct Downstream {
    sub_id: u64,
    control: u64,
    started: bool,
    out: Option<OutStream>,
}

/// The track we publish and its relay subscriptions.
pub struct Publisher {
    pub broadcast: String,
    pub track: String,
    subscribers: u64,
    frames_per_group: u64,
    interval: Duration,
    next_frame: Instant,
    stopped: bool,
    group_seq: u64,
    frames_in_group: u64,
    frame_seq: u64,
    last_ts: u64,
    downstreams: Vec<Downstream>,
    closing: Vec<OutStream>,
    payload: Vec<u8>,
    scratch: Vec<u8>,
    run_start: Instant,
}

impl Publisher {
    pub fn new(plan: &Plan, track: usize, timeline: &Timeline, now: Instant) -> Self {
        let spec = &plan.tracks[track];
        let frames_per_group = if spec.one_frame_groups {
            1
        } else {
            ((plan.fps * plan.group_secs).round() as u64).max(1)
        };
        let interval = Duration::from_secs_f64(1.0 / plan.fps);
        // Spread publishers' frame times over one interval.
        let phase = interval.mul_f64(rand::random::<f64>());
        Self {
            broadcast: spec.broadcast.clone(),
            track: spec.track.clone(),
            subscribers: spec.subscribers,
            frames_per_group,
            interval,
            next_frame: now + phase,
            stopped: false,
            group_seq: 0,
            frames_in_group: 0,
            frame_seq: 0,
            last_ts: 0,
            downstreams: Vec::new(),
            closing: Vec::new(),
            payload: vec![0; plan.frame_bytes],
            scratch: Vec::with_capacity(64),
            run_start: timeline.start,
        }
    }

    /// The relay subscribed (SUBSCRIBE on stream `control`).
    pub fn add_downstream(&mut self, sub_id: u64, control: u64) {
        self.downstreams.push(Downstream {
            sub_id,
            control,
            started: false,
            out: None,
        });
    }

    /// The relay ended its subscription on `control`: SUBSCRIBE_END, FIN, close its group.
    pub fn remove_downstream(&mut self, streams: &mut dyn Streams, control: u64) {
        let Some(i) = self.downstreams.iter().position(|d| d.control == control) else {
            return;
        };
        let mut d = self.downstreams.swap_remove(i);
        self.scratch.clear();
        let _ = SubscribeResponse::End {
            group: self.group_seq + 1,
        }
        .encode(V, &mut self.scratch);
        let _ = streams.send(control, &self.scratch, true);
        if let Some(mut out) = d.out.take() {
            out.fin = true;
            self.closing.push(out);
        }
    }

    /// The relay reset its subscription on `control`: forget it and abandon its group.
    pub fn remove_downstream_silently(&mut self, streams: &mut dyn Streams, control: u64) {
        if let Some(i) = self.downstreams.iter().position(|d| d.control == control) {
            let d = self.downstreams.swap_remove(i);
            if let Some(out) = d.out {
                streams.reset(out.id, CANCEL);
            }
        }
    }

    /// When the next frame is due (None once publishing stopped).
    pub fn next_deadline(&self) -> Option<Instant> {
        (!self.stopped).then_some(self.next_frame)
    }

    /// Writes every frame due by `now`, then pushes backlogs.
    pub fn tick(
        &mut self,
        streams: &mut dyn Streams,
        timeline: &Timeline,
        stats: &mut Stats,
        now: Instant,
    ) {
        let mut budget = 64;
        while !self.stopped && now >= self.next_frame && budget > 0 {
            if now >= timeline.measure_end {
                self.stopped = true;
                self.end_group(streams);
                break;
            }
            self.frame(streams, timeline, stats);
            self.next_frame += self.interval;
            budget -= 1;
        }
        if now > self.next_frame + Duration::from_secs(1) {
            // Far behind (a stalled loop): skip ahead instead of bursting.
            self.next_frame = now + self.interval;
        }
        self.flush(streams);
    }

    /// Pushes backlogs and FINs of our group streams.
    pub fn flush(&mut self, streams: &mut dyn Streams) {
        for d in &mut self.downstreams {
            if let Some(out) = &mut d.out {
                if !out.pending.is_empty() {
                    out.flush(streams);
                }
            }
        }
        self.closing.retain_mut(|out| !out.flush(streams));
    }

    fn frame(&mut self, streams: &mut dyn Streams, timeline: &Timeline, stats: &mut Stats) {
        let send_ns = now_ns();
        put_stamp(&mut self.payload, send_ns, self.frame_seq);
        self.frame_seq += 1;
        let ts = self.run_start.elapsed().as_millis() as u64;
        self.scratch.clear();
        let _ = FrameHeader {
            timestamp_delta: ts as i64 - self.last_ts as i64,
            size: self.payload.len() as u64,
        }
        .encode(V, &mut self.scratch);
        self.last_ts = ts;
        let header_len = self.scratch.len();
        for d in &mut self.downstreams {
            if d.out.is_none() {
                // No stream credit: this downstream misses the frame, as a relay's would.
                let Ok(id) = streams.open_uni() else {
                    continue;
                };
                if !d.started {
                    let mut start = Vec::new();
                    let _ = SubscribeResponse::Start {
                        group: self.group_seq,
                    }
                    .encode(V, &mut start);
                    let _ = streams.send(d.control, &start, false);
                    d.started = true;
                }
                let mut out = OutStream {
                    id,
                    pending: Vec::new(),
                    fin: false,
                    dead: false,
                };
                // Header after the frame header already in scratch, so one buffer serves both.
                let _ = UniType::Group.encode(V, &mut self.scratch);
                let _ = GroupHeader {
                    subscribe_id: d.sub_id,
                    sequence: self.group_seq,
                }
                .encode(V, &mut self.scratch);
                out.write(streams, &self.scratch[header_len..]);
                self.scratch.truncate(header_len);
                d.out = Some(out);
            }
            let out = d.out.as_mut().expect("opened above");
            out.write(streams, &self.scratch[..header_len]);
            out.write(streams, &self.payload);
        }
        stats.frames_sent += 1;
        if timeline.measured(send_ns) {
            stats.frames_sent_measured += 1;
            stats.frames_expected += self.subscribers;
        }
        self.frames_in_group += 1;
        if self.frames_in_group >= self.frames_per_group {
            self.end_group(streams);
        }
    }

    /// FINs the open group on every downstream and moves on to the next sequence.
    fn end_group(&mut self, streams: &mut dyn Streams) {
        for d in &mut self.downstreams {
            if let Some(mut out) = d.out.take() {
                out.fin = true;
                if !out.flush(streams) {
                    self.closing.push(out);
                }
            }
        }
        self.group_seq += 1;
        self.frames_in_group = 0;
        self.last_ts = 0;
    }
}
