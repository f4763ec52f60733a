//! The mesh: a full mesh of bounded lock-free lanes between shards, two per ordered pair.
//!
//! For every ordered pair of distinct shards `(a, b)` there is one control lane and one data
//! lane from `a` to `b`: a single-producer single-consumer ring (`ring.rs`) whose producing
//! end lives on `a` and consuming end on `b`. The lanes are separate so control messages
//! (announce, subscribe, ...) never queue behind a media backlog, and each has its own bound
//! ([`crate::RuntimeConfig::control_capacity`], [`crate::RuntimeConfig::data_capacity`], rounded
//! up to a power of two). Messages are moved, not copied: a `bytes::Bytes` payload arrives
//! with the same pointer it was sent with. Order is kept per lane.
//!
//! # Wake-ups
//!
//! A task that finds its lane empty (receiving) or full (sending) parks: it leaves its waker
//! with the lane end and raises the lane's park flag, then looks at the ring once more. The
//! other end, after every push (or after freeing slots), checks that flag; whoever clears it
//! rings the parked end's shard **doorbell** (`doorbell.rs`): a one-byte write to a socketpair
//! whose other end that shard reads through io_uring. The read completes in the shard's ring
//! whether its executor is busy or asleep; the shard's doorbell task then wakes the parked
//! tasks whose lanes can now make progress. A `SeqCst` fence on each side of the flag
//! handshake makes sure that either the parking end sees the new state or the other end sees
//! the flag, so no wake-up is lost, and nothing polls.
//!
//! We do not use glommio's `shared_channel` for this. Its wake-up has three parts: one
//! `should_notify` flag per executor, set (Relaxed) just before it sleeps and cleared by the
//! first notifier's compare-and-swap, which alone writes the executor's eventfd; a process-
//! wide `membarrier` between setting that flag and a last look at the channels; and wakers
//! that are not woken by the peer at all but re-checked (`size`/`free_space`) whenever the
//! owning reactor turns. The stress test in `tests/mesh_stress.rs` (lanes of 2 and 4 slots,
//! a million messages each way per lane, both executors parking) hangs on it: on this
//! machine in 2 of 4 runs within a minute. A thread dump of the hang shows both executors
//! asleep in `io_uring_wait_cqes`, and the one shard holding two registered waiters that
//! could both go on (a receiver whose lane held 2 messages, a sender whose lane was empty):
//! both of the peer's notifications for it were lost, not merely late. Which step of that
//! protocol drops the eventfd write we did not pin down; the relay on top of it lost a
//! subscription or a forwarded packet now and then. A lane here replaces all three parts
//! with one waker per end, one park flag per direction with a fence on each side, and a
//! doorbell whose wake-up is an ordinary kernel completion the shard always reads.
//!
//! **The lost wake-up was the executor's.** Under CPU contention the stress test used to stall
//! (5 of 12 runs of 300 000 messages per lane with three busy loops on the two cores) with
//! both executors asleep and the sleeping shard's doorbell holding unread rings. Tracing
//! glommio showed the ring's read complete and wake the doorbell task, then the executor
//! sleep without running it: glommio 0.9.0's loop checked its preemption signal *before*
//! running any task queue, returned "nothing ran" when it was already raised (the 5 ms
//! preempt timer had expired while the thread was off the CPU), and parked; parking consumed
//! the signal and slept with the task queued. Any task of any shard could be stranded that way
//! (a mesh receiver, a QUIC connection woken by a packet), until some unrelated event came.
//! We build glommio with a fix (`third_party/glommio/PATCHES.md`, regression tests in
//! `tests/executor_parking.rs`); with it, the same contended runs pass 14 of 14 with no timer
//! anywhere on the shards. The same defect is the likeliest cause of the hangs we saw with
//! `shared_channel`, but we keep our lanes: they wake one task once, not every waiter on
//! every reactor turn.
//!
//! Every lane end is created up front by the thread calling [`crate::run`] and moved to its
//! shard; [`MeshEnds::start`] (on the shard) registers them with the shard's doorbell. There
//! is no connection handshake: an end whose shard never starts is dropped, which closes it,
//! and the peer sees a closed lane.

