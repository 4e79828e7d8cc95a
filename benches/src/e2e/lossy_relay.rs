//! A lossy link on loopback, for comparisons of what two UDP protocols cost on the wire: a relay
//! between one client and one server that drops datagrams with a seeded probability and delays
//! the rest as the session simulator's link does (a fixed latency plus a uniform jitter, in order
//! per direction), and counts the UDP payload bytes each side sent (lost ones included: they were
//! sent). Anything a sender puts on the wire passes here, so both protocols are measured by the
//! same counter, not by their own accounts.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use framewire_protocol::sim::Rng;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

/// How the link behaves, the same both ways.
#[derive(Debug, Clone, Copy)]
pub struct LinkShape {
    /// The probability that a datagram is dropped.
    pub loss: f64,
    /// The one-way delay every datagram takes.
    pub latency: Duration,
    /// Up to this much more, uniformly (datagrams stay in order).
    pub jitter: Duration,
    /// The loss pattern's seed.
    pub seed: u64,
}

/// What one direction carried.
#[derive(Debug, Default)]
pub struct DirectionCount {
    datagrams: AtomicU64,
    bytes: AtomicU64,
    lost: AtomicU64,
}

/// A snapshot of a [`DirectionCount`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Carried {
    /// Datagrams sent into the link.
    pub datagrams: u64,
    /// Their UDP payload bytes.
    pub bytes: u64,
    /// Of them, dropped.
    pub lost: u64,
}

impl DirectionCount {
    fn add(&self, len: usize, lost: bool) {
        self.datagrams.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(len as u64, Ordering::Relaxed);
        if lost {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn take(&self) -> Carried {
        Carried {
            datagrams: self.datagrams.swap(0, Ordering::Relaxed),
            bytes: self.bytes.swap(0, Ordering::Relaxed),
            lost: self.lost.swap(0, Ordering::Relaxed),
        }
    }
}

#[derive(Debug)]
struct Shared {
    stop: AtomicBool,
    /// Client to server.
    forward: DirectionCount,
    /// Server to client.
    back: DirectionCount,
}

/// The running relay; stops when dropped.
#[derive(Debug)]
pub struct LossyRelay {
    addr: SocketAddr,
    server_side: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

const FRONT: Token = Token(0);
const BACK: Token = Token(1);

impl LossyRelay {
    /// A relay on 127.0.0.1 in front of `server`.
    ///
    /// # Errors
    /// The sockets cannot be bound or registered.
    pub fn start(server: SocketAddr, shape: LinkShape) -> io::Result<Self> {
        let loopback: SocketAddr = "127.0.0.1:0".parse().map_err(io::Error::other)?;
        let mut front = UdpSocket::bind(loopback)?;
        let mut back = UdpSocket::bind(loopback)?;
        let addr = front.local_addr()?;
        let server_side = back.local_addr()?;
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut front, FRONT, Interest::READABLE)?;
        poll.registry()
            .register(&mut back, BACK, Interest::READABLE)?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            forward: DirectionCount::default(),
            back: DirectionCount::default(),
        });
        let mut relay = Relay {
            poll,
            front,
            back,
            server,
            client: None,
            shape,
            rng: Rng::new(shape.seed),
            queue: BinaryHeap::new(),
            order: 0,
            last_arrival: [Instant::now(); 2],
            shared: Arc::clone(&shared),
        };
        let thread = std::thread::Builder::new()
            .name("lossy-relay".into())
            .spawn(move || relay.run())?;
        Ok(Self {
            addr,
            server_side,
            shared,
            thread: Some(thread),
        })
    }

    /// Where a client sends to reach the server through the link.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address the server hears the client from.
    pub fn server_side_addr(&self) -> SocketAddr {
        self.server_side
    }

    /// What each direction carried since the last call (or the start), client to server first;
    /// the counts start again from zero.
    pub fn take_counts(&self) -> (Carried, Carried) {
        (self.shared.forward.take(), self.shared.back.take())
    }
}

impl Drop for LossyRelay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Toward {
    Server,
    Client,
}

/// A datagram on the link: when it arrives, its place in arrival order, where it goes, its bytes.
type InFlight = (Instant, u64, Toward, Vec<u8>);

