//! Every setting an operator may change, in one table: its name (`max_connections` in a TOML file,
//! `--max-connections` on the command line), what it means, and how its value is read. The usage
//! text, the flag parser and the configuration-file reader all come from this table, so a setting
//! cannot exist in one and be missing from another.

use std::net::SocketAddr;
use std::time::Duration;

use framewire_protocol::wire::{MAX_FRAME_LEN_CEILING, MIN_AGREED_FRAME_LEN};

use crate::config::ServerConfig;

/// One setting.
pub(crate) struct Setting {
    /// The name in a configuration file; the flag is `--` and the name with `-` for `_`.
    pub(crate) key: &'static str,
    /// What the value looks like, for the usage text.
    pub(crate) value: &'static str,
    /// What it does.
    pub(crate) help: &'static str,
    /// Reads a value into the configuration; the error says what is wrong with the value.
    pub(crate) set: fn(&mut ServerConfig, &str) -> Result<(), String>,
}

impl Setting {
    /// Whether each occurrence adds to the setting (a TOML array sets it once per element)
    /// rather than replacing it.
    pub(crate) fn repeatable(&self) -> bool {
        matches!(self.key, "queue" | "acl")
    }
}

fn addr(v: &str) -> Result<SocketAddr, String> {
    v.parse()
        .map_err(|_| format!("{v:?} is not an address like 127.0.0.1:7400"))
}

fn number<T: std::str::FromStr>(v: &str, min: u64, max: u64) -> Result<T, String> {
    v.parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .and_then(|n| n.to_string().parse().ok())
        .ok_or_else(|| format!("{v:?} is not a whole number from {min} to {max}"))
}

fn boolean(v: &str) -> Result<bool, String> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{v:?} is neither true nor false")),
    }
}

