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
/// `kPacketThreshold`); the starting value, raised when reordering proves a loss spurious.
pub(crate) const PACKET_THRESHOLD: i64 = 3;
/// The highest the packet threshold is raised to.
const MAX_PACKET_THRESHOLD: i64 = 32;
/// The time threshold in eighths of an RTT: 9/8 at the start (RFC 9002 `kTimeThreshold`) ...
const TIME_THRESHOLD_EIGHTHS: u32 = 9;
/// ... and at most 2 RTTs once reordering has been seen.
const MAX_TIME_THRESHOLD_EIGHTHS: u32 = 16;
/// How many declared-lost packets are remembered, to recognise a loss that proves spurious.
const LOST_MEMORY: usize = 256;
/// How many emptied item lists of acknowledged packets are kept for the next packets (until the
/// session goes quiet), and the longest list (in entries, of items or of acknowledged packets)
/// worth keeping: a stream of small messages then writes its packets' lists into memory already
/// allocated rather than growing a new one for each (one allocation and two reallocations per
/// packet of 16 messages before).
const SPARE_ITEM_LISTS: usize = 4;
const MAX_SPARE_LEN: usize = 256;

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
    /// Packets declared lost earlier that this ack shows arrived after all.
    pub(crate) spurious_losses: u32,
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
    /// Recently declared lost: (packet number, largest acknowledged when it was declared).
    recently_lost: VecDeque<(u32, u32)>,
    packet_threshold: i64,
    time_threshold_eighths: u32,
    /// Emptied item lists of acknowledged packets, for the next packets to fill.
    spare_items: Vec<Vec<Item>>,
    /// The list [`SentPackets::on_ack`] hands its acknowledged packets in, kept between acks.
    spare_acked: Vec<SentPacket>,
}

impl SentPackets {
    pub(crate) fn new(first_pn: u32) -> Self {
        Self {
            base: first_pn,
            packet_threshold: PACKET_THRESHOLD,
            time_threshold_eighths: TIME_THRESHOLD_EIGHTHS,
            ..Self::default()
        }
    }

    /// The largest packet number the peer has acknowledged.
    pub(crate) fn largest_acked(&self) -> Option<u32> {
        self.largest_acked
    }

    /// The loss delay for an RTT estimate (the larger of smoothed and latest), under the current
    /// time threshold.
    pub(crate) fn loss_delay(&self, rtt: Duration) -> Duration {
        (rtt * self.time_threshold_eighths / 8).max(super::rtt::GRANULARITY)
    }

    /// The packet threshold in force.
    #[cfg(test)]
    pub(crate) fn packet_threshold(&self) -> i64 {
        self.packet_threshold
    }

    /// A packet declared lost was acknowledged: the network reorders more than the thresholds
    /// allowed. Widen them to what was seen (RACK's adaptive reordering window, RFC 8985 6.2).
    fn on_spurious(&mut self, pn: u32, largest_when_lost: u32) {
        let distance = seq_diff(largest_when_lost, pn);
        self.packet_threshold = self
            .packet_threshold
            .max(distance + 1)
            .min(MAX_PACKET_THRESHOLD);
        self.time_threshold_eighths =
            (self.time_threshold_eighths + 2).min(MAX_TIME_THRESHOLD_EIGHTHS);
    }

