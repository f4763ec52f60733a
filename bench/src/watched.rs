//! A [`Streams`] wrapper that notes whether the session wrote anything: the worker sends
//! at once when it did, and otherwise lets ACKs wait as a published client's would (see
//! `conn.rs`).

use bytes::Bytes;
use moq_relay::transport::{StreamError, StreamId, Streams};

/// `inner`, with a flag set by every call that gives QUIC something to send.
pub struct Watched<'a> {
    inner: &'a mut dyn Streams,
    pub wrote: bool,
}

impl<'a> Watched<'a> {
    pub fn new(inner: &'a mut dyn Streams) -> Self {
        Self {
            inner,
            wrote: false,
        }
    }
}

impl Streams for Watched<'_> {
    fn open_uni(&mut self) -> Result<StreamId, StreamError> {
        self.inner.open_uni()
    }

    fn open_bidi(&mut self) -> Result<StreamId, StreamError> {
        self.inner.open_bidi()
    }

    fn send(&mut self, id: StreamId, data: &[u8], fin: bool) -> Result<usize, StreamError> {
        let sent = self.inner.send(id, data, fin);
        self.wrote |= sent.is_ok();
        sent
    }

    fn send_shared(&mut self, id: StreamId, data: &Bytes, fin: bool) -> Result<usize, StreamError> {
        let sent = self.inner.send_shared(id, data, fin);
        self.wrote |= sent.is_ok();
        sent
    }

    fn recv(&mut self, id: StreamId, buf: &mut [u8]) -> Result<(usize, bool), StreamError> {
        self.inner.recv(id, buf)
    }

    fn reset(&mut self, id: StreamId, code: u64) {
        self.wrote = true;
        self.inner.reset(id, code)
    }

    fn stop(&mut self, id: StreamId, code: u64) {
        self.wrote = true;
        self.inner.stop(id, code)
    }

    fn set_urgency(&mut self, id: StreamId, urgency: u8) {
        self.inner.set_urgency(id, urgency)
    }

    fn next_readable(&mut self) -> Option<StreamId> {
        self.inner.next_readable()
    }

    fn close(&mut self, code: u64, reason: &str) {
        self.wrote = true;
        self.inner.close(code, reason)
    }

    fn is_peer_initiated(&self, id: StreamId) -> bool {
        self.inner.is_peer_initiated(id)
    }

    fn is_bidi(&self, id: StreamId) -> bool {
        self.inner.is_bidi(id)
    }
}
