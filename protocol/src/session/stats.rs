//! Counters of a session, for operators and for tests.

use core::time::Duration;

/// A snapshot of a session's counters and estimates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Smoothed round-trip time.
    pub rtt: Duration,
    /// Round-trip time variation.
    pub rtt_var: Duration,
    /// Datagrams sent.
    pub packets_sent: u64,
    /// Datagrams received and accepted.
    pub packets_received: u64,
    /// Bytes sent (UDP payloads).
    pub bytes_sent: u64,
    /// Bytes received (UDP payloads, accepted datagrams).
    pub bytes_received: u64,
    /// Datagrams declared lost.
    pub packets_lost: u64,
    /// Datagrams declared lost that were acknowledged later (reordering, not loss); each one
    /// restores the congestion window and widens the reordering thresholds.
    pub spurious_losses: u64,
    /// Datagrams received and dropped: malformed, bad checksum, another session's, or duplicates.
    pub packets_dropped: u64,
    /// Of those, the ones that failed a check of section 2.2 (magic, version, length, checksum,
    /// flags, frame lengths).
    pub bad_datagrams: u64,
    /// Of those, sealed datagrams whose tag did not verify (tampered with, or another key's), and
    /// plain datagrams sent to a sealed session (docs/PROTOCOL.md section 2.3).
    pub sealed_forged: u64,
    /// Of those, sealed datagrams whose packet number was already opened or too far behind.
    pub sealed_replayed: u64,
    /// Reliable messages (or fragments) sent again.
    pub retransmissions: u64,
    /// Lone datagrams sent a second time (see `SessionConfig::lone_redundancy_max`).
    pub redundant_copies: u64,
    /// Retransmission timeouts that fired.
    pub rto_fired: u64,
    /// Messages delivered to the application.
    pub messages_delivered: u64,
    /// Messages received again after delivery, and dropped.
    pub duplicates_dropped: u64,
    /// Sequenced messages dropped as older than one delivered.
    pub stale_dropped: u64,
    /// Unreliable messages dropped from a full send queue.
    pub unreliable_dropped: u64,
    /// Messages or fragments refused (out of window, over a reassembly bound).
    pub refused: u64,
    /// Fragmented messages discarded incomplete.
    pub reassembly_expired: u64,
    /// Times the peer's address changed, after the new address proved itself.
    pub migrations: u64,
    /// The congestion window, in bytes.
    pub congestion_window: usize,
    /// Bytes sent and not yet acknowledged or declared lost.
    pub bytes_in_flight: usize,
    /// Reliable messages sent and not yet acknowledged.
    pub messages_in_flight: usize,
    /// Bytes of reliable messages queued or in flight.
    pub queued_bytes: usize,
    /// Bytes held for reassembly.
    pub reassembly_bytes: usize,
}

impl Stats {
    /// Packets declared lost per packet sent, from 0 to 1.
    #[allow(
        clippy::cast_precision_loss,
        reason = "a ratio for people; u64 counts fit f64 closely enough"
    )]
    pub fn loss_rate(&self) -> f64 {
        if self.packets_sent == 0 {
            0.0
        } else {
            self.packets_lost as f64 / self.packets_sent as f64
        }
    }
}
