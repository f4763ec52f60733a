//! The HTTP connection slots of one shard: how many connections it serves at once, how many
//! of them one source address may hold (so one address cannot take them all), how long a
//! request head may take (shortened while the shard is under pressure, so slow sockets
//! cycle faster), and the counts of what was refused. Sans-IO: the accept loop asks, the
//! connection task gives its slot back.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

/// The bounds of one shard's HTTP slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotLimits {
    /// Connections the shard serves at once (WebSocket sessions included).
    pub per_shard: usize,
    /// Connections one source address (an IPv4 address, an IPv6 /64) holds at once.
    pub per_address: usize,
    /// How long a request head may take to arrive (and an idle keep-alive may last).
    pub head_timeout: Duration,
    /// The same while half the shard's slots or more are taken.
    pub head_timeout_under_pressure: Duration,
}

impl Default for SlotLimits {
    fn default() -> Self {
        SlotLimits {
            per_shard: 4096,
            per_address: 256,
            head_timeout: Duration::from_secs(10),
            head_timeout_under_pressure: Duration::from_secs(2),
        }
    }
}

/// Whom a slot is counted against: an IPv4 address, or the /64 an IPv6 address is in (one
/// host usually has a whole /64). IPv4-mapped IPv6 addresses count as IPv4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    V4(u32),
    V6(u64),
}

impl Source {
    pub fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(v4) => Source::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::V4(u32::from(v4)),
                None => Source::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// Why a connection gets no slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot of the shard is taken (answered 503).
    ShardFull,
    /// Its source address holds its share (answered 429).
    AddressFull,
}

impl Refusal {
    /// The status the refused connection is answered with before it is closed.
    pub fn status(self) -> u16 {
        match self {
            Refusal::ShardFull => 503,
            Refusal::AddressFull => 429,
        }
    }
}

/// What the slots refused or cut short, for the shard's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotStats {
    pub refused_shard_full: u64,
    pub refused_per_address: u64,
    /// Connections closed because a request head did not arrive in time (408 or, between
    /// requests, a plain close).
    pub head_timeouts: u64,
}

/// The slots of one shard.
#[derive(Debug)]
pub struct Slots {
    limits: SlotLimits,
    live: Cell<usize>,
    /// Slots held per source; a source holding none has no entry, so the map never has
    /// more entries than `limits.per_shard`.
    by_source: RefCell<HashMap<Source, usize>>,
    stats: Cell<SlotStats>,
}

impl Slots {
    pub fn new(limits: SlotLimits) -> Slots {
        Slots {
            limits,
            live: Cell::new(0),
            by_source: RefCell::new(HashMap::new()),
            stats: Cell::new(SlotStats::default()),
        }
    }

    /// Takes a slot for a connection from `ip`, or says why there is none (and counts it).
    /// A taken slot is given back with [`release`](Self::release).
    pub fn admit(&self, ip: IpAddr) -> Result<Source, Refusal> {
        let source = Source::of(ip);
        let mut stats = self.stats.get();
        let refusal = if self.live.get() >= self.limits.per_shard {
            stats.refused_shard_full += 1;
            Refusal::ShardFull
        } else {
            let mut by_source = self.by_source.borrow_mut();
            let held = by_source.entry(source).or_insert(0);
            if *held < self.limits.per_address {
                *held += 1;
                self.live.set(self.live.get() + 1);
                return Ok(source);
            }
            stats.refused_per_address += 1;
            Refusal::AddressFull
        };
        self.stats.set(stats);
        Err(refusal)
    }

    /// Gives back a slot [`admit`](Self::admit) took for `source`.
    pub fn release(&self, source: Source) {
        let mut by_source = self.by_source.borrow_mut();
        if let Some(held) = by_source.get_mut(&source) {
            *held -= 1;
            if *held == 0 {
                by_source.remove(&source);
            }
            self.live.set(self.live.get().saturating_sub(1));
        }
    }

    /// How long a request head may take now: shorter while half the slots or more are taken.
    pub fn head_timeout(&self) -> Duration {
        if self.under_pressure() {
            self.limits.head_timeout_under_pressure
        } else {
            self.limits.head_timeout
        }
    }

