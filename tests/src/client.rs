//! A frame-level test client over TCP or UDP with one interface: send a frame, wait for the next
//! one with a deadline. Over UDP it drives a protocol `Session` on a real socket; every wait is a
//! receive with a short timeout inside a bounded loop, never a sleep.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use bytes::Bytes;
use framewire_client::{FrameStream, RecvError};
use framewire_protocol::session::{Event, Instant, Session, SessionConfig};
use framewire_protocol::wire::{
    Close, Frame, FrameBody, HelloOptions, Pong, Publish, Reason, Response, Status, Subscribe, Text,
};

use crate::websocket::WsStream;
use crate::{DEADLINE, TestServer};

/// Which transport a [`TestClient`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// TCP.
    Tcp,
    /// UDP (version 2 agreed: compact datagrams).
    Udp,
    /// UDP with version 1's datagrams (the client does not offer version 2), for tests that
    /// write datagrams by hand in that form.
    UdpVersion1,
    /// WebSocket, at the server's HTTP listener.
    WebSocket,
}

/// Both transports, for tests that run once over each.
pub const BOTH: [Via; 2] = [Via::Tcp, Via::Udp];

/// What a Welcome said about the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcomed {
    /// The token that resumes the session.
    pub token: Bytes,
    /// This connection resumed an earlier session.
    pub resumed: bool,
    /// Reliable messages dropped while away.
    pub missed: u32,
}

/// A client session on a real UDP socket.
#[derive(Debug)]
pub struct UdpClient {
    socket: UdpSocket,
    /// The protocol session.
    pub session: Session,
    epoch: std::time::Instant,
    /// Events not yet taken.
    pub events: VecDeque<Event>,
}

impl UdpClient {
    /// Starts the handshake with `server` from `from` (any port).
    ///
    /// # Panics
    /// If the socket cannot be bound.
    pub fn connect_from(
        from: IpAddr,
        server: SocketAddr,
        seed: u64,
        hello_options: HelloOptions,
    ) -> Self {
        let config = SessionConfig {
            seed,
            hello_options,
            ..SessionConfig::default()
        };
        Self::connect_configured(from, server, config)
    }

