//! Each message from another node once. NATS delivers a message once to each of a connection's
//! subscriptions that match it, and a node whose sessions hold overlapping filters (`room/+/chat`
//! and `room/1/+`) holds overlapping subscriptions; the envelope's origin and number tell the
//! copies apart. Per origin a window of the last [`WINDOW`] numbers is kept, far more than a copy
//! can lag behind the first (each subscription buffers at most 8,192 messages), and
//! at most [`MAX_ORIGINS`] origins (a node started again is a new origin).

use std::collections::{HashMap, VecDeque};

/// Numbers remembered behind the highest one heard from an origin.
pub const WINDOW: u64 = 65_536;
const WORDS: usize = (WINDOW / 64) as usize;
/// Origins remembered; the one heard from first is forgotten beyond.
pub const MAX_ORIGINS: usize = 1_024;

#[derive(Debug)]
struct Window {
    highest: u64,
    bits: Box<[u64; WORDS]>,
}

impl Window {
    fn bit(seq: u64) -> (usize, u64) {
        let at = seq % WINDOW;
        ((at / 64) as usize, 1 << (at % 64))
    }

    fn set(&mut self, seq: u64) {
        let (w, b) = Self::bit(seq);
        self.bits[w] |= b;
    }

    fn clear(&mut self, seq: u64) {
        let (w, b) = Self::bit(seq);
        self.bits[w] &= !b;
    }

    fn is_set(&self, seq: u64) -> bool {
        let (w, b) = Self::bit(seq);
        self.bits[w] & b != 0
    }
}

/// The messages heard, by origin.
#[derive(Debug, Default)]
pub struct Seen {
    windows: HashMap<u64, Window>,
    order: VecDeque<u64>,
}

impl Seen {
    /// Whether message `seq` of `origin` is heard for the first time (and now remembered). One
    /// older than the window is taken for a copy: its first came long ago.
    pub fn first_time(&mut self, origin: u64, seq: u64) -> bool {
        if !self.windows.contains_key(&origin) {
            if self.order.len() >= MAX_ORIGINS
                && let Some(old) = self.order.pop_front()
            {
                self.windows.remove(&old);
            }
            self.order.push_back(origin);
        }
        let w = self.windows.entry(origin).or_insert_with(|| Window {
            highest: 0,
            bits: Box::new([0; WORDS]),
        });
        if seq > w.highest {
            if seq - w.highest >= WINDOW {
                w.bits.fill(0);
            } else {
                for s in w.highest + 1..seq {
                    w.clear(s);
                }
            }
            w.highest = seq;
            w.set(seq);
            return true;
        }
        if w.highest - seq >= WINDOW || w.is_set(seq) {
            return false;
        }
        w.set(seq);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn copies_are_told_apart_by_origin_and_number() {
        let mut s = Seen::default();
        assert!(s.first_time(7, 1));
        assert!(!s.first_time(7, 1));
        assert!(s.first_time(8, 1), "another origin");
        assert!(s.first_time(7, 3));
        assert!(s.first_time(7, 2), "late, but the first of its number");
        assert!(!s.first_time(7, 2));
        assert!(s.first_time(7, 3 + WINDOW), "a jump clears the window");
        assert!(!s.first_time(7, 3), "too old to tell: a copy");
        assert!(s.first_time(7, 4 + WINDOW));
    }

    proptest! {
        #[test]
        fn each_number_once_however_copies_interleave(
            n in 1u64..500,
            copies in proptest::collection::vec((0u64..500, 0usize..3), 0..400),
        ) {
            // Every message 1..=n arrives in order on one subscription; copies of some arrive
            // later, out of order, on others.
            let mut s = Seen::default();
            let mut taken = Vec::new();
            let mut late = copies.iter().filter(|(m, _)| *m >= 1 && *m <= n).peekable();
            for m in 1..=n {
                if s.first_time(1, m) {
                    taken.push(m);
                }
                while let Some(&&(c, _)) = late.peek() {
                    if c > m {
                        break;
                    }
                    late.next();
                    if s.first_time(1, c) {
                        taken.push(c);
                    }
                }
            }
            taken.sort_unstable();
            prop_assert_eq!(taken, (1..=n).collect::<Vec<_>>());
        }
    }
}