/// `off`, or NATS URLs separated by commas, each `nats://HOST:PORT` (or `tls://`).
/// `tcp=1.2.3.4:7400,udp=1.2.3.4:7400`, or `off`.
fn advertised(v: &str) -> Result<Vec<(&'static str, SocketAddr)>, String> {
    use framewire_protocol::wire::node_card::ADDRESS_KINDS;
    if v == "off" {
        return Ok(Vec::new());
    }
    let mut list: Vec<(&'static str, SocketAddr)> = Vec::new();
    for item in v.split(',') {
        let (kind, addr) = item
            .trim()
            .split_once('=')
            .ok_or_else(|| format!("{item:?} is not KIND=ADDRESS (tcp=1.2.3.4:7400)"))?;
        let kind = ADDRESS_KINDS
            .iter()
            .copied()
            .find(|k| *k == kind)
            .ok_or_else(|| format!("{kind:?} is not one of tcp, udp, tls, http, https"))?;
        let addr: SocketAddr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an address like 1.2.3.4:7400"))?;
        if list.iter().any(|(k, _)| *k == kind) {
            return Err(format!("{kind} is advertised twice"));
        }
        list.push((kind, addr));
    }
    Ok(list)
}

fn cluster_urls(v: &str) -> Result<Vec<String>, String> {
    if v == "off" {
        return Ok(Vec::new());
    }
    v.split(',')
        .map(|u| {
            let u = u.trim();
            let rest = u
                .strip_prefix("nats://")
                .or_else(|| u.strip_prefix("tls://"))
                .ok_or_else(|| format!("{u:?} is not a NATS URL like nats://127.0.0.1:4222"))?;
            if rest.is_empty() || rest.contains(char::is_whitespace) {
                return Err(format!("{u:?} names no server"));
            }
            Ok(u.to_string())
        })
        .collect()
}

fn addr_or_off(v: &str) -> Result<Option<SocketAddr>, String> {
    if v == "off" {
        return Ok(None);
    }
    addr(v).map(Some).map_err(|e| format!("{e}, nor \"off\""))
}

fn millis(v: &str, min: u64) -> Result<Duration, String> {
    number::<u64>(v, min, 24 * 3600 * 1000).map(Duration::from_millis)
}

/// The settings, in the order the usage text lists them.
pub(crate) const SETTINGS: &[Setting] = &[
    Setting {
        key: "tcp",
        value: "ADDR|off",
        help: "listen for TCP on ADDR, or not at all (default 127.0.0.1:7400)",
        set: |c, v| {
            c.tcp_addr = addr_or_off(v)?;
            Ok(())
        },
    },
    Setting {
        key: "udp",
        value: "ADDR|off",
        help: "serve UDP on ADDR, or not at all (default 127.0.0.1:7400)",
        set: |c, v| {
            c.udp_addr = addr_or_off(v)?;
            Ok(())
        },
    },
    Setting {
        key: "tls",
        value: "ADDR|off",
        help: "listen for TLS on ADDR, beside the plain TCP listener or instead of it (default off; needs tls_cert and tls_key); also tls_listen",
        set: |c, v| {
            c.tls_addr = addr_or_off(v)?;
            Ok(())
        },
    },
    Setting {
        key: "http",
        value: "ADDR|off",
        help: "listen for HTTP on ADDR: WebSocket sessions at /ws, Prometheus metrics at /metrics (default 127.0.0.1:7480); also http_listen",
        set: |c, v| {
            c.http_addr = addr_or_off(v)?;
            Ok(())
        },
    },
    Setting {
        key: "https",
        value: "ADDR|off",
        help: "listen for HTTP over TLS on ADDR: what the HTTP listener serves, as https and wss (default off; needs tls_cert and tls_key); also https_listen",
        set: |c, v| {
            c.https_addr = addr_or_off(v)?;
            Ok(())
        },
    },
    Setting {
        key: "http_head_timeout_ms",
        value: "MS",
        help: "how long an HTTP request head may take to arrive; an idle keep-alive connection closes after as long (default 10000)",
        set: |c, v| {
            c.http_head_timeout_ms = number(v, 100, 3_600_000)?;
            Ok(())
        },
    },
    Setting {
        key: "tls_cert",
        value: "FILE",
        help: "the TLS certificate chain, PEM, the server's own first (read again on SIGHUP)",
        set: |c, v| {
            c.tls_cert = Some(v.into());
            Ok(())
        },
    },
    Setting {
        key: "tls_key",
        value: "FILE",
        help: "the TLS private key, PEM: PKCS#8, PKCS#1 or SEC1 (read again on SIGHUP)",
        set: |c, v| {
            c.tls_key = Some(v.into());
            Ok(())
        },
    },
    Setting {
        key: "tls_client_ca",
        value: "FILE",
        help: "require TLS clients to show a certificate from a CA in FILE (PEM); its subject's common name becomes the session's identity",
        set: |c, v| {
            c.tls_client_ca = Some(v.into());
            Ok(())
        },
    },
    Setting {
        key: "threads",
        value: "N",
        help: "worker threads, each with its own event loop (default: the number of cores)",
        set: |c, v| {
            c.threads = number(v, 1, 1024)?;
            Ok(())
        },
    },
    Setting {
        key: "udp_batch_receive",
        value: "true|false",
        help: "receive many UDP datagrams per system call, recvmmsg (default false)",
        set: |c, v| {
            c.udp_offload.batch_receive = boolean(v)?;
            Ok(())
        },
    },
    Setting {
        key: "udp_segment_receive",
        value: "true|false",
        help: "take a sender's UDP datagrams of one size in one read, UDP_GRO (default true)",
        set: |c, v| {
            c.udp_offload.segment_receive = boolean(v)?;
            Ok(())
        },
    },
    Setting {
        key: "udp_segment_send",
        value: "true|false",
        help: "send a UDP session's datagrams of one size in one system call, UDP_SEGMENT (default true)",
        set: |c, v| {
            c.udp_offload.segment_send = boolean(v)?;
            Ok(())
        },
    },
    Setting {
        key: "max_frame_len",
        value: "BYTES",
        help: "largest frame accepted and sent, agreed with each client (512 to 16777216, default 65536)",
        set: |c, v| {
            c.max_frame_len = number(
                v,
                u64::from(MIN_AGREED_FRAME_LEN),
                u64::from(MAX_FRAME_LEN_CEILING),
            )?;
            Ok(())
        },
    },
    Setting {
        key: "max_queued_bytes",
        value: "BYTES",
        help: "output a connection may queue before it is closed as a slow consumer (default 1048576)",
        set: |c, v| {
            c.max_queued_bytes = number(v, 1024, 1 << 30)?;
            Ok(())
        },
    },
    Setting {
        key: "max_reassembly_bytes",
        value: "BYTES",
        help: "bytes a UDP session may hold for fragmented messages (default 1048576)",
        set: |c, v| {
            c.max_reassembly_bytes = number(v, 1024, 1 << 30)?;
            Ok(())
        },
    },
    Setting {
        key: "idle_timeout_ms",
        value: "MS",
        help: "silence after which a session is declared dead (default 30000)",
        set: |c, v| {
            c.idle_timeout_ms = number(v, 100, u64::from(u32::MAX))?;
            Ok(())
        },
    },
    Setting {
        key: "heartbeat_interval_ms",
        value: "MS",
        help: "silence after which a side sends a Ping (default 10000)",
        set: |c, v| {
            c.heartbeat_interval_ms = number(v, 10, u64::from(u32::MAX))?;
            Ok(())
        },
    },
    Setting {
        key: "first_frame_deadline_ms",
        value: "MS",
        help: "time a new connection has to send its Hello (default 5000)",
        set: |c, v| {
            c.first_frame_deadline_ms = number(v, 10, u64::from(u32::MAX))?;
            Ok(())
        },
    },
    Setting {
        key: "max_connections",
        value: "N",
        help: "TCP connections served at once (default 10000)",
        set: |c, v| {
            c.max_connections = number(v, 1, 10_000_000)?;
            Ok(())
        },
    },
    Setting {
        key: "max_connections_per_address",
        value: "N",
        help: "TCP connections from one IP address (default 1000)",
        set: |c, v| {
            c.max_connections_per_address = number(v, 1, 10_000_000)?;
            Ok(())
        },
    },
    Setting {
        key: "max_udp_sessions",
        value: "N",
        help: "UDP sessions at once (default 10000)",
        set: |c, v| {
            c.max_udp_sessions = number(v, 1, 10_000_000)?;
            Ok(())
        },
    },
    Setting {
        key: "max_handshakes_per_address_per_sec",
        value: "N",
        help: "TCP connections and UDP Hellos one address may start per second (default 1000)",
        set: |c, v| {
            c.max_handshakes_per_address_per_sec = number(v, 1, 10_000_000)?;
            Ok(())
        },
    },
    Setting {
        key: "keepalive_idle_ms",
        value: "MS",
        help: "kernel TCP keepalive: idle time before the first probe (default 30000)",
        set: |c, v| {
            c.keepalive_idle_ms = number(v, 1000, u64::from(u32::MAX))?;
            Ok(())
        },
    },
    Setting {
        key: "keepalive_interval_ms",
        value: "MS",
        help: "kernel TCP keepalive: time between probes (default 10000)",
        set: |c, v| {
            c.keepalive_interval_ms = number(v, 1000, u64::from(u32::MAX))?;
            Ok(())
        },
    },
    Setting {
        key: "keepalive_retries",
        value: "N",
        help: "kernel TCP keepalive: unanswered probes before the connection drops (default 3)",
        set: |c, v| {
            c.keepalive_retries = number(v, 1, 255)?;
            Ok(())
        },
    },
    Setting {
        key: "user_timeout_ms",
        value: "MS",
        help: "TCP_USER_TIMEOUT: how long sent data may go unacknowledged (default 60000)",
        set: |c, v| {
            c.user_timeout_ms = number(v, 1000, u64::from(u32::MAX))?;
            Ok(())
        },
    },
    Setting {
        key: "token_key_file",
        value: "FILE",
        help: "verify connect tokens with the key in FILE (at least 32 bytes)",
        set: |c, v| {
            c.token_key_file = Some(v.into());
            Ok(())
        },
    },
    Setting {
        key: "require_tokens",
        value: "true|false",
        help: "refuse clients without a valid connect token (default false)",
        set: |c, v| {
            c.require_tokens = boolean(v)?;
            Ok(())
        },
    },
    Setting {
        key: "require_encryption",
        value: "true|false",
        help: "refuse sessions in the clear: plain TCP (use TLS), and UDP sessions whose connect token carries no keys (default false)",
        set: |c, v| {
            c.require_encryption = boolean(v)?;
            Ok(())
        },
    },
    Setting {
        key: "acl",
        value: "'IDENTITY KEY=PATTERNS...'",
        help: "what a client certificate's identity may do: publish=, subscribe= (topic filters), request=, serve=, queue= (names, * for a prefix), comma-separated; once any rule exists, an identity without one may only make sys.* requests; repeat for more identities",
        set: |c, v| {
            c.acl.push(v.parse()?);
            Ok(())
        },
    },
    Setting {
        key: "capture",
        value: "FILE",
        help: "write what the server receives and sends to FILE (pcapng: Wireshark, framewire inspect)",
        set: |c, v| {
            c.capture = Some(v.into());
            Ok(())
        },
    },
    Setting {
        key: "capture_max_bytes",
        value: "BYTES",
        help: "rotate the capture file at this size (default 104857600)",
        set: |c, v| {
            c.capture_max_bytes = number(v, 4096, u64::MAX)?;
            Ok(())
        },
    },
    Setting {
        key: "capture_files",
        value: "N",
        help: "capture files kept, FILE, FILE.1, ... (default 2)",
        set: |c, v| {
            c.capture_files = number(v, 1, 1000)?;
            Ok(())
        },
    },
    Setting {
        key: "cluster",
        value: "URL[,URL...]|off",
        help: "join the other framewire nodes on these NATS servers (nats://HOST:PORT): one publish/subscribe across them (default off)",
        set: |c, v| {
            c.cluster = cluster_urls(v)?;
            Ok(())
        },
    },
    Setting {
        key: "node_name",
        value: "NAME",
        help: "this node's name in the cluster and in LAN discovery answers (default framewire-PID)",
        set: |c, v| {
            if !framewire_protocol::wire::node_card::valid_node_name(v) {
                return Err(format!(
                    "{v:?} is not a node name: 1 to 64 bytes, no space, control byte, '.', '*', '>' or '='"
                ));
            }
            c.node_name = Some(v.into());
            Ok(())
        },
    },
    Setting {
        key: "advertise",
        value: "KIND=ADDR[,...]|off",
        help: "the addresses this node tells clients and other nodes it serves on (sys.nodes, LAN discovery), by kind (tcp, udp, tls, http, https), in place of the bound ones: for a node behind NAT, or bound to 0.0.0.0 (default off: the bound addresses)",
        set: |c, v| {
            c.advertise = advertised(v)?;
            Ok(())
        },
    },
    Setting {
        key: "discovery",
        value: "true|false",
        help: "answer LAN discovery requests (`framewire discover`) on the UDP listener with this node's name and addresses (default true)",
        set: |c, v| {
            c.discovery = boolean(v)?;
            Ok(())
        },
    },
    Setting {
        key: "discovery_rate",
        value: "N",
        help: "LAN discovery answers per second at most, across the server (default 20)",
        set: |c, v| {
            c.discovery_rate = number(v, 1, 100_000)?;
            Ok(())
        },
    },
    Setting {
        key: "data_dir",
        value: "DIR",
        help: "keep queues and retained messages in DIR across restarts and crashes (default: in memory only)",
        set: |c, v| {
            c.data_dir = Some(v.into());
            Ok(())
        },
    },
    Setting {
        key: "fsync",
        value: "always|interval:MS|never",
        help: "when the data directory is synced: before each confirmation, every MS, or as the OS likes (default always)",
        set: |c, v| {
            c.fsync = v.parse()?;
            Ok(())
        },
    },
    Setting {
        key: "max_disk_bytes",
        value: "BYTES",
        help: "most bytes the data directory's log may hold; pushes beyond get STORAGE_FULL (default 8589934592)",
        set: |c, v| {
            c.max_disk_bytes = number(v, 1 << 20, u64::MAX)?;
            Ok(())
        },
    },
    Setting {
        key: "salvage",
        value: "true|false",
        help: "start even if records in the middle of the data directory's log are corrupt, dropping them (default false)",
        set: |c, v| {
            c.salvage = boolean(v)?;
            Ok(())
        },
    },
    Setting {
        key: "max_name_len",
        value: "BYTES",
        help: "longest topic, filter, service or queue name (default 256)",
        set: |c, v| {
            c.hub.max_name_len = number(v, 1, 1024)?;
            Ok(())
        },
    },
    Setting {
        key: "max_subscriptions_per_session",
        value: "N",
        help: "subscriptions one session may hold (default 1000)",
        set: |c, v| {
            c.hub.max_subscriptions_per_session = number(v, 1, 10_000_000)?;
            Ok(())
        },
    },
    Setting {
        key: "max_retained",
        value: "N",
        help: "topics with a retained message (default 100000)",
        set: |c, v| {
            c.hub.max_retained = number(v, 0, 100_000_000)?;
            Ok(())
        },
    },
    Setting {
        key: "max_services_per_session",
        value: "N",
        help: "services one session may register (default 100)",
        set: |c, v| {
            c.hub.max_services_per_session = number(v, 1, 1_000_000)?;
            Ok(())
        },
    },
    Setting {
        key: "max_pending_requests_per_session",
        value: "N",
        help: "routed requests one session may have waiting (default 1024)",
        set: |c, v| {
            c.hub.max_pending_requests_per_session = number(v, 1, 10_000_000)?;
            Ok(())
        },
    },
    Setting {
        key: "default_request_timeout_ms",
        value: "MS",
        help: "a request's deadline when it names none (default 5000)",
        set: |c, v| {
            c.hub.default_request_timeout = millis(v, 1)?;
            Ok(())
        },
    },
    Setting {
        key: "max_request_timeout_ms",
        value: "MS",
        help: "the longest deadline a request may ask for (default 300000)",
        set: |c, v| {
            c.hub.max_request_timeout = millis(v, 1)?;
            Ok(())
        },
    },
    Setting {
        key: "max_queues",
        value: "N",
        help: "work queues at once (default 10000)",
        set: |c, v| {
            c.hub.max_queues = number(v, 1, 10_000_000)?;
            Ok(())
        },
    },
    Setting {
        key: "max_queue_depth",
        value: "N",
        help: "messages in one queue, ready and unacknowledged (default 100000)",
        set: |c, v| {
            c.hub.max_queue_depth = number(v, 1, 100_000_000)?;
            Ok(())
        },
    },
    Setting {
        key: "visibility_timeout_ms",
        value: "MS",
        help: "how long a fetched message waits for its ack before redelivery (default 30000)",
        set: |c, v| {
            c.hub.visibility_timeout = millis(v, 1)?;
            Ok(())
        },
    },
    Setting {
        key: "max_deliveries",
        value: "N",
        help: "deliveries after which an unacknowledged message moves to <queue>.dead (default 0: no limit)",
        set: |c, v| {
            c.hub.max_deliveries = number(v, 0, u64::from(u32::MAX))?;
            Ok(())
        },
    },
    Setting {
        key: "queue",
        value: "'NAME[*] KEY=VALUE...'",
        help: "limits of the queues a name (or a prefix and *) names, over the server's: max_depth, max_deliveries, visibility_timeout_ms, dead_letter (instead of <queue>.dead); repeat for more queues",
        set: |c, v| {
            c.hub.queue_rules.push(v.parse()?);
            Ok(())
        },
    },
    Setting {
        key: "max_fetch_wait_ms",
        value: "MS",
        help: "the longest a long poll is held (default 300000)",
        set: |c, v| {
            c.hub.max_fetch_wait = millis(v, 1)?;
            Ok(())
        },
    },
    Setting {
        key: "cluster_queues",
        value: "true|false",
        help: "in a cluster, make queues the cluster's: one JetStream work queue each, consumed from any node (needs nats-server -js); false: each node's own (default true)",
        set: |c, v| {
            c.hub.cluster_queues = boolean(v)?;
            Ok(())
        },
    },
    Setting {
        key: "max_waiting_fetches_per_session",
        value: "N",
        help: "long polls one session may have waiting (default 64)",
        set: |c, v| {
            c.hub.max_waiting_fetches_per_session = number(v, 1, 1_000_000)?;
            Ok(())
        },
    },
    Setting {
        key: "session_expiry_ms",
        value: "MS",
        help: "how long a vanished session is kept to resume (default 120000)",
        set: |c, v| {
            c.hub.session_expiry = millis(v, 0)?;
            Ok(())
        },
    },
    Setting {
        key: "max_parked_messages",
        value: "N",
        help: "reliable messages kept for a vanished session (default 1000)",
        set: |c, v| {
            c.hub.max_parked_messages = number(v, 0, 100_000_000)?;
            Ok(())
        },
    },
    Setting {
        key: "max_unconfirmed_bytes",
        value: "BYTES",
        help: "bytes of numbered messages kept per session until confirmed (default 1048576)",
        set: |c, v| {
            c.hub.max_unconfirmed_bytes = number(v, 0, 1 << 40)?;
            Ok(())
        },
    },
    Setting {
        key: "max_parked_sessions",
        value: "N",
        help: "vanished sessions kept at once (default 10000)",
        set: |c, v| {
            c.hub.max_parked_sessions = number(v, 0, 100_000_000)?;
            Ok(())
        },
    },
];

/// Other names settings answer to: `tls_listen` is `tls`, `http_listen` is `http`,
/// `https_listen` is `https`.
const ALIASES: &[(&str, &str)] = &[
    ("tls_listen", "tls"),
    ("http_listen", "http"),
    ("https_listen", "https"),
];

/// The setting named `key` (or one of its aliases).
pub(crate) fn find(key: &str) -> Option<&'static Setting> {
    let key = ALIASES
        .iter()
        .find(|(alias, _)| *alias == key)
        .map_or(key, |(_, name)| name);
    SETTINGS.iter().find(|s| s.key == key)
}

