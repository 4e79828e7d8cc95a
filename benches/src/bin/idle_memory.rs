//! Idle memory per TCP connection at 10,000 connections: framewire against the tokio echo baseline
//! (`tokio_echo`, built beside this) and mosquitto, as the
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
    // The tokio baseline: an echo server holds a connection with no handshake at all.
    let tokio = systems::free_addr().and_then(|addr| {
        let program = systems::sibling_binary("tokio_echo")?;
        let server = systems::start_program(&program, &[addr.to_string()], 0, addr)?;
        let (conns, per) = idle::measure_with(&server, n, |_, _| Ok(()))?;
        drop(conns);
        Ok(per)
    });
    match tokio {
        Ok(per) => println!("| tokio + LengthDelimitedCodec | {n} | {per:.0} B |"),
        Err(e) => eprintln!("tokio_echo: {e}"),
    }
    ExitCode::SUCCESS
}
