//! The sans-IO QMux connection: fed whole WebSocket binary message payloads, it yields the
//! payloads to send, keeps QUIC stream numbering, flow control and stream limits, and
//! implements [`Streams`] so moq-lite sessions run on it unchanged.
//!
//! Data is framed as soon as [`Streams::send`] accepts it (at most the peer's credit, so the
//! queues stay bounded) into a per-stream queue. Control frames leave first, then streams by
//! urgency (lower first, default 127), round-robin among equal urgency (PROTOCOL.md §6.9).
//!
//! This file is the connection itself: frames in, timers, and what each event means for the
//! whole connection. Per-stream state is in `stream.rs`, credit accounting in `flow.rs`, the
//! send queues in `schedule.rs`, errors in `error.rs`, local limits in `config.rs`.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::config::Config;
use super::error::{code, CloseReason, Error};
use super::flow::{DataCredit, StreamCredit};
use super::frame::{self, Frame};
use super::params::{Params, DEFAULT_MAX_RECORD_SIZE};
use super::schedule::Outgoing;
use super::stream::{dir, RecvSide, Stream, Write, DEFAULT_URGENCY};
use super::QmuxVersion;
use crate::transport::{StreamError, StreamId, Streams};

/// Which end of the connection we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// The QMux connection state machine.
#[derive(Debug)]
pub struct QmuxConnection {
    role: Role,
    config: Config,
    peer: Option<Params>,
    /// Frames waiting to be sent.
    out: Outgoing,
    closed: Option<CloseReason>,
    streams: BTreeMap<StreamId, Stream>,
    /// Stream credit both ways, per direction.
    stream_credit: StreamCredit,
    /// Connection data credit both ways.
    data_credit: DataCredit,
    readable: VecDeque<StreamId>,
    readable_set: HashSet<StreamId>,
    last_rx: Instant,
    next_ping: Instant,
    ping_seq: u64,
    ws_ping_due: bool,
}

