//! Idle memory per TCP connection at 10,000 connections: framewire against mosquitto, as the
//! growth of each server's resident memory (`VmRSS`) once every connection has completed its
//! handshake and gone quiet, divided by the number of connections.
//!
//! ```sh
//! cargo build --release -p framewire-server
//! cargo run --release -p framewire-benches --bin idle_memory -- [CONNECTIONS]
//! ```

use std::process::ExitCode;

use framewire_benches::e2e::idle;
use framewire_benches::e2e::pubsub_wire::Wire;
use framewire_benches::e2e::systems;

fn main() -> ExitCode {
    let n: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 10_000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("idle_memory: CONNECTIONS must be a positive number");
            return ExitCode::from(2);
        }
    };
    println!("| system | connections | RSS growth per connection |");
    println!("|---|---|---|");
    for wire in [Wire::Framewire, Wire::Mqtt] {
        let result = systems::start(wire, 0).and_then(|server| {
            let (conns, per) = idle::measure(wire, &server, n)?;
            drop(conns);
            Ok(per)
        });
        match result {
            Ok(per) => println!("| {} | {n} | {per:.0} B |", wire.name()),
            Err(e) => eprintln!("{}: {e}", wire.name()),
        }
    }
    ExitCode::SUCCESS
}