    /// Records the packet numbered `pn`, which must be the next number after the last one.
    pub(crate) fn on_sent(&mut self, pn: u32, mut packet: SentPacket) {
        debug_assert_eq!(pn, self.base.wrapping_add(self.packets.len() as u32));
        if packet.items.is_empty() {
            // A spare list the packet did not use goes back rather than wait, empty, for its ack.
            self.recycle(core::mem::take(&mut packet.items));
        }
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

    /// An empty list for the items of the next packet: one an acknowledged packet left, if any.
    pub(crate) fn item_list(&mut self) -> Vec<Item> {
        self.spare_items.pop().unwrap_or_default()
    }

    /// Takes back the items list of a packet that is done with, for the next packets.
    fn recycle(&mut self, mut items: Vec<Item>) {
        if items.capacity() == 0
            || items.capacity() > MAX_SPARE_LEN
            || self.spare_items.len() >= SPARE_ITEM_LISTS
        {
            return;
        }
        items.clear();
        self.spare_items.push(items);
    }

    /// Takes back an [`AckResult`]'s packets once they have been handled: their item lists for
    /// the next packets, and the list itself for the next ack.
    pub(crate) fn recycle_acked(&mut self, mut acked: Vec<SentPacket>) {
        for packet in acked.drain(..) {
            self.recycle(packet.items);
        }
        if acked.capacity() <= MAX_SPARE_LEN {
            self.spare_acked = acked;
        }
    }

    /// Whether spare lists are held.
    #[cfg(test)]
    pub(crate) fn holds_spares(&self) -> bool {
        self.spare_items.capacity() > 0 || self.spare_acked.capacity() > 0
    }

    /// Drops the spare lists: the session has gone quiet (its heartbeat is due), and an idle
    /// session holds no memory for traffic it no longer has.
    pub(crate) fn release_spares(&mut self) {
        self.spare_items = Vec::new();
        self.spare_acked = Vec::new();
    }

    /// Processes an ack block received at `now`.
    pub(crate) fn on_ack(&mut self, ack: &AckBlock, now: Instant) -> AckResult {
        let mut result = AckResult {
            newly_acked: core::mem::take(&mut self.spare_acked),
            ..AckResult::default()
        };
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
            } else if let Some(i) = self.recently_lost.iter().position(|&(lost, _)| lost == pn) {
                let (_, largest_when_lost) = self.recently_lost.remove(i).unwrap_or((pn, pn));
                self.on_spurious(pn, largest_when_lost);
                result.spurious_losses += 1;
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
            if seq_diff(largest, pn) >= self.packet_threshold || packet.time + loss_delay <= now {
                if let Some(p) = self.take(pn) {
                    if self.recently_lost.len() == LOST_MEMORY {
                        self.recently_lost.pop_front();
                    }
                    self.recently_lost.push_back((pn, largest));
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
        self.release_spares();
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
    fn a_lost_packet_acked_later_is_spurious_and_widens_the_thresholds() {
        let mut s = SentPackets::new(0);
        for pn in 0..8 {
            s.on_sent(pn, packet(0));
        }
        // 7 acked: 0..=4 are 3 or more behind and declared lost...
        s.on_ack(&ack(7, 0), Instant::from_millis(1));
        let (lost, _) = s.detect_lost(Instant::from_millis(1), 100 * MS);
        assert_eq!(lost.len(), 5);
        assert_eq!(s.packet_threshold(), 3);
        // ...but packet 0 arrives after all, 7 behind the largest acknowledged then.
        let r = s.on_ack(&ack(7, 1 << 6), Instant::from_millis(2));
        assert_eq!(r.spurious_losses, 1);
        assert_eq!(s.packet_threshold(), 8);
        assert_eq!(s.loss_delay(8 * MS), 8 * MS * 11 / 8);
        // Acking it once more is not another spurious loss.
        assert_eq!(
            s.on_ack(&ack(7, 1 << 6), Instant::from_millis(3))
                .spurious_losses,
            0
        );
    }

    #[test]
    fn loss_delay_is_nine_eighths_with_a_floor() {
        let s = SentPackets::new(0);
        assert_eq!(s.loss_delay(8 * MS), 9 * MS);
        assert_eq!(
            s.loss_delay(Duration::from_micros(10)),
            crate::session::GRANULARITY
        );
    }

    #[test]
    fn acks_for_unsent_packets_are_ignored() {
        let mut s = SentPackets::new(0);
        s.on_sent(0, packet(0));
        let r = s.on_ack(&ack(7, 0), Instant::from_millis(1));
        assert!(r.newly_acked.is_empty());
        assert_eq!(s.bytes_in_flight(), 100);
    }

    #[test]
    fn acknowledged_packets_lists_serve_the_next_packets_and_go_when_released() {
        let mut s = SentPackets::new(0);
        for pn in 0..8 {
            let mut items = s.item_list();
            items.extend((0..16).map(|i| Item::Message(u64::from(pn) * 16 + i)));
            s.on_sent(pn, SentPacket { items, ..packet(0) });
        }
        let acked = s.on_ack(&ack(5, 0b1_1111), Instant::from_millis(1));
        assert_eq!(acked.newly_acked.len(), 6);
        s.recycle_acked(acked.newly_acked);
        // At most SPARE_ITEM_LISTS lists are kept, emptied, their memory with them.
        assert_eq!(s.spare_items.len(), SPARE_ITEM_LISTS);
        let next = s.item_list();
        assert!(next.is_empty() && next.capacity() >= 16);
        // A packet sent with none of its items gives the list straight back.
        s.on_sent(
            8,
            SentPacket {
                items: next,
                ..packet(0)
            },
        );
        assert_eq!(s.spare_items.len(), SPARE_ITEM_LISTS);
        assert!(s.item_list().capacity() >= 16);
        // The next ack comes in the list the last one was handed back in.
        assert!(s.spare_acked.capacity() >= 6);
        let r = s.on_ack(&ack(8, 0b11), Instant::from_millis(2));
        assert_eq!(r.newly_acked.len(), 3);
        assert!(r.newly_acked.capacity() >= 6);
        // An empty or an outsized list is not kept.
        s.recycle(Vec::new());
        s.recycle(Vec::with_capacity(MAX_SPARE_LEN + 1));
        assert_eq!(s.spare_items.len(), SPARE_ITEM_LISTS - 1);
        s.release_spares();
        assert_eq!(s.spare_items.capacity(), 0);
        assert_eq!(s.spare_acked.capacity(), 0);
    }
}
