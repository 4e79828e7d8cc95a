//! framewire side by side with what its users would pick instead, in one run: TCP echo (tokio +
//! `LengthDelimitedCodec`, a raw mio echo), UDP echo and UDP bytes per message (ENet), TLS and sealed UDP against plain
//! (and sealed UDP against ENet), idle memory per connection (tokio,
//! mosquitto), fan-out (nats-server, mosquitto), the async client (async-nats on nats-server),
//! confirmed durable pushes (nats-server with `JetStream`), and WebSocket (echo and idle memory
//! against tokio-tungstenite, fan-out against nats-server's WebSocket listener).
//! Servers are pinned to core 0 and the load generators to core 1; systems are interleaved round
//! by round (after a warm-up in every run); each table gives medians, the servers' CPU time per
//! message from /proc, and framewire's ratios.
//!
//! ```sh
//! cargo build --release -p framewire-server -p framewire-tools -p framewire-benches
//! cargo run --release -p framewire-benches --bin compare -- [--only tcp,tcp-second,udp,udp-wire,secure,idle,fanout,async,durable,startup,websocket,scale-out]
//!     [--rounds N] [--seconds S] [--connections N] [--subscribers 100,1000] [--json]
//! ```
//!
//! Peers come from Debian's packages: libenet-dev (the runner compiles `benches/enet/` against
//! it), nats-server, mosquitto. A peer that is missing is skipped with a note.

use std::process::{Command, ExitCode};

use framewire_benches::e2e::table::Section;
use framewire_benches::e2e::{
    async_clients, durable, echo, echo_second, fanout, idle, scale_out, udp_wire, websocket,
};

/// Set in the copy of this program that runs pinned to the client core.
const PINNED: &str = "FRAMEWIRE_BENCH_PINNED";
const CLIENT_CORE: &str = "1";
/// The TCP echo's second-generator table alone (also part of `tcp`).
const TCP_SECOND: &str = "tcp-second";

const SECTIONS: [&str; 11] = [
    "tcp",
    "udp",
    "udp-wire",
    "secure",
    "idle",
    "fanout",
    "async",
    "durable",
    "startup",
    "websocket",
    "scale-out",
];

struct Options {
    only: Vec<String>,
    rounds: usize,
    seconds: f64,
    connections: usize,
    subscribers: Vec<usize>,
    json: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        only: SECTIONS.iter().map(ToString::to_string).collect(),
        rounds: 5,
        seconds: 3.0,
        connections: 10_000,
        subscribers: vec![100, 1000],
        json: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value")).cloned();
        match a.as_str() {
            "--only" => {
                o.only = value(a)?.split(',').map(str::to_string).collect();
                if let Some(bad) = o
                    .only
                    .iter()
                    .find(|s| !SECTIONS.contains(&s.as_str()) && s.as_str() != TCP_SECOND)
                {
                    return Err(format!(
                        "--only: no section {bad} (tcp, udp, udp-wire, secure, idle, fanout, async, durable, startup, websocket, scale-out; {TCP_SECOND}: the second generator's part of tcp alone)"
                    ));
                }
            }
            "--rounds" => o.rounds = value(a)?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--seconds" => o.seconds = value(a)?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--connections" => {
                o.connections = value(a)?
                    .parse()
                    .map_err(|e| format!("--connections: {e}"))?;
            }
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
    if o.rounds == 0 || !o.seconds.is_finite() || o.seconds <= 0.0 || o.connections == 0 {
        return Err("--rounds, --seconds and --connections must be positive".into());
    }
    Ok(o)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if std::env::var_os(PINNED).is_none() {
        // Run again pinned to the client core: the in-process load generators (fan-out, idle
        // connections) must not share the servers' core.
        let status = Command::new("taskset")
            .args(["-c", CLIENT_CORE])
            .arg(std::env::current_exe().expect("own path"))
            .args(&args)
            .env(PINNED, "1")
            .status();
        return match status {
            Ok(s) if s.success() => ExitCode::SUCCESS,
            Ok(s) => ExitCode::from(u8::try_from(s.code().unwrap_or(1)).unwrap_or(1)),
            Err(e) => {
                eprintln!("compare: cannot run under taskset: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let o = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("compare: {e}");
            return ExitCode::from(2);
        }
    };
    let mut failed = false;
    for name in &o.only {
        let sections = match name.as_str() {
            "tcp" => echo::compare_tcp(o.rounds, o.seconds)
                .and_then(|main| Ok(vec![main, echo_second::compare(o.rounds, o.seconds)?])),
            TCP_SECOND => echo_second::compare(o.rounds, o.seconds).map(|s| vec![s]),
            "udp" => echo::compare_udp(o.rounds, o.seconds).map(|s| vec![s]),
            // A 60 Hz stream needs longer runs than a saturating echo to see its losses.
            "udp-wire" => udp_wire::compare(o.rounds, o.seconds * 5.0).map(|s| vec![s]),
            "secure" => echo::compare_secure(o.rounds, o.seconds).and_then(|echoed| {
                Ok(vec![
                    echoed,
                    fanout::compare_tls(o.rounds, o.seconds, &o.subscribers)?,
                ])
            }),
            "idle" => idle::compare(o.connections).map(|s| vec![s]),
            "async" => async_clients::compare(o.rounds, o.seconds).map(|s| vec![s]),
            "durable" => durable::compare(o.rounds, o.seconds).map(|s| vec![s]),
            "startup" => durable::startup(o.rounds).map(|s| vec![s]),
            "websocket" => websocket::compare(o.rounds, o.seconds, &o.subscribers, o.connections),
            "scale-out" => scale_out::compare(o.rounds, o.seconds, &[1000]),
            _ => fanout::compare(o.rounds, o.seconds, &o.subscribers).map(|s| vec![s]),
        };
        match sections {
            Ok(all) => all.iter().for_each(|s| print_section(s, o.json)),
            Err(e) => {
                eprintln!("compare: {name}: {e}");
                failed = true;
            }
        }
    }
    framewire_benches::e2e::secure::remove_materials();
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print_section(s: &Section, json: bool) {
    if json {
        for line in &s.json {
            println!("{line}");
        }
    } else {
        println!("{}", s.markdown());
    }
}
