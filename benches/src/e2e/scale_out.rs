//! Scale-out: the fan-out workload with its subscribers spread over three framewire nodes joined
//! through one nats-server (`--cluster`), against one framewire node and against a three-server
//! nats-server cluster alone (routes between them), the publisher on the first node of each; and
//! the cross-node publish-to-delivery latency (one subscriber on the second node, one message in
//! flight) of both clusters, with one node's own for reference.
//!
//! Every process of a system (three nodes and their nats-server, or three nats-servers) runs on
//! the servers' core and its CPU time is summed: what the deliveries cost the whole system. On a
//! two-core machine the nodes share that core, so these figures say what joining costs, not how
//! a cluster scales across machines.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::fanout::{self, FanoutConfig, FanoutResult, Link, Targets};
use super::pubsub_wire::Wire;
use super::systems::{self, Running, Serves};
use super::table::Section;

/// Starts a compared system afresh.
type Start = fn() -> io::Result<Deployment>;

/// How long a cluster may take to carry a probe from its first node to another.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// One compared system, started: its processes and the addresses clients use, the first node's
/// first.
#[derive(Debug)]
struct Deployment {
    wire: Wire,
    name: &'static str,
    processes: Vec<Running>,
    nodes: Vec<SocketAddr>,
}

impl Deployment {
    fn targets(&self, subscribers_on: &[usize]) -> Targets<'_> {
        Targets {
            publisher: self.nodes[0],
            subscribers: subscribers_on.iter().map(|&i| self.nodes[i]).collect(),
            servers: self.processes.iter().collect(),
            ready: None,
        }
    }

    /// Waits until a message published on the first node reaches a subscriber on each other
    /// node: their interest has crossed the cluster. Called once the run's subscribers hold their
    /// subscriptions, it also covers theirs (each node passes them on in order, before the
    /// probe's).
    fn ready(&self) -> io::Result<()> {
        for (i, &node) in self.nodes.iter().enumerate().skip(1) {
            match self.wire {
                Wire::Nats => nats_probe(self.nodes[0], node, i)?,
                _ => framewire_probe(self.nodes[0], node, i)?,
            }
        }
        Ok(())
    }
}

/// One framewire node, as the fan-out section starts it.
fn one_node() -> io::Result<Deployment> {
    let node = systems::start(Wire::Framewire, 0)?;
    Ok(Deployment {
        wire: Wire::Framewire,
        name: "framewire, one node",
        nodes: vec![node.addr],
        processes: vec![node],
    })
}

/// A nats-server and `n` framewire nodes joined through it.
fn framewire_cluster(n: usize) -> io::Result<Deployment> {
    let nats_addr = systems::free_addr()?;
    let nats = systems::start_program(
        std::path::Path::new("nats-server"),
        &[
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            nats_addr.port().to_string(),
        ],
        0,
        nats_addr,
        Serves::Tcp,
    )?;
    let mut processes = vec![nats];
    let mut nodes = Vec::new();
    for i in 0..n {
        let addr = systems::free_addr()?;
        let args: Vec<String> = [
            "--tcp",
            &addr.to_string(),
            "--udp",
            "off",
            "--http",
            "off",
            "--cluster",
            &format!("nats://{nats_addr}"),
            "--node-name",
            &format!("bench-{i}"),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        processes.push(systems::start_program(
            &systems::framewire_binary()?,
            &args,
            0,
            addr,
            Serves::Tcp,
        )?);
        nodes.push(addr);
    }
    Ok(Deployment {
        wire: Wire::Framewire,
        name: "framewire, 3 nodes + nats-server",
        processes,
        nodes,
    })
}

/// `n` nats-servers routed to each other (a NATS cluster).
fn nats_cluster(n: usize) -> io::Result<Deployment> {
    let clients: Vec<SocketAddr> = (0..n)
        .map(|_| systems::free_addr())
        .collect::<io::Result<_>>()?;
    let routes: Vec<SocketAddr> = (0..n)
        .map(|_| systems::free_addr())
        .collect::<io::Result<_>>()?;
    let mut processes = Vec::new();
    for i in 0..n {
        let others: Vec<String> = routes
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, r)| format!("nats://{r}"))
            .collect();
        let args: Vec<String> = vec![
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            clients[i].port().to_string(),
            "--cluster_name".into(),
            "bench".into(),
            "--cluster".into(),
            format!("nats://{}", routes[i]),
            "--routes".into(),
            others.join(","),
        ];
        processes.push(systems::start_program(
            std::path::Path::new("nats-server"),
            &args,
            0,
            clients[i],
            Serves::Tcp,
        )?);
    }
    Ok(Deployment {
        wire: Wire::Nats,
        name: "nats-server, 3-server cluster",
        processes,
        nodes: clients,
    })
}

