//! Packets received from the peer: duplicate suppression, and the ack block that reports them
//! (docs/PROTOCOL.md section 2.2).

use core::time::Duration;

use super::time::Instant;
use crate::wire::AckBlock;

/// How many datagrams carry each new ack state (docs/PROTOCOL.md section 7a.2).
const ACK_REPEATS: u8 = 2;

/// How many ack-eliciting packets after the one that showed a gap are acked at once too
/// (docs/PROTOCOL.md section 7a.2): the gap's own ack-only datagram can be lost, and a held ack
/// would then leave the sender's loss detection waiting a full ack delay.
const ACKS_AFTER_GAP: u8 = 2;

/// What the receiver remembers of packet numbers, and when it owes the peer an ack.
#[derive(Debug, Clone)]
pub(crate) struct ReceivedPackets {
    /// The largest packet number received, and when.
    largest: Option<(u32, Instant)>,
    /// Bit `n`: packet `largest - 1 - n` was received.
    bits: u64,
    /// Ack-eliciting packets received since the last ack block was sent.
    pending: u32,
    /// When the delayed ack is due, if one is owed.
    ack_deadline: Option<Instant>,
    /// An ack is owed now (a gap, a reordered packet, or enough packets).
    immediate: bool,
    /// Ack blocks still to repeat after an ack-eliciting packet arrived: the state goes out in
    /// more than one datagram, so one lost (or overtaken) ack-only datagram does not leave the
    /// peer waiting for a retransmission timeout.
    repeats: u8,
    /// Ack-eliciting packets still to ack at once since the last gap.
    after_gap: u8,
    max_ack_delay: Duration,
    threshold: u32,
    /// The largest packet number of the last three ack blocks sent, the newest first.
    reported: [Option<u32>; 3],
}

/// The serial-number distance from `b` to `a` (positive when `a` is newer).
pub(crate) fn seq_diff(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b).cast_signed())
}

impl ReceivedPackets {
    pub(crate) fn new(max_ack_delay: Duration, threshold: u32) -> Self {
        Self {
            largest: None,
            bits: 0,
            pending: 0,
            ack_deadline: None,
            immediate: false,
            repeats: 0,
            after_gap: 0,
            max_ack_delay,
            threshold: threshold.max(1),
            reported: [None; 3],
        }
    }

    /// Records packet `pn`; returns `false` for a duplicate, or for a packet too old to tell (more
    /// than 64 behind the largest), which the caller drops. `ack_now`: the sender asked for an
    /// immediate acknowledgement.
    pub(crate) fn on_packet(
        &mut self,
        pn: u32,
        now: Instant,
        ack_eliciting: bool,
        ack_now: bool,
    ) -> bool {
        let Some((largest, _)) = self.largest else {
            self.largest = Some((pn, now));
            self.note_eliciting(now, ack_eliciting, ack_now);
            return true;
        };
        let d = seq_diff(pn, largest);
        let out_of_order = match d.cmp(&0) {
            core::cmp::Ordering::Greater => {
                // `largest` itself becomes bit d-1; everything shifts by d. At d == 64 the old
                // largest is bit 63 and nothing else stays; beyond, nothing does.
                self.bits = match d {
                    1..=63 => (self.bits << d) | (1u64 << (d - 1)),
                    64 => 1u64 << 63,
                    _ => 0,
                };
                self.largest = Some((pn, now));
                d > 1
            }
            core::cmp::Ordering::Equal => return false,
            core::cmp::Ordering::Less => {
                let n = -d - 1;
                if n >= 64 || self.bits & (1u64 << n) != 0 {
                    return false;
                }
                self.bits |= 1u64 << n;
                true
            }
        };
        let just_after_gap = ack_eliciting && self.after_gap > 0;
        if out_of_order {
            self.after_gap = ACKS_AFTER_GAP;
        } else if just_after_gap {
            self.after_gap -= 1;
        }
        self.note_eliciting(
            now,
            ack_eliciting,
            out_of_order || just_after_gap || ack_now,
        );
        true
    }

    fn note_eliciting(&mut self, now: Instant, ack_eliciting: bool, urgent: bool) {
        if !ack_eliciting {
            return;
        }
        self.repeats = ACK_REPEATS;
        self.pending += 1;
        // A gap or a reordered packet is acked at once, so the sender's loss detection can act
        // (RFC 9000 section 13.2.1), and so are the next `ACKS_AFTER_GAP` (as TCP acks every
        // segment while a hole is open, RFC 5681 section 4.2), and a packet whose sender asked for
        // it (the tail of what it had to send: its retransmission timer does not allow for our
        // delay); otherwise every `threshold` packets or after the delay.
        if urgent || self.pending >= self.threshold {
            self.immediate = true;
        }
        self.ack_deadline.get_or_insert(now + self.max_ack_delay);
    }

