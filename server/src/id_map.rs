//! Tables keyed by ids the server chose (event-loop tokens, UDP connection ids) hash their keys
//! with one multiplication instead of SipHash.
//!
//! A peer never chooses a key that goes into these tables (it can only name one to look up), so
//! there is nothing to flood them with; and they are looked up once per message delivered, where
//! SipHash showed in profiles (about 4 % of the server's CPU echoing 64-byte frames over TCP).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by an id the server chose.
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// Fibonacci hashing of an integer: spreads sequential ids over the table's buckets and its
/// control bytes (which hashbrown takes from the top bits).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by tokens and connection ids (each hashes as one integer); correct all the same.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use mio::Token;

    use super::*;

    #[test]
    fn sequential_tokens_spread_over_the_top_bits() {
        let mut tops = std::collections::HashSet::new();
        for t in 0..1024usize {
            let mut h = IdHasher::default();
            h.write_usize(t);
            tops.insert(h.finish() >> 57);
        }
        // hashbrown's 7-bit control bytes: sequential keys must not all share one.
        assert!(tops.len() > 100, "{}", tops.len());
        let mut map: IdMap<Token, usize> = IdMap::default();
        for t in 0..1000 {
            map.insert(Token(t), t);
        }
        assert!((0..1000).all(|t| map[&Token(t)] == t));
    }
}
