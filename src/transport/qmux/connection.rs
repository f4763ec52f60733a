//! The sans-IO QMux connection: fed whole WebSocket binary message payloads, it yields the
//! payloads to send, keeps QUIC stream numbering, flow control and stream limits, and
//! implements [`Streams`] so moq-lite sessions run on it unchanged.
//!
//! Data is framed as soon as [`Streams::send`] accepts it (at most the peer's credit, so the
//! queues stay bounded) into a per-stream queue. Control frames leave first, then streams by
//! urgency (lower first, default 127), round-robin among equal urgency (PROTOCOL.md §6.9).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::ops::Bound;
use std::time::{Duration, Instant};

use super::frame::{self, Frame};
use super::params::{Params, DEFAULT_MAX_RECORD_SIZE};
use super::{FrameError, QmuxVersion};
use crate::transport::{StreamError, StreamId, Streams};

/// QUIC transport error codes (RFC 9000 §20.1) used in CONNECTION_CLOSE.
pub mod code {
    pub const NO_ERROR: u64 = 0x0;
    pub const FLOW_CONTROL_ERROR: u64 = 0x3;
    pub const STREAM_LIMIT_ERROR: u64 = 0x4;
    pub const STREAM_STATE_ERROR: u64 = 0x5;
    pub const FINAL_SIZE_ERROR: u64 = 0x6;
    pub const FRAME_ENCODING_ERROR: u64 = 0x7;
    pub const TRANSPORT_PARAMETER_ERROR: u64 = 0x8;
    pub const PROTOCOL_VIOLATION: u64 = 0xa;
}

/// The urgency of a stream nobody ranked (quiche's default).
pub const DEFAULT_URGENCY: u8 = 127;

/// Which end of the connection we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// Local limits and timers.
#[derive(Clone, Debug)]
pub struct Config {
    pub version: QmuxVersion,
    /// Connection receive window (bytes buffered across all streams).
    pub max_data: u64,
    /// Per-stream receive window.
    pub max_stream_data: u64,
    /// Concurrent peer-initiated streams we allow, per direction.
    pub max_streams_bidi: u64,
    pub max_streams_uni: u64,
    /// Close after this long without hearing from the peer.
    pub idle_timeout: Duration,
    /// Send a QX_PING (qmux-01) or ask for a WebSocket ping (qmux-00) after this much silence.
    pub keepalive: Duration,
    /// The largest record (message) we accept.
    pub max_record_size: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: QmuxVersion::Qmux01,
            max_data: 16 << 20,
            max_stream_data: 1 << 20,
            max_streams_bidi: 10_000,
            max_streams_uni: 10_000,
            idle_timeout: Duration::from_secs(30),
            keepalive: Duration::from_secs(5),
            max_record_size: DEFAULT_MAX_RECORD_SIZE,
        }
    }
}

/// A transport error: the QUIC error code we close with and what went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: u64,
    pub reason: &'static str,
}

impl Error {
    const fn new(code: u64, reason: &'static str) -> Self {
        Error { code, reason }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "qmux transport error {:#x}: {}", self.code, self.reason)
    }
}

impl std::error::Error for Error {}

impl From<FrameError> for Error {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::BadParameter(_) => {
                Error::new(code::TRANSPORT_PARAMETER_ERROR, "bad transport parameter")
            }
            FrameError::NotInVersion => {
                Error::new(code::PROTOCOL_VIOLATION, "frame not allowed in qmux-00")
            }
            _ => Error::new(code::FRAME_ENCODING_ERROR, "malformed frame"),
        }
    }
}

/// How the connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// We called [`Streams::close`].
    Local { code: u64, reason: String },
    /// The peer sent CONNECTION_CLOSE (`application == false`) or APPLICATION_CLOSE.
    Peer {
        application: bool,
        code: u64,
        reason: String,
    },
    /// The peer broke the protocol; we sent CONNECTION_CLOSE with this error.
    Error(Error),
    /// Nothing heard from the peer for the idle timeout.
    IdleTimeout,
}

