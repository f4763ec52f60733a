//! Per-stream byte plumbing for sessions: a receive buffer that frames are split from
//! without copying, a send queue that holds what the transport could not take yet, and the
//! session's set of send queues that remembers which ones have something to write.

use crate::transport::{StreamError, StreamId, StreamMap, Streams};
use crate::wire::{DecodeError, Message, Version};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;

/// What a stream's first read asks the transport for: enough for control messages, small
/// enough that thousands of idle sessions do not pin large buffers.
const FIRST_READ: usize = 1024;
/// The most one read asks for; a stream that keeps filling its reads doubles up to this.
const MAX_READ: usize = 64 * 1024;

/// What reading a stream produced.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Bytes may have arrived; the peer may send more.
    Open,
    /// The peer finished its side.
    Finished,
    /// The peer reset its side with this code.
    Reset(u64),
}

/// Bytes received on one stream and not yet consumed.
#[derive(Default)]
pub struct Inbound {
    pub buf: BytesMut,
    pub finished: bool,
    /// Size of the next read (0 = not read yet: [`FIRST_READ`]).
    chunk: usize,
}

impl Inbound {
    /// Reads everything the transport has for `id` into the buffer, up to `limit` bytes
    /// buffered (a larger backlog is left in the transport, which applies flow control).
    pub fn fill(&mut self, streams: &mut dyn Streams, id: StreamId, limit: usize) -> ReadOutcome {
        loop {
            if self.buf.len() >= limit {
                return ReadOutcome::Open;
            }
            let chunk = self.chunk.max(FIRST_READ);
            let allowed = limit - self.buf.len();
            self.buf.reserve(chunk.min(allowed));
            let spare = self.buf.spare_capacity_mut();
            let room = spare.len().min(allowed);
            // SAFETY: the transport only writes initialized bytes into the slice and
            // reports how many; we expose exactly those below.
            let spare =
                unsafe { std::slice::from_raw_parts_mut(spare.as_mut_ptr().cast::<u8>(), room) };
            let offered = spare.len();
            match streams.recv(id, spare) {
                Ok((n, fin)) => {
                    // SAFETY: `n` bytes were just written by `recv`.
                    unsafe { self.buf.set_len(self.buf.len() + n) };
                    // A read that filled all we offered means a bulk stream: read bigger.
                    self.chunk = if n >= offered {
                        (chunk * 2).min(MAX_READ)
                    } else {
                        chunk
                    };
                    if fin {
                        self.finished = true;
                        return ReadOutcome::Finished;
                    }
                    if n == 0 {
                        return ReadOutcome::Open;
                    }
                }
                Err(StreamError::Reset(code)) => return ReadOutcome::Reset(code),
                Err(StreamError::Blocked) => return ReadOutcome::Open,
                Err(_) => return ReadOutcome::Reset(0),
            }
        }
    }

    /// Decodes one len-prefixed message from the front, if it is all here. An empty buffer
    /// is `None` even after the FIN (a clean end: callers check [`Self::finished`]); a FIN
    /// inside a message is [`DecodeError::ShortBody`].
    pub fn message<M: Message>(&mut self, version: Version) -> Result<Option<M>, DecodeError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        match M::decode(version, &self.buf) {
            Ok((message, used)) => {
                self.consume(used);
                Ok(Some(message))
            }
            Err(DecodeError::Incomplete) if !self.finished => Ok(None),
            Err(DecodeError::Incomplete) => Err(DecodeError::ShortBody),
            Err(e) => Err(e),
        }
    }

    /// Decodes a value with its own framing from the front, if it is all here; empty and
    /// FIN rules as for [`Self::message`].
    pub fn decode<T>(
        &mut self,
        decode: impl FnOnce(&[u8]) -> Result<(T, usize), DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        match decode(&self.buf) {
            Ok((value, used)) => {
                self.consume(used);
                Ok(Some(value))
            }
            Err(DecodeError::Incomplete) if !self.finished => Ok(None),
            Err(DecodeError::Incomplete) => Err(DecodeError::ShortBody),
            Err(e) => Err(e),
        }
    }

    /// Drops `used` decoded bytes from the front. A buffer left empty gives its memory
    /// back: most streams of an idle session (subscribe, announce) carry one message and
    /// then wait, and a thousand such sessions would otherwise pin their first reads.
    fn consume(&mut self, used: usize) {
        if used >= self.buf.len() {
            self.buf = BytesMut::new();
        } else {
            let _ = self.buf.split_to(used);
        }
    }

    /// Splits off `len` bytes as a shared buffer, if they are all here.
    pub fn take(&mut self, len: usize) -> Option<Bytes> {
        (self.buf.len() >= len).then(|| self.buf.split_to(len).freeze())
    }

    /// True when nothing is buffered and the peer finished.
    pub fn drained(&self) -> bool {
        self.finished && self.buf.is_empty()
    }
}

/// Bytes waiting to be written on one stream, then optionally a FIN.
#[derive(Default)]
pub struct Outbound {
    queue: VecDeque<Bytes>,
    fin: bool,
    fin_sent: bool,
    /// On its [`Outbox`]'s list of queues to flush.
    listed: bool,
}

impl Outbound {
    /// Queues bytes behind anything already waiting.
    pub fn push(&mut self, bytes: impl Into<Bytes>) {
        let bytes = bytes.into();
        if !bytes.is_empty() {
            self.queue.push_back(bytes);
        }
    }

    /// Queues a FIN after the data.
    pub fn finish(&mut self) {
        self.fin = true;
    }

