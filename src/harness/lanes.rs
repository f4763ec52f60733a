//! In-memory mesh lanes between the shards of one relay: bounded queues per (from, to) and
//! lane kind, which the harness delivers in order. A lane into a shard can be held shut to
//! play a shard that stopped reading its mesh.

use crate::relay::{Control, Data, MeshPort};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

/// Every lane of one relay.
pub struct Lanes {
    control: RefCell<Vec<Vec<VecDeque<Control>>>>,
    data: RefCell<Vec<Vec<VecDeque<Data>>>>,
    control_capacity: usize,
    data_capacity: usize,
    /// Shards whose incoming lanes are not delivered for now.
    held: RefCell<Vec<bool>>,
    /// Messages pushed so far, so a driver sees movement that only reached a lane.
    pushed: Cell<u64>,
}

impl Lanes {
    pub fn new(shards: usize, control_capacity: usize, data_capacity: usize) -> Rc<Self> {
        fn grid<T>(shards: usize) -> Vec<Vec<VecDeque<T>>> {
            (0..shards)
                .map(|_| (0..shards).map(|_| VecDeque::new()).collect())
                .collect()
        }
        Rc::new(Self {
            control: RefCell::new(grid(shards)),
            data: RefCell::new(grid(shards)),
            control_capacity,
            data_capacity,
            held: RefCell::new(vec![false; shards]),
            pushed: Cell::new(0),
        })
    }

    /// The port shard `from` sends through.
    pub fn port(self: &Rc<Self>, from: usize) -> Box<dyn MeshPort> {
        Box::new(Port {
            lanes: self.clone(),
            from,
        })
    }

    /// Stops (or resumes) delivering into shard `to`.
    pub fn hold(&self, to: usize, held: bool) {
        self.held.borrow_mut()[to] = held;
    }

    pub fn is_held(&self, to: usize) -> bool {
        self.held.borrow()[to]
    }

    /// Room left in the control lane `from` -> `to`.
    pub fn control_room(&self, from: usize, to: usize) -> usize {
        self.control_capacity - self.control.borrow()[from][to].len()
    }

    /// Room left in the data lane `from` -> `to`.
    pub fn data_room(&self, from: usize, to: usize) -> usize {
        self.data_capacity - self.data.borrow()[from][to].len()
    }

    pub fn push_control(&self, from: usize, to: usize, msg: Control) -> Result<(), Control> {
        if self.control_room(from, to) == 0 {
            return Err(msg);
        }
        self.control.borrow_mut()[from][to].push_back(msg);
        self.pushed.set(self.pushed.get() + 1);
        Ok(())
    }

    pub fn push_data(&self, from: usize, to: usize, msg: Data) -> Result<(), Data> {
        if self.data_room(from, to) == 0 {
            return Err(msg);
        }
        self.data.borrow_mut()[from][to].push_back(msg);
        self.pushed.set(self.pushed.get() + 1);
        Ok(())
    }

    /// How many messages were pushed into any lane so far.
    pub fn pushed(&self) -> u64 {
        self.pushed.get()
    }

    pub fn pop_control(&self, from: usize, to: usize) -> Option<Control> {
        self.control.borrow_mut()[from][to].pop_front()
    }

    pub fn pop_data(&self, from: usize, to: usize) -> Option<Data> {
        self.data.borrow_mut()[from][to].pop_front()
    }
}

struct Port {
    lanes: Rc<Lanes>,
    from: usize,
}

impl MeshPort for Port {
    fn try_send_control(&self, to: usize, msg: Control) -> Result<(), Control> {
        self.lanes.push_control(self.from, to, msg)
    }

    fn try_send_data(&self, to: usize, msg: Data) -> Result<(), Data> {
        self.lanes.push_data(self.from, to, msg)
    }
}
