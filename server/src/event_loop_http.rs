//! The HTTP listener's connections in a worker's loop: a turn of one, its settling, its upgrade
//! to a WebSocket session (which then lives with the loop's other stream connections), and the
//! exchanges with the hub its requests of the HTTP mapping hold.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use framewire_protocol::session::{Instant, StreamSession};
use framewire_protocol::wire::ChannelKind;
use log::debug;
use mio::Token;
use mio::net::TcpStream;

use super::{End, TimerKey, Worker, reregister};
use crate::connection::Connection;
use crate::hub::{ClientId, Delivery, HTTP_TOKEN_BIT, SSE_TOKEN_BIT, WEB_TOKEN_BIT};
use crate::shared::Shared;
use crate::web::exchange::Exchange;
use crate::web::http::Response;
use crate::web::http_connection::{HttpConnection, HttpTurn};
use crate::web::plan::{Call, Plan};
use crate::web::ws_link::WebSocketLink;

impl Worker {
    /// Takes a connection at the HTTP (or, with `tls`, the HTTPS) listener, registered under
    /// `token`.
    pub(super) fn accept_http(
        &mut self,
        now: Instant,
        stream: TcpStream,
        peer: SocketAddr,
        token: Token,
        tls: Option<Box<rustls::ServerConnection>>,
    ) {
        debug!(
            "{peer}: HTTP{} connection",
            if tls.is_some() { "S" } else { "" }
        );
        let head_timeout = Duration::from_millis(u64::from(self.config.http_head_timeout_ms));
        let conn = HttpConnection::new(
            stream,
            peer,
            now,
            head_timeout,
            self.session_config.max_message_len,
            tls,
        );
        self.http.insert(token, Box::new(conn));
        self.settle_http(token, None);
    }

    /// Reads from a connection at the HTTP listener and writes its answers; one that asks for a
    /// WebSocket becomes a stream session here.
    pub(super) fn http_event(&mut self, now: Instant, token: Token, scratch: &mut [u8]) {
        let Some(conn) = self.http.get_mut(&token) else {
            return;
        };
        let turn = conn.on_readable(now, scratch, &self.shared);
        self.take_turn(now, token, turn);
    }

    /// Carries out what a connection's reading (or its last exchange's end) left it as.
    fn take_turn(&mut self, now: Instant, token: Token, turn: HttpTurn) {
        let unread = self.http.get(&token).is_some_and(|c| c.may_have_unread());
        match turn {
            HttpTurn::Open => {
                let end = self.http.get_mut(&token).and_then(|conn| conn.flush());
                self.settle_http(token, end);
            }
            HttpTurn::Ended(end) => self.settle_http(token, Some(end)),
            // Reading stopped at the request that asked for it: what else the socket may hold is
            // read next (the poller will not say so again).
            HttpTurn::Upgrade { response, leftover } => {
                self.upgrade(now, token, response, leftover);
                if unread {
                    self.read_again.push(token);
                }
            }
            HttpTurn::Exchange {
                call,
                keep_alive,
                head_only,
            } => {
                self.begin_exchange(now, token, &call, (keep_alive, head_only));
                if unread {
                    self.http_read_again.push(token);
                }
            }
        }
    }

    /// Admits the session a request of the HTTP mapping holds, under an id of its own (a later
    /// request on the same connection is another session), and sends the hub its frames.
    fn begin_exchange(&mut self, now: Instant, token: Token, call: &Call, terms: (bool, bool)) {
        let Some(conn) = self.http.get_mut(&token) else {
            return;
        };
        if self.shared.require_encryption && !conn.is_tls() {
            // As a WebSocket session's Hello is refused on a plaintext connection.
            let refused = Response::text(403, "this server requires encryption: use https");
            conn.begin(Err(refused), now, &self.shared);
            self.mark_http_dirty(token);
            return;
        }
        let kind_bit = match call.plan {
            Plan::Stream { sse: true, .. } => SSE_TOKEN_BIT,
            _ => HTTP_TOKEN_BIT,
        };
        let id = Shared::tcp_token(self.index, self.next_seq) | WEB_TOKEN_BIT | kind_bit;
        self.next_seq += 1;
        let client = ClientId::Tcp(id);
        let started = Exchange::start(
            now,
            &mut self.shared.hub(),
            client,
            call,
            conn.peer().ip(),
            terms,
        );
        if started.is_ok() {
            self.exchanges.insert(id, token);
        }
        conn.begin(started, now, &self.shared);
        self.mark_http_dirty(token);
    }

