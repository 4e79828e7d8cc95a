//! Helpers for the integration tests: a server started in-process on port 0, and frame-level
//! clients that wait for each frame with a deadline (never a sleep).

use std::io;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

mod client;
mod duplex;
pub mod http;
mod nats;
#[cfg(target_os = "linux")]
pub mod netns;
mod pki;
pub mod queue;
mod relay;
mod tcp_cut;
pub mod websocket;

pub use client::{BOTH, StreamClient, TestClient, UdpClient, Via, Welcomed};
pub use duplex::{Duplex, https_client_config};
pub use framewire_client::{FrameStream, RecvError};
use framewire_server::{Server, ServerConfig, ServerHandle};
pub use nats::NatsServer;
pub use pki::{Pem, TestPki};
pub use relay::{Faults, Relay};
pub use tcp_cut::TcpCut;

/// How long a test waits for any one frame before it fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Moves a server's HTTP listener from its default port to a free one (tests run side by side);
/// one turned off, or put elsewhere, stays as it is.
fn any_http_port(config: &mut ServerConfig) {
    if config.http_addr == ServerConfig::default().http_addr {
        config.http_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    }
}

/// A server running on its own thread, shut down when dropped.
#[derive(Debug)]
pub struct TestServer {
    handle: ServerHandle,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl TestServer {
    /// Starts a server on 127.0.0.1, port 0, with `config` otherwise.
    ///
    /// # Panics
    /// If the server cannot bind.
    pub fn start(config: ServerConfig) -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::start_on(config, any, any)
    }

    /// Starts a server on these addresses (to start one again where an earlier one was).
    ///
    /// # Panics
    /// If the server cannot bind.
    pub fn start_on(mut config: ServerConfig, tcp: SocketAddr, udp: SocketAddr) -> Self {
        config.tcp_addr = Some(tcp);
        config.udp_addr = Some(udp);
        any_http_port(&mut config);
        let (handle, thread) = Server::spawn(&config).expect("server binds");
        Self {
            handle,
            thread: Some(thread),
        }
    }

    /// Starts a server serving TCP and UDP on the same free port of 127.0.0.1, as one captured
    /// port names both (a capture's replay targets one address).
    ///
    /// # Panics
    /// If no free port is found in a few tries.
    pub fn start_one_port(config: &ServerConfig) -> Self {
        for _ in 0..20 {
            let Ok(probe) = std::net::TcpListener::bind(("127.0.0.1", 0)) else {
                continue;
            };
            let Ok(addr) = probe.local_addr() else {
                continue;
            };
            drop(probe);
            let mut config = config.clone();
            config.tcp_addr = Some(addr);
            config.udp_addr = Some(addr);
            any_http_port(&mut config);
            // Another process may take the port between the probe and the bind: try another.
            if let Ok((handle, thread)) = Server::spawn(&config) {
                return Self {
                    handle,
                    thread: Some(thread),
                };
            }
        }
        panic!("no port of 127.0.0.1 free for both TCP and UDP");
    }

    /// Starts a server that serves UDP only, on any free port of 127.0.0.1.
    ///
    /// # Panics
    /// If the server cannot bind.
    pub fn start_udp_only(mut config: ServerConfig) -> Self {
        config.tcp_addr = None;
        config.udp_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        any_http_port(&mut config);
        let (handle, thread) = Server::spawn(&config).expect("server binds");
        Self {
            handle,
            thread: Some(thread),
        }
    }

    /// Whether the server accepts TCP connections.
    pub fn serves_tcp(&self) -> bool {
        self.handle.local_addr().is_some()
    }

    /// The TCP address.
    ///
    /// # Panics
    /// If the server was started without TCP.
    pub fn addr(&self) -> SocketAddr {
        self.handle
            .local_addr()
            .expect("this test server serves TCP")
    }

    /// The TLS address.
    ///
    /// # Panics
    /// If the server was started without TLS.
    pub fn tls_addr(&self) -> SocketAddr {
        self.handle.tls_addr().expect("this test server serves TLS")
    }

    /// The HTTP address (WebSocket, metrics).
    ///
    /// # Panics
    /// If the server was started without HTTP.
    pub fn http_addr(&self) -> SocketAddr {
        self.handle
            .http_addr()
            .expect("this test server serves HTTP")
    }

    /// Where it listens for HTTPS.
    ///
    /// # Panics
    /// If it does not.
    pub fn https_addr(&self) -> SocketAddr {
        self.handle
            .https_addr()
            .expect("this test server serves HTTPS")
    }

