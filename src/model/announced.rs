//! The set of broadcasts announced right now, as one shard sees it, and the watches that
//! announce streams hold on it.
//!
//! Owners publish every change to every shard, so each shard answers ANNOUNCE requests and
//! routes SUBSCRIBEs from its own copy without asking anyone.
//!
//! A change carries the chain it replaced or removed, so a reader can tell what a requester
//! saw before it without keeping its own copy of the set; and the set can be read in path
//! order from any point ([`AnnouncedSet::after`]), so a large answer is written a piece at
//! a time as the requester takes it.

use crate::notify::Notify;
use crate::path;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::{Rc, Weak};

/// A change seen by a watch; paths are absolute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnnounceEvent {
    /// `path` is active with chain `hops`; `previous` is the chain it replaced, if any.
    Active {
        path: String,
        hops: Vec<u64>,
        previous: Option<Vec<u64>>,
    },
    /// `path` ended; `hops` is the chain it had.
    Ended { path: String, hops: Vec<u64> },
}

/// Most events a watch may have queued before it is declared overflowed.
const MAX_QUEUED: usize = 16 * 1024;

/// Interest in announcements under one absolute prefix.
pub struct AnnounceWatch {
    pub prefix: String,
    queue: RefCell<VecDeque<AnnounceEvent>>,
    overflowed: Cell<bool>,
    notify: Rc<Notify>,
}

impl AnnounceWatch {
    /// Takes the next queued change.
    pub fn pop(&self) -> Option<AnnounceEvent> {
        self.queue.borrow_mut().pop_front()
    }

    /// True once the reader fell more than [`MAX_QUEUED`] events behind.
    pub fn overflowed(&self) -> bool {
        self.overflowed.get()
    }

    fn push(&self, event: AnnounceEvent) {
        let mut queue = self.queue.borrow_mut();
        if queue.len() >= MAX_QUEUED {
            self.overflowed.set(true);
        } else {
            queue.push_back(event);
        }
        self.notify.notify();
    }
}

/// Absolute broadcast path to its hop chain, plus the watches on it.
#[derive(Default)]
pub struct AnnouncedSet {
    broadcasts: BTreeMap<String, Vec<u64>>,
    watches: Vec<Weak<AnnounceWatch>>,
}

impl AnnouncedSet {
    /// Records `path` as active (or replaces its chain) and tells matching watches.
    pub fn insert(&mut self, path: String, hops: Vec<u64>) {
        let previous = self.broadcasts.insert(path.clone(), hops.clone());
        self.publish(AnnounceEvent::Active {
            path,
            hops,
            previous,
        });
    }

    /// Records `path` as ended and tells matching watches; false if it was not active.
    pub fn remove(&mut self, path: &str) -> bool {
        let Some(hops) = self.broadcasts.remove(path) else {
            return false;
        };
        self.publish(AnnounceEvent::Ended {
            path: path.to_string(),
            hops,
        });
        true
    }

    /// The chain of an active broadcast.
    pub fn get(&self, path: &str) -> Option<&[u64]> {
        self.broadcasts.get(path).map(Vec::as_slice)
    }

    /// Every active broadcast under `prefix` (segment-aware), with its chain.
    pub fn under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a [u64])> + 'a {
        self.broadcasts
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(move |(p, _)| p.starts_with(prefix))
            .filter(move |(p, _)| path::has_prefix(p, prefix))
            .map(|(p, h)| (p.as_str(), h.as_slice()))
    }

    /// Active broadcasts under `prefix` (segment-aware) whose path sorts after `cursor` (all
    /// of them without one), in path order: a reader resumes where it stopped.
    pub fn after<'a>(
        &'a self,
        prefix: &'a str,
        cursor: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a str, &'a [u64])> + 'a {
        use std::ops::Bound;
        let from = match cursor {
            Some(cursor) => Bound::Excluded(cursor),
            None => Bound::Included(prefix),
        };
        self.broadcasts
            .range::<str, _>((from, Bound::Unbounded))
            .take_while(move |(p, _)| p.starts_with(prefix))
            .filter(move |(p, _)| path::has_prefix(p, prefix))
            .map(|(p, h)| (p.as_str(), h.as_slice()))
    }

    /// Starts watching `prefix`; the caller reads [`Self::under`] for the current state
    /// in the same turn, so no change can fall between the two.
    pub fn watch(&mut self, prefix: String, notify: Rc<Notify>) -> Rc<AnnounceWatch> {
        let watch = Rc::new(AnnounceWatch {
            prefix,
            queue: RefCell::new(VecDeque::new()),
            overflowed: Cell::new(false),
            notify,
        });
        self.watches.push(Rc::downgrade(&watch));
        watch
    }

    /// How many broadcasts are active.
    pub fn len(&self) -> usize {
        self.broadcasts.len()
    }

    /// True when nothing is announced.
    pub fn is_empty(&self) -> bool {
        self.broadcasts.is_empty()
    }

    fn publish(&mut self, event: AnnounceEvent) {
        let path = match &event {
            AnnounceEvent::Active { path, .. } | AnnounceEvent::Ended { path, .. } => path.clone(),
        };
        self.watches.retain(|w| match w.upgrade() {
            Some(watch) => {
                if path::has_prefix(&path, &watch.prefix) {
                    watch.push(event.clone());
                }
                true
            }
            None => false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_see_only_their_prefix_and_under_is_segment_aware() {
        let mut set = AnnouncedSet::default();
        let notify = Notify::new();
        let watch = set.watch("anon".into(), notify.clone());
        set.insert("anon/clock".into(), vec![7]);
        set.insert("anonymous".into(), vec![]);
        set.insert("anon".into(), vec![]);
        assert!(notify.take());
        assert_eq!(
            watch.pop(),
            Some(AnnounceEvent::Active {
                path: "anon/clock".into(),
                hops: vec![7],
                previous: None,
            })
        );
        assert_eq!(
            watch.pop(),
            Some(AnnounceEvent::Active {
                path: "anon".into(),
                hops: vec![],
                previous: None,
            })
        );
        assert_eq!(watch.pop(), None);
        let under: Vec<_> = set.under("anon").map(|(p, _)| p.to_string()).collect();
        assert_eq!(under, vec!["anon".to_string(), "anon/clock".to_string()]);
        assert!(set.remove("anon/clock"));
        assert!(!set.remove("anon/clock"));
        assert_eq!(
            watch.pop(),
            Some(AnnounceEvent::Ended {
                path: "anon/clock".into(),
                hops: vec![7],
            })
        );
    }

    #[test]
    fn a_reader_resumes_after_its_cursor_and_changes_carry_the_old_chain() {
        let mut set = AnnouncedSet::default();
        for name in ["a/1", "a/2", "a/3", "ab"] {
            set.insert(name.into(), vec![1]);
        }
        let first: Vec<_> = set.after("a", None).map(|(p, _)| p).take(2).collect();
        assert_eq!(first, ["a/1", "a/2"]);
        let rest: Vec<_> = set.after("a", Some("a/2")).map(|(p, _)| p).collect();
        assert_eq!(rest, ["a/3"], "segment-aware: ab is not under a");
        let watch = set.watch("a".into(), Notify::new());
        set.insert("a/1".into(), vec![2]);
        assert_eq!(
            watch.pop(),
            Some(AnnounceEvent::Active {
                path: "a/1".into(),
                hops: vec![2],
                previous: Some(vec![1]),
            })
        );
    }
}
