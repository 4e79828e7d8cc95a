//! The session engine over the simulated network: goodput and wire overhead under loss, and the
//! tail latency of reliable ping-pong. Deterministic (seeded); prints tables.
//!
//! `cargo bench -p framewire-benches --bench session_sim`
//!
//! Overhead is all UDP payload bytes sent in both directions (headers, acks, retransmissions)
//! divided by the application payload bytes delivered.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use framewire_protocol::session::{Event, SessionConfig};
use framewire_protocol::sim::{LinkConfig, Pair};
use framewire_protocol::wire::{Data, Frame, FrameBody};

struct Load {
    name: &'static str,
    size: usize,
    per_second: u64,
    seconds: u64,
}

fn link(loss: f64) -> LinkConfig {
    LinkConfig {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(5),
        loss,
        ..LinkConfig::default()
    }
}

/// What a load cost on the wire.
struct Outcome {
    /// Delivered payload / offered payload.
    goodput: f64,
    /// Wire bytes both ways / delivered payload.
    overhead: f64,
    /// Datagrams and bytes from the sender (its messages) and from the receiver (its acks).
    forward: (u64, u64),
    back: (u64, u64),
}

/// Offers `load` on the reliable-ordered channel, both sides configured as `config`.
#[allow(clippy::cast_precision_loss, reason = "byte counts far below 2^52")]
fn goodput(load: &Load, loss: f64, seed: u64, config: &SessionConfig) -> Outcome {
    let mut pair = Pair::new(config.clone(), config.clone(), &link(loss), seed);
    let delivered = pair.offer(load.size, load.per_second, load.seconds);
    let total = load.per_second * load.seconds;
    let offered = (total as usize * load.size) as f64;
    let wire = (pair.stats_ab.bytes + pair.stats_ba.bytes) as f64;
    Outcome {
        goodput: delivered as f64 / offered,
        overhead: wire / delivered as f64,
        forward: (pair.stats_ab.sent, pair.stats_ab.bytes),
        back: (pair.stats_ba.sent, pair.stats_ba.bytes),
    }
}

