//! [`Streams`] on a WebTransport session: moq-lite's view of the streams of one accepted
//! session. Opened streams get their `0x41`/`0x54` header first; accepted streams are handed
//! out only once theirs was read; stream codes travel in the HTTP/3 error space.

use super::capsule::Capsule;
use super::error_code::{self, from_http3, stream_code_to_http3};
use super::frame;
use super::header;
use super::session::{Peer, State, WebTransportSession};
use crate::transport::quic::QuicConnection;
use crate::transport::streams::{StreamError, StreamId, Streams};
use bytes::Bytes;

fn map(err: quiche::Error) -> StreamError {
    match err {
        quiche::Error::Done | quiche::Error::StreamLimit => StreamError::Blocked,
        quiche::Error::StreamReset(code) => {
            StreamError::Reset(u64::from(from_http3(code).unwrap_or(0)))
        }
        quiche::Error::StreamStopped(code) => {
            StreamError::Stopped(u64::from(from_http3(code).unwrap_or(0)))
        }
        _ => StreamError::Gone,
    }
}

/// A WebTransport session seen through the moq-lite stream interface.
pub struct WebTransportStreams<'a> {
    pub conn: &'a mut QuicConnection,
    pub wt: &'a mut WebTransportSession,
}

impl WebTransportStreams<'_> {
    fn open(&mut self, bidi: bool) -> Result<StreamId, StreamError> {
        let Some(session) = self.wt.session_id.filter(|_| self.wt.is_established()) else {
            return Err(StreamError::Gone);
        };
        let left = if bidi {
            self.conn.peer_streams_left_bidi()
        } else {
            self.conn.peer_streams_left_uni()
        };
        if left == 0 {
            return Err(StreamError::Blocked);
        }
        let mut out = Vec::new();
        let id = if bidi {
            header::encode_bidi(session, &mut out);
            let id = self.wt.next_bidi;
            self.wt.next_bidi += 4;
            id
        } else {
            header::encode_uni(session, &mut out);
            let id = self.wt.next_uni;
            self.wt.next_uni += 4;
            id
        };
        self.wt.queue(id, out, false);
        self.wt.flush(self.conn);
        Ok(id)
    }

    /// Payload may follow only once the stream's WebTransport header is all written.
    fn header_written(&mut self, id: StreamId) -> Result<(), StreamError> {
        if self.wt.pending.contains_key(&id) {
            self.wt.flush(self.conn);
            if self.wt.pending.contains_key(&id) {
                return Err(StreamError::Blocked);
            }
        }
        Ok(())
    }
}

impl Streams for WebTransportStreams<'_> {
    fn open_uni(&mut self) -> Result<StreamId, StreamError> {
        self.open(false)
    }

    fn open_bidi(&mut self) -> Result<StreamId, StreamError> {
        self.open(true)
    }

    fn send(&mut self, id: StreamId, data: &[u8], fin: bool) -> Result<usize, StreamError> {
        self.header_written(id)?;
        match self.conn.stream_send(id, data, fin) {
            Ok(n) => Ok(n),
            Err(quiche::Error::Done) if data.is_empty() => Err(StreamError::Blocked),
            Err(e) => Err(map(e)),
        }
    }

    fn send_shared(&mut self, id: StreamId, data: &Bytes, fin: bool) -> Result<usize, StreamError> {
        if data.is_empty() {
            return self.send(id, data, fin);
        }
        self.header_written(id)?;
        match self.conn.stream_send_zc(id, data.clone(), fin) {
            Ok((n, _unsent)) => Ok(n),
            Err(e) => Err(map(e)),
        }
    }

    fn recv(&mut self, id: StreamId, buf: &mut [u8]) -> Result<(usize, bool), StreamError> {
        if self.is_peer_initiated(id) && !matches!(self.wt.peers.get(&id), Some(Peer::Ready)) {
            return Err(StreamError::Blocked);
        }
        let result = match self.conn.stream_recv(id, buf) {
            Ok(read) => Ok(read),
            Err(quiche::Error::Done) => Ok((0, self.conn.stream_finished(id))),
            Err(e) => Err(map(e)),
        };
        if !matches!(result, Ok((_, false))) {
            self.wt.peers.remove(&id);
        }
        result
    }

    fn reset(&mut self, id: StreamId, code: u64) {
        self.wt.pending.remove(&id);
        let code = stream_code_to_http3(code);
        let _ = self.conn.stream_shutdown(id, quiche::Shutdown::Write, code);
    }

    fn stop(&mut self, id: StreamId, code: u64) {
        let code = stream_code_to_http3(code);
        let _ = self.conn.stream_shutdown(id, quiche::Shutdown::Read, code);
        self.wt.peers.remove(&id);
    }

    fn set_urgency(&mut self, id: StreamId, urgency: u8) {
        let _ = self.conn.stream_priority(id, urgency, true);
    }

    fn next_readable(&mut self) -> Option<StreamId> {
        loop {
            if let Some(id) = self.wt.readable.pop_front() {
                return Some(id);
            }
            let id = self.conn.stream_readable_next()?;
            self.wt.on_readable(self.conn, id);
        }
    }

    fn close(&mut self, code: u64, reason: &str) {
        let Some(id) = self.wt.session_id else {
            let _ = self.conn.close(true, code, reason.as_bytes());
            self.wt.state = State::Closed;
            return;
        };
        if self.wt.is_closed() {
            return;
        }
        let mut capsule = Vec::new();
        Capsule::Close {
            code: u32::try_from(code).unwrap_or(u32::MAX),
            reason: reason.to_string(),
        }
        .encode(&mut capsule);
        let mut out = Vec::new();
        frame::encode_frame(frame::DATA, &capsule, &mut out);
        self.wt.queue(id, out, true);
        self.wt.flush(self.conn);
        self.wt.state = State::Closing {
            code: error_code::stream_code_to_http3(code),
            reason: reason.to_string(),
        };
    }

    fn is_peer_initiated(&self, id: StreamId) -> bool {
        self.wt.is_peer_initiated(id)
    }

    fn is_bidi(&self, id: StreamId) -> bool {
        id & 2 == 0
    }
}
