//! The mio event loop: accepts TCP connections and moves bytes between sockets and connections.
//!
//! Readiness is edge-triggered, so every accept, read and write goes on until `WouldBlock`
//! (STYLE.md 12); a connection is registered for writable only while it has output queued.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use framewire_protocol::wire::{Close, Frame, Reason, Text};
use log::{error, info, warn};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::config::ServerConfig;
use crate::connection::{Connection, End};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_CONNECTION: usize = 2;
/// The event loop's read buffer, shared by all its connections.
const SCRATCH_LEN: usize = 64 * 1024;

/// A bound server, ready to [`Server::run`].
#[derive(Debug)]
pub struct Server {
    poll: Poll,
    listener: TcpListener,
    local_addr: SocketAddr,
    config: ServerConfig,
    connections: HashMap<Token, Connection>,
    next_token: usize,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

/// Stops a running server from another thread.
#[derive(Debug, Clone)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl ServerHandle {
    /// The address the server accepts TCP connections on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Asks the server to send every connection a Close (`GOING_AWAY`) and return from `run`.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            error!("cannot wake the event loop: {e}");
        }
    }
}

impl Server {
    /// Binds the listener.
    ///
    /// # Errors
    /// The address cannot be bound, or the poller cannot be created.
    pub fn bind(config: ServerConfig) -> io::Result<Self> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(config.tcp_addr)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let local_addr = listener.local_addr()?;
        info!("listening for TCP on {local_addr}");
        Ok(Self {
            poll,
            listener,
            local_addr,
            config,
            connections: HashMap::new(),
            next_token: FIRST_CONNECTION,
            stop: Arc::new(AtomicBool::new(false)),
            waker,
        })
    }

    /// Binds, then runs the server on a thread of its own.
    ///
    /// # Errors
    /// As [`Server::bind`].
    pub fn spawn(config: ServerConfig) -> io::Result<(ServerHandle, JoinHandle<io::Result<()>>)> {
        let mut server = Self::bind(config)?;
        let handle = server.handle();
        let thread = std::thread::Builder::new()
            .name("framewire-server".into())
            .spawn(move || server.run())?;
        Ok((handle, thread))
    }

    /// The address the server accepts TCP connections on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that stops the server.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            local_addr: self.local_addr,
            stop: Arc::clone(&self.stop),
            waker: Arc::clone(&self.waker),
        }
    }

    /// Serves until [`ServerHandle::shutdown`].
    ///
    /// # Errors
    /// The poller failed.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut scratch = vec![0u8; SCRATCH_LEN];
        while !self.stop.load(Ordering::SeqCst) {
            match self.poll.poll(&mut events, None) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in &events {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    token => {
                        let Some(conn) = self.connections.get_mut(&token) else {
                            continue;
                        };
                        let mut end = None;
                        if event.is_readable() || event.is_read_closed() {
                            end = conn.on_readable(&mut scratch);
                        }
                        if end.is_none() && event.is_writable() {
                            end = conn.flush();
                        }
                        self.settle(token, end);
                    }
                }
            }
        }
        self.close_all();
        Ok(())
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, peer)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        warn!("{peer}: cannot set TCP_NODELAY: {e}");
                    }
                    let token = Token(self.next_token);
                    self.next_token += 1;
                    if let Err(e) =
                        self.poll
                            .registry()
                            .register(&mut stream, token, Interest::READABLE)
                    {
                        warn!("{peer}: cannot register: {e}");
                        continue;
                    }
                    info!("{peer}: connected");
                    let id = token.0 as u64;
                    self.connections
                        .insert(token, Connection::new(stream, peer, id, &self.config));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of descriptors or the like: wait for the next readiness event rather
                    // than spin on the same error.
                    error!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Removes a connection that ended, or updates its interest to match its output.
    fn settle(&mut self, token: Token, end: Option<End>) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        if let Some(end) = end {
            let peer = conn.peer();
            match end {
                End::PeerClosed => info!("{peer}: closed by the peer"),
                End::Closed(reason) => info!("{peer}: closed: {reason}"),
                End::Failed(kind) => info!("{peer}: socket error: {kind}"),
            }
            if let Some(mut conn) = self.connections.remove(&token) {
                let _ = self.poll.registry().deregister(conn.stream_mut());
            }
            return;
        }
        let interest = if conn.wants_write() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if let Err(e) = self
            .poll
            .registry()
            .reregister(conn.stream_mut(), token, interest)
        {
            warn!("{}: cannot reregister: {e}", conn.peer());
        }
    }

    /// Sends every connection a Close and writes what the sockets take without blocking.
    fn close_all(&mut self) {
        let close = Frame::new(Close {
            reason: Reason::GOING_AWAY,
            message: Text::from("server shutting down"),
        });
        let count = self.connections.len();
        for (_, mut conn) in self.connections.drain() {
            conn.send(&close);
            if conn.flush().is_none() && conn.wants_write() {
                warn!("{}: shutdown Close not fully written", conn.peer());
            }
        }
        info!("shut down; closed {count} connections");
    }
}
