//! A nats-server (Debian's `nats-server`) for one test: on a free loopback port, with `JetStream`
//! (its store in a directory of the port's, kept across a restart on the same port), ready when
//! its log says so, killed when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use crate::DEADLINE;

/// A running nats-server.
#[derive(Debug)]
pub struct NatsServer {
    child: Child,
    /// Its client URL, `nats://127.0.0.1:PORT`.
    pub url: String,
}

impl NatsServer {
    /// Starts one and waits (up to [`DEADLINE`]) for "Server is ready" in its log.
    ///
    /// # Panics
    /// If nats-server is not installed, or does not become ready.
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // A fresh store: nothing of an earlier run on this port.
        let _ = std::fs::remove_dir_all(store_of(port));
        Self::start_on(port)
    }

    /// Starts one on `port` (to start it again where it was).
    ///
    /// # Panics
    /// As [`NatsServer::start`].
    pub fn start_on(port: u16) -> Self {
        let store = store_of(port);
        let mut child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(&store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nats-server runs (Debian's nats-server package)");
        let log = child.stderr.take().expect("its log");
        let (ready, heard) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(log).lines().map_while(Result::ok) {
                if line.contains("Server is ready") {
                    let _ = ready.send(());
                }
            }
        });
        heard
            .recv_timeout(DEADLINE)
            .expect("nats-server ready within the deadline");
        Self {
            child,
            url: format!("nats://127.0.0.1:{port}"),
        }
    }
}

impl NatsServer {
    /// The port it listens on.
    ///
    /// # Panics
    /// Never: the URL is made with one.
    pub fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port")
    }
}

/// Where the nats-server on `port` keeps its `JetStream` store.
fn store_of(port: u16) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("framewire-test-nats-{port}"))
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