mod doorbell;
mod ring;

use doorbell::{Doorbell, Parked, Ringer};
use futures_lite::Stream;
use ring::{Consumer, Producer, PushError};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// Why a mesh send did not happen. Every variant gives the message back.
pub enum MeshSendError<T> {
    /// The lane to that shard is full (only from `try_send_*`): apply the caller's overload
    /// policy (queue, retry later, or await `send_*`).
    Full(T),
    /// The destination shard is gone (it finished or failed).
    Closed(T),
    /// The destination is this shard itself or not a shard at all. Local delivery is the
    /// caller's job: it never goes through a lane.
    NotAPeer(T),
}

impl<T> MeshSendError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            MeshSendError::Full(t) | MeshSendError::Closed(t) | MeshSendError::NotAPeer(t) => t,
        }
    }

    /// `true` for [`MeshSendError::Full`].
    pub fn is_full(&self) -> bool {
        matches!(self, MeshSendError::Full(_))
    }
}

impl<T> fmt::Debug for MeshSendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MeshSendError::Full(_) => "Full(..)",
            MeshSendError::Closed(_) => "Closed(..)",
            MeshSendError::NotAPeer(_) => "NotAPeer(..)",
        })
    }
}

impl<T> fmt::Display for MeshSendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MeshSendError::Full(_) => "mesh lane is full",
            MeshSendError::Closed(_) => "destination shard is gone",
            MeshSendError::NotAPeer(_) => "destination is not another shard",
        })
    }
}

impl<T> std::error::Error for MeshSendError<T> {}

/// Adds `waker` to `waiting` unless it would wake the same task as one already there.
fn remember(waiting: &RefCell<Vec<Waker>>, waker: &Waker) {
    let mut waiting = waiting.borrow_mut();
    if !waiting.iter().any(|w| w.will_wake(waker)) {
        waiting.push(waker.clone());
    }
}

/// The producing end of one lane, on the sending shard.
struct SendEnd<T> {
    producer: Producer<T>,
    /// The receiving shard's doorbell.
    peer: Arc<Ringer>,
    /// Tasks of this shard waiting for room.
    waiting: RefCell<Vec<Waker>>,
}

impl<T> Parked for SendEnd<T> {
    fn take_wakers_if_ready(&self) -> Vec<Waker> {
        if self.waiting.borrow().is_empty() || !self.producer.ready() {
            return Vec::new();
        }
        std::mem::take(&mut *self.waiting.borrow_mut())
    }
}

impl<T> Drop for SendEnd<T> {
    fn drop(&mut self) {
        if self.producer.close() {
            self.peer.ring();
        }
    }
}

/// The sending end of one lane to one peer.
pub(crate) struct MeshSender<T: Send + 'static> {
    end: Rc<SendEnd<T>>,
}

impl<T: Send + 'static> MeshSender<T> {
    pub(crate) fn try_send(&self, msg: T) -> Result<(), MeshSendError<T>> {
        match self.end.producer.try_push(msg) {
            Ok(()) => {
                if self.end.producer.receiver_needs_wake() {
                    self.end.peer.ring();
                }
                Ok(())
            }
            Err(PushError::Full(msg)) => Err(MeshSendError::Full(msg)),
            Err(PushError::Gone(msg)) => Err(MeshSendError::Closed(msg)),
        }
    }

    pub(crate) async fn send(&self, msg: T) -> Result<(), MeshSendError<T>> {
        let mut msg = Some(msg);
        poll_fn(|cx| loop {
            let Some(m) = msg.take() else {
                unreachable!("polled after completion");
            };
            match self.try_send(m) {
                Err(MeshSendError::Full(m)) => {
                    msg = Some(m);
                    remember(&self.end.waiting, cx.waker());
                    if self.end.producer.park() {
                        return Poll::Pending;
                    }
                    // Room appeared while parking: try again.
                }
                done => return Poll::Ready(done),
            }
        })
        .await
    }
}