    /// A frame from the hub for an exchange's session.
    pub(super) fn deliver_to_exchange(&mut self, token: Token, to: ClientId, delivery: &Delivery) {
        let Some(exchange) = self.http.get_mut(&token).and_then(|c| c.exchange_mut()) else {
            return;
        };
        let dropped = exchange.deliver(delivery);
        if dropped > 0 {
            self.shared.hub().count_dropped(to, dropped);
        }
        self.mark_http_dirty(token);
    }

    fn mark_http_dirty(&mut self, token: Token) {
        if self.http.get_mut(&token).is_some_and(|c| c.mark_dirty()) {
            self.dirty_http.push(token);
        }
    }

    /// An HTTP connection's deadline: its exchange's (settled with the others this turn), or its
    /// head's.
    pub(super) fn http_timeout(&mut self, now: Instant, token: Token) {
        let Some(conn) = self.http.get_mut(&token) else {
            return;
        };
        let end = conn.on_timeout(now, &self.shared);
        if conn.exchange_mut().is_some() {
            self.mark_http_dirty(token);
            return;
        }
        let end = end.or_else(|| conn.flush());
        self.settle_http(token, end);
    }

    /// Brings an exchange's response up to date; one that is over ends its session (parked, for
    /// a stream) and lets the connection go on to the next request.
    pub(super) fn settle_exchange(&mut self, now: Instant, token: Token) {
        let Some(conn) = self.http.get_mut(&token) else {
            return;
        };
        let shared = &self.shared;
        let settled = conn.settle_exchange(now, shared, |exchange| {
            let progress = exchange.settle(now);
            if let Some(ack) = exchange.take_confirmation() {
                let kind = ChannelKind::ReliableOrdered;
                shared.hub().handle_frame(now, exchange.client(), ack, kind);
            }
            progress
        });
        match settled {
            None => {
                let end = conn.flush();
                self.settle_http(token, end);
            }
            Some((done, next)) => {
                self.end_exchange(now, &done);
                match next {
                    Some(turn) => self.take_turn(now, token, turn),
                    None => self.take_turn(now, token, HttpTurn::Open),
                }
            }
        }
    }

    /// Tells the hub an exchange's session is over.
    fn end_exchange(&mut self, now: Instant, exchange: &Exchange) {
        let ClientId::Tcp(id) = exchange.client() else {
            return;
        };
        self.exchanges.remove(&id);
        if let Some(status) = exchange.status() {
            self.shared.counters.count_http_response(status);
        }
        self.shared
            .hub()
            .session_ended(now, exchange.client(), !exchange.parks());
    }

    /// Turns an HTTP connection into a WebSocket session: the same socket, token and connection
    /// count, now with a stream session behind WebSocket framing. What the client sent after its
    /// request head is the session's first input.
    fn upgrade(&mut self, now: Instant, token: Token, response: Vec<u8>, mut leftover: Vec<u8>) {
        let Some(conn) = self.http.remove(&token) else {
            return;
        };
        if let Some(timer) = conn.timer_handle() {
            self.timers.cancel(timer);
        }
        let peer = conn.peer();
        let (stream, tls) = conn.into_parts();
        if self.shared.capturing()
            && let Ok(local) = stream.local_addr()
        {
            self.shared.capture(|c| c.tcp_open(peer, local));
        }
        let session = StreamSession::server(Arc::clone(&self.session_config), token.0 as u64, now);
        let link = WebSocketLink::new(response, self.session_config.max_message_len as u32);
        let conn = Connection::new(stream, peer, session, tls).with_websocket(link);
        self.connections.insert(token, Box::new(conn));
        if !leftover.is_empty()
            && let Some(conn) = self.connections.get_mut(&token)
        {
            conn.take_bytes(now, &mut leftover, &self.shared, ClientId::Tcp(token.0));
            if conn.has_hub_events() {
                self.to_serve.push(token);
            }
        }
        self.mark_dirty(token);
    }

    /// Removes an HTTP connection that ended, or brings its interest and timer up to date.
    pub(super) fn settle_http(&mut self, token: Token, end: Option<End>) {
        let now = self.now();
        self.schedule(TimerKey::Http(token), None);
        if let Some(end) = end {
            if let Some(mut conn) = self.http.remove(&token) {
                debug!("{}: HTTP connection over: {end:?}", conn.peer());
                if let Some(exchange) = conn.take_exchange() {
                    self.end_exchange(now, &exchange);
                }
                let _ = self.poll.registry().deregister(conn.stream_mut());
                self.shared.close_connection(conn.peer().ip());
            }
            return;
        }
        let Some(conn) = self.http.get_mut(&token) else {
            return;
        };
        if let Some(writable) = conn.interest_change() {
            let peer = conn.peer();
            reregister(&self.poll, conn.stream_mut(), token, writable, peer);
        }
        let deadline = conn.deadline();
        self.schedule(TimerKey::Http(token), deadline);
    }
}
