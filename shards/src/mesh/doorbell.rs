//! A shard's doorbell: how another thread wakes a task of this shard that parked on a lane.
//!
//! Each shard has one Unix stream socketpair. Any thread rings it with a nonblocking one-byte
//! `write` ([`Ringer::ring`]); a full socket buffer means unread rings are already pending,
//! which is as good. On the shard, one task (spawned by [`Doorbell::start`]) waits on the other
//! end with an ordinary io_uring read through glommio's `UnixStream`, so a ring completes a
//! request in the shard's ring whether the executor is busy or asleep: the wake-up travels
//! through the kernel, not through glommio's sleep notifier. After each read the task asks
//! every lane end registered on this shard whether it can now make progress and wakes the
//! tasks parked on the ones that can.
//!
//! A lane end rings its peer's doorbell only when the peer's park flag says it is parked (see
//! `ring.rs`), so a busy pair of shards exchanges no doorbell traffic at all; an idle one
//! pays one `write` and one completed read per message that finds its receiver parked.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::rc::{Rc, Weak};
use std::task::Waker;

use futures_lite::AsyncReadExt;

/// The ringing side of a shard's doorbell; shared by every lane end that may wake that shard.
#[derive(Debug)]
pub(crate) struct Ringer {
    socket: UnixStream,
}

impl Ringer {
    /// Wakes the shard's doorbell task. Never blocks, never raises SIGPIPE.
    pub(crate) fn ring(&self) {
        // EAGAIN: the buffer is full of rings not yet read, so a wake-up is pending anyway.
        // Any other error (EPIPE) means the shard is gone and nobody is left to wake.
        // SAFETY: a valid socket and a one-byte buffer that outlives the call.
        unsafe {
            libc::send(
                self.socket.as_raw_fd(),
                [1u8].as_ptr().cast(),
                1,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
    }
}

/// A lane end as the doorbell sees it: a parked task to wake once the end can make progress.
pub(crate) trait Parked {
    /// The wakers of the tasks parked on this end, if it can make progress now (taken, so
    /// each is woken once).
    fn take_wakers_if_ready(&self) -> Vec<Waker>;
}

/// The shard-local side of a doorbell: the lane ends it serves.
#[derive(Default)]
pub(crate) struct Doorbell {
    ends: RefCell<Vec<Weak<dyn Parked>>>,
}

/// Creates a doorbell: the ringer (for other threads) and the shard's end of the socket.
pub(crate) fn pair() -> io::Result<(Ringer, OwnedFd)> {
    let (ringer, shard_side) = UnixStream::pair()?;
    // The shard side stays blocking: glommio waits on it through io_uring. The ringing side
    // sends with MSG_DONTWAIT.
    Ok((Ringer { socket: ringer }, OwnedFd::from(shard_side)))
}

impl Doorbell {
    /// Registers a lane end of this shard.
    pub(crate) fn register(&self, end: Weak<dyn Parked>) {
        self.ends.borrow_mut().push(end);
    }

    /// Wakes every registered end that can make progress; forgets ends that were dropped.
    fn wake_ready(&self) {
        let mut wakers = Vec::new();
        self.ends.borrow_mut().retain(|end| match end.upgrade() {
            Some(end) => {
                wakers.extend(end.take_wakers_if_ready());
                true
            }
            None => false,
        });
        for waker in wakers {
            waker.wake();
        }
    }

    /// Spawns the task that reads the shard's end of the doorbell and wakes the ready lane
    /// ends after every read. Must run inside the shard's executor. The task ends when every
    /// ringer is gone (end of file) or the executor stops.
    pub(crate) fn start(self: &Rc<Self>, fd: OwnedFd) {
        let doorbell = self.clone();
        glommio::spawn_local(async move {
            // SAFETY: we own the descriptor and hand its ownership to glommio.
            let mut socket = unsafe { glommio::net::UnixStream::from_raw_fd(fd.into_raw_fd()) };
            let mut rings = [0u8; 256];
            loop {
                let read = socket.read(&mut rings).await;
                doorbell.wake_ready();
                if !matches!(read, Ok(n) if n > 0) {
                    return;
                }
            }
        })
        .detach();
    }
}
