//! The fan-out workload: one publisher, N subscribers to one topic, small messages, a bounded number
//! of messages in flight. Measures deliveries per second, publish-to-delivery latency (each payload
//! starts with its send time), and the server's CPU time per delivery.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use framewire_client::tls_io::{self, TlsRead};
use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};

use super::pubsub_wire::{DeliveryParser, Wire};
use super::systems::Running;
use super::table::Section;
use super::ws_client::{self, Framing};

/// One fan-out run's shape.
#[derive(Debug, Clone)]
pub struct FanoutConfig {
    /// Subscribers.
    pub subscribers: usize,
    /// Payload bytes (at least 8: the send time).
    pub payload: usize,
    /// Messages published and not yet delivered to every subscriber, at most.
    pub window: u64,
    /// Time before measuring starts.
    pub warmup: Duration,
    /// Time measured.
    pub measure: Duration,
    /// How every client reaches the server.
    pub link: Link,
}

/// How a fan-out's clients reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Plain TCP.
    Tcp,
    /// WebSocket (the server's address is its WebSocket listener).
    WebSocket,
    /// TLS (framewire's TLS listener; the generator trusts the benchmark's CA).
    Tls,
}

/// A client's connection: the socket, and its TLS session over TLS.
struct Conn {
    stream: TcpStream,
    tls: Option<Box<rustls::ClientConnection>>,
}

/// The name of a system reached over `link` in the tables.
fn leg_name(wire: Wire, link: Link) -> String {
    match link {
        Link::Tls => format!("{} over TLS", wire.name()),
        _ => wire.name().to_string(),
    }
}

