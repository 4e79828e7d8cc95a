//! A deterministic network simulator for sessions (STYLE.md 13): two [`Session`]s joined by two
//! one-way links with seeded loss, duplication, reordering, latency with jitter, an MTU and
//! blackhole periods, on a virtual clock that jumps to the next thing that happens.
//!
//! Used by the tests and benchmarks of this workspace; not part of the public API. The same seed
//! gives the same run, so a failing case can be replayed exactly.

use alloc::collections::BinaryHeap;
use alloc::vec;
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::time::Duration;

use bytes::Bytes;

use crate::session::{Event, Instant, Session, SessionConfig};
use crate::wire::{Data, Frame, FrameBody};

/// A small, fast, seedable generator (splitmix64). Not for cryptography.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        crate::splitmix::next(&mut self.0)
    }

    /// A uniform value in `[0, 1)`.
    #[allow(
        clippy::cast_precision_loss,
        reason = "53 random bits fill an f64 mantissa exactly"
    )]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// A uniform duration in `[0, max)`.
    pub fn duration(&mut self, max: Duration) -> Duration {
        let micros = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
        if micros == 0 {
            Duration::ZERO
        } else {
            Duration::from_micros(self.next_u64() % micros)
        }
    }
}

/// How one direction of the simulated network behaves.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// The fixed one-way delay.
    pub latency: Duration,
    /// Extra delay, uniform in `[0, jitter)`, per datagram. By default jitter is queueing delay: it
    /// never lets a datagram overtake an earlier one (the link stays FIFO); reordering is
    /// `reorder`'s.
    pub jitter: Duration,
    /// Give every datagram its own delay, independent of the others (they may overtake each
    /// other), instead of FIFO queueing delay.
    pub independent_jitter: bool,
    /// Probability a datagram is lost.
    pub loss: f64,
    /// Probability a datagram is delivered twice.
    pub duplicate: f64,
    /// Probability a datagram is held back by up to `reorder_delay` more.
    pub reorder: f64,
    /// The most a reordered datagram is held back.
    pub reorder_delay: Duration,
    /// Datagrams larger than this are dropped.
    pub mtu: usize,
    /// Periods during which everything sent is lost.
    pub blackholes: Vec<(Instant, Instant)>,
    /// A bottleneck: the link carries at most this many bytes a second (`None`: no limit).
    /// Datagrams wait in a FIFO queue to be sent at that rate, which adds to their delay.
    pub bandwidth: Option<u64>,
    /// Bytes the bottleneck's queue holds; a datagram that does not fit is dropped (tail drop).
    pub queue_bytes: usize,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(10),
            jitter: Duration::ZERO,
            independent_jitter: false,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(20),
            mtu: 1500,
            blackholes: Vec::new(),
            bandwidth: None,
            queue_bytes: 64 * 1024,
        }
    }
}

/// A datagram on a link: arrival time, a tiebreak in sending order, direction, bytes.
type InTransit = (Instant, u64, Direction, Vec<u8>);

/// Which way a datagram travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    /// From `a` to `b`.
    AtoB,
    /// From `b` to `a`.
    BtoA,
}

/// Counts of what the links did.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkStats {
    /// Datagrams handed to a link.
    pub sent: u64,
    /// Bytes handed to a link.
    pub bytes: u64,
    /// Datagrams lost (randomly, by MTU, or in a blackhole).
    pub lost: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
    /// Of `lost`, datagrams dropped because the bottleneck's queue was full.
    pub overflowed: u64,
}

/// Two sessions and the network between them.
#[derive(Debug)]
pub struct Pair {
    /// The first peer (address 10.0.0.1:1000 in the simulation).
    pub a: Session,
    /// The second peer (address 10.0.0.2:2000).
    pub b: Session,
    /// The link from `a` to `b`.
    pub a_to_b: LinkConfig,
    /// The link from `b` to `a`.
    pub b_to_a: LinkConfig,
    /// The virtual clock.
    pub now: Instant,
    rng: Rng,
    queue: BinaryHeap<Reverse<InTransit>>,
    order: u64,
    /// Consecutive steps that did not move the clock.
    stalled: u32,
    /// The latest arrival time scheduled on each link, to keep jitter FIFO.
    last_arrival: [Instant; 2],
    /// When each link's bottleneck has sent everything queued at it.
    bottleneck_free: [Instant; 2],
    buf: Vec<u8>,
    /// Events of `a`, in order.
    pub events_a: Vec<Event>,
    /// Events of `b`, in order.
    pub events_b: Vec<Event>,
    /// What the link from `a` to `b` did.
    pub stats_ab: LinkStats,
    /// What the link from `b` to `a` did.
    pub stats_ba: LinkStats,
}

/// Steps in a row without the clock moving before the simulation calls it a livelock.
pub const STALL_LIMIT: u32 = 10_000;

/// The simulated address of `a`.
pub const ADDR_A: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 1000);
/// The simulated address of `b`.
pub const ADDR_B: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 2000);

