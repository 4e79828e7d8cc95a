//! Deadlines by owner: each owner has at most one, and the earliest is found at once.
//!
//! An ordered set of `(deadline, owner)` with a map from owner to its deadline, so setting,
//! moving and cancelling an owner's deadline are O(log n) with nothing kept by the owner. The hub
//! uses it for its own timers (request deadlines, long polls, visibility, parked sessions), whose
//! owners are entries of its tables; the event loop's per-connection timers live in the
//! [`TimerWheel`](crate::timer_wheel::TimerWheel).

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

use framewire_protocol::session::Instant;

#[derive(Debug)]
pub(crate) struct Deadlines<K> {
    ordered: BTreeSet<(Instant, K)>,
    by_owner: HashMap<K, Instant>,
}

impl<K> Default for Deadlines<K> {
    fn default() -> Self {
        Self {
            ordered: BTreeSet::new(),
            by_owner: HashMap::new(),
        }
    }
}

impl<K: Copy + Ord + Hash> Deadlines<K> {
    /// Sets (or, with `None`, cancels) the deadline of `owner`.
    pub(crate) fn set(&mut self, owner: K, deadline: Option<Instant>) {
        if let Some(old) = self.by_owner.remove(&owner) {
            self.ordered.remove(&(old, owner));
        }
        if let Some(deadline) = deadline {
            self.ordered.insert((deadline, owner));
            self.by_owner.insert(owner, deadline);
        }
    }

    /// The earliest deadline.
    pub(crate) fn first(&self) -> Option<Instant> {
        self.ordered.first().map(|&(deadline, _)| deadline)
    }

    /// Removes and returns the owner of the earliest deadline, if it is at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<K> {
        let &(deadline, owner) = self.ordered.first()?;
        if deadline > now {
            return None;
        }
        self.ordered.pop_first();
        self.by_owner.remove(&owner);
        Some(owner)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn earliest_first_moves_and_cancels() {
        let t = |ms| Instant::ZERO + Duration::from_millis(ms);
        let mut d = Deadlines::default();
        d.set('a', Some(t(30)));
        d.set('b', Some(t(10)));
        d.set('c', Some(t(20)));
        d.set('b', Some(t(40)));
        d.set('c', None);
        assert_eq!(d.first(), Some(t(30)));
        assert_eq!(d.pop_due(t(29)), None);
        assert_eq!(d.pop_due(t(30)), Some('a'));
        assert_eq!(d.pop_due(t(100)), Some('b'));
        assert_eq!(d.pop_due(t(100)), None);
        assert_eq!(d.first(), None);
    }
}
