//! A lossy link in user space (there is no `tc netem` here): a UDP relay between one client and
//! the server that drops, duplicates and reorders datagrams in both directions, from a seed, so a
//! failing run can be replayed. It keeps the last datagrams it saw (to look at what is on the
//! wire) and sends datagrams a test gives it to the server, from the client's apparent address (to
//! replay or tamper with them). It stops when dropped.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

const FRONT: Token = Token(0);
const BACK: Token = Token(1);

/// How the link misbehaves, in percent per datagram.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Dropped.
    pub loss: u64,
    /// Sent twice.
    pub duplicate: u64,
    /// Held back and sent after the next one.
    pub reorder: u64,
}

/// A running relay.
#[derive(Debug)]
pub struct Relay {
    /// Where the client sends (its "server").
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Datagrams dropped so far.
    pub dropped: Arc<AtomicU64>,
    /// The last datagrams received, before any fault.
    log: Arc<Mutex<WireLog>>,
    inject: mpsc::Sender<Vec<u8>>,
    thread: Option<JoinHandle<()>>,
}

/// Datagrams [`Relay::seen`] keeps.
const SEEN: usize = 256;

/// The last datagrams the relay received: `true` for the client's, with the bytes.
type WireLog = VecDeque<(bool, Vec<u8>)>;

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Direction {
    /// A datagram held back to be sent after the next one (or when it has waited long enough).
    held: Option<(Vec<u8>, Instant)>,
}

struct Rng(u64);

impl Rng {
    fn percent(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % 100
    }
}

impl Relay {
    /// Starts a relay to `server`.
    ///
    /// # Panics
    /// If the sockets cannot be bound.
    pub fn start(server: SocketAddr, faults: Faults, seed: u64) -> Self {
        let mut front = UdpSocket::bind("127.0.0.1:0".parse().expect("an address")).expect("bind");
        let mut back = UdpSocket::bind("127.0.0.1:0".parse().expect("an address")).expect("bind");
        let addr = front.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicU64::new(0));
        let log = Arc::new(Mutex::new(WireLog::new()));
        let (inject, injected) = mpsc::channel::<Vec<u8>>();
        let (stop2, dropped2, log2) = (Arc::clone(&stop), Arc::clone(&dropped), Arc::clone(&log));
        let thread = std::thread::spawn(move || {
            let mut poll = Poll::new().expect("poll");
            poll.registry()
                .register(&mut front, FRONT, Interest::READABLE)
                .expect("register");
            poll.registry()
                .register(&mut back, BACK, Interest::READABLE)
                .expect("register");
            let mut events = Events::with_capacity(64);
            let mut rng = Rng(seed);
            let mut client: Option<SocketAddr> = None;
            let mut up = Direction { held: None };
            let mut down = Direction { held: None };
            let mut buf = vec![0u8; 65_536];
            let hold_for = Duration::from_millis(15);
            while !stop2.load(Ordering::SeqCst) {
                let _ = poll.poll(&mut events, Some(Duration::from_millis(5)));
                while let Ok(data) = injected.try_recv() {
                    send(&front, &back, true, client, server, &data);
                }
                // Datagrams held too long go now.
                for (dir, to_server) in [(&mut up, true), (&mut down, false)] {
                    if let Some((d, since)) = &dir.held
                        && since.elapsed() >= hold_for
                    {
                        send(&front, &back, to_server, client, server, d);
                        dir.held = None;
                    }
                }
                for (sock, to_server) in [(&front, true), (&back, false)] {
                    while let Ok((n, from)) = sock.recv_from(&mut buf) {
                        if to_server {
                            client = Some(from);
                        }
                        if let Ok(mut log) = log2.lock() {
                            if log.len() == SEEN {
                                log.pop_front();
                            }
                            log.push_back((to_server, buf[..n].to_vec()));
                        }
                        let dir = if to_server { &mut up } else { &mut down };
                        if rng.percent() < faults.loss {
                            dropped2.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        let copies = if rng.percent() < faults.duplicate {
                            2
                        } else {
                            1
                        };
                        let data = buf[..n].to_vec();
                        if dir.held.is_none() && rng.percent() < faults.reorder {
                            dir.held = Some((data, Instant::now()));
                            continue;
                        }
                        for _ in 0..copies {
                            send(&front, &back, to_server, client, server, &data);
                        }
                        if let Some((held, _)) = dir.held.take() {
                            send(&front, &back, to_server, client, server, &held);
                        }
                    }
                }
            }
        });
        Self {
            addr,
            stop,
            dropped,
            log,
            inject,
            thread: Some(thread),
        }
    }

    /// Sends `datagram` to the server as if the client had (from the relay's address), without
    /// faults.
    pub fn send_to_server(&self, datagram: &[u8]) {
        let _ = self.inject.send(datagram.to_vec());
    }

    /// The datagrams seen so far from the client (`to_server`) or from the server.
    ///
    /// # Panics
    /// If the relay's thread panicked holding the list.
    pub fn seen(&self, to_server: bool) -> Vec<Vec<u8>> {
        self.log
            .lock()
            .expect("the relay's list")
            .iter()
            .filter(|(up, _)| *up == to_server)
            .map(|(_, d)| d.clone())
            .collect()
    }
}

fn send(
    front: &UdpSocket,
    back: &UdpSocket,
    to_server: bool,
    client: Option<SocketAddr>,
    server: SocketAddr,
    data: &[u8],
) {
    let _ = if to_server {
        back.send_to(data, server)
    } else if let Some(c) = client {
        front.send_to(data, c)
    } else {
        Ok(0)
    };
}