    /// What the server has counted.
    pub fn counters(&self) -> framewire_server::CounterSnapshot {
        self.handle.counters()
    }

    /// Waits until the server's counters satisfy `until`, and returns them.
    ///
    /// # Panics
    /// If they do not within [`DEADLINE`].
    pub fn counted(
        &self,
        until: impl Fn(&framewire_server::CounterSnapshot) -> bool,
    ) -> framewire_server::CounterSnapshot {
        let start = std::time::Instant::now();
        loop {
            let c = self.counters();
            if until(&c) {
                return c;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "counters never got there: {c:?}"
            );
            std::thread::yield_now();
        }
    }

    /// The UDP address.
    ///
    /// # Panics
    /// Never: test servers always serve UDP.
    pub fn udp_addr(&self) -> SocketAddr {
        self.handle.udp_addr().expect("test servers serve UDP")
    }

    /// Shuts the server down and waits for its thread.
    ///
    /// # Panics
    /// If the server's thread panicked or its loop failed.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread").expect("server loop");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.thread.is_some() && !std::thread::panicking() {
            self.stop_inner();
        }
    }
}

/// Connects a frame-level client to `server`, failing the test if it cannot.
///
/// # Panics
/// If the connection fails.
pub fn connect(server: &TestServer) -> FrameStream {
    FrameStream::connect(server.addr(), DEADLINE).expect("connect to the test server")
}

/// Drives a poll-driven client as a game loop would (an update, the events, a 1 ms frame) until
/// `until` holds for the events so far, which it collects in `events`.
///
/// # Panics
/// If `until` does not hold within [`DEADLINE`].
pub fn drive_until(
    conn: &mut framewire_client::Connection,
    events: &mut Vec<framewire_client::ClientEvent>,
    until: &dyn Fn(&[framewire_client::ClientEvent]) -> bool,
) {
    let start = std::time::Instant::now();
    while !until(events) {
        assert!(start.elapsed() < DEADLINE, "gave up: {events:?}");
        conn.update(std::time::Instant::now());
        while let Some(e) = conn.poll_event() {
            events.push(e);
        }
        // The loop's frame time: a game would render here.
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The reference client's options for `server` over `via` (its TCP or its UDP address).
///
/// # Panics
/// For WebSocket, which the reference client does not speak.
pub fn client_options(server: &TestServer, via: Via) -> framewire_client::ClientOptions {
    match via {
        Via::WebSocket => panic!("the reference client does not speak WebSocket"),
        Via::Tcp => {
            framewire_client::ClientOptions::new(server.addr(), framewire_client::Transport::Tcp)
        }
        Via::Udp => framewire_client::ClientOptions::new(
            server.udp_addr(),
            framewire_client::Transport::Udp,
        ),
        Via::UdpVersion1 => {
            let mut o = framewire_client::ClientOptions::new(
                server.udp_addr(),
                framewire_client::Transport::Udp,
            );
            o.session.compact_datagrams = false;
            o
        }
    }
}

/// A message's payload as text.
pub fn payload_text(m: &framewire_client::Message) -> String {
    String::from_utf8_lossy(&m.payload).into_owned()
}

/// A number in one object of a `sys.stats` answer: `sys_stat(stats, "tcp", "frames_in")`.
///
/// # Panics
/// If the answer has no such object, field or number.
pub fn sys_stat(stats: &[u8], object: &str, name: &str) -> u64 {
    let stats = String::from_utf8_lossy(stats);
    let inner = stats
        .split(&format!("\"{object}\":"))
        .nth(1)
        .unwrap_or_else(|| panic!("no {object} in {stats}"));
    let field = format!("\"{name}\":");
    let at = inner.find(&field).expect("the field") + field.len();
    inner[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a number")
}

/// The topic and payload (as text) of a Message frame, if `frame` is one.
pub fn topic_and_payload(frame: &framewire_protocol::wire::Frame) -> Option<(String, String)> {
    match &frame.body {
        framewire_protocol::wire::FrameBody::Message(m) => Some((
            m.topic.as_str().to_string(),
            String::from_utf8_lossy(&m.payload).into_owned(),
        )),
        _ => None,
    }
}

/// A Request for `target` with id `id`, no payload, and the server's default deadline.
pub fn request(id: u32, target: &str) -> framewire_protocol::wire::Frame {
    framewire_protocol::wire::Frame::new(framewire_protocol::wire::Request {
        id,
        timeout_ms: 0,
        target: framewire_protocol::wire::Text::from(target),
        payload: bytes::Bytes::new(),
    })
}