    /// The largest packet number received.
    pub(crate) fn largest(&self) -> Option<u32> {
        self.largest.map(|(pn, _)| pn)
    }

    /// Holds acks at most `max_ack_delay`, and acks at once after `threshold` packets, from now
    /// on (a session that agreed compact datagrams, before it has received anything).
    pub(crate) fn set_policy(&mut self, max_ack_delay: Duration, threshold: u32) {
        self.max_ack_delay = max_ack_delay;
        self.threshold = threshold.max(1);
    }

    /// The ack block to put in a packet sent at `now`, if anything has been received.
    pub(crate) fn ack_block(&self, now: Instant) -> Option<AckBlock> {
        self.largest.map(|(largest, at)| AckBlock {
            largest,
            delay_us: u16::try_from(now.saturating_duration_since(at).as_micros())
                .unwrap_or(u16::MAX),
            bits: self.bits,
        })
    }

    /// [`ReceivedPackets::ack_block`] with its bits cut to the packets newer than the largest of
    /// the third ack block back (and never to fewer than 7 bits, which a one-byte varint holds
    /// anyway), as a compact datagram sends it (docs/PROTOCOL.md section 7a.2): each packet is
    /// reported in at least three ack blocks, and a steady stream's bits fit a byte or two.
    pub(crate) fn recent_ack_block(&self, now: Instant) -> Option<AckBlock> {
        let mut block = self.ack_block(now)?;
        if let Some(older) = self.reported[2] {
            // Seven bits cost no more than none (a one-byte varint).
            let newer = (seq_diff(block.largest, older) - 1).max(7);
            if newer < 64 {
                block.bits &= (1u64 << newer) - 1;
            }
        }
        Some(block)
    }

    /// Whether an ack is owed to the peer at all (it goes in the next packet sent).
    pub(crate) fn ack_owed(&self) -> bool {
        self.pending > 0
    }

    /// Whether the next datagram should carry an ack block: one is owed, or the latest ack state
    /// has not yet been repeated enough.
    pub(crate) fn ack_wanted(&self) -> bool {
        self.pending > 0 || self.repeats > 0
    }

    /// Whether an ack must go out now even if there is nothing else to send.
    pub(crate) fn ack_due(&self, now: Instant) -> bool {
        self.pending > 0 && (self.immediate || self.ack_deadline.is_some_and(|d| d <= now))
    }

    /// When a standalone ack will be due, if one is owed.
    pub(crate) fn ack_deadline(&self) -> Option<Instant> {
        if self.pending == 0 {
            None
        } else if self.immediate {
            self.largest.map(|(_, at)| at)
        } else {
            self.ack_deadline
        }
    }

