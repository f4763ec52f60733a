//! The mesh: a full mesh of bounded lock-free channels between shards, in two lanes.
//!
//! For every ordered pair of distinct shards `(a, b)` there is one control channel and one data
//! channel from `a` to `b` (glommio `shared_channel`s: single-producer single-consumer ring
//! buffers whose ends live on two different executors). The lanes are separate so control
//! messages (announce, subscribe, ...) never queue behind a media backlog, and each lane has
//! its own bound ([`crate::RuntimeConfig::control_capacity`] and
//! [`crate::RuntimeConfig::data_capacity`], rounded up to a power of two by glommio).
//!
//! Messages are moved, not copied: a `bytes::Bytes` payload arrives with the same pointer it
//! was sent with (only its refcount travels). Order is preserved per lane per pair.
//!
//! Every channel end is created up front by the thread calling [`crate::run`] and moved to its
//! shard. glommio's `connect()` on one end waits until the peer end connects too, so a shard
//! connects all of its ends concurrently (one local task each): no ordering can deadlock. If a
//! peer dies before connecting, its unconnected ends are dropped, which completes our connect
//! with a closed channel.

use futures_lite::Stream;
use glommio::channels::shared_channel::{
    self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender,
};
use glommio::{GlommioError, ResourceType};
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Why a mesh send did not happen. Every variant gives the message back.
pub enum MeshSendError<T> {
    /// The lane to that shard is full (only from `try_send_*`): apply the caller's overload
    /// policy (drop, retry later, or await `send_*`).
    Full(T),
    /// The destination shard is gone (it finished or failed).
    Closed(T),
    /// The destination is this shard itself or not a shard at all. Local delivery is the
    /// caller's job: it never goes through a channel.
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

fn map_glommio_error<T>(e: GlommioError<T>) -> Result<(), MeshSendError<T>> {
    match e {
        GlommioError::WouldBlock(ResourceType::Channel(t)) => Err(MeshSendError::Full(t)),
        GlommioError::Closed(ResourceType::Channel(t)) => Err(MeshSendError::Closed(t)),
        // glommio only returns the two above from channel sends; anything else means the
        // message was lost inside glommio, which we cannot hand back.
        other => panic!("unexpected shared channel error: {other}"),
    }
}

/// The sending end of one lane to one peer.
pub(crate) struct MeshSender<T: Send + 'static> {
    inner: ConnectedSender<T>,
}

impl<T: Send + 'static> MeshSender<T> {
    pub(crate) fn try_send(&self, msg: T) -> Result<(), MeshSendError<T>> {
        self.inner.try_send(msg).or_else(map_glommio_error)
    }

    pub(crate) async fn send(&self, msg: T) -> Result<(), MeshSendError<T>> {
        match self.inner.send(msg).await {
            Ok(()) => Ok(()),
            Err(e) => map_glommio_error(e),
        }
    }
}

/// The receiving end of one lane from one peer shard.
///
/// Spawn a task per receiver (or merge them) and `recv().await` in a loop; `None` means the
/// peer is gone and nothing more will arrive. Also a [`Stream`].
pub struct MeshReceiver<T: Send + 'static> {
    from: usize,
    inner: ConnectedReceiver<T>,
}

impl<T: Send + 'static> MeshReceiver<T> {
    /// The shard the messages come from.
    pub fn from(&self) -> usize {
        self.from
    }

    /// The next message, in send order; `None` once the sender is gone and the lane is drained.
    pub async fn recv(&self) -> Option<T> {
        self.inner.recv().await
    }

    /// The underlying glommio receiver.
    pub fn into_inner(self) -> ConnectedReceiver<T> {
        self.inner
    }
}

impl<T: Send + 'static> Stream for MeshReceiver<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

impl<T: Send + 'static> fmt::Debug for MeshReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshReceiver")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// One shard's unconnected channel ends, indexed by peer (`None` at the shard's own index).
pub(crate) struct MeshEnds<C: Send + 'static, D: Send + 'static> {
    control_tx: Vec<Option<SharedSender<C>>>,
    control_rx: Vec<Option<SharedReceiver<C>>>,
    data_tx: Vec<Option<SharedSender<D>>>,
    data_rx: Vec<Option<SharedReceiver<D>>>,
}

/// One shard's connected mesh.
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

/// Creates every channel of an `n`-shard mesh; element `i` of the result goes to shard `i`.
pub(crate) fn build<C: Send + 'static, D: Send + 'static>(
    n: usize,
    control_capacity: usize,
    data_capacity: usize,
) -> Vec<MeshEnds<C, D>> {
    let mut ends: Vec<MeshEnds<C, D>> = (0..n)
        .map(|_| MeshEnds {
            control_tx: empty(n),
            control_rx: empty(n),
            data_tx: empty(n),
            data_rx: empty(n),
        })
        .collect();
    for from in 0..n {
        for to in 0..n {
            if from == to {
                continue;
            }
            let (tx, rx) = shared_channel::new_bounded(control_capacity);
            ends[from].control_tx[to] = Some(tx);
            ends[to].control_rx[from] = Some(rx);
            let (tx, rx) = shared_channel::new_bounded(data_capacity);
            ends[from].data_tx[to] = Some(tx);
            ends[to].data_rx[from] = Some(rx);
        }
    }
    ends
}

impl<C: Send + 'static, D: Send + 'static> MeshEnds<C, D> {
    /// Connects every end concurrently (must run inside the shard's executor) and resolves when
    /// all are connected.
    pub(crate) async fn connect(self) -> Mesh<C, D> {
        fn spawn_tx<T: Send + 'static>(
            ends: Vec<Option<SharedSender<T>>>,
        ) -> Vec<Option<glommio::Task<ConnectedSender<T>>>> {
            ends.into_iter()
                .map(|e| e.map(|tx| glommio::spawn_local(tx.connect())))
                .collect()
        }
        fn spawn_rx<T: Send + 'static>(
            ends: Vec<Option<SharedReceiver<T>>>,
        ) -> Vec<(usize, glommio::Task<ConnectedReceiver<T>>)> {
            ends.into_iter()
                .enumerate()
                .filter_map(|(peer, e)| e.map(|rx| (peer, glommio::spawn_local(rx.connect()))))
                .collect()
        }
        let control_tx = spawn_tx(self.control_tx);
        let data_tx = spawn_tx(self.data_tx);
        let control_rx = spawn_rx(self.control_rx);
        let data_rx = spawn_rx(self.data_rx);

        let mut mesh = Mesh {
            control_tx: Vec::with_capacity(control_tx.len()),
            data_tx: Vec::with_capacity(data_tx.len()),
            control_rx: Vec::with_capacity(control_rx.len()),
            data_rx: Vec::with_capacity(data_rx.len()),
        };
        for task in control_tx {
            mesh.control_tx.push(match task {
                Some(t) => Some(MeshSender { inner: t.await }),
                None => None,
            });
        }
        for task in data_tx {
            mesh.data_tx.push(match task {
                Some(t) => Some(MeshSender { inner: t.await }),
                None => None,
            });
        }
        for (from, task) in control_rx {
            mesh.control_rx.push(MeshReceiver {
                from,
                inner: task.await,
            });
        }
        for (from, task) in data_rx {
            mesh.data_rx.push(MeshReceiver {
                from,
                inner: task.await,
            });
        }
        mesh
    }
}
