//! At most one log line per interval for events a peer can repeat at will (an Initial
//! refused, a bad token): the first is logged at once, later ones are counted and the next
//! line says how many there were since. Counters keep the exact totals.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// One rate-limited log line.
pub struct LogThrottle {
    interval: Duration,
    next: Cell<Option<Instant>>,
    suppressed: Cell<u64>,
}

impl LogThrottle {
    pub const fn new(interval: Duration) -> Self {
        Self {
            interval,
            next: Cell::new(None),
            suppressed: Cell::new(0),
        }
    }

    /// Whether a line may be written at `now`: `Some(n)` with the `n` events held back
    /// since the last line, or `None` (this one is counted instead).
    pub fn ready(&self, now: Instant) -> Option<u64> {
        if self.next.get().is_some_and(|next| now < next) {
            self.suppressed.set(self.suppressed.get().saturating_add(1));
            return None;
        }
        self.next.set(Some(now + self.interval));
        Some(self.suppressed.replace(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_held_back() {
        let t = LogThrottle::new(Duration::from_secs(1));
        let now = Instant::now();
        assert_eq!(t.ready(now), Some(0));
        for i in 1..=5 {
            assert_eq!(t.ready(now + Duration::from_millis(i * 100)), None);
        }
        assert_eq!(t.ready(now + Duration::from_secs(1)), Some(5));
        assert_eq!(t.ready(now + Duration::from_millis(1500)), None);
    }
}