    /// The longest a waiting head may go without looking at [`head_timeout`] again, so a
    /// head that started before the pressure did is cut short too.
    pub fn recheck_interval(&self) -> Duration {
        self.limits.head_timeout_under_pressure
    }

    fn under_pressure(&self) -> bool {
        self.live.get() >= self.limits.per_shard.div_ceil(2)
    }

    /// Counts a connection closed for a head that did not arrive in time.
    pub fn count_head_timeout(&self) {
        let mut stats = self.stats.get();
        stats.head_timeouts += 1;
        self.stats.set(stats);
    }

    /// Connections holding a slot.
    pub fn live(&self) -> usize {
        self.live.get()
    }

    /// Sources holding at least one slot.
    pub fn sources(&self) -> usize {
        self.by_source.borrow().len()
    }

    pub fn stats(&self) -> SlotStats {
        self.stats.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn small() -> Slots {
        Slots::new(SlotLimits {
            per_shard: 8,
            per_address: 3,
            head_timeout: Duration::from_secs(10),
            head_timeout_under_pressure: Duration::from_secs(2),
        })
    }

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    #[test]
    fn one_address_holds_its_share_and_no_more() {
        let slots = small();
        let taken: Vec<_> = (0..3).map(|_| slots.admit(v4(1)).unwrap()).collect();
        assert_eq!(slots.admit(v4(1)), Err(Refusal::AddressFull));
        assert_eq!(slots.admit(v4(1)), Err(Refusal::AddressFull));
        // Others are still served.
        assert!(slots.admit(v4(2)).is_ok());
        assert_eq!(slots.stats().refused_per_address, 2);
        // A slot given back may be taken again.
        slots.release(taken[0]);
        assert!(slots.admit(v4(1)).is_ok());
        assert_eq!(slots.live(), 4);
    }

    #[test]
    fn the_shard_limit_holds_whatever_the_addresses() {
        let slots = small();
        for i in 0..8 {
            slots.admit(v4(i)).unwrap();
        }
        assert_eq!(slots.admit(v4(100)), Err(Refusal::ShardFull));
        assert_eq!(slots.stats().refused_shard_full, 1);
        assert_eq!(Refusal::ShardFull.status(), 503);
        assert_eq!(Refusal::AddressFull.status(), 429);
    }

    #[test]
    fn sources_with_no_slot_are_forgotten() {
        let slots = small();
        let a = slots.admit(v4(1)).unwrap();
        let b = slots.admit(v4(1)).unwrap();
        assert_eq!(slots.sources(), 1);
        slots.release(a);
        slots.release(b);
        assert_eq!((slots.sources(), slots.live()), (0, 0));
        // A stray release changes nothing.
        slots.release(a);
        assert_eq!(slots.live(), 0);
    }

    #[test]
    fn an_ipv6_slash_64_is_one_source_and_mapped_ipv4_is_ipv4() {
        let slots = small();
        let host = |last: u16| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, last));
        for i in 0..3 {
            slots.admit(host(i)).unwrap();
        }
        assert_eq!(slots.admit(host(99)), Err(Refusal::AddressFull));
        let other = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1));
        assert!(slots.admit(other).is_ok());
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped());
        assert_eq!(Source::of(mapped), Source::of(v4(7)));
    }

    #[test]
    fn the_head_timeout_is_shortened_while_half_the_slots_are_taken() {
        let slots = small();
        let mut taken = Vec::new();
        for i in 0..3 {
            taken.push(slots.admit(v4(i)).unwrap());
        }
        assert_eq!(slots.head_timeout(), Duration::from_secs(10));
        taken.push(slots.admit(v4(3)).unwrap());
        assert_eq!(slots.head_timeout(), Duration::from_secs(2));
        slots.release(taken.pop().unwrap());
        assert_eq!(slots.head_timeout(), Duration::from_secs(10));
        assert!(slots.recheck_interval() <= Duration::from_secs(2));
    }
}
