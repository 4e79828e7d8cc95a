//! [`ClientOptions`] by name: channels by what they guarantee (as renet's `ChannelConfig`), every
//! timeout in one place, the reconnect policy, the servers to try, the token to present and how to
//! refresh it. What the server would refuse is found by [`ClientOptionsBuilder::build`].

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use framewire_protocol::wire::{ChannelKind, LastWill};

use super::{ClientOptions, Reconnect, TlsOptions, TokenRefresh, Transport};
use crate::error::ClientError;

/// What a channel guarantees (docs/PROTOCOL.md section 3.4). Channel 0 is always
/// [`Channel::ReliableOrdered`]; [`ClientOptionsBuilder::channels`] names channels 1, 2, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Every message, exactly once, in the order sent: commands, chat, state changes.
    ReliableOrdered,
    /// Every message, exactly once, as soon as it arrives: independent events.
    ReliableUnordered,
    /// Some messages, never one older than one already delivered: positions, sensor readings.
    Sequenced,
    /// Some messages, in any order: effects, telemetry that may be lost.
    Unreliable,
}

impl From<Channel> for ChannelKind {
    fn from(c: Channel) -> Self {
        match c {
            Channel::ReliableOrdered => Self::ReliableOrdered,
            Channel::ReliableUnordered => Self::ReliableUnordered,
            Channel::Sequenced => Self::UnreliableSequenced,
            Channel::Unreliable => Self::Unreliable,
        }
    }
}

/// Every timeout of a client, in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// One connection attempt: the TCP connect and the handshake. Default 5 s.
    pub connect: Duration,
    /// The silence after which the server is declared gone (offered to the server, which may
    /// agree less; at least 100 ms). Default 15 s.
    pub idle: Duration,
    /// The silence after which this side sends a Ping (at most a third of the agreed idle
    /// timeout). Default 1 s.
    pub heartbeat: Duration,
    /// How long a blocking call waits for its Response. Default 10 s.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let defaults = ClientOptions::new(SocketAddr::from(([127, 0, 0, 1], 0)), Transport::Tcp);
        defaults.timeouts()
    }
}

impl ClientOptions {
    /// Starts options for `server`, over TCP unless [`ClientOptionsBuilder::udp`].
    pub fn builder(server: SocketAddr) -> ClientOptionsBuilder {
        ClientOptionsBuilder(Self::new(server, Transport::Tcp))
    }

    /// The timeouts these options set.
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            connect: self.connect_timeout,
            idle: self.session.idle_timeout,
            heartbeat: self.session.heartbeat_interval,
            request: self.request_timeout,
        }
    }
}

/// Builds [`ClientOptions`]; see [`ClientOptions::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientOptionsBuilder(ClientOptions);

impl ClientOptionsBuilder {
    /// Over UDP (the session engine's channels, loss recovery and congestion control).
    pub fn udp(mut self) -> Self {
        self.0.transport = Transport::Udp;
        self
    }

