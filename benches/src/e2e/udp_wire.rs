//! What a steady stream of small reliable messages costs on the wire over UDP: a sender of 100 B
//! messages at 60 Hz and a receiver, joined by the lossy relay (20 ms + 0-5 ms one way, as the
//! session simulator's link), framewire's session engine against ENet (`benches/enet/rate.c`) at
//! 0, 1, 5 and 20 % loss, systems interleaved run by run. The relay counts every UDP payload byte
//! both ways; the overhead is that over the payload delivered. Each message carries its send
//! time, so the receiver also gives how long messages took to arrive (one machine, one clock).

use std::io::{self, BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use framewire_protocol::session::{self, Event, Session, SessionConfig};
use framewire_protocol::wire::{Data, Frame, FrameBody, MAX_DATAGRAM_SIZE};

use super::lossy_relay::{Carried, LinkShape, LossyRelay};
use super::median;
use super::table::{Section, json_field, json_number, json_string, ratio};

/// The steady load.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Payload bytes per message (at least 8: the send time).
    pub size: usize,
    /// Messages a second.
    pub hz: f64,
    /// How long the sender sends.
    pub seconds: f64,
}

/// The systems compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// framewire's session engine (protocol crate), the reliable-ordered channel 0, in version 2
    /// (compact datagrams), what two peers of this build agree.
    Framewire,
    /// The same in version 1 (what a peer without version 2 gets).
    FramewireV1,
    /// ENet 1.3, reliable packets on channel 0.
    Enet,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            Self::Framewire => "framewire",
            Self::FramewireV1 => "framewire v1",
            Self::Enet => "ENet",
        }
    }
}

/// One run's outcome.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// Messages the receiver got.
    pub delivered: u64,
    /// Their payload bytes.
    pub payload: u64,
    /// What the sender put on the wire (its messages, resends and acks of the receiver's).
    pub forward: Carried,
    /// What the receiver put on the wire (its acks).
    pub back: Carried,
    /// Median and 99th percentile of the send-to-delivery time, microseconds.
    pub p50_us: f64,
    /// See `p50_us`.
    pub p99_us: f64,
}

impl Run {
    /// Wire bytes both ways over payload bytes delivered.
    #[allow(clippy::cast_precision_loss, reason = "byte counts far below 2^52")]
    pub fn overhead(&self) -> f64 {
        (self.forward.bytes + self.back.bytes) as f64 / self.payload as f64
    }
}

/// The link at `loss`, seeded by `seed`.
fn link(loss: f64, seed: u64) -> LinkShape {
    LinkShape {
        loss,
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(5),
        seed,
    }
}

/// Runs `load` over one system through a fresh relay.
///
/// # Errors
/// Sockets, the ENet programs, or a run that did not finish.
pub fn run(system: System, shape: LinkShape, load: Load) -> io::Result<Run> {
    match system {
        System::Framewire => run_framewire(shape, load, true),
        System::FramewireV1 => run_framewire(shape, load, false),
        System::Enet => run_enet(shape, load),
    }
}

/// One side of a framewire session on a blocking socket.
struct Peer {
    socket: UdpSocket,
    session: Session,
    base: Instant,
    buf: Vec<u8>,
}

impl Peer {
    /// A session of compact datagrams (version 2) or of version 1's, as the handshake agrees.
    fn new(socket: UdpSocket, remote: SocketAddr, base: Instant, compact: bool) -> Self {
        let now = clock(base, Instant::now());
        let mut session = Session::established(SessionConfig::default(), 1, remote, now);
        if compact {
            session.use_compact_datagrams();
        }
        Self {
            socket,
            session,
            base,
            buf: vec![0u8; MAX_DATAGRAM_SIZE],
        }
    }

