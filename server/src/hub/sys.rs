//! The server's built-in request targets (docs/PROTOCOL.md section 5.4): `sys.ping`, `sys.time`,
//! `sys.info`, `sys.stats`, `sys.nodes` and `sys.services` (section 12.3). Their payloads are UTF-8: `pong`, a decimal count of microseconds
//! since the UNIX epoch, and JSON objects.

use std::fmt::Write;

use bytes::Bytes;
use framewire_protocol::wire::{Reason, Status, VERSION};

use super::stats::{HubStats, json_object};
use crate::counters::CounterSnapshot;

/// The facts `sys.info` and `sys.stats` report that the hub does not keep itself.
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    /// Wall-clock time when the server's protocol clock read zero, in microseconds since the
    /// UNIX epoch (the hub never reads a clock).
    pub unix_micros_at_zero: u64,
    /// The limits an operator set, by name, for `sys.info`.
    pub limits: Vec<(&'static str, u64)>,
    /// Signs session tokens (random at start; with a data directory, the directory's).
    pub token_key: super::token::TokenKey,
    /// Scrambles the keys of sessions (random at start, so that the next run's keys are others).
    pub session_seed: [u8; 16],
    /// Connect tokens: the key that verifies them, and whether they are required.
    pub auth: super::auth::AuthConfig,
}

/// What the built-in methods read.
pub(crate) struct SysView<'a> {
    pub(crate) info: &'a ServerInfo,
    pub(crate) now_micros: u64,
    pub(crate) stats: &'a HubStats,
    pub(crate) refused: CounterSnapshot,
    pub(crate) subscriptions: usize,
    pub(crate) retained: usize,
    pub(crate) parked_sessions: usize,
    /// Numbered Messages kept until their sessions confirm them.
    pub(crate) unconfirmed_messages: usize,
    pub(crate) waiting_for_disk: usize,
    pub(crate) dead_lettered: u64,
    pub(crate) services: usize,
    /// The services, for `sys.services`.
    pub(crate) responders: &'a super::services::Services,
    pub(crate) pending_requests: usize,
    pub(crate) queues: usize,
    pub(crate) queued_messages: usize,
    /// Operations refused, by status.
    pub(crate) refused_ops: Vec<(Status, u64)>,
    /// The server's counters, and what it knows of the cluster's nodes.
    pub(crate) counters: &'a crate::counters::Counters,
}

/// Answers a `sys.*` target: `Some((status, payload))`, or `None` when it names no method.
pub(crate) fn call(target: &str, view: &SysView<'_>) -> Option<(Status, Bytes)> {
    let text = match target {
        "sys.ping" => return Some((Status::OK, Bytes::from_static(b"pong"))),
        "sys.time" => (view.info.unix_micros_at_zero + view.now_micros).to_string(),
        "sys.info" => info(view),
        "sys.stats" => stats(view),
        "sys.nodes" => view.counters.cluster.nodes_json(),
        "sys.services" => view
            .counters
            .cluster
            .services_json(&view.responders.responders()),
        _ => return None,
    };
    Some((Status::OK, Bytes::from(text)))
}

fn info(view: &SysView<'_>) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "{{\"server\":\"framewire-server\",\"version\":\"{}\",\"protocol\":{VERSION},\"uptime_ms\":{},\"limits\":",
        env!("CARGO_PKG_VERSION"),
        view.now_micros / 1000,
    );
    json_object(&mut s, &view.info.limits);
    s.push('}');
    s
}

fn stats(view: &SysView<'_>) -> String {
    let h = view.stats;
    let mut s = String::from("{\"tcp\":");
    h.tcp.json(&mut s);
    s.push_str(",\"udp\":");
    h.udp.json(&mut s);
    s.push_str(",\"websocket\":");
    h.websocket.json(&mut s);
    s.push_str(",\"sse\":");
    h.sse.json(&mut s);
    s.push_str(",\"http\":");
    h.http.json(&mut s);
    s.push_str(",\"hub\":");
    json_object(
        &mut s,
        &[
            ("published", h.published),
            ("delivered", h.delivered),
            ("published_by_workers", h.published_by_workers),
            ("requests", h.requests),
            ("request_timeouts", h.request_timeouts),
            ("subscriptions", view.subscriptions as u64),
            ("retained", view.retained as u64),
            ("parked_sessions", view.parked_sessions as u64),
            ("unconfirmed_messages", view.unconfirmed_messages as u64),
            ("waiting_for_disk", view.waiting_for_disk as u64),
            ("dead_lettered", view.dead_lettered),
            ("services", view.services as u64),
            ("pending_requests", view.pending_requests as u64),
            ("queues", view.queues as u64),
            ("queued_messages", view.queued_messages as u64),
        ],
    );
    s.push_str(",\"refused\":");
    json_object(
        &mut s,
        &[
            ("server_full", view.refused.refused_server_full),
            ("address_limit", view.refused.refused_address_limit),
            ("session_limit", view.refused.refused_session_limit),
            ("handshake_rate", view.refused.refused_rate_limited),
            ("udp_fragments_or_messages", view.refused.udp_refused),
            (
                "udp_reassembly_expired",
                view.refused.udp_reassembly_expired,
            ),
            ("udp_bad_datagrams", view.refused.udp_dropped),
            ("udp_sealed_forged", view.refused.udp_sealed_forged),
            ("udp_sealed_replayed", view.refused.udp_sealed_replayed),
            ("auth_failed", h.auth_refused),
            ("forbidden", h.forbidden),
        ],
    );
    s.push_str(",\"tls\":");
    json_object(
        &mut s,
        &[
            ("handshakes", view.refused.tls_handshakes),
            ("not_tls", view.refused.tls_not_tls),
            ("bad_certificate", view.refused.tls_bad_certificate),
            ("handshake_timeout", view.refused.tls_handshake_timeout),
            ("failed", view.refused.tls_failed),
        ],
    );
    s.push_str(",\"discovery\":");
    json_object(&mut s, &view.refused.discovery.named());
    s.push_str(",\"cluster\":");
    let c = view.refused.cluster;
    json_object(
        &mut s,
        &[
            ("connected", u64::from(c.connected)),
            ("published", c.published),
            ("received", c.received),
            ("dropped", c.dropped),
            ("malformed", c.malformed),
        ],
    );
    s.push_str(",\"refused_operations\":");
    let refused: Vec<(String, u64)> = view
        .refused_ops
        .iter()
        .map(|(st, n)| {
            let name = st
                .name()
                .map_or_else(|| format!("status_{}", st.0), str::to_ascii_lowercase);
            (name, *n)
        })
        .collect();
    let fields: Vec<(&str, u64)> = refused.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    json_object(&mut s, &fields);
    s.push_str(",\"closed\":");
    let closed: Vec<(String, u64)> = Reason::ALL
        .iter()
        .filter_map(|r| Some((r.name()?.to_ascii_lowercase(), view.refused.closed(*r))))
        .collect();
    let fields: Vec<(&str, u64)> = closed.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    json_object(&mut s, &fields);
    s.push('}');
    s
}
