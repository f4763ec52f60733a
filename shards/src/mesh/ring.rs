//! One lane's storage: a bounded single-producer single-consumer ring shared by two threads,
//! plus the flags through which each end tells the other that it is parked.
//!
//! The producer owns `tail`, the consumer owns `head`; each publishes its index with a
//! `Release` store and reads the other's with `Acquire`, and caches the last value it saw so
//! the common case touches no shared cache line but its own.
//!
//! Parking is a Dekker handshake, with a `SeqCst` fence on both sides so that at least one of
//! them sees the other's write:
//!
//! ```text
//!   consumer (finds the ring empty)           producer (after a push)
//!   receiver_parked = true                    tail = t + 1
//!   fence(SeqCst)                             fence(SeqCst)
//!   reload tail: an item? unpark, take it     receiver_parked? swap it false, ring the doorbell
//! ```
//!
//! Either the consumer's reload sees the new item, or the producer's load sees the flag (both
//! fences are in the single total order of `SeqCst` operations; whichever comes second sees
//! the store made before the first). Whoever swaps the flag from true to false owns the wake,
//! so a parked end is woken once, not once per message. The same handshake runs the other
//! way for a producer parked on a full ring (`sender_parked`, checked by the consumer after it
//! frees slots), and for an end that goes away (`*_gone`, then the same check).

use std::cell::{Cell, UnsafeCell};
use std::mem::MaybeUninit;
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Keeps the two indices on separate cache lines, so the producer's and the consumer's
/// stores do not invalidate each other's line.
#[repr(align(128))]
struct Padded<T>(T);

/// The shared part of one lane.
struct Ring<T> {
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
    /// The next index the consumer reads.
    head: Padded<AtomicUsize>,
    /// The next index the producer writes.
    tail: Padded<AtomicUsize>,
    /// The consumer found the ring empty and waits for the producer's doorbell.
    receiver_parked: AtomicBool,
    /// The producer found the ring full and waits for the consumer's doorbell.
    sender_parked: AtomicBool,
    sender_gone: AtomicBool,
    receiver_gone: AtomicBool,
}

// SAFETY: each slot is accessed by one thread at a time: the producer writes slots in
// `[tail, head + capacity)` and the consumer reads slots in `[head, tail)`; the Release/Acquire
// pairs on `head` and `tail` order a slot's write before its read and its read before its
// rewrite. Values cross threads, hence `T: Send`.
unsafe impl<T: Send> Sync for Ring<T> {}
unsafe impl<T: Send> Send for Ring<T> {}

impl<T> Ring<T> {
    fn capacity(&self) -> usize {
        self.mask + 1
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // Both ends are gone (this is the last reference): drop what was never received.
        let head = *self.head.0.get_mut();
        let tail = *self.tail.0.get_mut();
        for index in head..tail {
            // SAFETY: slots in [head, tail) hold initialised values nobody else can reach.
            unsafe { (*self.slots[index & self.mask].get()).assume_init_drop() };
        }
    }
}

/// Creates a ring of at least `capacity` slots (rounded up to a power of two, at least 1).
pub(crate) fn ring<T: Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let capacity = capacity.max(1).next_power_of_two();
    let slots = (0..capacity)
        .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
        .collect();
    let ring = Arc::new(Ring {
        slots,
        mask: capacity - 1,
        head: Padded(AtomicUsize::new(0)),
        tail: Padded(AtomicUsize::new(0)),
        receiver_parked: AtomicBool::new(false),
        sender_parked: AtomicBool::new(false),
        sender_gone: AtomicBool::new(false),
        receiver_gone: AtomicBool::new(false),
    });
    (
        Producer {
            ring: ring.clone(),
            tail: Cell::new(0),
            head_seen: Cell::new(0),
        },
        Consumer {
            ring,
            head: Cell::new(0),
            tail_seen: Cell::new(0),
        },
    )
}

/// The producing end (one thread at a time; not `Sync`).
pub(crate) struct Producer<T> {
    ring: Arc<Ring<T>>,
    /// Our copy of `ring.tail` (we are its only writer).
    tail: Cell<usize>,
    /// The consumer's `head` as last read.
    head_seen: Cell<usize>,
}

/// Why a push did not happen; the value comes back.
pub(crate) enum PushError<T> {
    Full(T),
    /// The consumer is gone: nothing pushed would ever be read.
    Gone(T),
}

impl<T> Producer<T> {
    pub(crate) fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    fn has_room(&self) -> bool {
        let tail = self.tail.get();
        if tail.wrapping_sub(self.head_seen.get()) < self.ring.capacity() {
            return true;
        }
        self.head_seen.set(self.ring.head.0.load(Ordering::Acquire));
        tail.wrapping_sub(self.head_seen.get()) < self.ring.capacity()
    }

