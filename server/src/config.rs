//! Server settings and their defaults.

use std::net::SocketAddr;
use std::time::Duration;

use framewire_protocol::session::SessionConfig;
use framewire_protocol::wire::DEFAULT_MAX_FRAME_LEN;

use crate::settings;

/// The address the server listens on when told nothing else.
pub const DEFAULT_TCP_ADDR: &str = "127.0.0.1:7400";
/// The address the HTTP listener (WebSocket, metrics) takes when told nothing else.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:7480";

/// What the server is told at start.
#[derive(Debug, Clone)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent settings an operator turns on or off, not states of one machine"
)]
pub struct ServerConfig {
    /// Where to accept TCP connections, or `None` for no TCP.
    pub tcp_addr: Option<SocketAddr>,
    /// Where to serve UDP, or `None` for no UDP.
    pub udp_addr: Option<SocketAddr>,
    /// Where to accept TLS connections, or `None` for none.
    pub tls_addr: Option<SocketAddr>,
    /// Where to accept HTTP connections (WebSocket at `/ws`, `/metrics`), or `None` for none.
    pub http_addr: Option<SocketAddr>,
    /// Where to accept HTTP over TLS (WebSocket over TLS at `/ws`, the HTTP mapping, `/metrics`),
    /// with the certificate and key of `tls_cert` and `tls_key`; `None` for none.
    pub https_addr: Option<SocketAddr>,
    /// How long an HTTP request head may take to arrive, from the connection's start or the last
    /// response, in milliseconds; an idle keep-alive connection closes after as long.
    pub http_head_timeout_ms: u32,
    /// The TLS certificate chain (PEM).
    pub tls_cert: Option<std::path::PathBuf>,
    /// The TLS private key (PEM).
    pub tls_key: Option<std::path::PathBuf>,
    /// TLS clients must show a certificate from a CA in this PEM file; `None`: none asked for.
    pub tls_client_ca: Option<std::path::PathBuf>,
    /// What each client-certificate identity may do (setting `acl`).
    pub acl: Vec<crate::hub::AclRule>,
    /// Worker threads, each with its own event loop (default: the number of cores).
    pub threads: usize,
    /// How the UDP socket is read and written (the settings `udp_batch_receive`,
    /// `udp_segment_receive`, `udp_segment_send`).
    pub udp_offload: UdpOffload,
    /// The largest frame length accepted and offered in the Welcome.
    pub max_frame_len: u32,
    /// Bytes of output a connection may have queued before it is closed as a slow consumer.
    pub max_queued_bytes: usize,
    /// Bytes a UDP session may hold for messages under reassembly (fragments); past it new
    /// fragmented messages are dropped and counted.
    pub max_reassembly_bytes: usize,
    /// The idle timeout offered in the Welcome, in milliseconds.
    pub idle_timeout_ms: u32,
    /// The heartbeat interval offered in the Welcome, in milliseconds.
    pub heartbeat_interval_ms: u32,
    /// How long a new connection has to send its Hello (the first-frame deadline), in milliseconds.
    pub first_frame_deadline_ms: u32,
    /// The most TCP connections served at once; more are closed with `SERVER_FULL`.
    pub max_connections: usize,
    /// The most TCP connections from one IP address; more are closed with `ADDRESS_LIMIT`.
    pub max_connections_per_address: usize,
    /// The most UDP sessions at once; a handshake beyond gets a Reject with `SESSION_LIMIT`.
    pub max_udp_sessions: usize,
    /// Handshakes (TCP connections, UDP Hellos) one IP address may start per second, in bursts of
    /// as many; more get Close `ADDRESS_LIMIT` (TCP) or no answer (UDP), and are counted.
    pub max_handshakes_per_address_per_sec: u32,
    /// Kernel TCP keepalive: idle time before the first probe, in milliseconds.
    pub keepalive_idle_ms: u32,
    /// Kernel TCP keepalive: time between probes, in milliseconds.
    pub keepalive_interval_ms: u32,
    /// Kernel TCP keepalive: unanswered probes before the connection is dropped.
    pub keepalive_retries: u32,
    /// `TCP_USER_TIMEOUT`: how long sent data may stay unacknowledged before the kernel drops the
    /// connection, in milliseconds. With keepalive, this finds half-open peers even when
    /// application heartbeats are off.
    pub user_timeout_ms: u32,
    /// The hub's limits and timeouts.
    pub hub: crate::hub::HubConfig,
    /// A file holding the key that verifies connect tokens (at least 32 bytes); `None`: tokens are
    /// not checked.
    pub token_key_file: Option<std::path::PathBuf>,
    /// Refuse clients without a valid connect token (`AUTH_FAILED`).
    pub require_tokens: bool,
    /// Refuse sessions in the clear (`AUTH_FAILED`): plain TCP (TLS is served), and UDP sessions
    /// whose token carries no keys.
    pub require_encryption: bool,
    /// Write what the server receives and sends to this pcapng file; `None`: no capture.
    pub capture: Option<std::path::PathBuf>,
    /// Bytes a capture file may reach before it is rotated.
    pub capture_max_bytes: u64,
    /// Capture files kept, the current one included (`FILE`, `FILE.1`, ...).
    pub capture_files: u32,
    /// Keep queues and retained messages in this directory across restarts; `None`: in memory
    /// only.
    pub data_dir: Option<std::path::PathBuf>,
    /// NATS servers to join other framewire nodes through (`nats://HOST:PORT`); empty: a node
    /// alone (docs/PROTOCOL.md section 12).
    pub cluster: Vec<String>,
    /// This node's name in the cluster and in LAN discovery answers; `None`: `framewire-` and
    /// the process id.
    pub node_name: Option<String>,
    /// The addresses announced to clients and other nodes (`sys.nodes`, LAN discovery) by kind,
    /// in place of the bound ones; a kind not listed announces its bound address.
    pub advertise: Vec<(&'static str, SocketAddr)>,
    /// Answer LAN discovery requests on the UDP listener (docs/PROTOCOL.md section 4.12).
    pub discovery: bool,
    /// Discovery answers per second at most, across the server.
    pub discovery_rate: u32,
    /// When the data directory's log is synced to the disk, and so what a confirmation promises.
    pub fsync: crate::store::FsyncPolicy,
    /// The most bytes the data directory's log may hold; durable operations beyond get
    /// `STORAGE_FULL`.
    pub max_disk_bytes: u64,
    /// Start even when records in the middle of the log are corrupt, dropping them.
    pub salvage: bool,
}

impl ServerConfig {
    /// How the data directory is kept, if there is one.
    pub fn store_config(&self) -> Option<crate::store::StoreConfig> {
        let dir = self.data_dir.as_ref()?;
        Some(crate::store::StoreConfig {
            fsync: self.fsync,
            max_disk_bytes: self.max_disk_bytes,
            salvage: self.salvage,
            // Records are read up to the largest frame any configuration allows: a directory
            // written with a larger max_frame_len still reads after the setting is lowered.
            ..crate::store::StoreConfig::new(dir)
        })
    }

