//! How a client connects: where, over which transport, and how it comes back after a failure.
//! [`ClientOptions::builder`] names every choice; the fields stay public for code that sets them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use framewire_protocol::session::SessionConfig;
use framewire_protocol::wire::LastWill;

mod builder;
mod tls;

pub use builder::{Channel, ClientOptionsBuilder, Timeouts};
pub use tls::{TlsOptions, TlsOptionsBuilder, read_certificates, read_private_key};

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
    /// More servers to try, in turn, when an attempt fails: the next attempt goes to the next
    /// address (after the last, the first again). A session resumes only on the server that kept
    /// it; another answers with a new session and the client subscribes again by itself.
    pub fallback_servers: Vec<SocketAddr>,
    /// TCP or UDP.
    pub transport: Transport,
    /// TLS over TCP (`None`: plaintext). UDP sessions are sealed with the connect token's keys
    /// instead.
    pub tls: Option<TlsOptions>,
    /// The session's settings (channels, idle timeout, heartbeats, queue bounds).
    pub session: SessionConfig,
    /// A name for the server's logs.
    pub client_name: Option<String>,
    /// A message the server publishes if this client vanishes without closing.
    pub last_will: Option<LastWill>,
    /// A connect token (from `framewire token`), for servers that check them.
    pub auth_token: Option<Bytes>,
    /// The keys issued beside a version-2 connect token (`framewire token --keys-out`): a UDP
    /// session is then sealed (docs/PROTOCOL.md section 2.3), and a server that does not seal it
    /// is refused. Needs `auth_token`.
    pub seal_keys: Option<framewire_protocol::seal::TokenKeys>,
    /// Asked before every connection attempt for a fresh connect token (tokens expire; a device
    /// that reconnects after a day needs a new one); `None` from it keeps the last one.
    pub token_refresh: Option<TokenRefresh>,
    /// Reconnect after a failure (resuming the session); `None`: a failure is final.
    pub reconnect: Option<Reconnect>,
    /// How long a connection attempt may take (TCP connect plus handshake).
    pub connect_timeout: Duration,
    /// How long a blocking call waits for its Response ([`Client::timeout`](crate::Client)
    /// starts at it). Default 10 s.
    pub request_timeout: Duration,
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
    /// After each connection (and every 30 s while it lasts), when it reconnects at all
    /// (`reconnect`), ask the node for the cluster's other nodes (`sys.nodes`) and add
    /// their addresses of this client's kind (TCP, TLS or UDP) to the servers tried when its node
    /// goes, as NATS clients learn `connect_urls`: a client given one node of a cluster can move
    /// to the others. A server alone answers with none. Default on.
    pub learn_nodes: bool,
}

impl ClientOptions {
    /// Options for `server` over `transport`, with the defaults for the rest: reconnecting with
    /// backoff, a 5 s connect timeout.
    pub fn new(server: SocketAddr, transport: Transport) -> Self {
        Self {
            server,
            fallback_servers: Vec::new(),
            transport,
            tls: None,
            session: SessionConfig::default(),
            client_name: None,
            last_will: None,
            auth_token: None,
            seal_keys: None,
            token_refresh: None,
            reconnect: Some(Reconnect::default()),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            seed: 0,
            offline_buffer: 256 * 1024,
            confirm_delivery: true,
            learn_nodes: true,
        }
    }
}

/// A source of fresh connect tokens ([`ClientOptions::token_refresh`]): called before each
/// connection attempt, on the thread that drives the connection. A version-2 token comes with the
/// keys sealed into it ([`TokenRefresh::sealed`]): the next sealed UDP handshake uses both.
#[derive(Clone)]
pub struct TokenRefresh(Arc<dyn Fn() -> Option<FreshToken> + Send + Sync>);

/// What a [`TokenRefresh`] gives: a token, and the seal keys that go with it (`None`: keep the
/// keys the client has, for a token that carries none or the same ones).
#[derive(Debug, Clone)]
pub struct FreshToken {
    /// The connect token.
    pub token: Bytes,
    /// The keys a version-2 token carries.
    pub seal_keys: Option<framewire_protocol::seal::TokenKeys>,
}

impl TokenRefresh {
    /// Wraps `f`, a source of tokens (the client's seal keys stay as they are).
    pub fn new(f: impl Fn() -> Option<Bytes> + Send + Sync + 'static) -> Self {
        Self(Arc::new(move || {
            f().map(|token| FreshToken {
                token,
                seal_keys: None,
            })
        }))
    }

    /// Wraps `f`, a source of version-2 tokens and their keys (as `framewire token --keys-out`
    /// issues them): a sealed session's new token comes with new keys, and the client seals with
    /// those from the next handshake on.
    pub fn sealed(
        f: impl Fn() -> Option<(Bytes, framewire_protocol::seal::TokenKeys)> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(move || {
            f().map(|(token, keys)| FreshToken {
                token,
                seal_keys: Some(keys),
            })
        }))
    }

    /// A fresh token, or `None` to keep the last one.
    pub fn fetch(&self) -> Option<FreshToken> {
        (self.0)()
    }
}

impl std::fmt::Debug for TokenRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenRefresh(..)")
    }
}

impl ClientOptions {
    /// Every address to try, the server first.
    pub(crate) fn servers(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        std::iter::once(self.server).chain(self.fallback_servers.iter().copied())
    }
}