/// A framewire subscriber to `fw-ready/<i>` on `node`, probes published on `first` until it hears
/// one.
fn framewire_probe(first: SocketAddr, node: SocketAddr, i: usize) -> io::Result<()> {
    use framewire_client::{Client, ClientOptions, Transport};
    let err = |e: framewire_client::Error| io::Error::other(e.to_string());
    let connect = |addr| {
        let mut options = ClientOptions::new(addr, Transport::Tcp);
        options.reconnect = None;
        options.learn_nodes = false;
        Client::connect(options).map_err(|e| io::Error::other(e.to_string()))
    };
    let topic = format!("fw-ready/{i}");
    let mut subscriber = connect(node)?;
    subscriber.subscribe(&topic).map_err(err)?;
    let mut publisher = connect(first)?;
    let deadline = Instant::now() + READY_WITHIN;
    while Instant::now() < deadline {
        publisher.publish(&topic, "probe").map_err(err)?;
        if subscriber
            .next_message(Duration::from_millis(50))
            .map_err(err)?
            .is_some()
        {
            return Ok(());
        }
    }
    Err(io::Error::other(format!(
        "node {node} never heard a publish from {first}"
    )))
}

/// The same over NATS's text protocol.
fn nats_probe(first: SocketAddr, node: SocketAddr, i: usize) -> io::Result<()> {
    let subject = format!("ready.{i}");
    let mut subscriber = TcpStream::connect(node)?;
    subscriber.write_all(format!("CONNECT {{}}\r\nSUB {subject} 1\r\nPING\r\n").as_bytes())?;
    until_seen(&mut subscriber, b"PONG\r\n", READY_WITHIN)?;
    let mut publisher = TcpStream::connect(first)?;
    publisher.write_all(b"CONNECT {}\r\n")?;
    let deadline = Instant::now() + READY_WITHIN;
    while Instant::now() < deadline {
        publisher.write_all(format!("PUB {subject} 5\r\nprobe\r\n").as_bytes())?;
        if until_seen(&mut subscriber, b"MSG ", Duration::from_millis(50)).is_ok() {
            return Ok(());
        }
    }
    Err(io::Error::other(format!(
        "nats-server {node} never heard a publish from {first}"
    )))
}

/// Reads `stream` until `what` has come, for at most `within`.
fn until_seen(stream: &mut TcpStream, what: &[u8], within: Duration) -> io::Result<()> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if seen.windows(what.len()).any(|w| w == what) {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "not seen in time"));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut chunk) {
            Ok(0) => return Err(io::Error::other("closed")),
            Ok(n) => seen.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "not seen in time"));
            }
            Err(e) => return Err(e),
        }
    }
}

/// One sample: the system started afresh, the run's subscribers on the nodes `subscribers_on`
/// names in turn, the cluster ready, then the fan-out.
fn sample(
    start: Start,
    subscribers_on: &[usize],
    cfg: &FanoutConfig,
) -> io::Result<(&'static str, FanoutResult)> {
    let system = start()?;
    let mut targets = system.targets(subscribers_on);
    let ready = || system.ready();
    targets.ready = Some(&ready);
    let result = fanout::run_on(system.wire, &targets, cfg)?;
    Ok((system.name, result))
}

fn start_cluster() -> io::Result<Deployment> {
    framewire_cluster(3)
}

fn start_nats_cluster() -> io::Result<Deployment> {
    nats_cluster(3)
}