#[derive(Debug)]
struct SendSide {
    written: u64,
    max: u64,
    /// FIN or RESET_STREAM queued: nothing more may be sent.
    done: bool,
    stopped: Option<u64>,
    /// The application saw [`StreamError::Stopped`] (or reset): the side may be dropped.
    stop_seen: bool,
    blocked_at: Option<u64>,
}

impl SendSide {
    fn new(max: u64) -> Self {
        SendSide {
            written: 0,
            max,
            done: false,
            stopped: None,
            stop_seen: false,
            blocked_at: None,
        }
    }

    fn finished(&self) -> bool {
        self.done && (self.stopped.is_none() || self.stop_seen)
    }
}

#[derive(Debug)]
struct RecvSide {
    buf: VecDeque<u8>,
    /// Offset of the first byte in `buf`.
    read: u64,
    /// Highest offset received.
    highest: u64,
    /// Credit we advertised.
    max: u64,
    fin_at: Option<u64>,
    reset: Option<u64>,
    /// We sent STOP_SENDING: incoming data is counted and dropped.
    stopped: bool,
    /// FIN or reset delivered to the application.
    done: bool,
}

impl RecvSide {
    fn new(max: u64) -> Self {
        RecvSide {
            buf: VecDeque::new(),
            read: 0,
            highest: 0,
            max,
            fin_at: None,
            reset: None,
            stopped: false,
            done: false,
        }
    }

    fn finished(&self) -> bool {
        self.done || (self.stopped && (self.reset.is_some() || self.fin_at == Some(self.highest)))
    }
}

#[derive(Debug)]
struct Stream {
    send: Option<SendSide>,
    recv: Option<RecvSide>,
    urgency: u8,
}

/// The QMux connection state machine.
#[derive(Debug)]
pub struct QmuxConnection {
    role: Role,
    config: Config,
    peer: Option<Params>,
    /// Connection-level frames, sent before any stream data.
    out: VecDeque<Vec<u8>>,
    /// Encoded STREAM/RESET_STREAM frames per stream, with the stream's urgency.
    stream_out: BTreeMap<StreamId, (u8, VecDeque<Vec<u8>>)>,
    /// The stream served last, for round-robin among equal urgency.
    last_served: Option<StreamId>,
    closed: Option<CloseReason>,
    streams: BTreeMap<StreamId, Stream>,
    /// Indexed by direction: 0 bidi, 1 uni.
    next_local: [u64; 2],
    peer_max_streams: [u64; 2],
    next_peer: [u64; 2],
    local_max_streams: [u64; 2],
    peer_retired: [u64; 2],
    send_total: u64,
    peer_max_data: u64,
    recv_total: u64,
    recv_consumed: u64,
    local_max_data: u64,
    readable: VecDeque<StreamId>,
    readable_set: HashSet<StreamId>,
    last_rx: Instant,
    next_ping: Instant,
    ping_seq: u64,
    ws_ping_due: bool,
}

fn dir(id: StreamId) -> usize {
    ((id >> 1) & 1) as usize
}

impl QmuxConnection {
    /// A new connection; our QX_TRANSPORT_PARAMETERS is queued first.
    pub fn new(role: Role, config: Config, now: Instant) -> Self {
        let mut conn = QmuxConnection {
            role,
            peer: None,
            out: VecDeque::new(),
            stream_out: BTreeMap::new(),
            last_served: None,
            closed: None,
            streams: BTreeMap::new(),
            next_local: [0; 2],
            peer_max_streams: [0; 2],
            next_peer: [0; 2],
            local_max_streams: [config.max_streams_bidi, config.max_streams_uni],
            peer_retired: [0; 2],
            send_total: 0,
            peer_max_data: 0,
            recv_total: 0,
            recv_consumed: 0,
            local_max_data: config.max_data,
            readable: VecDeque::new(),
            readable_set: HashSet::new(),
            last_rx: now,
            next_ping: now + config.keepalive,
            ping_seq: 0,
            ws_ping_due: false,
            config,
        };
        let params = conn.local_params();
        conn.queue(Frame::TransportParameters(params));
        conn
    }

