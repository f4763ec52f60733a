//! [`Streams`] on a WebTransport session: moq-lite's view of the streams of one accepted
//! session. Opened streams get their `0x41`/`0x54` header first; accepted streams are handed
//! out only once theirs was read; stream codes travel in the HTTP/3 error space.

use super::error_code::{from_http3, stream_code_to_http3};
use super::session::WebTransportSession;
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

impl WebTransportSession {
    /// Streams view for moq-lite.
    pub fn streams<'a>(&'a mut self, conn: &'a mut QuicConnection) -> WebTransportStreams<'a> {
        WebTransportStreams { conn, wt: self }
    }
}

impl WebTransportStreams<'_> {
    /// Payload may follow only once the stream's WebTransport header is all written.
    fn header_written(&mut self, id: StreamId) -> Result<(), StreamError> {
        if self.wt.header_written(self.conn, id) {
            Ok(())
        } else {
            Err(StreamError::Blocked)
        }
    }
}

impl Streams for WebTransportStreams<'_> {
    fn open_uni(&mut self) -> Result<StreamId, StreamError> {
        self.wt.open_stream(self.conn, false)
    }

    fn open_bidi(&mut self) -> Result<StreamId, StreamError> {
        self.wt.open_stream(self.conn, true)
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
        if !self.wt.is_handed_out(id) {
            return Err(StreamError::Blocked);
        }
        // Bytes the stream sent before the session was accepted come first.
        if let Some((n, fin)) = self.wt.read_held(id, buf) {
            if fin {
                self.wt.forget(id);
            }
            return Ok((n, fin));
        }
        let result = match self.conn.stream_recv(id, buf) {
            Ok(read) => Ok(read),
            Err(quiche::Error::Done) => Ok((0, self.conn.stream_finished(id))),
            Err(e) => Err(map(e)),
        };
        if !matches!(result, Ok((_, false))) {
            self.wt.forget(id);
        }
        result
    }

    fn reset(&mut self, id: StreamId, code: u64) {
        self.wt.abandon(id);
        let code = stream_code_to_http3(code);
        let _ = self.conn.stream_shutdown(id, quiche::Shutdown::Write, code);
    }

    fn stop(&mut self, id: StreamId, code: u64) {
        let code = stream_code_to_http3(code);
        let _ = self.conn.stream_shutdown(id, quiche::Shutdown::Read, code);
        self.wt.forget(id);
    }

    fn set_urgency(&mut self, id: StreamId, urgency: u8) {
        let _ = self.conn.stream_priority(id, urgency, true);
    }

    fn next_readable(&mut self) -> Option<StreamId> {
        self.wt.next_readable(self.conn)
    }

    fn close(&mut self, code: u64, reason: &str) {
        self.wt.close(self.conn, code, reason);
    }

    fn is_peer_initiated(&self, id: StreamId) -> bool {
        self.wt.is_peer_initiated(id)
    }

    fn is_bidi(&self, id: StreamId) -> bool {
        id & 2 == 0
    }
}
