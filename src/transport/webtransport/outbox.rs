//! Bytes still to write on the streams the HTTP/3 layer itself writes (our control stream,
//! the CONNECT request or response and capsules, the headers of streams we open), kept until
//! quiche took all of them and their FIN.
//!
//! They are written in the order they were queued, and a flush stops at the first stream
//! quiche takes no more of: a flush costs the streams it finishes plus one, not a pass over
//! every stream still waiting (thousands, when a peer stops granting credit).

use crate::transport::quic::QuicConnection;
use std::collections::{HashMap, VecDeque};

/// Pending writes per stream id, with whether a FIN follows them.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    pending: HashMap<u64, (Vec<u8>, bool)>,
    /// Streams with pending writes, oldest first; an id no longer in `pending` (discarded)
    /// is skipped when reached.
    order: VecDeque<u64>,
}

impl Outbox {
    /// Appends `data` (and a FIN, if `fin`) to what stream `id` still has to write.
    pub(super) fn queue(&mut self, id: u64, data: Vec<u8>, fin: bool) {
        let entry = self.pending.entry(id).or_insert_with(|| {
            self.order.push_back(id);
            (Vec::new(), false)
        });
        entry.0.extend_from_slice(&data);
        entry.1 |= fin;
    }

    /// Hands quiche as much as it takes, oldest first.
    pub(super) fn flush(&mut self, conn: &mut QuicConnection) {
        while let Some(&id) = self.order.front() {
            let Some((data, fin)) = self.pending.get_mut(&id) else {
                self.order.pop_front();
                continue;
            };
            match conn.stream_send(id, data, *fin) {
                Ok(n) if n == data.len() => {}
                Ok(n) => {
                    // Quiche took part: the rest, and the streams behind, wait for credit.
                    data.drain(..n);
                    return;
                }
                Err(quiche::Error::Done) => return,
                // The stream is gone (reset, stopped): nothing more to write on it.
                Err(_) => {}
            }
            self.pending.remove(&id);
            self.order.pop_front();
        }
    }

    /// Whether stream `id` still has bytes of ours to write.
    pub(super) fn is_pending(&self, id: u64) -> bool {
        self.pending.contains_key(&id)
    }

    /// Drops what stream `id` still had to write.
    pub(super) fn discard(&mut self, id: u64) {
        self.pending.remove(&id);
    }
}
