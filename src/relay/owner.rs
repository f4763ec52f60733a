//! Broadcast ownership: the routes that can serve a path, which one is active, and the
//! linger that keeps a broadcast announced for a while after its publisher vanished.

use super::messages::{Control, SessionRef};
use super::shard::RelayShard;
use std::rc::Rc;

/// One way to reach a broadcast: a publisher session and the hop chain it announced.
#[derive(Clone, Debug)]
pub(super) struct Route {
    pub session: SessionRef,
    pub hops: Vec<u64>,
    /// Attachment order, for "newest wins" ties.
    pub order: u64,
}

/// What the owning shard keeps per announced broadcast.
#[derive(Debug, Default)]
pub(super) struct OwnedBroadcast {
    pub routes: Vec<Route>,
    /// The chain announced to every shard.
    pub announced_hops: Option<Vec<u64>>,
    /// Bumped whenever a linger starts or is cancelled, so stale timers do nothing.
    pub linger_epoch: u64,
}

impl OwnedBroadcast {
    /// The preferred route: shortest chain, then the newest attachment.
    pub fn active_route(&self) -> Option<SessionRef> {
        self.best().map(|r| r.session)
    }

    fn best(&self) -> Option<&Route> {
        self.routes
            .iter()
            .min_by(|a, b| a.hops.len().cmp(&b.hops.len()).then(b.order.cmp(&a.order)))
    }
}

impl RelayShard {
    /// Owner: a session announced `path`.
    pub(super) fn on_announce(self: &Rc<Self>, path: String, route: SessionRef, hops: Vec<u64>) {
        let order = self.next_id();
        let (before, after, chain_changed) = {
            let mut owned = self.owned.borrow_mut();
            let broadcast = owned.entry(path.clone()).or_default();
            let before = broadcast.active_route();
            broadcast.routes.retain(|r| r.session != route);
            broadcast.routes.push(Route {
                session: route,
                hops,
                order,
            });
            broadcast.linger_epoch += 1;
            let best_hops = broadcast.best().map(|r| r.hops.clone());
            let changed = broadcast.announced_hops != best_hops;
            broadcast.announced_hops = best_hops;
            (before, broadcast.active_route(), changed)
        };
        if chain_changed {
            let hops = self.owned.borrow()[&path]
                .announced_hops
                .clone()
                .unwrap_or_default();
            self.broadcast_control(|| Control::BroadcastActive {
                path: path.clone(),
                hops: hops.clone(),
            });
        }
        if before != after {
            for entry in self.owned_entries(&path) {
                self.ensure_upstream(&entry);
            }
        }
    }

    /// Owner: a session withdrew `path` (cleanly, or by dying when `abrupt`).
    pub(super) fn on_unannounce(self: &Rc<Self>, path: String, route: SessionRef, abrupt: bool) {
        let outcome = {
            let mut owned = self.owned.borrow_mut();
            let Some(broadcast) = owned.get_mut(&path) else {
                return;
            };
            let before = broadcast.active_route();
            broadcast.routes.retain(|r| r.session != route);
            if broadcast.routes.is_empty() {
                broadcast.linger_epoch += 1;
                Some(broadcast.linger_epoch)
            } else {
                let after = broadcast.active_route();
                let best_hops = broadcast.best().map(|r| r.hops.clone());
                let changed = broadcast.announced_hops != best_hops;
                broadcast.announced_hops = best_hops.clone();
                drop(owned);
                if changed {
                    let hops = best_hops.unwrap_or_default();
                    self.broadcast_control(|| Control::BroadcastActive {
                        path: path.clone(),
                        hops: hops.clone(),
                    });
                }
                if before != after {
                    for entry in self.owned_entries(&path) {
                        self.ensure_upstream(&entry);
                    }
                }
                return;
            }
        };
        let Some(epoch) = outcome else { return };
        // Upstream subscriptions on the dead route are gone.
        for entry in self.owned_entries(&path) {
            if let super::tracks::EntryKind::Owner(state) = &entry.kind {
                state.upstream.set(None);
            }
        }
        let linger = self.config.linger;
        if !abrupt || linger.is_zero() {
            self.end_broadcast(&path);
            return;
        }
        tracing::info!(broadcast = %path, ?linger, "publisher lost; lingering");
        let shard = self.clone();
        glommio::spawn_local(async move {
            glommio::timer::sleep(linger).await;
            let expired = shard
                .owned
                .borrow()
                .get(&path)
                .is_some_and(|b| b.routes.is_empty() && b.linger_epoch == epoch);
            if expired {
                shard.end_broadcast(&path);
            }
        })
        .detach();
    }

    /// Owner: the broadcast is over; every shard hears it ended.
    fn end_broadcast(&self, path: &str) {
        self.owned.borrow_mut().remove(path);
        tracing::info!(broadcast = %path, "broadcast ended");
        self.broadcast_control(|| Control::BroadcastEnded {
            path: path.to_string(),
        });
    }

    /// Every shard: `path` ended. Announce watchers hear `ended` now; local tracks end
    /// shortly after, so viewers read the unannounce before their subscriptions close.
    pub(super) fn on_broadcast_ended(self: &Rc<Self>, path: &str) {
        if !self.announced.borrow_mut().remove(path) {
            return;
        }
        let entries = self.detach_local_tracks(path);
        glommio::spawn_local(async move {
            glommio::timer::sleep(TEARDOWN_DELAY).await;
            for entry in entries {
                entry.end_cleanly();
            }
        })
        .detach();
    }
}

/// Gap between `ended` and the end of the broadcast's subscriptions.
const TEARDOWN_DELAY: std::time::Duration = std::time::Duration::from_millis(100);
