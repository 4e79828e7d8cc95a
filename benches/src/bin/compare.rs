//! TCP side by side: framewire's server against the echo server most users would write first
//! (tokio + tokio-util's `LengthDelimitedCodec`, the baseline) and a minimal raw mio echo (the
//! ceiling), on the same workloads, interleaved round by round, each server pinned to core 0 and
//! the load generator (`framewire bench`, one thread) to core 1. Reports medians, the server's CPU
//! time per message from /proc, and framewire's ratio to each peer.
//!
//! ```sh
//! cargo build --release -p framewire-server -p framewire-tools -p framewire-benches
//! cargo run --release -p framewire-benches --bin compare -- [--rounds N] [--seconds S] [--json]
//! ```
//!
//! The same frames serve all three: a framewire stream frame is a `LengthDelimitedCodec` frame
//! (its u32 length counts the bytes after it), and the raw echo returns bytes as they came; the
//! generator skips the handshake for the two echo servers (`--raw`).

use std::io;
use std::process::{Command, ExitCode};

use framewire_benches::e2e::median;
use framewire_benches::e2e::systems::{self, Running};

const SERVER_CORE: usize = 0;
const CLIENT_CORE: &str = "1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum System {
    Framewire,
    Tokio,
    Mio,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            Self::Framewire => "framewire",
            Self::Tokio => "tokio + LengthDelimitedCodec",
            Self::Mio => "raw mio echo",
        }
    }

    fn start(self) -> io::Result<Running> {
        let addr = systems::free_addr()?;
        let (program, args) = match self {
            Self::Framewire => (
                systems::framewire_binary()?,
                vec![
                    "--tcp".into(),
                    addr.to_string(),
                    "--udp".into(),
                    "off".into(),
                    "--threads".into(),
                    "1".into(),
                ],
            ),
            Self::Tokio => (
                systems::sibling_binary("tokio_echo")?,
                vec![addr.to_string()],
            ),
            Self::Mio => (systems::sibling_binary("mio_echo")?, vec![addr.to_string()]),
        };
        systems::start_program(&program, &args, SERVER_CORE, addr)
    }
}

struct Workload {
    name: &'static str,
    clients: u32,
    window: u32,
    size: u32,
}

const WORKLOADS: [Workload; 3] = [
    Workload {
        name: "ping-pong, 1 client x 1, 64 B",
        clients: 1,
        window: 1,
        size: 64,
    },
    Workload {
        name: "pipelined, 16 clients x 32, 64 B",
        clients: 16,
        window: 32,
        size: 64,
    },
    Workload {
        name: "pipelined, 16 clients x 8, 1 KiB",
        clients: 16,
        window: 8,
        size: 1024,
    },
];

#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    msgs_per_s: f64,
    p50_us: f64,
    p99_us: f64,
    cpu_us_per_msg: f64,
}

fn field(json: &str, name: &str) -> Option<f64> {
    let at = json.find(&format!("\"{name}\":"))?;
    let rest = &json[at + name.len() + 3..];
    let end = rest.find([',', '}'])?;
    rest[..end].parse().ok()
}

fn run_one(system: System, w: &Workload, seconds: f64) -> io::Result<Sample> {
    let server = system.start()?;
    let bench = systems::sibling_binary("framewire")?;
    let cpu_before = server.cpu_time()?;
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", CLIENT_CORE])
        .arg(&bench)
        .args([
            "--server",
            &server.addr.to_string(),
            "bench",
            "--json",
            "--threads",
            "1",
        ])
        .args([
            "--clients",
            &w.clients.to_string(),
            "--window",
            &w.window.to_string(),
        ])
        .args([
            "--size",
            &w.size.to_string(),
            "--duration",
            &seconds.to_string(),
        ]);
    if system != System::Framewire {
        cmd.arg("--raw");
    }
    let out = cmd.output()?;
    let cpu = server.cpu_time()?.saturating_sub(cpu_before);
    let json = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "bench against {} failed: {}",
            system.name(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let get = |n| field(&json, n).ok_or_else(|| io::Error::other(format!("no {n} in {json}")));
    let msgs_per_s = get("msgs_per_s")?;
    // The bench warms up for a fifth of the run (at most a second) before it measures.
    let total = seconds + (seconds / 5.0).min(1.0);
    Ok(Sample {
        msgs_per_s,
        p50_us: get("p50_us")?,
        p99_us: get("p99_us")?,
        cpu_us_per_msg: cpu.as_secs_f64() * 1e6 / (msgs_per_s * total).max(1.0),
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut rounds = 5;
    let mut seconds = 3.0;
    let mut json = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match (a.as_str(), it.clone().next()) {
            ("--rounds", Some(v)) => {
                rounds = v.parse().unwrap_or(rounds);
                it.next();
            }
            ("--seconds", Some(v)) => {
                seconds = v.parse().unwrap_or(seconds);
                it.next();
            }
            ("--json", _) => json = true,
            (other, _) => {
                eprintln!("compare: unknown argument {other}");
                return ExitCode::from(2);
            }
        }
    }
    let systems = [System::Framewire, System::Tokio, System::Mio];
    let mut rows = Vec::new();
    for w in &WORKLOADS {
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); systems.len()];
        for round in 0..rounds {
            for (i, &s) in systems.iter().enumerate() {
                match run_one(s, w, seconds) {
                    Ok(x) => {
                        eprintln!(
                            "round {}/{rounds} {}: {}: {:.0} msgs/s, p50 {:.0} us, p99 {:.0} us, {:.2} us CPU/msg",
                            round + 1,
                            w.name,
                            s.name(),
                            x.msgs_per_s,
                            x.p50_us,
                            x.p99_us,
                            x.cpu_us_per_msg
                        );
                        samples[i].push(x);
                    }
                    Err(e) => {
                        eprintln!("compare: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
        for (i, &s) in systems.iter().enumerate() {
            let m = |f: fn(&Sample) -> f64| median(samples[i].iter().map(f).collect());
            rows.push((
                w.name,
                s,
                m(|x| x.msgs_per_s),
                m(|x| x.p50_us),
                m(|x| x.p99_us),
                m(|x| x.cpu_us_per_msg),
            ));
        }
    }
    if json {
        for (w, s, rate, p50, p99, cpu) in &rows {
            println!(
                "{{\"workload\":\"{w}\",\"system\":\"{}\",\"msgs_per_s\":{rate:.0},\"p50_us\":{p50:.0},\"p99_us\":{p99:.0},\"server_cpu_us_per_msg\":{cpu:.3}}}",
                s.name()
            );
        }
        return ExitCode::SUCCESS;
    }
    println!(
        "TCP echo, medians of {rounds} rounds of {seconds} s; ratios are framewire / this system"
    );
    println!(
        "| workload | system | msgs/s | p50 us | p99 us | server CPU us/msg | throughput ratio | p99 ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for &(w, s, rate, p50, p99, cpu) in &rows {
        let ours = rows
            .iter()
            .find(|r| r.0 == w && r.1 == System::Framewire)
            .map_or((f64::NAN, f64::NAN), |r| (r.2, r.4));
        println!(
            "| {w} | {} | {:.2} M | {p50:.0} | {p99:.0} | {cpu:.2} | {:.2}x | {:.2}x |",
            s.name(),
            rate / 1e6,
            ours.0 / rate,
            ours.1 / p99
        );
    }
    ExitCode::SUCCESS
}
