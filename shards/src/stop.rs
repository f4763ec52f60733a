//! Stopping: the process-wide [`RuntimeHandle`] and each shard's local view of "stop now".
//!
//! Each shard has one end of a Unix stream socketpair; the runtime keeps the other end. A stop
//! (from [`RuntimeHandle::stop`], the signal thread, a failed start-up or a panicking shard)
//! writes one byte to every runtime-side end; a shard-side task waiting on its end through
//! io_uring (glommio's `UnixStream`) wakes, sets the shard's local flag and wakes every task
//! waiting in [`crate::Shard::stopped`]. Closing the runtime-side ends (when `run` returns or
//! gives up) has the same effect, so a shard can never miss a stop. Nothing here blocks an
//! executor: the non-executor side only ever does a nonblocking `write`.
//!
//! (A stream pair rather than a datagram pair because glommio's `UnixDatagram` cannot adopt an
//! existing file descriptor, while its `UnixStream` can.)

use futures_lite::AsyncReadExt;
use glommio::sync::Semaphore;
use std::cell::Cell;
use std::io::{self, Write};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// A handle on a running (or about to run) runtime, usable from any thread.
///
/// Cheap to clone. Get one from [`crate::Runtime::handle`], [`crate::ReadyInfo::handle`] or
/// [`crate::Shard::runtime_handle`].
#[derive(Clone, Debug)]
pub struct RuntimeHandle {
    inner: Arc<HandleInner>,
}

#[derive(Debug, Default)]
struct HandleInner {
    requested: AtomicBool,
    /// The runtime-side ends of the shards' stop socketpairs (nonblocking).
    notifiers: Mutex<Vec<UnixStream>>,
}

impl RuntimeHandle {
    pub(crate) fn new() -> RuntimeHandle {
        RuntimeHandle {
            inner: Arc::new(HandleInner::default()),
        }
    }

    /// Asks every shard to stop: [`crate::Shard::stopped`] resolves on all of them. Idempotent;
    /// never blocks. If called before the runtime has started, the shards stop as soon as they
    /// start. `run` returns once every shard's main future has returned.
    pub fn stop(&self) {
        if self.inner.requested.swap(true, Ordering::SeqCst) {
            return;
        }
        let notifiers = self
            .inner
            .notifiers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        wake_all(&notifiers);
    }

    /// Whether a stop was requested.
    pub fn is_stop_requested(&self) -> bool {
        self.inner.requested.load(Ordering::SeqCst)
    }

    /// Registers the runtime-side ends; if a stop was already requested, delivers it now.
    pub(crate) fn attach(&self, ends: Vec<UnixStream>) {
        let mut notifiers = self
            .inner
            .notifiers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *notifiers = ends;
        if self.is_stop_requested() {
            wake_all(&notifiers);
        }
    }

    /// Closes the runtime-side ends: any shard still running sees end-of-file, i.e. a stop.
    pub(crate) fn detach(&self) {
        let ends = std::mem::take(
            &mut *self
                .inner
                .notifiers
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        drop(ends);
    }
}

fn wake_all(notifiers: &[UnixStream]) {
    for mut end in notifiers {
        // Nonblocking: a full buffer means a wake-up is already pending, which is enough.
        let _ = end.write(&[1]);
    }
}

/// Creates `n` stop socketpairs: the runtime-side ends (nonblocking) and the shard-side ends.
pub(crate) fn pairs(n: usize) -> io::Result<(Vec<UnixStream>, Vec<OwnedFd>)> {
    let mut runtime_side = Vec::with_capacity(n);
    let mut shard_side = Vec::with_capacity(n);
    for _ in 0..n {
        let (a, b) = UnixStream::pair()?;
        a.set_nonblocking(true)?;
        runtime_side.push(a);
        // The shard side stays blocking: glommio waits on it through io_uring.
        shard_side.push(OwnedFd::from(b));
    }
    Ok((runtime_side, shard_side))
}

/// A shard's local stop state: a flag plus the tasks waiting for it.
#[derive(Debug)]
pub(crate) struct LocalStop {
    stopping: Cell<bool>,
    /// Never has permits: waiters park on it and are all released when it is closed.
    waiters: Semaphore,
    handle: RuntimeHandle,
}

impl LocalStop {
    /// Creates the local state and spawns the task that watches the shard's stop socket. Must
    /// run inside the shard's executor.
    pub(crate) fn start(fd: OwnedFd, handle: RuntimeHandle) -> Rc<LocalStop> {
        let local = Rc::new(LocalStop {
            stopping: Cell::new(false),
            waiters: Semaphore::new(0),
            handle,
        });
        let watcher = local.clone();
        glommio::spawn_local(async move {
            // SAFETY: we own the descriptor and hand its ownership to glommio.
            let mut stream = unsafe { glommio::net::UnixStream::from_raw_fd(fd.into_raw_fd()) };
            let mut byte = [0u8; 1];
            // A byte, end-of-file or an error: all of them mean "stop".
            let _ = stream.read(&mut byte).await;
            watcher.trigger();
        })
        .detach();
        local
    }

    /// Marks this shard as stopping and wakes every waiter.
    pub(crate) fn trigger(&self) {
        if !self.stopping.replace(true) {
            self.waiters.close();
        }
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.get() || self.handle.is_stop_requested()
    }

    pub(crate) async fn stopped(&self) {
        if self.is_stopping() {
            return;
        }
        // Resolves (with a "closed" error) when `trigger` closes the semaphore.
        let _ = self.waiters.acquire(1).await;
    }

    pub(crate) fn handle(&self) -> &RuntimeHandle {
        &self.handle
    }
}
