//! `framewire`: the command-line tool for framewire.
//!
//! Talks to a server (`--server`, default 127.0.0.1:7400; TCP, or UDP with `--udp`): `ping`,
//! `pub`, `sub`, `req`, `queue push|fetch|ack`, and `bench`, a load generator. `decode` explains a
//! frame or datagram given in hex; `inspect` every frame in a pcap or pcapng capture; `replay`
//! re-creates a capture's client sessions against a server and compares the answers. Errors are one line on stderr; the exit code is 1 for a failure
//! (unreachable, rejected, timed out, refused with a status) and 2 for a usage error.

mod bench;
mod client_cmds;
mod decode;
mod discover_cmd;
mod inspect;
mod inspect_data;
mod replay_cmd;
mod token;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use framewire_client::Transport;
use framewire_tools::replay::Pace;

use client_cmds::Target;

/// One or more server addresses, `A[,B...]`.
#[derive(Debug, Clone)]
struct Servers(Vec<SocketAddr>);

impl Servers {
    fn first_and_rest(&self) -> (SocketAddr, Vec<SocketAddr>) {
        // Never empty: `servers` refuses an empty list.
        let (first, rest) = self.0.split_first().map_or(
            (SocketAddr::from(([127, 0, 0, 1], 7400)), &[][..]),
            |(f, r)| (*f, r),
        );
        (first, rest.to_vec())
    }
}

fn servers(v: &str) -> Result<Servers, String> {
    let list: Vec<SocketAddr> = v
        .split(',')
        .map(|a| {
            a.trim()
                .parse()
                .map_err(|_| format!("{a:?} is not an address like 127.0.0.1:7400"))
        })
        .collect::<Result<_, _>>()?;
    if list.is_empty() {
        return Err("no address".into());
    }
    Ok(Servers(list))
}

