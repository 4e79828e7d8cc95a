//! One connection at the HTTP listener before it becomes anything else: it reads requests (heads
//! and bodies, bounded in bytes and in time), answers them in order, keeps the connection alive
//! between them, holds an [`Exchange`] while a request of the HTTP mapping waits for the hub, and
//! hands the socket over when a request upgrades it to a WebSocket. At the HTTPS listener the
//! same connection runs over TLS: the head's deadline covers the handshake, and the TLS session
//! goes with the socket when it is upgraded (WebSocket over TLS).

use std::io::{self, Read};
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use framewire_client::tls_io::TlsRead;
use framewire_protocol::session::Instant;
use log::{debug, info};
use mio::net::TcpStream;

use bytes::Bytes;

use super::exchange::{Exchange, Progress};
use super::http::{Head, MAX_HEAD_LEN, Response, parse_head};
use super::plan::Call;
use super::routes::{Answer, answer};
use crate::connection::End;
use crate::shared::Shared;
use crate::socket_out::SocketOut;
use crate::timer_wheel::TimerHandle;
use crate::tls::HandshakeFailure;

/// What a read left the socket as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Socket {
    /// It may have more.
    More,
    /// It has nothing more until the next readiness event.
    Blocked,
    /// The peer has shut its side (or, under TLS, sent its `close_notify`).
    PeerDone,
}
/// What a turn of reading left the connection as.
#[derive(Debug)]
pub(crate) enum HttpTurn {
    /// Still an HTTP connection.
    Open,
    /// Upgraded: `response` (the `101`) is to be written first, then WebSocket frames; `leftover`
    /// is what the client sent after its request head.
    Upgrade {
        response: Vec<u8>,
        leftover: Vec<u8>,
    },
    /// A request of the HTTP mapping: the worker starts its exchange with the hub
    /// ([`HttpConnection::begin`]); nothing more is read until it is answered.
    Exchange {
        call: Call,
        keep_alive: bool,
        head_only: bool,
    },
    /// Over.
    Ended(End),
}

/// An HTTP/1.1 connection; see the module docs.
#[derive(Debug)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent facts about one connection, not states of one machine"
)]
pub(crate) struct HttpConnection {
    stream: TcpStream,
    peer: SocketAddr,
    /// TLS between the socket and HTTP (the HTTPS listener); `None`: plaintext. Boxed, as in
    /// [`crate::connection::Connection`].
    tls: Option<Box<rustls::ServerConnection>>,
    /// A TLS connection's `close_notify` has been queued.
    close_notified: bool,
    /// The last read filled the buffer: the socket may hold more than was read.
    read_full: bool,
    /// What has arrived of the next request head (and anything pipelined after it).
    buf: Vec<u8>,
    /// Responses not yet written.
    out: Vec<u8>,
    /// When the head being read must be whole (from the connection's start, or the last
    /// response); once closing, when the last response must be out.
    deadline: Instant,
    head_timeout: Duration,
    /// The last response is queued: nothing more is read; the connection ends once it is out.
    closing: bool,
    /// The peer has shut its side.
    peer_done: bool,
    registered_writable: bool,
    timer: Option<TimerHandle>,
    /// The largest request body read (the server's frame length limit: no operation carries more).
    max_body: usize,
    /// The request being answered by the hub, if one is.
    exchange: Option<Box<Exchange>>,
    /// In the loop's list of connections whose exchange to settle this turn.
    dirty: bool,
}

impl HttpConnection {
    pub(crate) fn new(
        stream: TcpStream,
        peer: SocketAddr,
        now: Instant,
        head_timeout: Duration,
        max_body: usize,
        tls: Option<Box<rustls::ServerConnection>>,
    ) -> Self {
        Self {
            stream,
            peer,
            tls,
            close_notified: false,
            read_full: false,
            buf: Vec::new(),
            out: Vec::new(),
            deadline: now + head_timeout,
            head_timeout,
            closing: false,
            peer_done: false,
            registered_writable: false,
            timer: None,
            max_body,
            exchange: None,
            dirty: false,
        }
    }

    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub(crate) fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    pub(crate) fn timer_mut(&mut self) -> &mut Option<TimerHandle> {
        &mut self.timer
    }

