//! `framewire bench`: a load generator. Clients keep a window of messages in flight (echo round
//! trips of Data frames, or publishes to a topic each client subscribes to) and record each round
//! trip, from the send time carried in the payload, in an HDR histogram. Clients are spread over
//! threads, each a mio loop; TCP clients encode and decode frames in place, UDP clients run the
//! protocol's session engine.

#![allow(
    clippy::cast_precision_loss,
    reason = "message counts become rates reported to a few significant digits"
)]

mod tcp;
mod udp;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Mode {
    /// Data frames echoed by the server.
    Echo,
    /// Publishes to a topic the same client subscribes to.
    Pubsub,
}

/// Reliable (channel 0) or unreliable (channel 3) messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Channel {
    /// Channel 0, reliable-ordered.
    Reliable,
    /// Channel 3, unreliable.
    Unreliable,
}

impl Channel {
    fn number(self) -> u8 {
        match self {
            Self::Reliable => 0,
            Self::Unreliable => 3,
        }
    }
}

/// The bench's settings.
#[derive(Debug, Clone)]
pub(crate) struct BenchConfig {
    pub(crate) server: SocketAddr,
    pub(crate) udp: bool,
    pub(crate) clients: usize,
    pub(crate) window: u32,
    pub(crate) size: usize,
    pub(crate) duration: Duration,
    pub(crate) channel: Channel,
    pub(crate) mode: Mode,
    pub(crate) threads: usize,
    pub(crate) json: bool,
    /// No handshake: the server is a plain echo of length-prefixed frames (a comparison baseline).
    pub(crate) raw: bool,
    /// TLS under the TCP clients; `None`: plaintext.
    pub(crate) tls: Option<framewire_client::TlsOptions>,
    /// The connect token every client presents, and the keys that seal a UDP session with it.
    pub(crate) auth_token: Option<Vec<u8>>,
    pub(crate) seal_keys: Option<framewire_protocol::seal::TokenKeys>,
}

/// What all threads share: the clock's origin, and the phase of the run.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) epoch: Instant,
    pub(crate) measuring: AtomicBool,
    pub(crate) stop: AtomicBool,
    /// Round trips completed while measuring (for the progress line).
    pub(crate) done: AtomicU64,
}

impl Shared {
    pub(crate) fn nanos(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// One thread's results.
#[derive(Debug)]
pub(crate) struct Tally {
    pub(crate) completed: u64,
    pub(crate) errors: u64,
    pub(crate) hist: Histogram<u64>,
}

impl Tally {
    pub(crate) fn new() -> Self {
        Self {
            completed: 0,
            errors: 0,
            hist: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
        }
    }

    /// A round trip came back: record it if the run is measuring.
    pub(crate) fn record(&mut self, shared: &Shared, now_nanos: u64, payload: &[u8]) {
        if !shared.measuring.load(Ordering::Relaxed) {
            return;
        }
        let Some(ts) = payload.get(..8) else {
            self.errors += 1;
            return;
        };
        let sent = u64::from_be_bytes(ts.try_into().unwrap_or([0; 8]));
        let _ = self
            .hist
            .record((now_nanos.saturating_sub(sent) / 1000).max(1));
        self.completed += 1;
    }
}

/// How long a client's messages may go unanswered before they are written off as lost: unreliable
/// messages a server dropped (or a datagram the network lost) never come back.
const LOST_AFTER_NANOS: u64 = 1_000_000_000;

/// When a client's last echo came back, on the bench clock. Both generators keep one per client
/// and read it against a time they already have, not a clock read of its own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Progress(u64);

impl Progress {
    pub(crate) fn new(now_nanos: u64) -> Self {
        Self(now_nanos)
    }

    /// Echoes came back at `now_nanos`.
    pub(crate) fn note(&mut self, now_nanos: u64) {
        self.0 = self.0.max(now_nanos);
    }

    /// When nothing has come back for [`LOST_AFTER_NANOS`], writes the `in_flight` messages off
    /// (the window can be refilled) and returns how many; otherwise 0.
    pub(crate) fn write_off(&mut self, in_flight: &mut u32, now_nanos: u64) -> u64 {
        if *in_flight == 0 || now_nanos.saturating_sub(self.0) <= LOST_AFTER_NANOS {
            return 0;
        }
        let lost = u64::from(*in_flight);
        *in_flight = 0;
        self.0 = now_nanos;
        lost
    }
}

/// A message payload: the send time, then filler to `size` bytes.
pub(crate) fn payload(size: usize, now_nanos: u64, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&now_nanos.to_be_bytes());
    out.resize(size.max(8), 0x5a);
}

/// The bench's result line.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) msgs_per_s: f64,
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
    pub(crate) p999_us: u64,
    pub(crate) errors: u64,
}

