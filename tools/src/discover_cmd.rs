//! `framewire discover`: the servers on the network that answer a LAN discovery request
//! (docs/PROTOCOL.md section 4.12), one line each as they answer.

use std::fmt::Write as _;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use framewire_client::{DiscoverOptions, Discovered, discover};

/// What `framewire discover` was asked.
#[derive(Debug)]
pub(crate) struct DiscoverArgs {
    /// Where to send the request; empty: the broadcast address at `port`.
    pub(crate) to: Vec<SocketAddr>,
    pub(crate) port: u16,
    pub(crate) wait: Duration,
    pub(crate) size: usize,
    pub(crate) json: bool,
}

pub(crate) fn run(args: &DiscoverArgs) -> ExitCode {
    let mut options = DiscoverOptions {
        wait: args.wait,
        size: args.size,
        ..DiscoverOptions::default()
    };
    if args.to.is_empty() {
        for t in &mut options.targets {
            t.set_port(args.port);
        }
    } else {
        options.targets.clone_from(&args.to);
    }
    let mut out = std::io::stdout().lock();
    let found = discover(&options, |d| {
        let line = if args.json {
            json_line(d)
        } else {
            text_line(d)
        };
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    });
    match found {
        Ok(found) if found.is_empty() => {
            eprintln!(
                "framewire discover: no server answered within {} ms",
                args.wait.as_millis()
            );
            ExitCode::FAILURE
        }
        Ok(found) => {
            if found.iter().any(|d| d.truncated) {
                eprintln!(
                    "framewire discover: some answers left addresses out; ask with a larger --size"
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("framewire discover: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `edge-1 tcp=10.0.0.1:7400 udp=10.0.0.1:7400 (from 10.0.0.1:7400)`.
fn text_line(d: &Discovered) -> String {
    let mut line = d.card.name.clone();
    for (kind, addr) in &d.card.addrs {
        let _ = write!(line, " {kind}={addr}");
    }
    let _ = write!(line, " (from {})", d.from);
    if d.truncated {
        line.push_str(" [truncated]");
    }
    line
}

/// `{"name":"edge-1","from":"10.0.0.1:7400","truncated":false,"tcp":"10.0.0.1:7400",...}`.
fn json_line(d: &Discovered) -> String {
    // Node names and socket addresses hold nothing JSON must escape (the card's rules).
    let mut line = format!(
        "{{\"name\":\"{}\",\"from\":\"{}\",\"truncated\":{}",
        d.card.name, d.from, d.truncated
    );
    for (kind, addr) in &d.card.addrs {
        let _ = write!(line, ",\"{kind}\":\"{addr}\"");
    }
    line.push('}');
    line
}