    /// The handle of its timer, if one is set (to cancel when the connection changes hands).
    pub(crate) fn timer_handle(&self) -> Option<TimerHandle> {
        self.timer
    }

    /// When [`HttpConnection::on_timeout`] is due: the head's deadline, or the exchange's.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match &self.exchange {
            Some(exchange) => exchange.deadline(),
            None => Some(self.deadline),
        }
    }

    /// Whether the connection waits in the loop's list to settle this turn (as
    /// [`crate::connection::Connection::mark_dirty`]): `true` when it was not yet.
    pub(crate) fn mark_dirty(&mut self) -> bool {
        !std::mem::replace(&mut self.dirty, true)
    }

    /// The exchange under way, if any.
    pub(crate) fn exchange_mut(&mut self) -> Option<&mut Exchange> {
        self.exchange.as_deref_mut()
    }

    /// Whether the socket may still hold bytes: the last read filled the buffer, and reading
    /// stopped there (at a request handed to the hub, or an upgrade). An edge-triggered poller
    /// does not report bytes already there, so the worker reads again by itself.
    pub(crate) fn may_have_unread(&self) -> bool {
        self.read_full
    }

    /// Whether the connection runs over TLS.
    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The socket and its TLS session, once the connection has been upgraded.
    pub(crate) fn into_parts(self) -> (TcpStream, Option<Box<rustls::ServerConnection>>) {
        (self.stream, self.tls)
    }

    /// Reads what the socket has and answers every whole request head in it.
    pub(crate) fn on_readable(
        &mut self,
        now: Instant,
        scratch: &mut [u8],
        shared: &Shared,
    ) -> HttpTurn {
        loop {
            let (plain, socket) = match self.read_once(scratch, shared) {
                Ok(read) => read,
                Err(end) => return HttpTurn::Ended(end),
            };
            // Once the answer is given, what else comes is not read.
            if !plain.is_empty() && !self.closing {
                self.buf.extend_from_slice(&scratch[plain]);
                if self.exchange.is_some() {
                    // Pipelined behind a request the hub is answering: kept for later, bounded.
                    if self.buf.len() > MAX_HEAD_LEN + self.max_body {
                        info!("{}: too much pipelined behind a waiting request", self.peer);
                        return HttpTurn::Ended(End::SessionOver);
                    }
                } else if let Some(turn) = self.answer_heads(now, shared) {
                    return turn;
                }
            }
            match socket {
                Socket::More => {}
                Socket::Blocked => break,
                Socket::PeerDone => {
                    self.peer_done = true;
                    break;
                }
            }
        }
        HttpTurn::Open
    }

    /// One read from the socket: where in `scratch` the bytes it gave lie (under TLS, the
    /// plaintext the records opened to), and what the socket said.
    fn read_once(
        &mut self,
        scratch: &mut [u8],
        shared: &Shared,
    ) -> Result<(Range<usize>, Socket), End> {
        let Some(tls) = self.tls.as_mut() else {
            self.read_full = false;
            return match self.stream.read(scratch) {
                Ok(0) => Ok((0..0, Socket::PeerDone)),
                Ok(n) => {
                    self.read_full = n == scratch.len();
                    Ok((0..n, Socket::More))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok((0..0, Socket::Blocked)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok((0..0, Socket::More)),
                Err(e) => Err(End::Failed(e.kind())),
            };
        };
        let (got, plain) = crate::tls::read_tls(tls, &mut self.stream, scratch, &shared.counters)?;
        self.read_full = got == TlsRead::Data(scratch.len() / 2);
        let socket = match got {
            TlsRead::Data(_) => Socket::More,
            TlsRead::WouldBlock => Socket::Blocked,
            TlsRead::Closed | TlsRead::Eof => Socket::PeerDone,
        };
        Ok((plain, socket))
    }

    /// Answers the whole heads at the front of the buffer; `Some` when one upgraded the connection.
    fn answer_heads(&mut self, now: Instant, shared: &Shared) -> Option<HttpTurn> {
        while !self.closing && self.exchange.is_none() {
            let (head, len) = match parse_head(&self.buf) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => break,
                Err(e) => {
                    info!("{}: HTTP {}: {}", self.peer, e.status, e.why);
                    self.respond(now, &Response::text(e.status, e.why), false, false, shared);
                    break;
                }
            };
            let body = match self.body_of(&head, len) {
                Ok(Some(body)) => body,
                Ok(None) => break,
                Err(refused) => {
                    info!("{}: HTTP {}", self.peer, refused.status);
                    self.respond(now, &refused, false, false, shared);
                    break;
                }
            };
            debug!("{}: HTTP {} {}", self.peer, head.method, head.path);
            let head_only = head.method == "HEAD";
            match answer(&head, body, shared, now) {
                Answer::Upgrade(_) if head.has_body() => {
                    let refused = Response::text(400, "a WebSocket upgrade carries no body");
                    self.respond(now, &refused, false, false, shared);
                }
                Answer::Upgrade(switching) => {
                    shared.counters.count_http_response(switching.status);
                    let mut response = Vec::new();
                    switching.write(true, false, &mut response);
                    info!("{}: WebSocket opened", self.peer);
                    return Some(HttpTurn::Upgrade {
                        response,
                        leftover: std::mem::take(&mut self.buf),
                    });
                }
                Answer::Respond(response) => {
                    self.respond(now, &response, head.keep_alive, head_only, shared);
                }
                Answer::Exchange(call) => {
                    return Some(HttpTurn::Exchange {
                        call,
                        keep_alive: head.keep_alive,
                        head_only,
                    });
                }
            }
        }
        None
    }

    /// Takes the request whose head is the first `len` bytes of the buffer, with its body:
    /// `Ok(None)` while the body is still arriving. The head's deadline covers the body.
    ///
    /// A body above the largest an operation carries gets `413`, one sent in chunks `411` (a
    /// browser's `fetch` always sends a length); either closes the connection.
    fn body_of(&mut self, head: &Head, len: usize) -> Result<Option<Bytes>, Response> {
        if head.transfer_encoding {
            return Err(Response::text(
                411,
                "a request body is sent with a Content-Length",
            ));
        }
        let body_len = head.content_length.unwrap_or(0);
        if body_len > self.max_body as u64 {
            return Err(Response::text(
                413,
                format!("a request body above {} bytes", self.max_body),
            ));
        }
        let end = len + body_len as usize;
        if self.buf.len() < end {
            return Ok(None);
        }
        let body = Bytes::copy_from_slice(&self.buf[len..end]);
        self.buf.drain(..end);
        Ok(Some(body))
    }

    /// The worker started the exchange a request asked for (or refused it with `refused`).
    pub(crate) fn begin(
        &mut self,
        started: Result<Exchange, Response>,
        now: Instant,
        shared: &Shared,
    ) {
        match started {
            Ok(exchange) => self.exchange = Some(Box::new(exchange)),
            Err(refused) => self.respond(now, &refused, true, false, shared),
        }
    }

    /// Writes what the exchange has for the socket, and says whether it is over: then the
    /// exchange is handed back (for the worker to end its session) and, once it answered, the
    /// requests pipelined behind it are read. `settle` is the exchange's turn with the hub.
    pub(crate) fn settle_exchange(
        &mut self,
        now: Instant,
        shared: &Shared,
        settle: impl FnOnce(&mut Exchange) -> Progress,
    ) -> Option<(Box<Exchange>, Option<HttpTurn>)> {
        self.dirty = false;
        let exchange = self.exchange.as_deref_mut()?;
        let mut progress = settle(exchange);
        self.out.append(&mut exchange.take_output());
        if progress == Progress::Running && exchange.is_slow(self.out.len()) {
            info!(
                "{}: event stream not read: closed as a slow consumer",
                self.peer
            );
            shared.hub().count_slow_consumer(exchange.client());
            progress = Progress::Over;
        }
        match progress {
            Progress::Running => None,
            Progress::Answered => {
                let done = self.exchange.take()?;
                // The next request has its own time from now.
                self.deadline = now + self.head_timeout;
                let next = self.answer_heads(now, shared);
                Some((done, next))
            }
            Progress::Over => {
                let done = self.exchange.take()?;
                self.closing = true;
                self.buf = Vec::new();
                Some((done, None))
            }
        }
    }

    /// The exchange under way when the connection ends, for the worker to end its session.
    pub(crate) fn take_exchange(&mut self) -> Option<Box<Exchange>> {
        self.exchange.take()
    }

    /// Queues a response; without `keep_alive` the connection closes once it is written.
    fn respond(
        &mut self,
        now: Instant,
        response: &Response,
        keep_alive: bool,
        head_only: bool,
        shared: &Shared,
    ) {
        shared.counters.count_http_response(response.status);
        response.write(keep_alive, head_only, &mut self.out);
        // The next head (or the last write) has its own time from now.
        self.deadline = now + self.head_timeout;
        if !keep_alive {
            self.closing = true;
            self.buf = Vec::new();
        }
    }

    /// The deadline passed: a head still arriving gets `408`; an idle keep-alive connection, and
    /// one whose last response would not go out, just ends.
    pub(crate) fn on_timeout(&mut self, now: Instant, shared: &Shared) -> Option<End> {
        if let Some(exchange) = self.exchange.as_deref_mut() {
            exchange.on_timeout(now);
            return None;
        }
        if now < self.deadline {
            return None;
        }
        if self.closing {
            return Some(End::SessionOver);
        }
        if self.tls.as_ref().is_some_and(|t| t.is_handshaking()) {
            shared.counters.count_tls_failure(HandshakeFailure::Timeout);
            return Some(End::Tls(
                "TLS handshake not finished within the request head's deadline".into(),
            ));
        }
        if self.buf.is_empty() {
            debug!("{}: idle HTTP connection closed", self.peer);
            return Some(End::SessionOver);
        }
        info!("{}: HTTP request head not whole in time", self.peer);
        let late = Response::text(408, "the request head did not arrive in time");
        self.respond(now, &late, false, false, shared);
        None
    }

    /// Writes what is queued; the connection ends once its last response is out (under TLS, a
    /// `close_notify` after it), or the peer is gone and nothing is owed.
    pub(crate) fn flush(&mut self) -> Option<End> {
        if let Err(end) = self.write_out() {
            return Some(end);
        }
        if !self.out.is_empty() {
            return None;
        }
        if self.out.capacity() > MAX_HEAD_LEN {
            self.out = Vec::new();
        }
        let said_all = self.closing && self.exchange.is_none();
        if let Some(tls) = self.tls.as_mut() {
            if said_all && !std::mem::replace(&mut self.close_notified, true) {
                tls.send_close_notify();
                if let Err(end) = self.write_out() {
                    return Some(end);
                }
            }
            if self.tls.as_ref().is_some_and(|t| t.wants_write()) {
                return None;
            }
        }
        if said_all {
            Some(End::SessionOver)
        } else if self.peer_done {
            Some(End::PeerClosed)
        } else {
            None
        }
    }

    /// Writes (under TLS, seals and writes) the queued output until it is out or the socket
    /// would block.
    fn write_out(&mut self) -> Result<(), End> {
        let taken = SocketOut::new(&mut self.stream, self.tls.as_deref_mut())
            .write_until_blocked(&self.out)?;
        self.out.drain(..taken);
        Ok(())
    }

    /// Whether the registration must change to wait for writability, as
    /// [`crate::connection::Connection::interest_change`].
    pub(crate) fn interest_change(&mut self) -> Option<bool> {
        let want = !self.out.is_empty() || self.tls.as_ref().is_some_and(|t| t.wants_write());
        (want != self.registered_writable).then(|| {
            self.registered_writable = want;
            want
        })
    }
}
