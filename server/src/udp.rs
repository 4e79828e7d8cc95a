//! Serving UDP: one socket, the protocol's stateless handshake [`Endpoint`], and a datagram
//! [`Session`] per connection id.
//!
//! The socket is read until `WouldBlock`. Each datagram goes through the endpoint, which answers
//! handshakes without keeping state and routes everything else by connection id; a session's
//! events are served by [`crate::app`] and what it has to send goes out at once. A datagram the
//! socket will not take now is dropped: the session resends what must arrive.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use framewire_protocol::session::{
    Endpoint, EndpointConfig, Event, Instant, Outcome, SendError, Session, SessionConfig,
};
use framewire_protocol::wire::{MAX_DATAGRAM_SIZE, Reason};
use log::{debug, info, warn};
use mio::net::UdpSocket;

use crate::app;

/// Fresh random bytes from the operating system.
///
/// # Errors
/// The operating system's random source failed.
pub(crate) fn random_key() -> io::Result<[u8; 16]> {
    let mut key = [0u8; 16];
    getrandom::fill(&mut key).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(key)
}

#[derive(Debug)]
pub(crate) struct UdpService {
    socket: UdpSocket,
    endpoint: Endpoint,
    sessions: HashMap<u64, Session>,
    out: Vec<u8>,
}

impl UdpService {
    pub(crate) fn new(socket: UdpSocket, session: SessionConfig) -> io::Result<Self> {
        let config = EndpointConfig {
            session,
            ..EndpointConfig::default()
        };
        Ok(Self {
            socket,
            endpoint: Endpoint::new(config, random_key()?, random_key()?),
            sessions: HashMap::new(),
            out: vec![0u8; MAX_DATAGRAM_SIZE],
        })
    }

    /// Starts a new cookie generation (the loop calls this once per cookie lifetime).
    pub(crate) fn rotate_secret(&mut self) -> io::Result<()> {
        self.endpoint.rotate_secret(random_key()?);
        Ok(())
    }

    /// Reads datagrams until the socket would block; returns the sessions whose timers may have
    /// changed.
    pub(crate) fn on_readable(&mut self, now: Instant, scratch: &mut [u8]) -> Vec<u64> {
        let mut touched = Vec::new();
        loop {
            let (len, from) = match self.socket.recv_from(scratch) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!("udp receive failed: {e}");
                    break;
                }
            };
            let datagram = &scratch[..len];
            match self.endpoint.handle(now, from, datagram, &mut self.out) {
                Outcome::Reply(n) => send(&self.socket, &self.out[..n], from),
                Outcome::Accept { session, reply } => {
                    let id = session.connection_id();
                    info!("{from}: udp session {id} established");
                    send(&self.socket, &self.out[..reply], from);
                    self.sessions.insert(id, *session);
                    touched.push(id);
                }
                Outcome::Route(id) => {
                    if let Some(session) = self.sessions.get_mut(&id) {
                        session.handle_datagram(now, from, Bytes::copy_from_slice(datagram));
                        touched.push(id);
                    }
                }
                Outcome::Drop(reason) => debug!("{from}: datagram dropped: {reason:?}"),
            }
        }
        for &id in &touched {
            self.serve(id, now);
        }
        touched.sort_unstable();
        touched.dedup();
        touched
    }

    /// Runs a session's timers.
    pub(crate) fn on_timeout(&mut self, id: u64, now: Instant) {
        if let Some(session) = self.sessions.get_mut(&id) {
            session.handle_timeout(now);
        }
        self.serve(id, now);
    }

    /// The session's next deadline; `None` when it has ended (and is forgotten).
    pub(crate) fn deadline(&mut self, id: u64) -> Option<Instant> {
        let deadline = self.sessions.get(&id)?.poll_timeout();
        if deadline.is_none() {
            self.sessions.remove(&id);
        }
        deadline
    }

    /// Serves a session's events and sends what it has to send.
    fn serve(&mut self, id: u64, now: Instant) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        while let Some(event) = session.poll_event() {
            match event {
                Event::Frame(frame) => {
                    if let Some(reply) = app::respond(frame) {
                        match session.send(reply) {
                            Ok(()) | Err(SendError::Closed) => {}
                            Err(SendError::QueueFull) => {
                                info!("udp session {id}: send queue full; closing");
                                session.close(now, Reason::SLOW_CONSUMER, "send queue full");
                            }
                            Err(e) => warn!("udp session {id}: cannot send a reply: {e}"),
                        }
                    }
                }
                Event::Closed {
                    reason,
                    message,
                    by,
                } => {
                    info!("udp session {id}: closed by {by:?}: {reason} {message}");
                }
                other => debug!("udp session {id}: {other:?}"),
            }
        }
        while let Some(t) = session.poll_transmit(now, &mut self.out) {
            send(&self.socket, &self.out[..t.len], t.destination);
        }
    }

    /// Closes every session with `GOING_AWAY`, sending each its Close once.
    pub(crate) fn close_all(&mut self, now: Instant) {
        let ids: Vec<u64> = self.sessions.keys().copied().collect();
        for id in ids {
            if let Some(session) = self.sessions.get_mut(&id) {
                session.close(now, Reason::GOING_AWAY, "server shutting down");
            }
            self.serve(id, now);
        }
        self.sessions.clear();
    }
}

fn send(socket: &UdpSocket, datagram: &[u8], to: SocketAddr) {
    match socket.send_to(datagram, to) {
        Ok(_) => {}
        // The session resends what must arrive; nothing waits for the socket.
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => debug!("{to}: udp send would block"),
        Err(e) => debug!("{to}: udp send failed: {e}"),
    }
}