/// Sends `per_tick` messages of `size` bytes together, 60 times a second for 20 s, then runs a
/// second more; returns the wire bytes both ways per payload byte delivered.
#[allow(clippy::cast_precision_loss, reason = "byte counts far below 2^52")]
fn ticks(per_tick: usize, size: usize, loss: f64, seed: u64, config: &SessionConfig) -> f64 {
    let mut pair = Pair::new(config.clone(), config.clone(), &link(loss), seed);
    let tick = Duration::from_micros(1_000_000 / 60);
    let mut at = pair.now;
    for _ in 0..60 * 20 {
        for _ in 0..per_tick {
            pair.a
                .send(Frame::new(Data {
                    payload: Bytes::from(vec![7u8; size]),
                }))
                .expect("room in the send queue");
        }
        at += tick;
        pair.run_until(at, |_| false);
        pair.now = pair.now.max(at);
    }
    pair.run_until(at + Duration::from_secs(1), |_| false);
    let delivered: usize = pair
        .events_b
        .iter()
        .map(|e| match e {
            Event::Frame(Frame {
                body: FrameBody::Data(d),
                ..
            }) => d.payload.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(delivered, 60 * 20 * per_tick * size, "everything delivered");
    (pair.stats_ab.bytes + pair.stats_ba.bytes) as f64 / delivered as f64
}

/// The overhead of a game's tick of small updates, version 2 against version 3.
fn tick_table() {
    println!("a game's tick: N small updates sent together 60 times a second, reliable-ordered;");
    println!("version 2 against version 3 (coalesced frames share headers), overhead as above");
    println!(
        "{:<22} {:>6} {:>12} {:>12} {:>8}",
        "load", "loss", "version 2", "version 3", "3 / 2"
    );
    let version_2 = SessionConfig {
        shared_headers: false,
        ..SessionConfig::default()
    };
    for (name, per_tick, size) in [
        ("20 x 16 B a tick", 20, 16),
        ("50 x 8 B a tick", 50, 8),
        ("5 x 100 B a tick", 5, 100),
    ] {
        for (i, loss) in [0.0, 0.05].into_iter().enumerate() {
            let seed = 40 + i as u64;
            let two = ticks(per_tick, size, loss, seed, &version_2);
            let three = ticks(per_tick, size, loss, seed, &SessionConfig::default());
            println!(
                "{:<22} {:>5.0}% {:>11.3}x {:>11.3}x {:>7.3}x",
                name,
                loss * 100.0,
                two,
                three,
                three / two
            );
        }
    }
}

/// `datagrams x mean bytes`.
#[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
fn datagrams((sent, bytes): (u64, u64)) -> String {
    format!("{sent} x {:.0} B", bytes as f64 / sent.max(1) as f64)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a short vector"
    )]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Reliable ping-pong with a uniform 0-10 ms one-way delay; returns sorted round-trip times.
fn ping_pong(loss: f64, rounds: usize, config: &SessionConfig, seed: u64) -> Vec<Duration> {
    let link = LinkConfig {
        latency: Duration::ZERO,
        jitter: Duration::from_millis(10),
        // Each datagram its own random 0-10 ms delay, as the comparison with ENet was measured.
        independent_jitter: true,
        loss,
        ..LinkConfig::default()
    };
    let mut pair = Pair::new(config.clone(), config.clone(), &link, seed);
    let mut rtts = Vec::with_capacity(rounds);
    let mut seen_a = 0;
    let mut seen_b = 0;
    for i in 0..rounds {
        let start = pair.now;
        pair.a
            .send(Frame::new(Data {
                payload: Bytes::from((i as u32).to_be_bytes().to_vec()),
            }))
            .unwrap();
        let done = pair.run_until(start + Duration::from_secs(60), |p| {
            p.events_a.len() > seen_a || p.events_b.len() > seen_b
        });
        assert!(done, "ping {i} lost");
        if pair.events_b.len() > seen_b {
            // b got the ping: answer at once.
            seen_b = pair.events_b.len();
            pair.b
                .send(Frame::new(Data {
                    payload: Bytes::from_static(b"pong"),
                }))
                .unwrap();
            assert!(
                pair.run_until(start + Duration::from_secs(60), |p| p.events_a.len()
                    > seen_a)
            );
        }
        seen_a = pair.events_a.len();
        rtts.push(pair.now.saturating_duration_since(start));
    }
    rtts.sort_unstable();
    rtts
}

/// A 60 Hz stream of 100 B reliable-ordered messages for 60 s over `link(loss)`; returns the
/// sorted delivery latencies.
fn stream_latencies(loss: f64, seed: u64, config: &SessionConfig) -> Vec<Duration> {
    let mut pair = Pair::new(config.clone(), config.clone(), &link(loss), seed);
    let mut latencies = Vec::with_capacity(60 * 60);
    pair.offer_timed(100, 60, 60, |_, latency| latencies.push(latency));
    assert_eq!(latencies.len(), 60 * 60, "everything delivered");
    latencies.sort_unstable();
    latencies
}

/// The delivery tail of a 60 Hz stream, version 1 against version 2 (which holds acks longer):
/// the median over seeds of each run's p99.
fn stream_latency_table() {
    const SEEDS: u64 = 8;
    println!(
        "a 60 Hz stream of 100 B reliable-ordered messages, 60 s, delivery p99 in ms (median,"
    );
    println!("lowest and highest of {SEEDS} seeded runs), version 1 against version 2");
    println!("{:<6} {:>22} {:>22}", "loss", "version 1", "version 2");
    let version_1 = SessionConfig {
        compact_datagrams: false,
        ..SessionConfig::default()
    };
    for loss in [0.0, 0.01, 0.05, 0.20] {
        let mut row = format!("{:>5.0}%", loss * 100.0);
        for config in [&version_1, &SessionConfig::default()] {
            let mut tails: Vec<f64> = (0..SEEDS)
                .map(|seed| {
                    ms(percentile(
                        &stream_latencies(loss, 100 + seed, config),
                        0.99,
                    ))
                })
                .collect();
            tails.sort_by(f64::total_cmp);
            let _ = write!(
                row,
                " {:>8.1} ({:>5.1}-{:>5.1})",
                tails[tails.len() / 2],
                tails[0],
                tails[tails.len() - 1]
            );
        }
        println!("{row}");
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let loads = [
        Load {
            name: "100 B at 60 Hz",
            size: 100,
            per_second: 60,
            seconds: 60,
        },
        Load {
            name: "1 KiB bulk, 100/s",
            size: 1024,
            per_second: 100,
            seconds: 30,
        },
        Load {
            name: "1 KiB bulk, 1000/s",
            size: 1024,
            per_second: 1000,
            seconds: 20,
        },
    ];
    println!(
        "goodput (delivered / offered) and overhead (wire bytes / payload bytes), reliable-ordered,"
    );
    println!("20 ms +- 5 ms one way");
    println!(
        "{:<22} {:>6} {:>9} {:>9} {:>18} {:>16}",
        "load", "loss", "goodput", "overhead", "sender -> receiver", "receiver -> sender"
    );
    for load in &loads {
        for (i, loss) in [0.0, 0.01, 0.05, 0.20].into_iter().enumerate() {
            let o = goodput(load, loss, 10 + i as u64, &SessionConfig::default());
            println!(
                "{:<22} {:>5.0}% {:>8.1}% {:>8.3}x {:>18} {:>18}",
                load.name,
                loss * 100.0,
                o.goodput * 100.0,
                o.overhead,
                datagrams(o.forward),
                datagrams(o.back)
            );
        }
    }
    println!();
    tick_table();
    println!();
    stream_latency_table();
    println!();
    println!("reliable ping-pong round trips, one-way delay uniform 0-10 ms, 20000 rounds");
    println!(
        "{:<8} {:>8} {:>8} {:>8}",
        "loss", "p50 ms", "p99 ms", "p999 ms"
    );
    for (label, redundancy) in [("lone-message copies on (default)", 300), ("copies off", 0)] {
        let config = SessionConfig {
            lone_redundancy_max: redundancy,
            ..SessionConfig::default()
        };
        let mut tails = Vec::new();
        println!("{label}");
        for (i, loss) in [0.0, 0.05].into_iter().enumerate() {
            let rtts = ping_pong(loss, 20_000, &config, 77 + i as u64);
            let (median, tail, far) = (
                percentile(&rtts, 0.5),
                percentile(&rtts, 0.99),
                percentile(&rtts, 0.999),
            );
            tails.push(tail);
            println!(
                "{:<7.0}% {:>8.2} {:>8.2} {:>8.2}",
                loss * 100.0,
                ms(median),
                ms(tail),
                ms(far)
            );
        }
        println!("p99 ratio (5% / 0%): {:.2}x", ms(tails[1]) / ms(tails[0]));
    }
}
