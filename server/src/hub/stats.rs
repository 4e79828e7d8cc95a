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

/// The hub's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
    /// Requests answered or routed.
    pub requests: u64,
    /// Routed requests that reached their deadline unanswered.
    pub request_timeouts: u64,
    /// Handshakes refused for a missing, expired, forged or misused connect token.
    pub auth_refused: u64,
    /// Operations a session's connect token did not allow.
    pub forbidden: u64,
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