    /// Starts the handshake with `server` from `from` under `config` (its `seed` is the nonce).
    ///
    /// # Panics
    /// If the socket cannot be bound.
    pub fn connect_configured(from: IpAddr, server: SocketAddr, config: SessionConfig) -> Self {
        let seed = config.seed;
        let socket = UdpSocket::bind(SocketAddr::new(from, 0)).expect("bind a UDP socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(5)))
            .expect("set a read timeout");
        let session = Session::connect(config, server, seed, Instant::ZERO);
        Self {
            socket,
            session,
            epoch: std::time::Instant::now(),
            events: VecDeque::new(),
        }
    }

    fn now(&self) -> Instant {
        Instant::from_micros(u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    /// Moves the client to a new socket on a new port (a NAT rebinding, a phone changing
    /// networks): the session goes on, and the server must follow it.
    ///
    /// # Panics
    /// If the socket cannot be bound.
    pub fn rebind(&mut self) {
        let local = self.socket.local_addr().expect("local address");
        let socket = UdpSocket::bind(SocketAddr::new(local.ip(), 0)).expect("bind a UDP socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(5)))
            .expect("set a read timeout");
        self.socket = socket;
    }

    /// The socket (to send raw datagrams from the session's address).
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// The socket's local address.
    ///
    /// # Panics
    /// If the socket cannot say.
    pub fn local_addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("local address")
    }

    /// Runs the session for one short step: timers, sends, one receive.
    ///
    /// # Panics
    /// If the socket fails.
    pub fn step(&mut self) {
        let mut out = vec![0u8; 2048];
        let mut inbox = vec![0u8; 65_536];
        let now = self.now();
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            self.session.handle_timeout(now);
        }
        while let Some(t) = self.session.poll_transmit(now, &mut out) {
            self.socket
                .send_to(&out[..t.len], t.destination)
                .expect("udp send");
        }
        if let Ok((n, from)) = self.socket.recv_from(&mut inbox) {
            self.session
                .handle_datagram(self.now(), from, Bytes::copy_from_slice(&inbox[..n]));
        }
        while let Some(e) = self.session.poll_event() {
            self.events.push_back(e);
        }
    }

    /// Steps until `done` holds for the events so far, or `within` passes; returns whether it
    /// held.
    pub fn run_until(
        &mut self,
        within: Duration,
        mut done: impl FnMut(&VecDeque<Event>) -> bool,
    ) -> bool {
        let start = std::time::Instant::now();
        while !done(&self.events) {
            if start.elapsed() > within {
                return false;
            }
            self.step();
        }
        true
    }
}

/// Framewire frames over a stream: TCP's length-prefixed frames, or WebSocket messages.
#[derive(Debug)]
pub enum StreamClient {
    /// Over TCP.
    Tcp(FrameStream),
    /// Over WebSocket.
    Ws(Box<WsStream>),
}

impl StreamClient {
    fn send(&mut self, frame: &Frame) -> std::io::Result<()> {
        match self {
            Self::Tcp(s) => s.send(frame),
            Self::Ws(s) => s.send(frame),
        }
    }

    fn recv(&mut self) -> Result<Frame, RecvError> {
        match self {
            Self::Tcp(s) => s.recv(),
            Self::Ws(s) => s.recv(),
        }
    }

    fn set_read_timeout(&self, within: Duration) -> std::io::Result<()> {
        match self {
            Self::Tcp(s) => s.set_read_timeout(within),
            Self::Ws(s) => s.set_read_timeout(within),
        }
    }

    fn handshake(&mut self, options: HelloOptions) -> Result<Frame, RecvError> {
        match self {
            Self::Tcp(s) => s.handshake(options),
            Self::Ws(s) => s.handshake(options),
        }
    }
}

/// A frame-level client over any transport.
#[derive(Debug)]
pub enum TestClient {
    /// Over TCP or WebSocket.
    Tcp(StreamClient),
    /// Over UDP.
    Udp(Box<UdpClient>),
}

impl TestClient {
    /// Connects and completes the handshake.
    ///
    /// # Panics
    /// If the connection or the handshake fails.
    pub fn connect(server: &TestServer, via: Via) -> Self {
        Self::connect_from(server, via, IpAddr::from([127, 0, 0, 1]), 1)
    }

    /// Connects from a given local address and completes the handshake; `seed` varies the UDP
    /// session's nonce.
    ///
    /// # Panics
    /// If the connection or the handshake fails.
    pub fn connect_from(server: &TestServer, via: Via, from: IpAddr, seed: u64) -> Self {
        Self::connect_with(server, via, from, seed, HelloOptions::new()).0
    }

    /// Connects with these Hello options (a resume token, a last will) and returns what the
    /// Welcome said about the session.
    ///
    /// # Panics
    /// If the connection or the handshake fails.
    pub fn connect_with(
        server: &TestServer,
        via: Via,
        from: IpAddr,
        seed: u64,
        options: HelloOptions,
    ) -> (Self, Welcomed) {
        match via {
            Via::Tcp | Via::WebSocket => {
                let s = if via == Via::Tcp {
                    StreamClient::Tcp(
                        FrameStream::connect_from(from, server.addr(), DEADLINE)
                            .expect("connect over TCP"),
                    )
                } else {
                    StreamClient::Ws(Box::new(
                        WsStream::connect_from(from, server.http_addr(), DEADLINE)
                            .expect("open a WebSocket"),
                    ))
                };
                Self::handshake_over(s, options)
            }
            Via::Udp | Via::UdpVersion1 => {
                let config = SessionConfig {
                    seed,
                    hello_options: options,
                    compact_datagrams: via == Via::Udp,
                    ..SessionConfig::default()
                };
                let mut c = UdpClient::connect_configured(from, server.udp_addr(), config);
                assert!(
                    c.run_until(DEADLINE, |e| e
                        .iter()
                        .any(|e| matches!(e, Event::Connected { .. }))),
                    "no UDP handshake"
                );
                let at = c
                    .events
                    .iter()
                    .position(|e| matches!(e, Event::Connected { .. }))
                    .expect("connected");
                let Some(Event::Connected {
                    session_token,
                    resumed,
                    missed,
                    ..
                }) = c.events.remove(at)
                else {
                    unreachable!("found above")
                };
                let welcomed = Welcomed {
                    token: session_token,
                    resumed,
                    missed,
                };
                (Self::Udp(Box::new(c)), welcomed)
            }
        }
    }

    /// Completes the handshake over a stream connected already (a WebSocket over TLS, say).
    ///
    /// # Panics
    /// If the handshake fails.
    pub fn handshake_over(mut s: StreamClient, options: HelloOptions) -> (Self, Welcomed) {
        let welcome = s.handshake(options).expect("a Welcome");
        let FrameBody::Welcome(w) = welcome.body else {
            panic!("expected a Welcome: {welcome:?}");
        };
        let welcomed = Welcomed {
            token: w.session_token,
            resumed: w.resumed,
            missed: w.missed,
        };
        (Self::Tcp(s), welcomed)
    }

    /// Sends a frame.
    ///
    /// # Panics
    /// If it cannot be sent.
    pub fn send(&mut self, frame: Frame) {
        match self {
            Self::Tcp(s) => s.send(&frame).expect("send over TCP"),
            Self::Udp(c) => {
                c.session.send(frame).expect("queue over UDP");
                c.step();
            }
        }
    }

    /// The next frame, or `None` if none comes within `within`.
    ///
    /// # Panics
    /// If the connection ends or sends bad bytes.
    pub fn recv_within(&mut self, within: Duration) -> Option<Frame> {
        match self {
            Self::Tcp(s) => {
                s.set_read_timeout(within).expect("set a read timeout");
                let got = loop {
                    match s.recv() {
                        // Heartbeats are answered here, as a session would (section 4.6).
                        Ok(Frame {
                            body: FrameBody::Ping(p),
                            ..
                        }) => s
                            .send(&Frame::new(Pong {
                                timestamp_us: p.timestamp_us,
                            }))
                            .expect("send a Pong"),
                        Ok(f) => break Some(f),
                        Err(RecvError::TimedOut) => break None,
                        Err(e) => panic!("connection failed: {e}"),
                    }
                };
                s.set_read_timeout(DEADLINE).expect("set a read timeout");
                got
            }
            Self::Udp(c) => {
                c.run_until(within, |e| {
                    e.iter().any(|e| !matches!(e, Event::Connected { .. }))
                });
                match c.events.pop_front()? {
                    Event::Frame(f) => Some(f),
                    // The session's end, as the Close frame that a TCP client would read.
                    Event::Closed {
                        reason, message, ..
                    } => Some(Frame::new(Close { reason, message })),
                    other => panic!("session event: {other:?}"),
                }
            }
        }
    }

    /// The next frame.
    ///
    /// # Panics
    /// If none comes within [`DEADLINE`].
    pub fn recv(&mut self) -> Frame {
        self.recv_within(DEADLINE)
            .expect("a frame within the deadline")
    }

    /// Frames until the Response to `id`; returns the frames before it and the Response.
    ///
    /// # Panics
    /// If no Response comes within [`DEADLINE`].
    pub fn until_response(&mut self, id: u32) -> (Vec<Frame>, Response) {
        let mut before = Vec::new();
        loop {
            let f = self.recv();
            match f.body {
                FrameBody::Response(r) if r.id == id => return (before, r),
                _ => before.push(f),
            }
        }
    }

    /// Sends `frame` and waits for the Response to `id`, which must be OK.
    ///
    /// # Panics
    /// If the Response is not OK or does not come.
    pub fn call_ok(&mut self, id: u32, frame: Frame) -> Vec<Frame> {
        self.send(frame);
        let (before, r) = self.until_response(id);
        assert_eq!(r.status, Status::OK, "{r:?}");
        before
    }

    /// Subscribes to `filter` with operation `id` and waits for its OK; the Messages that came
    /// before it.
    ///
    /// # Panics
    /// As [`TestClient::call_ok`].
    pub fn subscribe_ok(&mut self, id: u32, filter: &str) -> Vec<Frame> {
        self.call_ok(
            id,
            Frame::new(Subscribe {
                id,
                filter: Text::from(filter),
            }),
        )
    }

    /// Publishes `payload` to `topic` with operation `id` and waits for its OK; the Messages that
    /// came before it.
    ///
    /// # Panics
    /// As [`TestClient::call_ok`].
    pub fn publish_ok(&mut self, id: u32, topic: &str, payload: &[u8]) -> Vec<Frame> {
        self.call_ok(
            id,
            Frame::new(Publish {
                retain: false,
                id,
                topic: Text::from(topic),
                payload: Bytes::copy_from_slice(payload),
            }),
        )
    }

    /// Ends the session with a Close (NORMAL) and waits for the server's answer.
    ///
    /// # Panics
    /// If the server does not answer the Close within [`DEADLINE`].
    pub fn close(self) {
        match self {
            Self::Tcp(mut s) => {
                s.send(&Frame::new(Close {
                    reason: Reason::NORMAL,
                    message: Text::from("done"),
                }))
                .expect("send a Close");
                loop {
                    match s.recv() {
                        Ok(Frame {
                            body: FrameBody::CloseAck(_),
                            ..
                        })
                        | Err(RecvError::Closed) => return,
                        Ok(_) => {}
                        Err(e) => panic!("no answer to the Close: {e}"),
                    }
                }
            }
            Self::Udp(mut c) => {
                let now = c.now();
                c.session.close(now, Reason::NORMAL, "done");
                assert!(
                    c.run_until(DEADLINE, |e| e
                        .iter()
                        .any(|e| matches!(e, Event::Closed { .. }))),
                    "no answer to the Close"
                );
            }
        }
    }

    /// Closes the connection without a Close frame (the process vanishing).
    pub fn vanish(self) {
        drop(self);
    }
}
