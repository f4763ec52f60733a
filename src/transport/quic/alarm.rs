//! A connection task's wait: until its notification fires or its next deadline passes.
//!
//! A connection wakes for every packet and every frame, and its deadline (quiche's loss,
//! ACK and idle timers, the session's, the keep-alive) moves on almost every wake. Arming
//! a fresh glommio timer per wake costs a timer-map insert and removal each time. The alarm
//! keeps one timer and leaves it armed when the deadline moved later by a little (up to
//! [`KEEP_EARLY`]); it re-arms when the deadline moves earlier, moves far out, or the armed
//! time has passed. When the kept timer fires before the deadline, the wait re-arms itself
//! without returning, so the early fire costs a poll of this future, not a turn of the
//! connection's loop.

use crate::notify::Notify;
use glommio::timer::Timer;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// How much earlier than the deadline an armed timer may fire and still be kept. A timer
/// firing early wakes the executor, which on an idle shard is asleep: a deadline that moved
/// far out (a PING answered, so no loss timer; the next keep-alive seconds away) re-arms at
/// once instead.
const KEEP_EARLY: Duration = Duration::from_millis(10);

/// One re-armable timer owned by a connection task.
#[derive(Default)]
pub struct Alarm {
    timer: Option<Timer>,
    /// When the registered timer fires; `None` when none is registered.
    armed: Option<Instant>,
}

impl Alarm {
    /// Waits until `notify` is notified (consuming the notification) or `deadline` passes.
    pub fn wait<'a>(&'a mut self, notify: &'a Notify, deadline: Option<Instant>) -> Wait<'a> {
        Wait {
            alarm: self,
            notify,
            deadline,
        }
    }

    /// Makes sure the task behind `cx` wakes no later than `deadline` (which lies ahead).
    fn arm(&mut self, deadline: Instant, now: Instant, cx: &mut Context<'_>) {
        if self
            .armed
            .is_some_and(|at| at > now && at <= deadline && deadline - at <= KEEP_EARLY)
        {
            // A timer already fires in time, and early by little: that fire just re-arms.
            return;
        }
        let mut timer = Timer::new(deadline - now);
        // The first poll registers the task's waker with the reactor.
        if Pin::new(&mut timer).poll(cx).is_ready() {
            cx.waker().wake_by_ref();
        }
        // Replacing the old timer deregisters it.
        self.timer = Some(timer);
        self.armed = Some(deadline);
    }
}

/// The future of [`Alarm::wait`].
pub struct Wait<'a> {
    alarm: &'a mut Alarm,
    notify: &'a Notify,
    deadline: Option<Instant>,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if Pin::new(&mut this.notify.notified()).poll(cx).is_ready() {
            return Poll::Ready(());
        }
        let Some(deadline) = this.deadline else {
            return Poll::Pending;
        };
        let now = Instant::now();
        if now >= deadline {
            return Poll::Ready(());
        }
        this.alarm.arm(deadline, now, cx);
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    fn run<T>(f: impl Future<Output = T> + 'static) -> T {
        glommio::LocalExecutorBuilder::default()
            .make()
            .expect("executor")
            .run(f)
    }

    /// Notifies `notify` from another task, which runs once the current one waits.
    fn notify_soon(notify: &Rc<Notify>) {
        let wake = notify.clone();
        glommio::spawn_local(async move { wake.notify() }).detach();
    }

    #[test]
    fn a_deadline_ends_the_wait_no_earlier_than_it_says() {
        run(async {
            let notify = Notify::new();
            let mut alarm = Alarm::default();
            let start = Instant::now();
            let deadline = start + Duration::from_millis(20);
            alarm.wait(&notify, Some(deadline)).await;
            assert!(Instant::now() >= deadline);
        });
    }

    #[test]
    fn a_later_deadline_is_met_although_an_earlier_timer_fires_first() {
        run(async {
            let notify = Notify::new();
            let mut alarm = Alarm::default();
            let start = Instant::now();
            // Arm for 5 ms, then leave on a notification before it fires.
            let early = start + Duration::from_millis(5);
            notify_soon(&notify);
            alarm.wait(&notify, Some(early)).await;
            assert!(Instant::now() < early, "the notification ended the wait");
            // The next wait's deadline is later, by less than KEEP_EARLY: the 5 ms timer
            // stays, fires first, and the wait must keep going until the real deadline.
            let late = early + KEEP_EARLY / 2;
            alarm.wait(&notify, Some(late)).await;
            assert!(Instant::now() >= late);
        });
    }

    #[test]
    fn an_earlier_deadline_re_arms_the_timer() {
        run(async {
            let notify = Notify::new();
            let mut alarm = Alarm::default();
            let start = Instant::now();
            notify_soon(&notify);
            alarm
                .wait(&notify, Some(start + Duration::from_secs(10)))
                .await;
            let soon = start + Duration::from_millis(10);
            alarm.wait(&notify, Some(soon)).await;
            let waited = Instant::now() - start;
            assert!(
                waited >= Duration::from_millis(10) && waited < Duration::from_secs(5),
                "woke after {waited:?}"
            );
        });
    }

    #[test]
    fn without_a_deadline_only_the_notification_ends_the_wait() {
        run(async {
            let notify = Notify::new();
            let mut alarm = Alarm::default();
            let wake: Rc<Notify> = notify.clone();
            glommio::spawn_local(async move {
                glommio::timer::sleep(Duration::from_millis(5)).await;
                wake.notify();
            })
            .detach();
            alarm.wait(&notify, None).await;
            assert!(!notify.take(), "the notification was consumed");
        });
    }
}
