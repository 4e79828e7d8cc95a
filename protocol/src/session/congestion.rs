//! `NewReno` congestion control (RFC 9002 section 7): slow start, congestion avoidance, and one
//! window reduction per round trip of losses.

use super::time::Instant;

#[derive(Debug, Clone)]
pub(crate) struct NewReno {
    window: usize,
    ssthresh: usize,
    min_window: usize,
    datagram: usize,
    /// Packets sent before this time belong to the loss episode already answered.
    recovery_start: Option<Instant>,
    /// Bytes acknowledged in congestion avoidance since the window last grew.
    acked_in_ca: usize,
    /// The window and threshold before the current loss episode's cut, to restore if the loss
    /// proves spurious.
    before_cut: Option<(usize, usize)>,
}

impl NewReno {
    pub(crate) fn new(datagram: usize, initial: usize, min: usize) -> Self {
        Self {
            window: datagram * initial,
            ssthresh: usize::MAX,
            min_window: datagram * min,
            datagram,
            recovery_start: None,
            acked_in_ca: 0,
            before_cut: None,
        }
    }

    pub(crate) fn window(&self) -> usize {
        self.window
    }

    /// Bytes of a packet sent at `sent` were acknowledged.
    pub(crate) fn on_ack(&mut self, sent: Instant, bytes: usize) {
        if self.recovery_start.is_some_and(|r| sent <= r) {
            return;
        }
        if self.window < self.ssthresh {
            self.window += bytes;
        } else {
            self.acked_in_ca += bytes;
            if self.acked_in_ca >= self.window {
                self.acked_in_ca -= self.window;
                self.window += self.datagram;
            }
        }
    }

    /// A packet sent at `sent` was declared lost at `now`.
    pub(crate) fn on_loss(&mut self, sent: Instant, now: Instant) {
        if self.recovery_start.is_some_and(|r| sent <= r) {
            return;
        }
        self.recovery_start = Some(now);
        self.before_cut = Some((self.window, self.ssthresh));
        self.window = (self.window / 2).max(self.min_window);
        self.ssthresh = self.window;
        self.acked_in_ca = 0;
    }
}

impl NewReno {
    /// The loss that started the current episode was spurious (the packet arrived after all):
    /// restore the window and threshold from before the cut, and end the episode.
    pub(crate) fn undo(&mut self) {
        if let Some((window, ssthresh)) = self.before_cut.take() {
            self.window = self.window.max(window);
            self.ssthresh = ssthresh;
            self.recovery_start = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spurious_loss_undoes_its_cut() {
        let mut cc = NewReno::new(1000, 10, 2);
        cc.on_loss(Instant::from_millis(1), Instant::from_millis(5));
        assert_eq!(cc.window(), 5_000);
        cc.undo();
        assert_eq!(cc.window(), 10_000);
        // The episode is over: a real loss cuts again.
        cc.on_loss(Instant::from_millis(6), Instant::from_millis(7));
        assert_eq!(cc.window(), 5_000);
        // Undo only restores what the last cut took.
        cc.undo();
        cc.undo();
        assert_eq!(cc.window(), 10_000);
    }

    #[test]
    fn grows_halves_once_per_episode_and_has_a_floor() {
        let mut cc = NewReno::new(1000, 10, 2);
        cc.on_ack(Instant::from_millis(1), 1000);
        assert_eq!(cc.window(), 11_000, "slow start: +acked bytes");
        cc.on_loss(Instant::from_millis(2), Instant::from_millis(10));
        assert_eq!(cc.window(), 5_500);
        cc.on_loss(Instant::from_millis(3), Instant::from_millis(11));
        assert_eq!(cc.window(), 5_500, "same episode: no second cut");
        cc.on_ack(Instant::from_millis(20), 5_500);
        assert_eq!(
            cc.window(),
            6_500,
            "avoidance: +1 datagram per window acked"
        );
        for i in 0..10 {
            cc.on_loss(
                Instant::from_millis(100 + i * 10),
                Instant::from_millis(101 + i * 10),
            );
        }
        assert_eq!(cc.window(), 2_000);
    }
}
