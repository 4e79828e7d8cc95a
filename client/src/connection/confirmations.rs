//! The client's side of confirmed delivery (docs/PROTOCOL.md section 5.9): which delivery numbers
//! have reached the application, so that a Message the server sends again after a break (it came
//! before the break too) is confirmed but not delivered twice, and the Ack that tells the server
//! what it may forget.

use std::collections::VecDeque;
use std::time::Duration;

use framewire_protocol::session::Instant;

/// How far above `through` numbers are remembered: more than the server keeps (1,000), so a
/// number the server could still send again is never forgotten.
const AHEAD: usize = 1024;

/// An Ack goes at most this long after the first number it confirms was delivered...
pub(super) const ACK_DELAY: Duration = Duration::from_millis(50);

/// ...or at once when this many are unconfirmed: a steady stream costs one Ack per 32 messages, and
/// the server keeps few.
const ACK_EVERY: u32 = 32;

/// Delivery numbers delivered so far, in one session.
#[derive(Debug, Default)]
pub(super) struct Confirmations {
    /// Every number up to and including this one is settled (delivered, or never coming).
    through: u32,
    /// `seen[i]`: number `through + 1 + i` was delivered (numbers arrive out of order over UDP,
    /// on different channels). Never ends with `false`, at most [`AHEAD`] long.
    seen: VecDeque<bool>,
    /// The `through` of the last Ack sent.
    acked: u32,
    /// When the oldest delivered number not yet confirmed was delivered.
    unacked_since: Option<Instant>,
    /// Messages that came again and were not delivered twice.
    duplicates: u64,
}

impl Confirmations {
    /// Message number `n` arrived: whether to deliver it (it is new). A number that would lie
    /// beyond what is remembered moves `through` up to make room: the server cannot send again
    /// what lies that far behind its newest.
    pub(super) fn arrived(&mut self, n: u32, now: Instant) -> bool {
        let ahead = n.wrapping_sub(self.through);
        // 0 or "behind" in wrapping order: settled already.
        if ahead == 0 || i32::try_from(ahead).is_err() {
            self.duplicates += 1;
            return false;
        }
        let mut at = usize::try_from(ahead - 1).unwrap_or(usize::MAX);
        if at >= AHEAD {
            let skip = at + 1 - AHEAD;
            self.pass(skip);
            at = AHEAD - 1;
        }
        if self.seen.len() <= at {
            self.seen.resize(at + 1, false);
        }
        if std::mem::replace(&mut self.seen[at], true) {
            self.duplicates += 1;
            return false;
        }
        self.advance();
        if self.through != self.acked {
            self.unacked_since.get_or_insert(now);
        }
        true
    }

    /// The server's Ack: nothing up to `through` will come (again).
    pub(super) fn settle(&mut self, through: u32) {
        let ahead = through.wrapping_sub(self.through);
        if ahead != 0 && i32::try_from(ahead).is_ok() {
            self.pass(usize::try_from(ahead).unwrap_or(usize::MAX));
            // The server knows these are settled: no need to confirm them.
            if i32::try_from(self.through.wrapping_sub(self.acked)).is_ok() {
                self.acked = self.through;
                self.unacked_since = None;
            }
            self.advance();
        }
    }

    /// The `through` to confirm at `now`, if it moved since the last Ack and [`ACK_DELAY`] has
    /// passed or [`ACK_EVERY`] numbers wait; [`Confirmations::acked`] once the Ack is sent.
    pub(super) fn ack_due(&self, now: Instant) -> Option<u32> {
        let waiting = self.through.wrapping_sub(self.acked);
        let late = self.unacked_since.is_some_and(|t| now >= t + ACK_DELAY);
        (waiting != 0 && (late || waiting >= ACK_EVERY)).then_some(self.through)
    }

    /// When an Ack will be due if nothing more arrives.
    pub(super) fn next_ack(&self) -> Option<Instant> {
        self.unacked_since.map(|t| t + ACK_DELAY)
    }

    pub(super) fn acked(&mut self, through: u32) {
        self.acked = through;
        self.unacked_since = None;
    }

    /// A new session (the server did not resume the old one): numbering starts again.
    pub(super) fn reset(&mut self) {
        let duplicates = self.duplicates;
        *self = Self {
            duplicates,
            ..Self::default()
        };
    }

