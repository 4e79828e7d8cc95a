//! `NewReno` congestion control (RFC 9002 section 7): slow start, congestion avoidance, and one
//! window reduction per round trip of losses, with a floor under the cut taken from the rate the
//! path has delivered.
//!
//! Plain `NewReno` reads every loss as congestion, so random loss alone holds it to about
//! `1.22 / sqrt(p)` datagrams per round trip (5 % loss: 5.5), below what a game or a telemetry
//! stream offers on a lossy radio link that has room to spare. As BBR does (and ENet and
//! `GameNetworkingSockets` keep a sending rate rather than a loss-driven window), a cut never takes
//! the window below twice the path's bandwidth-delay product, estimated as the most delivered in
//! any recent round trip times the minimum RTT. A sender on a lossy but idle path keeps its rate;
//! a sender at a real bottleneck still keeps at most one more BDP queued there, whatever the loss.

use core::time::Duration;

use super::time::Instant;

/// Round trips of delivery-rate samples kept: the floor follows the best of them, so it forgets
/// a rate the path no longer delivers after this many round trips.
const RATE_ROUNDS: usize = 8;

/// The most bytes per second delivered in any of the last [`RATE_ROUNDS`] round trips.
#[derive(Debug, Clone, Default)]
struct DeliveryRate {
    round_start: Option<Instant>,
    acked_in_round: u64,
    samples: [u64; RATE_ROUNDS],
    next: usize,
}

impl DeliveryRate {
    /// `bytes` were acknowledged at `now`; a round lasts `round` (the smoothed RTT).
    fn on_ack(&mut self, now: Instant, bytes: usize, round: Duration) {
        let Some(start) = self.round_start else {
            self.round_start = Some(now);
            return;
        };
        self.acked_in_round += bytes as u64;
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= round && !elapsed.is_zero() {
            let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
            self.samples[self.next] = self.acked_in_round.saturating_mul(1_000_000) / micros;
            self.next = (self.next + 1) % RATE_ROUNDS;
            self.round_start = Some(now);
            self.acked_in_round = 0;
        }
    }

    fn bytes_per_second(&self) -> u64 {
        self.samples.iter().copied().max().unwrap_or(0)
    }
}

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
    rate: DeliveryRate,
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
            rate: DeliveryRate::default(),
        }
    }

    pub(crate) fn window(&self) -> usize {
        self.window
    }

    /// Bytes of a packet sent at `sent` were acknowledged at `now`; `smoothed_rtt` is the round
    /// trip the delivery rate is measured over.
    pub(crate) fn on_ack(
        &mut self,
        sent: Instant,
        bytes: usize,
        now: Instant,
        smoothed_rtt: Duration,
    ) {
        self.rate.on_ack(now, bytes, smoothed_rtt);
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

    /// A packet sent at `sent` was declared lost at `now`; `min_rtt` is the path's minimum RTT.
    pub(crate) fn on_loss(&mut self, sent: Instant, now: Instant, min_rtt: Duration) {
        if self.recovery_start.is_some_and(|r| sent <= r) {
            return;
        }
        self.recovery_start = Some(now);
        self.before_cut = Some((self.window, self.ssthresh));
        self.window = (self.window / 2).max(self.floor(min_rtt));
        self.ssthresh = self.window;
        self.acked_in_ca = 0;
    }
}

impl NewReno {
    /// The least a loss may cut the window to: twice the estimated bandwidth-delay product, and
    /// never below the configured minimum.
    fn floor(&self, min_rtt: Duration) -> usize {
        let micros = u64::try_from(min_rtt.as_micros()).unwrap_or(u64::MAX);
        let bdp = self.rate.bytes_per_second().saturating_mul(micros) / 1_000_000;
        usize::try_from(bdp.saturating_mul(2))
            .unwrap_or(usize::MAX)
            .max(self.min_window)
    }

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
        cc.on_loss(
            Instant::from_millis(1),
            Instant::from_millis(5),
            Duration::from_millis(10),
        );
        assert_eq!(cc.window(), 5_000);
        cc.undo();
        assert_eq!(cc.window(), 10_000);
        // The episode is over: a real loss cuts again.
        cc.on_loss(
            Instant::from_millis(6),
            Instant::from_millis(7),
            Duration::from_millis(10),
        );
        assert_eq!(cc.window(), 5_000);
        // Undo only restores what the last cut took.
        cc.undo();
        cc.undo();
        assert_eq!(cc.window(), 10_000);
    }

    #[test]
    fn grows_halves_once_per_episode_and_has_a_floor() {
        let mut cc = NewReno::new(1000, 10, 2);
        cc.on_ack(
            Instant::from_millis(1),
            1000,
            Instant::from_millis(1),
            Duration::from_millis(10),
        );
        assert_eq!(cc.window(), 11_000, "slow start: +acked bytes");
        cc.on_loss(
            Instant::from_millis(2),
            Instant::from_millis(10),
            Duration::from_millis(10),
        );
        assert_eq!(cc.window(), 5_500);
        cc.on_loss(
            Instant::from_millis(3),
            Instant::from_millis(11),
            Duration::from_millis(10),
        );
        assert_eq!(cc.window(), 5_500, "same episode: no second cut");
        cc.on_ack(
            Instant::from_millis(20),
            5_500,
            Instant::from_millis(20),
            Duration::from_secs(1),
        );
        assert_eq!(
            cc.window(),
            6_500,
            "avoidance: +1 datagram per window acked"
        );
        for i in 0..10 {
            cc.on_loss(
                Instant::from_millis(100 + i * 10),
                Instant::from_millis(101 + i * 10),
                Duration::from_millis(10),
            );
        }
        assert_eq!(cc.window(), 2_000);
    }

    #[test]
    fn random_loss_does_not_cut_below_twice_the_delivered_bdp() {
        let mut cc = NewReno::new(1000, 10, 2);
        let rtt = Duration::from_millis(40);
        // 100 datagrams a second acknowledged, one each 10 ms, for a second: 100 kB/s.
        for i in 0..=100 {
            let now = Instant::from_millis(40 + i * 10);
            cc.on_ack(Instant::from_millis(i * 10), 1000, now, rtt);
        }
        // Losses episode after episode: the window halves down to 2 x 100 kB/s x 40 ms, no lower.
        for i in 0..10 {
            let at = Instant::from_millis(2_000 + i * 100);
            cc.on_loss(at, at, rtt);
        }
        assert_eq!(cc.window(), 8_000);
        // A path that now delivers a tenth of that, for more rounds than the samples kept: the
        // floor follows it down.
        for i in 0..=(RATE_ROUNDS as u64 + 1) * 4 {
            let now = Instant::from_millis(3_000 + i * 10);
            cc.on_ack(now, if i % 10 == 0 { 1000 } else { 0 }, now, rtt);
        }
        for i in 0..10 {
            let at = Instant::from_millis(5_000 + i * 100);
            cc.on_loss(at, at, rtt);
        }
        assert_eq!(cc.window(), 2_000, "the configured minimum");
    }
}