/// The consuming end of one lane, on the receiving shard.
struct RecvEnd<T> {
    consumer: Consumer<T>,
    /// The sending shard's doorbell.
    peer: Arc<Ringer>,
    /// Tasks of this shard waiting for a message.
    waiting: RefCell<Vec<Waker>>,
    /// Messages taken since we last looked for a sender parked on a full lane.
    taken_unchecked: Cell<usize>,
    /// Look for a parked sender at least every this many messages (and before parking).
    check_every: usize,
}

impl<T> Parked for RecvEnd<T> {
    fn take_wakers_if_ready(&self) -> Vec<Waker> {
        if self.waiting.borrow().is_empty() || !self.consumer.ready() {
            return Vec::new();
        }
        std::mem::take(&mut *self.waiting.borrow_mut())
    }
}

impl<T> Drop for RecvEnd<T> {
    fn drop(&mut self) {
        if self.consumer.close() {
            self.peer.ring();
        }
    }
}

impl<T> RecvEnd<T> {
    /// Wakes the sender if it parked on a full lane and we have freed slots since.
    fn release_sender(&self) {
        if self.taken_unchecked.replace(0) > 0 && self.consumer.sender_needs_wake() {
            self.peer.ring();
        }
    }

    fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        loop {
            if let Some(msg) = self.consumer.try_pop() {
                let taken = self.taken_unchecked.get() + 1;
                self.taken_unchecked.set(taken);
                if taken >= self.check_every {
                    self.release_sender();
                }
                return Poll::Ready(Some(msg));
            }
            self.release_sender();
            if self.consumer.sender_gone() {
                // The sender's last push happened before it marked itself gone.
                return Poll::Ready(self.consumer.try_pop());
            }
            remember(&self.waiting, cx.waker());
            if self.consumer.park() {
                return Poll::Pending;
            }
            // A message (or the sender's departure) arrived while parking: look again.
        }
    }
}

/// The receiving end of one lane from one peer shard.
///
/// Spawn a task per receiver (or merge them) and `recv().await` in a loop; `None` means the
/// peer is gone and nothing more will arrive. Also a [`Stream`].
pub struct MeshReceiver<T: Send + 'static> {
    from: usize,
    end: Rc<RecvEnd<T>>,
}

impl<T: Send + 'static> MeshReceiver<T> {
    /// The shard the messages come from.
    pub fn from(&self) -> usize {
        self.from
    }

    /// The next message, in send order; `None` once the sender is gone and the lane is drained.
    pub async fn recv(&self) -> Option<T> {
        poll_fn(|cx| self.end.poll_recv(cx)).await
    }

    /// Messages waiting in the lane (more may arrive at any moment).
    pub fn len(&self) -> usize {
        self.end.consumer.len()
    }

    /// Whether the lane is empty right now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Send + 'static> Stream for MeshReceiver<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.end.poll_recv(cx)
    }
}

