//! Packets sent and not yet acknowledged: ack processing, RTT samples, and loss detection by packet
//! and time threshold (RFC 9002 section 6.1).

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::time::Duration;

use super::outbox::Item;
use super::received::seq_diff;
use super::time::Instant;
use crate::wire::AckBlock;

/// A packet is lost once a packet sent this many later has been acknowledged (RFC 9002
/// `kPacketThreshold`).
pub(crate) const PACKET_THRESHOLD: i64 = 3;

/// What was sent in one packet.
#[derive(Debug, Clone)]
pub(crate) struct SentPacket {
    pub(crate) time: Instant,
    pub(crate) size: usize,
    pub(crate) ack_eliciting: bool,
    pub(crate) items: Vec<Item>,
}

/// The outcome of processing an ack block.
#[derive(Debug, Default)]
pub(crate) struct AckResult {
    pub(crate) newly_acked: Vec<SentPacket>,
    /// An RTT sample, when the largest acknowledged packet is newly acked and ack-eliciting.
    pub(crate) rtt_sample: Option<Duration>,
}

/// Sent packets by number. Numbers are consecutive, so a deque indexed from `base` finds any
/// packet in O(1); acknowledged or lost entries become `None` and are trimmed from the front.
#[derive(Debug, Default)]
pub(crate) struct SentPackets {
    base: u32,
    packets: VecDeque<Option<SentPacket>>,
    largest_acked: Option<u32>,
    bytes_in_flight: usize,
    ack_eliciting_in_flight: usize,
}

impl SentPackets {
    pub(crate) fn new(first_pn: u32) -> Self {
        Self {
            base: first_pn,
            ..Self::default()
        }
    }

    /// Records the packet numbered `pn`, which must be the next number after the last one.
    pub(crate) fn on_sent(&mut self, pn: u32, packet: SentPacket) {
        debug_assert_eq!(pn, self.base.wrapping_add(self.packets.len() as u32));
        self.bytes_in_flight += packet.size;
        if packet.ack_eliciting {
            self.ack_eliciting_in_flight += 1;
        }
        self.packets.push_back(Some(packet));
    }

    fn take(&mut self, pn: u32) -> Option<SentPacket> {
        let index = usize::try_from(seq_diff(pn, self.base)).ok()?;
        let packet = self.packets.get_mut(index)?.take()?;
        self.bytes_in_flight -= packet.size;
        if packet.ack_eliciting {
            self.ack_eliciting_in_flight -= 1;
        }
        Some(packet)
    }

    fn trim(&mut self) {
        while matches!(self.packets.front(), Some(None)) {
            self.packets.pop_front();
            self.base = self.base.wrapping_add(1);
        }
    }

    /// Processes an ack block received at `now`.
    pub(crate) fn on_ack(&mut self, ack: &AckBlock, now: Instant) -> AckResult {
        let mut result = AckResult::default();
        // Ignore acks for packets never sent (a peer acking the future is misbehaving).
        let next = self.base.wrapping_add(self.packets.len() as u32);
        if seq_diff(ack.largest, next) >= 0 {
            return result;
        }
        if self
            .largest_acked
            .is_none_or(|l| seq_diff(ack.largest, l) > 0)
        {
            self.largest_acked = Some(ack.largest);
        }
        for pn in ack.acked() {
            if let Some(packet) = self.take(pn) {
                if pn == ack.largest && packet.ack_eliciting {
                    result.rtt_sample = Some(now.saturating_duration_since(packet.time));
                }
                result.newly_acked.push(packet);
            }
        }
        self.trim();
        result
    }

    /// Declares lost every packet sent before the largest acknowledged one that is
    /// [`PACKET_THRESHOLD`] packets or `loss_delay` older than it. Returns the lost packets and the
    /// earliest time at which another packet would cross the time threshold.
    pub(crate) fn detect_lost(
        &mut self,
        now: Instant,
        loss_delay: Duration,
    ) -> (Vec<SentPacket>, Option<Instant>) {
        let mut lost = Vec::new();
        let mut next_loss_time: Option<Instant> = None;
        let Some(largest) = self.largest_acked else {
            return (lost, None);
        };
        for i in 0..self.packets.len() {
            let pn = self.base.wrapping_add(i as u32);
            if seq_diff(pn, largest) >= 0 {
                break;
            }
            let Some(packet) = &self.packets[i] else {
                continue;
            };
            // `time + delay <= now`, not `time <= now - delay`: the subtraction saturates at
            // the epoch and would call everything sent then lost.
            if seq_diff(largest, pn) >= PACKET_THRESHOLD || packet.time + loss_delay <= now {
                if let Some(p) = self.take(pn) {
                    lost.push(p);
                }
            } else {
                let at = packet.time + loss_delay;
                next_loss_time = Some(next_loss_time.map_or(at, |t| t.min(at)));
            }
        }
        self.trim();
        (lost, next_loss_time)
    }

