//! A hierarchical timing wheel: insert and cancel in O(1), the next deadline in O(levels), for the
//! timers of every connection and session of an event loop (the design of tokio's
//! `runtime/time/wheel`).
//!
//! Time is counted in ticks of 1 ms. Level 0 has 64 slots of 1 tick, level 1 64 slots of 64 ticks,
//! and so on over 6 levels (2^36 ms, about two years; later deadlines are clamped). A timer sits at
//! the level of the highest bit in which its deadline differs from the wheel's current time, so
//! every timer of a lower level expires before any of a higher one, and each level's 64-bit
//! occupancy mask finds its next slot at once. When a higher-level slot comes due, its timers move
//! down. Deadlines are rounded up to the tick: a timer never fires early, and at most a tick late.
//!
//! The owner of a timer keeps its [`TimerHandle`] to cancel or move it; the wheel keeps each
//! timer's key, to say whose timer fired.

use std::num::NonZeroU32;

use framewire_protocol::session::Instant;

const LEVELS: usize = 6;
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
const MAX_TICKS: u64 = (1 << (SLOT_BITS * LEVELS as u32)) - 1;
const TICK_MICROS: u64 = 1000;
const NIL: u32 = u32::MAX;

/// Names a timer in the wheel, for cancelling it. A handle whose timer has fired or been
/// cancelled names nothing (its generation no longer matches), so a stale one cancels nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerHandle {
    index: NonZeroU32,
    generation: u32,
}

impl TimerHandle {
    fn index(self) -> usize {
        self.index.get() as usize - 1
    }
}

#[derive(Debug)]
struct Entry<K> {
    key: Option<K>,
    /// Bumped each time the entry is freed.
    generation: u32,
    /// The deadline, in ticks.
    at: u64,
    /// Where it is linked: a level and slot, or the list of timers already due.
    place: Place,
    prev: u32,
    next: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Slot(u8, u8),
    Due,
    Free,
}

#[derive(Debug)]
struct Level {
    heads: [u32; SLOTS],
    occupied: u64,
}

/// The wheel.
#[derive(Debug)]
pub(crate) struct TimerWheel<K> {
    /// The time the wheel has advanced to, in ticks.
    elapsed: u64,
    levels: [Level; LEVELS],
    entries: Vec<Entry<K>>,
    free: u32,
    /// Timers whose deadline has passed, in the order found.
    due: u32,
    due_tail: u32,
    len: usize,
}

fn ticks_ceil(t: Instant) -> u64 {
    t.as_micros().div_ceil(TICK_MICROS).min(MAX_TICKS)
}

/// The level a deadline belongs at, relative to the current time.
fn level_for(elapsed: u64, at: u64) -> usize {
    let masked = (elapsed ^ at) | (SLOTS as u64 - 1);
    let significant = 63 - masked.leading_zeros() as usize;
    (significant / SLOT_BITS as usize).min(LEVELS - 1)
}

fn slot_for(at: u64, level: usize) -> usize {
    ((at >> (level as u32 * SLOT_BITS)) & (SLOTS as u64 - 1)) as usize
}

impl<K: Copy> Default for TimerWheel<K> {
    fn default() -> Self {
        Self {
            elapsed: 0,
            levels: std::array::from_fn(|_| Level {
                heads: [NIL; SLOTS],
                occupied: 0,
            }),
            entries: Vec::new(),
            free: NIL,
            due: NIL,
            due_tail: NIL,
            len: 0,
        }
    }
}

impl<K: Copy> TimerWheel<K> {
    /// Timers set.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Sets a timer for `key` at `deadline`.
    pub(crate) fn insert(&mut self, key: K, deadline: Instant) -> TimerHandle {
        let at = ticks_ceil(deadline);
        let index = if self.free == NIL {
            self.entries.push(Entry {
                key: None,
                generation: 0,
                at,
                place: Place::Free,
                prev: NIL,
                next: NIL,
            });
            self.entries.len() - 1
        } else {
            let i = self.free as usize;
            self.free = self.entries[i].next;
            i
        };
        let e = &mut self.entries[index];
        e.key = Some(key);
        e.at = at;
        let generation = e.generation;
        self.len += 1;
        self.place(index as u32);
        TimerHandle {
            index: NonZeroU32::new(index as u32 + 1).expect("index + 1 is not 0"),
            generation,
        }
    }

    /// Cancels a timer; returns its key if it was still set.
    pub(crate) fn cancel(&mut self, handle: TimerHandle) -> Option<K> {
        let i = handle.index();
        let e = self.entries.get(i)?;
        if e.place == Place::Free || e.generation != handle.generation {
            return None;
        }
        self.unlink(i as u32);
        self.release(i as u32)
    }