    /// The transport parameters we advertise.
    pub fn local_params(&self) -> Params {
        let c = &self.config;
        Params {
            max_idle_timeout_ms: c.idle_timeout.as_millis().min(u128::from(u32::MAX)) as u64,
            initial_max_data: c.max_data,
            initial_max_stream_data_bidi_local: c.max_stream_data,
            initial_max_stream_data_bidi_remote: c.max_stream_data,
            initial_max_stream_data_uni: c.max_stream_data,
            initial_max_streams_bidi: c.max_streams_bidi,
            initial_max_streams_uni: c.max_streams_uni,
            max_datagram_frame_size: 0,
            max_record_size: c.max_record_size,
        }
    }

    /// The peer's transport parameters, once received.
    pub fn peer_params(&self) -> Option<&Params> {
        self.peer.as_ref()
    }

    /// Whether the peer's transport parameters arrived.
    pub fn is_established(&self) -> bool {
        self.peer.is_some()
    }

    /// Whether the connection is over (queued close frames may still be waiting).
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// How the connection ended.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.closed.as_ref()
    }

    /// Whether a WebSocket Ping should be sent (qmux-00 keep-alive); clears the flag.
    pub fn take_ws_ping(&mut self) -> bool {
        std::mem::take(&mut self.ws_ping_due)
    }

    fn queue(&mut self, frame: Frame) {
        let mut bytes = Vec::new();
        frame.encode(&mut bytes);
        self.out.push_back(bytes);
    }

    /// Queues a STREAM or RESET_STREAM frame behind the stream's earlier frames.
    fn queue_stream(&mut self, id: StreamId, frame: Frame) {
        let mut bytes = Vec::new();
        frame.encode(&mut bytes);
        let urgency = self.streams.get(&id).map_or(DEFAULT_URGENCY, |s| s.urgency);
        self.stream_out
            .entry(id)
            .or_insert_with(|| (urgency, VecDeque::new()))
            .1
            .push_back(bytes);
    }

    /// The stream to serve next: lowest urgency, round-robin after `last_served`.
    fn next_stream(&self) -> Option<StreamId> {
        let best = self.stream_out.values().map(|(u, _)| *u).min()?;
        let after = self.last_served.map_or(Bound::Unbounded, Bound::Excluded);
        self.stream_out
            .range((after, Bound::Unbounded))
            .chain(self.stream_out.iter())
            .find(|(_, (u, _))| *u == best)
            .map(|(id, _)| *id)
    }

    /// Removes the next frame to send: control first, then stream data.
    fn pop_frame(&mut self, limit: usize) -> Option<Vec<u8>> {
        if let Some(front) = self.out.front() {
            if front.len() > limit {
                return None;
            }
            return self.out.pop_front();
        }
        let id = self.next_stream()?;
        let (_, queue) = self.stream_out.get_mut(&id)?;
        if queue.front().is_some_and(|f| f.len() > limit) {
            return None;
        }
        let frame = queue.pop_front();
        if queue.is_empty() {
            self.stream_out.remove(&id);
        }
        self.last_served = Some(id);
        frame
    }

    fn peer_record_size(&self) -> usize {
        let size = self
            .peer
            .as_ref()
            .map_or(DEFAULT_MAX_RECORD_SIZE, |p| p.max_record_size);
        size.min(1 << 20) as usize
    }

    /// The next WebSocket binary message payload to send.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let mut record = self.pop_frame(usize::MAX)?;
        if self.config.version == QmuxVersion::Qmux01 {
            let limit = self.peer_record_size();
            while record.len() < limit {
                match self.pop_frame(limit - record.len()) {
                    Some(frame) => record.extend_from_slice(&frame),
                    None => break,
                }
            }
        }
        Some(record)
    }

    /// Handles one received WebSocket binary message payload.
    pub fn on_message(&mut self, msg: &[u8], now: Instant) -> Result<(), Error> {
        if self.closed.is_some() {
            return Ok(());
        }
        self.last_rx = now;
        self.next_ping = now + self.config.keepalive;
        let frames = match self.config.version {
            QmuxVersion::Qmux00 => frame::decode_single(msg).map(|f| vec![f]),
            QmuxVersion::Qmux01 => {
                if msg.len() as u64 > self.config.max_record_size {
                    return self.fail(Error::new(code::PROTOCOL_VIOLATION, "record too large"));
                }
                frame::decode_record(msg)
            }
        };
        let frames = match frames {
            Ok(frames) => frames,
            Err(e) => return self.fail(e.into()),
        };
        for frame in frames {
            if let Err(e) = self.on_frame(frame) {
                return self.fail(e);
            }
            if self.closed.is_some() {
                break;
            }
        }
        Ok(())
    }

    fn fail(&mut self, error: Error) -> Result<(), Error> {
        self.out.clear();
        self.stream_out.clear();
        self.queue(Frame::ConnectionClose {
            code: error.code,
            frame_type: 0,
            reason: error.reason.as_bytes().to_vec(),
        });
        self.closed = Some(CloseReason::Error(error));
        Err(error)
    }

    /// When [`on_timeout`](Self::on_timeout) should next run.
    pub fn next_timeout(&self) -> Option<Instant> {
        if self.closed.is_some() {
            return None;
        }
        Some(match self.idle_deadline() {
            Some(idle) => idle.min(self.next_ping),
            None => self.next_ping,
        })
    }

    fn idle_deadline(&self) -> Option<Instant> {
        let ours = self.config.idle_timeout;
        let theirs = self.peer.as_ref().map_or(Duration::ZERO, |p| {
            Duration::from_millis(p.max_idle_timeout_ms)
        });
        let idle = match (ours.is_zero(), theirs.is_zero()) {
            (true, true) => return None,
            (false, true) => ours,
            (true, false) => theirs,
            (false, false) => ours.min(theirs),
        };
        // A peer may advertise an absurd timeout; treat overflow as no deadline.
        self.last_rx.checked_add(idle)
    }

    /// Runs timers: closes on idle, or queues a keep-alive.
    pub fn on_timeout(&mut self, now: Instant) {
        if self.closed.is_some() {
            return;
        }
        if self.idle_deadline().is_some_and(|d| now >= d) {
            self.closed = Some(CloseReason::IdleTimeout);
            return;
        }
        if now >= self.next_ping {
            self.next_ping = now + self.config.keepalive;
            match self.config.version {
                QmuxVersion::Qmux01 => {
                    self.ping_seq += 1;
                    self.queue(Frame::PingRequest(self.ping_seq));
                }
                QmuxVersion::Qmux00 => self.ws_ping_due = true,
            }
        }
    }

    fn is_local(&self, id: StreamId) -> bool {
        (id & 1 == 1) == (self.role == Role::Server)
    }

    /// Finds (creating peer streams implicitly) the stream a peer frame names. `Ok(None)`
    /// means it existed once and is retired, so the frame is ignored.
    fn peer_stream(&mut self, id: StreamId) -> Result<Option<&mut Stream>, Error> {
        let d = dir(id);
        let index = id >> 2;
        if self.is_local(id) {
            if index >= self.next_local[d] {
                return Err(Error::new(code::STREAM_STATE_ERROR, "stream not opened"));
            }
        } else if index >= self.next_peer[d] {
            if index >= self.local_max_streams[d] {
                return Err(Error::new(
                    code::STREAM_LIMIT_ERROR,
                    "stream limit exceeded",
                ));
            }
            let peer = self.peer.clone().unwrap_or_default();
            for i in self.next_peer[d]..=index {
                let sid = i << 2 | (id & 3);
                let stream = Stream {
                    recv: Some(RecvSide::new(self.config.max_stream_data)),
                    send: (d == 0).then(|| SendSide::new(peer.initial_max_stream_data_bidi_local)),
                    urgency: DEFAULT_URGENCY,
                };
                self.streams.insert(sid, stream);
            }
            self.next_peer[d] = index + 1;
        }
        Ok(self.streams.get_mut(&id))
    }

    fn mark_readable(&mut self, id: StreamId) {
        if self.readable_set.insert(id) {
            self.readable.push_back(id);
        }
    }

    fn on_frame(&mut self, frame: Frame) -> Result<(), Error> {
        if self.peer.is_none() {
            return match frame {
                Frame::TransportParameters(p) => {
                    if p.max_record_size < 64 {
                        return Err(Error::new(
                            code::TRANSPORT_PARAMETER_ERROR,
                            "max_record_size too small",
                        ));
                    }
                    self.peer_max_data = p.initial_max_data;
                    self.peer_max_streams = [p.initial_max_streams_bidi, p.initial_max_streams_uni];
                    self.peer = Some(p);
                    Ok(())
                }
                _ => Err(Error::new(
                    code::PROTOCOL_VIOLATION,
                    "first frame is not QX_TRANSPORT_PARAMETERS",
                )),
            };
        }
        match frame {
            Frame::Padding | Frame::PingResponse(_) => {}
            Frame::DataBlocked(_) | Frame::StreamDataBlocked { .. } => {}
            Frame::StreamsBlocked { .. } => {}
            Frame::TransportParameters(_) => {
                return Err(Error::new(
                    code::PROTOCOL_VIOLATION,
                    "repeated QX_TRANSPORT_PARAMETERS",
                ))
            }
            Frame::PingRequest(seq) => self.queue(Frame::PingResponse(seq)),
            Frame::Datagram(_) => {
                return Err(Error::new(
                    code::PROTOCOL_VIOLATION,
                    "datagrams not enabled",
                ))
            }
            Frame::ConnectionClose { code, reason, .. } => self.peer_closed(false, code, &reason),
            Frame::ApplicationClose { code, reason } => self.peer_closed(true, code, &reason),
            Frame::MaxData(max) => self.peer_max_data = self.peer_max_data.max(max),
            Frame::MaxStreams { bidi, max } => {
                if max > 1 << 60 {
                    return Err(Error::new(
                        code::FRAME_ENCODING_ERROR,
                        "MAX_STREAMS too large",
                    ));
                }
                let d = usize::from(!bidi);
                self.peer_max_streams[d] = self.peer_max_streams[d].max(max);
            }
            Frame::MaxStreamData { id, max } => {
                if !self.is_local(id) && dir(id) == 1 {
                    return Err(Error::new(
                        code::STREAM_STATE_ERROR,
                        "MAX_STREAM_DATA on receive-only stream",
                    ));
                }
                if let Some(send) = self.peer_stream(id)?.and_then(|s| s.send.as_mut()) {
                    send.max = send.max.max(max);
                }
            }
            Frame::StopSending { id, code } => {
                if !self.is_local(id) && dir(id) == 1 {
                    return Err(Error::new(
                        code::STREAM_STATE_ERROR,
                        "STOP_SENDING on receive-only stream",
                    ));
                }
                let mut reset = None;
                if let Some(send) = self.peer_stream(id)?.and_then(|s| s.send.as_mut()) {
                    if send.stopped.is_none() {
                        send.stopped = Some(code);
                        if send.done {
                            // Everything was already sent: nothing left to tell the writer.
                            send.stop_seen = true;
                        } else {
                            send.done = true;
                            reset = Some(send.written);
                        }
                    }
                }
                if let Some(final_size) = reset {
                    // Abandoned data need not be sent; the final size still covers it.
                    self.stream_out.remove(&id);
                    self.queue_stream(
                        id,
                        Frame::ResetStream {
                            id,
                            code,
                            final_size,
                        },
                    );
                }
                self.maybe_retire(id);
            }
            Frame::Stream {
                id,
                offset,
                data,
                fin,
            } => self.on_stream(id, offset, &data, fin)?,
            Frame::ResetStream {
                id,
                code,
                final_size,
            } => self.on_reset(id, code, final_size)?,
        }
        Ok(())
    }

    fn peer_closed(&mut self, application: bool, code: u64, reason: &[u8]) {
        self.out.clear();
        self.stream_out.clear();
        self.closed = Some(CloseReason::Peer {
            application,
            code,
            reason: String::from_utf8_lossy(reason).into_owned(),
        });
    }

    fn recv_side(&mut self, id: StreamId) -> Result<Option<&mut RecvSide>, Error> {
        if self.is_local(id) && dir(id) == 1 {
            return Err(Error::new(
                code::STREAM_STATE_ERROR,
                "data on a send-only stream",
            ));
        }
        Ok(self.peer_stream(id)?.and_then(|s| s.recv.as_mut()))
    }

    fn on_stream(
        &mut self,
        id: StreamId,
        offset: Option<u64>,
        data: &[u8],
        fin: bool,
    ) -> Result<(), Error> {
        let conn_room = self.local_max_data - self.recv_total;
        let Some(r) = self.recv_side(id)? else {
            return Ok(());
        };
        let offset = offset.unwrap_or(r.highest);
        let end = offset + data.len() as u64;
        if end > r.max {
            return Err(Error::new(
                code::FLOW_CONTROL_ERROR,
                "stream flow control exceeded",
            ));
        }
        if let Some(fin_at) = r.fin_at {
            if end > fin_at || (fin && end != fin_at) {
                return Err(Error::new(code::FINAL_SIZE_ERROR, "final size changed"));
            }
        }
        if fin && end < r.highest {
            return Err(Error::new(
                code::FINAL_SIZE_ERROR,
                "final size below received data",
            ));
        }
        let grown = end.saturating_sub(r.highest);
        if grown > conn_room {
            return Err(Error::new(
                code::FLOW_CONTROL_ERROR,
                "connection flow control exceeded",
            ));
        }
        let buffered_end = r.read + r.buf.len() as u64;
        if offset > buffered_end && r.reset.is_none() && !r.stopped {
            return Err(Error::new(code::PROTOCOL_VIOLATION, "gap in stream data"));
        }
        r.highest = r.highest.max(end);
        if fin {
            r.fin_at = Some(end);
        }
        let mut consumed = 0;
        if r.reset.is_some() || r.stopped {
            // Counted against flow control, then dropped.
            consumed = grown;
            r.read += grown;
        } else if end > buffered_end {
            let skip = (buffered_end - offset) as usize;
            r.buf.extend(&data[skip..]);
        }
        let notify = !r.stopped && r.reset.is_none();
        self.recv_total += grown;
        if consumed > 0 {
            self.consume(consumed);
        }
        if notify {
            self.mark_readable(id);
        }
        self.maybe_retire(id);
        Ok(())
    }

    fn on_reset(&mut self, id: StreamId, code: u64, final_size: u64) -> Result<(), Error> {
        let conn_room = self.local_max_data - self.recv_total;
        let Some(r) = self.recv_side(id)? else {
            return Ok(());
        };
        if final_size < r.highest || r.fin_at.is_some_and(|f| f != final_size) {
            return Err(Error::new(
                code::FINAL_SIZE_ERROR,
                "reset final size mismatch",
            ));
        }
        if final_size > r.max {
            return Err(Error::new(
                code::FLOW_CONTROL_ERROR,
                "reset beyond stream credit",
            ));
        }
        let grown = final_size - r.highest;
        if grown > conn_room {
            return Err(Error::new(
                code::FLOW_CONTROL_ERROR,
                "connection flow control exceeded",
            ));
        }
        if r.reset.is_some() || r.done {
            return Ok(());
        }
        r.highest = final_size;
        r.fin_at = Some(final_size);
        r.reset = Some(code);
        let freed = final_size - r.read;
        r.read = final_size;
        r.buf.clear();
        let notify = !r.stopped;
        self.recv_total += grown;
        self.consume(freed);
        if notify {
            self.mark_readable(id);
        }
        self.maybe_retire(id);
        Ok(())
    }

    /// Bytes left the receive buffers: widen the connection window when half is used.
    fn consume(&mut self, n: u64) {
        self.recv_consumed += n;
        let window = self.config.max_data;
        if self.local_max_data - self.recv_consumed < window / 2 {
            self.local_max_data = self.recv_consumed + window;
            self.queue(Frame::MaxData(self.local_max_data));
        }
    }

    /// Drops a stream whose both sides are over and returns stream credit for peer streams.
    fn maybe_retire(&mut self, id: StreamId) {
        let Some(s) = self.streams.get(&id) else {
            return;
        };
        let send_over = s.send.as_ref().is_none_or(SendSide::finished);
        let recv_over = s.recv.as_ref().is_none_or(RecvSide::finished);
        if !(send_over && recv_over) {
            return;
        }
        self.streams.remove(&id);
        if self.is_local(id) {
            return;
        }
        let d = dir(id);
        self.peer_retired[d] += 1;
        let initial = [self.config.max_streams_bidi, self.config.max_streams_uni][d];
        let target = self.peer_retired[d] + initial;
        if target - self.local_max_streams[d] >= (initial / 2).max(1) {
            self.local_max_streams[d] = target;
            self.queue(Frame::MaxStreams {
                bidi: d == 0,
                max: target,
            });
        }
    }

    fn chunk_size(&self) -> usize {
        // Room for the largest STREAM header: type, id, offset, length.
        (self
            .peer_record_size()
            .min(DEFAULT_MAX_RECORD_SIZE as usize)
            - 32)
            .max(1)
    }

    fn open(&mut self, d: usize) -> Result<StreamId, StreamError> {
        if self.closed.is_some() {
            return Err(StreamError::Gone);
        }
        let index = self.next_local[d];
        if index >= self.peer_max_streams[d] {
            if self.peer.is_some() {
                self.queue(Frame::StreamsBlocked {
                    bidi: d == 0,
                    limit: self.peer_max_streams[d],
                });
            }
            return Err(StreamError::Blocked);
        }
        self.next_local[d] += 1;
        let id = index << 2 | (d as u64) << 1 | u64::from(self.role == Role::Server);
        let peer = self.peer.clone().unwrap_or_default();
        let max = if d == 0 {
            peer.initial_max_stream_data_bidi_remote
        } else {
            peer.initial_max_stream_data_uni
        };
        self.streams.insert(
            id,
            Stream {
                send: Some(SendSide::new(max)),
                recv: (d == 0).then(|| RecvSide::new(self.config.max_stream_data)),
                urgency: DEFAULT_URGENCY,
            },
        );
        Ok(id)
    }
}