    /// Where the TLS material is read from, when TLS is served.
    ///
    /// # Errors
    /// TLS is served but the certificate or the key is not named.
    pub fn tls_files(&self) -> Result<Option<crate::tls::TlsFiles>, String> {
        if self.tls_addr.is_none() && self.https_addr.is_none() {
            return Ok(None);
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(crate::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca.clone(),
            })),
            _ => Err(
                "tls and https need tls_cert and tls_key: the certificate and key to show".into(),
            ),
        }
    }

    /// Whether any listener or socket is configured (a server with none would serve nothing).
    pub fn serves_something(&self) -> bool {
        [
            self.tcp_addr,
            self.udp_addr,
            self.tls_addr,
            self.http_addr,
            self.https_addr,
        ]
        .iter()
        .any(Option::is_some)
    }

    /// The settings each connection's session runs with.
    pub fn session_config(&self) -> SessionConfig {
        SessionConfig {
            max_message_len: self.max_frame_len as usize,
            max_queued_bytes: self.max_queued_bytes,
            max_reassembly_bytes: self.max_reassembly_bytes,
            idle_timeout: Duration::from_millis(u64::from(self.idle_timeout_ms)),
            heartbeat_interval: Duration::from_millis(u64::from(self.heartbeat_interval_ms)),
            handshake_timeout: Duration::from_millis(u64::from(self.first_frame_deadline_ms)),
            // The hub's answer to Data, given by the stream session from the bytes it read.
            echo_data: true,
            ..SessionConfig::default()
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        let default_addr = DEFAULT_TCP_ADDR
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 7400)));
        Self {
            tcp_addr: Some(default_addr),
            udp_addr: Some(default_addr),
            tls_addr: None,
            http_addr: Some(
                DEFAULT_HTTP_ADDR
                    .parse()
                    .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 7480))),
            ),
            https_addr: None,
            http_head_timeout_ms: 10_000,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            acl: Vec::new(),
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            udp_offload: UdpOffload::default(),
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_queued_bytes: 1 << 20,
            max_reassembly_bytes: 1 << 20,
            idle_timeout_ms: 30_000,
            heartbeat_interval_ms: 10_000,
            first_frame_deadline_ms: 5_000,
            max_connections: 10_000,
            max_connections_per_address: 1_000,
            max_udp_sessions: 10_000,
            max_handshakes_per_address_per_sec: 1_000,
            keepalive_idle_ms: 30_000,
            keepalive_interval_ms: 10_000,
            keepalive_retries: 3,
            user_timeout_ms: 60_000,
            hub: crate::hub::HubConfig::default(),
            token_key_file: None,
            require_tokens: false,
            require_encryption: false,
            capture: None,
            capture_max_bytes: 100 << 20,
            capture_files: 2,
            data_dir: None,
            cluster: Vec::new(),
            node_name: None,
            advertise: Vec::new(),
            discovery: true,
            discovery_rate: 20,
            fsync: crate::store::FsyncPolicy::Always,
            max_disk_bytes: 8 << 30,
            salvage: false,
        }
    }
}