struct Relay {
    poll: Poll,
    front: UdpSocket,
    back: UdpSocket,
    server: SocketAddr,
    /// The client's address: where the front socket last heard from.
    client: Option<SocketAddr>,
    shape: LinkShape,
    rng: Rng,
    queue: BinaryHeap<Reverse<InFlight>>,
    order: u64,
    last_arrival: [Instant; 2],
    shared: Arc<Shared>,
}

impl Relay {
    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(16);
        let mut buf = vec![0u8; 65_536];
        while !self.shared.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let wait = self
                .queue
                .peek()
                .map_or(Duration::from_millis(5), |Reverse((at, ..))| {
                    at.saturating_duration_since(now)
                })
                .min(Duration::from_millis(5));
            self.poll.poll(&mut events, Some(wait))?;
            self.receive(Toward::Server, &mut buf)?;
            self.receive(Toward::Client, &mut buf)?;
            self.deliver_due()?;
        }
        Ok(())
    }

    /// Takes everything waiting on the socket facing the sender of datagrams going `toward`.
    fn receive(&mut self, toward: Toward, buf: &mut [u8]) -> io::Result<()> {
        loop {
            let socket = match toward {
                Toward::Server => &self.front,
                Toward::Client => &self.back,
            };
            let (len, from) = match socket.recv_from(buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e),
            };
            let count = match toward {
                Toward::Server => {
                    self.client = Some(from);
                    &self.shared.forward
                }
                Toward::Client => &self.shared.back,
            };
            let lost = self.rng.chance(self.shape.loss);
            count.add(len, lost);
            if lost {
                continue;
            }
            let lane = usize::from(toward == Toward::Client);
            let arrival =
                (Instant::now() + self.shape.latency + self.rng.duration(self.shape.jitter))
                    .max(self.last_arrival[lane]);
            self.last_arrival[lane] = arrival;
            self.order += 1;
            self.queue
                .push(Reverse((arrival, self.order, toward, buf[..len].to_vec())));
        }
    }

    fn deliver_due(&mut self) -> io::Result<()> {
        let now = Instant::now();
        while self
            .queue
            .peek()
            .is_some_and(|Reverse((at, ..))| *at <= now)
        {
            let Some(Reverse((_, _, toward, datagram))) = self.queue.pop() else {
                break;
            };
            let sent = match toward {
                Toward::Server => self.back.send_to(&datagram, self.server),
                Toward::Client => match self.client {
                    Some(client) => self.front.send_to(&datagram, client),
                    None => continue,
                },
            };
            match sent {
                Ok(_) => {}
                // A full socket buffer or a peer gone: the link lost it.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::ConnectionRefused
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(loss: f64) -> LinkShape {
        LinkShape {
            loss,
            latency: Duration::from_millis(2),
            jitter: Duration::from_millis(1),
            seed: 1,
        }
    }

    /// A datagram goes through and its answer comes back; both are counted.
    #[test]
    fn relays_and_counts_both_ways() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let relay = LossyRelay::start(server.local_addr().unwrap(), shape(0.0)).unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client.send_to(b"hello", relay.addr()).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        server.send_to(b"answer!", from).unwrap();
        let (n, _) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"answer!");
        let (forward, back) = relay.take_counts();
        assert_eq!(
            forward,
            Carried {
                datagrams: 1,
                bytes: 5,
                lost: 0
            }
        );
        assert_eq!(
            back,
            Carried {
                datagrams: 1,
                bytes: 7,
                lost: 0
            }
        );
        assert_eq!(relay.take_counts().0, Carried::default());
    }

    /// At a loss of 1 nothing arrives, and every datagram is still counted as sent.
    #[test]
    fn drops_at_full_loss() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let relay = LossyRelay::start(server.local_addr().unwrap(), shape(1.0)).unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..10 {
            client.send_to(b"x", relay.addr()).unwrap();
        }
        let mut buf = [0u8; 8];
        assert!(server.recv_from(&mut buf).is_err(), "nothing gets through");
        let (forward, _) = relay.take_counts();
        assert_eq!(forward.datagrams, 10);
        assert_eq!(forward.lost, 10);
    }
}
