//! A TCP link that can fail the way real ones do: a proxy between one client and the server that
//! forwards bytes, can swallow them in either direction (a path that has stopped delivering), and
//! can cut the connection (both ends reset) with whatever it swallowed lost. The next connection
//! through it forwards again. It stops when dropped.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Which way bytes go through a [`TcpCut`].
#[derive(Debug, Default)]
struct Flow {
    /// Client to server bytes are dropped.
    swallow_up: AtomicBool,
    /// Server to client bytes are dropped.
    swallow_down: AtomicBool,
    stop: AtomicBool,
}

/// A running proxy.
#[derive(Debug)]
pub struct TcpCut {
    /// Where the client connects (its "server").
    pub addr: SocketAddr,
    flow: Arc<Flow>,
    /// The streams of the connection now through it, to cut.
    current: Arc<Mutex<Vec<TcpStream>>>,
    thread: Option<JoinHandle<()>>,
}

impl TcpCut {
    /// Starts a proxy to `server`.
    ///
    /// # Panics
    /// If the listener cannot be bound.
    pub fn start(server: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local address");
        let flow = Arc::new(Flow::default());
        let current = Arc::new(Mutex::new(Vec::new()));
        let (flow2, current2) = (Arc::clone(&flow), Arc::clone(&current));
        let thread = std::thread::spawn(move || {
            for client in listener.incoming() {
                if flow2.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(upstream) = TcpStream::connect(server) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                let streams = [&client, &upstream].map(|s| s.try_clone().expect("clone"));
                *current2.lock().expect("lock") = streams.into_iter().collect();
                flow2.swallow_up.store(false, Ordering::SeqCst);
                flow2.swallow_down.store(false, Ordering::SeqCst);
                pump(&client, &upstream, &flow2, true);
                pump(&upstream, &client, &flow2, false);
            }
        });
        Self {
            addr,
            flow,
            current,
            thread: Some(thread),
        }
    }

    /// From now on, drops what the client sends (`up`) and what the server sends (`down`).
    pub fn swallow(&self, up: bool, down: bool) {
        self.flow.swallow_up.store(up, Ordering::SeqCst);
        self.flow.swallow_down.store(down, Ordering::SeqCst);
    }

    /// Resets the connection now through the proxy at both ends; what was swallowed is lost. The
    /// next connection forwards both ways.
    ///
    /// # Panics
    /// If a pump thread panicked holding the list of streams.
    pub fn cut(&self) {
        // Nothing more goes through until the reset: a pump that read bytes after what it
        // swallowed must not pass them on, or the client would see a stream with a hole in it,
        // which no TCP path makes.
        self.swallow(true, true);
        for s in self.current.lock().expect("lock").drain(..) {
            // A zero linger turns the close into a reset, as a failed path or a crashed host does.
            let _ = socket2::SockRef::from(&s).set_linger(Some(std::time::Duration::ZERO));
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// Copies `from` to `to` on a thread of its own until either end closes.
fn pump(from: &TcpStream, to: &TcpStream, flow: &Arc<Flow>, up: bool) {
    let (mut from, mut to) = (
        from.try_clone().expect("clone"),
        to.try_clone().expect("clone"),
    );
    let flow = Arc::clone(flow);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let swallowed = if up {
                &flow.swallow_up
            } else {
                &flow.swallow_down
            };
            if !swallowed.load(Ordering::SeqCst) && to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

impl Drop for TcpCut {
    fn drop(&mut self) {
        self.flow.stop.store(true, Ordering::SeqCst);
        self.cut();
        // Wake the accept loop so it sees the stop.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
