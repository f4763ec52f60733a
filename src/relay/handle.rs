//! A session's use of a track on its shard: opening one creates the local entry (and the
//! interest or upstream subscription behind it) on first use; dropping the handle releases it.

use super::shard::RelayShard;
use super::track_table::TrackEntry;
use crate::model::{Demand, Track};
use std::rc::Rc;

/// A session's use of a track; dropping it releases the interest.
pub struct TrackHandle {
    shard: Rc<RelayShard>,
    entry: Rc<TrackEntry>,
    id: u64,
}

impl TrackHandle {
    /// Uses track `name` of `broadcast` (absolute path) on `shard`. `demand` is what a
    /// subscriber wants; `None` for users that only need the track's info.
    pub fn open(
        shard: &Rc<RelayShard>,
        broadcast: &str,
        name: &str,
        demand: Option<Demand>,
    ) -> Self {
        let id = shard.next_id();
        let entry = shard.entry((broadcast.to_string(), name.to_string()));
        entry.users.set(entry.users.get() + 1);
        let handle = Self {
            shard: shard.clone(),
            entry,
            id,
        };
        if let Some(demand) = demand {
            handle.set_demand(demand);
        }
        handle
    }

    pub fn track(&self) -> &Rc<Track> {
        &self.entry.track
    }

    /// Changes what this user wants (a SUBSCRIBE_UPDATE).
    pub fn set_demand(&self, demand: Demand) {
        self.entry.set_user_demand(self.id, demand);
        self.shard.demand_changed(&self.entry);
    }
}

impl Drop for TrackHandle {
    fn drop(&mut self) {
        let users = self.entry.remove_user(self.id);
        self.shard.user_left(&self.entry, users);
    }
}

impl RelayShard {
    /// Opens a [`TrackHandle`] on this shard; see [`TrackHandle::open`].
    pub fn open_track(
        self: &Rc<Self>,
        broadcast: &str,
        name: &str,
        demand: Option<Demand>,
    ) -> TrackHandle {
        TrackHandle::open(self, broadcast, name, demand)
    }
}
