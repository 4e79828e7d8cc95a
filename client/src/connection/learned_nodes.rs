//! What a client learns of a cluster's other nodes from the one it reached (NATS's INFO
//! `connect_urls`): for a client that reconnects, after each connection and every [`ASK_EVERY`]
//! while it lasts, a `sys.nodes` request (docs/PROTOCOL.md section 12.3), whose answer adds the
//! other nodes' addresses of this client's kind to the servers it tries when its node goes.

use std::net::SocketAddr;

use bytes::Bytes;
use framewire_protocol::session::Instant;
use framewire_protocol::wire::{Frame, Request, Text};

use super::Connection;
use crate::options::Transport;

/// How often a connected client asks its node for the cluster's nodes again.
pub(crate) const ASK_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// The most servers learned this way; more are left out (a cluster larger than this still gives
/// a client that many to move to).
pub(crate) const MAX_LEARNED: usize = 32;

/// The kind of address a client of `transport` connects to (section 12.3's keys).
pub(crate) fn kind_for(transport: Transport, tls: bool) -> &'static str {
    match (transport, tls) {
        (Transport::Udp, _) => "udp",
        (Transport::Tcp, true) => "tls",
        (Transport::Tcp, false) => "tcp",
    }
}

/// The addresses of `kind` in a `sys.nodes` answer (`{"nodes":[{"name":...,"self":...,
/// "tcp":"127.0.0.1:7400",...},...]}`): the other nodes', with an unspecified host (a node bound
/// to `0.0.0.0` and advertising nothing else) left out, as no client can reach it.
pub(crate) fn addresses_in(answer: &[u8], kind: &str) -> Vec<SocketAddr> {
    let Ok(text) = std::str::from_utf8(answer) else {
        return Vec::new();
    };
    let key = format!("\"{kind}\":\"");
    let mut found = Vec::new();
    // One node's object per piece: names and addresses hold no brace (section 12.3).
    for node in text.split('{').skip(2) {
        if node.contains("\"self\":true") {
            continue;
        }
        let Some(at) = node.find(&key) else {
            continue;
        };
        let rest = &node[at + key.len()..];
        let Some(addr) = rest
            .split('"')
            .next()
            .and_then(|a| a.parse::<SocketAddr>().ok())
        else {
            continue;
        };
        if !addr.ip().is_unspecified() && !found.contains(&addr) {
            found.push(addr);
        }
    }
    found
}

impl Connection {
    /// Asks the node for the cluster's other nodes (`sys.nodes`); the answer is this client's,
    /// not the application's ([`Connection::learn_nodes`]).
    pub(super) fn ask_for_nodes(&mut self, t: Instant) {
        self.nodes_due = Some(t + ASK_EVERY);
        let id = self.next_id();
        let request = Frame::new(Request {
            id,
            timeout_ms: 0,
            target: Text::from_static("sys.nodes"),
            payload: Bytes::new(),
        });
        if self.send_now(t, request).is_ok() {
            self.nodes_request = Some(id);
        }
    }

    /// Adds the other nodes' addresses in a `sys.nodes` answer to the servers to try, after those
    /// already known, up to [`MAX_LEARNED`] more than configured.
    pub(super) fn learn_nodes(&mut self, answer: &[u8]) {
        let kind = kind_for(self.options.transport, self.options.tls.is_some());
        for addr in addresses_in(answer, kind) {
            if self.options.servers().any(|s| s == addr) {
                continue;
            }
            if self.learned >= MAX_LEARNED {
                break;
            }
            log::info!("learned of another node at {addr}");
            self.options.fallback_servers.push(addr);
            self.learned += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_other_nodes_addresses_of_the_kind_are_learned() {
        let answer = br#"{"nodes":[{"name":"a","self":true,"tcp":"127.0.0.1:7400","udp":"127.0.0.1:7400"},{"name":"b","self":false,"tcp":"127.0.0.2:7410"},{"name":"c","self":false,"tcp":"0.0.0.0:7420","udp":"10.0.0.3:7420"},{"name":"d","self":false,"tcp":"[::1]:7430","tls":"[::1]:7431"}]}"#;
        assert_eq!(
            addresses_in(answer, "tcp"),
            [
                "127.0.0.2:7410".parse().unwrap(),
                "[::1]:7430".parse().unwrap()
            ]
        );
        assert_eq!(
            addresses_in(answer, "udp"),
            ["10.0.0.3:7420".parse().unwrap()]
        );
        assert_eq!(addresses_in(answer, "tls"), ["[::1]:7431".parse().unwrap()]);
        assert!(addresses_in(br#"{"nodes":[]}"#, "tcp").is_empty());
        assert!(addresses_in(b"\xff{{", "tcp").is_empty());
        assert!(addresses_in(br#"{"nodes":[{"a":1},{"tcp":"nowhere"}]}"#, "tcp").is_empty());
    }

    #[test]
    fn the_kind_follows_the_transport() {
        assert_eq!(kind_for(Transport::Udp, false), "udp");
        assert_eq!(kind_for(Transport::Tcp, true), "tls");
        assert_eq!(kind_for(Transport::Tcp, false), "tcp");
    }
}
