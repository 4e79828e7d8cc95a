//! Confirmed durable pushes, in one run: P producers (1, 16, 64), each on its own connection with
//! one push in flight, pushing 64-byte messages for a measured time and counting the pushes the
//! server confirmed (the generator: `benches/src/e2e/push_wire.rs`, one thread speaking each
//! system's protocol). framewire queues in memory, with a data directory at `fsync = always` and at
//! `interval:100`, against `nats-server` with `JetStream` (`-js -sd DIR`, a work-queue stream on file
//! storage, every publish acknowledged; the stream made through async-nats). The data directories are on this
//! machine's disk (the temporary directory). Systems are interleaved round by round, each on a
//! fresh server and directory.
//!
//! What the confirmations promise differs: framewire `always` syncs (`fdatasync`) before it
//! confirms; `interval:100` writes before it confirms and syncs within 100 ms; `JetStream` (2.9)
//! confirms once the message is written to its file and syncs in the background (every two
//! minutes by default), so a power cut can lose what it confirmed. In memory, nothing survives.
//!
//! A second table measures start-up: the time from the server's start to its first answer, with
//! a data directory holding a million queued messages.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use framewire_client::{AsyncClient, ClientOptions, Transport};

use super::pubsub_wire::Wire;
use super::push_wire::{Pusher, confirmed_rate};
use super::systems::{Running, Serves, framewire_binary, free_addr, start_program};
use super::table::{Section, json_string, ratio};

const PAYLOAD: usize = 64;
const PRODUCERS: [usize; 3] = [1, 16, 64];
const QUEUE: &str = "jobs";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum System {
    Memory,
    Always,
    Interval,
    JetStream,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            Self::Memory => "framewire, in memory",
            Self::Always => "framewire, fsync always",
            Self::Interval => "framewire, fsync interval:100",
            Self::JetStream => "nats-server JetStream (file, work queue)",
        }
    }
}

fn err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// A fresh directory, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> io::Result<Self> {
        let path =
            std::env::temp_dir().join(format!("fw-bench-durable-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }

    fn arg(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts a system on core 0 with its own directory.
fn start(system: System, dir: &Dir) -> io::Result<Running> {
    let addr = free_addr()?;
    let (program, mut args) = match system {
        System::JetStream => (
            PathBuf::from("nats-server"),
            vec![
                "-a".into(),
                "127.0.0.1".into(),
                "-p".into(),
                addr.port().to_string(),
                "-js".into(),
                "-sd".into(),
                dir.arg(),
            ],
        ),
        _ => (
            framewire_binary()?,
            vec![
                "--tcp".into(),
                addr.to_string(),
                "--udp".into(),
                "off".into(),
                "--http".into(),
                "off".into(),
                "--max-queue-depth".into(),
                "100000000".into(),
            ],
        ),
    };
    match system {
        System::Always | System::Interval => {
            args.extend(["--data-dir".into(), dir.arg(), "--fsync".into()]);
            args.push(if system == System::Always {
                "always".into()
            } else {
                "interval:100".into()
            });
        }
        _ => {}
    }
    start_program(&program, &args, 0, addr, Serves::Tcp)
}

/// Creates the work-queue stream on file storage that the pushes go to.
async fn create_jetstream_queue(addr: std::net::SocketAddr) -> io::Result<()> {
    let admin = async_nats::connect(format!("nats://{addr}"))
        .await
        .map_err(err)?;
    let js = async_nats::jetstream::new(admin);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "JOBS".into(),
        subjects: vec![QUEUE.into()],
        retention: async_nats::jetstream::stream::RetentionPolicy::WorkQueue,
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(err)?;
    Ok(())
}

/// Messages in the data directory the start-up is measured with.
const STARTUP_MESSAGES: u64 = 1_000_000;

/// Fills a data directory with a million queued messages, kills the server (SIGKILL),
/// and times a new one from its start to its first answer, in each of `rounds`: the seconds, and
/// the bytes of the directory.
///
/// # Errors
/// A server or a client failed.
pub fn startup(rounds: usize) -> io::Result<Section> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = Dir::new("startup")?;
    let server = start(System::Interval, &dir)?;
    runtime.block_on(fill(server.addr, STARTUP_MESSAGES))?;
    drop(server);
    let bytes: u64 = std::fs::read_dir(&dir.0)?
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    let mut times = Vec::new();
    for round in 0..rounds {
        let started = Instant::now();
        let server = start(System::Always, &dir)?;
        let options = ClientOptions::new(server.addr, Transport::Tcp);
        let mut client = loop {
            match framewire_client::Client::connect(options.clone()) {
                Ok(c) => break c,
                Err(_) if started.elapsed() < Duration::from_secs(120) => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(err(e)),
            }
        };
        let stats = client
            .request("sys.stats", "", Duration::from_secs(60))
            .map_err(err)?;
        let elapsed = started.elapsed().as_secs_f64();
        let text = String::from_utf8_lossy(&stats);
        if !text.contains(&format!("\"queued_messages\":{STARTUP_MESSAGES}")) {
            return Err(err(format!("not every message came back: {text}")));
        }
        eprintln!(
            "start-up round {}/{rounds}: {STARTUP_MESSAGES} messages ({bytes} bytes) up in {elapsed:.2} s",
            round + 1
        );
        times.push(elapsed);
        // Killed, not stopped: the next round replays the same directory.
        drop(server);
    }
    let m = super::median(times.clone());
    let (lo, hi) = super::range(&times);
    let mut section = Section {
        title: format!(
            "Start-up with a data directory of {STARTUP_MESSAGES} queued {PAYLOAD} B messages, after SIGKILL: from the process's start to its answer to sys.stats, median of {rounds} rounds"
        ),
        columns: vec!["messages", "directory bytes", "start-up s", "records/s"],
        ..Section::default()
    };
    section.rows.push(vec![
        STARTUP_MESSAGES.to_string(),
        bytes.to_string(),
        format!("{m:.2} ({lo:.2}-{hi:.2})"),
        format!("{:.0}", STARTUP_MESSAGES as f64 / m),
    ]);
    section.json.push(format!(
        "{{\"section\":\"startup\",\"messages\":{STARTUP_MESSAGES},\"bytes\":{bytes},\"seconds\":{m:.3}}}"
    ));
    Ok(section)
}

/// Pushes `n` messages over 64 connections.
async fn fill(addr: std::net::SocketAddr, n: u64) -> io::Result<()> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let client = AsyncClient::connect(ClientOptions::new(addr, Transport::Tcp))
            .await
            .map_err(err)?;
        let next = Arc::clone(&next);
        tasks.push(tokio::spawn(async move {
            let payload = Bytes::from(vec![7u8; PAYLOAD]);
            while next.fetch_add(1, Ordering::Relaxed) < n {
                client
                    .queue_push(QUEUE, payload.clone())
                    .await
                    .map_err(err)?;
            }
            Ok::<(), io::Error>(())
        }));
    }
    for t in tasks {
        t.await.map_err(err)??;
    }
    Ok(())
}