impl<T: Send + 'static> fmt::Debug for MeshReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshReceiver")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// One shard's lane ends, indexed by peer (`None` at the shard's own index), and the shard's
/// end of its doorbell; built on the runtime's thread, started on the shard.
pub(crate) struct MeshEnds<C: Send + 'static, D: Send + 'static> {
    doorbell: OwnedFd,
    control_tx: Vec<Option<SendEnd<C>>>,
    control_rx: Vec<Option<RecvEnd<C>>>,
    data_tx: Vec<Option<SendEnd<D>>>,
    data_rx: Vec<Option<RecvEnd<D>>>,
}

/// One shard's started mesh.
pub(crate) struct Mesh<C: Send + 'static, D: Send + 'static> {
    /// `control_tx[peer]`, `None` at the shard's own index.
    pub control_tx: Vec<Option<MeshSender<C>>>,
    /// `data_tx[peer]`, `None` at the shard's own index.
    pub data_tx: Vec<Option<MeshSender<D>>>,
    /// One receiver per peer, in peer order.
    pub control_rx: Vec<MeshReceiver<C>>,
    /// One receiver per peer, in peer order.
    pub data_rx: Vec<MeshReceiver<D>>,
}

fn empty<T>(n: usize) -> Vec<Option<T>> {
    (0..n).map(|_| None).collect()
}

fn lane<T: Send>(
    capacity: usize,
    sender_bell: &Arc<Ringer>,
    receiver_bell: &Arc<Ringer>,
) -> (SendEnd<T>, RecvEnd<T>) {
    let (producer, consumer) = ring::ring(capacity);
    let check_every = (producer.capacity() / 4).max(1);
    (
        SendEnd {
            producer,
            peer: receiver_bell.clone(),
            waiting: RefCell::new(Vec::new()),
        },
        RecvEnd {
            consumer,
            peer: sender_bell.clone(),
            waiting: RefCell::new(Vec::new()),
            taken_unchecked: Cell::new(0),
            check_every,
        },
    )
}

/// Creates every lane and doorbell of an `n`-shard mesh; element `i` of the result goes to
/// shard `i`.
pub(crate) fn build<C: Send + 'static, D: Send + 'static>(
    n: usize,
    control_capacity: usize,
    data_capacity: usize,
) -> io::Result<Vec<MeshEnds<C, D>>> {
    let mut bells = Vec::with_capacity(n);
    let mut ends = Vec::with_capacity(n);
    for _ in 0..n {
        let (ringer, fd) = doorbell::pair()?;
        bells.push(Arc::new(ringer));
        ends.push(MeshEnds {
            doorbell: fd,
            control_tx: empty(n),
            control_rx: empty(n),
            data_tx: empty(n),
            data_rx: empty(n),
        });
    }
    for from in 0..n {
        for to in (0..n).filter(|&to| to != from) {
            let (tx, rx) = lane(control_capacity, &bells[from], &bells[to]);
            ends[from].control_tx[to] = Some(tx);
            ends[to].control_rx[from] = Some(rx);
            let (tx, rx) = lane(data_capacity, &bells[from], &bells[to]);
            ends[from].data_tx[to] = Some(tx);
            ends[to].data_rx[from] = Some(rx);
        }
    }
    Ok(ends)
}

impl<C: Send + 'static, D: Send + 'static> MeshEnds<C, D> {
    /// Registers every end with this shard's doorbell and starts the doorbell's task. Must
    /// run inside the shard's executor.
    pub(crate) fn start(self) -> Mesh<C, D> {
        let doorbell = Rc::new(Doorbell::default());
        fn senders<T: Send + 'static>(
            doorbell: &Doorbell,
            ends: Vec<Option<SendEnd<T>>>,
        ) -> Vec<Option<MeshSender<T>>> {
            ends.into_iter()
                .map(|end| {
                    end.map(|end| {
                        let end = Rc::new(end);
                        doorbell.register(Rc::downgrade(&end) as Weak<dyn Parked>);
                        MeshSender { end }
                    })
                })
                .collect()
        }
        fn receivers<T: Send + 'static>(
            doorbell: &Doorbell,
            ends: Vec<Option<RecvEnd<T>>>,
        ) -> Vec<MeshReceiver<T>> {
            ends.into_iter()
                .enumerate()
                .filter_map(|(from, end)| {
                    end.map(|end| {
                        let end = Rc::new(end);
                        doorbell.register(Rc::downgrade(&end) as Weak<dyn Parked>);
                        MeshReceiver { from, end }
                    })
                })
                .collect()
        }
        let mesh = Mesh {
            control_tx: senders(&doorbell, self.control_tx),
            data_tx: senders(&doorbell, self.data_tx),
            control_rx: receivers(&doorbell, self.control_rx),
            data_rx: receivers(&doorbell, self.data_rx),
        };
        doorbell.start(self.doorbell);
        mesh
    }
}
