//! The budget every log event passes: a [`LogLimit`] per call site and thread, applied as a
//! `tracing` layer in front of the formatter, so no line in the relay (a warning per dropped
//! Initial, an info per refused request) can be repeated faster than the budget by a peer,
//! whoever wrote it. The budget is generous: a call site logs its first `burst` lines at once,
//! then `per_second`. Suppressed lines are counted ([`super::suppressed_total`]) and reported
//! by `config::logging`. State is thread-local (one map per shard, no sharing) and grows only
//! with the number of call sites in the binary.

use super::limit::{monotonic, LogLimit};
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;
use tracing::callsite::Identifier;
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

thread_local! {
    /// This thread's budget for each call site that has logged on it.
    static BUDGETS: RefCell<HashMap<Identifier, LogLimit>> = RefCell::new(HashMap::new());
}

/// A layer that drops events beyond the budget of their call site on this thread.
pub struct PerCallsiteLimit<C = fn() -> Duration> {
    per_second: u32,
    burst: u32,
    clock: C,
}

impl PerCallsiteLimit {
    /// `burst` lines at once per call site and thread, then `per_second`.
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self::with_clock(per_second, burst, monotonic)
    }
}

impl<C: Fn() -> Duration> PerCallsiteLimit<C> {
    /// Like [`PerCallsiteLimit::new`], reading the time from `clock`.
    pub fn with_clock(per_second: u32, burst: u32, clock: C) -> Self {
        PerCallsiteLimit {
            per_second,
            burst,
            clock,
        }
    }
}

impl<S, C> Layer<S> for PerCallsiteLimit<C>
where
    S: Subscriber,
    C: Fn() -> Duration + 'static,
{
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        let callsite = event.metadata().callsite();
        let now = (self.clock)();
        BUDGETS
            .try_with(|budgets| {
                // A subscriber that logs from inside a log call finds the map borrowed: let
                // that line through rather than panic.
                let Ok(mut budgets) = budgets.try_borrow_mut() else {
                    return true;
                };
                budgets
                    .entry(callsite)
                    .or_insert_with(|| LogLimit::new(self.per_second, self.burst))
                    .allow_at(now)
                    .is_some()
            })
            .unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use tracing_subscriber::layer::SubscriberExt;

    /// Counts the events that reach it.
    struct Count(Arc<AtomicU64>);

    impl<S: Subscriber> Layer<S> for Count {
        fn on_event(&self, _: &Event<'_>, _: Context<'_, S>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn each_call_site_gets_its_own_budget_on_a_fake_clock() {
        let now = Arc::new(AtomicU64::new(0));
        let seen = Arc::new(AtomicU64::new(0));
        let clock = {
            let now = now.clone();
            move || Duration::from_millis(now.load(Ordering::Relaxed))
        };
        let subscriber = tracing_subscriber::registry()
            .with(PerCallsiteLimit::with_clock(2, 10, clock))
            .with(Count(seen.clone()));
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..1000 {
                tracing::info!("flooded");
            }
            assert_eq!(seen.load(Ordering::Relaxed), 10, "the burst");
            tracing::warn!("another call site");
            assert_eq!(seen.load(Ordering::Relaxed), 11);
            // Ten seconds later: 2 per second, so 20 more, not 1000.
            for t in 0..1000 {
                now.store(10_000 + t * 10, Ordering::Relaxed);
                tracing::info!("flooded");
            }
            assert_eq!(seen.load(Ordering::Relaxed), 11 + 10 + 20 - 1);
        });
    }
}