impl Streams for QmuxConnection {
    fn open_uni(&mut self) -> Result<StreamId, StreamError> {
        self.open(1)
    }

    fn open_bidi(&mut self) -> Result<StreamId, StreamError> {
        self.open(0)
    }

    fn send(&mut self, id: StreamId, data: &[u8], fin: bool) -> Result<usize, StreamError> {
        if self.closed.is_some() {
            return Err(StreamError::Gone);
        }
        let conn_room = self.peer_max_data - self.send_total;
        let chunk = self.chunk_size();
        let s = self
            .streams
            .get_mut(&id)
            .and_then(|s| s.send.as_mut())
            .ok_or(StreamError::Gone)?;
        if let Some(code) = s.stopped {
            s.stop_seen = true;
            self.maybe_retire(id);
            return Err(StreamError::Stopped(code));
        }
        if s.done {
            return Err(StreamError::Gone);
        }
        let room = (s.max - s.written).min(conn_room);
        let n = (data.len() as u64).min(room) as usize;
        if n == 0 && !(fin && data.is_empty()) {
            let stream_blocked = s.max == s.written;
            let (limit, first) = (s.max, s.blocked_at != Some(s.max));
            if stream_blocked && first {
                s.blocked_at = Some(limit);
                self.queue(Frame::StreamDataBlocked { id, limit });
            } else if !stream_blocked {
                self.queue(Frame::DataBlocked(self.peer_max_data));
            }
            return Err(StreamError::Blocked);
        }
        let fin_now = fin && n == data.len();
        let start = s.written;
        s.written += n as u64;
        if fin_now {
            s.done = true;
        }
        self.send_total += n as u64;
        let mut offset = 0;
        loop {
            let end = (offset + chunk).min(n);
            self.queue_stream(
                id,
                Frame::Stream {
                    id,
                    offset: Some(start + offset as u64),
                    data: data[offset..end].to_vec(),
                    fin: fin_now && end == n,
                },
            );
            offset = end;
            if offset >= n {
                break;
            }
        }
        if fin_now {
            self.maybe_retire(id);
        }
        Ok(n)
    }

