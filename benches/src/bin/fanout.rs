//! Fan-out comparison: one publisher to 100 and to 1,000 subscribers, 32-byte messages, 128 in
//! flight, framewire against nats-server and mosquitto (`QoS` 0), interleaved round by round, the
//! servers pinned to core 0 and this load generator to core 1.
//!
//! ```sh
//! cargo build --release -p framewire-server
//! cargo run --release -p framewire-benches --bin fanout -- [--rounds N] [--seconds S] [--json]
//! ```
//!
//! nats-server and mosquitto come from Debian's packages of those names; a missing one is skipped.

use std::io;
use std::process::{Command, ExitCode};
use std::time::Duration;

use framewire_benches::e2e::fanout::{self, FanoutConfig, FanoutResult};
use framewire_benches::e2e::median;
use framewire_benches::e2e::pubsub_wire::Wire;
use framewire_benches::e2e::systems;

const PINNED: &str = "FRAMEWIRE_BENCH_PINNED";
const SERVER_CORE: usize = 0;
const CLIENT_CORE: &str = "1";

struct Options {
    rounds: usize,
    seconds: f64,
    json: bool,
    subscribers: Vec<usize>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        rounds: 5,
        seconds: 3.0,
        json: false,
        subscribers: vec![100, 1000],
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value")).cloned();
        match a.as_str() {
            "--rounds" => o.rounds = value(a)?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--seconds" => o.seconds = value(a)?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--subscribers" => {
                o.subscribers = value(a)?
                    .split(',')
                    .map(|s| s.parse().map_err(|e| format!("--subscribers: {e}")))
                    .collect::<Result<_, _>>()?;
            }
            "--json" => o.json = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

fn available(wire: Wire) -> bool {
    let program = match wire {
        Wire::Framewire => return systems::framewire_binary().is_ok(),
        Wire::Nats => "nats-server",
        Wire::Mqtt => "mosquitto",
    };
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if std::env::var_os(PINNED).is_none() {
        // Run again pinned to the client core; the servers get the other one.
        let status = Command::new("taskset")
            .args(["-c", CLIENT_CORE])
            .arg(std::env::current_exe().expect("own path"))
            .args(&args)
            .env(PINNED, "1")
            .status();
        return match status {
            Ok(s) if s.success() => ExitCode::SUCCESS,
            Ok(_) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("fanout: cannot run under taskset: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let opts = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("fanout: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fanout: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(opts: &Options) -> io::Result<()> {
    let systems: Vec<Wire> = [Wire::Framewire, Wire::Nats, Wire::Mqtt]
        .into_iter()
        .filter(|&w| {
            let ok = available(w);
            if !ok {
                eprintln!("skipping {}: not installed (or not built)", w.name());
            }
            ok
        })
        .collect();
    let mut rows = Vec::new();
    for &subscribers in &opts.subscribers {
        let cfg = FanoutConfig {
            subscribers,
            payload: 32,
            window: 128,
            warmup: Duration::from_millis(500),
            measure: Duration::from_secs_f64(opts.seconds),
        };
        let mut results: Vec<Vec<FanoutResult>> = vec![Vec::new(); systems.len()];
        for round in 0..opts.rounds {
            for (i, &wire) in systems.iter().enumerate() {
                let server = systems::start(wire, SERVER_CORE)?;
                let r = fanout::run(wire, &server, &cfg)?;
                eprintln!(
                    "round {}/{} {subscribers} subscribers {}: {:.0} deliveries/s, p50 {:.0} us, p99 {:.0} us",
                    round + 1,
                    opts.rounds,
                    wire.name(),
                    r.deliveries_per_s,
                    r.p50_us,
                    r.p99_us
                );
                results[i].push(r);
            }
        }
        for (i, &wire) in systems.iter().enumerate() {
            let rs = &results[i];
            rows.push((
                subscribers,
                wire,
                median(rs.iter().map(|r| r.deliveries_per_s).collect()),
                median(rs.iter().map(|r| r.p50_us).collect()),
                median(rs.iter().map(|r| r.p99_us).collect()),
                median(rs.iter().map(|r| r.cpu_ms_per_m).collect()),
            ));
        }
    }
    if opts.json {
        for (subs, wire, rate, p50, p99, cpu) in &rows {
            println!(
                "{{\"workload\":\"fanout\",\"subscribers\":{subs},\"system\":\"{}\",\"deliveries_per_s\":{rate:.0},\"p50_us\":{p50:.0},\"p99_us\":{p99:.0},\"server_cpu_ms_per_m\":{cpu:.1}}}",
                wire.name()
            );
        }
        return Ok(());
    }
    println!(
        "fan-out, 32 B messages, 128 in flight, medians of {} rounds of {} s",
        opts.rounds, opts.seconds
    );
    println!(
        "| subscribers | system | deliveries/s | p50 us | p99 us | server CPU ms per M deliveries | framewire / this |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &(subs, wire, rate, p50, p99, cpu) in &rows {
        let ours = rows
            .iter()
            .find(|r| r.0 == subs && r.1 == Wire::Framewire)
            .map_or(f64::NAN, |r| r.2);
        println!(
            "| {subs} | {} | {:.2} M | {p50:.0} | {p99:.0} | {cpu:.1} | {:.2}x |",
            wire.name(),
            rate / 1e6,
            ours / rate
        );
    }
    Ok(())
}