    /// Whether nothing is queued (the FIN may still be pending).
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether bytes or a FIN are still to be handed to the transport.
    pub fn has_pending(&self) -> bool {
        !self.queue.is_empty() || (self.fin && !self.fin_sent)
    }

    /// Whether the FIN has been handed to the transport.
    pub fn fin_sent(&self) -> bool {
        self.fin_sent
    }

    /// Writes as much as the transport takes. `Err` means the peer stopped the stream.
    pub fn flush(&mut self, streams: &mut dyn Streams, id: StreamId) -> Result<(), u64> {
        while !self.queue.is_empty() {
            let last = self.queue.len() == 1;
            let front = self.queue.front_mut().expect("not empty");
            match streams.send_shared(id, front, last && self.fin) {
                Ok(n) if n == front.len() => {
                    self.queue.pop_front();
                    if last && self.fin {
                        self.fin_sent = true;
                    }
                }
                Ok(n) => {
                    let _ = front.split_to(n);
                    return Ok(());
                }
                Err(StreamError::Stopped(code)) => return Err(code),
                Err(StreamError::Reset(code)) => return Err(code),
                Err(StreamError::Blocked) => return Ok(()),
                Err(StreamError::Gone) => return Err(0),
            }
        }
        if self.fin && !self.fin_sent {
            match streams.send(id, &[], true) {
                Ok(_) => self.fin_sent = true,
                Err(StreamError::Stopped(code)) | Err(StreamError::Reset(code)) => {
                    return Err(code)
                }
                Err(StreamError::Gone) => return Err(0),
                Err(StreamError::Blocked) => {}
            }
        }
        Ok(())
    }
}

/// A session's send queues by stream, and the list of those that may have something to
/// write: a flush visits only queues touched since the last one and queues the transport
/// pushed back on, never every open stream.
#[derive(Default)]
pub struct Outbox {
    queues: StreamMap<Outbound>,
    listed: Vec<StreamId>,
}

impl Outbox {
    /// The queue of stream `id` (created empty), listed for the next flush.
    pub fn entry(&mut self, id: StreamId) -> &mut Outbound {
        let out = self.queues.entry(id).or_default();
        if !out.listed {
            out.listed = true;
            self.listed.push(id);
        }
        out
    }

    /// Forgets the queue of stream `id`; whether there was one.
    pub fn remove(&mut self, id: StreamId) -> bool {
        self.queues.remove(&id).is_some()
    }

    /// Whether stream `id` has a queue.
    pub fn contains(&self, id: StreamId) -> bool {
        self.queues.contains_key(&id)
    }

    /// Whether stream `id` has nothing queued (or no queue): the transport took it all.
    pub fn is_drained(&self, id: StreamId) -> bool {
        self.queues.get(&id).is_none_or(Outbound::is_empty)
    }

    /// Bytes queued for stream `id` and not yet taken by the transport.
    pub fn queued_bytes(&self, id: StreamId) -> usize {
        self.queues
            .get(&id)
            .map_or(0, |out| out.queue.iter().map(Bytes::len).sum())
    }

    /// How many queues the next flush visits.
    pub fn listed(&self) -> usize {
        self.listed.len()
    }

    /// Writes what the transport takes from the listed queues. A queue that is done (FIN
    /// sent) or whose stream the peer stopped is forgotten; one the transport pushed back
    /// on stays listed for the next flush.
    pub fn flush(&mut self, streams: &mut dyn Streams) {
        let mut i = 0;
        while i < self.listed.len() {
            let id = self.listed[i];
            let Some(out) = self.queues.get_mut(&id) else {
                self.listed.swap_remove(i);
                continue;
            };
            let keep = match out.flush(streams, id) {
                Ok(()) => !(out.is_empty() && out.fin_sent()),
                Err(_) => false,
            };
            if !keep {
                self.queues.remove(&id);
                self.listed.swap_remove(i);
            } else if out.has_pending() {
                i += 1;
            } else {
                out.listed = false;
                self.listed.swap_remove(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::SubscribeUpdate;

    fn encoded(update: &SubscribeUpdate) -> Vec<u8> {
        let mut buf = Vec::new();
        update.encode(Version::Lite05, &mut buf).unwrap();
        buf
    }

    #[test]
    fn a_drained_buffer_gives_its_memory_back() {
        let update = SubscribeUpdate {
            priority: 3,
            ..SubscribeUpdate::default()
        };
        let mut inbound = Inbound::default();
        inbound.buf.reserve(FIRST_READ);
        inbound.buf.extend_from_slice(&encoded(&update));
        let decoded = inbound.message::<SubscribeUpdate>(Version::Lite05).unwrap();
        assert_eq!(decoded, Some(update));
        assert_eq!(inbound.buf.capacity(), 0);
    }

    #[test]
    fn a_partly_decoded_buffer_keeps_the_rest() {
        let first = SubscribeUpdate {
            priority: 1,
            ..SubscribeUpdate::default()
        };
        let mut bytes = encoded(&first);
        let second = encoded(&SubscribeUpdate {
            priority: 2,
            ..SubscribeUpdate::default()
        });
        bytes.extend_from_slice(&second[..second.len() - 1]);
        let mut inbound = Inbound::default();
        inbound.buf.extend_from_slice(&bytes);
        let decoded = inbound.message::<SubscribeUpdate>(Version::Lite05).unwrap();
        assert_eq!(decoded, Some(first));
        assert_eq!(&inbound.buf[..], &second[..second.len() - 1]);
        assert_eq!(
            inbound.message::<SubscribeUpdate>(Version::Lite05),
            Ok(None)
        );
    }
}
