//! A log-line budget: at most `burst` lines at once and `per_second` on average (GCRA, one
//! atomic word of state), so a line a peer can trigger per packet or per connection costs a
//! bounded amount of output however hard it pushes. Lock-free and const-constructible: a
//! `static` budget works from every shard, and [`KeyedLogLimit`] gives a fixed table of them
//! keyed by, say, a peer address, which a peer cannot grow. Time is passed in (`*_at`), or
//! read from a monotonic clock.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Lines suppressed by every budget of the process since it started.
static SUPPRESSED: AtomicU64 = AtomicU64::new(0);

/// Lines suppressed by every budget of the process since it started, for the periodic and
/// final reports.
pub fn suppressed_total() -> u64 {
    SUPPRESSED.load(Ordering::Relaxed)
}

/// Time since the first call in this process, the clock of [`LogLimit::allow`].
pub fn monotonic() -> Duration {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed()
}

/// What a budget holds per key: the theoretical arrival time of the next line (GCRA) and the
/// lines suppressed since the last one let through.
#[derive(Debug)]
struct Slot {
    /// Nanoseconds on the budget's clock before which the next line would exceed the rate.
    tat: AtomicU64,
    suppressed: AtomicU64,
}

impl Slot {
    const fn new() -> Self {
        Slot {
            tat: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }
}

/// The rate and burst of a budget, as GCRA's emission interval and tolerance.
#[derive(Debug, Clone, Copy)]
struct Rate {
    interval_ns: u64,
    tolerance_ns: u64,
}

impl Rate {
    const fn new(per_second: u32, burst: u32) -> Self {
        let per_second = if per_second == 0 { 1 } else { per_second };
        let burst = if burst == 0 { 1 } else { burst };
        let interval_ns = 1_000_000_000 / per_second as u64;
        Rate {
            interval_ns,
            tolerance_ns: interval_ns * (burst as u64 - 1),
        }
    }

    /// Takes one line from `slot` at `now`: the lines suppressed since the last one let
    /// through, or `None` if this one is suppressed too.
    fn take(&self, slot: &Slot, now: Duration) -> Option<u64> {
        let now = u64::try_from(now.as_nanos()).unwrap_or(u64::MAX);
        let mut tat = slot.tat.load(Ordering::Relaxed);
        loop {
            if tat > now.saturating_add(self.tolerance_ns) {
                slot.suppressed.fetch_add(1, Ordering::Relaxed);
                SUPPRESSED.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            let next = tat.max(now).saturating_add(self.interval_ns);
            match slot
                .tat
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Some(slot.suppressed.swap(0, Ordering::Relaxed)),
                Err(current) => tat = current,
            }
        }
    }
}

/// One budget, typically a `static` beside the log line it limits:
///
/// ```
/// use moq_relay::log::LogLimit;
/// static DROPPED: LogLimit = LogLimit::new(1, 10);
/// if let Some(suppressed) = DROPPED.allow() {
///     tracing::warn!(suppressed, "Initial dropped");
/// }
/// ```
#[derive(Debug)]
pub struct LogLimit {
    rate: Rate,
    slot: Slot,
}

impl LogLimit {
    /// `burst` lines at once, then `per_second` on average (both at least 1).
    pub const fn new(per_second: u32, burst: u32) -> Self {
        LogLimit {
            rate: Rate::new(per_second, burst),
            slot: Slot::new(),
        }
    }

    /// Whether a line may be written now: `Some(lines suppressed since the last one written)`,
    /// or `None` (the line is counted as suppressed).
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(monotonic())
    }

    /// [`Self::allow`] at `now`, a time on any clock that does not go backwards.
    pub fn allow_at(&self, now: Duration) -> Option<u64> {
        self.rate.take(&self.slot, now)
    }
}

/// A fixed table of `N` budgets chosen by hashing a key (a peer address, a path): each key gets
/// its own budget unless it shares a slot with another key, and the table never grows.
#[derive(Debug)]
pub struct KeyedLogLimit<const N: usize> {
    rate: Rate,
    slots: [Slot; N],
}

impl<const N: usize> KeyedLogLimit<N> {
    /// `burst` lines at once, then `per_second` on average, for each key.
    pub const fn new(per_second: u32, burst: u32) -> Self {
        KeyedLogLimit {
            rate: Rate::new(per_second, burst),
            slots: [const { Slot::new() }; N],
        }
    }

