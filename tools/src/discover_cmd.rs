//! `framewire discover`: the servers on the network that answer a LAN discovery request
//! (docs/PROTOCOL.md section 4.12), one line each as they answer.

use std::fmt::Write as _;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use framewire_client::{DiscoverOptions, Discovered, discover};

/// What `framewire discover` is asked.
#[derive(Debug, clap::Args)]
pub(crate) struct DiscoverArgs {
    /// Send the request here instead of broadcasting (a broadcast address of one network, or
    /// servers' UDP addresses); repeat for more.
    #[arg(long, value_name = "ADDR")]
    to: Vec<SocketAddr>,
    /// The servers' UDP port, when broadcasting to 255.255.255.255.
    #[arg(long, default_value_t = 7400)]
    port: u16,
    /// How long to gather answers, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    wait: u64,
    /// The request's size in bytes (no answer is as long); 33 to 1200.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u16).range(33..=1200))]
    size: u16,
    /// Print one JSON object per line instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &DiscoverArgs) -> ExitCode {
    let wait = Duration::from_millis(args.wait.max(1));
    let mut options = DiscoverOptions {
        wait,
        size: usize::from(args.size),
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
                wait.as_millis()
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