impl QmuxConnection {
    /// A new connection; our QX_TRANSPORT_PARAMETERS is queued first.
    pub fn new(role: Role, config: Config, now: Instant) -> Self {
        let mut conn = QmuxConnection {
            role,
            peer: None,
            out: Outgoing::default(),
            closed: None,
            streams: BTreeMap::new(),
            stream_credit: StreamCredit::new([config.max_streams_bidi, config.max_streams_uni]),
            data_credit: DataCredit::new(config.max_data),
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

    /// The largest message this connection can take now: a record is at most our
    /// `max_record_size` (qmux-01), and before the peer's transport parameters only they may
    /// come, in a message no larger (qmux-00 too). `None`: QMux sets no bound (qmux-00 once
    /// established, where a message is one frame of any size).
    pub fn max_incoming_message(&self) -> Option<usize> {
        let record = usize::try_from(self.config.max_record_size).unwrap_or(usize::MAX);
        match self.config.version {
            QmuxVersion::Qmux01 => Some(record),
            QmuxVersion::Qmux00 if self.peer.is_none() => Some(record),
            QmuxVersion::Qmux00 => None,
        }
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
        self.out.push(frame);
    }

    /// Queues a STREAM or RESET_STREAM frame behind the stream's earlier frames.
    fn queue_stream(&mut self, id: StreamId, frame: Frame) {
        let urgency = self.streams.get(&id).map_or(DEFAULT_URGENCY, |s| s.urgency);
        self.out.push_stream(id, urgency, frame);
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
        let pack = match self.config.version {
            QmuxVersion::Qmux01 => Some(self.peer_record_size()),
            QmuxVersion::Qmux00 => None,
        };
        self.out.next_record(pack)
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
            if !self.stream_credit.opened_local(d, index) {
                return Err(Error::new(code::STREAM_STATE_ERROR, "stream not opened"));
            }
        } else {
            let opened = self.stream_credit.open_peer(d, index)?;
            if !opened.is_empty() {
                let peer = self.peer.clone().unwrap_or_default();
                for i in opened {
                    let sid = i << 2 | (id & 3);
                    let stream = Stream::remote(d, &peer, self.config.max_stream_data);
                    self.streams.insert(sid, stream);
                }
            }
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
                    self.data_credit.set_peer_max(p.initial_max_data);
                    self.stream_credit
                        .set_peer_max([p.initial_max_streams_bidi, p.initial_max_streams_uni]);
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
            Frame::MaxData(max) => self.data_credit.raise_peer_max(max),
            Frame::MaxStreams { bidi, max } => {
                if max > 1 << 60 {
                    return Err(Error::new(
                        code::FRAME_ENCODING_ERROR,
                        "MAX_STREAMS too large",
                    ));
                }
                self.stream_credit.raise_peer_max(usize::from(!bidi), max);
            }
            Frame::MaxStreamData { id, max } => {
                if !self.is_local(id) && dir(id) == 1 {
                    return Err(Error::new(
                        code::STREAM_STATE_ERROR,
                        "MAX_STREAM_DATA on receive-only stream",
                    ));
                }
                if let Some(send) = self.peer_stream(id)?.and_then(|s| s.send.as_mut()) {
                    send.raise_max(max);
                }
            }
            Frame::StopSending { id, code } => {
                if !self.is_local(id) && dir(id) == 1 {
                    return Err(Error::new(
                        code::STREAM_STATE_ERROR,
                        "STOP_SENDING on receive-only stream",
                    ));
                }
                let reset = match self.peer_stream(id)?.and_then(|s| s.send.as_mut()) {
                    Some(send) => send.on_stop_sending(code),
                    None => None,
                };
                if let Some(final_size) = reset {
                    // Abandoned data need not be sent; the final size still covers it.
                    self.out.drop_stream(id);
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
        let conn_room = self.data_credit.recv_room();
        let Some(r) = self.recv_side(id)? else {
            return Ok(());
        };
        let got = r.on_data(offset, data, fin, conn_room)?;
        self.data_credit.received(got.grown);
        if got.consumed > 0 {
            self.consume(got.consumed);
        }
        if got.notify {
            self.mark_readable(id);
        }
        self.maybe_retire(id);
        Ok(())
    }

    fn on_reset(&mut self, id: StreamId, code: u64, final_size: u64) -> Result<(), Error> {
        let conn_room = self.data_credit.recv_room();
        let Some(r) = self.recv_side(id)? else {
            return Ok(());
        };
        let Some(got) = r.on_reset(code, final_size, conn_room)? else {
            return Ok(());
        };
        self.data_credit.received(got.grown);
        self.consume(got.consumed);
        if got.notify {
            self.mark_readable(id);
        }
        self.maybe_retire(id);
        Ok(())
    }

    /// Bytes left the receive buffers: widen the connection window when half is used.
    fn consume(&mut self, n: u64) {
        if let Some(max) = self.data_credit.consume(n) {
            self.queue(Frame::MaxData(max));
        }
    }

    /// Drops a stream whose both sides are over and returns stream credit for peer streams.
    fn maybe_retire(&mut self, id: StreamId) {
        if !self.streams.get(&id).is_some_and(Stream::is_over) {
            return;
        }
        self.streams.remove(&id);
        if self.is_local(id) {
            return;
        }
        let d = dir(id);
        if let Some(max) = self.stream_credit.retire_peer(d) {
            self.queue(Frame::MaxStreams { bidi: d == 0, max });
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
        let index = match self.stream_credit.open_local(d) {
            Ok(index) => index,
            Err(limit) => {
                if self.peer.is_some() {
                    self.queue(Frame::StreamsBlocked {
                        bidi: d == 0,
                        limit,
                    });
                }
                return Err(StreamError::Blocked);
            }
        };
        let id = index << 2 | (d as u64) << 1 | u64::from(self.role == Role::Server);
        let peer = self.peer.clone().unwrap_or_default();
        let stream = Stream::local(d, &peer, self.config.max_stream_data);
        self.streams.insert(id, stream);
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
        let conn_room = self.data_credit.send_room();
        let chunk = self.chunk_size();
        let s = self
            .streams
            .get_mut(&id)
            .and_then(|s| s.send.as_mut())
            .ok_or(StreamError::Gone)?;
        let (start, n, fin_now) = match s.write(data.len(), fin, conn_room) {
            Write::Accepted { start, n, fin } => (start, n, fin),
            Write::Stopped(code) => {
                self.maybe_retire(id);
                return Err(StreamError::Stopped(code));
            }
            Write::Gone => return Err(StreamError::Gone),
            Write::StreamBlocked(limit) => {
                if let Some(limit) = limit {
                    self.queue(Frame::StreamDataBlocked { id, limit });
                }
                return Err(StreamError::Blocked);
            }
            Write::ConnBlocked => {
                self.queue(Frame::DataBlocked(self.data_credit.peer_max()));
                return Err(StreamError::Blocked);
            }
        };
        self.data_credit.sent(n as u64);
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
        let read = match r.read(buf, window) {
            Ok(read) => read,
            Err(StreamError::Reset(code)) => {
                self.readable_set.remove(&id);
                self.maybe_retire(id);
                return Err(StreamError::Reset(code));
            }
            Err(e) => return Err(e),
        };
        if let Some(max) = read.credit {
            self.queue(Frame::MaxStreamData { id, max });
        }
        self.consume(read.n as u64);
        if read.more {
            self.readable_set.insert(id);
            self.readable.push_back(id);
        } else {
            self.readable_set.remove(&id);
        }
        if read.fin {
            self.maybe_retire(id);
        }
        Ok((read.n, read.fin))
    }

    fn reset(&mut self, id: StreamId, code: u64) {
        if self.closed.is_some() {
            return;
        }
        let Some(s) = self.streams.get_mut(&id).and_then(|s| s.send.as_mut()) else {
            return;
        };
        let Some(final_size) = s.reset() else {
            self.maybe_retire(id);
            return;
        };
        // Abandoned data need not be sent; the final size still covers it.
        self.out.drop_stream(id);
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
        let Some((freed, already_over)) = r.stop() else {
            return;
        };
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
        self.out.set_urgency(id, urgency);
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
        self.out.clear_streams();
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