    /// Appends `value` unless the ring is full or the consumer is gone. After a successful
    /// push the caller must call [`Producer::receiver_needs_wake`].
    pub(crate) fn try_push(&self, value: T) -> Result<(), PushError<T>> {
        if self.ring.receiver_gone.load(Ordering::Acquire) {
            return Err(PushError::Gone(value));
        }
        if !self.has_room() {
            return Err(PushError::Full(value));
        }
        let tail = self.tail.get();
        // SAFETY: `has_room` proved slot `tail` is outside [head, tail), so the consumer is
        // done with it and will not read it before our Release store of `tail + 1`.
        unsafe { (*self.ring.slots[tail & self.ring.mask].get()).write(value) };
        self.ring
            .tail
            .0
            .store(tail.wrapping_add(1), Ordering::Release);
        self.tail.set(tail.wrapping_add(1));
        Ok(())
    }

    /// Whether the consumer was parked and this call took the job of waking it (ring its
    /// shard's doorbell). Call after every successful push.
    pub(crate) fn receiver_needs_wake(&self) -> bool {
        fence(Ordering::SeqCst);
        take_flag(&self.ring.receiver_parked)
    }

    /// Parks the producer on a full ring: `true` means it stays parked (wait for the
    /// doorbell, then retry); `false` means room appeared or the consumer left meanwhile, so
    /// retry now.
    pub(crate) fn park(&self) -> bool {
        self.ring.sender_parked.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if self.has_room() || self.ring.receiver_gone.load(Ordering::Relaxed) {
            self.ring.sender_parked.store(false, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Whether a push could make progress now (room, or the consumer is gone so the push
    /// fails at once): what the doorbell checks before waking a parked producer.
    pub(crate) fn ready(&self) -> bool {
        self.has_room() || self.ring.receiver_gone.load(Ordering::Acquire)
    }

    /// Marks the producer gone; `true` when the consumer is parked and must be woken to see
    /// it.
    pub(crate) fn close(&self) -> bool {
        // Release: a consumer that sees us gone also sees every value we pushed.
        self.ring.sender_gone.store(true, Ordering::Release);
        fence(Ordering::SeqCst);
        take_flag(&self.ring.receiver_parked)
    }
}

/// The consuming end (one thread at a time; not `Sync`).
pub(crate) struct Consumer<T> {
    ring: Arc<Ring<T>>,
    /// Our copy of `ring.head` (we are its only writer).
    head: Cell<usize>,
    /// The producer's `tail` as last read.
    tail_seen: Cell<usize>,
}

impl<T> Consumer<T> {
    fn has_items(&self) -> bool {
        if self.head.get() != self.tail_seen.get() {
            return true;
        }
        self.tail_seen.set(self.ring.tail.0.load(Ordering::Acquire));
        self.head.get() != self.tail_seen.get()
    }

    /// Takes the oldest value, if any. After taking some the caller must call
    /// [`Consumer::sender_needs_wake`] before it parks or moves on to other work.
    pub(crate) fn try_pop(&self) -> Option<T> {
        if !self.has_items() {
            return None;
        }
        let head = self.head.get();
        // SAFETY: slot `head` is in [head, tail): the producer initialised it before its
        // Release store of `tail`, which `has_items` read with Acquire, and will not touch it
        // until our Release store of `head + 1`.
        let value = unsafe { (*self.ring.slots[head & self.ring.mask].get()).assume_init_read() };
        self.ring
            .head
            .0
            .store(head.wrapping_add(1), Ordering::Release);
        self.head.set(head.wrapping_add(1));
        Some(value)
    }

    /// Values waiting to be read (exact on this thread; the producer may add more).
    pub(crate) fn len(&self) -> usize {
        self.has_items();
        self.tail_seen.get().wrapping_sub(self.head.get())
    }

    /// Whether the producer was parked on a full ring and this call took the job of waking
    /// it. Call after taking values, before parking or yielding.
    pub(crate) fn sender_needs_wake(&self) -> bool {
        fence(Ordering::SeqCst);
        take_flag(&self.ring.sender_parked)
    }

    /// Whether the producer is gone (no more values will come once the ring is empty).
    pub(crate) fn sender_gone(&self) -> bool {
        self.ring.sender_gone.load(Ordering::Acquire)
    }

    /// Parks the consumer on an empty ring: `true` means it stays parked (wait for the
    /// doorbell); `false` means a value arrived or the producer left meanwhile, so look again.
    pub(crate) fn park(&self) -> bool {
        self.ring.receiver_parked.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if self.has_items() || self.ring.sender_gone.load(Ordering::Relaxed) {
            self.ring.receiver_parked.store(false, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Whether a receive could make progress now: what the doorbell checks before waking a
    /// parked consumer.
    pub(crate) fn ready(&self) -> bool {
        self.has_items() || self.ring.sender_gone.load(Ordering::Acquire)
    }

    /// Marks the consumer gone; `true` when the producer is parked and must be woken to see
    /// it. Values still in the ring are dropped with the ring.
    pub(crate) fn close(&self) -> bool {
        self.ring.receiver_gone.store(true, Ordering::Release);
        fence(Ordering::SeqCst);
        take_flag(&self.ring.sender_parked)
    }
}

/// Clears `flag` if it is set; `true` if this call cleared it. The plain load first keeps the
/// common case (nobody parked) free of a read-modify-write.
fn take_flag(flag: &AtomicBool) -> bool {
    flag.load(Ordering::Relaxed) && flag.swap(false, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn values_come_out_in_order_and_a_full_ring_refuses() {
        let (tx, rx) = ring::<u32>(3);
        assert_eq!(tx.capacity(), 4);
        for v in 0..4 {
            assert!(tx.try_push(v).is_ok());
        }
        assert!(matches!(tx.try_push(9), Err(PushError::Full(9))));
        assert_eq!(rx.len(), 4);
        assert_eq!(rx.try_pop(), Some(0));
        assert!(tx.try_push(4).is_ok());
        let rest: Vec<u32> = std::iter::from_fn(|| rx.try_pop()).collect();
        assert_eq!(rest, [1, 2, 3, 4]);
        assert_eq!(rx.try_pop(), None);
    }

    #[test]
    fn a_parked_end_is_woken_once_by_whoever_clears_its_flag() {
        let (tx, rx) = ring::<u32>(2);
        assert!(rx.park(), "empty: stays parked");
        assert!(tx.try_push(1).is_ok());
        assert!(
            tx.receiver_needs_wake(),
            "the first push after a park wakes"
        );
        assert!(tx.try_push(2).is_ok());
        assert!(!tx.receiver_needs_wake(), "only once");
        assert!(!rx.park(), "items present: does not park");
        assert!(tx.park(), "full: the producer parks");
        assert_eq!(rx.try_pop(), Some(1));
        assert!(rx.sender_needs_wake());
        assert!(!rx.sender_needs_wake());
        assert!(!tx.park(), "room: does not park");
    }

    #[test]
    fn closing_either_end_is_seen_and_wakes_the_other() {
        let (tx, rx) = ring::<String>(2);
        assert!(tx.try_push("left behind".into()).is_ok());
        assert!(tx.try_push("also".into()).is_ok());
        assert!(tx.park());
        assert!(
            rx.close(),
            "the parked producer must learn the consumer left"
        );
        assert!(tx.ready());
        assert!(matches!(tx.try_push("x".into()), Err(PushError::Gone(_))));
        drop((tx, rx)); // the two unread strings are dropped with the ring (Miri/ASan clean)

        let (tx, rx) = ring::<u32>(2);
        assert!(rx.park());
        assert!(tx.close());
        assert!(rx.ready() && rx.sender_gone() && rx.try_pop().is_none());
    }

    /// Two threads, a two-slot ring, spinning on the park flags instead of a doorbell: every
    /// value arrives once, in order, and neither side ever waits on a flag nobody will clear.
    #[test]
    fn two_threads_hand_over_a_million_values_through_two_slots() {
        const N: usize = 1_000_000;
        let (tx, rx) = ring::<usize>(2);
        let sender_wakes = Arc::new(AtomicUsize::new(0));
        let receiver_wakes = Arc::new(AtomicUsize::new(0));
        let (sw, rw) = (sender_wakes.clone(), receiver_wakes.clone());
        // Each side's "doorbell" is a counter the other bumps; a parked side spins until its
        // counter moves past what it saw when it parked.
        let producer = std::thread::spawn(move || {
            for v in 0..N {
                let mut value = v;
                loop {
                    match tx.try_push(value) {
                        Ok(()) => break,
                        Err(PushError::Full(back)) => {
                            value = back;
                            let seen = sw.load(Ordering::Acquire);
                            if tx.park() {
                                while sw.load(Ordering::Acquire) == seen {
                                    std::hint::spin_loop();
                                }
                            }
                        }
                        Err(PushError::Gone(_)) => panic!("consumer gone"),
                    }
                }
                if tx.receiver_needs_wake() {
                    rw.fetch_add(1, Ordering::Release);
                }
            }
        });
        let mut expected = 0;
        while expected < N {
            match rx.try_pop() {
                Some(v) => {
                    assert_eq!(v, expected);
                    expected += 1;
                    if rx.sender_needs_wake() {
                        sender_wakes.fetch_add(1, Ordering::Release);
                    }
                }
                None => {
                    let seen = receiver_wakes.load(Ordering::Acquire);
                    if rx.park() {
                        while receiver_wakes.load(Ordering::Acquire) == seen {
                            std::hint::spin_loop();
                        }
                    }
                }
            }
        }
        producer.join().unwrap();
    }
}