    /// Returns entry `i` (already unlinked) to the free list, and its key.
    fn release(&mut self, i: u32) -> Option<K> {
        let free = self.free;
        let e = &mut self.entries[i as usize];
        let key = e.key.take();
        e.place = Place::Free;
        e.generation = e.generation.wrapping_add(1);
        e.next = free;
        self.free = i;
        self.len -= 1;
        key
    }

    /// Cancels the timer in `slot` (if any) and, with a deadline, sets a new one there.
    pub(crate) fn reset(
        &mut self,
        slot: &mut Option<TimerHandle>,
        key: K,
        deadline: Option<Instant>,
    ) {
        if let Some(h) = slot.take() {
            self.cancel(h);
        }
        *slot = deadline.map(|d| self.insert(key, d));
    }

    /// Links entry `i` where its deadline says: the due list if it has passed, else its slot.
    fn place(&mut self, i: u32) {
        let at = self.entries[i as usize].at;
        if at <= self.elapsed {
            self.entries[i as usize].place = Place::Due;
            self.entries[i as usize].prev = self.due_tail;
            self.entries[i as usize].next = NIL;
            if self.due_tail == NIL {
                self.due = i;
            } else {
                self.entries[self.due_tail as usize].next = i;
            }
            self.due_tail = i;
            return;
        }
        let level = level_for(self.elapsed, at);
        let slot = slot_for(at, level);
        let head = self.levels[level].heads[slot];
        let e = &mut self.entries[i as usize];
        e.place = Place::Slot(level as u8, slot as u8);
        e.prev = NIL;
        e.next = head;
        if head != NIL {
            self.entries[head as usize].prev = i;
        }
        self.levels[level].heads[slot] = i;
        self.levels[level].occupied |= 1 << slot;
    }

    fn unlink(&mut self, i: u32) {
        let (place, prev, next) = {
            let e = &self.entries[i as usize];
            (e.place, e.prev, e.next)
        };
        if next != NIL {
            self.entries[next as usize].prev = prev;
        }
        match place {
            Place::Slot(level, slot) => {
                let (level, slot) = (level as usize, slot as usize);
                if prev == NIL {
                    self.levels[level].heads[slot] = next;
                    if next == NIL {
                        self.levels[level].occupied &= !(1 << slot);
                    }
                } else {
                    self.entries[prev as usize].next = next;
                }
            }
            Place::Due => {
                if prev == NIL {
                    self.due = next;
                } else {
                    self.entries[prev as usize].next = next;
                }
                if next == NIL {
                    self.due_tail = prev;
                }
            }
            Place::Free => {}
        }
    }

