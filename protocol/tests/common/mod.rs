//! A UDP client session and the server's endpoint and session for it, joined without loss, on a
//! virtual clock: for the tests that need a real handshake between the two.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use framewire_protocol::session::{
    Endpoint, EndpointConfig, Event, Instant, Outcome, Session, SessionConfig,
};

pub(crate) const MS: Duration = Duration::from_millis(1);

pub(crate) fn server_addr() -> SocketAddr {
    "10.0.0.100:7400".parse().unwrap()
}

pub(crate) fn client_addr() -> SocketAddr {
    "10.0.0.1:5555".parse().unwrap()
}

/// A UDP client and the server side of its session, joined without loss.
pub(crate) struct Udp {
    pub(crate) client: Session,
    pub(crate) ep: Endpoint,
    pub(crate) server: Option<Session>,
    pub(crate) now: Instant,
}

impl Udp {
    pub(crate) fn new(client: SessionConfig, server: SessionConfig) -> Self {
        let ep = Endpoint::new(
            EndpointConfig {
                session: server,
                ..EndpointConfig::default()
            },
            [1; 16],
            [2; 16],
        );
        Self {
            client: Session::connect(client, server_addr(), 9, Instant::ZERO),
            ep,
            server: None,
            now: Instant::ZERO,
        }
    }

    /// Moves datagrams both ways until neither side has one to send, then lets 50 ms pass (acks
    /// and retransmissions), 40 times.
    pub(crate) fn run(&mut self) {
        let mut buf = vec![0u8; 2048];
        let mut out = vec![0u8; 2048];
        for _ in 0..40 {
            while let Some(t) = self.client.poll_transmit(self.now, &mut buf) {
                let bytes = &buf[..t.len];
                match self.ep.handle(self.now, client_addr(), bytes, &mut out) {
                    Outcome::Accept { session, reply } => {
                        self.server = Some(*session);
                        let reply = Bytes::copy_from_slice(&out[..reply]);
                        self.client.handle_datagram(self.now, server_addr(), reply);
                    }
                    Outcome::Reply(n) => {
                        let reply = Bytes::copy_from_slice(&out[..n]);
                        self.client.handle_datagram(self.now, server_addr(), reply);
                    }
                    Outcome::Route(_) => {
                        if let Some(s) = self.server.as_mut() {
                            s.handle_datagram(
                                self.now,
                                client_addr(),
                                Bytes::copy_from_slice(bytes),
                            );
                        }
                    }
                    Outcome::Discover { .. } | Outcome::Drop(_) => {}
                }
            }
            if let Some(s) = self.server.as_mut() {
                while let Some(t) = s.poll_transmit(self.now, &mut buf) {
                    let bytes = Bytes::copy_from_slice(&buf[..t.len]);
                    self.client.handle_datagram(self.now, server_addr(), bytes);
                }
            }
            self.now += 50 * MS;
            self.client.handle_timeout(self.now);
            if let Some(s) = self.server.as_mut() {
                s.handle_timeout(self.now);
            }
        }
    }

    pub(crate) fn server_events(&mut self) -> Vec<Event> {
        let s = self.server.as_mut().expect("a session");
        std::iter::from_fn(|| s.poll_event()).collect()
    }
}