    /// An ack block went out in a packet.
    pub(crate) fn on_ack_sent(&mut self) {
        let largest = self.largest();
        if self.reported[0] != largest {
            self.reported = [largest, self.reported[0], self.reported[1]];
        }
        self.repeats = self.repeats.saturating_sub(1);
        self.pending = 0;
        self.ack_deadline = None;
        self.immediate = false;
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::*;

    const T: Instant = Instant::ZERO;

    fn acked(r: &ReceivedPackets) -> Vec<u32> {
        r.ack_block(T).unwrap().acked().collect()
    }

    #[test]
    fn in_order_gaps_reorder_and_duplicates() {
        let mut r = ReceivedPackets::new(Duration::from_millis(5), 2);
        assert!(r.on_packet(0, T, true, false));
        assert!(r.on_packet(1, T, true, false));
        assert!(!r.on_packet(1, T, true, false), "duplicate of the largest");
        assert!(r.on_packet(4, T, true, false));
        assert_eq!(acked(&r), [4, 1, 0]);
        assert!(r.on_packet(3, T, true, false), "reordered");
        assert!(
            !r.on_packet(3, T, true, false),
            "duplicate below the largest"
        );
        assert_eq!(acked(&r), [4, 3, 1, 0]);
    }

    #[test]
    fn wraps_around_and_forgets_beyond_64() {
        let mut r = ReceivedPackets::new(Duration::from_millis(5), 2);
        assert!(r.on_packet(u32::MAX, T, true, false));
        assert!(r.on_packet(0, T, true, false));
        assert_eq!(acked(&r), [0, u32::MAX]);
        assert!(r.on_packet(100, T, true, false));
        assert_eq!(acked(&r), [100]);
        assert!(!r.on_packet(0, T, true, false), "too old to tell: dropped");
    }

    #[test]
    fn a_jump_of_exactly_64_keeps_the_old_largest() {
        // Found by the session fuzzer: the window was cleared at d == 64, so a late duplicate of
        // the old largest was taken for new and an unreliable message delivered twice.
        let mut r = ReceivedPackets::new(Duration::from_millis(5), 2);
        assert!(r.on_packet(10, T, true, false));
        assert!(r.on_packet(74, T, true, false));
        assert!(
            !r.on_packet(10, T, true, false),
            "64 behind and already seen: a duplicate"
        );
        assert_eq!(acked(&r), [74, 10]);
        let mut r = ReceivedPackets::new(Duration::from_millis(5), 2);
        assert!(r.on_packet(10, T, true, false));
        assert!(r.on_packet(75, T, true, false));
        assert!(
            !r.on_packet(10, T, true, false),
            "65 behind: too old to tell, dropped"
        );
    }

    #[test]
    fn acks_are_delayed_until_the_threshold_or_the_deadline() {
        let d = Duration::from_millis(5);
        let mut r = ReceivedPackets::new(d, 2);
        r.on_packet(0, T, false, false);
        assert!(
            !r.ack_owed(),
            "non-eliciting packets are not acked on their own"
        );
        r.on_packet(1, T, true, false);
        assert!(r.ack_owed());
        assert!(!r.ack_due(T + d - Duration::from_micros(1)));
        assert!(r.ack_due(T + d));
        r.on_packet(2, T, true, false);
        assert!(r.ack_due(T), "second eliciting packet: at once");
        r.on_ack_sent();
        assert!(!r.ack_owed());
        r.on_packet(5, T, true, false);
        assert!(r.ack_due(T), "a gap: at once");
    }

    #[test]
    fn the_packets_after_a_gap_are_acked_at_once_too() {
        // The gap's own ack may be lost; were the next packets held for the threshold or the
        // delay, the sender would learn of the loss a full ack delay late.
        let d = Duration::from_millis(50);
        let mut r = ReceivedPackets::new(d, 4);
        r.on_packet(0, T, true, false);
        r.on_ack_sent();
        r.on_packet(2, T, true, false);
        assert!(r.ack_due(T), "the gap: at once");
        r.on_ack_sent();
        r.on_packet(3, T, false, false);
        let first = 4;
        for pn in first..first + u32::from(ACKS_AFTER_GAP) {
            r.on_packet(pn, T, true, false);
            assert!(
                r.ack_due(T),
                "packet {pn}, after the gap (the ack-only packet 3 not counted): at once"
            );
            r.on_ack_sent();
        }
        r.on_packet(first + u32::from(ACKS_AFTER_GAP), T, true, false);
        assert!(!r.ack_due(T), "past the packets after the gap: held again");
        assert!(r.ack_due(T + d));
    }

    #[test]
    fn a_packet_asking_for_an_ack_now_is_acked_at_once() {
        let d = Duration::from_millis(25);
        let mut r = ReceivedPackets::new(d, 2);
        r.on_packet(0, T, true, false);
        assert!(!r.ack_due(T), "one packet, no request: the ack waits");
        r.on_ack_sent();
        r.on_packet(1, T, true, true);
        assert!(r.ack_due(T), "asked for: at once");
        assert_eq!(r.ack_deadline(), Some(T));
        r.on_ack_sent();
        r.on_packet(2, T, false, true);
        assert!(
            !r.ack_owed(),
            "an ack-only packet is never acked, asked or not"
        );
    }

    #[test]
    fn ack_delay_is_reported_in_microseconds() {
        let mut r = ReceivedPackets::new(Duration::from_millis(5), 2);
        r.on_packet(7, Instant::from_micros(1000), true, false);
        assert_eq!(
            r.ack_block(Instant::from_micros(1250)).unwrap().delay_us,
            250
        );
        assert_eq!(
            r.ack_block(Instant::from_secs_for_test(10))
                .unwrap()
                .delay_us,
            u16::MAX
        );
    }

    impl Instant {
        fn from_secs_for_test(s: u64) -> Self {
            Instant::from_millis(s * 1000)
        }
    }
}