/// What the generator's TLS clients trust and offer (ALPN `framewire/1`).
fn tls_config() -> io::Result<Arc<rustls::ClientConfig>> {
    let ca = &super::secure::materials()?.ca;
    let options = framewire_client::TlsOptions::builder()
        .ca_file(ca)
        .and_then(framewire_client::TlsOptionsBuilder::build)
        .map_err(|e| io::Error::other(e.to_string()))?;
    Ok(options.config)
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct FanoutResult {
    /// Deliveries per second while measuring.
    pub deliveries_per_s: f64,
    /// Publish-to-delivery latency, median, microseconds.
    pub p50_us: f64,
    /// 99th percentile, microseconds.
    pub p99_us: f64,
    /// Server CPU time per million deliveries, milliseconds.
    pub cpu_ms_per_m: f64,
}

/// Connects `n` subscribers to `servers` in turn (subscriber `i` to `servers[i % len]`), spread
/// over 127.0.0.2-9 so no source address runs out of ports or hits a per-address limit.
fn connect_subscribers(
    wire: Wire,
    servers: &[SocketAddr],
    n: usize,
    link: Link,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> io::Result<Vec<Conn>> {
    (0..n)
        .map(|i| {
            let from = IpAddr::from([127, 0, 0, 2 + (i % 8) as u8]);
            let server = servers
                .get(i % servers.len().max(1))
                .copied()
                .ok_or_else(|| io::Error::other("a fan-out with no server"))?;
            let stream = super::connect_from(from, server)?;
            handshake(wire, stream, i, true, link, tls)
        })
        .collect()
}

/// A client's handshake over `link` (over TLS, with the generator's `tls` settings).
fn handshake(
    wire: Wire,
    mut stream: TcpStream,
    client: usize,
    subscribe: bool,
    link: Link,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> io::Result<Conn> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    match link {
        Link::Tcp => wire.handshake(&mut stream, client, subscribe)?,
        Link::WebSocket => {
            let (framing, path) = framing_of(wire)?;
            let leftover = ws_client::upgrade(&mut stream, path, None)?;
            wire.handshake_over(
                &mut ws_client::WsStream::new(&mut stream, framing, leftover),
                client,
                subscribe,
            )?;
        }
        Link::Tls => {
            let name = rustls::pki_types::ServerName::IpAddress(stream.peer_addr()?.ip().into());
            let config = tls.ok_or_else(|| io::Error::other("TLS without TLS settings"))?;
            let mut tls = rustls::ClientConnection::new(Arc::clone(config), name)
                .map_err(io::Error::other)?;
            wire.handshake_over(
                &mut rustls::Stream::new(&mut tls, &mut stream),
                client,
                subscribe,
            )?;
            return Ok(Conn {
                stream,
                tls: Some(Box::new(tls)),
            });
        }
    }
    Ok(Conn { stream, tls: None })
}

/// How `wire` carries its protocol over WebSocket, and where.
///
/// # Errors
/// The system has no WebSocket listener here.
fn framing_of(wire: Wire) -> io::Result<(Framing, &'static str)> {
    wire.websocket()
        .ok_or_else(|| io::Error::other(format!("{} has no WebSocket listener here", wire.name())))
}

fn nanos_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

struct Shared {
    epoch: Instant,
    delivered: AtomicU64,
    measuring: AtomicBool,
    stop: AtomicBool,
}

/// A subscriber as the reader holds it.
struct Reader {
    stream: mio::net::TcpStream,
    tls: Option<Box<rustls::ClientConnection>>,
    /// The protocol's bytes.
    buf: BytesMut,
    parser: DeliveryParser,
    /// Over WebSocket, what was read and not unwrapped yet.
    raw: BytesMut,
}

impl Reader {
    /// One read: the protocol's bytes it gave are appended to `buf` (opened from TLS records,
    /// unwrapped from WebSocket messages); `false` once the socket would block.
    fn read_once(&mut self, chunk: &mut [u8], framing: Option<Framing>) -> io::Result<bool> {
        let (n, more) = match self.tls.as_deref_mut() {
            Some(tls) => {
                let (raw, plain) = chunk.split_at_mut(chunk.len() / 2);
                let (got, opened) = tls_io::read_records(tls, &mut self.stream, raw, plain)?;
                self.buf.extend_from_slice(&plain[..opened]);
                match got {
                    TlsRead::Data(_) => (0, true),
                    TlsRead::WouldBlock => (0, false),
                    TlsRead::Closed | TlsRead::Eof => return Err(closed()),
                }
            }
            None => match self.stream.read(chunk) {
                Ok(0) => return Err(closed()),
                Ok(n) => (n, true),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => (0, false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => (0, true),
                Err(e) => return Err(e),
            },
        };
        match framing {
            None => self.buf.extend_from_slice(&chunk[..n]),
            Some(f) => {
                self.raw.extend_from_slice(&chunk[..n]);
                f.unwrap(&mut self.raw, &mut self.buf)?;
            }
        }
        Ok(more)
    }
}

fn closed() -> io::Error {
    io::Error::other("the server closed a subscriber")
}

/// Reads every subscriber until told to stop; returns the latencies seen while measuring.
fn read_all(
    wire: Wire,
    subscribers: Vec<Conn>,
    framing: Option<Framing>,
    shared: &Shared,
) -> io::Result<Histogram<u64>> {
    let mut poll = Poll::new()?;
    let mut conns = Vec::with_capacity(subscribers.len());
    for (i, c) in subscribers.into_iter().enumerate() {
        c.stream.set_nonblocking(true)?;
        let mut stream = mio::net::TcpStream::from_std(c.stream);
        poll.registry()
            .register(&mut stream, Token(i), Interest::READABLE)?;
        conns.push(Reader {
            stream,
            tls: c.tls,
            buf: BytesMut::with_capacity(16 * 1024),
            parser: wire.parser(),
            raw: BytesMut::new(),
        });
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let mut events = Events::with_capacity(1024);
    let mut chunk = vec![0u8; 64 * 1024];
    while !shared.stop.load(Ordering::Relaxed) {
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        for event in &events {
            let Some(r) = conns.get_mut(event.token().0) else {
                continue;
            };
            loop {
                let more = r.read_once(&mut chunk, framing)?;
                let now = nanos_since(shared.epoch);
                let measuring = shared.measuring.load(Ordering::Relaxed);
                let mut count = 0;
                r.parser.drain(&mut r.buf, |payload| {
                    count += 1;
                    if measuring && let Some(ts) = payload.get(..8) {
                        let sent = u64::from_be_bytes(ts.try_into().unwrap_or([0; 8]));
                        let _ = hist.record((now.saturating_sub(sent) / 1000).max(1));
                    }
                })?;
                shared.delivered.fetch_add(count, Ordering::Relaxed);
                if !more {
                    break;
                }
            }
        }
    }
    Ok(hist)
}

/// Where a fan-out's clients connect, and whose CPU time is the servers'.
pub struct Targets<'a> {
    /// The publisher's server.
    pub publisher: SocketAddr,
    /// Subscriber `i` connects to `subscribers[i % len]`.
    pub subscribers: Vec<SocketAddr>,
    /// Every process serving the run (nodes and what joins them): their CPU time is summed.
    pub servers: Vec<&'a Running>,
    /// Waited for once the subscribers hold their subscriptions, before the first publish (a
    /// cluster carrying their interest to the publisher's node).
    pub ready: Option<&'a dyn Fn() -> io::Result<()>>,
}

impl std::fmt::Debug for Targets<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Targets")
            .field("publisher", &self.publisher)
            .field("subscribers", &self.subscribers)
            .field("servers", &self.servers)
            .field("ready", &self.ready.is_some())
            .finish()
    }
}

impl<'a> Targets<'a> {
    /// Every client on one server.
    pub fn one(server: &'a Running) -> Self {
        Self {
            publisher: server.addr,
            subscribers: vec![server.addr],
            servers: vec![server],
            ready: None,
        }
    }

    fn cpu_time(&self) -> io::Result<Duration> {
        self.servers.iter().map(|s| s.cpu_time()).sum()
    }
}

/// Runs the fan-out against a started server.
///
/// # Errors
/// A connection failed, or the server closed one.
pub fn run(wire: Wire, server: &Running, cfg: &FanoutConfig) -> io::Result<FanoutResult> {
    run_on(wire, &Targets::one(server), cfg)
}

/// The run's subscribers and its publisher, connected where `targets` says, and the system ready
/// for the first publish.
fn connect_clients(
    wire: Wire,
    targets: &Targets<'_>,
    cfg: &FanoutConfig,
) -> io::Result<(Vec<Conn>, Conn)> {
    // The TLS settings, made once for every connection of the run.
    let tls = (cfg.link == Link::Tls).then(tls_config).transpose()?;
    let subscribers = connect_subscribers(
        wire,
        &targets.subscribers,
        cfg.subscribers,
        cfg.link,
        tls.as_ref(),
    )?;
    let publisher = TcpStream::connect(targets.publisher)?;
    let publisher = handshake(
        wire,
        publisher,
        cfg.subscribers,
        false,
        cfg.link,
        tls.as_ref(),
    )?;
    if let Some(ready) = targets.ready {
        ready()?;
    }
    Ok((subscribers, publisher))
}

/// Runs the fan-out with its clients where `targets` says (several nodes of a cluster, say).
///
/// # Errors
/// A connection failed, or a server closed one.
pub fn run_on(wire: Wire, targets: &Targets<'_>, cfg: &FanoutConfig) -> io::Result<FanoutResult> {
    let framing = match cfg.link {
        Link::WebSocket => Some(framing_of(wire)?.0),
        _ => None,
    };
    let (subscribers, mut publisher) = connect_clients(wire, targets, cfg)?;
    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        delivered: AtomicU64::new(0),
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
    });
    let reader = {
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || read_all(wire, subscribers, framing, &shared))
    };
    let n = cfg.subscribers as u64;
    let mut sent = 0u64;
    let mut out = BytesMut::new();
    let mut wrapped = BytesMut::new();
    let mut payload = vec![0u8; cfg.payload.max(8)];
    let start = Instant::now();
    let measure_from = start + cfg.warmup;
    let measure_to = measure_from + cfg.measure;
    let mut marks = None;
    let mut cpu_at_start = Duration::ZERO;
    loop {
        let now = Instant::now();
        if marks.is_none() && now >= measure_from {
            cpu_at_start = targets.cpu_time()?;
            marks = Some((now, shared.delivered.load(Ordering::Relaxed)));
            shared.measuring.store(true, Ordering::Relaxed);
        }
        if now >= measure_to {
            break;
        }
        if reader.is_finished() {
            break;
        }
        let in_flight = sent.saturating_sub(shared.delivered.load(Ordering::Relaxed) / n);
        if in_flight >= cfg.window {
            std::hint::spin_loop();
            std::thread::yield_now();
            continue;
        }
        out.clear();
        for _ in 0..(cfg.window - in_flight).min(64) {
            payload[..8].copy_from_slice(&nanos_since(shared.epoch).to_be_bytes());
            wire.encode_publish(&payload, &mut out);
            sent += 1;
        }
        let bytes = match framing {
            None => &out,
            Some(f) => {
                wrapped.clear();
                f.wrap(&out, &mut wrapped);
                &wrapped
            }
        };
        match publisher.tls.as_deref_mut() {
            Some(tls) => rustls::Stream::new(tls, &mut publisher.stream).write_all(bytes)?,
            None => publisher.stream.write_all(bytes)?,
        }
    }
    let end = Instant::now();
    let delivered_end = shared.delivered.load(Ordering::Relaxed);
    shared.measuring.store(false, Ordering::Relaxed);
    let cpu = targets.cpu_time()?.saturating_sub(cpu_at_start);
    shared.stop.store(true, Ordering::Relaxed);
    let hist = reader
        .join()
        .map_err(|_| io::Error::other("the reader thread panicked"))??;
    let (t0, d0) = marks.ok_or_else(|| io::Error::other("the run ended before measuring"))?;
    let deliveries = delivered_end - d0;
    let secs = (end - t0).as_secs_f64();
    Ok(FanoutResult {
        deliveries_per_s: deliveries as f64 / secs,
        p50_us: hist.value_at_quantile(0.5) as f64,
        p99_us: hist.value_at_quantile(0.99) as f64,
        cpu_ms_per_m: if deliveries == 0 {
            0.0
        } else {
            cpu.as_secs_f64() * 1e3 / (deliveries as f64 / 1e6)
        },
    })
}

