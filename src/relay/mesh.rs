//! The shard's side of the mesh: sending control and data to other shards without waiting,
//! the queues in front of full lanes, and the control messages a shard sends itself.
//!
//! The lanes themselves belong to the driver ([`MeshPort`]); so does draining the queues
//! ([`Mesh::control_outbox`], [`Mesh::data_outbox`]) and delivering the local queue
//! ([`Mesh::take_local`]). A test harness implements the port with in-memory queues.

use super::data_outbox::{DataDrops, DataOutbox};
use super::messages::{Control, Data};
use super::outbox::Outbox;
use crate::notify::Notify;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

/// Sends on the mesh without waiting; the concrete lanes live in the driver.
pub trait MeshPort {
    fn try_send_control(&self, to: usize, msg: Control) -> Result<(), Control>;
    fn try_send_data(&self, to: usize, msg: Data) -> Result<(), Data>;
}

/// What the mesh shed on one shard.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MeshDrops {
    pub data: DataDrops,
    /// Session requests refused because the control backlog was at its limit.
    pub requests_refused: u64,
}

/// One shard's sending side of the mesh.
pub struct Mesh {
    id: usize,
    count: usize,
    port: Box<dyn MeshPort>,
    control_out: Outbox<Control>,
    data_out: DataOutbox,
    control_backlog: usize,
    local_control: RefCell<VecDeque<Control>>,
    local_wake: Rc<Notify>,
    requests_refused: Cell<u64>,
}

impl Mesh {
    /// Shard `id` of `count`; media is shed beyond `data_backlog` queued messages per peer
    /// (whole groups from four times that), new requests refused at `control_backlog`.
    pub fn new(
        id: usize,
        count: usize,
        port: Box<dyn MeshPort>,
        data_backlog: usize,
        control_backlog: usize,
    ) -> Self {
        Self {
            id,
            count,
            port,
            control_out: Outbox::new(count),
            data_out: DataOutbox::new(count, data_backlog, data_backlog.saturating_mul(4)),
            control_backlog,
            local_control: RefCell::new(VecDeque::new()),
            local_wake: Notify::new(),
            requests_refused: Cell::new(0),
        }
    }

    /// Sends a control message; to ourselves it is queued for [`Self::take_local`]. Control
    /// is never dropped: what does not fit in the lane waits in the outbox, and sessions
    /// stop adding to a long wait through [`Self::admits_requests`].
    pub fn send_control(&self, to: usize, msg: Control) {
        if to == self.id {
            self.local_control.borrow_mut().push_back(msg);
            self.local_wake.notify();
        } else {
            self.control_out
                .push(to, msg, |m| self.port.try_send_control(to, m));
        }
    }

    /// Sends a data message to another shard, or sheds it by the data lane's policy.
    pub fn send_data(&self, to: usize, msg: Data) {
        debug_assert_ne!(to, self.id);
        self.data_out
            .push(to, msg, |m| self.port.try_send_data(to, m));
    }

    /// Whether new work that sends control to other shards may start: false while the
    /// control backlog to some peer is at its limit. Each refusal is counted.
    pub fn admits_requests(&self) -> bool {
        let congested = (0..self.count)
            .any(|to| to != self.id && self.control_out.backlog(to) >= self.control_backlog);
        if congested {
            self.requests_refused.set(self.requests_refused.get() + 1);
        }
        !congested
    }

    /// What the mesh shed so far.
    pub fn drops(&self) -> MeshDrops {
        MeshDrops {
            data: self.data_out.drops(),
            requests_refused: self.requests_refused.get(),
        }
    }

    /// The next control message this shard sent itself.
    pub fn take_local(&self) -> Option<Control> {
        self.local_control.borrow_mut().pop_front()
    }

    /// Notified when a control message for ourselves is queued.
    pub fn local_wake(&self) -> Rc<Notify> {
        self.local_wake.clone()
    }

    /// Control messages waiting for room in a peer's lane.
    pub fn control_outbox(&self) -> &Outbox<Control> {
        &self.control_out
    }

    /// Data messages waiting for room in a peer's lane.
    pub fn data_outbox(&self) -> &DataOutbox {
        &self.data_out
    }
}