/// A command line the server could not use: the message names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgsError(pub String);

impl std::fmt::Display for ArgsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgsError {}

/// What the command line asks for.
#[derive(Debug, Clone)]
pub enum Command {
    /// Run with this configuration.
    Run(Box<ServerConfig>),
    /// Print the usage text and exit.
    Help,
}

/// The usage text: every setting, as a flag.
pub fn usage() -> String {
    settings::usage()
}

/// Applies the settings of a TOML file (keys as in [`usage`], `max_connections = 5000`).
///
/// # Errors
/// An [`ArgsError`] naming the file and, where it applies, the key.
pub fn apply_file(config: &mut ServerConfig, path: &str) -> Result<(), ArgsError> {
    let at = |what: String| ArgsError(format!("config {path}: {what}"));
    let text = std::fs::read_to_string(path).map_err(|e| at(format!("cannot read it: {e}")))?;
    apply_toml(config, &text).map_err(at)
}

/// Applies the settings of a TOML document.
///
/// # Errors
/// The first key that is unknown or has a bad value, or a syntax error.
pub fn apply_toml(config: &mut ServerConfig, text: &str) -> Result<(), String> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| e.to_string().trim_end().replace('\n', " "))?;
    for (key, value) in &table {
        let setting = settings::find(key).ok_or_else(|| format!("unknown key {key:?}"))?;
        // An array sets a setting that may be repeated (`queue`) once per element.
        let values = match value {
            toml::Value::Array(items) if setting.repeatable() => items.iter().collect(),
            one => vec![one],
        };
        for value in values {
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(format!(
                        "key {key}: a {} is not a setting's value",
                        other.type_str()
                    ));
                }
            };
            (setting.set)(config, &text).map_err(|e| format!("key {key}: {e}"))?;
        }
    }
    Ok(())
}

/// Runs arbitrary text through the configuration readers (the TOML file reader, and the flag
/// parser over its words): whatever the input, an error value and never a panic. Shared by the
/// `config` fuzz target and the test that replays its corpus.
#[doc(hidden)]
pub fn fuzz_check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut config = ServerConfig::default();
    if apply_toml(&mut config, text).is_ok() {
        // Whatever was accepted is a usable configuration.
        let _ = config.session_config();
    }
    let _ = parse_args(text.split_whitespace().map(String::from));
}

