//! `framewire`: the command-line tool for framewire.
//!
//! Commands now: `decode`, which decodes a stream frame or a datagram written in hex (as in
//! docs/PROTOCOL.md) and prints what it means. The client commands (ping, pub, sub, req, queue,
//! bench) and the capture tools (inspect, replay) come with their issues.

mod decode;

use std::process::ExitCode;

const USAGE: &str = "\
usage: framewire <command> [args]

commands:
  decode HEX...   decode a TCP stream frame or a UDP datagram given in hex
                  (spaces allowed), and print its fields
  help            print this text";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("decode") => decode::run(&args[1..]),
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("framewire: unknown command {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
        None => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