    /// Sends what the session has to send, then waits for a datagram until `until` or the
    /// session's next timer, and handles what came and what fell due.
    fn turn(&mut self, until: Instant) -> io::Result<()> {
        let now = clock(self.base, Instant::now());
        while let Some(t) = self.session.poll_transmit(now, &mut self.buf) {
            match self.socket.send_to(&self.buf[..t.len], t.destination) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                Err(e) => return Err(e),
            }
        }
        let timer = self
            .session
            .poll_timeout()
            .map(|t| self.base + Duration::from_micros(t.as_micros()));
        let wake = timer.map_or(until, |t| t.min(until));
        let wait = wake
            .saturating_duration_since(Instant::now())
            .max(Duration::from_micros(50));
        self.socket.set_read_timeout(Some(wait))?;
        match self.socket.recv_from(&mut self.buf) {
            Ok((len, from)) => {
                let now = clock(self.base, Instant::now());
                let datagram = Bytes::copy_from_slice(&self.buf[..len]);
                self.session.handle_datagram(now, from, datagram);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::ConnectionRefused
                ) => {}
            Err(e) => return Err(e),
        }
        let now = clock(self.base, Instant::now());
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            self.session.handle_timeout(now);
        }
        Ok(())
    }
}

fn clock(base: Instant, t: Instant) -> session::Instant {
    session::Instant::from_micros(u64::try_from(t.duration_since(base).as_micros()).unwrap_or(0))
}

/// Nanoseconds since `base`, as a message's first 8 bytes carry it.
fn stamp(base: Instant) -> u64 {
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The 50th and 99th percentiles of `us`, which it sorts.
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "an index into a vector of a run's messages"
)]
fn percentiles(us: &mut [u64]) -> (f64, f64) {
    us.sort_unstable();
    let at = |q: f64| {
        us.get(((us.len().saturating_sub(1)) as f64 * q) as usize)
            .map_or(f64::NAN, |&x| x as f64)
    };
    (at(0.5), at(0.99))
}

/// What the receiver saw: messages, payload bytes, and each one's delay in microseconds.
struct Received {
    payload: u64,
    delays_us: Vec<u64>,
}

fn run_framewire(shape: LinkShape, load: Load, compact: bool) -> io::Result<Run> {
    let sink_socket = UdpSocket::bind("127.0.0.1:0")?;
    let relay = LossyRelay::start(sink_socket.local_addr()?, shape)?;
    let sender_socket = UdpSocket::bind("127.0.0.1:0")?;
    let base = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let mut sink = Peer::new(sink_socket, relay.server_side_addr(), base, compact);
    let sink_stop = Arc::clone(&stop);
    let receiver = std::thread::spawn(move || -> io::Result<Received> {
        let mut got = Received {
            payload: 0,
            delays_us: Vec::new(),
        };
        while !sink_stop.load(Ordering::Relaxed) {
            sink.turn(Instant::now() + Duration::from_millis(5))?;
            while let Some(event) = sink.session.poll_event() {
                if let Event::Frame(Frame {
                    body: FrameBody::Data(d),
                    ..
                }) = event
                {
                    let sent = d
                        .payload
                        .get(..8)
                        .and_then(|b| b.try_into().ok())
                        .map_or(0, u64::from_be_bytes);
                    got.delays_us.push(stamp(base).saturating_sub(sent) / 1000);
                    got.payload += d.payload.len() as u64;
                }
            }
        }
        Ok(got)
    });
    let sent = send_steadily(Peer::new(sender_socket, relay.addr(), base, compact), load);
    stop.store(true, Ordering::Relaxed);
    let got = receiver
        .join()
        .map_err(|_| io::Error::other("the receiver panicked"))??;
    sent?;
    let (forward, back) = relay.take_counts();
    let mut delays = got.delays_us;
    let (p50_us, p99_us) = percentiles(&mut delays);
    Ok(Run {
        delivered: delays.len() as u64,
        payload: got.payload,
        forward,
        back,
        p50_us,
        p99_us,
    })
}

