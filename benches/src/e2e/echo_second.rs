//! The TCP echo comparison again, with a second load generator: not `framewire bench` (the
//! client crate's code, which the main comparison runs) but this crate's own mio loop
//! (`echo_load.rs`), the same bytes for every server: framewire Data stream frames, which framewire
//! echoes as frames, tokio's `LengthDelimitedCodec` echo as length-delimited frames and the raw mio
//! echo as bytes. So no figure of the comparison rests on one client's cost alone.

use std::io;
use std::time::Duration;

use super::echo::System;
use super::echo_load::{self, EchoConfig, EchoResult, StreamFrames};
use super::pubsub_wire::Wire;
use super::table::{self, Section};

/// The workloads: the main comparison's pipelined ones.
const WORKLOADS: [(&str, usize, usize, usize); 2] = [
    ("pipelined, 16 clients x 32, 64 B", 16, 32, 64),
    ("pipelined, 16 clients x 8, 1 KiB", 16, 8, 1024),
];

const SYSTEMS: [System; 3] = [System::FramewireTcp, System::Tokio, System::Mio];

fn run_one(system: System, cfg: &EchoConfig) -> io::Result<EchoResult> {
    let server = system.start()?;
    let wire = StreamFrames::new(cfg.payload);
    echo_load::run(&wire, &server, cfg, |stream, i| match system {
        System::FramewireTcp => Wire::Framewire.handshake(stream, i, false),
        _ => Ok(()),
    })
}

/// framewire, tokio and the raw mio echo, interleaved round by round, with the second generator.
///
/// # Errors
/// A server did not start, or a run failed.
pub fn compare(rounds: usize, seconds: f64) -> io::Result<Section> {
    let mut section = Section {
        title: format!(
            "TCP echo with the second generator (one mio loop of this crate, the same Data stream frames to every server), medians of {rounds} rounds of {seconds} s (in brackets: the lowest and highest round, and of the round-by-round ratios); ratios are framewire / this system"
        ),
        columns: vec![
            "workload",
            "system",
            "msgs/s",
            "p50 us",
            "p99 us",
            "server CPU ns/msg",
            "msgs/s ratio",
            "p99 ratio",
        ],
        ..Section::default()
    };
    for (name, connections, window, size) in WORKLOADS {
        let cfg = EchoConfig {
            connections,
            window,
            // The Data frame's payload, as `framewire bench --size` sends.
            payload: size,
            warmup: Duration::from_millis(500),
            measure: Duration::from_secs_f64(seconds),
        };
        let results = echo_load::interleaved(
            &SYSTEMS,
            rounds,
            &format!("second generator, {name},"),
            System::name,
            |system| run_one(system, &cfg),
        )?;
        let series = |f: fn(&EchoResult) -> f64| -> Vec<Vec<f64>> {
            results
                .iter()
                .map(|rs| rs.iter().map(f).collect())
                .collect()
        };
        let (rates, p99s) = (series(|r| r.messages_per_s), series(|r| r.p99_us));
        let ours = super::median(rates[0].clone());
        let our_p99 = super::median(p99s[0].clone());
        for (i, system) in SYSTEMS.iter().enumerate() {
            let m = |f: fn(&EchoResult) -> f64| super::median(results[i].iter().map(f).collect());
            let (rate, p50, p99, cpu) = (
                m(|r| r.messages_per_s),
                m(|r| r.p50_us),
                m(|r| r.p99_us),
                m(|r| r.cpu_ns),
            );
            let rate_ratios = super::range(&super::round_ratios(&rates[0], &rates[i]));
            let p99_ratios = super::range(&super::round_ratios(&p99s[0], &p99s[i]));
            section.rows.push(vec![
                name.to_string(),
                system.name().to_string(),
                table::millions_with_range(rate, super::range(&rates[i])),
                format!("{p50:.0}"),
                format!("{p99:.0}"),
                format!("{cpu:.0}"),
                table::ratio_with_range(ours, rate, rate_ratios),
                table::ratio_with_range(our_p99, p99, p99_ratios),
            ]);
            section.json.push(format!(
                "{{\"section\":\"tcp echo, second generator\",\"workload\":{},\"system\":{},\"messages_per_s\":{rate:.0},\"p50_us\":{p50:.0},\"p99_us\":{p99:.0},\"server_cpu_ns_per_message\":{cpu:.0},\"ratio\":{:.3}}}",
                table::json_string(name),
                table::json_string(system.name()),
                ours / rate
            ));
        }
    }
    Ok(section)
}