/// The scale-out comparison: fan-out to each number of `subscribers` (spread over the three
/// nodes, the publisher on the first) and the cross-node latency, `rounds` rounds of `seconds`,
/// the systems interleaved round by round.
///
/// # Errors
/// nats-server is not installed, a server did not start, or a run failed.
pub fn compare(rounds: usize, seconds: f64, subscribers: &[usize]) -> io::Result<Vec<Section>> {
    if !fanout::available(Wire::Nats) {
        return Err(io::Error::other(
            "nats-server is not installed (Debian's nats-server)",
        ));
    }
    let spread: [(Start, &[usize]); 3] = [
        (one_node, &[0]),
        (start_cluster, &[0, 1, 2]),
        (start_nats_cluster, &[0, 1, 2]),
    ];
    let fan_out = Section {
        title: format!(
            "Scale-out fan-out: 32 B messages, 128 in flight, subscribers spread over 3 nodes (the publisher on the first), medians of {rounds} rounds of {seconds} s; CPU summed over every process of the system; ratios are framewire's 3 nodes / this row"
        ),
        ..table(&spread, rounds, seconds, subscribers, 128)?
    };
    // Cross-node latency: one subscriber on the second node, one message in flight.
    let across: [(Start, &[usize]); 3] = [
        (one_node, &[0]),
        (start_cluster, &[1]),
        (start_nats_cluster, &[1]),
    ];
    let latency = Section {
        title: format!(
            "Cross-node publish-to-delivery latency: one subscriber on the second node (one node: on the publisher's), one 32 B message in flight, medians of {rounds} rounds of {seconds} s"
        ),
        ..table(&across, rounds, seconds, &[1], 1)?
    };
    Ok(vec![fan_out, latency])
}

/// Each system at each number of subscribers, round by round; the first row of the cluster is the
/// ratios' base.
fn table(
    systems: &[(Start, &[usize])],
    rounds: usize,
    seconds: f64,
    subscribers: &[usize],
    window: u64,
) -> io::Result<Section> {
    let mut section = Section {
        columns: vec![
            "subscribers",
            "system",
            "deliveries/s",
            "p50 us",
            "p99 us",
            "CPU ms per M deliveries",
            "deliveries/s ratio",
        ],
        ..Section::default()
    };
    for &n in subscribers {
        let cfg = FanoutConfig {
            subscribers: n,
            payload: 32,
            window,
            warmup: Duration::from_millis(500),
            measure: Duration::from_secs_f64(seconds),
            link: Link::Tcp,
        };
        let mut names = vec![""; systems.len()];
        let mut results: Vec<Vec<FanoutResult>> = vec![Vec::new(); systems.len()];
        for round in 0..rounds {
            for (i, &(start, on)) in systems.iter().enumerate() {
                let (name, r) = sample(start, on, &cfg)?;
                eprintln!(
                    "scale-out round {}/{rounds} {n} subscribers {name}: {:.0} deliveries/s, p50 {:.0} us, p99 {:.0} us",
                    round + 1,
                    r.deliveries_per_s,
                    r.p50_us,
                    r.p99_us
                );
                names[i] = name;
                results[i].push(r);
            }
        }
        let m = |rs: &[FanoutResult], f: fn(&FanoutResult) -> f64| {
            super::median(rs.iter().map(f).collect())
        };
        // framewire's cluster (the second system) is what the others are compared with.
        let base = m(&results[1], |r| r.deliveries_per_s);
        for (i, rs) in results.iter().enumerate() {
            let rate = m(rs, |r| r.deliveries_per_s);
            let (p50, p99, cpu) = (
                m(rs, |r| r.p50_us),
                m(rs, |r| r.p99_us),
                m(rs, |r| r.cpu_ms_per_m),
            );
            let rates: Vec<f64> = rs.iter().map(|r| r.deliveries_per_s).collect();
            section.rows.push(vec![
                n.to_string(),
                names[i].to_string(),
                super::table::millions_with_range(rate, super::range(&rates)),
                format!("{p50:.0}"),
                format!("{p99:.0}"),
                format!("{cpu:.1}"),
                format!("{:.2}x", base / rate),
            ]);
            section.json.push(format!(
                "{{\"section\":\"scale-out\",\"subscribers\":{n},\"window\":{window},\"system\":{},\"deliveries_per_s\":{rate:.0},\"p50_us\":{p50:.0},\"p99_us\":{p99:.0},\"cpu_ms_per_m\":{cpu:.1},\"ratio\":{:.3}}}",
                super::table::json_string(names[i]),
                base / rate
            ));
        }
    }
    Ok(section)
}