/// The confirmed-push table.
///
/// # Errors
/// A server or a client failed.
pub fn compare(rounds: usize, seconds: f64) -> io::Result<Section> {
    let mut systems = vec![System::Memory, System::Always, System::Interval];
    if super::fanout::available(Wire::Nats) {
        systems.push(System::JetStream);
    } else {
        eprintln!("skipping JetStream: nats-server not installed");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let measure = Duration::from_secs_f64(seconds);
    // results[p][s]: one rate per round.
    let mut results = vec![vec![Vec::new(); systems.len()]; PRODUCERS.len()];
    let mut cpu_per_push = results.clone();
    for round in 0..rounds {
        for (pi, &producers) in PRODUCERS.iter().enumerate() {
            for (si, &system) in systems.iter().enumerate() {
                let dir = Dir::new(&format!("{round}-{pi}-{si}"))?;
                let server = start(system, &dir)?;
                let pusher = if system == System::JetStream {
                    runtime.block_on(create_jetstream_queue(server.addr))?;
                    Pusher::JetStream
                } else {
                    Pusher::Framewire
                };
                let cpu_before = server.cpu_time()?;
                let payload = [7u8; PAYLOAD];
                let rate =
                    confirmed_rate(pusher, server.addr, producers, QUEUE, &payload, measure)?;
                let cpu = server.cpu_time()?.saturating_sub(cpu_before).as_secs_f64();
                drop(server);
                let cpu_us = cpu * 1e6 / (rate * measure.as_secs_f64()).max(1.0);
                eprintln!(
                    "durable round {}/{rounds}, {producers} producers, {}: {rate:.0} confirmed pushes/s, server CPU {cpu_us:.1} us/push",
                    round + 1,
                    system.name()
                );
                results[pi][si].push(rate);
                cpu_per_push[pi][si].push(cpu_us);
            }
        }
    }
    let mut section = Section {
        title: format!(
            "Confirmed pushes per second, {PAYLOAD} B messages, one push in flight per producer, medians of {rounds} rounds of {seconds} s (in brackets: the lowest and highest round); ratios are framewire fsync always / JetStream"
        ),
        columns: vec!["system", "1 producer", "16 producers", "64 producers"],
        ..Section::default()
    };
    let js = systems.iter().position(|&s| s == System::JetStream);
    for (si, &system) in systems.iter().enumerate() {
        let mut row = vec![system.name().to_string()];
        for (pi, &producers) in PRODUCERS.iter().enumerate() {
            let rs = &results[pi][si];
            let m = super::median(rs.clone());
            let (lo, hi) = super::range(rs);
            row.push(format!("{m:.0} ({lo:.0}-{hi:.0})"));
            section.json.push(format!(
                "{{\"section\":\"durable\",\"system\":{},\"producers\":{producers},\"confirmed_per_s\":{m:.0}}}",
                json_string(system.name())
            ));
        }
        section.rows.push(row);
    }
    for (si, &system) in systems.iter().enumerate() {
        let mut row = vec![format!("{}: server CPU us per push", system.name())];
        for per_producers in &cpu_per_push {
            row.push(format!("{:.1}", super::median(per_producers[si].clone())));
        }
        section.rows.push(row);
    }
    if let (Some(js), Some(always)) = (js, systems.iter().position(|&s| s == System::Always)) {
        let mut row = vec!["ratio fsync always / JetStream".to_string()];
        for per_producers in &results {
            row.push(ratio(
                super::median(per_producers[always].clone()),
                super::median(per_producers[js].clone()),
            ));
        }
        section.rows.push(row);
    }
    Ok(section)
}