    /// Over TLS (TCP only): see [`TlsOptions::builder`].
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.0.tls = Some(tls);
        self
    }

    /// Also try `server` when an attempt fails, after those named before (a cluster's members).
    pub fn also_try(mut self, server: SocketAddr) -> Self {
        self.0.fallback_servers.push(server);
        self
    }

    /// Ask each node reached for the cluster's other nodes and try them when it goes (on by
    /// default): see [`ClientOptions::learn_nodes`].
    pub fn learn_nodes(mut self, on: bool) -> Self {
        self.0.learn_nodes = on;
        self
    }

    /// Channels 1, 2, ... by what each guarantees (channel 0 is reliable-ordered); at most 255.
    pub fn channels(mut self, channels: &[Channel]) -> Self {
        self.0.session.channels = std::iter::once(ChannelKind::ReliableOrdered)
            .chain(channels.iter().map(|&c| c.into()))
            .collect();
        self
    }

    /// Every timeout at once.
    pub fn timeouts(mut self, t: Timeouts) -> Self {
        self.0.connect_timeout = t.connect;
        self.0.session.idle_timeout = t.idle;
        self.0.session.heartbeat_interval = t.heartbeat;
        self.0.request_timeout = t.request;
        self
    }

    /// Reconnect after a failure with this policy (backoff, limits).
    pub fn reconnect(mut self, policy: Reconnect) -> Self {
        self.0.reconnect = Some(policy);
        self
    }

    /// A failure is final: no reconnects.
    pub fn no_reconnect(mut self) -> Self {
        self.0.reconnect = None;
        self
    }

    /// A name for the server's logs.
    pub fn name(mut self, name: &str) -> Self {
        self.0.client_name = Some(name.to_owned());
        self
    }

    /// A message the server publishes if this client vanishes without closing.
    pub fn last_will(mut self, will: LastWill) -> Self {
        self.0.last_will = Some(will);
        self
    }

    /// The keys issued with the connect token: the UDP session is sealed.
    pub fn seal_keys(mut self, keys: framewire_protocol::seal::TokenKeys) -> Self {
        self.0.seal_keys = Some(keys);
        self
    }

    /// The connect token to present.
    pub fn auth_token(mut self, token: impl Into<Bytes>) -> Self {
        self.0.auth_token = Some(token.into());
        self
    }

    /// Asks `refresh` for a fresh token before every connection attempt.
    pub fn token_refresh(mut self, refresh: TokenRefresh) -> Self {
        self.0.token_refresh = Some(refresh);
        self
    }

    /// Bytes of operations kept while reconnecting (0: none).
    pub fn offline_buffer(mut self, bytes: usize) -> Self {
        self.0.offline_buffer = bytes;
        self
    }

    /// Whether to confirm reliable messages so none is lost to a break (default on).
    pub fn confirm_delivery(mut self, on: bool) -> Self {
        self.0.confirm_delivery = on;
        self
    }

    /// The options, checked.
    ///
    /// # Errors
    /// [`ClientError::Invalid`] for what the server would refuse: more than 255 named channels, a
    /// last will on an invalid topic, timeouts of zero.
    pub fn build(self) -> Result<ClientOptions, ClientError> {
        crate::connection::check_options(&self.0)?;
        let t = self.0.timeouts();
        if t.connect.is_zero() || t.idle.is_zero() || t.heartbeat.is_zero() || t.request.is_zero() {
            return Err(ClientError::Invalid(format!("a timeout of zero: {t:?}")));
        }
        Ok(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 7400))
    }

    #[test]
    fn named_channels_become_the_sessions_layout_after_channel_0() {
        let o = ClientOptions::builder(server())
            .udp()
            .channels(&[Channel::Unreliable, Channel::Sequenced])
            .build()
            .unwrap();
        assert_eq!(o.transport, Transport::Udp);
        assert_eq!(
            o.session.channels,
            [
                ChannelKind::ReliableOrdered,
                ChannelKind::Unreliable,
                ChannelKind::UnreliableSequenced
            ]
        );
    }

    #[test]
    fn every_timeout_in_one_place() {
        let t = Timeouts {
            connect: Duration::from_secs(2),
            idle: Duration::from_secs(6),
            heartbeat: Duration::from_millis(500),
            request: Duration::from_secs(3),
        };
        let o = ClientOptions::builder(server())
            .timeouts(t)
            .build()
            .unwrap();
        assert_eq!(o.timeouts(), t);
        assert_eq!(Timeouts::default().request, Duration::from_secs(10));
        let zero = Timeouts {
            request: Duration::ZERO,
            ..t
        };
        assert!(matches!(
            ClientOptions::builder(server()).timeouts(zero).build(),
            Err(ClientError::Invalid(_))
        ));
    }

    #[test]
    fn what_the_server_would_refuse_is_found_at_build() {
        let too_many = [Channel::Unreliable; 256];
        assert!(matches!(
            ClientOptions::builder(server()).channels(&too_many).build(),
            Err(ClientError::Invalid(_))
        ));
        let will = LastWill {
            retain: false,
            channel: 0,
            topic: "will/#".into(),
            payload: Bytes::new(),
        };
        assert!(matches!(
            ClientOptions::builder(server()).last_will(will).build(),
            Err(ClientError::Invalid(_))
        ));
    }

    #[test]
    fn servers_are_tried_in_the_order_named() {
        let other = SocketAddr::from(([127, 0, 0, 2], 7400));
        let o = ClientOptions::builder(server())
            .also_try(other)
            .no_reconnect()
            .build()
            .unwrap();
        assert_eq!(o.servers().collect::<Vec<_>>(), [server(), other]);
        assert!(o.reconnect.is_none());
    }
}
