//! The anti-amplification limit of RFC 9000 §8.1 as we enforce it ourselves: until a
//! client's address is validated, a server connection sends at most three times the bytes
//! it received from it, counting whole datagrams.
//!
//! quiche keeps such a budget, but charges it only with the packets it writes: the zero
//! padding it adds to fill a datagram carrying an Initial to 1200 bytes is not charged. A
//! server's PTO probes are small Initials padded that way, so one spoofed 1200-byte Initial
//! drew 7.7 KB from the relay over 21 s (6.5x). This ledger counts every byte of every
//! datagram both ways and caps the buffer handed to quiche's `send`, so what quiche writes
//! (padding included) fits the budget. A datagram carrying an Initial must be 1200 bytes, so
//! below that nothing is sent; the client's next datagram (a retransmission, or its reply)
//! raises the budget.

use std::cell::Cell;

/// RFC 9000 §8.1: three times what was received.
const FACTOR: u64 = 3;

/// One connection's ledger.
#[derive(Debug, Default)]
pub struct AntiAmplification {
    received: Cell<u64>,
    sent: Cell<u64>,
    validated: Cell<bool>,
    held_back: Cell<bool>,
}

impl AntiAmplification {
    /// A ledger for a connection whose peer address is `validated` already (ours to dial,
    /// or proven by a Retry token) or not.
    pub fn new(validated: bool) -> Self {
        Self {
            validated: Cell::new(validated),
            ..Self::default()
        }
    }

    /// The peer's address is validated (it sent us a packet protected with Handshake keys):
    /// no limit from now on.
    pub fn validate(&self) {
        self.validated.set(true);
    }

    pub fn is_validated(&self) -> bool {
        self.validated.get()
    }

    /// A datagram of `len` bytes arrived from the peer.
    pub fn on_received(&self, len: usize) {
        if !self.validated.get() {
            self.received
                .set(self.received.get().saturating_add(len as u64));
        }
    }

    /// A datagram of `len` bytes went to the peer.
    pub fn on_sent(&self, len: usize) {
        if !self.validated.get() {
            self.sent.set(self.sent.get().saturating_add(len as u64));
        }
    }

    /// Notes that a send was held back by the limit; true the first time, so a connection
    /// is counted once however often it waits.
    pub fn hold_back(&self) -> bool {
        !self.held_back.replace(true)
    }

    /// How many more bytes may be sent: `None` once the address is validated.
    pub fn allowance(&self) -> Option<usize> {
        if self.validated.get() {
            return None;
        }
        let budget = self.received.get().saturating_mul(FACTOR);
        let left = budget.saturating_sub(self.sent.get());
        Some(usize::try_from(left).unwrap_or(usize::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_times_what_arrived_until_validated() {
        let ledger = AntiAmplification::new(false);
        assert_eq!(ledger.allowance(), Some(0));
        ledger.on_received(1200);
        assert_eq!(ledger.allowance(), Some(3600));
        ledger.on_sent(1200);
        ledger.on_sent(1200);
        assert_eq!(ledger.allowance(), Some(1200));
        ledger.on_sent(1500);
        assert_eq!(ledger.allowance(), Some(0), "never below zero");
        ledger.on_received(100);
        assert_eq!(ledger.allowance(), Some(0), "still owed 300 bytes");
        ledger.validate();
        assert_eq!(ledger.allowance(), None);
        assert_eq!(AntiAmplification::new(true).allowance(), None);
    }

    #[test]
    fn huge_counts_saturate() {
        let ledger = AntiAmplification::new(false);
        ledger.received.set(u64::MAX - 1);
        ledger.on_received(usize::MAX);
        assert!(ledger.allowance().is_some_and(|a| a > 0));
    }
}
