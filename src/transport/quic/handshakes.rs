//! Which new connections a shard takes on: the handshakes in flight on the shard and per
//! source IP, and the decision for each client Initial that would start one: accept, answer
//! with a stateless Retry (the client must prove its address before we hold anything for
//! it), or refuse. Sans-IO: time is passed in, so the policy is unit-tested with a fake clock.
//!
//! An address that proved itself (its Initial carried a valid Retry token) is counted apart
//! from unproven ones: spoofed Initials claiming an address can use up that address's
//! unproven share, never the share of the client really there.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// When a client must answer a Retry before we accept its connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RetryMode {
    /// When the shard is busy with unproven handshakes, or the client's IP is.
    #[default]
    Auto,
    /// Every client, before any state is kept for it.
    Always,
    /// Never: a busy shard refuses instead.
    Never,
}

/// The bounds, from the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandshakeLimits {
    pub retry: RetryMode,
    /// Unproven handshakes in flight, or begun within the last second, on a shard before new
    /// clients get a Retry (or, with [`RetryMode::Never`], are refused).
    pub unvalidated: usize,
    /// Unproven handshakes in flight from one IP on a shard: beyond it an unproven Initial
    /// gets a Retry (refused with [`RetryMode::Never`]).
    pub per_ip: usize,
    /// Proven handshakes in flight from one IP on a shard: beyond it a proven Initial is
    /// refused. Larger than `per_ip`: a proven address is a real host, and many clients
    /// share one (a NAT, a campus, a load generator) and connect in bursts.
    pub proven_per_ip: usize,
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        Self {
            retry: RetryMode::Auto,
            unvalidated: 64,
            per_ip: 32,
            proven_per_ip: 256,
        }
    }
}

/// What to do with a client's Initial.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Start the connection; hand the ticket back through [`Handshakes::end`] once its
    /// handshake completed or failed.
    Accept(Ticket),
    /// Answer with a Retry and keep nothing.
    Retry,
    /// Drop it and keep nothing.
    Refuse(Refusal),
}

/// Why an Initial was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The shard has too many unproven handshakes and Retry is off.
    ShardBusy,
    /// Its IP has too many handshakes in flight on this shard.
    PerIp,
}

/// One handshake in flight, counted until it is handed back.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a ticket must be handed back to Handshakes::end"]
pub struct Ticket {
    ip: IpAddr,
    validated: bool,
}

#[derive(Default)]
struct PerIp {
    unvalidated: usize,
    validated: usize,
}

/// The handshakes in flight on one shard.
pub struct Handshakes {
    limits: HandshakeLimits,
    unvalidated: usize,
    /// Unproven handshakes begun since `window_start` (a one-second window).
    begun: usize,
    window_start: Instant,
    per_ip: HashMap<IpAddr, PerIp>,
}

/// How long the window of handshakes begun lasts.
const WINDOW: Duration = Duration::from_secs(1);

impl Handshakes {
    pub fn new(limits: HandshakeLimits, now: Instant) -> Self {
        Self {
            limits,
            unvalidated: 0,
            begun: 0,
            window_start: now,
            per_ip: HashMap::new(),
        }
    }

    /// Decides on an Initial from `ip`, `validated` if it carried a valid Retry token.
    pub fn admit(&mut self, ip: IpAddr, validated: bool, now: Instant) -> Admission {
        if now.saturating_duration_since(self.window_start) >= WINDOW {
            self.window_start = now;
            self.begun = 0;
        }
        let limits = self.limits;
        let from_ip = self.per_ip.get(&ip);
        if validated {
            if from_ip.is_some_and(|p| p.validated >= limits.proven_per_ip) {
                return Admission::Refuse(Refusal::PerIp);
            }
        } else {
            let ip_busy = from_ip.is_some_and(|p| p.unvalidated >= limits.per_ip);
            let shard_busy =
                self.unvalidated >= limits.unvalidated || self.begun >= limits.unvalidated;
            match limits.retry {
                RetryMode::Always => return Admission::Retry,
                RetryMode::Auto if ip_busy || shard_busy => return Admission::Retry,
                RetryMode::Never if ip_busy => return Admission::Refuse(Refusal::PerIp),
                RetryMode::Never if shard_busy => return Admission::Refuse(Refusal::ShardBusy),
                _ => {}
            }
            self.unvalidated += 1;
            self.begun += 1;
        }
        let entry = self.per_ip.entry(ip).or_default();
        if validated {
            entry.validated += 1;
        } else {
            entry.unvalidated += 1;
        }
        Admission::Accept(Ticket { ip, validated })
    }

