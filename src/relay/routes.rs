//! Broadcast ownership on the owning shard: the routes that can serve each announced path,
//! which one is active, and the epoch that tells a stale linger deadline from a live one.
//!
//! Pure bookkeeping: it reports what changed and the shard decides whom to tell.

use super::messages::SessionRef;
use std::collections::HashMap;

/// One way to reach a broadcast: a publisher session and the hop chain it announced.
#[derive(Clone, Debug)]
struct Route {
    session: SessionRef,
    hops: Vec<u64>,
    /// Attachment order, for "newest wins" ties.
    order: u64,
}

/// What the owning shard keeps per announced broadcast.
#[derive(Debug, Default)]
struct OwnedBroadcast {
    routes: Vec<Route>,
    /// The chain announced to every shard.
    announced_hops: Option<Vec<u64>>,
    /// Bumped whenever a linger starts or is cancelled, so stale deadlines do nothing.
    linger_epoch: u64,
}

impl OwnedBroadcast {
    /// The preferred route: shortest chain, then the newest attachment.
    fn best(&self) -> Option<&Route> {
        self.routes
            .iter()
            .min_by(|a, b| a.hops.len().cmp(&b.hops.len()).then(b.order.cmp(&a.order)))
    }

    fn active_route(&self) -> Option<SessionRef> {
        self.best().map(|r| r.session)
    }

    /// Re-derives the announced chain; returns it when it changed.
    fn refresh_chain(&mut self) -> Option<Vec<u64>> {
        let best = self.best().map(|r| r.hops.clone());
        if self.announced_hops == best {
            return None;
        }
        self.announced_hops = best.clone();
        Some(best.unwrap_or_default())
    }
}

/// What an announce or withdrawal changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RouteChange {
    /// The chain every shard must now see for the path, when it changed.
    pub chain: Option<Vec<u64>>,
    /// Whether the active route changed (upstream subscriptions must move).
    pub active_changed: bool,
    /// The last route is gone: the broadcast lingers under this epoch, or ends.
    pub orphaned: Option<u64>,
}

/// Every broadcast this shard owns and its routes.
#[derive(Default)]
pub struct Routes {
    owned: HashMap<String, OwnedBroadcast>,
}

impl Routes {
    /// Whether `path` is owned here (announced, or lingering).
    pub fn contains(&self, path: &str) -> bool {
        self.owned.contains_key(path)
    }

    /// The active route of `path`: `None` when the path is unknown, `Some(None)` while it
    /// lingers without one.
    pub fn active_route(&self, path: &str) -> Option<Option<SessionRef>> {
        self.owned.get(path).map(OwnedBroadcast::active_route)
    }

    /// `route` announced `path` with `hops`; `order` ranks it among equal chains.
    pub fn announce(
        &mut self,
        path: &str,
        route: SessionRef,
        hops: Vec<u64>,
        order: u64,
    ) -> RouteChange {
        let broadcast = self.owned.entry(path.to_string()).or_default();
        let before = broadcast.active_route();
        broadcast.routes.retain(|r| r.session != route);
        broadcast.routes.push(Route {
            session: route,
            hops,
            order,
        });
        broadcast.linger_epoch += 1;
        RouteChange {
            chain: broadcast.refresh_chain(),
            active_changed: before != broadcast.active_route(),
            orphaned: None,
        }
    }

    /// `route` no longer carries `path`. When it was the last route, the broadcast starts
    /// lingering and the change says under which epoch.
    pub fn withdraw(&mut self, path: &str, route: SessionRef) -> RouteChange {
        let Some(broadcast) = self.owned.get_mut(path) else {
            return RouteChange::default();
        };
        let before = broadcast.active_route();
        broadcast.routes.retain(|r| r.session != route);
        if broadcast.routes.is_empty() {
            broadcast.linger_epoch += 1;
            return RouteChange {
                chain: None,
                active_changed: before.is_some(),
                orphaned: Some(broadcast.linger_epoch),
            };
        }
        RouteChange {
            chain: broadcast.refresh_chain(),
            active_changed: before != broadcast.active_route(),
            orphaned: None,
        }
    }

    /// Whether `path` is still routeless in the linger that started at `epoch`.
    pub fn linger_expired(&self, path: &str, epoch: u64) -> bool {
        self.owned
            .get(path)
            .is_some_and(|b| b.routes.is_empty() && b.linger_epoch == epoch)
    }

    /// Forgets `path` (the broadcast ended).
    pub fn remove(&mut self, path: &str) {
        self.owned.remove(path);
    }

    /// How many broadcasts this shard owns.
    pub fn len(&self) -> usize {
        self.owned.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: u64) -> SessionRef {
        SessionRef { shard: 0, id }
    }

    #[test]
    fn the_shortest_chain_wins_then_the_newest() {
        let mut routes = Routes::default();
        let change = routes.announce("b", session(1), vec![7, 8], 1);
        assert_eq!(change.chain, Some(vec![7, 8]));
        assert!(change.active_changed);
        let change = routes.announce("b", session(2), vec![9], 2);
        assert_eq!(change.chain, Some(vec![9]));
        assert_eq!(routes.active_route("b"), Some(Some(session(2))));
        let change = routes.announce("b", session(3), vec![5], 3);
        assert_eq!(routes.active_route("b"), Some(Some(session(3))));
        assert!(change.active_changed);
        assert_eq!(change.chain, Some(vec![5]));
    }

    #[test]
    fn withdrawing_the_last_route_starts_a_linger_that_a_new_announce_cancels() {
        let mut routes = Routes::default();
        routes.announce("b", session(1), vec![], 1);
        let change = routes.withdraw("b", session(1));
        let epoch = change.orphaned.expect("orphaned");
        assert!(routes.linger_expired("b", epoch));
        assert_eq!(routes.active_route("b"), Some(None));
        routes.announce("b", session(2), vec![], 2);
        assert!(!routes.linger_expired("b", epoch));
        assert_eq!(
            routes.withdraw("unknown", session(2)),
            RouteChange::default()
        );
    }
}
