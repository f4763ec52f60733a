//! Per-stream state: the send side (offset written, the peer's credit, FIN, reset, STOP_SENDING
//! received), the receive side (buffered bytes, our credit, final size, reset, STOP_SENDING
//! sent) and the stream's urgency. The checks RFC 9000 asks of each frame on one stream are
//! here; what they mean for the connection (frames to queue, connection credit, retiring the
//! stream) is `connection.rs`'s.

use std::collections::VecDeque;

use super::error::{code, Error};
use super::params::Params;
use crate::transport::{StreamError, StreamId};

/// The urgency of a stream nobody ranked (quiche's default).
pub const DEFAULT_URGENCY: u8 = 127;

/// The direction index of stream `id`: 0 bidi, 1 uni.
pub(super) fn dir(id: StreamId) -> usize {
    ((id >> 1) & 1) as usize
}

#[derive(Debug)]
pub(super) struct SendSide {
    written: u64,
    max: u64,
    /// FIN or RESET_STREAM queued: nothing more may be sent.
    done: bool,
    stopped: Option<u64>,
    /// The application saw [`StreamError::Stopped`] (or reset): the side may be dropped.
    stop_seen: bool,
    blocked_at: Option<u64>,
}

/// What [`SendSide::write`] made of the application's bytes.
pub(super) enum Write {
    /// The peer sent STOP_SENDING with this code.
    Stopped(u64),
    /// FIN or reset already queued.
    Gone,
    /// No stream credit; the limit to report in STREAM_DATA_BLOCKED the first time at it.
    StreamBlocked(Option<u64>),
    /// No connection credit.
    ConnBlocked,
    /// `n` bytes at offset `start` are to be framed, with a FIN after them if `fin`.
    Accepted { start: u64, n: usize, fin: bool },
}

impl SendSide {
    pub(super) fn new(max: u64) -> Self {
        SendSide {
            written: 0,
            max,
            done: false,
            stopped: None,
            stop_seen: false,
            blocked_at: None,
        }
    }

    pub(super) fn finished(&self) -> bool {
        self.done && (self.stopped.is_none() || self.stop_seen)
    }

    /// MAX_STREAM_DATA from the peer: credit only grows.
    pub(super) fn raise_max(&mut self, max: u64) {
        self.max = self.max.max(max);
    }

    /// Accepts as much of `len` bytes (and `fin`) as the stream's and the connection's
    /// (`conn_room`) credit allow.
    pub(super) fn write(&mut self, len: usize, fin: bool, conn_room: u64) -> Write {
        if let Some(code) = self.stopped {
            self.stop_seen = true;
            return Write::Stopped(code);
        }
        if self.done {
            return Write::Gone;
        }
        let room = (self.max - self.written).min(conn_room);
        let n = (len as u64).min(room) as usize;
        if n == 0 && !(fin && len == 0) {
            if self.max != self.written {
                return Write::ConnBlocked;
            }
            if self.blocked_at == Some(self.max) {
                return Write::StreamBlocked(None);
            }
            self.blocked_at = Some(self.max);
            return Write::StreamBlocked(Some(self.max));
        }
        let fin = fin && n == len;
        let start = self.written;
        self.written += n as u64;
        if fin {
            self.done = true;
        }
        Write::Accepted { start, n, fin }
    }

    /// The application resets the stream: the final size for RESET_STREAM, or `None` if
    /// FIN or reset was already queued (the side may now be dropped).
    pub(super) fn reset(&mut self) -> Option<u64> {
        if self.done {
            self.stop_seen = true;
            return None;
        }
        self.done = true;
        Some(self.written)
    }

    /// STOP_SENDING from the peer: the final size for the RESET_STREAM we answer with, or
    /// `None` if there is nothing to reset.
    pub(super) fn on_stop_sending(&mut self, code: u64) -> Option<u64> {
        if self.stopped.is_some() {
            return None;
        }
        self.stopped = Some(code);
        if self.done {
            // Everything was already sent: nothing left to tell the writer.
            self.stop_seen = true;
            return None;
        }
        self.done = true;
        Some(self.written)
    }
}

