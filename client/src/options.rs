//! How a client connects: where, over which transport, and how it comes back after a failure.

use std::net::SocketAddr;
use std::time::Duration;

use framewire_protocol::session::SessionConfig;
use framewire_protocol::wire::LastWill;

/// The transport a client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A TCP stream.
    Tcp,
    /// UDP datagrams, with the session engine's reliability.
    Udp,
}

/// Reconnecting after a failure: exponential backoff with jitter.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconnect {
    /// The first wait.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
    /// Each wait is the previous one times this.
    pub multiplier: f64,
    /// Each wait is shortened by a random part of up to this fraction (0 to 1), so clients that
    /// lost the same server do not all come back at once.
    pub jitter: f64,
    /// Give up after this many attempts in a row have failed since the last connection (the first
    /// connect counts as one); `None`: never.
    pub max_attempts: Option<u32>,
    /// Give up once the connection has been down this long (since the failure that ended the last
    /// connection, or since the first connect); `None`: never.
    pub give_up_after: Option<Duration>,
}

impl Default for Reconnect {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            multiplier: 2.0,
            jitter: 0.5,
            max_attempts: None,
            give_up_after: None,
        }
    }
}

/// Everything a client is told before it connects.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The server.
    pub server: SocketAddr,
    /// TCP or UDP.
    pub transport: Transport,
    /// The session's settings (channels, idle timeout, heartbeats, queue bounds).
    pub session: SessionConfig,
    /// A name for the server's logs.
    pub client_name: Option<String>,
    /// A message the server publishes if this client vanishes without closing.
    pub last_will: Option<LastWill>,
    /// A connect token (from `framewire token`), for servers that check them.
    pub auth_token: Option<bytes::Bytes>,
    /// Reconnect after a failure (resuming the session); `None`: a failure is final.
    pub reconnect: Option<Reconnect>,
    /// How long a connection attempt may take (TCP connect plus handshake).
    pub connect_timeout: Duration,
    /// Seeds the client's random choices (jitter, the UDP handshake nonce); 0: from the operating
    /// system at connect.
    pub seed: u64,
    /// While the client is reconnecting, operations are kept, up to this many bytes of encoded
    /// frames, and sent in order once it is back (as MQTT clients keep an offline buffer); past it
    /// an operation fails at once with [`ClientError::Backpressure`](crate::ClientError). 0 keeps
    /// none: an operation between a disconnect and the reconnect fails with `NotConnected`.
    /// Default 256 KiB.
    pub offline_buffer: usize,
    /// Confirm the reliable messages received (Hello option `CONFIRMS`, docs/PROTOCOL.md section
    /// 5.9): the server keeps each until this client has it and, after a break, sends again every
    /// one it did not confirm; the client delivers each exactly once. Off: what was in flight when
    /// a connection broke is lost (the server's fan-out is a little cheaper). Default on.
    pub confirm_delivery: bool,
}

impl ClientOptions {
    /// Options for `server` over `transport`, with the defaults for the rest: reconnecting with
    /// backoff, a 5 s connect timeout.
    pub fn new(server: SocketAddr, transport: Transport) -> Self {
        Self {
            server,
            transport,
            session: SessionConfig::default(),
            client_name: None,
            last_will: None,
            auth_token: None,
            reconnect: Some(Reconnect::default()),
            connect_timeout: Duration::from_secs(5),
            seed: 0,
            offline_buffer: 256 * 1024,
            confirm_delivery: true,
        }
    }
}