/// Seals `a` (the client's side) and `b` (the server's) of one session with keys of their own, in
/// `version` (4: compact datagrams sealed, docs/PROTOCOL.md section 2.5; 1: section 2.3), as a
/// handshake that agreed it would: for tests and benchmarks that build sessions without one.
pub fn seal_pair(a: &mut Session, b: &mut Session, version: u8) {
    use crate::seal::{Sealer, SessionKeys, TokenKeys};
    let token = TokenKeys {
        client_to_server: [0x3c; 32],
        server_to_client: [0xc3; 32],
    };
    a.use_version(version);
    b.use_version(version);
    a.seal_with(Sealer::new(&SessionKeys::derive(&token, 1, 2, b"c", false)));
    b.seal_with(Sealer::new(&SessionKeys::derive(&token, 1, 2, b"c", true)));
}

impl Pair {
    /// Two established sessions under connection id 1 (of compact datagrams when both
    /// configurations take them), the same link both ways, and a seed.
    pub fn new(
        config_a: SessionConfig,
        config_b: SessionConfig,
        link: &LinkConfig,
        seed: u64,
    ) -> Self {
        let now = Instant::ZERO;
        // What the handshake would agree: compact datagrams when both sides take them.
        let compact = config_a.compact_datagrams && config_b.compact_datagrams;
        let shared = config_a.shared_headers && config_b.shared_headers;
        let mut a = Session::established(config_a, 1, ADDR_B, now);
        let mut b = Session::established(config_b, 1, ADDR_A, now);
        if compact {
            a.use_compact_datagrams();
            b.use_compact_datagrams();
            if shared {
                a.share_frame_headers();
                b.share_frame_headers();
            }
        }
        Self {
            a,
            b,
            a_to_b: link.clone(),
            b_to_a: link.clone(),
            now,
            rng: Rng::new(seed),
            queue: BinaryHeap::new(),
            order: 0,
            stalled: 0,
            last_arrival: [Instant::ZERO; 2],
            bottleneck_free: [Instant::ZERO; 2],
            buf: vec![0u8; crate::wire::MAX_DATAGRAM_SIZE],
            events_a: Vec::new(),
            events_b: Vec::new(),
            stats_ab: LinkStats::default(),
            stats_ba: LinkStats::default(),
        }
    }

    /// Sends everything both sessions want to send now, onto the links.
    pub fn transmit(&mut self) {
        for dir in [Direction::AtoB, Direction::BtoA] {
            loop {
                let session = match dir {
                    Direction::AtoB => &mut self.a,
                    Direction::BtoA => &mut self.b,
                };
                let Some(t) = session.poll_transmit(self.now, &mut self.buf) else {
                    break;
                };
                let datagram = self.buf[..t.len].to_vec();
                self.carry(dir, &datagram);
            }
        }
    }

    fn carry(&mut self, dir: Direction, datagram: &[u8]) {
        let (link, stats) = match dir {
            Direction::AtoB => (&self.a_to_b, &mut self.stats_ab),
            Direction::BtoA => (&self.b_to_a, &mut self.stats_ba),
        };
        stats.sent += 1;
        stats.bytes += datagram.len() as u64;
        let in_blackhole = link
            .blackholes
            .iter()
            .any(|&(from, to)| self.now >= from && self.now < to);
        if in_blackhole || datagram.len() > link.mtu || self.rng.chance(link.loss) {
            stats.lost += 1;
            return;
        }
        let lane = usize::from(dir == Direction::BtoA);
        // The bottleneck: the datagram leaves once everything queued before it has.
        let mut departure = self.now;
        if let Some(rate) = link.bandwidth.filter(|&r| r > 0) {
            let free = self.bottleneck_free[lane].max(self.now);
            let waiting = free.saturating_duration_since(self.now);
            let queued = u128::from(rate) * waiting.as_micros() / 1_000_000;
            if queued + datagram.len() as u128 > link.queue_bytes as u128 {
                stats.lost += 1;
                stats.overflowed += 1;
                return;
            }
            let micros = datagram.len() as u64 * 1_000_000 / rate;
            departure = free + Duration::from_micros(micros);
            self.bottleneck_free[lane] = departure;
        }
        let copies = if self.rng.chance(link.duplicate) {
            stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut arrival = departure + link.latency + self.rng.duration(link.jitter);
            if self.rng.chance(link.reorder) {
                // Held back: later datagrams may overtake it.
                arrival += self.rng.duration(link.reorder_delay);
            } else if !link.independent_jitter {
                arrival = arrival.max(self.last_arrival[lane]);
                self.last_arrival[lane] = arrival;
            }
            let delay = arrival.saturating_duration_since(self.now);
            self.order += 1;
            self.queue.push(Reverse((
                self.now + delay,
                self.order,
                dir,
                datagram.to_vec(),
            )));
        }
    }

    /// Datagrams on the links, not yet delivered.
    pub fn in_transit(&self) -> usize {
        self.queue.len()
    }

