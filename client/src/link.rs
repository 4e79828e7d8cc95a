//! One connection attempt: a non-blocking socket and the protocol session that speaks on it, TCP
//! (`StreamSession`) or UDP (`Session`). The link does I/O only when driven, and never waits.
//! [`Connection`](crate::Connection) is built on it; tools that need the frames themselves (a
//! replay of captured traffic) use it directly.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use framewire_protocol::session::{
    Event, Instant, SendError, Session, SessionConfig, Stats, StreamSession,
};
use framewire_protocol::wire::{Frame, Reason};

use crate::options::TlsOptions;
use crate::tls_io::{self, TlsRead};
use crate::udp_io::{self, UdpSender};

/// How much one `drive` reads at most, so one busy link cannot starve the caller's loop.
const READ_BUDGET: usize = 1 << 20;

/// A session over a non-blocking socket, frame in and frame out: no reconnects, no operation ids,
/// no translation of frames into events. Register [`Link::source`] with a mio `Poll` (readable and
/// writable) and call [`Link::drive`] when it is ready or its [`Link::poll_timeout`] is due.
#[derive(Debug)]
pub enum Link {
    /// A TCP connection in stream mode.
    Tcp {
        /// The socket.
        stream: mio::net::TcpStream,
        /// The session speaking on it.
        session: Box<StreamSession>,
        /// TLS between the socket and the session; `None`: plaintext.
        tls: Option<Box<rustls::ClientConnection>>,
        /// The last time the session was driven (bytes are handed over at their arrival time,
        /// never before it).
        driven: Instant,
    },
    /// UDP datagrams to one server.
    Udp {
        /// The socket.
        socket: mio::net::UdpSocket,
        /// The session speaking on it.
        session: Box<Session>,
        /// Where its datagrams are written and sent from (a turn's datagrams of one size in one
        /// system call where the kernel offers segmentation).
        sender: Box<UdpSender>,
        /// The last time the session was driven: a datagram's arrival time is never put before
        /// it (the session's clock only moves forward).
        driven: Instant,
    },
}

impl Link {
    /// Starts connecting (the TCP connect completes in the background; the Hello is queued).
    /// `config.hello_options` are sent in the Hello; `nonce` is the UDP Hello's nonce; `tls`, over
    /// TCP, puts TLS under the session.
    ///
    /// # Errors
    /// The socket cannot be created.
    pub fn open(
        server: SocketAddr,
        udp: bool,
        tls: Option<&TlsOptions>,
        config: SessionConfig,
        nonce: u64,
        now: Instant,
    ) -> io::Result<Self> {
        if udp {
            let local: SocketAddr = if server.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let socket = mio::net::UdpSocket::bind(local)?;
            // Connected, so that the kernel reports a port unreachable for what was sent (a
            // refused read), and drops datagrams from anyone but the server.
            socket.connect(server)?;
            // Where the kernel cannot coalesce, reads stay one datagram each.
            let _ = udp_io::enable_coalesced_receive(&socket);
            // Datagrams are handed to the session at the time they arrived, not at the next
            // read (a game loop reads once a frame): round trips measure the network, not the
            // loop. Without the stamps, at the read.
            let _ = udp_io::enable_receive_timestamps(&socket);
            let session = Session::connect(config, server, nonce, now);
            return Ok(Self::Udp {
                socket,
                session: Box::new(session),
                sender: Box::new(UdpSender::new(true)),
                driven: now,
            });
        }
        let tls = match tls {
            Some(t) => Some(Box::new(
                rustls::ClientConnection::new(Arc::clone(&t.config), t.name_for(server))
                    .map_err(tls_io::tls_error)?,
            )),
            None => None,
        };
        let stream = mio::net::TcpStream::connect(server)?;
        let _ = stream.set_nodelay(true);
        // As for UDP: bytes are handed over at their arrival, so a Ping's round trip is the
        // network's, not the caller's loop period.
        let _ = udp_io::enable_stream_timestamps(&stream);
        Ok(Self::Tcp {
            stream,
            session: Box::new(StreamSession::client(config, now)),
            tls,
            driven: now,
        })
    }

