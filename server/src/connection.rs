//! One TCP connection: its socket and the stream session that speaks the protocol on it.

use std::io::{self, Read};
use std::net::SocketAddr;

use framewire_protocol::session::Refusal;
use framewire_protocol::session::{Closer, Event, Instant, SendError, StreamSession};
use framewire_protocol::wire::{ChannelKind, Frame, FrameBody, Hello, Publish, Reason, Text};
use log::{debug, info, warn};
use mio::net::TcpStream;

use framewire_client::tls_io::TlsRead;

use crate::capture::Way;
use crate::counters::Counters;
use crate::hub::{ClientId, Delivery, Hub, oversized_answer};
use crate::shared::Shared;
use crate::socket_out::SocketOut;
use crate::timer_wheel::TimerHandle;
use crate::tls::{HandshakeFailure, common_name};
use crate::web::websocket::close_code;
use crate::web::ws_link::{Heard, WebSocketLink};

/// What one read from a connection's socket gave ([`Connection::read_once`]).
#[derive(Debug, Default)]
struct ReadOnce {
    /// Where in the read buffer the plaintext lies (decrypted, under TLS).
    plain: std::ops::Range<usize>,
    /// Bytes the socket gave.
    socket: usize,
    /// The socket gave less than there was room for: it had no more.
    short: bool,
    /// The socket would block.
    blocked: bool,
    /// The peer's side has ended (the end of the stream, or TLS's `close_notify`).
    peer_done: bool,
}

impl ReadOnce {
    fn blocked() -> Self {
        Self {
            blocked: true,
            ..Self::default()
        }
    }

    fn ended() -> Self {
        Self {
            peer_done: true,
            ..Self::default()
        }
    }
}

/// Why a connection is over, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// The peer closed its side of the socket.
    PeerClosed,
    /// The session ended (and its last frames were written).
    SessionOver,
    /// The socket failed.
    Failed(io::ErrorKind),
    /// TLS failed: the handshake (a plaintext client, a certificate refused) or a record that
    /// does not verify; the words say which.
    Tls(String),
}

thread_local! {
    /// Frames rebuilt from a WebSocket read, kept by each worker thread between reads.
    static REBUILT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The most of [`REBUILT`]'s capacity kept after a read (one big message's is let go).
const REBUILT_KEPT: usize = 256 * 1024;

/// Output a connection queues before it writes ahead of the end of the loop turn.
const WRITE_AHEAD: usize = 16 * 1024;

/// What a read turn left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Readable {
    /// The socket would block: wait for the next readiness event.
    Drained,
    /// The turn's budget ran out with bytes still to read: read again next turn (readiness is
    /// edge-triggered, so no event will say so).
    MoreLeft,
    /// The connection is over.
    Ended(End),
}

#[derive(Debug)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent facts about one connection, not states of one machine"
)]
pub(crate) struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    session: StreamSession,
    /// TLS between the socket and the session (`--tls`); `None`: plaintext. Boxed: rustls's
    /// state is a few kilobytes, and plaintext connections should not pay for it.
    tls: Option<Box<rustls::ServerConnection>>,
    /// WebSocket framing between the socket and the session (a connection upgraded at the HTTP
    /// listener); `None`: the session's frames are the stream's bytes.
    web: Option<Box<WebSocketLink>>,
    /// The hub has been told of this session (at its handshake).
    opened: bool,
    /// In the loop's list of connections to flush this turn.
    dirty: bool,
    /// The client closed the session with reason NORMAL.
    clean_close: bool,
    /// The poller said the peer has shut its side: read to the end, short reads or not.
    read_closed: bool,
    /// Whether the connection is registered for writability as well as readability.
    registered_writable: bool,
    /// The peer's side has ended (a read found the end of the stream): once the answers to what
    /// it sent are written, the connection ends.
    peer_done: bool,
    /// The handle of this connection's timer in the loop's wheel.
    timer: Option<TimerHandle>,
    /// A TLS connection's `close_notify` has been queued.
    close_notified: bool,
}

impl Connection {
    pub(crate) fn new(
        stream: TcpStream,
        peer: SocketAddr,
        session: StreamSession,
        tls: Option<Box<rustls::ServerConnection>>,
    ) -> Self {
        Self {
            stream,
            peer,
            session,
            tls,
            web: None,
            opened: false,
            dirty: false,
            clean_close: false,
            read_closed: false,
            peer_done: false,
            registered_writable: false,
            timer: None,
            close_notified: false,
        }
    }

