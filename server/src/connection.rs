//! One TCP connection: its socket and the stream session that speaks the protocol on it.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use framewire_protocol::session::{Event, Instant, SendError, StreamSession};
use framewire_protocol::wire::Reason;
use log::{debug, info, warn};
use mio::net::TcpStream;

use crate::app;

/// Why a connection is over, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// The peer closed its side of the socket.
    PeerClosed,
    /// The session ended (and its last frames were written).
    SessionOver,
    /// The socket failed.
    Failed(io::ErrorKind),
}

#[derive(Debug)]
pub(crate) struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    session: StreamSession,
}

impl Connection {
    pub(crate) fn new(stream: TcpStream, peer: SocketAddr, session: StreamSession) -> Self {
        Self {
            stream,
            peer,
            session,
        }
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
    }

    /// When the session next needs `on_timeout`.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.session.poll_timeout()
    }

    /// Reads until the socket would block, feeding the session; `scratch` is the event loop's
    /// shared read buffer, so an idle connection holds no buffer of its own.
    pub(crate) fn on_readable(&mut self, now: Instant, scratch: &mut [u8]) -> Option<End> {
        while !self.session.is_closed() {
            match self.stream.read(scratch) {
                Ok(0) => return Some(End::PeerClosed),
                Ok(n) => {
                    self.session.handle_bytes(now, &scratch[..n]);
                    self.serve(now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Some(End::Failed(e.kind())),
            }
        }
        self.flush()
    }

    pub(crate) fn on_timeout(&mut self, now: Instant) -> Option<End> {
        self.session.handle_timeout(now);
        self.serve(now);
        self.flush()
    }

    /// Starts an orderly close with `reason` (a shutdown, say).
    pub(crate) fn close(&mut self, now: Instant, reason: Reason, message: &str) {
        self.session.close(now, reason, message);
        self.serve(now);
    }

    /// Handles the session's events: replies to messages, and logs the rest.
    fn serve(&mut self, now: Instant) {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Connected { connection_id } => {
                    debug!("{}: session {connection_id} established", self.peer);
                }
                Event::Frame(frame) => {
                    let Some(reply) = app::respond(frame) else {
                        continue;
                    };
                    match self.session.send(&reply, now) {
                        Ok(()) | Err(SendError::Closed) => {}
                        Err(SendError::QueueFull) => {
                            info!(
                                "{}: output full: closing a peer that does not read",
                                self.peer
                            );
                            self.session
                                .close(now, Reason::SLOW_CONSUMER, "output full");
                        }
                        Err(e) => warn!("{}: cannot send a reply: {e}", self.peer),
                    }
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
                }
                other => debug!("{}: {other:?}", self.peer),
            }
        }
    }

    /// Writes pending output until the socket would block. The connection ends when the session
    /// is over and everything it said has been written.
    pub(crate) fn flush(&mut self) -> Option<End> {
        while !self.session.pending_output().is_empty() {
            match self.stream.write(self.session.pending_output()) {
                Ok(0) => return Some(End::Failed(io::ErrorKind::WriteZero)),
                Ok(n) => self.session.consume_output(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Some(End::Failed(e.kind())),
            }
        }
        self.session.is_closed().then_some(End::SessionOver)
    }
}
