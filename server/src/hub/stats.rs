//! What the hub counts, per transport, for `sys.stats`.

use super::output::Transport;

/// Counters of one transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Sessions open now.
    pub sessions: u64,
    /// Sessions opened since the server started.
    pub sessions_total: u64,
    /// Frames received from sessions (after the handshake).
    pub frames_in: u64,
    /// Frames the hub addressed to sessions.
    pub frames_out: u64,
    /// Frames not delivered: unreliable ones dropped for a full send queue, and reliable ones to a
    /// session closed as a slow consumer.
    pub dropped: u64,
    /// Sessions closed because they did not read fast enough.
    pub slow_consumers: u64,
}

/// Bucket bounds a [`Histogram`] holds at most.
pub(crate) const MAX_BUCKETS: usize = 8;

/// A distribution in fixed buckets, as Prometheus's histograms count one: for each upper bound,
/// the observations at or below it; and their sum and count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Histogram {
    /// The buckets' upper bounds, rising; only the first `len` are used.
    bounds: [u64; MAX_BUCKETS],
    len: usize,
    /// Observations at or below each bound and above the one before it.
    counts: [u64; MAX_BUCKETS],
    /// The sum of every observation.
    pub sum: u64,
    /// Observations.
    pub count: u64,
}

impl Histogram {
    /// An empty histogram with these bounds (at most eight, rising; more are left out).
    pub const fn new(bounds: &[u64]) -> Self {
        let mut b = [0; MAX_BUCKETS];
        let mut i = 0;
        while i < bounds.len() && i < MAX_BUCKETS {
            b[i] = bounds[i];
            i += 1;
        }
        Self {
            bounds: b,
            len: i,
            counts: [0; MAX_BUCKETS],
            sum: 0,
            count: 0,
        }
    }

    /// Counts one observation.
    pub fn observe(&mut self, value: u64) {
        self.sum = self.sum.saturating_add(value);
        self.count += 1;
        if let Some(i) = self.bounds[..self.len].iter().position(|&b| value <= b) {
            self.counts[i] += 1;
        }
    }

    /// Each bound with the observations at or below it (cumulative, as the exposition wants);
    /// the rest are above the last bound (`+Inf` is `count`).
    pub fn cumulative(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.bounds[..self.len]
            .iter()
            .zip(&self.counts)
            .scan(0, |total, (&bound, &n)| {
                *total += n;
                Some((bound, *total))
            })
    }
}

/// Deliveries per accepted publish: 0 (nobody subscribed), 1, up to 10, 100, ... 100,000.
pub(crate) const FANOUT_BOUNDS: [u64; 7] = [0, 1, 10, 100, 1_000, 10_000, 100_000];
/// A routed request's time from the hub routing it to its responder's answer, microseconds:
/// 100 µs, 1 ms, 10 ms, 100 ms, 1 s, 10 s.
pub(crate) const ROUTED_REQUEST_BOUNDS_US: [u64; 6] =
    [100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/// The hub's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubStats {
    /// TCP sessions.
    pub tcp: TransportStats,
    /// UDP sessions.
    pub udp: TransportStats,
    /// WebSocket sessions.
    pub websocket: TransportStats,
    /// Server-Sent Events streams.
    pub sse: TransportStats,
    /// Sessions held by HTTP requests (polls, publishes, requests, queue operations).
    pub http: TransportStats,
    /// Publishes accepted.
    pub published: u64,
    /// Messages pushed to subscribers.
    pub delivered: u64,
    /// Of `published`: those the worker that read them delivered itself (`hub::local_route`).
    pub published_by_workers: u64,
    /// Requests answered or routed.
    pub requests: u64,
    /// Routed requests that reached their deadline unanswered.
    pub request_timeouts: u64,
    /// Handshakes refused for a missing, expired, forged or misused connect token.
    pub auth_refused: u64,
    /// Operations a session's connect token did not allow.
    pub forbidden: u64,
    /// Deliveries per accepted publish.
    pub fanout: Histogram,
    /// Routed requests' times to their answers, microseconds (timeouts are not in it).
    pub routed_request_us: Histogram,
}

impl Default for HubStats {
    fn default() -> Self {
        Self {
            tcp: TransportStats::default(),
            udp: TransportStats::default(),
            websocket: TransportStats::default(),
            sse: TransportStats::default(),
            http: TransportStats::default(),
            published: 0,
            delivered: 0,
            published_by_workers: 0,
            requests: 0,
            request_timeouts: 0,
            auth_refused: 0,
            forbidden: 0,
            fanout: Histogram::new(&FANOUT_BOUNDS),
            routed_request_us: Histogram::new(&ROUTED_REQUEST_BOUNDS_US),
        }
    }
}

impl HubStats {
    pub(crate) fn transport(&mut self, t: Transport) -> &mut TransportStats {
        match t {
            Transport::Tcp => &mut self.tcp,
            Transport::Udp => &mut self.udp,
            Transport::WebSocket => &mut self.websocket,
            Transport::Sse => &mut self.sse,
            Transport::Http => &mut self.http,
        }
    }
}

/// Writes a flat JSON object of named numbers (names are ours: no escaping needed).
pub(crate) fn json_object(out: &mut String, fields: &[(&str, u64)]) {
    use std::fmt::Write;
    out.push('{');
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{name}\":{value}");
    }
    out.push('}');
}

/// Writes `text` as a JSON string: quotes, backslashes and control characters escaped.
pub(crate) fn json_string(out: &mut String, text: &str) {
    use std::fmt::Write;
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl TransportStats {
    pub(crate) fn json(&self, out: &mut String) {
        json_object(
            out,
            &[
                ("sessions", self.sessions),
                ("sessions_total", self.sessions_total),
                ("frames_in", self.frames_in),
                ("frames_out", self.frames_out),
                ("dropped", self.dropped),
                ("slow_consumers", self.slow_consumers),
            ],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_each_observation_once_in_its_bucket() {
        let mut h = Histogram::new(&[0, 1, 10]);
        for v in [0, 1, 1, 5, 10, 11, 500] {
            h.observe(v);
        }
        assert_eq!(
            h.cumulative().collect::<Vec<_>>(),
            [(0, 1), (1, 3), (10, 5)]
        );
        assert_eq!((h.count, h.sum), (7, 528));
    }
}
