//! `GET /metrics`: what `sys.stats` reports, in Prometheus's text exposition format 0.0.4
//! (docs/PROTOCOL.md section 11.4). Counters end in `_total`; what can go down is a gauge.

use std::fmt::Write;

use framewire_protocol::wire::Reason;

use crate::counters::{HTTP_STATUSES, WEBSOCKET_CLOSE_CODES};
use crate::hub::sys::SysView;
use crate::hub::{Histogram, TransportStats};

/// The content type of the exposition.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Writes metric families, each with its `HELP` and `TYPE` lines once.
struct Exposition {
    out: String,
}

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

impl Exposition {
    /// A family of samples; `labels` is `label="value"` text (ours: nothing to escape), or empty.
    fn family(&mut self, name: &str, kind: Kind, help: &str, samples: &[(String, u64)]) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            if labels.is_empty() {
                let _ = writeln!(self.out, "{name} {value}");
            } else {
                let _ = writeln!(self.out, "{name}{{{labels}}} {value}");
            }
        }
    }

    fn one(&mut self, name: &str, kind: Kind, help: &str, value: u64) {
        self.family(name, kind, help, &[(String::new(), value)]);
    }

    /// A histogram: cumulative `_bucket`s by upper bound (`le`), `+Inf`, `_sum` and `_count`;
    /// observations and bounds are divided by `unit` (1,000,000 for microseconds as seconds).
    #[allow(
        clippy::cast_precision_loss,
        reason = "the exposition's values are floats: a sum past 2^52 loses its last digits in Prometheus too"
    )]
    fn histogram(&mut self, name: &str, help: &str, h: &Histogram, unit: f64) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} histogram");
        for (bound, n) in h.cumulative() {
            let le = bound as f64 / unit;
            let _ = writeln!(self.out, "{name}_bucket{{le=\"{le}\"}} {n}");
        }
        let _ = writeln!(self.out, "{name}_bucket{{le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(self.out, "{name}_sum {}", h.sum as f64 / unit);
        let _ = writeln!(self.out, "{name}_count {}", h.count);
    }
}

fn labelled<T: Copy>(
    label: &str,
    items: impl IntoIterator<Item = (T, u64)>,
    name: impl Fn(T) -> String,
) -> Vec<(String, u64)> {
    items
        .into_iter()
        .map(|(item, value)| (format!("{label}=\"{}\"", name(item)), value))
        .collect()
}

/// The exposition of everything `view` holds.
pub(crate) fn render(view: &SysView<'_>) -> String {
    let mut x = Exposition {
        out: String::with_capacity(8 * 1024),
    };
    let h = view.stats;
    let transports = [
        ("tcp", &h.tcp),
        ("udp", &h.udp),
        ("websocket", &h.websocket),
        ("sse", &h.sse),
        ("http", &h.http),
    ];
    let per_transport = |field: fn(&TransportStats) -> u64| {
        labelled(
            "transport",
            transports.map(|(name, t)| (name, field(t))),
            str::to_string,
        )
    };
    x.one(
        "framewire_uptime_seconds",
        Kind::Gauge,
        "Seconds since the server started.",
        view.now_micros / 1_000_000,
    );
    x.family(
        "framewire_sessions",
        Kind::Gauge,
        "Sessions open now, by transport (TCP counts TLS too).",
        &per_transport(|t| t.sessions),
    );
    x.family(
        "framewire_sessions_opened_total",
        Kind::Counter,
        "Sessions opened, by transport.",
        &per_transport(|t| t.sessions_total),
    );
    x.family(
        "framewire_frames_received_total",
        Kind::Counter,
        "Frames received from sessions after their handshakes, by transport.",
        &per_transport(|t| t.frames_in),
    );
    x.family(
        "framewire_frames_sent_total",
        Kind::Counter,
        "Frames the hub addressed to sessions, by transport.",
        &per_transport(|t| t.frames_out),
    );
    x.family(
        "framewire_frames_dropped_total",
        Kind::Counter,
        "Frames not delivered (full send queues, slow consumers), by transport.",
        &per_transport(|t| t.dropped),
    );
    x.family(
        "framewire_slow_consumers_total",
        Kind::Counter,
        "Sessions closed for not reading fast enough, by transport.",
        &per_transport(|t| t.slow_consumers),
    );
    hub_families(&mut x, view);
    x.histogram(
        "framewire_publish_fanout",
        "Deliveries per accepted publish.",
        &h.fanout,
        1.0,
    );
    x.histogram(
        "framewire_routed_request_seconds",
        "Time from routing a request to a registered service to its answer (timeouts not included).",
        &h.routed_request_us,
        1e6,
    );
    refusal_families(&mut x, view);
    web_families(&mut x, view);
    x.out
}

