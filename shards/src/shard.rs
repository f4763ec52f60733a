//! [`Shard`]: what one shard's main future receives: its identity, its sockets, its ends of
//! the mesh, and its view of the runtime's stop.

use crate::mesh::{Mesh, MeshReceiver, MeshSendError, MeshSender};
use crate::stop::{LocalStop, RuntimeHandle};
use crate::udp::UdpSocket;
use std::fmt;
use std::rc::Rc;

/// One shard of the runtime, handed to the shard's main future on its own executor thread.
///
/// `C` is the control message type and `D` the data message type of the mesh. Sending is
/// `&self` (wrap the shard in an `Rc` to share it between tasks); taking the sockets and the
/// receivers is done once, at start, with `&mut self`.
pub struct Shard<C: Send + 'static, D: Send + 'static> {
    pub(crate) id: usize,
    pub(crate) count: usize,
    pub(crate) cpu: Option<usize>,
    pub(crate) control_tx: Vec<Option<MeshSender<C>>>,
    pub(crate) data_tx: Vec<Option<MeshSender<D>>>,
    pub(crate) control_rx: Vec<MeshReceiver<C>>,
    pub(crate) data_rx: Vec<MeshReceiver<D>>,
    pub(crate) udp: Vec<UdpSocket>,
    pub(crate) tcp: Vec<glommio::net::TcpListener>,
    pub(crate) stop: Rc<LocalStop>,
}

impl<C: Send + 'static, D: Send + 'static> Shard<C, D> {
    pub(crate) fn new(
        id: usize,
        count: usize,
        cpu: Option<usize>,
        mesh: Mesh<C, D>,
        udp: Vec<UdpSocket>,
        tcp: Vec<glommio::net::TcpListener>,
        stop: Rc<LocalStop>,
    ) -> Shard<C, D> {
        Shard {
            id,
            count,
            cpu,
            control_tx: mesh.control_tx,
            data_tx: mesh.data_tx,
            control_rx: mesh.control_rx,
            data_rx: mesh.data_rx,
            udp,
            tcp,
            stop,
        }
    }

    /// This shard's index, in `0..count()`.
    pub fn id(&self) -> usize {
        self.id
    }

    /// Number of shards in the runtime.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The CPU this shard is pinned to, if pinned.
    pub fn cpu(&self) -> Option<usize> {
        self.cpu
    }

    /// Takes this shard's UDP sockets, one per configured `udp_bind` address in order (empty
    /// on later calls).
    pub fn take_udp_sockets(&mut self) -> Vec<UdpSocket> {
        std::mem::take(&mut self.udp)
    }

    /// Takes this shard's TCP listeners, one per configured `tcp_bind` address in order (empty
    /// on later calls).
    pub fn take_tcp_listeners(&mut self) -> Vec<glommio::net::TcpListener> {
        std::mem::take(&mut self.tcp)
    }

    /// Takes the receivers of the control lane, one per peer shard (in peer order; empty on
    /// later calls). Spawn a task per receiver, or merge them.
    pub fn take_control_receivers(&mut self) -> Vec<MeshReceiver<C>> {
        std::mem::take(&mut self.control_rx)
    }

    /// Takes the receivers of the data lane, one per peer shard (in peer order; empty on later
    /// calls).
    pub fn take_data_receivers(&mut self) -> Vec<MeshReceiver<D>> {
        std::mem::take(&mut self.data_rx)
    }

    fn lane<T: Send + 'static>(
        lanes: &[Option<MeshSender<T>>],
        to: usize,
    ) -> Option<&MeshSender<T>> {
        lanes.get(to).and_then(Option::as_ref)
    }

    /// Queues a control message for shard `to` without waiting. `Full` when its control lane
    /// is at capacity, `Closed` when that shard is gone, `NotAPeer` for `to == id()` (deliver
    /// locally instead) or `to >= count()`.
    pub fn try_send_control(&self, to: usize, msg: C) -> Result<(), MeshSendError<C>> {
        match Self::lane(&self.control_tx, to) {
            Some(lane) => lane.try_send(msg),
            None => Err(MeshSendError::NotAPeer(msg)),
        }
    }

    /// Sends a control message to shard `to`, waiting while its control lane is full.
    pub async fn send_control(&self, to: usize, msg: C) -> Result<(), MeshSendError<C>> {
        match Self::lane(&self.control_tx, to) {
            Some(lane) => lane.send(msg).await,
            None => Err(MeshSendError::NotAPeer(msg)),
        }
    }

    /// Queues a data message for shard `to` without waiting (see [`Shard::try_send_control`]).
    pub fn try_send_data(&self, to: usize, msg: D) -> Result<(), MeshSendError<D>> {
        match Self::lane(&self.data_tx, to) {
            Some(lane) => lane.try_send(msg),
            None => Err(MeshSendError::NotAPeer(msg)),
        }
    }

    /// Sends a data message to shard `to`, waiting while its data lane is full.
    pub async fn send_data(&self, to: usize, msg: D) -> Result<(), MeshSendError<D>> {
        match Self::lane(&self.data_tx, to) {
            Some(lane) => lane.send(msg).await,
            None => Err(MeshSendError::NotAPeer(msg)),
        }
    }

    /// Resolves once the runtime is stopping (signal, [`RuntimeHandle::stop`], a failed peer).
    /// Cheap; any number of tasks may wait on it at once.
    pub async fn stopped(&self) {
        self.stop.stopped().await
    }

    /// Whether the runtime is stopping.
    pub fn is_stopping(&self) -> bool {
        self.stop.is_stopping()
    }

    /// A handle on the whole runtime, e.g. to stop every shard from this one.
    pub fn runtime_handle(&self) -> RuntimeHandle {
        self.stop.handle().clone()
    }
}

impl<C: Send + 'static, D: Send + 'static> fmt::Debug for Shard<C, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shard")
            .field("id", &self.id)
            .field("count", &self.count)
            .field("cpu", &self.cpu)
            .field("stopping", &self.is_stopping())
            .finish_non_exhaustive()
    }
}