    pub(super) fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Moves `through` up by `n`, whatever was seen.
    fn pass(&mut self, n: usize) {
        let dropped = n.min(self.seen.len());
        self.seen.drain(..dropped);
        // `n` is below 2^31 here (callers check the wrapping distance).
        self.through = self
            .through
            .wrapping_add(u32::try_from(n).unwrap_or(u32::MAX));
    }

    /// Moves `through` over the numbers seen without a gap.
    fn advance(&mut self) {
        while self.seen.front() == Some(&true) {
            self.seen.pop_front();
            self.through = self.through.wrapping_add(1);
        }
        while self.seen.back() == Some(&false) {
            self.seen.pop_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Instant = Instant::ZERO;

    fn later() -> Instant {
        T0 + ACK_DELAY
    }

    #[test]
    fn in_order_numbers_are_delivered_once_and_confirmed() {
        let mut c = Confirmations::default();
        assert_eq!(c.ack_due(later()), None);
        assert!(c.arrived(1, T0) && c.arrived(2, T0));
        assert_eq!(c.ack_due(T0), None, "not yet: more may come");
        assert_eq!(c.next_ack(), Some(later()));
        assert_eq!(c.ack_due(later()), Some(2));
        c.acked(2);
        assert_eq!((c.ack_due(later()), c.next_ack()), (None, None));
        // Sent again after a break: confirmed, not delivered.
        assert!(!c.arrived(1, T0) && !c.arrived(2, T0));
        assert_eq!(c.next_ack(), None, "nothing new to confirm");
        assert!(c.arrived(3, T0));
        assert_eq!((c.ack_due(later()), c.duplicates()), (Some(3), 2));
    }

    #[test]
    fn a_steady_stream_is_confirmed_every_32_messages() {
        let mut c = Confirmations::default();
        for n in 1..ACK_EVERY {
            assert!(c.arrived(n, T0));
            assert_eq!(c.ack_due(T0), None);
        }
        assert!(c.arrived(ACK_EVERY, T0));
        assert_eq!(c.ack_due(T0), Some(ACK_EVERY));
    }

    #[test]
    fn out_of_order_numbers_wait_for_the_gap() {
        let mut c = Confirmations::default();
        assert!(c.arrived(2, T0) && c.arrived(4, T0));
        assert_eq!(c.ack_due(later()), None, "1 has not come");
        assert!(!c.arrived(4, T0));
        assert!(c.arrived(1, T0));
        assert_eq!(c.ack_due(later()), Some(2));
        assert!(c.arrived(3, T0));
        assert_eq!(c.ack_due(later()), Some(4));
        assert!(c.seen.is_empty());
    }

    #[test]
    fn the_servers_ack_settles_numbers_that_will_not_come() {
        let mut c = Confirmations::default();
        assert!(c.arrived(5, T0));
        // After a resume: 1..=3 were pushed out by the server's bound.
        c.settle(3);
        assert_eq!(c.ack_due(later()), None, "4 may still come");
        assert!(c.arrived(4, T0));
        assert_eq!(c.ack_due(later()), Some(5));
        // An old Ack changes nothing.
        c.settle(1);
        assert_eq!(c.ack_due(later()), Some(5));
        assert!(!c.arrived(5, T0));
    }

    #[test]
    fn a_number_far_ahead_moves_the_window_instead_of_growing_it() {
        let mut c = Confirmations::default();
        assert!(c.arrived(2, T0));
        assert!(c.arrived(5000, T0));
        assert!(c.seen.len() <= AHEAD);
        assert!(!c.arrived(2, T0), "behind the window now: settled");
        assert!(c.arrived(4990, T0));
    }

    #[test]
    fn numbers_wrap_and_a_new_session_starts_again() {
        let mut c = Confirmations {
            through: u32::MAX - 1,
            acked: u32::MAX - 1,
            ..Confirmations::default()
        };
        assert!(c.arrived(u32::MAX, T0) && c.arrived(0, T0) && c.arrived(1, T0));
        assert_eq!(c.ack_due(later()), Some(1));
        assert!(!c.arrived(u32::MAX - 5, T0));
        c.reset();
        assert!(c.arrived(1, T0), "a new session numbers from 1 again");
        assert_eq!(c.duplicates(), 1, "the count is the connection's");
    }
}