/// Reads the command line (without the program name): `--config FILE` first, wherever it stands,
/// then every other flag over it.
///
/// # Errors
/// An [`ArgsError`] naming the flag, file or value that is wrong.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, ArgsError> {
    let args: Vec<String> = args.into_iter().collect();
    let mut config = ServerConfig::default();
    let mut flags = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--config" => {
                let path = it
                    .next()
                    .ok_or_else(|| ArgsError("--config needs a file".into()))?;
                apply_file(&mut config, path)?;
            }
            flag => {
                let key = flag
                    .strip_prefix("--")
                    .map(|k| k.replace('-', "_"))
                    .and_then(|k| settings::find(&k))
                    .ok_or_else(|| ArgsError(format!("unknown flag {flag:?}")))?;
                let value = it
                    .next()
                    .ok_or_else(|| ArgsError(format!("{flag} needs a value")))?;
                flags.push((flag, key, value));
            }
        }
    }
    for (flag, setting, value) in flags {
        (setting.set)(&mut config, value).map_err(|e| ArgsError(format!("{flag}: {e}")))?;
    }
    if !config.serves_something() {
        return Err(ArgsError(
            "--tcp, --udp and --http are all off, and no --tls or --https: the server would serve nothing"
                .into(),
        ));
    }
    Ok(Command::Run(Box::new(config)))
}

/// How a worker's UDP socket is read and written. Each falls back to one datagram per call where
/// the platform or the kernel does not offer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpOffload {
    /// Receive many reads per system call (`recvmmsg` on Linux). Default off: on loopback it
    /// measured no faster (docs/BENCHMARKS.md); an operator can measure it on real network cards.
    pub batch_receive: bool,
    /// Let the kernel hand over a sender's back-to-back datagrams of one size in one read
    /// (`UDP_GRO` on Linux). Default on.
    pub segment_receive: bool,
    /// Send each run of a UDP session's datagrams of one size in one system call (segmentation
    /// offload, `UDP_SEGMENT` on Linux). Default on.
    pub segment_send: bool,
}

