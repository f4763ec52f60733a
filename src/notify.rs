//! A single-threaded, coalescing wake-up signal for tasks on one shard.
//!
//! Many producers (packet arrival, a new frame in a track, a timer) may call
//! [`Notify::notify`]; the one consumer task awaiting [`Notify::notified`] wakes once,
//! however many notifications arrived in between. Nothing here is `Send`: it lives and dies
//! on its shard's executor thread.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// A coalescing notification shared by `Rc` between producers and one consumer.
#[derive(Default)]
pub struct Notify {
    pending: Cell<bool>,
    waker: RefCell<Option<Waker>>,
    /// Also notified by [`Notify::notify`]: the task that owns this notification's consumer.
    forward: Option<Rc<Notify>>,
}

impl Notify {
    /// Creates a shareable notification.
    pub fn new() -> Rc<Self> {
        Rc::new(Self::default())
    }

    /// A notification that also notifies `task`: a flag for one kind of event (polled
    /// with [`Notify::take`]) on a task woken by several.
    pub fn forwarding_to(task: Rc<Notify>) -> Rc<Self> {
        Rc::new(Self {
            forward: Some(task),
            ..Self::default()
        })
    }

    /// Marks the consumer as needing to run and wakes it if it is waiting.
    pub fn notify(&self) {
        if self.pending.replace(true) {
            return;
        }
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
        if let Some(task) = &self.forward {
            task.notify();
        }
    }

    /// Resolves once a notification is pending, consuming it.
    pub fn notified(&self) -> Notified<'_> {
        Notified { notify: self }
    }

    /// Consumes a pending notification without waiting; returns whether there was one.
    pub fn take(&self) -> bool {
        self.pending.replace(false)
    }
}

/// The future returned by [`Notify::notified`].
pub struct Notified<'a> {
    notify: &'a Notify,
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.pending.replace(false) {
            return Poll::Ready(());
        }
        let mut slot = self.notify.waker.borrow_mut();
        match slot.as_ref() {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    #[test]
    fn notifications_coalesce_and_are_consumed() {
        let notify = Notify::new();
        let mut cx = Context::from_waker(Waker::noop());
        let mut fut = Box::pin(notify.notified());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        notify.notify();
        notify.notify();
        assert!(fut.as_mut().poll(&mut cx).is_ready());
        let mut again = Box::pin(notify.notified());
        assert!(again.as_mut().poll(&mut cx).is_pending());
        assert!(!notify.take());
    }

    #[test]
    fn a_forwarding_notification_wakes_its_task_and_keeps_its_own_flag() {
        let task = Notify::new();
        let events = Notify::forwarding_to(task.clone());
        events.notify();
        assert!(task.take(), "the task was woken");
        events.notify();
        assert!(!task.take(), "coalesced until the flag is taken");
        assert!(events.take());
        assert!(!events.take());
        task.notify();
        assert!(!events.take(), "other wake-ups do not set the flag");
        events.notify();
        assert!(task.take());
    }
}
