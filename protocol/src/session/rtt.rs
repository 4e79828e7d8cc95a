//! Round-trip time estimation and the retransmission timeout (RFC 9002 section 5, RFC 6298).

use core::time::Duration;

/// The clock granularity assumed for timers (RFC 9002 `kGranularity`).
pub const GRANULARITY: Duration = Duration::from_millis(1);

/// Smoothed RTT, its variation, and the minimum seen.
#[derive(Debug, Clone, Copy)]
pub struct RttEstimator {
    latest: Duration,
    smoothed: Duration,
    var: Duration,
    min: Duration,
    has_sample: bool,
}

impl RttEstimator {
    /// An estimator that assumes `initial` until the first sample (RFC 9002 section 5.3).
    pub fn new(initial: Duration) -> Self {
        Self {
            latest: initial,
            smoothed: initial,
            var: initial / 2,
            min: initial,
            has_sample: false,
        }
    }

    /// Takes a sample: the time from sending a packet to receiving its ack, and the delay the peer
    /// reported holding that ack (already capped at the agreed maximum ack delay).
    ///
    /// The ack delay is subtracted only where the result stays at or above the minimum RTT, so a
    /// peer cannot push the estimate below what the path has shown (RFC 9002 section 5.3).
    pub fn update(&mut self, sample: Duration, ack_delay: Duration) {
        self.latest = sample;
        if !self.has_sample {
            self.has_sample = true;
            self.min = sample;
            self.smoothed = sample;
            self.var = sample / 2;
            return;
        }
        self.min = self.min.min(sample);
        let adjusted = if sample >= self.min + ack_delay {
            sample.saturating_sub(ack_delay)
        } else {
            sample
        };
        let diff = self.smoothed.abs_diff(adjusted);
        // rttvar = 3/4 rttvar + 1/4 |smoothed - adjusted|; smoothed = 7/8 smoothed + 1/8 adjusted
        self.var = (self.var * 3 + diff) / 4;
        self.smoothed = (self.smoothed * 7 + adjusted) / 8;
    }

    /// The smoothed RTT.
    pub fn smoothed(&self) -> Duration {
        self.smoothed
    }

    /// The RTT variation.
    pub fn var(&self) -> Duration {
        self.var
    }

    /// The latest sample.
    pub fn latest(&self) -> Duration {
        self.latest
    }

    /// The smallest sample.
    pub fn min(&self) -> Duration {
        self.min
    }

    /// Whether any sample has been taken.
    pub fn has_sample(&self) -> bool {
        self.has_sample
    }

    /// The base retransmission timeout before backoff: `smoothed + max(4 var, granularity) +
    /// max_ack_delay` (RFC 9002 section 6.2.1), clamped to `[min, max]`.
    pub fn rto(&self, max_ack_delay: Duration, min: Duration, max: Duration) -> Duration {
        (self.smoothed + (self.var * 4).max(GRANULARITY) + max_ack_delay).clamp(min, max)
    }

    /// The RTT loss detection scales: the larger of the smoothed and the latest.
    pub fn loss_rtt(&self) -> Duration {
        self.smoothed.max(self.latest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn first_sample_sets_everything() {
        let mut r = RttEstimator::new(100 * MS);
        r.update(40 * MS, Duration::ZERO);
        assert_eq!(
            (r.smoothed(), r.var(), r.min()),
            (40 * MS, 20 * MS, 40 * MS)
        );
    }

    #[test]
    fn smoothing_follows_rfc_9002() {
        let mut r = RttEstimator::new(100 * MS);
        r.update(40 * MS, Duration::ZERO);
        r.update(80 * MS, Duration::ZERO);
        // var = (3*20 + |40-80|)/4 = 25; smoothed = (7*40 + 80)/8 = 45
        assert_eq!((r.smoothed(), r.var()), (45 * MS, 25 * MS));
        assert_eq!(r.rto(5 * MS, MS, 60_000 * MS), 45 * MS + 100 * MS + 5 * MS);
    }

    #[test]
    fn ack_delay_never_pushes_below_min_rtt() {
        let mut r = RttEstimator::new(100 * MS);
        r.update(40 * MS, Duration::ZERO);
        // 45 - 10 would be below min 40: the delay is ignored.
        r.update(45 * MS, 10 * MS);
        assert_eq!(r.smoothed(), (40 * MS * 7 + 45 * MS) / 8);
        // 60 - 10 = 50 is above min: it is subtracted.
        let before = r.smoothed();
        r.update(60 * MS, 10 * MS);
        assert_eq!(r.smoothed(), (before * 7 + 50 * MS) / 8);
    }

    #[test]
    fn rto_is_clamped() {
        let mut r = RttEstimator::new(100 * MS);
        r.update(Duration::from_micros(10), Duration::ZERO);
        assert_eq!(r.rto(Duration::ZERO, 20 * MS, 60_000 * MS), 20 * MS);
        assert_eq!(r.loss_rtt(), Duration::from_micros(10));
        r.update(10_000 * MS, Duration::ZERO);
        assert_eq!(r.rto(Duration::ZERO, 20 * MS, 1000 * MS), 1000 * MS);
    }
}