    /// The lowest occupied level's next slot, as (level, slot, the tick the slot starts at).
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        for (level, l) in self.levels.iter().enumerate() {
            if l.occupied == 0 {
                continue;
            }
            let shift = level as u32 * SLOT_BITS;
            let current = slot_for(self.elapsed, level);
            // Slots at or after the current one; a timer is never behind the current time.
            let ahead = l.occupied.rotate_right(current as u32);
            let slot = (current + ahead.trailing_zeros() as usize) % SLOTS;
            let level_range = 1u64 << (shift + SLOT_BITS);
            let base = self.elapsed & !(level_range - 1);
            let mut start = base + ((slot as u64) << shift);
            if start < self.elapsed & !((1u64 << shift) - 1) {
                start += level_range;
            }
            return Some((level, slot, start.max(self.elapsed)));
        }
        None
    }

    /// When the next timer may fire (for the event loop's sleep): exact at level 0, the start of
    /// the slot at higher levels (then the timers move down and the loop sleeps again).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        if self.due != NIL {
            return Some(Instant::from_micros(self.elapsed * TICK_MICROS));
        }
        self.next_slot()
            .map(|(_, _, start)| Instant::from_micros(start * TICK_MICROS))
    }

    /// The key of a timer whose deadline is at or before `now`, removing it; `None` when no timer
    /// is due.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<K> {
        let now_ticks = now.as_micros() / TICK_MICROS;
        loop {
            if self.due != NIL {
                let i = self.due;
                self.unlink(i);
                return self.release(i);
            }
            let (level, slot, start) = self.next_slot()?;
            if start > now_ticks {
                return None;
            }
            // Advance to the slot and move its timers: to the due list, or down a level.
            self.elapsed = start;
            let mut i = self.levels[level].heads[slot];
            self.levels[level].heads[slot] = NIL;
            self.levels[level].occupied &= !(1 << slot);
            while i != NIL {
                let next = self.entries[i as usize].next;
                self.place(i);
                i = next;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn fires_at_the_deadline_never_before() {
        let mut w = TimerWheel::default();
        w.insert('a', ms(5));
        w.insert('b', Instant::from_micros(4_001));
        w.insert('c', ms(70));
        w.insert('d', ms(5_000));
        assert_eq!(w.pop_due(ms(4)), None);
        assert_eq!(
            w.pop_due(Instant::from_micros(4_999)),
            None,
            "b rounds up to 5 ms"
        );
        let mut at5 = vec![w.pop_due(ms(5)), w.pop_due(ms(5))];
        at5.sort();
        assert_eq!(at5, vec![Some('a'), Some('b')]);
        assert_eq!(w.pop_due(ms(69)), None);
        assert_eq!(w.next_deadline(), Some(ms(70)));
        assert_eq!(w.pop_due(ms(70)), Some('c'));
        assert_eq!(w.pop_due(ms(4_999)), None);
        assert_eq!(w.pop_due(ms(5_000)), Some('d'));
        assert_eq!(w.len(), 0);
        assert_eq!(w.next_deadline(), None);
    }

    #[test]
    fn cancel_and_reset() {
        let mut w = TimerWheel::default();
        let a = w.insert(1, ms(10));
        let mut slot = Some(w.insert(2, ms(20)));
        assert_eq!(w.cancel(a), Some(1));
        assert_eq!(w.cancel(a), None, "twice");
        w.reset(&mut slot, 2, Some(ms(30)));
        assert_eq!(w.pop_due(ms(25)), None);
        assert_eq!(w.pop_due(ms(30)), Some(2));
        w.reset(&mut slot, 2, None);
        assert!(slot.is_none());
        // A handle whose timer fired names nothing, even once its entry holds another timer.
        let fired = w.insert(4, ms(40));
        assert_eq!(w.pop_due(ms(40)), Some(4));
        let reused = w.insert(5, ms(45));
        assert_eq!(w.cancel(fired), None);
        assert_eq!(w.cancel(reused), Some(5));
        // A deadline already past fires at once.
        w.pop_due(ms(100));
        w.insert(3, ms(50));
        assert_eq!(w.pop_due(ms(100)), Some(3));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64),
        Cancel(usize),
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..200_000).prop_map(Op::Insert),
            1 => any::<usize>().prop_map(Op::Cancel),
            3 => (0u64..20_000).prop_map(Op::Advance),
        ]
    }

    proptest! {
        /// Against a sorted map: every timer fires once, not before its deadline, and no later
        /// than the first pop at or after it (deadlines in whole milliseconds here).
        #[test]
        fn agrees_with_a_sorted_map(ops in prop::collection::vec(op(), 1..300)) {
            let mut w = TimerWheel::default();
            let mut model: BTreeMap<u32, u64> = BTreeMap::new();
            let mut handles: Vec<(u32, TimerHandle)> = Vec::new();
            let mut now = 0u64;
            let mut next_key = 0u32;
            for op in ops {
                match op {
                    Op::Insert(after) => {
                        let at = now + after;
                        let h = w.insert(next_key, ms(at));
                        model.insert(next_key, at);
                        handles.push((next_key, h));
                        next_key += 1;
                    }
                    Op::Cancel(i) if !handles.is_empty() => {
                        let (key, h) = handles.swap_remove(i % handles.len());
                        prop_assert_eq!(w.cancel(h), model.remove(&key).map(|_| key));
                    }
                    Op::Cancel(_) => {}
                    Op::Advance(by) => {
                        now += by;
                        let mut fired = Vec::new();
                        while let Some(k) = w.pop_due(ms(now)) {
                            fired.push(k);
                        }
                        let mut expected: Vec<u32> =
                            model.iter().filter(|&(_, &at)| at <= now).map(|(&k, _)| k).collect();
                        fired.sort_unstable();
                        expected.sort_unstable();
                        prop_assert_eq!(&fired, &expected);
                        for k in &fired {
                            model.remove(k);
                        }
                        handles.retain(|(k, _)| model.contains_key(k));
                    }
                }
                prop_assert_eq!(w.len(), model.len());
                if let (Some(next), Some(&first)) = (w.next_deadline(), model.values().min()) {
                    prop_assert!(next <= ms(first.max(now)), "{next:?} after {first}");
                }
            }
        }
    }
}
