//! Bytes still to write on the streams the HTTP/3 layer itself writes (our control stream,
//! the CONNECT request or response and capsules, the headers of streams we open), kept until
//! quiche took all of them and their FIN.

use crate::transport::quic::QuicConnection;
use std::collections::HashMap;

/// Pending writes per stream id, with whether a FIN follows them.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    pending: HashMap<u64, (Vec<u8>, bool)>,
}

impl Outbox {
    /// Appends `data` (and a FIN, if `fin`) to what stream `id` still has to write.
    pub(super) fn queue(&mut self, id: u64, data: Vec<u8>, fin: bool) {
        let entry = self.pending.entry(id).or_default();
        entry.0.extend_from_slice(&data);
        entry.1 |= fin;
    }

    /// Hands quiche as much as it takes.
    pub(super) fn flush(&mut self, conn: &mut QuicConnection) {
        // An entry stays until all its bytes, and its FIN, went into quiche.
        self.pending
            .retain(|&id, (data, fin)| match conn.stream_send(id, data, *fin) {
                Ok(n) => {
                    let all = n == data.len();
                    data.drain(..n);
                    !all
                }
                Err(quiche::Error::Done) => true,
                Err(_) => false,
            });
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