    /// The next instant anything happens: a delivery or a session timer.
    pub fn next_wakeup(&self) -> Option<Instant> {
        [
            self.queue.peek().map(|Reverse((t, ..))| *t),
            self.a.poll_timeout(),
            self.b.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Transmits, jumps the clock to the next wake-up, and runs everything due then. Returns
    /// `false` when nothing is left to happen.
    ///
    /// # Panics
    /// When [`STALL_LIMIT`] steps in a row leave the clock where it was: a session whose timer
    /// stays due after it was handled (a livelock).
    pub fn step(&mut self) -> bool {
        self.transmit();
        self.collect_events();
        let Some(t) = self.next_wakeup() else {
            return false;
        };
        // A timer that stays due after it was handled would spin here forever: fail loudly.
        if t <= self.now {
            self.stalled += 1;
            assert!(
                self.stalled < STALL_LIMIT,
                "no progress: a timer stays due at {:?} after being handled (a: {:?} {:?}, b: \
                 {:?} {:?}, next delivery {:?})",
                self.now,
                self.a.poll_timeout(),
                self.a.stats(),
                self.b.poll_timeout(),
                self.b.stats(),
                self.queue.peek().map(|Reverse((t, ..))| *t)
            );
        } else {
            self.stalled = 0;
        }
        self.now = self.now.max(t);
        while let Some(Reverse((at, ..))) = self.queue.peek() {
            if *at > self.now {
                break;
            }
            let Some(Reverse((_, _, dir, datagram))) = self.queue.pop() else {
                break;
            };
            let data = Bytes::from(datagram);
            match dir {
                Direction::AtoB => self.b.handle_datagram(self.now, ADDR_A, data),
                Direction::BtoA => self.a.handle_datagram(self.now, ADDR_B, data),
            }
        }
        if self.a.poll_timeout().is_some_and(|t| t <= self.now) {
            self.a.handle_timeout(self.now);
        }
        if self.b.poll_timeout().is_some_and(|t| t <= self.now) {
            self.b.handle_timeout(self.now);
        }
        self.transmit();
        self.collect_events();
        true
    }

    fn collect_events(&mut self) {
        while let Some(e) = self.a.poll_event() {
            self.events_a.push(e);
        }
        while let Some(e) = self.b.poll_event() {
            self.events_b.push(e);
        }
    }

    /// Offers `per_second` messages of `size` bytes on channel 0 from `a` for `seconds` of
    /// virtual time, steadily (a full send queue refuses a message: it counts as offered and not
    /// delivered), runs one second more, and returns the payload bytes `b` received as Data.
    pub fn offer(&mut self, size: usize, per_second: u64, seconds: u64) -> u64 {
        let mut delivered = 0;
        self.offer_timed(size, per_second, seconds, |len, _| delivered += len as u64);
        delivered
    }

    /// [`Pair::offer`], handing each Data that `b` receives to `delivered` as its payload length
    /// and its delivery latency (from the moment it was offered; a message of at least 8 bytes
    /// carries that moment in its first 8).
    pub fn offer_timed(
        &mut self,
        size: usize,
        per_second: u64,
        seconds: u64,
        mut delivered: impl FnMut(usize, Duration),
    ) {
        const STAMP: usize = 8;
        let interval = Duration::from_micros(1_000_000 / per_second.max(1));
        let total = per_second * seconds;
        let start = self.now;
        let end = Instant::from_millis(seconds * 1000) + Duration::from_secs(1);
        let mut next_send = self.now;
        let mut sent = 0;
        let mut handled = self.events_b.len();
        while self.now < end {
            while sent < total && self.now >= next_send {
                let mut payload = vec![7u8; size];
                if let Some(stamp) = payload.get_mut(..STAMP) {
                    let offered = next_send.saturating_duration_since(start).as_micros();
                    stamp.copy_from_slice(&u64::try_from(offered).unwrap_or(0).to_be_bytes());
                }
                let _ = self.a.send(Frame::new(Data {
                    payload: Bytes::from(payload),
                }));
                sent += 1;
                next_send += interval;
            }
            self.transmit();
            let wake = self.next_wakeup();
            if sent < total && wake.is_none_or(|w| w > next_send) {
                self.now = next_send;
                continue;
            }
            let stepped = self.step();
            for event in &self.events_b[handled..] {
                let Event::Frame(Frame {
                    body: FrameBody::Data(d),
                    ..
                }) = event
                else {
                    continue;
                };
                let offered = d
                    .payload
                    .get(..STAMP)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u64::from_be_bytes);
                let at = self.now.saturating_duration_since(start);
                delivered(
                    d.payload.len(),
                    at.saturating_sub(Duration::from_micros(offered)),
                );
            }
            handled = self.events_b.len();
            if !stepped {
                break;
            }
        }
    }

    /// Steps until `done` holds or the clock passes `deadline`; returns whether `done` held.
    pub fn run_until(&mut self, deadline: Instant, mut done: impl FnMut(&Self) -> bool) -> bool {
        while !done(self) {
            if self.now > deadline || !self.step() {
                return done(self);
            }
        }
        true
    }
}