/// Runs the bench.
///
/// # Errors
/// A client could not connect or failed during the run.
pub(crate) fn run(cfg: &BenchConfig) -> Result<Report, String> {
    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        done: AtomicU64::new(0),
    });
    let threads = cfg.threads.clamp(1, cfg.clients.max(1));
    let mut workers = Vec::new();
    for t in 0..threads {
        let ids: Vec<usize> = (t..cfg.clients).step_by(threads).collect();
        let cfg = cfg.clone();
        let shared = Arc::clone(&shared);
        workers.push(std::thread::spawn(move || {
            if cfg.udp {
                udp::worker(&cfg, &ids, &shared)
            } else {
                tcp::worker(&cfg, &ids, &shared)
            }
        }));
    }
    let warmup = (cfg.duration / 5).min(Duration::from_secs(1));
    let start = Instant::now();
    std::thread::sleep(warmup);
    shared.measuring.store(true, Ordering::Relaxed);
    let measured_from = Instant::now();
    let progress = !cfg.json && std::io::stderr().is_terminal();
    while measured_from.elapsed() < cfg.duration {
        let left = cfg.duration.saturating_sub(measured_from.elapsed());
        std::thread::sleep(left.min(Duration::from_secs(1)));
        if progress {
            let secs = measured_from.elapsed().as_secs_f64();
            let rate = shared.done.load(Ordering::Relaxed) as f64 / secs;
            eprint!(
                "\r{:>5.1} s  {:>12.0} msgs/s",
                start.elapsed().as_secs_f64(),
                rate
            );
        }
    }
    shared.measuring.store(false, Ordering::Relaxed);
    let secs = measured_from.elapsed().as_secs_f64();
    shared.stop.store(true, Ordering::Relaxed);
    if progress {
        eprintln!();
    }
    let mut total = Tally::new();
    for w in workers {
        let tally = w
            .join()
            .map_err(|_| "a bench thread panicked".to_owned())??;
        total.completed += tally.completed;
        total.errors += tally.errors;
        total
            .hist
            .add(&tally.hist)
            .map_err(|e| format!("merging latencies: {e}"))?;
    }
    Ok(Report {
        msgs_per_s: total.completed as f64 / secs,
        p50_us: total.hist.value_at_quantile(0.50),
        p99_us: total.hist.value_at_quantile(0.99),
        p999_us: total.hist.value_at_quantile(0.999),
        errors: total.errors,
    })
}

impl Report {
    pub(crate) fn json(&self) -> String {
        format!(
            "{{\"msgs_per_s\":{:.0},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"errors\":{}}}",
            self.msgs_per_s, self.p50_us, self.p99_us, self.p999_us, self.errors
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_written_off_after_a_second_without_an_echo_and_not_before() {
        let mut p = Progress::new(5);
        let mut in_flight = 32;
        assert_eq!(p.write_off(&mut in_flight, 5 + LOST_AFTER_NANOS), 0);
        assert_eq!(in_flight, 32);
        p.note(100);
        assert_eq!(p.write_off(&mut in_flight, 101 + LOST_AFTER_NANOS), 32);
        assert_eq!(in_flight, 0);
        // The clock restarts at the write-off: the refilled window gets its own second.
        in_flight = 8;
        assert_eq!(p.write_off(&mut in_flight, 102 + LOST_AFTER_NANOS), 0);
        let mut none = 0;
        assert_eq!(
            p.write_off(&mut none, u64::MAX),
            0,
            "nothing in flight, nothing lost"
        );
    }
}