    fn recv(&mut self, id: StreamId, buf: &mut [u8]) -> Result<(usize, bool), StreamError> {
        if self.closed.is_some() {
            return Err(StreamError::Gone);
        }
        let window = self.config.max_stream_data;
        let r = self
            .streams
            .get_mut(&id)
            .and_then(|s| s.recv.as_mut())
            .ok_or(StreamError::Gone)?;
        if r.done || r.stopped {
            return Err(StreamError::Gone);
        }
        if let Some(code) = r.reset {
            r.done = true;
            self.readable_set.remove(&id);
            self.maybe_retire(id);
            return Err(StreamError::Reset(code));
        }
        let n = buf.len().min(r.buf.len());
        for (dst, src) in buf.iter_mut().zip(r.buf.drain(..n)) {
            *dst = src;
        }
        r.read += n as u64;
        let fin = r.buf.is_empty() && r.fin_at == Some(r.read);
        if n == 0 && !fin {
            return Err(StreamError::Blocked);
        }
        let mut credit = None;
        if fin {
            r.done = true;
        } else if r.fin_at.is_none() && r.max - r.read < window / 2 {
            r.max = r.read + window;
            credit = Some(r.max);
        }
        let more = !r.buf.is_empty();
        if let Some(max) = credit {
            self.queue(Frame::MaxStreamData { id, max });
        }
        self.consume(n as u64);
        if more {
            self.readable_set.insert(id);
            self.readable.push_back(id);
        } else {
            self.readable_set.remove(&id);
        }
        if fin {
            self.maybe_retire(id);
        }
        Ok((n, fin))
    }