/// The usage text, from the table.
pub(crate) fn usage() -> String {
    use std::fmt::Write;
    let mut s = String::from(
        "usage: framewire-server [--config FILE] [--SETTING VALUE ...]\n\n\
         A configuration file is TOML with the settings below as keys (max_connections = 5000);\n\
         flags given on the command line override it.\n\n",
    );
    let _ = writeln!(
        s,
        "  {:<38} read settings from a TOML file",
        "--config FILE"
    );
    for setting in SETTINGS {
        let flag = format!("--{} {}", setting.key.replace('_', "-"), setting.value);
        let _ = writeln!(s, "  {flag:<38} {}", setting.help);
    }
    let _ = writeln!(s, "  {:<38} print this text", "-h, --help");
    s.push_str("\nLogging follows RUST_LOG (default: info).");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_unique_and_snake_case() {
        for (i, s) in SETTINGS.iter().enumerate() {
            assert!(
                s.key.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}",
                s.key
            );
            assert!(
                SETTINGS[i + 1..].iter().all(|t| t.key != s.key),
                "{} twice",
                s.key
            );
        }
    }

    #[test]
    fn usage_lists_every_flag() {
        let u = usage();
        for s in SETTINGS {
            assert!(
                u.contains(&format!("--{}", s.key.replace('_', "-"))),
                "{}",
                s.key
            );
        }
    }
}