    /// The same connection with its session's frames carried as WebSocket messages.
    pub(crate) fn with_websocket(mut self, link: WebSocketLink) -> Self {
        self.web = Some(Box::new(link));
        // The frames it hands the session are rebuilt from whole messages (ws_link.rs).
        self.session.skip_checksums();
        self
    }

    pub(crate) fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Whether output waits for the socket to become writable.
    pub(crate) fn wants_write(&self) -> bool {
        !self.session.pending_output().is_empty()
            || self.tls.as_ref().is_some_and(|t| t.wants_write())
            || self.web.as_ref().is_some_and(|w| !w.output().is_empty())
    }

    /// When the session next needs `on_timeout`.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.session.poll_timeout()
    }

    /// Reads until the socket would block or `budget` bytes have been read, handing the session's
    /// frames to the hub; `scratch` is the event loop's shared read buffer, so an idle connection
    /// holds no buffer of its own. Output is written later: what the session answered by itself
    /// when the read is done ([`Connection::write_early`]), the rest once per loop turn
    /// ([`Connection::flush`]). The budget keeps one busy peer from filling every subscriber's
    /// output in a single turn, before any of it is written.
    pub(crate) fn on_readable(
        &mut self,
        now: Instant,
        scratch: &mut [u8],
        budget: usize,
        shared: &Shared,
        me: ClientId,
    ) -> Readable {
        let mut read = 0;
        while !self.session.is_closed() && !self.web.as_ref().is_some_and(|w| w.is_closing()) {
            if read >= budget {
                return Readable::MoreLeft;
            }
            let got = match self.read_once(scratch, shared) {
                Ok(got) => got,
                Err(end) => return Readable::Ended(end),
            };
            if !got.plain.is_empty() {
                let plain = got.plain.clone();
                self.take_bytes(now, &mut scratch[plain], shared, me);
            }
            read += got.socket.max(got.plain.len());
            if got.peer_done {
                // The peer has shut its side but may still read (a half-close): what it is owed
                // for the frames it sent is written at the end of the turn, and the connection
                // ends then (`flush`).
                self.peer_done = true;
                return Readable::Drained;
            }
            if got.blocked || (got.short && !self.read_closed) {
                // A short read took everything the socket had: asking again would only hear
                // WouldBlock. Bytes that arrive later raise a new readiness event (as tokio
                // clears readiness after a short read). A shutdown the poller has already
                // reported raises none: then read on to the end.
                break;
            }
        }
        Readable::Drained
    }

    /// One read from the socket into `scratch`: where the plaintext it gave lies (under TLS, the
    /// second half of `scratch` holds what the records in the first half opened to), and what the
    /// socket said. A TLS handshake that completes is counted; one that fails ends the connection
    /// with its reason, counted.
    fn read_once(&mut self, scratch: &mut [u8], shared: &Shared) -> Result<ReadOnce, End> {
        let Some(tls) = self.tls.as_mut() else {
            return Ok(match self.stream.read(scratch) {
                Ok(0) => ReadOnce::ended(),
                Ok(n) => ReadOnce {
                    plain: 0..n,
                    socket: n,
                    short: n < scratch.len(),
                    ..ReadOnce::default()
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadOnce::blocked(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => ReadOnce::default(),
                Err(e) => return Err(End::Failed(e.kind())),
            });
        };
        let handshaking = tls.is_handshaking();
        let (got, plain) = crate::tls::read_tls(tls, &mut self.stream, scratch, &shared.counters)?;
        if handshaking && !tls.is_handshaking() {
            debug!("{}: TLS handshake done", self.peer);
        }
        let half = scratch.len() / 2;
        let mut once = match got {
            // Data(0): only what rustls held was moved out; the socket has not been read.
            TlsRead::Data(n) => ReadOnce {
                socket: n,
                short: n > 0 && n < half,
                ..ReadOnce::default()
            },
            TlsRead::WouldBlock => ReadOnce::blocked(),
            TlsRead::Closed | TlsRead::Eof => ReadOnce::ended(),
        };
        once.plain = plain;
        Ok(once)
    }

    /// Hands bytes read (decrypted, over TLS; the frames WebSocket messages carried, over
    /// WebSocket) to the session, and its frames to the hub.
    pub(crate) fn take_bytes(
        &mut self,
        now: Instant,
        bytes: &mut [u8],
        shared: &Shared,
        me: ClientId,
    ) {
        let Some(link) = self.web.as_mut() else {
            return self.feed_session(now, bytes, shared, me);
        };
        // The worker thread's buffer for rebuilt frames: no allocation per read, and nothing
        // held by an idle connection.
        let mut frames = REBUILT.with(|r| std::mem::take(&mut *r.borrow_mut()));
        frames.clear();
        let heard = link.take(
            bytes,
            self.session.max_frame_len(),
            &mut frames,
            shared.capturing(),
        );
        match heard {
            Heard::Open => {}
            Heard::PeerClosed(code) => {
                info!("{}: WebSocket closed by the client ({code:?})", self.peer);
            }
            Heard::Refused(v) => info!("{}: WebSocket refused: {v}", self.peer),
        }
        if !frames.is_empty() {
            self.feed_session(now, &frames, shared, me);
        }
        if frames.capacity() <= REBUILT_KEPT {
            REBUILT.with(|r| *r.borrow_mut() = frames);
        }
    }

    /// Hands stream bytes to the session, and its frames to the hub.
    fn feed_session(&mut self, now: Instant, bytes: &[u8], shared: &Shared, me: ClientId) {
        shared.capture(|c| c.tcp_data(self.peer, Way::In, bytes));
        let peer = self.peer.ip();
        let tls = self.tls.as_deref();
        // The hub is locked here only for the handshake's admission. Frames for the hub wait in
        // the session for the loop, which serves every connection read this turn under the lock
        // its dispatch takes (`serve`); Data frames the session echoes itself need none.
        self.session
            .handle_bytes_with(now, bytes, |hello: &Hello, _| {
                let mut hub = shared.hub();
                if tls.is_none() && shared.require_encryption {
                    return Err(Refusal {
                        silent: false,
                        reason: Reason::AUTH_FAILED,
                        message: Text::from_static(
                            "this server requires encryption: connect over TLS",
                        ),
                    });
                }
                // A verified client certificate names the session's identity (mutual TLS).
                match tls.and_then(|t| t.peer_certificates()) {
                    None => hub.admit(now, me, hello, peer),
                    Some(chain) => match chain
                        .first()
                        .ok_or(crate::tls::SubjectError::NoCommonName)
                        .and_then(|leaf| common_name(leaf))
                    {
                        Ok(identity) => hub.admit_certified(now, me, hello, peer, &identity),
                        Err(e) => Err(hub.refuse_certificate(me, peer, e)),
                    },
                }
            });
    }

    /// Whether the session holds frames or news for the hub ([`Connection::serve`]).
    pub(crate) fn has_hub_events(&self) -> bool {
        self.session.has_events()
    }

    /// The Publish at the front of the session's frames for the hub, if it asks for no answer
    /// and keeps nothing (no id, no `RETAIN`): one the worker may deliver itself. With its
    /// channel.
    pub(crate) fn front_publish(&self) -> Option<(u8, &Publish)> {
        match self.session.peek_event()? {
            Event::Frame(Frame {
                channel,
                body: FrameBody::Publish(p),
                ..
            }) if p.id == 0 && !p.retain => Some((*channel, p)),
            _ => None,
        }
    }

    /// Takes the frame at the front of the session's frames for the hub (after
    /// [`Connection::front_publish`]).
    pub(crate) fn take_frame(&mut self) -> Option<Frame> {
        match self.session.poll_event()? {
            Event::Frame(frame) => Some(frame),
            _ => None,
        }
    }

    /// The kind of `channel` in this session.
    pub(crate) fn channel_kind(&self, channel: u8) -> ChannelKind {
        self.session.channel_kind(channel)
    }

    /// Data frames the session echoed since the last call, for the loop to count in the hub's
    /// statistics once per turn (as frames in and out).
    pub(crate) fn take_echoed(&mut self) -> u64 {
        self.session.take_echoed()
    }

    /// Whether the registration must change to wait for writability (`Some(true)`), or stop
    /// waiting for it (`Some(false)`); `None` when it is right as it is. An unchanged
    /// registration is left alone: one system call less per connection and loop turn.
    pub(crate) fn interest_change(&mut self) -> Option<bool> {
        let want = self.wants_write();
        (want != self.registered_writable).then(|| {
            self.registered_writable = want;
            want
        })
    }

    /// The poller reported that the peer shut its side of the connection.
    pub(crate) fn note_read_closed(&mut self) {
        self.read_closed = true;
    }

    pub(crate) fn on_timeout(&mut self, now: Instant, shared: &Shared, me: ClientId) {
        self.session.handle_timeout(now);
        if self.session.has_events() {
            self.serve(now, &mut shared.hub(), &shared.counters, me);
        }
    }

    /// Starts an orderly close with `reason` (a shutdown, say).
    pub(crate) fn close(&mut self, now: Instant, reason: Reason, message: &str) {
        self.session.close(now, reason, message);
    }

    /// At shutdown, after the session's Close: a WebSocket connection whose frames are all out
    /// follows them with its own close (1001, going away) and writes it.
    pub(crate) fn going_away(&mut self, shared: &Shared) -> Option<End> {
        let link = self.web.as_mut()?;
        if !self.session.pending_output().is_empty() {
            return None;
        }
        link.close(
            close_code::GOING_AWAY,
            "server shutting down",
            &shared.counters,
        );
        self.flush(shared)
    }

    /// Where the loop keeps this connection's timer handle.
    pub(crate) fn timer_mut(&mut self) -> &mut Option<TimerHandle> {
        &mut self.timer
    }

    /// Whether the hub knows this connection as a session (its handshake completed).
    pub(crate) fn is_open_in_hub(&self) -> bool {
        self.opened
    }

    /// Whether the client ended the session with a Close (NORMAL): then it is over for good.
    pub(crate) fn ended_cleanly(&self) -> bool {
        self.clean_close
    }

    /// Queues a frame from the hub. A peer whose output is full is closed as a slow consumer;
    /// an unreliable frame that finds the output above its high-water mark is dropped.
    pub(crate) fn deliver(
        &mut self,
        now: Instant,
        delivery: &Delivery,
        shared: &Shared,
        me: ClientId,
    ) {
        if self.session.pending_output().len() >= WRITE_AHEAD {
            // Hand what is queued to the kernel before judging the peer slow: output waits for the
            // end of the turn only while it is small. A failed write is found by the next flush.
            let _ = self.write_pending(shared);
        }
        let before = self.session.pending_output().len();
        let answering = delivery.answering();
        let sent = match delivery {
            Delivery::Frame(frame) => self.session.send(frame, now),
            Delivery::Shared(frame) => self.session.send_shared(frame, now),
            Delivery::Close(reason, why) => {
                info!("{}: closing: {why}", self.peer);
                self.session.close(now, *reason, why);
                return;
            }
        };
        match sent {
            Ok(()) if self.session.pending_output().len() == before => {
                shared.hub().count_dropped(me, 1);
            }
            Ok(()) => {}
            Err(SendError::Closed) => shared.hub().count_dropped(me, 1),
            Err(SendError::TooLarge { len, max }) => {
                debug!("{}: a frame of {len} B is above its limit {max}", self.peer);
                match answering {
                    Some(a) => {
                        let _ = self.session.send(&a.too_large(len, max), now);
                    }
                    None => shared.hub().count_dropped(me, 1),
                }
            }
            Err(SendError::QueueFull) => {
                info!(
                    "{}: output full: closing a peer that does not read",
                    self.peer
                );
                let mut hub = shared.hub();
                hub.count_dropped(me, 1);
                hub.count_slow_consumer(me);
                drop(hub);
                self.session
                    .close(now, Reason::SLOW_CONSUMER, "output full");
            }
            Err(e) => warn!("{}: cannot send a frame: {e}", self.peer),
        }
    }

    /// Hands the session's events to the hub, and logs the rest.
    pub(crate) fn serve(&mut self, now: Instant, hub: &mut Hub, counters: &Counters, me: ClientId) {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Connected { connection_id, .. } => {
                    debug!("{}: session {connection_id} established", self.peer);
                    self.opened = true;
                }
                Event::Frame(frame) => {
                    let kind = self.session.channel_kind(frame.channel);
                    hub.handle_frame(now, me, frame, kind);
                }
                Event::Oversized(refused) => {
                    info!("{}: refused {refused:?}", self.peer);
                    let _ = self.session.send(&oversized_answer(&refused), now);
                }
                Event::Closed {
                    reason,
                    message,
                    by,
                } => {
                    info!(
                        "{}: session closed by {by:?}: {reason} {message}",
                        self.peer
                    );
                    self.clean_close = by == Closer::Peer && reason == Reason::NORMAL;
                    if by == Closer::Local {
                        counters.count_closed(reason);
                        if self.tls.as_ref().is_some_and(|t| t.is_handshaking()) {
                            info!(
                                "{}: TLS handshake not finished within the first-frame deadline",
                                self.peer
                            );
                            counters.count_tls_failure(HandshakeFailure::Timeout);
                        }
                    }
                }
                other => debug!("{}: {other:?}", self.peer),
            }
        }
    }

    /// Writes what the session answered by itself to a read (echoes, a Pong) at once, rather than
    /// at the end of the turn: its latency is then the read's, not the turn's (a turn serves
    /// every ready connection). Skipped while the socket is known to be full. What the hub
    /// answers is written by the turn's flush, as is whatever this write left; a failed write
    /// is found by that flush too.
    pub(crate) fn write_early(&mut self, shared: &Shared) {
        if !self.session.pending_output().is_empty() && !self.registered_writable {
            let _ = self.write_pending(shared);
        }
    }

    /// Whether the connection waits in the loop's list of connections to flush this turn.
    pub(crate) fn mark_dirty(&mut self) -> bool {
        !std::mem::replace(&mut self.dirty, true)
    }

    /// Writes pending output until the socket would block. The connection ends when the session
    /// is over and everything it said has been written (under TLS, a `close_notify` last).
    pub(crate) fn flush(&mut self, shared: &Shared) -> Option<End> {
        self.dirty = false;
        // The hub's answers to this turn's frames are queued: Data may be echoed at once again.
        self.session.resume_echo();
        if let Err(end) = self.write_pending(shared) {
            return Some(end);
        }
        let said_all = if self.web.is_some() {
            if let Err(end) = self.close_websocket(shared) {
                return Some(end);
            }
            let link = self.web.as_ref()?;
            if !link.output().is_empty() {
                return None;
            }
            link.is_closing() && !link.close_waits()
        } else {
            if !self.session.pending_output().is_empty() {
                return None;
            }
            self.session.is_closed()
        };
        if let Some(tls) = self.tls.as_mut() {
            if said_all && !std::mem::replace(&mut self.close_notified, true) {
                // The last frame is sealed: tell the peer the TLS stream ends here.
                tls.send_close_notify();
                if let Err(end) = self.write_pending(shared) {
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

    /// A WebSocket connection's end: once the session's frames are out, a close follows them:
    /// the answer to the client's close or to a broken rule, or (when the session is over) 1000;
    /// the connection ends when it is written.
    fn close_websocket(&mut self, shared: &Shared) -> Result<(), End> {
        let Some(link) = self.web.as_mut() else {
            return Ok(());
        };
        if !self.session.pending_output().is_empty() {
            return Ok(());
        }
        if link.close_waits() {
            link.close_now(&shared.counters);
        } else if !link.is_closing() && self.session.is_closed() {
            link.close(close_code::NORMAL, "", &shared.counters);
        }
        self.write_pending(shared)
    }

    /// Writes pending output until it is all out or the socket would block.
    fn write_pending(&mut self, shared: &Shared) -> Result<(), End> {
        let mut out = SocketOut::new(&mut self.stream, self.tls.as_deref_mut());
        if let Some(link) = self.web.as_mut() {
            return write_websocket(out, link, &mut self.session, shared, self.peer);
        }
        // Under TLS, also when nothing is pending: records sealed earlier (a close_notify) go out.
        let pending = self.session.pending_output();
        let taken = out.write_until_blocked(pending)?;
        if taken > 0 {
            // What the capture records is the plaintext, as the session wrote it.
            shared.capture(|c| c.tcp_data(self.peer, Way::Out, &pending[..taken]));
            self.session.consume_output(taken);
        }
        Ok(())
    }
}

/// Moves the session's frames into WebSocket messages and writes them, until both are out or the
/// socket would block. What the capture records is the session's stream, as over TCP.
fn write_websocket(
    mut out: SocketOut<'_>,
    link: &mut WebSocketLink,
    session: &mut StreamSession,
    shared: &Shared,
    peer: SocketAddr,
) -> Result<(), End> {
    loop {
        let moved = link.pump(session.pending_output());
        if moved > 0 {
            shared.capture(|c| c.tcp_data(peer, Way::Out, &session.pending_output()[..moved]));
            session.consume_output(moved);
        }
        if link.output().is_empty() {
            if moved == 0 {
                // Under TLS, records sealed earlier (a close_notify) may still wait.
                out.write(&[])?;
                return Ok(());
            }
            continue;
        }
        match out.write(link.output())? {
            0 => return Ok(()),
            n => link.consume(n),
        }
    }
}
