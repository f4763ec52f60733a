//! What subscribers want from a track, and how many wants fold into the one upstream
//! subscription: the highest priority, the longest max age, the loosest start and the
//! widest end.

/// One subscriber's (or one shard's aggregated) terms for a track.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Demand {
    pub priority: u8,
    /// Longest acceptable age of a group, in milliseconds (0 = only the newest).
    pub max_age_ms: u64,
    /// First group wanted; `None` = start at the latest.
    pub start: Option<u64>,
    /// Exclusive end; `None` = open-ended.
    pub end: Option<u64>,
}

impl Demand {
    /// The terms that satisfy both `self` and `other`.
    pub fn union(self, other: Demand) -> Demand {
        Demand {
            priority: self.priority.max(other.priority),
            max_age_ms: self.max_age_ms.max(other.max_age_ms),
            start: match (self.start, other.start) {
                (Some(a), Some(b)) => Some(a.min(b)),
                _ => None,
            },
            end: match (self.end, other.end) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            },
        }
    }

    /// The union of every demand, or `None` when there is none.
    pub fn union_all(demands: impl IntoIterator<Item = Demand>) -> Option<Demand> {
        demands.into_iter().reduce(Demand::union)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_takes_the_most_generous_terms() {
        let a = Demand {
            priority: 3,
            max_age_ms: 100,
            start: Some(5),
            end: Some(10),
        };
        let b = Demand {
            priority: 9,
            max_age_ms: 50,
            start: Some(2),
            end: Some(20),
        };
        assert_eq!(
            a.union(b),
            Demand {
                priority: 9,
                max_age_ms: 100,
                start: Some(2),
                end: Some(20)
            }
        );
        let open = Demand::default();
        assert_eq!(
            a.union(open).start,
            None,
            "any latest-start subscriber clears the floor"
        );
        assert_eq!(a.union(open).end, None, "any open subscriber makes it open");
        assert_eq!(Demand::union_all([]), None);
        assert_eq!(Demand::union_all([a]), Some(a));
    }
}