#[derive(Debug, Parser)]
#[command(
    name = "framewire",
    version,
    about = "Talk to a framewire server, measure it, decode its bytes."
)]
struct Cli {
    /// The server's address; several, separated by commas, are tried in turn (the nodes of a
    /// cluster: the client commands connect to the first that answers).
    #[arg(long = "server", global = true, default_value = "127.0.0.1:7400", value_parser = servers)]
    servers: Servers,
    /// Use UDP instead of TCP.
    #[arg(long, global = true)]
    udp: bool,
    /// A connect token (from `framewire token`), for servers that check them.
    #[arg(long, global = true, value_name = "HEX")]
    token: Option<String>,
    /// Connect over TLS (the server's `--tls` address), checking its certificate against the
    /// system's trust anchors unless --ca.
    #[arg(long, global = true)]
    tls: bool,
    /// Trust the CA certificates in this PEM file instead of the system's (implies --tls).
    #[arg(long, global = true, value_name = "FILE")]
    ca: Option<std::path::PathBuf>,
    /// The name the server's certificate must carry (default: the --server address; implies --tls).
    #[arg(long, global = true, value_name = "NAME")]
    server_name: Option<String>,
    /// A client certificate (PEM) to show a server that asks for one (implies --tls; needs --key).
    #[arg(long, global = true, value_name = "FILE", requires = "key")]
    cert: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, global = true, value_name = "FILE", requires = "cert")]
    key: Option<std::path::PathBuf>,
    /// The keys file `framewire token --keys-out` wrote beside --token: the UDP session is sealed.
    #[arg(long, global = true, value_name = "FILE", requires = "token")]
    keys: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Round trips to the server (`sys.ping`), with min, avg and p99.
    Ping {
        /// How many.
        #[arg(short = 'c', long, default_value_t = 5)]
        count: u32,
    },
    /// Publish a message; returns once the server has accepted it (unless --unreliable).
    Pub {
        /// The topic.
        topic: String,
        /// The message.
        message: String,
        /// Send on the unreliable channel, without waiting for the server.
        #[arg(long)]
        unreliable: bool,
        /// Keep it as the topic's retained message.
        #[arg(long)]
        retain: bool,
    },
    /// Subscribe and print each message's payload on a line of its own (and, on stderr, a line
    /// once the server has confirmed the subscription).
    Sub {
        /// The topic filter (`+` one level, `#` the rest).
        topic: String,
        /// Stop after this many messages.
        #[arg(short = 'n', long)]
        count: Option<u64>,
    },
    /// Send a request and print the response.
    Req {
        /// A built-in method (`sys.ping`, `sys.time`, `sys.info`, `sys.stats`) or a service.
        target: String,
        /// The request body.
        #[arg(default_value = "")]
        payload: String,
        /// How long to wait, in milliseconds.
        #[arg(long, default_value_t = 5000)]
        timeout: u64,
    },
    /// Work queues.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// A load generator: echo round trips or pub/sub, latencies in an HDR histogram.
    Bench(BenchArgs),
    /// Issue a connect token signed with the server's key; prints it in hex.
    Token(TokenArgs),
    /// Every framewire frame in a pcap or pcapng capture (TCP and UDP), then a summary.
    Inspect {
        /// The capture file (as tcpdump, tshark or Wireshark write it), or a server's data
        /// directory (`--data-dir`): its records are listed, read-only.
        file: String,
        /// The server's port: traffic to or from it is framewire's.
        #[arg(long, default_value_t = 7400)]
        port: u16,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Re-create a capture's client sessions (TCP and UDP) against a server and compare its
    /// answers with the captured ones; exits 1 on any difference. With --token (and --keys),
    /// every session carries that token (and UDP sessions are sealed with those keys), for a
    /// target that checks tokens or requires encryption.
    Replay {
        /// The capture file (as tcpdump, tshark or Wireshark write it, or the server's --capture).
        file: String,
        /// The server to replay against.
        #[arg(long)]
        target: SocketAddr,
        /// The captured server's port: traffic to or from it is framewire's.
        #[arg(long, default_value_t = 7400)]
        port: u16,
        /// Replay this many times faster than captured.
        #[arg(long, default_value_t = 1.0, conflicts_with = "max")]
        speed: f64,
        /// Send each frame as soon as what came before it has been answered.
        #[arg(long)]
        max: bool,
        /// Milliseconds to wait for an answer before calling it missing.
        #[arg(long, default_value_t = 2000)]
        timeout: u64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The servers on the network: broadcast a LAN discovery request and print each server that
    /// answers (its name and addresses), one line each.
    Discover(discover_cmd::DiscoverArgs),
    /// Decode a TCP stream frame or a UDP datagram given in hex (spaces allowed).
    Decode {
        /// The bytes, in hex.
        #[arg(required = true)]
        hex: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum QueueCommand {
    /// Push a message onto a queue.
    Push {
        /// The queue.
        queue: String,
        /// The message.
        message: String,
    },
    /// Fetch messages, print one payload per line, and acknowledge them.
    Fetch {
        /// The queue.
        queue: String,
        /// The most messages to fetch.
        #[arg(short = 'n', long, default_value_t = 1)]
        count: u16,
        /// Wait up to this many milliseconds for a message (a long poll).
        #[arg(long, default_value_t = 0)]
        wait: u64,
        /// Do not acknowledge; print each delivery id and a tab before its payload.
        #[arg(long)]
        no_ack: bool,
    },
    /// Acknowledge a delivery.
    Ack {
        /// The queue.
        queue: String,
        /// The delivery id (from `fetch --no-ack`).
        delivery_id: u64,
    },
    /// Give a delivery back, to be delivered again (after `--delay`).
    Nack {
        /// The queue.
        queue: String,
        /// The delivery id (from `fetch --no-ack`).
        delivery_id: u64,
        /// Milliseconds before it is delivered again.
        #[arg(long, default_value_t = 0)]
        delay: u64,
    },
    /// Keep a delivery longer: restart its visibility timeout.
    Extend {
        /// The queue.
        queue: String,
        /// The delivery id.
        delivery_id: u64,
        /// The new timeout in milliseconds (0: the server's own).
        #[arg(long, default_value_t = 0)]
        timeout: u64,
    },
}

#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// The file holding the server's key (at least 32 bytes).
    #[arg(long)]
    key: std::path::PathBuf,
    /// The client's identity.
    #[arg(long)]
    client: String,
    /// How long it is valid: 90s, 30m, 12h, 7d.
    #[arg(long, default_value = "1h")]
    expires: String,
    /// A topic filter it may publish to (repeat for more).
    #[arg(long = "pub", value_name = "PATTERN")]
    publish: Vec<String>,
    /// A topic filter it may subscribe within (repeat for more).
    #[arg(long = "sub", value_name = "PATTERN")]
    subscribe: Vec<String>,
    /// A request target it may call; a trailing * matches any rest (sys.* is always allowed).
    #[arg(long = "req", value_name = "NAME")]
    request: Vec<String>,
    /// A service name it may register; a trailing * matches any rest.
    #[arg(long, value_name = "NAME")]
    serve: Vec<String>,
    /// A queue it may push to, fetch from and acknowledge; a trailing * matches any rest.
    #[arg(long, value_name = "NAME")]
    queue: Vec<String>,
    /// Seal fresh keys for an encrypted UDP session into the token, and write them to FILE for
    /// the client (`--keys FILE`).
    #[arg(long, value_name = "FILE")]
    keys_out: Option<std::path::PathBuf>,
}

#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Messages in flight per client.
    #[arg(long, default_value_t = 32)]
    window: u32,
    /// Payload bytes (at least 8: the send time).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Seconds measured (after a short warm-up).
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Reliable or unreliable messages.
    #[arg(long, value_enum, default_value_t = bench::Channel::Reliable)]
    channel: bench::Channel,
    /// Echo round trips or pub/sub round trips.
    #[arg(long, value_enum, default_value_t = bench::Mode::Echo)]
    mode: bench::Mode,
    /// Threads to spread the clients over (default: the number of cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print one JSON line instead of the table.
    #[arg(long)]
    json: bool,
    /// No handshake: measure a plain echo of length-prefixed frames (a comparison baseline; TCP
    /// echo only).
    #[arg(long)]
    raw: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let target = match target(&cli) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("framewire: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Ping { count } => client_cmds::ping(&target, count),
        Command::Pub {
            topic,
            message,
            unreliable,
            retain,
        } => client_cmds::publish(&target, &topic, &message, unreliable, retain),
        Command::Sub { topic, count } => client_cmds::subscribe(&target, &topic, count),
        Command::Req {
            target: method,
            payload,
            timeout,
        } => client_cmds::request(&target, &method, &payload, Duration::from_millis(timeout)),
        Command::Queue(QueueCommand::Push { queue, message }) => {
            client_cmds::queue_push(&target, &queue, &message)
        }
        Command::Queue(QueueCommand::Fetch {
            queue,
            count,
            wait,
            no_ack,
        }) => client_cmds::queue_fetch(&target, &queue, count, Duration::from_millis(wait), no_ack),
        Command::Queue(QueueCommand::Ack { queue, delivery_id }) => {
            client_cmds::queue_ack(&target, &queue, delivery_id)
        }
        Command::Queue(QueueCommand::Nack {
            queue,
            delivery_id,
            delay,
        }) => client_cmds::queue_nack(&target, &queue, delivery_id, Duration::from_millis(delay)),
        Command::Queue(QueueCommand::Extend {
            queue,
            delivery_id,
            timeout,
        }) => {
            client_cmds::queue_extend(&target, &queue, delivery_id, Duration::from_millis(timeout))
        }
        Command::Bench(args) => return run_bench(&target, &args),
        Command::Decode { hex } => return decode::run(&hex),
        Command::Discover(args) => return discover_cmd::run(&args),
        Command::Inspect { file, port, json } => {
            if std::path::Path::new(&file).is_dir() {
                return inspect_data::run(std::path::Path::new(&file));
            }
            return inspect::run(&file, port, json);
        }
        Command::Replay {
            file,
            target: against,
            port,
            speed,
            max,
            timeout,
            json,
        } => {
            if !(speed.is_finite() && speed > 0.0) {
                eprintln!("framewire replay: --speed must be a positive number");
                return ExitCode::from(2);
            }
            return replay_cmd::run(&replay_cmd::ReplayArgs {
                file: &file,
                port,
                target: against,
                pace: if max { Pace::Max } else { Pace::Speed(speed) },
                timeout: Duration::from_millis(timeout.max(1)),
                json,
                token: target.auth_token.clone(),
                seal_keys: target.seal_keys.clone(),
            });
        }
        Command::Token(args) => return issue_token(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("framewire: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Where and how the flags say to connect.
fn target(cli: &Cli) -> Result<Target, String> {
    let auth_token = cli
        .token
        .as_deref()
        .map(token::from_hex)
        .transpose()
        .map_err(|e| format!("--token: {e}"))?;
    let tls = tls_options(cli)?;
    if tls.is_some() && matches!(cli.command, Command::Replay { .. }) {
        return Err(
            "replay speaks plain TCP and UDP only; --tls is for the client commands".into(),
        );
    }
    let seal_keys = cli.keys.as_deref().map(token::read_keys).transpose()?;
    if seal_keys.is_some() && !cli.udp && !matches!(cli.command, Command::Replay { .. }) {
        return Err("--keys seals a UDP session (with --udp); over TCP use --tls".into());
    }
    let (server, fallback_servers) = cli.servers.first_and_rest();
    Ok(Target {
        seal_keys,
        server,
        fallback_servers,
        transport: if cli.udp {
            Transport::Udp
        } else {
            Transport::Tcp
        },
        auth_token,
        tls,
    })
}

/// The TLS settings the flags ask for (`None`: plaintext).
fn tls_options(cli: &Cli) -> Result<Option<framewire_client::TlsOptions>, String> {
    let wanted = cli.tls || cli.ca.is_some() || cli.server_name.is_some() || cli.cert.is_some();
    if !wanted {
        return Ok(None);
    }
    if cli.udp {
        return Err("--tls is for TCP; UDP sessions are sealed with their token's keys".into());
    }
    let mut b = framewire_client::TlsOptions::builder();
    if let Some(ca) = &cli.ca {
        b = b.ca_file(ca).map_err(|e| format!("--ca: {e}"))?;
    }
    if let Some(name) = &cli.server_name {
        b = b
            .server_name(name)
            .map_err(|e| format!("--server-name: {e}"))?;
    }
    if let (Some(cert), Some(key)) = (&cli.cert, &cli.key) {
        b = b
            .client_certificate(cert, key)
            .map_err(|e| format!("--cert/--key: {e}"))?;
    }
    b.build().map(Some).map_err(|e| format!("--tls: {e}"))
}

fn run_bench(target: &Target, args: &BenchArgs) -> ExitCode {
    let (server, udp) = (&target.server, target.transport == Transport::Udp);
    if args.raw && (udp || args.mode != bench::Mode::Echo) {
        eprintln!("framewire bench: --raw is for TCP echo servers only");
        return ExitCode::from(2);
    }
    if !args.duration.is_finite() || args.duration <= 0.0 {
        eprintln!("framewire bench: --duration must be a positive number of seconds");
        return ExitCode::from(2);
    }
    let cfg = bench::BenchConfig {
        server: *server,
        udp,
        clients: args.clients.max(1),
        window: args.window.max(1),
        size: args.size.max(8),
        duration: Duration::from_secs_f64(args.duration),
        channel: args.channel,
        mode: args.mode,
        threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)),
        json: args.json,
        raw: args.raw,
        tls: target.tls.clone(),
        auth_token: target.auth_token.clone(),
        seal_keys: target.seal_keys.clone(),
    };
    match bench::run(&cfg) {
        Ok(r) if args.json => {
            println!("{}", r.json());
            ExitCode::SUCCESS
        }
        Ok(r) => {
            println!(
                "{} clients x {} in flight, {} B, {:?} {:?} over {}: {:.0} msgs/s, p50 {} us, p99 {} us, p999 {} us, {} errors",
                cfg.clients,
                cfg.window,
                cfg.size,
                cfg.mode,
                cfg.channel,
                if udp { "UDP" } else { "TCP" },
                r.msgs_per_s,
                r.p50_us,
                r.p99_us,
                r.p999_us,
                r.errors
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("framewire bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn issue_token(args: &TokenArgs) -> ExitCode {
    let result = token::parse_duration(&args.expires)
        .map_err(|e| format!("--expires: {e}"))
        .and_then(|expires_in| {
            let key = token::read_key(&args.key)?;
            let claims = token::Claims {
                client: &args.client,
                expires_in,
                publish: &args.publish,
                subscribe: &args.subscribe,
                request: &args.request,
                serve: &args.serve,
                queue: &args.queue,
            };
            let keys = args
                .keys_out
                .as_ref()
                .map(|_| token::fresh_keys())
                .transpose()?;
            let hex = token::issue(&key, &claims, keys.as_ref())?;
            if let (Some(path), Some(keys)) = (&args.keys_out, &keys) {
                token::write_keys(path, keys)?;
            }
            Ok(hex)
        });
    match result {
        Ok(hex) => {
            println!("{hex}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("framewire token: {e}");
            ExitCode::FAILURE
        }
    }
}