/// Sends `load` from `peer`, then keeps going until every message has been acknowledged.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a message count from a rate and a duration"
)]
fn send_steadily(mut peer: Peer, load: Load) -> io::Result<()> {
    let total = (load.hz * load.seconds) as u64;
    let interval = Duration::from_secs_f64(1.0 / load.hz);
    let mut next = Instant::now();
    let give_up = next + Duration::from_secs_f64(load.seconds) + Duration::from_secs(60);
    let mut sent = 0;
    let mut payload = vec![0u8; load.size];
    loop {
        let now = Instant::now();
        if sent < total && now >= next {
            payload[..8].copy_from_slice(&stamp(peer.base).to_be_bytes());
            peer.session
                .send(Frame::new(Data {
                    payload: Bytes::copy_from_slice(&payload),
                }))
                .map_err(|e| io::Error::other(format!("send: {e:?}")))?;
            sent += 1;
            next += interval;
            continue;
        }
        let stats = peer.session.stats();
        if sent == total && stats.messages_in_flight == 0 && stats.queued_bytes == 0 {
            return Ok(());
        }
        if now > give_up {
            return Err(io::Error::other(
                "framewire: not everything was acknowledged",
            ));
        }
        peer.turn(if sent < total {
            next
        } else {
            now + Duration::from_millis(5)
        })?;
        while peer.session.poll_event().is_some() {}
    }
}

/// The next line of a program's output.
fn line_of(out: &mut BufReader<ChildStdout>, program: &str) -> io::Result<String> {
    let mut line = String::new();
    if out.read_line(&mut line)? == 0 {
        return Err(io::Error::other(format!("{program} ended without saying")));
    }
    Ok(line.trim().to_string())
}

fn spawn(
    program: &std::path::Path,
    args: &[String],
) -> io::Result<(Child, BufReader<ChildStdout>)> {
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let out = child
        .stdout
        .take()
        .map(BufReader::new)
        .ok_or_else(|| io::Error::other("no stdout"))?;
    Ok((child, out))
}

fn run_enet(shape: LinkShape, load: Load) -> io::Result<Run> {
    let program = super::enet::rate_program()?;
    let (mut sink, mut sink_out) = spawn(
        &program,
        &["sink".into(), (load.seconds + 90.0).to_string()],
    )?;
    let said = line_of(&mut sink_out, "enet sink")?;
    let port: u16 = said
        .strip_prefix("port ")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| io::Error::other(format!("enet sink said {said}")))?;
    let relay = LossyRelay::start(SocketAddr::from(([127, 0, 0, 1], port)), shape)?;
    let (mut sender, mut sender_out) = spawn(
        &program,
        &[
            "send".into(),
            "127.0.0.1".into(),
            relay.addr().port().to_string(),
            load.size.to_string(),
            load.hz.to_string(),
            load.seconds.to_string(),
        ],
    )?;
    let said = line_of(&mut sender_out, "enet sender")?;
    if said != "sending" {
        return Err(io::Error::other(format!("enet sender said {said}")));
    }
    // The connection handshake is not the load's: count from here, as framewire's sessions
    // start established.
    let _ = relay.take_counts();
    let done = line_of(&mut sender_out, "enet sender")?;
    let _ = sender.wait();
    let result = line_of(&mut sink_out, "enet sink")?;
    let _ = sink.wait();
    if !done.contains("\"drained\":true") {
        return Err(io::Error::other(format!("enet sender: {done}")));
    }
    let (forward, back) = relay.take_counts();
    let get =
        |n| json_field(&result, n).ok_or_else(|| io::Error::other(format!("no {n} in {result}")));
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "counts the sink printed"
    )]
    Ok(Run {
        delivered: get("delivered")? as u64,
        payload: get("bytes")? as u64,
        forward,
        back,
        p50_us: get("p50_us")?,
        p99_us: get("p99_us")?,
    })
}