    /// The oldest unacknowledged ack-eliciting packets' items, for a probe (RFC 9002 section 6.2.4).
    pub(crate) fn oldest_items(&self, max_packets: usize) -> Vec<Item> {
        self.packets
            .iter()
            .flatten()
            .filter(|p| p.ack_eliciting)
            .take(max_packets)
            .flat_map(|p| p.items.iter().copied())
            .collect()
    }

    pub(crate) fn bytes_in_flight(&self) -> usize {
        self.bytes_in_flight
    }

    pub(crate) fn has_ack_eliciting_in_flight(&self) -> bool {
        self.ack_eliciting_in_flight > 0
    }

    /// Forgets every packet (the session is over).
    pub(crate) fn clear(&mut self) {
        self.base = self.base.wrapping_add(self.packets.len() as u32);
        self.packets.clear();
        self.bytes_in_flight = 0;
        self.ack_eliciting_in_flight = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn packet(ms: u64) -> SentPacket {
        SentPacket {
            time: Instant::from_millis(ms),
            size: 100,
            ack_eliciting: true,
            items: Vec::new(),
        }
    }

    fn ack(largest: u32, bits: u64) -> AckBlock {
        AckBlock {
            largest,
            delay_us: 0,
            bits,
        }
    }

    #[test]
    fn acks_sample_rtt_from_the_largest_only() {
        let mut s = SentPackets::new(0);
        for pn in 0..3 {
            s.on_sent(pn, packet(u64::from(pn) * 10));
        }
        let r = s.on_ack(&ack(2, 0b11), Instant::from_millis(50));
        assert_eq!(r.newly_acked.len(), 3);
        assert_eq!(r.rtt_sample, Some(30 * MS));
        assert_eq!(s.bytes_in_flight(), 0);
        // Acking them again changes nothing and gives no sample (Karn: nothing is resent with its
        // old number, so every sample is unambiguous).
        let again = s.on_ack(&ack(2, 0b11), Instant::from_millis(60));
        assert!(again.newly_acked.is_empty() && again.rtt_sample.is_none());
    }

    #[test]
    fn packet_threshold_declares_loss() {
        let mut s = SentPackets::new(0);
        for pn in 0..5 {
            s.on_sent(pn, packet(0));
        }
        // 4 acked: 0 and 1 are 3+ behind -> lost; 2 and 3 wait for the time threshold.
        s.on_ack(&ack(4, 0), Instant::from_millis(1));
        let (lost, next) = s.detect_lost(Instant::from_millis(1), 10 * MS);
        assert_eq!(lost.len(), 2);
        assert_eq!(next, Some(Instant::from_millis(10)));
    }

    #[test]
    fn time_threshold_declares_loss_exactly_at_the_delay() {
        let mut s = SentPackets::new(0);
        s.on_sent(0, packet(0));
        s.on_sent(1, packet(0));
        s.on_ack(&ack(1, 0), Instant::from_millis(5));
        let (lost, next) = s.detect_lost(Instant::from_millis(9), 10 * MS);
        assert!(lost.is_empty());
        assert_eq!(next, Some(Instant::from_millis(10)));
        let (lost, next) = s.detect_lost(Instant::from_millis(10), 10 * MS);
        assert_eq!(lost.len(), 1);
        assert_eq!(next, None);
    }

    #[test]
    fn acks_for_unsent_packets_are_ignored() {
        let mut s = SentPackets::new(0);
        s.on_sent(0, packet(0));
        let r = s.on_ack(&ack(7, 0), Instant::from_millis(1));
        assert!(r.newly_acked.is_empty());
        assert_eq!(s.bytes_in_flight(), 100);
    }
}
