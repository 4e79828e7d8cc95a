//! Server settings and their defaults.

use std::net::SocketAddr;

use std::time::Duration;

use framewire_protocol::session::SessionConfig;
use framewire_protocol::wire::DEFAULT_MAX_FRAME_LEN;

/// The address the server listens on when told nothing else.
pub const DEFAULT_TCP_ADDR: &str = "127.0.0.1:7400";

/// What the server is told at start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to accept TCP connections.
    pub tcp_addr: SocketAddr,
    /// Where to serve UDP, or `None` for no UDP.
    pub udp_addr: Option<SocketAddr>,
    /// The largest frame length accepted and offered in the Welcome.
    pub max_frame_len: u32,
    /// Bytes of output a connection may have queued before it is closed as a slow consumer.
    pub max_queued_bytes: usize,
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
}

impl ServerConfig {
    /// The settings each connection's session runs with.
    pub fn session_config(&self) -> SessionConfig {
        SessionConfig {
            max_message_len: self.max_frame_len as usize,
            max_queued_bytes: self.max_queued_bytes,
            idle_timeout: Duration::from_millis(u64::from(self.idle_timeout_ms)),
            heartbeat_interval: Duration::from_millis(u64::from(self.heartbeat_interval_ms)),
            handshake_timeout: Duration::from_millis(u64::from(self.first_frame_deadline_ms)),
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
            tcp_addr: default_addr,
            udp_addr: Some(default_addr),
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_queued_bytes: 1 << 20,
            idle_timeout_ms: 30_000,
            heartbeat_interval_ms: 10_000,
            first_frame_deadline_ms: 5_000,
            max_connections: 10_000,
            max_connections_per_address: 1_000,
            keepalive_idle_ms: 30_000,
            keepalive_interval_ms: 10_000,
            keepalive_retries: 3,
            user_timeout_ms: 60_000,
            hub: crate::hub::HubConfig::default(),
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

/// The usage text.
pub const USAGE: &str = "\
usage: framewire-server [--tcp ADDR] [--udp ADDR|off] [--max-frame-len BYTES]

  --tcp ADDR             listen for TCP on ADDR (default 127.0.0.1:7400)
  --udp ADDR|off         serve UDP on ADDR, or not at all (default 127.0.0.1:7400)
  --max-frame-len BYTES  largest frame accepted (default 65536)
  -h, --help             print this text

Logging follows RUST_LOG (default: info).";

/// Reads the command line (without the program name).
///
/// # Errors
/// An [`ArgsError`] naming the flag or value that is wrong.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, ArgsError> {
    let mut config = ServerConfig::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .ok_or_else(|| ArgsError(format!("{flag} needs a value")))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--tcp" => {
                let v = value("--tcp")?;
                config.tcp_addr = v.parse().map_err(|_| {
                    ArgsError(format!(
                        "--tcp: {v:?} is not an address like 127.0.0.1:7400"
                    ))
                })?;
            }
            "--udp" => {
                let v = value("--udp")?;
                config.udp_addr = if v == "off" {
                    None
                } else {
                    Some(v.parse().map_err(|_| {
                        ArgsError(format!(
                            "--udp: {v:?} is not an address like 127.0.0.1:7400, nor \"off\""
                        ))
                    })?)
                };
            }
            "--max-frame-len" => {
                let v = value("--max-frame-len")?;
                config.max_frame_len = v
                    .parse()
                    .ok()
                    .filter(|n| {
                        (framewire_protocol::wire::MIN_FRAME_LEN
                            ..=framewire_protocol::wire::MAX_FRAME_LEN_CEILING)
                            .contains(n)
                    })
                    .ok_or_else(|| {
                        ArgsError(format!(
                            "--max-frame-len: {v:?} is not a number from 8 to 16777216"
                        ))
                    })?;
            }
            other => return Err(ArgsError(format!("unknown flag {other:?}"))),
        }
    }
    Ok(Command::Run(Box::new(config)))
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
        assert_eq!(c.tcp_addr.to_string(), "127.0.0.1:7400");
        let Command::Run(c) = parse_args(args("--tcp 127.0.0.1:0 --max-frame-len 4096")).unwrap()
        else {
            panic!("expected run")
        };
        assert_eq!(c.tcp_addr.port(), 0);
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
    fn udp_can_be_moved_or_turned_off() {
        let Command::Run(c) = parse_args(args("")).unwrap() else {
            panic!("expected run")
        };
        assert_eq!(c.udp_addr.map(|a| a.port()), Some(7400));
        let Command::Run(c) = parse_args(args("--udp off")).unwrap() else {
            panic!("expected run")
        };
        assert_eq!(c.udp_addr, None);
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
}