/// Whether `wire`'s server can be run here: framewire's is built, nats-server and mosquitto are
/// installed (Debian's packages of those names).
pub fn available(wire: Wire) -> bool {
    let program = match wire {
        Wire::Framewire => return super::systems::framewire_binary().is_ok(),
        Wire::Nats => "nats-server",
        Wire::Mqtt => "mosquitto",
    };
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The fan-out comparison: one publisher to each number of `subscribers`, 32-byte messages, 128
/// in flight, framewire against nats-server and mosquitto (`QoS` 0; each skipped where it is not
/// installed), interleaved round by round, the servers pinned to core 0. The caller runs pinned
/// to another core: this process is the load generator.
///
/// # Errors
/// A server did not start, or a run failed.
pub fn compare(rounds: usize, seconds: f64, subscribers: &[usize]) -> io::Result<Section> {
    let systems: Vec<(Wire, Link)> = [Wire::Framewire, Wire::Nats, Wire::Mqtt]
        .into_iter()
        .filter(|&w| {
            let ok = available(w);
            if !ok {
                eprintln!("skipping {}: not installed (or not built)", w.name());
            }
            ok
        })
        .map(|w| (w, Link::Tcp))
        .collect();
    let title = format!(
        "Fan-out, 32 B messages, 128 in flight, medians of {rounds} rounds of {seconds} s (in brackets: the lowest and highest round, and of the round-by-round ratios); ratios are framewire / this system"
    );
    let plan = Comparison {
        title,
        label: "fan-out",
        systems: &systems,
    };
    plan.run(rounds, seconds, subscribers, |wire, _| {
        super::systems::start(wire, 0)
    })
}

/// A fan-out comparison's systems and how they are reached, for [`Comparison::run`].
#[derive(Debug)]
pub struct Comparison<'a> {
    /// The table's title.
    pub title: String,
    /// The rows' `section` in JSON, and the progress lines' prefix.
    pub label: &'static str,
    /// Each system and how its clients reach it; the first is the one the ratios are to.
    pub systems: &'a [(Wire, Link)],
}