    /// [`LogLimit::allow`] for `key`'s budget.
    pub fn allow(&self, key: &impl Hash) -> Option<u64> {
        self.allow_at(key, monotonic())
    }

    /// [`LogLimit::allow_at`] for `key`'s budget.
    pub fn allow_at(&self, key: &impl Hash, now: Duration) -> Option<u64> {
        // SipHash with fixed keys: the same key always lands in the same slot.
        let mut hasher = std::hash::DefaultHasher::new();
        key.hash(&mut hasher);
        let index = (hasher.finish() % N.max(1) as u64) as usize;
        self.rate.take(self.slots.get(index)?, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let limit = LogLimit::new(10, 5);
        let passed = (0..100)
            .filter(|_| limit.allow_at(ms(1000)).is_some())
            .count();
        assert_eq!(passed, 5, "the burst");
        // One line per 100 ms after that; the next one says how many were held back.
        assert_eq!(limit.allow_at(ms(1050)), None);
        assert_eq!(limit.allow_at(ms(1100)), Some(96));
        assert_eq!(limit.allow_at(ms(1150)), None);
        assert_eq!(limit.allow_at(ms(1200)), Some(1));
        // Over 10 s of one attempt per millisecond, about 10 per second get through.
        let passed = (0..10_000)
            .filter(|t| limit.allow_at(ms(2000 + t)).is_some())
            .count();
        assert!((100..=106).contains(&passed), "{passed} in 10 s");
    }

    #[test]
    fn an_idle_budget_refills_up_to_the_burst_only() {
        let limit = LogLimit::new(1, 3);
        for _ in 0..3 {
            assert!(limit.allow_at(ms(0)).is_some());
        }
        assert!(limit.allow_at(ms(0)).is_none());
        // An hour of silence buys the burst again, not 3,600 lines.
        let passed = (0..100)
            .filter(|_| limit.allow_at(Duration::from_secs(3600)).is_some())
            .count();
        assert_eq!(passed, 3);
    }

    #[test]
    fn suppressed_lines_are_counted_for_the_process() {
        let limit = LogLimit::new(1, 1);
        let before = suppressed_total();
        assert!(limit.allow_at(ms(0)).is_some());
        for _ in 0..7 {
            assert!(limit.allow_at(ms(1)).is_none());
        }
        // Other tests' budgets may count in parallel, never down.
        assert!(suppressed_total() >= before + 7);
    }

    #[test]
    fn a_huge_clock_or_rate_does_not_overflow() {
        let limit = LogLimit::new(u32::MAX, u32::MAX);
        assert!(limit.allow_at(Duration::MAX).is_some());
        assert!(limit.allow_at(Duration::MAX).is_some());
        let zero = LogLimit::new(0, 0);
        assert!(zero.allow_at(ms(0)).is_some());
        assert!(zero.allow_at(ms(0)).is_none());
    }

    #[test]
    fn keys_have_budgets_of_their_own() {
        let limit: KeyedLogLimit<64> = KeyedLogLimit::new(1, 2);
        let loud = "10.0.0.1:4433";
        let passed = (0..50)
            .filter(|_| limit.allow_at(&loud, ms(0)).is_some())
            .count();
        assert_eq!(passed, 2);
        // Keys in other slots are untouched by the loud one.
        let others = (0..20u32)
            .map(|i| format!("10.0.1.{i}:4433"))
            .filter(|key| {
                let mut h = std::hash::DefaultHasher::new();
                key.hash(&mut h);
                let mut l = std::hash::DefaultHasher::new();
                loud.hash(&mut l);
                h.finish() % 64 != l.finish() % 64
            })
            .collect::<Vec<_>>();
        assert!(!others.is_empty());
        for key in &others {
            assert!(limit.allow_at(key, ms(0)).is_some(), "{key}");
        }
    }

    #[test]
    fn budgets_are_shared_across_threads_without_overspending() {
        let limit = std::sync::Arc::new(LogLimit::new(1, 1000));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let limit = limit.clone();
                std::thread::spawn(move || {
                    (0..10_000)
                        .filter(|_| limit.allow_at(ms(5)).is_some())
                        .count()
                })
            })
            .collect();
        let passed: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(passed, 1000);
    }
}