impl Default for UdpOffload {
    fn default() -> Self {
        Self {
            batch_receive: false,
            segment_receive: true,
            segment_send: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn defaults_and_flags() {
        let Command::Run(c) = parse_args(args("")).unwrap() else {
            panic!("expected run")
        };
        assert_eq!(
            c.tcp_addr.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:7400")
        );
        let Command::Run(c) = parse_args(args("--tcp 127.0.0.1:0 --max-frame-len 4096")).unwrap()
        else {
            panic!("expected run")
        };
        assert_eq!(c.tcp_addr.map(|a| a.port()), Some(0));
        assert_eq!(c.max_frame_len, 4096);
    }

    #[test]
    fn errors_name_the_flag() {
        assert_eq!(
            parse_args(args("--bogus")).unwrap_err().0,
            "unknown flag \"--bogus\""
        );
        assert!(parse_args(args("--tcp")).unwrap_err().0.contains("--tcp"));
        assert!(
            parse_args(args("--tcp nowhere"))
                .unwrap_err()
                .0
                .contains("--tcp")
        );
        assert!(
            parse_args(args("--max-frame-len 3"))
                .unwrap_err()
                .0
                .contains("--max-frame-len")
        );
    }

    #[test]
    fn advertised_addresses_and_node_names_are_checked() {
        let Command::Run(c) = parse_args(args(
            "--advertise tcp=203.0.113.7:7400,udp=[2001:db8::1]:7400",
        ))
        .unwrap() else {
            panic!("expected run")
        };
        assert_eq!(
            c.advertise,
            [
                ("tcp", "203.0.113.7:7400".parse().unwrap()),
                ("udp", "[2001:db8::1]:7400".parse().unwrap()),
            ]
        );
        for bad in [
            "--advertise tcp",
            "--advertise ftp=1.2.3.4:1",
            "--advertise tcp=nowhere",
            "--advertise tcp=1.2.3.4:1,tcp=1.2.3.4:2",
            "--node-name a.b",
            "--node-name a=b",
        ] {
            assert!(parse_args(args(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn tcp_and_udp_can_be_moved_or_turned_off() {
        let Command::Run(c) = parse_args(args("")).unwrap() else {
            panic!("expected run")
        };
        assert_eq!(c.udp_addr.map(|a| a.port()), Some(7400));
        let Command::Run(c) = parse_args(args("--udp off")).unwrap() else {
            panic!("expected run")
        };
        assert_eq!(c.udp_addr, None);
        let Command::Run(c) = parse_args(args("--tcp off")).unwrap() else {
            panic!("expected run")
        };
        assert_eq!(c.tcp_addr, None);
        assert!(c.udp_addr.is_some());
        assert!(
            parse_args(args("--tcp off --udp off")).is_ok(),
            "HTTP serves"
        );
        assert!(
            parse_args(args("--tcp off --udp off --http off"))
                .unwrap_err()
                .0
                .contains("all off")
        );
        let Command::Run(c) = parse_args(args("--http 127.0.0.1:0")).unwrap() else {
            panic!("expected run")
        };
        assert_eq!(c.http_addr, Some("127.0.0.1:0".parse().unwrap()));
        let mut t = ServerConfig::default();
        apply_toml(&mut t, "http_listen = \"off\"").unwrap();
        assert_eq!(t.http_addr, None);
        let Command::Run(c) = parse_args(args("--udp 127.0.0.1:0")).unwrap() else {
            panic!("expected run")
        };
        assert_eq!(c.udp_addr.map(|a| a.port()), Some(0));
        assert!(
            parse_args(args("--udp nowhere"))
                .unwrap_err()
                .0
                .contains("--udp")
        );
    }

    #[test]
    fn a_file_sets_values_and_flags_override_it() {
        let path = std::env::temp_dir().join(format!("fw-config-test-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "# limits\nmax_connections = 500\nidle_timeout_ms = 9000\nudp = \"off\"\nsession_expiry_ms = 0\n",
        )
        .unwrap();
        let file = path.to_string_lossy().into_owned();
        let Command::Run(c) =
            parse_args(args(&format!("--max-connections 700 --config {file}"))).unwrap()
        else {
            panic!("expected run")
        };
        assert_eq!(c.max_connections, 700, "the flag wins");
        assert_eq!(c.idle_timeout_ms, 9000);
        assert_eq!(c.udp_addr, None);
        assert_eq!(c.hub.session_expiry, Duration::ZERO);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn file_errors_name_the_file_and_the_key() {
        let mut c = ServerConfig::default();
        assert_eq!(
            apply_toml(&mut c, "max_conections = 5").unwrap_err(),
            "unknown key \"max_conections\""
        );
        assert!(
            apply_toml(&mut c, "max_connections = -1")
                .unwrap_err()
                .starts_with("key max_connections:")
        );
        assert!(
            apply_toml(&mut c, "max_connections = true")
                .unwrap_err()
                .starts_with("key max_connections:")
        );
        assert!(apply_toml(&mut c, "max_connections = ").is_err());
        let e = parse_args(args("--config /nonexistent/fw.toml"))
            .unwrap_err()
            .0;
        assert!(
            e.starts_with("config /nonexistent/fw.toml: cannot read it"),
            "{e}"
        );
    }

    #[test]
    fn queue_rules_come_from_a_toml_array_and_from_repeated_flags() {
        let mut c = ServerConfig::default();
        apply_toml(
            &mut c,
            "queue = [\"jobs max_depth=10\", \"mail.* dead_letter=mail.failed\"]",
        )
        .unwrap();
        let flags = [
            "--queue",
            "jobs max_deliveries=2",
            "--queue",
            "a max_depth=1",
        ];
        let Command::Run(flagged) = parse_args(flags.map(String::from)).unwrap() else {
            panic!("a run");
        };
        assert_eq!(c.hub.queue_rules.len(), 2);
        assert_eq!(c.hub.queue_rules[1].dead_letter, Some("mail.failed".into()));
        assert_eq!(flagged.hub.queue_rules.len(), 2);
        assert_eq!(flagged.hub.queue_rules[0].max_deliveries, Some(2));
        let e = apply_toml(&mut c, "queue = \"jobs size=1\"").unwrap_err();
        assert!(e.starts_with("key queue: unknown queue limit"), "{e}");
        assert!(apply_toml(&mut c, "max_connections = [1, 2]").is_err());
    }

    #[test]
    fn tls_settings_read_from_flags_and_toml_and_tls_listen_is_tls() {
        let flags = [
            "--tls",
            "127.0.0.1:7443",
            "--tls-cert",
            "s.pem",
            "--tls-key",
            "s.key",
            "--acl",
            "a publish=x",
            "--acl",
            "b subscribe=y/#",
        ];
        let Command::Run(c) = parse_args(flags.map(String::from)).unwrap() else {
            panic!("a run");
        };
        assert_eq!(c.tls_addr, Some("127.0.0.1:7443".parse().unwrap()));
        let files = c.tls_files().unwrap().unwrap();
        assert_eq!(
            (files.cert.to_str(), files.key.to_str()),
            (Some("s.pem"), Some("s.key"))
        );
        assert_eq!(c.acl.len(), 2);
        assert_eq!(c.acl[1].identity, "b");
        let mut t = ServerConfig::default();
        apply_toml(
            &mut t,
            "tls_listen = \"127.0.0.1:7444\"\nacl = [\"a queue=jobs\"]",
        )
        .unwrap();
        assert_eq!(t.tls_addr, Some("127.0.0.1:7444".parse().unwrap()));
        assert_eq!(t.acl[0].permissions.queue[0].as_str(), "jobs");
        // A TLS address without its certificate is an error that says what is missing.
        // TLS alone is something to serve.
        let only_tls = ["--tcp", "off", "--udp", "off", "--tls", "127.0.0.1:7443"];
        assert!(parse_args(only_tls.map(String::from)).is_ok());
        let e = t.tls_files().unwrap_err();
        assert!(e.contains("tls_cert and tls_key"), "{e}");
        assert!(apply_toml(&mut t, "acl = \"a deliver=x\"").is_err());
    }

    #[test]
    fn https_is_a_listener_of_its_own_that_needs_the_tls_files() {
        let only_https = [
            "--tcp",
            "off",
            "--udp",
            "off",
            "--http",
            "off",
            "--https",
            "127.0.0.1:7481",
        ];
        let Command::Run(c) = parse_args(only_https.map(String::from)).unwrap() else {
            panic!("a run");
        };
        assert_eq!(c.https_addr, Some("127.0.0.1:7481".parse().unwrap()));
        assert!(c.serves_something());
        let e = c.tls_files().unwrap_err();
        assert!(e.contains("https need tls_cert and tls_key"), "{e}");
        let mut t = ServerConfig::default();
        apply_toml(
            &mut t,
            "https_listen = \"127.0.0.1:7482\"\ntls_cert = \"c\"\ntls_key = \"k\"",
        )
        .unwrap();
        assert_eq!(t.https_addr, Some("127.0.0.1:7482".parse().unwrap()));
        assert!(
            t.tls_files().unwrap().is_some(),
            "HTTPS alone reads the files"
        );
        let all_off = ["--tcp", "off", "--udp", "off", "--http", "off"];
        let e = parse_args(all_off.map(String::from)).unwrap_err();
        assert!(e.0.contains("--https"), "{}", e.0);
    }

    /// The example in docs/ lists every setting at its default: it parses, and changes nothing.
    #[test]
    fn the_documented_example_is_every_setting_at_its_default() {
        let text = include_str!("../../docs/framewire-server.toml");
        let mut c = ServerConfig::default();
        apply_toml(&mut c, text).unwrap();
        assert_eq!(format!("{c:?}"), format!("{:?}", ServerConfig::default()));
        for setting in settings::SETTINGS {
            // A setting with no default value stands commented out.
            let set = format!("{} = ", setting.key);
            let commented = format!("# {set}");
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&set) || l.starts_with(&commented)),
                "{} is missing from docs/framewire-server.toml",
                setting.key
            );
        }
    }
}