impl Comparison<'_> {
    /// Runs every system at each number of `subscribers`, round by round, each sample on a server
    /// `start` starts afresh, and tabulates the medians.
    ///
    /// # Errors
    /// A server did not start, or a run failed.
    pub fn run(
        &self,
        rounds: usize,
        seconds: f64,
        subscribers: &[usize],
        start: impl Fn(Wire, Link) -> io::Result<Running>,
    ) -> io::Result<Section> {
        let (systems, label) = (self.systems, self.label);
        let title = self.title.clone();
        let mut section = Section {
            title,
            columns: vec![
                "subscribers",
                "system",
                "deliveries/s",
                "p50 us",
                "p99 us",
                "server CPU ms per M deliveries",
                "deliveries/s ratio",
            ],
            ..Section::default()
        };
        for &n in subscribers {
            let base = FanoutConfig {
                subscribers: n,
                payload: 32,
                window: 128,
                warmup: Duration::from_millis(500),
                measure: Duration::from_secs_f64(seconds),
                link: Link::Tcp,
            };
            let mut results: Vec<Vec<FanoutResult>> = vec![Vec::new(); systems.len()];
            for round in 0..rounds {
                for (i, &(wire, link)) in systems.iter().enumerate() {
                    let server = start(wire, link)?;
                    let cfg = FanoutConfig {
                        link,
                        ..base.clone()
                    };
                    let r = run(wire, &server, &cfg)?;
                    eprintln!(
                        "{label} round {}/{rounds} {n} subscribers {}: {:.0} deliveries/s, p50 {:.0} us, p99 {:.0} us",
                        round + 1,
                        leg_name(wire, link),
                        r.deliveries_per_s,
                        r.p50_us,
                        r.p99_us
                    );
                    results[i].push(r);
                }
            }
            let m = |rs: &[FanoutResult], f: fn(&FanoutResult) -> f64| {
                super::median(rs.iter().map(f).collect())
            };
            let ours = m(&results[0], |r| r.deliveries_per_s);
            let rates: Vec<Vec<f64>> = results
                .iter()
                .map(|rs| rs.iter().map(|r| r.deliveries_per_s).collect())
                .collect();
            for (i, &(wire, link)) in systems.iter().enumerate() {
                let rs = &results[i];
                let rate = m(rs, |r| r.deliveries_per_s);
                let rate_range = super::range(&rates[i]);
                let ratio_range = super::range(&super::round_ratios(&rates[0], &rates[i]));
                let (p50, p99, cpu) = (
                    m(rs, |r| r.p50_us),
                    m(rs, |r| r.p99_us),
                    m(rs, |r| r.cpu_ms_per_m),
                );
                section.rows.push(vec![
                    n.to_string(),
                    leg_name(wire, link),
                    super::table::millions_with_range(rate, rate_range),
                    format!("{p50:.0}"),
                    format!("{p99:.0}"),
                    format!("{cpu:.1}"),
                    super::table::ratio_with_range(ours, rate, ratio_range),
                ]);
                section.json.push(format!(
                "{{\"section\":\"{label}\",\"subscribers\":{n},\"system\":{},\"deliveries_per_s\":{rate:.0},\"deliveries_per_s_min\":{:.0},\"deliveries_per_s_max\":{:.0},\"p50_us\":{p50:.0},\"p99_us\":{p99:.0},\"server_cpu_ms_per_m\":{cpu:.1},\"ratio\":{:.3},\"ratio_min\":{:.3},\"ratio_max\":{:.3}}}",
                super::table::json_string(&leg_name(wire, link)),
                rate_range.0,
                rate_range.1,
                ours / rate,
                ratio_range.0,
                ratio_range.1
            ));
            }
        }
        Ok(section)
    }
}