fn hub_families(x: &mut Exposition, view: &SysView<'_>) {
    let h = view.stats;
    for (name, help, value) in [
        (
            "framewire_published_total",
            "Publishes accepted.",
            h.published,
        ),
        (
            "framewire_delivered_total",
            "Messages pushed to subscribers.",
            h.delivered,
        ),
        (
            "framewire_published_by_workers_total",
            "Publishes the worker that read them delivered itself, without the hub (counted in framewire_published_total too).",
            h.published_by_workers,
        ),
        (
            "framewire_requests_total",
            "Requests answered or routed.",
            h.requests,
        ),
        (
            "framewire_request_timeouts_total",
            "Routed requests that reached their deadline unanswered.",
            h.request_timeouts,
        ),
        (
            "framewire_dead_lettered_total",
            "Queue messages moved to a dead-letter queue.",
            view.dead_lettered,
        ),
    ] {
        x.one(name, Kind::Counter, help, value);
    }
    for (name, help, value) in [
        (
            "framewire_subscriptions",
            "Subscriptions held.",
            view.subscriptions,
        ),
        (
            "framewire_retained_messages",
            "Retained messages held.",
            view.retained,
        ),
        (
            "framewire_parked_sessions",
            "Sessions parked for resumption.",
            view.parked_sessions,
        ),
        (
            "framewire_unconfirmed_messages",
            "Numbered messages kept until their sessions confirm them.",
            view.unconfirmed_messages,
        ),
        (
            "framewire_waiting_for_disk",
            "Confirmations waiting for their records to be durable.",
            view.waiting_for_disk,
        ),
        (
            "framewire_services",
            "Services registered by clients.",
            view.services,
        ),
        (
            "framewire_pending_requests",
            "Routed requests awaiting an answer.",
            view.pending_requests,
        ),
        ("framewire_queues", "Work queues.", view.queues),
        (
            "framewire_queued_messages",
            "Messages in work queues, ready or unacked.",
            view.queued_messages,
        ),
    ] {
        x.one(name, Kind::Gauge, help, value as u64);
    }
}

fn refusal_families(x: &mut Exposition, view: &SysView<'_>) {
    let r = &view.refused;
    let refused = [
        ("server_full", r.refused_server_full),
        ("address_limit", r.refused_address_limit),
        ("session_limit", r.refused_session_limit),
        ("handshake_rate", r.refused_rate_limited),
        ("udp_fragments_or_messages", r.udp_refused),
        ("udp_reassembly_expired", r.udp_reassembly_expired),
        ("udp_bad_datagrams", r.udp_dropped),
        ("udp_sealed_forged", r.udp_sealed_forged),
        ("udp_sealed_replayed", r.udp_sealed_replayed),
        ("auth_failed", view.stats.auth_refused),
        ("forbidden", view.stats.forbidden),
    ];
    x.family(
        "framewire_refused_total",
        Kind::Counter,
        "Connections, handshakes, datagrams and operations refused, by why.",
        &labelled("why", refused, str::to_string),
    );
    let operations: Vec<(String, u64)> = view
        .refused_ops
        .iter()
        .map(|(status, n)| {
            let name = status
                .name()
                .map_or_else(|| format!("status_{}", status.0), str::to_ascii_lowercase);
            (format!("status=\"{name}\""), *n)
        })
        .collect();
    x.family(
        "framewire_refused_operations_total",
        Kind::Counter,
        "Operations answered with an error status, by status.",
        &operations,
    );
    let closed: Vec<(String, u64)> = Reason::ALL
        .iter()
        .filter_map(|reason| {
            let name = reason.name()?.to_ascii_lowercase();
            Some((format!("reason=\"{name}\""), r.closed(*reason)))
        })
        .collect();
    x.family(
        "framewire_sessions_closed_by_server_total",
        Kind::Counter,
        "Sessions the server closed, by reason.",
        &closed,
    );
    x.one(
        "framewire_tls_handshakes_total",
        Kind::Counter,
        "TLS handshakes completed.",
        r.tls_handshakes,
    );
    let tls = [
        ("not_tls", r.tls_not_tls),
        ("bad_certificate", r.tls_bad_certificate),
        ("handshake_timeout", r.tls_handshake_timeout),
        ("failed", r.tls_failed),
    ];
    x.family(
        "framewire_tls_failures_total",
        Kind::Counter,
        "TLS handshakes that failed, by why.",
        &labelled("why", tls, str::to_string),
    );
    x.family(
        "framewire_discovery_requests_total",
        Kind::Counter,
        "LAN discovery requests, by what became of them.",
        &labelled("outcome", r.discovery.named(), str::to_string),
    );
}

fn web_families(x: &mut Exposition, view: &SysView<'_>) {
    let r = &view.refused;
    let statuses = HTTP_STATUSES
        .iter()
        .map(ToString::to_string)
        .chain(["other".to_string()])
        .zip(r.http_responses);
    x.family(
        "framewire_http_responses_total",
        Kind::Counter,
        "HTTP responses sent, by status code.",
        &statuses
            .map(|(code, n)| (format!("code=\"{code}\""), n))
            .collect::<Vec<_>>(),
    );
    let codes = WEBSOCKET_CLOSE_CODES
        .iter()
        .map(ToString::to_string)
        .chain(["other".to_string()])
        .zip(r.websocket_closes);
    x.family(
        "framewire_websocket_closes_total",
        Kind::Counter,
        "WebSocket close frames the server sent, by close code.",
        &codes
            .map(|(code, n)| (format!("code=\"{code}\""), n))
            .collect::<Vec<_>>(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_is_exposed_with_cumulative_buckets_sum_and_count() {
        let mut h = Histogram::new(&[100, 1_000]);
        for us in [50, 150, 700, 5_000] {
            h.observe(us);
        }
        let mut x = Exposition { out: String::new() };
        x.histogram("t_seconds", "Test.", &h, 1e6);
        assert_eq!(
            x.out,
            "# HELP t_seconds Test.\n# TYPE t_seconds histogram\n\
             t_seconds_bucket{le=\"0.0001\"} 1\nt_seconds_bucket{le=\"0.001\"} 3\n\
             t_seconds_bucket{le=\"+Inf\"} 4\nt_seconds_sum 0.0059\nt_seconds_count 4\n"
        );
    }
}
