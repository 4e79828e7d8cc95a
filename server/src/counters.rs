//! Counters an operator (and a test) can read while the server runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use framewire_protocol::discovery::Verdict;
use framewire_protocol::wire::Reason;

use crate::cluster::{ClusterCounters, ClusterSnapshot};
use crate::tls::HandshakeFailure;

/// Reason codes counted one by one (`0x00`-`0x1F`); the rest share the last slot.
const REASON_SLOTS: usize = 32;

/// The HTTP statuses the web listener answers with, counted one by one; any other shares the
/// slot after them.
pub const HTTP_STATUSES: [u16; 12] = [101, 200, 400, 404, 405, 408, 413, 426, 431, 501, 503, 505];
/// The WebSocket close codes the server sends, counted one by one; any other shares the slot after
/// them.
pub const WEBSOCKET_CLOSE_CODES: [u16; 8] = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011];

fn slot_of(list: &[u16], value: u16) -> usize {
    list.iter().position(|&v| v == value).unwrap_or(list.len())
}

/// What the server has refused, and why; and the sessions it closed, by reason. Shared with
/// [`crate::ServerHandle`].
#[derive(Debug, Default)]
pub struct Counters {
    server_full: AtomicU64,
    address_limit: AtomicU64,
    session_limit: AtomicU64,
    rate_limited: AtomicU64,
    udp_refused: AtomicU64,
    udp_reassembly_expired: AtomicU64,
    udp_dropped: AtomicU64,
    udp_sealed_forged: AtomicU64,
    udp_sealed_replayed: AtomicU64,
    tls_handshakes: AtomicU64,
    tls_not_tls: AtomicU64,
    tls_certificate: AtomicU64,
    tls_timeout: AtomicU64,
    tls_other: AtomicU64,
    discovery: [AtomicU64; 4],
    closed: [AtomicU64; REASON_SLOTS],
    http_responses: [AtomicU64; HTTP_STATUSES.len() + 1],
    websocket_closes: [AtomicU64; WEBSOCKET_CLOSE_CODES.len() + 1],
    /// The NATS bridge's (`--cluster`), shared with its thread.
    pub(crate) cluster: Arc<ClusterCounters>,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// Connections closed with `SERVER_FULL`.
    pub refused_server_full: u64,
    /// Connections closed with `ADDRESS_LIMIT`.
    pub refused_address_limit: u64,
    /// UDP handshakes refused with `SESSION_LIMIT`.
    pub refused_session_limit: u64,
    /// Handshakes (TCP connections, UDP Hellos) past the per-address rate: refused with
    /// `ADDRESS_LIMIT` (TCP) or dropped unanswered (UDP).
    pub refused_rate_limited: u64,
    /// UDP messages and fragments the sessions refused: out of their window, or over their
    /// reassembly bound (a fragment bomb).
    pub udp_refused: u64,
    /// Fragmented UDP messages discarded incomplete at the reassembly timeout.
    pub udp_reassembly_expired: u64,
    /// UDP datagrams dropped unread (docs/PROTOCOL.md section 2.2): bad magic, version, length,
    /// checksum, flags or frame lengths, a handshake datagram without a Hello, a short Hello or
    /// a bad cookie.
    pub udp_dropped: u64,
    /// Of those, datagrams to a sealed session that did not open (tampered with, sealed under
    /// another key) or came in the clear (docs/PROTOCOL.md section 2.3).
    pub udp_sealed_forged: u64,
    /// Datagrams to a sealed session whose packet number it had already opened (replays).
    pub udp_sealed_replayed: u64,
    /// TLS handshakes completed.
    pub tls_handshakes: u64,
    /// TLS connections whose first bytes were not TLS (a plaintext client at the TLS port).
    pub tls_not_tls: u64,
    /// TLS handshakes that failed over a certificate: the client's refused (missing, expired,
    /// from an unknown CA) or the server's refused by the client.
    pub tls_bad_certificate: u64,
    /// TLS handshakes not finished within the first-frame deadline.
    pub tls_handshake_timeout: u64,
    /// TLS handshakes that failed otherwise (no common version, suite or ALPN protocol).
    pub tls_failed: u64,
    /// LAN discovery requests (docs/PROTOCOL.md section 4.12): answered; not answered again (a
    /// resend, or a broadcast heard on several sockets); past the server's rate; too small to
    /// hold an answer.
    pub discovery: DiscoveryCounts,
    /// Sessions the server closed, by reason code (`closed[code]`; codes from `0x1F` up share the
    /// last slot): idle timeouts, protocol errors, frames too large, bad checksums, slow
    /// consumers, shutdowns.
    pub closed: [u64; REASON_SLOTS],
    /// HTTP responses the web listener sent, by status: `http_responses[i]` counts
    /// [`HTTP_STATUSES`]`[i]`, the last slot every other status.
    pub http_responses: [u64; HTTP_STATUSES.len() + 1],
    /// WebSocket close frames the server sent, by code: `websocket_closes[i]` counts
    /// [`WEBSOCKET_CLOSE_CODES`]`[i]`, the last slot every other code.
    pub websocket_closes: [u64; WEBSOCKET_CLOSE_CODES.len() + 1],
    /// The cluster's: connected to NATS, messages published to and received from other nodes,
    /// dropped, malformed.
    pub cluster: ClusterSnapshot,
}

/// What became of LAN discovery requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiscoveryCounts {
    /// Answered.
    pub answered: u64,
    /// Not answered: this address and nonce were answered already.
    pub repeated: u64,
    /// Not answered: past the server's rate of answers.
    pub rate_limited: u64,
    /// Not answered: too small to hold even the node's name.
    pub too_small: u64,
}