    /// A handshake completed, failed or timed out.
    pub fn end(&mut self, ticket: Ticket) {
        if !ticket.validated {
            self.unvalidated = self.unvalidated.saturating_sub(1);
        }
        if let Some(entry) = self.per_ip.get_mut(&ticket.ip) {
            let count = match ticket.validated {
                true => &mut entry.validated,
                false => &mut entry.unvalidated,
            };
            *count = count.saturating_sub(1);
            if entry.validated == 0 && entry.unvalidated == 0 {
                self.per_ip.remove(&ticket.ip);
            }
        }
    }

    /// Handshakes in flight (proven and unproven).
    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.per_ip
            .values()
            .map(|p| p.validated + p.unvalidated)
            .sum()
    }

    /// Source IPs with a handshake in flight.
    #[cfg(test)]
    pub fn addresses(&self) -> usize {
        self.per_ip.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    fn limits(retry: RetryMode, unvalidated: usize, per_ip: usize) -> HandshakeLimits {
        HandshakeLimits {
            retry,
            unvalidated,
            per_ip,
            proven_per_ip: per_ip + 1,
        }
    }

    fn accept(h: &mut Handshakes, from: IpAddr, validated: bool, now: Instant) -> Ticket {
        match h.admit(from, validated, now) {
            Admission::Accept(ticket) => ticket,
            other => panic!("expected to accept, got {other:?}"),
        }
    }

    #[test]
    fn a_quiet_shard_accepts_and_a_busy_one_asks_for_a_retry_until_handshakes_end() {
        let now = Instant::now();
        let mut h = Handshakes::new(limits(RetryMode::Auto, 3, 10), now);
        let tickets: Vec<Ticket> = (0..3).map(|i| accept(&mut h, ip(i), false, now)).collect();
        assert_eq!(h.admit(ip(9), false, now), Admission::Retry);
        // A client that answered the Retry is accepted however busy the shard is.
        let proven = accept(&mut h, ip(9), true, now);
        assert_eq!(h.in_flight(), 4);
        // Ending handshakes frees the in-flight count, but three began this second.
        for t in tickets {
            h.end(t);
        }
        assert_eq!(h.admit(ip(9), false, now), Admission::Retry);
        let later = now + WINDOW;
        let t = accept(&mut h, ip(9), false, later);
        h.end(t);
        h.end(proven);
        assert_eq!(
            (h.in_flight(), h.addresses()),
            (0, 0),
            "nothing left behind"
        );
    }

    #[test]
    fn one_ip_is_bounded_apart_from_the_others_and_its_proven_clients_apart_from_spoofers() {
        let now = Instant::now();
        let mut h = Handshakes::new(limits(RetryMode::Auto, 100, 2), now);
        let _a = accept(&mut h, ip(1), false, now);
        let _b = accept(&mut h, ip(1), false, now);
        assert_eq!(h.admit(ip(1), false, now), Admission::Retry);
        let _other = accept(&mut h, ip(2), false, now);
        // The proven share of ip(1) (three here) is untouched by its unproven handshakes.
        let _p = accept(&mut h, ip(1), true, now);
        let _q = accept(&mut h, ip(1), true, now);
        let _r = accept(&mut h, ip(1), true, now);
        assert_eq!(h.admit(ip(1), true, now), Admission::Refuse(Refusal::PerIp));
    }

    #[test]
    fn always_retries_every_unproven_initial_and_never_refuses_instead() {
        let now = Instant::now();
        let mut always = Handshakes::new(limits(RetryMode::Always, 100, 100), now);
        assert_eq!(always.admit(ip(1), false, now), Admission::Retry);
        assert_eq!(always.in_flight(), 0, "a Retry keeps nothing");
        let _t = accept(&mut always, ip(1), true, now);

        let mut never = Handshakes::new(limits(RetryMode::Never, 1, 100), now);
        let _t = accept(&mut never, ip(1), false, now);
        assert_eq!(
            never.admit(ip(2), false, now),
            Admission::Refuse(Refusal::ShardBusy)
        );
        let mut never = Handshakes::new(limits(RetryMode::Never, 100, 1), now);
        let _t = accept(&mut never, ip(1), false, now);
        assert_eq!(
            never.admit(ip(1), false, now),
            Admission::Refuse(Refusal::PerIp)
        );
    }
}