#[derive(Debug)]
pub(super) struct RecvSide {
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

/// What a STREAM or RESET_STREAM frame did to the receive side.
pub(super) struct Received {
    /// How far the highest offset grew (counted against connection credit).
    pub(super) grown: u64,
    /// Bytes that left the buffer at once (dropped), to return as connection credit.
    pub(super) consumed: u64,
    /// Whether the application should be told the stream is readable.
    pub(super) notify: bool,
}

/// What [`RecvSide::read`] gave the application.
pub(super) struct Read {
    pub(super) n: usize,
    pub(super) fin: bool,
    /// The new MAX_STREAM_DATA to advertise, if the window was widened.
    pub(super) credit: Option<u64>,
    /// Whether bytes are left in the buffer.
    pub(super) more: bool,
}

impl RecvSide {
    pub(super) fn new(max: u64) -> Self {
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

    pub(super) fn finished(&self) -> bool {
        self.done || (self.stopped && (self.reset.is_some() || self.fin_at == Some(self.highest)))
    }

    /// A STREAM frame; `conn_room` is the connection credit left.
    pub(super) fn on_data(
        &mut self,
        offset: Option<u64>,
        data: &[u8],
        fin: bool,
        conn_room: u64,
    ) -> Result<Received, Error> {
        let offset = offset.unwrap_or(self.highest);
        let end = offset + data.len() as u64;
        if end > self.max {
            return Err(Error::new(
                code::FLOW_CONTROL_ERROR,
                "stream flow control exceeded",
            ));
        }
        if let Some(fin_at) = self.fin_at {
            if end > fin_at || (fin && end != fin_at) {
                return Err(Error::new(code::FINAL_SIZE_ERROR, "final size changed"));
            }
        }
        if fin && end < self.highest {
            return Err(Error::new(
                code::FINAL_SIZE_ERROR,
                "final size below received data",
            ));
        }
        let grown = end.saturating_sub(self.highest);
        if grown > conn_room {
            return Err(Error::new(
                code::FLOW_CONTROL_ERROR,
                "connection flow control exceeded",
            ));
        }
        let buffered_end = self.read + self.buf.len() as u64;
        if offset > buffered_end && self.reset.is_none() && !self.stopped {
            return Err(Error::new(code::PROTOCOL_VIOLATION, "gap in stream data"));
        }
        self.highest = self.highest.max(end);
        if fin {
            self.fin_at = Some(end);
        }
        let mut consumed = 0;
        if self.reset.is_some() || self.stopped {
            // Counted against flow control, then dropped.
            consumed = grown;
            self.read += grown;
        } else if end > buffered_end {
            let skip = (buffered_end - offset) as usize;
            self.buf.extend(&data[skip..]);
        }
        Ok(Received {
            grown,
            consumed,
            notify: !self.stopped && self.reset.is_none(),
        })
    }

    /// A RESET_STREAM frame; `Ok(None)` if the stream was already reset or delivered.
    pub(super) fn on_reset(
        &mut self,
        code: u64,
        final_size: u64,
        conn_room: u64,
    ) -> Result<Option<Received>, Error> {
        if final_size < self.highest || self.fin_at.is_some_and(|f| f != final_size) {
            return Err(Error::new(
                code::FINAL_SIZE_ERROR,
                "reset final size mismatch",
            ));
        }
        if final_size > self.max {
            return Err(Error::new(
                code::FLOW_CONTROL_ERROR,
                "reset beyond stream credit",
            ));
        }
        let grown = final_size - self.highest;
        if grown > conn_room {
            return Err(Error::new(
                code::FLOW_CONTROL_ERROR,
                "connection flow control exceeded",
            ));
        }
        if self.reset.is_some() || self.done {
            return Ok(None);
        }
        self.highest = final_size;
        self.fin_at = Some(final_size);
        self.reset = Some(code);
        let freed = final_size - self.read;
        self.read = final_size;
        self.buf.clear();
        Ok(Some(Received {
            grown,
            consumed: freed,
            notify: !self.stopped,
        }))
    }

    /// The application reads into `buf`; the stream window (`window` bytes) is widened once
    /// half of it is used. `Err(StreamError::Reset)` delivers a reset (the side is then done).
    pub(super) fn read(&mut self, buf: &mut [u8], window: u64) -> Result<Read, StreamError> {
        if self.done || self.stopped {
            return Err(StreamError::Gone);
        }
        if let Some(code) = self.reset {
            self.done = true;
            return Err(StreamError::Reset(code));
        }
        let n = buf.len().min(self.buf.len());
        for (dst, src) in buf.iter_mut().zip(self.buf.drain(..n)) {
            *dst = src;
        }
        self.read += n as u64;
        let fin = self.buf.is_empty() && self.fin_at == Some(self.read);
        if n == 0 && !fin {
            return Err(StreamError::Blocked);
        }
        let mut credit = None;
        if fin {
            self.done = true;
        } else if self.fin_at.is_none() && self.max - self.read < window / 2 {
            self.max = self.read + window;
            credit = Some(self.max);
        }
        Ok(Read {
            n,
            fin,
            credit,
            more: !self.buf.is_empty(),
        })
    }

    /// The application stops reading: the bytes dropped from the buffer, and whether the
    /// peer already ended the stream (no STOP_SENDING needed); `None` if it was over.
    pub(super) fn stop(&mut self) -> Option<(u64, bool)> {
        if self.done || self.stopped {
            return None;
        }
        self.stopped = true;
        let freed = self.buf.len() as u64;
        self.read += freed;
        self.buf.clear();
        Some((
            freed,
            self.reset.is_some() || self.fin_at == Some(self.highest),
        ))
    }
}

/// One stream: the sides it has and its urgency.
#[derive(Debug)]
pub(super) struct Stream {
    pub(super) send: Option<SendSide>,
    pub(super) recv: Option<RecvSide>,
    pub(super) urgency: u8,
}

impl Stream {
    /// A stream we open in direction `d`, with the peer's initial credit and our window.
    pub(super) fn local(d: usize, peer: &Params, window: u64) -> Self {
        let max = if d == 0 {
            peer.initial_max_stream_data_bidi_remote
        } else {
            peer.initial_max_stream_data_uni
        };
        Stream {
            send: Some(SendSide::new(max)),
            recv: (d == 0).then(|| RecvSide::new(window)),
            urgency: DEFAULT_URGENCY,
        }
    }

    /// A stream the peer opens in direction `d`.
    pub(super) fn remote(d: usize, peer: &Params, window: u64) -> Self {
        Stream {
            recv: Some(RecvSide::new(window)),
            send: (d == 0).then(|| SendSide::new(peer.initial_max_stream_data_bidi_local)),
            urgency: DEFAULT_URGENCY,
        }
    }

    /// Whether both sides are over, so the stream may be dropped.
    pub(super) fn is_over(&self) -> bool {
        let send_over = self.send.as_ref().is_none_or(SendSide::finished);
        let recv_over = self.recv.as_ref().is_none_or(RecvSide::finished);
        send_over && recv_over
    }
}
