//! Which packet numbers a sealed session has already opened: the largest, and a window of the 64
//! before it. Checked before a datagram is decrypted (so a replay costs no decryption) and moved
//! only after it opened (so a forgery cannot move it).

/// Packet numbers below the largest received that the window still tells apart.
pub const REPLAY_WINDOW: u64 = 64;

/// The packet numbers (counted from the session's start, wraps included) already received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    /// The largest received, plus one (0: none yet).
    top: u64,
    /// Bit `n`: packet `top - 1 - n` was received.
    bits: u64,
}

impl ReplayWindow {
    /// The largest packet number received, if any.
    pub fn largest(&self) -> Option<u64> {
        self.top.checked_sub(1)
    }

    /// Whether `pn` may be new: above the largest, or within the window and not yet seen.
    pub fn may_accept(&self, pn: u64) -> bool {
        if pn >= self.top {
            return true;
        }
        let back = self.top - 1 - pn;
        back < REPLAY_WINDOW && self.bits & (1 << back) == 0
    }

    /// Records `pn` as received (call only once it opened).
    pub fn accept(&mut self, pn: u64) {
        if pn >= self.top {
            let shift = pn + 1 - self.top;
            self.bits = if shift >= REPLAY_WINDOW {
                0
            } else {
                self.bits << shift
            };
            self.top = pn + 1;
        }
        let back = self.top - 1 - pn;
        if back < REPLAY_WINDOW {
            self.bits |= 1 << back;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_packet_is_taken_once_and_one_too_old_never() {
        let mut w = ReplayWindow::default();
        assert!(w.may_accept(0));
        w.accept(0);
        assert!(!w.may_accept(0));
        w.accept(100);
        assert!(w.may_accept(99) && w.may_accept(37));
        assert!(!w.may_accept(36), "64 behind the largest: too old to tell");
        w.accept(99);
        assert!(!w.may_accept(99) && !w.may_accept(100));
        assert_eq!(w.largest(), Some(100));
    }

    proptest! {
        /// Against a set of everything received: never a second acceptance, and every packet
        /// within the window that was not received is still acceptable.
        #[test]
        fn the_window_agrees_with_a_set_of_what_was_received(pns in proptest::collection::vec(0u64..300, 1..200)) {
            let mut w = ReplayWindow::default();
            let mut seen = std::collections::BTreeSet::new();
            for pn in pns {
                if w.may_accept(pn) {
                    prop_assert!(!seen.contains(&pn), "{pn} accepted twice");
                    w.accept(pn);
                    seen.insert(pn);
                } else {
                    let largest = *seen.iter().next_back().unwrap();
                    prop_assert!(seen.contains(&pn) || largest - pn >= REPLAY_WINDOW);
                }
            }
        }
    }
}
