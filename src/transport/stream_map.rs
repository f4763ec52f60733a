//! Hash maps keyed by stream id, with a hasher made for them.
//!
//! A session looks up its per-stream state (outbound queues, subscriptions, incoming
//! streams) several times per wake-up, for every connection. The standard library's SipHash
//! costs more than the rest of such a lookup; a stream id is a single integer, so one folded
//! 64×64→128-bit multiply spreads it well enough. The multiply is keyed with a random
//! per-process seed, so a peer choosing its stream ids cannot aim them at one bucket.

use super::StreamId;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// A map from stream id to `V`.
pub type StreamMap<V> = HashMap<StreamId, V, StreamIdHash>;

/// Builds [`StreamIdHasher`]s sharing the process's seed.
#[derive(Clone, Copy, Debug)]
pub struct StreamIdHash {
    seed: u64,
}

impl Default for StreamIdHash {
    fn default() -> Self {
        static SEED: OnceLock<u64> = OnceLock::new();
        Self {
            seed: *SEED.get_or_init(rand::random::<u64>),
        }
    }
}

impl BuildHasher for StreamIdHash {
    type Hasher = StreamIdHasher;

    fn build_hasher(&self) -> StreamIdHasher {
        StreamIdHasher { state: self.seed }
    }
}

/// A hasher for integer keys: each written integer is folded into the state with one
/// keyed multiply.
#[derive(Clone, Copy, Debug)]
pub struct StreamIdHasher {
    state: u64,
}

/// An odd constant with well-mixed bits (the golden ratio's fraction, as in Fibonacci hashing).
const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

fn fold(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

impl Hasher for StreamIdHasher {
    fn write_u64(&mut self, value: u64) {
        self.state = fold(self.state ^ value, MULTIPLIER);
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by integer keys; kept correct for any other key type.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn finish(&self) -> u64 {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn behaves_as_a_map() {
        let mut map: StreamMap<&str> = StreamMap::default();
        map.insert(0, "a");
        map.insert(4, "b");
        assert_eq!(map.insert(4, "c"), Some("b"));
        assert_eq!(map.get(&0), Some(&"a"));
        assert_eq!(map.remove(&4), Some("c"));
        assert!(!map.contains_key(&4));
    }

    #[test]
    fn ids_of_one_kind_spread_over_the_low_bits() {
        // Stream ids of one kind step by 4; their hashes must not share low bits, which
        // hashbrown uses to pick a bucket.
        let build = StreamIdHash::default();
        let buckets: HashSet<u64> = (0..256u64)
            .map(|i| build.hash_one(i * 4 + 3) & 255)
            .collect();
        assert!(
            buckets.len() > 130,
            "only {} of 256 buckets used",
            buckets.len()
        );
    }
}