impl DiscoveryCounts {
    /// Each count with its name, as `sys.stats` and the metrics write them.
    pub fn named(&self) -> [(&'static str, u64); 4] {
        [
            ("answered", self.answered),
            ("repeated", self.repeated),
            ("rate_limited", self.rate_limited),
            ("too_small", self.too_small),
        ]
    }
}

impl CounterSnapshot {
    /// Sessions the server closed with `reason`.
    pub fn closed(&self, reason: Reason) -> u64 {
        self.closed[usize::from(reason.0).min(REASON_SLOTS - 1)]
    }

    /// HTTP responses sent with `status` (every status not in [`HTTP_STATUSES`] counts as one).
    pub fn http_responses(&self, status: u16) -> u64 {
        self.http_responses[slot_of(&HTTP_STATUSES, status)]
    }

    /// WebSocket closes sent with `code` (every code not in [`WEBSOCKET_CLOSE_CODES`] counts as
    /// one).
    pub fn websocket_closes(&self, code: u16) -> u64 {
        self.websocket_closes[slot_of(&WEBSOCKET_CLOSE_CODES, code)]
    }
}

impl Counters {
    pub(crate) fn count_server_full(&self) {
        self.server_full.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_address_limit(&self) {
        self.address_limit.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_session_limit(&self) {
        self.session_limit.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds what UDP sessions refused and discarded since they were last counted.
    pub(crate) fn count_udp_refusals(&self, refused: u64, reassembly_expired: u64) {
        if refused > 0 {
            self.udp_refused.fetch_add(refused, Ordering::Relaxed);
        }
        if reassembly_expired > 0 {
            self.udp_reassembly_expired
                .fetch_add(reassembly_expired, Ordering::Relaxed);
        }
    }

    /// Counts UDP datagrams dropped unread.
    pub(crate) fn count_udp_dropped(&self, datagrams: u64) {
        if datagrams > 0 {
            self.udp_dropped.fetch_add(datagrams, Ordering::Relaxed);
        }
    }

    /// Adds sealed datagrams dropped as forged and as replayed.
    pub(crate) fn count_sealed_drops(&self, forged: u64, replayed: u64) {
        if forged > 0 {
            self.udp_sealed_forged.fetch_add(forged, Ordering::Relaxed);
        }
        if replayed > 0 {
            self.udp_sealed_replayed
                .fetch_add(replayed, Ordering::Relaxed);
        }
    }

    /// Counts a TLS handshake that completed.
    pub(crate) fn count_tls_handshake(&self) {
        self.tls_handshakes.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a TLS handshake that failed, by why.
    pub(crate) fn count_tls_failure(&self, failure: HandshakeFailure) {
        let counter = match failure {
            HandshakeFailure::NotTls => &self.tls_not_tls,
            HandshakeFailure::Certificate => &self.tls_certificate,
            HandshakeFailure::Timeout => &self.tls_timeout,
            HandshakeFailure::Other => &self.tls_other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an HTTP response sent.
    pub(crate) fn count_http_response(&self, status: u16) {
        self.http_responses[slot_of(&HTTP_STATUSES, status)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a WebSocket close the server sent.
    pub(crate) fn count_websocket_close(&self, code: u16) {
        self.websocket_closes[slot_of(&WEBSOCKET_CLOSE_CODES, code)]
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a LAN discovery request: what the limiter said, and whether an answer was written.
    pub(crate) fn count_discovery(&self, verdict: Verdict, answered: bool) {
        let slot = match verdict {
            Verdict::Answer if answered => 0,
            Verdict::Answer => 3,
            Verdict::Repeat => 1,
            Verdict::Limited => 2,
        };
        self.discovery[slot].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a session the server closed (a timer, bad input, a limit, a shutdown).
    pub(crate) fn count_closed(&self, reason: Reason) {
        self.closed[usize::from(reason.0).min(REASON_SLOTS - 1)].fetch_add(1, Ordering::Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            refused_server_full: self.server_full.load(Ordering::Relaxed),
            refused_address_limit: self.address_limit.load(Ordering::Relaxed),
            refused_session_limit: self.session_limit.load(Ordering::Relaxed),
            refused_rate_limited: self.rate_limited.load(Ordering::Relaxed),
            udp_refused: self.udp_refused.load(Ordering::Relaxed),
            udp_reassembly_expired: self.udp_reassembly_expired.load(Ordering::Relaxed),
            udp_dropped: self.udp_dropped.load(Ordering::Relaxed),
            udp_sealed_forged: self.udp_sealed_forged.load(Ordering::Relaxed),
            udp_sealed_replayed: self.udp_sealed_replayed.load(Ordering::Relaxed),
            tls_handshakes: self.tls_handshakes.load(Ordering::Relaxed),
            tls_not_tls: self.tls_not_tls.load(Ordering::Relaxed),
            tls_bad_certificate: self.tls_certificate.load(Ordering::Relaxed),
            tls_handshake_timeout: self.tls_timeout.load(Ordering::Relaxed),
            tls_failed: self.tls_other.load(Ordering::Relaxed),
            discovery: DiscoveryCounts {
                answered: self.discovery[0].load(Ordering::Relaxed),
                repeated: self.discovery[1].load(Ordering::Relaxed),
                rate_limited: self.discovery[2].load(Ordering::Relaxed),
                too_small: self.discovery[3].load(Ordering::Relaxed),
            },
            closed: std::array::from_fn(|i| self.closed[i].load(Ordering::Relaxed)),
            http_responses: std::array::from_fn(|i| self.http_responses[i].load(Ordering::Relaxed)),
            websocket_closes: std::array::from_fn(|i| {
                self.websocket_closes[i].load(Ordering::Relaxed)
            }),
            cluster: self.cluster.snapshot(),
        }
    }
}
