//! The small stream interface every transport presents to a moq-lite session.
//!
//! Raw QUIC implements it directly on a quiche connection; WebTransport and QMux implement
//! it with their own framing underneath. Sessions only ever see this trait.

use bytes::Bytes;

/// A stream id in the transport's numbering (QUIC's for raw QUIC).
pub type StreamId = u64;

/// Why a stream operation did not go through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamError {
    /// No credit or buffer space right now; try again after the peer makes room.
    Blocked,
    /// The peer reset its sending side with this code.
    Reset(u64),
    /// The peer asked us to stop sending with this code.
    Stopped(u64),
    /// The stream is finished, unknown, or otherwise unusable.
    Gone,
}

/// Stream operations of one connection.
pub trait Streams {
    /// Opens a locally initiated unidirectional stream, if the peer allows another.
    fn open_uni(&mut self) -> Result<StreamId, StreamError>;
    /// Opens a locally initiated bidirectional stream, if the peer allows another.
    fn open_bidi(&mut self) -> Result<StreamId, StreamError>;
    /// Writes as much of `data` as fits; `fin` applies only if all of it was written.
    fn send(&mut self, id: StreamId, data: &[u8], fin: bool) -> Result<usize, StreamError>;
    /// Like [`Self::send`] for a refcounted buffer: a transport that can queue it by
    /// reference (raw QUIC) does, instead of copying. Returns the bytes taken from the front.
    fn send_shared(&mut self, id: StreamId, data: &Bytes, fin: bool) -> Result<usize, StreamError> {
        self.send(id, data, fin)
    }
    /// Reads into `buf`; returns the byte count and whether the peer finished.
    fn recv(&mut self, id: StreamId, buf: &mut [u8]) -> Result<(usize, bool), StreamError>;
    /// Abandons our sending side with `code` (RESET_STREAM).
    fn reset(&mut self, id: StreamId, code: u64);
    /// Asks the peer to stop sending with `code` (STOP_SENDING).
    fn stop(&mut self, id: StreamId, code: u64);
    /// Lower is sent first.
    fn set_urgency(&mut self, id: StreamId, urgency: u8);
    /// The next stream with data, a FIN or a reset to read.
    fn next_readable(&mut self) -> Option<StreamId>;
    /// Closes the whole session with an application code and a short reason.
    fn close(&mut self, code: u64, reason: &str);
    /// Whether a stream id was opened by the peer.
    fn is_peer_initiated(&self, id: StreamId) -> bool;
    /// Whether a stream id is bidirectional.
    fn is_bidi(&self, id: StreamId) -> bool;
}