/// framewire's server on core 0 serving TLS only (the benchmark's certificate), as
/// [`super::systems::start`] serves plain TCP.
fn start_tls_framewire() -> io::Result<Running> {
    let addr = super::systems::free_addr()?;
    let args = super::secure::tls_only_args(addr)?;
    super::systems::start_program(
        &super::systems::framewire_binary()?,
        &args,
        0,
        addr,
        super::systems::Serves::Tcp,
    )
}

/// The fan-out over TLS against the same over plain TCP (framewire both, the same workload as
/// [`compare`]): what encrypting each subscriber's copy costs.
///
/// # Errors
/// A server did not start, or a run failed.
pub fn compare_tls(rounds: usize, seconds: f64, subscribers: &[usize]) -> io::Result<Section> {
    let title = format!(
        "Fan-out over TLS (TLS 1.3, rustls with ring, every subscriber and the publisher) against plain TCP, 32 B messages, 128 in flight, medians of {rounds} rounds of {seconds} s; ratios are framewire over TLS / this row"
    );
    let plan = Comparison {
        title,
        label: "tls fan-out",
        systems: &[(Wire::Framewire, Link::Tls), (Wire::Framewire, Link::Tcp)],
    };
    plan.run(rounds, seconds, subscribers, |wire, link| match link {
        Link::Tls => start_tls_framewire(),
        _ => super::systems::start(wire, 0),
    })
}
