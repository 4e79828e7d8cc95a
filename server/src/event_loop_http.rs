//! The HTTP listener's connections in a worker's loop: a turn of one, its settling, and its upgrade
//! to a WebSocket session (which then lives with the loop's other stream connections).

use std::sync::Arc;

use framewire_protocol::session::{Instant, StreamSession};
use log::debug;
use mio::Token;

use super::{End, TimerKey, Worker, reregister};
use crate::connection::Connection;
use crate::hub::ClientId;
use crate::web::http_connection::HttpTurn;
use crate::web::ws_link::WebSocketLink;

impl Worker {
    /// Reads from a connection at the HTTP listener and writes its answers; one that asks for a
    /// WebSocket becomes a stream session here.
    pub(super) fn http_event(&mut self, now: Instant, token: Token, scratch: &mut [u8]) {
        let Some(conn) = self.http.get_mut(&token) else {
            return;
        };
        match conn.on_readable(now, scratch, &self.shared) {
            HttpTurn::Open => {
                let end = conn.flush();
                self.settle_http(token, end);
            }
            HttpTurn::Ended(end) => self.settle_http(token, Some(end)),
            HttpTurn::Upgrade { response, leftover } => {
                self.upgrade(now, token, response, leftover);
            }
        }
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
        let stream = conn.into_stream();
        if self.shared.capturing()
            && let Ok(local) = stream.local_addr()
        {
            self.shared.capture(|c| c.tcp_open(peer, local));
        }
        let session = StreamSession::server(Arc::clone(&self.session_config), token.0 as u64, now);
        let link = WebSocketLink::new(response, self.session_config.max_message_len as u32);
        let conn = Connection::new(stream, peer, session, None).with_websocket(link);
        self.connections.insert(token, Box::new(conn));
        if !leftover.is_empty()
            && let Some(conn) = self.connections.get_mut(&token)
        {
            conn.take_bytes(now, &mut leftover, &self.shared, ClientId::Tcp(token.0));
        }
        self.mark_dirty(token);
    }

    /// Removes an HTTP connection that ended, or brings its interest and timer up to date.
    pub(super) fn settle_http(&mut self, token: Token, end: Option<End>) {
        self.schedule(TimerKey::Http(token), None);
        if let Some(end) = end {
            if let Some(mut conn) = self.http.remove(&token) {
                debug!("{}: HTTP connection over: {end:?}", conn.peer());
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
        self.schedule(TimerKey::Http(token), Some(deadline));
    }
}