    fn reset(&mut self, id: StreamId, code: u64) {
        if self.closed.is_some() {
            return;
        }
        let Some(s) = self.streams.get_mut(&id).and_then(|s| s.send.as_mut()) else {
            return;
        };
        if s.done {
            s.stop_seen = true;
            self.maybe_retire(id);
            return;
        }
        s.done = true;
        let final_size = s.written;
        // Abandoned data need not be sent; the final size still covers it.
        self.stream_out.remove(&id);
        self.queue_stream(
            id,
            Frame::ResetStream {
                id,
                code,
                final_size,
            },
        );
        self.maybe_retire(id);
    }

    fn stop(&mut self, id: StreamId, code: u64) {
        if self.closed.is_some() {
            return;
        }
        let Some(r) = self.streams.get_mut(&id).and_then(|s| s.recv.as_mut()) else {
            return;
        };
        if r.done || r.stopped {
            return;
        }
        r.stopped = true;
        let freed = r.buf.len() as u64;
        r.read += freed;
        r.buf.clear();
        let already_over = r.reset.is_some() || r.fin_at == Some(r.highest);
        self.readable_set.remove(&id);
        if !already_over {
            self.queue(Frame::StopSending { id, code });
        }
        self.consume(freed);
        self.maybe_retire(id);
    }

    fn set_urgency(&mut self, id: StreamId, urgency: u8) {
        if let Some(s) = self.streams.get_mut(&id) {
            s.urgency = urgency;
        }
        if let Some((u, _)) = self.stream_out.get_mut(&id) {
            *u = urgency;
        }
    }

    fn next_readable(&mut self) -> Option<StreamId> {
        while let Some(id) = self.readable.pop_front() {
            if self.readable_set.remove(&id) && self.streams.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }

    fn close(&mut self, code: u64, reason: &str) {
        if self.closed.is_some() {
            return;
        }
        // Keep the close frame inside one peer record.
        let mut end = reason.len().min(1024).min(self.peer_record_size() - 24);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        // Pending stream data is abandoned, as QUIC does on close.
        self.stream_out.clear();
        self.queue(Frame::ApplicationClose {
            code,
            reason: reason.as_bytes()[..end].to_vec(),
        });
        self.closed = Some(CloseReason::Local {
            code,
            reason: reason[..end].to_string(),
        });
    }

    fn is_peer_initiated(&self, id: StreamId) -> bool {
        !self.is_local(id)
    }

    fn is_bidi(&self, id: StreamId) -> bool {
        id & 2 == 0
    }
}
