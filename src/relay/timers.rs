//! Deadlines the relay state asks its driver for: the driver reads the earliest with
//! [`Timers::next`] and hands back what fell due with [`Timers::expire`]. Nothing here sleeps.

use std::collections::BTreeMap;
use std::time::Instant;

/// Pending timers carrying a `T` each, fired in deadline order (insertion order on ties).
pub struct Timers<T> {
    pending: BTreeMap<(Instant, u64), T>,
    next_seq: u64,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Self {
            pending: BTreeMap::new(),
            next_seq: 0,
        }
    }
}

impl<T> Timers<T> {
    /// Schedules `what` at `at`; returns true when it became the earliest deadline (the
    /// driver must re-arm its wait).
    pub fn schedule(&mut self, at: Instant, what: T) -> bool {
        let earliest = self.next().is_none_or(|first| at < first);
        self.pending.insert((at, self.next_seq), what);
        self.next_seq += 1;
        earliest
    }

    /// The earliest deadline, if any.
    pub fn next(&self) -> Option<Instant> {
        self.pending.keys().next().map(|&(at, _)| at)
    }

    /// Removes and returns the first timer due at `now`, if any.
    pub fn expire(&mut self, now: Instant) -> Option<T> {
        let entry = self.pending.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        Some(entry.remove())
    }

    /// How many timers are pending.
    pub fn len(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timers_fire_in_deadline_order_and_not_before() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut timers = Timers::default();
        assert!(timers.schedule(t0 + ms(20), "b"));
        assert!(timers.schedule(t0 + ms(10), "a"));
        assert!(!timers.schedule(t0 + ms(20), "c"));
        assert_eq!(timers.next(), Some(t0 + ms(10)));
        assert_eq!(timers.expire(t0 + ms(9)), None);
        assert_eq!(timers.expire(t0 + ms(20)), Some("a"));
        assert_eq!(timers.expire(t0 + ms(20)), Some("b"));
        assert_eq!(timers.expire(t0 + ms(20)), Some("c"));
        assert_eq!(timers.expire(t0 + ms(99)), None);
        assert_eq!(timers.len(), 0);
    }
}