    /// Reads what has arrived, runs due timers, and writes what is pending, without waiting.
    /// `scratch` is the caller's read buffer: 64 KiB, as one UDP read may hold several datagrams
    /// (a read that does not fit is dropped).
    ///
    /// # Errors
    /// The socket failed (a refused TCP connect shows up here).
    pub fn drive(&mut self, now: Instant, scratch: &mut [u8]) -> io::Result<()> {
        match self {
            Self::Tcp {
                stream,
                session,
                tls: Some(tls),
                driven,
            } => {
                let mut read = 0;
                while !session.is_closed() && read < READ_BUDGET {
                    let (raw, plain) = scratch.split_at_mut(scratch.len() / 2);
                    let read_now = tls_io::read_records(tls, stream, raw, plain);
                    if let Ok((_, opened)) = read_now
                        && opened > 0
                    {
                        read += opened;
                        let at = now.max(*driven);
                        session.handle_bytes(at, &plain[..opened]);
                        *driven = at;
                    }
                    match read_now.map(|(got, _)| got) {
                        Ok(TlsRead::Data(n)) => read += n,
                        Ok(TlsRead::WouldBlock) => break,
                        Ok(TlsRead::Closed | TlsRead::Eof) => {
                            return Err(io::Error::new(
                                io::ErrorKind::ConnectionAborted,
                                "the server ended the connection without a Close",
                            ));
                        }
                        Err(e) if would_block(&e) => break,
                        Err(e) => return Err(e),
                    }
                }
                if session.poll_timeout().is_some_and(|t| t <= now) {
                    session.handle_timeout(now);
                }
            }
            Self::Tcp {
                stream,
                session,
                tls: None,
                driven,
            } => {
                let mut read = 0;
                while !session.is_closed() && read < READ_BUDGET {
                    match udp_io::recv_stamped(stream, scratch) {
                        Ok((0, _)) => {
                            return Err(io::Error::new(
                                io::ErrorKind::ConnectionAborted,
                                "the server ended the connection without a Close",
                            ));
                        }
                        Ok((n, arrived)) => {
                            read += n;
                            let at = udp_io::arrival_instant(arrived, now, *driven);
                            session.handle_bytes(at, &scratch[..n]);
                            *driven = at;
                        }
                        Err(e) if would_block(&e) => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                if session.poll_timeout().is_some_and(|t| t <= now) {
                    session.handle_timeout(now);
                }
            }
            Self::Udp {
                socket,
                session,
                driven,
                ..
            } => {
                let mut read = 0;
                while read < READ_BUDGET {
                    match udp_io::recv_coalesced(socket, scratch) {
                        Ok(r) => {
                            read += r.data.len().max(1);
                            let at = r.arrived_at(now, *driven);
                            r.hand_to(session, at);
                            *driven = at;
                        }
                        Err(e) if would_block(&e) => break,
                        // Interrupted, or one read that did not fit `scratch`: read on.
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::Interrupted | io::ErrorKind::InvalidData
                            ) => {}
                        // An ICMP port unreachable for an earlier send: nothing listens there
                        // (now). Fail at once, as a refused TCP connect does, rather than wait for
                        // a timeout; a reconnect policy tries again.
                        Err(e) => return Err(e),
                    }
                }
                if session.poll_timeout().is_some_and(|t| t <= now) {
                    session.handle_timeout(now);
                }
            }
        }
        self.flush(now)
    }

    /// Writes what is queued, as far as the socket takes it now, without reading: a message
    /// queued between two [`Link::drive`]s goes out at once instead of at the next one.
    ///
    /// # Errors
    /// The socket failed.
    pub fn flush(&mut self, now: Instant) -> io::Result<()> {
        match self {
            Self::Tcp {
                stream,
                session,
                tls: Some(tls),
                driven,
            } => {
                *driven = now.max(*driven);
                let taken = tls_io::write_sealed(tls, stream, session.pending_output())?;
                session.consume_output(taken);
                Ok(())
            }
            Self::Tcp {
                stream,
                session,
                tls: None,
                driven,
            } => {
                *driven = now.max(*driven);
                while !session.pending_output().is_empty() {
                    match stream.write(session.pending_output()) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => session.consume_output(n),
                        Err(e) if would_block(&e) => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
            Self::Udp {
                socket,
                session,
                sender,
                driven,
            } => {
                *driven = now.max(*driven);
                sender
                    .send_from(socket, |buf| session.poll_transmit(now, buf), |_, _| {})
                    .result()
            }
        }
    }

    /// The next event: connected, a frame, or closed.
    pub fn poll_event(&mut self) -> Option<Event> {
        match self {
            Self::Tcp { session, .. } => session.poll_event(),
            Self::Udp { session, .. } => session.poll_event(),
        }
    }

    /// When [`Link::drive`] must run next for the session's timers.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Self::Tcp { session, .. } => session.poll_timeout(),
            Self::Udp { session, .. } => session.poll_timeout(),
        }
    }

    /// Whether output waits for the socket (the caller then waits for writability too).
    pub fn wants_write(&self) -> bool {
        match self {
            Self::Tcp { session, tls, .. } => {
                !session.pending_output().is_empty()
                    || tls.as_ref().is_some_and(|t| t.wants_write())
            }
            Self::Udp { .. } => false,
        }
    }

    /// Queues a frame (any sequence number is the session's to set).
    ///
    /// # Errors
    /// As the session's `send`: closed, a full reliable queue, a frame too large.
    pub fn send(&mut self, frame: Frame, now: Instant) -> Result<(), SendError> {
        match self {
            Self::Tcp { session, .. } => session.send(&frame, now),
            Self::Udp { session, .. } => session.send(frame),
        }
    }

    /// Starts closing with `reason`.
    pub fn close(&mut self, now: Instant, reason: Reason, message: &str) {
        match self {
            Self::Tcp { session, .. } => session.close(now, reason, message),
            Self::Udp { session, .. } => session.close(now, reason, message),
        }
    }

    /// Whether the session is over.
    pub fn is_closed(&self) -> bool {
        match self {
            Self::Tcp { session, .. } => session.is_closed(),
            Self::Udp { session, .. } => session.is_closed(),
        }
    }

    /// The session's counters.
    pub fn stats(&self) -> Stats {
        match self {
            Self::Tcp { session, .. } => session.stats(),
            Self::Udp { session, .. } => session.stats(),
        }
    }

    /// The socket, as mio registers it (for callers that wait on readiness).
    pub fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Self::Tcp { stream, .. } => stream,
            Self::Udp { socket, .. } => socket,
        }
    }

    /// The socket's file descriptor, for a caller's own poll loop (epoll, a game engine's).
    #[cfg(unix)]
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match self {
            Self::Tcp { stream, .. } => stream.as_raw_fd(),
            Self::Udp { socket, .. } => socket.as_raw_fd(),
        }
    }
}

/// Whether an operation must wait: the socket is full or empty, or a TCP connect is still in
/// progress (Linux says `ENOTCONN` to a read then).
fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::NotConnected
    )
}