/// The comparison: for each loss rate, `rounds` runs of each system (interleaved), medians.
///
/// # Errors
/// A run failed (ENet missing is a note, not an error: framewire's figures are still given).
#[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
pub fn compare(rounds: usize, seconds: f64) -> io::Result<Section> {
    let load = Load {
        size: 100,
        hz: 60.0,
        seconds,
    };
    let mut systems = vec![System::Framewire, System::FramewireV1];
    let mut title = format!(
        "UDP bytes per message: {} B reliable messages at {} Hz for {seconds} s, one way through a \
         lossy relay (20 ms + 0-5 ms each way); overhead = UDP payload bytes both ways / payload \
         delivered; medians of {rounds} runs, systems interleaved",
        load.size, load.hz
    );
    match super::enet::rate_program() {
        Ok(_) => systems.push(System::Enet),
        Err(e) => {
            eprintln!("skipping ENet: {e}");
            title.push_str(" (ENet skipped: it could not be built)");
        }
    }
    let mut section = Section {
        title,
        columns: vec![
            "loss",
            "system",
            "delivered",
            "overhead",
            "sender datagrams x bytes",
            "receiver datagrams x bytes",
            "p50 ms",
            "p99 ms",
            "vs ENet",
        ],
        ..Section::default()
    };
    for (i, loss) in [0.0, 0.01, 0.05, 0.20].into_iter().enumerate() {
        let mut runs: Vec<Vec<Run>> = vec![Vec::new(); systems.len()];
        for round in 0..rounds {
            for (s, &system) in systems.iter().enumerate() {
                let seed = 1000 * (i as u64 + 1) + round as u64;
                runs[s].push(run(system, link(loss, seed), load)?);
            }
        }
        let overheads: Vec<f64> = runs
            .iter()
            .map(|r| median(r.iter().map(Run::overhead).collect()))
            .collect();
        for (s, &system) in systems.iter().enumerate() {
            let r = &runs[s];
            let med = |f: fn(&Run) -> f64| median(r.iter().map(f).collect());
            let per = |f: fn(&Run) -> Carried| {
                let datagrams = median(r.iter().map(|x| f(x).datagrams as f64).collect());
                let bytes = median(r.iter().map(|x| f(x).bytes as f64).collect());
                format!("{datagrams:.0} x {:.0} B", bytes / datagrams.max(1.0))
            };
            let offered = (load.hz * load.seconds).floor();
            let delivered = med(|x| x.delivered as f64);
            let versus = match systems.iter().position(|&x| x == System::Enet) {
                Some(e) if e != s => ratio(overheads[s], overheads[e]),
                _ => "-".to_string(),
            };
            section.rows.push(vec![
                format!("{:.0} %", loss * 100.0),
                system.name().to_string(),
                format!("{delivered:.0} / {offered:.0}"),
                format!("{:.3}x", overheads[s]),
                per(|x| x.forward),
                per(|x| x.back),
                format!("{:.1}", med(|x| x.p50_us) / 1000.0),
                format!("{:.1}", med(|x| x.p99_us) / 1000.0),
                versus,
            ]);
            section.json.push(format!(
                "{{\"section\":\"udp-wire\",\"loss\":{loss},\"system\":{},\"delivered\":{delivered},\"offered\":{offered},\"overhead\":{},\"p50_us\":{},\"p99_us\":{}}}",
                json_string(system.name()),
                json_number(overheads[s]),
                json_number(med(|x| x.p50_us)),
                json_number(med(|x| x.p99_us)),
            ));
        }
    }
    Ok(section)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Half a second of the load over a loss-free link: everything arrives, and the relay saw at
    /// least one datagram per message with the payload in it.
    #[test]
    fn framewire_through_the_relay_delivers_everything_and_is_counted() {
        let load = Load {
            size: 100,
            hz: 60.0,
            seconds: 0.5,
        };
        let shape = LinkShape {
            loss: 0.0,
            latency: Duration::from_millis(2),
            jitter: Duration::from_millis(1),
            seed: 3,
        };
        let r = run(System::Framewire, shape, load).unwrap();
        assert_eq!(r.delivered, 30, "{r:?}");
        assert_eq!(r.payload, 3000);
        assert!(r.forward.datagrams >= 30, "{r:?}");
        assert!(r.forward.bytes > r.payload, "{r:?}");
        assert!(r.back.datagrams > 0, "the receiver acknowledged: {r:?}");
        // Each lone message is sent twice at this short round trip (PROTOCOL.md 7a.5).
        assert!(r.overhead() > 1.0 && r.overhead() < 4.0, "{r:?}");
        assert!(
            r.p50_us >= 2000.0,
            "no message beat the link's latency: {r:?}"
        );
    }

    #[test]
    fn percentiles_of_a_run() {
        let mut us: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(percentiles(&mut us), (50.0, 99.0));
        assert!(percentiles(&mut []).0.is_nan());
    }
}
