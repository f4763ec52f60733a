//! [`Streams`] on a raw quiche connection: a moq ALPN makes the QUIC connection the session.

use super::buffers::QuicConnection;
use crate::transport::streams::{StreamError, StreamId, Streams};
use bytes::Bytes;

/// Next locally initiated stream ids of one connection.
#[derive(Debug)]
pub struct StreamIds {
    next_bidi: u64,
    next_uni: u64,
    server: bool,
}

impl StreamIds {
    pub fn new(server: bool) -> Self {
        let base = u64::from(server);
        Self {
            next_bidi: base,
            next_uni: base | 2,
            server,
        }
    }
}

/// A quiche connection seen through the session stream interface.
pub struct QuicStreams<'a> {
    pub conn: &'a mut QuicConnection,
    pub ids: &'a mut StreamIds,
}

fn map(err: quiche::Error) -> StreamError {
    match err {
        quiche::Error::Done | quiche::Error::StreamLimit => StreamError::Blocked,
        quiche::Error::StreamReset(code) => StreamError::Reset(code),
        quiche::Error::StreamStopped(code) => StreamError::Stopped(code),
        _ => StreamError::Gone,
    }
}

impl Streams for QuicStreams<'_> {
    fn open_uni(&mut self) -> Result<StreamId, StreamError> {
        if self.conn.peer_streams_left_uni() == 0 {
            return Err(StreamError::Blocked);
        }
        let id = self.ids.next_uni;
        self.ids.next_uni += 4;
        Ok(id)
    }

    fn open_bidi(&mut self) -> Result<StreamId, StreamError> {
        if self.conn.peer_streams_left_bidi() == 0 {
            return Err(StreamError::Blocked);
        }
        let id = self.ids.next_bidi;
        self.ids.next_bidi += 4;
        Ok(id)
    }

    fn send(&mut self, id: StreamId, data: &[u8], fin: bool) -> Result<usize, StreamError> {
        match self.conn.stream_send(id, data, fin) {
            Ok(n) => Ok(n),
            // An empty FIN on a stream with no room yet is still "nothing written".
            Err(quiche::Error::Done) if data.is_empty() => Err(StreamError::Blocked),
            Err(e) => Err(map(e)),
        }
    }

    fn send_shared(&mut self, id: StreamId, data: &Bytes, fin: bool) -> Result<usize, StreamError> {
        if data.is_empty() {
            return self.send(id, &[], fin);
        }
        // quiche keeps a clone (a refcount) and splits off whatever did not fit.
        match self.conn.stream_send_zc(id, data.clone(), fin) {
            Ok((n, _unsent)) => Ok(n),
            Err(e) => Err(map(e)),
        }
    }

    fn recv(&mut self, id: StreamId, buf: &mut [u8]) -> Result<(usize, bool), StreamError> {
        match self.conn.stream_recv(id, buf) {
            Ok(read) => Ok(read),
            Err(quiche::Error::Done) => Ok((0, self.conn.stream_finished(id))),
            Err(e) => Err(map(e)),
        }
    }

    fn reset(&mut self, id: StreamId, code: u64) {
        let _ = self.conn.stream_shutdown(id, quiche::Shutdown::Write, code);
    }

    fn stop(&mut self, id: StreamId, code: u64) {
        let _ = self.conn.stream_shutdown(id, quiche::Shutdown::Read, code);
    }

    fn set_urgency(&mut self, id: StreamId, urgency: u8) {
        let _ = self.conn.stream_priority(id, urgency, true);
    }

    fn next_readable(&mut self) -> Option<StreamId> {
        self.conn.stream_readable_next()
    }

    fn close(&mut self, code: u64, reason: &str) {
        let _ = self.conn.close(true, code, reason.as_bytes());
    }

    fn is_peer_initiated(&self, id: StreamId) -> bool {
        // Bit 0 is set on server-initiated streams.
        (id & 1 == 1) != self.ids.server
    }

    fn is_bidi(&self, id: StreamId) -> bool {
        id & 2 == 0
    }
}
